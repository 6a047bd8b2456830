//! A partition across real network hosts that outlasts the fork window: ann and ben in one
//! network namespace, cat in another, the veth link between them cut for three windows while
//! both sides send and commit, then restored. Neither side can switch to the other inside
//! the window any more (a split); the heal must bring all three onto one branch with every
//! message delivered once and the split cleared.
//!
//! Needs root and `ip` (iproute2); skips with a message otherwise. CI runs as root.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod support;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, wait_for};
use support::netns::{Hosts, namespaces_available, start_three};

const LIMIT: Duration = Duration::from_secs(120);
const WINDOW_MS: u64 = 4_000;
/// How long the link stays down: three fork windows.
const CUT: Duration = Duration::from_millis(3 * WINDOW_MS);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_longer_than_the_window_heals_without_loss() -> anyhow::Result<()> {
    if let Err(why) = namespaces_available() {
        eprintln!("SKIPPED: the network-namespace partition test needs root and iproute2 ({why})");
        return Ok(());
    }
    let hosts = Hosts::create()?;
    let dir = tempfile::tempdir()?;
    let options = NodeOptions {
        fork_window_ms: WINDOW_MS,
        beacon_interval_ms: 1_000,
        anti_entropy_ms: 1_000,
        ..NodeOptions::default()
    };
    let mut nodes = start_three(&hosts, dir.path(), &options).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;
    let mut expected = BTreeSet::new();
    for node in &nodes {
        expected.insert(node.send(&gid, &format!("{} before", node.name)).await?.id);
    }
    let all: Vec<&LocalNode> = nodes.iter().collect();
    let before = wait_for("agreement before the cut", LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;

    // Through the cut, every half window: everyone sends, cat commits on her side, and ann
    // or ben (in turn) on theirs.
    hosts.link(false)?;
    let cut_at = Instant::now();
    let mut side_ab = expected.clone();
    let mut rounds = 0u64;
    while cut_at.elapsed() < CUT {
        for (k, node) in nodes.iter().enumerate() {
            let id = node
                .send(&gid, &format!("{} round {rounds}", node.name))
                .await?
                .id;
            if k < 2 {
                side_ab.insert(id.clone());
            }
            expected.insert(id);
        }
        nodes[(rounds % 2) as usize].update(&gid).await?;
        nodes[2].update(&gid).await?;
        rounds += 1;
        // Paces the rounds over the cut; nothing below depends on this wait's length.
        tokio::time::sleep(Duration::from_millis(WINDOW_MS / 2)).await;
    }
    let ab: Vec<&LocalNode> = nodes[..2].iter().collect();
    wait_for(
        "ann and ben to agree on their side of the cut",
        LIMIT,
        || converged(&ab, &gid, &side_ab),
    )
    .await?;
    let cut_for = cut_at.elapsed();
    hosts.link(true)?;
    let restored_at = Instant::now();
    eprintln!(
        "link cut for {cut_for:?} ({} windows), {rounds} rounds of messages and commits on each side",
        cut_for.as_millis() as u64 / WINDOW_MS
    );

    let after = match wait_for(
        "all three on one branch, every message once, no split, after the link is back",
        LIMIT,
        || converged(&all, &gid, &expected),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", describe(&nodes, &gid, &expected).await);
            return Err(e);
        }
    };
    eprintln!(
        "healed {:?} after the link came back: epoch {} (from {}), branch {}, {} messages",
        restored_at.elapsed(),
        after.epoch,
        before.epoch,
        after.branch_id,
        after.messages
    );
    // Each side committed `rounds` times; the winning side's commits stand and every member
    // of the losing side rejoins on top of them (at least one more commit).
    assert!(
        after.epoch > before.epoch + rounds,
        "epoch {} after the heal, {} before, {rounds} commits on each side",
        after.epoch,
        before.epoch
    );
    assert_eq!(after.members.len(), 3, "{:?}", after.members);
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}

/// What each node shows, for a failure message: its status and which messages it misses or
/// has in excess, and the end of its log.
async fn describe(nodes: &[LocalNode], gid: &str, expected: &BTreeSet<String>) -> String {
    let mut out = String::new();
    for node in nodes {
        let status = node.status(gid).await;
        out.push_str(&format!("--- {}: {status:?}\n", node.name));
        if let Ok(msgs) = node.messages(gid).await {
            let ids: Vec<&String> = msgs.iter().map(|m| &m.id).collect();
            let missing: Vec<&String> = expected.iter().filter(|e| !ids.contains(e)).collect();
            let extra: Vec<String> = msgs
                .iter()
                .filter(|m| !expected.contains(&m.id))
                .map(|m| format!("{} {:?}", m.id, m.text))
                .collect();
            out.push_str(&format!(
                "{} messages, {} distinct; missing {missing:?}; not expected {extra:?}\n",
                ids.len(),
                ids.iter().collect::<BTreeSet<_>>().len()
            ));
        }
        out.push_str(&node.log_tail());
        out.push('\n');
    }
    out
}
