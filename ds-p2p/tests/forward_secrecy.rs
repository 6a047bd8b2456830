//! Forward secrecy on disk: a pruned branch's secrets are gone from every file of the
//! RocksDB directory (table files and write-ahead log included).

mod support;

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
