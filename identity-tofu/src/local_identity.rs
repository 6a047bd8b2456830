//! The node's own identity: identity key, current device key and the certificate binding them.
//!
//! Saved in a directory as two key files (see [`keyfile`](crate::keyfile)):
//! `identity.key` (the identity key) and `device.key` (device key + its certificate). Keeping
//! the device key and its certificate in one file means a device rotation is one atomic rename;
//! keeping the identity key apart means it could later be moved offline.

use std::fmt;
use std::path::Path;

use rand::{CryptoRng, RngCore};

use crate::certificate::{
    CertificateError, DEFAULT_CERTIFICATE_LIFETIME_MS, SignedDeviceCertificate,
};
use crate::fingerprint::Fingerprint;
use crate::keyfile::{
    KeyFileError, create_key_dir, read_device_key_sealed, read_identity_key_sealed,
    write_device_key, write_device_key_sealed, write_identity_key, write_identity_key_sealed,
};
use crate::keys::{DeviceKey, DevicePublicKey, IdentityKey, IdentityPublicKey};
use crate::kv::sealed::DataKey;
use crate::safety_number::SafetyNumber;

/// File name of the identity key inside an identity directory.
pub const IDENTITY_KEY_FILE: &str = "identity.key";
/// File name of the device key (with its certificate) inside an identity directory.
pub const DEVICE_KEY_FILE: &str = "device.key";

/// This node's identity key, device key and device certificate.
pub struct LocalIdentity {
    identity: IdentityKey,
    device: DeviceKey,
    certificate: SignedDeviceCertificate,
}

impl fmt::Debug for LocalIdentity {
    /// Public parts only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("handle", &self.handle())
            .field("fingerprint", &self.fingerprint())
            .field("device", &self.device.public())
            .finish_non_exhaustive()
    }
}

impl LocalIdentity {
    /// A new identity for `handle`: fresh identity and device keys from `rng`, and a
    /// certificate valid from `now_ms` for [`DEFAULT_CERTIFICATE_LIFETIME_MS`].
    pub fn create<R: RngCore + CryptoRng>(
        handle: &str,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Self, CertificateError> {
        let identity = IdentityKey::generate(rng);
        let device = DeviceKey::generate(rng);
        let certificate = SignedDeviceCertificate::issue(
            &identity,
            handle,
            device.public(),
            now_ms,
            DEFAULT_CERTIFICATE_LIFETIME_MS,
        )?;
        Ok(Self {
            identity,
            device,
            certificate,
        })
    }

    /// The handle in the current certificate.
    pub fn handle(&self) -> &str {
        &self.certificate.certificate().handle
    }

    /// The identity key (secret; signs certificates).
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity
    }

    /// The public identity key.
    pub fn identity_public(&self) -> IdentityPublicKey {
        self.identity.public()
    }

    /// The device key (secret; the MLS signature key).
    pub fn device_key(&self) -> &DeviceKey {
        &self.device
    }

    /// The public device key.
    pub fn device_public(&self) -> DevicePublicKey {
        self.device.public()
    }

    /// The current device certificate.
    pub fn certificate(&self) -> &SignedDeviceCertificate {
        &self.certificate
    }

    /// The MLS BasicCredential identity: the encoded certificate.
    pub fn credential_identity(&self) -> &[u8] {
        self.certificate.encoded()
    }

    /// This identity's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The safety number to compare with the owner of `other`.
    pub fn safety_number_with(&self, other: &IdentityPublicKey) -> SafetyNumber {
        SafetyNumber::new(&self.identity_public(), other)
    }

    /// True when the certificate expires within `margin_ms` of `now_ms`.
    pub fn needs_renewal(&self, now_ms: u64, margin_ms: u64) -> bool {
        now_ms.saturating_add(margin_ms) >= self.certificate.certificate().expires_at_ms
    }

    /// Replaces the device key with a fresh one from `rng`, certified by the same identity
    /// key from `now_ms`. Contacts see a new device of a known identity, not a key change.
    /// Call [`save`](Self::save) afterwards to persist it.
    pub fn rotate_device<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), CertificateError> {
        let device = DeviceKey::generate(rng);
        let certificate = SignedDeviceCertificate::issue(
            &self.identity,
            self.handle(),
            device.public(),
            now_ms,
            DEFAULT_CERTIFICATE_LIFETIME_MS,
        )?;
        self.device = device;
        self.certificate = certificate;
        Ok(())
    }

    /// Issues a new certificate for the same device key, valid from `now_ms`.
    pub fn renew_certificate(&mut self, now_ms: u64) -> Result<(), CertificateError> {
        self.certificate = SignedDeviceCertificate::issue(
            &self.identity,
            self.handle(),
            self.device.public(),
            now_ms,
            DEFAULT_CERTIFICATE_LIFETIME_MS,
        )?;
        Ok(())
    }

    /// True when `dir` holds a saved identity.
    pub fn exists(dir: &Path) -> bool {
        dir.join(IDENTITY_KEY_FILE).is_file() && dir.join(DEVICE_KEY_FILE).is_file()
    }

    /// Saves both key files into `dir` (created owner-only if missing), each file 0600 and
    /// replaced atomically.
    pub fn save(&self, dir: &Path) -> Result<(), KeyFileError> {
        create_key_dir(dir)?;
        write_identity_key(&dir.join(IDENTITY_KEY_FILE), &self.identity)?;
        write_device_key(&dir.join(DEVICE_KEY_FILE), &self.device, &self.certificate)
    }

    /// [`save`](Self::save), both files sealed under `seal` (a key derived from the node's
    /// master key), so that they open only once the master key is unlocked.
    pub fn save_sealed(
        &self,
        dir: &Path,
        seal: &DataKey,
        rng: &mut dyn rand::RngCore,
    ) -> Result<(), KeyFileError> {
        create_key_dir(dir)?;
        write_identity_key_sealed(
            &dir.join(IDENTITY_KEY_FILE),
            &self.identity,
            Some((seal, &mut *rng)),
        )?;
        write_device_key_sealed(
            &dir.join(DEVICE_KEY_FILE),
            &self.device,
            &self.certificate,
            Some((seal, rng)),
        )
    }

    /// Loads an identity saved by [`save`](Self::save), checking that the certificate is
    /// signed by this identity key for this device key. An expired certificate still loads
    /// (see [`needs_renewal`](Self::needs_renewal)).
    pub fn load(dir: &Path) -> Result<Self, KeyFileError> {
        Self::load_sealed(dir, None)
    }

    /// [`load`](Self::load) of files that may be sealed under `seal` (see
    /// [`save_sealed`](Self::save_sealed)).
    pub fn load_sealed(dir: &Path, seal: Option<&DataKey>) -> Result<Self, KeyFileError> {
        let identity = read_identity_key_sealed(&dir.join(IDENTITY_KEY_FILE), seal)?;
        let device_path = dir.join(DEVICE_KEY_FILE);
        let (device, certificate) = read_device_key_sealed(&device_path, seal)?;
        if certificate.certificate().identity_key != identity.public() {
            return Err(KeyFileError::Mismatch {
                path: device_path,
                reason: "the device certificate was issued by another identity key",
            });
        }
        Ok(Self {
            identity,
            device,
            certificate,
        })
    }
}
