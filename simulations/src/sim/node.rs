//! One simulated node: its identity, its durable store (survives crashes), its engine while
//! it is up, its clock offset and CPU, and its gossip state (subscriptions, seen ids, the
//! store-and-forward log, mesh peers).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ds_p2p::engine::credentials::VerifiedCertificates;
use ds_p2p::engine::{Engine, EngineConfig};
use ds_p2p::signature_memo::SignatureMemo;
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{KvStore, MemoryStore};
use identity_tofu::{LocalIdentity, TrustStore};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;

use super::ixset::IxSet;
use crate::error::SimError;
use crate::rng::SimRng;
use crate::scenario::NodeId;
use crate::time::Micros;

/// What the engines of one run share so that each signature and certificate is verified
/// once per run rather than once per engine (both pure functions of their bytes).
#[derive(Debug, Clone, Default)]
pub struct SharedVerifications {
    pub signatures: SignatureMemo,
    pub certificates: VerifiedCertificates,
}

/// Virtual time 0 on the engines' clocks: 2026-01-01T00:00Z. openmls checks KeyPackage
/// lifetimes against the wall clock, so engine time must be a real date.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

/// An envelope id (SHA-256 of its bytes).
pub type EnvId = [u8; 32];

/// An envelope's index in the simulator's table of envelopes: ids are interned, so what
/// every node keeps per envelope is 4 bytes (its log) and 2 bits (seen, processed).
pub type EnvIx = u32;

pub struct SimNode {
    pub id: NodeId,
    person: LocalIdentity,
    /// The credential identity (encoded device certificate).
    pub identity: Vec<u8>,
    /// The engine's store: kept across crashes.
    kv: Arc<dyn KvStore>,
    trust_kv: Arc<dyn KvStore>,
    /// Present while the node is up.
    pub engine: Option<Engine>,
    /// Bumped at every crash: work scheduled for an earlier incarnation is dropped.
    pub incarnation: u32,
    /// Clock offset in µs (engine time = virtual time + skew).
    pub skew: i64,
    /// The CPU is busy until then.
    pub busy_until: Micros,
    /// Work that arrived while the CPU was busy, in arrival order (with the incarnation it
    /// was meant for), run one item at a time as the CPU frees up.
    pub(crate) backlog: VecDeque<(u32, super::Work)>,
    /// An `Ev::Backlog` for this node is on the queue.
    pub(crate) backlog_scheduled: bool,
    /// When the engine's next timer is scheduled.
    pub timer_at: Option<Micros>,
    /// Topics followed (inbox and groups).
    pub topics: BTreeSet<String>,
    /// Envelopes the gossip layer has (in the log): durable.
    pub seen: IxSet,
    /// Envelopes the engine has processed: durable (a real node marks them with the engine
    /// step).
    pub processed: IxSet,
    /// The store-and-forward log per topic, in reconciliation order (the envelopes'
    /// [`Item`]s ascending: first-publication time, then id).
    pub log: BTreeMap<String, Vec<EnvIx>>,
    /// Recently received (time, envelope), for IHAVE gossip.
    pub recent: VecDeque<(Micros, EnvIx)>,
    /// Mesh peers per topic.
    pub mesh: BTreeMap<String, BTreeSet<NodeId>>,
}

impl SimNode {
    /// A node with a fresh identity drawn from `rng`, engine not yet open.
    pub fn new(id: NodeId, skew: i64, rng: &mut SimRng) -> Result<Self, SimError> {
        // Certified a day before time 0, so nodes whose clocks run behind still accept it.
        let person = LocalIdentity::create(&format!("n{id}"), rng.inner(), EPOCH_MS - 86_400_000)
            .map_err(|e| SimError::Engine {
            node: id,
            message: e.to_string(),
        })?;
        let identity = person.credential_identity().to_vec();
        let mut topics = BTreeSet::new();
        topics.insert(ds_p2p::wire::inbox_topic(&identity));
        Ok(Self {
            id,
            person,
            identity,
            kv: Arc::new(MemoryStore::new()),
            trust_kv: Arc::new(MemoryStore::new()),
            engine: None,
            incarnation: 0,
            skew,
            busy_until: 0,
            backlog: VecDeque::new(),
            backlog_scheduled: false,
            timer_at: None,
            topics,
            seen: IxSet::default(),
            processed: IxSet::default(),
            log: BTreeMap::new(),
            recent: VecDeque::new(),
            mesh: BTreeMap::new(),
        })
    }

    /// The inbox topic.
    pub fn inbox(&self) -> String {
        ds_p2p::wire::inbox_topic(&self.identity)
    }

    /// Opens (or reopens, after a crash) the engine over the node's store, with seeds drawn
    /// from `rng`.
    /// `memo`, when given, answers Ed25519 verifications another engine of the run made
    /// already, and certificates another engine verified (outcomes unchanged; see
    /// `ds_p2p::signature_memo` and `ds_p2p::engine::credentials::VerifiedCertificates`).
    pub fn open(
        &mut self,
        config: &EngineConfig,
        rng: &mut SimRng,
        memo: Option<&SharedVerifications>,
    ) -> Result<(), SimError> {
        let mut provider = ChorusProvider::with_seed(self.kv.clone(), rng.bytes32());
        if let Some(memo) = memo {
            provider = provider.with_signature_memo(memo.signatures.clone());
        }
        let device = self.person.device_key();
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            device.to_secret_bytes().to_vec(),
            device.public().as_bytes().to_vec(),
        );
        let engine = Engine::open(
            config.clone(),
            provider,
            signer,
            self.identity.clone(),
            rng.next_u64(),
        )
        .map_err(|e| SimError::Engine {
            node: self.id,
            message: e.to_string(),
        })?
        .with_trust_store(TrustStore::new(self.trust_kv.clone()));
        let engine = match memo {
            Some(memo) => engine.with_verified_certificates(memo.certificates.clone()),
            None => engine,
        };
        self.engine = Some(engine);
        Ok(())
    }

    /// True while the node runs.
    pub fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    /// The engine's clock at virtual time `t`, in ms.
    pub fn engine_now_ms(&self, t: Micros) -> u64 {
        let us = (EPOCH_MS * 1000) as i64 + t as i64 + self.skew;
        (us.max(0) as u64) / 1000
    }

    /// The virtual time at which the engine's clock reads `ms`.
    pub fn virtual_time_of(&self, ms: u64) -> Micros {
        let us = (ms * 1000) as i64 - (EPOCH_MS * 1000) as i64 - self.skew;
        us.max(0) as Micros
    }

    /// Crashes the node: the engine and all volatile work are gone, the store stays.
    pub fn crash(&mut self) {
        self.engine = None;
        self.incarnation += 1;
        self.timer_at = None;
        self.recent.clear();
        self.backlog.clear();
    }
}
