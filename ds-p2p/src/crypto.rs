//! Seeded crypto: [`SeededCrypto`] is `openmls_rust_crypto::RustCrypto` with every random
//! byte drawn from one ChaCha20 stream, so the same seed gives byte-for-byte the same MLS
//! messages (the simulator replays runs from a seed).
//!
//! Where randomness enters, and how it is seeded:
//! - [`OpenMlsRand::random_array`] / [`OpenMlsRand::random_vec`]: straight from the stream.
//! - [`OpenMlsCrypto::signature_key_gen`]: the same key generation as `RustCrypto`, with the
//!   stream as the RNG.
//! - HPKE encapsulation ([`OpenMlsCrypto::hpke_seal`],
//!   [`OpenMlsCrypto::hpke_setup_sender_and_export`]): hpke-rs asks its crypto backend for a
//!   fresh PRNG through an argument-less `HpkeCrypto::prng()`, which `HpkeRustCrypto` seeds
//!   from the OS. Here the backend is `SeededHpke`, identical to `HpkeRustCrypto` except that
//!   `prng()` is seeded from a per-call seed that [`SeededCrypto`] draws from its stream and
//!   places in a thread-local for exactly the duration of the HPKE call.
//!
//! Everything else (hashes, KDFs, AEADs, signing, verifying, HPKE opening and key derivation)
//! is delegated unchanged to `RustCrypto`; none of it uses randomness. (Ed25519 and ECDSA
//! signing are deterministic in `RustCrypto` too: RFC 8032 and RFC 6979.)
//!
//! **Security.** A seeded RNG is only as unpredictable as its seed, and replaying a seed
//! replays every "random" value: HPKE ephemeral keys, encryption secrets, reuse guards. A real
//! node must therefore never derive its seed from anything stored or guessable, nor reuse it
//! across process restarts; it uses [`SeededCrypto::from_entropy`]. [`SeededCrypto::from_seed`]
//! is for simulations and tests.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use hpke_rs::{Hpke, HpkeError, Mode};
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_crypto::error::Error as HpkeCryptoError;
use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use openmls::prelude::tls_codec::SecretVLBytes;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::random::OpenMlsRand;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType, HpkeCiphertext,
    HpkeConfig, HpkeKdfType, HpkeKemType, HpkeKeyPair, KemOutput, SignatureScheme,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::signature_memo::SignatureMemo;

/// `RustCrypto` with all randomness from one ChaCha20 stream (see the module docs).
pub struct SeededCrypto {
    inner: RustCrypto,
    rng: Mutex<ChaCha20Rng>,
    /// Secret key of the HPKE seed derivation (see [`SeededCrypto::hpke_seed`]).
    hpke_key: [u8; 32],
    /// Ed25519 public keys already decompressed (see [`VerifyingKeys`]).
    verifying_keys: Mutex<VerifyingKeys>,
    /// Verifications shared with other engines of the process (the simulator's); `None`
    /// verifies every signature.
    memo: Option<SignatureMemo>,
}

/// Decompressed Ed25519 verifying keys, by their encoding.
///
/// Every received MLS message carries a signature by its sender, and `RustCrypto` decompresses
/// the sender's public key for every one of them: a square root in the field, about a fifth of
/// the cost of the verification (measured with `perf` on `chorus-sim bench`). A group's
/// members sign with the same few keys over and over, so they are decompressed once. The
/// verification itself is unchanged (`verify_strict`, as `RustCrypto` does it), so every
/// member still accepts exactly the same signatures.
#[derive(Default)]
struct VerifyingKeys {
    keys: std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>,
}

impl VerifyingKeys {
    /// Keys kept at most; the cache is emptied when full (it refills with the keys in use).
    const CAPACITY: usize = 4096;

    fn get(&mut self, encoded: &[u8]) -> Result<ed25519_dalek::VerifyingKey, CryptoError> {
        let encoded: [u8; 32] = encoded
            .try_into()
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        if let Some(key) = self.keys.get(&encoded) {
            return Ok(*key);
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&encoded)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(encoded, key);
        Ok(key)
    }
}

/// Why [`SeededCrypto`] could not produce random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeededRandError {
    /// A thread panicked while holding the RNG; its state can no longer be trusted.
    #[error("the RNG lock is poisoned")]
    LockPoisoned,
}

impl SeededCrypto {
    /// Crypto whose every random byte follows from `seed`.
    ///
    /// Only for simulations and tests: the same seed replays the same keys, secrets and
    /// nonces, so a seed must never be reused across process restarts of a real node (that
    /// would be key and nonce reuse). Real nodes use [`SeededCrypto::from_entropy`].
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::with_rng(ChaCha20Rng::from_seed(seed))
    }

    /// Crypto seeded from OS entropy: what a real node uses.
    ///
    /// # Panics
    ///
    /// If the OS cannot provide randomness (as `RustCrypto::default` does).
    pub fn from_entropy() -> Self {
        Self::with_rng(ChaCha20Rng::from_entropy())
    }

    fn with_rng(mut rng: ChaCha20Rng) -> Self {
        let mut hpke_key = [0u8; 32];
        rng.fill_bytes(&mut hpke_key);
        Self {
            inner: RustCrypto::default(),
            rng: Mutex::new(rng),
            hpke_key,
            verifying_keys: Mutex::default(),
            memo: None,
        }
    }

    /// The same crypto, answering Ed25519 verifications already made (by any engine holding
    /// `memo`) from the memo. Outcomes are unchanged: see [`SignatureMemo`].
    pub fn with_signature_memo(mut self, memo: SignatureMemo) -> Self {
        self.memo = Some(memo);
        self
    }

    fn rng(&self) -> Result<MutexGuard<'_, ChaCha20Rng>, SeededRandError> {
        self.rng.lock().map_err(|_| SeededRandError::LockPoisoned)
    }

    /// The seed of one HPKE encapsulation: a keyed hash of everything the call encrypts to
    /// and with, under a secret drawn from the seeded stream when the provider was made.
    ///
    /// Not the next bytes of the stream: openmls encrypts an update path's secrets on rayon
    /// worker threads, in an order that changes from run to run, so drawing from the stream
    /// would make the ciphertexts depend on thread scheduling. A keyed hash of the inputs is
    /// order-free and still unpredictable without the key; equal inputs give equal
    /// ciphertexts, which only happens if the same fresh secret is sealed to the same key
    /// twice (MLS never does: path and joiner secrets are new in every commit).
    fn hpke_seed(&self, parts: &[&[u8]]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"chorus hpke seed v1");
        hash.update(self.hpke_key);
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }
}

impl fmt::Debug for SeededCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print RNG state.
        f.debug_struct("SeededCrypto").finish_non_exhaustive()
    }
}

impl OpenMlsRand for SeededCrypto {
    type Error = SeededRandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut out = [0u8; N];
        self.rng()?.fill_bytes(&mut out);
        Ok(out)
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut out = vec![0u8; len];
        self.rng()?.fill_bytes(&mut out);
        Ok(out)
    }
}

impl OpenMlsCrypto for SeededCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.inner.supports(ciphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.inner.supported_ciphersuites()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    /// `RustCrypto`'s key generation (same schemes, same encodings) with the seeded stream as
    /// the RNG.
    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        // Reject before drawing, so an unsupported scheme does not advance the stream.
        if !matches!(
            alg,
            SignatureScheme::ED25519
                | SignatureScheme::ECDSA_SECP256R1_SHA256
                | SignatureScheme::ECDSA_SECP384R1_SHA384
        ) {
            return Err(CryptoError::UnsupportedSignatureScheme);
        }
        let mut rng = self
            .rng()
            .map_err(|_| CryptoError::InsufficientRandomness)?;
        match alg {
            SignatureScheme::ED25519 => {
                let sk = ed25519_dalek::SigningKey::generate(&mut *rng);
                let pk = sk.verifying_key().to_bytes().into();
                Ok((sk.to_bytes().into(), pk))
            }
            SignatureScheme::ECDSA_SECP256R1_SHA256 => {
                let sk = p256::ecdsa::SigningKey::random(&mut *rng);
                let pk = sk.verifying_key().to_encoded_point(false).as_bytes().into();
                Ok((sk.to_bytes().as_slice().into(), pk))
            }
            SignatureScheme::ECDSA_SECP384R1_SHA384 => {
                let sk = p384::ecdsa::SigningKey::random(&mut *rng);
                let pk = sk.verifying_key().to_encoded_point(false).as_bytes().into();
                Ok((sk.to_bytes().as_slice().into(), pk))
            }
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if alg != SignatureScheme::ED25519 {
            return self.inner.verify_signature(alg, data, pk, signature);
        }
        let remembered = match (
            &self.memo,
            <&[u8; 32]>::try_from(pk),
            <&[u8; 64]>::try_from(signature),
        ) {
            (Some(memo), Ok(pk), Ok(sig)) => Some((memo, pk, sig)),
            _ => None,
        };
        if let Some((memo, pk, sig)) = remembered
            && memo.contains(pk, sig, data)
        {
            return Ok(());
        }
        let key = self
            .verifying_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pk)?;
        let parsed = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        key.verify_strict(data, &parsed)
            .map_err(|_| CryptoError::InvalidSignature)?;
        if let Some((memo, pk, sig)) = remembered {
            memo.insert(pk, sig, data);
        }
        Ok(())
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(alg, data, key)
    }

    /// `RustCrypto::hpke_seal` with the ephemeral key drawn from the seeded stream.
    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        let seed = self.hpke_seed(&[b"seal", pk_r, info, aad, ptxt]);
        let (kem_output, ciphertext) = with_hpke_seed(seed, || {
            seeded_hpke(config).seal(&pk_r.into(), info, aad, ptxt, None, None, None)
        })
        .map_err(|e| match e {
            HpkeError::InvalidInput => CryptoError::InvalidLength,
            _ => CryptoError::CryptoLibraryError,
        })?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.hpke_open(config, input, sk_r, info, aad)
    }

    /// `RustCrypto::hpke_setup_sender_and_export` with the ephemeral key drawn from the
    /// seeded stream.
    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        let length = (exporter_length as u64).to_be_bytes();
        let seed = self.hpke_seed(&[b"export", pk_r, info, exporter_context, &length]);
        with_hpke_seed(seed, || {
            let (kem_output, context) = seeded_hpke(config)
                .setup_sender(&pk_r.into(), info, None, None, None)
                .map_err(|_| CryptoError::SenderSetupError)?;
            let exported_secret = context
                .export(exporter_context, exporter_length)
                .map_err(|_| CryptoError::ExporterError)?;
            Ok((kem_output, exported_secret.into()))
        })
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        self.inner.hpke_setup_receiver_and_export(
            config,
            enc,
            sk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        self.inner.derive_hpke_keypair(config, ikm)
    }
}

// --- HPKE with a seeded PRNG -------------------------------------------------------------

thread_local! {
    /// The PRNG that [`SeededHpke::prng`] seeds from, set by [`with_hpke_seed`] for the
    /// duration of one HPKE call on this thread, `None` otherwise.
    static HPKE_RNG: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// Runs `call` with [`SeededHpke::prng`] seeded from `seed`, restoring the previous state
/// afterwards (also if `call` unwinds).
fn with_hpke_seed<T>(seed: [u8; 32], call: impl FnOnce() -> T) -> T {
    struct Restore(Option<ChaCha20Rng>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            let _ = HPKE_RNG.try_with(|cell| *cell.borrow_mut() = previous);
        }
    }
    let previous = HPKE_RNG.with(|cell| cell.borrow_mut().replace(ChaCha20Rng::from_seed(seed)));
    let _restore = Restore(previous);
    call()
}

/// The HPKE instance for `config`, in base mode, over [`SeededHpke`] (as `RustCrypto` builds
/// it over `HpkeRustCrypto`).
fn seeded_hpke(config: HpkeConfig) -> Hpke<SeededHpke> {
    let kem = match config.0 {
        HpkeKemType::DhKemP256 => KemAlgorithm::DhKemP256,
        HpkeKemType::DhKemP384 => KemAlgorithm::DhKemP384,
        HpkeKemType::DhKemP521 => KemAlgorithm::DhKemP521,
        HpkeKemType::DhKem25519 => KemAlgorithm::DhKem25519,
        HpkeKemType::DhKem448 => KemAlgorithm::DhKem448,
    };
    let kdf = match config.1 {
        HpkeKdfType::HkdfSha256 => KdfAlgorithm::HkdfSha256,
        HpkeKdfType::HkdfSha384 => KdfAlgorithm::HkdfSha384,
        HpkeKdfType::HkdfSha512 => KdfAlgorithm::HkdfSha512,
    };
    let aead = match config.2 {
        HpkeAeadType::AesGcm128 => AeadAlgorithm::Aes128Gcm,
        HpkeAeadType::AesGcm256 => AeadAlgorithm::Aes256Gcm,
        HpkeAeadType::ChaCha20Poly1305 => AeadAlgorithm::ChaCha20Poly1305,
        HpkeAeadType::Export => AeadAlgorithm::HpkeExport,
    };
    Hpke::new(Mode::Base, kem, kdf, aead)
}

/// `HpkeRustCrypto` with a seeded [`HpkeCrypto::prng`].
///
/// hpke-rs calls `prng()` when it builds (or clones) an `Hpke`; inside [`with_hpke_seed`] each
/// call gets a fresh PRNG seeded from the next 32 bytes of the thread-local seeded stream.
/// Outside it (never, in this module) `prng()` falls back to OS entropy, like
/// `HpkeRustCrypto`: losing determinism, never security.
///
/// Encapsulation for the DH KEMs — all openmls offers here — takes its ephemeral key from
/// `Hpke`'s own PRNG and otherwise calls only the delegated primitives. The two functions that
/// take a PRNG argument, `kem_key_gen` (random key generation, which openmls does not use:
/// it derives HPKE keys) and `kem_encaps` (post-quantum KEMs only), cannot be delegated,
/// because `HpkeRustCrypto` only accepts its own PRNG type; they return
/// `UnsupportedKemOperation` rather than silently using other randomness.
#[derive(Debug)]
struct SeededHpke;

/// The PRNG [`SeededHpke::prng`] hands to hpke-rs.
struct SeededHpkePrng(ChaCha20Rng);

impl SeededHpkePrng {
    fn next() -> Self {
        let seed = HPKE_RNG
            .try_with(|cell| {
                cell.borrow_mut().as_mut().map(|rng| {
                    let mut seed = [0u8; 32];
                    rng.fill_bytes(&mut seed);
                    seed
                })
            })
            .ok()
            .flatten();
        match seed {
            Some(seed) => Self(ChaCha20Rng::from_seed(seed)),
            None => Self(ChaCha20Rng::from_entropy()),
        }
    }
}

impl hpke_rs_crypto::TryRng for SeededHpkePrng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl hpke_rs_crypto::TryCryptoRng for SeededHpkePrng {}

impl hpke_rs_crypto::HpkeTestRng for SeededHpkePrng {
    type Error = Infallible;

    // Only called when hpke-rs is built with its `hpke-test-prng` feature (it is not); then it
    // behaves like the non-test path, as `HpkeRustCrypto`'s does.
    fn try_fill_test_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }

    fn seed(&mut self, _: &[u8]) {}
}

impl zeroize::Zeroize for SeededHpkePrng {
    fn zeroize(&mut self) {
        // `ChaCha20Rng` has no `Zeroize`; overwrite its state with an all-zero-key one.
        self.0 = ChaCha20Rng::from_seed([0u8; 32]);
    }
}

impl HpkeCrypto for SeededHpke {
    type HpkePrng = SeededHpkePrng;

    fn name() -> String {
        format!("Seeded{}", HpkeRustCrypto::name())
    }

    fn supports_kdf(alg: KdfAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_kdf(alg)
    }

    fn supports_kem(alg: KemAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_kem(alg)
    }

    fn supports_aead(alg: AeadAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_aead(alg)
    }

    fn prng() -> Self::HpkePrng {
        SeededHpkePrng::next()
    }

    fn kdf_digest_length(alg: KdfAlgorithm) -> usize {
        HpkeRustCrypto::kdf_digest_length(alg)
    }

    fn kdf_extract(alg: KdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kdf_extract(alg, salt, ikm)
    }

    fn kdf_expand(
        alg: KdfAlgorithm,
        prk: &[u8],
        info: &[u8],
        output_size: usize,
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kdf_expand(alg, prk, info, output_size)
    }

    fn dh(alg: KemAlgorithm, pk: &[u8], sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::dh(alg, pk, sk)
    }

    fn secret_to_public(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::secret_to_public(alg, sk)
    }

    fn kem_key_gen(
        _alg: KemAlgorithm,
        _prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        Err(HpkeCryptoError::UnsupportedKemOperation)
    }

    fn kem_key_gen_derand(
        alg: KemAlgorithm,
        seed: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        HpkeRustCrypto::kem_key_gen_derand(alg, seed)
    }

    fn kem_encaps(
        _alg: KemAlgorithm,
        _pk_r: &[u8],
        _prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        Err(HpkeCryptoError::UnsupportedKemOperation)
    }

    fn kem_decaps(alg: KemAlgorithm, ct: &[u8], sk_r: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kem_decaps(alg, ct, sk_r)
    }

    fn dh_validate_sk(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::dh_validate_sk(alg, sk)
    }

    fn aead_seal(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::aead_seal(alg, key, nonce, aad, msg)
    }

    fn aead_open(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::aead_open(alg, key, nonce, aad, msg)
    }

    fn aead_key_length(alg: AeadAlgorithm) -> usize {
        HpkeRustCrypto::aead_key_length(alg)
    }

    fn aead_nonce_length(alg: AeadAlgorithm) -> usize {
        HpkeRustCrypto::aead_nonce_length(alg)
    }

    fn aead_tag_length(alg: AeadAlgorithm) -> usize {
        HpkeRustCrypto::aead_tag_length(alg)
    }
}

#[cfg(test)]
mod determinism {
    use super::*;

    /// `HpkeConfig` is not `Copy`; tests take a function that makes one.
    type Config = fn() -> HpkeConfig;

    fn x25519() -> HpkeConfig {
        HpkeConfig(
            HpkeKemType::DhKem25519,
            HpkeKdfType::HkdfSha256,
            HpkeAeadType::AesGcm128,
        )
    }

    fn p256() -> HpkeConfig {
        HpkeConfig(
            HpkeKemType::DhKemP256,
            HpkeKdfType::HkdfSha256,
            HpkeAeadType::AesGcm128,
        )
    }

    fn recipient(config: HpkeConfig) -> HpkeKeyPair {
        RustCrypto::default()
            .derive_hpke_keypair(config, &[7u8; 32])
            .unwrap()
    }

    fn seal(crypto: &SeededCrypto, config: HpkeConfig, pk: &[u8]) -> HpkeCiphertext {
        crypto
            .hpke_seal(config, pk, b"info", b"aad", b"a welcome secret")
            .unwrap()
    }

    #[test]
    fn same_seed_same_random_bytes() {
        let a = SeededCrypto::from_seed([1; 32]);
        let b = SeededCrypto::from_seed([1; 32]);
        assert_eq!(a.random_vec(100).unwrap(), b.random_vec(100).unwrap());
        assert_eq!(
            a.random_array::<32>().unwrap(),
            b.random_array::<32>().unwrap()
        );
        // The stream advances: the next draw differs from the first.
        let first = SeededCrypto::from_seed([1; 32]).random_vec(32).unwrap();
        assert_ne!(a.random_vec(32).unwrap(), first);
    }

    #[test]
    fn different_seeds_different_random_bytes() {
        let a = SeededCrypto::from_seed([1; 32]);
        let b = SeededCrypto::from_seed([2; 32]);
        assert_ne!(a.random_vec(32).unwrap(), b.random_vec(32).unwrap());
        let c = SeededCrypto::from_entropy();
        let d = SeededCrypto::from_entropy();
        assert_ne!(c.random_vec(32).unwrap(), d.random_vec(32).unwrap());
    }

    #[test]
    fn same_seed_same_hpke_seal() {
        for config in [x25519 as Config, p256] {
            let pk = recipient(config()).public;
            let a = SeededCrypto::from_seed([3; 32]);
            let b = SeededCrypto::from_seed([3; 32]);
            let (sealed_a, sealed_b) = (seal(&a, config(), &pk), seal(&b, config(), &pk));
            assert_eq!(sealed_a, sealed_b);
            // Another secret sealed to the same key gets another ephemeral key.
            let other = a
                .hpke_seal(config(), &pk, b"info", b"aad", b"another secret")
                .unwrap();
            assert_ne!(other.kem_output, sealed_a.kem_output);
        }
    }

    #[test]
    fn different_seeds_different_hpke_seal() {
        let pk = recipient(x25519()).public;
        let a = seal(&SeededCrypto::from_seed([3; 32]), x25519(), &pk);
        let b = seal(&SeededCrypto::from_seed([4; 32]), x25519(), &pk);
        assert_ne!(a.kem_output, b.kem_output);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn hpke_seals_do_not_depend_on_call_order() {
        // openmls seals an update path's secrets on several threads in any order; the result
        // must not depend on it.
        let pk = recipient(x25519()).public;
        let (a, b) = (
            SeededCrypto::from_seed([5; 32]),
            SeededCrypto::from_seed([5; 32]),
        );
        let seal_with = |c: &SeededCrypto, text: &[u8]| {
            c.hpke_seal(x25519(), &pk, b"info", b"aad", text).unwrap()
        };
        let (a1, a2) = (seal_with(&a, b"one"), seal_with(&a, b"two"));
        let (b2, b1) = (seal_with(&b, b"two"), seal_with(&b, b"one"));
        assert_eq!((a1, a2), (b1, b2));
        // And the per-call seed is gone once the call returns.
        assert!(HPKE_RNG.with(|cell| cell.borrow().is_none()));
    }

    #[test]
    fn seeded_seal_opens_with_rust_crypto() {
        for config in [x25519 as Config, p256] {
            let keys = recipient(config());
            let sealed = seal(&SeededCrypto::from_seed([6; 32]), config(), &keys.public);
            let opened = RustCrypto::default()
                .hpke_open(config(), &sealed, &keys.private, b"info", b"aad")
                .unwrap();
            assert_eq!(opened, b"a welcome secret");
            // Tampering is still caught.
            let mut tampered = sealed.clone();
            let mut ciphertext = tampered.ciphertext.as_slice().to_vec();
            ciphertext[0] ^= 1;
            tampered.ciphertext = ciphertext.into();
            assert_eq!(
                RustCrypto::default().hpke_open(
                    config(),
                    &tampered,
                    &keys.private,
                    b"info",
                    b"aad"
                ),
                Err(CryptoError::HpkeDecryptionError)
            );
        }
    }

    #[test]
    fn seeded_sender_export_matches_rust_crypto_receiver() {
        let keys = recipient(x25519());
        let export = |seed| {
            SeededCrypto::from_seed(seed)
                .hpke_setup_sender_and_export(x25519(), &keys.public, b"info", b"ctx", 32)
                .unwrap()
        };
        let (enc, secret) = export([8; 32]);
        let (enc_again, secret_again) = export([8; 32]);
        assert_eq!(enc, enc_again);
        assert_eq!(&secret[..], &secret_again[..]);
        let (enc_other, _) = export([9; 32]);
        assert_ne!(enc, enc_other);
        let received = RustCrypto::default()
            .hpke_setup_receiver_and_export(x25519(), &enc, &keys.private, b"info", b"ctx", 32)
            .unwrap();
        assert_eq!(&received[..], &secret[..]);
    }

    #[test]
    fn hpke_bad_public_key_is_an_error() {
        let crypto = SeededCrypto::from_seed([10; 32]);
        assert!(
            crypto
                .hpke_seal(p256(), b"not a point", b"info", b"aad", b"x")
                .is_err()
        );
        assert!(
            crypto
                .hpke_setup_sender_and_export(p256(), b"not a point", b"info", b"ctx", 32)
                .is_err()
        );
    }

    #[test]
    fn same_seed_same_signature_keys() {
        let rust_crypto = RustCrypto::default();
        for scheme in [
            SignatureScheme::ED25519,
            SignatureScheme::ECDSA_SECP256R1_SHA256,
            SignatureScheme::ECDSA_SECP384R1_SHA384,
        ] {
            let a = SeededCrypto::from_seed([11; 32])
                .signature_key_gen(scheme)
                .unwrap();
            let b = SeededCrypto::from_seed([11; 32])
                .signature_key_gen(scheme)
                .unwrap();
            let c = SeededCrypto::from_seed([12; 32])
                .signature_key_gen(scheme)
                .unwrap();
            assert_eq!(a, b);
            assert_ne!(a.1, c.1);
            // The keys are in RustCrypto's encoding: it signs and verifies with them.
            let signature = rust_crypto.sign(scheme, b"data", &a.0).unwrap();
            rust_crypto
                .verify_signature(scheme, b"data", &a.1, &signature)
                .unwrap();
        }
        assert_eq!(
            SeededCrypto::from_seed([11; 32]).signature_key_gen(SignatureScheme::ED448),
            Err(CryptoError::UnsupportedSignatureScheme)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached verification gives `RustCrypto`'s answer for good and bad signatures, keys
    /// and lengths, the first time and from the cache.
    #[test]
    fn cached_ed25519_verification_agrees_with_rust_crypto() {
        let crypto = SeededCrypto::from_seed([7; 32]);
        let reference = RustCrypto::default();
        let (sk, pk) = crypto.signature_key_gen(SignatureScheme::ED25519).unwrap();
        let (_, other_pk) = crypto.signature_key_gen(SignatureScheme::ED25519).unwrap();
        let data = b"a framed content";
        let sig = crypto.sign(SignatureScheme::ED25519, data, &sk).unwrap();
        let mut tampered_sig = sig.clone();
        tampered_sig[3] ^= 1;
        // Not a point on the curve: y = 2 has no square root x.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let cases: Vec<(&[u8], &[u8], &[u8])> = vec![
            (data, &pk, &sig),
            (b"other data", &pk, &sig),
            (data, &other_pk, &sig),
            (data, &pk, &tampered_sig),
            (data, &pk, &sig[..63]),
            (data, &pk[..31], &sig),
            (data, &not_a_point, &sig),
        ];
        for round in 0..2 {
            for (i, (d, k, s)) in cases.iter().enumerate() {
                assert_eq!(
                    crypto.verify_signature(SignatureScheme::ED25519, d, k, s),
                    reference.verify_signature(SignatureScheme::ED25519, d, k, s),
                    "case {i}, round {round}"
                );
            }
        }
        assert_eq!(
            crypto.verify_signature(SignatureScheme::ED25519, data, &pk, &sig),
            Ok(())
        );
    }
}
