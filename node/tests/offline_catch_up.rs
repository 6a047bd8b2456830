//! A member's node is killed (SIGKILL) while the others keep talking and committing; it
//! restarts over the same data dir and catches up through sync: nothing lost, nothing twice.

use std::collections::BTreeSet;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, start_nodes, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_catches_up_exactly_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let (mut nodes, boot) = start_nodes(dir.path(), &["ann", "ben", "cat"], &options).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;
    let mut expected = BTreeSet::new();
    expected.insert(nodes[2].send(&gid, "cat before the crash").await?.id);
    let all: Vec<&LocalNode> = nodes.iter().collect();
    wait_for("the first message everywhere", LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;

    nodes[2].kill().await?;
    for round in 0..3 {
        expected.insert(nodes[0].send(&gid, &format!("ann {round}")).await?.id);
        expected.insert(nodes[1].send(&gid, &format!("ben {round}")).await?.id);
        nodes[round % 2].update(&gid).await?;
    }
    let two: Vec<&LocalNode> = nodes[..2].iter().collect();
    let c = wait_for("ann and ben to agree while cat is down", LIMIT, || {
        converged(&two, &gid, &expected)
    })
    .await?;

    nodes[2]
        .start(&options, 0, std::slice::from_ref(&boot))
        .await?;
    let all: Vec<&LocalNode> = nodes.iter().collect();
    let after = wait_for("cat to catch up", LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;
    assert_eq!(
        after.epoch, c.epoch,
        "cat reached the epoch the others were at"
    );
    assert_eq!(after.messages, 7);

    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
