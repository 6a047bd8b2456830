//! Test hosts in network namespaces: two namespaces joined by a veth link that a test can cut
//! and restore. Needs root and `ip` (iproute2).

use std::process::Command;

/// Two namespaces and a veth pair between them; removed on drop.
pub struct Hosts {
    pub a: String,
    pub b: String,
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
    pub fn create() -> anyhow::Result<Self> {
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

    pub fn link(&self, up: bool) -> anyhow::Result<()> {
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

pub fn namespaces_available() -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`ip` (iproute2) not found".into()),
    }
}

/// The three nodes of the partition tests, started: ann and ben on host `a` (10.231.0.1), cat
/// on host `b` (10.231.0.2), with data dirs under `root`.
#[allow(dead_code)] // not every test binary that uses this module starts three nodes
pub async fn start_three(
    hosts: &Hosts,
    root: &std::path::Path,
    options: &node::demo::harness::NodeOptions,
) -> anyhow::Result<Vec<node::demo::harness::LocalNode>> {
    let mut nodes = Vec::new();
    for (name, ns, ip) in [
        ("ann", &hosts.a, "10.231.0.1"),
        ("ben", &hosts.a, "10.231.0.1"),
        ("cat", &hosts.b, "10.231.0.2"),
    ] {
        let mut node = node::demo::harness::LocalNode::init(root, name)?;
        node.netns = Some(ns.clone());
        node.listen_ip = ip.into();
        nodes.push(node);
    }
    node::demo::harness::start_all(&mut nodes, options).await?;
    Ok(nodes)
}
