//! The caller's say over what enters the log.
//!
//! Gossip carries opaque bytes and knows nothing of MLS, but it must not store or forward
//! what the layer above cannot use: so every envelope that arrives, by pubsub or by sync, is
//! shown to a [`Validator`] first. Refused envelopes are not stored, not delivered, and on
//! pubsub are reported as `Reject`, which lowers the sender's gossipsub score.

use crate::topic::Topic;

/// Decides whether an envelope that arrived on `topic` is acceptable (typically: it decodes
/// as a Chorus envelope of a kind that belongs on that topic, within size limits).
///
/// Called on the node's task for every envelope not already in the log, so it should be
/// cheap; it must not block. Any `Fn(&Topic, &[u8]) -> bool` is a validator.
pub trait Validator: Send + 'static {
    /// True to accept `envelope`.
    fn validate(&self, topic: &Topic, envelope: &[u8]) -> bool;
}

impl<F> Validator for F
where
    F: Fn(&Topic, &[u8]) -> bool + Send + 'static,
{
    fn validate(&self, topic: &Topic, envelope: &[u8]) -> bool {
        self(topic, envelope)
    }
}
