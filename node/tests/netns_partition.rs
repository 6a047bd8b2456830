//! A partition across real network hosts: ann and ben in one network namespace, cat in
//! another, joined by a veth link. The link is cut, both sides send and commit, the link is
//! restored, and all three converge with no message lost or doubled.
//!
//! Needs root and `ip` (iproute2); skips with a message otherwise. CI runs as root.

use std::collections::BTreeSet;
use std::time::Duration;

mod support;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, wait_for};
use support::netns::{Hosts, namespaces_available, start_three};

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_between_hosts_heals_without_loss() -> anyhow::Result<()> {
    if let Err(why) = namespaces_available() {
        eprintln!("SKIPPED: the network-namespace partition test needs root and iproute2 ({why})");
        return Ok(());
    }
    let hosts = Hosts::create()?;
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
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

    hosts.link(false)?;
    expected.insert(nodes[0].send(&gid, "ann during the cut").await?.id);
    nodes[1].update(&gid).await?;
    expected.insert(nodes[1].send(&gid, "ben during the cut").await?.id);
    let side_ab = expected.clone();
    expected.insert(nodes[2].send(&gid, "cat during the cut").await?.id);
    nodes[2].update(&gid).await?;
    expected.insert(nodes[2].send(&gid, "cat after her commit").await?.id);
    let ab: Vec<&LocalNode> = nodes[..2].iter().collect();
    wait_for(
        "ann and ben to agree on their side of the cut",
        LIMIT,
        || converged(&ab, &gid, &side_ab),
    )
    .await?;
    hosts.link(true)?;

    let after = wait_for(
        "all three to converge after the link is back",
        LIMIT,
        || converged(&all, &gid, &expected),
    )
    .await?;
    // The two sides committed twice in all (ben's and cat's updates). Both commits were for
    // the same epoch: one wins, and the loser re-issues its update on top of it.
    assert!(
        (before.epoch + 1..=before.epoch + 2).contains(&after.epoch),
        "epoch {} after the heal, {} before",
        after.epoch,
        before.epoch
    );
    assert_eq!(after.members.len(), 3);
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
