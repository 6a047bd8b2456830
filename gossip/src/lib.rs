//! # gossip
//!
//! The Chorus network layer (DESIGN §5). It carries opaque envelope bytes and knows nothing of
//! MLS. Gossipsub keeps only seconds of history, so every node also keeps an append-only
//! store-and-forward log per topic and runs anti-entropy sync with its peers: the two peers
//! reconcile the sets of envelope ids they hold, then transfer what is missing.
//!
//! The reconciliation core and the log are sans-IO, so the simulator runs them too; the
//! libp2p half ([`net`]) drives them over a real swarm: gossipsub for live delivery, the
//! `/chorus/sync/1` request-response protocol for anti-entropy, Kademlia, identify, ping and
//! mDNS for finding peers.
//!
//! Modules, one idea each:
//!
//! - [`topic`]: a validated pubsub topic name and the fixed-size key it is stored under.
//! - [`envelope_id`]: the id of an envelope, SHA-256 of its bytes.
//! - [`codec`]: the bincode 2 codec for gossip-defined bytes, size-limited before decoding.
//! - [`log`]: the store-and-forward log per topic over a `KvStore`: append (idempotent by id),
//!   get, range listing in (timestamp, id) order, retention by age and by bytes.
//! - [`reconcile`]: range-based set reconciliation between two peers' sets of
//!   (timestamp, id) items, as sans-IO `Initiator` and `Responder` state machines.
//! - [`net`]: the libp2p node: `Node::start` spawns the swarm on a tokio task and returns a
//!   `NodeHandle` (subscribe, publish, dial, sync now) and a stream of `NetEvent`s; every
//!   envelope that arrives passes the caller's validator and is stored in the log, and each
//!   is reported once however it came.
//!
//! Outside [`net`], nothing reads a clock or draws randomness: times and the session salt are
//! arguments, so the simulator replays runs from a seed. [`net`] is the IO layer that supplies
//! them.

pub mod codec;
pub mod envelope_id;
pub mod log;
pub mod net;
pub mod reconcile;
pub mod topic;

#[cfg(test)]
mod test_support;

pub use envelope_id::EnvelopeId;
pub use log::{Appended, Entry, Evicted, Log, LogConfig, LogError, Retention, TopicStats};
pub use reconcile::{
    Initiator, Item, ItemSource, Outcome, Progress, ReconcileConfig, ReconcileError, Request,
    Responder, Session, SortedItems,
};
pub use topic::{InvalidTopic, Topic};
