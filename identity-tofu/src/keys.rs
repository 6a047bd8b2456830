//! Identity and device keys: the long-term key of a person and the key of one of their nodes.
//!
//! Both are Ed25519. The *identity key* only ever signs device certificates, so it can stay on
//! one machine (or, later, offline); the *device key* is what a node signs with day to day
//! (it is the MLS signature key), and can be replaced without a new trust decision by anyone,
//! because the identity key certifies the replacement.
//!
//! Keys are generated from a caller-provided RNG: the simulator runs whole networks from one
//! seed, so no library function draws OS randomness behind its back. Secret halves are
//! zeroized on drop (ed25519-dalek's `SigningKey` does it) and never appear in `Debug`.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fingerprint::Fingerprint;

/// Length of a public key, and of a secret key seed, in bytes.
pub const KEY_LEN: usize = 32;

/// Why bytes or text are not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Wrong number of bytes.
    #[error("a public key is {KEY_LEN} bytes, got {0}")]
    Length(usize),
    /// Not hexadecimal.
    #[error("a public key is written as {} hex digits", KEY_LEN * 2)]
    Hex,
    /// 32 bytes, but not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    InvalidPoint,
    /// A signature did not verify under this key.
    #[error("signature does not verify")]
    BadSignature,
}

macro_rules! public_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Kept as raw bytes so it is cheap to compare, order and store; whether the bytes are
        /// a valid curve point is checked when a signature is verified with it.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name([u8; KEY_LEN]);

        impl $name {
            /// Wraps raw public key bytes.
            pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                Self(bytes)
            }

            /// Takes a public key from a byte slice of exactly [`KEY_LEN`] bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
                let array: [u8; KEY_LEN] =
                    bytes.try_into().map_err(|_| KeyError::Length(bytes.len()))?;
                Ok(Self(array))
            }

            /// The raw public key bytes.
            pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
                &self.0
            }

            /// The key as an ed25519-dalek verifying key, or an error if the bytes are not a
            /// valid point.
            pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
                VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPoint)
            }

            /// Checks `signature` over `message` with the strict rules (no small-order keys,
            /// no malleable signatures), so one message has one valid signature per key.
            pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
                self.verifying_key()?
                    .verify_strict(message, signature)
                    .map_err(|_| KeyError::BadSignature)
            }
        }

        impl fmt::Display for $name {
            /// Lowercase hex, 64 digits.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = KeyError;
            /// Parses the [`Display`](fmt::Display) form (hex, either case).
            fn from_str(s: &str) -> Result<Self, KeyError> {
                let bytes = hex::decode(s.trim()).map_err(|_| KeyError::Hex)?;
                Self::from_slice(&bytes)
            }
        }
    };
}

public_key_type!(
    /// The public half of an [`IdentityKey`]: what a contact is pinned to.
    IdentityPublicKey
);
public_key_type!(
    /// The public half of a [`DeviceKey`]: the MLS signature key of one node.
    DevicePublicKey
);

impl IdentityPublicKey {
    /// The fingerprint people compare: SHA-256 of this key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident, $public:ident) => {
        $(#[$doc])*
        pub struct $name(SigningKey);

        impl $name {
            /// A fresh key from `rng`. Pass a seeded RNG for reproducible runs (simulator,
            /// tests); nodes use [`generate_os`](Self::generate_os).
            pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                Self(SigningKey::generate(rng))
            }

            /// A fresh key from the operating system's RNG. For binaries only: library code
            /// takes an RNG so that the simulator stays deterministic.
            pub fn generate_os() -> Self {
                Self::generate(&mut rand::rngs::OsRng)
            }

            /// Rebuilds the key from its 32-byte secret seed (as stored in a key file).
            pub fn from_secret_bytes(secret: &[u8; KEY_LEN]) -> Self {
                Self(SigningKey::from_bytes(secret))
            }

            /// The 32-byte secret seed, wiped from memory when the returned value is dropped.
            ///
            /// Needed to persist the key and to hand the device key to the MLS library.
            pub fn to_secret_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
                Zeroizing::new(self.0.to_bytes())
            }

            /// The public half.
            pub fn public(&self) -> $public {
                $public::from_bytes(self.0.verifying_key().to_bytes())
            }
        }

        impl fmt::Debug for $name {
            /// Shows the public key only: a key in a log line must never leak its secret.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("public", &self.public())
                    .finish_non_exhaustive()
            }
        }
    };
}

secret_key_type!(
    /// A person's long-term identity key. Signs device certificates and nothing else.
    IdentityKey,
    IdentityPublicKey
);
secret_key_type!(
    /// A node's device key: certified by the identity key, used as the MLS signature key.
    DeviceKey,
    DevicePublicKey
);

impl IdentityKey {
    /// The fingerprint of this identity.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public().fingerprint()
    }

    /// Signs `message`. Crate-private: the identity key signs only device certificates, whose
    /// encoding starts with their own domain-separation label.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }
}

impl DeviceKey {
    /// Signs `message` with the device key.
    ///
    /// The caller must domain-separate `message` (start it with a label naming what it is,
    /// e.g. the libp2p peer-key binding), because the same key signs MLS messages.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }

    /// Checks a signature made by this device key (convenience for tests and the node).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        self.0
            .verifying_key()
            .verify_strict(message, signature)
            .map_err(|_| KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn seeded_generation_is_reproducible() {
        let a = IdentityKey::generate(&mut StdRng::seed_from_u64(7));
        let b = IdentityKey::generate(&mut StdRng::seed_from_u64(7));
        let c = IdentityKey::generate(&mut StdRng::seed_from_u64(8));
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
    }

    #[test]
    fn secret_round_trip_keeps_the_public_key() {
        let key = DeviceKey::generate(&mut StdRng::seed_from_u64(1));
        let again = DeviceKey::from_secret_bytes(&key.to_secret_bytes());
        assert_eq!(key.public(), again.public());
    }

    #[test]
    fn debug_shows_public_key_but_never_the_secret() {
        let mut rng = StdRng::seed_from_u64(2);
        let identity = IdentityKey::generate(&mut rng);
        let device = DeviceKey::generate(&mut rng);
        for (debug, secret, public) in [
            (
                format!("{identity:?}"),
                hex::encode(*identity.to_secret_bytes()),
                identity.public().to_string(),
            ),
            (
                format!("{device:?}"),
                hex::encode(*device.to_secret_bytes()),
                device.public().to_string(),
            ),
        ] {
            assert!(debug.contains(&public), "{debug}");
            assert!(!debug.contains(&secret), "secret leaked: {debug}");
            assert!(
                !debug.contains(&secret.to_uppercase()),
                "secret leaked: {debug}"
            );
        }
    }

    #[test]
    fn public_key_hex_round_trip_and_errors() {
        let key = IdentityKey::generate(&mut StdRng::seed_from_u64(3)).public();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<IdentityPublicKey>().unwrap(), key);
        assert_eq!(
            text.to_uppercase().parse::<IdentityPublicKey>().unwrap(),
            key
        );
        assert_eq!("zz".parse::<IdentityPublicKey>(), Err(KeyError::Hex));
        assert_eq!(
            "abcd".parse::<IdentityPublicKey>(),
            Err(KeyError::Length(2))
        );
    }

    #[test]
    fn device_signature_verifies_only_for_its_message_and_key() {
        let mut rng = StdRng::seed_from_u64(4);
        let device = DeviceKey::generate(&mut rng);
        let other = DeviceKey::generate(&mut rng);
        let sig = device.sign(b"chorus test message");
        assert!(device.public().verify(b"chorus test message", &sig).is_ok());
        assert_eq!(
            device.public().verify(b"chorus test messagE", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            other.public().verify(b"chorus test message", &sig),
            Err(KeyError::BadSignature)
        );
    }
}
