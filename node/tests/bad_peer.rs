//! A peer that publishes garbage and oversized envelopes on a group's topic is refused and
//! scored down by a real `chorus run` node, and the honest nodes keep talking.

use std::collections::BTreeSet;
use std::time::Duration;

use node::api::views::StatusView;
use node::bench::attacker::Attacker;
use node::demo::harness::{LocalNode, NodeOptions, converged, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_peer_is_scored_down_and_honest_nodes_carry_on() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let mut ann = LocalNode::init(dir.path(), "ann")?;
    let mut ben = LocalNode::init(dir.path(), "ben")?;
    // Ann keeps the attacker connected (no cut-off once graylisted), so that its score stays
    // in her peer list to be read; `attacker.rs` shows the cut-off.
    std::fs::write(
        ann.data.root().join("config.toml"),
        "ban_graylisted_s = 0\n",
    )?;
    ann.start(&options, 0, &[]).await?;
    let boot = ann.listen.clone().expect("ann listens");
    ben.start(&options, 0, std::slice::from_ref(&boot)).await?;
    ann.add_contact(&ben.invite_code().await?).await?;
    let gid = ann.create_group("team").await?.group_id;
    ann.invite("team", "ben").await?;
    wait_for("ben to join", LIMIT, || async {
        Ok(ben.status(&gid).await?.map(|_| ()))
    })
    .await?;

    // The attacker: a gossip node on the group's topic (it returns once ann is known there:
    // before that gossipsub sends nothing).
    let group = node::policy::parse_group_ref(&gid)?;
    let attacker = Attacker::start(std::slice::from_ref(&boot), group, LIMIT).await?;
    let attacker_id = attacker.peer_id();
    let ann_client = ann.client()?.clone();
    let mut gossiped = 0;
    for i in 0..40u32 {
        let mut junk = b"not an envelope ".to_vec();
        junk.extend_from_slice(&i.to_be_bytes());
        gossiped += usize::from(attacker.publish(junk).await?);
    }
    assert!(gossiped > 0, "the attacker's garbage never left it");
    let score = wait_for("ann to score the attacker down", LIMIT, || async {
        let s: StatusView = ann_client.get("/v1/status").await?;
        Ok(s.peers
            .iter()
            .find(|p| p.peer_id == attacker_id)
            .and_then(|p| p.score)
            .filter(|score| *score < 0.0))
    })
    .await?;
    eprintln!("attacker's score at ann: {score}");

    let mut expected = BTreeSet::new();
    expected.insert(ann.send(&gid, "still here").await?.id);
    expected.insert(ben.send(&gid, "me too").await?.id);
    let honest = [&ann, &ben];
    wait_for("honest nodes to keep talking", LIMIT, || {
        converged(&honest, &gid, &expected)
    })
    .await?;
    attacker.shutdown().await?;
    ann.stop().await?;
    ben.stop().await?;
    Ok(())
}
