//! Secret key files: written owner-only from the first byte, refused when others can read them.
//!
//! A key file is created with mode 0600 *at creation* (`OpenOptionsExt::mode` with
//! `create_new`), never chmod-ed afterwards, so there is no instant at which another user
//! could open it. Writes go to a temporary file in the same directory that is fsynced and then
//! renamed over the target, so a crash leaves either the old or the new key, never half of
//! one. Reading refuses a file that the group or others have any permission on, like ssh
//! does, with an error that says how to fix it.
//!
//! Format: the magic `b"chorus-key\0"`, then the codec encoding of a versioned record holding
//! the kind of key, its 32-byte secret seed and, for a device key, its certificate (so that a
//! device rotation replaces key and certificate in one rename). Buffers holding secret bytes
//! are zeroized when dropped; errors name paths, never contents. Unix only.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::certificate::{CertificateError, SignedDeviceCertificate};
use crate::codec;
use crate::keys::{DeviceKey, IdentityKey, KEY_LEN};
use crate::kv::sealed::DataKey;
use rand::RngCore;

/// Mode of every key file.
pub const KEY_FILE_MODE: u32 = 0o600;

/// Mode of a key directory created by this module.
pub const KEY_DIR_MODE: u32 = 0o700;

const MAGIC: &[u8] = b"chorus-key\0";
/// A key file whose record is sealed (XChaCha20-Poly1305) under a key from the master key.
const SEALED_MAGIC: &[u8] = b"chorus-key-sealed\0";
const KEY_FILE_VERSION: u16 = 1;
/// Larger than any key file we write (magic + secret + a certificate); bigger files are not
/// read at all.
const MAX_KEY_FILE_LEN: u64 = 2048;

/// Which key a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    /// An [`IdentityKey`].
    Identity,
    /// A [`DeviceKey`] with its certificate.
    Device,
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The key file can be accessed by the group or others.
    #[error(
        "{path}: key file has mode {mode:04o}, but must be accessible by its owner only \
         (run: chmod 600 {path})"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, or larger than any key file.
    #[error("{path}: not a chorus key file ({reason})")]
    NotAKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file of the other kind.
    #[error("{path}: holds a {found:?} key, expected a {expected:?} key")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// Kind asked for.
        expected: KeyKind,
        /// Kind found.
        found: KeyKind,
    },
    /// The stored certificate does not decode or verify.
    #[error("{path}: stored certificate: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// Keys and certificate do not belong together.
    #[error("{path}: {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: &'static str,
    },
}

/// The record inside a key file. Wiped from memory on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyFileRecord {
    version: u16,
    #[zeroize(skip)]
    kind: KeyKind,
    secret: [u8; KEY_LEN],
    /// The encoded device certificate; empty for an identity key.
    certificate: Vec<u8>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn not_a_key_file(path: &Path, reason: impl Into<String>) -> KeyFileError {
    KeyFileError::NotAKeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Creates `dir` (and parents) owner-only if it does not exist yet. An existing directory is
/// left as it is.
pub fn create_key_dir(dir: &Path) -> Result<(), KeyFileError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(KEY_DIR_MODE)
        .create(dir)
        .map_err(io_error(dir))
}

/// Writes `bytes` to `path` atomically, as a file that was 0600 from its creation.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| not_a_key_file(path, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A temporary file left by a crash holds a key we never committed to; start over.
    if let Err(e) = fs::remove_file(&tmp)
        && e.kind() != io::ErrorKind::NotFound
    {
        return Err(io_error(&tmp)(e));
    }
    if let Err(e) = create_owner_only(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io_error(path))?;
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes` durably to it.
fn create_owner_only(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(KEY_FILE_MODE)
        .open(path)?;
    // The umask can only remove bits, and 0600 is what we want; check anyway, so that a
    // strange file system does not leave a readable key behind silently.
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "created with mode {mode:04o} instead of {KEY_FILE_MODE:04o}"
        )));
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads a whole key file after checking that it is a small regular file only its owner can
/// access. The permission check is made on the opened file, so it is the file we read.
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let metadata = file.metadata().map_err(io_error(path))?;
    if !metadata.is_file() {
        return Err(not_a_key_file(path, "not a regular file"));
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if metadata.len() > MAX_KEY_FILE_LEN {
        return Err(not_a_key_file(
            path,
            format!("{} bytes is too large", metadata.len()),
        ));
    }
    // Room for the largest acceptable file and the end-of-file probe, so the buffer never
    // reallocates and leaves a copy of the secret behind in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN as usize + 64));
    std::io::Read::by_ref(&mut file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(not_a_key_file(path, "file grew while being read"));
    }
    Ok(bytes)
}

/// A key file sealed under a key derived from the node's master key: the key to seal under
/// and the randomness for the nonce. `None`: the file holds the record as it is.
pub type Seal<'a> = Option<(&'a DataKey, &'a mut dyn RngCore)>;

fn write_record(path: &Path, record: &KeyFileRecord, seal: Seal<'_>) -> Result<(), KeyFileError> {
    let encoded = Zeroizing::new(
        codec::encode(record).map_err(|e| not_a_key_file(path, format!("cannot encode: {e}")))?,
    );
    let mut bytes = Zeroizing::new(Vec::with_capacity(SEALED_MAGIC.len() + encoded.len() + 64));
    match seal {
        None => {
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&encoded);
        }
        Some((key, rng)) => {
            bytes.extend_from_slice(SEALED_MAGIC);
            bytes.extend_from_slice(&key.seal(rng, SEALED_MAGIC, &encoded));
        }
    }
    write_secret_file(path, &bytes)
}

fn read_record(
    path: &Path,
    expected: KeyKind,
    seal: Option<&DataKey>,
) -> Result<KeyFileRecord, KeyFileError> {
    let bytes = read_secret_file(path)?;
    let opened;
    let body = if let Some(sealed) = bytes.strip_prefix(SEALED_MAGIC) {
        let key = seal.ok_or_else(|| {
            not_a_key_file(path, "sealed under the master key, which was not given")
        })?;
        opened = Zeroizing::new(
            key.open(SEALED_MAGIC, sealed)
                .map_err(|_| not_a_key_file(path, "does not open under this master key"))?,
        );
        opened.as_slice()
    } else {
        bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| not_a_key_file(path, "missing chorus-key header"))?
    };
    let record: KeyFileRecord = codec::decode(body, MAX_KEY_FILE_LEN as usize)
        // The codec error describes structure, not content: it cannot leak the secret.
        .map_err(|e| not_a_key_file(path, e.to_string()))?;
    if record.version != KEY_FILE_VERSION {
        return Err(not_a_key_file(
            path,
            format!("unsupported key file version {}", record.version),
        ));
    }
    if record.kind != expected {
        return Err(KeyFileError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: record.kind,
        });
    }
    Ok(record)
}

/// Writes `key` to `path` (mode 0600, atomic replace).
pub fn write_identity_key(path: &Path, key: &IdentityKey) -> Result<(), KeyFileError> {
    write_identity_key_sealed(path, key, None)
}

/// [`write_identity_key`], the record sealed as `seal` says.
pub fn write_identity_key_sealed(
    path: &Path,
    key: &IdentityKey,
    seal: Seal<'_>,
) -> Result<(), KeyFileError> {
    let record = KeyFileRecord {
        version: KEY_FILE_VERSION,
        kind: KeyKind::Identity,
        secret: *key.to_secret_bytes(),
        certificate: Vec::new(),
    };
    write_record(path, &record, seal)
}

/// Reads an identity key written by [`write_identity_key`], refusing a file others can read.
pub fn read_identity_key(path: &Path) -> Result<IdentityKey, KeyFileError> {
    read_identity_key_sealed(path, None)
}

/// [`read_identity_key`] of a file that may be sealed under `seal`.
pub fn read_identity_key_sealed(
    path: &Path,
    seal: Option<&DataKey>,
) -> Result<IdentityKey, KeyFileError> {
    let record = read_record(path, KeyKind::Identity, seal)?;
    Ok(IdentityKey::from_secret_bytes(&record.secret))
}

/// Writes a device key together with its certificate to `path` (mode 0600, atomic replace).
/// Refuses a certificate for another device key.
pub fn write_device_key(
    path: &Path,
    key: &DeviceKey,
    certificate: &SignedDeviceCertificate,
) -> Result<(), KeyFileError> {
    write_device_key_sealed(path, key, certificate, None)
}

/// [`write_device_key`], the record sealed as `seal` says.
pub fn write_device_key_sealed(
    path: &Path,
    key: &DeviceKey,
    certificate: &SignedDeviceCertificate,
    seal: Seal<'_>,
) -> Result<(), KeyFileError> {
    if certificate.certificate().device_key != key.public() {
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
            reason: "the certificate is for another device key",
        });
    }
    let record = KeyFileRecord {
        version: KEY_FILE_VERSION,
        kind: KeyKind::Device,
        secret: *key.to_secret_bytes(),
        certificate: certificate.encode(),
    };
    write_record(path, &record, seal)
}

/// Reads a device key and its certificate written by [`write_device_key`]. The certificate's
/// signature is checked and it must certify this device key; its expiry is not checked (an
/// expired certificate is renewed, not a reason to lose the key).
pub fn read_device_key(path: &Path) -> Result<(DeviceKey, SignedDeviceCertificate), KeyFileError> {
    read_device_key_sealed(path, None)
}

/// [`read_device_key`] of a file that may be sealed under `seal`.
pub fn read_device_key_sealed(
    path: &Path,
    seal: Option<&DataKey>,
) -> Result<(DeviceKey, SignedDeviceCertificate), KeyFileError> {
    let record = read_record(path, KeyKind::Device, seal)?;
    let key = DeviceKey::from_secret_bytes(&record.secret);
    let certificate_error = |source| KeyFileError::Certificate {
        path: path.to_path_buf(),
        source,
    };
    let certificate =
        SignedDeviceCertificate::decode(&record.certificate).map_err(certificate_error)?;
    certificate.verify_signature().map_err(certificate_error)?;
    if certificate.certificate().device_key != key.public() {
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
            reason: "the stored certificate is for another device key",
        });
    }
    Ok((key, certificate))
}
