//! The scenario's workload: group creation, application traffic (Poisson per member),
//! random commits, scheduled commits, concurrent-commit bursts and joins.

use super::{Act, Ev, Simulator, Work};
use crate::metrics::SentMessage;
use crate::scenario::{CommitOp, NodeId};
use crate::time::{Micros, SEC};

impl Simulator {
    pub(crate) fn schedule_workload(&mut self) {
        let sc = self.sc.clone();
        for (g, spec) in sc.groups.iter().enumerate() {
            let creator = self.groups[g].members[0];
            self.queue.push(
                spec.create_at,
                Ev::Work {
                    node: creator,
                    inc: u32::MAX,
                    work: Work::Act(Act::Setup(g)),
                },
            );
            if let Some(t) = &spec.traffic
                && t.rate_per_min > 0.0
            {
                self.queue.push(
                    t.start.micros().max(spec.create_at),
                    Ev::Traffic { group: g },
                );
            }
            if let Some(r) = &spec.random_commits
                && r.rate_per_min > 0.0
            {
                let first = r.start.micros()
                    + self.rng.exponential(60.0 * SEC as f64 / r.rate_per_min) as Micros;
                self.queue.push(first, Ev::RandomCommit { group: g });
            }
        }
        for c in &sc.commits {
            self.schedule_commit(c.at, c.node, c.group, c.op, c.target);
        }
        for b in &sc.bursts {
            let at = b.at;
            let committers = if b.nodes.is_empty() {
                // Drawn when the burst is scheduled, from the group's configured members.
                let members = self.groups[b.group].members.clone();
                self.rng.sample(&members, b.committers)
            } else {
                b.nodes.clone()
            };
            for node in committers {
                self.schedule_commit(at, node, b.group, b.op, None);
            }
        }
        for j in &sc.joins {
            let by = match j.by {
                Some(by) => by,
                None => {
                    let members = self.groups[j.group].members.clone();
                    *self.rng.choose(&members).unwrap_or(&0)
                }
            };
            self.schedule_commit(j.at, by, j.group, CommitOp::Add, Some(j.node));
        }
    }

    fn schedule_commit(
        &mut self,
        at: Micros,
        node: NodeId,
        group: usize,
        op: CommitOp,
        target: Option<NodeId>,
    ) {
        // Any incarnation: the node commits if it is up when the commit is due.
        self.queue.push(
            at,
            Ev::Work {
                node,
                inc: u32::MAX,
                work: Work::Act(Act::Commit { group, op, target }),
            },
        );
    }

    /// Members of group `g` that are up and think they are in.
    pub(crate) fn live_members(&self, g: usize) -> Vec<NodeId> {
        self.views
            .range((g, 0)..(g + 1, 0))
            .filter(|((_, n), v)| v.in_group && self.nodes[*n].is_up())
            .map(|((_, n), _)| *n)
            .collect()
    }

    /// The next application message of group `g`.
    pub(crate) fn traffic(&mut self, g: usize) {
        let Some(spec) = self.sc.groups[g].traffic.clone() else {
            return;
        };
        if spec.end.is_some_and(|e| self.now >= e.micros()) {
            return;
        }
        let live = self.live_members(g);
        if live.is_empty() || self.groups[g].group_ref.is_none() {
            self.queue.push(self.now + SEC, Ev::Traffic { group: g });
            return;
        }
        let sender = *self.rng.choose(&live).unwrap_or(&live[0]);
        let expected = self
            .views
            .get(&(g, sender))
            .map(|v| v.members.iter().copied().filter(|m| *m != sender).collect())
            .unwrap_or_default();
        let index = self.metrics.sent.len();
        self.metrics.sent.push(SentMessage {
            at: self.now,
            issued: false,
            group: g,
            sender,
            expected,
            delivered: Default::default(),
        });
        let inc = self.nodes[sender].incarnation;
        self.run_work_tagged(sender, inc, Work::Act(Act::Send { group: g, index }));
        let rate = spec.rate_per_min * live.len() as f64;
        let gap = self.rng.exponential(60.0 * SEC as f64 / rate).max(1.0) as Micros;
        self.queue.push(self.now + gap, Ev::Traffic { group: g });
    }

    /// A random commit in group `g`.
    pub(crate) fn random_commit(&mut self, g: usize) {
        let Some(spec) = self.sc.groups[g].random_commits.clone() else {
            return;
        };
        if spec.end.is_some_and(|e| self.now >= e.micros()) {
            return;
        }
        let next = self.now
            + self
                .rng
                .exponential(60.0 * SEC as f64 / spec.rate_per_min)
                .max(1.0) as Micros;
        self.queue.push(next, Ev::RandomCommit { group: g });
        let live = self.live_members(g);
        let Some(&who) = self.rng.choose(&live) else {
            return;
        };
        let total = spec.update + spec.add + spec.remove + spec.leave;
        let mut x = self.rng.uniform(0.0, total);
        let mut pick = CommitOp::Update;
        for (w, op) in [
            (spec.update, CommitOp::Update),
            (spec.add, CommitOp::Add),
            (spec.remove, CommitOp::Remove),
            (spec.leave, CommitOp::Leave),
        ] {
            if x < w {
                pick = op;
                break;
            }
            x -= w;
        }
        let target = match pick {
            CommitOp::Add => {
                let outside: Vec<NodeId> = (0..self.nodes.len())
                    .filter(|n| {
                        self.nodes[*n].is_up()
                            && !self.views.get(&(g, *n)).is_some_and(|v| v.in_group)
                    })
                    .collect();
                match self.rng.choose(&outside) {
                    Some(&x) => Some(x),
                    None => return,
                }
            }
            CommitOp::Remove => {
                let others: Vec<NodeId> = live.iter().copied().filter(|x| *x != who).collect();
                match self.rng.choose(&others) {
                    Some(&x) => Some(x),
                    None => return,
                }
            }
            _ => None,
        };
        if pick == CommitOp::Leave && live.len() < 2 {
            return;
        }
        let inc = self.nodes[who].incarnation;
        self.run_work_tagged(
            who,
            inc,
            Work::Act(Act::Commit {
                group: g,
                op: pick,
                target,
            }),
        );
    }

    /// Runs work for node `n` if it is up in incarnation `inc` (`u32::MAX`: whatever
    /// incarnation it is in now).
    pub(crate) fn run_work_tagged(&mut self, n: NodeId, inc: u32, work: Work) {
        let node = &self.nodes[n];
        if !node.is_up() || (inc != u32::MAX && inc != node.incarnation) {
            return;
        }
        self.run_work(n, work);
    }
}
