//! What goes into the engine and what comes out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::storage::BranchId;
use crate::wire::{CommitRef, GroupRef, MessageId};

use super::consistency::ConsistencyMode;
use super::tie_break::TieBreak;

/// No past epochs. Every held state is the group at its epoch, kept for the window, and
/// application messages are tried on the held state of their epoch, so secrets of older
/// epochs inside each state duplicate what the held states are for; and they outlived the
/// window (the states were pruned for forward secrecy, their message keys stayed in the
/// head). They were not free either: openmls rewrites them, with the member list of each past
/// epoch, on every message it reads: with 1 past epoch in 50-member groups that was a fifth of
/// `chorus-sim bench --case large`'s CPU time (and with 8, a third of the property tests').
pub const DEFAULT_MAX_PAST_EPOCHS: usize = 0;

/// openmls's default (5) assumes a DS that delivers each sender's messages nearly in order. A
/// gossip DS does not: a message lost on gossip comes back by anti-entropy seconds to minutes
/// later, after everything its sender sent since, and after a partition heals a whole
/// partition's worth of one sender's messages arrives in random order. 256 covered a sender
/// writing one message every 2 s through a 5-minute window (the longest window the simulator
/// sweeps). It did not cover a fast sender: with one sender at ~1,300 messages a second on a
/// saturated machine, gossip's paths (direct, and forwarded by a third node) drifted apart by
/// more than 256 of its messages, and a receiver refused the late ones (`chorus bench
/// --messages 8000 --in-flight 64` failed in 2 of 4 runs at 256, in none of 5 at 1024, nor in 2
/// with 256 in flight). The cost is bounded and only paid for gaps: openmls keeps a key only
/// for a generation skipped and not yet read (one read in order leaves an empty slot of one
/// byte), so at most 1,024 keys (~44 bytes each) per sender and epoch, and only while messages
/// are actually missing. Those keys are what forward secrecy inside an epoch gives up for late
/// messages; they go with the epoch (and a message later than this is refused with an event
/// saying so, never dropped silently).
pub const DEFAULT_OUT_OF_ORDER_TOLERANCE: u32 = 1024;

/// openmls's default: a receiver derives at most this many keys to catch up with a sender.
pub const DEFAULT_MAXIMUM_FORWARD_DISTANCE: u32 = 1000;

/// Engine configuration. The window and the held-state bound are what simulations sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a state that stopped being the active head is kept, in ms (DESIGN §4 item 7).
    pub window_ms: u64,
    /// At most this many held states per group, the active head included.
    pub max_held: usize,
    /// How competing branches are ranked.
    pub policy: TieBreak,
    /// How often a beacon is published on each group topic, in ms.
    pub beacon_interval_ms: u64,
    /// Out-of-order messages kept per group, waiting for the commit that makes them readable.
    pub max_buffered: usize,
    /// Past epochs openmls keeps message secrets for in every state. Late application
    /// messages are read with the held state of their epoch (DESIGN §4 item 4); this only
    /// spares loading that state for the commonest race (a message sent just before a commit,
    /// arriving just after it). See [`DEFAULT_MAX_PAST_EPOCHS`].
    pub max_past_epochs: usize,
    /// How many generations behind the newest one read a sender's message may still be
    /// decrypted (openmls keeps that many unused message keys per sender and epoch). See
    /// [`DEFAULT_OUT_OF_ORDER_TOLERANCE`].
    pub out_of_order_tolerance: u32,
    /// How many generations ahead of the newest one read a sender's message may be (openmls
    /// ratchets forward that far at most; a message further ahead is refused).
    pub maximum_forward_distance: u32,
    /// Wire size limits.
    pub limits: crate::wire::WireLimits,
    /// How long a KeyPackage this member makes stays valid, in ms.
    pub key_package_lifetime_ms: u64,
    /// How groups order concurrent commits unless `group_consistency` names them. Every
    /// member of a group must use the same mode.
    pub consistency: ConsistencyMode,
    /// The mode of particular groups, overriding `consistency`.
    pub group_consistency: BTreeMap<GroupRef, ConsistencyMode>,
    /// Keep every message read in the store until the embedder calls
    /// [`Engine::confirm_delivered`](super::Engine::confirm_delivered), and hand back the
    /// unconfirmed ones through [`Engine::undelivered`](super::Engine::undelivered): for an
    /// embedder whose own copy of a message (its history) is written after the engine's step,
    /// so that a crash in between loses nothing. Off by default (the simulator keeps no
    /// history of its own).
    pub confirm_delivery: bool,
    /// Keep every envelope queued for publishing in the store until the embedder calls
    /// [`Engine::confirm_published`](super::Engine::confirm_published), and hand back the
    /// unconfirmed ones through [`Engine::take_unpublished`](super::Engine::take_unpublished):
    /// for an embedder that publishes after the engine's step, so that a crash in between
    /// does not leave a state (an own commit, a ratchet step) that no one else hears of. With
    /// `confirm_delivery` as well, an own message is kept among the undelivered ones in the
    /// step that sends it, so its history entry cannot be missing either. Off by default
    /// (the simulator does not crash).
    pub confirm_publish: bool,
    /// Who may read an own message sent again after a branch switch, a heal or a member's
    /// ask (see [`ResendPolicy`]).
    pub resend_policy: ResendPolicy,
}

/// Who may read an own message that this member sends again (after a switch to another
/// branch, after a heal, or because a member asked for it).
///
/// A message is sent again on the group's state of the moment, whose members may not be the
/// ones it was first sent to: a member added on the other side of a split, or by a commit this
/// member had not applied when it sent, reads it there although it was not in the group the
/// message was sent to. The two policies trade delivery against that exposure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResendPolicy {
    /// Send every message again, so that nothing is lost: a member added concurrently with a
    /// message (on the other side of a split) may read it. The default.
    #[default]
    Everyone,
    /// Send a message again only if every member of the group now was a member when it was
    /// first sent, as this member noted then (the members of each epoch it sent on, for its
    /// last 64 epochs, in memory). Otherwise it is withheld (`Event::ResendWithheld`) and
    /// members that had not read it never will: no newcomer reads what was said before it
    /// joined, at the price of losing those messages for the others.
    MembersAtSend,
}

impl std::str::FromStr for ResendPolicy {
    type Err = String;

    /// `everyone` or `members-at-send`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "everyone" => Ok(ResendPolicy::Everyone),
            "members-at-send" => Ok(ResendPolicy::MembersAtSend),
            other => Err(format!(
                "unknown resend policy {other:?}: use everyone or members-at-send"
            )),
        }
    }
}

impl std::fmt::Display for ResendPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResendPolicy::Everyone => "everyone",
            ResendPolicy::MembersAtSend => "members-at-send",
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            max_held: 16,
            policy: TieBreak::default(),
            beacon_interval_ms: 30_000,
            max_buffered: 256,
            max_past_epochs: DEFAULT_MAX_PAST_EPOCHS,
            out_of_order_tolerance: DEFAULT_OUT_OF_ORDER_TOLERANCE,
            maximum_forward_distance: DEFAULT_MAXIMUM_FORWARD_DISTANCE,
            limits: crate::wire::WireLimits::default(),
            key_package_lifetime_ms: 90 * 24 * 3600 * 1000,
            consistency: ConsistencyMode::default(),
            group_consistency: BTreeMap::new(),
            confirm_delivery: false,
            confirm_publish: false,
            resend_policy: ResendPolicy::default(),
        }
    }
}

/// A user's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create a group with this member alone in it.
    CreateGroup,
    /// Add the owner of an MLS KeyPackage (RFC 9420 bytes) and send them a Welcome.
    Invite {
        group: GroupRef,
        key_package: Vec<u8>,
    },
    /// Remove the member whose credential identity is `member`.
    Remove { group: GroupRef, member: Vec<u8> },
    /// Commit a fresh leaf key (post-compromise security).
    SelfUpdate { group: GroupRef },
    /// Ask to leave: a self-Remove proposal that another member commits.
    Leave { group: GroupRef },
    /// Send an application message.
    Send { group: GroupRef, body: Vec<u8> },
}

/// What the engine wants done or reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Publish an encoded envelope on a gossip topic (and keep it in the topic's log).
    Publish { topic: String, envelope: Vec<u8> },
    /// Something the user should learn.
    Event(Event),
}

/// What happened, for the user (API, chat) and for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A group was created or joined.
    GroupJoined { group: GroupRef, epoch: u64 },
    /// An application message, delivered once per id.
    Message {
        group: GroupRef,
        id: MessageId,
        sender: Vec<u8>,
        sent_at_ms: u64,
        body: Vec<u8>,
    },
    /// The active branch moved to a new epoch.
    EpochChanged {
        group: GroupRef,
        epoch: u64,
        branch_id: [u8; 16],
    },
    /// Members of the active branch changed.
    MembershipChanged {
        group: GroupRef,
        members: Vec<Vec<u8>>,
    },
    /// A second commit arrived for an epoch that already had one: the group forked.
    ForkDetected {
        group: GroupRef,
        epoch: u64,
        commits: Vec<CommitRef>,
    },
    /// A commit or beacon from a fork point no longer held (beyond the window). The member
    /// offers its branch to the other side (a GroupInfo envelope); which side wins is decided
    /// from the two public logs, and the losing side rejoins (see [`Event::SplitHealed`]).
    ForkBeyondWindow { group: GroupRef, epoch: u64 },
    /// This member's side lost a split older than the window, and it rejoined the winning
    /// branch by an external commit.
    SplitHealed {
        group: GroupRef,
        /// The epoch the two sides' commits were made on (as far as the logs tell).
        fork_epoch: u64,
        /// The epoch and branch id it joined at.
        epoch: u64,
        branch_id: [u8; 16],
        /// Own messages sent on the losing side since the fork, re-sent in the order they
        /// were sent (same id and send time; receivers drop the ones they have).
        redelivered: Vec<MessageId>,
        /// Own Removes made on the losing side, scheduled to be re-done on the winning branch
        /// (after the usual re-issue delay, if still needed then).
        reapplied: usize,
    },
    /// A member from the other side of a split older than the window rejoined this member's
    /// branch (an external commit): this side won. This member re-sent its own messages sent
    /// since the fork, which the rejoiner could not read. Forks beyond the window reported
    /// below `epoch` afterwards are what is left of the healed split arriving late.
    SplitRejoined {
        group: GroupRef,
        /// Where the rejoiner's side parted from this one.
        fork_epoch: u64,
        /// This member's epoch once the rejoin was applied.
        epoch: u64,
        /// Own messages re-sent (same id and send time; receivers drop the ones they have).
        redelivered: Vec<MessageId>,
    },
    /// This member asked the group to send again messages that came too late to be read
    /// here (for a state it no longer holds; see `redelivery_asks`).
    RedeliveryAsked {
        group: GroupRef,
        ids: Vec<MessageId>,
    },
    /// This member sent own messages again because a member asked for them.
    RedeliveryAnswered {
        group: GroupRef,
        ids: Vec<MessageId>,
    },
    /// Under [`ResendPolicy::MembersAtSend`]: own messages that were due to be sent again
    /// (after a switch, a heal or an ask) and were not, because the group now has members
    /// that were not in it when they were sent.
    ResendWithheld {
        group: GroupRef,
        ids: Vec<MessageId>,
    },
    /// The active branch changed because the policy prefers another branch.
    BranchSwitched {
        group: GroupRef,
        from: BranchId,
        to: BranchId,
        epoch: u64,
        /// Own messages re-sent on the new branch.
        resent: Vec<MessageId>,
        /// Own lost membership changes scheduled to be re-done on it (after a short delay,
        /// if still needed then).
        reissued: usize,
    },
    /// This member, removed from the group on the state it was on, was added again by a
    /// later Welcome and follows it. Not a fork: the group's history went on from the removal.
    /// As after a switch, own messages the group may not have read are re-sent and own lost
    /// membership changes re-issued.
    Readded {
        group: GroupRef,
        epoch: u64,
        branch_id: [u8; 16],
        /// Own messages re-sent (same id and send time; receivers drop the ones they have).
        resent: Vec<MessageId>,
        /// Own lost membership changes scheduled to be re-done (after a short delay, if still
        /// needed then).
        reissued: usize,
    },
    /// The Add that brought this member in lost a fork and was not re-done: it is not in
    /// the group (a later Welcome brings it in again).
    JoinLost { group: GroupRef },
    /// This member was removed from the group on the active branch.
    Removed { group: GroupRef },
    /// A credential that does not certify its key: the commit, Welcome or KeyPackage carrying
    /// it was refused (every member decides this alike).
    InvalidCredential {
        group: Option<GroupRef>,
        reason: String,
    },
    /// A handle showed up with another identity key than the one pinned for it (TOFU): the
    /// user should compare safety numbers.
    KeyChanged {
        group: Option<GroupRef>,
        handle: String,
        pinned: String,
        offered: String,
    },
    /// Input that was refused; no state changed.
    Rejected {
        group: Option<GroupRef>,
        reason: String,
    },
    /// An inviter used this member's last-resort KeyPackage: publish a new bundle.
    LastResortKeyPackageUsed,
    /// Messages that could not be kept waiting (buffer full) were dropped.
    Dropped { group: GroupRef, count: usize },
}

impl EngineConfig {
    /// The consistency mode of `group`.
    pub fn consistency_of(&self, group: GroupRef) -> ConsistencyMode {
        self.group_consistency
            .get(&group)
            .copied()
            .unwrap_or(self.consistency)
    }

    /// The openmls sender-ratchet settings of every group this engine creates or joins.
    pub(crate) fn sender_ratchet(&self) -> openmls::prelude::SenderRatchetConfiguration {
        openmls::prelude::SenderRatchetConfiguration::new(
            self.out_of_order_tolerance,
            self.maximum_forward_distance,
        )
    }
}
