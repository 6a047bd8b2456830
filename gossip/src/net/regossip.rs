//! When an envelope the log already holds may go out on pubsub again.
//!
//! A member re-publishes an unchanged beacon every beacon interval: the same bytes, so the
//! same id. gossipsub refuses to publish an id it saw within its duplicate-cache time and logs
//! a warning each time, so an idle node wrote a WARN line per group per beacon. This keeps,
//! for each envelope published again, when it last went out, and skips what gossipsub would
//! refuse. Peers that missed it still get it from the log by anti-entropy. An envelope filed
//! before this process started is not in gossipsub's cache (a restarted node re-publishing
//! what it had stored but not sent before a crash), so it goes out.

use std::collections::HashMap;
use std::time::Duration;

use crate::EnvelopeId;

/// How long gossipsub remembers a message id (set in its config from this). A re-publish
/// waits a little longer: gossipsub drops expired ids lazily, on its next insert.
pub(crate) const DUPLICATE_CACHE_TIME: Duration = Duration::from_secs(60);
const SLACK_MS: u64 = 5_000;

/// When each envelope published again last went out (ms); only ids still inside the
/// duplicate-cache time are kept, so it holds about one entry per repeating beacon.
#[derive(Debug)]
pub(super) struct Regossip {
    /// When this process started: gossipsub's cache holds nothing filed before.
    since_ms: u64,
    last: HashMap<EnvelopeId, u64>,
}

impl Regossip {
    pub fn new(since_ms: u64) -> Self {
        Self {
            since_ms,
            last: HashMap::new(),
        }
    }

    /// Whether envelope `id`, filed in the log at `filed_ms` (when it first went out or
    /// arrived), may be gossiped again at `now_ms`; if so, notes that it goes out now.
    pub fn may_send(&mut self, id: EnvelopeId, filed_ms: u64, now_ms: u64) -> bool {
        let wait = DUPLICATE_CACHE_TIME.as_millis() as u64 + SLACK_MS;
        let filed_here = (filed_ms >= self.since_ms).then_some(filed_ms);
        let last = self.last.get(&id).copied().max(filed_here);
        if last.is_some_and(|last| now_ms < last.saturating_add(wait)) {
            return false;
        }
        self.last.retain(|_, at| now_ms < at.saturating_add(wait));
        self.last.insert(id, now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_envelope_goes_out_once_per_duplicate_cache_time() {
        let wait = DUPLICATE_CACHE_TIME.as_millis() as u64 + SLACK_MS;
        let (a, b) = (EnvelopeId([1; 32]), EnvelopeId([2; 32]));
        let mut regossip = Regossip::new(0);
        // Filed (and first gossiped) at 1,000: a beacon every 2 s stays quiet until `wait`.
        let sent: Vec<u64> = (1..100)
            .map(|k| 1_000 + k * 2_000)
            .filter(|&now| regossip.may_send(a, 1_000, now))
            .collect();
        let first = sent[0];
        assert!(
            (1_000 + wait..1_000 + wait + 2_000).contains(&first),
            "{sent:?}"
        );
        assert!(sent.windows(2).all(|w| w[1] - w[0] >= wait), "{sent:?}");
        assert_eq!(sent.len(), 3, "{sent:?}");
        // Another envelope is independent of the first.
        assert!(regossip.may_send(b, 0, 1_000_000));
        // Old entries are dropped once past the wait.
        assert!(regossip.may_send(a, 1_000, 10_000_000));
        assert_eq!(regossip.last.len(), 1);
    }

    #[test]
    fn an_envelope_filed_before_a_restart_goes_out_at_once() {
        let id = EnvelopeId([3; 32]);
        let mut regossip = Regossip::new(50_000);
        assert!(regossip.may_send(id, 49_000, 51_000));
        assert!(!regossip.may_send(id, 49_000, 53_000));
    }
}
