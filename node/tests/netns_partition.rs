//! A partition across real network hosts: ann and ben in one network namespace, cat in
//! another, joined by a veth link. The link is cut, both sides send and commit, the link is
//! restored, and all three converge with no message lost or doubled.
//!
//! Needs root and `ip` (iproute2); skips with a message otherwise. CI runs as root.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, start_all, wait_for};

const LIMIT: Duration = Duration::from_secs(120);

/// Two namespaces and a veth pair between them; removed on drop.
struct Hosts {
    a: String,
    b: String,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Hosts {
    fn create() -> anyhow::Result<Self> {
        let tag = std::process::id() % 100_000;
        let hosts = Self {
            a: format!("chorus-a-{tag}"),
            b: format!("chorus-b-{tag}"),
        };
        ip(&["netns", "add", &hosts.a])?;
        ip(&["netns", "add", &hosts.b])?;
        let (va, vb) = (format!("cva{tag}"), format!("cvb{tag}"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &hosts.a])?;
        ip(&["link", "set", &vb, "netns", &hosts.b])?;
        for (ns, dev, addr) in [
            (&hosts.a, &va, "10.231.0.1/24"),
            (&hosts.b, &vb, "10.231.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    fn link(&self, up: bool) -> anyhow::Result<()> {
        let tag = std::process::id() % 100_000;
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.a, "link", "set", &format!("cva{tag}"), state])?;
        ip(&["-n", &self.b, "link", "set", &format!("cvb{tag}"), state])
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn namespaces_available() -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`ip` (iproute2) not found".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_between_hosts_heals_without_loss() -> anyhow::Result<()> {
    if let Err(why) = namespaces_available() {
        eprintln!("SKIPPED: the network-namespace partition test needs root and iproute2 ({why})");
        return Ok(());
    }
    let hosts = Hosts::create()?;
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let mut nodes = Vec::new();
    for (name, ns, ip) in [
        ("ann", &hosts.a, "10.231.0.1"),
        ("ben", &hosts.a, "10.231.0.1"),
        ("cat", &hosts.b, "10.231.0.2"),
    ] {
        let mut node = LocalNode::init(dir.path(), name)?;
        node.netns = Some(ns.clone());
        node.listen_ip = ip.into();
        nodes.push(node);
    }
    start_all(&mut nodes, &options).await?;
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
