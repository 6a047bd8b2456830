//! Reconciliation against the naive baseline, side by side in one run.
//!
//! For each case, two peers hold n items of which `d` differ (half only on each side).
//! *Reconcile* runs a full session (initiator and responder in one process, messages handed
//! over in memory). *Naive* is what reconciliation replaces: the initiator sends its whole id
//! list, the responder answers with a bit per id (held or not) plus the ids the initiator
//! lacks — one round, ~32 bytes per item. Both produce the same send/request sets (checked).
//!
//! Run with `cargo bench -p gossip --bench reconcile`. Times are medians of several runs on
//! this machine, for comparison within the run only.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gossip::codec;
use gossip::{
    EnvelopeId, Initiator, Item, Outcome, Progress, ReconcileConfig, Responder, Session,
    SortedItems,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const MAX_NAIVE: usize = 4 * 1024 * 1024;

fn items(rng: &mut ChaCha8Rng, n: usize) -> Vec<Item> {
    (0..n)
        .map(|_| Item::new(T0 + rng.gen_range(0..HOUR), EnvelopeId(rng.r#gen())))
        .collect()
}

fn sets(seed: u64, n: usize, d: usize) -> (SortedItems, SortedItems) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let common = items(&mut rng, n - d / 2);
    let mut a = common.clone();
    a.extend(items(&mut rng, d / 2));
    let mut b = common;
    b.extend(items(&mut rng, d - d / 2));
    (SortedItems::new(a), SortedItems::new(b))
}

fn reconcile(a: &SortedItems, b: &SortedItems, config: &ReconcileConfig) -> Outcome {
    let mut initiator =
        Initiator::new(a.clone(), Session::new([42; 16], 0), config.clone()).expect("config");
    let responder = Responder::new(config.clone()).expect("config");
    let mut request = initiator.start().expect("start");
    loop {
        let reply = responder.respond(&request, b).expect("reply");
        match initiator.handle_reply(&reply).expect("handle") {
            Progress::Continue(next) => request = next,
            Progress::Done(outcome) => return outcome,
        }
    }
}

/// The naive exchange; returns (send, request, bytes).
fn naive(a: &SortedItems, b: &SortedItems) -> (Vec<EnvelopeId>, Vec<EnvelopeId>, usize) {
    // Initiator: every id.
    let mine: Vec<EnvelopeId> = a.as_slice().iter().map(|i| i.id).collect();
    let request = codec::encode(&mine).expect("encode");
    // Responder: a bit per listed id, and the ids that were not listed.
    let listed: Vec<EnvelopeId> = codec::decode(&request, MAX_NAIVE).expect("decode");
    let listed_set: HashSet<EnvelopeId> = listed.iter().copied().collect();
    let own: HashSet<EnvelopeId> = b.as_slice().iter().map(|i| i.id).collect();
    let mut have = vec![0u8; listed.len().div_ceil(8)];
    for (i, id) in listed.iter().enumerate() {
        if own.contains(id) {
            have[i / 8] |= 1 << (i % 8);
        }
    }
    let extra: Vec<EnvelopeId> = b
        .as_slice()
        .iter()
        .map(|i| i.id)
        .filter(|id| !listed_set.contains(id))
        .collect();
    let reply = codec::encode(&(have, extra)).expect("encode");
    // Initiator: read the answer.
    let (have, extra): (Vec<u8>, Vec<EnvelopeId>) =
        codec::decode(&reply, MAX_NAIVE).expect("decode");
    let send = mine
        .iter()
        .enumerate()
        .filter(|(i, _)| have[i / 8] & (1 << (i % 8)) == 0)
        .map(|(_, id)| *id)
        .collect();
    (send, extra, request.len() + reply.len())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let config = ReconcileConfig::default();
    println!(
        "reconcile vs naive (send every id); branching {}, id list threshold {}, max message {} KiB",
        config.branching,
        config.id_list_threshold,
        config.max_message_bytes / 1024
    );
    println!(
        "{:>7} {:>6} | {:>10} {:>6} {:>9} | {:>10} {:>9} | {:>11} {:>10}",
        "items",
        "diffs",
        "rec bytes",
        "rounds",
        "rec ms",
        "naive B",
        "naive ms",
        "bytes ratio",
        "time ratio"
    );
    let cases: &[(usize, usize)] = &[
        (10_000, 0),
        (10_000, 10),
        (10_000, 1_000),
        (100_000, 0),
        (100_000, 10),
        (100_000, 1_000),
    ];
    for (case, &(n, d)) in cases.iter().enumerate() {
        let (a, b) = sets(case as u64, n, d);
        let runs = if n >= 100_000 { 5 } else { 11 };

        let mut outcome = None;
        let mut rec_times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let o = black_box(reconcile(&a, &b, &config));
            rec_times.push(start.elapsed());
            outcome = Some(o);
        }
        let outcome = outcome.expect("at least one run");

        let mut naive_result = None;
        let mut naive_times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let r = black_box(naive(&a, &b));
            naive_times.push(start.elapsed());
            naive_result = Some(r);
        }
        let (mut send, mut request, naive_bytes) = naive_result.expect("at least one run");

        // Same answer both ways.
        send.sort();
        request.sort();
        assert_eq!(send, outcome.send, "send differs from the baseline");
        assert_eq!(
            request, outcome.request,
            "request differs from the baseline"
        );

        let (rec_ms, naive_ms) = (ms(median(rec_times)), ms(median(naive_times)));
        println!(
            "{:>7} {:>6} | {:>10} {:>6} {:>9.2} | {:>10} {:>9.2} | {:>10.4}x {:>9.2}x",
            n,
            d,
            outcome.bytes_total(),
            outcome.rounds,
            rec_ms,
            naive_bytes,
            naive_ms,
            outcome.bytes_total() as f64 / naive_bytes as f64,
            rec_ms / naive_ms,
        );
    }
}
