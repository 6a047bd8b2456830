//! `SealedKv`: encryption at rest for any [`KvStore`].
//!
//! A `SealedKv` wraps one column (one owner's store) and keeps nothing readable in it:
//!
//! - every value is sealed with XChaCha20-Poly1305 (see [`crypto`]) together with its plain key,
//!   bound to its stored key as associated data, so it cannot be moved to another key;
//! - every key is stored with the parts that name a group or a contact replaced by a keyed hash
//!   (see [`schema`]); prefix scans still work, and a key matching no rule is refused;
//! - keys in a *namespace* (a group's branch) get a data key of their own, stored sealed beside
//!   them. Deleting the namespace deletes its data key in the same atomic batch, and scrubbing
//!   it compacts the small data-key range first: the namespace's values are unreadable as soon
//!   as the prune is written, whatever bytes of them compaction has not reached yet
//!   (crypto-shredding, for forward secrecy).
//!
//! Stored layout inside the wrapped store:
//!
//! ```text
//! !                       check value: the column's sealing key opens it (wrong key → error)
//! k <stored namespace>    the namespace's data key, sealed under the column key
//! v <stored key>          sealed(plain key length u32 BE, plain key, value)
//! ```
//!
//! Scans decrypt the plain keys and return them in plain key order, as [`KvStore`] promises.

pub mod crypto;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub use crypto::{ColumnKeys, DataKey, KEY_LEN, MasterKey, OpenError};
pub use schema::{KeyRule, KeySchema, Part};

use super::{BatchOp, KvError, KvPair, KvStore, WriteBatch};

const CHECK_KEY: &[u8] = b"!";
const CHECK_PLAINTEXT: &[u8] = b"chorus sealed column v1";
const DATA_KEY_TAG: u8 = b'k';
const VALUE_TAG: u8 = b'v';

/// Why a sealed column could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealedOpenError {
    /// The column was sealed under another master key.
    #[error("the master key does not open column {0:?} (wrong passphrase or key file)")]
    WrongKey(String),
    /// The column holds data stored without encryption (an older build).
    #[error(
        "column {0:?} was written by an older build without encryption at rest; \
         move the data directory away and run `chorus init` again"
    )]
    Unsealed(String),
    /// The store failed.
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// A [`KvStore`] that seals everything it stores in another one. See the module docs.
pub struct SealedKv<S> {
    inner: S,
    column: String,
    keys: ColumnKeys,
    schema: KeySchema,
    rng: Mutex<ChaCha20Rng>,
    /// Namespace data keys known to exist, by stored namespace. Readers hold the lock across
    /// reading a key from the store and caching it, and writers across writing a batch and
    /// updating the cache, so a key destroyed by a batch is never cached again afterwards.
    data_keys: Mutex<HashMap<Vec<u8>, DataKey>>,
    /// Serializes writes, so that two batches never both create a namespace's data key.
    write_lock: Mutex<()>,
}

impl<S> std::fmt::Debug for SealedKv<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKv")
            .field("column", &self.column)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutex here guards plain data that a panic elsewhere leaves consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tagged(tag: u8, stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + stored.len());
    out.push(tag);
    out.extend_from_slice(stored);
    out
}

fn unsealable(what: &str) -> KvError {
    KvError::Sealed(what.to_string())
}

impl<S: KvStore> SealedKv<S> {
    /// Opens column `column` of `inner` sealed under `master`, with the key layout `schema`.
    ///
    /// `rng_seed` seeds the nonces and data keys: give fresh OS entropy on every open (a
    /// reused seed reuses nonces). An empty column is marked as sealed under this key; a
    /// column sealed under another key is [`SealedOpenError::WrongKey`], one holding data
    /// stored in the clear is [`SealedOpenError::Unsealed`]. Neither changes anything stored.
    pub fn open(
        inner: S,
        column: &str,
        master: &MasterKey,
        schema: KeySchema,
        rng_seed: [u8; 32],
    ) -> Result<Self, SealedOpenError> {
        let sealed = Self {
            inner,
            column: column.to_string(),
            keys: ColumnKeys::derive(master, column),
            schema,
            rng: Mutex::new(ChaCha20Rng::from_seed(rng_seed)),
            data_keys: Mutex::new(HashMap::new()),
            write_lock: Mutex::new(()),
        };
        match sealed.inner.get(CHECK_KEY)? {
            Some(check) => {
                if sealed.keys.seal.open(CHECK_KEY, &check).as_deref() != Ok(CHECK_PLAINTEXT) {
                    return Err(SealedOpenError::WrongKey(column.to_string()));
                }
            }
            None => {
                if !sealed.inner.scan_prefix(b"")?.is_empty() {
                    return Err(SealedOpenError::Unsealed(column.to_string()));
                }
                let check = sealed.seal_with(&sealed.keys.seal, CHECK_KEY, CHECK_PLAINTEXT);
                sealed.inner.put(CHECK_KEY, &check)?;
            }
        }
        Ok(sealed)
    }

    /// The store underneath (what is on disk), for tests that inspect it.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Opens one pair as stored in the wrapped store (what a raw scan of [`inner`](Self::inner)
    /// returns, or bytes recovered from a file), with the keys this store holds now: the plain
    /// key and value. For tests and forensics: a pruned namespace's pairs no longer open.
    pub fn open_stored(&self, stored_key: &[u8], sealed: &[u8]) -> Result<KvPair, KvError> {
        if stored_key.first() != Some(&VALUE_TAG) {
            return Err(unsealable("not a stored value"));
        }
        self.open_value(stored_key, sealed)
    }

    fn seal_with(&self, key: &DataKey, associated: &[u8], plaintext: &[u8]) -> Vec<u8> {
        key.seal(&mut *lock(&self.rng), associated, plaintext)
    }

    fn hash(&self) -> impl Fn(&[u8], usize) -> Vec<u8> + '_ {
        |secret, len| self.keys.blind.keyed_hash(secret, len)
    }

    fn map_key(&self, key: &[u8]) -> Result<schema::MappedKey, KvError> {
        self.schema.map_key(key, &self.hash()).ok_or_else(|| {
            KvError::Sealed(format!(
                "column {:?}: a key (tag {:#04x}) matches no rule of the sealed layout",
                self.column,
                key.first().copied().unwrap_or(0)
            ))
        })
    }

    fn map_prefix(&self, prefix: &[u8]) -> Result<Vec<u8>, KvError> {
        self.schema.map_prefix(prefix, &self.hash()).ok_or_else(|| {
            KvError::Sealed(format!(
                "column {:?}: a prefix (tag {:#04x}) matches no rule of the sealed layout",
                self.column,
                prefix.first().copied().unwrap_or(0)
            ))
        })
    }

    /// The data key of a stored namespace, if it has one (read through the cache).
    fn namespace_key(&self, namespace: &[u8]) -> Result<Option<DataKey>, KvError> {
        let mut cache = lock(&self.data_keys);
        if let Some(known) = cache.get(namespace) {
            return Ok(Some(known.clone()));
        }
        let entry = tagged(DATA_KEY_TAG, namespace);
        let key = match self.inner.get(&entry)? {
            None => None,
            Some(sealed) => {
                let bytes = self
                    .keys
                    .seal
                    .open(&entry, &sealed)
                    .map_err(|_| unsealable("a namespace data key does not open"))?;
                let bytes: [u8; KEY_LEN] = bytes
                    .try_into()
                    .map_err(|_| unsealable("a namespace data key has the wrong length"))?;
                Some(DataKey::from_bytes(bytes))
            }
        };
        if let Some(key) = &key {
            cache.insert(namespace.to_vec(), key.clone());
        }
        Ok(key)
    }

    /// The key that seals or opens the value stored under `stored`.
    fn value_key(&self, stored: &[u8], namespace_len: Option<usize>) -> Result<DataKey, KvError> {
        match namespace_len {
            None => Ok(self.keys.seal.clone()),
            Some(len) => self.namespace_key(&stored[..len])?.ok_or_else(|| {
                unsealable("the value's namespace key was destroyed (the namespace was pruned)")
            }),
        }
    }

    fn open_value(&self, entry: &[u8], sealed: &[u8]) -> Result<KvPair, KvError> {
        let stored = &entry[1..];
        let key = self.value_key(stored, self.schema.stored_namespace_len(stored))?;
        let plain = key
            .open(entry, sealed)
            .map_err(|_| unsealable("a stored value does not open (damaged or moved)"))?;
        let damaged = || unsealable("a sealed value's contents are damaged");
        let len_bytes: [u8; 4] = plain.get(..4).ok_or_else(damaged)?.try_into().unwrap();
        let len = u32::from_be_bytes(len_bytes) as usize;
        let plain_key = plain.get(4..4 + len).ok_or_else(damaged)?.to_vec();
        let value = plain[4 + len..].to_vec();
        Ok((plain_key, value))
    }
}

impl<S: KvStore> KvStore for SealedKv<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let mapped = self.map_key(key)?;
        let entry = tagged(VALUE_TAG, &mapped.stored);
        match self.inner.get(&entry)? {
            None => Ok(None),
            Some(sealed) => {
                let (plain_key, value) = self.open_value(&entry, &sealed)?;
                if plain_key != key {
                    // Two keys with one hash: 2^-128 for the shortest hashed part.
                    return Err(unsealable("a stored value belongs to another key"));
                }
                Ok(Some(value))
            }
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, KvError> {
        let stored_prefix = tagged(VALUE_TAG, &self.map_prefix(prefix)?);
        let mut out = Vec::new();
        for (entry, sealed) in self.inner.scan_prefix(&stored_prefix)? {
            let (key, value) = self.open_value(&entry, &sealed)?;
            // Only a hash collision could put another key under the stored prefix; never
            // return what the caller did not ask for.
            if key.starts_with(prefix) {
                out.push((key, value));
            }
        }
        // Hashed parts change the stored order; callers get plain key order.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        let _writing = lock(&self.write_lock);
        let mut out = WriteBatch::default();
        // Namespace keys created or destroyed by this batch, applied to the cache once written.
        let mut changed: HashMap<Vec<u8>, Option<DataKey>> = HashMap::new();
        // Stored prefixes deleted by this batch: namespaces under them lose their keys.
        let mut destroyed: Vec<Vec<u8>> = Vec::new();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put { key, value } => {
                    let mapped = self.map_key(&key)?;
                    let seal_key = match mapped.namespace_len {
                        None => self.keys.seal.clone(),
                        Some(len) => {
                            let namespace = &mapped.stored[..len];
                            let known = match changed.get(namespace) {
                                Some(known) => known.clone(),
                                // Destroyed earlier in this batch: the stored key is going.
                                None if destroyed.iter().any(|p| namespace.starts_with(p)) => None,
                                None => self.namespace_key(namespace)?,
                            };
                            match known {
                                Some(k) => k,
                                None => {
                                    let fresh = DataKey::generate(&mut *lock(&self.rng));
                                    let entry = tagged(DATA_KEY_TAG, namespace);
                                    let wrapped =
                                        self.seal_with(&self.keys.seal, &entry, fresh.as_bytes());
                                    out.put(&entry, &wrapped);
                                    changed.insert(namespace.to_vec(), Some(fresh.clone()));
                                    fresh
                                }
                            }
                        }
                    };
                    let entry = tagged(VALUE_TAG, &mapped.stored);
                    let mut plain = Vec::with_capacity(4 + key.len() + value.len());
                    plain.extend_from_slice(&(key.len() as u32).to_be_bytes());
                    plain.extend_from_slice(&key);
                    plain.extend_from_slice(&value);
                    out.put(&entry, &self.seal_with(&seal_key, &entry, &plain));
                }
                BatchOp::Delete { key } => {
                    let mapped = self.map_key(&key)?;
                    out.delete(&tagged(VALUE_TAG, &mapped.stored));
                }
                BatchOp::DeletePrefix { prefix } => {
                    let stored = self.map_prefix(&prefix)?;
                    // The namespace keys first: their values are unreadable from this batch on.
                    out.delete_prefix(&tagged(DATA_KEY_TAG, &stored));
                    out.delete_prefix(&tagged(VALUE_TAG, &stored));
                    changed.retain(|namespace, _| !namespace.starts_with(&stored));
                    destroyed.push(stored);
                }
            }
        }
        let mut cache = lock(&self.data_keys);
        self.inner.write(out)?;
        for stored in destroyed {
            cache.retain(|namespace, _| !namespace.starts_with(&stored));
        }
        cache.extend(
            changed
                .into_iter()
                .filter_map(|(namespace, key)| Some((namespace, key?))),
        );
        Ok(())
    }

    fn scrub_prefix(&self, prefix: &[u8]) -> Result<(), KvError> {
        let stored = self.map_prefix(prefix)?;
        // The small data-key range first: once its old bytes are gone, nothing left of the
        // namespace opens, before the (larger) value range is compacted.
        self.inner.scrub_prefix(&tagged(DATA_KEY_TAG, &stored))?;
        self.inner.scrub_prefix(&tagged(VALUE_TAG, &stored))
    }
}

#[cfg(test)]
mod tests;
