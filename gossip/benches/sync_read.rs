//! What a sync session reads from the log before it reconciles anything: the items of its
//! window. From the item cache against the baseline it replaced — the scan of the order index
//! on disk, one sealed value opened per entry (`cached_items: 0` gives that path) — side by
//! side in one run, on the node's own storage (sealed RocksDB, the log's key layout).
//!
//! Run with `cargo bench -p gossip --bench sync_read` (a release build). Times are medians,
//! for comparison within the run only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gossip::{Log, LogConfig, Topic};
use identity_tofu::kv::{Durability, KvStore, MasterKey, RocksDb, SealedKv};

const T0: u64 = 1_700_000_000_000;

/// A sealed RocksDB log holding `n` envelopes of 256 bytes on one topic, a millisecond apart.
fn filled(dir: &std::path::Path, n: u64) -> impl KvStore + Clone {
    let db = RocksDb::open(dir, &["gossip"], Durability::ProcessCrashSafe).expect("open db");
    let column = db.store("gossip").expect("column");
    let sealed = std::sync::Arc::new(
        SealedKv::open(
            column,
            "gossip",
            &MasterKey::generate(&mut rand::rngs::OsRng),
            gossip::log::sealed_layout(),
            rand::random(),
        )
        .expect("sealed store"),
    );
    let mut log = Log::open(sealed.clone(), LogConfig::default()).expect("log");
    for i in 0..n {
        let mut envelope = vec![0u8; 256];
        envelope[..8].copy_from_slice(&i.to_be_bytes());
        let appended = log.append(&topic(), &envelope, T0 + i).expect("append");
        assert!(matches!(appended, gossip::Appended::Stored { .. }));
    }
    sealed
}

fn topic() -> Topic {
    Topic::new("chorus/g/00112233445566778899aabbccddeeff").expect("topic")
}

/// The median time of `runs` reads of the whole window.
fn median_read(log: &Log<impl KvStore>, runs: usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut items = 0;
    for _ in 0..runs {
        let start = Instant::now();
        items = black_box(log.items_since(&topic(), 0).expect("read")).len();
        times.push(start.elapsed());
    }
    times.sort();
    (times[runs / 2], items)
}

fn main() {
    println!("a sync session's read of its window: item cache vs the order index on disk");
    println!(
        "{:>8} | {:>12} {:>12} | {:>8}",
        "items", "disk ms", "cache ms", "speed-up"
    );
    for n in [1_000u64, 10_000, 100_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = filled(dir.path(), n);
        let uncached = LogConfig {
            cached_items: 0,
            ..LogConfig::default()
        };
        let disk = Log::open(store.clone(), uncached).expect("log");
        let cached = Log::open(store, LogConfig::default()).expect("log");
        // The first read fills the cache (a disk read itself); sessions after it are timed.
        cached.items_since(&topic(), 0).expect("fill");
        let runs = if n >= 100_000 { 5 } else { 21 };
        let (disk_time, disk_items) = median_read(&disk, runs);
        let (cache_time, cache_items) = median_read(&cached, runs);
        assert_eq!(disk_items, cache_items, "both reads give the same items");
        assert_eq!(disk_items as u64, n);
        println!(
            "{:>8} | {:>12.3} {:>12.3} | {:>7.1}×",
            n,
            disk_time.as_secs_f64() * 1e3,
            cache_time.as_secs_f64() * 1e3,
            disk_time.as_secs_f64() / cache_time.as_secs_f64()
        );
    }
}
