//! `chorus demo`: N real nodes on loopback, a scripted conversation with a same-epoch commit
//! race and a partition that heals, a readable timeline, and a non-zero exit unless every
//! node converged with every message exactly once.

pub mod harness;
mod timeline;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use harness::{LocalNode, NodeOptions, converged, wait_for};
use timeline::Timeline;

const NAMES: [&str; 8] = ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"];
const GROUP: &str = "team";
const STEP_LIMIT: Duration = Duration::from_secs(90);

pub async fn run(nodes: usize, json_out: bool, keep: bool) -> anyhow::Result<()> {
    if !(2..=NAMES.len()).contains(&nodes) {
        anyhow::bail!("--nodes must be between 2 and {}", NAMES.len());
    }
    let dir = tempfile::Builder::new().prefix("chorus-demo-").tempdir()?;
    let timeline = Timeline::new(!json_out);
    let result = script(dir.path(), nodes, &timeline).await;
    let ok = result.is_ok();
    if json_out {
        let summary = json!({
            "nodes": nodes,
            "converged": ok,
            "error": result.as_ref().err().map(|e| format!("{e:#}")),
            "final": result.as_ref().ok(),
            "timeline": timeline.entries(),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        match &result {
            Ok(c) => println!(
                "\nconverged: {nodes} nodes at epoch {}, branch {}, members {}, {} messages each, none lost, none twice",
                c.epoch,
                &c.branch_id[..8],
                c.members.join(", "),
                c.messages
            ),
            Err(e) => println!("\nNOT converged: {e:#}"),
        }
    }
    if keep {
        let path = dir.keep();
        eprintln!("data directories and logs kept in {}", path.display());
    } else if !ok {
        let path = dir.keep();
        eprintln!("logs of the failed run: {}", path.display());
    }
    result.map(|_| ())
}

async fn script(
    root: &std::path::Path,
    n: usize,
    tl: &Timeline,
) -> anyhow::Result<harness::Convergence> {
    let options = NodeOptions::default();
    let mut nodes = Vec::new();
    for name in &NAMES[..n] {
        nodes.push(LocalNode::init(root, name)?);
    }
    tl.note(
        "-",
        &format!("created {n} identities in {}", root.display()),
    );

    nodes[0].start(&options, 0, &[]).await?;
    let boot = nodes[0].listen.clone().context("ann has no address")?;
    for node in nodes.iter_mut().skip(1) {
        node.start(&options, 0, std::slice::from_ref(&boot)).await?;
    }
    for node in &nodes {
        tl.follow(node)?;
        tl.note(&node.name, "node running");
    }

    // Contacts: ann adds everyone from their invite codes (TOFU pins each handle).
    for i in 1..n {
        let code = nodes[i].invite_code().await?;
        let c = nodes[0].add_contact(&code).await?;
        tl.note(
            "ann",
            &format!("added contact {} ({}…)", c.name, &c.fingerprint[..16]),
        );
        nodes[i].add_contact(&nodes[0].invite_code().await?).await?;
    }

    let g = nodes[0].create_group(GROUP).await?;
    tl.note(
        "ann",
        &format!("created group {GROUP} ({})", &g.group_id[..8]),
    );
    let gid = g.group_id.clone();
    for i in 1..n {
        let name = nodes[i].name.clone();
        let s = nodes[0].invite(GROUP, &name).await?;
        tl.note("ann", &format!("invited {name} (epoch {})", s.epoch));
        let node = &nodes[i];
        wait_for(&format!("{name} to join"), STEP_LIMIT, || async {
            Ok(node.status(&gid).await?.map(|_| ()))
        })
        .await?;
    }

    let mut expected = BTreeSet::new();
    for node in &nodes {
        let m = node
            .send(&gid, &format!("hello from {}", node.name))
            .await?;
        tl.note(&node.name, &format!("sent \"{}\"", m.text));
        expected.insert(m.id);
    }
    let all: Vec<&LocalNode> = nodes.iter().collect();
    let c = wait_for("everyone to read everything", STEP_LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;
    tl.note(
        "-",
        &format!(
            "all {n} nodes agree: epoch {}, {} messages",
            c.epoch, c.messages
        ),
    );

    // A same-epoch commit race: two members update their keys at the same instant.
    let (a, b) = (n - 2, n - 1);
    tl.note(
        "-",
        &format!(
            "race: {} and {} commit in the same epoch",
            nodes[a].name, nodes[b].name
        ),
    );
    let (ra, rb) = tokio::join!(nodes[a].update(&gid), nodes[b].update(&gid));
    ra?;
    rb?;
    for node in [&nodes[a], &nodes[b]] {
        let m = node
            .send(&gid, &format!("{} after the race", node.name))
            .await?;
        expected.insert(m.id);
    }
    let c = wait_for("the race to resolve", STEP_LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;
    tl.note(
        "-",
        &format!(
            "race resolved: everyone on branch {} at epoch {}",
            &c.branch_id[..8],
            c.epoch
        ),
    );

    // A partition: the last node is cut off (restarted with no peers and a new address),
    // both sides talk and commit, then it reconnects.
    let last = n - 1;
    let cut = nodes[last].name.clone();
    nodes[last].stop().await?;
    nodes[last].start(&options, 0, &[]).await?;
    tl.follow(&nodes[last])?;
    tl.note(&cut, "cut off from the others (partition)");
    let m = nodes[0].send(&gid, "ann, during the partition").await?;
    expected.insert(m.id);
    nodes[0].update(&gid).await?;
    tl.note("ann", "sent a message and committed an update on her side");
    let m = nodes[last]
        .send(&gid, &format!("{cut}, alone during the partition"))
        .await?;
    expected.insert(m.id);
    nodes[last].update(&gid).await?;
    tl.note(
        &cut,
        "sent a message and committed an update on the other side",
    );
    nodes[last].stop().await?;
    nodes[last]
        .start(&options, 0, std::slice::from_ref(&boot))
        .await?;
    tl.follow(&nodes[last])?;
    tl.note(&cut, "reconnected (partition healed)");
    let all: Vec<&LocalNode> = nodes.iter().collect();
    let c = wait_for("the partition to heal", STEP_LIMIT, || {
        converged(&all, &gid, &expected)
    })
    .await?;
    tl.note(
        "-",
        &format!(
            "healed: everyone on branch {} at epoch {}",
            &c.branch_id[..8],
            c.epoch
        ),
    );

    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(c)
}
