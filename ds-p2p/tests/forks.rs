//! Forked group states held side by side as branches (DESIGN §4, items 1–3).
//!
//! Alice, Bob and Carol are at epoch 1. Bob and Carol both commit on epoch 1. Alice keeps the
//! epoch-1 state as a checkpoint, applies Bob's commit, then processes Carol's commit against a
//! copy of the checkpoint: she now holds both epoch-2 branches and can live on either.

mod support;

use ds_p2p::storage::{BranchId, StorageError};
use support::fork::{Forked, fork};
use support::*;

fn switch(alice: &mut Client, branch: BranchId) {
    let id = alice.group_id();
    alice.provider.mls_storage().activate(&id, branch).unwrap();
    alice.reload();
}

#[test]
fn both_branches_live_and_switching_works_both_ways() {
    let Forked {
        mut alice,
        mut bob,
        mut carol,
        held,
        bob_branch,
        carol_branch,
    } = fork(memory_kv());
    let group_id = alice.group_id();
    let storage = alice.provider.mls_storage().clone();
    assert_eq!(
        storage.branches(&group_id).unwrap(),
        vec![bob_branch, held, carol_branch]
    );

    // On Carol's branch: Carol's messages decrypt, Bob's do not.
    assert_eq!(alice.branch_id(), carol.branch_id());
    assert_ne!(alice.branch_id(), bob.branch_id());
    let from_carol = carol.send("carol on her branch");
    assert_eq!(
        alice.receive(&from_carol).unwrap().as_deref(),
        Some("carol on her branch")
    );
    let from_bob = bob.send("bob on his branch");
    assert!(
        alice.receive(&from_bob).is_err(),
        "Bob's branch message decrypted on Carol's"
    );
    let to_carol = alice.send("alice on carol's branch");
    assert_eq!(
        carol.receive(&to_carol).unwrap().as_deref(),
        Some("alice on carol's branch")
    );

    // Switch to Bob's branch: the other way round.
    switch(&mut alice, bob_branch);
    assert_eq!(alice.epoch(), 2);
    assert_eq!(alice.branch_id(), bob.branch_id());
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    assert_eq!(
        alice.receive(&from_bob).unwrap().as_deref(),
        Some("bob on his branch")
    );
    let from_carol = carol.send("carol again");
    assert!(alice.receive(&from_carol).is_err());
    let to_bob = alice.send("alice on bob's branch");
    assert_eq!(
        bob.receive(&to_bob).unwrap().as_deref(),
        Some("alice on bob's branch")
    );
    assert!(
        carol.receive(&to_bob).is_err(),
        "Carol read a message of a branch she is not on"
    );

    // And back to Carol's: its state is as it was left.
    switch(&mut alice, carol_branch);
    assert_eq!(alice.epoch_authenticator(), carol.epoch_authenticator());
    assert_eq!(
        alice.receive(&from_carol).unwrap().as_deref(),
        Some("carol again")
    );

    // Either branch moves on with a further commit.
    let next = carol.self_update_pending();
    carol.merge_pending();
    alice.receive(&next).unwrap();
    assert_eq!(alice.epoch(), 3);
    assert_eq!(alice.branch_id(), carol.branch_id());
}

#[test]
fn pruning_a_branch_leaves_the_others_intact() {
    let Forked {
        mut alice,
        mut bob,
        carol: _,
        held,
        bob_branch,
        carol_branch,
    } = fork(memory_kv());
    let group_id = alice.group_id();
    let storage = alice.provider.mls_storage().clone();

    // The active branch (Carol's) cannot be pruned.
    assert!(matches!(
        storage.prune(&group_id, carol_branch),
        Err(StorageError::PruneActive(b)) if b == carol_branch
    ));

    switch(&mut alice, bob_branch);
    storage.prune(&group_id, carol_branch).unwrap();
    storage.prune(&group_id, held).unwrap();
    assert_eq!(storage.branches(&group_id).unwrap(), vec![bob_branch]);
    assert!(matches!(
        storage.activate(&group_id, carol_branch),
        Err(StorageError::UnknownBranch(_))
    ));
    assert!(matches!(
        storage.checkpoint(&group_id, held),
        Err(StorageError::UnknownBranch(_))
    ));

    // Bob's branch is untouched: messages both ways, and a further commit.
    let m = bob.send("after the prune");
    assert_eq!(
        alice.receive(&m).unwrap().as_deref(),
        Some("after the prune")
    );
    let m = alice.send("still here");
    assert_eq!(bob.receive(&m).unwrap().as_deref(), Some("still here"));
    let commit = alice.self_update_pending();
    alice.merge_pending();
    bob.receive(&commit).unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
}

#[test]
fn a_group_storage_is_separate_from_other_groups() {
    // Two groups of one client: forking and pruning one leaves the other alone (a peer's
    // snapshot once restored *every* group).
    let kv = memory_kv();
    let mut alice = Client::new("alice", kv.clone());
    let mut bob = Client::new("bob", memory_kv());
    alice.create_group();
    let first = alice.group_id();
    let (_, welcome) = alice.add(&[bob.key_package()]);
    bob.join(&welcome);
    let first_group = alice.group.take();
    alice.create_group();
    let second = alice.group_id();
    let storage = alice.provider.mls_storage().clone();
    let second_branch = storage.active_branch(&second).unwrap().unwrap();
    let copy = storage.checkpoint(&second, second_branch).unwrap();
    storage.activate(&second, copy).unwrap();
    storage.prune(&second, second_branch).unwrap();

    assert_eq!(storage.branches(&first).unwrap().len(), 1);
    alice.group = first_group;
    alice.reload();
    assert_eq!(alice.group_id(), first);
    let m = bob.send("first group");
    assert_eq!(alice.receive(&m).unwrap().as_deref(), Some("first group"));
}
