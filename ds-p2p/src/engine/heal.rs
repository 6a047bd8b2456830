//! Healing forks that outlive the window (DESIGN §4 item 8): a partition longer than the
//! window leaves two sides that hold no common state any more, so the within-window machinery
//! (`switch`) cannot reunite them.
//!
//! 1. **Detect.** A commit for an epoch this member no longer holds, or a beacon whose log
//!    parts from this member's log below everything it holds, means such a split. The member
//!    then publishes a [`HealOffer`] on the group topic: its whole public log and a signed
//!    GroupInfo of its active state (with the ratchet tree and the external public key).
//!    Offers are rate-limited (one per epoch and beacon interval).
//! 2. **Decide.** Whoever receives an offer compares the offer's log with its own
//!    ([`heal_verdict`]). Both sides see the same two logs, so every member, on both sides,
//!    reaches the same decision. A member that wins answers with its own offer, so that the
//!    losers get a GroupInfo of the winning branch.
//! 3. **Rejoin.** A member that loses joins the offered branch by an *external commit* (RFC
//!    9420 §12.4.3.2, a "resync": the commit removes the member's own old leaf, which is still
//!    in the winning branch's tree, and adds its new one). The losers take turns
//!    (`heal_schedule`), each on top of the one before, so they do not all commit at the same
//!    epoch. Rejoins that still meet are ordinary commits on the winning branch and go through
//!    the ordinary tie-breaker; a rejoiner whose commit lost sees the group go on from another
//!    commit at that epoch and heals again, with a fresh offer.
//! 4. **Re-deliver.** The rejoined member re-sends its own application messages sent on the
//!    losing side (kept apart for this, see [`MAX_KEPT_MESSAGES`]), same id and send time, in
//!    the order they were sent; receivers drop the ones they already have.
//!
//! Why an external commit rather than a re-add by a winning-side member: the loser decides
//! and acts on its own, from one offer, with no second party that must notice it, pick a
//! KeyPackage and agree with the other winners on who re-adds whom (several winners re-adding
//! the same loser would race, and each lost re-add would need re-doing). The external commit
//! also removes the loser's stale leaf in the same commit, which a re-add would have to do in
//! a separate Remove. And the membership rule is checkable by every member alike from the
//! commit alone ([`check_rejoin`]).
//!
//! Who may rejoin: an external commit is accepted only as a resync of a leaf that is a member
//! of the branch it is applied to — it must remove exactly one leaf, whose credential and
//! signature key are the committer's own, and add no one. A stranger, or a former member
//! removed on the winning side (or before the fork), has no such leaf and is refused by every
//! member. A member removed on the *losing* side never tries (its state there is evicted, and
//! an evicted member makes no offer and takes none).
//!
//! 5. **Membership intent.** Own Removes and Adds are kept beyond the window
//!    ([`MAX_KEPT_CHANGES`]); a rejoined member re-does those it made on the losing side,
//!    through the ordinary re-issue path (after its delay, only if still needed then). A
//!    Remove made on the winning side is in force anyway, so a Remove made on either side
//!    stays in force. An Add needs a fresh KeyPackage (the joiner's one-time KeyPackage was
//!    used up on the losing side, and its private key is gone): a member that was added on
//!    the losing side finds itself missing from the winning branch's tree when it judges an
//!    offer, marks its losing-side states lost (as a lost join, [`Event::JoinLost`]) and
//!    publishes an offer carrying a fresh KeyPackage ([`HealOffer::readd_with`]). Only the
//!    member that made the Add takes it up — into its kept Add, and into a re-issue once it
//!    is on a branch without the joiner. When the re-add's Welcome comes, the joiner follows
//!    it and re-sends what it sent on the losing side ([`Event::SplitHealed`]).
//!
//! Healing runs under the default consistency mode (accept-and-hold) only.

use std::collections::{BTreeMap, BTreeSet};

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::api::Event;
use super::consistency::ConsistencyMode;
use super::fork_tree::{ForkTree, HeldState};
use super::group_state::{branch_id, members};
use super::heal_schedule::ScheduledRejoin;
use super::record::{Intent, IntentKind, MAX_LOG_ENTRIES};
use super::redelivery_asks::RedeliveryAsks;
use super::tie_break::CommitFacts;
use super::{Engine, EngineError, mls_err, wire_bytes};
use crate::storage::{StagedStore, StorageError};
use crate::wire::{
    ApplicationPayload, CommitRef, Envelope, EnvelopeKind, GroupRef, HealOffer, MessageId,
};

/// Own application messages kept per group for re-delivery after a heal, newest kept. The
/// fork window forgets own messages once they can no longer be displaced *within* the window;
/// a split is only found later, so these are kept apart (one stored key each, written when
/// the message is sent, so a step costs one write, as for the window's own lists).
pub const MAX_KEPT_MESSAGES: usize = 1024;

const KEPT: u8 = b'h';
const KEPT_CHANGES: u8 = b'r';
/// Own Removes and Adds kept per group for re-applying after a heal, newest kept.
pub const MAX_KEPT_CHANGES: usize = 256;
/// One kept message: its body is at most an application message.
const MAX_KEPT_BYTES: usize = 2 * 1024 * 1024;

/// An own application message kept for re-delivery after a heal.
///
/// Stored as `h <group ref 16> <sent at, ms: u64 BE> <message id 16> -> KeptMessage`, so a
/// scan returns them in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptMessage {
    pub id: MessageId,
    pub sent_at_ms: u64,
    /// The epoch of the active state it was (last) sent on.
    pub epoch: u64,
    pub body: Vec<u8>,
}

/// An own Remove or Add kept for re-applying after a heal (a Remove made on either side of a
/// split stays in force; a member added on the losing side is added again). Stored as
/// `r <group ref 16> <made at, ms: u64 BE> <commit ref 32>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptChange {
    /// The epoch the Remove's commit was made on.
    pub made_on: u64,
    pub made_at_ms: u64,
    pub commit_ref: CommitRef,
    /// An [`IntentKind::Remove`] or [`IntentKind::Add`].
    pub kind: IntentKind,
    /// For an Add: the fresh KeyPackage the joiner sent after a heal left it out (the one in
    /// `kind` was used up on the losing side). An Add is re-done only with one.
    pub readd_with: Option<Vec<u8>>,
}

impl KeptMessage {
    /// The application payload it goes out again as (same id and send time).
    pub fn into_payload(self) -> ApplicationPayload {
        ApplicationPayload {
            id: self.id,
            sent_at_ms: self.sent_at_ms,
            body: self.body,
        }
    }
}

impl KeptChange {
    /// The intent to re-do on the winning branch, if it can be re-done now.
    fn to_redo(&self) -> Option<IntentKind> {
        match (&self.kind, &self.readd_with) {
            (IntentKind::Add { .. }, Some(fresh)) => Some(IntentKind::Add {
                key_package: fresh.clone(),
            }),
            (IntentKind::Add { .. }, None) => None,
            (kind, _) => Some(kind.clone()),
        }
    }
}

fn change_key(group: &GroupRef, made_at_ms: u64, commit_ref: &CommitRef) -> Vec<u8> {
    let mut key = change_prefix(group);
    key.extend_from_slice(&made_at_ms.to_be_bytes());
    key.extend_from_slice(&commit_ref.0);
    key
}

fn change_prefix(group: &GroupRef) -> Vec<u8> {
    let mut key = vec![KEPT_CHANGES];
    key.extend_from_slice(&group.0);
    key
}

/// A group's kept Removes and Adds, oldest first.
pub(crate) fn load_changes(
    staged: &StagedStore,
    group: &GroupRef,
) -> Result<Vec<KeptChange>, EngineError> {
    load_records(staged, &change_prefix(group), |c: &KeptChange| {
        change_key(group, c.made_at_ms, &c.commit_ref)
    })
}

/// Every record stored under `prefix`, in key order; each must sit under the key it names
/// (`key_of`), or the store is corrupt.
fn load_records<T: serde::de::DeserializeOwned>(
    staged: &StagedStore,
    prefix: &[u8],
    key_of: impl Fn(&T) -> Vec<u8>,
) -> Result<Vec<T>, EngineError> {
    let mut out = Vec::new();
    for (key, value) in staged.scan_prefix(prefix).map_err(StorageError::from)? {
        let record: T = identity_tofu::codec::decode(&value, MAX_KEPT_BYTES)
            .map_err(|e| corrupt(format!("{}: {e}", hex::encode(&key))))?;
        if key != key_of(&record) {
            return Err(corrupt(format!(
                "under a foreign key {}",
                hex::encode(&key)
            )));
        }
        out.push(record);
    }
    Ok(out)
}

/// Stages `record` under the key of `entry` and adds `entry` to `index`, then deletes the
/// oldest entries beyond `max` (inside the caller's step).
fn keep_bounded<K: Ord + Copy, T: Serialize>(
    staged: &StagedStore,
    index: &mut BTreeSet<K>,
    entry: K,
    record: &T,
    max: usize,
    key_of: impl Fn(&K) -> Vec<u8>,
) -> Result<(), EngineError> {
    let bytes = identity_tofu::codec::encode(record)
        .map_err(|e| EngineError::Refused(format!("a kept record cannot be encoded: {e}")))?;
    staged
        .put(key_of(&entry), bytes)
        .map_err(StorageError::from)?;
    index.insert(entry);
    while index.len() > max {
        let Some(oldest) = index.pop_first() else {
            break;
        };
        staged.delete(key_of(&oldest)).map_err(StorageError::from)?;
    }
    Ok(())
}

fn kept_prefix(group: &GroupRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 16 + 8 + 16);
    key.push(KEPT);
    key.extend_from_slice(&group.0);
    key
}

fn kept_key(group: &GroupRef, sent_at_ms: u64, id: &MessageId) -> Vec<u8> {
    let mut key = kept_prefix(group);
    key.extend_from_slice(&sent_at_ms.to_be_bytes());
    key.extend_from_slice(&id.0);
    key
}

fn corrupt(detail: String) -> EngineError {
    EngineError::Storage(StorageError::Corrupt {
        what: "kept heal record",
        detail,
    })
}

/// A group's kept messages, in the order they were sent.
pub(crate) fn load_kept(
    staged: &StagedStore,
    group: &GroupRef,
) -> Result<Vec<KeptMessage>, EngineError> {
    load_records(staged, &kept_prefix(group), |m: &KeptMessage| {
        kept_key(group, m.sent_at_ms, &m.id)
    })
}

/// The run-time healing state of a group (not stored: after a restart, offers may go out a
/// little sooner; the kept index is read back from the store).
#[derive(Debug, Default)]
pub(crate) struct HealRuntime {
    /// (epoch, when) of this member's last offer.
    pub last_offer: Option<(u64, u64)>,
    /// (sent at, id) of the kept messages, oldest first.
    kept: BTreeSet<(u64, MessageId)>,
    /// (made at, commit ref) of the kept Removes and Adds, oldest first.
    changes: BTreeSet<(u64, CommitRef)>,
    /// (fork epoch, when) of this member's last rejoin. A rejoin that lost a race to another
    /// rejoin is done again, and its new decision's fork point is where the two rejoins
    /// differ; what the member must re-send and re-do still dates from the split's fork
    /// point. So a rejoin within a window of the last one goes on from the older fork epoch.
    pub last_rejoin: Option<(u64, u64)>,
    /// A rejoin waiting for this member's turn (see `heal_schedule`).
    pub scheduled_rejoin: Option<ScheduledRejoin>,
    /// Messages that came too late to be read, and answers to such asks (see
    /// `redelivery_asks`).
    pub asks: RedeliveryAsks,
    /// The lowest fork epoch of the rejoins applied in the current step: this member re-sends
    /// its messages since then, which the rejoiners could not read.
    rejoined_from: Option<u64>,
    /// The fork epoch of a split this member was left out of (added on the losing side): set
    /// when it asked to be added again; the Welcome that does it re-delivers from there.
    awaiting_readd: Option<u64>,
    /// This member found itself removed on the winning side of a split (see
    /// [`Engine::removed_across_split`]): its states' eviction is not a lost join, and a
    /// beacon confirming its (old) Add does not take it back. In memory only: after a
    /// restart the next winning offer finds the removal again.
    pub removed_by_split: bool,
}

impl HealRuntime {
    /// The healing state of a stored group.
    pub fn load(staged: &StagedStore, group: &GroupRef) -> Result<Self, EngineError> {
        Ok(Self {
            last_offer: None,
            rejoined_from: None,
            last_rejoin: None,
            scheduled_rejoin: None,
            asks: RedeliveryAsks::default(),
            awaiting_readd: None,
            removed_by_split: false,
            changes: load_changes(staged, group)?
                .into_iter()
                .map(|r| (r.made_at_ms, r.commit_ref))
                .collect(),
            kept: load_kept(staged, group)?
                .into_iter()
                .map(|m| (m.sent_at_ms, m.id))
                .collect(),
        })
    }

    /// Whether an offer may go out now — at most one per epoch and `interval` — and if so,
    /// notes it as made.
    fn may_offer(&mut self, epoch: u64, now_ms: u64, interval: u64) -> bool {
        if self
            .last_offer
            .is_some_and(|(e, at)| e == epoch && now_ms < at.saturating_add(interval))
        {
            return false;
        }
        self.last_offer = Some((epoch, now_ms));
        true
    }

    /// Whether any of `ids` is among the kept messages (the in-memory index: no store read).
    pub fn keeps_any(&self, ids: &[MessageId]) -> bool {
        self.kept.iter().any(|(_, id)| ids.contains(id))
    }

    /// Notes a rejoin applied in this step (see [`Engine::resend_after_rejoin`]).
    pub fn note_rejoin(&mut self, fork_epoch: u64) {
        self.rejoined_from = Some(self.rejoined_from.map_or(fork_epoch, |f| f.min(fork_epoch)));
    }

    /// Stages an own Remove or Add as kept (inside the caller's step), dropping the oldest
    /// beyond [`MAX_KEPT_CHANGES`].
    pub fn keep_change(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
        change: &KeptChange,
    ) -> Result<(), EngineError> {
        let entry = (change.made_at_ms, change.commit_ref);
        keep_bounded(
            staged,
            &mut self.changes,
            entry,
            change,
            MAX_KEPT_CHANGES,
            |(at, r)| change_key(group, *at, r),
        )
    }

    /// Stages `message` as kept (inside the caller's step), dropping the oldest beyond
    /// [`MAX_KEPT_MESSAGES`].
    pub fn keep(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
        message: &KeptMessage,
    ) -> Result<(), EngineError> {
        let entry = (message.sent_at_ms, message.id);
        keep_bounded(
            staged,
            &mut self.kept,
            entry,
            message,
            MAX_KEPT_MESSAGES,
            |(at, id)| kept_key(group, *at, id),
        )
    }
}

/// By which rule a [`HealDecision`] was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealRule {
    /// Both logs hold an equal entry below the first epoch where they differ: that epoch is
    /// the fork point. Lowest commit ref there wins (the last rule of every policy).
    ForkPoint,
    /// Neither log reaches back to the fork point (both are full, [`MAX_LOG_ENTRIES`]): lowest
    /// commit ref at the oldest epoch both logs hold.
    OldestCommon,
    /// Both logs are full and hold no common epoch: the log whose oldest entry is lower
    /// (epoch, then ref) wins.
    OldestRemembered,
}

/// Which side of a split wins, and where the sides parted (as far as the logs tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealDecision {
    /// The epoch the competing commits were made on (the lowest epoch the decision used).
    pub fork_epoch: u64,
    pub rule: HealRule,
    /// The other log's branch wins.
    pub they_win: bool,
}

/// What comparing two public logs says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealVerdict {
    /// The logs agree wherever both have an entry: one branch (perhaps one member behind).
    NoFork,
    /// They differ, but not in a way both sides would judge alike: a log too short to reach
    /// the fork point (a member that joined after it). Such a member neither rejoins nor
    /// makes others rejoin; members whose logs reach back decide.
    Undecided,
    Decided(HealDecision),
}

/// Compares this member's public log with another member's (both oldest first, one entry
/// per epoch). A pure function of the two logs and antisymmetric: swapping them swaps the
/// winner, so the two sides of a split decide alike.
///
/// The tie-break beyond the window is always "lowest commit ref at the fork point", the rule
/// every policy ends with: the other rules need what one side cannot see of the other (commit
/// contents are encrypted to a branch's members) or keep changing while both sides go on
/// (depth), and the decision must not depend on when it is made.
pub fn heal_verdict(mine: &[(u64, CommitRef)], theirs: &[(u64, CommitRef)]) -> HealVerdict {
    let mine_by: BTreeMap<u64, CommitRef> = mine.iter().copied().collect();
    let theirs_by: BTreeMap<u64, CommitRef> = theirs.iter().copied().collect();
    let common: Vec<u64> = mine_by
        .keys()
        .filter(|e| theirs_by.contains_key(e))
        .copied()
        .collect();
    let first_difference = common
        .iter()
        .copied()
        .find(|e| mine_by.get(e) != theirs_by.get(e));
    let both_full = mine.len() >= MAX_LOG_ENTRIES && theirs.len() >= MAX_LOG_ENTRIES;
    let decide = |epoch: u64, rule: HealRule| {
        let (a, b) = (mine_by[&epoch], theirs_by[&epoch]);
        HealVerdict::Decided(HealDecision {
            fork_epoch: epoch,
            rule,
            they_win: b < a,
        })
    };
    match first_difference {
        Some(epoch) if common.first().is_some_and(|c| *c < epoch) => {
            decide(epoch, HealRule::ForkPoint)
        }
        Some(epoch) if both_full => decide(epoch, HealRule::OldestCommon),
        Some(_) => HealVerdict::Undecided,
        None if !common.is_empty() => HealVerdict::NoFork,
        None => match (mine.first(), theirs.first()) {
            (Some(a), Some(b)) if both_full => HealVerdict::Decided(HealDecision {
                fork_epoch: a.0.min(b.0),
                rule: HealRule::OldestRemembered,
                they_win: b < a,
            }),
            _ => HealVerdict::NoFork,
        },
    }
}

/// The first epoch where two logs hold different commits, if any (for detection: where a
/// beacon's short log parts from this member's).
pub(crate) fn first_difference(
    mine: &[(u64, CommitRef)],
    theirs: &[(u64, CommitRef)],
) -> Option<u64> {
    let mine_by: BTreeMap<u64, CommitRef> = mine.iter().copied().collect();
    theirs
        .iter()
        .filter(|(e, r)| mine_by.get(e).is_some_and(|m| m != r))
        .map(|(e, _)| *e)
        .min()
}

/// The rule every member applies to an external commit before accepting it (see the module
/// docs): a resync of the committer's own leaf on this branch, nothing else. `group` is the
/// state the commit is applied to, before the merge.
pub(crate) fn check_rejoin(group: &MlsGroup, staged: &StagedCommit) -> Result<(), EngineError> {
    let refuse = |why: &str| {
        Err(EngineError::Refused(format!(
            "external commit refused: {why} (only a member of this branch may rejoin it)"
        )))
    };
    if staged.add_proposals().next().is_some() || staged.update_proposals().next().is_some() {
        return refuse("it changes other members");
    }
    let removed: Vec<LeafNodeIndex> = staged
        .remove_proposals()
        .map(|r| r.remove_proposal().removed())
        .collect();
    let [old_leaf] = removed[..] else {
        return refuse("it does not replace exactly one leaf of its own");
    };
    let Some(joiner) = staged.update_path_leaf_node() else {
        return refuse("it has no leaf of its own");
    };
    let Some(old) = group.member_at(old_leaf) else {
        return refuse("the leaf it replaces is empty");
    };
    if old.signature_key != joiner.signature_key().as_slice()
        || old.credential.serialized_content() != joiner.credential().serialized_content()
    {
        return refuse("the leaf it replaces is someone else's");
    }
    Ok(())
}

/// The fork epoch a rejoin's external commit carries in its authenticated data (8 bytes,
/// big-endian): where the rejoiner's side parted from this one, so that this side's members
/// know which of their messages the rejoiner never read. `None` if it carries no such thing.
pub(crate) fn fork_epoch_of_rejoin(aad: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(aad).ok().map(u64::from_be_bytes)
}

/// Whether a GroupInfo (MLSMessage bytes) is signed by one of `members` (Ed25519 signature
/// keys). Anyone on the group topic can make a GroupInfo for the group's id with a tree of
/// their own choosing (leaves are public, and can be copied into it); only a member can sign
/// one with a member's key. openmls checks the signature against the signer's leaf in the
/// tree the GroupInfo itself carries, so that check alone proves nothing here.
///
/// RFC 9420: the body after the 4-byte MLSMessage header (version, wire format) is
/// `GroupInfoTBS || signature<V>`, signed as `SignContent { "MLS 1.0 GroupInfoTBS", TBS }`.
fn signed_by_one_of(group_info: &[u8], members: &[(u32, Vec<u8>)]) -> bool {
    const SIGNATURE: usize = 64;
    let Some(body) = group_info.get(4..) else {
        return false;
    };
    // 64 takes the 2-byte form of the variable-length prefix (1 byte holds up to 63).
    let Some(split) = body.len().checked_sub(SIGNATURE + 2) else {
        return false;
    };
    if body[split..split + 2] != [0x40, SIGNATURE as u8] {
        return false; // not one Ed25519 signature after the signed part
    }
    let (tbs, signature) = (&body[..split], &body[split + 2..]);
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    let label = b"MLS 1.0 GroupInfoTBS";
    let mut content = Vec::with_capacity(label.len() + tbs.len() + 8);
    push_vl(&mut content, label);
    push_vl(&mut content, tbs);
    // The TBS ends with the signer's leaf index in the offered tree; a member usually keeps its
    // leaf on both sides, so the member at that index here is tried first (one verification
    // instead of one per member, for every offer every loser judges), then everyone else.
    let signer = tbs
        .last_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
        .and_then(|leaf| members.iter().position(|(index, _)| *index == leaf));
    let first = signer.map(|i| &members[i]);
    let rest = members
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != signer)
        .map(|(_, m)| m);
    first.into_iter().chain(rest).any(|(_, key)| {
        <[u8; 32]>::try_from(key.as_slice())
            .ok()
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
            .is_some_and(|k| k.verify_strict(&content, &signature).is_ok())
    })
}

/// Appends `bytes` with its RFC 9420 variable-length prefix.
fn push_vl(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// The ratchet tree's leaves of a GroupInfo: (credential, signature key).
fn group_info_leaves(
    info: &openmls::messages::group_info::VerifiableGroupInfo,
) -> Option<Vec<(Credential, Vec<u8>)>> {
    let tree = info.extensions().ratchet_tree()?.ratchet_tree();
    Some(
        tree.leaves()
            .map(|l| {
                (
                    l.credential().clone(),
                    l.signature_key().as_slice().to_vec(),
                )
            })
            .collect(),
    )
}

impl Engine {
    /// Refuses a GroupInfo that no other member of this member's active state signed (one
    /// that was in the group at the fork point and was not removed here since): it could be a
    /// group someone else made up under this id.
    pub(crate) fn check_signed_on_this_side(
        &mut self,
        group: GroupRef,
        group_info: &[u8],
    ) -> Result<(), EngineError> {
        let own_key = self.signer.public().to_vec();
        let co_members: Vec<(u32, Vec<u8>)> = self
            .runtime(group)?
            .group
            .members()
            .filter(|m| m.signature_key != own_key)
            .map(|m| (m.index.u32(), m.signature_key))
            .collect();
        if !signed_by_one_of(group_info, &co_members) {
            return Err(EngineError::Refused(
                "heal offer's GroupInfo is not signed by a member of this group".into(),
            ));
        }
        Ok(())
    }

    /// Publishes this member's [`HealOffer`] for `group`, unless it offered one at the same
    /// epoch less than a beacon interval ago, or it is not a member of its active state.
    pub(crate) fn offer_heal(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        if !matches!(
            self.config.consistency_of(group),
            ConsistencyMode::AcceptAndHold
        ) {
            return Ok(());
        }
        let interval = self.config.beacon_interval_ms;
        let rt = self.runtime(group)?;
        let epoch = rt.group.epoch().as_u64();
        if !rt.is_member_on_active() {
            return Ok(());
        }
        if !rt.heal.may_offer(epoch, now_ms, interval) {
            return Ok(());
        }
        let log = rt.record.log.clone();
        let offer = HealOffer {
            epoch,
            log,
            group_info: self.group_info(group)?,
            readd_with: None,
        };
        let payload = identity_tofu::codec::encode(&offer)
            .map_err(|e| EngineError::Refused(format!("heal offer cannot be encoded: {e}")))?;
        self.publish_own(group, EnvelopeKind::GroupInfo, payload)
    }

    /// The signed GroupInfo (RFC 9420 bytes, with the ratchet tree and the external public
    /// key) of `group`'s active state: what this member's heal offers carry.
    pub fn group_info(&self, group: GroupRef) -> Result<Vec<u8>, EngineError> {
        let rt = self
            .groups
            .get(&group)
            .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))?;
        let info = rt
            .group
            .export_group_info(self.provider.crypto(), &self.signer, true)
            .map_err(mls_err)?;
        wire_bytes(&info)
    }

    /// Another member's offer: decide which side wins, then rejoin its branch or answer with
    /// this member's own offer.
    pub(crate) fn receive_heal_offer(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        let offer: HealOffer =
            identity_tofu::codec::decode(&envelope.payload, self.config.limits.max_envelope_bytes)
                .map_err(|e| EngineError::Refused(format!("malformed heal offer: {e}")))?;
        if offer.log.len() > MAX_LOG_ENTRIES {
            return Err(EngineError::Refused(format!(
                "heal offer log of {} entries exceeds {MAX_LOG_ENTRIES}",
                offer.log.len()
            )));
        }
        if !matches!(
            self.config.consistency_of(group),
            ConsistencyMode::AcceptAndHold
        ) {
            return Ok(());
        }
        let rt = self.runtime(group)?;
        if rt.own_envelopes.contains(&Envelope::id_of(raw)) {
            return Ok(());
        }
        if let Some(key_package) = &offer.readd_with {
            self.take_readd_request(now_ms, group, key_package)?;
        }
        let rt = self.runtime(group)?;
        let evicted = rt
            .record
            .tree
            .get(rt.record.active)
            .is_none_or(|s| s.evicted);
        // A joiner whose Add was seen to lose (within the window, or across a split) may
        // still be left out of the winning branch: it judges offers only to ask for a re-add.
        let lost_join = evicted && !rt.record.welcomes.is_empty();
        if (evicted && !lost_join) || !rt.group.is_active() {
            return Ok(()); // removed on this side: not this member's to heal
        }
        let HealVerdict::Decided(decision) = heal_verdict(&rt.record.log, &offer.log) else {
            return Ok(());
        };
        // A fork point this member still holds a state at (or below) is the window's to
        // resolve: its tree ranks the branches, whatever this rule says.
        let held = rt
            .record
            .tree
            .states()
            .any(|s| s.epoch <= decision.fork_epoch);
        if decision.they_win && !held {
            return self.schedule_rejoin(now_ms, group, offer);
        }
        if lost_join {
            return Ok(()); // no branch of its own to offer
        }
        // This side wins (or the window decides): let the other side have this branch's
        // GroupInfo, to rejoin it or to judge again.
        self.offer_heal(now_ms, group)
    }

    /// A member added on the losing side of a split, not in the winning branch's tree: it
    /// marks its states lost (so the re-add's Welcome is followed when it comes, as after a
    /// lost join) and asks whoever added it to add it again, with a fresh KeyPackage.
    fn ask_readd(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        fork_epoch: u64,
    ) -> Result<(), EngineError> {
        // At most once per epoch and beacon interval, as offers (every winning offer that
        // reaches it would ask again, each with a new KeyPackage).
        let interval = self.config.beacon_interval_ms;
        let rt = self.runtime(group)?;
        let epoch = rt.group.epoch().as_u64();
        if !rt.heal.may_offer(epoch, now_ms, interval) {
            return Ok(());
        }
        let key_package = self.key_package(now_ms)?;
        let group_info = self.group_info(group)?;
        self.step(Some(group), |engine| {
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            rt.record.tree.evict_all();
            rt.heal.awaiting_readd = Some(
                rt.heal
                    .awaiting_readd
                    .map_or(fork_epoch, |f| f.min(fork_epoch)),
            );
            rt.save(&engine.provider)?;
            let offer = HealOffer {
                epoch: rt.group.epoch().as_u64(),
                log: rt.record.log.clone(),
                group_info,
                readd_with: Some(key_package),
            };
            let payload = identity_tofu::codec::encode(&offer)
                .map_err(|e| EngineError::Refused(format!("heal offer cannot be encoded: {e}")))?;
            engine.publish_own(group, EnvelopeKind::GroupInfo, payload)
        })?;
        self.emit(Event::JoinLost { group });
        Ok(())
    }

    /// A member removed on the winning side of a split (it was in the group at the fork
    /// point, and the winning branch has no leaf of it): it leaves its losing-side states as
    /// a removed member leaves its group — they are marked evicted (so it offers and judges no
    /// more heals and sends nothing), kept for the window like any displaced state, and the
    /// embedder is told once ([`Event::Removed`]). Without this it stayed on the losing branch
    /// for good, a group of one that never converged with the others (found by the guide's
    /// sweep: `sweep-race` seeds 1, 3 and 8 with the partition longer than the window).
    fn removed_across_split(&mut self, group: GroupRef) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        let already = rt.heal.removed_by_split && rt.record.tree.states().all(|s| s.evicted);
        rt.heal.removed_by_split = true;
        if already {
            return Ok(());
        }
        tracing::info!("removed on the winning side of a split: leaving the losing branch");
        self.step(Some(group), |engine| {
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            rt.record.tree.evict_all();
            rt.save(&engine.provider)?;
            Ok(())
        })?;
        self.emit(Event::Removed { group });
        Ok(())
    }

    /// A left-out joiner's fresh KeyPackage (see [`Engine::ask_readd`]): taken up only by
    /// the member that added it — into its kept Add, and into a re-issue at once if this
    /// member is on a branch without the joiner (it rejoined the winning side already;
    /// otherwise its own rejoin queues it).
    fn take_readd_request(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        key_package: &[u8],
    ) -> Result<(), EngineError> {
        let kp = super::commit::parse_key_package(key_package, &self.provider)?;
        let joiner = kp.leaf_node().credential().serialized_content().to_vec();
        let joiner_of = |kind: &IntentKind| match kind {
            IntentKind::Add { key_package } => {
                super::commit::parse_key_package(key_package, &self.provider)
                    .is_ok_and(|k| k.leaf_node().credential().serialized_content() == joiner)
            }
            _ => false,
        };
        let staged = self.provider.mls_storage().staged();
        let mine: Vec<KeptChange> = load_changes(staged, &group)?
            .into_iter()
            .filter(|c| joiner_of(&c.kind))
            .collect();
        let Some(newest) = mine.last().cloned() else {
            return Ok(()); // not an Add this member made: not its to re-do
        };
        let reissue_due = now_ms
            + super::switch::REISSUE_DELAY_MS
            + self.rng.next_u64() % super::switch::REISSUE_JITTER_MS;
        self.step(Some(group), |engine| {
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let staged = engine.provider.mls_storage().staged();
            let mut kept = newest;
            kept.readd_with = Some(key_package.to_vec());
            rt.heal.keep_change(staged, &group, &kept)?;
            let member = rt.is_member_on_active();
            let left_out = !members(&rt.group).contains(&joiner);
            if member && left_out {
                rt.record.queue_reissues(
                    vec![Intent {
                        kind: IntentKind::Add {
                            key_package: key_package.to_vec(),
                        },
                        on: crate::storage::BranchId(0),
                        made_at_ms: now_ms,
                        leaf_before: [0; 32],
                    }],
                    reissue_due,
                );
            }
            rt.save(&engine.provider)?;
            Ok(())
        })
    }

    /// After a switch of branch: if this member asked to be added again after a split left
    /// it out and now follows a Welcome's lineage (every state it held then was marked lost,
    /// so a live head under a Welcome root is the re-add), it re-sends what it sent since
    /// the fork, as a rejoin does.
    pub(crate) fn after_readd_welcome(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if rt.heal.awaiting_readd.is_none() {
            return Ok(());
        }
        let tree = &rt.record.tree;
        let mut root = tree.get(rt.record.active).filter(|s| !s.evicted);
        while let Some(parent) = root.and_then(|s| s.parent).and_then(|p| tree.get(p)) {
            root = Some(parent);
        }
        let readded = root
            .and_then(|s| s.via.as_ref())
            .is_some_and(|f| rt.record.welcomes.contains(&f.commit_ref));
        if !readded {
            return Ok(());
        }
        let Some(fork_epoch) = rt.heal.awaiting_readd.take() else {
            return Ok(());
        };
        let epoch = rt.group.epoch().as_u64();
        let branch = rt
            .record
            .tree
            .get(rt.record.active)
            .map(|s| s.branch_id)
            .unwrap_or_default();
        let redelivered = self.resend_kept_since(now_ms, group, fork_epoch)?;
        self.emit(Event::SplitHealed {
            group,
            fork_epoch,
            epoch,
            branch_id: branch,
            redelivered,
            reapplied: 0,
        });
        Ok(())
    }

    /// Re-sends, on the active branch, this member's kept messages sent on an epoch at or
    /// after `fork_epoch` (same id and send time, in the order sent; receivers that have
    /// them drop them).
    fn resend_kept_since(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        fork_epoch: u64,
    ) -> Result<Vec<MessageId>, EngineError> {
        let since_fork: Vec<KeptMessage> = load_kept(self.provider.mls_storage().staged(), &group)?
            .into_iter()
            .filter(|m| m.epoch >= fork_epoch)
            .collect();
        let resend = self.resendable(group, since_fork, |m| (m.id, m.epoch))?;
        let redelivered = resend.iter().map(|m| m.id).collect();
        let payloads = resend.into_iter().map(KeptMessage::into_payload).collect();
        self.send_redeliveries(now_ms, group, payloads)?;
        Ok(redelivered)
    }

    /// After a commit that rejoined a member from the other side of a split: the rejoiner
    /// holds nothing of this side from before its commit, so this member re-sends, on the
    /// active branch, its own messages sent since the fork (same id and send time, in order;
    /// receivers that have them drop them).
    pub(crate) fn resend_after_rejoin(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        let Some(fork) = rt.heal.rejoined_from.take() else {
            return Ok(());
        };
        let member = rt.is_member_on_active();
        if !member {
            return Ok(());
        }
        let epoch = rt.group.epoch().as_u64();
        let redelivered = self.resend_kept_since(now_ms, group, fork)?;
        self.emit(Event::SplitRejoined {
            group,
            fork_epoch: fork,
            epoch,
            redelivered,
        });
        Ok(())
    }

    /// Joins the offered branch by an external commit, leaves everything of the losing side
    /// behind, and re-sends this member's messages sent since the fork.
    pub(crate) fn rejoin(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        offer: HealOffer,
        decision: HealDecision,
    ) -> Result<(), EngineError> {
        let message =
            MlsMessageIn::tls_deserialize_exact(&offer.group_info[..]).map_err(mls_err)?;
        let MlsMessageBodyIn::GroupInfo(info) = message.extract() else {
            return Err(EngineError::Refused(
                "heal offer without a GroupInfo".into(),
            ));
        };
        let group_id = self.runtime(group)?.group_id();
        if info.group_id() != &group_id || info.epoch().as_u64() != offer.epoch {
            return Err(EngineError::Refused(
                "heal offer's GroupInfo is for another group or epoch than it says".into(),
            ));
        }
        self.check_signed_on_this_side(group, &offer.group_info)?;
        let own_key = self.signer.public().to_vec();
        let leaves = group_info_leaves(&info)
            .ok_or_else(|| EngineError::Refused("heal offer's GroupInfo has no tree".into()))?;
        if !leaves.iter().any(|(_, key)| *key == own_key) {
            // Not a member of that branch (added on this side during the split, or removed
            // on that one): its members would refuse the commit. Only a re-add brings it in.
            let rt = self.runtime(group)?;
            if !rt.record.welcomes.is_empty() && rt.record.joined_epoch > decision.fork_epoch {
                return self.ask_readd(now_ms, group, decision.fork_epoch);
            }
            // In the group at the fork point and not in the winning branch: removed there, and
            // a Remove made on either side stays in force (rule 5).
            return self.removed_across_split(group);
        }
        let rt = self.runtime(group)?;
        if rt
            .record
            .tree
            .get(rt.record.active)
            .is_none_or(|s| s.evicted)
        {
            // A lost join that is in the winning tree after all: re-added there already,
            // its Welcome is on the way (an external commit would only race it).
            return Ok(());
        }
        for (credential, key) in &leaves {
            self.check_leaf(Some(group), credential, key, now_ms)?;
        }
        let window = self.config.window_ms;
        let rt = self.runtime(group)?;
        let fork_epoch = match rt.heal.last_rejoin {
            Some((earlier, at)) if now_ms < at.saturating_add(window) => {
                earlier.min(decision.fork_epoch)
            }
            _ => decision.fork_epoch,
        };
        // Own Removes and Adds made on the losing side: re-done on the winning branch (if
        // still needed then) after the usual re-issue delay, through the ordinary re-issue
        // path. An Add only once its joiner sent a fresh KeyPackage (until then it waits in
        // the kept changes, see `take_readd_request`).
        let changes: Vec<Intent> = load_changes(self.provider.mls_storage().staged(), &group)?
            .into_iter()
            .filter(|r| r.made_on >= fork_epoch)
            .filter_map(|r| Some((r.to_redo()?, r.made_at_ms)))
            .map(|(kind, made_at_ms)| Intent {
                kind,
                on: crate::storage::BranchId(0),
                made_at_ms,
                leaf_before: [0; 32],
            })
            .collect();
        let reissue_due = now_ms
            + super::switch::REISSUE_DELAY_MS
            + self.rng.next_u64() % super::switch::REISSUE_JITTER_MS;
        let join_config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(self.config.max_past_epochs)
            .sender_ratchet_configuration(self.config.sender_ratchet())
            .build();
        let (epoch, branch, reapplied) = self.step(Some(group), |engine| {
            let old_states: Vec<_> = engine
                .runtime(group)?
                .record
                .tree
                .states()
                .map(|s| s.storage)
                .collect();
            let storage = engine.provider.mls_storage();
            // The joined state goes on a fresh, empty branch: openmls stores the group it
            // builds under the group id.
            let fresh = storage.fresh_branch(&group_id)?;
            storage.activate(&group_id, fresh)?;
            let provider = &engine.provider;
            let (joined, bundle) = MlsGroup::external_commit_builder()
                .with_config(join_config)
                .with_aad(fork_epoch.to_be_bytes().to_vec())
                .build_group(provider, info, engine.credential.clone())
                .map_err(mls_err)?
                .load_psks(provider.storage())
                .map_err(mls_err)?
                .build(provider.rand(), provider.crypto(), &engine.signer, |_| true)
                .map_err(mls_err)?
                .finalize(provider)
                .map_err(mls_err)?;
            let commit_bytes = wire_bytes(bundle.commit())?;
            let commit_ref = CommitRef::of(&commit_bytes);
            // The losing side's states go (forward secrecy): nothing will be read on them.
            for id in old_states {
                storage.prune(&group_id, id)?;
            }
            let epoch = joined.epoch().as_u64();
            let branch = branch_id(&joined, provider)?;
            let mut tree = ForkTree::default();
            tree.insert(HeldState {
                storage: fresh,
                epoch,
                parent: None,
                // Replacing its own leaf is not a removal (the policies rank by removals).
                via: Some(CommitFacts {
                    commit_ref,
                    removes: 0,
                    adds: 0,
                }),
                branch_id: branch,
                inactive_since_ms: None,
                evicted: false,
                vouched_at_ms: None,
                shown_at: None,
            });
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let record = &mut rt.record;
            record.tree = tree;
            record.active = fresh;
            record.log = offer.log.clone();
            record.log_commit((offer.epoch, commit_ref));
            record.know_commit(commit_ref);
            record.sent.clear();
            record.intents.clear();
            record.reissues.clear();
            let reapplied = record.queue_reissues(changes, reissue_due);
            record.pending_leaves.clear();
            record.welcomes.clear();
            // Commits below the join are the winning branch's history, which this member
            // never held; one *at* the join's epoch is a competing rejoin (or other commit)
            // that it must hear of.
            record.joined_epoch = offer.epoch;
            rt.group = joined;
            rt.just_applied = None;
            rt.holds = None;
            rt.heal.last_rejoin = Some((fork_epoch, now_ms));
            rt.save(provider)?;
            engine.publish_own(group, EnvelopeKind::Handshake, commit_bytes)?;
            Ok((epoch, branch, reapplied))
        })?;
        self.emit(Event::EpochChanged {
            group,
            epoch,
            branch_id: branch,
        });
        let roster = members(&self.runtime(group)?.group);
        self.emit(Event::MembershipChanged {
            group,
            members: roster,
        });
        let redelivered = self.resend_kept_since(now_ms, group, fork_epoch)?;
        self.emit(Event::SplitHealed {
            group,
            fork_epoch,
            epoch,
            branch_id: branch,
            redelivered,
            reapplied,
        });
        self.replay_buffered(now_ms, group);
        // The next loser in turn rejoins on top of this rejoin, not against it: it needs a
        // GroupInfo that includes it (see `heal_schedule`). Not held back by the offer made
        // on the losing side, whose epoch number this state may share.
        self.runtime(group)?.heal.last_offer = None;
        self.offer_heal(now_ms, group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(tag: u8) -> CommitRef {
        CommitRef([tag; 32])
    }

    fn log(entries: &[(u64, u8)]) -> Vec<(u64, CommitRef)> {
        entries.iter().map(|(e, t)| (*e, r(*t))).collect()
    }

    #[test]
    fn the_lower_ref_at_the_fork_point_wins_on_both_sides() {
        let a = log(&[(0, 1), (1, 2), (2, 9), (3, 9)]);
        let b = log(&[(0, 1), (1, 2), (2, 5), (3, 3), (4, 3)]);
        let HealVerdict::Decided(from_a) = heal_verdict(&a, &b) else {
            panic!("a decides");
        };
        let HealVerdict::Decided(from_b) = heal_verdict(&b, &a) else {
            panic!("b decides");
        };
        assert_eq!(from_a.fork_epoch, 2);
        assert_eq!(from_a.rule, HealRule::ForkPoint);
        assert!(from_a.they_win, "b's 5 is lower than a's 9 at epoch 2");
        assert!(!from_b.they_win);
        assert_eq!(from_b.fork_epoch, 2);
    }

    #[test]
    fn a_member_behind_on_the_same_branch_is_no_fork() {
        let a = log(&[(0, 1), (1, 2), (2, 3)]);
        let b = log(&[(0, 1), (1, 2)]);
        assert_eq!(heal_verdict(&a, &b), HealVerdict::NoFork);
        assert_eq!(heal_verdict(&b, &a), HealVerdict::NoFork);
    }

    #[test]
    fn a_log_that_does_not_reach_the_fork_point_decides_nothing() {
        // A joiner's short log starts after the fork.
        let founder = log(&[(0, 1), (1, 2), (2, 9), (3, 9), (4, 9)]);
        let joiner = log(&[(3, 4), (4, 4), (5, 4)]);
        assert_eq!(heal_verdict(&founder, &joiner), HealVerdict::Undecided);
        assert_eq!(heal_verdict(&joiner, &founder), HealVerdict::Undecided);
    }

    #[test]
    fn full_logs_that_miss_the_fork_point_fall_back_to_the_oldest_common_epoch() {
        let n = MAX_LOG_ENTRIES as u64;
        let a: Vec<_> = (10..10 + n).map(|e| (e, r(7))).collect();
        let b: Vec<_> = (20..20 + n).map(|e| (e, r(3))).collect();
        let HealVerdict::Decided(d) = heal_verdict(&a, &b) else {
            panic!("full logs decide");
        };
        assert_eq!(
            (d.fork_epoch, d.rule, d.they_win),
            (20, HealRule::OldestCommon, true)
        );
        let HealVerdict::Decided(back) = heal_verdict(&b, &a) else {
            panic!("full logs decide");
        };
        assert!(!back.they_win);
        // No common epoch at all: the log remembering further back wins.
        let c: Vec<_> = (5000..5000 + n).map(|e| (e, r(1))).collect();
        let HealVerdict::Decided(d) = heal_verdict(&c, &a) else {
            panic!("full logs decide");
        };
        assert_eq!((d.rule, d.they_win), (HealRule::OldestRemembered, true));
        let HealVerdict::Decided(d) = heal_verdict(&a, &c) else {
            panic!("full logs decide");
        };
        assert!(!d.they_win);
    }

    #[test]
    fn the_first_difference_with_a_beacon_log_is_found() {
        let mine = log(&[(5, 1), (6, 1), (7, 1)]);
        assert_eq!(
            first_difference(&mine, &log(&[(6, 1), (7, 2), (8, 2)])),
            Some(7)
        );
        assert_eq!(first_difference(&mine, &log(&[(7, 1), (8, 2)])), None);
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    #[test]
    fn a_group_info_is_recognised_as_signed_by_its_signer_only() {
        let provider = OpenMlsRustCrypto::default();
        let signer =
            SignatureKeyPair::new(super::super::CIPHERSUITE.signature_algorithm()).unwrap();
        let other = SignatureKeyPair::new(super::super::CIPHERSUITE.signature_algorithm()).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(b"a".to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let group = MlsGroup::builder()
            .ciphersuite(super::super::CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .build(&provider, &signer, credential)
            .unwrap();
        let info = group
            .export_group_info(provider.crypto(), &signer, true)
            .unwrap();
        let bytes = wire_bytes(&info).unwrap();
        assert!(signed_by_one_of(&bytes, &[(0, signer.public().to_vec())]));
        assert!(!signed_by_one_of(&bytes, &[(0, other.public().to_vec())]));
        // The member at the signer's index (0) is tried first; a signer whose leaf moved
        // (index 5 here) is still found among the rest.
        let (s, o) = (signer.public().to_vec(), other.public().to_vec());
        assert!(signed_by_one_of(&bytes, &[(3, o.clone()), (0, s.clone())]));
        assert!(signed_by_one_of(&bytes, &[(0, o.clone()), (5, s)]));
        assert!(!signed_by_one_of(&bytes, &[(0, o.clone()), (5, o)]));
        let mut tampered = bytes.clone();
        tampered[10] ^= 1;
        assert!(!signed_by_one_of(
            &tampered,
            &[(0, signer.public().to_vec())]
        ));
    }
}
