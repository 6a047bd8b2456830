//! Per-peer budgets for pubsub traffic: how many messages and bytes each directly connected
//! peer may hand us per second, with a burst allowance.
//!
//! A flood of well-formed envelopes passes the validator (only the group's members can tell
//! an MLS ciphertext from junk, and only after trying it), so decoding cannot be the only
//! bound: without one, a single peer could fill the log's byte budget, push honest envelopes
//! out of the engine's buffers and keep the node's task busy. The budget is charged to the
//! peer that handed the message over (`propagation_source`): the attacker is the one that
//! connects to us and sends, and honest peers forward only what their own budgets let in.
//!
//! Two token buckets per peer (messages, bytes) refill at the configured rate up to `burst`
//! seconds' worth. A message that finds a bucket empty is *over* budget: it is ignored (not
//! stored, not forwarded, no score penalty — an honest peer catching up in a burst loses
//! nothing, sync fetches it later). A peer that keeps sending while over budget drives its
//! buckets further negative; at a second burst's worth of debt it is *abusive*, and its own
//! messages (those it authored, by gossipsub's signature) are rejected, which gossipsub's peer
//! scoring turns into a graylist. What it relays for others is only ignored: its own budget
//! let those through, and rejecting them would let a flood sent along several paths get honest
//! relays graylisted.
//!
//! What the budget does not do: an attacker that signs each message with a fresh key is never
//! *graylisted* by it (its messages are not its own), only held to the budget's rate; and
//! envelopes within budget are stored and forwarded until a member fails to decrypt them
//! (the gossip layer cannot tell MLS ciphertext from junk).
//!
//! Sans-IO: time is passed in, so the unit tests below drive it exactly.

use std::collections::HashMap;
use std::hash::Hash;

/// Rates and burst for each peer's pubsub traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerBudgetConfig {
    /// Sustained messages per second a peer may hand us.
    pub messages_per_s: u32,
    /// Sustained bytes per second a peer may hand us.
    pub bytes_per_s: u64,
    /// Seconds of the rates a peer may send at once (the buckets' size), and the debt beyond
    /// that at which its messages are rejected rather than ignored.
    pub burst_s: u32,
    /// The most peers tracked; beyond it the longest-idle peer's bucket is forgotten (a peer
    /// that comes back starts with a full bucket, which bounds memory, not rate).
    pub max_peers: usize,
}

impl Default for PeerBudgetConfig {
    /// Well above a chat group's traffic (and the node's own throughput), so that only a
    /// flood meets it: 500 messages and 4 MiB per second, 10 seconds of burst.
    fn default() -> Self {
        Self {
            messages_per_s: 500,
            bytes_per_s: 4 * 1024 * 1024,
            burst_s: 10,
            max_peers: 4096,
        }
    }
}

impl PeerBudgetConfig {
    /// Whether the numbers make a usable budget.
    pub fn is_valid(&self) -> bool {
        self.messages_per_s > 0 && self.bytes_per_s > 0 && self.burst_s > 0 && self.max_peers > 0
    }
}

/// What a peer's message finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetVerdict {
    /// Within budget.
    Within,
    /// Over budget: drop it without penalty.
    Over,
    /// Far over budget, and still sending: reject it (the sender's score pays).
    Abusive,
}

#[derive(Debug, Clone, Copy)]
struct Buckets {
    messages: f64,
    bytes: f64,
    at_ms: u64,
}

/// The buckets of every peer that sent us something.
#[derive(Debug)]
pub struct PeerBudgets<P> {
    config: PeerBudgetConfig,
    peers: HashMap<P, Buckets>,
}

impl<P: Eq + Hash + Clone> PeerBudgets<P> {
    /// Budgets under `config` (checked by [`PeerBudgetConfig::is_valid`] by the caller).
    pub fn new(config: PeerBudgetConfig) -> Self {
        Self {
            config,
            peers: HashMap::new(),
        }
    }

    fn capacity(&self) -> (f64, f64) {
        let burst = f64::from(self.config.burst_s);
        (
            f64::from(self.config.messages_per_s) * burst,
            self.config.bytes_per_s as f64 * burst,
        )
    }

    /// Charges one message of `bytes` from `peer` at `now_ms` and says what it finds.
    pub fn charge(&mut self, peer: &P, bytes: usize, now_ms: u64) -> BudgetVerdict {
        let (max_messages, max_bytes) = self.capacity();
        if !self.peers.contains_key(peer) && self.peers.len() >= self.config.max_peers {
            self.forget_longest_idle();
        }
        let buckets = self.peers.entry(peer.clone()).or_insert(Buckets {
            messages: max_messages,
            bytes: max_bytes,
            at_ms: now_ms,
        });
        let elapsed_s = now_ms.saturating_sub(buckets.at_ms) as f64 / 1000.0;
        buckets.at_ms = buckets.at_ms.max(now_ms);
        buckets.messages = (buckets.messages + elapsed_s * f64::from(self.config.messages_per_s))
            .min(max_messages);
        buckets.bytes = (buckets.bytes + elapsed_s * self.config.bytes_per_s as f64).min(max_bytes);
        if buckets.messages >= 1.0 && buckets.bytes >= bytes as f64 {
            buckets.messages -= 1.0;
            buckets.bytes -= bytes as f64;
            return BudgetVerdict::Within;
        }
        // Over: the debt grows with each message sent anyway, down to one burst's worth.
        buckets.messages = (buckets.messages - 1.0).max(-max_messages);
        buckets.bytes = (buckets.bytes - bytes as f64).max(-max_bytes);
        if buckets.messages <= -max_messages || buckets.bytes <= -max_bytes {
            BudgetVerdict::Abusive
        } else {
            BudgetVerdict::Over
        }
    }

    /// Forgets `peer` (it disconnected): its debt goes with it, but so does its burst, since
    /// a reconnecting peer starts full either way.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// How many peers are tracked.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn forget_longest_idle(&mut self) {
        if let Some(idle) = self
            .peers
            .iter()
            .min_by_key(|(_, b)| b.at_ms)
            .map(|(p, _)| p.clone())
        {
            self.peers.remove(&idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(messages_per_s: u32, bytes_per_s: u64, burst_s: u32) -> PeerBudgets<u8> {
        PeerBudgets::new(PeerBudgetConfig {
            messages_per_s,
            bytes_per_s,
            burst_s,
            max_peers: 2,
        })
    }

    fn count(b: &mut PeerBudgets<u8>, peer: u8, n: usize, bytes: usize, at: u64) -> [usize; 3] {
        let mut out = [0; 3];
        for _ in 0..n {
            match b.charge(&peer, bytes, at) {
                BudgetVerdict::Within => out[0] += 1,
                BudgetVerdict::Over => out[1] += 1,
                BudgetVerdict::Abusive => out[2] += 1,
            }
        }
        out
    }

    #[test]
    fn a_burst_fits_then_overflow_is_ignored_then_rejected() {
        let mut b = budgets(10, 1_000_000, 2);
        // 20 fit (2 s of 10/s), the next 20 are over, then the debt is a full burst.
        assert_eq!(count(&mut b, 1, 60, 10, 0), [20, 19, 21]);
    }

    #[test]
    fn the_rate_refills_and_pays_debt_first() {
        let mut b = budgets(10, 1_000_000, 2);
        assert_eq!(count(&mut b, 1, 25, 10, 0), [20, 5, 0]);
        // One second later: 10 tokens, 5 of which pay the debt.
        assert_eq!(count(&mut b, 1, 6, 10, 1_000), [5, 1, 0]);
        // Long idle: full again, not more.
        assert_eq!(count(&mut b, 1, 21, 10, 100_000), [20, 1, 0]);
    }

    #[test]
    fn bytes_are_budgeted_too() {
        let mut b = budgets(1_000, 100, 1);
        assert_eq!(count(&mut b, 1, 3, 40, 0), [2, 1, 0]);
    }

    #[test]
    fn peers_are_separate_and_bounded() {
        let mut b = budgets(1, 1_000, 1);
        // A burst of one: the second message is already a whole burst over.
        assert_eq!(count(&mut b, 1, 2, 1, 0), [1, 0, 1]);
        assert_eq!(count(&mut b, 2, 1, 1, 5), [1, 0, 0]);
        // A third peer evicts the longest idle (peer 1), which then starts full again.
        assert_eq!(count(&mut b, 3, 1, 1, 10), [1, 0, 0]);
        assert_eq!(b.len(), 2);
        assert_eq!(count(&mut b, 1, 1, 1, 10), [1, 0, 0]);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = budgets(10, 1_000, 1);
        assert_eq!(count(&mut b, 1, 10, 1, 5_000), [10, 0, 0]);
        assert_eq!(count(&mut b, 1, 1, 1, 1_000), [0, 1, 0]);
    }
}
