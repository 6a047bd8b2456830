//! The CPU cost model: every MLS operation keeps its node busy for a while in virtual time,
//! `base + per_member × group size`. Inputs that arrive while a node is busy wait.
//!
//! Defaults are fitted to the engine benchmark in the top-level README (release build,
//! in-memory store, 10 / 100 / 1000 members, engine ≈ 1.1× openmls): self-update commit
//! 2.0 / 9.3 / 74 ms, process a commit 1.5 / 7.7 / 61 ms, send and receive of 1 KiB
//! 0.24 / 2.4 / 25 ms and 0.28 / 2.4 / 27 ms; a Welcome at 1000 members 39 ms.

use serde::Deserialize;

use crate::time::{Dur, MS, Micros};

/// The cost of one operation: `base + per_member × members`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCost {
    pub base: Dur,
    pub per_member: Dur,
}

impl OpCost {
    const fn us(base: u64, per_member: u64) -> Self {
        OpCost {
            base: Dur(base),
            per_member: Dur(per_member),
        }
    }

    fn at(&self, members: usize, scale: f64) -> Micros {
        let raw = self.base.micros() + self.per_member.micros() * members as u64;
        (raw as f64 * scale).round() as Micros
    }
}

/// Which operation an input cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Creating and merging an own commit (update, add, remove, re-issue).
    Commit,
    /// Processing someone's commit.
    ProcessCommit,
    /// Encrypting an application message (also a re-send).
    Send,
    /// Decrypting an application message.
    Receive,
    /// Joining from a Welcome.
    Join,
    /// A beacon (exporter secret + encrypt) or reading one.
    Beacon,
    /// Anything else (a timer with nothing due, a refused envelope).
    Other,
}

/// The `[cpu]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostModel {
    /// Off: every operation is instantaneous (Shadow's infinitely fast CPU).
    pub enabled: bool,
    /// Multiplies every cost (e.g. 3.0 for a slow phone).
    pub scale: f64,
    pub commit: OpCost,
    pub process_commit: OpCost,
    pub send: OpCost,
    pub receive: OpCost,
    pub join: OpCost,
    pub beacon: OpCost,
    pub other: OpCost,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            enabled: true,
            scale: 1.0,
            commit: OpCost::us(1_300, 73),
            process_commit: OpCost::us(900, 61),
            send: OpCost::us(20, 25),
            receive: OpCost::us(30, 27),
            join: OpCost::us(1_000, 38),
            beacon: OpCost::us(100, 5),
            other: OpCost::us(20, 0),
        }
    }
}

impl CostModel {
    /// Virtual time `op` takes in a group of `members`.
    pub fn cost(&self, op: Op, members: usize) -> Micros {
        if !self.enabled {
            return 0;
        }
        let c = match op {
            Op::Commit => &self.commit,
            Op::ProcessCommit => &self.process_commit,
            Op::Send => &self.send,
            Op::Receive => &self.receive,
            Op::Join => &self.join,
            Op::Beacon => &self.beacon,
            Op::Other => &self.other,
        };
        c.at(members, self.scale)
    }

    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.scale.is_finite() && self.scale >= 0.0) {
            return Err(format!(
                "scale must be a non-negative number, not {}",
                self.scale
            ));
        }
        Ok(())
    }
}

/// A millisecond, for tests.
pub const ONE_MS: Micros = MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_benchmark() {
        let m = CostModel::default();
        // Within 25% of the measured 1000-member figures.
        let commit = m.cost(Op::Commit, 1000) as f64 / ONE_MS as f64;
        assert!((60.0..95.0).contains(&commit), "{commit}");
        let process = m.cost(Op::ProcessCommit, 1000) as f64 / ONE_MS as f64;
        assert!((48.0..78.0).contains(&process), "{process}");
        let off = CostModel {
            enabled: false,
            ..CostModel::default()
        };
        assert_eq!(off.cost(Op::Commit, 1000), 0);
    }
}
