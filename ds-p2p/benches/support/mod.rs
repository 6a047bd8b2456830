//! The two kinds of group member the benchmark compares — a bare openmls client on its
//! in-memory storage ([`Bare`]) and a Chorus [`Engine`] on the memory store or on RocksDB
//! ([`EngineMember`]) — and the people behind them: every member has a real device
//! certificate from `identity_tofu`, since the engine refuses anything else.

use std::sync::Arc;

use ds_p2p::engine::record::GroupRecord;
use ds_p2p::engine::{CIPHERSUITE, Command, Engine, EngineConfig, Event, Output};
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{Durability, KvStore, MemoryStore, RocksDb};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, WireLimits};
use identity_tofu::LocalIdentity;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use rand::Rng as _;
use rand_chacha::ChaCha20Rng;

/// A person with a device certificate: the MLS signer and credential of their device.
pub struct Person {
    pub signer: SignatureKeyPair,
    pub credential: CredentialWithKey,
    /// The credential identity: the encoded device certificate.
    pub identity: Vec<u8>,
}

impl Person {
    pub fn new(handle: &str, rng: &mut ChaCha20Rng, now_ms: u64) -> Self {
        let person = LocalIdentity::create(handle, rng, now_ms).expect("a valid handle");
        let device = person.device_key();
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            device.to_secret_bytes().to_vec(),
            device.public().as_bytes().to_vec(),
        );
        let identity = person.credential_identity().to_vec();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.clone()).into(),
            signature_key: signer.public().into(),
        };
        Self {
            signer,
            credential,
            identity,
        }
    }

    /// A KeyPackage of this person's, its private part kept in `provider`.
    pub fn key_package(&self, provider: &OpenMlsRustCrypto) -> KeyPackage {
        KeyPackage::builder()
            .build(CIPHERSUITE, provider, &self.signer, self.credential.clone())
            .expect("a KeyPackage")
            .key_package()
            .clone()
    }
}

/// The RFC 9420 bytes of an MLS message.
pub fn mls_bytes(message: &MlsMessageOut) -> Vec<u8> {
    message
        .tls_serialize_detached()
        .expect("MLS message serialises")
}

/// The RFC 9420 bytes of a KeyPackage.
pub fn key_package_bytes(key_package: KeyPackage) -> Vec<u8> {
    mls_bytes(&MlsMessageOut::from(key_package))
}

/// Parses and verifies a KeyPackage, as a receiver of one from the network has to.
pub fn parse_key_package(bytes: &[u8], provider: &OpenMlsRustCrypto) -> KeyPackage {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).expect("KeyPackage bytes");
    let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
        panic!("not a KeyPackage");
    };
    key_package
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .expect("a valid KeyPackage")
}

/// The group configuration the engine uses when it creates or joins a group.
pub fn join_config(max_past_epochs: usize) -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(max_past_epochs)
        .build()
}

fn protocol_message(bytes: &[u8]) -> ProtocolMessage {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .expect("MLS message bytes")
        .try_into_protocol_message()
        .expect("a protocol message")
}

/// A bare openmls client: `OpenMlsRustCrypto` (RustCrypto and openmls' in-memory storage).
pub struct Bare {
    pub person: Person,
    pub provider: OpenMlsRustCrypto,
    pub group: Option<MlsGroup>,
}

impl Bare {
    pub fn new(handle: &str, rng: &mut ChaCha20Rng, now_ms: u64) -> Self {
        Self {
            person: Person::new(handle, rng, now_ms),
            provider: OpenMlsRustCrypto::default(),
            group: None,
        }
    }

    pub fn key_package(&self) -> KeyPackage {
        self.person.key_package(&self.provider)
    }

    /// Creates a group configured like the engine's.
    pub fn create_group(&mut self, group_id: &[u8], max_past_epochs: usize) {
        let group = MlsGroup::builder()
            .with_group_id(GroupId::from_slice(group_id))
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(max_past_epochs)
            .build(
                &self.provider,
                &self.person.signer,
                self.person.credential.clone(),
            )
            .expect("group created");
        self.group = Some(group);
    }

    /// Adds everyone in one commit: (commit, Welcome) bytes.
    pub fn add_all(&mut self, key_packages: &[KeyPackage]) -> (Vec<u8>, Vec<u8>) {
        let group = self.group.as_mut().expect("in a group");
        let (commit, welcome, _) = group
            .add_members(&self.provider, &self.person.signer, key_packages)
            .expect("members added");
        group
            .merge_pending_commit(&self.provider)
            .expect("commit merged");
        (mls_bytes(&commit), mls_bytes(&welcome))
    }

    pub fn join(&mut self, welcome: &[u8], max_past_epochs: usize) {
        let message = MlsMessageIn::tls_deserialize_exact(welcome).expect("Welcome bytes");
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            panic!("not a Welcome");
        };
        let group = StagedWelcome::new_from_welcome(
            &self.provider,
            &join_config(max_past_epochs),
            welcome,
            None,
        )
        .expect("Welcome processed")
        .into_group(&self.provider)
        .expect("group joined");
        self.group = Some(group);
    }

    pub fn epoch(&self) -> u64 {
        self.group.as_ref().expect("in a group").epoch().as_u64()
    }

    pub fn leaf(&self) -> u32 {
        self.group
            .as_ref()
            .expect("in a group")
            .own_leaf_index()
            .u32()
    }

    /// Commits a fresh leaf key and merges it: the commit's bytes.
    pub fn self_update(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.person.signer);
        let group = self.group.as_mut().expect("in a group");
        let bundle = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .expect("self-update");
        group.merge_pending_commit(provider).expect("commit merged");
        let (commit, _, _) = bundle.into_messages();
        mls_bytes(&commit)
    }

    /// Adds the owner of a KeyPackage received as bytes: (commit, Welcome) bytes.
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key_package = parse_key_package(key_package, &self.provider);
        let (provider, signer) = (&self.provider, &self.person.signer);
        let group = self.group.as_mut().expect("in a group");
        let (commit, welcome, _) = group
            .add_members(provider, signer, &[key_package])
            .expect("member added");
        group.merge_pending_commit(provider).expect("commit merged");
        (mls_bytes(&commit), mls_bytes(&welcome))
    }

    /// Removes the member whose credential identity is `identity`: the commit's bytes.
    pub fn remove(&mut self, identity: &[u8]) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.person.signer);
        let group = self.group.as_mut().expect("in a group");
        let leaf = group
            .members()
            .find(|m| m.credential.serialized_content() == identity)
            .expect("a member")
            .index;
        let (commit, _, _) = group
            .remove_members(provider, signer, &[leaf])
            .expect("member removed");
        group.merge_pending_commit(provider).expect("commit merged");
        mls_bytes(&commit)
    }

    /// Processes and merges a commit received as bytes.
    pub fn process_commit(&mut self, bytes: &[u8]) {
        let message = protocol_message(bytes);
        let provider = &self.provider;
        let group = self.group.as_mut().expect("in a group");
        let processed = group
            .process_message(provider, message)
            .expect("commit processed");
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            panic!("not a commit");
        };
        group
            .merge_staged_commit(provider, *staged)
            .expect("commit merged");
    }

    /// Encrypts an application message with `aad` as its authenticated data.
    pub fn send(&mut self, aad: Vec<u8>, plaintext: &[u8]) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.person.signer);
        let group = self.group.as_mut().expect("in a group");
        group.set_aad(aad);
        let message = group
            .create_message(provider, signer, plaintext)
            .expect("message encrypted");
        mls_bytes(&message)
    }

    /// Decrypts an application message received as bytes.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<u8> {
        let message = protocol_message(bytes);
        let provider = &self.provider;
        let processed = self
            .group
            .as_mut()
            .expect("in a group")
            .process_message(provider, message)
            .expect("message decrypted");
        let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
            panic!("not an application message");
        };
        app.into_bytes()
    }

    /// Key and value bytes of everything in the client's storage.
    pub fn stored_bytes(&self) -> usize {
        let values = self.provider.storage().values.read().expect("storage lock");
        values.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// Where an engine keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    RocksDb,
}

/// What an engine step put out, with failures turned into panics: a benchmark that quietly
/// measures an error path is worthless.
#[derive(Debug, Default)]
pub struct Drained {
    /// Published envelopes: (kind, payload).
    pub published: Vec<(EnvelopeKind, Vec<u8>)>,
    pub events: Vec<Event>,
}

impl Drained {
    pub fn payload(&self, kind: EnvelopeKind) -> &[u8] {
        self.published
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_slice())
            .unwrap_or_else(|| panic!("no {kind:?} envelope published: {self:?}"))
    }

    pub fn epoch_changed(&self) -> u64 {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::EpochChanged { epoch, .. } => Some(*epoch),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no EpochChanged: {:?}", self.events))
    }
}

/// A Chorus engine, its store, and the group it is in.
pub struct EngineMember {
    pub engine: Engine,
    pub kv: Arc<dyn KvStore>,
    pub identity: Vec<u8>,
    pub group: Option<GroupRef>,
    /// Dropped after the engine and its store, and the directory after the database.
    _db: Option<Arc<RocksDb>>,
    _dir: Option<tempfile::TempDir>,
}

impl EngineMember {
    pub fn new(backend: Backend, handle: &str, rng: &mut ChaCha20Rng, now_ms: u64) -> Self {
        let person = Person::new(handle, rng, now_ms);
        let (kv, db, dir): (Arc<dyn KvStore>, _, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::new()), None, None),
            Backend::RocksDb => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let db = RocksDb::open(dir.path(), &["mls"], Durability::ProcessCrashSafe)
                    .expect("RocksDB opens");
                let store = db.store("mls").expect("the mls column family");
                (Arc::new(store), Some(db), Some(dir))
            }
        };
        let provider = ChorusProvider::with_seed(kv.clone(), rng.r#gen());
        let engine = Engine::open(
            EngineConfig::default(),
            provider,
            person.signer,
            person.identity.clone(),
            rng.r#gen(),
        )
        .expect("engine opens");
        Self {
            engine,
            kv,
            identity: person.identity,
            group: None,
            _db: db,
            _dir: dir,
        }
    }

    fn group_ref(&self) -> GroupRef {
        self.group.expect("in a group")
    }

    /// Takes everything the engine put out; panics on any sign of failure.
    pub fn drain(&mut self) -> Drained {
        let mut out = Drained::default();
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Publish { envelope, .. } => {
                    let envelope = Envelope::decode(&envelope, &WireLimits::default())
                        .expect("the engine publishes valid envelopes");
                    out.published.push((envelope.kind, envelope.payload));
                }
                Output::Event(event) => {
                    match &event {
                        Event::Rejected { .. }
                        | Event::InvalidCredential { .. }
                        | Event::KeyChanged { .. }
                        | Event::ForkDetected { .. }
                        | Event::ForkBeyondWindow { .. }
                        | Event::BranchSwitched { .. }
                        | Event::Removed { .. }
                        | Event::Dropped { .. } => {
                            panic!("the benchmark went off the happy path: {event:?}")
                        }
                        _ => {}
                    }
                    out.events.push(event);
                }
            }
        }
        out
    }

    /// The envelope an MLS message from another member arrives in.
    pub fn envelope(&self, kind: EnvelopeKind, payload: Vec<u8>) -> Vec<u8> {
        Envelope::new(kind, self.group_ref(), payload)
            .encode()
            .expect("envelope encodes")
    }

    /// Lets time pass and runs the engine's timers (pruning states past the window).
    pub fn settle(&mut self, now_ms: u64) {
        self.engine.handle_timeout(now_ms);
        self.drain();
    }

    pub fn status(&self) -> ds_p2p::engine::GroupStatus {
        self.engine
            .group_status(self.group_ref())
            .expect("in the group")
    }

    pub fn command(&mut self, now_ms: u64, command: Command) -> Drained {
        self.engine.handle_command(now_ms, command);
        self.drain()
    }

    pub fn self_update_command(&self) -> Command {
        Command::SelfUpdate {
            group: self.group_ref(),
        }
    }

    /// The engine's stored record of the group and its size in bytes (records live under the
    /// first byte `e`; only this group's is there).
    pub fn record(&self) -> (usize, GroupRecord) {
        let records = self.kv.scan_prefix(b"e").expect("store reads");
        assert_eq!(records.len(), 1, "one group record");
        let bytes = &records[0].1;
        let record = identity_tofu::codec::decode(bytes, 1 << 30).expect("the group record");
        (bytes.len(), record)
    }

    /// Key and value bytes of everything in the engine's store.
    pub fn stored_bytes(&self) -> usize {
        self.kv
            .scan_prefix(b"")
            .expect("store reads")
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum()
    }
}
