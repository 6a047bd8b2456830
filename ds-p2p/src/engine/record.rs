//! What the engine keeps per group besides the MLS state, stored next to it so that one
//! atomic step writes both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fork_tree::ForkTree;
use crate::storage::BranchId;
use crate::wire::{CommitRef, MessageId};

/// An application message this member sent, kept so it can be re-sent if the branch it was
/// sent on loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub id: MessageId,
    pub sent_at_ms: u64,
    pub body: Vec<u8>,
    /// The held state it was (last) sent on.
    pub on: BranchId,
}

/// A membership change this member made, kept so it can be re-issued if its commit loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentKind {
    /// Add the owner of this KeyPackage (RFC 9420 bytes).
    Add { key_package: Vec<u8> },
    /// Remove the member with this credential identity.
    Remove { member: Vec<u8> },
    /// A fresh leaf key for this member.
    Update,
}

/// An intent and the state its commit created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub kind: IntentKind,
    pub on: BranchId,
    pub made_at_ms: u64,
}

/// The engine's record of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// The held branch states.
    pub tree: ForkTree,
    /// The state openmls currently works on.
    pub active: BranchId,
    /// Own application messages still inside the window.
    pub sent: Vec<SentMessage>,
    /// Own membership changes still inside the window.
    pub intents: Vec<Intent>,
    /// Application message ids already delivered (or sent), with when they were first seen.
    pub seen: BTreeMap<MessageId, u64>,
    /// The public log of the active branch: (epoch the commit was made on, commit ref), oldest
    /// first, bounded. Lets two members find their fork point, and recognises old commits.
    pub log: Vec<(u64, CommitRef)>,
    /// When the next beacon is due.
    pub next_beacon_ms: u64,
    /// Leave requests seen and not yet committed.
    pub pending_leaves: Vec<super::leave::PendingLeave>,
    /// The epoch this member joined at; older commits are history, not forks.
    pub joined_epoch: u64,
    /// Commit refs of the Welcomes this member used, so a redelivered one is recognised.
    pub welcomes: Vec<CommitRef>,
}
