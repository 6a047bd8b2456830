//! Issue 3, "Speed": the group engine against bare openmls doing the same work, in one run.
//!
//! For each group size N (10, 100, 1000 members) three groups of N are built, alike but for
//! one member, the *receiver* R at leaf 2:
//! - `openmls`: R is a bare openmls client (`OpenMlsRustCrypto`: RustCrypto and openmls'
//!   in-memory storage);
//! - `engine_memory`: R is a Chorus [`Engine`] on `identity_tofu::kv::MemoryStore`;
//! - `engine_rocksdb`: R is an engine on RocksDB (`Durability::ProcessCrashSafe`).
//!
//! Each group is created by a bare creator in one commit adding everyone; every member has a
//! real device certificate (the engine checks them). A bare *sender* S sits at leaf 1. Before
//! measuring, one member in each subtree along R's copath (leaves 4, 8, 16, …) commits once,
//! then S, then R: the tree then looks like one whose members have been committing, so a
//! commit encrypts to about log2 N nodes rather than to every leaf of a fresh tree.
//!
//! Cases, in this order on each group (each leaves S and R where the next needs them):
//! - `app_receive`: R decrypts a 1 KiB application message from S (engine format: AAD = the
//!   message id, body = an encoded `ApplicationPayload`);
//! - `app_send`: R encrypts a 1 KiB application message;
//! - `process_commit`: R processes a self-update commit made by S (made untimed);
//! - `commit_self_update`: R commits a fresh leaf key;
//! - `commit_add`: R adds one member from KeyPackage bytes (parsed and verified, as received
//!   from the network); the one added before is removed untimed first, so N stays N.
//!
//! Only R's operation is timed. Between iterations simulated time moves on (a window plus a
//! millisecond around commits, so the engine prunes the states it held; a second around
//! messages, a busy chat) and the engine's timers run, untimed. Every engine output is checked:
//! a rejection or any other sign of the error path panics.
//!
//! Each case first runs a few interleaved rounds (one operation of each variant per round, in
//! rotating order), then criterion measures the three variants back to back. At the end a
//! table gives, per case and size, the median time per operation over criterion's samples (the
//! very durations criterion analysed), the ratios engine/openmls, and the median of the
//! per-round ratios of the interleaved rounds (robust to load that comes and goes on a shared
//! machine); then the bytes one held branch state costs, and what copying and loading the
//! whole state cost on their own.
//!
//! Run: `cargo bench --workspace --bench engine_vs_openmls`. `CHORUS_BENCH_QUICK=1` runs 10
//! and 100 members only; `CHORUS_BENCH_SIZES=10,1000` picks sizes. Under `cargo test` (no
//! `--bench`) each case runs once at 10 members.

mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use ds_p2p::engine::{Command, EngineConfig, Event};
use ds_p2p::wire::{
    ApplicationPayload, CommitRef, Envelope, EnvelopeKind, GroupRef, MessageId, WelcomeBundle,
};
use openmls::prelude::{GroupId, MlsGroup, OpenMlsProvider as _};
use openmls_rust_crypto::OpenMlsRustCrypto;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use support::{Backend, Bare, EngineMember, Person, key_package_bytes, parse_key_package};

/// The application message body.
const BODY: [u8; 1024] = [0x5a; 1024];
/// Simulated time between two application messages.
const MESSAGE_SPACING_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Openmls,
    EngineMemory,
    EngineRocksDb,
}

const VARIANTS: [Variant; 3] = [
    Variant::Openmls,
    Variant::EngineMemory,
    Variant::EngineRocksDb,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Openmls => "openmls",
            Variant::EngineMemory => "engine_memory",
            Variant::EngineRocksDb => "engine_rocksdb",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    CommitSelfUpdate,
    CommitAdd,
    ProcessCommit,
    AppSend,
    AppReceive,
}

/// The order the cases run in on each group.
const RUN_ORDER: [Case; 5] = [
    Case::AppReceive,
    Case::AppSend,
    Case::ProcessCommit,
    Case::CommitSelfUpdate,
    Case::CommitAdd,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::CommitSelfUpdate => "commit_self_update",
            Case::CommitAdd => "commit_add",
            Case::ProcessCommit => "process_commit",
            Case::AppSend => "app_send",
            Case::AppReceive => "app_receive",
        }
    }

    /// The goals of issue 3: (memory, RocksDB) as multiples of bare openmls.
    fn goal(self) -> (f64, f64) {
        match self {
            Case::CommitSelfUpdate | Case::CommitAdd | Case::ProcessCommit => (1.3, 2.0),
            Case::AppSend | Case::AppReceive => (1.15, 1.15),
        }
    }

    fn is_commit(self) -> bool {
        matches!(
            self,
            Case::CommitSelfUpdate | Case::CommitAdd | Case::ProcessCommit
        )
    }
}

/// The member under test.
enum Receiver {
    Bare(Box<Bare>),
    Engine(Box<EngineMember>),
}

/// One group of N, as seen from the sender S and the receiver R.
struct Fixture {
    variant: Variant,
    now: u64,
    /// Time between two commits: past the engine's window, so held states get pruned.
    commit_spacing_ms: u64,
    sender: Bare,
    receiver: Receiver,
    group_id: Vec<u8>,
    rng: ChaCha20Rng,
    /// Holds the private parts of the KeyPackages of members added by `commit_add`.
    joiners: OpenMlsRustCrypto,
    /// The member the last `commit_add` added, to remove before the next.
    added: Option<Vec<u8>>,
    joined: u64,
}

impl Fixture {
    fn build(n: usize, variant: Variant, start_ms: u64) -> Self {
        assert!(
            n >= 4,
            "a group of at least creator, sender, receiver and one more"
        );
        let started = Instant::now();
        let mut rng = ChaCha20Rng::seed_from_u64(0xC0_0000 + n as u64);
        let now = start_ms;
        let config = EngineConfig::default();
        let max_past = config.max_past_epochs;
        let mut creator = Bare::new("creator", &mut rng, now);
        let sender = Bare::new("sender", &mut rng, now);
        let mut receiver = match variant {
            Variant::Openmls => Receiver::Bare(Box::new(Bare::new("receiver", &mut rng, now))),
            Variant::EngineMemory => Receiver::Engine(Box::new(EngineMember::new(
                Backend::Memory,
                "receiver",
                &mut rng,
                now,
            ))),
            Variant::EngineRocksDb => Receiver::Engine(Box::new(EngineMember::new(
                Backend::RocksDb,
                "receiver",
                &mut rng,
                now,
            ))),
        };
        // One member in each subtree along R's (and S's) copath commits once below.
        let filler_leaves: Vec<u32> = (2..32)
            .map(|k| 1u32 << k)
            .take_while(|&leaf| (leaf as usize) < n)
            .collect();
        let mut fillers: Vec<Bare> = filler_leaves
            .iter()
            .map(|leaf| Bare::new(&format!("member {leaf}"), &mut rng, now))
            .collect();

        // KeyPackages in leaf order: S at 1, R at 2, then everyone else.
        let others = OpenMlsRustCrypto::default();
        let mut key_packages = Vec::with_capacity(n - 1);
        key_packages.push(sender.key_package());
        key_packages.push(match &mut receiver {
            Receiver::Bare(bare) => bare.key_package(),
            Receiver::Engine(member) => {
                let bytes = member.engine.key_package(now).expect("engine KeyPackage");
                parse_key_package(&bytes, &creator.provider)
            }
        });
        for leaf in 3..n as u32 {
            match filler_leaves.iter().position(|&l| l == leaf) {
                Some(i) => key_packages.push(fillers[i].key_package()),
                None => key_packages.push(
                    Person::new(&format!("member {leaf}"), &mut rng, now).key_package(&others),
                ),
            }
        }
        let group_id = rng.r#gen::<[u8; 16]>().to_vec();
        creator.create_group(&group_id, max_past);
        let (commit, welcome) = creator.add_all(&key_packages);
        drop(key_packages);
        drop(others);

        let mut fx = Self {
            variant,
            now,
            commit_spacing_ms: config.window_ms + 1,
            sender,
            receiver,
            group_id,
            rng,
            joiners: OpenMlsRustCrypto::default(),
            added: None,
            joined: 0,
        };
        fx.sender.join(&welcome, max_past);
        for filler in &mut fillers {
            filler.join(&welcome, max_past);
        }
        let group = GroupRef::of(&fx.group_id);
        match &mut fx.receiver {
            Receiver::Bare(bare) => bare.join(&welcome, max_past),
            Receiver::Engine(member) => {
                let bundle = WelcomeBundle {
                    commit_ref: CommitRef::of(&commit),
                    removes: 0,
                    adds: (n - 1) as u32,
                    welcome,
                    history: Vec::new(),
                };
                let payload = identity_tofu::codec::encode(&bundle).expect("bundle encodes");
                let envelope = Envelope::new(EnvelopeKind::Welcome, group, payload)
                    .encode()
                    .expect("envelope encodes");
                member.engine.handle_envelope(now, &envelope);
                let out = member.drain();
                assert!(
                    out.events
                        .iter()
                        .any(|e| matches!(e, Event::GroupJoined { .. })),
                    "the engine did not join: {out:?}"
                );
                member.group = Some(group);
                let status = member.status();
                assert_eq!(status.members.len(), n);
                assert_eq!(status.members[2], member.identity, "R is at leaf 2");
            }
        }
        assert_eq!(fx.sender.leaf(), 1);
        if let Receiver::Bare(bare) = &fx.receiver {
            assert_eq!(bare.leaf(), 2);
        }
        for (filler, &leaf) in fillers.iter().zip(&filler_leaves) {
            assert_eq!(filler.leaf(), leaf);
        }

        // Fill the copath: each filler commits once; then S, then R.
        for i in 0..fillers.len() {
            let commit = fillers[i].self_update();
            for later in &mut fillers[i + 1..] {
                later.process_commit(&commit);
            }
            fx.sender.process_commit(&commit);
            fx.receive_commit(&commit);
            fx.settle(fx.commit_spacing_ms);
        }
        drop(fillers);
        drop(creator);
        let commit = fx.sender.self_update();
        fx.receive_commit(&commit);
        fx.settle(fx.commit_spacing_ms);
        let commit = fx.receiver_self_update();
        fx.sender.process_commit(&commit);
        fx.settle(fx.commit_spacing_ms);
        assert_eq!(fx.sender.epoch(), fx.receiver_epoch());
        eprintln!(
            "built {} group of {n} at epoch {} in {:.1} s",
            variant.name(),
            fx.sender.epoch(),
            started.elapsed().as_secs_f64()
        );
        fx
    }

    /// Moves simulated time on and runs the engine's timers.
    fn settle(&mut self, spacing_ms: u64) {
        self.now += spacing_ms;
        if let Receiver::Engine(member) = &mut self.receiver {
            member.settle(self.now);
        }
    }

    fn receive_commit(&mut self, commit: &[u8]) {
        match &mut self.receiver {
            Receiver::Bare(bare) => bare.process_commit(commit),
            Receiver::Engine(member) => {
                let envelope = member.envelope(EnvelopeKind::Handshake, commit.to_vec());
                member.engine.handle_envelope(self.now, &envelope);
                member.drain().epoch_changed();
            }
        }
    }

    fn receiver_self_update(&mut self) -> Vec<u8> {
        match &mut self.receiver {
            Receiver::Bare(bare) => bare.self_update(),
            Receiver::Engine(member) => {
                let command = member.self_update_command();
                let out = member.command(self.now, command);
                out.payload(EnvelopeKind::Handshake).to_vec()
            }
        }
    }

    fn receiver_epoch(&self) -> u64 {
        match &self.receiver {
            Receiver::Bare(bare) => bare.epoch(),
            Receiver::Engine(member) => member.status().epoch,
        }
    }

    /// One timed operation of `case`, with its untimed preparation and checks.
    fn iteration(&mut self, case: Case) -> Duration {
        match case {
            Case::ProcessCommit => self.process_commit(),
            Case::AppReceive => self.app_receive(),
            Case::AppSend => self.app_send(),
            Case::CommitSelfUpdate => self.commit_self_update(),
            Case::CommitAdd => self.commit_add(),
        }
    }

    fn process_commit(&mut self) -> Duration {
        self.settle(self.commit_spacing_ms);
        let commit = self.sender.self_update();
        let expected = self.sender.epoch();
        let now = self.now;
        match &mut self.receiver {
            Receiver::Bare(bare) => {
                let start = Instant::now();
                bare.process_commit(black_box(&commit));
                let elapsed = start.elapsed();
                assert_eq!(bare.epoch(), expected);
                elapsed
            }
            Receiver::Engine(member) => {
                let envelope = member.envelope(EnvelopeKind::Handshake, commit);
                let start = Instant::now();
                member.engine.handle_envelope(now, black_box(&envelope));
                let elapsed = start.elapsed();
                assert_eq!(member.drain().epoch_changed(), expected);
                elapsed
            }
        }
    }

    fn app_receive(&mut self) -> Duration {
        self.settle(MESSAGE_SPACING_MS);
        let id = MessageId(self.rng.r#gen());
        let payload = ApplicationPayload {
            id,
            sent_at_ms: self.now,
            body: BODY.to_vec(),
        }
        .encode()
        .expect("payload encodes");
        let message = self.sender.send(id.0.to_vec(), &payload);
        let now = self.now;
        match &mut self.receiver {
            Receiver::Bare(bare) => {
                let start = Instant::now();
                let plaintext = bare.receive(black_box(&message));
                let elapsed = start.elapsed();
                assert_eq!(plaintext, payload);
                elapsed
            }
            Receiver::Engine(member) => {
                let envelope = member.envelope(EnvelopeKind::Application, message);
                let start = Instant::now();
                member.engine.handle_envelope(now, black_box(&envelope));
                let elapsed = start.elapsed();
                let out = member.drain();
                assert!(
                    out.events.iter().any(|e| matches!(
                        e,
                        Event::Message { id: got, body, .. } if *got == id && body[..] == BODY
                    )),
                    "message not delivered: {out:?}"
                );
                elapsed
            }
        }
    }

    fn app_send(&mut self) -> Duration {
        self.settle(MESSAGE_SPACING_MS);
        let now = self.now;
        match &mut self.receiver {
            Receiver::Bare(bare) => {
                let aad = self.rng.r#gen::<[u8; 16]>().to_vec();
                let start = Instant::now();
                let message = bare.send(aad, black_box(&BODY));
                let elapsed = start.elapsed();
                assert!(message.len() > BODY.len());
                elapsed
            }
            Receiver::Engine(member) => {
                let command = Command::Send {
                    group: member.group.expect("in a group"),
                    body: BODY.to_vec(),
                };
                let start = Instant::now();
                member.engine.handle_command(now, command);
                let elapsed = start.elapsed();
                let out = member.drain();
                assert!(out.payload(EnvelopeKind::Application).len() > BODY.len());
                elapsed
            }
        }
    }

    fn commit_self_update(&mut self) -> Duration {
        self.settle(self.commit_spacing_ms);
        let now = self.now;
        match &mut self.receiver {
            Receiver::Bare(bare) => {
                let start = Instant::now();
                let commit = bare.self_update();
                let elapsed = start.elapsed();
                black_box(commit);
                elapsed
            }
            Receiver::Engine(member) => {
                let command = member.self_update_command();
                let start = Instant::now();
                member.engine.handle_command(now, command);
                let elapsed = start.elapsed();
                let out = member.drain();
                out.payload(EnvelopeKind::Handshake);
                out.epoch_changed();
                elapsed
            }
        }
    }

    fn commit_add(&mut self) -> Duration {
        self.settle(self.commit_spacing_ms);
        if let Some(previous) = self.added.take() {
            match &mut self.receiver {
                Receiver::Bare(bare) => {
                    bare.remove(&previous);
                }
                Receiver::Engine(member) => {
                    let group = member.group.expect("in a group");
                    let out = member.command(
                        self.now,
                        Command::Remove {
                            group,
                            member: previous,
                        },
                    );
                    out.epoch_changed();
                }
            }
            self.settle(self.commit_spacing_ms);
        }
        self.joined += 1;
        let joiner = Person::new(&format!("joiner {}", self.joined), &mut self.rng, self.now);
        let key_package = key_package_bytes(joiner.key_package(&self.joiners));
        let now = self.now;
        let elapsed = match &mut self.receiver {
            Receiver::Bare(bare) => {
                let start = Instant::now();
                let (commit, welcome) = bare.add(black_box(&key_package));
                let elapsed = start.elapsed();
                black_box((commit, welcome));
                elapsed
            }
            Receiver::Engine(member) => {
                let command = Command::Invite {
                    group: member.group.expect("in a group"),
                    key_package,
                };
                let start = Instant::now();
                member.engine.handle_command(now, command);
                let elapsed = start.elapsed();
                let out = member.drain();
                out.payload(EnvelopeKind::Handshake);
                out.payload(EnvelopeKind::Welcome);
                elapsed
            }
        };
        self.added = Some(joiner.identity);
        elapsed
    }

    /// What one more held branch state costs in the engine's store, at the group's size, and
    /// what the two per-step whole-state operations of the engine cost on their own.
    fn held_state_cost(&mut self) -> Option<StateCost> {
        self.settle(self.commit_spacing_ms);
        let now = self.now;
        let group_id = GroupId::from_slice(&self.group_id);
        let Receiver::Engine(member) = &mut self.receiver else {
            return None;
        };
        let status = member.status();
        assert_eq!(status.held_states, 1, "settled to the active state alone");
        let base = member.stored_bytes();
        let (record, record_fields) = member.record();
        let provider = member.engine.provider();
        let storage = provider.mls_storage();
        // A copy of the active branch's MLS state, as the engine makes one per commit.
        let copy = storage
            .checkpoint(&group_id, status.active)
            .expect("checkpoint");
        let with_copy = member.stored_bytes();
        storage.prune(&group_id, copy).expect("prune");
        // The same copy as one storage step (as in the engine), and loading the `MlsGroup`
        // of the active branch from the store, timed alone.
        let mut checkpoint = Vec::new();
        let mut load = Vec::new();
        for _ in 0..COMPONENT_REPEATS {
            let start = Instant::now();
            let copy = provider
                .atomically(|p| p.mls_storage().checkpoint(&group_id, status.active))
                .expect("checkpoint");
            checkpoint.push(start.elapsed());
            storage.prune(&group_id, copy).expect("prune");
            let start = Instant::now();
            let group = MlsGroup::load(provider.storage(), &group_id)
                .expect("group loads")
                .expect("group stored");
            load.push(start.elapsed());
            black_box(group);
        }
        // One more held state through the engine: a self-update keeps the state it was made on.
        let command = member.self_update_command();
        member.command(now, command).epoch_changed();
        assert_eq!(member.status().held_states, 2);
        let with_held = member.stored_bytes();
        Some(StateCost {
            base,
            branch_copy: with_copy - base,
            engine_step: with_held - base,
            record,
            log_entries: record_fields.log.len(),
            seen: record_fields.seen.len(),
            checkpoint: median(&mut checkpoint),
            load: median(&mut load),
        })
    }

    fn bare_state_bytes(&self) -> Option<usize> {
        match &self.receiver {
            Receiver::Bare(bare) => Some(bare.stored_bytes()),
            Receiver::Engine(_) => None,
        }
    }
}

/// Store bytes (keys and values) around one extra held state.
#[derive(Debug, Clone, Copy)]
struct StateCost {
    /// Everything stored with one held state.
    base: usize,
    /// A raw copy of the active branch's MLS state.
    branch_copy: usize,
    /// The growth when the engine holds one more state (the copy plus its record entry).
    engine_step: usize,
    /// The engine's group record (re-encoded and written by every step).
    record: usize,
    /// Entries in the record's commit log (one per commit so far: it is not pruned).
    log_entries: usize,
    /// Message ids in the record's dedup set.
    seen: usize,
    /// Copying the active state into a new branch, as one storage step.
    checkpoint: Duration,
    /// Loading the active branch's `MlsGroup` from the store.
    load: Duration,
}

/// How often the whole-state operations are timed on their own.
const COMPONENT_REPEATS: usize = 5;

fn median(durations: &mut [Duration]) -> Duration {
    durations.sort();
    durations[durations.len() / 2]
}

/// (iterations, total timed duration) of each call criterion made, warm-up first.
type Samples = Vec<(u64, Duration)>;

#[derive(Default)]
struct Results {
    samples: BTreeMap<(Case, usize, Variant), (usize, Samples)>,
    /// Interleaved rounds: one operation of each variant per round, in rotating order.
    paired: BTreeMap<(Case, usize), Vec<[Duration; 3]>>,
    state_costs: BTreeMap<(usize, Variant), StateCost>,
    bare_state: BTreeMap<usize, usize>,
}

impl Results {
    /// The median time per operation over criterion's measured samples (the last
    /// `sample_size` calls; earlier ones were warm-up).
    fn median(&self, key: &(Case, usize, Variant)) -> Option<f64> {
        let (sample_size, samples) = self.samples.get(key)?;
        let measured = &samples[samples.len().saturating_sub(*sample_size)..];
        let mut per_op: Vec<f64> = measured
            .iter()
            .filter(|(iters, _)| *iters > 0)
            .map(|(iters, total)| total.as_secs_f64() / *iters as f64)
            .collect();
        if per_op.is_empty() {
            return None;
        }
        per_op.sort_by(f64::total_cmp);
        let mid = per_op.len() / 2;
        Some(if per_op.len() % 2 == 1 {
            per_op[mid]
        } else {
            (per_op[mid - 1] + per_op[mid]) / 2.0
        })
    }

    /// The median over interleaved rounds of (engine variant time / openmls time) in the
    /// same round: insensitive to load that changes between rounds.
    fn paired_ratio(&self, key: &(Case, usize), variant: Variant) -> Option<f64> {
        let rounds = self.paired.get(key)?;
        let column = VARIANTS.iter().position(|&v| v == variant)?;
        let mut ratios: Vec<f64> = rounds
            .iter()
            .filter(|r| r[0] > Duration::ZERO)
            .map(|r| r[column].as_secs_f64() / r[0].as_secs_f64())
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        Some(ratios[ratios.len() / 2])
    }

    fn print(&self, sizes: &[usize], benchmarking: bool) {
        println!();
        println!("== Engine vs bare openmls, one run ==");
        if !benchmarking {
            println!("(test mode: one operation each, not a measurement; run `cargo bench`)");
        }
        println!(
            "time: median time per operation over criterion's samples; x: that time / openmls'; \
             paired: median over interleaved rounds of (engine / openmls) in the same round"
        );
        println!(
            "{:<19} {:>5} {:>10} | {:>10} {:>6} {:>6} {:>4} | {:>10} {:>6} {:>6} {:>4} | goal mem / rocks",
            "case", "N", "openmls", "memory", "x", "paired", "", "rocksdb", "x", "paired", ""
        );
        let order = [
            Case::CommitSelfUpdate,
            Case::CommitAdd,
            Case::ProcessCommit,
            Case::AppSend,
            Case::AppReceive,
        ];
        for case in order {
            for &n in sizes {
                let bare = self.median(&(case, n, Variant::Openmls));
                let (goal_memory, goal_rocks) = case.goal();
                let mut cells = Vec::new();
                for (variant, goal) in [
                    (Variant::EngineMemory, goal_memory),
                    (Variant::EngineRocksDb, goal_rocks),
                ] {
                    let time = self.median(&(case, n, variant));
                    let ratio = match (time, bare) {
                        (Some(t), Some(b)) if b > 0.0 => Some(t / b),
                        _ => None,
                    };
                    let paired = self.paired_ratio(&(case, n), variant);
                    let verdict = match ratio {
                        Some(r) if r <= goal => "ok",
                        Some(_) => "OVER",
                        None => "",
                    };
                    cells.push(format!(
                        "{:>10} {:>6} {:>6} {:>4}",
                        fmt_time(time),
                        fmt_ratio(ratio),
                        fmt_ratio(paired),
                        verdict
                    ));
                }
                if bare.is_none() && !self.paired.contains_key(&(case, n)) {
                    continue;
                }
                println!(
                    "{:<19} {:>5} {:>10} | {} | {} | <={goal_memory:.2}x / <={goal_rocks:.2}x",
                    case.name(),
                    n,
                    fmt_time(bare),
                    cells[0],
                    cells[1],
                );
            }
        }
        if !self.state_costs.is_empty() {
            println!();
            println!("== One held branch state, and the engine's whole-state operations ==");
            println!(
                "stored: key+value bytes in the engine's store with one held state; copy: bytes one \
                 more held state adds (a checkpoint of the active branch); +1 held: growth when the \
                 engine holds one more state after a self-update; openmls: the bare client's store; \
                 record: the engine's group record (log: its commit log entries, seen: its \
                 message ids); checkpoint / load: one whole-state copy as a \
                 storage step / one MlsGroup::load, median of {COMPONENT_REPEATS}"
            );
            println!(
                "{:<15} {:>5} {:>11} {:>11} {:>11} {:>11} {:>10} {:>6} {:>5} {:>10} {:>10}",
                "variant",
                "N",
                "stored",
                "copy",
                "+1 held",
                "openmls",
                "record",
                "log",
                "seen",
                "checkpoint",
                "load"
            );
            for (&(n, variant), cost) in &self.state_costs {
                println!(
                    "{:<15} {:>5} {:>11} {:>11} {:>11} {:>11} {:>10} {:>6} {:>5} {:>10} {:>10}",
                    variant.name(),
                    n,
                    fmt_bytes(cost.base),
                    fmt_bytes(cost.branch_copy),
                    fmt_bytes(cost.engine_step),
                    self.bare_state
                        .get(&n)
                        .map(|b| fmt_bytes(*b))
                        .unwrap_or_else(|| "-".into()),
                    fmt_bytes(cost.record),
                    cost.log_entries,
                    cost.seen,
                    fmt_time(Some(cost.checkpoint.as_secs_f64())),
                    fmt_time(Some(cost.load.as_secs_f64())),
                );
            }
        }
        println!();
        if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
            println!("load average at the end (2 shared cores): {}", load.trim());
        }
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

fn fmt_time(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s >= 1.0 => format!("{s:.2} s"),
        Some(s) if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        Some(s) => format!("{:.1} us", s * 1e6),
    }
}

fn fmt_bytes(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// The group sizes to run: all three, 10 and 100 with `CHORUS_BENCH_QUICK=1`, the list in
/// `CHORUS_BENCH_SIZES`, or 10 alone when run as a test (`cargo test --benches`).
fn sizes(benchmarking: bool) -> Vec<usize> {
    if !benchmarking {
        return vec![10];
    }
    if let Ok(list) = std::env::var("CHORUS_BENCH_SIZES") {
        return list
            .split(',')
            .map(|s| s.trim().parse().expect("CHORUS_BENCH_SIZES: numbers"))
            .collect();
    }
    if std::env::var("CHORUS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") {
        return vec![10, 100];
    }
    vec![10, 100, 1000]
}

fn run(c: &mut Criterion, results: &mut Results) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes = sizes(benchmarking);
    // openmls checks KeyPackage lifetimes against the wall clock: simulated time starts now.
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    for &n in &sizes {
        let mut fixtures: Vec<Fixture> = VARIANTS
            .iter()
            .map(|&variant| Fixture::build(n, variant, start_ms))
            .collect();
        for case in RUN_ORDER {
            // Interleaved rounds first: one operation per variant per round, the order rotating.
            let rounds = match (benchmarking, n) {
                (false, _) => 1,
                (true, n) if n >= 1000 => 12,
                (true, _) => 30,
            };
            let started = Instant::now();
            let mut paired = Vec::with_capacity(rounds);
            for round in 0..rounds {
                let mut times = [Duration::ZERO; 3];
                for k in 0..VARIANTS.len() {
                    let v = (round + k) % VARIANTS.len();
                    times[v] = fixtures[v].iteration(case);
                }
                paired.push(times);
            }
            results.paired.insert((case, n), paired);
            eprintln!(
                "{}/{n}: {rounds} interleaved rounds in {:.1} s",
                case.name(),
                started.elapsed().as_secs_f64()
            );

            let mut group = c.benchmark_group(case.name());
            let sample_size = if n >= 1000 { 10 } else { 20 };
            group
                .sample_size(sample_size)
                .warm_up_time(Duration::from_millis(if n >= 1000 { 1500 } else { 1000 }))
                .measurement_time(Duration::from_secs(3));
            if case.is_commit() || n >= 1000 {
                group.sampling_mode(SamplingMode::Flat);
            }
            // The variants of one case run back to back, so they share the machine's mood.
            for fixture in &mut fixtures {
                let mut samples = Samples::new();
                group.bench_function(BenchmarkId::new(fixture.variant.name(), n), |b| {
                    b.iter_custom(|iters| {
                        let total = (0..iters).map(|_| fixture.iteration(case)).sum();
                        samples.push((iters, total));
                        total
                    })
                });
                results
                    .samples
                    .insert((case, n, fixture.variant), (sample_size, samples));
            }
            group.finish();
        }
        for fixture in &mut fixtures {
            if let Some(cost) = fixture.held_state_cost() {
                results.state_costs.insert((n, fixture.variant), cost);
            }
            if let Some(bytes) = fixture.bare_state_bytes() {
                results.bare_state.insert(n, bytes);
            }
        }
    }
    results.print(&sizes, benchmarking);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::default();
    run(&mut criterion, &mut results);
    criterion.final_summary();
}
