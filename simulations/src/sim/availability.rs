//! What issue 8 compares across consistency modes, measured the same way for every mode:
//! availability (member-time during which a member could send, and could commit), commit
//! latency (intent to applied everywhere) and forward-secrecy exposure (held states beyond
//! the active head, over time).
//!
//! Availability and exposure are sampled at the metrics interval (1 s by default), from
//! each member's engine. "Could send" means the engine would send an application message at
//! once (not queued by a settle). "Could commit" means a commit made now can take effect:
//! always under accept-and-hold and settle-then-pick (the commit is local; whether it later
//! loses a race is what forks and switches count), and under `sequencer` only while the
//! member is directly connected to the sequencer of its active state (or is it).

use super::Simulator;
use crate::metrics::CommitIntent;
use crate::scenario::NodeId;
use ds_p2p::engine::ConsistencyMode;

impl Simulator {
    /// One sample of availability and exposure over every (member, group).
    pub(crate) fn sample_availability(&mut self) {
        let dt = self.sc.metrics.interval.micros();
        let now = self.now;
        let inside: Vec<(usize, NodeId)> = self
            .views
            .iter()
            .filter(|(_, v)| v.in_group)
            .map(|(k, _)| *k)
            .collect();
        for (g, n) in inside {
            let Some(gref) = self.groups[g].group_ref else {
                continue;
            };
            let node = &self.nodes[n];
            let Some(engine) = &node.engine else {
                continue; // down: not member-time
            };
            let now_ms = node.engine_now_ms(now);
            let (Some(status), Some(held)) = (
                engine.consistency_status(gref, now_ms),
                engine.group_status(gref).map(|s| s.held_states),
            ) else {
                continue;
            };
            let m = &mut self.metrics;
            m.member_us += dt;
            m.fs_exposure_us += held.saturating_sub(1) as u64 * dt;
            if !status.sends_paused {
                m.send_available_us += dt;
            }
            let can_commit = match status.mode {
                ConsistencyMode::Sequencer => status
                    .sequencer
                    .and_then(|id| self.by_identity.get(&id).copied())
                    .is_some_and(|s| {
                        s == n || (self.nodes[s].is_up() && self.net.connected(now, n, s))
                    }),
                _ => true,
            };
            if can_commit {
                self.metrics.commit_available_us += dt;
            }
        }
    }

    /// Notes a commit intent of node `n` on group `g` (a workload commit handed to the
    /// engine), measured from now until every member is on one branch past its epoch.
    pub(crate) fn note_commit_intent(&mut self, n: NodeId, g: usize) {
        let base_epoch = self.views.get(&(g, n)).map(|v| v.epoch).unwrap_or(0);
        self.metrics.commit_intents.push(CommitIntent {
            at: self.now,
            group: g,
            base_epoch,
            applied_everywhere: None,
        });
    }

    /// After a member's view of group `g` changed: intents the group has now applied
    /// everywhere (every member on one branch, past the intent's epoch) are done.
    pub(crate) fn check_commit_intents(&mut self, g: usize) {
        let waiting = self
            .metrics
            .commit_intents
            .iter()
            .any(|c| c.group == g && c.applied_everywhere.is_none());
        if !waiting || !self.group_agrees(g) {
            return;
        }
        let Some(epoch) = self
            .views
            .range((g, 0)..(g + 1, 0))
            .find(|(_, v)| v.in_group)
            .map(|(_, v)| v.epoch)
        else {
            return;
        };
        let now = self.now;
        for c in &mut self.metrics.commit_intents {
            if c.group == g && c.applied_everywhere.is_none() && epoch > c.base_epoch {
                c.applied_everywhere = Some(now);
            }
        }
    }
}
