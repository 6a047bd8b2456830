//! Choosing what to evict: always the oldest entries, walking the order index bucket by
//! bucket from the start and stopping as soon as enough is chosen, so the cost follows what
//! is evicted, not the size of the topic.

use std::ops::ControlFlow;

use identity_tofu::kv::KvStore;

use super::Log;
use super::error::LogError;
use super::keys::TopicKeys;
use super::records::TopicRecord;
use crate::reconcile::Item;

/// The outcome of making room for a new entry.
pub(crate) enum Room {
    /// Evicting these (oldest first) makes room.
    Made(Vec<(Item, u64)>),
    /// The new entry is older than everything that would have to go: refuse it instead.
    NewestIsOldest,
}

impl<S: KvStore> Log<S> {
    /// Visits the topic's entries oldest first until `visit` breaks.
    fn walk_oldest(
        &self,
        keys: &TopicKeys,
        mut visit: impl FnMut(Item, u64) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        for (bucket, _) in self.directory(keys)? {
            for (item, bytes) in self.bucket(keys, bucket)? {
                if visit(item, bytes).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The entries to evict so that `new` fits: at least `must_free` bytes, up to
    /// `want_free`, never an entry newer than `new`.
    pub(crate) fn room_for(
        &self,
        keys: &TopicKeys,
        new: Item,
        must_free: u64,
        want_free: u64,
    ) -> Result<Room, LogError> {
        let mut victims = Vec::new();
        let mut freed = 0u64;
        let mut reached_new = false;
        self.walk_oldest(keys, |item, bytes| {
            if freed >= want_free {
                return ControlFlow::Break(());
            }
            if item > new {
                reached_new = true;
                return ControlFlow::Break(());
            }
            freed = freed.saturating_add(bytes);
            victims.push((item, bytes));
            ControlFlow::Continue(())
        })?;
        if freed >= must_free {
            Ok(Room::Made(victims))
        } else if reached_new {
            Ok(Room::NewestIsOldest)
        } else {
            // The entries ran out before the counted bytes did.
            Err(LogError::corrupt(
                "topic record",
                "byte count exceeds the stored entries",
            ))
        }
    }

    /// The entries older than `cutoff`, then, while the topic stays over its byte budget, the
    /// oldest down to the low-water mark.
    pub(crate) fn expired(
        &self,
        keys: &TopicKeys,
        record: &TopicRecord,
        cutoff: u64,
    ) -> Result<Vec<(Item, u64)>, LogError> {
        let over_budget = record.bytes > self.config.retention.max_bytes_per_topic;
        let low_water = self.config.low_water_bytes();
        let mut remaining = record.bytes;
        let mut victims = Vec::new();
        self.walk_oldest(keys, |item, bytes| {
            let too_old = item.timestamp_ms < cutoff;
            let too_much = over_budget && remaining > low_water;
            if !too_old && !too_much {
                return ControlFlow::Break(());
            }
            remaining = remaining.saturating_sub(bytes);
            victims.push((item, bytes));
            ControlFlow::Continue(())
        })?;
        Ok(victims)
    }
}
