//! Branch namespaces: checkpoint, switch, prune.
//!
//! A group's MLS state lives in the namespace of one *branch*; openmls only ever sees the
//! *active* one. To keep the state at epoch `e` while moving on, the engine checkpoints the
//! active branch (a copy under a new branch id) before merging. To process a competing commit
//! for `e`, it checkpoints the held copy again, activates the new copy and processes there —
//! the held copy stays untouched for a third contender. Pruning deletes a branch's namespace
//! and scrubs the bytes from disk, which is what makes forward secrecy hold for forked states.
//!
//! Signature keys and key packages are per client and never copied or pruned here.

use openmls::group::GroupId;

use super::layout::{BranchId, decode_branch};
use super::mls_storage::{MlsStorage, StorageError, group_token};

impl MlsStorage {
    /// The branch openmls currently reads and writes for `group_id`, or `None` if the group
    /// has no state here.
    pub fn active_branch(&self, group_id: &GroupId) -> Result<Option<BranchId>, StorageError> {
        self.active_branch_of(&group_token(group_id)?)
    }

    /// Every branch held for `group_id`, ascending.
    pub fn branches(&self, group_id: &GroupId) -> Result<Vec<BranchId>, StorageError> {
        let token = group_token(group_id)?;
        let prefix = token.markers_prefix();
        self.store
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(key, _)| {
                decode_branch(&key[prefix.len()..]).ok_or(StorageError::Corrupt {
                    what: "branch marker",
                    detail: format!("key of {} bytes", key.len()),
                })
            })
            .collect()
    }

    fn require_branch(&self, group_id: &GroupId, branch: BranchId) -> Result<(), StorageError> {
        let token = group_token(group_id)?;
        if self.store.get(&token.marker_key(branch))?.is_none() {
            return Err(StorageError::UnknownBranch(branch));
        }
        Ok(())
    }

    /// Copies branch `from` of `group_id` into a new branch and returns its id. The active
    /// branch does not change. Inside a transaction the copy lands with the rest of it.
    pub fn checkpoint(&self, group_id: &GroupId, from: BranchId) -> Result<BranchId, StorageError> {
        self.require_branch(group_id, from)?;
        let token = group_token(group_id)?;
        let new = self.fresh_branch(group_id)?;
        let source = token.branch_prefix(from);
        let target = token.branch_prefix(new);
        for (key, value) in self.store.scan_prefix(&source)? {
            let mut copied = target.clone();
            copied.extend_from_slice(&key[source.len()..]);
            self.store.put(copied, value)?;
        }
        Ok(new)
    }

    /// Allocates a new, empty branch for `group_id` (a second Welcome into a group this client
    /// already holds state for is joined into one). The active branch does not change.
    pub fn fresh_branch(&self, group_id: &GroupId) -> Result<BranchId, StorageError> {
        let token = group_token(group_id)?;
        let new = match self.store.get(&token.next_key())? {
            Some(bytes) => decode_branch(&bytes).ok_or(StorageError::Corrupt {
                what: "branch counter",
                detail: format!("{} bytes", bytes.len()),
            })?,
            None => return Err(StorageError::UnknownGroup),
        };
        self.store.put(token.marker_key(new), Vec::new())?;
        self.store
            .put(token.next_key(), (new.0 + 1).to_be_bytes().to_vec())?;
        Ok(new)
    }

    /// Makes `branch` the one openmls reads and writes. Load the `MlsGroup` again afterwards:
    /// an `MlsGroup` in memory still holds the old branch's state.
    pub fn activate(&self, group_id: &GroupId, branch: BranchId) -> Result<(), StorageError> {
        self.require_branch(group_id, branch)?;
        let token = group_token(group_id)?;
        self.store
            .put(token.active_key(), branch.0.to_be_bytes().to_vec())?;
        Ok(())
    }

    /// Deletes `branch` of `group_id` and scrubs its bytes from disk once the deletion is
    /// written. The active branch cannot be pruned.
    pub fn prune(&self, group_id: &GroupId, branch: BranchId) -> Result<(), StorageError> {
        self.require_branch(group_id, branch)?;
        if self.active_branch(group_id)? == Some(branch) {
            return Err(StorageError::PruneActive(branch));
        }
        let token = group_token(group_id)?;
        self.store.delete(token.marker_key(branch))?;
        self.store
            .delete_prefix(token.branch_prefix(branch), true)?;
        Ok(())
    }

    /// Deletes every branch and pointer of `group_id`, scrubbing the bytes (leaving a group).
    pub fn forget_group(&self, group_id: &GroupId) -> Result<(), StorageError> {
        let token = group_token(group_id)?;
        self.store.delete_prefix(token.group_prefix(), true)?;
        Ok(())
    }
}
