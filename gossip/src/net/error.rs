//! Why a network operation failed. Bad input from peers is never one of these: it is
//! rejected, logged and scored where it arrives, and the node carries on.

use crate::log::LogError;
use crate::topic::InvalidTopic;

/// A network error, as returned by `Node::start` and the `NodeHandle` methods.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is inconsistent.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(&'static str),
    /// The transport or a behaviour could not be built.
    #[error("cannot build the network stack: {0}")]
    Setup(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A dial could not be started.
    #[error("cannot dial: {0}")]
    Dial(String),
    /// The envelope is larger than the log accepts; nothing was stored or sent.
    #[error("envelope of {len} bytes exceeds the limit of {max} bytes")]
    EnvelopeTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope is not newer than what retention already dropped from the topic (the
    /// local clock is far behind), so it was not stored and not sent.
    #[error("envelope is older than the topic's retention floor")]
    Expired,
    /// Gossipsub refused a subscription or a message.
    #[error("pubsub: {0}")]
    Pubsub(String),
    /// A topic name from the network or the caller is not valid.
    #[error(transparent)]
    Topic(#[from] InvalidTopic),
    /// The store-and-forward log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The operation needs a subscription to the topic.
    #[error("not subscribed to {0}")]
    NotSubscribed(crate::topic::Topic),
    /// A DHT record key is longer than `MAX_RECORD_KEY_BYTES`; nothing was stored or sent.
    #[error("DHT record key of {len} bytes exceeds the limit of {max} bytes")]
    RecordKeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A DHT record value is larger than `MAX_RECORD_VALUE_BYTES`; nothing was stored or sent.
    #[error("DHT record value of {len} bytes exceeds the limit of {max} bytes")]
    RecordValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A DHT query ran out of time (`NetConfig::kad_query_timeout`): a get found no record
    /// before it, a put was stored on no peer before it (it is stored locally).
    #[error("the DHT query timed out")]
    DhtTimeout,
    /// A DHT operation failed: the local record store refused the record, or no peer
    /// accepted it although some were tried (it is stored locally).
    #[error("DHT: {0}")]
    Dht(String),
    /// The node's task has stopped (shut down, or it panicked).
    #[error("the network node is not running")]
    NotRunning,
    /// The node took longer than allowed to start listening.
    #[error("timed out waiting for listen addresses")]
    StartTimeout,
}
