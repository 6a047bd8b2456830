//! The handle the rest of the program holds: async methods that send a command to the node's
//! task and await its answer. Cheap to clone; the task stops when the last handle is dropped
//! or [`NodeHandle::shutdown`] is called.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::config::{MAX_RECORD_KEY_BYTES, MAX_RECORD_VALUE_BYTES};
use super::error::NetError;
use super::metrics::MetricsText;
use crate::envelope_id::EnvelopeId;
use crate::topic::Topic;

/// What [`NodeHandle::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The envelope's id.
    pub id: EnvelopeId,
    /// Newly stored in the log (false when it was already there).
    pub stored: bool,
    /// Handed to gossipsub. False when no peer on the topic is known yet, or gossipsub had
    /// sent it already: the log holds it, and sync will carry it to peers.
    pub gossiped: bool,
}

/// A request to the node's task, with the channel for its answer.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe(Topic, oneshot::Sender<Result<bool, NetError>>),
    Unsubscribe(Topic, oneshot::Sender<Result<bool, NetError>>),
    Publish(Topic, Vec<u8>, oneshot::Sender<Result<Published, NetError>>),
    PublishMany(
        Vec<(Topic, Vec<u8>)>,
        oneshot::Sender<Vec<Result<Published, NetError>>>,
    ),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    AddExternalAddress(Multiaddr, oneshot::Sender<()>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    SyncNow(Topic, oneshot::Sender<Result<usize, NetError>>),
    Has(Topic, EnvelopeId, oneshot::Sender<Result<bool, NetError>>),
    PeerScore(PeerId, oneshot::Sender<Option<f64>>),
    PutRecord(Vec<u8>, Vec<u8>, oneshot::Sender<Result<(), NetError>>),
    GetRecord(Vec<u8>, oneshot::Sender<Result<Option<Vec<u8>>, NetError>>),
    DhtPeers(oneshot::Sender<Vec<PeerId>>),
    Shutdown(oneshot::Sender<()>),
}

/// Controls a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    metrics: MetricsText,
}

impl NodeHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        peer_id: PeerId,
        metrics: MetricsText,
    ) -> Self {
        Self {
            commands,
            peer_id,
            metrics,
        }
    }

    /// libp2p's own metrics (connections, bandwidth, protocols) in the OpenMetrics text
    /// format, for a `/metrics` endpoint (without the closing `# EOF`; see
    /// [`MetricsText::render`]).
    pub fn libp2p_metrics(&self) -> String {
        self.metrics.render()
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Subscribes to `topic`, and syncs it with the peers already known on it. True if newly
    /// subscribed.
    pub async fn subscribe(&self, topic: &Topic) -> Result<bool, NetError> {
        self.ask(|tx| Command::Subscribe(topic.clone(), tx)).await?
    }

    /// Unsubscribes from `topic`; its log entries stay until retention drops them. True if
    /// it was subscribed.
    pub async fn unsubscribe(&self, topic: &Topic) -> Result<bool, NetError> {
        self.ask(|tx| Command::Unsubscribe(topic.clone(), tx))
            .await?
    }

    /// Stores `envelope` in the log under `topic` with the current time and gossips it. Works
    /// without peers: sync delivers it once there are some.
    pub async fn publish(&self, topic: &Topic, envelope: Vec<u8>) -> Result<Published, NetError> {
        self.ask(|tx| Command::Publish(topic.clone(), envelope, tx))
            .await?
    }

    /// [`NodeHandle::publish`] for each envelope, in order, in one request to the node's task
    /// (one hand-over and one answer however many there are); one result per envelope.
    pub async fn publish_many(
        &self,
        envelopes: Vec<(Topic, Vec<u8>)>,
    ) -> Result<Vec<Result<Published, NetError>>, NetError> {
        self.ask(|tx| Command::PublishMany(envelopes, tx)).await
    }

    /// Starts dialling `addr`; `NetEvent::PeerConnected` reports success.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Announces `addr` as an address at which others reach this node (see
    /// `NetConfig::external_addresses`).
    pub async fn add_external_address(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|tx| Command::AddExternalAddress(addr, tx)).await
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(Command::Peers).await
    }

    /// Starts a sync session on `topic` with every connected peer on it; where a session
    /// with that peer is running already, a new one follows when it ends. Returns how many
    /// sessions were started or queued. Each session reports `NetEvent::SyncCompleted` or
    /// `NetEvent::SyncFailed` (so does a running one that a new one was queued behind).
    pub async fn sync_now(&self, topic: &Topic) -> Result<usize, NetError> {
        self.ask(|tx| Command::SyncNow(topic.clone(), tx)).await?
    }

    /// True when the log holds envelope `id` under `topic`.
    pub async fn has(&self, topic: &Topic, id: EnvelopeId) -> Result<bool, NetError> {
        self.ask(|tx| Command::Has(topic.clone(), id, tx)).await?
    }

    /// The gossipsub score this node gives `peer` (negative after invalid messages).
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetError> {
        self.ask(|tx| Command::PeerScore(peer, tx)).await
    }

    /// Stores `value` under `key` in the Kademlia DHT (on the closest peers, quorum one) and
    /// locally.
    ///
    /// Returns once the DHT query has ended: `Ok` when at least one peer stored the record,
    /// and also when the routing table held no peer to store it on at all (libp2p reports
    /// that as a failed quorum with no request sent): the record is then stored locally only,
    /// served to peers that look it up here and republished by Kademlia later. Fails with
    /// `NetError::Dht` when peers were tried and none accepted it, and `NetError::DhtTimeout`
    /// when none did within `NetConfig::kad_query_timeout`; the local copy stays either way.
    /// Keys over `MAX_RECORD_KEY_BYTES` and values over `MAX_RECORD_VALUE_BYTES` are refused
    /// before anything is stored or sent.
    ///
    /// Records are not authenticated: any peer may store another value under the same key.
    /// Callers must sign what they store, and check what they get.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), NetError> {
        check_record_key(&key)?;
        if value.len() > MAX_RECORD_VALUE_BYTES {
            return Err(NetError::RecordValueTooLarge {
                len: value.len(),
                max: MAX_RECORD_VALUE_BYTES,
            });
        }
        self.ask(|tx| Command::PutRecord(key, value, tx)).await?
    }

    /// Looks `key` up in the DHT (local store first); `Ok(None)` when no peer has it.
    ///
    /// Answers with the first record found (there may be other values under the key
    /// elsewhere). Fails with `NetError::DhtTimeout` when the query found nothing within
    /// `NetConfig::kad_query_timeout`, and with `NetError::RecordKeyTooLarge` for keys over
    /// `MAX_RECORD_KEY_BYTES` (nothing is sent).
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, NetError> {
        check_record_key(&key)?;
        self.ask(|tx| Command::GetRecord(key, tx)).await?
    }

    /// The peers in the Kademlia routing table: those a DHT query starts from.
    pub async fn dht_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(Command::DhtPeers).await
    }

    /// Stops the node and waits until its task has ended and released the log's store
    /// (so the same database can be opened again).
    pub async fn shutdown(self) -> Result<(), NetError> {
        self.ask(Command::Shutdown).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| NetError::NotRunning)?;
        rx.await.map_err(|_| NetError::NotRunning)
    }
}

fn check_record_key(key: &[u8]) -> Result<(), NetError> {
    if key.len() > MAX_RECORD_KEY_BYTES {
        return Err(NetError::RecordKeyTooLarge {
            len: key.len(),
            max: MAX_RECORD_KEY_BYTES,
        });
    }
    Ok(())
}
