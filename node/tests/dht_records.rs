//! The DHT through real nodes: a contact found by handle alone, and an invite to a contact
//! whose node is away — through the last-resort KeyPackage its node left in the DHT, with the
//! Welcome picked up when it comes back.

use std::time::Duration;

use node::demo::harness::{NodeOptions, start_nodes, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_and_away_invites_go_through_the_dht() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let (mut nodes, boot) = start_nodes(dir.path(), &["ann", "ben", "cat"], &options).await?;
    // Found by handle: cat's record reaches ann through the DHT (its node published it at
    // start; retry while the routing tables fill).
    let ann = &nodes[0];
    let cat = wait_for("ann to find cat by handle", LIMIT, || async {
        Ok(ann.add_contact("cat").await.ok())
    })
    .await?;
    assert_eq!(cat.handle, "cat");
    let ben_code = nodes[1].invite_code().await?;
    nodes[0].add_contact(&ben_code).await?;
    let gid = nodes[0].create_group("team").await?.group_id;
    nodes[0].invite("team", "cat").await?;

    // Ben's node goes away; ann invites him anyway.
    nodes[1].stop().await?;
    let invited = nodes[0].invite("team", "ben").await?;
    assert!(
        invited.members.iter().any(|m| m.handle == "ben"),
        "ben was added with his DHT KeyPackage: {invited:?}"
    );
    // Back, ben's node finds the Welcome that waited on his inbox topic.
    nodes[1]
        .start(&options, 0, std::slice::from_ref(&boot))
        .await?;
    let ben = &nodes[1];
    let status = wait_for("ben to join after coming back", LIMIT, || async {
        ben.status(&gid).await
    })
    .await?;
    assert_eq!(status.members.len(), 3, "{status:?}");
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
