//! The reconciliation message: its bincode wire form, the checks on decoding, and the exact
//! encoded size of each part (so a writer can fill a message up to its limit).
//!
//! A message is a header (version, session salt, window start) and a list of ranges that
//! together cover the whole item order, each given by its upper bound (the lower bound is the
//! previous range's upper, or the start). Upper bounds are sent as the timestamp's increase
//! over the previous bound plus the shortest id prefix that separates neighbours, which keeps
//! a bound to a few bytes. Each range carries a mode:
//!
//! - `Skip`: nothing to do here (already equal, or resolved).
//! - `Fingerprint { count, fingerprint }`: the sender's count and fingerprint of its items.
//! - `IdList { ids }`: every id the sender holds in the range.
//! - `Diff { have, extra }` (responder only, answering an `IdList`): a bit per listed id, set
//!   when the responder holds it, and the ids the responder holds in the range that were not
//!   listed.

use serde::{Deserialize, Serialize};

use super::bound::Bound;
use super::config::ReconcileConfig;
use super::error::ReconcileError;
use super::fingerprint::Fingerprint;
use super::session::Session;
use crate::codec::{self, varint_len};
use crate::envelope_id::EnvelopeId;

/// The protocol version this code speaks.
pub(crate) const PROTOCOL_VERSION: u8 = 1;

/// The most a header can take: version, salt, window start and the range count (both
/// varints of at most 9 bytes).
pub(crate) const HEADER_MAX_LEN: usize = 1 + 16 + 9 + 9;

/// The most a range of fixed size can take: a bound with a 9-byte timestamp delta and a full
/// 32-byte prefix, with a fingerprint (a `Skip` is smaller).
pub(crate) const RANGE_MAX_FIXED_LEN: usize = (1 + 9 + 1 + 32) + (1 + 9 + 16);

/// The message exactly as bincode sees it (tests build hostile messages from these).
#[derive(Serialize, Deserialize)]
pub(crate) struct WireMessage {
    pub(crate) version: u8,
    pub(crate) salt: [u8; 16],
    pub(crate) since_ms: u64,
    pub(crate) ranges: Vec<WireRange>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireRange {
    pub(crate) upper: WireBound,
    pub(crate) mode: WireMode,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum WireBound {
    End,
    At {
        timestamp_delta: u64,
        prefix: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize)]
pub(crate) enum WireMode {
    Skip,
    Fingerprint {
        count: u64,
        fingerprint: Fingerprint,
    },
    IdList {
        ids: Vec<EnvelopeId>,
    },
    Diff {
        have: Vec<u8>,
        extra: Vec<EnvelopeId>,
    },
}

/// What a range asks of, or tells, the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Skip,
    Fingerprint {
        count: u64,
        fingerprint: Fingerprint,
    },
    IdList(Vec<EnvelopeId>),
    Diff {
        have: Vec<u8>,
        extra: Vec<EnvelopeId>,
    },
}

/// One range of a message, by its upper bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) upper: Bound,
    pub(crate) mode: Mode,
}

/// Who sent a message: only responders may send `Diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Initiator,
    Responder,
}

/// A decoded, checked message: ranges ascend strictly, the last one ends at [`Bound::End`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) session: Session,
    pub(crate) ranges: Vec<Range>,
}

impl Message {
    /// Decodes and checks `bytes` from `sender`, refusing oversized input before decoding.
    pub(crate) fn decode(
        bytes: &[u8],
        sender: Sender,
        config: &ReconcileConfig,
    ) -> Result<Self, ReconcileError> {
        if bytes.len() > config.max_message_bytes {
            return Err(ReconcileError::MessageTooLarge {
                len: bytes.len(),
                max: config.max_message_bytes,
            });
        }
        let wire: WireMessage =
            codec::decode(bytes, config.max_message_bytes).map_err(ReconcileError::Decode)?;
        if wire.version != PROTOCOL_VERSION {
            return Err(ReconcileError::UnsupportedVersion(wire.version));
        }
        if wire.ranges.is_empty() {
            return Err(ReconcileError::Malformed("no ranges"));
        }
        if wire.ranges.len() > config.max_ranges_per_message {
            return Err(ReconcileError::TooManyRanges {
                count: wire.ranges.len(),
                max: config.max_ranges_per_message,
            });
        }
        let mut ranges = Vec::with_capacity(wire.ranges.len());
        let mut previous = Bound::MIN;
        let mut previous_ts = 0u64;
        for range in wire.ranges {
            if previous == Bound::End {
                return Err(ReconcileError::Malformed("a range follows the end"));
            }
            let upper = match range.upper {
                WireBound::End => Bound::End,
                WireBound::At {
                    timestamp_delta,
                    prefix,
                } => {
                    let ts = previous_ts
                        .checked_add(timestamp_delta)
                        .ok_or(ReconcileError::Malformed("timestamp overflows"))?;
                    previous_ts = ts;
                    Bound::key(ts, &prefix)
                        .ok_or(ReconcileError::Malformed("id prefix longer than 32 bytes"))?
                }
            };
            if upper <= previous {
                return Err(ReconcileError::Malformed("ranges out of order or empty"));
            }
            previous = upper;
            let mode = match range.mode {
                WireMode::Skip => Mode::Skip,
                WireMode::Fingerprint { count, fingerprint } => {
                    Mode::Fingerprint { count, fingerprint }
                }
                WireMode::IdList { ids } => Mode::IdList(ids),
                WireMode::Diff { have, extra } => {
                    if sender == Sender::Initiator {
                        return Err(ReconcileError::Malformed("diff in a request"));
                    }
                    Mode::Diff { have, extra }
                }
            };
            ranges.push(Range { upper, mode });
        }
        if previous != Bound::End {
            return Err(ReconcileError::Malformed("ranges do not reach the end"));
        }
        Ok(Self {
            session: Session::new(wire.salt, wire.since_ms),
            ranges,
        })
    }

    /// Encodes the message, refusing to produce more than `max_len` bytes.
    pub(crate) fn encode(&self, max_len: usize) -> Result<Vec<u8>, ReconcileError> {
        let mut previous_ts = 0u64;
        let mut ranges = Vec::with_capacity(self.ranges.len());
        for range in &self.ranges {
            let upper = match range.upper {
                Bound::End => WireBound::End,
                Bound::Key { timestamp_ms, .. } => {
                    let timestamp_delta =
                        timestamp_ms.checked_sub(previous_ts).ok_or_else(|| {
                            ReconcileError::Encode("range bounds out of order".into())
                        })?;
                    previous_ts = timestamp_ms;
                    WireBound::At {
                        timestamp_delta,
                        prefix: range.upper.prefix().to_vec(),
                    }
                }
            };
            let mode = match &range.mode {
                Mode::Skip => WireMode::Skip,
                Mode::Fingerprint { count, fingerprint } => WireMode::Fingerprint {
                    count: *count,
                    fingerprint: *fingerprint,
                },
                Mode::IdList(ids) => WireMode::IdList { ids: ids.clone() },
                Mode::Diff { have, extra } => WireMode::Diff {
                    have: have.clone(),
                    extra: extra.clone(),
                },
            };
            ranges.push(WireRange { upper, mode });
        }
        let wire = WireMessage {
            version: PROTOCOL_VERSION,
            salt: self.session.salt,
            since_ms: self.session.since_ms,
            ranges,
        };
        let bytes = codec::encode(&wire).map_err(|e| ReconcileError::Encode(e.to_string()))?;
        if bytes.len() > max_len {
            return Err(ReconcileError::Encode(format!(
                "{} bytes, more than the limit of {max_len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// The encoded size of the header of a message with `ranges` ranges.
pub(crate) fn header_len(session: &Session, ranges: usize) -> usize {
    1 + 16 + varint_len(session.since_ms) + varint_len(ranges as u64)
}

/// The encoded size of `range` when the previous bound's timestamp is `previous_ts`.
pub(crate) fn range_len(previous_ts: u64, range: &Range) -> usize {
    let bound = match range.upper {
        Bound::End => 1,
        Bound::Key {
            timestamp_ms, len, ..
        } => {
            let delta = timestamp_ms.saturating_sub(previous_ts);
            1 + varint_len(delta) + varint_len(u64::from(len)) + usize::from(len)
        }
    };
    let mode = match &range.mode {
        Mode::Skip => 1,
        Mode::Fingerprint { count, .. } => 1 + varint_len(*count) + 16,
        Mode::IdList(ids) => 1 + varint_len(ids.len() as u64) + 32 * ids.len(),
        Mode::Diff { have, extra } => {
            1 + varint_len(have.len() as u64)
                + have.len()
                + varint_len(extra.len() as u64)
                + 32 * extra.len()
        }
    };
    bound + mode
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            session: Session::new([3; 16], 1_700_000_000_000),
            ranges: vec![
                Range {
                    upper: Bound::key(1_700_000_000_500, &[]).unwrap(),
                    mode: Mode::Skip,
                },
                Range {
                    upper: Bound::key(1_700_000_000_500, &[0x80, 0]).unwrap(),
                    mode: Mode::Fingerprint {
                        count: 300,
                        fingerprint: [9; 16],
                    },
                },
                Range {
                    upper: Bound::key(1_700_000_100_000, &[1; 32]).unwrap(),
                    mode: Mode::IdList(vec![EnvelopeId([4; 32]); 3]),
                },
                Range {
                    upper: Bound::End,
                    mode: Mode::Diff {
                        have: vec![0b101],
                        extra: vec![EnvelopeId([5; 32])],
                    },
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_exact_sizes() {
        let config = ReconcileConfig::default();
        let message = sample();
        let bytes = message.encode(usize::MAX).unwrap();
        let decoded = Message::decode(&bytes, Sender::Responder, &config).unwrap();
        assert_eq!(decoded, message);
        let mut previous_ts = 0;
        let mut expected = header_len(&message.session, message.ranges.len());
        for range in &message.ranges {
            expected += range_len(previous_ts, range);
            previous_ts = range.upper.timestamp_ms().unwrap_or(previous_ts);
        }
        assert_eq!(bytes.len(), expected);
    }

    #[test]
    fn diff_is_refused_from_an_initiator() {
        let bytes = sample().encode(usize::MAX).unwrap();
        let err =
            Message::decode(&bytes, Sender::Initiator, &ReconcileConfig::default()).unwrap_err();
        assert!(
            matches!(err, ReconcileError::Malformed("diff in a request")),
            "{err}"
        );
    }

    #[test]
    fn encode_refuses_to_exceed_the_limit() {
        let message = sample();
        let len = message.encode(usize::MAX).unwrap().len();
        assert!(message.encode(len - 1).is_err());
    }
}
