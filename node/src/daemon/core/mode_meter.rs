//! What the groups' consistency modes cost this member, measured by the node about itself
//! (issue 8; the simulator's summary.json has the same figures over every member):
//!
//! - member-time: per group this member is in (not removed), the time since start;
//! - send availability: of that, the time an application message would have gone out at
//!   once (`settle-then-pick` queues sends while it settles);
//! - commit availability: of that, the time a commit would have been made at once and no own
//!   commit was waiting on the mode (held by a settle, or for the sequencer's echo). This is
//!   what one node can see: the simulator instead counts a `sequencer` member as able to
//!   commit while it is connected to the sequencer, which only the whole network knows;
//! - forward-secrecy exposure: held states beyond the active head, times the time held;
//! - commit latency: an own commit (invite, remove, update) from the API call until this
//!   member's active epoch moved past the one it was asked on (the simulator measures until
//!   every member did).
//!
//! The state of every group is read at the end of each round of the node (every input and
//! timer: a settle's end is a timer) and holds until the next one, so the time between two
//! rounds is added with the state read at the first.

use ds_p2p::engine::{ConsistencyMode, Engine};
use ds_p2p::wire::GroupRef;

use crate::metrics::ModeMetrics;

/// An own commit older than this without its epoch moving on is counted as never applied.
const INTENT_LIMIT_MS: u64 = 10 * 60 * 1000;
/// Own commits followed at once; beyond it the oldest are counted as never applied.
const MAX_INTENTS: usize = 1024;

/// What the groups allowed this member at the last read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Allowed {
    groups: u64,
    send: u64,
    commit: u64,
    extra_states: u64,
}

/// An own commit asked for and not yet applied: (group, epoch asked on, asked at ms).
type Intent = (GroupRef, u64, u64);

#[derive(Debug, Default)]
pub struct ModeMeter {
    last: Option<(u64, Allowed)>,
    member_ms: u64,
    send_ms: u64,
    commit_ms: u64,
    intents: Vec<Intent>,
}

impl ModeMeter {
    /// Adds the time since the last read with what was allowed then, and reads the groups
    /// again.
    pub fn observe(&mut self, engine: &Engine, now_ms: u64, metrics: &ModeMetrics) {
        if let Some((at, allowed)) = self.last {
            let dt = now_ms.saturating_sub(at);
            let seconds = |count: u64| (count * dt) as f64 / 1000.0;
            self.member_ms += allowed.groups * dt;
            self.send_ms += allowed.send * dt;
            self.commit_ms += allowed.commit * dt;
            metrics.member_seconds.inc_by(seconds(allowed.groups));
            metrics.send_available_seconds.inc_by(seconds(allowed.send));
            metrics
                .commit_available_seconds
                .inc_by(seconds(allowed.commit));
            metrics
                .fs_exposure_state_seconds
                .inc_by(seconds(allowed.extra_states));
            if self.member_ms > 0 {
                let member = self.member_ms as f64;
                metrics.availability_send.set(self.send_ms as f64 / member);
                metrics
                    .availability_commit
                    .set(self.commit_ms as f64 / member);
            }
        }
        let mut allowed = Allowed::default();
        let mut by_mode = [0i64; 3];
        for group in engine.groups() {
            let (Some(status), Some(mode)) = (
                engine.group_status(group),
                engine.consistency_status(group, now_ms),
            ) else {
                continue;
            };
            if status.evicted {
                continue;
            }
            allowed.groups += 1;
            allowed.extra_states += status.held_states.saturating_sub(1) as u64;
            if !mode.sends_paused {
                allowed.send += 1;
            }
            // While a settle runs, a commit asked for is made when it ends.
            if !mode.sends_paused && mode.commits_waiting == 0 {
                allowed.commit += 1;
            }
            let k = ConsistencyMode::NAMES
                .iter()
                .position(|n| *n == mode.mode.name())
                .unwrap_or(0);
            by_mode[k] += 1;
        }
        for (name, count) in ConsistencyMode::NAMES.iter().zip(by_mode) {
            metrics
                .groups
                .get_or_create(&vec![("mode".to_string(), name.to_string())])
                .set(count);
        }
        self.last = Some((now_ms, allowed));
        self.expire_intents(now_ms, metrics);
    }

    /// Notes an own commit asked for on `group` while its active epoch was `epoch`.
    pub fn intent(&mut self, group: GroupRef, epoch: u64, now_ms: u64, metrics: &ModeMetrics) {
        self.intents.push((group, epoch, now_ms));
        if self.intents.len() > MAX_INTENTS {
            self.intents.remove(0);
            metrics.commits_never_applied.inc();
        }
    }

    /// Forgets an intent noted by [`ModeMeter::intent`], if still waiting: the engine
    /// refused the command at once.
    pub fn withdraw(&mut self, group: GroupRef, epoch: u64, now_ms: u64) {
        if let Some(k) = self
            .intents
            .iter()
            .rposition(|i| *i == (group, epoch, now_ms))
        {
            self.intents.remove(k);
        }
    }

    /// The active epoch of `group` is `epoch` now: own commits asked on an earlier one are
    /// applied.
    pub fn epoch_changed(
        &mut self,
        group: GroupRef,
        epoch: u64,
        now_ms: u64,
        metrics: &ModeMetrics,
    ) {
        self.intents.retain(|(g, asked_on, at)| {
            let applied = *g == group && epoch > *asked_on;
            if applied {
                metrics.commit_ms.observe(now_ms.saturating_sub(*at) as f64);
            }
            !applied
        });
    }

    fn expire_intents(&mut self, now_ms: u64, metrics: &ModeMetrics) {
        self.intents.retain(|(_, _, at)| {
            let expired = now_ms.saturating_sub(*at) > INTENT_LIMIT_MS;
            if expired {
                metrics.commits_never_applied.inc();
            }
            !expired
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn commit_latency_is_taken_when_the_epoch_moves_past_the_one_asked_on() {
        let metrics = Metrics::default();
        let m = &metrics.modes;
        let mut meter = ModeMeter::default();
        let (a, b) = (GroupRef([1; 16]), GroupRef([2; 16]));
        meter.intent(a, 4, 1_000, m);
        meter.intent(b, 4, 1_000, m);
        meter.epoch_changed(a, 4, 1_500, m); // not past: still waiting
        meter.epoch_changed(a, 5, 3_500, m);
        let text = metrics.render("");
        assert!(text.contains("chorus_commit_ms_count 1\n"), "{text}");
        assert!(text.contains("chorus_commit_ms_sum 2500.0\n"), "{text}");
        meter.expire_intents(1_000 + INTENT_LIMIT_MS + 1, m);
        let text = metrics.render("");
        assert!(
            text.contains("chorus_commits_never_applied_total 1\n"),
            "{text}"
        );
    }
}
