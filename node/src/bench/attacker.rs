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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
