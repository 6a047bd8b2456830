//! The key hierarchy and the AEAD of the sealed store.
//!
//! ```text
//! master key (32 random bytes, made at `chorus init`)
//!   └─ HKDF-SHA256, info "chorus/sealed-kv/v1/<column>/seal"   -> column sealing key
//!   └─ HKDF-SHA256, info "chorus/sealed-kv/v1/<column>/blind"  -> column key-hashing key
//! namespace data key (32 random bytes per branch namespace), stored sealed under the column
//! sealing key; values in the namespace are sealed under it instead.
//! ```
//!
//! Sealing is XChaCha20-Poly1305 with a random 24-byte nonce (random nonces are safe at this
//! size); the associated data is the value's stored key, so a sealed value moved to another key
//! (or column: the column keys differ) does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every key here.
pub const KEY_LEN: usize = 32;
/// Version byte in front of every sealed value.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The node's master key: every key of the sealed store derives from it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new master key from `rng`.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// The key from its bytes (as unwrapped from a key file).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes (to wrap or write it).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A key derived for one purpose, named by `label`.
    pub fn derive(&self, label: &str) -> DataKey {
        let hkdf = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; KEY_LEN];
        hkdf.expand(label.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        DataKey(out)
    }
}

/// A symmetric key: seals values, or keys a hash.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A sealed value did not open: wrong key, another key's value, or damaged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sealed value does not open (wrong key, moved or damaged)")]
pub struct OpenError;

impl DataKey {
    /// A new random key.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// The key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes (to store it sealed).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext` bound to `associated`: version, nonce, ciphertext and tag.
    pub fn seal(
        &self,
        rng: &mut (impl RngCore + ?Sized),
        associated: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length a store holds");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`seal`](Self::seal) made with the same key and associated data.
    pub fn open(&self, associated: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEAL_VERSION {
            return Err(OpenError);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: associated,
                },
            )
            .map_err(|_| OpenError)
    }

    /// HMAC-SHA256 of `data` under this key, cut to `len` (at most 32) bytes.
    pub fn keyed_hash(&self, data: &[u8], len: usize) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(data);
        let mut out = mac.finalize().into_bytes().to_vec();
        out.truncate(len);
        out
    }
}

/// The two keys of one column, derived from the master key.
#[derive(Debug, Clone)]
pub struct ColumnKeys {
    pub(crate) seal: DataKey,
    pub(crate) blind: DataKey,
}

impl ColumnKeys {
    /// The keys of column `column` under `master`.
    pub fn derive(master: &MasterKey, column: &str) -> Self {
        Self {
            seal: master.derive(&format!("chorus/sealed-kv/v1/{column}/seal")),
            blind: master.derive(&format!("chorus/sealed-kv/v1/{column}/blind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sealed_values_open_only_under_their_key_and_associated_data() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let master = MasterKey::generate(&mut rng);
        let keys = ColumnKeys::derive(&master, "node");
        let sealed = keys.seal.seal(&mut rng, b"key-1", b"hello");
        assert_eq!(keys.seal.open(b"key-1", &sealed).unwrap(), b"hello");
        assert_eq!(keys.seal.open(b"key-2", &sealed), Err(OpenError));
        assert_eq!(keys.blind.open(b"key-1", &sealed), Err(OpenError));
        let other = ColumnKeys::derive(&master, "mls");
        assert_eq!(other.seal.open(b"key-1", &sealed), Err(OpenError));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(keys.seal.open(b"key-1", &damaged), Err(OpenError));
        assert_eq!(keys.seal.open(b"key-1", &sealed[..10]), Err(OpenError));
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn keyed_hashes_depend_on_the_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let a = ColumnKeys::derive(&MasterKey::generate(&mut rng), "node");
        let b = ColumnKeys::derive(&MasterKey::generate(&mut rng), "node");
        assert_eq!(a.blind.keyed_hash(b"group", 16).len(), 16);
        assert_eq!(
            a.blind.keyed_hash(b"group", 16),
            a.blind.keyed_hash(b"group", 16)
        );
        assert_ne!(
            a.blind.keyed_hash(b"group", 16),
            b.blind.keyed_hash(b"group", 16)
        );
    }
}
