//! The libp2p network layer: a swarm that gossips envelopes per topic, stores every one in
//! the store-and-forward [`Log`](crate::Log), and catches up with peers through
//! `/chorus/sync/1` anti-entropy (DESIGN §5).
//!
//! ```text
//! let (node, mut events) = Node::start(NetConfig::default(), keypair, log, validator).await?;
//! node.subscribe(&topic).await?;
//! node.publish(&topic, envelope).await?;
//! while let Some(event) = events.recv().await { /* NetEvent::Received { .. } ... */ }
//! ```
//!
//! Every envelope that arrives, by pubsub or by sync, goes through one gate: size limit, the
//! caller's [`Validator`], then the log's idempotent append. Only a newly stored envelope is
//! reported (`NetEvent::Received`), so the consumer sees each envelope once however it came.
//! Pubsub messages are forwarded only after that gate said yes; garbage is reported to
//! gossipsub as `Reject`, which lowers the sender's peer score.
//!
//! Files, one job each:
//!
//! - [`config`]: `NetConfig` and its limits.
//! - [`frame`]: the pubsub frame (publisher's timestamp + envelope).
//! - [`validator`]: the caller's say over what is stored.
//! - `admit`: the gate.
//! - `behaviour`: the composed `NetworkBehaviour` and the configuration of each part.
//! - [`sync`]: the `/chorus/sync/1` protocol: wire, codec, initiator session, responder.
//! - [`node`] and [`handle`]: starting a node and controlling it; [`event`]: what it reports.
//! - [`metrics`]: libp2p's own metrics, rendered for Prometheus.
//! - [`peer_budget`]: how much pubsub traffic each peer may hand us.
//! - `regossip`: when an envelope published again may go out on pubsub again.
//! - `driver`, `swarm_events`, `commands`, `anti_entropy`, `dht`: the node's task, by input.
//!
//! NAT traversal: relay client (and optionally server), DCUtR and AutoNAT v2 are part of the
//! behaviour. Relayed connections are limited by libp2p (no gossipsub or sync streams on
//! them); envelopes flow once DCUtR has made a direct connection. Only reaching a node
//! through a relay is tested here (on loopback); hole punching needs real NATs.

mod admit;
mod anti_entropy;
mod ban;
mod behaviour;
mod commands;
pub mod config;
mod dht;
mod driver;
pub mod error;
pub mod event;
pub mod frame;
pub mod handle;
pub mod metrics;
pub mod node;
pub mod peer_budget;
mod regossip;
mod swarm_events;
pub mod sync;
pub mod validator;

pub use config::{MAX_RECORD_KEY_BYTES, MAX_RECORD_VALUE_BYTES, NetConfig, SyncConfig};
pub use error::NetError;
pub use event::{NetEvent, NetEvents, Via};
pub use handle::{NodeHandle, Published};
pub use metrics::MetricsText;
pub use node::Node;
pub use peer_budget::{BudgetVerdict, PeerBudgetConfig};
pub use validator::Validator;

/// Re-exported so that callers need not depend on libp2p to name peers, keys and addresses.
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
