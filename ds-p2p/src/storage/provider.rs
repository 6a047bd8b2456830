//! The `OpenMlsProvider` a Chorus client hands to openmls: RustCrypto for crypto and
//! randomness, [`MlsStorage`] for state.

use std::sync::Arc;

use identity_tofu::kv::KvStore;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use super::mls_storage::{MlsStorage, StorageError};
use super::staged::StagedStore;

/// Crypto plus branch-aware storage for one client.
#[derive(Debug)]
pub struct ChorusProvider {
    crypto: RustCrypto,
    storage: MlsStorage,
}

impl ChorusProvider {
    /// A provider storing through `kv` (for a node: the `mls` column family).
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self {
            crypto: RustCrypto::default(),
            storage: MlsStorage::new(StagedStore::new(kv)),
        }
    }

    /// The MLS storage (branches, transactions, group scope).
    pub fn mls_storage(&self) -> &MlsStorage {
        &self.storage
    }

    /// Runs `step` as one atomic storage step: everything it writes lands together when it
    /// returns `Ok`, and nothing lands when it returns `Err` (or panics).
    pub fn atomically<T, E>(&self, step: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let staged = self.storage.staged();
        staged.begin().map_err(StorageError::from)?;
        // Roll back if `step` unwinds, so the staging state never leaks into the next step.
        struct RollbackOnUnwind<'a>(&'a StagedStore, bool);
        impl Drop for RollbackOnUnwind<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = self.0.rollback();
                }
            }
        }
        let mut guard = RollbackOnUnwind(staged, false);
        let result = step(self);
        guard.1 = true;
        match result {
            Ok(value) => {
                staged.commit().map_err(StorageError::from)?;
                Ok(value)
            }
            Err(e) => {
                staged.rollback().map_err(StorageError::from)?;
                Err(e)
            }
        }
    }
}

impl OpenMlsProvider for ChorusProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}
