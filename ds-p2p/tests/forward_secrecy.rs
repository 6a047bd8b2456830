//! Forward secrecy on disk: a pruned branch's secrets are gone from every file of the
//! RocksDB directory (table files and write-ahead log included).

mod support;

use std::sync::Arc;

use ds_p2p::storage::kv::KvStore;
use support::fork::{Forked, fork};
use support::*;

#[test]
fn pruned_branch_secrets_are_not_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, kv) = rocks_kv(dir.path());
    let Forked {
        mut alice,
        mut bob,
        carol,
        held,
        bob_branch,
        carol_branch,
    } = fork(kv.clone());
    let group_id = alice.group_id();
    let storage = alice.provider.mls_storage().clone();

    // Probes: each epoch-2 branch's epoch authenticator, as stored.
    let carol_probe = stored_probe(&carol.epoch_authenticator());
    let bob_probe = stored_probe(&bob.epoch_authenticator());
    assert!(
        files_contain(dir.path(), &carol_probe),
        "the probe must be on disk before pruning, or this test proves nothing"
    );
    assert!(files_contain(dir.path(), &bob_probe));

    // Settle on Bob's branch, prune Carol's and the held epoch-1 state.
    storage.activate(&group_id, bob_branch).unwrap();
    alice.reload();
    storage.prune(&group_id, carol_branch).unwrap();
    storage.prune(&group_id, held).unwrap();

    assert!(
        !files_contain(dir.path(), &carol_probe),
        "a pruned branch's epoch secrets are still on disk"
    );
    assert!(
        files_contain(dir.path(), &bob_probe),
        "the active branch was scrubbed too"
    );
    assert!(kv.scan_prefix(b"").unwrap().len() > 5);

    // The surviving branch works.
    let m = bob.send("after the scrub");
    assert_eq!(
        alice.receive(&m).unwrap().as_deref(),
        Some("after the scrub")
    );
}

/// Encryption at rest and crypto-shredding: over a sealed store, no epoch secret is on disk in
/// the clear even before pruning; pruning a branch destroys its data key in the same batch, so
/// the branch's sealed values — had compaction not reached them, or had someone copied the
/// files before — no longer open even with the master key; and the key's own bytes are
/// scrubbed from every file.
#[test]
fn pruned_branch_is_shredded_in_a_sealed_store() {
    use ds_p2p::storage::kv::{MasterKey, SealedKv};

    let dir = tempfile::tempdir().unwrap();
    let (db, _) = rocks_kv(dir.path());
    let master = MasterKey::generate(&mut rand::rngs::OsRng);
    let layout = ds_p2p::storage::layout::sealed_layout;
    let sealed = Arc::new(
        SealedKv::open(
            db.store("mls").unwrap(),
            "mls",
            &master,
            layout(),
            rand::random(),
        )
        .unwrap(),
    );
    let Forked {
        mut alice,
        mut bob,
        carol,
        held,
        bob_branch,
        carol_branch,
    } = fork(sealed.clone());
    let group_id = alice.group_id();
    let storage = alice.provider.mls_storage().clone();
    assert!(
        !files_contain(dir.path(), &stored_probe(&carol.epoch_authenticator())),
        "an epoch secret is on disk in the clear"
    );

    // What an attacker with the master key could have copied before the prune: Carol's
    // branch as stored ('v' 'g' <group hash 32> 'B' <branch 8> …) and its data key ('k' …).
    let in_branch = |key: &[u8], tag: u8, branch: ds_p2p::storage::BranchId| {
        key.len() >= 43
            && key[0] == tag
            && key[1] == b'g'
            && key[34] == b'B'
            && key[35..43] == branch.0.to_be_bytes()
    };
    let raw = sealed.inner().scan_prefix(b"").unwrap();
    let carol_values: Vec<_> = raw
        .iter()
        .filter(|(k, _)| in_branch(k, b'v', carol_branch))
        .cloned()
        .collect();
    let carol_key: Vec<_> = raw
        .iter()
        .filter(|(k, _)| in_branch(k, b'k', carol_branch))
        .collect();
    assert!(carol_values.len() > 3, "the branch must hold state");
    assert_eq!(carol_key.len(), 1, "one data key per branch namespace");
    let carol_key_bytes = carol_key[0].1.clone();
    for (k, v) in &carol_values {
        sealed.open_stored(k, v).expect("opens before the prune");
    }
    assert!(
        files_contain(dir.path(), &carol_key_bytes),
        "the data key must be on disk (the write-ahead log) before the prune"
    );

    storage.activate(&group_id, bob_branch).unwrap();
    alice.reload();
    storage.prune(&group_id, carol_branch).unwrap();
    storage.prune(&group_id, held).unwrap();

    // A fresh open (nothing cached) with the right master key: the copied values do not open.
    let reopened = SealedKv::open(
        db.store("mls").unwrap(),
        "mls",
        &master,
        layout(),
        rand::random(),
    )
    .unwrap();
    for (k, v) in &carol_values {
        let err = reopened
            .open_stored(k, v)
            .expect_err("a pruned branch's value opened");
        assert!(err.to_string().contains("destroyed"), "{err}");
    }
    assert!(
        !files_contain(dir.path(), &carol_key_bytes),
        "the pruned branch's data key is still on disk"
    );

    // The surviving branch works.
    let m = bob.send("after the shredding");
    assert_eq!(
        alice.receive(&m).unwrap().as_deref(),
        Some("after the shredding")
    );
}
