//! Who may speak in a beacon. Beacons are signed by their sender's MLS signature key (see
//! `wire::beacon` for why); this is the receiver's side: nothing in a beacon is used before
//! [`Engine::authenticate_beacon`] has checked it.
//!
//! **Which keys are trusted.** A beacon is accepted only when the key it names is a member's
//! signature key in this member's *active state* or in the *newest held state of one of its
//! branches* (a held state no other held state grew from), and the signature over the
//! beacon verifies under that key.
//! - A beacon may come from a member on another branch, or from one far ahead or behind. What
//!   such a sender shares with this member is membership: everyone who was in the group at
//!   the fork point and was not removed on the branch this member holds is in its states. A
//!   member added only on a branch this member never held is unknown to it and is refused;
//!   the other members of that branch beacon too, so the fork is still seen.
//! - Not every held state: the state before a Remove stays held for the fork window, and the
//!   removed member's key is in it. A member removed on every branch this member holds is
//!   refused at once. The active state counts besides the newest ones because in the
//!   holding modes it can have held children not yet applied (a sequenced Remove waiting for
//!   its echo), whose removals are not decided.
//! - Not the trust store: identity-tofu knows the keys of everyone met in any group, which
//!   says nothing about membership of this one.
//!
//! The members of a held state never change (a state is one epoch of one branch), so their
//! keys are cached per state, in memory: from the in-memory group for the active state,
//! otherwise loaded once from storage. The cache is keyed by storage id *and* branch id,
//! because a storage id that a failed step allocated and rolled back is handed out again.

use std::collections::{BTreeMap, BTreeSet};

use openmls::prelude::*;

use super::group_state::load_active;
use super::{Engine, EngineError};
use crate::storage::{BranchId, StorageError};
use crate::wire::{Beacon, Envelope, GroupRef, SignedBeacon};

/// The members' signature keys of held states, by (storage id, branch id).
#[derive(Debug, Default)]
pub(crate) struct MemberKeys {
    by_state: BTreeMap<(BranchId, [u8; 16]), BTreeSet<Vec<u8>>>,
}

fn signature_keys(group: &MlsGroup) -> BTreeSet<Vec<u8>> {
    group.members().map(|m| m.signature_key).collect()
}

/// A signature key, short, for messages.
fn short(key: &[u8]) -> String {
    hex::encode(&key[..key.len().min(8)])
}

impl Engine {
    /// Decodes a beacon envelope and returns its beacon if a current member signed it;
    /// otherwise a `Refused` error that says why.
    pub(crate) fn authenticate_beacon(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Beacon, EngineError> {
        let group = envelope.group_ref;
        let signed = SignedBeacon::decode(&envelope.payload)
            .map_err(|e| EngineError::Refused(format!("malformed beacon: {e}")))?;
        let (speaking, held) = self.speaking_states(group)?;
        let mut member = false;
        for state in speaking {
            if self.has_member_key(group, state, &signed.signer)? {
                member = true;
                break;
            }
        }
        if !member {
            let mut removed = false;
            for state in held {
                if self.has_member_key(group, state, &signed.signer)? {
                    removed = true;
                    break;
                }
            }
            let why = if removed {
                "a member removed on every branch this member holds"
            } else {
                "not a member in any state this member holds"
            };
            return Err(EngineError::Refused(format!(
                "beacon refused: its signer {} is {why}",
                short(&signed.signer)
            )));
        }
        if !signed.verifies(group, self.provider.crypto()) {
            return Err(EngineError::Refused(format!(
                "beacon refused: the signature of member {} does not verify over its fields \
                 (forged, or altered after signing)",
                short(&signed.signer)
            )));
        }
        Ok(signed.beacon)
    }

    /// The states whose members may speak (the active state, then the held states no other
    /// held state grew from), and every other held state. Forgets cached keys of states no
    /// longer held.
    fn speaking_states(
        &mut self,
        group: GroupRef,
    ) -> Result<(Vec<BranchId>, Vec<BranchId>), EngineError> {
        let rt = self
            .groups
            .get_mut(&group)
            .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))?;
        let tree = &rt.record.tree;
        rt.member_keys
            .by_state
            .retain(|(id, branch), _| tree.get(*id).is_some_and(|s| s.branch_id == *branch));
        let parents: BTreeSet<BranchId> = tree.states().filter_map(|s| s.parent).collect();
        let active = rt.record.active;
        let mut speaking = vec![active];
        let mut others = Vec::new();
        for state in tree.states().filter(|s| s.storage != active) {
            if parents.contains(&state.storage) {
                others.push(state.storage);
            } else {
                speaking.push(state.storage);
            }
        }
        Ok((speaking, others))
    }

    /// Whether `key` is a member's signature key in held state `id` of `group`.
    fn has_member_key(
        &mut self,
        group: GroupRef,
        id: BranchId,
        key: &[u8],
    ) -> Result<bool, EngineError> {
        let rt = self.runtime(group)?;
        let Some(state) = rt.record.tree.get(id) else {
            return Ok(false);
        };
        let cache_key = (id, state.branch_id);
        if let Some(keys) = rt.member_keys.by_state.get(&cache_key) {
            return Ok(keys.contains(key));
        }
        // Between steps the in-memory group is the active state's.
        let keys = if id == rt.record.active && rt.holds.is_none() {
            signature_keys(&rt.group)
        } else {
            self.load_member_keys(group, id)?
        };
        let found = keys.contains(key);
        self.runtime(group)?
            .member_keys
            .by_state
            .insert(cache_key, keys);
        Ok(found)
    }

    /// Loads held state `id` from storage (as one step: openmls reads the active branch, so
    /// it is made active for the load and the active state again after) for its keys.
    fn load_member_keys(
        &mut self,
        group: GroupRef,
        id: BranchId,
    ) -> Result<BTreeSet<Vec<u8>>, EngineError> {
        self.step_with(Some(group), false, |engine| {
            let rt = engine
                .groups
                .get(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let (group_id, active) = (rt.group_id(), rt.record.active);
            let state = load_active(&engine.provider, &group_id, id)?;
            engine.provider.mls_storage().activate(&group_id, active)?;
            Ok(signature_keys(&state))
        })
    }
}
