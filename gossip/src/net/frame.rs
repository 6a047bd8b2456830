//! The pubsub frame: an envelope and the publisher's send time, as one gossipsub message.
//!
//! The time travels with the envelope because reconciliation compares ranges of
//! (timestamp, id): if every node filed an envelope under its own arrival time, the copies of
//! one envelope would sit in different ranges on different nodes and sync would get costly
//! (see the `log` module docs). Receivers clamp it to their clock.
//!
//! Layout (bincode 2, standard configuration): `version: u8`, `timestamp_ms: u64` (varint),
//! `envelope: bytes` (varint length, then the bytes). The version byte comes first and is
//! checked before anything else is decoded, so a newer peer's frames are told apart from
//! garbage: they are ignored, not punished.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};

/// The frame version this node writes and reads.
pub const FRAME_VERSION: u8 = 1;

/// Bytes a frame adds around its envelope at most: version, two varints.
const FRAME_OVERHEAD: usize = 1 + 9 + 9;

/// A decoded frame; the envelope borrows from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<'a> {
    version: u8,
    /// The publisher's clock when it published, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The envelope bytes, opaque here.
    pub envelope: &'a [u8],
}

/// Why bytes are not a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Empty input.
    #[error("empty frame")]
    Empty,
    /// A version this node does not read (a newer peer, most likely).
    #[error("unknown frame version {0}")]
    UnknownVersion(u8),
    /// Not a valid frame, or larger than allowed.
    #[error("malformed frame: {0}")]
    Malformed(#[from] CodecError),
}

/// The longest frame around an envelope of `max_envelope_bytes`.
pub fn max_frame_len(max_envelope_bytes: usize) -> usize {
    max_envelope_bytes + FRAME_OVERHEAD
}

/// The frame for `envelope` published at `timestamp_ms`.
pub fn encode(timestamp_ms: u64, envelope: &[u8]) -> Result<Vec<u8>, CodecError> {
    codec::encode(&Frame {
        version: FRAME_VERSION,
        timestamp_ms,
        envelope,
    })
}

/// Decodes a frame whose envelope may be at most `max_envelope_bytes` long; longer input is
/// refused before decoding.
pub fn decode(bytes: &[u8], max_envelope_bytes: usize) -> Result<Frame<'_>, FrameError> {
    match bytes.first() {
        None => return Err(FrameError::Empty),
        Some(&version) if version != FRAME_VERSION => {
            return Err(FrameError::UnknownVersion(version));
        }
        Some(_) => {}
    }
    Ok(codec::decode_borrowed(
        bytes,
        max_frame_len(max_envelope_bytes),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode(1_700_000_000_123, b"envelope").unwrap();
        let frame = decode(&bytes, 100).unwrap();
        assert_eq!(frame.timestamp_ms, 1_700_000_000_123);
        assert_eq!(frame.envelope, b"envelope");
    }

    #[test]
    fn garbage_and_limits_are_errors() {
        assert!(matches!(decode(&[], 100), Err(FrameError::Empty)));
        assert!(matches!(
            decode(&[2, 0, 0], 100),
            Err(FrameError::UnknownVersion(2))
        ));
        assert!(matches!(
            decode(&[1, 0xff], 100),
            Err(FrameError::Malformed(_))
        ));
        let big = encode(5, &[7u8; 200]).unwrap();
        assert!(matches!(decode(&big, 100), Err(FrameError::Malformed(_))));
        let mut trailing = encode(5, b"x").unwrap();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing, 100),
            Err(FrameError::Malformed(_))
        ));
        // A length prefix that claims more than is there.
        assert!(matches!(
            decode(&[1, 5, 250], 100),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn max_frame_len_bounds_the_encoding() {
        let bytes = encode(u64::MAX, &[0u8; 70_000]).unwrap();
        assert!(bytes.len() <= max_frame_len(70_000));
    }
}
