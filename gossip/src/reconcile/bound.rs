//! Range bounds: points in the (timestamp, id) order that split one peer's items.

use std::cmp::Ordering;

use super::item::Item;

/// An upper (or lower) bound of a range: a point in the item order.
///
/// `Key { timestamp_ms, prefix }` stands for the item `(timestamp_ms, prefix ‖ 0…0)`; a range
/// `[lower, upper)` holds the items `lower <= item < upper`. Only as many id bytes are kept as
/// it takes to separate two neighbouring items, which is usually none (their timestamps
/// differ), so bounds cost a few bytes on the wire instead of 40.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bound {
    /// A point: the timestamp and the first `len` id bytes, zero-padded to 32.
    Key {
        timestamp_ms: u64,
        prefix: [u8; 32],
        len: u8,
    },
    /// After every item.
    End,
}

impl Bound {
    /// Before every item: the implicit lower bound of a message's first range.
    pub(crate) const MIN: Bound = Bound::Key {
        timestamp_ms: 0,
        prefix: [0; 32],
        len: 0,
    };

    /// A key bound; `prefix` must be at most 32 bytes (the decoder checks this first).
    pub(crate) fn key(timestamp_ms: u64, prefix: &[u8]) -> Option<Bound> {
        let len = prefix.len();
        if len > 32 {
            return None;
        }
        let mut padded = [0u8; 32];
        padded[..len].copy_from_slice(prefix);
        Some(Bound::Key {
            timestamp_ms,
            prefix: padded,
            // len <= 32 was checked above, so it fits a u8.
            len: len as u8,
        })
    }

    /// The shortest bound `b` with `below < b <= above`, for `below < above`: where a splitter
    /// cuts its items between two neighbours.
    pub(crate) fn between(below: &Item, above: &Item) -> Bound {
        if below.timestamp_ms != above.timestamp_ms {
            return Bound::key(above.timestamp_ms, &[]).unwrap_or(Bound::End);
        }
        let shared = below
            .id
            .0
            .iter()
            .zip(above.id.0.iter())
            .take_while(|(a, b)| a == b)
            .count();
        // The ids differ (the items do, at equal timestamps), so shared < 32 and one more byte
        // of `above` tells them apart.
        let take = (shared + 1).min(32);
        Bound::key(above.timestamp_ms, &above.id.0[..take]).unwrap_or(Bound::End)
    }

    /// True when `item` lies before this bound (`item < self`).
    pub(crate) fn is_after(&self, item: &Item) -> bool {
        match self {
            Bound::End => true,
            Bound::Key {
                timestamp_ms,
                prefix,
                ..
            } => (item.timestamp_ms, &item.id.0) < (*timestamp_ms, prefix),
        }
    }

    /// The timestamp, for delta encoding; `None` for [`Bound::End`].
    pub(crate) fn timestamp_ms(&self) -> Option<u64> {
        match self {
            Bound::Key { timestamp_ms, .. } => Some(*timestamp_ms),
            Bound::End => None,
        }
    }

    /// The id prefix as sent on the wire.
    pub(crate) fn prefix(&self) -> &[u8] {
        match self {
            Bound::Key { prefix, len, .. } => &prefix[..usize::from(*len)],
            Bound::End => &[],
        }
    }

    /// The items of the ascending `items` that lie in `[lower, upper)`.
    pub(crate) fn slice<'a>(items: &'a [Item], lower: &Bound, upper: &Bound) -> &'a [Item] {
        let start = items.partition_point(|item| lower.is_after(item));
        let end = items
            .partition_point(|item| upper.is_after(item))
            .max(start);
        &items[start..end]
    }
}

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    /// Compares the points the bounds stand for: the padded prefix, not its wire length.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Bound::End, Bound::End) => Ordering::Equal,
            (Bound::End, _) => Ordering::Greater,
            (_, Bound::End) => Ordering::Less,
            (
                Bound::Key {
                    timestamp_ms: a,
                    prefix: pa,
                    ..
                },
                Bound::Key {
                    timestamp_ms: b,
                    prefix: pb,
                    ..
                },
            ) => (a, pa).cmp(&(b, pb)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope_id::EnvelopeId;

    fn item(ts: u64, id: [u8; 32]) -> Item {
        Item::new(ts, EnvelopeId(id))
    }

    #[test]
    fn between_different_timestamps_needs_no_id_bytes() {
        let b = Bound::between(&item(5, [9; 32]), &item(7, [1; 32]));
        assert_eq!(b.timestamp_ms(), Some(7));
        assert!(b.prefix().is_empty());
        assert!(b.is_after(&item(5, [9; 32])));
        assert!(b.is_after(&item(5, [0xff; 32])));
        assert!(!b.is_after(&item(7, [1; 32])));
        assert!(!b.is_after(&item(7, [0; 32])));
    }

    #[test]
    fn between_equal_timestamps_takes_one_byte_past_the_shared_prefix() {
        let mut lo = [0x11; 32];
        let mut hi = [0x11; 32];
        lo[3] = 0x20;
        hi[3] = 0x30;
        let (a, b) = (item(5, lo), item(5, hi));
        let bound = Bound::between(&a, &b);
        assert_eq!(bound.prefix(), &hi[..4]);
        assert!(bound.is_after(&a));
        assert!(!bound.is_after(&b));
    }

    #[test]
    fn order_ignores_wire_length_of_zero_padding() {
        let short = Bound::key(3, &[1]).unwrap();
        let long = Bound::key(3, &[1, 0, 0]).unwrap();
        assert_eq!(short, long);
        assert!(Bound::MIN < short);
        assert!(short < Bound::End);
        assert!(Bound::key(3, &[0; 33]).is_none());
    }

    #[test]
    fn slice_selects_the_half_open_range() {
        let items: Vec<Item> = (0..10).map(|t| item(t, [0; 32])).collect();
        let lo = Bound::key(3, &[]).unwrap();
        let hi = Bound::key(6, &[]).unwrap();
        let got: Vec<u64> = Bound::slice(&items, &lo, &hi)
            .iter()
            .map(|i| i.timestamp_ms)
            .collect();
        assert_eq!(got, vec![3, 4, 5]);
        assert_eq!(Bound::slice(&items, &Bound::MIN, &Bound::End).len(), 10);
        // An inverted pair selects nothing rather than panicking.
        assert!(Bound::slice(&items, &hi, &lo).is_empty());
    }
}
