//! `settle-then-pick` (RFC 9750 §5.2.2, option 1): on a commit for the current epoch — one
//! received, or one's own — the member holds it and starts a settle of `settle_ms`. Until it
//! ends, the active head stays at the current epoch, further commits for it are held beside
//! the first, and application messages the user sends are queued. When it ends, the member
//! applies the tie-break winner among everything held (the same policy accept-and-hold uses,
//! so members that saw the same commits pick the same one), then sends the queued messages.
//!
//! What it buys: members that heard every competing commit within the delay move straight to
//! the winner — no branch switch, nothing to re-send. What it costs: commits take effect
//! `settle_ms` later, and messages sent meanwhile wait as long. A commit that arrives after
//! the settle (a partition, a slow path) is handled by the fork window as in accept-and-hold.
//!
//! A restart during a settle loses nothing: the held commits are held states of the group
//! record, and the settle's end and the queued messages are stored beside it (see
//! [`super::stored`]); the restarted member ends the settle when it was due (at once if that
//! time has passed) and sends the queue with the messages' original ids, so a message that
//! went out before the crash too is dropped as a duplicate by its receivers.

use super::super::group_state::own_leaf_hash;
use super::super::record::{IntentKind, Reissue};
use super::super::{Engine, EngineError};
use crate::wire::{GroupRef, MessageId};

impl Engine {
    /// Starts a settle for `group` unless one is running.
    pub(crate) fn start_settle(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        settle_ms: u64,
    ) -> Result<(), EngineError> {
        let state = self.consistency_mut(group);
        if state.settle_until.is_some() {
            return Ok(());
        }
        state.settle_until = Some(now_ms.saturating_add(settle_ms));
        self.persist_mode(group)
    }

    /// While `group` is settling, an own commit is not made (it would race the commits being
    /// settled, the member's own among them): it is kept as a re-issue due when the settle
    /// ends, made then if still needed (see `Engine::reissue_due`). Returns whether it was.
    pub(crate) fn defer_commit_if_settling(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        intent: &IntentKind,
    ) -> Result<bool, EngineError> {
        let Some(until) = self
            .consistency
            .get(&group)
            .and_then(|c| c.settle_until)
            .filter(|until| now_ms < *until)
        else {
            return Ok(false);
        };
        let Some(rt) = self.groups.get_mut(&group) else {
            return Ok(false);
        };
        let leaf_before = own_leaf_hash(&rt.group);
        rt.record.reissues.push(Reissue {
            kind: intent.clone(),
            leaf_before,
            due_ms: until,
        });
        self.save_group(group)?;
        Ok(true)
    }

    /// `Some(body)` to send now, `None` when the message was queued because `group` is
    /// settling (it goes out when the settle ends, with its original id and send time). The
    /// queue is stored before this returns: the caller may tell the user the message is sent.
    pub(crate) fn queue_if_settling(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        id: MessageId,
        body: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let settling = self
            .consistency
            .get(&group)
            .and_then(|c| c.settle_until)
            .is_some_and(|until| now_ms < until);
        if !settling || !self.groups.contains_key(&group) {
            return Ok(Some(body));
        }
        let keep_for_history = self.config.confirm_delivery;
        self.consistency_mut(group)
            .queued
            .push((id, now_ms, body.clone()));
        // Queued and kept for the embedder's history in one write (see `delivery`); it goes
        // out with a plain re-send when the settle ends.
        let stored = self.step(None, |engine| {
            engine.persist_mode(group)?;
            if keep_for_history {
                engine.stage_own(&group, &id, now_ms, &body)?;
            }
            Ok(())
        });
        if let Err(e) = stored {
            // Not stored, so not queued: the caller reports the error instead of "sent".
            self.consistency_mut(group).queued.pop();
            return Err(e);
        }
        Ok(None)
    }

    /// Ends the settle: follows the policy's head, and if no new settle started on the way
    /// (a commit for the new epoch is already held), sends the queued messages.
    pub(crate) fn end_settle(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        let active = self.groups.get(&group).map(|rt| rt.record.active);
        let state = self.consistency_mut(group);
        state.settle_until = None;
        state.settled = active;
        self.after_commit(now_ms, group)?;
        if self.consistency_mut(group).settle_until.is_some() {
            return self.persist_mode(group);
        }
        // Taken off the stored queue only after they are sent (each send is stored as an own
        // message): a crash in between sends one again, with the same id.
        let queued = std::mem::take(&mut self.consistency_mut(group).queued);
        for (id, sent_at_ms, body) in queued {
            if let Err(e) = self.send_payload(
                now_ms,
                group,
                id,
                sent_at_ms,
                body,
                crate::engine::commit::Sending::Again,
            ) {
                self.emit(super::super::Event::Rejected {
                    group: Some(group),
                    reason: format!("a message queued during a settle could not be sent: {e}"),
                });
            }
        }
        self.persist_mode(group)
    }
}
