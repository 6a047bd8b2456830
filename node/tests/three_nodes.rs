//! Three real `chorus run` processes on loopback: a group is created, members invited, messages
//! exchanged, two members commit in the same epoch and everyone converges, and a removed
//! member can no longer read the group.

use std::collections::BTreeSet;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, start_nodes, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_talk_race_and_remove() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let (mut nodes, _) = start_nodes(dir.path(), &["ann", "ben", "cat"], &options).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;

    let mut expected = BTreeSet::new();
    for node in &nodes {
        expected.insert(node.send(&gid, &format!("hi from {}", node.name)).await?.id);
    }
    let all: Vec<&LocalNode> = nodes.iter().collect();
    wait_for("all messages everywhere", LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;

    // Two members commit in the same epoch.
    let before = nodes[0].status(&gid).await?.expect("in group").epoch;
    let (a, b) = tokio::join!(nodes[1].update(&gid), nodes[2].update(&gid));
    a?;
    b?;
    let c = wait_for("the race to converge", LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;
    // One of the racing commits wins; the loser may re-issue its update on top of it.
    assert!(
        (before + 1..=before + 2).contains(&c.epoch),
        "{c:?}, before {before}"
    );

    // Remove cat: ann's next message reaches ben, never cat.
    nodes[0].remove(&gid, "cat").await?;
    let secret = nodes[0].send(&gid, "after cat left").await?.id;
    expected.insert(secret.clone());
    let two: Vec<&LocalNode> = nodes[..2].iter().collect();
    let c = wait_for("ann and ben to converge without cat", LIMIT, || {
        converged(&two, &gid, &expected)
    })
    .await?;
    assert_eq!(c.members, ["ann", "ben"], "{c:?}");
    let cat = &nodes[2];
    wait_for("cat to learn of the removal", LIMIT, || async {
        Ok(cat.status(&gid).await?.filter(|s| s.removed).map(|_| ()))
    })
    .await?;
    // Give cat's node more anti-entropy rounds than it needed for the removal itself.
    tokio::time::sleep(Duration::from_millis(3 * options.anti_entropy_ms)).await;
    let seen: BTreeSet<String> = cat
        .messages(&gid)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(
        !seen.contains(&secret),
        "a removed member read a later message"
    );

    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
