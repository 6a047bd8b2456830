//! How openmls's values are encoded in the MLS storage.
//!
//! openmls rewrites whole values (the ratchet tree, the secret tree) on every step it takes —
//! for a received application message, `message_secrets` is written again. As JSON, every
//! byte string became a list of decimal numbers: a 100-member group's secret tree was tens of
//! kilobytes of text, encoded and parsed on every message. Values are now bincode (written by
//! [`super::bincode_writer`], which gives bincode's bytes faster), behind a
//! one-byte tag so that values written as JSON by earlier versions still read.
//!
//! Two kinds of value stay JSON: openmls's join config (its past-epoch deletion policy is read
//! through an untagged enum, which only a self-describing format can decode), and our own
//! lists of opaque `serde_json::Value`s (own leaf nodes, queued proposal refs), which are
//! small and rarely written. Keys are not encoded here: they stay as they were so that stored
//! groups are found again.

use serde::{Serialize, de::DeserializeOwned};

use super::bincode_writer::write_into;
use super::layout::label;
use super::mls_storage::StorageError;

/// First byte of a bincode-encoded value. JSON text never starts with it (it is not a valid
/// first byte of UTF-8), so old JSON values are told apart from new ones by this byte alone.
const BINCODE_TAG: u8 = 0xB2;

/// The largest value decoded: bounds the allocation a damaged length prefix can ask for. A
/// 10,000-member ratchet tree is a few MiB.
const MAX_VALUE_BYTES: usize = 256 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_VALUE_BYTES>()
}

/// Whether values of this label are stored as JSON (see the module comment).
fn stored_as_json(what: &'static str) -> bool {
    matches!(
        what,
        label::JOIN_CONFIG | label::OWN_LEAF_NODES | label::PROPOSAL_REFS
    )
}

/// Encodes a value for the store.
pub(crate) fn encode_value<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    if stored_as_json(what) {
        return serde_json::to_vec(value).map_err(|e| StorageError::Encode {
            what,
            detail: e.to_string(),
        });
    }
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    out.push(BINCODE_TAG);
    write_into(value, &mut out).map_err(|e| StorageError::Encode {
        what,
        detail: e.to_string(),
    })?;
    // Every value the unit tests store (openmls's own included) is checked against bincode.
    #[cfg(test)]
    {
        let mut theirs = vec![BINCODE_TAG];
        bincode::serde::encode_into_std_write(value, &mut theirs, config())
            .expect("bincode encodes what the writer encoded");
        assert_eq!(out, theirs, "{what}: the writer and bincode differ");
    }
    Ok(out)
}

/// Room reserved for an encoded value up front: the values written on every message (the
/// secret tree, the group state) are a few KiB, and growing from nothing copies them ~6 times.
const INITIAL_CAPACITY: usize = 4096;

/// Decodes a stored value, whichever of the two encodings wrote it.
pub(crate) fn decode_value<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt { what, detail };
    match bytes.split_first() {
        Some((&BINCODE_TAG, body)) => {
            let (value, used) = bincode::serde::decode_from_slice(body, config())
                .map_err(|e| corrupt(e.to_string()))?;
            if used != body.len() {
                return Err(corrupt(format!(
                    "{} bytes after the value",
                    body.len() - used
                )));
            }
            Ok(value)
        }
        _ => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        secret: Vec<u8>,
        epoch: u64,
        parent: Option<u32>,
    }

    fn sample() -> Sample {
        Sample {
            secret: (0u8..=255).collect(),
            epoch: 7,
            parent: Some(3),
        }
    }

    #[test]
    fn values_round_trip_as_bincode_and_are_smaller_than_json() {
        let bytes = encode_value(label::MESSAGE_SECRETS, &sample()).unwrap();
        assert_eq!(bytes[0], BINCODE_TAG);
        let json = serde_json::to_vec(&sample()).unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        let back: Sample = decode_value(label::MESSAGE_SECRETS, &bytes).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn values_written_as_json_by_earlier_versions_still_read() {
        let json = serde_json::to_vec(&sample()).unwrap();
        let back: Sample = decode_value(label::MESSAGE_SECRETS, &json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn self_describing_labels_stay_json() {
        let list = vec![serde_json::json!({"a": [1, 2]}), serde_json::json!(3)];
        let bytes = encode_value(label::PROPOSAL_REFS, &list).unwrap();
        assert_eq!(bytes[0], b'[');
        let back: Vec<serde_json::Value> = decode_value(label::PROPOSAL_REFS, &bytes).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let mut bytes = encode_value(label::MESSAGE_SECRETS, &sample()).unwrap();
        for cut in [1, 2, bytes.len() / 2, bytes.len() - 1] {
            let r: Result<Sample, _> = decode_value(label::MESSAGE_SECRETS, &bytes[..cut]);
            assert!(
                matches!(r, Err(StorageError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
        bytes.push(0);
        let r: Result<Sample, _> = decode_value(label::MESSAGE_SECRETS, &bytes);
        assert!(matches!(r, Err(StorageError::Corrupt { .. })));
        // A length prefix claiming more than the limit allows is refused before allocating.
        let huge = [
            BINCODE_TAG,
            0xFD,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0x7F,
        ];
        let r: Result<Sample, _> = decode_value(label::MESSAGE_SECRETS, &huge);
        assert!(matches!(r, Err(StorageError::Corrupt { .. })));
        let r: Result<Sample, _> = decode_value(label::MESSAGE_SECRETS, &[]);
        assert!(matches!(r, Err(StorageError::Corrupt { .. })));
    }
}
