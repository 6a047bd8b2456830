//! N engines over an in-memory network whose delivery order, duplication and loss come from a
//! seeded RNG, with a `sync` step that redelivers everything a node missed (standing in for
//! anti-entropy).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ds_p2p::engine::{Command, Engine, EngineConfig, Event, Output, TieBreak};
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{KvStore, MemoryStore};
use ds_p2p::wire::{GroupRef, inbox_topic};
use openmls::prelude::OpenMlsProvider as _;
use openmls_basic_credential::SignatureKeyPair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub struct Node {
    pub name: String,
    pub engine: Engine,
    pub events: Vec<Event>,
    pub topics: BTreeSet<String>,
    pub kv: Arc<dyn KvStore>,
}

impl Node {
    /// Bodies of delivered messages, with how often each was delivered.
    pub fn delivered(&self) -> BTreeMap<Vec<u8>, usize> {
        let mut out = BTreeMap::new();
        for e in &self.events {
            if let Event::Message { body, .. } = e {
                *out.entry(body.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn rejections(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Rejected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Delivery faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability that a delivery is dropped (sync brings it back later).
    pub loss: f64,
    /// Probability that a delivery is duplicated.
    pub duplicate: f64,
}

pub struct Net {
    pub nodes: Vec<Node>,
    pub now: u64,
    pub rng: ChaCha20Rng,
    pub faults: Faults,
    in_flight: Vec<(usize, Vec<u8>)>,
    published: Vec<(String, Vec<u8>)>,
}

pub fn identity(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

impl Net {
    pub fn new(names: &[&str], config: EngineConfig, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let nodes = names
            .iter()
            .map(|name| {
                let kv: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
                let provider = ChorusProvider::new(kv.clone());
                let signer =
                    SignatureKeyPair::new(ds_p2p::engine::CIPHERSUITE.signature_algorithm())
                        .unwrap();
                let _ = provider.crypto();
                let engine = Engine::open(
                    config.clone(),
                    provider,
                    signer,
                    identity(name),
                    rng.r#gen(),
                )
                .unwrap();
                let mut topics = BTreeSet::new();
                topics.insert(inbox_topic(&identity(name)));
                Node {
                    name: name.to_string(),
                    engine,
                    events: Vec::new(),
                    topics,
                    kv,
                }
            })
            .collect();
        Self {
            nodes,
            now: 1_000,
            rng,
            faults: Faults::default(),
            in_flight: Vec::new(),
            published: Vec::new(),
        }
    }

    pub fn with_policy(names: &[&str], policy: TieBreak, seed: u64) -> Self {
        Self::new(
            names,
            EngineConfig {
                policy,
                ..EngineConfig::default()
            },
            seed,
        )
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    /// Moves every node's outputs onto the wire (and into the log for `sync`).
    pub fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(output) = self.nodes[i].engine.poll_output() {
                match output {
                    Output::Publish { topic, envelope } => {
                        for (j, node) in self.nodes.iter().enumerate() {
                            if j != i && node.topics.contains(&topic) {
                                self.in_flight.push((j, envelope.clone()));
                            }
                        }
                        self.published.push((topic, envelope));
                    }
                    Output::Event(event) => {
                        if let Event::GroupJoined { group, .. } = &event {
                            self.nodes[i].topics.insert(group.topic());
                        }
                        self.nodes[i].events.push(event);
                    }
                }
            }
        }
    }

    pub fn command(&mut self, name: &str, command: Command) {
        let i = self.index(name);
        let now = self.now;
        self.nodes[i].engine.handle_command(now, command);
        self.collect();
    }

    /// Delivers everything in flight, in random order, with the configured faults, until
    /// nothing is left.
    pub fn deliver_all(&mut self) {
        while !self.in_flight.is_empty() {
            let k = self.rng.gen_range(0..self.in_flight.len());
            let (to, bytes) = self.in_flight.swap_remove(k);
            if self.rng.gen_bool(self.faults.loss) {
                continue;
            }
            if self.rng.gen_bool(self.faults.duplicate) {
                self.in_flight.push((to, bytes.clone()));
            }
            self.now += self.rng.gen_range(0..20);
            let now = self.now;
            self.nodes[to].engine.handle_envelope(now, &bytes);
            self.collect();
        }
    }

    /// Drops everything in flight (a partition swallowed it).
    pub fn drop_in_flight(&mut self) {
        self.in_flight.clear();
    }

    /// Anti-entropy: every node is handed everything ever published on its topics that it did
    /// not publish itself, in random order; then delivery runs to quiescence.
    pub fn sync(&mut self) {
        for (j, node) in self.nodes.iter().enumerate() {
            for (topic, bytes) in &self.published {
                if node.topics.contains(topic) {
                    self.in_flight.push((j, bytes.clone()));
                }
            }
        }
        let faults = self.faults;
        self.faults = Faults::default();
        self.deliver_all();
        self.faults = faults;
    }

    /// Advances time and runs every engine's timers.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        let now = self.now;
        for node in &mut self.nodes {
            node.engine.handle_timeout(now);
        }
        self.collect();
    }

    pub fn group_of(&self, name: &str) -> GroupRef {
        let i = self.index(name);
        self.nodes[i].engine.groups().next().expect("in a group")
    }

    /// A fresh KeyPackage of `name`.
    pub fn key_package(&mut self, name: &str) -> Vec<u8> {
        let i = self.index(name);
        self.nodes[i].engine.key_package().unwrap()
    }

    pub fn status(&self, name: &str, group: GroupRef) -> ds_p2p::engine::GroupStatus {
        let i = self.index(name);
        self.nodes[i]
            .engine
            .group_status(group)
            .expect("member of the group")
    }
}
