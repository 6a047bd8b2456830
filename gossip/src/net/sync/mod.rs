//! `/chorus/sync/1`: anti-entropy over request-response (DESIGN §5).
//!
//! Gossipsub forgets after seconds, so a node that was away catches up here. The initiator
//! runs the range-based reconciliation of [`crate::reconcile`] against a peer's log for one
//! topic, then fetches the envelopes it lacks and pushes those the peer lacks. Envelopes that
//! arrive either way pass the same gate as pubsub (size, validator, log), so the consumer
//! sees each once, however it came.
//!
//! - [`wire`]: the request and response messages.
//! - [`codec`]: their length-prefixed framing on a stream, size-checked before reading.
//! - `session`: the initiator's state machine for one session.
//! - `serve`: the stateless responder.

pub mod codec;
pub(crate) mod serve;
pub(crate) mod session;
pub mod wire;

#[cfg(test)]
mod tests;

pub use codec::SyncCodec;
pub use session::{SyncError, SyncSummary};
pub use wire::{Refusal, SYNC_PROTOCOL, SyncRequest, SyncResponse, WireEnvelope};
