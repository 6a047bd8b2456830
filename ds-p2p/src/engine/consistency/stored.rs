//! What a holding mode must not forget across a restart, stored beside the group record.
//!
//! ```text
//! m <group ref 16>   -> StoredMode (bincode)
//! ```
//!
//! The project's rule is that a crash loses nothing that was acknowledged. A mode keeps
//! four such things per group:
//!
//! - `settle-then-pick`'s queued sends: the user was told "sent" (the node shows the message
//!   in the history), so the message must go out even if the engine restarts before the
//!   settle ends;
//! - the settle's end, so a restarted member decides the held commits when it was due to,
//!   and then sends the queue;
//! - the Welcomes of own Adds held until the mode applies the Add: lost, the joiner would be
//!   in the roster and never in the group;
//! - `sequencer`'s echoes: an echo that came before its commit is what lets the member apply
//!   the commit when it comes. The sequencer echoes an epoch once, so after a restart without
//!   it nothing would move this member on (the node's log does not hand an envelope it
//!   already holds back to sync).
//!
//! The record is written whenever one of them changes (inside the step that changed it when
//! there is one), and deleted when all are empty. Under accept-and-hold nothing is written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::{Engine, EngineError};
use super::GroupConsistency;
use crate::storage::{BranchId, StorageError};
use crate::wire::{GroupRef, MessageId, SequencerEcho};

const MODE: u8 = b'm';
/// Queued sends are bounded by what a user can type during a settle; refuse a huge record.
const MAX_MODE_BYTES: usize = 64 * 1024 * 1024;

fn mode_key(group: &GroupRef) -> Vec<u8> {
    let mut key = vec![MODE];
    key.extend_from_slice(&group.0);
    key
}

/// The stored part of [`GroupConsistency`].
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMode {
    pub settle_until: Option<u64>,
    pub queued: Vec<(MessageId, u64, Vec<u8>)>,
    pub echoes: BTreeMap<u64, Vec<SequencerEcho>>,
    pub held_welcomes: Vec<(BranchId, String, Vec<u8>)>,
}

impl StoredMode {
    fn of(state: &GroupConsistency) -> Self {
        Self {
            settle_until: state.settle_until,
            queued: state.queued.clone(),
            echoes: state.echoes.clone(),
            held_welcomes: state.held_welcomes.clone(),
        }
    }

    fn into_state(self) -> GroupConsistency {
        GroupConsistency {
            settle_until: self.settle_until,
            queued: self.queued,
            echoes: self.echoes,
            held_welcomes: self.held_welcomes,
            stored: true,
            ..GroupConsistency::default()
        }
    }
}

impl Engine {
    /// Writes what `group`'s mode must keep across a restart (see the module docs). Echoes
    /// for epochs older than every held state are dropped first: nothing can use them.
    pub(crate) fn persist_mode(&mut self, group: GroupRef) -> Result<(), EngineError> {
        let oldest = self
            .groups
            .get(&group)
            .and_then(|rt| rt.record.tree.states().map(|s| s.epoch).min());
        let Some(state) = self.consistency.get_mut(&group) else {
            return Ok(());
        };
        if let Some(oldest) = oldest {
            state.echoes.retain(|epoch, _| *epoch >= oldest);
        }
        let stored = StoredMode::of(state);
        let staged = self.provider.mls_storage().staged();
        if stored == StoredMode::default() {
            if state.stored {
                staged
                    .delete(mode_key(&group))
                    .map_err(StorageError::from)?;
                state.stored = false;
            }
            return Ok(());
        }
        let bytes = identity_tofu::codec::encode(&stored)
            .map_err(|e| EngineError::Refused(format!("mode state cannot be encoded: {e}")))?;
        staged
            .put(mode_key(&group), bytes)
            .map_err(StorageError::from)?;
        state.stored = true;
        Ok(())
    }

    /// Reads every stored mode state of the groups this engine holds (at open).
    pub(crate) fn load_modes(&mut self) -> Result<(), EngineError> {
        let staged = self.provider.mls_storage().staged();
        for (key, bytes) in staged.scan_prefix(&[MODE]).map_err(StorageError::from)? {
            let Ok(group) = <[u8; 16]>::try_from(&key[1..]).map(GroupRef) else {
                continue; // not one of ours: the prefix is only ours at this length
            };
            let stored: StoredMode =
                identity_tofu::codec::decode(&bytes, MAX_MODE_BYTES).map_err(|e| {
                    StorageError::Corrupt {
                        what: "consistency mode state",
                        detail: e.to_string(),
                    }
                })?;
            if self.groups.contains_key(&group) {
                self.consistency.insert(group, stored.into_state());
            }
        }
        Ok(())
    }
}
