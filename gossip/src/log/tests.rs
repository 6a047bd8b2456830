//! Properties of the log, on the in-memory store and on RocksDB.

use std::collections::BTreeMap;

use identity_tofu::kv::{Durability, KvError, KvPair, KvStore, MemoryStore, RocksDb, WriteBatch};
use rand::Rng;

use super::*;
use crate::test_support::{rng, seed};

const MINUTE: u64 = 60_000;
const T0: u64 = 1_700_000_000_000;

fn topic(name: &str) -> Topic {
    Topic::new(format!("chorus/g/{name}")).unwrap()
}

fn config(max_bytes: u64, max_age_ms: u64) -> LogConfig {
    LogConfig {
        max_envelope_bytes: 1000,
        retention: Retention {
            max_age_ms,
            max_bytes_per_topic: max_bytes,
        },
        cached_items: 1 << 20,
    }
}

fn memory_log() -> Log<MemoryStore> {
    Log::open(MemoryStore::new(), config(1 << 30, 1 << 40)).unwrap()
}

fn envelope(n: u64) -> Vec<u8> {
    format!("envelope number {n}").into_bytes()
}

fn stored(appended: Appended) -> (EnvelopeId, Vec<Evicted>) {
    match appended {
        Appended::Stored { id, evicted } => (id, evicted),
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[test]
fn append_then_get_returns_the_envelope_with_its_id_and_time() {
    let mut log = memory_log();
    let t = topic("a");
    let (id, evicted) = stored(log.append(&t, b"hello", T0).unwrap());
    assert!(evicted.is_empty());
    assert_eq!(id, EnvelopeId::of(b"hello"));
    let entry = log.get(&t, &id).unwrap().unwrap();
    assert_eq!(
        entry,
        Entry {
            id,
            topic: t.clone(),
            timestamp_ms: T0,
            envelope: b"hello".to_vec()
        }
    );
    assert!(log.has(&t, &id).unwrap());
    assert!(!log.has(&topic("other"), &id).unwrap());
    assert_eq!(log.get(&topic("other"), &id).unwrap(), None);
    assert_eq!(log.stats(&t).unwrap(), TopicStats { count: 1, bytes: 5 });
}

#[test]
fn a_duplicate_is_reported_and_not_stored_twice() {
    let mut log = memory_log();
    let t = topic("a");
    let (id, _) = stored(log.append(&t, b"once", T0).unwrap());
    // Same bytes, even with another timestamp: same id, nothing changes.
    assert_eq!(
        log.append(&t, b"once", T0 + 5).unwrap(),
        Appended::Duplicate { id }
    );
    assert_eq!(log.stats(&t).unwrap(), TopicStats { count: 1, bytes: 4 });
    assert_eq!(log.get(&t, &id).unwrap().unwrap().timestamp_ms, T0);
    assert_eq!(log.items_since(&t, 0).unwrap().len(), 1);
    // The same envelope on another topic is another entry.
    stored(log.append(&topic("b"), b"once", T0).unwrap());
}

#[test]
fn an_oversized_envelope_is_an_error_and_stores_nothing() {
    let mut log = memory_log();
    let t = topic("a");
    let err = log.append(&t, &[0u8; 1001], T0).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::EnvelopeTooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    assert_eq!(log.stats(&t).unwrap(), TopicStats::default());
    stored(log.append(&t, &[0u8; 1000], T0).unwrap());
}

#[test]
fn listing_follows_timestamp_then_id_order_across_buckets() {
    let seed = seed("listing_follows_timestamp_then_id_order_across_buckets");
    let mut rng = rng(seed);
    let mut log = memory_log();
    let t = topic("a");
    let mut model = Vec::new();
    for n in 0..500u64 {
        // Spread over ~10 buckets, with many equal timestamps.
        let ts = T0 + rng.gen_range(0..40u64) * MINUTE;
        let (id, _) = stored(log.append(&t, &envelope(n), ts).unwrap());
        model.push(Item::new(ts, id));
    }
    model.sort();
    assert_eq!(log.list_items(&t, .., usize::MAX).unwrap(), model);
    assert_eq!(log.items_since(&t, 0).unwrap().as_slice(), model.as_slice());
    for _ in 0..50 {
        let a = model[rng.gen_range(0..model.len())];
        let b = model[rng.gen_range(0..model.len())];
        let (lo, hi) = (a.min(b), a.max(b));
        let expected: Vec<Item> = model
            .iter()
            .copied()
            .filter(|i| lo <= *i && *i < hi)
            .collect();
        assert_eq!(log.list_items(&t, lo..hi, usize::MAX).unwrap(), expected);
        let expected: Vec<Item> = model
            .iter()
            .copied()
            .filter(|i| lo < *i && *i <= hi)
            .collect();
        let range = (std::ops::Bound::Excluded(lo), std::ops::Bound::Included(hi));
        assert_eq!(log.list_items(&t, range, usize::MAX).unwrap(), expected);
        let limit = rng.gen_range(0..20);
        let got = log.list_items(&t, lo.., limit).unwrap();
        let expected: Vec<Item> = model
            .iter()
            .copied()
            .filter(|i| lo <= *i)
            .take(limit)
            .collect();
        assert_eq!(got, expected);
        let since = lo.timestamp_ms;
        let expected: Vec<Item> = model
            .iter()
            .copied()
            .filter(|i| i.timestamp_ms >= since)
            .collect();
        assert_eq!(
            log.items_since(&t, since).unwrap().as_slice(),
            expected.as_slice()
        );
    }
}

#[test]
fn retention_by_age_evicts_exactly_the_old_entries_and_returns_them() {
    let mut log = Log::open(MemoryStore::new(), config(1 << 30, 60 * MINUTE)).unwrap();
    let t = topic("a");
    let mut ids = Vec::new();
    for n in 0..120u64 {
        let (id, _) = stored(log.append(&t, &envelope(n), T0 + n * MINUTE).unwrap());
        ids.push(id);
    }
    // At T0 + 100 min, everything before T0 + 40 min is too old: entries 0..40.
    let evicted = log.enforce_retention(&t, T0 + 100 * MINUTE).unwrap();
    let evicted_ts: Vec<u64> = evicted.iter().map(|e| e.item.timestamp_ms).collect();
    assert_eq!(
        evicted_ts,
        (0..40).map(|n| T0 + n * MINUTE).collect::<Vec<_>>()
    );
    assert!(evicted.iter().zip(&ids).all(|(e, id)| e.item.id == *id));
    assert_eq!(log.stats(&t).unwrap().count, 80);
    assert!(!log.has(&t, &ids[39]).unwrap());
    assert!(log.has(&t, &ids[40]).unwrap());
    // Nothing more to do at the same time; a second call is a no-op.
    assert!(
        log.enforce_retention(&t, T0 + 100 * MINUTE)
            .unwrap()
            .is_empty()
    );
    // An evicted envelope offered again (say, by a peer) is refused, not resurrected.
    assert_eq!(
        log.append(&t, &envelope(3), T0 + 3 * MINUTE).unwrap(),
        Appended::Expired { id: ids[3] }
    );
    assert_eq!(log.stats(&t).unwrap().count, 80);
    // The all-topics variant reports per topic.
    let all = log.enforce_retention_all(T0 + 200 * MINUTE).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.len(), 80);
    assert_eq!(log.stats(&t).unwrap(), TopicStats::default());
}

#[test]
fn retention_by_bytes_evicts_oldest_first_and_never_exceeds_the_budget() {
    let seed = seed("retention_by_bytes_evicts_oldest_first_and_never_exceeds_the_budget");
    let mut rng = rng(seed);
    let max = 10_000;
    let mut log = Log::open(MemoryStore::new(), config(max, 1 << 40)).unwrap();
    let t = topic("a");
    let mut model: BTreeMap<Item, u64> = BTreeMap::new();
    for n in 0..2_000u64 {
        // Unique bytes (the counter first), random length and padding.
        let len = rng.gen_range(8..=1000usize);
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes[8..]);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        // Mostly increasing times with jitter, so some appends are older than held entries.
        let ts = T0 + n * 1000 + rng.gen_range(0..20_000);
        match log.append(&t, &bytes, ts).unwrap() {
            Appended::Stored { id, evicted } => {
                for e in &evicted {
                    assert_eq!(model.first_key_value().map(|(i, _)| *i), Some(e.item));
                    assert_eq!(model.remove(&e.item), Some(e.bytes));
                    assert!(e.item < Item::new(ts, id), "evicted something newer");
                }
                model.insert(Item::new(ts, id), len as u64);
            }
            Appended::Expired { id } => {
                // Only when it would have been the oldest to go.
                let oldest = model.first_key_value().map(|(i, _)| *i);
                assert!(oldest.is_none_or(|o| Item::new(ts, id) < o));
            }
            Appended::Duplicate { .. } => {}
        }
        let stats = log.stats(&t).unwrap();
        assert!(stats.bytes <= max, "over budget: {stats:?}");
        assert_eq!(stats.bytes, model.values().sum::<u64>());
        assert_eq!(stats.count, model.len() as u64);
    }
    let held: Vec<Item> = model.keys().copied().collect();
    assert_eq!(log.list_items(&t, .., usize::MAX).unwrap(), held);
}

#[test]
fn lowering_the_byte_budget_is_enforced_by_retention() {
    let store = MemoryStore::new();
    let t = topic("a");
    {
        let mut log = Log::open(store.clone(), config(1 << 20, 1 << 40)).unwrap();
        for n in 0..100u64 {
            stored(log.append(&t, &[n as u8; 100], T0 + n).unwrap());
        }
    }
    let mut log = Log::open(store, config(1600, 1 << 40)).unwrap();
    let evicted = log.enforce_retention(&t, T0).unwrap();
    // Down to the low-water mark, 15/16 of 1600 = 1500 bytes: 15 entries stay.
    assert_eq!(evicted.len(), 85);
    assert_eq!(
        log.stats(&t).unwrap(),
        TopicStats {
            count: 15,
            bytes: 1500
        }
    );
    assert_eq!(
        log.list_items(&t, .., usize::MAX).unwrap()[0].timestamp_ms,
        T0 + 85
    );
}

#[test]
fn reopening_rocksdb_keeps_entries_counters_and_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let t = topic("a");
    let mut ids = Vec::new();
    {
        let db = RocksDb::open(dir.path(), &["gossip"], Durability::ProcessCrashSafe).unwrap();
        let mut log = Log::open(db.store("gossip").unwrap(), config(1 << 20, 10 * MINUTE)).unwrap();
        for n in 0..50u64 {
            let (id, _) = stored(log.append(&t, &envelope(n), T0 + n * MINUTE).unwrap());
            ids.push(id);
        }
        assert_eq!(
            log.enforce_retention(&t, T0 + 30 * MINUTE).unwrap().len(),
            20
        );
        assert_eq!(
            log.append(&t, &envelope(0), T0).unwrap(),
            Appended::Expired { id: ids[0] }
        );
    }
    let db = RocksDb::open(dir.path(), &["gossip"], Durability::ProcessCrashSafe).unwrap();
    let mut log = Log::open(db.store("gossip").unwrap(), config(1 << 20, 10 * MINUTE)).unwrap();
    assert_eq!(log.topics().unwrap(), vec![t.clone()]);
    assert_eq!(log.stats(&t).unwrap().count, 30);
    let entry = log.get(&t, &ids[25]).unwrap().unwrap();
    assert_eq!(entry.envelope, envelope(25));
    assert_eq!(entry.timestamp_ms, T0 + 25 * MINUTE);
    assert_eq!(log.items_since(&t, 0).unwrap().len(), 30);
    // The floor survived: an evicted envelope is still refused after reopening.
    assert_eq!(
        log.append(&t, &envelope(5), T0 + 5 * MINUTE).unwrap(),
        Appended::Expired { id: ids[5] }
    );
    assert_eq!(
        log.append(&t, &envelope(25), T0 + 25 * MINUTE).unwrap(),
        Appended::Duplicate { id: ids[25] }
    );
    stored(log.append(&t, &envelope(99), T0 + 99 * MINUTE).unwrap());
    assert_eq!(log.stats(&t).unwrap().count, 31);
}

#[test]
fn topics_are_listed_kept_apart_and_removable() {
    let mut log = memory_log();
    let (a, b) = (topic("a"), topic("b"));
    for n in 0..10 {
        stored(log.append(&a, &envelope(n), T0 + n).unwrap());
        stored(log.append(&b, &envelope(n + 100), T0 + n).unwrap());
    }
    let mut topics = log.topics().unwrap();
    topics.sort();
    assert_eq!(topics, vec![a.clone(), b.clone()]);
    assert_eq!(log.remove_topic(&a).unwrap().count, 10);
    assert_eq!(log.topics().unwrap(), vec![b.clone()]);
    assert_eq!(log.stats(&a).unwrap(), TopicStats::default());
    assert!(log.items_since(&a, 0).unwrap().is_empty());
    assert_eq!(log.items_since(&b, 0).unwrap().len(), 10);
}

#[test]
fn the_log_is_an_item_source_for_reconciliation() {
    let mut log = memory_log();
    let t = topic("a");
    for n in 0..20 {
        stored(log.append(&t, &envelope(n), T0 + n).unwrap());
    }
    let from_trait = ItemSource::items_since(&log, &t, T0 + 10).unwrap();
    assert_eq!(from_trait.len(), 10);
    assert_eq!(from_trait, log.items_since(&t, T0 + 10).unwrap());
}

/// Damage each kind of stored value in turn: every read or write that meets it returns
/// `Corrupt`, none panics.
#[test]
fn corrupt_stored_data_is_an_error_not_a_panic() {
    let t = topic("a");
    let keys = TopicKeys::new(&t);
    let fresh = || {
        let store = MemoryStore::new();
        let mut log = Log::open(store.clone(), config(2_000, 1 << 40)).unwrap();
        let mut ids = Vec::new();
        for n in 0..10u64 {
            let (id, _) = stored(log.append(&t, &[n as u8; 100], T0 + n).unwrap());
            ids.push(id);
        }
        (store, log, ids)
    };
    let is_corrupt = |r: Result<(), LogError>| matches!(r, Err(LogError::Corrupt { .. }));

    // A topic record that is not one.
    let (store, mut log, _) = fresh();
    store.put(&keys.record(), b"\x01garbage").unwrap();
    assert!(is_corrupt(log.stats(&t).map(drop)));
    assert!(is_corrupt(log.append(&t, b"new", T0 + 50).map(drop)));
    assert!(is_corrupt(log.enforce_retention(&t, T0).map(drop)));
    assert!(is_corrupt(log.topics().map(drop)));

    // An entry whose bytes no longer hash to its id, and one that is malformed.
    let (store, log, ids) = fresh();
    let mut value = store.get(&keys.entry(&ids[0])).unwrap().unwrap();
    *value.last_mut().unwrap() ^= 1;
    store.put(&keys.entry(&ids[0]), &value).unwrap();
    assert!(is_corrupt(log.get(&t, &ids[0]).map(drop)));
    store.put(&keys.entry(&ids[1]), b"\x01").unwrap();
    assert!(is_corrupt(log.get(&t, &ids[1]).map(drop)));

    // A malformed order key or length in the index.
    let (store, log, _) = fresh();
    let mut bad_key = keys.order_bucket(bucket_of(T0));
    bad_key.extend_from_slice(b"short");
    store.put(&bad_key, &[0; 8]).unwrap();
    assert!(is_corrupt(log.items_since(&t, 0).map(drop)));
    let (store, log, ids) = fresh();
    store
        .put(&keys.order(&Item::new(T0, ids[0])), b"len?")
        .unwrap();
    assert!(is_corrupt(log.list_items(&t, .., 100).map(drop)));

    // A directory count that is not a count, and counters that undercount.
    let (store, mut log, _) = fresh();
    store.put(&keys.directory(bucket_of(T0)), b"x").unwrap();
    assert!(is_corrupt(log.items_since(&t, 0).map(drop)));
    // Same bucket as the damaged count, so the append has to update it.
    assert!(is_corrupt(log.append(&t, b"new", T0).map(drop)));
    let (store, mut log, _) = fresh();
    let (mut record, _) =
        TopicRecord::decode(&store.get(&keys.record()).unwrap().unwrap()).unwrap();
    record.bytes = 100_000; // far more than the 1,000 stored: eviction runs out of entries
    store
        .put(&keys.record(), &record.encode().unwrap())
        .unwrap();
    assert!(is_corrupt(log.append(&t, &[7; 500], T0 + 50).map(drop)));
    record.bytes = 1_000;
    record.count = 3; // fewer than the 10 stored: eviction would underflow it
    store
        .put(&keys.record(), &record.encode().unwrap())
        .unwrap();
    let mut small = Log::open(store.clone(), config(1_000, 1 << 40)).unwrap();
    assert!(is_corrupt(
        small.enforce_retention(&t, T0 + (1 << 41)).map(drop)
    ));
    drop(log);
}

/// A store whose writes fail: a failed append must leave nothing behind.
struct FailingWrites(MemoryStore);

impl KvStore for FailingWrites {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.0.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        self.0.scan_prefix(prefix)
    }
    fn write(&self, _batch: WriteBatch) -> Result<(), KvError> {
        Err(KvError::Backend("disk full".into()))
    }
    fn scrub_prefix(&self, prefix: &[u8]) -> Result<(), KvError> {
        self.0.scrub_prefix(prefix)
    }
}

#[test]
fn a_failed_write_changes_nothing() {
    let store = MemoryStore::new();
    let t = topic("a");
    let mut log = Log::open(store.clone(), config(1 << 20, 1 << 40)).unwrap();
    stored(log.append(&t, b"first", T0).unwrap());
    let before = store.scan_prefix(b"").unwrap();
    let mut failing = Log::open(FailingWrites(store.clone()), config(1 << 20, 1 << 40)).unwrap();
    assert!(matches!(
        failing.append(&t, b"second", T0 + 1),
        Err(LogError::Store(_))
    ));
    assert_eq!(store.scan_prefix(b"").unwrap(), before);
}

#[test]
fn inconsistent_configs_are_refused() {
    assert!(Log::open(MemoryStore::new(), config(999, 1)).is_err());
    assert!(Log::open(MemoryStore::new(), config(1000, 0)).is_err());
    assert!(Log::open(MemoryStore::new(), LogConfig::default()).is_ok());
}

/// The item cache answers as the disk does, through appends that evict, retention, removed
/// topics, and topics pushed out of a cache too small to hold them all.
#[test]
fn cached_items_always_match_what_the_disk_holds() {
    let seed = seed("cached_items_always_match_what_the_disk_holds");
    let mut rng = rng(seed);
    let store = MemoryStore::new();
    let small_cache = LogConfig {
        cached_items: 40,
        ..config(3_000, 100 * MINUTE)
    };
    let mut log = Log::open(store.clone(), small_cache).unwrap();
    let uncached = Log::open(
        store.clone(),
        LogConfig {
            cached_items: 0,
            ..config(3_000, 100 * MINUTE)
        },
    )
    .unwrap();
    let topics = [topic("a"), topic("b"), topic("c")];
    let mut now = T0;
    let mut evictions = 0;
    for n in 0..3_000u64 {
        let t = &topics[rng.gen_range(0..topics.len())];
        now += rng.gen_range(0..MINUTE);
        match rng.gen_range(0..100) {
            0..=79 => {
                let mut bytes = vec![0u8; rng.gen_range(8..200usize)];
                bytes[..8].copy_from_slice(&n.to_be_bytes());
                let ts = now.saturating_sub(rng.gen_range(0..30 * MINUTE));
                if let Appended::Stored { evicted, .. } = log.append(t, &bytes, ts).unwrap() {
                    evictions += evicted.len();
                }
            }
            80..=89 => {
                log.enforce_retention(t, now).unwrap();
            }
            90..=91 => {
                log.remove_topic(t).unwrap();
            }
            _ => {}
        }
        let t = &topics[rng.gen_range(0..topics.len())];
        let a = Item::new(
            now.saturating_sub(rng.gen_range(0..120 * MINUTE)),
            EnvelopeId([0; 32]),
        );
        let b = Item::new(
            now.saturating_sub(rng.gen_range(0..120 * MINUTE)),
            EnvelopeId([255; 32]),
        );
        let limit = if rng.gen_bool(0.2) {
            rng.gen_range(0..5)
        } else {
            usize::MAX
        };
        assert_eq!(
            log.list_items(t, a..=b, limit).unwrap(),
            uncached.list_items(t, a..=b, limit).unwrap(),
            "step {n}: {a:?}..={b:?} limit {limit}"
        );
        assert_eq!(
            log.items_since(t, a.timestamp_ms).unwrap(),
            uncached.items_since(t, a.timestamp_ms).unwrap(),
            "step {n}: since {}",
            a.timestamp_ms
        );
    }
    assert!(
        log.cache().cached_topics() >= 1,
        "the test never used the cache"
    );
    assert!(evictions > 0, "no append evicted");
}
