//! An attacker that floods a group's topic with forged envelopes — well-formed, for the right
//! group, passing every check but a member's decryption — is cut off by the per-peer budget:
//! its messages are shed, then rejected, gossipsub's scoring graylists it, and the node
//! disconnects and refuses it (`ban_graylisted_s`). The honest nodes keep talking. (Garbage alone is refused by the validator; `bad_peer.rs` shows that.)
//!
//! Without the budget this flood would be accepted and forwarded, and the attacker's score
//! would never go negative, so the test fails if the budget is not applied.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use node::api::views::StatusView;
use node::bench::attack::{metrics_text, sample};
use node::bench::attacker::{Attacker, FloodMix};
use node::demo::harness::{LocalNode, NodeOptions, converged, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_envelopes_gets_the_attacker_graylisted() -> anyhow::Result<()> {
    let seed: u64 = std::env::var("CHORUS_ATTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("attacker seed {seed} (replay with CHORUS_ATTACK_SEED={seed})");
    let dir = tempfile::tempdir()?;
    let options = NodeOptions {
        metrics: true,
        ..NodeOptions::default()
    };
    let mut ann = LocalNode::init(dir.path(), "ann")?;
    let mut ben = LocalNode::init(dir.path(), "ben")?;
    // A small budget, so that a test-sized flood meets it: 20 messages a second, 1 s burst.
    for node in [&ann, &ben] {
        std::fs::write(
            node.data.root().join("config.toml"),
            "peer_messages_per_s = 20\npeer_burst_s = 1\n",
        )?;
    }
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
    // Something honest to forge from.
    let mut expected = BTreeSet::new();
    expected.insert(ann.send(&gid, "before the flood").await?.id);

    let group = node::policy::parse_group_ref(&gid)?;
    let mut attacker = Attacker::start(std::slice::from_ref(&boot), group, LIMIT).await?;
    let attacker_id = attacker.peer_id();
    let stop = Arc::new(AtomicBool::new(false));
    let ann_client = ann.client()?.clone();
    let ann_ref = &ann;
    // Graylisted, then cut off: ann's scoring gets the attacker to the threshold and she
    // disconnects and refuses it (`chorus_gossip_banned_total`), while ben stays connected.
    let (sent, cut_off) = tokio::join!(
        attacker.flood(400, FloodMix::FORGED_ONLY, seed, stop.clone()),
        async {
            let cut_off = wait_for("ann to cut the graylisted attacker off", LIMIT, || async {
                let s: StatusView = ann_client.get("/v1/status").await?;
                let connected = s.peers.iter().any(|p| p.peer_id == attacker_id);
                let banned = sample(&metrics_text(ann_ref).await?, "chorus_gossip_banned_total");
                Ok((banned >= 1.0 && !connected).then_some(banned))
            })
            .await;
            stop.store(true, Ordering::Relaxed);
            cut_off
        }
    );
    let (sent, banned) = (sent?, cut_off?);
    eprintln!("attacker sent {sent:?}; ann cut off {banned} peer(s)");
    assert_eq!(sent.garbage + sent.replayed, 0, "only forged envelopes");
    let status: StatusView = ann_client.get("/v1/status").await?;
    let ben_status: StatusView = ben.client()?.get("/v1/status").await?;
    assert!(
        status
            .peers
            .iter()
            .any(|p| p.peer_id == ben_status.id.peer_id),
        "ann keeps her honest peer: {:?}",
        status.peers
    );

    let text = metrics_text(&ann).await?;
    let over = sample(&text, "chorus_gossip_shed_total{verdict=\"over_budget\"}");
    let abusive = sample(&text, "chorus_gossip_shed_total{verdict=\"abusive\"}");
    eprintln!("ann shed {over} over budget, {abusive} abusive");
    assert!(
        over > 0.0 && abusive > 0.0,
        "ann's metrics count the shed messages"
    );

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
