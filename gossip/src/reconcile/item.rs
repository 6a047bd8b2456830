//! What is reconciled: (timestamp, id) items, and sorted sets of them.

use crate::envelope_id::EnvelopeId;

/// One envelope as reconciliation sees it: when it counts as having been sent, and its id.
///
/// Items are ordered by timestamp, then id. Ranges of this order are what peers compare, so
/// both peers must give an envelope the same timestamp (see [`crate::log`] on which time that
/// is); an envelope that has two timestamps still reconciles correctly, it only costs extra
/// ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The envelope's id.
    pub id: EnvelopeId,
}

impl Item {
    /// An item.
    pub fn new(timestamp_ms: u64, id: EnvelopeId) -> Self {
        Self { timestamp_ms, id }
    }

    /// The smallest possible item at `timestamp_ms`: a range starting here holds every item of
    /// that millisecond.
    pub fn first_at(timestamp_ms: u64) -> Self {
        Self::new(timestamp_ms, EnvelopeId([0; 32]))
    }
}

/// A set of items in ascending order, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedItems(Vec<Item>);

/// Items handed to [`SortedItems::from_sorted`] were not strictly ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("items are not strictly ascending at position {position}")]
pub struct NotSorted {
    /// Index of the first item that is not greater than the one before it.
    pub position: usize,
}

impl SortedItems {
    /// Sorts `items` and drops duplicates.
    pub fn new(mut items: Vec<Item>) -> Self {
        items.sort_unstable();
        items.dedup();
        Self(items)
    }

    /// Takes `items` that are already strictly ascending (as a log scan gives them), checking
    /// it in one pass instead of sorting.
    pub fn from_sorted(items: Vec<Item>) -> Result<Self, NotSorted> {
        if let Some(position) = items.windows(2).position(|w| w[0] >= w[1]) {
            return Err(NotSorted {
                position: position + 1,
            });
        }
        Ok(Self(items))
    }

    /// The items, ascending.
    pub fn as_slice(&self) -> &[Item] {
        &self.0
    }

    /// The items with a timestamp at or after `since_ms`.
    pub fn since(&self, since_ms: u64) -> &[Item] {
        let start = self.0.partition_point(|item| item.timestamp_ms < since_ms);
        &self.0[start..]
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `item`; false when it was already there. Linear time: for simulators and tests
    /// that apply a few transfers, not for bulk loading (use [`SortedItems::new`]).
    pub fn insert(&mut self, item: Item) -> bool {
        match self.0.binary_search(&item) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, item);
                true
            }
        }
    }

    /// The item with this id, if any. Linear time.
    pub fn find_id(&self, id: &EnvelopeId) -> Option<Item> {
        self.0.iter().find(|item| item.id == *id).copied()
    }

    /// The items, consumed.
    pub fn into_vec(self) -> Vec<Item> {
        self.0
    }
}

impl FromIterator<Item> for SortedItems {
    fn from_iter<I: IntoIterator<Item = Item>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ts: u64, b: u8) -> Item {
        Item::new(ts, EnvelopeId([b; 32]))
    }

    #[test]
    fn new_sorts_and_dedups() {
        let s = SortedItems::new(vec![item(2, 1), item(1, 9), item(2, 1), item(1, 3)]);
        assert_eq!(s.as_slice(), &[item(1, 3), item(1, 9), item(2, 1)]);
    }

    #[test]
    fn from_sorted_checks_order() {
        assert!(SortedItems::from_sorted(vec![item(1, 1), item(1, 2)]).is_ok());
        assert_eq!(
            SortedItems::from_sorted(vec![item(1, 2), item(1, 2)]),
            Err(NotSorted { position: 1 })
        );
        assert_eq!(
            SortedItems::from_sorted(vec![item(1, 1), item(3, 1), item(2, 1)]),
            Err(NotSorted { position: 2 })
        );
    }

    #[test]
    fn since_and_insert() {
        let mut s = SortedItems::new(vec![item(1, 1), item(5, 1), item(9, 1)]);
        assert_eq!(s.since(5), &[item(5, 1), item(9, 1)]);
        assert_eq!(s.since(10), &[]);
        assert!(s.insert(item(4, 4)));
        assert!(!s.insert(item(4, 4)));
        assert_eq!(s.since(2).len(), 3);
        assert_eq!(s.find_id(&EnvelopeId([4; 32])), Some(item(4, 4)));
    }
}
