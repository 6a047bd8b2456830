//! A hostile peer for tests and `chorus attack-bench`: a bare gossip node (no MLS, no engine)
//! that joins a group's topic, listens to the honest traffic, and floods the topic with three
//! kinds of bad messages:
//!
//! - **forged**: a captured honest envelope with its last bytes (the AEAD tag and the end of
//!   the ciphertext) replaced. It decodes, names the right group and epoch, and only a
//!   member's failed decryption shows it is junk — the most expensive kind for the victim.
//!   Before anything was captured, an application envelope with random bytes stands in;
//! - **replayed**: a captured honest envelope sent again as it was;
//! - **garbage**: random bytes that are not a pubsub frame at all.
//!
//! The flood runs on its own task at a set rate until stopped, and reports what it sent.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef};
use gossip::net::{Keypair, NetConfig, NetEvent, NetEvents, Node, NodeHandle};
use gossip::{Log, LogConfig, Topic};
use identity_tofu::kv::MemoryStore;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// How many honest envelopes the attacker keeps to forge and replay from.
const CAPTURED: usize = 64;

/// Shares of each kind in the flood, in percent (the rest is forged).
#[derive(Debug, Clone, Copy)]
pub struct FloodMix {
    pub replayed: u8,
    pub garbage: u8,
}

impl FloodMix {
    /// `mixed` or `forged`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "mixed" => Ok(Self::MIXED),
            "forged" => Ok(Self::FORGED_ONLY),
            other => anyhow::bail!("flood mix {other:?}: use \"mixed\" or \"forged\""),
        }
    }

    fn name(&self) -> &'static str {
        if self.replayed == 0 && self.garbage == 0 {
            "forged"
        } else {
            "mixed"
        }
    }

    /// Only forged envelopes: nothing the validator can refuse, so only the per-peer budget
    /// stands between the flood and the victim.
    pub const FORGED_ONLY: Self = Self {
        replayed: 0,
        garbage: 0,
    };
    /// Mostly forged, a tenth each replayed and garbage.
    pub const MIXED: Self = Self {
        replayed: 10,
        garbage: 10,
    };
}

/// What the flood sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FloodCounts {
    pub forged: u64,
    pub replayed: u64,
    pub garbage: u64,
}

impl FloodCounts {
    pub fn total(&self) -> u64 {
        self.forged + self.replayed + self.garbage
    }
}

/// A running attacker.
pub struct Attacker {
    handle: NodeHandle,
    events: NetEvents,
    topic: Topic,
    group: GroupRef,
}

impl Attacker {
    /// Starts the attacker on loopback, dials `peers` (multiaddrs ending in `/p2p/<id>`) and
    /// subscribes to `group`'s topic; returns once one of them is known on the topic (before
    /// that gossipsub would send nothing).
    pub async fn start(peers: &[String], group: GroupRef, limit: Duration) -> anyhow::Result<Self> {
        let log = Log::open(MemoryStore::new(), LogConfig::default())?;
        // The attacker accepts whatever it hears: it wants the honest envelopes.
        let (handle, mut events) = Node::start(
            NetConfig::loopback(),
            Keypair::generate_ed25519(),
            log,
            |_: &Topic, _: &[u8]| true,
        )
        .await?;
        for peer in peers {
            handle.dial(peer.parse()?).await?;
        }
        let topic = Topic::new(group.topic())?;
        handle.subscribe(&topic).await?;
        tokio::time::timeout(limit, async {
            while let Some(event) = events.recv().await {
                if let NetEvent::PeerSubscribed { topic: t, .. } = event
                    && t == topic
                {
                    return;
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no honest peer showed up on the group's topic"))?;
        Ok(Self {
            handle,
            events,
            topic,
            group,
        })
    }

    /// Publishes `bytes` on the group's topic as they are; true if they went out to a peer.
    pub async fn publish(&self, bytes: Vec<u8>) -> anyhow::Result<bool> {
        Ok(self.handle.publish(&self.topic, bytes).await?.gossiped)
    }

    /// The attacker's peer id, as honest nodes list it.
    pub fn peer_id(&self) -> String {
        self.handle.peer_id().to_string()
    }

    /// Floods at `per_second` messages of `mix` (random choices from `seed`) until `stop` is
    /// set, then returns what it sent.
    pub async fn flood(
        &mut self,
        per_second: u32,
        mix: FloodMix,
        seed: u64,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<FloodCounts> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut captured: Vec<Vec<u8>> = Vec::new();
        let mut counts = FloodCounts::default();
        // Ticks of 10 ms, each sending its share of the rate (at least one message).
        let per_tick = (per_second / 100).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            while let Ok(event) = self.events.try_recv() {
                if let NetEvent::Received { envelope, .. } = event {
                    if captured.len() == CAPTURED {
                        captured.remove(0);
                    }
                    captured.push(envelope);
                }
            }
            for _ in 0..per_tick {
                let roll = rng.gen_range(0..100u8);
                let bytes = if roll < mix.garbage {
                    counts.garbage += 1;
                    random_bytes(&mut rng, 200)
                } else if roll < mix.garbage + mix.replayed && !captured.is_empty() {
                    counts.replayed += 1;
                    captured[rng.gen_range(0..captured.len())].clone()
                } else {
                    counts.forged += 1;
                    self.forged(&mut rng, &captured)?
                };
                // Refusals by the attacker's own node (a replay it already holds) are fine:
                // what matters is what went out.
                let _ = self.handle.publish(&self.topic, bytes).await;
            }
        }
        Ok(counts)
    }

    fn forged(&self, rng: &mut StdRng, captured: &[Vec<u8>]) -> anyhow::Result<Vec<u8>> {
        let decoded = captured
            .iter()
            .rev()
            .filter_map(|raw| Envelope::decode(raw, &Default::default()).ok())
            .find(|e| e.kind == EnvelopeKind::Application);
        let payload = match decoded {
            Some(honest) => {
                let mut payload = honest.payload;
                let tail = payload.len().min(24);
                let at = payload.len() - tail;
                rng.fill_bytes(&mut payload[at..]);
                payload
            }
            None => random_bytes(rng, 300),
        };
        Ok(Envelope::new(EnvelopeKind::Application, self.group, payload).encode()?)
    }

    /// Leaves the network.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.shutdown().await?;
        Ok(())
    }
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// `chorus attacker`: the attacker as a process of its own, so that a bench can run it at low
/// CPU priority (on one machine, an attacker in the bench's own process would mostly measure
/// the cores it takes). Prints `{"peer_id": …}`, floods until stdin closes, prints the counts.
pub async fn run_process(
    peers: &[String],
    group: &str,
    rate: u32,
    mix: &str,
    seed: u64,
) -> anyhow::Result<()> {
    let group = crate::policy::parse_group_ref(group)?;
    let mix = FloodMix::parse(mix)?;
    let mut attacker = Attacker::start(peers, group, super::LIMIT).await?;
    println!("{}", serde_json::json!({ "peer_id": attacker.peer_id() }));
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        stopper.store(true, Ordering::Relaxed);
    });
    let counts = attacker.flood(rate, mix, seed, stop).await?;
    println!("{}", serde_json::to_string(&counts)?);
    attacker.shutdown().await
}

/// A running `chorus attacker` child process.
pub struct AttackerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    peer_id: String,
}

impl AttackerProcess {
    /// Starts `chorus attacker` at the lowest CPU priority (`nice -n 19`, if there is a
    /// `nice`), and waits for its peer id.
    pub async fn spawn(
        peers: &[String],
        group: &str,
        rate: u32,
        mix: FloodMix,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let exe = crate::demo::harness::chorus_exe()?;
        let mut cmd = if which_nice() {
            let mut c = Command::new("nice");
            c.args(["-n", "19"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.arg("attacker")
            .args(["--group", group])
            .args(["--rate", &rate.to_string()])
            .args(["--mix", mix.name()])
            .args(["--seed", &seed.to_string()]);
        for peer in peers {
            cmd.args(["--peer", peer]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting chorus attacker")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let line = tokio::time::timeout(super::LIMIT, stdout.next_line())
            .await
            .context("the attacker did not start in time")??
            .context("the attacker exited at start")?;
        let hello: serde_json::Value = serde_json::from_str(&line)?;
        let peer_id = hello["peer_id"]
            .as_str()
            .context("the attacker did not say its peer id")?
            .to_string();
        Ok(Self {
            child,
            stdin,
            stdout,
            peer_id,
        })
    }

    /// The attacker's peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Stops the flood and returns what it sent.
    pub async fn finish(mut self) -> anyhow::Result<FloodCounts> {
        drop(self.stdin.take());
        let line = tokio::time::timeout(super::LIMIT, self.stdout.next_line())
            .await
            .context("the attacker did not stop in time")??
            .context("the attacker exited without its counts")?;
        let counts = serde_json::from_str(&line)?;
        let _ = tokio::time::timeout(super::LIMIT, self.child.wait()).await;
        Ok(counts)
    }
}

fn which_nice() -> bool {
    std::process::Command::new("nice")
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
