//! Storage of the MLS state: the openmls `StorageProvider` over a `KvStore`, with branch
//! namespaces for forked group states and atomic steps.
//!
//! - [`staged`]: a `KvStore` front that stages writes and lands them as one batch.
//! - [`layout`]: the key layout of the MLS column family.
//! - [`mls_storage`]: the `StorageProvider` implementation.
//! - [`value_codec`]: how openmls's values are encoded (bincode; JSON where it must be).
//! - [`branches`]: checkpoint / activate / prune of a group's branches.
//! - [`provider`]: the `OpenMlsProvider` that bundles it with the crypto.

mod bincode_writer;
pub mod branches;
pub mod layout;
pub mod mls_storage;
pub mod provider;
pub mod staged;
mod value_codec;

pub use identity_tofu::kv;
pub use layout::BranchId;
pub use mls_storage::{MlsStorage, StorageError};
pub use provider::ChorusProvider;
pub use staged::{StagedStore, TxnError};
