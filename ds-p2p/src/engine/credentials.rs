//! Credential checks (issue 3, item 7): every credential the engine meets — in a KeyPackage it
//! is asked to add, in a received commit's Adds, Updates and update path, and in every leaf of
//! a Welcome's ratchet tree — goes through identity-tofu.
//!
//! Two different decisions, on purpose:
//! - **Refusal is consistent.** A commit or Welcome is refused only for what every honest
//!   member decides identically from the bytes alone: the credential must be a Basic
//!   credential holding a [`SignedDeviceCertificate`] whose signature verifies under its
//!   identity key, and the MLS signature key must be the certified device key. Nothing here
//!   depends on the local clock or on local trust state, because a member that refused a
//!   commit the others accepted would fork itself off the group.
//! - **TOFU is local and reported.** With a trust store attached, each certificate is also
//!   observed under its handle; a changed identity key becomes an [`Event::KeyChanged`] for the
//!   user to compare safety numbers, and refuses only this member's *own* Invite of that key.

use identity_tofu::certificate::DeviceCertificate;
use identity_tofu::kv::KvStore;
use identity_tofu::{Address, DevicePublicKey, Outcome, SignedDeviceCertificate, TrustStore};
use openmls::prelude::*;

use super::api::Event;
use super::{Engine, EngineError};
use crate::wire::GroupRef;

/// A trust store over any of the node's stores.
pub type SharedTrustStore = TrustStore<std::sync::Arc<dyn KvStore>>;

/// Checks that `credential` certifies `signature_key`; the consistent part.
pub fn check_credential(
    credential: &Credential,
    signature_key: &[u8],
) -> Result<DeviceCertificate, EngineError> {
    let certificate = verified_certificate(credential)?;
    check_device_key(&certificate, signature_key)?;
    Ok(certificate)
}

/// The device certificate a Basic credential holds, its signature verified.
fn verified_certificate(credential: &Credential) -> Result<DeviceCertificate, EngineError> {
    let invalid = |why: String| EngineError::InvalidCredential(why);
    if credential.credential_type() != CredentialType::Basic {
        return Err(invalid(format!(
            "credential type {:?} is not Basic",
            credential.credential_type()
        )));
    }
    let signed = SignedDeviceCertificate::decode(credential.serialized_content())
        .map_err(|e| invalid(format!("not a device certificate: {e}")))?;
    Ok(signed
        .verify_signature()
        .map_err(|e| invalid(e.to_string()))?
        .clone())
}

/// Checks that the MLS signature key is the certified device key.
fn check_device_key(
    certificate: &DeviceCertificate,
    signature_key: &[u8],
) -> Result<(), EngineError> {
    let presented = DevicePublicKey::from_slice(signature_key).map_err(|_| {
        EngineError::InvalidCredential(format!(
            "MLS signature key is {} bytes, not Ed25519",
            signature_key.len()
        ))
    })?;
    if presented != certificate.device_key {
        return Err(EngineError::InvalidCredential(format!(
            "{}'s MLS signature key {presented} is not the certified device key {}",
            certificate.handle, certificate.device_key
        )));
    }
    Ok(())
}

/// Certificates verified so far, by the SHA-256 of the credential's bytes, so that each is
/// verified once: every commit carries its committer's leaf, and each member checks it, so a
/// group of 50 verified the same certificate ~49 times per commit (13 % of the simulator's
/// time at 1,000 nodes). The result depends on the bytes alone (no clock, no trust state), so
/// remembering it changes no decision. Successes only; the oldest go first.
///
/// Clones share one memory: the simulator hands one to all the engines of a run (as it does
/// the signature memo), so a certificate is verified once per run, not once per member.
#[derive(Debug, Default, Clone)]
pub struct VerifiedCertificates {
    inner: std::sync::Arc<std::sync::Mutex<Remembered>>,
}

#[derive(Debug, Default)]
struct Remembered {
    by_digest: std::collections::HashMap<[u8; 32], DeviceCertificate>,
    order: std::collections::VecDeque<[u8; 32]>,
}

/// Certificates remembered per engine.
const MAX_VERIFIED_CERTIFICATES: usize = 4096;

impl VerifiedCertificates {
    /// An empty memory, shared by its clones.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many certificates are remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // A panic elsewhere while holding it leaves the maps consistent (each change is one
        // insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`check_credential`], verifying the certificate's signature only the first time.
    pub fn check(
        &self,
        credential: &Credential,
        signature_key: &[u8],
    ) -> Result<DeviceCertificate, EngineError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        // The type too: only a Basic credential verifies, whatever its bytes.
        hasher.update([u8::from(
            credential.credential_type() == CredentialType::Basic,
        )]);
        hasher.update(credential.serialized_content());
        let digest: [u8; 32] = hasher.finalize().into();
        let known = self.lock().by_digest.get(&digest).cloned();
        let certificate = match known {
            Some(known) => known,
            None => {
                let fresh = verified_certificate(credential)?;
                let mut remembered = self.lock();
                if remembered.order.len() >= MAX_VERIFIED_CERTIFICATES
                    && let Some(oldest) = remembered.order.pop_front()
                {
                    remembered.by_digest.remove(&oldest);
                }
                if remembered.by_digest.insert(digest, fresh.clone()).is_none() {
                    remembered.order.push_back(digest);
                }
                fresh
            }
        };
        check_device_key(&certificate, signature_key)?;
        Ok(certificate)
    }
}

/// The handle in a credential, for display; the raw bytes' hex when it is not a certificate.
pub fn display_name(identity: &[u8]) -> String {
    match SignedDeviceCertificate::decode(identity) {
        Ok(signed) => signed.certificate().handle.clone(),
        Err(_) => hex::encode(&identity[..identity.len().min(8)]),
    }
}

impl Engine {
    /// Checks a leaf's credential and records it with TOFU. `Ok(true)` when its identity
    /// key differs from the one pinned for its handle (reported as [`Event::KeyChanged`]).
    pub(crate) fn check_leaf(
        &mut self,
        group: Option<GroupRef>,
        credential: &Credential,
        signature_key: &[u8],
        now_ms: u64,
    ) -> Result<bool, EngineError> {
        let certificate = self
            .verified_certificates
            .check(credential, signature_key)?;
        let Some(trust) = &self.trust else {
            return Ok(false);
        };
        if certificate.identity_key == self.own_identity_key {
            return Ok(false);
        }
        let address = Address::Handle(certificate.handle.clone());
        let observation = trust
            .observe(
                &address,
                &certificate.identity_key,
                &certificate.device_key,
                now_ms,
            )
            .map_err(|e| EngineError::Refused(format!("trust store: {e}")))?;
        if let Outcome::KeyChanged { pinned, offered } = observation.outcome {
            self.emit(Event::KeyChanged {
                group,
                handle: certificate.handle.clone(),
                pinned: pinned.fingerprint().to_string(),
                offered: offered.fingerprint().to_string(),
            });
            return Ok(true);
        }
        Ok(false)
    }

    /// Checks every credential a staged commit brings in: its Adds, its Updates and the
    /// committer's new leaf.
    pub(crate) fn check_commit_credentials(
        &mut self,
        group: GroupRef,
        staged: &StagedCommit,
        now_ms: u64,
    ) -> Result<(), EngineError> {
        let mut leaves: Vec<(Credential, Vec<u8>)> = Vec::new();
        for add in staged.add_proposals() {
            let leaf = add.add_proposal().key_package().leaf_node();
            leaves.push((
                leaf.credential().clone(),
                leaf.signature_key().as_slice().to_vec(),
            ));
        }
        for update in staged.update_proposals() {
            let leaf = update.update_proposal().leaf_node();
            leaves.push((
                leaf.credential().clone(),
                leaf.signature_key().as_slice().to_vec(),
            ));
        }
        if let Some(leaf) = staged.update_path_leaf_node() {
            leaves.push((
                leaf.credential().clone(),
                leaf.signature_key().as_slice().to_vec(),
            ));
        }
        for (credential, key) in leaves {
            self.check_leaf(Some(group), &credential, &key, now_ms)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use identity_tofu::{DeviceKey, IdentityKey};

    use super::*;

    fn credential_of(identity: &IdentityKey, device: &DeviceKey) -> Credential {
        let signed =
            SignedDeviceCertificate::issue(identity, "ann", device.public(), 1, 1_000).unwrap();
        BasicCredential::new(signed.encode()).into()
    }

    #[test]
    fn a_remembered_certificate_still_binds_its_device_key() {
        let identity = IdentityKey::from_secret_bytes(&[1; 32]);
        let device = DeviceKey::from_secret_bytes(&[2; 32]);
        let other = DeviceKey::from_secret_bytes(&[3; 32]);
        let credential = credential_of(&identity, &device);
        let verified = VerifiedCertificates::default();
        for _ in 0..2 {
            let certificate = verified
                .check(&credential, device.public().as_bytes())
                .unwrap();
            assert_eq!(certificate.device_key, device.public());
        }
        assert_eq!(verified.len(), 1, "verified once, remembered");
        let shared = verified.clone();
        shared
            .check(&credential, device.public().as_bytes())
            .unwrap();
        assert_eq!(verified.len(), 1, "clones share one memory");
        assert!(matches!(
            verified.check(&credential, other.public().as_bytes()),
            Err(EngineError::InvalidCredential(_))
        ));
    }

    #[test]
    fn a_forged_certificate_is_refused_and_not_remembered() {
        let identity = IdentityKey::from_secret_bytes(&[1; 32]);
        let device = DeviceKey::from_secret_bytes(&[2; 32]);
        let good = credential_of(&identity, &device);
        let verified = VerifiedCertificates::default();
        verified.check(&good, device.public().as_bytes()).unwrap();
        let mut bytes = good.serialized_content().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the signature's last byte
        let forged: Credential = BasicCredential::new(bytes).into();
        for _ in 0..2 {
            assert!(matches!(
                verified.check(&forged, device.public().as_bytes()),
                Err(EngineError::InvalidCredential(_))
            ));
        }
        assert_eq!(verified.len(), 1);
    }
}
