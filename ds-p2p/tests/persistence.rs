//! A group's state lives in RocksDB: close the database, open it again, and the conversation
//! goes on.

mod support;

use support::*;

#[test]
fn two_member_group_continues_after_closing_and_reopening_rocksdb() {
    let alice_dir = tempfile::tempdir().unwrap();
    let bob_dir = tempfile::tempdir().unwrap();

    let (alice_signer, bob_signer, group_id) = {
        let (_alice_db, alice_kv) = rocks_kv(alice_dir.path());
        let (_bob_db, bob_kv) = rocks_kv(bob_dir.path());
        let mut alice = Client::new("alice", alice_kv);
        let mut bob = Client::new("bob", bob_kv);
        alice.create_group();
        let (_, welcome) = alice.add(&[bob.key_package()]);
        bob.join(&welcome);

        let m = alice.send("hello bob");
        assert_eq!(bob.receive(&m).unwrap().as_deref(), Some("hello bob"));
        let m = bob.send("hello alice");
        assert_eq!(alice.receive(&m).unwrap().as_deref(), Some("hello alice"));
        let commit = bob.self_update_pending();
        bob.merge_pending();
        alice.receive(&commit).unwrap();
        assert_eq!(alice.epoch(), 2);
        assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
        (
            alice.signer.public().to_vec(),
            bob.signer.public().to_vec(),
            alice.group_id(),
        )
        // Everything, databases included, is dropped here.
    };

    let (_alice_db, alice_kv) = rocks_kv(alice_dir.path());
    let (_bob_db, bob_kv) = rocks_kv(bob_dir.path());
    let mut alice = Client::reopen("alice", alice_kv, &alice_signer, &group_id);
    let mut bob = Client::reopen("bob", bob_kv, &bob_signer, &group_id);
    assert_eq!(alice.epoch(), 2);
    assert_eq!(bob.epoch(), 2);

    let m = alice.send("still there?");
    assert_eq!(bob.receive(&m).unwrap().as_deref(), Some("still there?"));
    let m = bob.send("yes");
    assert_eq!(alice.receive(&m).unwrap().as_deref(), Some("yes"));

    // A commit after the restart: both move on together.
    let commit = alice.self_update_pending();
    alice.merge_pending();
    bob.receive(&commit).unwrap();
    assert_eq!(bob.epoch(), 3);
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    let m = bob.send("new epoch");
    assert_eq!(alice.receive(&m).unwrap().as_deref(), Some("new epoch"));
}

#[test]
fn a_failed_atomic_step_leaves_nothing_behind_and_can_be_redone() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, kv) = rocks_kv(dir.path());
    let mut alice = Client::new("alice", kv.clone());
    let mut bob = Client::new("bob", memory_kv());
    alice.create_group();
    let (_, welcome) = alice.add(&[bob.key_package()]);
    bob.join(&welcome);
    let group_id = alice.group_id();
    let before = kv.scan_prefix(b"").unwrap();

    // A step that checkpoints, processes and merges a real commit, then fails (say the log
    // write that goes with it was refused): none of it may land.
    let commit = bob.self_update_pending();
    bob.merge_pending();
    let storage = alice.provider.mls_storage().clone();
    let staged = storage.staged().clone();
    staged.begin().unwrap();
    let active = storage.active_branch(&group_id).unwrap().unwrap();
    storage.checkpoint(&group_id, active).unwrap();
    assert_eq!(alice.receive(&commit), Ok(None));
    assert_eq!(alice.epoch(), 2);
    staged.rollback().unwrap();
    assert_eq!(
        kv.scan_prefix(b"").unwrap(),
        before,
        "rolled-back step wrote something"
    );
    assert_eq!(storage.branches(&group_id).unwrap().len(), 1);

    // The in-memory group ran ahead of the store; reloading brings back epoch 1, and the same
    // commit is accepted again (the bug peers hit when only the store was rolled back).
    alice.reload();
    assert_eq!(alice.epoch(), 1);
    staged.begin().unwrap();
    storage.checkpoint(&group_id, active).unwrap();
    alice.receive(&commit).unwrap();
    staged.commit().unwrap();
    assert_eq!(alice.epoch(), 2);
    assert_eq!(storage.branches(&group_id).unwrap().len(), 2);
    let m = bob.send("after the redo");
    assert_eq!(
        alice.receive(&m).unwrap().as_deref(),
        Some("after the redo")
    );
}
