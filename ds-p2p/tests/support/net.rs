//! N engines over an in-memory network whose delivery order, duplication and loss come from a
//! seeded RNG, with a `sync` step that redelivers everything a node missed (standing in for
//! anti-entropy).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ds_p2p::engine::{Command, ConsistencyMode, Engine, EngineConfig, Event, Output, TieBreak};
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{KvStore, MasterKey, MemoryStore, SealedKv};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, WireLimits, inbox_topic};
use identity_tofu::{LocalIdentity, TrustStore};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// Where simulated time starts: 2026-01-01T00:00Z. openmls checks KeyPackage lifetimes
/// against the wall clock, so simulated time must be a real date.
pub const NET_EPOCH_MS: u64 = 1_767_225_600_000;

thread_local! {
    static SEALED: Cell<bool> = const { Cell::new(false) };
}

/// From now on, networks made on this thread keep each engine's state in a sealed store
/// (encryption at rest, as the node runs it, with the engine's own key layout): a key the
/// engine writes that the layout does not declare is refused there, so a scenario run this
/// way fails if a new kind of record was left out of the layout.
pub fn seal_stores_on_this_thread() {
    SEALED.with(|s| s.set(true));
}

fn engine_store(rng: &mut ChaCha20Rng) -> Arc<dyn KvStore> {
    if !SEALED.with(Cell::get) {
        return Arc::new(MemoryStore::new());
    }
    let master = MasterKey::from_bytes(rng.r#gen());
    let layout = ds_p2p::storage::layout::sealed_layout();
    Arc::new(
        SealedKv::open(MemoryStore::new(), "mls", &master, layout, rng.r#gen())
            .expect("a sealed store over a fresh memory store opens"),
    )
}

pub struct Node {
    pub name: String,
    /// The credential identity: an encoded device certificate.
    pub identity: Vec<u8>,
    pub engine: Engine,
    /// The node's MLS signature key (its device key), for tests that sign as it would.
    pub signer: SignatureKeyPair,
    pub events: Vec<Event>,
    pub topics: BTreeSet<String>,
    pub kv: Arc<dyn KvStore>,
    /// Which side of a partition the node is on; only nodes on one side hear each other.
    pub side: u8,
    /// Hashes of the envelopes this node has received or published: its gossip log, which
    /// anti-entropy reconciles (it is never handed one of these again by `sync`).
    pub has: BTreeSet<[u8; 32]>,
    /// What [`Net::restart`] opens the engine with again.
    config: EngineConfig,
    device_key: (Vec<u8>, Vec<u8>),
    trust_kv: Arc<dyn KvStore>,
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
    /// Everything ever published: (publisher, topic, envelope, its hash), what `sync`
    /// redelivers.
    published: Vec<(usize, String, Vec<u8>, [u8; 32])>,
    /// Running hash of every output of every node, in order: equal for equal runs.
    trace: Sha256,
    /// The outputs, one line each (a publish as its envelope's hash), for telling two runs
    /// apart.
    pub trace_lines: Vec<String>,
    /// How many commits, proposals and Welcomes were published so far (not beacons or
    /// application messages): while it grows, the group is still changing.
    pub changes_published: usize,
}

impl Net {
    pub fn new(names: &[&str], config: EngineConfig, seed: u64) -> Self {
        println!("net seed {seed}");
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let nodes = names
            .iter()
            .map(|name| {
                let person =
                    LocalIdentity::create(name, &mut rng, NET_EPOCH_MS).expect("valid handle");
                let kv = engine_store(&mut rng);
                let provider = ChorusProvider::with_seed(kv.clone(), rng.r#gen());
                let device = person.device_key();
                let key_pair = || {
                    SignatureKeyPair::from_raw(
                        SignatureScheme::ED25519,
                        device.to_secret_bytes().to_vec(),
                        device.public().as_bytes().to_vec(),
                    )
                };
                let signer = key_pair();
                let device_key = (
                    device.to_secret_bytes().to_vec(),
                    device.public().as_bytes().to_vec(),
                );
                let trust_kv: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
                let identity = person.credential_identity().to_vec();
                let engine = Engine::open(
                    config.clone(),
                    provider,
                    signer,
                    identity.clone(),
                    rng.r#gen(),
                )
                .expect("engine opens")
                .with_trust_store(TrustStore::new(trust_kv.clone()));
                let mut topics = BTreeSet::new();
                topics.insert(inbox_topic(&identity));
                Node {
                    name: name.to_string(),
                    identity,
                    engine,
                    signer: key_pair(),
                    events: Vec::new(),
                    topics,
                    kv,
                    side: 0,
                    has: BTreeSet::new(),
                    config: config.clone(),
                    device_key,
                    trust_kv,
                }
            })
            .collect();
        Self {
            nodes,
            now: NET_EPOCH_MS,
            rng,
            faults: Faults::default(),
            in_flight: Vec::new(),
            published: Vec::new(),
            trace: Sha256::new(),
            trace_lines: Vec::new(),
            changes_published: 0,
        }
    }

    pub fn with_policy(names: &[&str], policy: TieBreak, seed: u64) -> Self {
        Self::with_mode(names, policy, ConsistencyMode::default(), seed)
    }

    /// Engines whose groups use the consistency mode `consistency`.
    pub fn with_mode(
        names: &[&str],
        policy: TieBreak,
        consistency: ConsistencyMode,
        seed: u64,
    ) -> Self {
        Self::new(
            names,
            EngineConfig {
                policy,
                consistency,
                // Simulated time starts at a fixed date; keep its KeyPackages valid today.
                key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
                ..EngineConfig::default()
            },
            seed,
        )
    }

    /// The credential identity of `name`.
    pub fn identity(&self, name: &str) -> Vec<u8> {
        self.nodes[self.index(name)].identity.clone()
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    /// Moves every node's outputs onto the wire (and into the log for `sync`).
    pub fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(output) = self.nodes[i].engine.poll_output() {
                let line = match &output {
                    Output::Publish { topic, envelope } => {
                        let digest = Sha256::digest(envelope);
                        format!("{i} publish {topic} {}", hex::encode(&digest[..8]))
                    }
                    Output::Event(event) => format!("{i} {event:?}"),
                };
                self.trace.update(line.as_bytes());
                self.trace_lines.push(line);
                match output {
                    Output::Publish { topic, envelope } => {
                        let kind = Envelope::decode(&envelope, &WireLimits::default())
                            .map(|e| e.kind)
                            .ok();
                        if matches!(
                            kind,
                            Some(
                                EnvelopeKind::Handshake
                                    | EnvelopeKind::Welcome
                                    | EnvelopeKind::SequencerEcho
                            )
                        ) {
                            self.changes_published += 1;
                        }
                        let hash: [u8; 32] = Sha256::digest(&envelope).into();
                        self.nodes[i].has.insert(hash);
                        let side = self.nodes[i].side;
                        for (j, node) in self.nodes.iter().enumerate() {
                            if j != i && node.side == side && node.topics.contains(&topic) {
                                self.in_flight.push((j, envelope.clone()));
                            }
                        }
                        self.published.push((i, topic, envelope, hash));
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
            self.nodes[to].has.insert(Sha256::digest(&bytes).into());
            self.nodes[to].engine.handle_envelope(now, &bytes);
            self.collect();
        }
    }

    /// `name`'s process dies and starts again: a new engine over the same stores, holding
    /// what its steps stored and nothing of its memory. (Outputs were all taken by
    /// `collect`, as a node hands them on at the end of each round.)
    pub fn restart(&mut self, name: &str) {
        let i = self.index(name);
        let (provider_seed, engine_seed) = (self.rng.r#gen(), self.rng.r#gen());
        let node = &mut self.nodes[i];
        let provider = ChorusProvider::with_seed(node.kv.clone(), provider_seed);
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            node.device_key.0.clone(),
            node.device_key.1.clone(),
        );
        node.engine = Engine::open(
            node.config.clone(),
            provider,
            signer,
            node.identity.clone(),
            engine_seed,
        )
        .expect("engine reopens")
        .with_trust_store(TrustStore::new(node.trust_kv.clone()));
    }

    /// Drops everything in flight (a partition swallowed it).
    pub fn drop_in_flight(&mut self) {
        self.in_flight.clear();
    }

    /// Splits the nodes: each listed set becomes one side (unlisted nodes stay on side 0).
    /// Deliveries and `sync` only reach nodes on the publisher's side.
    pub fn partition(&mut self, sides: &[&[&str]]) {
        for (k, names) in sides.iter().enumerate() {
            for name in *names {
                let i = self.index(name);
                self.nodes[i].side = k as u8 + 1;
            }
        }
    }

    /// Puts every node back on one side.
    pub fn heal(&mut self) {
        for node in &mut self.nodes {
            node.side = 0;
        }
    }

    /// Anti-entropy: every node is handed what was published on its topics by a node on its
    /// side and is not in its log yet (what it missed), in random order, as gossip's
    /// reconciliation does; then delivery runs to quiescence.
    /// Repeats while new topics were joined, as a joiner syncs its new group topic.
    pub fn sync(&mut self) {
        loop {
            let before: usize = self.nodes.iter().map(|n| n.topics.len()).sum();
            self.sync_once();
            let after: usize = self.nodes.iter().map(|n| n.topics.len()).sum();
            if after == before {
                break;
            }
        }
    }

    fn sync_once(&mut self) {
        for (j, node) in self.nodes.iter().enumerate() {
            for (from, topic, bytes, hash) in &self.published {
                if node.topics.contains(topic)
                    && self.nodes[*from].side == node.side
                    && !node.has.contains(hash)
                {
                    self.in_flight.push((j, bytes.clone()));
                }
            }
        }
        let faults = self.faults;
        self.faults = Faults::default();
        self.deliver_all();
        self.faults = faults;
    }

    /// Advances time by `ms`, running each engine's timers when its `poll_timeout` says, in
    /// time order, and delivering what they publish before the next timer fires (as a network
    /// whose latency is small against the timers would).
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        let mut last_fired = None;
        loop {
            let now = self.now;
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.engine.poll_timeout())
                .map(|due| due.max(now))
                .filter(|due| *due <= end && last_fired.is_none_or(|last| *due > last))
                .min();
            let Some(at) = next else { break };
            self.now = at;
            for node in &mut self.nodes {
                if node.engine.poll_timeout().is_some_and(|due| due <= at) {
                    node.engine.handle_timeout(at);
                }
            }
            self.collect();
            self.deliver_all();
            last_fired = Some(at);
        }
        self.now = self.now.max(end);
    }

    pub fn group_of(&self, name: &str) -> GroupRef {
        let i = self.index(name);
        self.nodes[i].engine.groups().next().expect("in a group")
    }

    /// The envelopes `name` published, oldest first, with their topics.
    pub fn published_by(&self, name: &str) -> Vec<(String, Vec<u8>)> {
        let i = self.index(name);
        self.published
            .iter()
            .filter(|(from, _, _, _)| *from == i)
            .map(|(_, topic, bytes, _)| (topic.clone(), bytes.clone()))
            .collect()
    }

    /// The envelopes of `kind` that `name` published, oldest first.
    pub fn published_kind(&self, name: &str, kind: EnvelopeKind) -> Vec<Vec<u8>> {
        self.published_by(name)
            .into_iter()
            .map(|(_, bytes)| bytes)
            .filter(|bytes| {
                Envelope::decode(bytes, &WireLimits::default()).is_ok_and(|e| e.kind == kind)
            })
            .collect()
    }

    /// Hands `bytes` to `name` as if it came from the network, and collects the outputs.
    pub fn inject(&mut self, name: &str, bytes: &[u8]) {
        let i = self.index(name);
        let now = self.now;
        self.nodes[i].engine.handle_envelope(now, bytes);
        self.collect();
    }

    /// Hands `bytes` to `name` as gossip would, over a path a partition does not cut: its log
    /// then holds the envelope, so anti-entropy does not hand it over again.
    pub fn deliver_to(&mut self, name: &str, bytes: &[u8]) {
        let i = self.index(name);
        self.nodes[i].has.insert(Sha256::digest(bytes).into());
        self.inject(name, bytes);
    }

    /// Every key and value `name` has stored.
    pub fn stored(&self, name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.nodes[self.index(name)]
            .kv
            .scan_prefix(b"")
            .expect("memory store reads")
    }

    /// The hash of every output so far (node, output), in order.
    pub fn trace(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// What happened to every node, for failure messages: the events that matter for forks.
    pub fn story(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push_str(&format!("== {}\n", node.name));
            for event in &node.events {
                let line = match event {
                    Event::Message { .. } | Event::MembershipChanged { .. } => continue,
                    Event::EpochChanged {
                        epoch, branch_id, ..
                    } => {
                        format!("epoch {epoch} branch {}", hex::encode(&branch_id[..4]))
                    }
                    Event::BranchSwitched {
                        from,
                        to,
                        epoch,
                        resent,
                        reissued,
                        ..
                    } => format!(
                        "switched {from:?} -> {to:?} at epoch {epoch}, resent {}, reissued {reissued}",
                        resent.len()
                    ),
                    Event::ForkDetected { epoch, commits, .. } => {
                        format!("fork at epoch {epoch} ({} commits)", commits.len())
                    }
                    other => format!("{other:?}"),
                };
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }

    /// Names of the nodes.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// A fresh KeyPackage of `name`.
    pub fn key_package(&mut self, name: &str) -> Vec<u8> {
        let i = self.index(name);
        let now = self.now;
        self.nodes[i].engine.key_package(now).unwrap()
    }

    /// The MLS signature key pair of `name`'s device (for tests that forge what a node would
    /// not send).
    pub fn signer_of(&self, name: &str) -> SignatureKeyPair {
        let node = &self.nodes[self.index(name)];
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            node.device_key.0.clone(),
            node.device_key.1.clone(),
        )
    }

    /// The engine of `name`.
    pub fn engine(&self, name: &str) -> &Engine {
        &self.nodes[self.index(name)].engine
    }

    pub fn status(&self, name: &str, group: GroupRef) -> ds_p2p::engine::GroupStatus {
        let i = self.index(name);
        self.nodes[i]
            .engine
            .group_status(group)
            .expect("member of the group")
    }
}
