//! The fingerprint of a range: what two peers compare to learn whether a range differs.
//!
//! `fingerprint = SHA-256("chorus/reconcile/fp/1" ‖ salt ‖ count ‖ (timestamp ‖ id)…)[..16]`,
//! over the items of the range in ascending order, count as 8 bytes little endian, each
//! timestamp as 8 bytes big endian.
//!
//! Why a hash of the whole list and not an XOR or sum of ids (which can be updated in O(1)):
//! sums and XORs of ids are linear, so someone who can get envelopes into peers' logs can
//! search for two different sets with the same sum (Wagner's generalised birthday attack;
//! for XOR, plain linear algebra), and two honest peers would then agree that differing
//! ranges are equal and never sync them. A hash over the sorted list is collision resistant.
//! The price is hashing every item of a range each time the range is compared; a range is
//! compared once per round it is still open, so a session hashes each item about
//! `1 + rounds in which its range still differs` times — a few megabytes for 100,000 items.
//!
//! The salt is chosen fresh by the initiator for each session, so a collision would have to
//! be found after the session started between sets that were planted before it; truncating
//! to 128 bits then still leaves 2^128 work, while halving the bytes fingerprints cost.

use sha2::{Digest, Sha256};

use super::item::Item;

/// The 16-byte fingerprint of a range.
pub(crate) type Fingerprint = [u8; 16];

const DOMAIN: &[u8] = b"chorus/reconcile/fp/1\0";

/// The fingerprint of `items` (ascending) under the session's `salt`.
pub(crate) fn fingerprint(salt: &[u8; 16], items: &[Item]) -> Fingerprint {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(salt);
    hasher.update((items.len() as u64).to_le_bytes());
    // One 40-byte update per item instead of two keeps the hasher's buffering cheap.
    let mut block = [0u8; 40];
    for item in items {
        block[..8].copy_from_slice(&item.timestamp_ms.to_be_bytes());
        block[8..].copy_from_slice(&item.id.0);
        hasher.update(block);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope_id::EnvelopeId;

    fn items(ids: &[u8]) -> Vec<Item> {
        ids.iter()
            .map(|b| Item::new(u64::from(*b), EnvelopeId([*b; 32])))
            .collect()
    }

    #[test]
    fn equal_lists_equal_fingerprints_different_lists_differ() {
        let salt = [7; 16];
        assert_eq!(
            fingerprint(&salt, &items(&[1, 2, 3])),
            fingerprint(&salt, &items(&[1, 2, 3]))
        );
        assert_ne!(
            fingerprint(&salt, &items(&[1, 2, 3])),
            fingerprint(&salt, &items(&[1, 2, 4]))
        );
        assert_ne!(
            fingerprint(&salt, &items(&[1, 2])),
            fingerprint(&salt, &items(&[1, 2, 3]))
        );
        assert_ne!(fingerprint(&salt, &[]), fingerprint(&salt, &items(&[0])));
    }

    #[test]
    fn the_salt_changes_every_fingerprint() {
        assert_ne!(
            fingerprint(&[1; 16], &items(&[1, 2])),
            fingerprint(&[2; 16], &items(&[1, 2]))
        );
    }

    #[test]
    fn timestamps_are_part_of_the_item() {
        let a = [Item::new(1, EnvelopeId([5; 32]))];
        let b = [Item::new(2, EnvelopeId([5; 32]))];
        assert_ne!(fingerprint(&[0; 16], &a), fingerprint(&[0; 16], &b));
    }
}
