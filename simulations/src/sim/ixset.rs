//! A set of envelope indices as a bitset. Every node keeps two (what its gossip layer has,
//! what its engine has processed); with interned indices they cost a bit per envelope of the
//! run instead of a 32-byte id plus hashing overhead per envelope the node holds.

use super::node::EnvIx;

/// A growable bitset of [`EnvIx`].
#[derive(Debug, Clone, Default)]
pub struct IxSet {
    words: Vec<u64>,
}

impl IxSet {
    /// Adds `ix`; true when it was not there.
    pub fn insert(&mut self, ix: EnvIx) -> bool {
        let (w, bit) = (ix as usize / 64, 1u64 << (ix % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let fresh = self.words[w] & bit == 0;
        self.words[w] |= bit;
        fresh
    }

    /// Whether `ix` is in.
    pub fn contains(&self, ix: EnvIx) -> bool {
        self.words
            .get(ix as usize / 64)
            .is_some_and(|w| w & (1u64 << (ix % 64)) != 0)
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = EnvIx> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..64u32)
                .filter(move |b| word & (1u64 << b) != 0)
                .map(move |b| (w as u32) * 64 + b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_report_novelty_and_iterate_ascending() {
        let mut s = IxSet::default();
        assert!(s.insert(130));
        assert!(s.insert(3));
        assert!(!s.insert(130));
        assert!(s.insert(64));
        assert!(s.contains(3) && s.contains(64) && s.contains(130));
        assert!(!s.contains(4) && !s.contains(1000));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 64, 130]);
    }
}
