//! `KvStore`: the small ordered key-value interface every Chorus component stores through.
//!
//! One trait, two implementations: `RocksStore` (a column family of the node's RocksDB; the
//! `rocksdb` feature, on by default) and [`MemoryStore`] (an ordered map, for tests and the
//! simulator). [`SealedKv`] wraps either for encryption at rest (see [`sealed`]). It lives here, in the crate
//! that depends on nothing of ours, so that the trust store and the MLS storage share it.

mod batch;
mod durability;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;
pub mod sealed;

pub use batch::{BatchOp, WriteBatch, prefix_successor};
pub use durability::Durability;
pub use memory::MemoryStore;
#[cfg(feature = "rocksdb")]
pub use rocks::{DbMemoryBudget, DbMemoryUsage, RocksDb, RocksStore};
pub use sealed::{KeyRule, KeySchema, MasterKey, SealedKv, SealedOpenError};

/// A stored key and its value, as returned by a prefix scan.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// Errors from a [`KvStore`].
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The storage backend failed (I/O, disk full, a RocksDB error).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A column family that the store needs does not exist in the database.
    #[error("unknown column family {0:?}")]
    UnknownColumnFamily(String),
    /// Sealed storage (encryption at rest) refused: a value that does not open, a key outside
    /// the column's layout.
    #[error("sealed storage: {0}")]
    Sealed(String),
}

/// An ordered key-value store.
///
/// Writes that belong together go in one [`WriteBatch`], which is applied atomically: after a
/// crash either all of it is there or none of it.
pub trait KvStore: Send + Sync {
    /// The value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Every key starting with `prefix`, with its value, in ascending key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError>;

    /// Applies every operation of `batch` atomically, in order.
    fn write(&self, batch: WriteBatch) -> Result<(), KvError>;

    /// Makes the bytes of keys already deleted under `prefix` physically unrecoverable from
    /// the store's files (forward secrecy). A no-op for stores that keep nothing on disk.
    fn scrub_prefix(&self, prefix: &[u8]) -> Result<(), KvError>;

    /// Stores `value` under `key`.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let mut batch = WriteBatch::default();
        batch.put(key, value);
        self.write(batch)
    }

    /// Deletes `key` (deleting an absent key is not an error).
    fn delete(&self, key: &[u8]) -> Result<(), KvError> {
        let mut batch = WriteBatch::default();
        batch.delete(key);
        self.write(batch)
    }
}

impl<S: KvStore + ?Sized> KvStore for std::sync::Arc<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        (**self).get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        (**self).scan_prefix(prefix)
    }
    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        (**self).write(batch)
    }
    fn scrub_prefix(&self, prefix: &[u8]) -> Result<(), KvError> {
        (**self).scrub_prefix(prefix)
    }
}

#[cfg(all(test, feature = "rocksdb"))]
mod tests;
