//! The three-member fork of the fork tests: Bob and Carol both commit on epoch 1; Alice
//! applies Bob's at once, keeping epoch 1, then processes Carol's against a copy of it.

use std::sync::Arc;

use ds_p2p::storage::BranchId;
use ds_p2p::storage::kv::KvStore;

use super::{Client, memory_kv};

pub struct Forked {
    pub alice: Client,
    pub bob: Client,
    pub carol: Client,
    pub held: BranchId,
    pub bob_branch: BranchId,
    pub carol_branch: BranchId,
}

pub fn fork(alice_kv: Arc<dyn KvStore>) -> Forked {
    let mut alice = Client::new("alice", alice_kv);
    let mut bob = Client::new("bob", memory_kv());
    let mut carol = Client::new("carol", memory_kv());
    alice.create_group();
    let (_, welcome) = alice.add(&[bob.key_package(), carol.key_package()]);
    bob.join(&welcome);
    carol.join(&welcome);
    assert_eq!(alice.epoch(), 1);
    let group_id = alice.group_id();

    // Two commits on epoch 1; each committer lives on its own.
    let bob_commit = bob.self_update_pending();
    bob.merge_pending();
    let carol_commit = carol.self_update_pending();
    carol.merge_pending();

    // Alice applies Bob's commit at once, keeping epoch 1, as one atomic step.
    let storage = alice.provider.mls_storage().clone();
    let bob_branch = storage.active_branch(&group_id).unwrap().unwrap();
    let held = alice
        .provider
        .atomically(|_| storage.checkpoint(&group_id, bob_branch))
        .unwrap();
    alice.receive(&bob_commit).unwrap();
    assert_eq!(alice.epoch(), 2);

    // Carol's commit is for epoch 1: process it against a copy of the held state.
    let carol_branch = storage.checkpoint(&group_id, held).unwrap();
    storage.activate(&group_id, carol_branch).unwrap();
    alice.reload();
    assert_eq!(alice.epoch(), 1, "the copy of the checkpoint is at epoch 1");
    alice.receive(&carol_commit).unwrap();
    assert_eq!(alice.epoch(), 2);

    Forked {
        alice,
        bob,
        carol,
        held,
        bob_branch,
        carol_branch,
    }
}
