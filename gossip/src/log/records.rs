//! How the log's values are stored, and the checks made when reading them back.
//!
//! Entry values hold an envelope of up to a megabyte, opaque to us, so they get a fixed
//! layout (`version ‖ timestamp ‖ bytes`) that costs nothing to write or read; the topic
//! record is a small structure and goes through the bincode codec. Anything that does not
//! read back as written is reported as corrupt, never trusted.

use serde::{Deserialize, Serialize};

use super::error::LogError;
use crate::codec;
use crate::envelope_id::EnvelopeId;
use crate::reconcile::Item;
use crate::topic::Topic;

const ENTRY_VERSION: u8 = 1;
const RECORD_VERSION: u8 = 1;
const RECORD_MAX_LEN: usize = 1024;

/// A topic's counters and retention floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    version: u8,
    pub(crate) name: String,
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    /// The newest item retention ever evicted: anything at or below it is refused, so that a
    /// peer that still holds an envelope we dropped cannot hand it back to us forever.
    pub(crate) floor: Option<(u64, EnvelopeId)>,
}

impl TopicRecord {
    pub(crate) fn new(topic: &Topic) -> Self {
        Self {
            version: RECORD_VERSION,
            name: topic.as_str().to_string(),
            count: 0,
            bytes: 0,
            floor: None,
        }
    }

    pub(crate) fn floor_item(&self) -> Option<Item> {
        self.floor.map(|(ts, id)| Item::new(ts, id))
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, LogError> {
        codec::encode(self).map_err(|e| LogError::Corrupt {
            what: "topic record".into(),
            reason: e.to_string(),
        })
    }

    /// Reads a record back, checking its version and that it names a valid topic.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, Topic), LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            what: "topic record".into(),
            reason,
        };
        let record: Self =
            codec::decode(bytes, RECORD_MAX_LEN).map_err(|e| corrupt(e.to_string()))?;
        if record.version != RECORD_VERSION {
            return Err(corrupt(format!("unknown version {}", record.version)));
        }
        let topic = Topic::new(record.name.clone()).map_err(|e| corrupt(e.to_string()))?;
        Ok((record, topic))
    }
}

/// The stored form of an entry.
pub(crate) fn encode_entry(timestamp_ms: u64, envelope: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + envelope.len());
    out.push(ENTRY_VERSION);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(envelope);
    out
}

/// The timestamp and envelope of a stored entry, if it is well formed.
pub(crate) fn decode_entry(value: &[u8]) -> Option<(u64, &[u8])> {
    let (&version, rest) = value.split_first()?;
    if version != ENTRY_VERSION || rest.len() < 8 {
        return None;
    }
    let (ts, envelope) = rest.split_at(8);
    Some((u64::from_be_bytes(ts.try_into().ok()?), envelope))
}

/// A counter or length value: 8 bytes big endian.
pub(crate) fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub(crate) fn decode_u64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_damage() {
        let value = encode_entry(42, b"hello");
        assert_eq!(decode_entry(&value), Some((42, &b"hello"[..])));
        assert_eq!(decode_entry(&value[..8]), None);
        let mut other_version = value.clone();
        other_version[0] = 9;
        assert_eq!(decode_entry(&other_version), None);
        assert_eq!(decode_entry(&encode_entry(1, b"")), Some((1, &b""[..])));
    }

    #[test]
    fn record_round_trip_and_damage() {
        let topic = Topic::new("chorus/g/x").unwrap();
        let mut record = TopicRecord::new(&topic);
        record.count = 3;
        record.floor = Some((7, EnvelopeId([1; 32])));
        let bytes = record.encode().unwrap();
        assert_eq!(TopicRecord::decode(&bytes).unwrap(), (record, topic));
        assert!(TopicRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(TopicRecord::decode(b"\xff\xff\xff").is_err());
    }
}
