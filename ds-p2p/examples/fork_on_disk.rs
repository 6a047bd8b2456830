//! A real MLS fork on a real RocksDB, step by step: Bob and Carol commit on the same epoch,
//! Alice holds both resulting branches, reads each branch's messages, switches, then prunes
//! the losing branch and shows that its secrets are gone from every file on disk.
//!
//! Run: `make demo` (or `cargo run -p ds-p2p --example fork_on_disk`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::fork::{Forked, fork};
use support::*;

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("Alice's RocksDB: {}", dir.path().display());
    let (_db, kv) = rocks_kv(dir.path());

    let started = Instant::now();
    let Forked {
        mut alice,
        mut bob,
        mut carol,
        held,
        bob_branch,
        carol_branch,
    } = fork(kv);
    let group_id = alice.group_id();
    let storage = alice.provider.mls_storage().clone();
    println!(
        "fork: Bob and Carol both committed on epoch 1; Alice holds branches {:?} ({} ms)",
        storage.branches(&group_id).expect("branches"),
        started.elapsed().as_millis()
    );
    println!("  {held}: epoch 1, the checkpoint");
    println!(
        "  {bob_branch}: epoch 2 after Bob's commit, branch id {}",
        hex(&bob.branch_id())
    );
    println!(
        "  {carol_branch}: epoch 2 after Carol's commit, branch id {}",
        hex(&carol.branch_id())
    );
    println!(
        "  active: {} (branch id {})",
        carol_branch,
        hex(&alice.branch_id())
    );

    let m = carol.send("hi from Carol's branch");
    println!(
        "  Carol -> Alice on {carol_branch}: {:?}",
        alice.receive(&m)
    );
    let m_bob = bob.send("hi from Bob's branch");
    println!(
        "  Bob   -> Alice on {carol_branch}: {:?}",
        alice.receive(&m_bob).map_err(short)
    );

    storage.activate(&group_id, bob_branch).expect("activate");
    alice.reload();
    println!(
        "switched to {bob_branch} (branch id {})",
        hex(&alice.branch_id())
    );
    println!(
        "  Bob   -> Alice on {bob_branch}: {:?}",
        alice.receive(&m_bob)
    );

    let carol_probe = stored_probe(&carol.epoch_authenticator());
    println!(
        "Carol's branch epoch authenticator on disk before pruning: {}",
        files_contain(dir.path(), &carol_probe)
    );
    let pruning = Instant::now();
    storage.prune(&group_id, carol_branch).expect("prune");
    storage.prune(&group_id, held).expect("prune");
    println!(
        "pruned {carol_branch} and {held}, scrubbed from disk ({} ms); still on disk: {}",
        pruning.elapsed().as_millis(),
        files_contain(dir.path(), &carol_probe)
    );
    let m = bob.send("the group goes on");
    println!("  Bob   -> Alice on {bob_branch}: {:?}", alice.receive(&m));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(e: String) -> String {
    e.chars().take(60).collect()
}
