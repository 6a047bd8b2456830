//! After a session and the transfer it calls for, both peers hold the same set; the outcome
//! is exact (nothing missing, nothing extra).

use rand::Rng;

use super::*;
use crate::test_support::{rng, seed};

#[test]
fn identical_sets_take_one_round_and_transfer_nothing() {
    let seed = seed("identical_sets_take_one_round_and_transfer_nothing");
    let mut rng = rng(seed);
    for n in [0, 1, 16, 17, 1_000, 50_000] {
        let (a, b) = pair(&mut rng, n, 0, 0, HOUR);
        let outcome = reconcile(&a, &b, session(&mut rng, 0), &ReconcileConfig::default()).unwrap();
        println!("identical sets of {n}: {} bytes", outcome.bytes_total());
        assert_eq!(outcome.rounds, 1, "n = {n}");
        assert!(
            outcome.send.is_empty() && outcome.request.is_empty(),
            "n = {n}"
        );
        if n > 16 {
            // One fingerprint each way, not a list.
            assert!(
                outcome.bytes_total() < 100,
                "n = {n}: {}",
                outcome.bytes_total()
            );
        }
    }
}

#[test]
fn disjoint_sets_exchange_everything() {
    let seed = seed("disjoint_sets_exchange_everything");
    let mut rng = rng(seed);
    let (mut a, mut b) = pair(&mut rng, 0, 3_000, 2_000, HOUR);
    let outcome = reconcile(&a, &b, session(&mut rng, 0), &ReconcileConfig::default()).unwrap();
    assert_exact(&a, &b, 0, &outcome);
    assert_eq!((outcome.send.len(), outcome.request.len()), (3_000, 2_000));
    apply(&outcome, &mut a, &mut b);
    assert_eq!(a, b);
}

#[test]
fn empty_versus_full_in_both_directions() {
    let seed = seed("empty_versus_full_in_both_directions");
    let mut rng = rng(seed);
    let config = ReconcileConfig::default();
    let n = 20_000;
    for empty_initiates in [true, false] {
        let (full, _) = pair(&mut rng, n, 0, 0, HOUR);
        let empty = SortedItems::default();
        let (mut a, mut b) = if empty_initiates {
            (empty, full)
        } else {
            (full, empty)
        };
        let outcome = reconcile(&a, &b, session(&mut rng, 0), &config).unwrap();
        println!(
            "empty initiates: {empty_initiates}: {} rounds, {} bytes ({:.2}x the ids)",
            outcome.rounds,
            outcome.bytes_total(),
            outcome.bytes_total() as f64 / (32 * n) as f64
        );
        assert_exact(&a, &b, 0, &outcome);
        // Listing the ids is unavoidable; the splitting around it adds little.
        assert!(outcome.bytes_total() < (32 * n as u64) * 5 / 4);
        apply(&outcome, &mut a, &mut b);
        assert_eq!(a, b);
    }
}

/// The property test: random sets, random differences, random configurations (including
/// messages so small that most rounds are deferred), many seeds.
#[test]
fn random_sets_converge_for_many_seeds() {
    let base = seed("random_sets_converge_for_many_seeds");
    for case in 0..150u64 {
        let mut rng = rng(base.wrapping_add(case));
        let config = random_config(&mut rng);
        let common = rng.gen_range(0..2_000);
        let (only_a, only_b) = if rng.gen_bool(0.2) {
            (rng.gen_range(0..1_500), rng.gen_range(0..1_500))
        } else {
            (rng.gen_range(0..20), rng.gen_range(0..20))
        };
        // Timestamps: an hour apart, all equal (bounds need id prefixes), or a few values.
        let spread = *[HOUR, 1, 5].get(rng.gen_range(0..3)).unwrap_or(&HOUR);
        let (mut a, mut b) = pair(&mut rng, common, only_a, only_b, spread);
        let since = if rng.gen_bool(0.3) {
            T0 + rng.gen_range(0..spread)
        } else {
            0
        };
        let outcome = reconcile(&a, &b, session(&mut rng, since), &config)
            .unwrap_or_else(|e| panic!("case {case} (seed {}): {e}", base.wrapping_add(case)));
        assert_exact(&a, &b, since, &outcome);
        apply(&outcome, &mut a, &mut b);
        assert_eq!(
            ids(a.since(since)),
            ids(b.since(since)),
            "case {case} (seed {}) did not converge",
            base.wrapping_add(case)
        );
        // A second session finds nothing more, in one round.
        let again = reconcile(&a, &b, session(&mut rng, since), &config).unwrap();
        assert!(
            again.send.is_empty() && again.request.is_empty(),
            "case {case}"
        );
        assert_eq!(again.rounds, 1, "case {case}");
    }
}

fn random_config(rng: &mut impl Rng) -> ReconcileConfig {
    let branching = rng.gen_range(2..=32);
    let id_list_threshold = rng.gen_range(1..=32);
    let max_diff_ids = rng.gen_range(id_list_threshold..=256);
    let small = rng.gen_bool(0.3);
    let mut config = ReconcileConfig {
        branching,
        id_list_threshold,
        max_diff_ids,
        max_message_bytes: 0,
        max_ranges_per_message: if small { branching + 2 } else { 16 * 1024 },
        max_rounds: 100_000,
    };
    // The smallest valid size, or a comfortable one.
    let mut size = 512;
    loop {
        config.max_message_bytes = size;
        if config.validate().is_ok() {
            break;
        }
        size += 64;
    }
    if !small {
        config.max_message_bytes = 256 * 1024;
    }
    config.validate().unwrap();
    config
}

#[test]
fn items_before_the_window_are_not_reconciled() {
    let seed = seed("items_before_the_window_are_not_reconciled");
    let mut rng = rng(seed);
    let since = T0 + HOUR;
    let (old_a, old_b) = pair(&mut rng, 100, 30, 30, HOUR);
    let mut a = old_a.into_vec();
    let mut b = old_b.into_vec();
    let fresh: Vec<Item> = random_items(&mut rng, 50, HOUR)
        .into_iter()
        .map(|i| Item::new(i.timestamp_ms + HOUR, i.id))
        .collect();
    a.extend(&fresh[..45]);
    b.extend(&fresh[5..]);
    let (a, b) = (SortedItems::new(a), SortedItems::new(b));
    let outcome = reconcile(
        &a,
        &b,
        session(&mut rng, since),
        &ReconcileConfig::default(),
    )
    .unwrap();
    assert_exact(&a, &b, since, &outcome);
    assert_eq!((outcome.send.len(), outcome.request.len()), (5, 5));
}

#[test]
fn an_envelope_held_under_two_timestamps_is_never_requested() {
    let seed = seed("an_envelope_held_under_two_timestamps_is_never_requested");
    let mut rng = rng(seed);
    let (a, b) = pair(&mut rng, 500, 0, 0, HOUR);
    let moved = a.as_slice()[250];
    let mut b = b.into_vec();
    b.retain(|item| item.id != moved.id);
    b.push(Item::new(moved.timestamp_ms + 1_000, moved.id));
    let b = SortedItems::new(b);
    let outcome = reconcile(&a, &b, session(&mut rng, 0), &ReconcileConfig::default()).unwrap();
    assert!(outcome.request.is_empty(), "{:?}", outcome.request);
    // It may be offered to b (which dedups by id on arrival); nothing else is.
    assert!(outcome.send.iter().all(|id| *id == moved.id));
}

#[test]
fn the_in_memory_item_sources_give_the_window() {
    use std::collections::BTreeMap;
    let topic = crate::topic::Topic::new("chorus/g/x").unwrap();
    let items = SortedItems::new(vec![
        Item::new(1, EnvelopeId([1; 32])),
        Item::new(5, EnvelopeId([2; 32])),
    ]);
    let map = BTreeMap::from([(topic.clone(), items)]);
    assert_eq!(map.items_since(&topic, 2).unwrap().len(), 1);
    let other = crate::topic::Topic::new("chorus/g/y").unwrap();
    assert!(map.items_since(&other, 0).unwrap().is_empty());
}
