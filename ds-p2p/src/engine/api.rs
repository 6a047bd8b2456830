//! What goes into the engine and what comes out.

use crate::storage::BranchId;
use crate::wire::{CommitRef, GroupRef, MessageId};

use super::tie_break::TieBreak;

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
    /// Past epochs openmls keeps message secrets for (late application messages).
    pub max_past_epochs: usize,
    /// Wire size limits.
    pub limits: crate::wire::WireLimits,
    /// How long a KeyPackage this member makes stays valid, in ms.
    pub key_package_lifetime_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            max_held: 16,
            policy: TieBreak::default(),
            beacon_interval_ms: 30_000,
            max_buffered: 256,
            max_past_epochs: 8,
            limits: crate::wire::WireLimits::default(),
            key_package_lifetime_ms: 90 * 24 * 3600 * 1000,
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
    /// A commit or beacon from a fork point no longer held (beyond the window).
    ForkBeyondWindow { group: GroupRef, epoch: u64 },
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
