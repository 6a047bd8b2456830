//! The end of a run: the authoritative convergence check (every member's engine asked for
//! its status), message loss, and the summary.

use std::collections::BTreeSet;

use super::Simulator;
use crate::error::SimError;
use crate::metrics::{Metrics, quantile};
use crate::report::Summary;
use crate::scenario::NodeId;
use crate::time::MS;

/// What a run produced.
pub struct RunResult {
    pub summary: Summary,
    pub metrics: Metrics,
    /// Node count, for per-node plots.
    pub nodes: usize,
    /// Per group (in scenario order): the nodes inside it at the end, by their engines.
    pub final_members: Vec<BTreeSet<NodeId>>,
    /// Ed25519 verifications the engines answered from the run's shared memo (0 with
    /// `verify_every_signature`).
    pub signature_memo_hits: u64,
}

impl Simulator {
    pub(crate) fn finish(mut self, wall_ms: u64) -> Result<RunResult, SimError> {
        // Final membership per group, from the engines themselves.
        let mut converged = true;
        let mut finals: Vec<BTreeSet<NodeId>> = Vec::new();
        let mut group_notes = Vec::new();
        for g in 0..self.groups.len() {
            let Some(gref) = self.groups[g].group_ref else {
                converged = false;
                finals.push(BTreeSet::new());
                group_notes.push(format!("group {} was never created", self.groups[g].name));
                continue;
            };
            let mut inside = Vec::new();
            for node in &self.nodes {
                let Some(engine) = &node.engine else { continue };
                let Some(s) = engine.group_status(gref) else {
                    continue;
                };
                if !s.evicted && s.members.contains(&node.identity) {
                    inside.push((node.id, s));
                }
            }
            let who: BTreeSet<NodeId> = inside.iter().map(|(n, _)| *n).collect();
            let agree = match inside.first() {
                None => true,
                Some((_, first)) => {
                    let listed: BTreeSet<NodeId> = first
                        .members
                        .iter()
                        .filter_map(|m| self.by_identity.get(m).copied())
                        .collect();
                    inside.iter().all(|(_, s)| {
                        (s.epoch, s.branch_id, &s.members)
                            == (first.epoch, first.branch_id, &first.members)
                    }) && listed == who
                }
            };
            if !agree {
                converged = false;
                let branches: BTreeSet<(u64, String)> = inside
                    .iter()
                    .map(|(_, s)| (s.epoch, hex::encode(&s.branch_id[..4])))
                    .collect();
                group_notes.push(format!(
                    "group {} did not converge: {} members on {} (epoch, branch) states {:?}",
                    self.groups[g].name,
                    inside.len(),
                    branches.len(),
                    branches
                ));
            }
            let held: usize = inside.iter().map(|(_, s)| s.held_states).max().unwrap_or(0);
            self.metrics.max_held = self.metrics.max_held.max(held);
            finals.push(who);
        }

        let mut lost = 0u64;
        let mut lost_examples = Vec::new();
        for m in self.metrics.sent.iter().filter(|m| m.issued) {
            let fin = &finals[m.group];
            if !fin.contains(&m.sender) {
                continue;
            }
            let mut missing = 0usize;
            for r in &m.expected {
                let left_later = self
                    .views
                    .get(&(m.group, *r))
                    .and_then(|v| v.left_at)
                    .is_some_and(|l| l >= m.at);
                if fin.contains(r) && !left_later && !m.delivered.contains_key(r) {
                    missing += 1;
                }
            }
            lost += missing as u64;
            if missing > 0 {
                lost_examples.push((m.at, m.group, m.sender, missing, m.expected.len()));
            }
        }
        // Where to start looking: the first few lost messages, by when they were sent.
        lost_examples.sort();
        const LOST_NOTES: usize = 5;
        for (at, g, sender, missing, expected) in lost_examples.iter().take(LOST_NOTES) {
            group_notes.push(format!(
                "lost: the message n{sender} sent to group {} at {} ms reached {} of {expected} members",
                self.groups[*g].name,
                at / MS,
                expected - missing,
            ));
        }
        if lost_examples.len() > LOST_NOTES {
            group_notes.push(format!(
                "lost: {} more messages reached fewer members than they should",
                lost_examples.len() - LOST_NOTES
            ));
        }

        let reference = if self.sc.partitions.is_empty()
            && self.sc.flaps.is_empty()
            && self.sc.crashes.is_empty()
        {
            self.sc.last_membership_action()
        } else {
            self.sc
                .last_heal()
                .unwrap_or(0)
                .max(self.sc.last_membership_action())
        };
        let convergence_ms = match (converged, self.converged_since) {
            (true, Some(since)) => Some(since.saturating_sub(reference) / MS),
            _ => None,
        };

        let mut notes = group_notes;
        let window = self.sc.engine.fork_window.micros();
        for (k, p) in self.sc.partitions.iter().enumerate() {
            match p.heal {
                Some(h) if h - p.start > window => notes.push(format!(
                    "partition {k} lasts {} ms, longer than the {} ms fork window: the window cannot resolve it; the engine heals the split (engine/heal.rs: the losing side rejoins the winning branch)",
                    (h - p.start) / MS,
                    window / MS
                )),
                None => notes.push(format!("partition {k} never heals")),
                _ => {}
            }
        }
        for c in &self.sc.crashes {
            if c.restart.is_none() {
                notes.push(format!(
                    "n{} crashes and stays down: it is left out of the convergence check",
                    c.node
                ));
            }
        }
        if self.metrics.in_flight > 0 {
            notes.push(format!(
                "{} transmissions were still in flight at the end",
                self.metrics.in_flight
            ));
        }

        let trace_hash = self.trace.finish(self.trace_path.as_deref())?;
        let lat = self.metrics.latencies_ms();
        let (commit_lat, commits_never_applied) = self.metrics.commit_latencies_ms();
        let m = &self.metrics;
        let summary = Summary {
            seed: self.seed,
            scenario: self.sc.name.clone(),
            nodes: self.sc.nodes,
            groups: self.groups.len(),
            policy: self.sc.engine.policy.name().to_string(),
            consistency: self.sc.engine.consistency.to_string(),
            fork_window_ms: self.sc.engine.fork_window.ms(),
            dissemination: format!("{:?}", self.sc.dissemination.mode).to_lowercase(),
            virtual_duration_ms: self.sc.duration / MS,
            wall_ms,
            events: self.events,
            virtual_to_wall: if wall_ms > 0 {
                (self.sc.duration / MS) as f64 / wall_ms as f64
            } else {
                0.0
            },
            messages_sent: m.sent.iter().filter(|x| x.issued).count() as u64,
            messages_delivered: m.delivered(),
            messages_lost: lost,
            duplicates_delivered: m.duplicates(),
            delivery_ms_p50: quantile(&lat, 0.5),
            delivery_ms_p99: quantile(&lat, 0.99),
            availability_send: m.availability(m.send_available_us),
            availability_commit: m.availability(m.commit_available_us),
            commit_ms_p50: quantile(&commit_lat, 0.5),
            commit_ms_p99: quantile(&commit_lat, 0.99),
            commits_never_applied,
            fs_exposure_state_s: m.fs_exposure_us as f64 / 1e6,
            forks_detected: m.forks_detected,
            forks_beyond_window: m.forks_beyond_window,
            branch_switches: m.branch_switches,
            resent_messages: m.resent_messages,
            redelivery_asks: m.redelivery_asks,
            redelivered_on_ask: m.redelivered_on_ask,
            resends_withheld: m.resends_withheld,
            read_outside_roster: m.read_outside_roster,
            reissued_intents: m.reissued_intents,
            commits_made: m.commits_made,
            welcomes_joined: m.welcomes_joined,
            join_lost: m.join_lost,
            removed: m.removed,
            readded: m.readded,
            converged,
            convergence_ms,
            convergence_reference_ms: reference / MS,
            max_held_branches: m.max_held,
            fs_violations: m.fs_violations,
            engine_rejections: m.rejected,
            engine_dropped: m.dropped,
            transmissions: m.transmissions,
            bytes_sent: m.bytes_sent,
            network_lost: m.net_lost,
            network_cut: m.net_cut,
            network_duplicates: m.net_duplicates,
            arrived_while_down: m.arrived_down,
            sync_sessions: m.sync_sessions,
            sync_bytes: m.sync_bytes,
            sync_fetched: m.sync_fetched,
            ihave_sent: m.ihave_sent,
            iwant_sent: m.iwant_sent,
            trace_lines: self.trace.lines(),
            trace_hash,
            rejection_reasons: m.rejections.clone(),
            notes,
        };
        Ok(RunResult {
            summary,
            nodes: self.sc.nodes,
            final_members: finals,
            signature_memo_hits: self
                .signature_memo
                .as_ref()
                .map_or(0, |m| m.signatures.hits()),
            metrics: std::mem::take(&mut self.metrics),
        })
    }
}
