//! How much the log keeps.

use super::error::LogError;

/// When entries are dropped: by age and by bytes per topic, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Entries whose timestamp is older than `now - max_age_ms` are evicted by
    /// [`Log::enforce_retention`](super::Log::enforce_retention).
    pub max_age_ms: u64,
    /// A topic never holds more envelope bytes than this: an append that would exceed it
    /// first evicts the oldest entries, down to 15/16 of it, so that a full topic pays for
    /// a scan once per sixteenth of its budget rather than on every append.
    pub max_bytes_per_topic: u64,
}

/// The log's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Larger envelopes are refused with an error.
    pub max_envelope_bytes: usize,
    /// What is kept.
    pub retention: Retention,
    /// How many items (timestamp and id, ~80 bytes each in memory) of the most recently used
    /// topics the log keeps in memory for sync sessions (see `log/item_cache.rs`). A topic
    /// with more entries than this is read from disk for each session.
    pub cached_items: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            // Welcomes for large groups are the big envelopes; a megabyte holds a
            // thousand-member Welcome with room to spare.
            max_envelope_bytes: 1024 * 1024,
            retention: Retention {
                // Long enough to catch up after a holiday weekend away.
                max_age_ms: 14 * 24 * 60 * 60 * 1000,
                max_bytes_per_topic: 64 * 1024 * 1024,
            },
            // A topic's full byte budget of 256-byte envelopes; at most ~20 MiB.
            cached_items: 256 * 1024,
        }
    }
}

impl LogConfig {
    /// Checks that the limits fit together.
    pub fn validate(&self) -> Result<(), LogError> {
        if self.max_envelope_bytes == 0 {
            return Err(LogError::InvalidConfig(
                "max_envelope_bytes must be positive",
            ));
        }
        if self.max_envelope_bytes as u64 > self.retention.max_bytes_per_topic {
            return Err(LogError::InvalidConfig(
                "max_envelope_bytes must not exceed max_bytes_per_topic",
            ));
        }
        if self.retention.max_age_ms == 0 {
            return Err(LogError::InvalidConfig("max_age_ms must be positive"));
        }
        Ok(())
    }

    /// The level an over-full topic is trimmed down to.
    pub(crate) fn low_water_bytes(&self) -> u64 {
        let max = self.retention.max_bytes_per_topic;
        max - max / 16
    }
}
