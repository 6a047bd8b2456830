//! The run's one source of randomness: a ChaCha20 stream seeded from the run's seed. Every
//! random choice of the simulator, and every engine's seeds, are drawn from it in event order,
//! so a seed replays a run exactly.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The seeded RNG with the few distributions the models need.
pub struct SimRng(ChaCha20Rng);

impl SimRng {
    /// A stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha20Rng::seed_from_u64(seed))
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.r#gen::<f64>()
    }

    /// True with probability `p` (0 and 1 draw nothing, so disabled faults cost no numbers).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.unit() < p
        }
    }

    /// Uniform in `[lo, hi)`; `lo` when the range is empty.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            lo
        } else {
            lo + (hi - lo) * self.unit()
        }
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal with the given median and shape `sigma`.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean (inter-arrival times of a Poisson process).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Uniform index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n)
    }

    /// A uniformly chosen element.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }

    /// `k` distinct elements, in random order (all of them when `k` ≥ len).
    pub fn sample<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool: Vec<T> = items.to_vec();
        let k = k.min(pool.len());
        for i in 0..k {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// 32 random bytes (crypto provider seeds).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        out
    }

    /// 16 random bytes (reconciliation salts).
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        self.0.fill_bytes(&mut out);
        out
    }

    /// A random u64 (engine seeds).
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// The underlying generator, for APIs that take an `RngCore + CryptoRng`.
    pub fn inner(&mut self) -> &mut ChaCha20Rng {
        &mut self.0
    }
}
