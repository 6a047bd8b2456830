//! Consistency modes: how a group orders concurrent commits (RFC 9750 §5.2).
//!
//! - [`ConsistencyMode::AcceptAndHold`] — §5.2.2 option 2, the fork window of DESIGN §4: a
//!   commit is applied at once and the past is kept; a better competing commit switches the
//!   branch later. The default; with it none of this module's hooks change anything.
//! - [`ConsistencyMode::SettleThenPick`] — §5.2.2 option 1 ([`settle`]): on a commit for the
//!   current epoch, hold it and pause application sends for a settle delay, then apply the
//!   tie-break winner among the commits seen. Late commits still go through the fork window.
//! - [`ConsistencyMode::Sequencer`] — §5.2.1, strongly consistent ([`sequencer`]): one
//!   designated member orders commits; a commit is applied only on its signed echo.
//!
//! The engine calls the hooks here at four points: before it follows a head (start a settle,
//! echo as sequencer), to choose the head it follows, after it followed one (pending states,
//! lost own commits), and from its timers (end of a settle). What a mode keeps per group at
//! run time is in [`GroupConsistency`]; what of it must survive a restart is stored beside
//! the group record ([`stored`]).

pub(crate) mod sequencer;
pub(crate) mod settle;
pub(crate) mod stored;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::GroupRecord;
use super::{Engine, EngineError};
use crate::storage::BranchId;
use crate::wire::{GroupRef, MessageId, SequencerEcho};

/// The settle delay `settle-then-pick` uses unless configured: a few gossip round trips
/// (the simulator's meshes deliver to 99 % of members in well under a second), short
/// against the 60 s fork window.
pub const DEFAULT_SETTLE_MS: u64 = 2_000;

/// How a group orders concurrent commits. Every member of a group must use the same mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConsistencyMode {
    /// Apply at once, keep the past for the fork window, switch if a better branch shows up.
    #[default]
    AcceptAndHold,
    /// Hold a commit for the current epoch and pause sends for `settle_ms`, then apply the
    /// tie-break winner among the commits seen.
    SettleThenPick { settle_ms: u64 },
    /// The member at the lowest leaf index orders commits; others apply them on its echo.
    Sequencer,
}

impl ConsistencyMode {
    /// The mode names configuration, the CLI and reports use.
    pub const NAMES: [&'static str; 3] = ["accept-and-hold", "settle-then-pick", "sequencer"];

    pub fn name(&self) -> &'static str {
        match self {
            ConsistencyMode::AcceptAndHold => "accept-and-hold",
            ConsistencyMode::SettleThenPick { .. } => "settle-then-pick",
            ConsistencyMode::Sequencer => "sequencer",
        }
    }

    /// Every mode with its default parameters, for property tests and comparisons.
    pub fn all() -> [ConsistencyMode; 3] {
        [
            ConsistencyMode::AcceptAndHold,
            ConsistencyMode::SettleThenPick {
                settle_ms: DEFAULT_SETTLE_MS,
            },
            ConsistencyMode::Sequencer,
        ]
    }
}

impl std::fmt::Display for ConsistencyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsistencyMode::SettleThenPick { settle_ms } if *settle_ms != DEFAULT_SETTLE_MS => {
                write!(f, "settle-then-pick:{settle_ms}ms")
            }
            other => f.write_str(other.name()),
        }
    }
}

impl std::str::FromStr for ConsistencyMode {
    type Err = String;

    /// `accept-and-hold`, `sequencer`, `settle-then-pick` (delay [`DEFAULT_SETTLE_MS`]) or
    /// `settle-then-pick:<ms>` (e.g. `settle-then-pick:500`, `settle-then-pick:500ms`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, delay) = match s.split_once(':') {
            Some((name, delay)) => (name, Some(delay)),
            None => (s, None),
        };
        let mode = match (name, delay) {
            ("accept-and-hold", None) => ConsistencyMode::AcceptAndHold,
            ("sequencer", None) => ConsistencyMode::Sequencer,
            ("settle-then-pick", None) => ConsistencyMode::SettleThenPick {
                settle_ms: DEFAULT_SETTLE_MS,
            },
            ("settle-then-pick", Some(delay)) => {
                let digits = delay.trim_end_matches("ms");
                let settle_ms = digits.parse::<u64>().map_err(|_| {
                    format!("settle delay {delay:?} is not a number of milliseconds")
                })?;
                ConsistencyMode::SettleThenPick { settle_ms }
            }
            _ => {
                return Err(format!(
                    "unknown consistency mode {s:?}; expected accept-and-hold, \
                     settle-then-pick[:<ms>] or sequencer"
                ));
            }
        };
        Ok(mode)
    }
}

/// What a mode keeps per group while the engine runs.
#[derive(Debug, Default)]
pub(crate) struct GroupConsistency {
    /// `settle-then-pick`: when the running settle ends.
    pub settle_until: Option<u64>,
    /// `settle-then-pick`: the active state whose settle just ended, so the follow that ends
    /// it does not start another for the same commits.
    pub settled: Option<BranchId>,
    /// `settle-then-pick`: application messages asked for during a settle, sent after it:
    /// (id, asked at, body).
    pub queued: Vec<(MessageId, u64, Vec<u8>)>,
    /// `sequencer`: echoes received or made, by the epoch they order (verified when used).
    pub echoes: BTreeMap<u64, Vec<SequencerEcho>>,
    /// Welcomes of own Adds held by the mode (until the settle picks the Add, or its echo
    /// arrives): (state the Add made, topic, envelope). A Welcome from a commit that is
    /// never applied would put the joiner on a branch nobody follows.
    pub held_welcomes: Vec<(BranchId, String, Vec<u8>)>,
    /// `sequencer`: the sequencer of the active state when it was last loaded (state, leaf,
    /// signature key), for the moments `rt.group` holds another state.
    pub sequencer: Option<(BranchId, u32, Vec<u8>)>,
    /// Whether the store holds a record of this state (see [`stored`]).
    pub stored: bool,
}

/// What a group's consistency mode allows a member right now (status, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyStatus {
    pub mode: ConsistencyMode,
    /// `settle-then-pick` is settling: application messages are queued until it ends.
    pub sends_paused: bool,
    /// Own commits made and not yet applied (held by a settle or waiting for an echo).
    pub commits_waiting: usize,
    /// `sequencer`: the credential identity of the active state's sequencer.
    pub sequencer: Option<Vec<u8>>,
}

/// What an own commit does to the active branch under the group's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnCommit {
    /// Becomes the active head at once (accept-and-hold; the sequencer's own commits).
    Activate,
    /// Stays a held state beside the active head until the mode decides.
    Hold,
}

impl Engine {
    /// The mode of `group`: its own entry in the configuration, or the engine's default.
    pub(crate) fn mode_of(&self, group: GroupRef) -> ConsistencyMode {
        self.config.consistency_of(group)
    }

    pub(crate) fn consistency_mut(&mut self, group: GroupRef) -> &mut GroupConsistency {
        self.consistency.entry(group).or_default()
    }

    /// What the mode of `group` allows this member at `now_ms`; `None` for an unknown group.
    pub fn consistency_status(&self, group: GroupRef, now_ms: u64) -> Option<ConsistencyStatus> {
        let rt = self.groups.get(&group)?;
        let mode = self.mode_of(group);
        let state = self.consistency.get(&group);
        let sends_paused = state
            .and_then(|c| c.settle_until)
            .is_some_and(|until| now_ms < until);
        let active = rt.record.active;
        let commits_waiting = rt
            .record
            .intents
            .iter()
            .filter(|i| rt.record.tree.get(i.on).and_then(|s| s.parent) == Some(active))
            .count();
        let sequencer = (mode == ConsistencyMode::Sequencer)
            .then(|| {
                rt.group
                    .members()
                    .min_by_key(|m| m.index.u32())
                    .map(|m| m.credential.serialized_content().to_vec())
            })
            .flatten();
        Some(ConsistencyStatus {
            mode,
            sends_paused,
            commits_waiting,
            sequencer,
        })
    }

    /// Whether this member is the only one in the active state of `group`.
    fn alone_in(&self, group: GroupRef) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|rt| rt.group.members().nth(1).is_none())
    }

    /// Whether an own commit on `group` becomes the head at once.
    pub(crate) fn own_commit_effect(&self, group: GroupRef) -> OwnCommit {
        match self.mode_of(group) {
            ConsistencyMode::AcceptAndHold => OwnCommit::Activate,
            // A member alone in its group has nobody to race: nothing to settle.
            ConsistencyMode::SettleThenPick { .. } if self.alone_in(group) => OwnCommit::Activate,
            ConsistencyMode::SettleThenPick { .. } => OwnCommit::Hold,
            ConsistencyMode::Sequencer => {
                if self.is_sequencer(group) {
                    OwnCommit::Activate
                } else {
                    OwnCommit::Hold
                }
            }
        }
    }

    /// Called after an own commit's step: starts a settle, or echoes as sequencer.
    pub(crate) fn after_own_commit(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        effect: OwnCommit,
    ) -> Result<(), EngineError> {
        match self.mode_of(group) {
            ConsistencyMode::AcceptAndHold => Ok(()),
            ConsistencyMode::SettleThenPick { settle_ms } => {
                if effect == OwnCommit::Hold {
                    self.start_settle(now_ms, group, settle_ms)?;
                }
                Ok(())
            }
            ConsistencyMode::Sequencer => {
                if effect == OwnCommit::Activate {
                    self.echo_own_commit(group)?;
                }
                self.note_sequencer(group);
                Ok(())
            }
        }
    }

    /// Called before the engine follows a head after something changed the tree.
    pub(crate) fn before_follow(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        match self.mode_of(group) {
            ConsistencyMode::AcceptAndHold => Ok(()),
            ConsistencyMode::SettleThenPick { settle_ms } => {
                let settled = self.consistency.get(&group).and_then(|c| c.settled);
                let pending = self.groups.get(&group).is_some_and(|rt| {
                    has_child_of_active(&rt.record) && settled != Some(rt.record.active)
                });
                if pending {
                    self.start_settle(now_ms, group, settle_ms)?;
                }
                Ok(())
            }
            ConsistencyMode::Sequencer => self.echo_if_sequencer(group, self.config.policy),
        }
    }

    /// The head the engine should make active now, by the group's mode (`None`: stay).
    pub(crate) fn head_to_follow(
        &self,
        now_ms: u64,
        group: GroupRef,
        policy: super::TieBreak,
    ) -> Option<BranchId> {
        let rt = self.groups.get(&group)?;
        // Every member beacons once an interval: a lineage unshown for longer was left.
        let lapse_ms = self.config.beacon_interval_ms;
        match self.mode_of(group) {
            ConsistencyMode::AcceptAndHold => rt.record.tree.preferred_head(policy, lapse_ms),
            ConsistencyMode::SettleThenPick { .. } => {
                let settling = self
                    .consistency
                    .get(&group)
                    .and_then(|c| c.settle_until)
                    .is_some_and(|until| now_ms < until);
                if settling {
                    None
                } else {
                    rt.record.tree.preferred_head(policy, lapse_ms)
                }
            }
            ConsistencyMode::Sequencer => self.sequenced_step(group),
        }
    }

    /// Called after the engine followed (or kept) a head. Children of the active head are
    /// commits still undecided under a holding mode: they must not expire while they may
    /// still be chosen; states the decision left behind start their window now. Own
    /// commits that were not chosen are re-issued like lost intents after a switch.
    pub(crate) fn after_follow(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        let mode = self.mode_of(group);
        if mode == ConsistencyMode::AcceptAndHold {
            return Ok(());
        }
        let Some(rt) = self.groups.get_mut(&group) else {
            return Ok(());
        };
        let active = rt.record.active;
        let mut changed = false;
        let ids: Vec<BranchId> = rt.record.tree.states().map(|s| s.storage).collect();
        for id in ids {
            if id == active {
                continue;
            }
            let pending = rt.record.tree.get(id).and_then(|s| s.parent) == Some(active);
            let Some(state) = rt.record.tree.get_mut(id) else {
                continue;
            };
            match (pending, state.inactive_since_ms) {
                (true, Some(_)) => {
                    state.inactive_since_ms = None;
                    changed = true;
                }
                (false, None) => {
                    state.inactive_since_ms = Some(now_ms);
                    changed = true;
                }
                _ => {}
            }
        }
        let lost_intent = rt.record.intents.iter().any(|i| {
            !rt.record.tree.is_ancestor_or_self(i.on, active)
                && rt.record.tree.get(i.on).and_then(|s| s.parent) != Some(active)
        });
        if changed {
            self.save_group(group)?;
        }
        if lost_intent {
            self.reschedule_lost_intents(now_ms, group, active)?;
        }
        self.release_welcomes(group)?;
        if mode == ConsistencyMode::Sequencer {
            self.note_sequencer(group);
            // The group in memory is the active state's again: a sequencer that could not
            // tell it was one while a commit was applied in place echoes now.
            self.echo_if_sequencer(group, self.config.policy)?;
            // An echo that arrived before its commit, or the next epoch's echo already in:
            // keep following while the sequencer has ordered more.
            if self.sequenced_step(group).is_some() {
                return self.after_commit(now_ms, group);
            }
        }
        Ok(())
    }

    /// When a mode's timer is next due.
    pub(crate) fn consistency_due(&self) -> Option<u64> {
        self.consistency
            .values()
            .filter_map(|c| c.settle_until)
            .min()
    }

    /// Runs a mode's due timers for `group`.
    pub(crate) fn consistency_timeout(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        let due = self
            .consistency
            .get(&group)
            .and_then(|c| c.settle_until)
            .is_some_and(|until| until <= now_ms);
        if due {
            self.end_settle(now_ms, group)?;
        }
        Ok(())
    }
}

impl Engine {
    /// Schedules own commits that a holding mode decided against (not on the path to the
    /// active head, and no longer waiting as a child of it) for re-issue, as a switch does
    /// for lost intents (same seeded delay, same "still needed" check when due).
    fn reschedule_lost_intents(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        head: BranchId,
    ) -> Result<(), EngineError> {
        use rand::RngCore as _;
        let delay = super::switch::REISSUE_DELAY_MS
            + self.rng.next_u64() % super::switch::REISSUE_JITTER_MS;
        let rt = self.runtime(group)?;
        let tree = &rt.record.tree;
        let (lost, kept): (Vec<_>, Vec<_>) = rt.record.intents.drain(..).partition(|i| {
            !tree.is_ancestor_or_self(i.on, head)
                && tree.get(i.on).and_then(|s| s.parent) != Some(head)
        });
        rt.record.intents = kept;
        rt.record.queue_reissues(lost, now_ms + delay);
        self.save_group(group)
    }
}

/// Whether a held state was made by a commit on the active state: a commit for the current
/// epoch that has not been applied.
pub(crate) fn has_child_of_active(record: &GroupRecord) -> bool {
    record
        .tree
        .states()
        .any(|s| s.parent == Some(record.active))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip_and_bad_names_say_what_is_expected() {
        for mode in ConsistencyMode::all() {
            assert_eq!(mode.to_string().parse::<ConsistencyMode>(), Ok(mode));
            assert_eq!(mode.name().parse::<ConsistencyMode>(), Ok(mode));
        }
        assert_eq!(
            "settle-then-pick:500ms".parse::<ConsistencyMode>(),
            Ok(ConsistencyMode::SettleThenPick { settle_ms: 500 })
        );
        assert_eq!(
            "settle-then-pick:500".parse::<ConsistencyMode>(),
            Ok(ConsistencyMode::SettleThenPick { settle_ms: 500 })
        );
        let err = "raft".parse::<ConsistencyMode>().unwrap_err();
        assert!(err.contains("accept-and-hold"), "{err}");
        assert!("settle-then-pick:soon".parse::<ConsistencyMode>().is_err());
        assert!("sequencer:5".parse::<ConsistencyMode>().is_err());
        assert_eq!(ConsistencyMode::default(), ConsistencyMode::AcceptAndHold);
    }
}
