//! Where each thing lives in the MLS column family.
//!
//! ```text
//! c <label> 0x00 <json key>                       per-client: signature keys, key packages, PSKs,
//!                                                 encryption key pairs made outside any group
//! g <group token:32> A                            the group's active branch id (u64 big-endian)
//! g <group token:32> N                            the next branch id to hand out
//! g <group token:32> L <branch:8>                 marker: this branch exists
//! g <group token:32> B <branch:8> <label> 0x00 <json key>
//!                                                 the group's state on that branch
//! ```
//!
//! The group token is SHA-256 of the group id as openmls serialises it, so every key of a
//! group has the same fixed-length prefix and no group's prefix is a prefix of another's.
//! Labels are ASCII without 0x00, so one label's keys never run into another's.

use identity_tofu::kv::{KeyRule, KeySchema};
use sha2::{Digest, Sha256};

/// The layout of the MLS column for encryption at rest ([`identity_tofu::kv::SealedKv`]):
/// which key parts name a group (stored as keyed hashes), and the branch namespaces, each
/// sealed under a data key of its own that pruning the branch destroys (crypto-shredding).
///
/// Besides the MLS state above, the engine keeps per-group records here, each under a tag and
/// the 16-byte [`GroupRef`](crate::wire::GroupRef): `e` group record, `s` / `n` window lists,
/// `u` undelivered messages, `m` consistency mode, `h` / `r` own messages and Removes kept
/// for healing a split, `o` envelopes not yet confirmed published. Per-client items (`c`) name keys and key
/// packages, not groups or contacts, and stay readable as keys (their values are sealed).
pub fn sealed_layout() -> KeySchema {
    let by_group_ref = |tag: &[u8]| KeyRule::starting_with(tag).secret(16).plain_rest();
    KeySchema::new(vec![
        KeyRule::starting_with(b"g")
            .secret(32)
            .literal(b"B")
            .plain(8)
            .namespace()
            .plain_rest(),
        KeyRule::starting_with(b"g").secret(32).plain_rest(),
        KeyRule::starting_with(b"c").plain_rest(),
        by_group_ref(b"e"),
        by_group_ref(b"s"),
        by_group_ref(b"n"),
        by_group_ref(b"u"),
        by_group_ref(b"m"),
        by_group_ref(b"h"),
        by_group_ref(b"r"),
        by_group_ref(b"o"),
    ])
}

/// A branch of one group's state (see the crate docs on forks).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BranchId(pub u64);

impl std::fmt::Display for BranchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// The fixed-length stand-in for a group id in storage keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupToken([u8; 32]);

impl GroupToken {
    /// The token of a group, from the group id's serialised form (as openmls passes it).
    pub fn from_serialized_group_id(serialized: &[u8]) -> Self {
        Self(Sha256::digest(serialized).into())
    }

    fn prefix(&self, tag: u8) -> Vec<u8> {
        let mut key = Vec::with_capacity(42);
        key.push(b'g');
        key.extend_from_slice(&self.0);
        key.push(tag);
        key
    }

    /// Key of the active-branch pointer.
    pub fn active_key(&self) -> Vec<u8> {
        self.prefix(b'A')
    }

    /// Key of the branch-id counter.
    pub fn next_key(&self) -> Vec<u8> {
        self.prefix(b'N')
    }

    /// Prefix of every branch marker of this group.
    pub fn markers_prefix(&self) -> Vec<u8> {
        self.prefix(b'L')
    }

    /// Key of one branch's marker.
    pub fn marker_key(&self, branch: BranchId) -> Vec<u8> {
        let mut key = self.markers_prefix();
        key.extend_from_slice(&branch.0.to_be_bytes());
        key
    }

    /// Prefix of everything stored for one branch.
    pub fn branch_prefix(&self, branch: BranchId) -> Vec<u8> {
        let mut key = self.prefix(b'B');
        key.extend_from_slice(&branch.0.to_be_bytes());
        key
    }

    /// Prefix of everything stored for this group, all branches and pointers.
    pub fn group_prefix(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(33);
        key.push(b'g');
        key.extend_from_slice(&self.0);
        key
    }

    /// Key of one item of one branch.
    pub fn item_key(&self, branch: BranchId, label: &str, item: &[u8]) -> Vec<u8> {
        let mut key = self.branch_prefix(branch);
        push_label(&mut key, label, item);
        key
    }
}

fn push_label(key: &mut Vec<u8>, label: &str, item: &[u8]) {
    key.extend_from_slice(label.as_bytes());
    key.push(0);
    key.extend_from_slice(item);
}

/// Key of a per-client item.
pub fn client_key(label: &str, item: &[u8]) -> Vec<u8> {
    let mut key = vec![b'c'];
    push_label(&mut key, label, item);
    key
}

/// Decodes a stored branch id.
pub fn decode_branch(bytes: &[u8]) -> Option<BranchId> {
    Some(BranchId(u64::from_be_bytes(bytes.try_into().ok()?)))
}

/// The labels of stored items. Kept in one place so the on-disk format is visible.
pub mod label {
    pub const JOIN_CONFIG: &str = "join_config";
    pub const OWN_LEAF_NODES: &str = "own_leaf_nodes";
    pub const PROPOSAL: &str = "proposal";
    pub const PROPOSAL_REFS: &str = "proposal_refs";
    pub const TREE: &str = "tree";
    pub const INTERIM_TRANSCRIPT_HASH: &str = "interim_transcript_hash";
    pub const CONTEXT: &str = "context";
    pub const CONFIRMATION_TAG: &str = "confirmation_tag";
    pub const GROUP_STATE: &str = "group_state";
    pub const MESSAGE_SECRETS: &str = "message_secrets";
    pub const RESUMPTION_PSK_STORE: &str = "resumption_psk_store";
    pub const OWN_LEAF_INDEX: &str = "own_leaf_index";
    pub const EPOCH_SECRETS: &str = "epoch_secrets";
    pub const EPOCH_KEY_PAIRS: &str = "epoch_key_pairs";
    pub const ENCRYPTION_KEY_PAIR: &str = "encryption_key_pair";
    pub const SIGNATURE_KEY_PAIR: &str = "signature_key_pair";
    pub const KEY_PACKAGE: &str = "key_package";
    /// Chorus's own: KeyPackages consumed by a join, kept for the fork window.
    pub const RETIRED_KEY_PACKAGE: &str = "retired_key_package";
    pub const PSK: &str = "psk";
}
