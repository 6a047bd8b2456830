//! The knobs of a reconciliation session, and the limits that keep hostile peers bounded.

use super::error::ReconcileError;
use super::message::{HEADER_MAX_LEN, RANGE_MAX_FIXED_LEN};
use crate::codec::MAX_DECODE_LEN;

/// How sessions split ranges and how large messages may grow. Both peers should use the same
/// values for best results, but nothing breaks if they differ: every limit is checked on what
/// arrives, and every choice a peer makes is visible in its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// How many sub-ranges a differing range is split into. More means fewer rounds and more
    /// fingerprints per round.
    pub branching: usize,
    /// A differing range with at most this many of my items is answered with the list of my
    /// ids instead of being split further.
    pub id_list_threshold: usize,
    /// The most ids a responder lists as "you lack these" for one range; a range with more is
    /// split instead, so that one range never fills a message alone.
    pub max_diff_ids: usize,
    /// The largest message sent or accepted, in bytes; checked before decoding.
    pub max_message_bytes: usize,
    /// The most ranges a message may hold.
    pub max_ranges_per_message: usize,
    /// The most replies an initiator handles before giving up on a session.
    pub max_rounds: u32,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            branching: 16,
            id_list_threshold: 16,
            max_diff_ids: 1024,
            max_message_bytes: 256 * 1024,
            max_ranges_per_message: 16 * 1024,
            // A full transfer of n ids needs about 32n / max_message_bytes rounds on top of
            // the logarithmic descent: 100,000 ids at 256 KiB take ~13.
            max_rounds: 128,
        }
    }
}

impl ReconcileConfig {
    /// Checks that the values make sense together: in particular that a message always has
    /// room for the largest answer to one range, so every round makes progress.
    pub fn validate(&self) -> Result<(), ReconcileError> {
        let invalid = |reason| Err(ReconcileError::InvalidConfig(reason));
        if !(2..=1024).contains(&self.branching) {
            return invalid("branching must be between 2 and 1024");
        }
        if self.id_list_threshold == 0 {
            return invalid("id_list_threshold must be at least 1");
        }
        if self.max_diff_ids < self.id_list_threshold {
            return invalid("max_diff_ids must be at least id_list_threshold");
        }
        if self.max_message_bytes > MAX_DECODE_LEN {
            return invalid("max_message_bytes is above the codec's 4 MiB ceiling");
        }
        if self.max_ranges_per_message < self.branching + 2 {
            return invalid("max_ranges_per_message must exceed branching + 1");
        }
        if self.max_rounds == 0 {
            return invalid("max_rounds must be at least 1");
        }
        let split = self.branching * RANGE_MAX_FIXED_LEN;
        let list = RANGE_MAX_FIXED_LEN + 32 * self.id_list_threshold;
        let diff = RANGE_MAX_FIXED_LEN + 32 * self.max_diff_ids + self.id_list_threshold / 8 + 1;
        let largest_answer = split.max(list).max(diff);
        // Header, a skip before it, the largest answer to one range, and the reserve for
        // closing the message: then the first open range of every message is answered in
        // full, which is what guarantees progress.
        if self.max_message_bytes < HEADER_MAX_LEN + largest_answer + 2 * RANGE_MAX_FIXED_LEN {
            return invalid("max_message_bytes too small for one answer of this configuration");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ReconcileConfig::default().validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused() {
        let base = ReconcileConfig::default();
        for bad in [
            ReconcileConfig {
                branching: 1,
                ..base.clone()
            },
            ReconcileConfig {
                id_list_threshold: 0,
                ..base.clone()
            },
            ReconcileConfig {
                max_diff_ids: 1,
                ..base.clone()
            },
            ReconcileConfig {
                max_message_bytes: 1000,
                ..base.clone()
            },
            ReconcileConfig {
                max_message_bytes: MAX_DECODE_LEN + 1,
                ..base.clone()
            },
            ReconcileConfig {
                max_ranges_per_message: 4,
                ..base.clone()
            },
            ReconcileConfig {
                max_rounds: 0,
                ..base.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
