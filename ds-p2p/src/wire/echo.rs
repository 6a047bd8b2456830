//! The sequencer's echo (consistency mode `sequencer`): the designated member's signed word
//! that a commit is *the* commit of an epoch. Members apply a commit only once its echo is
//! in, so a group with one sequencer never forks.

use serde::{Deserialize, Serialize};

use super::envelope::{decode_limited, encode};
use super::signed::{self, ECHO_LABEL};
use super::{CommitRef, GroupRef, WireError};

/// An echo is small: two numbers, a hash and an Ed25519 signature.
const MAX_ECHO_BYTES: usize = 1024;

/// "The commit made on `epoch` is `commit_ref`", signed by the member at leaf `sequencer`
/// with its MLS signature key (the one in the group's ratchet tree at that epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencerEcho {
    /// The epoch the commit was made on (the state it applies to).
    pub epoch: u64,
    pub commit_ref: CommitRef,
    /// The leaf index of the signer in that epoch's tree.
    pub sequencer: u32,
    pub signature: Vec<u8>,
}

impl SequencerEcho {
    /// The bytes the signature covers: label, group, epoch, commit and signer leaf (see
    /// [`signed`] for the label).
    pub fn signed_bytes(group: GroupRef, epoch: u64, commit_ref: &CommitRef, leaf: u32) -> Vec<u8> {
        let mut out = signed::labelled(ECHO_LABEL, group);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&commit_ref.0);
        out.extend_from_slice(&leaf.to_be_bytes());
        out
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode("sequencer echo", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode_limited("sequencer echo", bytes, MAX_ECHO_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_round_trips_and_garbage_is_an_error() {
        let echo = SequencerEcho {
            epoch: 7,
            commit_ref: CommitRef([3; 32]),
            sequencer: 2,
            signature: vec![9; 64],
        };
        let bytes = echo.encode().expect("encodes");
        assert_eq!(SequencerEcho::decode(&bytes).expect("decodes"), echo);
        assert!(SequencerEcho::decode(&[0xff; 3]).is_err());
        assert!(SequencerEcho::decode(&vec![0; MAX_ECHO_BYTES + 1]).is_err());
    }

    #[test]
    fn the_signed_bytes_bind_group_epoch_commit_and_signer() {
        let base = SequencerEcho::signed_bytes(GroupRef([1; 16]), 5, &CommitRef([2; 32]), 0);
        assert_ne!(
            base,
            SequencerEcho::signed_bytes(GroupRef([1; 16]), 6, &CommitRef([2; 32]), 0)
        );
        assert_ne!(
            base,
            SequencerEcho::signed_bytes(GroupRef([1; 16]), 5, &CommitRef([2; 32]), 1)
        );
        assert_ne!(
            base,
            SequencerEcho::signed_bytes(GroupRef([4; 16]), 5, &CommitRef([2; 32]), 0)
        );
    }
}
