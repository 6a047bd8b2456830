//! The one credential check: every MLS credential a node sees goes through
//! [`validate_credential`].
//!
//! The group engine (ds-p2p) calls it for each KeyPackage, Add, Update and every leaf of a
//! Welcome's ratchet tree, passing the BasicCredential identity bytes and the leaf's signature
//! public key. This crate knows nothing of openmls; ds-p2p adapts its types to these bytes.
//!
//! Steps, each a distinct error:
//! 1. decode the identity bytes as a [`SignedDeviceCertificate`] (size-limited, canonical);
//! 2. verify it: signature under its identity key, handle syntax, validity window;
//! 3. the MLS signature key must be the certified device key: otherwise someone wraps a
//!    genuine certificate around their own key;
//! 4. the TOFU decision in the [`TrustStore`]. A key change is returned as
//!    [`CredentialError::KeyChanged`]: **refused**, and the caller reports it as an event.

use crate::address::Address;
use crate::certificate::{
    CertificateError, CertificatePolicy, DeviceCertificate, SignedDeviceCertificate,
};
use crate::fingerprint::Fingerprint;
use crate::keys::{DevicePublicKey, IdentityPublicKey};
use crate::kv::KvStore;
use crate::trust::{Observation, Outcome, TrustError, TrustStore};

/// A credential that passed every check, with the TOFU decision (FirstSight, Known or
/// NewDevice — never a key change, which is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedCredential {
    /// The verified certificate.
    pub certificate: DeviceCertificate,
    /// Fingerprint of its identity key.
    pub fingerprint: Fingerprint,
    /// What the trust store decided and recorded.
    pub observation: Observation,
}

/// Why a credential is refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The identity bytes are not a valid, currently valid device certificate.
    #[error("invalid device certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The MLS signature key is not a 32-byte Ed25519 public key.
    #[error("MLS signature key is {0} bytes, not an Ed25519 public key")]
    BadSignatureKey(usize),
    /// The MLS signature key is not the device key the certificate certifies.
    #[error("MLS signature key {presented} is not the certified device key {certified}")]
    SignatureKeyMismatch {
        /// The device key in the certificate.
        certified: DevicePublicKey,
        /// The signature key of the MLS leaf.
        presented: DevicePublicKey,
    },
    /// A different identity key than the one pinned for this address: **refused**. The
    /// observation is recorded and the change is pending until the user accepts it.
    #[error("identity key changed for {}: pinned {}, offered {}", .observation.address, .pinned.fingerprint(), .offered.fingerprint())]
    KeyChanged {
        /// The pinned identity key (still in force).
        pinned: IdentityPublicKey,
        /// The offered identity key.
        offered: IdentityPublicKey,
        /// The verified certificate that offered it (for the event shown to the user).
        certificate: Box<DeviceCertificate>,
        /// The recorded observation.
        observation: Box<Observation>,
    },
    /// The credential was valid but the trust store failed (storage, corrupt record, bad
    /// address).
    #[error("trust store: {0}")]
    Trust(#[from] TrustError),
}

/// Validates one MLS credential with the default [`CertificatePolicy`].
///
/// `identity` is the BasicCredential identity (an encoded [`SignedDeviceCertificate`]),
/// `signature_key` the MLS leaf signature public key. `address` is how the user reached this
/// contact; `None` means the certificate's own handle (`Address::Handle`).
pub fn validate_credential<S: KvStore>(
    trust: &TrustStore<S>,
    identity: &[u8],
    signature_key: &[u8],
    address: Option<&Address>,
    now_ms: u64,
) -> Result<ValidatedCredential, CredentialError> {
    validate_credential_with(
        trust,
        identity,
        signature_key,
        address,
        now_ms,
        &CertificatePolicy::default(),
    )
}

/// [`validate_credential`] with an explicit clock-skew policy (the simulator sets its own).
pub fn validate_credential_with<S: KvStore>(
    trust: &TrustStore<S>,
    identity: &[u8],
    signature_key: &[u8],
    address: Option<&Address>,
    now_ms: u64,
    policy: &CertificatePolicy,
) -> Result<ValidatedCredential, CredentialError> {
    let signed = SignedDeviceCertificate::decode(identity)?;
    let certificate = signed.verify_with(now_ms, policy)?;
    let presented = DevicePublicKey::from_slice(signature_key)
        .map_err(|_| CredentialError::BadSignatureKey(signature_key.len()))?;
    if presented != certificate.device_key {
        return Err(CredentialError::SignatureKeyMismatch {
            certified: certificate.device_key,
            presented,
        });
    }
    let default_address;
    let address = match address {
        Some(address) => address,
        None => {
            default_address = Address::Handle(certificate.handle.clone());
            &default_address
        }
    };
    let observation = trust.observe(
        address,
        &certificate.identity_key,
        &certificate.device_key,
        now_ms,
    )?;
    if let Outcome::KeyChanged { pinned, offered } = observation.outcome {
        return Err(CredentialError::KeyChanged {
            pinned,
            offered,
            certificate: Box::new(certificate.clone()),
            observation: Box::new(observation),
        });
    }
    Ok(ValidatedCredential {
        certificate: certificate.clone(),
        fingerprint: certificate.fingerprint(),
        observation,
    })
}
