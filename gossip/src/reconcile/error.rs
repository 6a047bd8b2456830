//! Why a reconciliation step failed. Hostile or broken peers end up here, never in a panic.

use crate::codec::CodecError;

/// A reconciliation error. Every variant but `InvalidConfig` and `Encode` is about what a
/// peer sent: the session should be dropped (and the peer perhaps scored down).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The configuration is inconsistent.
    #[error("invalid reconciliation config: {0}")]
    InvalidConfig(&'static str),
    /// The message is larger than the configured limit; it was not decoded.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a message.
    #[error("undecodable message: {0}")]
    Decode(#[source] CodecError),
    /// The message is of a protocol version this node does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The message decodes but breaks a rule of the protocol.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The message holds more ranges than allowed.
    #[error("{count} ranges in one message, more than the limit of {max}")]
    TooManyRanges {
        /// Ranges in the message.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A reply belongs to another session (salt or window differ).
    #[error("reply does not belong to this session")]
    SessionMismatch,
    /// The session did not finish within the configured number of rounds.
    #[error("session not finished after {0} rounds")]
    TooManyRounds(u32),
    /// A reply arrived after the session finished or before it started.
    #[error("no reply expected in this state of the session")]
    UnexpectedReply,
    /// A message could not be encoded, or came out larger than the limit (a bug).
    #[error("cannot encode message: {0}")]
    Encode(String),
}
