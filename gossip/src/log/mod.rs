//! The store-and-forward log: per topic, every envelope this node holds, so that peers who
//! were away can get it through sync (gossipsub itself forgets after seconds).
//!
//! - **Append** is idempotent by id (SHA-256 of the bytes): a duplicate is reported, not
//!   stored twice. Oversized envelopes are refused with an error.
//! - **Order.** Entries are indexed by (timestamp, id): reconciliation compares ranges of
//!   that order and retention evicts from its start. See `log/keys.rs` for the layout, which keeps
//!   window reads and eviction to the buckets involved.
//! - **Retention** by age ([`Log::enforce_retention`], given the time) and by bytes per topic
//!   (kept on every append), oldest first; each call returns what it evicted. A *floor*
//!   remembers the newest evicted entry, and older ones are refused from then on, so sync
//!   with a peer whose retention is longer cannot bring them back in a loop.
//! - **Atomicity.** Every change (entry, order key, bucket count, topic record, evictions)
//!   is one `WriteBatch`. Writes take `&mut self`: one `Log` owns its store's keys.
//! - **Damage.** Stored data that does not read back as written is a
//!   [`LogError::Corrupt`], never a panic, and the entry's bytes are checked against its id.
//!
//! Which timestamp. Reconciliation compares ranges of (timestamp, id), so two peers are
//! only cheap to reconcile if they gave each envelope the *same* timestamp. Local arrival
//! times differ by the gossip delay, which would put almost every range boundary between
//! copies of the same envelope. So the network layer should pass a time that travels with
//! the envelope — the publisher's send time carried beside it on pubsub (clamped to the
//! local clock so nobody plants entries in the far future), and the serving peer's stored
//! timestamp on sync — and only fall back to the local arrival time when it has nothing
//! better. The log itself just stores what it is given, and never reads a clock.

mod change;
mod config;
mod error;
mod item_cache;
mod keys;
mod records;
mod retention;

use std::ops::{Bound as RangeBound, RangeBounds};
use std::sync::{Mutex, MutexGuard, PoisonError};

use identity_tofu::kv::{KvStore, WriteBatch};
use tracing::debug;

use crate::envelope_id::EnvelopeId;
use crate::reconcile::{Item, ItemSource, SortedItems};
use crate::topic::Topic;
use change::Change;
pub use config::{LogConfig, Retention};
pub use error::LogError;
use item_cache::ItemCache;
pub use keys::sealed_layout;
use keys::{TopicKeys, bucket_of, records_prefix};
use records::{TopicRecord, decode_entry, decode_u64};
use retention::Room;

/// A stored envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// SHA-256 of the envelope.
    pub id: EnvelopeId,
    /// The topic it was stored under.
    pub topic: Topic,
    /// The timestamp it is ordered and aged by.
    pub timestamp_ms: u64,
    /// The envelope bytes, opaque to gossip.
    pub envelope: Vec<u8>,
}

/// An entry that retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    /// Its timestamp and id.
    pub item: Item,
    /// Its envelope's length.
    pub bytes: u64,
}

/// What [`Log::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Appended {
    /// Stored; making room evicted these older entries (oldest first).
    Stored {
        /// The envelope's id.
        id: EnvelopeId,
        /// Entries evicted to stay within the topic's byte budget.
        evicted: Vec<Evicted>,
    },
    /// Already held: nothing changed.
    Duplicate {
        /// The envelope's id.
        id: EnvelopeId,
    },
    /// Not stored: it is no newer than what retention already dropped (or it would be the
    /// first thing to drop to make room for itself).
    Expired {
        /// The envelope's id.
        id: EnvelopeId,
    },
}

impl Appended {
    /// The envelope's id, whatever happened.
    pub fn id(&self) -> EnvelopeId {
        match self {
            Appended::Stored { id, .. } | Appended::Duplicate { id } | Appended::Expired { id } => {
                *id
            }
        }
    }
}

/// How much a topic holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicStats {
    /// Entries.
    pub count: u64,
    /// Envelope bytes (keys and headers not counted).
    pub bytes: u64,
}

/// The store-and-forward log over a [`KvStore`].
#[derive(Debug)]
pub struct Log<S> {
    store: S,
    config: LogConfig,
    /// Items of recently used topics; reads take `&self`, hence the lock (never contended:
    /// one task owns the log).
    cache: Mutex<ItemCache>,
}

impl<S: KvStore> Log<S> {
    /// A log over `store` (which it owns the keys of), with these limits. Nothing is read:
    /// opening a large log is instant, and every read checks what it reads.
    pub fn open(store: S, config: LogConfig) -> Result<Self, LogError> {
        config.validate()?;
        let cache = Mutex::new(ItemCache::new(config.cached_items));
        Ok(Self {
            store,
            config,
            cache,
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Stores `envelope` under `topic` with the timestamp it is ordered and aged by (see
    /// the module docs on which time to pass), evicting the oldest entries if the topic
    /// would exceed its byte budget. One atomic write.
    pub fn append(
        &mut self,
        topic: &Topic,
        envelope: &[u8],
        timestamp_ms: u64,
    ) -> Result<Appended, LogError> {
        if envelope.len() > self.config.max_envelope_bytes {
            return Err(LogError::EnvelopeTooLarge {
                len: envelope.len(),
                max: self.config.max_envelope_bytes,
            });
        }
        let id = EnvelopeId::of(envelope);
        let keys = TopicKeys::new(topic);
        if self.store.get(&keys.entry(&id))?.is_some() {
            return Ok(Appended::Duplicate { id });
        }
        let record = self
            .load_record(&keys)?
            .unwrap_or_else(|| TopicRecord::new(topic));
        let item = Item::new(timestamp_ms, id);
        if record.floor_item().is_some_and(|floor| item <= floor) {
            return Ok(Appended::Expired { id });
        }
        let len = envelope.len() as u64;
        let mut change = Change::new(&keys, record);
        let total = change.record().bytes.saturating_add(len);
        let max = self.config.retention.max_bytes_per_topic;
        if total > max {
            let must_free = total - max;
            let want_free = total.saturating_sub(self.config.low_water_bytes());
            match self.room_for(&keys, item, must_free, want_free)? {
                Room::Made(victims) => {
                    for (victim, bytes) in victims {
                        change.evict(victim, bytes)?;
                    }
                }
                Room::NewestIsOldest => return Ok(Appended::Expired { id }),
            }
        }
        change.insert(item, envelope)?;
        let evicted = change.commit(&self.store)?;
        self.cache_written(&keys, &evicted, Some(item));
        if !evicted.is_empty() {
            debug!(%topic, evicted = evicted.len(), "log: byte budget reached, evicted oldest");
        }
        Ok(Appended::Stored { id, evicted })
    }

    /// The entry with this id, checked against its id.
    pub fn get(&self, topic: &Topic, id: &EnvelopeId) -> Result<Option<Entry>, LogError> {
        let keys = TopicKeys::new(topic);
        let Some(value) = self.store.get(&keys.entry(id))? else {
            return Ok(None);
        };
        let (timestamp_ms, envelope) =
            decode_entry(&value).ok_or_else(|| LogError::corrupt("entry", "malformed value"))?;
        if EnvelopeId::of(envelope) != *id {
            return Err(LogError::corrupt(
                "entry",
                "envelope does not hash to its id",
            ));
        }
        Ok(Some(Entry {
            id: *id,
            topic: topic.clone(),
            timestamp_ms,
            envelope: envelope.to_vec(),
        }))
    }

    /// True when the topic holds this id.
    pub fn has(&self, topic: &Topic, id: &EnvelopeId) -> Result<bool, LogError> {
        Ok(self.store.get(&TopicKeys::new(topic).entry(id))?.is_some())
    }

    /// At most `limit` items of the topic within `range`, ascending. Reads the topic's
    /// bucket directory and then only the buckets that overlap the range.
    pub fn list_items(
        &self,
        topic: &Topic,
        range: impl RangeBounds<Item>,
        limit: usize,
    ) -> Result<Vec<Item>, LogError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = TopicKeys::new(topic);
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        if let Some(items) = self.cached_items(&keys, bounds, limit)? {
            return Ok(items);
        }
        let first = match range.start_bound() {
            RangeBound::Included(item) | RangeBound::Excluded(item) => bucket_of(item.timestamp_ms),
            RangeBound::Unbounded => 0,
        };
        let last = match range.end_bound() {
            RangeBound::Included(item) | RangeBound::Excluded(item) => bucket_of(item.timestamp_ms),
            RangeBound::Unbounded => u64::MAX,
        };
        let mut out = Vec::new();
        for (bucket, _) in self.directory(&keys)? {
            if bucket < first || bucket > last {
                continue;
            }
            for (item, _) in self.bucket(&keys, bucket)? {
                if range.contains(&item) {
                    out.push(item);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// [`Log::list_items`] from the item cache, reading the whole topic into it first if it
    /// is not there and fits. `None`: the topic is too large to cache.
    fn cached_items(
        &self,
        keys: &TopicKeys,
        bounds: (RangeBound<Item>, RangeBound<Item>),
        limit: usize,
    ) -> Result<Option<Vec<Item>>, LogError> {
        let mut cache = self.cache();
        if let Some(items) = cache.range(&keys.topic_key(), bounds, limit) {
            return Ok(Some(items));
        }
        let Some(record) = self.load_record(keys)? else {
            return Ok(Some(Vec::new()));
        };
        if !cache.fits(record.count) {
            return Ok(None);
        }
        let mut all = Vec::new();
        for (bucket, _) in self.directory(keys)? {
            all.extend(self.bucket(keys, bucket)?.into_iter().map(|(item, _)| item));
        }
        cache.fill(keys.topic_key(), all);
        Ok(cache.range(&keys.topic_key(), bounds, limit))
    }

    /// Tells the item cache what a committed change did to the topic.
    fn cache_written(&self, keys: &TopicKeys, evicted: &[Evicted], inserted: Option<Item>) {
        let mut cache = self.cache();
        for gone in evicted {
            cache.removed(&keys.topic_key(), &gone.item);
        }
        if let Some(item) = inserted {
            cache.inserted(&keys.topic_key(), item);
        }
    }

    fn cache(&self) -> MutexGuard<'_, ItemCache> {
        // Every update of the cache completes or changes nothing, so a panic elsewhere
        // while the lock was held leaves it consistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The topic's items with a timestamp at or after `since_ms`: what a reconciliation
    /// session over that window compares.
    pub fn items_since(&self, topic: &Topic, since_ms: u64) -> Result<SortedItems, LogError> {
        let items = self.list_items(topic, Item::first_at(since_ms).., usize::MAX)?;
        SortedItems::from_sorted(items).map_err(|e| LogError::corrupt("order index", e.to_string()))
    }

    /// Evicts the topic's entries older than `now_ms - max_age_ms`, then, if the topic is
    /// over its byte budget (say, the budget was lowered), the oldest down to 15/16 of it.
    /// One atomic write; returns what was evicted, oldest first.
    pub fn enforce_retention(
        &mut self,
        topic: &Topic,
        now_ms: u64,
    ) -> Result<Vec<Evicted>, LogError> {
        let keys = TopicKeys::new(topic);
        let Some(record) = self.load_record(&keys)? else {
            return Ok(Vec::new());
        };
        let cutoff = now_ms.saturating_sub(self.config.retention.max_age_ms);
        let victims = self.expired(&keys, &record, cutoff)?;
        if victims.is_empty() {
            return Ok(Vec::new());
        }
        let mut change = Change::new(&keys, record);
        for (item, bytes) in victims {
            change.evict(item, bytes)?;
        }
        let evicted = change.commit(&self.store)?;
        self.cache_written(&keys, &evicted, None);
        debug!(%topic, evicted = evicted.len(), cutoff, "log: retention");
        Ok(evicted)
    }

    /// [`Log::enforce_retention`] on every topic; returns what each lost.
    pub fn enforce_retention_all(
        &mut self,
        now_ms: u64,
    ) -> Result<Vec<(Topic, Vec<Evicted>)>, LogError> {
        let mut out = Vec::new();
        for topic in self.topics()? {
            let evicted = self.enforce_retention(&topic, now_ms)?;
            if !evicted.is_empty() {
                out.push((topic, evicted));
            }
        }
        Ok(out)
    }

    /// Entry count and bytes of a topic (zero for a topic never seen).
    pub fn stats(&self, topic: &Topic) -> Result<TopicStats, LogError> {
        Ok(self
            .load_record(&TopicKeys::new(topic))?
            .map(|r| TopicStats {
                count: r.count,
                bytes: r.bytes,
            })
            .unwrap_or_default())
    }

    /// Every topic the log has a record of.
    pub fn topics(&self) -> Result<Vec<Topic>, LogError> {
        self.store
            .scan_prefix(&records_prefix())?
            .into_iter()
            .map(|(_, value)| TopicRecord::decode(&value).map(|(_, topic)| topic))
            .collect()
    }

    /// Deletes a topic and everything under it (after unsubscribing); returns what it held.
    pub fn remove_topic(&mut self, topic: &Topic) -> Result<TopicStats, LogError> {
        let stats = self.stats(topic)?;
        let keys = TopicKeys::new(topic);
        let mut batch = WriteBatch::default();
        batch.delete_prefix(&keys.all());
        batch.delete(&keys.record());
        self.store.write(batch)?;
        self.cache().forget(&keys.topic_key());
        Ok(stats)
    }

    fn load_record(&self, keys: &TopicKeys) -> Result<Option<TopicRecord>, LogError> {
        self.store
            .get(&keys.record())?
            .map(|bytes| TopicRecord::decode(&bytes).map(|(record, _)| record))
            .transpose()
    }

    /// The topic's non-empty buckets with their entry counts, ascending.
    fn directory(&self, keys: &TopicKeys) -> Result<Vec<(u64, u64)>, LogError> {
        self.store
            .scan_prefix(&keys.directory_prefix())?
            .into_iter()
            .map(|(key, value)| {
                let bucket = keys
                    .parse_directory(&key)
                    .ok_or_else(|| LogError::corrupt("bucket directory", "malformed key"))?;
                let count = decode_u64(&value)
                    .ok_or_else(|| LogError::corrupt("bucket directory", "not a count"))?;
                Ok((bucket, count))
            })
            .collect()
    }

    /// The items of one bucket with their envelope lengths, ascending.
    fn bucket(&self, keys: &TopicKeys, bucket: u64) -> Result<Vec<(Item, u64)>, LogError> {
        self.store
            .scan_prefix(&keys.order_bucket(bucket))?
            .into_iter()
            .map(|(key, value)| {
                let item = keys
                    .parse_order(bucket, &key)
                    .ok_or_else(|| LogError::corrupt("order index", "malformed key"))?;
                let len = decode_u64(&value)
                    .ok_or_else(|| LogError::corrupt("order index", "not a length"))?;
                Ok((item, len))
            })
            .collect()
    }
}

impl<S: KvStore> ItemSource for Log<S> {
    type Error = LogError;

    fn items_since(&self, topic: &Topic, since_ms: u64) -> Result<SortedItems, LogError> {
        Log::items_since(self, topic, since_ms)
    }
}

#[cfg(test)]
mod tests;
