//! The one gate every arriving envelope passes, whether it came by pubsub or by sync: size,
//! duplicate, validator, then the log. One gate means one rule for what is stored, and the
//! log's idempotent append is what makes each envelope reach the consumer exactly once.

use identity_tofu::kv::KvStore;

use super::validator::Validator;
use crate::envelope_id::EnvelopeId;
use crate::log::{Appended, Log, LogError};
use crate::topic::Topic;

/// What became of an arriving envelope.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Newly stored under this timestamp: deliver it to the consumer.
    Stored {
        /// Its id.
        id: EnvelopeId,
        /// The timestamp it was stored under (the sender's, clamped to our clock).
        timestamp_ms: u64,
    },
    /// Already in the log: nothing to deliver, but it is valid (it was checked on the way in).
    Duplicate,
    /// Older than what retention already dropped: not stored, not forwarded, no penalty.
    Expired,
    /// Refused: too large, or the validator said no. The sender is at fault.
    Invalid(&'static str),
    /// The log failed; nothing is known about the envelope.
    Failed(LogError),
}

/// Runs `envelope` through the gate into `topic`'s log. `timestamp_ms` is the time the
/// sender gave it; it is clamped to `now_ms` so nobody plants entries in the future (which
/// retention would then keep the longest).
pub(crate) fn admit<S: KvStore>(
    log: &mut Log<S>,
    validator: &dyn Validator,
    topic: &Topic,
    envelope: &[u8],
    timestamp_ms: u64,
    now_ms: u64,
) -> Admission {
    if envelope.len() > log.config().max_envelope_bytes {
        return Admission::Invalid("envelope larger than the log accepts");
    }
    let id = EnvelopeId::of(envelope);
    match log.has(topic, &id) {
        Ok(true) => return Admission::Duplicate,
        Ok(false) => {}
        Err(e) => return Admission::Failed(e),
    }
    if !validator.validate(topic, envelope) {
        return Admission::Invalid("refused by the validator");
    }
    let timestamp_ms = timestamp_ms.min(now_ms);
    match log.append(topic, envelope, timestamp_ms) {
        Ok(Appended::Stored { id, .. }) => Admission::Stored { id, timestamp_ms },
        Ok(Appended::Duplicate { .. }) => Admission::Duplicate,
        Ok(Appended::Expired { .. }) => Admission::Expired,
        Err(LogError::EnvelopeTooLarge { .. }) => {
            Admission::Invalid("envelope larger than the log accepts")
        }
        Err(e) => Admission::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use identity_tofu::kv::MemoryStore;

    use super::*;
    use crate::log::LogConfig;

    fn log() -> Log<MemoryStore> {
        Log::open(MemoryStore::new(), LogConfig::default()).unwrap()
    }

    fn only_ok(_: &Topic, envelope: &[u8]) -> bool {
        envelope.starts_with(b"ok")
    }

    #[test]
    fn stores_once_and_clamps_future_timestamps() {
        let mut log = log();
        let topic = Topic::new("t").unwrap();
        let first = admit(&mut log, &only_ok, &topic, b"ok 1", 5_000, 1_000);
        assert!(matches!(
            first,
            Admission::Stored {
                timestamp_ms: 1_000,
                ..
            }
        ));
        let again = admit(&mut log, &only_ok, &topic, b"ok 1", 900, 1_000);
        assert!(matches!(again, Admission::Duplicate));
    }

    #[test]
    fn validator_refusal_stores_nothing() {
        let mut log = log();
        let topic = Topic::new("t").unwrap();
        let verdict = admit(&mut log, &only_ok, &topic, b"garbage", 1, 1);
        assert!(matches!(verdict, Admission::Invalid(_)));
        assert!(!log.has(&topic, &EnvelopeId::of(b"garbage")).unwrap());
    }

    #[test]
    fn oversized_envelopes_are_invalid() {
        let mut log = log();
        let topic = Topic::new("t").unwrap();
        let big = vec![b'o'; log.config().max_envelope_bytes + 1];
        let verdict = admit(&mut log, &|_: &Topic, _: &[u8]| true, &topic, &big, 1, 1);
        assert!(matches!(verdict, Admission::Invalid(_)));
    }
}
