//! The JSON shapes the API answers with. Field names are stable: scripts depend on them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdView {
    pub handle: String,
    pub fingerprint: String,
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub invite_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub handle: String,
    pub fingerprint: String,
    /// Whether this node is connected to the member's node: known for yourself and your
    /// contacts, absent for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatusView {
    /// The group's wire reference (hex), which names its gossip topic.
    pub group_id: String,
    pub name: String,
    pub epoch: u64,
    /// The exporter-derived id of the active branch (hex); equal across members of a branch.
    pub branch_id: String,
    pub members: Vec<MemberView>,
    /// Branch states held: the active head, its recent ancestors (kept for the window so that
    /// late competing commits can fork from them) and competing branches.
    pub held_branches: usize,
    /// `settled` (no competing branch held), `resolving` (a competing branch is still held
    /// inside the fork window: the group could still switch to it) or `split` (a fork beyond
    /// the window was seen and not healed).
    pub fork: String,
    /// This member was removed (or its join lost) on the active branch.
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Delivery order on this node.
    pub seq: u64,
    pub id: String,
    pub sender: String,
    pub sender_fingerprint: String,
    pub sent_at_ms: u64,
    pub received_at_ms: u64,
    pub text: String,
    /// An own message the group's consistency mode holds back for now (`settle-then-pick`
    /// pauses sends while it settles a commit): stored, it goes out when the settle ends,
    /// after a restart too. Only in the reply to a send.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub name: String,
    pub handle: String,
    pub fingerprint: String,
    pub address: String,
    pub peer_id: String,
    pub verified: bool,
    /// The fingerprint of a different key offered for this contact and refused (TOFU), if any.
    pub pending_key_change: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyView {
    pub contact: String,
    /// The safety number of (you, them): compare it out of band.
    pub safety_number: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    /// The peer's gossipsub score as this node sees it (negative after invalid messages).
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub id: IdView,
    pub peers: Vec<PeerView>,
    pub groups: Vec<GroupStatusView>,
    /// What the node holds in memory (absent from nodes that do not report it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryView>,
}

/// A node's memory: its resident set, and how much of it the database's memtables and block
/// cache hold (bounded together by `db_memory_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryView {
    pub rss_bytes: Option<u64>,
    /// The allocator's bytes in use (the database's included) and freed-but-kept (glibc).
    pub heap_in_use_bytes: Option<u64>,
    pub heap_free_bytes: Option<u64>,
    pub db_memtables_bytes: u64,
    pub db_block_cache_bytes: u64,
}

/// One line of the event stream (`GET /v1/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventView {
    Message {
        group: String,
        message: MessageView,
    },
    GroupJoined {
        group: String,
        epoch: u64,
    },
    EpochChanged {
        group: String,
        epoch: u64,
        branch_id: String,
    },
    MembershipChanged {
        group: String,
        members: Vec<MemberView>,
    },
    ForkDetected {
        group: String,
        epoch: u64,
        commits: usize,
    },
    ForkBeyondWindow {
        group: String,
        epoch: u64,
    },
    BranchSwitched {
        group: String,
        epoch: u64,
        resent: usize,
        reissued: usize,
    },
    /// This member, removed earlier, was added to the group again (not a fork).
    Readded {
        group: String,
        epoch: u64,
        branch_id: String,
        resent: usize,
        reissued: usize,
    },
    Removed {
        group: String,
    },
    /// This member's side lost a split older than the window: it rejoined the winning
    /// branch, re-sent its messages from the losing side and re-did its Removes/Adds there.
    SplitHealed {
        group: String,
        /// The epoch the two sides parted at.
        fork_epoch: u64,
        epoch: u64,
        branch_id: String,
        redelivered: usize,
        reapplied: usize,
    },
    /// Own messages that were not sent again after a switch, a heal or an ask because the
    /// group now has members that were not in it when they were sent (the engine's
    /// `members-at-send` resend policy): members that had not read them never will.
    ResendWithheld {
        group: String,
        withheld: usize,
    },
    /// This member's side won a split older than the window: a member of the other side
    /// rejoined, and this member re-sent what it said since the fork (which they never read).
    SplitRejoined {
        group: String,
        fork_epoch: u64,
        epoch: u64,
        redelivered: usize,
    },
    /// The commit that added this member lost (a race in the window, or a split): it is out
    /// of the group until its inviter adds it again, which the inviter's node does by itself.
    JoinLost {
        group: String,
    },
    KeyChanged {
        group: Option<String>,
        handle: String,
        pinned: String,
        offered: String,
    },
    InvalidCredential {
        group: Option<String>,
        reason: String,
    },
    Rejected {
        group: Option<String>,
        reason: String,
    },
    PeerConnected {
        peer_id: String,
    },
    PeerDisconnected {
        peer_id: String,
    },
}
