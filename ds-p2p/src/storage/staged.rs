//! A [`KvStore`] front that can stage writes and apply them as one atomic batch.
//!
//! openmls writes a group's state as a dozen separate calls (tree, context, secrets, ...).
//! If those went to disk one by one, a crash in between would leave a state that is neither
//! the old epoch nor the new one; and an error half-way would leave the store ahead of what
//! the engine believes. So the engine opens a transaction around every step (process a
//! commit, merge it, checkpoint the old branch), reads see the staged writes, and the step
//! lands with one `WriteBatch` — or is rolled back and nothing happened.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use identity_tofu::kv::{BatchOp, KvError, KvPair, KvStore, WriteBatch};

/// Writes staged by an open transaction.
#[derive(Default)]
struct Staged {
    /// The operations in the order they were made; replayed as one batch on commit.
    ops: Vec<BatchOp>,
    /// Where in `ops` the last put or delete of a key is, since the last prefix deletion: a
    /// key written again replaces that operation instead of adding one (a step rewrites some
    /// keys several times, and each operation is sealed and written).
    last_op: HashMap<Vec<u8>, usize>,
    /// What a read sees for a key written in this transaction (`None`: deleted).
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Prefixes deleted in this transaction; keys under them read as absent unless rewritten.
    deleted_prefixes: Vec<Vec<u8>>,
    /// Prefixes whose deleted bytes must be scrubbed from disk once the batch is written.
    scrub: Vec<Vec<u8>>,
}

impl Staged {
    fn hides(&self, key: &[u8]) -> bool {
        self.deleted_prefixes.iter().any(|p| key.starts_with(p))
    }

    /// Records a put or delete of `key`, replacing the key's earlier one when no prefix
    /// deletion came in between (the batch then ends in the same state).
    fn record(&mut self, key: Vec<u8>, op: BatchOp) {
        match self.last_op.get(&key) {
            Some(&at) => self.ops[at] = op,
            None => {
                self.last_op.insert(key, self.ops.len());
                self.ops.push(op);
            }
        }
    }
}

/// Errors of the transaction discipline itself.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// `begin` while a transaction is already open.
    #[error("a storage transaction is already open")]
    AlreadyOpen,
    /// `commit` or `rollback` with no transaction open.
    #[error("no storage transaction is open")]
    NotOpen,
    /// The store failed.
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// A shared handle to a [`KvStore`] with optional staging. Clones share the staging state.
#[derive(Clone)]
pub struct StagedStore {
    kv: Arc<dyn KvStore>,
    staged: Arc<Mutex<Option<Staged>>>,
}

impl std::fmt::Debug for StagedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedStore")
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}

impl StagedStore {
    /// Wraps a store. No transaction is open: writes apply at once.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self {
            kv,
            staged: Arc::new(Mutex::new(None)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Staged>> {
        // Staging only holds plain data; a panic elsewhere leaves it consistent.
        self.staged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.lock().is_some()
    }

    /// Opens a transaction: later writes are staged until [`commit`](Self::commit).
    pub fn begin(&self) -> Result<(), TxnError> {
        let mut staged = self.lock();
        if staged.is_some() {
            return Err(TxnError::AlreadyOpen);
        }
        *staged = Some(Staged::default());
        Ok(())
    }

    /// Writes every staged operation as one atomic batch, then scrubs what was purged.
    /// On error nothing was written and the transaction is closed.
    pub fn commit(&self) -> Result<(), TxnError> {
        let staged = self.lock().take().ok_or(TxnError::NotOpen)?;
        let mut batch = WriteBatch::default();
        for op in staged.ops {
            match op {
                BatchOp::Put { key, value } => batch.put(&key, &value),
                BatchOp::Delete { key } => batch.delete(&key),
                BatchOp::DeletePrefix { prefix } => batch.delete_prefix(&prefix),
            }
        }
        if !batch.is_empty() {
            self.kv.write(batch)?;
        }
        for prefix in staged.scrub {
            self.kv.scrub_prefix(&prefix)?;
        }
        Ok(())
    }

    /// Drops every staged operation.
    pub fn rollback(&self) -> Result<(), TxnError> {
        self.lock().take().map(|_| ()).ok_or(TxnError::NotOpen)
    }

    /// The value under `key`, as the open transaction sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(staged) = self.lock().as_ref() {
            if let Some(value) = staged.overlay.get(key) {
                return Ok(value.clone());
            }
            if staged.hides(key) {
                return Ok(None);
            }
        }
        self.kv.get(key)
    }

    /// Every key under `prefix` with its value, ascending, as the open transaction sees it.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        let stored = self.kv.scan_prefix(prefix)?;
        let guard = self.lock();
        let Some(staged) = guard.as_ref() else {
            return Ok(stored);
        };
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = stored
            .into_iter()
            .filter(|(k, _)| !staged.hides(k) && !staged.overlay.contains_key(k))
            .collect();
        for (key, value) in staged.overlay.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(value) = value {
                merged.insert(key.clone(), value.clone());
            }
        }
        Ok(merged.into_iter().collect())
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), KvError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(staged) => {
                staged.overlay.insert(key.clone(), Some(value.clone()));
                staged.record(key.clone(), BatchOp::Put { key, value });
                Ok(())
            }
            None => self.kv.put(&key, &value),
        }
    }

    /// Deletes `key`.
    pub fn delete(&self, key: Vec<u8>) -> Result<(), KvError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(staged) => {
                staged.overlay.insert(key.clone(), None);
                staged.record(key.clone(), BatchOp::Delete { key });
                Ok(())
            }
            None => self.kv.delete(&key),
        }
    }

    /// Deletes every key under `prefix`; with `scrub`, also erases the bytes from disk once
    /// the deletion is written (forward secrecy).
    pub fn delete_prefix(&self, prefix: Vec<u8>, scrub: bool) -> Result<(), KvError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(staged) => {
                staged.overlay.retain(|k, _| !k.starts_with(&prefix));
                staged.deleted_prefixes.push(prefix.clone());
                if scrub {
                    staged.scrub.push(prefix.clone());
                }
                staged.ops.push(BatchOp::DeletePrefix { prefix });
                staged.last_op.clear();
                Ok(())
            }
            None => {
                drop(guard);
                let mut batch = WriteBatch::default();
                batch.delete_prefix(&prefix);
                self.kv.write(batch)?;
                if scrub {
                    self.kv.scrub_prefix(&prefix)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use identity_tofu::kv::MemoryStore;
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    /// Random steps of puts, deletes and prefix deletions over a few keys: the staged batch
    /// leaves the store exactly as the same operations made one by one do, with at most one
    /// operation per key between prefix deletions.
    #[test]
    fn a_step_that_rewrites_keys_lands_as_the_same_operations_made_one_by_one() {
        let seed: u64 = std::env::var("CHORUS_PROP_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        println!("seed {seed} (CHORUS_PROP_SEED to replay)");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..200 {
            let direct = MemoryStore::new();
            let staged_kv = Arc::new(MemoryStore::new());
            let staged = StagedStore::new(staged_kv.clone());
            staged.begin().unwrap();
            for _ in 0..rng.gen_range(1..40) {
                let key = vec![rng.gen_range(0..3u8), rng.gen_range(0..4u8)];
                match rng.gen_range(0..10) {
                    0 => {
                        let prefix = key[..1].to_vec();
                        let mut batch = WriteBatch::default();
                        batch.delete_prefix(&prefix);
                        direct.write(batch).unwrap();
                        staged.delete_prefix(prefix, false).unwrap();
                    }
                    1..=3 => {
                        direct.delete(&key).unwrap();
                        staged.delete(key).unwrap();
                    }
                    _ => {
                        let value = vec![rng.r#gen::<u8>()];
                        direct.put(&key, &value).unwrap();
                        staged.put(key, value).unwrap();
                    }
                }
            }
            let guard = staged.lock();
            let ops = &guard.as_ref().unwrap().ops;
            let mut since_prefix = std::collections::BTreeSet::new();
            for op in ops {
                match op {
                    BatchOp::DeletePrefix { .. } => since_prefix.clear(),
                    BatchOp::Put { key, .. } | BatchOp::Delete { key } => {
                        assert!(
                            since_prefix.insert(key.clone()),
                            "two operations on {key:?}"
                        )
                    }
                }
            }
            drop(guard);
            staged.commit().unwrap();
            assert_eq!(
                staged_kv.scan_prefix(&[]).unwrap(),
                direct.scan_prefix(&[]).unwrap(),
                "seed {seed}"
            );
        }
    }
}
