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

    /// Decodes a decrypted plaintext: the input is bounded by the body limit before decoding,
    /// and the body itself after.
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, WireError> {
        // id (16) + varint time (≤ 9) + varint length (≤ 9) + body.
        let max = limits.max_body_bytes + 34;
        let payload: Self = decode_limited("application payload", bytes, max)?;
        // The bound above leaves up to 16 bytes of slack when both varints are short; a sender
        // could fill it with body (found by the `application_payload` fuzz target).
        if payload.body.len() > limits.max_body_bytes {
            return Err(WireError::TooLarge {
                what: "message body",
                len: payload.body.len(),
                max: limits.max_body_bytes,
            });
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_body_bytes: usize) -> WireLimits {
        WireLimits {
            max_body_bytes,
            ..WireLimits::default()
        }
    }

    fn payload(body_len: usize) -> ApplicationPayload {
        ApplicationPayload {
            id: MessageId([0xff; 16]),
            sent_at_ms: 1,
            body: vec![b'x'; body_len],
        }
    }

    #[test]
    fn a_body_at_the_limit_decodes() {
        let bytes = payload(16).encode().unwrap();
        assert_eq!(
            ApplicationPayload::decode(&bytes, &limits(16)).unwrap(),
            payload(16)
        );
    }

    /// Regression (fuzz target `application_payload`): a body longer than the limit, within
    /// the slack the input bound leaves when the time is a one-byte varint, decoded.
    #[test]
    fn a_body_over_the_limit_is_refused_even_when_the_input_fits() {
        for body_len in [17, 20, 32] {
            let bytes = payload(body_len).encode().unwrap();
            assert!(
                bytes.len() <= 16 + 34,
                "the input itself is within its bound"
            );
            let err = ApplicationPayload::decode(&bytes, &limits(16)).unwrap_err();
            assert!(
                matches!(err, WireError::TooLarge { len, max: 16, .. } if len == body_len),
                "{body_len}: {err}"
            );
        }
    }

    /// The crashing input the fuzzer found, byte for byte.
    #[test]
    fn the_fuzzers_input_is_refused() {
        let mut bytes = vec![0xff; 16];
        bytes.extend([253, 255, 255, 255, 255, 255, 255, 255, 255, 17]);
        bytes.extend("héllo wörld ✓".as_bytes());
        let err = ApplicationPayload::decode(&bytes, &limits(16)).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");
    }
}
