//! The items — (timestamp, id) — of recently used topics, in memory.
//!
//! Every sync session reads the items of a window of its topic, and the peer serving it
//! reads them again for each round. On disk that is a scan of the order index with one
//! sealed value opened per entry, so a session cost time in proportion to the whole window
//! even when nothing was missing: with a busy topic and a short anti-entropy interval it was
//! a quarter to a third of a node's CPU. Here a topic's items are read from disk once and
//! then kept up to date by the log's own writes (the log owns its keys, see the module docs
//! of [`crate::log`]), so a window costs a copy of its items.
//!
//! Memory is bounded by [`LogConfig::cached_items`](super::LogConfig::cached_items): a topic
//! that would not fit is never cached (its reads go to disk as before), and the least
//! recently used topics make room for the others.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use crate::reconcile::Item;

/// A topic as the cache names it: its storage key.
pub(crate) type TopicKey = [u8; 16];

pub(crate) struct ItemCache {
    topics: HashMap<TopicKey, CachedTopic>,
    /// Items over all cached topics.
    items: usize,
    /// The most `items` may reach.
    budget: usize,
    /// Counts uses; a topic's last use orders eviction.
    clock: u64,
}

struct CachedTopic {
    items: BTreeSet<Item>,
    last_used: u64,
}

impl ItemCache {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            topics: HashMap::new(),
            items: 0,
            budget,
            clock: 0,
        }
    }

    /// True if a topic of `count` items may be cached at all.
    pub(crate) fn fits(&self, count: u64) -> bool {
        usize::try_from(count).is_ok_and(|n| n <= self.budget)
    }

    /// At most `limit` items of the topic between the bounds, ascending, if the topic is
    /// cached. Bounds that enclose nothing give nothing.
    pub(crate) fn range(
        &mut self,
        topic: &TopicKey,
        bounds: (Bound<Item>, Bound<Item>),
        limit: usize,
    ) -> Option<Vec<Item>> {
        self.clock += 1;
        let clock = self.clock;
        let cached = self.topics.get_mut(topic)?;
        cached.last_used = clock;
        if encloses_nothing(&bounds) {
            return Some(Vec::new());
        }
        Some(cached.items.range(bounds).take(limit).copied().collect())
    }

    /// Caches the whole topic, `items` being every item it holds, making room if need be.
    /// Does nothing if it would not fit.
    pub(crate) fn fill(&mut self, topic: TopicKey, items: impl IntoIterator<Item = Item>) {
        self.forget(&topic);
        let items: BTreeSet<Item> = items.into_iter().collect();
        if items.len() > self.budget {
            return;
        }
        self.make_room(items.len(), &topic);
        self.clock += 1;
        self.items += items.len();
        let last_used = self.clock;
        self.topics.insert(topic, CachedTopic { items, last_used });
    }

    /// The log stored `item` under the topic.
    pub(crate) fn inserted(&mut self, topic: &TopicKey, item: Item) {
        let Some(cached) = self.topics.get_mut(topic) else {
            return;
        };
        if cached.items.insert(item) {
            self.items += 1;
            if self.items > self.budget {
                self.make_room(0, topic);
                if self.items > self.budget {
                    // This topic alone outgrew the budget.
                    self.forget(topic);
                }
            }
        }
    }

    /// The log no longer holds `item` under the topic.
    pub(crate) fn removed(&mut self, topic: &TopicKey, item: &Item) {
        if let Some(cached) = self.topics.get_mut(topic)
            && cached.items.remove(item)
        {
            self.items -= 1;
        }
    }

    /// Drops the topic from the cache.
    pub(crate) fn forget(&mut self, topic: &TopicKey) {
        if let Some(cached) = self.topics.remove(topic) {
            self.items -= cached.items.len();
        }
    }

    /// Evicts the least recently used topics other than `keep` until `more` items fit.
    fn make_room(&mut self, more: usize, keep: &TopicKey) {
        while self.items + more > self.budget {
            let oldest = self
                .topics
                .iter()
                .filter(|(key, _)| *key != keep)
                .min_by_key(|(_, cached)| cached.last_used)
                .map(|(key, _)| *key);
            match oldest {
                Some(key) => self.forget(&key),
                None => return,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn cached_topics(&self) -> usize {
        self.topics.len()
    }
}

impl std::fmt::Debug for ItemCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemCache")
            .field("topics", &self.topics.len())
            .field("items", &self.items)
            .field("budget", &self.budget)
            .finish()
    }
}

/// True for bounds no item can lie between; `BTreeSet::range` panics on some of them.
fn encloses_nothing(bounds: &(Bound<Item>, Bound<Item>)) -> bool {
    match bounds {
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope_id::EnvelopeId;

    fn item(t: u64) -> Item {
        Item::new(t, EnvelopeId([t as u8; 32]))
    }

    fn all(cache: &mut ItemCache, topic: &TopicKey) -> Option<Vec<Item>> {
        cache.range(topic, (Bound::Unbounded, Bound::Unbounded), usize::MAX)
    }

    #[test]
    fn the_least_recently_used_topic_makes_room_and_a_topic_too_big_is_not_kept() {
        let mut cache = ItemCache::new(5);
        cache.fill([1; 16], [item(1), item(2)]);
        cache.fill([2; 16], [item(3), item(4)]);
        assert!(all(&mut cache, &[1; 16]).is_some()); // topic 2 is now the older
        cache.fill([3; 16], [item(5), item(6)]);
        assert_eq!(all(&mut cache, &[2; 16]), None);
        assert_eq!(all(&mut cache, &[1; 16]), Some(vec![item(1), item(2)]));
        assert_eq!(cache.cached_topics(), 2);

        cache.fill([4; 16], (10..16).map(item));
        assert_eq!(all(&mut cache, &[4; 16]), None);
        assert_eq!(cache.cached_topics(), 2);

        // Topic 3 grows past what is left: topic 1 (older) goes, then 3 itself when it
        // alone outgrows the budget.
        assert!(all(&mut cache, &[3; 16]).is_some());
        cache.inserted(&[3; 16], item(7));
        cache.inserted(&[3; 16], item(8));
        assert_eq!(all(&mut cache, &[1; 16]), None);
        assert_eq!(all(&mut cache, &[3; 16]).unwrap().len(), 4);
        cache.inserted(&[3; 16], item(9));
        cache.inserted(&[3; 16], item(20));
        assert_eq!(all(&mut cache, &[3; 16]), None);
        assert_eq!(cache.items, 0);
    }

    #[test]
    fn writes_keep_a_cached_topic_exact_and_empty_bounds_give_nothing() {
        let mut cache = ItemCache::new(100);
        cache.fill([1; 16], [item(1), item(3)]);
        cache.inserted(&[1; 16], item(2));
        cache.inserted(&[1; 16], item(2));
        cache.removed(&[1; 16], &item(1));
        cache.removed(&[1; 16], &item(50));
        cache.inserted(&[9; 16], item(4)); // not cached: ignored
        assert_eq!(all(&mut cache, &[1; 16]), Some(vec![item(2), item(3)]));
        assert_eq!(cache.items, 2);
        let from_two = (Bound::Included(item(2)), Bound::Unbounded);
        assert_eq!(cache.range(&[1; 16], from_two, 1), Some(vec![item(2)]));
        for empty in [
            (Bound::Included(item(3)), Bound::Included(item(2))),
            (Bound::Excluded(item(2)), Bound::Excluded(item(2))),
            (Bound::Included(item(2)), Bound::Excluded(item(2))),
        ] {
            assert_eq!(cache.range(&[1; 16], empty, 10), Some(Vec::new()));
        }
        cache.forget(&[1; 16]);
        assert_eq!(cache.items, 0);
    }
}
