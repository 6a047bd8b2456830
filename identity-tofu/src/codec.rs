//! The one codec for chorus-defined bytes in this crate: bincode 2 over serde, fixed config.
//!
//! Everything this crate puts on the wire or on disk (certificates, trust records, key files)
//! goes through here, so that there is exactly one place that decides how bytes look and how
//! much untrusted input a decoder will look at. Decoding is strict:
//!
//! - the input length is checked against the caller's limit *before* any decoding starts, so a
//!   peer cannot make us parse megabytes to find out they were too many;
//! - bincode's own [`with_limit`](bincode::config::Configuration::with_limit) bounds every
//!   length prefix inside the input, so a claimed `Vec` of 2^60 elements fails instead of
//!   allocating;
//! - trailing bytes after the value are an error, so one value has one encoding length;
//! - [`decode_canonical`] additionally insists that re-encoding gives the same bytes, for data
//!   that is signed or hashed (bincode's varints would otherwise accept non-minimal forms).
//!
//! Every failure is a [`CodecError`] value; nothing here panics on input.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest input any decoder accepts, whatever the caller's limit says: the ceiling
/// above every real limit (group records and Welcome bundles of large groups are megabytes;
/// callers pass their own, smaller limit for each kind of input).
///
/// Also the bound bincode enforces on claimed lengths inside the input. It only bounds
/// decoding; the encoded bytes do not depend on it.
pub const MAX_DECODE_LEN: usize = 64 * 1024 * 1024;

/// The fixed bincode configuration: standard (little endian, varint integers) with a byte
/// limit. Never change it for existing data: stored records and signed certificates depend on
/// these exact bytes.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_LEN>()
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the decoder accepts; it was not looked at.
    #[error("input of {len} bytes is longer than the limit of {max} bytes")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// The limit that applied.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("invalid encoding: {0}")]
    Decode(#[source] bincode::error::DecodeError),
    /// A valid value was followed by more bytes.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The bytes decode, but are not the canonical encoding of what they decode to.
    #[error("not the canonical encoding")]
    NonCanonical,
    /// The value could not be encoded (a serde impl failed, or it exceeds the size limit).
    #[error("cannot encode: {0}")]
    Encode(#[source] bincode::error::EncodeError),
}

/// Encodes `value` with the crate's fixed configuration.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(CodecError::Encode)
}

/// Decodes exactly one `T` from `bytes`, refusing input longer than `max_len` (and longer than
/// [`MAX_DECODE_LEN`]) before decoding, and refusing trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, CodecError> {
    let max = max_len.min(MAX_DECODE_LEN);
    if bytes.len() > max {
        return Err(CodecError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config()).map_err(CodecError::Decode)?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            count: bytes.len().saturating_sub(used),
        });
    }
    Ok(value)
}

/// Like [`decode`], and the bytes must also be exactly what [`encode`] gives for the value.
///
/// For signed or hashed data: it makes the mapping between values and bytes one-to-one, so
/// nobody can produce a second byte string for the same signed value.
pub fn decode_canonical<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CodecError> {
    let value: T = decode(bytes, max_len)?;
    if encode(&value)? != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        version: u16,
        name: String,
        data: Vec<u8>,
    }

    fn sample() -> Sample {
        Sample {
            version: 1,
            name: "alice".into(),
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(decode::<Sample>(&bytes, 100).unwrap(), sample());
        assert_eq!(decode_canonical::<Sample>(&bytes, 100).unwrap(), sample());
    }

    #[test]
    fn input_over_the_limit_is_refused_before_decoding() {
        let bytes = encode(&sample()).unwrap();
        let err = decode::<Sample>(&bytes, bytes.len() - 1).unwrap_err();
        assert!(matches!(err, CodecError::TooLong { .. }), "{err}");
        let huge = vec![0u8; MAX_DECODE_LEN + 1];
        let err = decode::<Sample>(&huge, usize::MAX).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::TooLong {
                    max: MAX_DECODE_LEN,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        let err = decode::<Sample>(&bytes, 100).unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes { count: 1 }),
            "{err}"
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = encode(&sample()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode::<Sample>(&bytes[..len], 100).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn huge_claimed_length_is_an_error_not_an_allocation() {
        // version 1, then a string length of u64::MAX (varint marker 253 + 8 bytes).
        let mut bytes = vec![1u8, 253];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&bytes, 100),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn non_minimal_varint_is_not_canonical() {
        // version 1 written as the 3-byte form (marker 251 + u16) instead of the single byte.
        let canonical = encode(&sample()).unwrap();
        let mut padded = vec![251u8, 1, 0];
        padded.extend_from_slice(&canonical[1..]);
        // bincode 2 accepts the long form, so only the canonical check catches it.
        assert_eq!(decode::<Sample>(&padded, 100).unwrap(), sample());
        assert!(matches!(
            decode_canonical::<Sample>(&padded, 100),
            Err(CodecError::NonCanonical)
        ));
    }
}
