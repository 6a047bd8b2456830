//! Real nodes on loopback for the tests, and waiting on what they report.
//!
//! A test never sleeps: it waits for a condition on what a node has reported so far, pumping
//! that node's events until the condition holds, and fails after [`TIMEOUT`]. Every event is
//! recorded on the way, so nothing a node reports is lost while waiting for something else
//! (which is what lets the tests count deliveries exactly).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gossip::net::{
    Keypair, Multiaddr, NetConfig, NetEvent, NetEvents, Node, NodeHandle, PeerId, Via,
};
use gossip::{EnvelopeId, Log, LogConfig, Topic};
use identity_tofu::kv::MemoryStore;

/// How long any one wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The topic the tests talk on.
pub fn topic() -> Topic {
    Topic::new("chorus/g/00112233445566778899aabbccddeeff").expect("valid topic")
}

/// What honest test nodes accept: envelopes that start with `chorus:`.
pub fn honest(_: &Topic, envelope: &[u8]) -> bool {
    envelope.starts_with(b"chorus:")
}

/// What a node reported so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every `Received`, in order: (id, envelope, from, via).
    pub received: Vec<(EnvelopeId, Vec<u8>, PeerId, Via)>,
    /// Every `Rejected`: (from, via, reason).
    pub rejected: Vec<(PeerId, Via, &'static str)>,
    pub connected: HashSet<PeerId>,
    /// Peers on each topic.
    pub subscribed: BTreeMap<Topic, HashSet<PeerId>>,
    /// Every `SyncCompleted`: (peer, pulled, pushed).
    pub synced: Vec<(PeerId, usize, usize)>,
    /// Every `SyncFailed`: (peer, reason).
    pub sync_failed: Vec<(PeerId, String)>,
    /// Every address the node reported listening on.
    pub listening: Vec<Multiaddr>,
}

impl Seen {
    fn record(&mut self, event: NetEvent) {
        match event {
            NetEvent::Received {
                id,
                envelope,
                from,
                via,
                ..
            } => self.received.push((id, envelope, from, via)),
            NetEvent::Rejected {
                from, via, reason, ..
            } => self.rejected.push((from, via, reason)),
            NetEvent::PeerConnected { peer } => {
                self.connected.insert(peer);
            }
            NetEvent::PeerDisconnected { peer } => {
                self.connected.remove(&peer);
            }
            NetEvent::PeerSubscribed { peer, topic } => {
                self.subscribed.entry(topic).or_default().insert(peer);
            }
            NetEvent::PeerUnsubscribed { peer, topic } => {
                self.subscribed.entry(topic).or_default().remove(&peer);
            }
            NetEvent::SyncCompleted {
                peer,
                pulled,
                pushed,
                ..
            } => self.synced.push((peer, pulled, pushed)),
            NetEvent::SyncFailed { peer, reason, .. } => self.sync_failed.push((peer, reason)),
            NetEvent::Listening { addr } => self.listening.push(addr),
        }
    }

    /// True when an envelope with these bytes was received.
    pub fn got(&self, envelope: &[u8]) -> bool {
        self.received.iter().any(|(_, e, _, _)| e == envelope)
    }

    /// True when `peer` is known to be on the test topic.
    pub fn on_topic(&self, peer: PeerId) -> bool {
        self.subscribed
            .get(&topic())
            .is_some_and(|peers| peers.contains(&peer))
    }

    /// Sync sessions with `peer` that ended, either way.
    pub fn sessions_with(&self, peer: PeerId) -> usize {
        let done = self.synced.iter().filter(|s| s.0 == peer).count();
        done + self.sync_failed.iter().filter(|s| s.0 == peer).count()
    }

    /// Panics if any envelope was delivered twice.
    pub fn assert_no_duplicates(&self) {
        let mut ids = HashSet::new();
        for (id, _, _, _) in &self.received {
            assert!(ids.insert(*id), "{id:?} was delivered twice: {self:?}");
        }
    }
}

/// A running node with its events and the store its log lives in (kept, so the node can be
/// stopped and started again over the same log).
pub struct TestNode {
    pub handle: NodeHandle,
    pub events: NetEvents,
    pub seen: Seen,
    pub store: Arc<MemoryStore>,
    pub keypair: Keypair,
    pub addr: Multiaddr,
}

impl TestNode {
    /// A fresh node on loopback with an empty log.
    pub async fn start(validator: fn(&Topic, &[u8]) -> bool) -> Self {
        Self::start_with(NetConfig::loopback(), validator).await
    }

    /// A fresh node with an empty log and this configuration.
    pub async fn start_with(config: NetConfig, validator: fn(&Topic, &[u8]) -> bool) -> Self {
        let store = Arc::new(MemoryStore::new());
        Self::start_over_with(config, store, Keypair::generate_ed25519(), validator).await
    }

    /// A node over an existing store and identity (a restart).
    pub async fn start_over(
        store: Arc<MemoryStore>,
        keypair: Keypair,
        validator: fn(&Topic, &[u8]) -> bool,
    ) -> Self {
        Self::start_over_with(NetConfig::loopback(), store, keypair, validator).await
    }

    async fn start_over_with(
        config: NetConfig,
        store: Arc<MemoryStore>,
        keypair: Keypair,
        validator: fn(&Topic, &[u8]) -> bool,
    ) -> Self {
        let log = Log::open(Arc::clone(&store), LogConfig::default()).expect("open log");
        let (handle, events) = Node::start(config, keypair.clone(), log, validator)
            .await
            .expect("node starts");
        let addr = handle
            .listen_addrs()
            .await
            .expect("running")
            .into_iter()
            .next()
            .expect("a listen address");
        Self {
            handle,
            events,
            seen: Seen::default(),
            store,
            keypair,
            addr,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.handle.peer_id()
    }

    /// Pumps events until `done` holds for what was seen; fails the test after [`TIMEOUT`].
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&Seen) -> bool) {
        let events = &mut self.events;
        let seen = &mut self.seen;
        let result = tokio::time::timeout(TIMEOUT, async {
            while !done(seen) {
                match events.recv().await {
                    Some(event) => seen.record(event),
                    None => panic!("node stopped while waiting for {what}"),
                }
            }
        })
        .await;
        if result.is_err() {
            panic!(
                "timed out waiting for {what}; seen so far: {:#?}",
                self.seen
            );
        }
    }

    /// Records every event already queued, without waiting.
    pub fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.seen.record(event);
        }
    }

    /// Subscribes to the test topic.
    pub async fn join(&self) {
        self.handle.subscribe(&topic()).await.expect("subscribe");
    }

    /// Publishes on the test topic; returns the envelope's id.
    pub async fn publish(&self, envelope: &[u8]) -> EnvelopeId {
        self.handle
            .publish(&topic(), envelope.to_vec())
            .await
            .expect("publish")
            .id
    }

    /// Runs a sync session with every peer on the test topic and waits until all finished.
    pub async fn sync_all(&mut self) {
        let before = self.seen.synced.len() + self.seen.sync_failed.len();
        let started = self.handle.sync_now(&topic()).await.expect("sync_now");
        self.wait_until("sync sessions to finish", |seen| {
            seen.synced.len() + seen.sync_failed.len() >= before + started
        })
        .await;
    }

    /// Stops the node, returning what is needed to start it again.
    pub async fn stop(self) -> (Arc<MemoryStore>, Keypair, Seen) {
        self.handle.shutdown().await.expect("shutdown");
        (self.store, self.keypair, self.seen)
    }
}

/// Two honest nodes on the test topic, connected (see [`connect`]).
pub async fn connected_pair() -> (TestNode, TestNode) {
    let mut a = TestNode::start(honest).await;
    let mut b = TestNode::start(honest).await;
    a.join().await;
    b.join().await;
    connect(&mut a, &mut b).await;
    (a, b)
}

/// Connects `a` to `b` and waits until each knows the other is on the test topic (both must
/// have joined it), which is when gossip between them works, and until the sync session
/// each starts with the other on joining has ended, so that later `sync_all` calls do not
/// race with them.
pub async fn connect(a: &mut TestNode, b: &mut TestNode) {
    let (pa, pb) = (a.peer_id(), b.peer_id());
    let (a_before, b_before) = (a.seen.sessions_with(pb), b.seen.sessions_with(pa));
    a.handle.dial(b.addr.clone()).await.expect("dial");
    a.wait_until("the peer on the topic and a first sync", |seen| {
        seen.on_topic(pb) && seen.sessions_with(pb) > a_before
    })
    .await;
    b.wait_until("the peer on the topic and a first sync", |seen| {
        seen.on_topic(pa) && seen.sessions_with(pa) > b_before
    })
    .await;
}
