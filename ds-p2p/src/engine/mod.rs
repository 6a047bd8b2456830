//! The group engine: MLS over an eventually consistent DS, with a fork window and a
//! deterministic tie-breaker (DESIGN §4). Sans-IO: time comes in as `now_ms`, randomness from
//! an injected seeded RNG, effects go out through [`Engine::poll_output`].
//!
//! - [`api`]: configuration, commands, outputs and events.
//! - [`tie_break`]: the pluggable policies.
//! - [`fork_tree`]: the held branch states of a group and the head the policy prefers.
//! - [`record`]: what the engine stores per group next to the MLS state.
//! - `commit`, `receive`, `switch`, `timers`: the engine's steps.
//! - `heal`: healing forks that outlive the window (a partition longer than it).
//! - `beacon_auth`: which beacons are a member's word (they are signed; see `wire::beacon`).

pub mod api;
pub mod consistency;
pub mod fork_tree;
pub mod record;
pub mod tie_break;

mod beacon_auth;
mod commit;
pub mod credentials;
mod delivery;
mod group_state;
mod heal;
mod heal_schedule;
mod kept_outputs;
mod key_packages;
mod leave;
mod receive;
mod recipients;
mod redelivery_asks;
mod switch;
mod timers;
mod window_lists;

use std::collections::{BTreeMap, VecDeque};

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use api::{Command, EngineConfig, Event, Output, ResendPolicy};
pub use consistency::{ConsistencyMode, ConsistencyStatus};
pub use kept_outputs::PublishReceipt;
pub use key_packages::KeyPackageBundle;
pub use tie_break::{CommitFacts, TieBreak};

use crate::storage::{ChorusProvider, StorageError};
use crate::wire::{Envelope, EnvelopeKind, GroupRef};
use group_state::GroupRuntime;

/// The ciphersuite every Chorus group uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Why a step failed. Failed steps change no stored state.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Wire(#[from] crate::wire::WireError),
    #[error("unknown group {0}")]
    UnknownGroup(String),
    #[error("MLS: {0}")]
    Mls(String),
    #[error("{0}")]
    Refused(String),
    /// A credential that does not certify its signature key: refused by every member alike.
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// A message did not decrypt or verify against one held state (another may fit).
    #[error("does not fit this state: {0}")]
    NotThisState(String),
    /// An application message is for this state, but its sender's ratchet has moved past it
    /// (or its key was used already): no state will read it later either.
    #[error("{0}")]
    OutsideRatchetWindow(String),
}

pub(crate) fn mls_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Mls(e.to_string())
}

/// One member's engine: its MLS client, its groups, and what it has to say.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) provider: ChorusProvider,
    pub(crate) signer: SignatureKeyPair,
    pub(crate) credential: CredentialWithKey,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) groups: BTreeMap<GroupRef, GroupRuntime>,
    pub(crate) outputs: VecDeque<Output>,
    /// Which queued envelopes are kept in the store (`EngineConfig::confirm_publish`).
    pub(crate) ledger: kept_outputs::OutputLedger,
    /// TOFU records of the people met in groups; `None` checks certificates only.
    pub(crate) trust: Option<credentials::SharedTrustStore>,
    pub(crate) own_identity_key: identity_tofu::IdentityPublicKey,
    /// Hash refs of the last-resort KeyPackages this engine made (this process).
    pub(crate) last_resort_refs: Vec<Vec<u8>>,
    /// When the KeyPackages consumed by joins are deleted (a window after the last join);
    /// `Some(0)` after opening, so leftovers of an earlier run go at the first tick.
    pub(crate) retired_purge_due: Option<u64>,
    /// Per-group run-time state of the consistency modes (empty under accept-and-hold).
    pub(crate) consistency: BTreeMap<GroupRef, consistency::GroupConsistency>,
    /// Certificates whose signatures were verified (see `credentials`).
    pub(crate) verified_certificates: credentials::VerifiedCertificates,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("identity", &String::from_utf8_lossy(self.identity()))
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl Engine {
    /// An engine for the client whose MLS signature key is `signer` and whose credential
    /// identity is `identity` (its encoded device certificate, which must certify `signer`),
    /// storing through `provider`. Groups already in storage are loaded. `seed` drives every
    /// random choice the engine itself makes.
    pub fn open(
        config: EngineConfig,
        provider: ChorusProvider,
        signer: SignatureKeyPair,
        identity: Vec<u8>,
        seed: u64,
    ) -> Result<Self, EngineError> {
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity).into(),
            signature_key: signer.public().into(),
        };
        let own = credentials::check_credential(&credential.credential, signer.public())?;
        signer.store(provider.storage())?;
        let mut engine = Self {
            config,
            provider,
            signer,
            credential,
            rng: ChaCha20Rng::seed_from_u64(seed),
            groups: BTreeMap::new(),
            outputs: VecDeque::new(),
            ledger: kept_outputs::OutputLedger::default(),
            trust: None,
            own_identity_key: own.identity_key,
            last_resort_refs: Vec::new(),
            retired_purge_due: Some(0),
            consistency: BTreeMap::new(),
            verified_certificates: Default::default(),
        };
        for record in group_state::load_records(&engine.provider)? {
            let runtime = GroupRuntime::resume(record, &engine.provider)?;
            engine.groups.insert(runtime.group_ref, runtime);
        }
        engine.load_modes()?;
        engine.ledger = kept_outputs::OutputLedger::resume(engine.provider.mls_storage().staged())?;
        Ok(engine)
    }

    /// Shares `verified` (certificates whose signatures were verified) with other engines
    /// of this process: the simulator's engines verify each certificate once per run.
    pub fn with_verified_certificates(
        mut self,
        verified: credentials::VerifiedCertificates,
    ) -> Self {
        self.verified_certificates = verified;
        self
    }

    /// Records every credential met in groups in `trust` (TOFU) and reports key changes.
    pub fn with_trust_store(mut self, trust: credentials::SharedTrustStore) -> Self {
        self.trust = Some(trust);
        self
    }

    /// This member's credential identity.
    pub fn identity(&self) -> &[u8] {
        self.credential.credential.serialized_content()
    }

    /// The groups this engine is in.
    pub fn groups(&self) -> impl Iterator<Item = GroupRef> + '_ {
        self.groups.keys().copied()
    }

    /// The storage and crypto provider.
    pub fn provider(&self) -> &ChorusProvider {
        &self.provider
    }

    /// Feeds a user command.
    pub fn handle_command(&mut self, now_ms: u64, command: Command) {
        let group = command_group(&command);
        if let Err(e) = self.command(now_ms, command) {
            self.report(group, e);
        }
        if let Some(group) = group {
            self.enforce_max_held(now_ms, group);
        }
    }

    /// Feeds an envelope received from the network (any topic this node follows).
    pub fn handle_envelope(&mut self, now_ms: u64, bytes: &[u8]) {
        let envelope = match Envelope::decode(bytes, &self.config.limits) {
            Ok(e) => e,
            Err(e) => {
                self.emit(Event::Rejected {
                    group: None,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let group = envelope.group_ref;
        let result = match envelope.kind {
            EnvelopeKind::Welcome => self.receive_welcome(now_ms, &envelope),
            EnvelopeKind::Handshake => self.receive_handshake(now_ms, &envelope, bytes),
            EnvelopeKind::Application => self.receive_application(now_ms, &envelope, bytes),
            EnvelopeKind::Beacon => self.receive_beacon(now_ms, &envelope),
            EnvelopeKind::SequencerEcho => self.receive_echo(now_ms, &envelope),
            EnvelopeKind::GroupInfo => self.receive_heal_offer(now_ms, &envelope, bytes),
            EnvelopeKind::KeyPackage => Err(EngineError::Refused(format!(
                "{:?} envelopes are not for the group engine",
                envelope.kind
            ))),
        };
        if let Err(e) = result {
            self.report(Some(group), e);
        }
        self.enforce_max_held(now_ms, group);
    }

    /// Turns a failed step into the event that tells the user.
    fn report(&mut self, group: Option<GroupRef>, error: EngineError) {
        let event = match error {
            EngineError::InvalidCredential(reason) => Event::InvalidCredential { group, reason },
            other => Event::Rejected {
                group,
                reason: other.to_string(),
            },
        };
        self.emit(event);
    }

    /// The next thing the engine wants done or reported.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front()?;
        self.ledger.polled_one();
        Some(output)
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    pub(crate) fn publish(
        &mut self,
        group: GroupRef,
        kind: EnvelopeKind,
        payload: Vec<u8>,
    ) -> Result<(), EngineError> {
        let envelope = Envelope::new(kind, group, payload).encode()?;
        self.queue_publish(group, group.topic(), envelope)
    }

    /// Publishes an envelope of this member's on the group topic and remembers its id, so
    /// that its echo is not processed.
    pub(crate) fn publish_own(
        &mut self,
        group: GroupRef,
        kind: EnvelopeKind,
        payload: Vec<u8>,
    ) -> Result<(), EngineError> {
        self.publish_to(group.topic(), group, kind, payload)
    }

    /// Publishes an envelope for `group` on `topic` (the group's, or an inbox).
    pub(crate) fn publish_to(
        &mut self,
        topic: String,
        group: GroupRef,
        kind: EnvelopeKind,
        payload: Vec<u8>,
    ) -> Result<(), EngineError> {
        let envelope = Envelope::new(kind, group, payload).encode()?;
        if let Some(rt) = self.groups.get_mut(&group) {
            rt.own_envelopes.insert(Envelope::id_of(&envelope));
        }
        self.queue_publish(group, topic, envelope)
    }

    pub(crate) fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng.fill_bytes(&mut out);
        out
    }

    /// The active branch's epoch, branch id and members, for status and tests.
    pub fn group_status(&self, group: GroupRef) -> Option<GroupStatus> {
        let runtime = self.groups.get(&group)?;
        Some(runtime.status(&self.provider))
    }

    fn command(&mut self, now_ms: u64, command: Command) -> Result<(), EngineError> {
        match command {
            Command::CreateGroup => self.create_group(now_ms).map(|_| ()),
            Command::Send { group, body } => self.send(now_ms, group, body).map(|_| ()),
            Command::Invite { group, key_package } => self.invite(now_ms, group, key_package),
            Command::Remove { group, member } => self.remove(now_ms, group, member),
            Command::SelfUpdate { group } => self.self_update(now_ms, group),
            Command::Leave { group } => self.leave(now_ms, group),
        }
    }
}

/// What `group_status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub epoch: u64,
    pub branch_id: [u8; 16],
    pub members: Vec<Vec<u8>>,
    pub held_states: usize,
    /// Held states that are not the active head or one of its ancestors: competing branches
    /// still inside the window (0 when the group is not forked).
    pub off_branch: usize,
    pub active: crate::storage::BranchId,
    pub evicted: bool,
}

fn command_group(command: &Command) -> Option<GroupRef> {
    match command {
        Command::CreateGroup => None,
        Command::Send { group, .. }
        | Command::Invite { group, .. }
        | Command::Remove { group, .. }
        | Command::SelfUpdate { group }
        | Command::Leave { group } => Some(*group),
    }
}

pub(crate) fn wire_bytes(message: &MlsMessageOut) -> Result<Vec<u8>, EngineError> {
    use openmls::prelude::tls_codec::Serialize as _;
    message.tls_serialize_detached().map_err(mls_err)
}
