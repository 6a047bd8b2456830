//! The node's master key on disk: wrapped by a passphrase, or in a key file.
//!
//! The master key (32 random bytes, see [`MasterKey`]) seals everything the node stores. The
//! user chooses at `chorus init` how it is kept:
//!
//! - **passphrase**: the key is sealed (XChaCha20-Poly1305) under a key stretched from the
//!   passphrase with Argon2id (64 MiB, 3 passes, 1 lane by default; the parameters are stored
//!   and bound to the sealed key). The file can sit in the data directory: without the
//!   passphrase it opens nothing. A wrong passphrase is [`MasterKeyError::WrongPassphrase`].
//! - **key file**: the key itself, in a 0600 file, for nodes that start unattended. Kept
//!   outside the data directory, a copy of the data directory opens nothing; the data directory
//!   then holds a pointer file naming where the key is.
//!
//! Every file is written owner-only from creation and replaced atomically, like the identity
//! key files (see [`crate::keyfile`]). Format: the magic `b"chorus-master\0"`, then the codec
//! encoding of a versioned [`MasterKeyRecord`].

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec;
use crate::keyfile::{KeyFileError, not_a_key_file, read_secret_file, write_secret_file};
use crate::kv::sealed::{DataKey, KEY_LEN, MasterKey};

const MAGIC: &[u8] = b"chorus-master\0";
const RECORD_VERSION: u16 = 1;
const MAX_RECORD_LEN: usize = 4096;
const SALT_LEN: usize = 16;
const WRAP_CONTEXT: &[u8] = b"chorus master key v1";

/// Argon2id cost, stored with the wrapped key so it can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Cost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for Argon2Cost {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        }
    }
}

/// What a master key file holds.
#[derive(Serialize, Deserialize)]
enum MasterKeyRecord {
    /// The key, sealed under Argon2id(passphrase, salt).
    Passphrase {
        version: u16,
        cost: Argon2Cost,
        salt: [u8; SALT_LEN],
        sealed_key: Vec<u8>,
    },
    /// The key itself.
    KeyFile { version: u16, key: [u8; KEY_LEN] },
    /// The key is in a key file elsewhere (outside the data directory).
    Elsewhere { version: u16, path: PathBuf },
}

/// Why the master key could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The passphrase does not open the wrapped key.
    #[error("wrong passphrase: it does not open the master key in {0}")]
    WrongPassphrase(PathBuf),
    /// The Argon2id cost stored or asked for is not usable.
    #[error("{path}: Argon2id parameters: {reason}")]
    Cost {
        /// The file.
        path: PathBuf,
        /// What argon2 said.
        reason: String,
    },
}

/// A master key as found on disk: ready, or waiting for its passphrase.
pub enum StoredMasterKey {
    /// From a key file.
    Ready(MasterKey),
    /// Wrapped: call [`unlock`](Self::unlock) with the passphrase.
    Wrapped {
        /// The file it came from (for errors).
        path: PathBuf,
        /// Its Argon2id cost.
        cost: Argon2Cost,
        /// Its salt.
        salt: [u8; SALT_LEN],
        /// The sealed master key.
        sealed_key: Vec<u8>,
    },
}

impl std::fmt::Debug for StoredMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(_) => f.write_str("StoredMasterKey::Ready(..)"),
            Self::Wrapped { path, .. } => write!(f, "StoredMasterKey::Wrapped({path:?})"),
        }
    }
}

impl StoredMasterKey {
    /// True when a passphrase is needed.
    pub fn needs_passphrase(&self) -> bool {
        matches!(self, Self::Wrapped { .. })
    }

    /// The master key; `passphrase` is used only if the key is wrapped.
    pub fn unlock(self, passphrase: Option<&[u8]>) -> Result<MasterKey, MasterKeyError> {
        match self {
            Self::Ready(key) => Ok(key),
            Self::Wrapped {
                path,
                cost,
                salt,
                sealed_key,
            } => {
                let passphrase =
                    passphrase.ok_or_else(|| MasterKeyError::WrongPassphrase(path.clone()))?;
                let wrapping = stretch(&path, passphrase, &salt, cost)?;
                let key = Zeroizing::new(
                    wrapping
                        .open(&wrap_context(cost), &sealed_key)
                        .map_err(|_| MasterKeyError::WrongPassphrase(path.clone()))?,
                );
                let bytes: [u8; KEY_LEN] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| not_a_key_file(&path, "wrapped key has the wrong length"))?;
                Ok(MasterKey::from_bytes(bytes))
            }
        }
    }
}

fn wrap_context(cost: Argon2Cost) -> Vec<u8> {
    let mut out = WRAP_CONTEXT.to_vec();
    for n in [cost.memory_kib, cost.passes, cost.lanes] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out
}

fn stretch(
    path: &Path,
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    cost: Argon2Cost,
) -> Result<DataKey, MasterKeyError> {
    let bad = |e: argon2::Error| MasterKeyError::Cost {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let params =
        Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(KEY_LEN)).map_err(bad)?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(bad)?;
    Ok(DataKey::from_bytes(*out))
}

fn write_record(path: &Path, record: &MasterKeyRecord) -> Result<(), MasterKeyError> {
    let encoded = Zeroizing::new(
        codec::encode(record).map_err(|e| not_a_key_file(path, format!("cannot encode: {e}")))?,
    );
    let mut bytes = Zeroizing::new(MAGIC.to_vec());
    bytes.extend_from_slice(&encoded);
    Ok(write_secret_file(path, &bytes)?)
}

fn read_record(path: &Path) -> Result<MasterKeyRecord, MasterKeyError> {
    let bytes = read_secret_file(path)?;
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| not_a_key_file(path, "missing chorus-master header"))?;
    let record: MasterKeyRecord =
        codec::decode(body, MAX_RECORD_LEN).map_err(|e| not_a_key_file(path, e.to_string()))?;
    let version = match &record {
        MasterKeyRecord::Passphrase { version, .. }
        | MasterKeyRecord::KeyFile { version, .. }
        | MasterKeyRecord::Elsewhere { version, .. } => *version,
    };
    if version != RECORD_VERSION {
        return Err(not_a_key_file(path, format!("unsupported version {version}")).into());
    }
    Ok(record)
}

/// Writes `key` to `path` wrapped by `passphrase` (Argon2id at `cost`).
pub fn write_with_passphrase(
    path: &Path,
    key: &MasterKey,
    passphrase: &[u8],
    cost: Argon2Cost,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), MasterKeyError> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let wrapping = stretch(path, passphrase, &salt, cost)?;
    let sealed_key = wrapping.seal(rng, &wrap_context(cost), key.as_bytes());
    write_record(
        path,
        &MasterKeyRecord::Passphrase {
            version: RECORD_VERSION,
            cost,
            salt,
            sealed_key,
        },
    )
}

/// Writes `key` itself to the key file `path` (0600).
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), MasterKeyError> {
    write_record(
        path,
        &MasterKeyRecord::KeyFile {
            version: RECORD_VERSION,
            key: *key.as_bytes(),
        },
    )
}

/// Writes to `path` a pointer to the key file `key_file` kept elsewhere.
pub fn write_pointer(path: &Path, key_file: &Path) -> Result<(), MasterKeyError> {
    write_record(
        path,
        &MasterKeyRecord::Elsewhere {
            version: RECORD_VERSION,
            path: key_file.to_path_buf(),
        },
    )
}

/// Reads the master key file at `path`, following a pointer to a key file elsewhere (one
/// level) unless `key_file` names the key file to use instead.
pub fn read(path: &Path, key_file: Option<&Path>) -> Result<StoredMasterKey, MasterKeyError> {
    if let Some(key_file) = key_file {
        return read_key_file(key_file);
    }
    match read_record(path)? {
        MasterKeyRecord::Elsewhere { path: target, .. } => read_key_file(&target),
        record => from_record(path, record),
    }
}

fn read_key_file(path: &Path) -> Result<StoredMasterKey, MasterKeyError> {
    from_record(path, read_record(path)?)
}

fn from_record(path: &Path, record: MasterKeyRecord) -> Result<StoredMasterKey, MasterKeyError> {
    Ok(match record {
        MasterKeyRecord::KeyFile { key, .. } => StoredMasterKey::Ready(MasterKey::from_bytes(key)),
        MasterKeyRecord::Passphrase {
            cost,
            salt,
            sealed_key,
            ..
        } => StoredMasterKey::Wrapped {
            path: path.to_path_buf(),
            cost,
            salt,
            sealed_key,
        },
        MasterKeyRecord::Elsewhere { .. } => {
            return Err(not_a_key_file(path, "a pointer to another key file, not a key").into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough for tests; the format stores whatever cost was used.
    const TEST_COST: Argon2Cost = Argon2Cost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn a_wrapped_key_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate(&mut rand::rngs::OsRng);
        write_with_passphrase(
            &path,
            &key,
            b"correct horse",
            TEST_COST,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(KEY_LEN).any(|w| w == key.as_bytes()));
        let stored = read(&path, None).unwrap();
        assert!(stored.needs_passphrase());
        assert_eq!(
            stored.unlock(Some(b"correct horse")).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(matches!(
            read(&path, None).unwrap().unlock(Some(b"wrong horse")),
            Err(MasterKeyError::WrongPassphrase(_))
        ));
        assert!(matches!(
            read(&path, None).unwrap().unlock(None),
            Err(MasterKeyError::WrongPassphrase(_))
        ));
    }

    #[test]
    fn a_key_file_is_read_directly_or_through_a_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate(&mut rand::rngs::OsRng);
        let key_file = dir.path().join("elsewhere.key");
        let pointer = dir.path().join("master.key");
        write_key_file(&key_file, &key).unwrap();
        write_pointer(&pointer, &key_file).unwrap();
        let via_pointer = read(&pointer, None).unwrap().unlock(None).unwrap();
        assert_eq!(via_pointer.as_bytes(), key.as_bytes());
        let given = read(&pointer, Some(&key_file))
            .unwrap()
            .unlock(None)
            .unwrap();
        assert_eq!(given.as_bytes(), key.as_bytes());
        // A pointer is not a key.
        assert!(read(&key_file, Some(&pointer)).is_err());
        assert!(read(&dir.path().join("missing"), None).is_err());
    }
}
