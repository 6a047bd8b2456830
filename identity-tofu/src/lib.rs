//! # identity-tofu
//!
//! Who is who in Chorus, and where everything is stored (DESIGN §6).
//!
//! A person has a long-term identity key; each of their nodes has a device key certified by
//! it. The encoded certificate is the MLS BasicCredential identity and the device key the MLS
//! signature key, so every credential is checked locally against a trust-on-first-use store.
//!
//! Modules, one idea each:
//!
//! - [`kv`]: the `KvStore` trait every component stores through, over RocksDB or memory.
//! - [`codec`]: the one bincode codec for chorus-defined bytes, size-limited and strict.
//! - [`keys`]: identity and device keys (Ed25519) and their public-key types.
//! - [`handle`]: the syntax of the handle people choose.
//! - [`certificate`]: device certificates, issued by the identity key, and their checks.
//! - [`fingerprint`]: SHA-256 fingerprints of identity keys, displayed and parsed.
//! - [`safety_number`]: the 60-digit number two people compare for their pair of keys.
//! - [`qr`]: rendering a fingerprint or safety number as a QR code in a terminal.
//! - [`address`]: how the user reached a contact, what TOFU pins keys to.
//! - [`trust`]: the TOFU trust store: pins, devices, key changes, verification, history.
//! - [`validate`]: the one function every MLS credential goes through.
//! - [`keyfile`]: secret key files, owner-only from creation.
//! - [`master_key_file`]: the master key of encryption at rest, on disk (passphrase or key file).
//! - [`local_identity`]: this node's identity, device key and certificate; rotation.
//!
//! No library function here reads OS randomness or a clock: keys come from a caller's RNG and
//! times are arguments, so the simulator replays runs from a seed.
//!
//! This crate depends on nothing else of Chorus, and not on openmls.

pub mod address;
pub mod certificate;
pub mod codec;
pub mod fingerprint;
pub mod handle;
pub mod keyfile;
pub mod keys;
pub mod kv;
pub mod local_identity;
pub mod master_key_file;
pub mod qr;
pub mod safety_number;
pub mod trust;
pub mod validate;

pub use address::Address;
pub use certificate::{
    CertificateError, CertificatePolicy, DeviceCertificate, SignedDeviceCertificate,
};
pub use fingerprint::Fingerprint;
pub use keyfile::KeyFileError;
pub use keys::{DeviceKey, DevicePublicKey, IdentityKey, IdentityPublicKey};
pub use local_identity::LocalIdentity;
pub use qr::TerminalBackground;
pub use safety_number::SafetyNumber;
pub use trust::{Contact, Observation, Outcome, TrustError, TrustLevel, TrustStore};
pub use validate::{CredentialError, ValidatedCredential, validate_credential};
