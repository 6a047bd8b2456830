//! The small tree of branch states a member holds for one group (DESIGN §4).
//!
//! Each held state is one storage namespace ([`BranchId`]) holding the group's full MLS state at
//! one epoch on one branch. A state's parent is the state its commit was applied to. The head
//! the group converges on is found by walking down from the roots and, at every fork, following
//! the child the tie-break policy prefers.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tie_break::{CommitFacts, Contender, TieBreak};
use crate::storage::BranchId;
use crate::wire::CommitRef;

/// One held branch state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldState {
    /// The storage namespace holding it.
    pub storage: BranchId,
    /// Its MLS epoch.
    pub epoch: u64,
    /// The state its commit was applied to, while held.
    pub parent: Option<BranchId>,
    /// The commit that made it (`None` for a group's first state, created or joined without a
    /// known commit).
    pub via: Option<CommitFacts>,
    /// The exporter-derived branch id (equal across members of one branch).
    pub branch_id: [u8; 16],
    /// When it stopped being the active head; `None` while it is the active head. The window
    /// of a state runs from this instant.
    pub inactive_since_ms: Option<u64>,
    /// True if this member is no longer in the group in this state (it was removed).
    pub evicted: bool,
    /// When a beacon last showed the group going on from this state's commit (`None`: never).
    /// Only matters for a root held beside another lineage's (see `Engine::vouch_roots`).
    pub vouched_at_ms: Option<u64>,
    /// The highest epoch of a beacon whose log holds this state's commit. For a state this
    /// member was removed in, the only sign of how deep the group's branch went past it:
    /// the removed member cannot read the commits that follow (see [`ForkTree::depth_of`]).
    pub shown_at: Option<u64>,
}

/// All held states of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkTree {
    states: BTreeMap<BranchId, HeldState>,
}

impl ForkTree {
    /// Adds a state.
    pub fn insert(&mut self, state: HeldState) {
        self.states.insert(state.storage, state);
    }

    /// Removes a state (after pruning its storage). Its children become roots.
    pub fn remove(&mut self, id: BranchId) -> Option<HeldState> {
        self.states.remove(&id)
    }

    pub fn get(&self, id: BranchId) -> Option<&HeldState> {
        self.states.get(&id)
    }

    pub fn get_mut(&mut self, id: BranchId) -> Option<&mut HeldState> {
        self.states.get_mut(&id)
    }

    /// Every held state, by storage id.
    pub fn states(&self) -> impl Iterator<Item = &HeldState> {
        self.states.values()
    }

    /// Marks every held state evicted: this member is in none of them any more (a lost
    /// join, a removal on the winning side of a split).
    pub fn evict_all(&mut self) {
        for state in self.states.values_mut() {
            state.evicted = true;
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The held state created by the commit `commit_ref`, if any.
    pub fn by_commit(&self, commit_ref: &CommitRef) -> Option<&HeldState> {
        self.states
            .values()
            .find(|s| s.via.as_ref().is_some_and(|f| f.commit_ref == *commit_ref))
    }

    /// The held states at `epoch`.
    pub fn at_epoch(&self, epoch: u64) -> impl Iterator<Item = &HeldState> {
        self.states.values().filter(move |s| s.epoch == epoch)
    }

    fn children(&self, id: BranchId) -> impl Iterator<Item = &HeldState> {
        self.states.values().filter(move |s| s.parent == Some(id))
    }

    pub(crate) fn roots(&self) -> impl Iterator<Item = &HeldState> {
        self.states
            .values()
            .filter(|s| s.parent.is_none_or(|p| !self.states.contains_key(&p)))
    }

    /// The root `id` grew from: its oldest held ancestor (itself if its parent is not held).
    pub(crate) fn root_of(&self, id: BranchId) -> BranchId {
        let mut current = id;
        while let Some(parent) = self
            .states
            .get(&current)
            .and_then(|s| s.parent)
            .filter(|p| self.states.contains_key(p))
        {
            current = parent;
        }
        current
    }

    /// Epochs built on top of `id` within the tree (a removal below counting as deep as
    /// beacons showed, see [`depth_of`](Self::depth_of)).
    pub fn depth_below(&self, id: BranchId) -> u64 {
        self.children(id)
            .map(|c| 1 + self.depth_of(c))
            .max()
            .unwrap_or(0)
    }

    /// The depth a policy ranks `state` by: the epochs held on top of it, or, for a state this
    /// member was removed in (it cannot read what was built on it), as many as the highest
    /// beacon from its branch showed, if more. Every other member holds that branch as deep as
    /// its beacons said (within the window), so both sides rank the fork alike — at the
    /// removal's own fork and at any fork above it ([`depth_below`](Self::depth_below) counts
    /// it too).
    pub fn depth_of(&self, state: &HeldState) -> u64 {
        let shown = match (state.evicted, state.shown_at) {
            (true, Some(epoch)) => epoch.saturating_sub(state.epoch),
            _ => 0,
        };
        self.depth_below(state.storage).max(shown)
    }

    /// True if moving the head from `from` to `to` is this member being added again after a
    /// removal, not a switch between forked branches: `from` is a state it was removed in,
    /// and `to` grew from a Welcome (one of `welcomes`) into an epoch at or past that removal.
    /// A lost join also leaves an evicted head, but its own Welcome root is marked too
    /// (`Engine::join_lost`): leaving it for another Welcome root is a fork's outcome.
    pub(crate) fn is_readd(&self, from: BranchId, to: BranchId, welcomes: &[CommitRef]) -> bool {
        let welcome_root = |id: BranchId| {
            self.get(self.root_of(id)).filter(|root| {
                root.via
                    .as_ref()
                    .is_some_and(|f| welcomes.contains(&f.commit_ref))
            })
        };
        let Some(removed) = self.get(from).filter(|s| s.evicted) else {
            return false;
        };
        if welcome_root(from).is_some_and(|root| root.evicted) {
            return false;
        }
        self.root_of(to) != self.root_of(from)
            && welcome_root(to).is_some_and(|root| root.epoch >= removed.epoch)
    }

    /// True if `ancestor` is `id` or one of its held ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: BranchId, id: BranchId) -> bool {
        let mut current = Some(id);
        while let Some(c) = current {
            if c == ancestor {
                return true;
            }
            current = self.states.get(&c).and_then(|s| s.parent);
        }
        false
    }

    /// The head the policy converges on: from the best root, follow the best child at every
    /// fork down to a leaf.
    pub fn preferred_head(&self, policy: TieBreak, lapse_ms: u64) -> Option<BranchId> {
        let mut best = self.best_of(self.roots(), policy, lapse_ms)?;
        loop {
            match self.best_of(self.children(best), policy, lapse_ms) {
                Some(child) => best = child,
                None => return Some(best),
            }
        }
    }

    /// The policy's choice among the states made by commits on `id`.
    pub fn best_child(&self, id: BranchId, policy: TieBreak, lapse_ms: u64) -> Option<BranchId> {
        self.best_of(self.children(id), policy, lapse_ms)
    }

    fn best_of<'a>(
        &'a self,
        candidates: impl Iterator<Item = &'a HeldState>,
        policy: TieBreak,
        lapse_ms: u64,
    ) -> Option<BranchId> {
        candidates
            .min_by(|a, b| self.compare(a, b, policy, lapse_ms))
            .map(|s| s.storage)
    }

    /// `Less` when `a` beats `b` as a contender at a fork. Two roots of different lineages
    /// are also ranked by what beacons showed of them (see [`by_vouches`]), `lapse_ms` being
    /// how long one may go unshown while the other is shown before it counts as left.
    fn compare(&self, a: &HeldState, b: &HeldState, policy: TieBreak, lapse_ms: u64) -> Ordering {
        // Roots at different epochs come from different Welcomes (a joiner re-added on the
        // winning branch): the later one supersedes.
        // A removal the rest of the group went on from is superseded by a later Welcome: this
        // member was added again after it. Only a state made by a commit can be a removal: an
        // evicted Welcome root is a join that was lost (see `Engine::join_lost`).
        // (A removal is otherwise ranked like any state, by the policy, with the depth beacons
        // showed for it: a stale beacon from a member that had not yet left the removal's
        // branch must not decide the fork for good.)
        let removal_shown = |s: &HeldState| s.evicted && s.shown_at.is_some() && s.parent.is_some();
        let readded = |root: &HeldState, removal: &HeldState| {
            root.parent.is_none() && removal_shown(removal) && root.epoch > removal.epoch
        };
        if readded(a, b) {
            return Ordering::Less;
        }
        if readded(b, a) {
            return Ordering::Greater;
        }
        // A lost join (an evicted Welcome root) ranks behind a held root of another lineage
        // this member is in — also when that lineage's own Welcome root was pruned and what
        // is left of it starts at a state whose parent is no longer held.
        let held_root = |s: &HeldState| s.parent.is_none_or(|p| !self.states.contains_key(&p));
        let lost_join = |s: &HeldState| s.parent.is_none() && s.evicted;
        if held_root(a) && held_root(b) && a.parent != b.parent {
            match (lost_join(a), lost_join(b)) {
                (true, false) if !b.evicted => return Ordering::Greater,
                (false, true) if !a.evicted => return Ordering::Less,
                _ => {}
            }
        }
        // A Welcome root against what is left of a lineage whose fork point was pruned: the
        // member cannot compare their commits (it holds nothing below either), so it goes by
        // what the group shows — the lineage beacons show the group going on from.
        if held_root(a)
            && held_root(b)
            && a.parent.is_none() != b.parent.is_none()
            && !a.evicted
            && !b.evicted
        {
            let shown = by_vouches(a, b, lapse_ms);
            if shown != Ordering::Equal {
                return shown;
            }
        }
        if a.parent.is_none() && b.parent.is_none() {
            // Roots come from Welcomes (a joiner re-added after its Add lost). The joiner
            // cannot see which lineage each came from, so it goes by what the group shows:
            // a root not known to be lost, then the one beacons show the group on (see
            // [`by_vouches`]), then the later one, then the one the group went on committing
            // from.
            let by_evidence = a
                .evicted
                .cmp(&b.evicted)
                .then(by_vouches(a, b, lapse_ms))
                .then(b.epoch.cmp(&a.epoch))
                .then(
                    self.depth_below(b.storage)
                        .cmp(&self.depth_below(a.storage)),
                );
            if by_evidence != Ordering::Equal {
                return by_evidence;
            }
        }
        b.epoch.cmp(&a.epoch).then_with(|| match (&a.via, &b.via) {
            (Some(fa), Some(fb)) => policy.compare(
                &Contender {
                    facts: fa,
                    depth: self.depth_of(a),
                },
                &Contender {
                    facts: fb,
                    depth: self.depth_of(b),
                },
            ),
            // A state with a known commit beats one without; two without: by storage id,
            // which only a single member's own history can produce.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.storage.cmp(&b.storage),
        })
    }

    /// States that may be deleted at `now_ms`: inactive for at least `window_ms`, and then the
    /// oldest inactive ones beyond `max_held`. The active head is never among them.
    pub fn expired(
        &self,
        now_ms: u64,
        window_ms: u64,
        max_held: usize,
        active: BranchId,
    ) -> Vec<BranchId> {
        let mut inactive: Vec<(&u64, BranchId)> = self
            .states
            .values()
            .filter(|s| s.storage != active)
            .filter_map(|s| s.inactive_since_ms.as_ref().map(|t| (t, s.storage)))
            .collect();
        inactive.sort();
        let over = self.states.len().saturating_sub(max_held.max(1));
        inactive
            .iter()
            .enumerate()
            .filter(|(i, (since, _))| *i < over || now_ms.saturating_sub(**since) >= window_ms)
            .map(|(_, (_, id))| *id)
            .collect()
    }

    /// `doomed` (states about to be deleted) plus every held state off the path to `active`
    /// (neither an ancestor nor a descendant of it) that a doomed state cuts off from its fork
    /// point: the fork point itself (its first ancestor on the active path) or a state between
    /// them is doomed. Once a fork point goes, the choice made there is final: a losing branch
    /// left behind would become a root of its own, and roots from different fork points cannot
    /// be ranked alike by every member (each prunes at its own times). A branch forking from a
    /// state that stays held is still in the race, whatever goes above that state.
    pub fn with_decided_losers(&self, doomed: &[BranchId], active: BranchId) -> Vec<BranchId> {
        let mut out = doomed.to_vec();
        for state in self.states.values() {
            let id = state.storage;
            if out.contains(&id)
                || self.is_ancestor_or_self(id, active)
                || self.is_ancestor_or_self(active, id)
            {
                continue;
            }
            let mut current = state.parent;
            while let Some(p) = current {
                if doomed.contains(&p) {
                    out.push(id);
                    break;
                }
                if self.is_ancestor_or_self(p, active) {
                    break; // its fork point, held: the race there goes on
                }
                current = self.states.get(&p).and_then(|s| s.parent);
            }
        }
        out
    }

    /// When the next state expires by time, if any is inactive.
    pub fn next_expiry(&self, window_ms: u64, active: BranchId) -> Option<u64> {
        self.states
            .values()
            .filter(|s| s.storage != active)
            .filter_map(|s| s.inactive_since_ms)
            .min()
            .map(|since| since.saturating_add(window_ms))
    }
}

/// `Less` when beacons show the group going on from `a` rather than `b`, two roots of
/// different lineages: one shown beats one never shown; of two shown, one last shown more than
/// `lapse_ms` before the other was has been left by its members (every member beacons once a
/// beacon interval, so a lineage with members on it is shown at least that often). Within the
/// lapse both count alike: while a fork is open both sides beacon, and the member must not
/// switch back and forth with each beacon.
fn by_vouches(a: &HeldState, b: &HeldState, lapse_ms: u64) -> Ordering {
    match (a.vouched_at_ms, b.vouched_at_ms) {
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) if x > y.saturating_add(lapse_ms) => Ordering::Less,
        (Some(x), Some(y)) if y > x.saturating_add(lapse_ms) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The beacon lapse the tests rank with (the default beacon interval).
    const LAPSE: u64 = 30_000;

    fn state(id: u64, epoch: u64, parent: Option<u64>, commit: Option<u8>) -> HeldState {
        HeldState {
            storage: BranchId(id),
            epoch,
            parent: parent.map(BranchId),
            via: commit.map(|c| {
                let mut r = [0u8; 32];
                r[0] = c;
                CommitFacts {
                    commit_ref: CommitRef(r),
                    removes: 0,
                    adds: 0,
                }
            }),
            branch_id: [0; 16],
            inactive_since_ms: Some(0),
            evicted: false,
            vouched_at_ms: None,
            shown_at: None,
        }
    }

    /// Notes that a beacon showed the group going on from state `id` at `at`.
    fn show(t: &mut ForkTree, id: u64, at: u64) {
        t.get_mut(BranchId(id)).unwrap().vouched_at_ms = Some(at);
    }

    /// 0 (e1) -> 1 (e2, ref 9) -> 3 (e3, ref 5)
    ///        -> 2 (e2, ref 4)
    fn tree() -> ForkTree {
        let mut t = ForkTree::default();
        t.insert(state(0, 1, None, None));
        t.insert(state(1, 2, Some(0), Some(9)));
        t.insert(state(2, 2, Some(0), Some(4)));
        t.insert(state(3, 3, Some(1), Some(5)));
        t
    }

    #[test]
    fn lowest_ref_follows_the_lower_commit_at_the_fork() {
        assert_eq!(
            tree().preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(2))
        );
    }

    #[test]
    fn deepest_branch_follows_the_longer_chain() {
        assert_eq!(
            tree().preferred_head(TieBreak::DeepestBranch, LAPSE),
            Some(BranchId(3))
        );
    }

    #[test]
    fn the_choice_survives_pruning_the_fork_point() {
        let mut t = tree();
        t.remove(BranchId(0));
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(2))
        );
        assert_eq!(
            t.preferred_head(TieBreak::DeepestBranch, LAPSE),
            Some(BranchId(3))
        );
    }

    #[test]
    fn the_choice_does_not_depend_on_insertion_order() {
        let mut reversed = ForkTree::default();
        for s in tree().states().collect::<Vec<_>>().into_iter().rev() {
            reversed.insert(s.clone());
        }
        for policy in TieBreak::ALL {
            assert_eq!(
                reversed.preferred_head(policy, LAPSE),
                tree().preferred_head(policy, LAPSE)
            );
        }
    }

    #[test]
    fn ancestry() {
        let t = tree();
        assert!(t.is_ancestor_or_self(BranchId(0), BranchId(3)));
        assert!(t.is_ancestor_or_self(BranchId(3), BranchId(3)));
        assert!(!t.is_ancestor_or_self(BranchId(2), BranchId(3)));
        assert_eq!(t.depth_below(BranchId(0)), 2);
    }

    #[test]
    fn a_welcome_after_a_removal_is_a_readd_and_one_after_a_lost_join_is_not() {
        // 0 (e1) -> 1 (e2, removes this member); later a Welcome at e4 (ref 8).
        let mut t = ForkTree::default();
        t.insert(state(0, 1, None, None));
        let mut removal = state(1, 2, Some(0), Some(1));
        removal.evicted = true;
        t.insert(removal.clone());
        t.insert(state(6, 4, None, Some(8)));
        t.insert(state(7, 5, Some(6), Some(2)));
        let welcomes = [state(6, 4, None, Some(8)).via.unwrap().commit_ref];
        assert!(t.is_readd(BranchId(1), BranchId(6), &welcomes));
        assert!(t.is_readd(BranchId(1), BranchId(7), &welcomes));
        // Not evicted: an ordinary move. Not a Welcome: a switch.
        assert!(!t.is_readd(BranchId(0), BranchId(6), &welcomes));
        assert!(!t.is_readd(BranchId(1), BranchId(6), &[]));
        // The removal's parent pruned: still a removal, not a lost join.
        t.remove(BranchId(0));
        assert!(t.is_readd(BranchId(1), BranchId(6), &welcomes));
        // A Welcome into an epoch below the removal is another side of a fork.
        t.insert(state(9, 1, None, Some(3)));
        let both = [
            welcomes[0],
            state(9, 1, None, Some(3)).via.unwrap().commit_ref,
        ];
        assert!(!t.is_readd(BranchId(1), BranchId(9), &both));
        // A lost join: head and Welcome root marked; following the other root is a switch.
        let mut lost = ForkTree::default();
        let mut root = state(2, 4, None, Some(8));
        root.evicted = true;
        lost.insert(root);
        let mut head = state(3, 6, Some(2), Some(5));
        head.evicted = true;
        lost.insert(head);
        lost.insert(state(4, 6, None, Some(3)));
        assert!(!lost.is_readd(BranchId(3), BranchId(4), &both));
    }

    #[test]
    fn a_lost_join_ranks_behind_what_is_left_of_a_pruned_welcome_lineage() {
        // A joiner's two Welcome roots: 0 (e6, ref 9) and 1 (e7, ref 2, its join lost: marked).
        // It went on from 0 to 2 (e7, ref 5); then 0 was pruned. Both 1 and 2 are vouched, at
        // one epoch, and 1's commit ranks first by lowest ref: the lost mark must decide.
        let mut t = ForkTree::default();
        let mut lost = state(1, 7, None, Some(2));
        lost.evicted = true;
        lost.vouched_at_ms = Some(1);
        t.insert(lost);
        let mut grown = state(2, 7, Some(0), Some(5));
        grown.vouched_at_ms = Some(1);
        t.insert(grown);
        for policy in TieBreak::ALL {
            assert_eq!(
                t.preferred_head(policy, LAPSE),
                Some(BranchId(2)),
                "{policy:?}"
            );
        }
        // Two siblings whose common parent was pruned stay one fork, ranked by the policy.
        let mut siblings = ForkTree::default();
        let mut removal = state(3, 7, Some(0), Some(2));
        removal.evicted = true;
        siblings.insert(removal);
        siblings.insert(state(4, 7, Some(0), Some(5)));
        assert_eq!(
            siblings.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(3))
        );
    }

    #[test]
    fn a_welcome_root_ranks_behind_what_is_left_of_the_lineage_beacons_show() {
        // Property seed 1007737 (lowest-ref): the member went on from 4 (e6, its parent
        // pruned) to 7 (e7) on the group's branch, and holds a Welcome root 5 (e8) of a
        // lineage that lost below it. Beacons show 4's commit, never 5's. Ranked by epoch,
        // the later root won and the member left the group's branch for good.
        let mut t = ForkTree::default();
        let mut left = state(4, 6, Some(0), Some(9));
        left.vouched_at_ms = Some(100_000);
        t.insert(left);
        t.insert(state(7, 7, Some(4), Some(8)));
        t.insert(state(5, 8, None, Some(1)));
        for policy in TieBreak::ALL {
            assert_eq!(
                t.preferred_head(policy, LAPSE),
                Some(BranchId(7)),
                "{policy:?}"
            );
        }
        // Both shown, the Welcome root's lineage last more than a lapse before: left by its
        // members. The other way round, the Welcome root's lineage is the one the group is on.
        show(&mut t, 5, 100_000 - LAPSE - 1);
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(7))
        );
        show(&mut t, 5, 100_000 + LAPSE + 1);
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(5))
        );
    }

    #[test]
    fn of_two_welcome_roots_the_one_whose_lineage_was_left_ranks_behind() {
        // Property seed 4006794 (settle-then-pick): a joiner added on both sides of a fork
        // holds root 0 (e6, grown to 2 at e7: the group's branch) and root 1 (e8, the lineage
        // that lost). Both were shown by beacons while the fork was open; the later root wins
        // on that evidence, and keeps winning while both are shown within a lapse — a member
        // must not switch with each beacon while both sides are still beaconing.
        let mut t = ForkTree::default();
        let mut first = state(0, 6, None, Some(9));
        first.vouched_at_ms = Some(1_000);
        t.insert(first);
        t.insert(state(2, 7, Some(0), Some(3)));
        let mut later = state(1, 8, None, Some(1));
        later.vouched_at_ms = Some(1_000);
        t.insert(later);
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(1))
        );
        show(&mut t, 0, 1_000 + LAPSE);
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(1))
        );
        // Root 1's lineage went unshown for more than a lapse while 0's was shown: its
        // members left it.
        show(&mut t, 0, 1_000 + LAPSE + 1);
        for policy in TieBreak::ALL {
            assert_eq!(
                t.preferred_head(policy, LAPSE),
                Some(BranchId(2)),
                "{policy:?}"
            );
        }
    }

    #[test]
    fn a_pruned_fork_point_takes_its_losing_branches_along() {
        // 0 -> 1 -> 3 (active), 0 -> 2: pruning 0 decides the fork for good.
        let t = tree();
        let mut doomed = t.with_decided_losers(&[BranchId(0)], BranchId(3));
        doomed.sort();
        assert_eq!(doomed, vec![BranchId(0), BranchId(2)]);
        // Pruning 1 (on the active path) leaves the sibling branch of 0 alone.
        assert_eq!(
            t.with_decided_losers(&[BranchId(1)], BranchId(3)),
            vec![BranchId(1)]
        );
    }

    #[test]
    fn a_removal_counts_as_deep_as_beacons_showed_at_every_fork_above_it() {
        // 0 (e1) -> 1 (e2) -> 3 (e3) -> 5 (e4): this member's own branch, 3 deep below 0;
        // 0 -> 2 (e2) -> 4 (e3, removes this member, which cannot read past it).
        let mut t = ForkTree::default();
        t.insert(state(0, 1, None, None));
        t.insert(state(1, 2, Some(0), Some(1)));
        t.insert(state(3, 3, Some(1), Some(3)));
        t.insert(state(5, 4, Some(3), Some(5)));
        t.insert(state(2, 2, Some(0), Some(9)));
        let mut removal = state(4, 3, Some(2), Some(4));
        removal.evicted = true;
        t.insert(removal.clone());
        assert_eq!(
            t.preferred_head(TieBreak::DeepestBranch, LAPSE),
            Some(BranchId(5))
        );
        // A beacon from the removal's branch at epoch 6: it went 3 epochs past the removal.
        removal.shown_at = Some(6);
        t.insert(removal);
        assert_eq!(t.depth_below(BranchId(2)), 4);
        assert_eq!(
            t.preferred_head(TieBreak::DeepestBranch, LAPSE),
            Some(BranchId(4))
        );
        assert_eq!(
            t.preferred_head(TieBreak::LowestRef, LAPSE),
            Some(BranchId(5))
        );
    }

    #[test]
    fn pruning_above_a_held_fork_point_leaves_its_race_open() {
        // 0 -> 1 -> 3 (active), 1 -> 4 (competing with 3 at fork point 1), 0 -> 2.
        let mut t = tree();
        t.insert(state(4, 3, Some(1), Some(7)));
        let mut doomed = t.with_decided_losers(&[BranchId(0)], BranchId(3));
        doomed.sort();
        // The fork at 0 is decided (2 goes); the one at 1 is not (4 stays).
        assert_eq!(doomed, vec![BranchId(0), BranchId(2)]);
        // Pruning the fork point 1 itself decides its race.
        let mut doomed = t.with_decided_losers(&[BranchId(0), BranchId(1)], BranchId(3));
        doomed.sort();
        assert_eq!(
            doomed,
            vec![BranchId(0), BranchId(1), BranchId(2), BranchId(4)]
        );
    }

    #[test]
    fn expiry_by_window_and_by_count_spares_the_active_head() {
        let mut t = tree();
        for (id, since) in [(0, 100), (1, 200), (2, 300)] {
            t.get_mut(BranchId(id)).unwrap().inactive_since_ms = Some(since);
        }
        t.get_mut(BranchId(3)).unwrap().inactive_since_ms = None;
        let active = BranchId(3);
        assert_eq!(t.expired(150, 1000, 16, active), Vec::<BranchId>::new());
        assert_eq!(t.expired(1150, 1000, 16, active), vec![BranchId(0)]);
        assert_eq!(t.expired(5000, 1000, 16, active).len(), 3);
        // At most two held: the two oldest inactive go at once.
        assert_eq!(
            t.expired(150, 1000, 2, active),
            vec![BranchId(0), BranchId(1)]
        );
        assert_eq!(t.next_expiry(1000, active), Some(1100));
    }
}
