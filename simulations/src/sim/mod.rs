//! The discrete-event core: one thread, one queue of timed events, one seeded RNG.
//!
//! - `node`: a simulated node (identity, durable store, engine, clock, CPU, gossip state).
//! - `work`: feeding a node's engine through its CPU and handling what comes out.
//! - `gossip`: publishing, forwarding, the mesh and its IHAVE/IWANT heartbeat.
//! - `sync`: anti-entropy sessions with gossip's reconciliation core.
//! - `workload`: the scenario's groups, traffic, commits, bursts and joins.
//! - `faults`: crashes, restarts, and syncs when links come back.
//! - `finish`: the final checks and the summary.
//! - `availability`: what the consistency modes are compared on (issue 8).
//! - this file: the event types and the loop.

mod availability;
mod faults;
mod finish;
mod gossip;
mod ixset;
pub mod node;
mod sync;
mod work;
mod workload;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use ds_p2p::engine::EngineConfig;
use ds_p2p::wire::{EnvelopeKind, GroupRef};

use crate::error::SimError;
use crate::metrics::{Metrics, View};
use crate::net::Network;
use crate::queue::EventQueue;
use crate::report::Summary;
use crate::rng::SimRng;
use crate::scenario::{NodeId, Scenario};
use crate::time::{MS, Micros, SEC};
use crate::trace::Trace;
use node::{EnvId, EnvIx, SharedVerifications, SimNode};

pub use finish::RunResult;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Where `trace.jsonl` goes; `None`: the trace is only hashed.
    pub trace_path: Option<PathBuf>,
    /// Progress on stderr.
    pub progress: bool,
    /// No trace at all (not even hashed; `trace_hash` is empty): for benchmarks, where
    /// formatting and hashing every event line is overhead the measurement should not carry.
    pub untraced: bool,
    /// Every engine verifies every Ed25519 signature itself. By default the run's engines
    /// share a memo of verifications already made (`ds_p2p::signature_memo`): the same
    /// outcomes and trace, without 49 members of a 50-member group each redoing the same
    /// verification of each message. The same switch covers the device certificates in
    /// credentials (`ds_p2p::engine::credentials::VerifiedCertificates`).
    pub verify_every_signature: bool,
}

/// An envelope some node published: its bytes and what the simulator needs to know of it.
pub(crate) struct Env {
    /// SHA-256 of the bytes.
    pub id: EnvId,
    pub bytes: Vec<u8>,
    pub topic: String,
    /// Virtual time of its first publication (the reconciliation timestamp).
    pub origin: Micros,
    /// The node that first published it.
    pub publisher: NodeId,
    pub kind: EnvelopeKind,
    pub group: GroupRef,
}

impl Env {
    /// The envelope as a reconciliation item: (first-publication time in ms, id).
    pub fn item(&self) -> ::gossip::Item {
        ::gossip::Item::new(self.origin / MS, ::gossip::EnvelopeId(self.id))
    }
}

/// How an envelope travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Gossip,
    Sync,
}

/// What travels between nodes.
pub(crate) enum Msg {
    Data { id: EnvIx, via: Via },
    IHave { topic: String, ids: Vec<EnvIx> },
    IWant { ids: Vec<EnvIx> },
}

/// Something a node's engine is asked to do.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    /// Create group `g` and invite its members.
    Setup(usize),
    /// Send message `index` of `metrics.sent` to group `g`.
    Send { group: usize, index: usize },
    /// Commit `op` in group `g`.
    Commit {
        group: usize,
        op: crate::scenario::CommitOp,
        target: Option<NodeId>,
    },
}

/// Work for a node's CPU.
pub(crate) enum Work {
    Envelope(EnvIx),
    Timeout,
    Act(Act),
}

/// A timed event.
pub(crate) enum Ev {
    Arrive {
        to: NodeId,
        from: NodeId,
        msg: Msg,
    },
    Work {
        node: NodeId,
        inc: u32,
        work: Work,
    },
    Timer {
        node: NodeId,
        inc: u32,
    },
    Heartbeat {
        node: NodeId,
    },
    SyncTick {
        node: NodeId,
    },
    /// The CPU of `node` may be free for the next item of its backlog.
    Backlog {
        node: NodeId,
    },
    /// Sync now: one topic (with `peer` when connected, else a random peer) or all.
    SyncNow {
        node: NodeId,
        topic: Option<String>,
        peer: Option<NodeId>,
    },
    Traffic {
        group: usize,
    },
    RandomCommit {
        group: usize,
    },
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    /// A partition heals or a flapping link comes back: these nodes reconnect.
    Connect {
        nodes: Vec<NodeId>,
        what: String,
    },
    /// A partition starts or a flapping link goes down (trace only).
    Disconnect {
        what: String,
    },
    Sample,
}

/// A group of the run, once created.
pub(crate) struct SimGroup {
    pub name: String,
    pub members: Vec<NodeId>,
    pub group_ref: Option<GroupRef>,
}

/// One run of a scenario.
pub struct Simulator {
    pub(crate) sc: Scenario,
    pub(crate) seed: u64,
    pub(crate) rng: SimRng,
    pub(crate) queue: EventQueue<Ev>,
    pub(crate) now: Micros,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) net: Network,
    pub(crate) config: EngineConfig,
    /// Every envelope published in the run, by index.
    pub(crate) envs: Vec<Rc<Env>>,
    /// The index of each envelope id.
    pub(crate) env_index: HashMap<EnvId, EnvIx>,
    pub(crate) subs: BTreeMap<String, BTreeSet<NodeId>>,
    /// Nodes holding a topic in their log (subscribers, and publishers to others' inboxes).
    pub(crate) holders: BTreeMap<String, BTreeSet<NodeId>>,
    pub(crate) groups: Vec<SimGroup>,
    pub(crate) group_by_ref: HashMap<GroupRef, usize>,
    pub(crate) by_identity: HashMap<Vec<u8>, NodeId>,
    /// Each member's view of each group, keyed (group, node).
    pub(crate) views: BTreeMap<(usize, NodeId), View>,
    pub(crate) metrics: Metrics,
    pub(crate) trace: Trace,
    trace_path: Option<PathBuf>,
    pub(crate) events: u64,
    /// (node, group) pairs that may hold more than one state: sampled until they don't.
    pub(crate) watch: BTreeSet<(NodeId, usize)>,
    pub(crate) violating: BTreeSet<(NodeId, usize)>,
    pub(crate) converged_since: Option<Micros>,
    /// What the work in progress published, sent when the work is done.
    pub(crate) pending_publishes: Vec<(String, Vec<u8>)>,
    /// The publisher of the Welcome being processed: a joiner syncs the group with it first.
    pub(crate) welcome_from: Option<NodeId>,
    progress: bool,
    /// Verifications shared by the run's engines (`None`: each verifies every signature).
    pub(crate) signature_memo: Option<SharedVerifications>,
}

impl Simulator {
    /// Builds the network and opens every node's engine.
    pub fn new(sc: &Scenario, options: &RunOptions) -> Result<Self, SimError> {
        let seed = options.seed.unwrap_or(sc.seed);
        let mut rng = SimRng::new(seed);
        let config = EngineConfig {
            window_ms: sc.engine.fork_window.ms(),
            max_held: sc.engine.max_held,
            policy: sc.engine.policy,
            consistency: sc.engine.consistency,
            resend_policy: sc.engine.resend_policy,
            beacon_interval_ms: sc.engine.beacon_interval.ms(),
            // Virtual time starts at a fixed date; keep KeyPackages valid whenever run.
            key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
            ..EngineConfig::default()
        };
        let signature_memo = (!options.verify_every_signature).then(SharedVerifications::default);
        let max_skew = sc.network.max_skew.micros() as f64;
        let mut nodes = Vec::with_capacity(sc.nodes);
        let mut subs: BTreeMap<String, BTreeSet<NodeId>> = BTreeMap::new();
        let mut by_identity = HashMap::new();
        for id in 0..sc.nodes {
            let drawn = if max_skew > 0.0 {
                rng.uniform(-max_skew, max_skew).round() as i64
            } else {
                0
            };
            let skew = sc.skew.get(&id).copied().unwrap_or(drawn);
            let mut node = SimNode::new(id, skew, &mut rng)?;
            node.open(&config, &mut rng, signature_memo.as_ref())?;
            subs.entry(node.inbox()).or_default().insert(id);
            by_identity.insert(node.identity.clone(), id);
            nodes.push(node);
        }
        let groups = sc
            .groups
            .iter()
            .map(|g| SimGroup {
                name: g.name.clone(),
                members: match &g.members {
                    crate::scenario::Members::Listed(m) => m.clone(),
                    crate::scenario::Members::Random(k) => {
                        let all: Vec<NodeId> = (0..sc.nodes).collect();
                        rng.sample(&all, *k)
                    }
                },
                group_ref: None,
            })
            .collect();
        let trace = match &options.trace_path {
            _ if options.untraced => Trace::off(),
            Some(p) => Trace::to_file(p)?,
            None => Trace::hash_only(),
        };
        Ok(Self {
            net: Network::new(sc),
            sc: sc.clone(),
            seed,
            rng,
            queue: EventQueue::default(),
            now: 0,
            nodes,
            config,
            envs: Vec::new(),
            env_index: HashMap::new(),
            subs,
            holders: BTreeMap::new(),
            groups,
            group_by_ref: HashMap::new(),
            by_identity,
            views: BTreeMap::new(),
            metrics: Metrics::new(sc.nodes),
            trace,
            trace_path: options.trace_path.clone(),
            events: 0,
            watch: BTreeSet::new(),
            violating: BTreeSet::new(),
            converged_since: None,
            pending_publishes: Vec::new(),
            welcome_from: None,
            progress: options.progress,
            signature_memo,
        })
    }

    /// Runs the scenario to its end.
    pub fn run(mut self) -> Result<RunResult, SimError> {
        let wall = Instant::now();
        self.trace_header();
        self.schedule_start();
        let end = self.sc.duration;
        let mut next_report = Instant::now();
        while let Some(t) = self.queue.peek_time() {
            if t > end {
                break;
            }
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            self.events += 1;
            self.dispatch(ev);
            if self.progress && self.events.is_multiple_of(2048) && Instant::now() >= next_report {
                next_report = Instant::now() + std::time::Duration::from_millis(500);
                progress_line(t, end, self.events, wall.elapsed().as_secs_f64());
            }
        }
        if self.progress {
            progress_line(end, end, self.events, wall.elapsed().as_secs_f64());
            eprintln!();
        }
        self.now = end;
        self.sample();
        let wall_ms = wall.elapsed().as_millis() as u64;
        self.finish(wall_ms)
    }

    fn trace_header(&mut self) {
        let line = format!(
            "{{\"t\":0,\"ev\":\"start\",\"scenario\":{},\"seed\":{},\"nodes\":{}}}",
            json_str(&self.sc.name),
            self.seed,
            self.sc.nodes
        );
        self.trace.line(&line);
    }

    /// Puts the scenario's first events on the queue.
    fn schedule_start(&mut self) {
        self.queue.push(0, Ev::Sample);
        for n in 0..self.nodes.len() {
            self.reschedule_timer(n, false);
            if self.sc.sync.enabled {
                let phase = self.rng.uniform(0.0, self.sc.sync.interval.micros() as f64) as Micros;
                self.queue.push(phase, Ev::SyncTick { node: n });
            }
            if self.sc.dissemination.mode == crate::scenario::Mode::Mesh {
                let hb = self.sc.dissemination.heartbeat.micros() as f64;
                let phase = self.rng.uniform(0.0, hb) as Micros;
                self.queue.push(phase, Ev::Heartbeat { node: n });
            }
        }
        self.schedule_workload();
        self.schedule_faults();
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive { to, from, msg } => self.arrive(to, from, msg),
            Ev::Work { node, inc, work } => self.run_work_tagged(node, inc, work),
            Ev::Timer { node, inc } => {
                let n = &mut self.nodes[node];
                if n.incarnation == inc && n.is_up() && n.timer_at == Some(self.now) {
                    n.timer_at = None;
                    self.run_work(node, Work::Timeout);
                }
            }
            Ev::Heartbeat { node } => self.heartbeat(node),
            Ev::Backlog { node } => self.run_backlog(node),
            Ev::SyncTick { node } => {
                self.sync_all_topics(node);
                let next = self.now + self.sc.sync.interval.micros();
                self.queue.push(next, Ev::SyncTick { node });
            }
            Ev::SyncNow { node, topic, peer } => match topic {
                Some(topic) => self.sync_topic(node, &topic, peer),
                None => self.sync_all_topics(node),
            },
            Ev::Traffic { group } => self.traffic(group),
            Ev::RandomCommit { group } => self.random_commit(group),
            Ev::Crash { node } => self.crash(node),
            Ev::Restart { node } => self.restart(node),
            Ev::Connect { nodes, what } => self.connect(&nodes, &what),
            Ev::Disconnect { what } => {
                if self.trace.enabled() {
                    let line = format!(
                        "{{\"t\":{},\"ev\":\"cut\",\"what\":{}}}",
                        self.now,
                        json_str(&what)
                    );
                    self.trace.line(&line);
                }
            }
            Ev::Sample => {
                self.sample();
                let next = self.now + self.sc.metrics.interval.micros();
                if next <= self.sc.duration {
                    self.queue.push(next, Ev::Sample);
                }
            }
        }
    }

    /// Schedules (or moves earlier) the engine timer of node `n`. `after_timeout`: the
    /// engine just handled a timeout, so a due time already past is pushed 1 ms on.
    pub(crate) fn reschedule_timer(&mut self, n: NodeId, after_timeout: bool) {
        let node = &self.nodes[n];
        let Some(engine) = &node.engine else { return };
        let Some(due_ms) = engine.poll_timeout() else {
            return;
        };
        let mut at = node
            .virtual_time_of(due_ms)
            .max(self.now)
            .max(node.busy_until);
        if after_timeout && at <= self.now {
            // The engine still wants a timeout now: try again a little later rather than
            // spinning at one instant.
            at = self.now + 100 * MS;
        }
        if node.timer_at.is_none_or(|x| at < x) {
            let inc = node.incarnation;
            self.nodes[n].timer_at = Some(at);
            self.queue.push(at, Ev::Timer { node: n, inc });
        }
    }

    /// Samples metrics: a timeline row, held states, forward-secrecy violations, convergence.
    fn sample(&mut self) {
        self.sample_availability();
        let now = self.now;
        let window = self.sc.engine.fork_window.micros();
        let grace = 2 * self.sc.metrics.interval.micros() + SEC;
        let mut max_held_now = 0;
        let watched: Vec<(NodeId, usize)> = self.watch.iter().copied().collect();
        for (n, g) in watched {
            let Some(engine) = &self.nodes[n].engine else {
                continue;
            };
            let Some(gref) = self.groups[g].group_ref else {
                continue;
            };
            let held = engine
                .group_status(gref)
                .map(|s| s.held_states)
                .unwrap_or(0);
            max_held_now = max_held_now.max(held);
            if held <= 1 {
                self.watch.remove(&(n, g));
                self.violating.remove(&(n, g));
                continue;
            }
            let changed = self
                .views
                .get(&(g, n))
                .map(|v| v.last_state_change)
                .unwrap_or(0);
            if now.saturating_sub(changed) > window + grace && self.violating.insert((n, g)) {
                self.metrics.fs_violations += 1;
                if !self.trace.enabled() {
                    continue;
                }
                let line = format!(
                    "{{\"t\":{now},\"n\":{n},\"ev\":\"fs-violation\",\"group\":{},\"held\":{held}}}",
                    json_str(&self.groups[g].name)
                );
                self.trace.line(&line);
            }
        }
        self.metrics.max_held = self.metrics.max_held.max(max_held_now);
        let created = self.groups.iter().filter(|g| g.group_ref.is_some()).count();
        let converged = (0..self.groups.len())
            .filter(|g| self.groups[*g].group_ref.is_some() && self.group_agrees(*g))
            .count();
        if converged == self.groups.len() && created == self.groups.len() {
            self.converged_since.get_or_insert(now);
        } else {
            self.converged_since = None;
        }
        let row = crate::metrics::TimelineRow {
            t_ms: now / MS,
            messages_sent: self.metrics.issued,
            messages_delivered: self.metrics.first_deliveries,
            in_flight: self.metrics.in_flight,
            transmissions: self.metrics.transmissions,
            forks_detected: self.metrics.forks_detected,
            branch_switches: self.metrics.branch_switches,
            groups_converged: converged,
            groups: self.groups.len(),
            max_held: max_held_now.max(1),
            nodes_up: self.nodes.iter().filter(|n| n.is_up()).count(),
            events: self.events,
        };
        self.metrics.timeline.push(row);
    }

    /// Whether the members' views of group `g` agree (from events, no engine calls).
    pub(crate) fn group_agrees(&self, g: usize) -> bool {
        crate::metrics::views_agree(
            self.views
                .range((g, 0)..(g + 1, 0))
                .map(|((_, n), v)| (*n, v)),
        )
    }

    /// Writes a trace line.
    pub(crate) fn trace_line(&mut self, line: String) {
        self.trace.line(&line);
    }

    /// Whether trace lines are recorded: call sites skip formatting them when not.
    pub(crate) fn tracing(&self) -> bool {
        self.trace.enabled()
    }
}

fn progress_line(t: Micros, end: Micros, events: u64, wall_s: f64) {
    let frac = if end == 0 { 1.0 } else { t as f64 / end as f64 };
    let width = 30;
    let filled = ((frac * width as f64) as usize).min(width);
    eprint!(
        "\r[{}{}] {:5.1}%  virtual {:.1}s / {:.1}s  events {}  wall {:.1}s  ({:.0}x)   ",
        "#".repeat(filled),
        " ".repeat(width - filled),
        frac * 100.0,
        t as f64 / SEC as f64,
        end as f64 / SEC as f64,
        events,
        wall_s,
        if wall_s > 0.0 {
            t as f64 / SEC as f64 / wall_s
        } else {
            0.0
        },
    );
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// The first 4 bytes of an id in hex, for trace lines.
pub(crate) fn short(id: &EnvId) -> String {
    hex::encode(&id[..4])
}

impl Simulator {
    /// The summary of a finished run (for tests that want the struct).
    pub fn summary_of(result: &RunResult) -> &Summary {
        &result.summary
    }
}
