//! Tie-break policies: which of two competing branches a group converges on.
//!
//! Every policy is a pure function of what all members see — commit refs, decrypted commit
//! contents, the shape of the branch tree within the window — never arrival order or clocks,
//! and every policy ends with "lowest commit ref at the fork point", so it is a total order.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::wire::CommitRef;

/// What the members know about the commit that created a branch state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitFacts {
    /// SHA-256 of the commit's envelope payload.
    pub commit_ref: CommitRef,
    /// Members the commit removes.
    pub removes: u32,
    /// Members the commit adds.
    pub adds: u32,
}

/// A candidate at a fork: the commit that leads into it and how deep the branch below goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contender<'a> {
    pub facts: &'a CommitFacts,
    /// Epochs built on top of this commit's state within the held tree (0 = a leaf).
    pub depth: u64,
}

/// A deterministic tie-break policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TieBreak {
    /// The lowest commit ref at the fork point wins.
    #[default]
    LowestRef,
    /// A commit that removes someone beats one that doesn't; then lowest ref.
    RemovesFirst,
    /// The branch with more epochs built on top wins; then lowest ref.
    DeepestBranch,
}

impl TieBreak {
    /// Every policy, for sweeps and property tests.
    pub const ALL: [TieBreak; 3] = [
        TieBreak::LowestRef,
        TieBreak::RemovesFirst,
        TieBreak::DeepestBranch,
    ];

    /// The policy's name as configuration and reports spell it.
    pub fn name(&self) -> &'static str {
        match self {
            TieBreak::LowestRef => "lowest-ref",
            TieBreak::RemovesFirst => "removes-first",
            TieBreak::DeepestBranch => "deepest-branch",
        }
    }

    /// `Less` when `a` beats `b`.
    pub fn compare(&self, a: &Contender<'_>, b: &Contender<'_>) -> Ordering {
        let by_ref = a.facts.commit_ref.cmp(&b.facts.commit_ref);
        match self {
            TieBreak::LowestRef => by_ref,
            TieBreak::RemovesFirst => {
                let a_removes = a.facts.removes > 0;
                let b_removes = b.facts.removes > 0;
                b_removes.cmp(&a_removes).then(by_ref)
            }
            TieBreak::DeepestBranch => b.depth.cmp(&a.depth).then(by_ref),
        }
    }
}

impl std::str::FromStr for TieBreak {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TieBreak::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown tie-break policy {s:?}; expected lowest-ref, removes-first or deepest-branch")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(first: u8, removes: u32) -> CommitFacts {
        let mut r = [0u8; 32];
        r[0] = first;
        CommitFacts {
            commit_ref: CommitRef(r),
            removes,
            adds: 0,
        }
    }

    #[test]
    fn every_policy_falls_back_to_the_lowest_ref() {
        let low = facts(1, 0);
        let high = facts(2, 0);
        for policy in TieBreak::ALL {
            let a = Contender {
                facts: &low,
                depth: 0,
            };
            let b = Contender {
                facts: &high,
                depth: 0,
            };
            assert_eq!(policy.compare(&a, &b), Ordering::Less, "{}", policy.name());
            assert_eq!(
                policy.compare(&b, &a),
                Ordering::Greater,
                "{}",
                policy.name()
            );
        }
    }

    #[test]
    fn removes_first_prefers_a_removal_over_a_lower_ref() {
        let plain = facts(1, 0);
        let removal = facts(9, 1);
        let a = Contender {
            facts: &plain,
            depth: 0,
        };
        let b = Contender {
            facts: &removal,
            depth: 0,
        };
        assert_eq!(TieBreak::RemovesFirst.compare(&b, &a), Ordering::Less);
        assert_eq!(TieBreak::LowestRef.compare(&b, &a), Ordering::Greater);
    }

    #[test]
    fn deepest_branch_prefers_depth_over_a_lower_ref() {
        let shallow = facts(1, 0);
        let deep = facts(9, 0);
        let a = Contender {
            facts: &shallow,
            depth: 0,
        };
        let b = Contender {
            facts: &deep,
            depth: 2,
        };
        assert_eq!(TieBreak::DeepestBranch.compare(&b, &a), Ordering::Less);
        assert_eq!(TieBreak::LowestRef.compare(&b, &a), Ordering::Greater);
    }

    #[test]
    fn policy_names_round_trip() {
        for policy in TieBreak::ALL {
            assert_eq!(policy.name().parse::<TieBreak>(), Ok(policy));
        }
        assert!("fastest".parse::<TieBreak>().is_err());
    }
}
