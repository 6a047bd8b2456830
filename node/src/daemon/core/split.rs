//! Which groups are split (a fork older than the window, not healed yet), from the engine's
//! events: the `split` of a group's status.

use std::collections::{BTreeMap, BTreeSet};

use ds_p2p::engine::Event;
use ds_p2p::wire::GroupRef;

#[derive(Debug, Default)]
pub(super) struct Splits {
    split: BTreeSet<GroupRef>,
    /// The epoch each group's last heal (a rejoin, on either side) was applied at: a fork
    /// beyond the window reported below it is the healed split's traffic arriving late.
    healed_at: BTreeMap<GroupRef, u64>,
}

impl Splits {
    pub fn contains(&self, group: &GroupRef) -> bool {
        self.split.contains(group)
    }

    /// Takes note of `event`; false if it is a remnant of a healed split, not to be shown.
    pub fn on_event(&mut self, event: &Event) -> bool {
        match event {
            Event::ForkBeyondWindow { group, epoch } => {
                if self.healed_at.get(group).is_some_and(|h| epoch < h) {
                    return false;
                }
                self.split.insert(*group);
            }
            // This member rejoined the winning side, or a member of the losing side rejoined
            // this member's: either way the split it saw is over.
            Event::SplitHealed { group, epoch, .. } | Event::SplitRejoined { group, epoch, .. } => {
                self.split.remove(group);
                self.healed_at.insert(*group, *epoch);
            }
            _ => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GroupRef = GroupRef([7; 16]);

    fn beyond(epoch: u64) -> Event {
        Event::ForkBeyondWindow { group: G, epoch }
    }

    #[test]
    fn the_winning_side_is_no_longer_split_once_the_other_rejoins() {
        let mut s = Splits::default();
        assert!(s.on_event(&beyond(3)));
        assert!(s.contains(&G));
        s.on_event(&Event::SplitRejoined {
            group: G,
            fork_epoch: 3,
            epoch: 9,
            redelivered: Vec::new(),
        });
        assert!(!s.contains(&G));
    }

    #[test]
    fn the_losing_side_is_no_longer_split_once_it_rejoined() {
        let mut s = Splits::default();
        s.on_event(&beyond(3));
        s.on_event(&Event::SplitHealed {
            group: G,
            fork_epoch: 3,
            epoch: 9,
            branch_id: [0; 16],
            redelivered: Vec::new(),
            reapplied: 0,
        });
        assert!(!s.contains(&G));
    }

    #[test]
    fn the_healed_splits_late_traffic_is_no_new_split_but_a_later_fork_is() {
        let mut s = Splits::default();
        s.on_event(&beyond(3));
        s.on_event(&Event::SplitRejoined {
            group: G,
            fork_epoch: 3,
            epoch: 9,
            redelivered: Vec::new(),
        });
        // A commit of the losing side from before the heal, synced late.
        assert!(!s.on_event(&beyond(5)));
        assert!(!s.contains(&G));
        // Another group is not affected; a split forking at or after the heal is one.
        assert!(s.on_event(&Event::ForkBeyondWindow {
            group: GroupRef([1; 16]),
            epoch: 5
        }));
        assert!(s.on_event(&beyond(9)));
        assert!(s.contains(&G));
    }
}
