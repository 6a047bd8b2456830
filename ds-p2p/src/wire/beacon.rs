//! The beacon (DESIGN §4, fork detection) and its signature.
//!
//! A beacon travels in the clear on the group topic, where anyone who knows the topic can
//! publish. Unsigned, a forged one could make a joiner believe its Add lost (`JoinLost`),
//! vouch for a Welcome root, decide how deep a removal went, or raise false fork events. So
//! every beacon is a [`SignedBeacon`]: the sender's MLS signature key (its leaf's, the device
//! key its credential certifies) signs the label "chorus beacon v1", the group ref and every
//! field, and names that key. The receiver uses a beacon only when the signature verifies and
//! the key is a member's in a state it holds (see `Engine::authenticate_beacon`).
//!
//! Replay: a genuine beacon sent again later says what its sender saw then. Gossip and the
//! store-and-forward log already hand out old beacons late (anti-entropy gives a joiner the
//! group's older log), and the engine copes with them: a lost-join mark is taken back by a
//! beacon or commit of the member's branch, vouching and removal depth only grow with
//! evidence that was genuine once, and fork events are reports. A replay can do no more than
//! that late delivery; binding beacons to a time would need clocks members do not share.

use serde::{Deserialize, Serialize};

use super::envelope::{decode_limited, encode};
use super::signed::{self, BEACON_LABEL};
use super::{CommitRef, GroupRef, WireError};

/// The most bytes a beacon payload may have: a signature, a key and a few dozen log entries.
pub const MAX_BEACON_BYTES: usize = 64 * 1024;

/// What a member announces periodically on the group topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    /// The epoch of the member's active branch.
    pub epoch: u64,
    /// The MLS exporter secret (label "chorus branch") of that state: equal for members of one
    /// branch, meaningless to outsiders.
    pub branch_id: [u8; 16],
    /// The last few (epoch, commit ref) of the active branch, newest last, so that two members
    /// can find their fork point.
    pub recent_commits: Vec<(u64, CommitRef)>,
}

/// A [`Beacon`] with its sender's signature: what a beacon envelope carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBeacon {
    pub beacon: Beacon,
    /// The sender's MLS signature key (Ed25519, 32 bytes).
    pub signer: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SignedBeacon {
    /// The bytes the signature covers: label, group, the beacon's fields (the log with its
    /// length first) and the signer's key.
    pub fn signed_bytes(group: GroupRef, beacon: &Beacon, signer: &[u8]) -> Vec<u8> {
        let mut out = signed::labelled(BEACON_LABEL, group);
        out.extend_from_slice(&beacon.epoch.to_be_bytes());
        out.extend_from_slice(&beacon.branch_id);
        out.extend_from_slice(&(beacon.recent_commits.len() as u64).to_be_bytes());
        for (epoch, commit) in &beacon.recent_commits {
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&commit.0);
        }
        out.extend_from_slice(&(signer.len() as u64).to_be_bytes());
        out.extend_from_slice(signer);
        out
    }

    /// Signs `beacon` about `group` with `signer`, whose public key is `key`.
    pub fn sign(
        group: GroupRef,
        beacon: Beacon,
        signer: &impl openmls_traits::signatures::Signer,
        key: &[u8],
    ) -> Result<Self, WireError> {
        let signature = signed::sign("beacon", signer, &Self::signed_bytes(group, &beacon, key))?;
        Ok(Self {
            beacon,
            signer: key.to_vec(),
            signature,
        })
    }

    /// Whether the signature is the named signer's over these fields about `group`.
    pub fn verifies(
        &self,
        group: GroupRef,
        crypto: &impl openmls_traits::crypto::OpenMlsCrypto,
    ) -> bool {
        let bytes = Self::signed_bytes(group, &self.beacon, &self.signer);
        signed::verifies(crypto, &bytes, &self.signer, &self.signature)
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode("beacon", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode_limited("beacon", bytes, MAX_BEACON_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::RustCrypto;
    use openmls_traits::types::SignatureScheme;

    use super::*;

    fn beacon() -> Beacon {
        Beacon {
            epoch: 9,
            branch_id: [5; 16],
            recent_commits: vec![(7, CommitRef([1; 32])), (8, CommitRef([2; 32]))],
        }
    }

    fn keys() -> SignatureKeyPair {
        SignatureKeyPair::new(SignatureScheme::ED25519).expect("a key pair")
    }

    #[test]
    fn a_signed_beacon_round_trips_and_verifies_only_as_signed() {
        let (crypto, keys, group) = (RustCrypto::default(), keys(), GroupRef([3; 16]));
        let signed = SignedBeacon::sign(group, beacon(), &keys, keys.public()).expect("signs");
        let decoded = SignedBeacon::decode(&signed.encode().expect("encodes")).expect("decodes");
        assert_eq!(decoded, signed);
        assert!(decoded.verifies(group, &crypto));
        // Another group, another field, another log, another named signer: all refused.
        assert!(!signed.verifies(GroupRef([4; 16]), &crypto));
        let mut altered = signed.clone();
        altered.beacon.epoch += 1;
        assert!(!altered.verifies(group, &crypto));
        let mut altered = signed.clone();
        altered.beacon.recent_commits[0].1 = CommitRef([9; 32]);
        assert!(!altered.verifies(group, &crypto));
        let mut altered = signed.clone();
        altered.beacon.recent_commits.pop();
        assert!(!altered.verifies(group, &crypto));
        let mut altered = signed.clone();
        altered.signer = keys_public_other();
        assert!(!altered.verifies(group, &crypto));
        assert!(SignedBeacon::decode(&[0xff; 5]).is_err());
        assert!(SignedBeacon::decode(&vec![0; MAX_BEACON_BYTES + 1]).is_err());
    }

    fn keys_public_other() -> Vec<u8> {
        keys().public().to_vec()
    }

    #[test]
    fn the_log_length_is_signed_so_entries_cannot_move_between_fields() {
        let group = GroupRef([3; 16]);
        let mut shorter = beacon();
        shorter.recent_commits.pop();
        assert_ne!(
            SignedBeacon::signed_bytes(group, &beacon(), &[1; 32]),
            SignedBeacon::signed_bytes(group, &shorter, &[1; 32])
        );
    }
}
