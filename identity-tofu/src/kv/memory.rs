//! The in-memory [`KvStore`]: an ordered map, for tests and the simulator.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BatchOp, KvError, KvPair, KvStore, WriteBatch, prefix_successor};

/// An ordered in-memory store. Clones share the same map, like handles to one database.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // Only a panic inside a BTreeMap operation (out of memory) could poison the lock; the
        // map is still a valid map then, so keep serving it.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn prefix_range(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), end)
}

impl KvStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        Ok(self
            .lock()
            .range(prefix_range(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        // Applying an operation to a map cannot fail, so holding the lock for the whole batch
        // is enough to make it atomic for every reader.
        let mut next = self.lock();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put { key, value } => {
                    next.insert(key, value);
                }
                BatchOp::Delete { key } => {
                    next.remove(&key);
                }
                BatchOp::DeletePrefix { prefix } => {
                    let doomed: Vec<Vec<u8>> = next
                        .range(prefix_range(&prefix))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        next.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn scrub_prefix(&self, _prefix: &[u8]) -> Result<(), KvError> {
        Ok(())
    }
}
