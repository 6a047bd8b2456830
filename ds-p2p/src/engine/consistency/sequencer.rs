//! `sequencer` (RFC 9750 §5.2.1, a strongly consistent DS built from the members): one
//! designated member of each epoch orders the commits made on it.
//!
//! The rule: **the sequencer of an epoch is the member at the lowest leaf index in that
//! epoch's ratchet tree.** Every member computes it alike from the state it holds; nothing
//! is negotiated. Hand-over is implicit: when the sequencer leaves or is removed (by a commit
//! it echoed itself), the member at the next lowest leaf is the sequencer of the next epoch.
//!
//! - The sequencer applies its own commits at once and publishes a [`SequencerEcho`] for
//!   each: "the commit made on epoch e is this one", signed with its MLS signature key.
//! - Of the commits others make on its current epoch, it echoes the first it applies (if it
//!   holds several at once, the tie-break policy's choice), and then moves to it; at most
//!   one echo per epoch, so members never see two competing ordered commits.
//! - Every other member holds its own commits and the ones it receives beside its active
//!   state and applies one only when a valid echo for it arrives (checked against the
//!   sequencer's key in the member's state of that epoch). An own commit that was not echoed
//!   is re-issued on the new epoch (after the same seeded delay as after a switch). The
//!   Welcome of an own Add goes out only once the Add is echoed.
//! - Application messages are never held: a member sends on its active epoch, and others
//!   read them with the held state of that epoch as in the other modes.
//!
//! Trade-offs, against a "lowest reachable member" rule: this one needs no failure
//! detector and cannot elect two sequencers, so it never forks — but a member on a side of a
//! partition without the sequencer cannot commit until the partition heals (its commit waits
//! and is re-done after), and a sequencer that is gone for good blocks every commit until
//! someone re-creates the group (nobody can remove it without its echo). A reachability
//! rule keeps commits available on the side that has a quorum of beacons, at the price of
//! a second sequencer whenever two sides disagree about who is reachable.
//!
//! Echoes are stored with the group (see [`super::stored`]): a member that got an echo
//! before its commit and restarted in between still applies the commit when it comes (the
//! sequencer echoes an epoch only once, so nothing else would move it on).

use openmls::prelude::*;

use super::super::{Engine, EngineError, TieBreak};
use crate::storage::BranchId;
use crate::wire::{CommitRef, Envelope, EnvelopeKind, GroupRef, SequencerEcho, signed};

/// Echoes kept per group for epochs this member has not reached (a member far behind, or
/// junk from a member that is not the sequencer); beyond it the furthest are dropped.
const MAX_FUTURE_ECHOES: usize = 256;

/// The sequencer of a group state: (leaf index, signature key).
fn sequencer_of(group: &MlsGroup) -> Option<(u32, Vec<u8>)> {
    group
        .members()
        .min_by_key(|m| m.index.u32())
        .map(|m| (m.index.u32(), m.signature_key))
}

impl Engine {
    /// The sequencer of the active state of `group`. `rt.group` is the active state's
    /// group except right after a commit was applied in place (`holds`); then the sequencer
    /// noted the last time it was is used.
    fn active_sequencer(&self, group: GroupRef) -> Option<(u32, Vec<u8>)> {
        let rt = self.groups.get(&group)?;
        if rt.holds.is_none() {
            return sequencer_of(&rt.group);
        }
        let noted = self.consistency.get(&group)?.sequencer.clone()?;
        (noted.0 == rt.record.active).then_some((noted.1, noted.2))
    }

    /// Remembers the sequencer of the active state (call when `rt.group` is that state).
    pub(crate) fn note_sequencer(&mut self, group: GroupRef) {
        let Some(rt) = self.groups.get(&group) else {
            return;
        };
        if rt.holds.is_some() {
            return;
        }
        let active = rt.record.active;
        let noted = sequencer_of(&rt.group).map(|(leaf, key)| (active, leaf, key));
        self.consistency_mut(group).sequencer = noted;
    }

    /// Whether this member is the sequencer of the active state of `group`.
    pub(crate) fn is_sequencer(&self, group: GroupRef) -> bool {
        let Some(rt) = self.groups.get(&group) else {
            return false;
        };
        // A member's leaf index stays the same across epochs, whichever state `rt.group` is.
        let own = rt.group.own_leaf_index().u32();
        let evicted = rt
            .record
            .tree
            .get(rt.record.active)
            .is_none_or(|s| s.evicted);
        !evicted
            && self
                .active_sequencer(group)
                .is_some_and(|(leaf, _)| leaf == own)
    }

    /// Signs and publishes the echo of `commit_ref` made on `epoch`, and keeps it.
    fn publish_echo(
        &mut self,
        group: GroupRef,
        epoch: u64,
        commit_ref: CommitRef,
        leaf: u32,
    ) -> Result<(), EngineError> {
        let bytes = SequencerEcho::signed_bytes(group, epoch, &commit_ref, leaf);
        let signature = signed::sign("sequencer echo", &self.signer, &bytes)?;
        let echo = SequencerEcho {
            epoch,
            commit_ref,
            sequencer: leaf,
            signature,
        };
        let payload = echo.encode()?;
        self.consistency_mut(group)
            .echoes
            .entry(epoch)
            .or_default()
            .push(echo);
        self.persist_mode(group)?;
        self.publish_own(group, EnvelopeKind::SequencerEcho, payload)
    }

    /// As sequencer: echoes the own commit that just became the active head.
    pub(crate) fn echo_own_commit(&mut self, group: GroupRef) -> Result<(), EngineError> {
        let Some(rt) = self.groups.get(&group) else {
            return Ok(());
        };
        let Some(head) = rt.record.tree.get(rt.record.active) else {
            return Ok(());
        };
        let Some(facts) = &head.via else {
            return Ok(());
        };
        let (epoch, commit_ref) = (head.epoch.saturating_sub(1), facts.commit_ref);
        let leaf = rt.group.own_leaf_index().u32();
        self.publish_echo(group, epoch, commit_ref, leaf)
    }

    /// As sequencer of the active state: echoes one of the commits held on it, if none is
    /// echoed yet (the policy's choice among them: deterministic, whatever the arrival
    /// order of those held at the same time).
    pub(crate) fn echo_if_sequencer(
        &mut self,
        group: GroupRef,
        policy: TieBreak,
    ) -> Result<(), EngineError> {
        if !self.is_sequencer(group) {
            return Ok(());
        }
        let Some(rt) = self.groups.get(&group) else {
            return Ok(());
        };
        let active = rt.record.active;
        let Some(epoch) = rt.record.tree.get(active).map(|s| s.epoch) else {
            return Ok(());
        };
        if self
            .consistency
            .get(&group)
            .and_then(|c| c.echoes.get(&epoch))
            .is_some_and(|echoes| !echoes.is_empty())
        {
            return Ok(());
        }
        let lapse_ms = self.config.beacon_interval_ms;
        let Some(choice) = rt.record.tree.best_child(active, policy, lapse_ms) else {
            return Ok(());
        };
        let Some(commit_ref) = rt
            .record
            .tree
            .get(choice)
            .and_then(|s| s.via.as_ref())
            .map(|f| f.commit_ref)
        else {
            return Ok(());
        };
        let leaf = rt.group.own_leaf_index().u32();
        self.publish_echo(group, epoch, commit_ref, leaf)
    }

    /// The next state to follow: a later Welcome (this member was added again), or the child
    /// of the active state whose commit the active state's sequencer echoed.
    pub(crate) fn sequenced_step(&self, group: GroupRef) -> Option<BranchId> {
        let rt = self.groups.get(&group)?;
        let tree = &rt.record.tree;
        let active = rt.record.active;
        let epoch = tree.get(active)?.epoch;
        if let Some(root) = tree
            .roots()
            .filter(|r| r.epoch > epoch && !r.evicted && r.storage != active)
            .max_by_key(|r| (r.epoch, r.storage))
        {
            return Some(root.storage);
        }
        let (leaf, key) = self.active_sequencer(group)?;
        let echoes = self.consistency.get(&group)?.echoes.get(&epoch)?;
        echoes
            .iter()
            .filter(|e| e.sequencer == leaf && self.echo_signed_by(group, e, &key))
            .find_map(|e| {
                tree.states()
                    .find(|s| {
                        s.parent == Some(active)
                            && s.via.as_ref().is_some_and(|f| f.commit_ref == e.commit_ref)
                    })
                    .map(|s| s.storage)
            })
    }

    fn echo_signed_by(&self, group: GroupRef, echo: &SequencerEcho, key: &[u8]) -> bool {
        let bytes =
            SequencerEcho::signed_bytes(group, echo.epoch, &echo.commit_ref, echo.sequencer);
        signed::verifies(self.provider.crypto(), &bytes, key, &echo.signature)
    }

    /// An echo from the network: kept (checked when used: the key it must verify with is in
    /// the state of its epoch, which this member may not have reached), then followed.
    pub(crate) fn receive_echo(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        let echo = SequencerEcho::decode(&envelope.payload)?;
        let Some(rt) = self.groups.get(&group) else {
            return Err(EngineError::UnknownGroup(hex::encode(group.0)));
        };
        if !matches!(self.mode_of(group), super::ConsistencyMode::Sequencer) {
            return Err(EngineError::Refused(
                "a sequencer echo for a group that does not use a sequencer".into(),
            ));
        }
        let active_epoch = rt.record.tree.get(rt.record.active).map(|s| s.epoch);
        let oldest = rt.record.tree.states().map(|s| s.epoch).min().unwrap_or(0);
        if echo.epoch < oldest {
            return Ok(()); // about a state this member no longer holds: history
        }
        if active_epoch == Some(echo.epoch) {
            // Checkable now: refuse a forged or stray one rather than keep it.
            let valid = self.active_sequencer(group).is_some_and(|(leaf, key)| {
                leaf == echo.sequencer && self.echo_signed_by(group, &echo, &key)
            });
            if !valid {
                return Err(EngineError::Refused(format!(
                    "sequencer echo for epoch {} is not signed by that epoch's sequencer",
                    echo.epoch
                )));
            }
        }
        let state = self.consistency_mut(group);
        let known = state.echoes.entry(echo.epoch).or_default();
        if known.contains(&echo) {
            return Ok(());
        }
        known.push(echo);
        state.echoes.retain(|epoch, _| *epoch >= oldest);
        while state.echoes.values().map(Vec::len).sum::<usize>() > MAX_FUTURE_ECHOES {
            state.echoes.pop_last();
        }
        self.persist_mode(group)?;
        self.after_commit(now_ms, group)
    }

    /// Publishes the held Welcomes of own Adds that are now on the active path; forgets those
    /// whose state is gone (the Add lost for good: it was re-issued as a lost intent). One
    /// whose Add is off the path but still held is kept: a later switch can bring that branch
    /// back, and its joiner is then in the roster. Any holding mode.
    pub(crate) fn release_welcomes(&mut self, group: GroupRef) -> Result<(), EngineError> {
        let held = std::mem::take(&mut self.consistency_mut(group).held_welcomes);
        if held.is_empty() {
            return Ok(());
        }
        let Some(rt) = self.groups.get(&group) else {
            return Ok(());
        };
        let (tree_now, active) = (&rt.record.tree, rt.record.active);
        let held_count = held.len();
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for (state, topic, envelope) in held {
            if tree_now.is_ancestor_or_self(state, active) {
                ready.push((topic, envelope));
            } else if tree_now.get(state).is_some() {
                waiting.push((state, topic, envelope));
            }
        }
        let changed = !ready.is_empty() || waiting.len() != held_count;
        self.consistency_mut(group).held_welcomes = waiting;
        for (topic, envelope) in ready {
            self.queue_publish(group, topic, envelope)?;
        }
        if changed {
            self.persist_mode(group)?;
        }
        Ok(())
    }
}
