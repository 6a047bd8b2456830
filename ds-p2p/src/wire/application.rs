//! The application payload: what a member writes, inside MLS.

use serde::{Deserialize, Serialize};

use super::WireLimits;
use super::envelope::{WireError, decode_limited, encode};

/// A message's id: 16 random bytes, chosen once and kept across re-sends. It also goes into
/// the MLS authenticated data, so receivers dedup and detect replays by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

/// The plaintext of an application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationPayload {
    pub id: MessageId,
    /// When the sender first sent it (its own clock), kept across re-sends.
    pub sent_at_ms: u64,
    pub body: Vec<u8>,
}

impl ApplicationPayload {
    /// The encoded bytes (the MLS plaintext).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode("application payload", self)
    }

    /// Decodes a decrypted plaintext, with the body limit applied before decoding.
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, WireError> {
        // id (16) + varint time (≤ 9) + varint length (≤ 9) + body.
        let max = limits.max_body_bytes + 34;
        decode_limited("application payload", bytes, max)
    }
}
