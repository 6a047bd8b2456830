//! What the engine keeps per group besides the MLS state, stored next to it so that one
//! atomic step writes both.

use serde::{Deserialize, Serialize};

use super::fork_tree::ForkTree;
pub use super::window_lists::{SeenIds, SentList};
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
    /// SHA-256 of this member's leaf node before the commit: a lost Update needs doing again
    /// only while the active branch still has that leaf (no other own commit refreshed it).
    pub leaf_before: [u8; 32],
}

/// A lost intent waiting to be committed again on the active branch (DESIGN §4 item 5).
///
/// It is not re-done at the switch that displaced it: the member may have seen only part of
/// the competing commits, and every other loser of the same race would re-issue at the same
/// instant, racing again. It waits a short, seeded delay, then is re-done only if the active
/// branch still needs it (see [`Intent::leaf_before`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reissue {
    pub kind: IntentKind,
    pub leaf_before: [u8; 32],
    /// When it is re-done (if still needed).
    pub due_ms: u64,
}

/// How many (epoch, commit ref) entries the public log keeps: enough to recognise commits
/// redelivered by sync long after, small enough that the record (re-encoded on every step)
/// stays small.
pub const MAX_LOG_ENTRIES: usize = 1024;

/// The engine's record of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// The held branch states.
    pub tree: ForkTree,
    /// The state openmls currently works on.
    pub active: BranchId,
    /// Own application messages still inside the window (stored apart: see `window_lists`).
    pub sent: SentList,
    /// Own membership changes still inside the window.
    pub intents: Vec<Intent>,
    /// Lost intents waiting to be re-done.
    pub reissues: Vec<Reissue>,
    /// Application message ids already delivered (or sent), with when they were first seen
    /// (stored apart: see `window_lists`).
    pub seen: SeenIds,
    /// The public log of the active branch: (epoch the commit was made on, commit ref), oldest
    /// first, bounded. Lets two members find their fork point, and recognises old commits.
    pub log: Vec<(u64, CommitRef)>,
    /// Refs of the commits this member applied or made, newest last, bounded like the log: a
    /// commit coming back (sync) after its state was pruned is recognised, not applied again.
    pub known: Vec<CommitRef>,
    /// When the next beacon is due.
    pub next_beacon_ms: u64,
    /// Leave requests seen and not yet committed.
    pub pending_leaves: Vec<super::leave::PendingLeave>,
    /// The epoch this member joined at; older commits are history, not forks.
    pub joined_epoch: u64,
    /// Commit refs of the Welcomes this member used, so a redelivered one is recognised.
    pub welcomes: Vec<CommitRef>,
}

impl GroupRecord {
    /// Runs `f` on the record with its `sent` and `seen` lists taken out (empty), then puts
    /// them back: for what concerns the rest of the record only — its encoding (the lists are
    /// stored apart) and the copy a step keeps to roll back to (the lists undo themselves).
    pub(crate) fn with_lists_apart<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let sent = std::mem::take(&mut self.sent);
        let seen = std::mem::take(&mut self.seen);
        let out = f(self);
        self.sent = sent;
        self.seen = seen;
        out
    }

    /// Queues lost intents for re-issue at `due_ms`, each once (one already waiting for the
    /// same change is kept as it is). Returns how many were newly queued.
    pub fn queue_reissues(&mut self, lost: Vec<Intent>, due_ms: u64) -> usize {
        let mut queued = 0;
        for intent in lost {
            let known = self
                .reissues
                .iter()
                .any(|r| r.kind == intent.kind && r.leaf_before == intent.leaf_before);
            if !known {
                self.reissues.push(Reissue {
                    kind: intent.kind,
                    leaf_before: intent.leaf_before,
                    due_ms,
                });
                queued += 1;
            }
        }
        queued
    }

    /// Appends to the public log, dropping its oldest entries beyond [`MAX_LOG_ENTRIES`].
    pub fn log_commit(&mut self, entry: (u64, CommitRef)) {
        if self.log.contains(&entry) {
            return;
        }
        self.log.push(entry);
        if self.log.len() > MAX_LOG_ENTRIES {
            let excess = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..excess);
        }
    }

    /// Remembers a commit as applied (see [`GroupRecord::known`]).
    pub fn know_commit(&mut self, commit_ref: CommitRef) {
        if self.known.contains(&commit_ref) {
            return;
        }
        self.known.push(commit_ref);
        if self.known.len() > MAX_LOG_ENTRIES {
            let excess = self.known.len() - MAX_LOG_ENTRIES;
            self.known.drain(..excess);
        }
    }

    /// Makes the log the path to a new head: `path` is (epoch made on, ref) of the held
    /// states from the oldest held ancestor down to the head. Entries at those epochs from
    /// branches left behind are dropped, so beacons show only the active branch.
    pub fn log_path(&mut self, path: &[(u64, CommitRef)]) {
        if let Some((first, _)) = path.first() {
            self.log.retain(|(epoch, _)| epoch < first);
        }
        for entry in path {
            self.log_commit(*entry);
        }
    }

    /// The active branch now grows from the state a Welcome made (`joined`, via the Add
    /// `add`). A later Welcome — an Add re-done after the first one lost — brings this member
    /// into a lineage it holds nothing of below the Add: what the log remembers there is the
    /// lost lineage's, which is not this branch's history, and beyond-window healing would
    /// read it as a split (one that every other member would judge alike, as a split from
    /// this member). So the log restarts at the Add, and commits older than it are history.
    pub fn follow_welcome_root(&mut self, joined: u64, add: CommitRef) {
        let Some(position) = self.welcomes.iter().position(|w| *w == add) else {
            return; // not a Welcome (a pruned parent, or an external commit's own state)
        };
        self.joined_epoch = joined;
        if position > 0 {
            let made_on = joined.saturating_sub(1);
            self.log.retain(|(epoch, _)| *epoch >= made_on);
        }
    }

    /// Whether the log holds another commit made on `epoch` than `commit_ref`: that commit
    /// is from a branch that parted from the active one at or below `epoch`.
    pub fn log_differs_at(&self, epoch: u64, commit_ref: &CommitRef) -> bool {
        self.log
            .iter()
            .any(|(on, r)| *on == epoch && r != commit_ref)
    }

    /// Whether a commit made on `epoch` is older than everything the log remembers (the log
    /// is full and starts later): history, not a fork.
    pub fn before_log(&self, epoch: u64) -> bool {
        self.log.len() >= MAX_LOG_ENTRIES
            && self.log.first().is_some_and(|(first, _)| epoch < *first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> GroupRecord {
        GroupRecord {
            group_id: Vec::new(),
            tree: ForkTree::default(),
            active: BranchId(0),
            sent: Default::default(),
            intents: Vec::new(),
            reissues: Vec::new(),
            seen: Default::default(),
            log: Vec::new(),
            known: Vec::new(),
            next_beacon_ms: 0,
            pending_leaves: Vec::new(),
            joined_epoch: 0,
            welcomes: Vec::new(),
        }
    }

    fn entry(epoch: u64) -> (u64, CommitRef) {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&epoch.to_be_bytes());
        (epoch, CommitRef(bytes))
    }

    #[test]
    fn the_log_keeps_the_newest_entries_once_each() {
        let mut record = record();
        let total = MAX_LOG_ENTRIES as u64 + 10;
        for epoch in 0..total {
            record.log_commit(entry(epoch));
            record.log_commit(entry(epoch));
        }
        assert_eq!(record.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(record.log.first(), Some(&entry(10)));
        assert_eq!(record.log.last(), Some(&entry(total - 1)));
        assert!(record.before_log(9));
        assert!(!record.before_log(10));
    }

    #[test]
    fn a_new_path_replaces_the_entries_of_the_branch_left_behind() {
        let mut record = record();
        for epoch in 0..5 {
            record.log_commit(entry(epoch));
        }
        let mut other = entry(3);
        other.1.0[31] = 1;
        record.log_path(&[other, entry(4)]);
        assert_eq!(
            record.log,
            vec![entry(0), entry(1), entry(2), other, entry(4)]
        );
    }

    #[test]
    fn a_short_log_claims_nothing_is_before_it() {
        let mut record = record();
        record.log_commit(entry(50));
        assert!(!record.before_log(3));
    }
}
