//! Where the log keeps what, inside the `KvStore` it is given (on a node: the `gossip`
//! column family).
//!
//! ```text
//! M <topic 16>                                      topic record: name, count, bytes, floor
//! T <topic 16> e <id 32>                            entry: timestamp + envelope (id index)
//! T <topic 16> d <bucket 8>                         directory: entries in the bucket
//! T <topic 16> o <bucket 8> <timestamp 8> <id 32>   order index: the envelope's length
//! ```
//!
//! `<topic 16>` is [`Topic::storage_key`]; integers are big endian, so byte order is numeric
//! order and the order index sorts by (timestamp, id), the order reconciliation and retention
//! walk in. `KvStore` only scans whole prefixes, so the order index is cut into *buckets* of
//! 2^18 ms (about 4.4 minutes) that are each a prefix: reading a window or the oldest entries
//! scans the small directory, then only the buckets that matter, never the whole topic.
//! Topic records sit apart under `M` so listing topics reads one key per topic.

use crate::envelope_id::EnvelopeId;
use crate::reconcile::Item;
use crate::topic::Topic;

/// The layout for encryption at rest ([`identity_tofu::kv::SealedKv`]): the topic key (a
/// plain hash of the topic name, which names the group) is stored as a keyed hash.
pub fn sealed_layout() -> identity_tofu::kv::KeySchema {
    use identity_tofu::kv::{KeyRule, KeySchema};
    KeySchema::new(vec![
        KeyRule::starting_with(&[RECORDS]).secret(16).plain_rest(),
        KeyRule::starting_with(&[TOPIC]).secret(16).plain_rest(),
    ])
}

/// Timestamps are grouped into buckets of `2^BUCKET_SHIFT` milliseconds.
pub(crate) const BUCKET_SHIFT: u32 = 18;

const RECORDS: u8 = b'M';
const TOPIC: u8 = b'T';
const ENTRY: u8 = b'e';
const DIRECTORY: u8 = b'd';
const ORDER: u8 = b'o';

/// The bucket a timestamp falls in.
pub(crate) fn bucket_of(timestamp_ms: u64) -> u64 {
    timestamp_ms >> BUCKET_SHIFT
}

/// The prefix of every topic record.
pub(crate) fn records_prefix() -> Vec<u8> {
    vec![RECORDS]
}

/// The keys of one topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicKeys {
    key: [u8; 16],
}

impl TopicKeys {
    pub(crate) fn new(topic: &Topic) -> Self {
        Self {
            key: topic.storage_key(),
        }
    }

    /// The topic's storage key, which names it in the item cache.
    pub(crate) fn topic_key(&self) -> [u8; 16] {
        self.key
    }

    fn with(&self, section: u8, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + capacity);
        out.push(TOPIC);
        out.extend_from_slice(&self.key);
        out.push(section);
        out
    }

    /// The topic record.
    pub(crate) fn record(&self) -> Vec<u8> {
        let mut out = vec![RECORDS];
        out.extend_from_slice(&self.key);
        out
    }

    /// Every key of the topic except its record.
    pub(crate) fn all(&self) -> Vec<u8> {
        let mut out = vec![TOPIC];
        out.extend_from_slice(&self.key);
        out
    }

    pub(crate) fn entry(&self, id: &EnvelopeId) -> Vec<u8> {
        let mut out = self.with(ENTRY, 32);
        out.extend_from_slice(&id.0);
        out
    }

    pub(crate) fn directory_prefix(&self) -> Vec<u8> {
        self.with(DIRECTORY, 0)
    }

    pub(crate) fn directory(&self, bucket: u64) -> Vec<u8> {
        let mut out = self.with(DIRECTORY, 8);
        out.extend_from_slice(&bucket.to_be_bytes());
        out
    }

    /// The bucket a directory key names, if the key is one.
    pub(crate) fn parse_directory(&self, key: &[u8]) -> Option<u64> {
        let rest = key.strip_prefix(self.directory_prefix().as_slice())?;
        Some(u64::from_be_bytes(rest.try_into().ok()?))
    }

    pub(crate) fn order_bucket(&self, bucket: u64) -> Vec<u8> {
        let mut out = self.with(ORDER, 48);
        out.extend_from_slice(&bucket.to_be_bytes());
        out
    }

    pub(crate) fn order(&self, item: &Item) -> Vec<u8> {
        let mut out = self.order_bucket(bucket_of(item.timestamp_ms));
        out.extend_from_slice(&item.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&item.id.0);
        out
    }

    /// The item an order key of `bucket` names, if the key is well formed and really
    /// belongs in that bucket.
    pub(crate) fn parse_order(&self, bucket: u64, key: &[u8]) -> Option<Item> {
        let rest = key.strip_prefix(self.order_bucket(bucket).as_slice())?;
        if rest.len() != 40 {
            return None;
        }
        let timestamp_ms = u64::from_be_bytes(rest[..8].try_into().ok()?);
        let id = EnvelopeId(rest[8..].try_into().ok()?);
        (bucket_of(timestamp_ms) == bucket).then_some(Item::new(timestamp_ms, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_like_items_and_parse_back() {
        let keys = TopicKeys::new(&Topic::new("t").unwrap());
        let items = [
            Item::new(5, EnvelopeId([9; 32])),
            Item::new(6, EnvelopeId([1; 32])),
            Item::new(1 << 20, EnvelopeId([0; 32])),
            Item::new(u64::MAX, EnvelopeId([0; 32])),
        ];
        for pair in items.windows(2) {
            assert!(keys.order(&pair[0]) < keys.order(&pair[1]));
        }
        for item in items {
            let bucket = bucket_of(item.timestamp_ms);
            assert_eq!(keys.parse_order(bucket, &keys.order(&item)), Some(item));
            assert_eq!(
                keys.parse_order(bucket.wrapping_add(1), &keys.order(&item)),
                None
            );
        }
        assert_eq!(keys.parse_directory(&keys.directory(77)), Some(77));
        assert_eq!(
            keys.parse_directory(&keys.entry(&EnvelopeId([0; 32]))),
            None
        );
    }

    #[test]
    fn topics_do_not_share_prefixes() {
        let a = TopicKeys::new(&Topic::new("a").unwrap());
        let b = TopicKeys::new(&Topic::new("b").unwrap());
        assert!(!b.entry(&EnvelopeId([0; 32])).starts_with(&a.all()));
        assert!(!b.record().starts_with(&a.all()));
    }
}
