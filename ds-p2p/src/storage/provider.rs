//! The `OpenMlsProvider` a Chorus client hands to openmls: [`SeededCrypto`] (RustCrypto with
//! all randomness from one seeded stream) for crypto and randomness, [`MlsStorage`] for state.

use std::sync::Arc;

use identity_tofu::kv::KvStore;
use openmls_traits::OpenMlsProvider;

use super::mls_storage::{MlsStorage, StorageError};
use super::staged::StagedStore;
use crate::crypto::SeededCrypto;
use crate::signature_memo::SignatureMemo;

/// Crypto plus branch-aware storage for one client.
///
/// **Security:** all of the provider's randomness (HPKE ephemeral keys, encryption secrets,
/// reuse guards, key packages) follows from one 32-byte seed. A seed must never be reused,
/// in particular not across process restarts of a real node: replaying the RNG means
/// reusing keys and nonces. Real nodes therefore use [`ChorusProvider::new`] (seeded from OS
/// entropy on every start); only simulations and tests use [`ChorusProvider::with_seed`].
#[derive(Debug)]
pub struct ChorusProvider {
    crypto: SeededCrypto,
    storage: MlsStorage,
}

impl ChorusProvider {
    /// A provider storing through `kv` (for a node: the `mls` column family), with its
    /// randomness seeded from OS entropy. This is what a real node uses.
    ///
    /// # Panics
    ///
    /// If the OS cannot provide randomness.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self::with_crypto(kv, SeededCrypto::from_entropy())
    }

    /// A provider storing through `kv` whose randomness follows entirely from `seed`: the
    /// same seed and the same calls give byte-for-byte the same MLS messages.
    ///
    /// For simulations and tests only. Never give a real node a fixed or stored seed: a
    /// reused seed replays keys and nonces (see the type's docs); use [`ChorusProvider::new`].
    /// Give each simulated client its own seed.
    pub fn with_seed(kv: Arc<dyn KvStore>, seed: [u8; 32]) -> Self {
        Self::with_crypto(kv, SeededCrypto::from_seed(seed))
    }

    /// The same provider, with Ed25519 verifications answered from `memo` when another
    /// engine holding it made them already (see [`SignatureMemo`]). For simulations, which
    /// run many engines in one process; outcomes are unchanged.
    pub fn with_signature_memo(self, memo: SignatureMemo) -> Self {
        Self {
            crypto: self.crypto.with_signature_memo(memo),
            storage: self.storage,
        }
    }

    fn with_crypto(kv: Arc<dyn KvStore>, crypto: SeededCrypto) -> Self {
        Self {
            crypto,
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
    type CryptoProvider = SeededCrypto;
    type RandProvider = SeededCrypto;
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
