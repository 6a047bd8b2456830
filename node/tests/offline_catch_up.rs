//! A member's node is killed (SIGKILL) while the others keep talking and committing; it
//! restarts over the same data dir and catches up through sync: nothing lost, nothing twice.

use std::collections::BTreeSet;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, converged, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_catches_up_exactly_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let mut nodes = Vec::new();
    for name in ["ann", "ben", "cat"] {
        nodes.push(LocalNode::init(dir.path(), name)?);
    }
    nodes[0].start(&options, 0, &[]).await?;
    let boot = nodes[0].listen.clone().expect("ann listens");
    for node in nodes.iter_mut().skip(1) {
        node.start(&options, 0, std::slice::from_ref(&boot)).await?;
    }
    for i in 1..3 {
        let code = nodes[i].invite_code().await?;
        nodes[0].add_contact(&code).await?;
    }
    let gid = nodes[0].create_group("team").await?.group_id;
    for name in ["ben", "cat"] {
        nodes[0].invite("team", name).await?;
    }
    for node in &nodes[1..] {
        wait_for(&format!("{} to join", node.name), LIMIT, || async {
            Ok(node.status(&gid).await?.map(|_| ()))
        })
        .await?;
    }
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
