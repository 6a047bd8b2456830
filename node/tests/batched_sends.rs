//! Sends that arrive at a node together go out together (`daemon/core/sends.rs`): a burst of
//! concurrent send calls through the API is acknowledged call by call, each with an id of its
//! own, and every message reaches the other members once.

use std::collections::BTreeSet;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, start_nodes, wait_for};

const LIMIT: Duration = Duration::from_secs(90);
const BURST: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_sends_arrives_whole() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let (nodes, _) = start_nodes(dir.path(), &["ann", "ben", "cat"], &options).await?;
    let gid = group_of_all(&nodes, "burst", LIMIT).await?;

    let texts: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    let sends = texts.iter().map(|text| nodes[0].send(&gid, text));
    let sent = futures::future::try_join_all(sends).await?;
    let ids: BTreeSet<String> = sent.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), BURST, "every send has an id of its own");
    for (m, text) in sent.iter().zip(&texts) {
        assert_eq!(&m.text, text, "answers match their calls");
    }

    let all: Vec<&LocalNode> = nodes.iter().collect();
    wait_for("the burst everywhere", LIMIT, || {
        converged(&all, &gid, &ids)
    })
    .await?;
    for node in &nodes {
        let texts: Vec<String> = node
            .messages(&gid)
            .await?
            .into_iter()
            .filter(|m| ids.contains(&m.id))
            .map(|m| m.text)
            .collect();
        assert_eq!(texts.len(), BURST, "{}: each message once", node.name);
    }
    Ok(())
}
