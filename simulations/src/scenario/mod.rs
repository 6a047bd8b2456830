//! Scenario files (TOML): what network, which groups, what happens when. Every field is
//! documented in `simulations/README.md`; unknown fields are refused and bad values are
//! reported with the field that holds them.
//!
//! - [`nodes`]: how files name nodes.
//! - [`network`] and [`workload`]: the sections as written.
//! - this file: the whole file, its defaults, and [`Scenario`], the checked form a run uses.

pub mod network;
pub mod nodes;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ds_p2p::engine::{ConsistencyMode, ResendPolicy, TieBreak};
use serde::Deserialize;

use crate::cost::CostModel;
use crate::error::SimError;
use crate::time::{Dur, Micros};
pub use network::{LatencySpec, NetworkSpec};
pub use nodes::{NodeId, node_name, parse_node, parse_nodes};
pub use workload::CommitOp;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_seed")]
    seed: u64,
    duration: Dur,
    nodes: usize,
    #[serde(default)]
    engine: EngineSpec,
    #[serde(default)]
    network: NetworkSpec,
    #[serde(default)]
    dissemination: DisseminationSpec,
    #[serde(default)]
    sync: SyncSpec,
    #[serde(default)]
    cpu: CostModel,
    #[serde(default)]
    metrics: MetricsSpec,
    #[serde(default)]
    partitions: Vec<network::PartitionSpec>,
    #[serde(default)]
    flaps: Vec<network::FlapSpec>,
    #[serde(default)]
    crashes: Vec<network::CrashSpec>,
    #[serde(default)]
    groups: Vec<workload::GroupSpec>,
    #[serde(default)]
    commits: Vec<workload::CommitSpec>,
    #[serde(default)]
    bursts: Vec<workload::BurstSpec>,
    #[serde(default)]
    joins: Vec<workload::JoinSpec>,
}

fn default_seed() -> u64 {
    1
}

/// The `[engine]` section: the engine configuration under test.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSpec {
    /// How long forked states are held (the fork window W).
    pub fork_window: Dur,
    /// At most this many held states per group (K).
    pub max_held: usize,
    /// `lowest-ref`, `removes-first` or `deepest-branch`.
    #[serde(deserialize_with = "policy")]
    pub policy: TieBreak,
    /// How often members publish a beacon.
    pub beacon_interval: Dur,
    /// How every group orders concurrent commits: `accept-and-hold` (the default),
    /// `settle-then-pick` (2 s settle), `settle-then-pick:<ms>` or `sequencer`.
    #[serde(deserialize_with = "consistency")]
    pub consistency: ConsistencyMode,
    /// Who may read an own message sent again: `everyone` (the default; nothing is lost) or
    /// `members-at-send` (only groups whose every member was in it when it was sent).
    pub resend_policy: ResendPolicy,
}

impl Default for EngineSpec {
    fn default() -> Self {
        Self {
            fork_window: Dur::from_secs(60),
            max_held: 16,
            policy: TieBreak::default(),
            beacon_interval: Dur::from_secs(30),
            consistency: ConsistencyMode::default(),
            resend_policy: ResendPolicy::default(),
        }
    }
}

fn consistency<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ConsistencyMode, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TieBreak, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// How envelopes spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The publisher sends to every subscriber of the topic (gossipsub's flood publishing).
    Flood,
    /// A gossipsub-like mesh: eager push to `mesh_degree` peers, lazy IHAVE/IWANT gossip
    /// to `lazy_degree` others on every heartbeat.
    Mesh,
}

/// The `[dissemination]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisseminationSpec {
    pub mode: Mode,
    pub mesh_degree: usize,
    pub lazy_degree: usize,
    pub heartbeat: Dur,
    /// Ids received within this long are announced in IHAVEs (gossipsub: 3 heartbeats).
    pub history: Dur,
    /// Mesh mode: the publisher also sends to every subscriber, not only its mesh peers.
    pub flood_publish: bool,
}

impl Default for DisseminationSpec {
    fn default() -> Self {
        Self {
            mode: Mode::Flood,
            mesh_degree: 6,
            lazy_degree: 6,
            heartbeat: Dur::from_secs(1),
            history: Dur::from_secs(3),
            flood_publish: false,
        }
    }
}

/// The `[sync]` section: anti-entropy with gossip's range-based set reconciliation.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSpec {
    pub enabled: bool,
    /// Every node syncs each of its topics with a random reachable peer this often.
    pub interval: Dur,
    /// Only envelopes published within this long are reconciled.
    pub window: Dur,
    /// Sync at once when a partition heals, a flapping link comes back or a node restarts.
    pub on_connect: bool,
}

impl Default for SyncSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Dur::from_secs(30),
            window: Dur::from_secs(3600),
            on_connect: true,
        }
    }
}

/// The `[metrics]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSpec {
    /// One `timeline.csv` row per interval.
    pub interval: Dur,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            interval: Dur::from_secs(1),
        }
    }
}

/// Members of a group: listed, or drawn at random when the run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    Listed(Vec<NodeId>),
    Random(usize),
}

/// A group of the run.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub members: Members,
    pub create_at: Micros,
    pub traffic: Option<workload::TrafficSpec>,
    pub random_commits: Option<workload::RandomCommitsSpec>,
}

/// A partition with its sides resolved.
#[derive(Debug, Clone)]
pub struct Partition {
    pub start: Micros,
    pub heal: Option<Micros>,
    /// Side names, `rest` last when some node is on no listed side.
    pub side_names: Vec<String>,
    /// The side index of every node.
    pub side_of: Vec<usize>,
    /// Only traffic from the first to the second side is cut.
    pub one_way: Option<(usize, usize)>,
}

/// A flapping link.
#[derive(Debug, Clone)]
pub struct Flap {
    pub a: BTreeSet<NodeId>,
    pub b: BTreeSet<NodeId>,
    pub start: Micros,
    pub end: Micros,
    pub period: Micros,
    pub down: Micros,
}

/// A crash.
#[derive(Debug, Clone)]
pub struct Crash {
    pub node: NodeId,
    pub at: Micros,
    pub restart: Option<Micros>,
}

/// A link override.
#[derive(Debug, Clone)]
pub struct Link {
    pub a: BTreeSet<NodeId>,
    pub b: BTreeSet<NodeId>,
    pub latency: Option<LatencySpec>,
    pub loss: Option<f64>,
}

/// A scheduled commit.
#[derive(Debug, Clone)]
pub struct Commit {
    pub at: Micros,
    pub group: usize,
    pub node: NodeId,
    pub op: CommitOp,
    pub target: Option<NodeId>,
}

/// Concurrent commits.
#[derive(Debug, Clone)]
pub struct Burst {
    pub at: Micros,
    pub group: usize,
    pub nodes: Vec<NodeId>,
    pub committers: usize,
    pub op: CommitOp,
}

/// A join.
#[derive(Debug, Clone)]
pub struct Join {
    pub at: Micros,
    pub group: usize,
    pub node: NodeId,
    pub by: Option<NodeId>,
}

/// A checked scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub duration: Micros,
    pub nodes: usize,
    pub engine: EngineSpec,
    pub network: NetworkSpec,
    pub links: Vec<Link>,
    /// Fixed clock offsets (µs) by node.
    pub skew: BTreeMap<NodeId, i64>,
    pub dissemination: DisseminationSpec,
    pub sync: SyncSpec,
    pub cpu: CostModel,
    pub metrics: MetricsSpec,
    pub partitions: Vec<Partition>,
    pub flaps: Vec<Flap>,
    pub crashes: Vec<Crash>,
    pub groups: Vec<Group>,
    pub commits: Vec<Commit>,
    pub bursts: Vec<Burst>,
    pub joins: Vec<Join>,
}

impl Scenario {
    /// Reads and checks a scenario file; its name defaults to the file name.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Self::parse(&stem, &text)
    }

    /// Parses and checks scenario text; `name` is used when the file has none.
    pub fn parse(name: &str, text: &str) -> Result<Self, SimError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| SimError::Parse {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        resolve(name, file)
    }

    /// The last instant the network heals (partition heal, flap end, restart), if any fault.
    pub fn last_heal(&self) -> Option<Micros> {
        let heals = self.partitions.iter().filter_map(|p| p.heal);
        let flaps = self.flaps.iter().map(|f| f.end);
        let restarts = self.crashes.iter().filter_map(|c| c.restart);
        heals.chain(flaps).chain(restarts).max()
    }

    /// Whether some fault never heals (a partition without heal, a crash without restart).
    pub fn has_permanent_fault(&self) -> bool {
        self.partitions.iter().any(|p| p.heal.is_none())
            || self.crashes.iter().any(|c| c.restart.is_none())
    }

    /// The last instant the workload changes a group (a commit, burst, join or creation).
    pub fn last_membership_action(&self) -> Micros {
        let commits = self.commits.iter().map(|c| c.at);
        let bursts = self.bursts.iter().map(|b| b.at);
        let joins = self.joins.iter().map(|j| j.at);
        let creates = self.groups.iter().map(|g| g.create_at);
        commits
            .chain(bursts)
            .chain(joins)
            .chain(creates)
            .max()
            .unwrap_or(0)
    }

    /// Group index by name.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }
}

fn prob(name: &str, field: &str, p: f64) -> Result<(), SimError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(SimError::invalid(
            name,
            field,
            format!("{p} is not a probability (0 to 1)"),
        ));
    }
    Ok(())
}

fn resolve(fallback_name: &str, f: ScenarioFile) -> Result<Scenario, SimError> {
    let name = f.name.clone().unwrap_or_else(|| fallback_name.to_string());
    let n = f.nodes;
    let bad = |field: &str, m: String| SimError::invalid(&name, field, m);
    if n == 0 {
        return Err(bad("nodes", "a network needs at least one node".into()));
    }
    if f.duration.micros() == 0 {
        return Err(bad("duration", "must be positive".into()));
    }
    let sel = |field: &str, s: &[String]| parse_nodes(s, n).map_err(|m| bad(field, m));
    let one = |field: &str, s: &str| parse_node(s, n).map_err(|m| bad(field, m));

    if f.engine.fork_window.micros() == 0 {
        return Err(bad("engine.fork_window", "must be positive".into()));
    }
    if f.engine.max_held < 2 {
        return Err(bad("engine.max_held", "must be at least 2".into()));
    }
    if f.engine.beacon_interval.micros() < 1000 {
        return Err(bad("engine.beacon_interval", "must be at least 1ms".into()));
    }
    let net = &f.network;
    prob(&name, "network.loss", net.loss)?;
    prob(&name, "network.duplicate", net.duplicate)?;
    prob(&name, "network.reorder", net.reorder)?;
    check_latency(&name, "network.latency", &net.latency)?;
    let mut links = Vec::new();
    for (k, l) in net.links.iter().enumerate() {
        let field = format!("network.links[{k}]");
        if let Some(lat) = &l.latency {
            check_latency(&name, &field, lat)?;
        }
        if let Some(p) = l.loss {
            prob(&name, &format!("{field}.loss"), p)?;
        }
        links.push(Link {
            a: sel(&format!("{field}.between"), &l.between)?,
            b: sel(&format!("{field}.and"), &l.and)?,
            latency: l.latency.clone(),
            loss: l.loss,
        });
    }
    let mut skew = BTreeMap::new();
    for (node, off) in &net.skew {
        skew.insert(one(&format!("network.skew.{node}"), node)?, off.0);
    }
    let d = &f.dissemination;
    if d.mode == Mode::Mesh && (d.mesh_degree == 0 || d.heartbeat.micros() == 0) {
        return Err(bad(
            "dissemination",
            "mesh mode needs mesh_degree ≥ 1 and a positive heartbeat".into(),
        ));
    }
    if f.sync.enabled && f.sync.interval.micros() == 0 {
        return Err(bad(
            "sync.interval",
            "must be positive when sync is enabled".into(),
        ));
    }
    f.cpu.validate().map_err(|m| bad("cpu", m))?;
    if f.metrics.interval.micros() < 1000 {
        return Err(bad("metrics.interval", "must be at least 1ms".into()));
    }

    let mut partitions = Vec::new();
    for (k, p) in f.partitions.iter().enumerate() {
        let field = format!("partitions[{k}]");
        if let Some(h) = p.heal
            && h <= p.start
        {
            return Err(bad(
                &format!("{field}.heal"),
                format!("{h} is not after start {}", p.start),
            ));
        }
        if p.sides.is_empty() {
            return Err(bad(&format!("{field}.sides"), "no sides".into()));
        }
        let mut side_names: Vec<String> = p.sides.keys().cloned().collect();
        let mut side_of = vec![usize::MAX; n];
        for (s, (side, members)) in p.sides.iter().enumerate() {
            for node in sel(&format!("{field}.sides.{side}"), members)? {
                if side_of[node] != usize::MAX {
                    return Err(bad(
                        &format!("{field}.sides.{side}"),
                        format!("{} is on two sides", node_name(node)),
                    ));
                }
                side_of[node] = s;
            }
        }
        if side_of.contains(&usize::MAX) {
            if p.sides.contains_key("rest") {
                return Err(bad(
                    &format!("{field}.sides"),
                    "side `rest` is reserved for unlisted nodes".into(),
                ));
            }
            let rest = side_names.len();
            side_names.push("rest".into());
            for s in &mut side_of {
                if *s == usize::MAX {
                    *s = rest;
                }
            }
        }
        let one_way = match &p.one_way {
            None => None,
            Some(spec) => {
                let (a, b) = spec.split_once("->").ok_or_else(|| {
                    bad(
                        &format!("{field}.one_way"),
                        format!("{spec:?} is not \"side->side\""),
                    )
                })?;
                let find = |s: &str| {
                    side_names
                        .iter()
                        .position(|x| x == s.trim())
                        .ok_or_else(|| {
                            bad(
                                &format!("{field}.one_way"),
                                format!("no side called {:?}", s.trim()),
                            )
                        })
                };
                Some((find(a)?, find(b)?))
            }
        };
        partitions.push(Partition {
            start: p.start.micros(),
            heal: p.heal.map(Dur::micros),
            side_names,
            side_of,
            one_way,
        });
    }
    let mut flaps = Vec::new();
    for (k, fl) in f.flaps.iter().enumerate() {
        let field = format!("flaps[{k}]");
        if fl.end <= fl.start {
            return Err(bad(&format!("{field}.end"), "must be after start".into()));
        }
        if fl.period.micros() == 0 || fl.down >= fl.period {
            return Err(bad(
                &format!("{field}.down"),
                "must be shorter than period".into(),
            ));
        }
        flaps.push(Flap {
            a: sel(&format!("{field}.a"), &fl.a)?,
            b: sel(&format!("{field}.b"), &fl.b)?,
            start: fl.start.micros(),
            end: fl.end.micros(),
            period: fl.period.micros(),
            down: fl.down.micros(),
        });
    }
    let mut crashes = Vec::new();
    for (k, c) in f.crashes.iter().enumerate() {
        let field = format!("crashes[{k}]");
        if let Some(r) = c.restart
            && r <= c.at
        {
            return Err(bad(&format!("{field}.restart"), "must be after at".into()));
        }
        crashes.push(Crash {
            node: one(&format!("{field}.node"), &c.node)?,
            at: c.at.micros(),
            restart: c.restart.map(Dur::micros),
        });
    }

    let mut groups = Vec::new();
    for (k, g) in f.groups.iter().enumerate() {
        let field = format!("groups[{k}]");
        let members = match (g.members.is_empty(), g.size) {
            (false, None) => {
                let m: Vec<NodeId> = sel(&format!("{field}.members"), &g.members)?
                    .into_iter()
                    .collect();
                if g.copies > 1 {
                    return Err(bad(
                        &format!("{field}.copies"),
                        "copies of a group need `size`, not `members`".into(),
                    ));
                }
                Members::Listed(m)
            }
            (true, Some(s)) if (1..=n).contains(&s) => Members::Random(s),
            (true, Some(s)) => {
                return Err(bad(
                    &format!("{field}.size"),
                    format!("{s} is not between 1 and {n}"),
                ));
            }
            _ => {
                return Err(bad(&field, "give either `members` or `size`".into()));
            }
        };
        if let Some(t) = &g.traffic {
            if !(t.rate_per_min.is_finite() && t.rate_per_min >= 0.0) {
                return Err(bad(
                    &format!("{field}.traffic.rate_per_min"),
                    "must be ≥ 0".into(),
                ));
            }
            if t.size < 8 {
                return Err(bad(
                    &format!("{field}.traffic.size"),
                    "must be at least 8 bytes".into(),
                ));
            }
        }
        if let Some(r) = &g.random_commits {
            let w = r.update + r.add + r.remove + r.leave;
            if !(r.rate_per_min.is_finite() && r.rate_per_min >= 0.0 && w.is_finite() && w > 0.0) {
                return Err(bad(
                    &format!("{field}.random_commits"),
                    "rate must be ≥ 0 and some weight positive".into(),
                ));
            }
        }
        for c in 0..g.copies {
            let gname = if g.copies > 1 {
                format!("{}{c}", g.name)
            } else {
                g.name.clone()
            };
            if groups.iter().any(|x: &Group| x.name == gname) {
                return Err(bad(
                    &format!("{field}.name"),
                    format!("two groups are called {gname:?}"),
                ));
            }
            groups.push(Group {
                name: gname,
                members: members.clone(),
                create_at: g.create_at.micros() + c as u64 * g.stagger.micros(),
                traffic: g.traffic.clone(),
                random_commits: g.random_commits.clone(),
            });
        }
    }
    let group_of = |field: &str, g: &str| {
        groups
            .iter()
            .position(|x| x.name == g)
            .ok_or_else(|| bad(field, format!("no group called {g:?}")))
    };
    let mut commits = Vec::new();
    for (k, c) in f.commits.iter().enumerate() {
        let field = format!("commits[{k}]");
        let target = match (&c.op, &c.target) {
            (CommitOp::Add | CommitOp::Remove, Some(t)) => {
                Some(one(&format!("{field}.target"), t)?)
            }
            (CommitOp::Add | CommitOp::Remove, None) => {
                return Err(bad(
                    &format!("{field}.target"),
                    "add and remove need a target".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(bad(
                    &format!("{field}.target"),
                    "only add and remove take a target".into(),
                ));
            }
            (_, None) => None,
        };
        commits.push(Commit {
            at: c.at.micros(),
            group: group_of(&format!("{field}.group"), &c.group)?,
            node: one(&format!("{field}.node"), &c.node)?,
            op: c.op,
            target,
        });
    }
    let mut bursts = Vec::new();
    for (k, b) in f.bursts.iter().enumerate() {
        let field = format!("bursts[{k}]");
        if matches!(b.op, CommitOp::Add | CommitOp::Remove) {
            return Err(bad(
                &format!("{field}.op"),
                "bursts are of update or leave".into(),
            ));
        }
        let nodes: Vec<NodeId> = sel(&format!("{field}.nodes"), &b.nodes)?
            .into_iter()
            .collect();
        let committers = match (nodes.is_empty(), b.committers) {
            (false, None) => nodes.len(),
            (true, Some(c)) if c >= 1 => c,
            _ => {
                return Err(bad(
                    &field,
                    "give either `nodes` or `committers` ≥ 1".into(),
                ));
            }
        };
        bursts.push(Burst {
            at: b.at.micros(),
            group: group_of(&format!("{field}.group"), &b.group)?,
            nodes,
            committers,
            op: b.op,
        });
    }
    let mut joins = Vec::new();
    for (k, j) in f.joins.iter().enumerate() {
        let field = format!("joins[{k}]");
        joins.push(Join {
            at: j.at.micros(),
            group: group_of(&format!("{field}.group"), &j.group)?,
            node: one(&format!("{field}.node"), &j.node)?,
            by: j
                .by
                .as_deref()
                .map(|b| one(&format!("{field}.by"), b))
                .transpose()?,
        });
    }

    Ok(Scenario {
        name,
        description: f.description,
        seed: f.seed,
        duration: f.duration.micros(),
        nodes: n,
        engine: f.engine,
        network: f.network,
        links,
        skew,
        dissemination: f.dissemination,
        sync: f.sync,
        cpu: f.cpu,
        metrics: f.metrics,
        partitions,
        flaps,
        crashes,
        groups,
        commits,
        bursts,
        joins,
    })
}

fn check_latency(name: &str, field: &str, l: &LatencySpec) -> Result<(), SimError> {
    match l {
        LatencySpec::Uniform { min, max } if max < min => Err(SimError::invalid(
            name,
            field,
            format!("max {max} is below min {min}"),
        )),
        LatencySpec::Lognormal { sigma, .. } if !(sigma.is_finite() && *sigma >= 0.0) => Err(
            SimError::invalid(name, field, format!("sigma {sigma} must be ≥ 0")),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        duration = "2m"
        nodes = 4
        [[groups]]
        name = "g"
        members = ["n0..n4"]
    "#;

    #[test]
    fn a_small_file_parses_with_defaults() {
        let s = Scenario::parse("small", SMALL).unwrap();
        assert_eq!(s.name, "small");
        assert_eq!(s.nodes, 4);
        assert_eq!(s.groups[0].members, Members::Listed(vec![0, 1, 2, 3]));
        assert_eq!(s.engine.fork_window, Dur::from_secs(60));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = format!("{SMALL}\nfrobnicate = 3\n");
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("frobnicate"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let text = SMALL.replace("nodes = 4", "nodes = 4\n[network]\nloss = 1.5");
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("network.loss"), "{e}");
        let text = format!(
            "{SMALL}\n[[partitions]]\nstart = \"10s\"\nheal = \"5s\"\nsides = {{ a = [\"n0\"] }}\n"
        );
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("partitions[0].heal"), "{e}");
        let text = format!("{SMALL}\n[[joins]]\nat = \"1s\"\ngroup = \"h\"\nnode = \"n1\"\n");
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("joins[0].group") && e.contains("\"h\""), "{e}");
        let text = SMALL.replace("n0..n4", "n0..n9");
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("groups[0].members"), "{e}");
        let text = SMALL.replace("nodes = 4", "nodes = 4\n[engine]\npolicy = \"fastest\"");
        let e = Scenario::parse("x", &text).unwrap_err().to_string();
        assert!(e.contains("fastest"), "{e}");
    }

    #[test]
    fn partitions_put_unlisted_nodes_on_rest() {
        let text = format!(
            "{SMALL}\n[[partitions]]\nstart = \"10s\"\nsides = {{ a = [\"n0\"] }}\none_way = \"a->rest\"\n"
        );
        let s = Scenario::parse("x", &text).unwrap();
        let p = &s.partitions[0];
        assert_eq!(p.side_names, vec!["a", "rest"]);
        assert_eq!(p.side_of, vec![0, 1, 1, 1]);
        assert_eq!(p.one_way, Some((0, 1)));
        assert!(s.has_permanent_fault());
    }
}
