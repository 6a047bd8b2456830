//! What the node tells its consumer.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::envelope_id::EnvelopeId;
use crate::topic::Topic;

/// How an envelope arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Live, on pubsub.
    Gossip,
    /// Through anti-entropy sync (the node was away, or gossip missed it).
    Sync,
}

/// An event of the node.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// An envelope was newly stored in the log. Each envelope is reported once, however many
    /// times and ways it arrives; the node's own publishes are not reported.
    Received {
        /// Its topic.
        topic: Topic,
        /// Its id.
        id: EnvelopeId,
        /// The envelope.
        envelope: Vec<u8>,
        /// The timestamp it was stored under: the sender's, clamped to the local clock.
        timestamp_ms: u64,
        /// The peer it came from (the forwarding peer on pubsub, the sync peer on sync).
        from: PeerId,
        /// How it came.
        via: Via,
    },
    /// A peer sent an envelope that the validator or the size limit refused (or, on pubsub,
    /// a message that is not a frame). It was not stored; on pubsub the peer's score dropped.
    Rejected {
        /// The topic it came on.
        topic: Topic,
        /// The peer it came from.
        from: PeerId,
        /// How it came.
        via: Via,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The first connection to a peer opened.
    PeerConnected {
        /// The peer.
        peer: PeerId,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A connected peer subscribed to a topic.
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A connected peer unsubscribed from a topic.
    PeerUnsubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A sync session this node initiated finished.
    SyncCompleted {
        /// The topic.
        topic: Topic,
        /// The peer.
        peer: PeerId,
        /// Envelopes newly stored from the peer (each was also reported as `Received`).
        pulled: usize,
        /// Envelopes the peer newly stored from us.
        pushed: usize,
    },
    /// A sync session this node initiated ended early; envelopes already pulled are kept.
    SyncFailed {
        /// The topic.
        topic: Topic,
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The node listens on a new address.
    Listening {
        /// The address.
        addr: Multiaddr,
    },
}

/// The stream of events. Unbounded on purpose: the node's task never waits on its consumer,
/// so a consumer that awaits a `NodeHandle` call while events pile up cannot deadlock it.
/// What can pile up is bounded by what the log accepts.
pub type NetEvents = mpsc::UnboundedReceiver<NetEvent>;
