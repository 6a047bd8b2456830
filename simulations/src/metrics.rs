//! What a run counts: application messages and their deliveries, fork events, network
//! traffic, held states; the per-interval timeline; and each member's view of each group
//! (epoch, branch, members), from the engine's events, for cheap convergence checks.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::scenario::NodeId;
use crate::time::Micros;

/// One application message the workload sent.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// When the sender's engine took it (when scheduled, until then).
    pub at: Micros,
    /// False until the sender's engine took it (a crash may come first).
    pub issued: bool,
    pub group: usize,
    pub sender: NodeId,
    /// The members of the sender's view when it sent (the sender excluded).
    pub expected: BTreeSet<NodeId>,
    /// How often each node had it delivered, and when first.
    pub delivered: BTreeMap<NodeId, (u32, Micros)>,
}

/// A commit the workload asked for, and when the whole group had applied it.
#[derive(Debug, Clone)]
pub struct CommitIntent {
    pub at: Micros,
    pub group: usize,
    /// The committer's epoch when it asked.
    pub base_epoch: u64,
    /// When every member was first on one branch past `base_epoch`.
    pub applied_everywhere: Option<Micros>,
}

/// A member's view of a group, from its engine's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub in_group: bool,
    pub epoch: u64,
    pub branch: [u8; 16],
    pub members: BTreeSet<NodeId>,
    /// When the node last left the group (removed, lost join), if ever.
    pub left_at: Option<Micros>,
    /// When its held states last changed (a commit or Welcome processed, a switch).
    pub last_state_change: Micros,
}

/// One row of `timeline.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    pub t_ms: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub in_flight: i64,
    pub transmissions: u64,
    pub forks_detected: u64,
    pub branch_switches: u64,
    pub groups_converged: usize,
    pub groups: usize,
    pub max_held: usize,
    pub nodes_up: usize,
    pub events: u64,
}

/// Counters of a run.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub sent: Vec<SentMessage>,
    /// First deliveries so far (running count of [`Metrics::delivered`]).
    pub first_deliveries: u64,
    /// Messages issued so far.
    pub issued: u64,
    pub forks_detected: u64,
    pub forks_beyond_window: u64,
    pub branch_switches: u64,
    pub resent_messages: u64,
    pub reissued_intents: u64,
    pub redelivery_asks: u64,
    pub redelivered_on_ask: u64,
    /// Own messages not sent again because the group now has members that were not in it
    /// when they were sent (`ResendWithheld`).
    pub resends_withheld: u64,
    /// First deliveries to a member that was not in the sender's group when it sent.
    pub read_outside_roster: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub join_lost: u64,
    pub removed: u64,
    pub readded: u64,
    pub commits_made: u64,
    pub welcomes_joined: u64,
    /// Gossip and sync transmissions started.
    pub transmissions: u64,
    pub bytes_sent: u64,
    pub net_lost: u64,
    pub net_cut: u64,
    /// Copies that arrived at a node that already had the envelope.
    pub net_duplicates: u64,
    /// Arrivals at a node that was down.
    pub arrived_down: u64,
    pub in_flight: i64,
    pub sync_sessions: u64,
    pub sync_bytes: u64,
    pub sync_fetched: u64,
    pub ihave_sent: u64,
    pub iwant_sent: u64,
    pub max_held: usize,
    pub fs_violations: u64,
    pub forks_per_node: Vec<u64>,
    pub switches_per_node: Vec<u64>,
    pub timeline: Vec<TimelineRow>,
    /// Rejection reasons, counted (first 60 characters).
    pub rejections: BTreeMap<String, u64>,
    /// Sampled member-time (µs) over (member, group) pairs while the member is up and in.
    pub member_us: u64,
    /// Of `member_us`: while the member could send at once (not held by a settle).
    pub send_available_us: u64,
    /// Of `member_us`: while a commit of the member's could take effect.
    pub commit_available_us: u64,
    /// Held states beyond each member's active head, times the time held (µs).
    pub fs_exposure_us: u64,
    /// The workload's commits, for commit latency.
    pub commit_intents: Vec<CommitIntent>,
}

impl Metrics {
    /// Counters for `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            forks_per_node: vec![0; nodes],
            switches_per_node: vec![0; nodes],
            ..Self::default()
        }
    }

    /// First deliveries, over all messages and receivers.
    pub fn delivered(&self) -> u64 {
        self.sent.iter().map(|m| m.delivered.len() as u64).sum()
    }

    /// Deliveries beyond the first, over all messages and receivers.
    pub fn duplicates(&self) -> u64 {
        self.sent
            .iter()
            .flat_map(|m| m.delivered.values())
            .map(|(n, _)| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Commit latencies (intent to applied everywhere), in ms, sorted; and how many intents
    /// were never applied everywhere.
    pub fn commit_latencies_ms(&self) -> (Vec<f64>, u64) {
        let mut v: Vec<f64> = self
            .commit_intents
            .iter()
            .filter_map(|c| {
                c.applied_everywhere
                    .map(|t| t.saturating_sub(c.at) as f64 / 1000.0)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let pending = self.commit_intents.len() as u64 - v.len() as u64;
        (v, pending)
    }

    /// A fraction of sampled member-time (1 when nothing was sampled).
    pub fn availability(&self, part_us: u64) -> f64 {
        if self.member_us == 0 {
            1.0
        } else {
            part_us as f64 / self.member_us as f64
        }
    }

    /// Delivery latencies (first delivery − send), in ms, sorted.
    pub fn latencies_ms(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .sent
            .iter()
            .flat_map(|m| {
                m.delivered
                    .values()
                    .map(move |(_, t)| t.saturating_sub(m.at) as f64 / 1000.0)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// The `q`-quantile of sorted values (0 when empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// Whether every member's view of a group agrees: same epoch, branch and member list, and
/// the list is exactly the nodes that think they are in.
pub fn views_agree<'a>(views: impl Iterator<Item = (NodeId, &'a View)>) -> bool {
    let inside: Vec<(NodeId, &View)> = views.filter(|(_, v)| v.in_group).collect();
    let Some((_, first)) = inside.first() else {
        return true;
    };
    let who: BTreeSet<NodeId> = inside.iter().map(|(n, _)| *n).collect();
    inside.iter().all(|(_, v)| {
        v.epoch == first.epoch && v.branch == first.branch && v.members == first.members
    }) && first.members == who
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_agree_only_on_one_branch_with_everyone_inside() {
        let v = |n: &[NodeId], epoch| View {
            in_group: true,
            epoch,
            members: n.iter().copied().collect(),
            ..View::default()
        };
        let a = v(&[0, 1], 3);
        let b = v(&[0, 1], 3);
        assert!(views_agree([(0, &a), (1, &b)].into_iter()));
        let c = v(&[0, 1], 4);
        assert!(!views_agree([(0, &a), (1, &c)].into_iter()));
        let d = v(&[0, 1, 2], 3);
        assert!(!views_agree([(0, &d), (1, &d)].into_iter()));
        assert!((quantile(&[1.0, 2.0, 3.0], 0.5) - 2.0).abs() < 1e-9);
    }
}
