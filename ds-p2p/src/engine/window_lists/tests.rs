use std::sync::Arc;

use identity_tofu::kv::{KvStore, MemoryStore};

use super::*;
use crate::engine::fork_tree::ForkTree;
use crate::storage::BranchId;

fn message(id: u8, at: u64, on: u64) -> SentMessage {
    SentMessage {
        id: MessageId([id; 16]),
        sent_at_ms: at,
        body: vec![id; 100],
        on: BranchId(on),
    }
}

fn record(sent: &[(u8, u64)], seen: &[(u8, u64)]) -> GroupRecord {
    GroupRecord {
        group_id: vec![1],
        tree: ForkTree::default(),
        active: BranchId(1),
        sent: sent.iter().map(|(id, at)| message(*id, *at, 1)).collect(),
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

fn loaded(staged: &StagedStore, group: &GroupRef) -> GroupRecord {
    let mut fresh = record(&[], &[]);
    load(staged, group, &mut fresh).unwrap();
    fresh
}

#[test]
fn saves_write_the_changes_and_load_restores_the_lists_in_send_order() {
    let kv = Arc::new(MemoryStore::new());
    let staged = StagedStore::new(kv.clone());
    let group = GroupRef([7; 16]);
    // Sent out of id order: 3 before 2.
    let mut r = record(&[(3, 10), (2, 20)], &[(3, 10), (2, 20), (9, 15)]);
    save(&staged, &group, &mut r).unwrap();
    assert_eq!(keys(&kv), 5);

    // One more message, one pruned, one re-sent on another state.
    r.sent.retain(|m| m.id != MessageId([3; 16]));
    r.sent.put(message(2, 20, 4));
    r.sent.put(message(5, 30, 4));
    r.seen.retain(|id, _| *id != MessageId([9; 16]));
    assert!(r.seen.insert_if_absent(MessageId([5; 16]), 30));
    assert!(!r.seen.insert_if_absent(MessageId([5; 16]), 31));
    save(&staged, &group, &mut r).unwrap();
    assert_eq!(keys(&kv), 5, "2 sent + 3 seen");

    let back = loaded(&staged, &group);
    assert_eq!(back.sent, r.sent, "same messages, same order, same states");
    assert_eq!(back.seen, r.seen);

    // Nothing changed: a save writes nothing.
    staged.begin().unwrap();
    save(&staged, &group, &mut r).unwrap();
    staged.commit().unwrap();
    assert_eq!(keys(&kv), 5);
}

#[test]
fn a_record_with_inline_lists_loads_them_and_its_first_save_moves_them_out() {
    let kv = Arc::new(MemoryStore::new());
    let staged = StagedStore::new(kv.clone());
    let group = GroupRef([7; 16]);
    let inline = record(&[(1, 5), (2, 6)], &[(1, 5), (2, 6)]);
    // As a record stored before this layout reads back: lists inline.
    let bytes = identity_tofu::codec::encode(&inline).unwrap();
    let mut legacy: GroupRecord = identity_tofu::codec::decode(&bytes, 1 << 20).unwrap();
    load(&staged, &group, &mut legacy).unwrap();
    assert_eq!(legacy.sent.len(), 2, "inline entries kept");
    save(&staged, &group, &mut legacy).unwrap();
    assert_eq!(keys(&kv), 4);
    let back = loaded(&staged, &group);
    assert_eq!(back.sent, legacy.sent);
    assert_eq!(back.seen, legacy.seen);
}

#[test]
fn a_failed_step_is_undone_and_what_it_saved_is_saved_again() {
    let kv = Arc::new(MemoryStore::new());
    let staged = StagedStore::new(kv.clone());
    let group = GroupRef([7; 16]);
    let mut r = record(&[(1, 5), (2, 6), (3, 7)], &[(1, 5), (2, 6), (3, 7)]);
    save(&staged, &group, &mut r).unwrap();
    let before = r.clone();

    // A step that changes both lists, saves, and fails.
    r.sent.begin_step();
    r.seen.begin_step();
    staged.begin().unwrap();
    r.sent.put(message(1, 5, 9)); // re-sent: moves to the end
    r.sent.retain(|m| m.id != MessageId([2; 16]));
    r.sent.put(message(4, 8, 1));
    r.seen.retain(|id, _| *id == MessageId([1; 16]));
    r.seen.insert_if_absent(MessageId([4; 16]), 8);
    save(&staged, &group, &mut r).unwrap();
    staged.rollback().unwrap();
    r.sent.end_step(true, true);
    r.seen.end_step(true, true);
    assert_eq!(r, before, "undone in memory");
    assert!(r.sent.index_matches(), "the id index is undone too");
    assert_eq!(loaded(&staged, &group), before, "nothing reached the store");

    // The same step kept in memory (not undone): the next save writes what the failed one
    // had staged.
    r.sent.begin_step();
    staged.begin().unwrap();
    r.sent.put(message(4, 8, 1));
    save(&staged, &group, &mut r).unwrap();
    staged.rollback().unwrap();
    r.sent.end_step(true, false);
    save(&staged, &group, &mut r).unwrap();
    assert_eq!(loaded(&staged, &group), r);
    assert!(loaded(&staged, &group).sent.index_matches());

    // After all that, a re-send still replaces the earlier copy rather than adding one.
    let len = r.sent.len();
    r.sent.put(message(2, 6, 5));
    r.sent.put(message(2, 6, 6));
    assert_eq!(r.sent.len(), len);
    assert_eq!(
        r.sent.last().map(|m| (m.id, m.on)),
        Some((MessageId([2; 16]), BranchId(6)))
    );
    assert!(r.sent.index_matches());

    // A step that succeeds keeps its changes.
    r.seen.begin_step();
    r.seen.insert_if_absent(MessageId([8; 16]), 9);
    r.seen.end_step(false, true);
    assert!(r.seen.contains_key(&MessageId([8; 16])));
}

#[test]
fn a_damaged_entry_is_an_error_naming_it() {
    let kv = Arc::new(MemoryStore::new());
    let staged = StagedStore::new(kv.clone());
    let group = GroupRef([7; 16]);
    let mut key = prefix(SEEN, &group);
    key.extend_from_slice(&[1; 16]);
    kv.put(&key, b"not eight bytes").unwrap();
    let err = load(&staged, &group, &mut record(&[], &[])).unwrap_err();
    assert!(err.to_string().contains("seen time"), "{err}");
}
