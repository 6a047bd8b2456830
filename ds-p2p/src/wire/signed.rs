//! Chorus's own signed messages — the sequencer's echo and the beacon — are signed here, in
//! one way: with the member's MLS signature key (the Ed25519 device key its leaf holds, which
//! its credential certifies), over bytes that begin with a label naming the kind of message
//! and the group it is about.
//!
//! Why the label and the group first: the same key signs MLS messages (openmls signs a
//! TLS-encoded `SignContent` that begins with a length-prefixed "MLS 1.0 ..." label) and both
//! kinds here. A signature over "chorus beacon v1" ‖ group ‖ fields cannot be taken for an MLS
//! signature (its first bytes are not a valid "MLS 1.0" prefix), nor for an echo (another
//! label, and no label is a prefix of another), nor for a beacon of another group (the group
//! ref is signed).

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use openmls_traits::types::SignatureScheme;

use super::{GroupRef, WireError};

/// The label of a [`SequencerEcho`](super::SequencerEcho) signature.
pub(crate) const ECHO_LABEL: &[u8] = b"chorus sequencer echo v1";
/// The label of a [`SignedBeacon`](super::SignedBeacon) signature.
pub(crate) const BEACON_LABEL: &[u8] = b"chorus beacon v1";

/// Every label in use; none may be a prefix of another (see the test).
#[cfg(test)]
const LABELS: &[&[u8]] = &[ECHO_LABEL, BEACON_LABEL];

/// The start of the bytes a signature of kind `label` about `group` covers; the caller
/// appends the message's fields in a fixed-width or length-prefixed encoding.
pub(crate) fn labelled(label: &[u8], group: GroupRef) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + group.0.len() + 64);
    out.extend_from_slice(label);
    out.extend_from_slice(&group.0);
    out
}

/// Signs `bytes` (made with [`labelled`]) with a member's MLS signature key.
pub fn sign(what: &'static str, signer: &impl Signer, bytes: &[u8]) -> Result<Vec<u8>, WireError> {
    signer.sign(bytes).map_err(|e| WireError::Unsignable {
        what,
        reason: format!("{e:?}"),
    })
}

/// Whether `signature` over `bytes` verifies under the Ed25519 key `key` (the group's
/// ciphersuite's scheme). `crypto` is the provider's, whose verification caches decompressed
/// keys and results.
pub fn verifies(crypto: &impl OpenMlsCrypto, bytes: &[u8], key: &[u8], signature: &[u8]) -> bool {
    crypto
        .verify_signature(SignatureScheme::ED25519, bytes, key, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_label_is_a_prefix_of_another() {
        for (i, a) in LABELS.iter().enumerate() {
            for (j, b) in LABELS.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{:?} starts with {:?}", b, a);
                }
            }
            // An MLS SignContent starts with the length of its label: "MLS 1.0 ..." labels
            // are under 64 bytes, so one length byte below 0x40. Ours start with 'c'.
            assert!(a[0] >= 0x40);
        }
    }

    #[test]
    fn the_label_and_the_group_lead() {
        let bytes = labelled(BEACON_LABEL, GroupRef([7; 16]));
        assert_eq!(&bytes[..BEACON_LABEL.len()], BEACON_LABEL);
        assert_eq!(&bytes[BEACON_LABEL.len()..], &[7; 16]);
    }
}
