//! Choosing the active branch after something changed the tree, and what a switch entails:
//! re-sending this member's messages from the losing branch and re-issuing its lost intents
//! (DESIGN §4 items 3 and 5).

use super::api::Event;
use super::commit::{CommitOp, parse_key_package};
use rand::RngCore as _;

use super::group_state::{load_active, members, own_leaf_hash};
use super::record::{Intent, IntentKind, Reissue, SentMessage};
use super::{Engine, EngineError};
use crate::storage::{BranchId, StorageError};
use crate::wire::{GroupRef, MessageId};

/// A lost intent is re-done this long after the last switch (plus a seeded jitter of up to
/// [`REISSUE_JITTER_MS`], so that the members who lost one race do not all re-issue at once
/// and race again): long enough to have heard every competing commit of the race.
pub(crate) const REISSUE_DELAY_MS: u64 = 2_000;
pub(crate) const REISSUE_JITTER_MS: u64 = 3_000;

/// What a change of head requires afterwards.
struct HeadChange {
    from: BranchId,
    to: BranchId,
    /// The old head is not an ancestor of the new one: a real switch, not progress.
    switched: bool,
    /// The old head is a state this member was removed in and the new one grew from a later
    /// Welcome: added again, not a switch between forked branches.
    readded: bool,
    epoch: u64,
    branch_id: [u8; 16],
    evicted: bool,
}

impl Engine {
    /// After a commit or Welcome added a state: follow the policy's head, then do what a switch
    /// requires, then feed buffered messages.
    pub(crate) fn after_commit(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        self.before_follow(now_ms, group)?;
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
                // Added again or switched, what this member sent or meant to do on states off
                // the new path may not have reached the group: the same catch-up either way.
                let resent = self.resend_lost_messages(now_ms, group, change.to)?;
                let reissued = self.schedule_lost_intents(now_ms, group, change.to)?;
                self.emit(if change.readded {
                    Event::Readded {
                        group,
                        epoch: change.epoch,
                        branch_id: change.branch_id,
                        resent,
                        reissued,
                    }
                } else {
                    Event::BranchSwitched {
                        group,
                        from: change.from,
                        to: change.to,
                        epoch: change.epoch,
                        resent,
                        reissued,
                    }
                });
                self.after_readd_welcome(now_ms, group)?;
            }
        }
        self.after_follow(now_ms, group)?;
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
            // The policy's head, unless the group's consistency mode holds it back.
            let head = engine.head_to_follow(now_ms, group, policy);
            let provider = &engine.provider;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let from = rt.record.active;
            let Some(to) = head else {
                return Ok(None);
            };
            if to == from {
                return Ok(None);
            }
            let switched = !rt.record.tree.is_ancestor_or_self(from, to);
            let readded = switched && rt.record.tree.is_readd(from, to, &rt.record.welcomes);
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
            let mut root = None;
            let mut current = Some(to);
            while let Some(id) = current {
                let Some(state) = rt.record.tree.get(id) else {
                    break;
                };
                if let Some(facts) = &state.via {
                    path.push((state.epoch - 1, facts.commit_ref));
                }
                root = Some((state.epoch, state.via.as_ref().map(|f| f.commit_ref)));
                current = state.parent;
            }
            path.reverse();
            if let Some((joined, Some(add))) = root {
                rt.record.follow_welcome_root(joined, add);
            }
            rt.record.log_path(&path);
            rt.save(provider)?;
            Ok(Some(HeadChange {
                from,
                to,
                switched,
                readded,
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
        let tree = &rt.record.tree;
        let lost: Vec<(SentMessage, u64)> = rt
            .record
            .sent
            .iter()
            .filter(|m| !tree.is_ancestor_or_self(m.on, head))
            .map(|m| (m.clone(), tree.get(m.on).map_or(u64::MAX, |s| s.epoch)))
            .collect();
        let mut resent = Vec::new();
        for (message, _) in self.resendable(group, lost, |(m, epoch)| (m.id, *epoch))? {
            self.send_payload(
                now_ms,
                group,
                message.id,
                message.sent_at_ms,
                message.body,
                super::commit::Sending::Again,
            )?;
            resent.push(message.id);
        }
        Ok(resent)
    }

    /// Schedules every own membership change whose commit is not on the path to the new head
    /// for re-issue (see [`Reissue`]), and postpones those already waiting: they are re-done
    /// once the group has been quiet for a while. Returns how many were newly scheduled.
    fn schedule_lost_intents(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        head: BranchId,
    ) -> Result<usize, EngineError> {
        let delay = REISSUE_DELAY_MS + self.rng.next_u64() % REISSUE_JITTER_MS;
        let rt = self.runtime(group)?;
        let (lost, kept): (Vec<Intent>, Vec<Intent>) = rt
            .record
            .intents
            .drain(..)
            .partition(|i| !rt.record.tree.is_ancestor_or_self(i.on, head));
        rt.record.intents = kept;
        let due_ms = now_ms + delay;
        for pending in &mut rt.record.reissues {
            pending.due_ms = pending.due_ms.max(due_ms);
        }
        let scheduled = rt.record.queue_reissues(lost, due_ms);
        self.save_group(group)?;
        Ok(scheduled)
    }

    /// Re-does the lost intents that are due, each only if the active branch still needs it:
    /// an Add whose joiner is not in the group, a Remove whose member still is, an Update whose
    /// leaf no own commit has refreshed since.
    pub(crate) fn reissue_due(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if !rt.record.reissues.iter().any(|r| r.due_ms <= now_ms) {
            return Ok(());
        }
        let (due, waiting): (Vec<Reissue>, Vec<Reissue>) = rt
            .record
            .reissues
            .drain(..)
            .partition(|r| r.due_ms <= now_ms);
        rt.record.reissues = waiting;
        self.save_group(group)?;
        for reissue in due {
            if let Some(op) = self.still_needed(group, &reissue)? {
                self.commit(now_ms, group, op, reissue.kind)?;
            }
        }
        Ok(())
    }

    /// The commit that re-does `reissue` on the active branch, if that branch still needs it.
    fn still_needed(
        &mut self,
        group: GroupRef,
        reissue: &Reissue,
    ) -> Result<Option<CommitOp>, EngineError> {
        let rt = self.runtime(group)?;
        if !rt.group.is_active() {
            return Ok(None); // removed on this branch: nothing to re-do
        }
        let op = match &reissue.kind {
            IntentKind::Add { key_package } => {
                let roster = members(&rt.group);
                let kp = parse_key_package(key_package, &self.provider)?;
                let joiner = kp.leaf_node().credential().serialized_content();
                (!roster.iter().any(|m| m == joiner)).then(|| CommitOp::Add(Box::new(kp)))
            }
            IntentKind::Remove { member } => rt
                .group
                .members()
                .find(|m| m.credential.serialized_content() == member.as_slice())
                .map(|m| CommitOp::Remove(m.index)),
            IntentKind::Update => {
                (own_leaf_hash(&rt.group) == reissue.leaf_before).then_some(CommitOp::Update)
            }
        };
        Ok(op)
    }
}
