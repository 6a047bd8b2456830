//! Helpers shared by the tests: seeded randomness that can be replayed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The seed for a randomized test: `CHORUS_SEED` if set, else a fresh one. Printed either
/// way, so a failure can be replayed with `CHORUS_SEED=<seed> cargo test -p gossip <name>`.
pub(crate) fn seed(test: &str) -> u64 {
    let seed = match std::env::var("CHORUS_SEED") {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CHORUS_SEED must be a u64, got {value:?}")),
        Err(_) => rand::random(),
    };
    println!("{test}: seed {seed} (replay with CHORUS_SEED={seed})");
    seed
}

/// A deterministic RNG for `seed`.
pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
