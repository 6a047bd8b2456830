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
    let invalid = |why: String| EngineError::InvalidCredential(why);
    if credential.credential_type() != CredentialType::Basic {
        return Err(invalid(format!(
            "credential type {:?} is not Basic",
            credential.credential_type()
        )));
    }
    let signed = SignedDeviceCertificate::decode(credential.serialized_content())
        .map_err(|e| invalid(format!("not a device certificate: {e}")))?;
    let certificate = signed
        .verify_signature()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let presented = DevicePublicKey::from_slice(signature_key).map_err(|_| {
        invalid(format!(
            "MLS signature key is {} bytes, not Ed25519",
            signature_key.len()
        ))
    })?;
    if presented != certificate.device_key {
        return Err(invalid(format!(
            "{}'s MLS signature key {presented} is not the certified device key {}",
            certificate.handle, certificate.device_key
        )));
    }
    Ok(certificate)
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
        let certificate = check_credential(credential, signature_key)?;
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
