//! The cost of a session follows the differences, not the size of the sets.

use super::*;
use crate::test_support::{rng, seed};

/// Two sets of 100,000 items that differ by 10 (5 on each side): the bytes exchanged are a
/// small fraction of sending every id, and the rounds grow with log(n).
#[test]
fn ten_differences_in_a_hundred_thousand_cost_a_small_fraction_in_log_rounds() {
    let seed = seed("ten_differences_in_a_hundred_thousand_cost_a_small_fraction_in_log_rounds");
    let mut rng = rng(seed);
    let config = ReconcileConfig::default();
    let n = 100_000;
    let (a, b) = pair(&mut rng, n - 5, 5, 5, HOUR);
    assert_eq!((a.len(), b.len()), (n, n));
    let outcome = reconcile(&a, &b, session(&mut rng, 0), &config).unwrap();
    assert_exact(&a, &b, 0, &outcome);
    let baseline = 32 * n as u64;
    let log_rounds = (n as f64).log(config.branching as f64).ceil() as u32;
    println!(
        "n = {n}, 10 differences: {} bytes in {} rounds; sending every id: {baseline} bytes \
         ({:.3}% of it); log_{}(n) = {log_rounds}",
        outcome.bytes_total(),
        outcome.rounds,
        100.0 * outcome.bytes_total() as f64 / baseline as f64,
        config.branching,
    );
    assert!(
        outcome.bytes_total() * 50 < baseline,
        "more than 2% of the baseline"
    );
    // Every message descends one level of splitting (both sides split), so a round trip
    // covers two levels: about log_B(n) / 2 + 1 rounds. Allow log_B(n).
    assert!(outcome.rounds <= log_rounds, "{} rounds", outcome.rounds);
}

/// Ten times the items with the same differences costs about log(10n)/log(n) more, not ten
/// times more.
#[test]
fn growing_the_sets_tenfold_barely_grows_the_cost() {
    let seed = seed("growing_the_sets_tenfold_barely_grows_the_cost");
    let mut rng = rng(seed);
    let config = ReconcileConfig::default();
    let mut costs = Vec::new();
    for n in [10_000, 100_000] {
        let (a, b) = pair(&mut rng, n - 5, 5, 5, HOUR);
        let outcome = reconcile(&a, &b, session(&mut rng, 0), &config).unwrap();
        assert_exact(&a, &b, 0, &outcome);
        println!(
            "n = {n}: {} bytes, {} rounds",
            outcome.bytes_total(),
            outcome.rounds
        );
        costs.push(outcome.bytes_total());
    }
    assert!(costs[1] < costs[0] * 5 / 2, "{costs:?}");
}
