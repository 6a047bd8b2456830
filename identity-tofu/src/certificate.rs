//! Device certificates: an identity key vouching for one device key.
//!
//! A [`SignedDeviceCertificate`] says "device key D belongs to the person with identity key I,
//! who calls themselves H, from T1 until T2", signed by I. Its encoded bytes are the identity
//! of the member's MLS BasicCredential, and D is the MLS signature key, so every credential
//! can be checked against the trust store without asking anyone anything.
//!
//! The signature covers `b"chorus device certificate v1"` followed by the canonical encoding
//! of the [`DeviceCertificate`]: the label keeps a certificate signature from ever being valid
//! as any other kind of signed message. Decoding demands the canonical encoding (see
//! [`codec::decode_canonical`]), so one certificate has one byte string.
//!
//! Rotating a device key is just a new certificate for a new device key from the same identity
//! key; nothing about the identity changes, so contacts make no new trust decision.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::fingerprint::Fingerprint;
use crate::handle::{HandleError, validate_handle};
use crate::keys::{DevicePublicKey, IdentityKey, IdentityPublicKey};

/// The certificate format this code writes and accepts.
pub const CERTIFICATE_VERSION: u16 = 1;

/// Upper bound on an encoded certificate. A real one is about 150 bytes; anything longer is
/// refused before decoding.
pub const MAX_CERTIFICATE_LEN: usize = 512;

/// How long a certificate issued by [`LocalIdentity`](crate::local_identity::LocalIdentity) is valid:
/// a year. Nodes renew well before that.
pub const DEFAULT_CERTIFICATE_LIFETIME_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// Default tolerance for a certificate created "in the future" by a clock running ahead: one
/// hour. Beyond that the creation time is not believable.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 60 * 60 * 1000;

/// The domain-separation label in front of every signed certificate encoding.
const SIGNING_LABEL: &[u8] = b"chorus device certificate v1";

/// The signed content of a device certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// Format version, [`CERTIFICATE_VERSION`].
    pub version: u16,
    /// The name the person chose (see [`validate_handle`]).
    pub handle: String,
    /// The person's identity key, which signed this certificate.
    pub identity_key: IdentityPublicKey,
    /// The device key being certified (the MLS signature key).
    pub device_key: DevicePublicKey,
    /// When the certificate was issued, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// First instant at which the certificate is no longer valid, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Why a certificate is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a certificate (too long, truncated, trailing bytes, non-canonical...).
    #[error("malformed certificate: {0}")]
    Malformed(#[from] CodecError),
    /// A version this code does not understand.
    #[error("unsupported certificate version {0}")]
    UnsupportedVersion(u16),
    /// The handle breaks the handle syntax.
    #[error("invalid handle in certificate: {0}")]
    InvalidHandle(#[from] HandleError),
    /// A key in the certificate is not a valid Ed25519 public key.
    #[error("the certificate's {which} key is not a valid Ed25519 key")]
    InvalidKey {
        /// `"identity"` or `"device"`.
        which: &'static str,
    },
    /// The validity window is empty or reversed.
    #[error("certificate expires ({expires_at_ms}) before it is created ({created_at_ms})")]
    InvalidValidity {
        /// Claimed creation time.
        created_at_ms: u64,
        /// Claimed expiry time.
        expires_at_ms: u64,
    },
    /// The signature does not verify under the identity key named in the certificate: the
    /// certificate was forged, or altered after signing.
    #[error("certificate signature does not verify under its identity key (forged or altered)")]
    Forged,
    /// The certificate's validity has ended.
    #[error("certificate expired at {expires_at_ms} (now {now_ms})")]
    Expired {
        /// When it expired.
        expires_at_ms: u64,
        /// The time it was checked at.
        now_ms: u64,
    },
    /// The certificate claims to be created further in the future than clock skew explains.
    #[error("certificate created at {created_at_ms}, too far after now ({now_ms})")]
    NotYetValid {
        /// Claimed creation time.
        created_at_ms: u64,
        /// The time it was checked at.
        now_ms: u64,
    },
}

/// How strictly the clock-dependent checks are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// How far after `now` a certificate's creation time may be.
    pub max_clock_skew_ms: u64,
}

impl Default for CertificatePolicy {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
        }
    }
}

impl DeviceCertificate {
    /// The fingerprint of the certifying identity.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity_key.fingerprint()
    }

    /// The bytes the identity key signs: the label, then the canonical encoding.
    fn signed_message(&self) -> Result<Vec<u8>, CodecError> {
        let mut message = SIGNING_LABEL.to_vec();
        message.extend(codec::encode(self)?);
        Ok(message)
    }

    /// Every check that needs neither the signature nor a clock.
    fn check_structure(&self) -> Result<(), CertificateError> {
        if self.version != CERTIFICATE_VERSION {
            return Err(CertificateError::UnsupportedVersion(self.version));
        }
        validate_handle(&self.handle)?;
        if self.expires_at_ms <= self.created_at_ms {
            return Err(CertificateError::InvalidValidity {
                created_at_ms: self.created_at_ms,
                expires_at_ms: self.expires_at_ms,
            });
        }
        if self.identity_key.verifying_key().is_err() {
            return Err(CertificateError::InvalidKey { which: "identity" });
        }
        if self.device_key.verifying_key().is_err() {
            return Err(CertificateError::InvalidKey { which: "device" });
        }
        Ok(())
    }
}

/// The wire form: the certificate and the identity key's signature over it.
#[derive(Serialize, Deserialize)]
struct Wire {
    certificate: DeviceCertificate,
    signature: Signature,
}

/// A device certificate with its signature, and its encoded bytes.
///
/// Holding one does not mean it is valid: call [`verify`](Self::verify) (or use
/// [`validate_credential`](crate::validate::validate_credential), which does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDeviceCertificate {
    certificate: DeviceCertificate,
    signature: Signature,
    /// The canonical encoding of `Wire { certificate, signature }`.
    encoded: Vec<u8>,
}

impl SignedDeviceCertificate {
    /// Issues a certificate: `identity` certifies `device_key` under `handle` from
    /// `created_at_ms` for `lifetime_ms`.
    ///
    /// Refuses what a verifier would refuse (bad handle, empty validity), so that a node never
    /// publishes a credential its peers reject.
    pub fn issue(
        identity: &IdentityKey,
        handle: &str,
        device_key: DevicePublicKey,
        created_at_ms: u64,
        lifetime_ms: u64,
    ) -> Result<Self, CertificateError> {
        let certificate = DeviceCertificate {
            version: CERTIFICATE_VERSION,
            handle: handle.to_string(),
            identity_key: identity.public(),
            device_key,
            created_at_ms,
            expires_at_ms: created_at_ms.saturating_add(lifetime_ms),
        };
        certificate.check_structure()?;
        let signature = identity.sign(&certificate.signed_message()?);
        Self::from_parts(certificate, signature)
    }

    /// Assembles a certificate from its parts without checking the signature (tests build
    /// forged and altered certificates with it; verification catches them).
    pub fn from_parts(
        certificate: DeviceCertificate,
        signature: Signature,
    ) -> Result<Self, CertificateError> {
        let wire = Wire {
            certificate,
            signature,
        };
        let encoded = codec::encode(&wire)?;
        if encoded.len() > MAX_CERTIFICATE_LEN {
            return Err(CodecError::TooLong {
                len: encoded.len(),
                max: MAX_CERTIFICATE_LEN,
            }
            .into());
        }
        Ok(Self {
            certificate: wire.certificate,
            signature: wire.signature,
            encoded,
        })
    }

    /// Decodes a certificate from untrusted bytes (size-limited, canonical encoding only).
    /// Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let wire: Wire = codec::decode_canonical(bytes, MAX_CERTIFICATE_LEN)?;
        Ok(Self {
            certificate: wire.certificate,
            signature: wire.signature,
            encoded: bytes.to_vec(),
        })
    }

    /// The encoded bytes: the MLS BasicCredential identity.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The encoded bytes, owned.
    pub fn encode(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The certificate content, whether or not it is valid.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }

    /// The identity key's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Checks structure and signature, but not the validity window: for loading one's own
    /// certificate from disk, where an expired one is renewed rather than rejected.
    pub fn verify_signature(&self) -> Result<&DeviceCertificate, CertificateError> {
        let certificate = &self.certificate;
        certificate.check_structure()?;
        certificate
            .identity_key
            .verify(&certificate.signed_message()?, &self.signature)
            .map_err(|_| CertificateError::Forged)?;
        Ok(certificate)
    }

    /// Full verification at time `now_ms` with the default [`CertificatePolicy`].
    pub fn verify(&self, now_ms: u64) -> Result<&DeviceCertificate, CertificateError> {
        self.verify_with(now_ms, &CertificatePolicy::default())
    }

    /// Full verification: structure, handle syntax, signature under the certificate's own
    /// identity key, not created after `now + skew`, not expired.
    pub fn verify_with(
        &self,
        now_ms: u64,
        policy: &CertificatePolicy,
    ) -> Result<&DeviceCertificate, CertificateError> {
        let certificate = self.verify_signature()?;
        if certificate.created_at_ms > now_ms.saturating_add(policy.max_clock_skew_ms) {
            return Err(CertificateError::NotYetValid {
                created_at_ms: certificate.created_at_ms,
                now_ms,
            });
        }
        if now_ms >= certificate.expires_at_ms {
            return Err(CertificateError::Expired {
                expires_at_ms: certificate.expires_at_ms,
                now_ms,
            });
        }
        Ok(certificate)
    }
}
