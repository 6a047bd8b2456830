//! What identifies one reconciliation session: its salt and its time window.

/// The parameters an initiator chooses for a session and repeats in every message, so the
/// responder needs no state between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session {
    /// Mixed into every fingerprint of the session. Draw it fresh from the node's (injected,
    /// seedable) RNG for each session: then nobody can prepare sets of envelopes whose
    /// fingerprints collide (see [`fingerprint`](super::fingerprint)).
    pub salt: [u8; 16],
    /// Only items with a timestamp at or after this are reconciled: both peers take their
    /// items from the same window, whatever their retention keeps beyond it.
    pub since_ms: u64,
}

impl Session {
    /// A session over the items since `since_ms`.
    pub fn new(salt: [u8; 16], since_ms: u64) -> Self {
        Self { salt, since_ms }
    }
}
