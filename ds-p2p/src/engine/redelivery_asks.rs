//! Asking for messages that came too late to be read, and answering such asks.
//!
//! The window holds a state for a while after it stopped being the active head, and no
//! longer (forward secrecy). A message made on that state that arrives after it was pruned
//! can never be read here: typically a side of a partition longer than the window that did
//! not commit, whose messages reach the side that did (and pruned the old epoch) only when the
//! partition heals. Nothing forked, so nobody re-sends them on a branch switch or a heal. So
//! the member that cannot read them asks: once per [`ASK_DELAY_MS`] it sends a redelivery
//! request listing the unreadable ids (`wire::CarriedIds::Request`) on its active state, and
//! the sender of those messages, which keeps its own messages for this (`heal::KeptMessage`),
//! sends them again as a redelivery at its current epoch. An id is asked for at most
//! [`MAX_ASKS`] times, [`ASK_AGAIN_MS`] apart, and forgotten once delivered; an answer for one
//! id goes out at most once per [`ANSWER_AGAIN_MS`] however many members ask.
//!
//! Only a member that was in the group when a message was sent gets it again: a member added
//! later must not read what was said before it joined (RFC 9420 §16.7), and a request names
//! any id it likes. So a sender notes who the members were at each epoch it sends on
//! (hashes of their credentials), and answers an ask for a message only when the asker was
//! among them.
//!
//! The state here is in memory: after a restart, sync brings the unreadable messages again
//! and they are asked for again; a sender that restarted answers no asks for the messages it
//! sent before (it no longer knows who received them).

use std::collections::{BTreeMap, BTreeSet};

use super::api::Event;
use super::heal::{KeptMessage, load_kept};
use super::{Engine, EngineError, mls_err, wire_bytes};
use crate::wire::{
    ApplicationPayload, CarriedIds, EnvelopeKind, GroupRef, MAX_REDELIVERY_MESSAGES, MessageId,
};

/// How long unreadable ids gather before a request goes out (one request for a burst, as a
/// sync brings many at once).
pub const ASK_DELAY_MS: u64 = 1_000;
/// How long before an id still unread is asked for again.
pub const ASK_AGAIN_MS: u64 = 30_000;
/// How often one id is asked for at most.
pub const MAX_ASKS: u8 = 3;
/// How long an answered id is not answered again (one answer serves every member that asked).
pub const ANSWER_AGAIN_MS: u64 = 10_000;
/// Ids remembered per group, to ask for and as answered; the oldest go first.
const MAX_REMEMBERED: usize = 1024;
/// Epochs whose members a sender remembers per group; the oldest go first.
const MAX_ROSTERS: usize = 64;

/// A short digest of a member's credential, to note who was in the group at an epoch.
fn member_digest(credential: &[u8]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let full: [u8; 32] = Sha256::digest(credential).into();
    full[..8].try_into().expect("8 of 32 bytes")
}

#[derive(Debug, Clone, Copy)]
struct Wanted {
    next_ask_ms: u64,
    asks: u8,
}

/// The asks of one group: ids this member could not read, and ids it re-sent on request.
#[derive(Debug, Default)]
pub(crate) struct RedeliveryAsks {
    wanted: BTreeMap<MessageId, Wanted>,
    answered: BTreeMap<MessageId, u64>,
    /// Who the members were at the epochs this member sent on (several branches at one
    /// epoch: all of them), and on which held states (storage ids) that was noted.
    rosters: BTreeMap<u64, (BTreeSet<[u8; 8]>, BTreeSet<u64>)>,
}

/// A redelivery request received: the ids it asks for, and the asker's credential.
pub(crate) struct Ask {
    pub ids: Vec<MessageId>,
    pub asker: Vec<u8>,
}

impl RedeliveryAsks {
    /// Notes ids that could not be read; they are asked for after [`ASK_DELAY_MS`].
    pub fn want(&mut self, ids: impl IntoIterator<Item = MessageId>, now_ms: u64) {
        for id in ids {
            if self.wanted.len() >= MAX_REMEMBERED && !self.wanted.contains_key(&id) {
                return;
            }
            self.wanted.entry(id).or_insert(Wanted {
                next_ask_ms: now_ms.saturating_add(ASK_DELAY_MS),
                asks: 0,
            });
        }
    }

    /// When a request is next due, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.wanted.values().map(|w| w.next_ask_ms).min()
    }

    /// The ids to ask for now (at most [`MAX_REDELIVERY_MESSAGES`]): those due, and with them
    /// those not asked for yet. Notes the ask; ids
    /// delivered meanwhile, or asked for [`MAX_ASKS`] times already, are forgotten.
    pub fn take_due(
        &mut self,
        now_ms: u64,
        delivered: impl Fn(&MessageId) -> bool,
    ) -> Vec<MessageId> {
        self.wanted
            .retain(|id, w| !delivered(id) && (w.asks < MAX_ASKS || w.next_ask_ms > now_ms));
        let mut due = Vec::new();
        if self.wanted.values().all(|w| w.next_ask_ms > now_ms) {
            return due;
        }
        for (id, w) in self.wanted.iter_mut() {
            if due.len() == MAX_REDELIVERY_MESSAGES {
                break;
            }
            // Ids never asked for go along with the ones due: one request for a burst.
            if w.next_ask_ms <= now_ms || w.asks == 0 {
                w.asks += 1;
                w.next_ask_ms = now_ms.saturating_add(ASK_AGAIN_MS);
                due.push(*id);
            }
        }
        due
    }

    /// Notes who the members are at `epoch` on the held state `state`, where this member
    /// sends. Once per state: `credentials` is only asked for the first send on it (the
    /// members of a state do not change, and a send is a hot path).
    pub fn note_roster(
        &mut self,
        epoch: u64,
        state: u64,
        credentials: impl FnOnce() -> Vec<Vec<u8>>,
    ) {
        let (roster, states) = self.rosters.entry(epoch).or_default();
        if states.insert(state) {
            roster.extend(credentials().iter().map(|c| member_digest(c)));
        }
        while self.rosters.len() > MAX_ROSTERS {
            self.rosters.pop_first();
        }
    }

    /// Whether `asker` was a member at `epoch`, as far as this member noted.
    pub fn was_member(&self, epoch: u64, asker: &[u8]) -> bool {
        self.rosters
            .get(&epoch)
            .is_some_and(|(r, _)| r.contains(&member_digest(asker)))
    }

    /// Whether every one of `members` (credentials) was a member at `epoch`, as far as this
    /// member noted; `false` when it noted nothing for `epoch`.
    pub fn all_were_members(&self, epoch: u64, members: &[Vec<u8>]) -> bool {
        self.rosters
            .get(&epoch)
            .is_some_and(|(r, _)| members.iter().all(|m| r.contains(&member_digest(m))))
    }

    /// Which of `requested` (found among this member's own kept ones by the caller) to send
    /// again now, noting them as answered.
    pub fn answer_now(&mut self, requested: Vec<MessageId>, now_ms: u64) -> Vec<MessageId> {
        let due: Vec<MessageId> = requested
            .into_iter()
            .filter(|id| {
                self.answered
                    .get(id)
                    .is_none_or(|at| now_ms >= at.saturating_add(ANSWER_AGAIN_MS))
            })
            .collect();
        for id in &due {
            self.answered.insert(*id, now_ms);
        }
        while self.answered.len() > MAX_REMEMBERED {
            let oldest = self
                .answered
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.answered.remove(&id),
                None => break,
            };
        }
        due
    }
}

impl Engine {
    /// Notes the ids `aad` says a message for `epoch` carries, those not delivered, as
    /// unreadable here. A message from before this member joined is not for it: not asked for.
    pub(crate) fn want_unreadable(&mut self, now_ms: u64, group: GroupRef, epoch: u64, aad: &[u8]) {
        let Some(rt) = self.groups.get_mut(&group) else {
            return;
        };
        if epoch < rt.record.joined_epoch {
            return;
        }
        let Some(carried) = CarriedIds::parse(aad) else {
            return;
        };
        let unseen: Vec<MessageId> = carried
            .ids()
            .iter()
            .filter(|id| !rt.record.seen.contains_key(id))
            .copied()
            .collect();
        rt.heal.asks.want(unseen, now_ms);
    }

    /// Sends the redelivery request that is due, if any (on the active state; a member that
    /// is not in the group asks no one).
    pub(crate) fn ask_if_due(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if rt.heal.asks.next_due().is_none_or(|due| due > now_ms) {
            return Ok(());
        }
        let seen = &rt.record.seen;
        let ids = rt.heal.asks.take_due(now_ms, |id| seen.contains_key(id));
        let member = rt.is_member_on_active();
        if ids.is_empty() || !member {
            return Ok(());
        }
        self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let signer = &engine.signer;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))?;
            rt.group.set_aad(CarriedIds::request_aad(&ids));
            let message = rt
                .group
                .create_message(provider, signer, &[])
                .map_err(mls_err)?;
            rt.save(provider)?;
            let bytes = wire_bytes(&message)?;
            engine.publish_own(group, EnvelopeKind::Application, bytes)
        })?;
        self.emit(Event::RedeliveryAsked { group, ids });
        Ok(())
    }

    /// Answers a redelivery request: sends again those of the ids asked for that are this
    /// member's own kept messages, sent when the asker was a member, and not sent again on
    /// request lately.
    pub(crate) fn answer_request(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        ask: Ask,
    ) -> Result<(), EngineError> {
        // Most members that decrypt a request keep none of it: no store read for them.
        if !self.runtime(group)?.heal.keeps_any(&ask.ids) {
            return Ok(());
        }
        let kept = load_kept(self.provider.mls_storage().staged(), &group)?;
        let asks = &self.runtime(group)?.heal.asks;
        let own: Vec<MessageId> = ask
            .ids
            .into_iter()
            .filter(|id| {
                kept.iter()
                    .any(|m| m.id == *id && asks.was_member(m.epoch, &ask.asker))
            })
            .collect();
        if own.is_empty() {
            return Ok(());
        }
        let ids = self.runtime(group)?.heal.asks.answer_now(own, now_ms);
        if ids.is_empty() {
            return Ok(());
        }
        let asked: Vec<KeptMessage> = kept.into_iter().filter(|m| ids.contains(&m.id)).collect();
        let payloads: Vec<ApplicationPayload> = self
            .resendable(group, asked, |m| (m.id, m.epoch))?
            .into_iter()
            .map(KeptMessage::into_payload)
            .collect();
        if payloads.is_empty() {
            return Ok(());
        }
        let ids = payloads.iter().map(|p| p.id).collect();
        self.send_redeliveries(now_ms, group, payloads)?;
        self.emit(Event::RedeliveryAnswered { group, ids });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    #[test]
    fn unreadable_ids_are_asked_for_after_the_delay_and_again_until_delivered() {
        let mut asks = RedeliveryAsks::default();
        asks.want([id(1), id(2)], 1_000);
        assert_eq!(asks.next_due(), Some(1_000 + ASK_DELAY_MS));
        assert!(asks.take_due(1_500, |_| false).is_empty(), "not yet");
        // id 3 is not due yet, but goes along: one request for the burst.
        asks.want([id(3)], 1_800);
        assert_eq!(asks.take_due(2_000, |_| false), vec![id(1), id(2), id(3)]);
        assert!(asks.take_due(2_800, |_| false).is_empty());
        // id 2 arrives; id 1 is asked for again, up to MAX_ASKS times, then forgotten.
        let mut t = 2_000;
        for _ in 1..MAX_ASKS {
            t += ASK_AGAIN_MS;
            assert_eq!(
                asks.take_due(t, |i| *i == id(2) || *i == id(3)),
                vec![id(1)]
            );
        }
        t += ASK_AGAIN_MS;
        assert!(asks.take_due(t, |_| false).is_empty());
        assert_eq!(asks.next_due(), None, "nothing left to ask for");
    }

    #[test]
    fn one_request_asks_for_at_most_a_redeliverys_worth() {
        let mut asks = RedeliveryAsks::default();
        asks.want((0..100).map(id), 0);
        assert_eq!(
            asks.take_due(ASK_DELAY_MS, |_| false).len(),
            MAX_REDELIVERY_MESSAGES
        );
        assert_eq!(
            asks.take_due(ASK_DELAY_MS, |_| false).len(),
            100 - MAX_REDELIVERY_MESSAGES
        );
    }

    #[test]
    fn an_id_is_answered_once_per_interval_however_many_ask() {
        let mut asks = RedeliveryAsks::default();
        assert_eq!(asks.answer_now(vec![id(1), id(2)], 0), vec![id(1), id(2)]);
        assert_eq!(asks.answer_now(vec![id(1), id(3)], 500), vec![id(3)]);
        assert_eq!(asks.answer_now(vec![id(1)], ANSWER_AGAIN_MS), vec![id(1)]);
    }

    #[test]
    fn a_group_is_safe_for_a_resend_only_if_all_its_members_were_in_the_roster() {
        let mut asks = RedeliveryAsks::default();
        let names = |names: &[&[u8]]| names.iter().map(|n| n.to_vec()).collect::<Vec<_>>();
        asks.note_roster(7, 1, || names(&[b"ann", b"ben", b"cat"]));
        assert!(asks.all_were_members(7, &names(&[b"ann", b"ben", b"cat"])));
        assert!(
            asks.all_were_members(7, &names(&[b"ann", b"cat"])),
            "a member removed since reads nothing"
        );
        assert!(
            !asks.all_were_members(7, &names(&[b"ann", b"ben", b"gus"])),
            "gus was added since"
        );
        assert!(
            !asks.all_were_members(6, &names(&[b"ann"])),
            "no roster noted for epoch 6: not shown safe"
        );
    }

    #[test]
    fn only_a_member_at_the_epoch_a_message_was_sent_on_was_a_member() {
        let mut asks = RedeliveryAsks::default();
        let roster = |names: &[&[u8]]| names.iter().map(|n| n.to_vec()).collect::<Vec<_>>();
        asks.note_roster(5, 1, || roster(&[b"ann", b"ben"]));
        asks.note_roster(5, 2, || roster(&[b"cat"])); // another branch at epoch 5
        asks.note_roster(5, 1, || panic!("a state's members are noted once"));
        assert!(asks.was_member(5, b"ann") && asks.was_member(5, b"cat"));
        assert!(!asks.was_member(5, b"gus"), "added later");
        assert!(
            !asks.was_member(4, b"ann"),
            "an epoch not noted answers no one"
        );
        for epoch in 6..6 + MAX_ROSTERS as u64 {
            asks.note_roster(epoch, 1, || roster(&[b"ann"]));
        }
        assert!(!asks.was_member(5, b"ann"), "the oldest roster went first");
        assert_eq!(asks.rosters.len(), MAX_ROSTERS);
    }

    #[test]
    fn memory_is_bounded() {
        let mut asks = RedeliveryAsks::default();
        asks.want(
            (0..2_000u32).map(|n| {
                MessageId([
                    (n % 256) as u8,
                    (n / 256) as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ])
            }),
            0,
        );
        assert_eq!(asks.wanted.len(), MAX_REMEMBERED);
        let many: Vec<MessageId> = (0..2_000u32)
            .map(|n| {
                MessageId([
                    (n % 256) as u8,
                    (n / 256) as u8,
                    1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ])
            })
            .collect();
        asks.answer_now(many, 0);
        assert_eq!(asks.answered.len(), MAX_REMEMBERED);
    }
}
