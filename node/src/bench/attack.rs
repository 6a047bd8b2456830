//! `chorus attack-bench`: the honest nodes' delivery rate with and without an attacker node
//! on loopback, measured in one run, side by side, printed as a ratio; and what became of the
//! attacker (its score at each honest node, the messages they shed).
//!
//! The same honest nodes (real `chorus run` processes in one group) are measured three times:
//! a clean round of `messages` sends from the first node to the last, the same under a flood
//! from an attacker connected to every honest node, and a clean round again; the attacked
//! round is compared with the mean of the two clean ones around it. The attacker is a process of its
//! own (`chorus attacker`) at the lowest CPU priority: on one machine it shares the honest
//! nodes' cores, and what it would take from them is a cost of the machine, not of the
//! protocol — on the internet it has its own.

use std::time::Instant;

use anyhow::Context;

use super::Rig;
use super::attacker::{AttackerProcess, FloodCounts, FloodMix};
use crate::api::http;
use crate::api::views::StatusView;
use crate::demo::harness::LocalNode;

/// Gossipsub's default graylist threshold: below it a peer's messages are not even read.
pub const GRAYLIST_THRESHOLD: f64 = -80.0;

pub struct AttackOptions {
    pub nodes: usize,
    pub messages: usize,
    pub payload: usize,
    pub in_flight: usize,
    /// The attacker's messages per second.
    pub flood_rate: u32,
    pub seed: Option<u64>,
}

/// What one honest node made of the attacker.
#[derive(Debug)]
pub struct Victim {
    pub name: String,
    pub score: Option<f64>,
    /// Peers the node cut off for being graylisted (`chorus_gossip_banned_total`): honest
    /// nodes send nothing invalid, so in this bench that is the attacker.
    pub banned: f64,
    pub shed_over_budget: f64,
    pub shed_abusive: f64,
    pub rejected: f64,
}

/// How long the flood may go on after the attacked round for every honest node to find the
/// attacker out.
const GRAYLIST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Victim {
    /// Graylisted: cut off, or still connected with a score at or below the threshold.
    fn found_out(&self) -> bool {
        self.banned > 0.0 || self.score.is_some_and(|s| s <= GRAYLIST_THRESHOLD)
    }
}

pub async fn run(o: AttackOptions) -> anyhow::Result<()> {
    if o.nodes < 2 || o.messages == 0 || o.in_flight == 0 || o.flood_rate == 0 {
        anyhow::bail!("--nodes must be ≥ 2; --messages, --in-flight and --flood-rate ≥ 1");
    }
    let seed = o.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chorus attack-bench: {} honest nodes, {} messages of {} B per round, {} in flight; \
         attacker {} msg/s (seed {seed}); {}",
        o.nodes,
        o.messages,
        o.payload,
        o.in_flight,
        o.flood_rate,
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    let mut rig = Rig::start(o.nodes, "synced", true).await?;
    // Clean rounds before and after the attacked one: a later round runs on a larger store
    // and log and is slower by itself (with no attacker at all the second of two clean
    // rounds measured ~0.7× the first), so the attacked round is held against the mean of
    // the two around it.
    eprintln!("· clean round…");
    let clean_before = rig
        .throughput(o.messages, o.payload, o.in_flight, 1_000_000)
        .await?;

    eprintln!("· attacked round…");
    let peers: Vec<String> = rig
        .nodes
        .iter()
        .map(|n| n.listen.clone().context("a node without an address"))
        .collect::<anyhow::Result<_>>()?;
    let attacker =
        AttackerProcess::spawn(&peers, &rig.gid, o.flood_rate, FloodMix::MIXED, seed).await?;
    let attacker_id = attacker.peer_id().to_string();
    let flood_started = Instant::now();
    let attacked = rig
        .throughput(o.messages, o.payload, o.in_flight, 2_000_000)
        .await;
    // Read the victims while the flood runs: a node lists the score of a peer it is still
    // connected to, and counts the peers it cut off. A short round may end before the
    // attacker's garbage reached every node: the flood goes on for up to `GRAYLIST_WAIT`
    // until each has found it out ("the attacker ends up graylisted").
    let waited = Instant::now();
    let victims = loop {
        let mut victims = Vec::new();
        for node in &rig.nodes {
            victims.push(victim(node, &attacker_id).await?);
        }
        if victims.iter().all(Victim::found_out) || waited.elapsed() >= GRAYLIST_WAIT {
            break victims;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let sent = attacker.finish().await?;
    let flood_s = flood_started.elapsed().as_secs_f64();
    let attacked = attacked?;
    eprintln!("· clean round again…");
    let clean_after = rig
        .throughput(o.messages, o.payload, o.in_flight, 3_000_000)
        .await?;
    rig.stop().await?;
    let clean = Clean {
        before: clean_before,
        after: clean_after,
    };
    print_report(&o, clean, attacked, sent, flood_s, &victims);
    Ok(())
}

/// The clean rounds' throughput (msg/s), before and after the attacked round.
#[derive(Debug, Clone, Copy)]
struct Clean {
    before: f64,
    after: f64,
}

impl Clean {
    fn mean(self) -> f64 {
        (self.before + self.after) / 2.0
    }
}

fn print_report(
    o: &AttackOptions,
    clean: Clean,
    attacked: f64,
    sent: FloodCounts,
    flood_s: f64,
    victims: &[Victim],
) {
    println!(
        "\nhonest delivery, {} nodes, {} messages of {} B per round (first node to last), {} in flight\n",
        o.nodes, o.messages, o.payload, o.in_flight
    );
    println!(
        "{:<22} {:>10} {:>10} {:>8}",
        "", "clean", "attacked", "ratio"
    );
    let ratio = attacked / clean.mean();
    println!(
        "{:<22} {:>10.1} {attacked:>10.1} {ratio:>7.2}×",
        "throughput (msg/s)",
        clean.mean()
    );
    println!(
        "(clean: {:.1} before the attacked round, {:.1} after it)",
        clean.before, clean.after
    );
    println!(
        "\nattacker: {} messages in {flood_s:.1} s ({:.0}/s): {} forged, {} replayed, {} garbage",
        sent.total(),
        sent.total() as f64 / flood_s.max(f64::EPSILON),
        sent.forged,
        sent.replayed,
        sent.garbage
    );
    for v in victims {
        let score = match (v.score, v.banned > 0.0) {
            (_, true) => "graylisted: cut off".to_string(),
            (None, false) => "not connected".to_string(),
            (Some(s), false) if s <= GRAYLIST_THRESHOLD => format!("{s:.1} (graylisted)"),
            (Some(s), false) => format!("{s:.1} (NOT graylisted)"),
        };
        println!(
            "at {:<4} attacker's score {score}; shed {} over budget, {} abusive; {} refused by the validator",
            v.name, v.shed_over_budget, v.shed_abusive, v.rejected
        );
    }
    let graylisted = victims.iter().filter(|v| v.found_out()).count();
    println!(
        "goals: attacked ≥ 0.9× clean: {}; attacker graylisted by every honest node: {} ({graylisted} of {})",
        if ratio >= 0.9 { "met" } else { "NOT met" },
        if graylisted == victims.len() {
            "met"
        } else {
            "NOT met"
        },
        victims.len()
    );
}

async fn victim(node: &LocalNode, attacker_id: &str) -> anyhow::Result<Victim> {
    let status: StatusView = node.client()?.get("/v1/status").await?;
    let score = status
        .peers
        .iter()
        .find(|p| p.peer_id == attacker_id)
        .and_then(|p| p.score);
    let text = metrics_text(node).await?;
    Ok(Victim {
        name: node.name.clone(),
        score,
        banned: sample(&text, "chorus_gossip_banned_total"),
        shed_over_budget: sample(&text, "chorus_gossip_shed_total{verdict=\"over_budget\"}"),
        shed_abusive: sample(&text, "chorus_gossip_shed_total{verdict=\"abusive\"}"),
        rejected: sample(&text, "chorus_envelopes_rejected_total"),
    })
}

/// The node's `/metrics` text (it must run with `--metrics`).
pub async fn metrics_text(node: &LocalNode) -> anyhow::Result<String> {
    let addr: std::net::SocketAddr = std::fs::read_to_string(node.data.metrics_addr())
        .context("the node serves no metrics")?
        .trim()
        .parse()?;
    let response = http::call(addr, None, "", "GET", "/metrics", None).await?;
    anyhow::ensure!(
        response.status == 200,
        "/metrics: status {}",
        response.status
    );
    Ok(String::from_utf8(response.body)?)
}

/// The value of the sample named exactly `name` (with its labels), 0 if absent.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}
