//! [`SignatureMemo`]: Ed25519 verifications already done, shared by the engines of one
//! process.
//!
//! A simulator runs hundreds of engines in one thread, and every message of a 50-member group
//! is verified by 49 of them, byte for byte the same key, signature and signed data: `perf`
//! put Ed25519 verification at about 40 % of `chorus-sim bench --case large`. Verification is
//! a pure function of those three inputs, so an answer once computed can be reused without
//! changing any outcome. The memo keeps only **successes**, keyed by key and signature, and
//! stores the signed bytes themselves: a hit needs the same key, the same signature and equal
//! data, so it can only answer what a fresh `verify_strict` would. Failures are verified
//! again every time (they are rare and carry no cost worth saving).
//!
//! A real node runs one engine and does not use a memo; [`crate::crypto::SeededCrypto`]
//! verifies every signature when none is given.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Key and signature: what a remembered verification is found by.
type MemoKey = ([u8; 32], [u8; 64]);

/// Successful Ed25519 verifications, shared by the engines it is handed to (see the module
/// docs). Cloning shares the same memo.
#[derive(Clone)]
pub struct SignatureMemo {
    inner: Arc<Mutex<MemoEntries>>,
}

struct MemoEntries {
    /// Signed data of each remembered (key, signature).
    data: HashMap<MemoKey, Box<[u8]>>,
    /// Insertion order, oldest first: the first to be forgotten when full.
    order: VecDeque<MemoKey>,
    capacity: usize,
    /// Signed bytes held, and the most that may be: a commit or GroupInfo of a large group
    /// signs kilobytes, so the entry count alone would not bound the memory.
    bytes: usize,
    max_bytes: usize,
    hits: u64,
}

impl SignatureMemo {
    /// Entries kept by [`SignatureMemo::new`]: at 1,000 simulated nodes in groups of 50 this
    /// is several virtual minutes of messages and beacons, longer than gossip takes to bring
    /// a message to every member (a late copy after that is simply verified again).
    pub const DEFAULT_CAPACITY: usize = 32_768;
    /// Signed bytes kept by [`SignatureMemo::new`] at most (application messages sign about
    /// 0.5 KB, so the entry count is the usual bound).
    pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

    /// An empty memo of [`SignatureMemo::DEFAULT_CAPACITY`] entries and
    /// [`SignatureMemo::DEFAULT_MAX_BYTES`] signed bytes.
    pub fn new() -> Self {
        Self::with_bounds(Self::DEFAULT_CAPACITY, Self::DEFAULT_MAX_BYTES)
    }

    /// An empty memo keeping at most `capacity` verifications (at least one) and
    /// `max_bytes` of signed data; data larger than that is never kept.
    pub fn with_bounds(capacity: usize, max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(MemoEntries {
                data: HashMap::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
                bytes: 0,
                max_bytes,
                hits: 0,
            })),
        }
    }

    /// Whether `signature` by `key` over `data` was verified before (and is still kept).
    pub fn contains(&self, key: &[u8; 32], signature: &[u8; 64], data: &[u8]) -> bool {
        let mut entries = self.lock();
        let hit = entries
            .data
            .get(&(*key, *signature))
            .is_some_and(|kept| **kept == *data);
        if hit {
            entries.hits += 1;
        }
        hit
    }

    /// Remembers that `signature` by `key` over `data` verified. Forgets the oldest entry
    /// when full.
    pub fn insert(&self, key: &[u8; 32], signature: &[u8; 64], data: &[u8]) {
        let mut entries = self.lock();
        let memo_key = (*key, *signature);
        if entries.data.contains_key(&memo_key) || data.len() > entries.max_bytes {
            return;
        }
        while entries.data.len() >= entries.capacity
            || entries.bytes + data.len() > entries.max_bytes
        {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(gone) = entries.data.remove(&oldest) {
                entries.bytes -= gone.len();
            }
        }
        entries.data.insert(memo_key, data.into());
        entries.bytes += data.len();
        entries.order.push_back(memo_key);
    }

    /// Verifications answered from the memo so far.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// Verifications kept now.
    pub fn len(&self) -> usize {
        self.lock().data.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoEntries> {
        // The entries stay consistent whatever a panicking holder did: each method leaves
        // `data` and `order` in step before it could panic (allocation aside).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for SignatureMemo {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SignatureMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureMemo")
            .field("len", &self.len())
            .field("hits", &self.hits())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_key_signature_and_data() {
        let memo = SignatureMemo::with_bounds(4, 1024);
        let (key, sig) = ([1u8; 32], [2u8; 64]);
        memo.insert(&key, &sig, b"signed");
        assert!(memo.contains(&key, &sig, b"signed"));
        assert!(!memo.contains(&key, &sig, b"signed!"));
        assert!(!memo.contains(&[9u8; 32], &sig, b"signed"));
        assert!(!memo.contains(&key, &[9u8; 64], b"signed"));
        assert_eq!(memo.hits(), 1);
    }

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let memo = SignatureMemo::with_bounds(2, 1024);
        let key = [1u8; 32];
        for i in 0..3u8 {
            memo.insert(&key, &[i; 64], &[i]);
        }
        assert_eq!(memo.len(), 2);
        assert!(!memo.contains(&key, &[0; 64], &[0]));
        assert!(memo.contains(&key, &[1; 64], &[1]));
        assert!(memo.contains(&key, &[2; 64], &[2]));
    }

    #[test]
    fn the_signed_bytes_held_stay_within_their_bound() {
        let memo = SignatureMemo::with_bounds(100, 10);
        let key = [1u8; 32];
        memo.insert(&key, &[0; 64], &[0; 6]);
        memo.insert(&key, &[1; 64], &[1; 6]);
        assert_eq!(memo.len(), 1, "the first entry made room for the second");
        assert!(memo.contains(&key, &[1; 64], &[1; 6]));
        memo.insert(&key, &[2; 64], &[2; 11]);
        assert!(
            !memo.contains(&key, &[2; 64], &[2; 11]),
            "larger than the bound"
        );
        assert!(memo.contains(&key, &[1; 64], &[1; 6]));
    }

    #[test]
    fn clones_share_one_memo() {
        let memo = SignatureMemo::with_bounds(2, 1024);
        let other = memo.clone();
        other.insert(&[1; 32], &[2; 64], b"x");
        assert!(memo.contains(&[1; 32], &[2; 64], b"x"));
    }
}
