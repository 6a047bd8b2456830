//! When a write counts as done: the durability setting of the RocksDB store.
//!
//! Kept apart from the RocksDB module so that code that only names a setting (the node's
//! config parser) builds without RocksDB, as the fuzz targets do.

/// When a write counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every batch is fsynced before `write` returns: an acknowledged write survives a power
    /// cut. The default for nodes.
    #[default]
    Synced,
    /// Group commit: batches reach the write-ahead log (so they survive a process crash) but
    /// are fsynced only by `RocksDb::sync`, once for everything written since the last one.
    /// The owner runs many steps, syncs once, and only then acknowledges any of them — the
    /// durability of `Synced` at the cost of one fsync per round instead of one per batch.
    GroupCommit,
    /// The write-ahead log is written but not fsynced: an acknowledged write survives a process
    /// crash, not a power cut. For tests and benchmarks.
    ProcessCrashSafe,
}
