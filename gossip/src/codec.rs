//! The codec for gossip-defined bytes: bincode 2 over serde, one fixed configuration.
//!
//! Reconciliation messages come from untrusted peers and log records from a disk that may be
//! damaged, so decoding is strict, the same way identity-tofu's codec is (its 64 KiB ceiling
//! is too small for sync messages, hence this sibling):
//!
//! - the input length is checked against the caller's limit *before* decoding starts;
//! - bincode's own byte limit bounds every length prefix inside the input, so a claimed
//!   `Vec` of 2^60 elements fails instead of allocating;
//! - trailing bytes after the value are an error.
//!
//! Every failure is a [`CodecError`] value; nothing here panics on input.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest input any decoder here accepts, whatever the caller's limit says; also the
/// bound bincode enforces on claimed lengths inside the input.
pub const MAX_DECODE_LEN: usize = 4 * 1024 * 1024;

/// Standard bincode (little endian, varint integers) with a byte limit. Never change it for
/// existing data: stored records and the sync protocol depend on these exact bytes.
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
    /// The value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(#[source] bincode::error::EncodeError),
}

/// Encodes `value` with the fixed configuration.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(CodecError::Encode)
}

/// Decodes exactly one `T` from `bytes`, refusing input longer than `max_len` (and than
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

/// Like [`decode`], but the value may borrow from `bytes` (`&[u8]` fields are not copied):
/// for the pubsub frame, whose envelope can be a megabyte and is looked at on every message.
pub fn decode_borrowed<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
    max_len: usize,
) -> Result<T, CodecError> {
    let max = max_len.min(MAX_DECODE_LEN);
    if bytes.len() > max {
        return Err(CodecError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    let (value, used) = bincode::serde::borrow_decode_from_slice::<T, _>(bytes, config())
        .map_err(CodecError::Decode)?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            count: bytes.len().saturating_sub(used),
        });
    }
    Ok(value)
}

/// The number of bytes bincode's varint encoding gives `value` (standard configuration).
///
/// The reconciliation writer uses it to know a message's size before encoding it.
pub(crate) fn varint_len(value: u64) -> usize {
    match value {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_bincode() {
        for v in [
            0u64,
            1,
            250,
            251,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            assert_eq!(varint_len(v), encode(&v).unwrap().len(), "{v}");
        }
    }

    #[test]
    fn limits_and_trailing_bytes() {
        let bytes = encode(&(7u32, vec![1u8, 2, 3])).unwrap();
        assert!(matches!(
            decode::<(u32, Vec<u8>)>(&bytes, bytes.len() - 1),
            Err(CodecError::TooLong { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<(u32, Vec<u8>)>(&longer, 100),
            Err(CodecError::TrailingBytes { count: 1 })
        ));
        assert_eq!(
            decode::<(u32, Vec<u8>)>(&bytes, 100).unwrap(),
            (7, vec![1, 2, 3])
        );
    }

    #[test]
    fn huge_claimed_length_is_an_error_not_an_allocation() {
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Vec<u64>>(&bytes, 100),
            Err(CodecError::Decode(_))
        ));
    }
}
