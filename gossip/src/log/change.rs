//! One change to a topic — entries in, entries out, counters and floor — written as a single
//! atomic `WriteBatch`, so a crash never leaves an entry without its index or counters that
//! disagree with the entries.

use std::collections::BTreeMap;

use identity_tofu::kv::{KvStore, WriteBatch};

use super::Evicted;
use super::error::LogError;
use super::keys::{TopicKeys, bucket_of};
use super::records::{TopicRecord, decode_u64, encode_entry, encode_u64};
use crate::reconcile::Item;

pub(crate) struct Change<'a> {
    keys: &'a TopicKeys,
    record: TopicRecord,
    batch: WriteBatch,
    /// Net change of each touched bucket's entry count.
    buckets: BTreeMap<u64, i64>,
    evicted: Vec<Evicted>,
}

impl<'a> Change<'a> {
    pub(crate) fn new(keys: &'a TopicKeys, record: TopicRecord) -> Self {
        Self {
            keys,
            record,
            batch: WriteBatch::default(),
            buckets: BTreeMap::new(),
            evicted: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, item: Item, envelope: &[u8]) -> Result<(), LogError> {
        let len = envelope.len() as u64;
        self.batch.put(
            &self.keys.entry(&item.id),
            &encode_entry(item.timestamp_ms, envelope),
        );
        self.batch.put(&self.keys.order(&item), &encode_u64(len));
        *self
            .buckets
            .entry(bucket_of(item.timestamp_ms))
            .or_default() += 1;
        self.record.count = self.record.count.checked_add(1).ok_or_else(overflow)?;
        self.record.bytes = self.record.bytes.checked_add(len).ok_or_else(overflow)?;
        Ok(())
    }

    pub(crate) fn evict(&mut self, item: Item, len: u64) -> Result<(), LogError> {
        self.batch.delete(&self.keys.entry(&item.id));
        self.batch.delete(&self.keys.order(&item));
        *self
            .buckets
            .entry(bucket_of(item.timestamp_ms))
            .or_default() -= 1;
        let underflow = || LogError::corrupt("topic record", "counters below the stored entries");
        self.record.count = self.record.count.checked_sub(1).ok_or_else(underflow)?;
        self.record.bytes = self.record.bytes.checked_sub(len).ok_or_else(underflow)?;
        if self.record.floor_item().is_none_or(|floor| item > floor) {
            self.record.floor = Some((item.timestamp_ms, item.id));
        }
        self.evicted.push(Evicted { item, bytes: len });
        Ok(())
    }

    pub(crate) fn record(&self) -> &TopicRecord {
        &self.record
    }

    /// Writes everything in one batch; returns what was evicted.
    pub(crate) fn commit(mut self, store: &impl KvStore) -> Result<Vec<Evicted>, LogError> {
        for (&bucket, &delta) in &self.buckets {
            let key = self.keys.directory(bucket);
            let current = match store.get(&key)? {
                Some(value) => decode_u64(&value)
                    .ok_or_else(|| LogError::corrupt("bucket directory", "not a count"))?,
                None => 0,
            };
            let next = i128::from(current) + i128::from(delta);
            match u64::try_from(next) {
                Ok(0) => self.batch.delete(&key),
                Ok(count) => self.batch.put(&key, &encode_u64(count)),
                Err(_) => {
                    return Err(LogError::corrupt(
                        "bucket directory",
                        "count below the stored entries",
                    ));
                }
            }
        }
        self.batch.put(&self.keys.record(), &self.record.encode()?);
        store.write(self.batch)?;
        Ok(self.evicted)
    }
}

fn overflow() -> LogError {
    LogError::corrupt("topic record", "counter overflow")
}
