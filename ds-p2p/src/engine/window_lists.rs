//! The two parts of a group record that grow with traffic — the member's own messages kept
//! for re-sending (`sent`) and the ids already delivered (`seen`) — are stored one key per
//! entry beside the record, and saved as differences: a step that sends or delivers one
//! message writes one key, not both lists again. (Re-encoding both lists inside the record on
//! every step made each message cost more the more messages the window held: with a thousand
//! own messages in the window, every step wrote ~300 KB.)
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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::EngineError;
use super::record::{GroupRecord, SentMessage};
use crate::storage::{BranchId, StagedStore, StorageError};
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

/// What the store holds of one group's `sent` and `seen`, so that a save writes only what
/// changed. Kept in memory beside the record; rebuilt from the store when a step that saved
/// is rolled back.
#[derive(Debug, Default)]
pub(crate) struct StoredLists {
    /// (id, sent at, the state it was last sent on) of each stored own message, in the
    /// record's order, so that a save finds the changed stretch by comparing the two lists
    /// from both ends.
    sent: Vec<(MessageId, u64, BranchId)>,
    seen: BTreeSet<MessageId>,
    /// Set by a save; the engine clears it when the step ends, and reloads this from the
    /// store if the step was rolled back.
    pub saved_in_step: bool,
}

/// Everything stored for a group: what the store holds, its own messages in key (send) order,
/// and its seen ids with their times.
type Scanned = (StoredLists, Vec<SentMessage>, Vec<(MessageId, u64)>);

fn scan(staged: &StagedStore, group: &GroupRef) -> Result<Scanned, EngineError> {
    let mut stored = StoredLists::default();
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
        stored
            .sent
            .push((message.id, message.sent_at_ms, message.on));
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
        stored.seen.insert(MessageId(id));
        seen.push((MessageId(id), u64::from_be_bytes(at)));
    }
    Ok((stored, sent, seen))
}

impl StoredLists {
    /// Adds a group's stored lists to `record` (after what a record stored before this layout
    /// carried inline) and returns what the store holds.
    pub fn load(
        staged: &StagedStore,
        group: &GroupRef,
        record: &mut GroupRecord,
    ) -> Result<Self, EngineError> {
        let (stored, sent, seen) = scan(staged, group)?;
        let inline: BTreeSet<MessageId> = record.sent.iter().map(|m| m.id).collect();
        record
            .sent
            .extend(sent.into_iter().filter(|m| !inline.contains(&m.id)));
        for (id, at) in seen {
            record.seen.entry(id).or_insert(at);
        }
        Ok(stored)
    }

    /// What the store holds (after a rolled-back step).
    pub fn read(staged: &StagedStore, group: &GroupRef) -> Result<Self, EngineError> {
        Ok(scan(staged, group)?.0)
    }

    /// Stages the differences between `record`'s lists and the store. A step changes a few
    /// entries of lists that hold the whole window, so the work here is a comparison of the
    /// lists and a write per changed entry — no encoding of unchanged ones.
    pub fn save(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
        record: &GroupRecord,
    ) -> Result<(), EngineError> {
        self.saved_in_step = true;
        self.save_sent(staged, group, &record.sent)?;
        self.save_seen(staged, group, &record.seen)
    }

    fn save_sent(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
        sent: &[SentMessage],
    ) -> Result<(), EngineError> {
        let same = |m: &SentMessage, e: &(MessageId, u64, BranchId)| {
            m.id == e.0 && m.sent_at_ms == e.1 && m.on == e.2
        };
        let (old, new) = (&self.sent, sent);
        let prefix = old.iter().zip(new).take_while(|(e, m)| same(m, e)).count();
        let suffix = old[prefix..]
            .iter()
            .rev()
            .zip(new[prefix..].iter().rev())
            .take_while(|(e, m)| same(m, e))
            .count();
        let old_middle = &old[prefix..old.len() - suffix];
        let new_middle = &new[prefix..new.len() - suffix];
        if old_middle.is_empty() && new_middle.is_empty() {
            return Ok(());
        }
        let mut stale: BTreeMap<MessageId, u64> =
            old_middle.iter().map(|(id, at, _)| (*id, *at)).collect();
        for m in new_middle {
            match stale.remove(&m.id) {
                Some(at) if at != m.sent_at_ms => staged
                    .delete(sent_key(group, at, &m.id))
                    .map_err(StorageError::from)?,
                _ => {}
            }
            let bytes = identity_tofu::codec::encode(m).map_err(|e| {
                EngineError::Refused(format!("a sent message cannot be encoded: {e}"))
            })?;
            staged
                .put(sent_key(group, m.sent_at_ms, &m.id), bytes)
                .map_err(StorageError::from)?;
        }
        for (id, at) in stale {
            staged
                .delete(sent_key(group, at, &id))
                .map_err(StorageError::from)?;
        }
        self.sent = sent.iter().map(|m| (m.id, m.sent_at_ms, m.on)).collect();
        Ok(())
    }

    fn save_seen(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
        seen: &BTreeMap<MessageId, u64>,
    ) -> Result<(), EngineError> {
        // Both are ordered by id: one pass over the two finds what was added and removed.
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        let mut old = self.seen.iter().peekable();
        let mut new = seen.iter().peekable();
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(o), None) => {
                    removed.push(**o);
                    old.next();
                }
                (None, Some((id, at))) => {
                    added.push((**id, **at));
                    new.next();
                }
                (Some(o), Some((id, at))) => match (*o).cmp(id) {
                    Ordering::Equal => {
                        old.next();
                        new.next();
                    }
                    Ordering::Less => {
                        removed.push(**o);
                        old.next();
                    }
                    Ordering::Greater => {
                        added.push((**id, **at));
                        new.next();
                    }
                },
            }
        }
        for (id, at) in added {
            staged
                .put(seen_key(group, &id), at.to_be_bytes().to_vec())
                .map_err(StorageError::from)?;
            self.seen.insert(id);
        }
        for id in removed {
            staged
                .delete(seen_key(group, &id))
                .map_err(StorageError::from)?;
            self.seen.remove(&id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use identity_tofu::kv::{KvStore, MemoryStore};

    use super::*;
    use crate::engine::fork_tree::ForkTree;

    fn record(sent: &[(u8, u64)], seen: &[(u8, u64)]) -> GroupRecord {
        GroupRecord {
            group_id: vec![1],
            tree: ForkTree::default(),
            active: BranchId(1),
            sent: sent
                .iter()
                .map(|(id, at)| SentMessage {
                    id: MessageId([*id; 16]),
                    sent_at_ms: *at,
                    body: vec![*id; 100],
                    on: BranchId(1),
                })
                .collect(),
            intents: Vec::new(),
            reissues: Vec::new(),
            seen: seen
                .iter()
                .map(|(id, at)| (MessageId([*id; 16]), *at))
                .collect(),
            log: Vec::new(),
            known: Vec::new(),
            next_beacon_ms: 0,
            pending_leaves: Vec::new(),
            joined_epoch: 0,
            welcomes: Vec::new(),
        }
    }

    fn keys(kv: &MemoryStore) -> usize {
        kv.scan_prefix(b"").unwrap().len()
    }

    #[test]
    fn saves_write_differences_and_load_restores_the_lists_in_send_order() {
        let kv = Arc::new(MemoryStore::new());
        let staged = StagedStore::new(kv.clone());
        let group = GroupRef([7; 16]);
        let mut lists = StoredLists::default();
        // Sent out of id order: 3 before 2.
        let mut r = record(&[(3, 10), (2, 20)], &[(3, 10), (2, 20), (9, 15)]);
        lists.save(&staged, &group, &r).unwrap();
        assert_eq!(keys(&kv), 5);

        // One more message, one pruned, one moved to another state.
        r.sent.retain(|m| m.id != MessageId([3; 16]));
        r.sent[0].on = BranchId(4);
        r.sent.push(SentMessage {
            id: MessageId([5; 16]),
            sent_at_ms: 30,
            body: b"new".to_vec(),
            on: BranchId(4),
        });
        r.seen.remove(&MessageId([9; 16]));
        r.seen.insert(MessageId([5; 16]), 30);
        lists.save(&staged, &group, &r).unwrap();
        assert_eq!(keys(&kv), 5, "2 sent + 3 seen");

        let mut loaded = record(&[], &[]);
        let stored = StoredLists::load(&staged, &group, &mut loaded).unwrap();
        assert_eq!(
            loaded.sent, r.sent,
            "same messages, same order, same states"
        );
        assert_eq!(loaded.seen, r.seen);
        assert_eq!(stored.sent, lists.sent);
        assert_eq!(stored.seen, lists.seen);

        // Nothing changed: a save writes nothing.
        staged.begin().unwrap();
        lists.save(&staged, &group, &r).unwrap();
        assert!(lists.saved_in_step);
        staged.rollback().unwrap();
        assert_eq!(StoredLists::read(&staged, &group).unwrap().sent, lists.sent);
    }

    #[test]
    fn a_record_with_inline_lists_loads_them_and_its_first_save_moves_them_out() {
        let kv = Arc::new(MemoryStore::new());
        let staged = StagedStore::new(kv.clone());
        let group = GroupRef([7; 16]);
        let mut legacy = record(&[(1, 5), (2, 6)], &[(1, 5), (2, 6)]);
        let mut lists = StoredLists::load(&staged, &group, &mut legacy).unwrap();
        assert_eq!(legacy.sent.len(), 2, "inline entries kept");
        lists.save(&staged, &group, &legacy).unwrap();
        assert_eq!(keys(&kv), 4);
        let mut fresh = record(&[], &[]);
        StoredLists::load(&staged, &group, &mut fresh).unwrap();
        assert_eq!(fresh.sent, legacy.sent);
        assert_eq!(fresh.seen, legacy.seen);
    }

    #[test]
    fn a_damaged_entry_is_an_error_naming_it() {
        let kv = Arc::new(MemoryStore::new());
        let staged = StagedStore::new(kv.clone());
        let group = GroupRef([7; 16]);
        let mut key = prefix(SEEN, &group);
        key.extend_from_slice(&[1; 16]);
        kv.put(&key, b"not eight bytes").unwrap();
        let err = StoredLists::load(&staged, &group, &mut record(&[], &[])).unwrap_err();
        assert!(err.to_string().contains("seen time"), "{err}");
    }
}
