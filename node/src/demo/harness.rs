//! Real Chorus nodes as child processes on this machine, driven through their API: what
//! `chorus demo` and the node's integration tests are made of.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::api::client::Client;
use crate::api::views::{ContactView, GroupStatusView, IdView, MessageView};
use crate::paths::DataDir;

/// How nodes started by the harness are configured: fast beacons and anti-entropy, so that
/// a demo converges in seconds rather than minutes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub fork_window_ms: u64,
    pub beacon_interval_ms: u64,
    pub anti_entropy_ms: u64,
    pub policy: String,
    pub durability: String,
    /// Serve `/metrics` on a free loopback port (its address lands in `metrics.addr`).
    pub metrics: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            // Short, so that forks settle (and old states are deleted) within seconds; the
            // demo's partition is shorter than this.
            fork_window_ms: 15_000,
            beacon_interval_ms: 2_000,
            anti_entropy_ms: 1_500,
            policy: "lowest-ref".into(),
            durability: "synced".into(),
            metrics: false,
        }
    }
}

/// One node: its data dir, its process (while running) and its API client.
pub struct LocalNode {
    pub name: String,
    pub data: DataDir,
    pub child: Option<Child>,
    pub client: Option<Client>,
    pub listen: Option<String>,
    /// Run inside this network namespace (created by the caller), listening on `listen_ip`.
    pub netns: Option<String>,
    pub listen_ip: String,
    /// More arguments for `chorus run` (e.g. `--passphrase-file`).
    pub run_args: Vec<String>,
    log_path: PathBuf,
}

/// The `chorus` executable: this very binary, or the one cargo built for tests.
pub fn chorus_exe() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHORUS_EXE") {
        return Ok(p.into());
    }
    let me = std::env::current_exe()?;
    if me.file_stem().is_some_and(|s| s == "chorus") {
        return Ok(me);
    }
    // Test binaries live in target/<profile>/deps; the binary one level up.
    let candidate = me
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("chorus"))
        .filter(|p| p.exists());
    candidate.context("cannot find the chorus binary (set CHORUS_EXE)")
}

impl LocalNode {
    /// Creates the node's identity in `root/<name>`.
    pub fn init(root: &Path, name: &str) -> anyhow::Result<Self> {
        Self::init_with(root, name, &Default::default())
    }

    /// [`init`](Self::init), keeping the master key as `protection` says.
    pub fn init_with(
        root: &Path,
        name: &str,
        protection: &crate::sealing::KeyProtection,
    ) -> anyhow::Result<Self> {
        let data = DataDir::at(root.join(name));
        crate::init::init(&data, Some(name.to_string()), protection)?;
        Ok(Self {
            run_args: Vec::new(),
            name: name.to_string(),
            log_path: root.join(format!("{name}.log")),
            data,
            child: None,
            client: None,
            listen: None,
            netns: None,
            listen_ip: "127.0.0.1".into(),
        })
    }

    /// Starts `chorus run` and waits until its API answers. `port` 0 picks a free one; a
    /// fixed port lets a restarted node keep its address.
    pub async fn start(
        &mut self,
        options: &NodeOptions,
        port: u16,
        bootstrap: &[String],
    ) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(self.data.api_addr());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut cmd = match &self.netns {
            None => Command::new(chorus_exe()?),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(chorus_exe()?);
                c
            }
        };
        cmd.arg("--data")
            .arg(self.data.root())
            .arg("run")
            .args(["--listen", &format!("/ip4/{}/tcp/{port}", self.listen_ip)])
            .args(["--api", "127.0.0.1:0", "--no-mdns", "--dht-server"])
            .args(["--fork-window-ms", &options.fork_window_ms.to_string()])
            .args([
                "--beacon-interval-ms",
                &options.beacon_interval_ms.to_string(),
            ])
            .args(["--anti-entropy-ms", &options.anti_entropy_ms.to_string()])
            .args(["--policy", &options.policy])
            .args(["--durability", &options.durability])
            .args(&self.run_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if options.metrics {
            cmd.args(["--metrics", "127.0.0.1:0"]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn,node=info");
        }
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        self.child = Some(cmd.spawn().context("starting chorus run")?);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!(
                    "{}'s node exited ({status}) at start; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(client) = Client::for_data_dir(&self.data) {
                let client = match &self.netns {
                    Some(ns) => client.in_netns(ns),
                    None => client,
                };
                if let Ok(id) = client.get::<IdView>("/v1/id").await {
                    self.listen = id.addrs.first().map(|a| format!("{a}/p2p/{}", id.peer_id));
                    self.client = Some(client);
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{}'s node did not come up in 60 s:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the node's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn client(&self) -> anyhow::Result<&Client> {
        self.client
            .as_ref()
            .with_context(|| format!("{}'s node is not running", self.name))
    }

    /// Stops the node gracefully (API shutdown, then wait).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(client) = self.client.take() {
            let _ = client
                .post::<serde_json::Value>("/v1/shutdown", json!({}))
                .await;
        }
        if let Some(mut child) = self.child.take() {
            match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
                Ok(status) => {
                    status?;
                }
                Err(_) => {
                    child.kill().await?;
                }
            }
        }
        Ok(())
    }

    /// Kills the node without warning (SIGKILL): a crash.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.client = None;
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    pub async fn invite_code(&self) -> anyhow::Result<String> {
        Ok(self.client()?.get::<IdView>("/v1/id").await?.invite_code)
    }

    pub async fn add_contact(&self, code: &str) -> anyhow::Result<ContactView> {
        self.client()?
            .post("/v1/contacts", json!({ "address": code }))
            .await
    }

    pub async fn create_group(&self, name: &str) -> anyhow::Result<GroupStatusView> {
        self.client()?
            .post("/v1/groups", json!({ "name": name }))
            .await
    }

    pub async fn invite(&self, group: &str, contact: &str) -> anyhow::Result<GroupStatusView> {
        self.client()?
            .post(
                &format!("/v1/groups/{group}/invite"),
                json!({ "contact": contact }),
            )
            .await
    }

    pub async fn remove(&self, group: &str, member: &str) -> anyhow::Result<GroupStatusView> {
        self.client()?
            .post(
                &format!("/v1/groups/{group}/remove"),
                json!({ "member": member }),
            )
            .await
    }

    pub async fn update(&self, group: &str) -> anyhow::Result<GroupStatusView> {
        self.client()?
            .post(&format!("/v1/groups/{group}/update"), json!({}))
            .await
    }

    pub async fn send(&self, group: &str, text: &str) -> anyhow::Result<MessageView> {
        self.client()?
            .post(
                &format!("/v1/groups/{group}/messages"),
                json!({ "text": text }),
            )
            .await
    }

    /// The group's status, or `None` if this node is not (yet) in it.
    pub async fn status(&self, group: &str) -> anyhow::Result<Option<GroupStatusView>> {
        match self.client()?.get(&format!("/v1/groups/{group}")).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.to_string().contains("no group") || e.to_string().contains("not in") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn messages(&self, group: &str) -> anyhow::Result<Vec<MessageView>> {
        self.client()?
            .get(&format!("/v1/groups/{group}/messages"))
            .await
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    wait_for_every(what, limit, Duration::from_millis(100), check).await
}

/// [`wait_for`] polling every `every`: for checks that are heavy for the nodes themselves
/// (listing megabytes of messages), so that polling does not starve the work it waits for.
pub async fn wait_for_every<T, F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            let detail = last_error
                .map(|e| format!(" (last error: {e:#})"))
                .unwrap_or_default();
            anyhow::bail!("timed out after {limit:?} waiting for {what}{detail}");
        }
        tokio::time::sleep(every).await;
    }
}

/// What "converged" means for a group across nodes: everyone on one epoch and branch with the
/// same members, no forked state held, and the same set of message ids, each exactly once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Convergence {
    pub epoch: u64,
    pub branch_id: String,
    pub members: Vec<String>,
    pub messages: usize,
}

/// [`converged`] after crashes: a message a node stored but was killed before acknowledging
/// may show up too, so what all must show is the first node's set, provided it holds every
/// `acknowledged` id. Returns the convergence and that set.
pub async fn converged_keeping(
    nodes: &[&LocalNode],
    group: &str,
    acknowledged: &std::collections::BTreeSet<String>,
) -> anyhow::Result<Option<(Convergence, std::collections::BTreeSet<String>)>> {
    let first = nodes.first().context("no nodes")?;
    let shown: std::collections::BTreeSet<String> = first
        .messages(group)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    if !acknowledged.is_subset(&shown) {
        return Ok(None);
    }
    Ok(converged(nodes, group, &shown).await?.map(|c| (c, shown)))
}

pub async fn converged(
    nodes: &[&LocalNode],
    group: &str,
    expected_messages: &std::collections::BTreeSet<String>,
) -> anyhow::Result<Option<Convergence>> {
    let mut first: Option<GroupStatusView> = None;
    for node in nodes {
        let Some(s) = node.status(group).await? else {
            return Ok(None);
        };
        if s.fork != "settled" {
            return Ok(None);
        }
        let msgs = node.messages(group).await?;
        let ids: std::collections::BTreeSet<String> = msgs.iter().map(|m| m.id.clone()).collect();
        if ids.len() != msgs.len() {
            anyhow::bail!("{} shows a message twice", node.name);
        }
        if &ids != expected_messages {
            return Ok(None);
        }
        match &first {
            None => first = Some(s),
            Some(f) => {
                let fingerprints = |v: &GroupStatusView| {
                    v.members
                        .iter()
                        .map(|m| m.fingerprint.clone())
                        .collect::<Vec<_>>()
                };
                if f.epoch != s.epoch
                    || f.branch_id != s.branch_id
                    || fingerprints(f) != fingerprints(&s)
                {
                    return Ok(None);
                }
            }
        }
    }
    Ok(first.map(|s| Convergence {
        epoch: s.epoch,
        branch_id: s.branch_id,
        members: s.members.into_iter().map(|m| m.handle).collect(),
        messages: expected_messages.len(),
    }))
}

/// Creates and starts nodes named `names` under `root`: the first listens, the others
/// bootstrap to it. Returns the nodes and the first node's address.
pub async fn start_nodes(
    root: &Path,
    names: &[&str],
    options: &NodeOptions,
) -> anyhow::Result<(Vec<LocalNode>, String)> {
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(LocalNode::init(root, name)?);
    }
    start_all(&mut nodes, options).await?;
    let boot = nodes[0]
        .listen
        .clone()
        .context("the first node has no address")?;
    Ok((nodes, boot))
}

/// Starts nodes already created (and perhaps placed in namespaces): the first, then the others
/// bootstrapping to it.
pub async fn start_all(nodes: &mut [LocalNode], options: &NodeOptions) -> anyhow::Result<()> {
    let (first, rest) = nodes.split_first_mut().context("no nodes")?;
    first.start(options, 0, &[]).await?;
    let boot = first
        .listen
        .clone()
        .context("the first node has no address")?;
    for node in rest {
        node.start(options, 0, std::slice::from_ref(&boot)).await?;
    }
    Ok(())
}

/// The first node adds every other node as a contact (invite codes), creates `group`, invites
/// them all, and waits until each has joined. Returns the group id.
pub async fn group_of_all(
    nodes: &[LocalNode],
    group: &str,
    limit: Duration,
) -> anyhow::Result<String> {
    let (first, rest) = nodes.split_first().context("no nodes")?;
    for node in rest {
        first.add_contact(&node.invite_code().await?).await?;
    }
    let gid = first.create_group(group).await?.group_id;
    for node in rest {
        first.invite(group, &node.name).await?;
    }
    for node in rest {
        wait_for(&format!("{} to join", node.name), limit, || async {
            Ok(node.status(&gid).await?.map(|_| ()))
        })
        .await?;
    }
    Ok(gid)
}
