//! The RocksDB [`KvStore`]: one database per node, one column family per owner.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, Direction, FlushOptions, IteratorMode, Options, ReadOptions,
    WriteBufferManager, WriteOptions,
};

use super::{BatchOp, Durability, KvError, KvPair, KvStore, WriteBatch, prefix_successor};

fn backend(e: rocksdb::Error) -> KvError {
    KvError::Backend(e.into_string())
}

/// How much memory the database may hold in memory, all column families together.
///
/// RocksDB's defaults are sized for servers: a 64 MiB memtable per column family before it
/// is flushed and a 32 MiB block cache per table factory, so a node's memory grew with its
/// traffic for a long time before levelling off (the soak's "memory not flat"). Here one LRU
/// cache holds the blocks read *and* is charged for the memtables (a write-buffer manager),
/// so the total stays near [`DbMemoryBudget::total_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbMemoryBudget {
    /// Memtables, block cache, index and filter blocks together.
    pub total_bytes: usize,
}

impl DbMemoryBudget {
    /// The default: 16 MiB, of which memtables take at most half.
    pub const DEFAULT: Self = Self {
        total_bytes: 16 << 20,
    };

    /// A budget of `mib` MiB (at least 1).
    pub fn mib(mib: usize) -> Self {
        Self {
            total_bytes: mib.max(1).saturating_mul(1 << 20),
        }
    }

    fn memtable_bytes(self) -> usize {
        self.total_bytes / 2
    }
}

impl Default for DbMemoryBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the database holds in memory now, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbMemoryUsage {
    /// Memtables (written, not yet flushed to a table file).
    pub memtables: u64,
    /// The block cache, memtable reservations not counted.
    pub block_cache: u64,
}

/// A node's RocksDB, opened with a fixed set of column families.
pub struct RocksDb {
    db: rocksdb::DB,
    path: PathBuf,
    column_families: Vec<String>,
    durability: Durability,
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl std::fmt::Debug for RocksDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDb")
            .field("path", &self.path)
            .field("column_families", &self.column_families)
            .finish()
    }
}

/// The memory parts every column family shares.
struct SharedMemory {
    cache: Cache,
    write_buffers: WriteBufferManager,
    memtable_bytes: usize,
}

impl SharedMemory {
    fn new(budget: DbMemoryBudget) -> Self {
        let cache = Cache::new_lru_cache(budget.total_bytes);
        // Not stalling writers: a round's write waits for nothing but its own fsync; a flush
        // is started when the memtables pass the limit.
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            budget.memtable_bytes(),
            false,
            cache.clone(),
        );
        Self {
            cache,
            write_buffers,
            memtable_bytes: budget.memtable_bytes(),
        }
    }
}

fn column_family_options(memory: &SharedMemory) -> Options {
    let mut opts = Options::default();
    // Values are MLS secrets and (later) sealed ciphertexts: compression gains nothing, and
    // uncompressed files are what the forward-secrecy tests can inspect.
    opts.set_compression_type(DBCompressionType::None);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&memory.cache);
    // Index and filter blocks in the bounded cache too, not on the heap per open table file.
    table.set_cache_index_and_filter_blocks(true);
    // Most point reads of a busy node ask for a key that is not there (has the log this
    // envelope id yet?); without a filter each such read searched every table file's index
    // and a data block. Ten bits a key: about one such read in a hundred still does.
    table.set_bloom_filter(10.0, false);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
    opts.set_write_buffer_manager(&memory.write_buffers);
    // One column family's memtable never exceeds the shared limit on its own.
    opts.set_write_buffer_size(memory.memtable_bytes.clamp(1 << 20, 64 << 20));
    opts
}

impl RocksDb {
    /// Opens (creating if needed) the database at `path` with the given column families and
    /// the default memory budget.
    pub fn open(
        path: impl AsRef<Path>,
        column_families: &[&str],
        durability: Durability,
    ) -> Result<Arc<Self>, KvError> {
        Self::open_with_budget(path, column_families, durability, DbMemoryBudget::DEFAULT)
    }

    /// Opens (creating if needed) the database at `path`, holding about `budget` in memory.
    pub fn open_with_budget(
        path: impl AsRef<Path>,
        column_families: &[&str],
        durability: Durability,
        budget: DbMemoryBudget,
    ) -> Result<Arc<Self>, KvError> {
        let path = path.as_ref().to_path_buf();
        let memory = SharedMemory::new(budget);
        let mut opts = column_family_options(&memory);
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Obsolete write-ahead logs are deleted, never archived or recycled: they hold secrets.
        opts.set_wal_ttl_seconds(0);
        opts.set_wal_size_limit_mb(0);
        opts.set_recycle_log_file_num(0);
        opts.set_keep_log_file_num(4);
        let descriptors = column_families
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, column_family_options(&memory)));
        let db = rocksdb::DB::open_cf_descriptors(&opts, &path, descriptors).map_err(backend)?;
        Ok(Arc::new(Self {
            db,
            path,
            column_families: column_families.iter().map(|s| s.to_string()).collect(),
            durability,
            cache: memory.cache,
            write_buffers: memory.write_buffers,
        }))
    }

    /// What the database holds in memory now (for metrics and the soak's attribution).
    pub fn memory_usage(&self) -> DbMemoryUsage {
        let memtables = self.write_buffers.get_usage() as u64;
        // The memtables are charged to the cache as reservations: take them out so the two
        // figures add up rather than overlap.
        let block_cache = (self.cache.get_usage() as u64).saturating_sub(memtables);
        DbMemoryUsage {
            memtables,
            block_cache,
        }
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A [`KvStore`] over one column family of this database.
    pub fn store(self: &Arc<Self>, column_family: &str) -> Result<RocksStore, KvError> {
        if self.db.cf_handle(column_family).is_none() {
            return Err(KvError::UnknownColumnFamily(column_family.to_string()));
        }
        Ok(RocksStore {
            db: Arc::clone(self),
            column_family: column_family.to_string(),
        })
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, KvError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| KvError::UnknownColumnFamily(name.to_string()))
    }

    /// Makes every write so far durable against a power cut (fsyncs the write-ahead log).
    /// Needed only under [`Durability::GroupCommit`]; with the other modes it does nothing
    /// (`Synced` fsyncs each batch already, `ProcessCrashSafe` never promises a power cut).
    pub fn sync(&self) -> Result<(), KvError> {
        match self.durability {
            Durability::GroupCommit => self.db.flush_wal(true).map_err(backend),
            Durability::Synced | Durability::ProcessCrashSafe => Ok(()),
        }
    }

    /// When a write counts as done.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn write_options(&self) -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.durability == Durability::Synced);
        opts
    }

    /// Flushes every column family's memtable, so that no write-ahead log still needed holds
    /// data that was deleted since (RocksDB deletes a log once every family it covers is
    /// flushed).
    pub(crate) fn flush_all(&self) -> Result<(), KvError> {
        let handles = self
            .column_families
            .iter()
            .map(|name| self.cf(name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut opts = FlushOptions::default();
        opts.set_wait(true);
        self.db.flush_cfs_opt(&handles, &opts).map_err(backend)
    }
}

/// One column family of a [`RocksDb`], as a [`KvStore`].
#[derive(Debug, Clone)]
pub struct RocksStore {
    db: Arc<RocksDb>,
    column_family: String,
}

impl RocksStore {
    /// The database this store is a column family of.
    pub fn database(&self) -> &Arc<RocksDb> {
        &self.db
    }
}

impl KvStore for RocksStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let cf = self.db.cf(&self.column_family)?;
        self.db.db.get_cf(cf, key).map_err(backend)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        let cf = self.db.cf(&self.column_family)?;
        let mut read = ReadOptions::default();
        if let Some(end) = prefix_successor(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let iter =
            self.db
                .db
                .iterator_cf_opt(cf, read, IteratorMode::From(prefix, Direction::Forward));
        let mut out = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(backend)?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        let cf = self.db.cf(&self.column_family)?;
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put { key, value } => rocks_batch.put_cf(cf, key, value),
                BatchOp::Delete { key } => rocks_batch.delete_cf(cf, key),
                BatchOp::DeletePrefix { prefix } => match prefix_successor(&prefix) {
                    Some(end) => rocks_batch.delete_range_cf(cf, prefix, end),
                    // No upper bound exists: delete the keys one by one.
                    None => {
                        for (key, _) in self.scan_prefix(&prefix)? {
                            rocks_batch.delete_cf(cf, key);
                        }
                    }
                },
            }
        }
        self.db
            .db
            .write_opt(rocks_batch, &self.db.write_options())
            .map_err(backend)
    }

    fn scrub_prefix(&self, prefix: &[u8]) -> Result<(), KvError> {
        // 1. Flush memtables so the write-ahead logs that held the deleted values become
        //    obsolete and are deleted.
        self.db.flush_all()?;
        // 2. Rewrite every table file overlapping the range, down to the bottom level, so the
        //    tombstones drop the values and the old files are deleted.
        let cf = self.db.cf(&self.column_family)?;
        let mut opts = CompactOptions::default();
        opts.set_exclusive_manual_compaction(true);
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        let end = prefix_successor(prefix);
        self.db
            .db
            .compact_range_cf_opt(cf, Some(prefix), end.as_deref(), &opts);
        Ok(())
    }
}
