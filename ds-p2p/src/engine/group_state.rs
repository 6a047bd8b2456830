//! A group at run time: its stored record and the `MlsGroup` of the active branch.

use std::collections::{BTreeSet, VecDeque};

use openmls::prelude::*;

use super::fork_tree::ForkTree;
use super::record::GroupRecord;
use super::{EngineError, GroupStatus, mls_err};
use crate::storage::{BranchId, ChorusProvider, StorageError};
use crate::wire::{EnvelopeId, GroupRef};

/// Records live beside the MLS state, under their own first byte.
const RECORD_PREFIX: &[u8] = b"e";
/// A group record is small (held states, recent own messages); refuse to read a huge one.
const MAX_RECORD_BYTES: usize = 32 * 1024 * 1024;

fn record_key(group_ref: &GroupRef) -> Vec<u8> {
    let mut key = RECORD_PREFIX.to_vec();
    key.extend_from_slice(&group_ref.0);
    key
}

/// Every stored group record, with its own messages and seen ids (stored apart: see
/// `window_lists`).
pub(crate) fn load_records(provider: &ChorusProvider) -> Result<Vec<GroupRecord>, EngineError> {
    let staged = provider.mls_storage().staged();
    let mut out = Vec::new();
    for (_, bytes) in staged
        .scan_prefix(RECORD_PREFIX)
        .map_err(StorageError::from)?
    {
        let mut record: GroupRecord = identity_tofu::codec::decode(&bytes, MAX_RECORD_BYTES)
            .map_err(|e| StorageError::Corrupt {
                what: "group record",
                detail: e.to_string(),
            })?;
        super::window_lists::load(staged, &GroupRef::of(&record.group_id), &mut record)?;
        out.push(record);
    }
    Ok(out)
}

/// Ids of envelopes this member published recently, so their echoes are not processed.
#[derive(Debug, Default)]
pub(crate) struct RecentIds {
    order: VecDeque<EnvelopeId>,
    set: BTreeSet<EnvelopeId>,
}

impl RecentIds {
    /// An echo comes back within a gossip round trip, and the embedder's log drops later
    /// copies by id anyway. An own message whose echo is missed here fails to decrypt (its
    /// sender cannot read it); it is refused as a replay while the window still knows its
    /// id, else kept in the out-of-order buffer until that expires. Beacons count too, so a
    /// larger bound filled for hours: 4,096 ids (~80 B each) per group took the soak's nodes
    /// two hours to reach, and showed as the node's heap creeping up.
    const CAPACITY: usize = 256;

    pub fn insert(&mut self, id: EnvelopeId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            while self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, id: &EnvelopeId) -> bool {
        self.set.contains(id)
    }
}

/// A message kept until the commit that makes it readable arrives.
pub(crate) struct Buffered {
    pub epoch: u64,
    pub id: EnvelopeId,
    pub raw: Vec<u8>,
    pub retry: Retry,
}

/// When a buffered message is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Whenever the group changes and holds a state at its epoch or later (commits and
    /// proposals: what reads them also depends on the active state and the joins held).
    OnAnyChange,
    /// An application message: only a state at its own epoch reads it, and a state that
    /// could not, never will. So only once a state newer than every one it was tried on
    /// (storage ids only grow) is held at its epoch. Trying again decodes a whole stored
    /// group state, and a message from a branch this member never reaches was tried on every
    /// commit (14 % of the simulator's time at 1,000 nodes).
    OnNewStateAt { newest_tried: Option<BranchId> },
}

/// The newest held state at `epoch`, if any.
pub(crate) fn newest_state_at(tree: &ForkTree, epoch: u64) -> Option<BranchId> {
    tree.states()
        .filter(|s| s.epoch == epoch)
        .map(|s| s.storage)
        .max()
}

/// A group the engine is in.
pub(crate) struct GroupRuntime {
    pub group_ref: GroupRef,
    pub record: GroupRecord,
    /// The active branch's group, loaded from storage.
    pub group: MlsGroup,
    /// Envelopes this member published (not stored: after a restart, echoes fail to decrypt
    /// as own messages and are dropped as duplicates by id anyway).
    pub own_envelopes: RecentIds,
    /// Messages waiting for their epoch (not stored: the gossip log still has them).
    pub buffered: VecDeque<Buffered>,
    /// The group object of the state a received commit just created, handed to the switch
    /// that immediately follows so it need not load the state again (a load of a 1000-member
    /// group costs ~70 ms). Taken or cleared by that switch; never kept across steps.
    pub just_applied: Option<(BranchId, MlsGroup)>,
    /// Set when `group` holds that state rather than the active one: a received commit was
    /// applied in place. The switch right after either makes it active or reloads the active
    /// state. Never kept across steps.
    pub holds: Option<BranchId>,
    /// Healing splits older than the window: offers made, own messages kept.
    pub heal: super::heal::HealRuntime,
    /// The members' signature keys of held states, filled when a beacon needs them (not
    /// stored: see `beacon_auth`).
    pub member_keys: super::beacon_auth::MemberKeys,
}

impl GroupRuntime {
    /// Whether this member is in the group on its active state (not removed there, and not
    /// holding only a state it was evicted from).
    pub fn is_member_on_active(&self) -> bool {
        self.group.is_active()
            && self
                .record
                .tree
                .get(self.record.active)
                .is_some_and(|s| !s.evicted)
    }

    /// Loads the active branch of a stored group.
    pub fn resume(record: GroupRecord, provider: &ChorusProvider) -> Result<Self, EngineError> {
        let group_id = GroupId::from_slice(&record.group_id);
        let group = load_active(provider, &group_id, record.active)?;
        let group_ref = GroupRef::of(&record.group_id);
        let heal = super::heal::HealRuntime::load(provider.mls_storage().staged(), &group_ref)?;
        Ok(Self {
            group_ref,
            record,
            group,
            own_envelopes: RecentIds::default(),
            buffered: VecDeque::new(),
            just_applied: None,
            holds: None,
            heal,
            member_keys: Default::default(),
        })
    }

    pub fn group_id(&self) -> GroupId {
        GroupId::from_slice(&self.record.group_id)
    }

    /// Writes the record (inside the caller's storage step): its growing lists as the
    /// entries changed since the last save, the rest as one value.
    pub fn save(&mut self, provider: &ChorusProvider) -> Result<(), EngineError> {
        let staged = provider.mls_storage().staged();
        super::window_lists::save(staged, &self.group_ref, &mut self.record)?;
        let encoded = self
            .record
            .with_lists_apart(|r| identity_tofu::codec::encode(r));
        let bytes = encoded
            .map_err(|e| EngineError::Refused(format!("group record cannot be encoded: {e}")))?;
        staged
            .put(record_key(&self.group_ref), bytes)
            .map_err(StorageError::from)?;
        Ok(())
    }

    pub fn status(&self, _provider: &ChorusProvider) -> GroupStatus {
        let active = self.record.tree.get(self.record.active);
        GroupStatus {
            epoch: self.group.epoch().as_u64(),
            branch_id: active.map(|s| s.branch_id).unwrap_or_default(),
            members: members(&self.group),
            held_states: self.record.tree.len(),
            off_branch: self
                .record
                .tree
                .states()
                .filter(|s| {
                    !self
                        .record
                        .tree
                        .is_ancestor_or_self(s.storage, self.record.active)
                })
                .count(),
            active: self.record.active,
            evicted: active.is_some_and(|s| s.evicted),
        }
    }
}

/// Makes `branch` active in storage and loads its group.
pub(crate) fn load_active(
    provider: &ChorusProvider,
    group_id: &GroupId,
    branch: BranchId,
) -> Result<MlsGroup, EngineError> {
    let storage = provider.mls_storage();
    if storage.active_branch(group_id)? != Some(branch) {
        storage.activate(group_id, branch)?;
    }
    MlsGroup::load(storage, group_id)?.ok_or_else(|| {
        EngineError::Storage(StorageError::Corrupt {
            what: "group",
            detail: format!("branch {branch} has no group state"),
        })
    })
}

/// The credential identities of a group's members, in leaf order.
pub(crate) fn members(group: &MlsGroup) -> Vec<Vec<u8>> {
    group
        .members()
        .map(|m| m.credential.serialized_content().to_vec())
        .collect()
}

/// SHA-256 of this member's leaf node in `group` (it changes whenever an own commit refreshes
/// the leaf); all zeros if the member has no leaf.
pub(crate) fn own_leaf_hash(group: &MlsGroup) -> [u8; 32] {
    use openmls::prelude::tls_codec::Serialize as _;
    use sha2::{Digest, Sha256};
    group
        .own_leaf_node()
        .and_then(|leaf| leaf.tls_serialize_detached().ok())
        .map(|bytes| Sha256::digest(bytes).into())
        .unwrap_or_default()
}

/// The exporter-derived branch id of a group state (DESIGN §4).
pub(crate) fn branch_id(
    group: &MlsGroup,
    provider: &ChorusProvider,
) -> Result<[u8; 16], EngineError> {
    use openmls_traits::OpenMlsProvider as _;
    if !group.is_active() {
        // An evicted member cannot export; its state is identified by its epoch authenticator.
        let mut out = [0u8; 16];
        out.copy_from_slice(&group.epoch_authenticator().as_slice()[..16]);
        return Ok(out);
    }
    let secret = group
        .export_secret(provider.crypto(), "chorus branch", &[], 16)
        .map_err(mls_err)?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&secret);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_beyond_their_bound() {
        let id = |n: u32| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            EnvelopeId(bytes)
        };
        let mut recent = RecentIds::default();
        let total = RecentIds::CAPACITY as u32 + 10;
        for n in 0..total {
            recent.insert(id(n));
            recent.insert(id(n)); // a second insert changes nothing
        }
        assert_eq!(recent.order.len(), RecentIds::CAPACITY);
        assert_eq!(recent.set.len(), RecentIds::CAPACITY);
        assert!(!recent.contains(&id(9)));
        assert!(recent.contains(&id(10)));
        assert!(recent.contains(&id(total - 1)));
    }
}
