//! The two parts of a group record that grow with traffic — the member's own messages kept
//! for re-sending ([`SentList`]) and the ids already delivered ([`SeenIds`]) — are stored one
//! key per entry beside the record, and saved as the entries changed since the last save: a
//! step that sends or delivers one message writes one key, not both lists again.
//!
//! ```text
//! s <group ref 16> <sent at, ms: u64 BE> <message id 16>   -> SentMessage
//! n <group ref 16> <message id 16>                         -> first seen at, ms (u64 BE)
//! ```
//!
//! Sent entries are keyed by send time so that a restarted engine re-sends in the order they
//! were sent (messages sent within the same millisecond: by id). A record stored before this
//! layout still carries both lists inline; it loads as before, and its first save moves them
//! out.
//!
//! Each list keeps a journal of its changes, for two reasons, both about cost per message:
//! a save writes the entries changed since the last save (it does not compare the lists with
//! what is stored), and a failed step undoes its own changes (the engine does not copy both
//! lists — the whole window — before every step to put them back). Re-encoding both lists on
//! every step made each message cost more the more messages the window held; copying them
//! for the rollback did the same.

mod seen;
mod sent;
#[cfg(test)]
mod tests;

pub use seen::SeenIds;
pub use sent::SentList;

use std::collections::BTreeSet;

use super::EngineError;
use super::record::{GroupRecord, SentMessage};
use crate::storage::{StagedStore, StorageError};
use crate::wire::{GroupRef, MessageId};

const SENT: u8 = b's';
const SEEN: u8 = b'n';
/// One own message: its body is at most an application message.
const MAX_SENT_BYTES: usize = 2 * 1024 * 1024;

fn prefix(tag: u8, group: &GroupRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 16 + 8 + 16);
    key.push(tag);
    key.extend_from_slice(&group.0);
    key
}

fn sent_key(group: &GroupRef, sent_at_ms: u64, id: &MessageId) -> Vec<u8> {
    let mut key = prefix(SENT, group);
    key.extend_from_slice(&sent_at_ms.to_be_bytes());
    key.extend_from_slice(&id.0);
    key
}

fn seen_key(group: &GroupRef, id: &MessageId) -> Vec<u8> {
    let mut key = prefix(SEEN, group);
    key.extend_from_slice(&id.0);
    key
}

fn corrupt(detail: impl Into<String>) -> EngineError {
    EngineError::Storage(StorageError::Corrupt {
        what: "group message list",
        detail: detail.into(),
    })
}

/// The changes one step made to a list, kept until the step ends so that a failed step can
/// be undone (`U`: how to undo one change), and the keys that were waiting for a save when
/// it began (`K`), which a failed step's discarded save did not write.
#[derive(Debug, Clone)]
struct StepJournal<U, K> {
    undo: Vec<U>,
    dirty_before: BTreeSet<K>,
}

impl<U, K> Default for StepJournal<U, K> {
    fn default() -> Self {
        Self {
            undo: Vec::new(),
            dirty_before: BTreeSet::new(),
        }
    }
}

/// Adds the lists stored for `group` to `record` (after what a record stored before this
/// layout carried inline, which the first save moves out).
pub(crate) fn load(
    staged: &StagedStore,
    group: &GroupRef,
    record: &mut GroupRecord,
) -> Result<(), EngineError> {
    let mut sent = Vec::new();
    for (key, value) in staged
        .scan_prefix(&prefix(SENT, group))
        .map_err(StorageError::from)?
    {
        let message: SentMessage = identity_tofu::codec::decode(&value, MAX_SENT_BYTES)
            .map_err(|e| corrupt(format!("sent message {}: {e}", hex::encode(&key))))?;
        if key != sent_key(group, message.sent_at_ms, &message.id) {
            return Err(corrupt(format!(
                "sent message under a foreign key {}",
                hex::encode(&key)
            )));
        }
        sent.push(message);
    }
    let mut seen = Vec::new();
    for (key, value) in staged
        .scan_prefix(&prefix(SEEN, group))
        .map_err(StorageError::from)?
    {
        let id: [u8; 16] = key[17..]
            .try_into()
            .map_err(|_| corrupt(format!("seen key {}", hex::encode(&key))))?;
        let at: [u8; 8] = value
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(format!("seen time under {}", hex::encode(&key))))?;
        seen.push((MessageId(id), u64::from_be_bytes(at)));
    }
    record.sent.add_stored(sent);
    record.seen.add_stored(seen);
    Ok(())
}

/// Stages the entries of `record`'s lists changed since the last save.
pub(crate) fn save(
    staged: &StagedStore,
    group: &GroupRef,
    record: &mut GroupRecord,
) -> Result<(), EngineError> {
    record.sent.save(staged, group)?;
    record.seen.save(staged, group)
}
