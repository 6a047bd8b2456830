//! `chorus soak`: real nodes on loopback under sustained traffic, commits, crashes and
//! partitions for a bounded time, then a check that every acknowledged message reached every
//! member once, and how each node's memory behaved.
//!
//! The nodes are split in two halves. The **stable** half (the first node, everyone's bootstrap
//! peer, among them) is never restarted, so its memory can be followed over the whole run. The
//! **volatile** half is where faults land:
//! - a crash kills one volatile node with SIGKILL and restarts it over the same data directory
//!   after a few seconds;
//! - a partition restarts a few volatile nodes as an island (new ports, bootstrapping only to
//!   each other, so nobody outside knows how to reach them), and later restarts them again with
//!   the usual bootstrap peer, which heals it.
//!
//! Partitions are kept shorter than the fork window the nodes run with: healing splits that
//! outlive the window is a separate piece of work, and the soak is about leaks and losses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::api::views::StatusView;
use crate::demo::harness::{LocalNode, NodeOptions, converged_keeping, wait_for};

/// What `chorus soak` runs; see `chorus soak --help` for each field.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub nodes: usize,
    pub groups: usize,
    pub group_size: usize,
    pub duration: Duration,
    pub messages_per_minute: f64,
    pub commit_every: Duration,
    pub crash_every: Duration,
    pub partition_every: Duration,
    pub fork_window: Duration,
    /// Written to each node's config.toml when given.
    pub db_memory_mib: Option<u64>,
    pub seed: Option<u64>,
    pub keep: bool,
    pub json: Option<PathBuf>,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            nodes: 10,
            groups: 3,
            group_size: 5,
            duration: Duration::from_secs(600),
            messages_per_minute: 6.0,
            commit_every: Duration::from_secs(30),
            crash_every: Duration::from_secs(60),
            partition_every: Duration::from_secs(120),
            fork_window: Duration::from_secs(120),
            db_memory_mib: None,
            seed: None,
            keep: false,
            json: None,
        }
    }
}

/// Parses `90s`, `10m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 90s, 10m or 1h)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One node's memory over the run (kB, from /proc/<pid>/status).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryFigures {
    pub name: String,
    pub stable: bool,
    pub restarts: usize,
    /// The highest VmHWM of any of its processes.
    pub peak_rss_kb: u64,
    /// VmRSS at the first sample after warm-up, and at the last sample of the run.
    pub rss_after_warmup_kb: Option<u64>,
    pub rss_at_end_kb: Option<u64>,
    /// Of that, what the database held (memtables and block cache, from `status`), at the
    /// same two samples: what the RSS growth owes to the database and what to the rest.
    pub db_after_warmup_kb: Option<u64>,
    pub db_at_end_kb: Option<u64>,
    /// The allocator's bytes in use (the database's included) at the same samples: RSS
    /// growing while this stays flat is the heap fragmenting, not the node holding more.
    pub heap_after_warmup_kb: Option<u64>,
    pub heap_at_end_kb: Option<u64>,
    /// VmRSS at the first sample after half the run: the second half's growth says whether
    /// memory levels off, apart from the warm-up's caches filling.
    pub rss_at_half_kb: Option<u64>,
    /// One sample a minute over the whole run, for plotting (the JSON report has them).
    pub samples: Vec<MemorySample>,
}

/// A node's memory at one moment of the run (kB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemorySample {
    /// Seconds since traffic started.
    pub at_s: u64,
    pub rss_kb: u64,
    /// The allocator's bytes in use, the database's included.
    pub heap_kb: Option<u64>,
    /// The database's memtables and block cache.
    pub db_kb: Option<u64>,
}

impl MemorySample {
    /// The RSS less the database's bounded part.
    pub fn rss_outside_db_kb(&self) -> Option<u64> {
        self.rss_kb.checked_sub(self.db_kb?)
    }
}

impl MemoryFigures {
    /// Growth from warm-up to the end, in percent (stable nodes only: a restart resets it).
    pub fn growth_percent(&self) -> Option<f64> {
        self.stable_growth(self.rss_after_warmup_kb?, self.rss_at_end_kb?)
    }

    /// Growth from `a` to `b` in percent, for a stable node only (a restart resets it).
    fn stable_growth(&self, a: u64, b: u64) -> Option<f64> {
        (self.stable && a > 0).then(|| (b as f64 - a as f64) * 100.0 / a as f64)
    }

    /// Growth from warm-up to the end of the RSS less the database's part, in percent
    /// (stable nodes only). The database's part is bounded by `db_memory_mib` and fills as
    /// the logs grow; this is the growth of everything else.
    pub fn growth_outside_db_percent(&self) -> Option<f64> {
        let a = self
            .rss_after_warmup_kb?
            .checked_sub(self.db_after_warmup_kb?)?;
        let b = self.rss_at_end_kb?.checked_sub(self.db_at_end_kb?)?;
        self.stable_growth(a, b)
    }

    /// Growth over the second half of the run, in percent (stable nodes only).
    pub fn second_half_growth_percent(&self) -> Option<f64> {
        self.stable_growth(self.rss_at_half_kb?, self.rss_at_end_kb?)
    }
}

/// What a soak run found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SoakReport {
    pub seed: u64,
    pub duration_s: f64,
    /// Sends a node acknowledged.
    pub sent: usize,
    /// Sends refused or unanswered (the node was being killed, or was down).
    pub send_failures: usize,
    pub commits: usize,
    pub crashes: usize,
    pub partitions: usize,
    /// (message, member) pairs that should be shown, and those shown.
    pub expected_deliveries: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub converged: bool,
    pub memory: Vec<MemoryFigures>,
}

/// A message that went out, and the group it belongs to.
struct Sent {
    group: usize,
    id: String,
}

struct Soak {
    options: SoakOptions,
    node_options: NodeOptions,
    nodes: Vec<LocalNode>,
    /// Members of each group (node indexes) and its id.
    groups: Vec<(Vec<usize>, String)>,
    boot: String,
    rng: StdRng,
    /// Nodes down after a crash, with when they come back.
    down: BTreeMap<usize, Instant>,
    /// The island of the current partition, with when it heals.
    island: Option<(Vec<usize>, Instant)>,
    sent: Vec<Sent>,
    report: SoakReport,
    memory: Vec<MemoryFigures>,
}

pub async fn run(options: SoakOptions) -> anyhow::Result<SoakReport> {
    if options.nodes < 4 {
        anyhow::bail!("--nodes must be at least 4 (two stable, two volatile)");
    }
    if options.group_size < 2 || options.group_size > options.nodes {
        anyhow::bail!(
            "--group-size must be between 2 and --nodes ({})",
            options.nodes
        );
    }
    if options.groups == 0 || options.messages_per_minute <= 0.0 {
        anyhow::bail!("--groups and --messages-per-minute must be positive");
    }
    let seed = options.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chorus soak: {} nodes, {} groups of {}, {:?}, seed {seed} (--seed {seed} repeats the \
         choices; timing still varies)",
        options.nodes, options.groups, options.group_size, options.duration
    );
    let dir = tempfile::Builder::new().prefix("chorus-soak-").tempdir()?;
    let node_options = NodeOptions {
        fork_window_ms: options.fork_window.as_millis() as u64,
        ..NodeOptions::default()
    };
    let mut soak = Soak {
        memory: Vec::new(),
        node_options,
        nodes: Vec::new(),
        groups: Vec::new(),
        boot: String::new(),
        rng: StdRng::seed_from_u64(seed),
        down: BTreeMap::new(),
        island: None,
        sent: Vec::new(),
        report: SoakReport {
            seed,
            ..SoakReport::default()
        },
        options,
    };
    let result = soak.run(dir.path()).await;
    let kept = soak.options.keep.then(|| dir.keep());
    for node in soak.nodes.iter_mut() {
        let _ = node.stop().await;
    }
    if let Some(path) = kept {
        eprintln!("data and logs kept in {}", path.display());
    }
    result?;
    let report = soak.report;
    print_report(&report);
    if let Some(path) = &soak.options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

impl Soak {
    fn stable(&self, i: usize) -> bool {
        i < self.options.nodes / 2
    }

    async fn run(&mut self, root: &std::path::Path) -> anyhow::Result<()> {
        self.start(root).await?;
        eprintln!("· nodes up; forming groups…");
        self.form_groups().await?;
        eprintln!("· traffic with crashes and partitions…");
        let start = Instant::now();
        let end = start + self.options.duration;
        let warmup = start + self.options.duration / 4;
        let half = start + self.options.duration / 2;
        let mut next_send = start + self.send_gap();
        let mut next_commit = start + self.options.commit_every;
        let mut next_crash = start + self.options.crash_every;
        let mut next_partition = start + self.options.partition_every;
        let mut next_sample = start;
        let mut next_record = start;
        let mut next_progress = start + Duration::from_secs(30);
        let (mut warm, mut halfway) = (false, false);
        while Instant::now() < end {
            let now = Instant::now();
            self.restart_due(now).await?;
            if now >= next_send {
                self.send_one().await;
                next_send = now + self.send_gap();
            }
            if now >= next_commit {
                self.commit_one().await;
                next_commit = now + self.options.commit_every;
            }
            // A fault that finds no node to hit (all volatile ones down or in the island) is
            // tried again a second later rather than skipped for a whole period.
            if now >= next_crash {
                next_crash = now
                    + if self.crash_one().await? {
                        self.options.crash_every
                    } else {
                        Duration::from_secs(1)
                    };
            }
            if now >= next_partition {
                next_partition = now
                    + if self.partition().await? {
                        self.options.partition_every
                    } else {
                        Duration::from_secs(1)
                    };
            }
            if now >= next_sample {
                let after_warmup = now >= warmup && !warm;
                warm |= after_warmup;
                let at_half = now >= half && !halfway;
                halfway |= at_half;
                let record = (now >= next_record).then(|| (now - start).as_secs());
                self.sample_memory(after_warmup, at_half, record).await;
                next_sample = now + Duration::from_secs(5);
                if record.is_some() {
                    next_record = now + Duration::from_secs(60);
                }
            }
            if now >= next_progress {
                self.progress(now - start);
                next_progress = now + Duration::from_secs(30);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sample_memory(false, false, Some(start.elapsed().as_secs()))
            .await;
        self.report.duration_s = start.elapsed().as_secs_f64();
        eprintln!("· healing every fault and waiting for every group to converge…");
        self.heal_all().await?;
        self.check_delivery().await
    }

    async fn start(&mut self, root: &std::path::Path) -> anyhow::Result<()> {
        for i in 0..self.options.nodes {
            let mut node = LocalNode::init(root, &format!("n{i:02}"))?;
            if let Some(mib) = self.options.db_memory_mib {
                let path = node.data.config();
                std::fs::write(&path, format!("db_memory_mib = {mib}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let boot = self.nodes.first().map(|_| self.boot.clone());
            node.start(&self.node_options, 0, boot.as_slice()).await?;
            if i == 0 {
                self.boot = node
                    .listen
                    .clone()
                    .context("the first node has no address")?;
            }
            self.memory.push(MemoryFigures {
                name: node.name.clone(),
                stable: i < self.options.nodes / 2,
                ..MemoryFigures::default()
            });
            self.nodes.push(node);
        }
        Ok(())
    }

    /// Group g's members are `group_size` consecutive nodes from a spread-out start; the
    /// first of them creates it and invites the others.
    async fn form_groups(&mut self) -> anyhow::Result<()> {
        let n = self.options.nodes;
        let limit = Duration::from_secs(60);
        for g in 0..self.options.groups {
            let first = g * n / self.options.groups;
            let members: Vec<usize> = (0..self.options.group_size)
                .map(|k| (first + k) % n)
                .collect();
            let creator = &self.nodes[members[0]];
            let name = format!("soak{g}");
            let gid = creator.create_group(&name).await?.group_id;
            for &m in &members[1..] {
                let code = self.nodes[m].invite_code().await?;
                let contact = creator.add_contact(&code).await?.name;
                creator.invite(&name, &contact).await?;
            }
            for &m in &members[1..] {
                let node = &self.nodes[m];
                wait_for(&format!("{} to join {name}", node.name), limit, || async {
                    Ok(node.status(&gid).await?.map(|_| ()))
                })
                .await?;
            }
            self.groups.push((members, gid));
        }
        Ok(())
    }

    fn up(&self, i: usize) -> bool {
        !self.down.contains_key(&i) && self.nodes[i].client.is_some()
    }

    /// Exponential gaps: `messages_per_minute` per member and group on average.
    fn send_gap(&mut self) -> Duration {
        let memberships = (self.options.groups * self.options.group_size) as f64;
        let per_second = self.options.messages_per_minute * memberships / 60.0;
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        Duration::from_secs_f64(-u.ln() / per_second)
    }

    async fn send_one(&mut self) {
        let g = self.rng.gen_range(0..self.groups.len());
        let (members, gid) = &self.groups[g];
        let m = members[self.rng.gen_range(0..members.len())];
        if !self.up(m) {
            self.report.send_failures += 1;
            return;
        }
        let text = format!("{} soak message {}", self.nodes[m].name, self.sent.len());
        match self.nodes[m].send(gid, &text).await {
            Ok(message) => {
                self.report.sent += 1;
                self.sent.push(Sent {
                    group: g,
                    id: message.id,
                });
            }
            Err(e) => {
                self.report.send_failures += 1;
                tracing::warn!("{} could not send: {e:#}", self.nodes[m].name);
            }
        }
    }

    async fn commit_one(&mut self) {
        let g = self.rng.gen_range(0..self.groups.len());
        let (members, gid) = &self.groups[g];
        let m = members[self.rng.gen_range(0..members.len())];
        if self.up(m) && self.nodes[m].update(gid).await.is_ok() {
            self.report.commits += 1;
        }
    }

    /// Volatile nodes that are up and not in the island.
    fn crash_candidates(&self) -> Vec<usize> {
        let in_island = |i: &usize| self.island.as_ref().is_some_and(|(v, _)| v.contains(i));
        (0..self.options.nodes)
            .filter(|&i| !self.stable(i) && self.up(i) && !in_island(&i))
            .collect()
    }

    /// Kills a volatile node; whether there was one to kill.
    async fn crash_one(&mut self) -> anyhow::Result<bool> {
        let Some(&victim) = self.crash_candidates().choose(&mut self.rng) else {
            return Ok(false);
        };
        self.nodes[victim].kill().await?;
        self.memory[victim].restarts += 1;
        let back = Instant::now() + Duration::from_millis(self.rng.gen_range(3_000..15_000));
        self.down.insert(victim, back);
        self.report.crashes += 1;
        Ok(true)
    }

    /// Starts a partition; whether one started (not while one runs, nor with no volatile
    /// node up).
    async fn partition(&mut self) -> anyhow::Result<bool> {
        if self.island.is_some() {
            return Ok(false);
        }
        let mut candidates = self.crash_candidates();
        if candidates.is_empty() {
            return Ok(false);
        }
        candidates.shuffle(&mut self.rng);
        let size = self.rng.gen_range(1..=candidates.len().min(3));
        let island: Vec<usize> = candidates[..size].to_vec();
        // Up to a third of the window: the split heals well inside it.
        let longest = (self.options.fork_window / 3).max(Duration::from_secs(2));
        let length = self
            .rng
            .gen_range(longest / 3..=longest)
            .min(self.options.partition_every);
        self.restart(&island, true).await?;
        self.island = Some((island, Instant::now() + length));
        self.report.partitions += 1;
        Ok(true)
    }

    /// Restarts `who` (graceful stop, then start): as an island bootstrapping only to its
    /// own first node, or back with everyone's bootstrap peer.
    async fn restart(&mut self, who: &[usize], as_island: bool) -> anyhow::Result<()> {
        let mut island_boot: Option<String> = None;
        for &i in who {
            self.nodes[i].stop().await?;
            let boot = match (as_island, &island_boot) {
                (false, _) => vec![self.boot.clone()],
                (true, None) => Vec::new(),
                (true, Some(b)) => vec![b.clone()],
            };
            self.nodes[i].start(&self.node_options, 0, &boot).await?;
            if as_island && island_boot.is_none() {
                island_boot = self.nodes[i].listen.clone();
            }
            self.memory[i].restarts += 1;
        }
        Ok(())
    }

    /// Brings back crashed nodes and heals the partition when their time has come.
    async fn restart_due(&mut self, now: Instant) -> anyhow::Result<()> {
        let due: Vec<usize> = self
            .down
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(i, _)| *i)
            .collect();
        for i in due {
            self.down.remove(&i);
            let boot = [self.boot.clone()];
            self.nodes[i].start(&self.node_options, 0, &boot).await?;
        }
        if let Some((island, heal_at)) = self.island.clone()
            && heal_at <= now
        {
            self.restart(&island, false).await?;
            self.island = None;
        }
        Ok(())
    }

    async fn heal_all(&mut self) -> anyhow::Result<()> {
        let far = Instant::now() + Duration::from_secs(3600);
        for at in self.down.values_mut() {
            *at = Instant::now();
        }
        if let Some((_, heal_at)) = self.island.as_mut() {
            *heal_at = Instant::now();
        }
        self.restart_due(far).await
    }

    /// Reads every running node's memory; `record_at` (seconds into the run) also keeps the
    /// sample in the node's series.
    async fn sample_memory(&mut self, after_warmup: bool, at_half: bool, record_at: Option<u64>) {
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(pid) = node.child.as_ref().and_then(|c| c.id()) else {
                continue;
            };
            let Some((rss, hwm)) = proc_memory(pid) else {
                continue;
            };
            let reported = match node.client() {
                Ok(client) => client
                    .get::<StatusView>("/v1/status")
                    .await
                    .ok()
                    .and_then(|s| s.memory),
                Err(_) => None,
            };
            let db_kb = reported.map(|m| (m.db_memtables_bytes + m.db_block_cache_bytes) / 1024);
            let heap_kb = reported.and_then(|m| m.heap_in_use_bytes).map(|b| b / 1024);
            let m = &mut self.memory[i];
            m.peak_rss_kb = m.peak_rss_kb.max(hwm);
            if after_warmup {
                m.rss_after_warmup_kb = Some(rss);
                m.db_after_warmup_kb = db_kb;
                m.heap_after_warmup_kb = heap_kb;
            }
            if at_half {
                m.rss_at_half_kb = Some(rss);
            }
            m.rss_at_end_kb = Some(rss);
            m.db_at_end_kb = db_kb;
            m.heap_at_end_kb = heap_kb;
            if let Some(at_s) = record_at {
                m.samples.push(MemorySample {
                    at_s,
                    rss_kb: rss,
                    heap_kb,
                    db_kb,
                });
            }
        }
    }

    fn progress(&self, elapsed: Duration) {
        let up = (0..self.nodes.len()).filter(|&i| self.up(i)).count();
        let island = self
            .island
            .as_ref()
            .map(|(v, _)| {
                let names: Vec<&str> = v.iter().map(|&i| self.nodes[i].name.as_str()).collect();
                format!(" · island {}", names.join(","))
            })
            .unwrap_or_default();
        eprintln!(
            "  [{:>4}s/{}s] sent {} · commits {} · crashes {} · partitions {} · up {up}/{}{island}",
            elapsed.as_secs(),
            self.options.duration.as_secs(),
            self.report.sent,
            self.report.commits,
            self.report.crashes,
            self.report.partitions,
            self.nodes.len()
        );
    }

    /// Waits until each group has converged on a message set holding every acknowledged
    /// message, then counts deliveries per member.
    async fn check_delivery(&mut self) -> anyhow::Result<()> {
        let limit = self.options.fork_window + Duration::from_secs(120);
        let mut all_converged = true;
        for (g, (members, gid)) in self.groups.iter().enumerate() {
            let acknowledged: BTreeSet<String> = self
                .sent
                .iter()
                .filter(|s| s.group == g)
                .map(|s| s.id.clone())
                .collect();
            let nodes: Vec<&LocalNode> = members.iter().map(|&m| &self.nodes[m]).collect();
            let outcome = wait_for(&format!("group {g} to converge"), limit, || {
                converged_keeping(&nodes, gid, &acknowledged)
            })
            .await;
            if let Err(e) = outcome {
                eprintln!("  group {g}: {e:#}");
                all_converged = false;
            }
            for node in &nodes {
                let shown = node.messages(gid).await.unwrap_or_default();
                let ids: BTreeSet<&String> = shown.iter().map(|m| &m.id).collect();
                self.report.duplicates += shown.len() - ids.len();
                let got = acknowledged.iter().filter(|id| ids.contains(id)).count();
                self.report.expected_deliveries += acknowledged.len();
                self.report.delivered += got;
                self.report.lost += acknowledged.len() - got;
            }
        }
        self.report.converged = all_converged;
        self.report.memory = self.memory.clone();
        Ok(())
    }
}

/// (VmRSS, VmHWM) of a process in kB, if it is still there.
fn proc_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn print_report(r: &SoakReport) {
    println!(
        "\nsoak, seed {}, {:.0} s of traffic: {} crashes, {} partitions, {} commits",
        r.seed, r.duration_s, r.crashes, r.partitions, r.commits
    );
    println!(
        "messages: {} sent (acknowledged), {} sends refused while a node was down or dying",
        r.sent, r.send_failures
    );
    println!(
        "deliveries (message × member): {} expected, {} delivered, {} lost, {} duplicates; \
         converged: {}",
        r.expected_deliveries, r.delivered, r.lost, r.duplicates, r.converged
    );
    println!(
        "\n{:<6} {:>9} {:>9} {:>16} {:>12} {:>8} {:>17} {:>13}",
        "node",
        "kind",
        "restarts",
        "RSS warm→end MiB",
        "peak MiB",
        "growth",
        "heap in use MiB",
        "of it DB MiB"
    );
    let warm_to_end = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}→{:.1}", mib(a), mib(b)),
        _ => "-".into(),
    };
    for m in &r.memory {
        let warm_end = warm_to_end(m.rss_after_warmup_kb, m.rss_at_end_kb);
        let db = warm_to_end(m.db_after_warmup_kb, m.db_at_end_kb);
        let heap = warm_to_end(m.heap_after_warmup_kb, m.heap_at_end_kb);
        let growth = m
            .growth_percent()
            .map(|g| format!("{g:+.1}%"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<6} {:>9} {:>9} {:>16} {:>12.1} {:>8} {:>17} {:>13}",
            m.name,
            if m.stable { "stable" } else { "volatile" },
            m.restarts,
            warm_end,
            mib(m.peak_rss_kb),
            growth,
            heap,
            db
        );
    }
    let growths: Vec<f64> = r.memory.iter().filter_map(|m| m.growth_percent()).collect();
    if let Some(max) = growths.iter().cloned().reduce(f64::max) {
        println!("\nlargest growth of a stable node after warm-up: {max:+.1}%");
    }
    print_growths(
        r,
        "growth over the second half of the run",
        MemoryFigures::second_half_growth_percent,
    );
    print_growths(
        r,
        "growth after warm-up of the RSS less the database's bounded part",
        MemoryFigures::growth_outside_db_percent,
    );
    print_series(r);
    println!(
        "goals: zero lost: {}; no duplicates: {}",
        if r.lost == 0 { "met" } else { "NOT met" },
        if r.duplicates == 0 { "met" } else { "NOT met" }
    );
}

/// Each stable node's RSS less the database's part, and the database's part, at every tenth
/// of the run: whether memory levels off, at a glance (the JSON report has every minute).
fn print_series(r: &SoakReport) {
    let stable: Vec<&MemoryFigures> = r
        .memory
        .iter()
        .filter(|m| m.stable && m.samples.len() > 1)
        .collect();
    let Some(first) = stable.first() else { return };
    let picks = |n: usize| -> Vec<usize> {
        let mut at: Vec<usize> = (0..=10).map(|k| k * (n - 1) / 10).collect();
        at.dedup();
        at
    };
    let minutes: Vec<String> = picks(first.samples.len())
        .into_iter()
        .map(|i| format!("{:>6}", format!("{}m", first.samples[i].at_s / 60)))
        .collect();
    println!(
        "\nRSS less the database's part / the database's part, MiB, over the run:\n{:<6} {}",
        "node",
        minutes.join(" ")
    );
    for m in stable {
        let cell = |f: fn(&MemorySample) -> Option<u64>| -> String {
            picks(m.samples.len())
                .into_iter()
                .map(|i| match f(&m.samples[i]) {
                    Some(kb) => format!("{:>6.1}", mib(kb)),
                    None => format!("{:>6}", "-"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("{:<6} {}", m.name, cell(MemorySample::rss_outside_db_kb));
        println!("{:<6} {}", "  db", cell(|s| s.db_kb));
    }
}

/// One line naming each stable node's `growth`, if any node has one.
fn print_growths(r: &SoakReport, what: &str, growth: fn(&MemoryFigures) -> Option<f64>) {
    let each: Vec<String> = r
        .memory
        .iter()
        .filter_map(|m| Some(format!("{} {:+.1}%", m.name, growth(m)?)))
        .collect();
    if !each.is_empty() {
        println!("{what}: {}", each.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn growth_is_reported_for_stable_nodes_only() {
        let mut m = MemoryFigures {
            stable: true,
            rss_after_warmup_kb: Some(1000),
            rss_at_end_kb: Some(1100),
            ..MemoryFigures::default()
        };
        assert_eq!(m.growth_percent(), Some(10.0));
        assert_eq!(m.second_half_growth_percent(), None);
        m.rss_at_half_kb = Some(1050);
        assert_eq!(m.second_half_growth_percent(), Some(50.0 * 100.0 / 1050.0));
        assert_eq!(m.growth_outside_db_percent(), None);
        m.db_after_warmup_kb = Some(200);
        m.db_at_end_kb = Some(290);
        assert_eq!(m.growth_outside_db_percent(), Some(10.0 * 100.0 / 800.0));
        m.stable = false;
        assert_eq!(m.growth_outside_db_percent(), None);
        let sample = MemorySample {
            at_s: 60,
            rss_kb: 1000,
            heap_kb: Some(500),
            db_kb: Some(300),
        };
        assert_eq!(sample.rss_outside_db_kb(), Some(700));
        let unreported = MemorySample {
            db_kb: None,
            ..sample
        };
        assert_eq!(unreported.rss_outside_db_kb(), None);
        assert_eq!(m.growth_percent(), None);
        assert_eq!(m.second_half_growth_percent(), None);
    }
}
