//! Why a log operation failed.

use identity_tofu::kv::KvError;

/// A log error.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The envelope is larger than the configured maximum; nothing was stored.
    #[error("envelope of {len} bytes exceeds the limit of {max} bytes")]
    EnvelopeTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The configuration is inconsistent.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] KvError),
    /// Stored data does not read back as the log wrote it (damaged disk, foreign writer).
    /// Nothing is changed when this is returned.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl LogError {
    pub(crate) fn corrupt(what: &str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            what: what.to_string(),
            reason: reason.into(),
        }
    }
}
