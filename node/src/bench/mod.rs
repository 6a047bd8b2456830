//! `chorus bench`: end-to-end message latency and throughput of real Chorus nodes (child
//! processes, driven through their API) against bare libp2p gossipsub with the same swarm
//! settings and payload size, measured in one run, side by side, printed as ratios.

pub mod attack;
pub mod attacker;
mod crypto;
mod raw;
pub mod soak;

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};

use crate::api::views::EventView;
use crate::demo::harness::{LocalNode, NodeOptions, wait_for};

pub(crate) const LIMIT: Duration = Duration::from_secs(60);

pub struct BenchOptions {
    pub nodes: usize,
    /// Messages of the throughput phase (and the baseline's).
    pub messages: usize,
    /// Messages of Chorus's latency phase.
    pub latency_messages: usize,
    pub payload: usize,
    pub durability: String,
    /// Sends outstanding at once in the throughput phase.
    pub in_flight: usize,
}

/// A message body of `size` bytes that starts with its tag.
fn body(tag: u64, size: usize) -> Vec<u8> {
    let mut b = tag.to_be_bytes().to_vec();
    b.resize(size.max(8), b'x');
    b
}

fn text(tag: u64, size: usize) -> String {
    let mut t = format!("m{tag:015}");
    while t.len() < size {
        t.push('x');
    }
    t
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Figures {
    p50: Duration,
    p99: Duration,
    throughput: f64,
}

pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    if o.nodes < 2 || o.messages == 0 || o.latency_messages == 0 || o.in_flight == 0 {
        anyhow::bail!(
            "--nodes must be ≥ 2, --messages and --latency-messages ≥ 1, --in-flight ≥ 1"
        );
    }
    if o.payload < 16 {
        anyhow::bail!("--payload must be at least 16 bytes (the tag)");
    }
    let build = if cfg!(debug_assertions) {
        "debug build: figures are pessimistic, use `cargo run --release --bin chorus -- bench`"
    } else {
        "release build"
    };
    eprintln!(
        "chorus bench: {} nodes, {} messages of {} B, durability {}, {} in flight; {build}; \
         this takes a minute or two",
        o.nodes, o.messages, o.payload, o.durability, o.in_flight
    );
    let heartbeat = Duration::from_millis(crate::config::Config::default().heartbeat_ms);
    eprintln!("· bare gossipsub…");
    let raw = raw_figures(&o, heartbeat).await?;
    eprintln!("· chorus nodes…");
    let chorus = chorus_figures(&o).await?;
    eprintln!("· MLS crypto per message: in memory, on RocksDB, on sealed RocksDB…");
    let payload = o.payload;
    let per_store = tokio::task::spawn_blocking(move || crypto::per_store(payload)).await??;
    let crypto = per_store.memory;

    let r = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!(
        "\nend-to-end, {} nodes, {} messages of {} B (sender: the bootstrap node; receiver: the last node)",
        o.nodes, o.messages, o.payload
    );
    println!(
        "durability {}, throughput with {} sends in flight, {}\n",
        o.durability,
        o.in_flight,
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    println!(
        "{:<22} {:>12} {:>14} {:>8}",
        "", "chorus", "raw gossipsub", "ratio"
    );
    for (name, c, g) in [
        ("latency p50 (ms)", ms(chorus.p50), ms(raw.p50)),
        ("latency p99 (ms)", ms(chorus.p99), ms(raw.p99)),
    ] {
        println!("{name:<22} {c:>12.2} {g:>14.2} {:>7.2}×", r(c, g));
    }
    println!(
        "{:<22} {:>12.1} {:>14.1} {:>7.2}×",
        "throughput (msg/s)",
        chorus.throughput,
        raw.throughput,
        r(chorus.throughput, raw.throughput)
    );
    println!(
        "\nMLS crypto per message (encrypt + decrypt, in process): {:.2} ms in memory; \
         with the state on RocksDB {:.2} ms, on sealed RocksDB {:.2} ms \
         (sealing: {:.2}×, +{:.2} ms per message)",
        ms(crypto),
        ms(per_store.rocks),
        ms(per_store.sealed),
        r(ms(per_store.sealed), ms(per_store.rocks)),
        ms(per_store.sealed) - ms(per_store.rocks)
    );
    let latency_goal = 1.5 * ms(raw.p50) + ms(crypto);
    println!(
        "goals: throughput ≥ 0.5× raw: {}; p50 ≤ 1.5× raw + crypto = {:.2} ms: {}",
        if chorus.throughput >= 0.5 * raw.throughput {
            "met"
        } else {
            "NOT met"
        },
        latency_goal,
        if ms(chorus.p50) <= latency_goal {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

async fn raw_figures(o: &BenchOptions, heartbeat: Duration) -> anyhow::Result<Figures> {
    let mut net = raw::RawNet::start(o.nodes, heartbeat).await?;
    let receiver = o.nodes - 1;
    let mut lat = Vec::new();
    for i in 0..o.latency_messages as u64 {
        let start = Instant::now();
        net.publish(0, body(i, o.payload));
        lat.push(net.wait(receiver, i, LIMIT).await? - start);
    }
    lat.sort();
    let base = 1_000_000u64;
    let start = Instant::now();
    for i in 0..o.messages as u64 {
        net.publish(0, body(base + i, o.payload));
    }
    let mut last = start;
    for i in 0..o.messages as u64 {
        last = net.wait(receiver, base + i, LIMIT).await?;
    }
    Ok(Figures {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        throughput: o.messages as f64 / (last - start).as_secs_f64(),
    })
}

async fn chorus_figures(o: &BenchOptions) -> anyhow::Result<Figures> {
    let mut rig = Rig::start(o.nodes, &o.durability, false).await?;
    let sender = rig.nodes[0].client()?.clone();
    let mut events = rig.nodes[o.nodes - 1].client()?.events().await?;
    let path = format!("/v1/groups/{}/messages", rig.gid);
    let mut lat = Vec::new();
    for i in 0..o.latency_messages as u64 {
        let t = text(i, o.payload);
        let start = Instant::now();
        let _: serde_json::Value = sender.post(&path, serde_json::json!({ "text": t })).await?;
        loop {
            let (got, at) = next_message_within(&mut events).await?;
            if got == t {
                lat.push(at - start);
                break;
            }
        }
    }
    drop(events);
    lat.sort();
    let throughput = rig
        .throughput(o.messages, o.payload, o.in_flight, 1_000_000)
        .await?;
    rig.stop().await?;
    Ok(Figures {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        throughput,
    })
}

type EventLines = tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>;

/// [`next_message`], failing after [`LIMIT`].
async fn next_message_within(events: &mut EventLines) -> anyhow::Result<(String, Instant)> {
    tokio::time::timeout(LIMIT, next_message(events))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no message reached the receiver for {} s (see its log)",
                LIMIT.as_secs()
            )
        })?
}

/// The next message event's text on `events`, and when it was read.
async fn next_message(events: &mut EventLines) -> anyhow::Result<(String, Instant)> {
    loop {
        let line = events.next_line().await?.context("event stream closed")?;
        match serde_json::from_str(&line) {
            Ok(EventView::Message { message, .. }) => return Ok((message.text, Instant::now())),
            // An envelope the receiver refused is a message it will never show.
            Ok(EventView::Rejected { reason, .. }) => {
                anyhow::bail!("the receiver refused an envelope: {reason}")
            }
            _ => {}
        }
        // The node drops events for a reader that falls over a thousand behind, and says so;
        // the messages it dropped would never be counted.
        if let Ok(serde_json::Value::Object(event)) = serde_json::from_str(&line)
            && event.get("type").and_then(|t| t.as_str()) == Some("lagged")
        {
            anyhow::bail!(
                "the receiver's event stream fell behind and {} events were dropped; \
                 measure with fewer --in-flight sends or a less loaded machine",
                event.get("missed").unwrap_or(&serde_json::Value::Null)
            );
        }
    }
}

/// Real `chorus run` nodes on loopback, all in one group made by the first.
pub(crate) struct Rig {
    _dir: tempfile::TempDir,
    pub nodes: Vec<LocalNode>,
    pub gid: String,
}

impl Rig {
    pub async fn start(nodes: usize, durability: &str, metrics: bool) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("chorus-bench-").tempdir()?;
        let options = NodeOptions {
            durability: durability.to_string(),
            metrics,
            ..NodeOptions::default()
        };
        let mut all = Vec::new();
        for i in 0..nodes {
            all.push(LocalNode::init(dir.path(), &format!("n{i}"))?);
        }
        all[0].start(&options, 0, &[]).await?;
        let boot = all[0].listen.clone().context("no address")?;
        for node in all.iter_mut().skip(1) {
            node.start(&options, 0, std::slice::from_ref(&boot)).await?;
        }
        let gid = all[0].create_group("bench").await?.group_id;
        for i in 1..nodes {
            let code = all[i].invite_code().await?;
            let name = all[0].add_contact(&code).await?.name;
            all[0].invite("bench", &name).await?;
            let node = &all[i];
            wait_for("a member to join", LIMIT, || async {
                Ok(node.status(&gid).await?.map(|_| ()))
            })
            .await?;
        }
        Ok(Self {
            _dir: dir,
            nodes: all,
            gid,
        })
    }

    /// Messages per second from the first node to the last, with `in_flight` sends
    /// outstanding at once while the last node's events are read; texts are tagged from `base`
    /// on (distinct per round).
    pub async fn throughput(
        &self,
        messages: usize,
        payload: usize,
        in_flight: usize,
        base: u64,
    ) -> anyhow::Result<f64> {
        let sender = self.nodes[0].client()?.clone();
        let last = self.nodes.last().context("no nodes")?;
        let mut events = last.client()?.events().await?;
        let path = format!("/v1/groups/{}/messages", self.gid);
        let start = Instant::now();
        let sends = futures::stream::iter(0..messages as u64)
            .map(|i| {
                let (sender, path) = (sender.clone(), path.clone());
                let body = serde_json::json!({ "text": text(base + i, payload) });
                async move { sender.post::<serde_json::Value>(&path, body).await }
            })
            .buffer_unordered(in_flight)
            .try_for_each(|_| async { Ok(()) });
        let receive = async {
            let mut seen = 0;
            let mut last = start;
            let round = base..base + messages as u64;
            while seen < messages {
                let (got, at) = next_message_within(&mut events).await?;
                let tag = got
                    .strip_prefix('m')
                    .and_then(|t| t.get(..15)?.parse::<u64>().ok());
                if tag.is_some_and(|n| round.contains(&n)) {
                    seen += 1;
                    last = at;
                }
            }
            anyhow::Ok(last)
        };
        let (sent, last) = tokio::join!(sends, receive);
        sent?;
        Ok(messages as f64 / (last? - start).as_secs_f64())
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for node in self.nodes.iter_mut() {
            node.stop().await?;
        }
        Ok(())
    }
}
