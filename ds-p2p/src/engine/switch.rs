//! Choosing the active branch after something changed the tree, and what a switch entails:
//! re-sending this member's messages from the losing branch and re-issuing its lost intents
//! (DESIGN §4 items 3 and 5).

use super::api::Event;
use super::commit::{CommitOp, parse_key_package};
use super::group_state::{load_active, members};
use super::record::{Intent, IntentKind, SentMessage};
use super::{Engine, EngineError};
use crate::storage::{BranchId, StorageError};
use crate::wire::{GroupRef, MessageId};

/// What a change of head requires afterwards.
struct HeadChange {
    from: BranchId,
    to: BranchId,
    /// The old head is not an ancestor of the new one: a real switch, not progress.
    switched: bool,
    epoch: u64,
    branch_id: [u8; 16],
    evicted: bool,
}

impl Engine {
    /// After a commit or Welcome added a state: follow the policy's head, then do what a switch
    /// requires, then feed buffered messages.
    pub(crate) fn after_commit(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        let followed = self.follow_preferred_head(now_ms, group);
        if let Some(rt) = self.groups.get_mut(&group) {
            // Only ever valid for the switch right after the commit.
            rt.just_applied = None;
            if rt.holds.take().is_some() {
                // The policy kept the active state: the in-memory group must be it again.
                rt.group = load_active(&self.provider, &rt.group_id(), rt.record.active)?;
            }
        }
        if let Some(change) = followed? {
            self.emit(Event::EpochChanged {
                group,
                epoch: change.epoch,
                branch_id: change.branch_id,
            });
            if let Some(rt) = self.groups.get(&group) {
                let roster = members(&rt.group);
                self.emit(Event::MembershipChanged {
                    group,
                    members: roster,
                });
            }
            if change.evicted {
                self.emit(Event::Removed { group });
            } else if change.switched {
                let resent = self.resend_lost_messages(now_ms, group, change.to)?;
                let reissued = self.reissue_lost_intents(now_ms, group, change.to)?;
                self.emit(Event::BranchSwitched {
                    group,
                    from: change.from,
                    to: change.to,
                    epoch: change.epoch,
                    resent,
                    reissued,
                });
            }
        }
        self.replay_buffered(now_ms, group);
        Ok(())
    }

    /// Makes the policy's preferred head active, as one storage step.
    fn follow_preferred_head(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<Option<HeadChange>, EngineError> {
        let policy = self.config.policy;
        self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let from = rt.record.active;
            let Some(to) = rt.record.tree.preferred_head(policy) else {
                return Ok(None);
            };
            if to == from {
                return Ok(None);
            }
            let switched = !rt.record.tree.is_ancestor_or_self(from, to);
            if let Some(old) = rt.record.tree.get_mut(from) {
                old.inactive_since_ms = Some(now_ms);
            }
            let new = rt
                .record
                .tree
                .get_mut(to)
                .ok_or(StorageError::UnknownBranch(to))?;
            new.inactive_since_ms = None;
            let (epoch, branch_id, evicted) = (new.epoch, new.branch_id, new.evicted);
            let holds = rt.holds.take();
            match rt.just_applied.take() {
                Some((id, group)) if id == to => {
                    provider.mls_storage().activate(&rt.group_id(), to)?;
                    rt.group = group;
                }
                // The commit was applied in place: `rt.group` already is this state's group.
                _ if holds == Some(to) => provider.mls_storage().activate(&rt.group_id(), to)?,
                _ => rt.group = load_active(provider, &rt.group_id(), to)?,
            }
            rt.record.active = to;
            // The public log of the active branch: the commits on the path to the new head.
            let mut path = Vec::new();
            let mut current = Some(to);
            while let Some(id) = current {
                let Some(state) = rt.record.tree.get(id) else {
                    break;
                };
                if let Some(facts) = &state.via {
                    path.push((state.epoch - 1, facts.commit_ref));
                }
                current = state.parent;
            }
            for entry in path.into_iter().rev() {
                rt.record.log_commit(entry);
            }
            rt.save(provider)?;
            Ok(Some(HeadChange {
                from,
                to,
                switched,
                epoch,
                branch_id,
                evicted,
            }))
        })
    }

    /// Re-sends, on the new head, every own message that was sent on a state that is not on
    /// the path to it. Same id and send time: receivers that already have it drop it.
    fn resend_lost_messages(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        head: BranchId,
    ) -> Result<Vec<MessageId>, EngineError> {
        let rt = self.runtime(group)?;
        let lost: Vec<SentMessage> = rt
            .record
            .sent
            .iter()
            .filter(|m| !rt.record.tree.is_ancestor_or_self(m.on, head))
            .cloned()
            .collect();
        let mut resent = Vec::new();
        for message in lost {
            self.send_payload(now_ms, group, message.id, message.sent_at_ms, message.body)?;
            resent.push(message.id);
        }
        Ok(resent)
    }

    /// Commits again, on the new head, every own membership change whose commit is not on the
    /// path to it and that the new head does not already reflect.
    fn reissue_lost_intents(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        head: BranchId,
    ) -> Result<usize, EngineError> {
        let rt = self.runtime(group)?;
        let (lost, kept): (Vec<Intent>, Vec<Intent>) = rt
            .record
            .intents
            .drain(..)
            .partition(|i| !rt.record.tree.is_ancestor_or_self(i.on, head));
        rt.record.intents = kept;
        let roster = members(&rt.group);
        let mut reissued = 0;
        for intent in lost {
            let op = match &intent.kind {
                IntentKind::Add { key_package } => {
                    let kp = parse_key_package(key_package, &self.provider)?;
                    let joiner = kp.leaf_node().credential().serialized_content().to_vec();
                    if roster.contains(&joiner) {
                        continue;
                    }
                    CommitOp::Add(Box::new(kp))
                }
                IntentKind::Remove { member } => {
                    let rt = self.runtime(group)?;
                    let Some(leaf) = rt
                        .group
                        .members()
                        .find(|m| m.credential.serialized_content() == member.as_slice())
                        .map(|m| m.index)
                    else {
                        continue;
                    };
                    CommitOp::Remove(leaf)
                }
                IntentKind::Update => CommitOp::Update,
            };
            self.commit(now_ms, group, op, intent.kind)?;
            reissued += 1;
        }
        Ok(reissued)
    }
}
