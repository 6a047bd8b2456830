//! Builds an outgoing message range by range without ever exceeding the size limits.
//!
//! The writer knows the exact encoded size of what it holds (see [`range_len`]), so it can
//! refuse an addition that would not fit while keeping room for one closing range: whatever
//! happens, a message can always be finished with a fingerprint of "everything from here to
//! the end", which the peer then answers in the next round.

use super::bound::Bound;
use super::config::ReconcileConfig;
use super::error::ReconcileError;
use super::message::{Message, Mode, RANGE_MAX_FIXED_LEN, Range, header_len, range_len};
use super::session::Session;

pub(crate) struct Writer {
    session: Session,
    max_bytes: usize,
    max_ranges: usize,
    ranges: Vec<Range>,
    /// Encoded size of each range, given the bound before it.
    costs: Vec<usize>,
    body_len: usize,
}

impl Writer {
    pub(crate) fn new(session: Session, config: &ReconcileConfig) -> Self {
        Self {
            session,
            max_bytes: config.max_message_bytes,
            max_ranges: config.max_ranges_per_message,
            ranges: Vec::new(),
            costs: Vec::new(),
            body_len: 0,
        }
    }

    /// The timestamp of the bound before range `index` (bounds are delta encoded).
    fn previous_ts(&self, index: usize) -> u64 {
        index
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .and_then(|range| range.upper.timestamp_ms())
            .unwrap_or(0)
    }

    /// Appends `range`, merging a skip into a skip just before it (one range instead of two).
    fn push(&mut self, range: Range) {
        let merge = matches!(range.mode, Mode::Skip)
            && matches!(self.ranges.last(), Some(last) if last.mode == Mode::Skip);
        if merge {
            let i = self.ranges.len() - 1;
            self.body_len -= self.costs[i];
            self.ranges[i].upper = range.upper;
            let cost = range_len(self.previous_ts(i), &self.ranges[i]);
            self.costs[i] = cost;
            self.body_len += cost;
        } else {
            let cost = range_len(self.previous_ts(self.ranges.len()), &range);
            self.ranges.push(range);
            self.costs.push(cost);
            self.body_len += cost;
        }
    }

    /// True when the message fits, with room for one more closing range unless it is closed.
    fn fits(&self) -> bool {
        let closed = matches!(self.ranges.last(), Some(last) if last.upper == Bound::End);
        let (reserve_bytes, reserve_ranges) = if closed {
            (0, 0)
        } else {
            (RANGE_MAX_FIXED_LEN, 1)
        };
        let len = header_len(&self.session, self.ranges.len() + reserve_ranges)
            + self.body_len
            + reserve_bytes;
        len <= self.max_bytes && self.ranges.len() + reserve_ranges <= self.max_ranges
    }

    /// Appends all of `ranges` if they fit (keeping the closing reserve); otherwise leaves
    /// the writer exactly as it was and returns false.
    pub(crate) fn try_extend(&mut self, ranges: Vec<Range>) -> bool {
        let len = self.ranges.len();
        let body_len = self.body_len;
        let last = self.ranges.last().cloned();
        let last_cost = self.costs.last().copied();
        for range in ranges {
            self.push(range);
        }
        if self.fits() {
            return true;
        }
        self.ranges.truncate(len);
        self.costs.truncate(len);
        if let (Some(range), Some(cost)) = (last, last_cost) {
            // A merged skip changed the last range in place: put it back.
            if let (Some(r), Some(c)) = (self.ranges.last_mut(), self.costs.last_mut()) {
                *r = range;
                *c = cost;
            }
        }
        self.body_len = body_len;
        false
    }

    /// Closes the message with a range ending at [`Bound::End`] of fixed size, using the
    /// reserve that [`Writer::try_extend`] kept.
    pub(crate) fn close(&mut self, mode: Mode) {
        self.push(Range {
            upper: Bound::End,
            mode,
        });
    }

    /// True when the message says nothing but "all done": a single skip to the end.
    pub(crate) fn is_all_skip(&self) -> bool {
        matches!(
            self.ranges.as_slice(),
            [Range {
                mode: Mode::Skip,
                upper: Bound::End
            }]
        )
    }

    /// The encoded message.
    pub(crate) fn finish(self) -> Result<Vec<u8>, ReconcileError> {
        let max_bytes = self.max_bytes;
        Message {
            session: self.session,
            ranges: self.ranges,
        }
        .encode(max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope_id::EnvelopeId;

    fn config(max_message_bytes: usize) -> ReconcileConfig {
        ReconcileConfig {
            max_message_bytes,
            ..ReconcileConfig::default()
        }
    }

    #[test]
    fn skips_merge_and_sizes_are_exact() {
        let mut w = Writer::new(Session::new([0; 16], 5), &config(100_000));
        assert!(w.try_extend(vec![Range {
            upper: Bound::key(10, &[]).unwrap(),
            mode: Mode::Skip
        }]));
        assert!(w.try_extend(vec![Range {
            upper: Bound::key(1000, &[]).unwrap(),
            mode: Mode::Skip
        }]));
        assert_eq!(w.ranges.len(), 1);
        assert!(w.try_extend(vec![Range {
            upper: Bound::End,
            mode: Mode::Skip
        }]));
        assert!(w.is_all_skip());
        let expected = header_len(&w.session, w.ranges.len()) + w.body_len;
        assert_eq!(w.finish().unwrap().len(), expected);
    }

    #[test]
    fn refused_additions_leave_no_trace_and_close_always_fits() {
        let mut w = Writer::new(Session::new([0; 16], 5), &config(1_000));
        assert!(w.try_extend(vec![Range {
            upper: Bound::key(10, &[]).unwrap(),
            mode: Mode::Skip
        }]));
        let before = (w.ranges.clone(), w.costs.clone(), w.body_len);
        let big = vec![
            Range {
                upper: Bound::key(20, &[]).unwrap(),
                mode: Mode::Skip,
            },
            Range {
                upper: Bound::key(30, &[]).unwrap(),
                mode: Mode::IdList(vec![EnvelopeId([1; 32]); 40]),
            },
        ];
        assert!(!w.try_extend(big));
        assert_eq!((w.ranges.clone(), w.costs.clone(), w.body_len), before);
        w.close(Mode::Fingerprint {
            count: u64::MAX,
            fingerprint: [0; 16],
        });
        assert!(w.finish().unwrap().len() <= 1_000);
    }
}
