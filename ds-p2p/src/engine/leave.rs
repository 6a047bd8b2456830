//! Leaving a group. A member cannot commit its own removal (it would hold the new epoch's
//! secrets), so it sends a self-Remove *proposal*; another member commits a Remove for it.
//!
//! Who commits: the remaining member with the lowest leaf index on the active branch does so
//! at once; every other member keeps the request and commits it itself when the leaver is
//! still in the group a beacon interval later (that member may be away). Several such commits
//! are an ordinary same-epoch fork; the tie-break picks one, and a losing Remove is not
//! re-issued once the leaver is gone. Proposals are never stored in openmls's proposal queue,
//! so no later commit picks one up by accident.

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, mls_err, wire_bytes};
use crate::storage::StorageError;
use crate::wire::{EnvelopeKind, GroupRef};

/// A leave request this member has seen and not yet seen committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLeave {
    /// Credential identity of the leaver.
    pub member: Vec<u8>,
    /// When this member commits the removal itself if nobody has.
    pub due_ms: u64,
}

impl Engine {
    /// Sends this member's self-Remove proposal.
    pub(crate) fn leave(&mut self, _now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let signer = &engine.signer;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let proposal = rt.group.leave_group(provider, signer).map_err(mls_err)?;
            // Our own proposal must not ride along in a commit we might still make.
            rt.group
                .clear_pending_proposals(provider.storage())
                .map_err(mls_err)?;
            let bytes = wire_bytes(&proposal)?;
            engine.publish_own(group, EnvelopeKind::Handshake, bytes)
        })
    }

    /// Handles a proposal received on the group topic: only self-Removes are accepted.
    pub(crate) fn receive_proposal(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        payload: &[u8],
    ) -> Result<(), EngineError> {
        let leaver = self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let message = MlsMessageIn::tls_deserialize_exact(payload)
                .map_err(mls_err)?
                .try_into_protocol_message()
                .map_err(mls_err)?;
            let processed = rt
                .group
                .process_message(provider, message)
                .map_err(|e| EngineError::Refused(format!("proposal: {e}")))?;
            let sender = processed.credential().serialized_content().to_vec();
            let ProcessedMessageContent::ProposalMessage(queued) = processed.into_content() else {
                return Err(EngineError::Refused("not a proposal".into()));
            };
            let Proposal::Remove(remove) = queued.proposal() else {
                return Err(EngineError::Refused(
                    "only self-Remove proposals are accepted; other changes are committed".into(),
                ));
            };
            let removed = rt
                .group
                .member(remove.removed())
                .map(|c| c.serialized_content().to_vec());
            if removed.as_deref() != Some(sender.as_slice()) {
                return Err(EngineError::Refused(
                    "a Remove proposal must remove its own sender".into(),
                ));
            }
            Ok(sender)
        })?;
        let own = self.identity().to_vec();
        let first_remaining = {
            let rt = self.runtime(group)?;
            rt.group
                .members()
                .filter(|m| m.credential.serialized_content() != leaver.as_slice())
                .min_by_key(|m| m.index)
                .map(|m| m.credential.serialized_content().to_vec())
        };
        if first_remaining.as_deref() == Some(own.as_slice()) {
            return self.remove(now_ms, group, leaver);
        }
        let due_ms = now_ms + self.config.beacon_interval_ms;
        let rt = self.runtime(group)?;
        if !rt.record.pending_leaves.iter().any(|p| p.member == leaver) {
            rt.record.pending_leaves.push(PendingLeave {
                member: leaver,
                due_ms,
            });
            self.save_group(group)?;
        }
        Ok(())
    }

    /// Commits the removals of leavers nobody removed in time; forgets those already gone.
    pub(crate) fn settle_leaves(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if rt.record.pending_leaves.is_empty() {
            return Ok(());
        }
        let roster = super::group_state::members(&rt.group);
        let (gone, present): (Vec<_>, Vec<_>) = rt
            .record
            .pending_leaves
            .drain(..)
            .partition(|p| !roster.contains(&p.member));
        let (due, waiting): (Vec<_>, Vec<_>) =
            present.into_iter().partition(|p| p.due_ms <= now_ms);
        rt.record.pending_leaves = waiting;
        if !gone.is_empty() || !due.is_empty() {
            self.save_group(group)?;
        }
        for leave in due {
            self.remove(now_ms, group, leave.member)?;
        }
        Ok(())
    }
}

/// Whether an envelope payload holds a proposal (rather than a commit).
pub(crate) fn is_proposal(message: &ProtocolMessage) -> bool {
    matches!(message.content_type(), ContentType::Proposal)
}
