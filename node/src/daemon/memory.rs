//! What the node holds in memory: its resident set and the database's share of it, for
//! `status --json` (`memory`) and the metrics (`chorus_memory_*`). The soak reads them to say
//! where a node's memory goes.

use std::sync::Arc;

use identity_tofu::kv::RocksDb;

use crate::api::views::MemoryView;

/// Reads the node's memory figures now.
pub type MemoryProbe = Arc<dyn Fn() -> MemoryView + Send + Sync>;

/// A probe of this process and `db`.
pub fn probe(db: Arc<RocksDb>) -> MemoryProbe {
    Arc::new(move || {
        let db_usage = db.memory_usage();
        let heap = heap_figures();
        MemoryView {
            rss_bytes: resident_bytes(),
            heap_in_use_bytes: heap.map(|h| h.0),
            heap_free_bytes: heap.map(|h| h.1),
            db_memtables_bytes: db_usage.memtables,
            db_block_cache_bytes: db_usage.block_cache,
        }
    })
}

/// Every `every`, hands the pages the allocator holds free back to the system
/// (`malloc_trim`): glibc keeps freed memory in each thread's arena, so a node whose traffic
/// moves between threads grows its resident set without holding more. A no-op elsewhere.
pub fn trim_heap_every(every: std::time::Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // SAFETY: malloc_trim only returns free pages of the allocator's own arenas to
            // the system; it touches no memory in use.
            unsafe { libc::malloc_trim(0) };
        }
    });
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}

/// Caps glibc's malloc arenas at `arenas` unless `MALLOC_ARENA_MAX` says otherwise. glibc
/// gives each thread that allocates under contention its own arena, up to eight per core;
/// the daemon's runtime, network and database threads then leave freed memory scattered over
/// many arenas, where `malloc_trim` cannot hand much of it back, and the resident set creeps
/// up while the bytes in use stay flat. Call before any thread starts. A no-op elsewhere.
pub fn limit_heap_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads
        // exist, it races with no allocation.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// This process's resident set (`VmRSS` in `/proc/self/status`), if the system says.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The allocator's figures: (bytes handed out and not freed, bytes freed but kept by the
/// allocator). Their sum growing says the program holds more; only the second growing says
/// the heap fragments. glibc only; `None` elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_figures() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 only reads the allocator's statistics; it takes no arguments and
    // returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    let in_use = (info.uordblks as u64).saturating_add(info.hblkhd as u64);
    Some((in_use, info.fordblks as u64))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_figures() -> Option<(u64, u64)> {
    None
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_from_proc_status() {
        let status = "Name:\tchorus\nVmHWM:\t   50000 kB\nVmRSS:\t   41234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(41234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tchorus\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t lots kB\n"), None);
    }

    #[test]
    fn a_probe_reports_this_process_and_a_real_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = RocksDb::open(dir.path(), &["a"], identity_tofu::kv::Durability::Synced).unwrap();
        let store = db.store("a").unwrap();
        use identity_tofu::kv::KvStore as _;
        let mut batch = identity_tofu::kv::WriteBatch::default();
        for i in 0u32..1000 {
            batch.put(&i.to_be_bytes(), &[7; 512]);
        }
        store.write(batch).unwrap();
        let view = probe(db)();
        assert!(view.rss_bytes.is_some_and(|b| b > 1 << 20), "{view:?}");
        // The memtables are on the heap.
        assert!(
            view.heap_in_use_bytes.is_some_and(|b| b >= 512_000),
            "{view:?}"
        );
        // 1000 × 512 B written and not flushed: the memtables hold at least that.
        assert!(view.db_memtables_bytes >= 512_000, "{view:?}");
    }
}
