//! A real three-member group for the engine target: alice creates it and invites bob and
//! carol, all with real MLS crypto over memory storage, deterministically from one seed. It is
//! built once per fuzzing process; every input then goes to a fresh copy of bob, opened from a
//! snapshot of his storage, so inputs cannot influence each other.
//!
//! The checks after each input (see [`Fixture::ingest`]):
//! - the engine never panics (libFuzzer reports a panic as a crash);
//! - it delivers no message that no member sent (nobody can forge MLS ciphertext);
//! - bob's state is not damaged: `probe`, a message alice sent after the snapshot, is still
//!   delivered afterwards, exactly once counting the fuzzed input itself (which may be a
//!   copy of the probe), and bob is still in the group with its three members and has not
//!   marked his join lost (no input can sign a beacon as a member: see `ingest`).

use std::collections::BTreeSet;
use std::sync::Arc;

use ds_p2p::engine::{Command, Engine, EngineConfig, Event, Output};
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{KvPair, KvStore, MemoryStore, WriteBatch};
use ds_p2p::wire::{GroupRef, inbox_topic};
use identity_tofu::{LocalIdentity, TrustStore};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The seed the group is built from.
pub const FIXTURE_SEED: u64 = 7;

/// The fixture's clock: 2026-01-01T00:00Z (KeyPackage lifetimes are checked against real
/// dates, so it must be one).
const START_MS: u64 = 1_767_225_600_000;

/// The body of the message that checks bob still works.
pub const PROBE_BODY: &[u8] = b"probe: bob still reads the group";

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;

fn engine_config() -> EngineConfig {
    EngineConfig {
        // The fixture's clock is fixed; keep its KeyPackages valid by the wall clock.
        key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
        ..EngineConfig::default()
    }
}

/// What it takes to open a member's engine again over a copy of its storage.
struct Keys {
    identity: Vec<u8>,
    device_secret: Vec<u8>,
    device_public: Vec<u8>,
    provider_seed: [u8; 32],
    engine_seed: u64,
}

impl Keys {
    fn open(&self, kv: MemoryStore, trust_kv: MemoryStore) -> Engine {
        let kv: Arc<dyn KvStore> = Arc::new(kv);
        let trust_kv: Arc<dyn KvStore> = Arc::new(trust_kv);
        let provider = ChorusProvider::with_seed(kv, self.provider_seed);
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            self.device_secret.clone(),
            self.device_public.clone(),
        );
        Engine::open(
            engine_config(),
            provider,
            signer,
            self.identity.clone(),
            self.engine_seed,
        )
        .expect("the fixture's engine opens")
        .with_trust_store(TrustStore::new(trust_kv))
    }
}

struct Member {
    keys: Keys,
    engine: Engine,
    kv: MemoryStore,
    trust_kv: MemoryStore,
    topics: BTreeSet<String>,
}

impl Member {
    fn create(name: &str, rng: &mut ChaCha20Rng) -> Self {
        let person = LocalIdentity::create(name, rng, START_MS).expect("a valid handle");
        let device = person.device_key();
        let keys = Keys {
            identity: person.credential_identity().to_vec(),
            device_secret: device.to_secret_bytes().to_vec(),
            device_public: device.public().as_bytes().to_vec(),
            provider_seed: rng.r#gen(),
            engine_seed: rng.r#gen(),
        };
        let kv = MemoryStore::new();
        let trust_kv = MemoryStore::new();
        let engine = keys.open(kv.clone(), trust_kv.clone());
        let topics = BTreeSet::from([inbox_topic(&keys.identity)]);
        Self {
            keys,
            engine,
            kv,
            trust_kv,
            topics,
        }
    }
}

/// Moves published envelopes to every other member on the topic (except `deaf`) until no one
/// publishes anything more; returns what was published, by whom.
fn route(members: &mut [Member], now: u64, deaf: Option<usize>) -> Vec<(usize, Vec<u8>)> {
    let mut published = Vec::new();
    loop {
        let mut wire = Vec::new();
        for (i, member) in members.iter_mut().enumerate() {
            while let Some(output) = member.engine.poll_output() {
                match output {
                    Output::Publish { topic, envelope } => wire.push((i, topic, envelope)),
                    Output::Event(Event::GroupJoined { group, .. }) => {
                        member.topics.insert(group.topic());
                    }
                    Output::Event(_) => {}
                }
            }
        }
        if wire.is_empty() {
            return published;
        }
        for (from, topic, envelope) in wire {
            for (j, member) in members.iter_mut().enumerate() {
                if j != from && Some(j) != deaf && member.topics.contains(&topic) {
                    member.engine.handle_envelope(now, &envelope);
                }
            }
            published.push((from, envelope));
        }
    }
}

/// A snapshot of a store's contents.
fn snapshot(store: &MemoryStore) -> Vec<KvPair> {
    store.scan_prefix(&[]).expect("a memory store scans")
}

fn restore(pairs: &[KvPair]) -> MemoryStore {
    let store = MemoryStore::new();
    let mut batch = WriteBatch::default();
    for (key, value) in pairs {
        batch.put(key, value);
    }
    store.write(batch).expect("a memory store writes");
    store
}

/// The group, bob's snapshot and the probe. See the module docs.
pub struct Fixture {
    group: GroupRef,
    now: u64,
    bob: Keys,
    bob_kv: Vec<KvPair>,
    bob_trust: Vec<KvPair>,
    /// (sender identity, body) of every message a member sent.
    sent: BTreeSet<(Vec<u8>, Vec<u8>)>,
    alice_identity: Vec<u8>,
    probe: Vec<u8>,
    /// Every envelope published while building the group and after the snapshot: Welcomes,
    /// commits, application messages and beacons, the seed corpus of the engine target.
    pub envelopes: Vec<Vec<u8>>,
}

impl Fixture {
    /// Builds the group from [`FIXTURE_SEED`]. Takes a few seconds (real MLS, unoptimised
    /// fuzzing build), once per process.
    pub fn build() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE_SEED);
        let mut members: Vec<Member> = ["alice", "bob", "carol"]
            .iter()
            .map(|name| Member::create(name, &mut rng))
            .collect();
        let mut now = START_MS;
        let mut envelopes = Vec::new();
        let mut sent = BTreeSet::new();

        members[ALICE]
            .engine
            .handle_command(now, Command::CreateGroup);
        envelopes.extend(route(&mut members, now, None).into_iter().map(|(_, e)| e));
        let group = members[ALICE]
            .engine
            .groups()
            .next()
            .expect("alice created a group");
        for joiner in [BOB, CAROL] {
            let key_package = members[joiner]
                .engine
                .key_package(now)
                .expect("a KeyPackage");
            members[ALICE].engine.handle_command(
                now,
                Command::Invite {
                    group,
                    key_package: key_package.clone(),
                },
            );
            envelopes.push(key_package);
            envelopes.extend(route(&mut members, now, None).into_iter().map(|(_, e)| e));
        }
        for (who, body) in [(ALICE, "hello from alice"), (CAROL, "hello from carol")] {
            send(&mut members, now, group, who, body.as_bytes(), &mut sent);
            envelopes.extend(route(&mut members, now, None).into_iter().map(|(_, e)| e));
        }
        // A beacon interval later, every member publishes a beacon.
        now += engine_config().beacon_interval_ms + 1;
        for member in members.iter_mut() {
            member.engine.handle_timeout(now);
        }
        envelopes.extend(route(&mut members, now, None).into_iter().map(|(_, e)| e));
        let status = members[BOB]
            .engine
            .group_status(group)
            .expect("bob is in the group");
        assert_eq!(status.members.len(), 3, "bob sees all three members");

        let bob_kv = snapshot(&members[BOB].kv);
        let bob_trust = snapshot(&members[BOB].trust_kv);

        // After the snapshot, with bob not listening: the probe, then a commit and a message
        // of the next epoch (valid inputs for bob's snapshot, for the corpus).
        send(&mut members, now, group, ALICE, PROBE_BODY, &mut sent);
        let probe = route(&mut members, now, Some(BOB))
            .into_iter()
            .find(|(from, _)| *from == ALICE)
            .map(|(_, envelope)| envelope)
            .expect("alice published the probe");
        envelopes.push(probe.clone());
        members[CAROL]
            .engine
            .handle_command(now, Command::SelfUpdate { group });
        envelopes.extend(
            route(&mut members, now, Some(BOB))
                .into_iter()
                .map(|(_, e)| e),
        );
        send(
            &mut members,
            now,
            group,
            CAROL,
            b"after the commit",
            &mut sent,
        );
        envelopes.extend(
            route(&mut members, now, Some(BOB))
                .into_iter()
                .map(|(_, e)| e),
        );

        let alice_identity = members[ALICE].keys.identity.clone();
        let bob = members.swap_remove(BOB).keys;
        Self {
            group,
            now,
            bob,
            bob_kv,
            bob_trust,
            sent,
            alice_identity,
            probe,
            envelopes,
        }
    }

    /// Feeds `input` to a fresh copy of bob as a received envelope, then the probe, and
    /// panics (a crash, for libFuzzer) if any check of the module docs fails.
    pub fn ingest(&self, input: &[u8]) {
        let mut bob = self
            .bob
            .open(restore(&self.bob_kv), restore(&self.bob_trust));
        let mut delivered = Vec::new();
        drain(&mut bob, &mut delivered);
        bob.handle_envelope(self.now, input);
        let join_lost = drain(&mut bob, &mut delivered);
        bob.handle_envelope(self.now, &self.probe);
        drain(&mut bob, &mut delivered);

        for message in &delivered {
            assert!(
                self.sent.contains(message),
                "delivered a message no member sent: {:?} from {}",
                String::from_utf8_lossy(&message.1),
                ds_p2p::engine::credentials::display_name(&message.0)
            );
        }
        let probes = delivered
            .iter()
            .filter(|(sender, body)| *sender == self.alice_identity && body == PROBE_BODY)
            .count();
        assert_eq!(
            probes, 1,
            "the probe was delivered {probes} times after this input (bob's state is damaged)"
        );
        let status = bob
            .group_status(self.group)
            .expect("bob is still in the group");
        // Found by this target (ds-p2p's test `a_forged_beacon_does_not_mark_a_join_lost`):
        // unsigned beacons let any input make bob believe his Add lost a fork. Beacons are
        // signed by a member now, and no fuzz input can sign as one, so a lost join is a
        // finding like any other eviction.
        assert!(!join_lost, "this input made bob mark his join lost");
        assert!(!status.evicted, "bob was evicted by this input");
        assert_eq!(status.members.len(), 3, "the group lost or gained a member");
    }
}

fn send(
    members: &mut [Member],
    now: u64,
    group: GroupRef,
    who: usize,
    body: &[u8],
    sent: &mut BTreeSet<(Vec<u8>, Vec<u8>)>,
) {
    members[who].engine.handle_command(
        now,
        Command::Send {
            group,
            body: body.to_vec(),
        },
    );
    sent.insert((members[who].keys.identity.clone(), body.to_vec()));
}

/// Takes the engine's outputs, keeping delivered messages as (sender, body); returns whether
/// it reported a lost join.
fn drain(engine: &mut Engine, delivered: &mut Vec<(Vec<u8>, Vec<u8>)>) -> bool {
    let mut join_lost = false;
    while let Some(output) = engine.poll_output() {
        match output {
            Output::Event(Event::Message { sender, body, .. }) => delivered.push((sender, body)),
            Output::Event(Event::JoinLost { .. }) => join_lost = true,
            _ => {}
        }
    }
    join_lost
}
