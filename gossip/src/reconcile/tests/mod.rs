//! Reconciliation tests: convergence (exact outcomes, then equal sets after transfer), cost
//! (bytes and rounds follow the differences, not the set size), and hostile input.

mod convergence;
mod cost;
mod hostile;

use std::collections::{BTreeSet, HashMap};

use rand::Rng;

use super::*;
use crate::envelope_id::EnvelopeId;

pub(super) const T0: u64 = 1_700_000_000_000;
pub(super) const HOUR: u64 = 3_600_000;

pub(super) fn random_id(rng: &mut impl Rng) -> EnvelopeId {
    let mut id = [0u8; 32];
    rng.fill(&mut id);
    EnvelopeId(id)
}

/// `n` items with random ids and timestamps spread over `spread_ms` from [`T0`].
pub(super) fn random_items(rng: &mut impl Rng, n: usize, spread_ms: u64) -> Vec<Item> {
    (0..n)
        .map(|_| Item::new(T0 + rng.gen_range(0..spread_ms.max(1)), random_id(rng)))
        .collect()
}

/// Two sets sharing `common` items, with `only_a` and `only_b` items of their own.
pub(super) fn pair(
    rng: &mut impl Rng,
    common: usize,
    only_a: usize,
    only_b: usize,
    spread_ms: u64,
) -> (SortedItems, SortedItems) {
    let shared = random_items(rng, common, spread_ms);
    let mut a = shared.clone();
    a.extend(random_items(rng, only_a, spread_ms));
    let mut b = shared;
    b.extend(random_items(rng, only_b, spread_ms));
    (SortedItems::new(a), SortedItems::new(b))
}

/// Runs a whole session in memory: `a` initiates, `b` responds.
pub(super) fn reconcile(
    a: &SortedItems,
    b: &SortedItems,
    session: Session,
    config: &ReconcileConfig,
) -> Result<Outcome, ReconcileError> {
    let mut initiator = Initiator::new(a.clone(), session, config.clone())?;
    let responder = Responder::new(config.clone())?;
    let mut request = initiator.start()?;
    loop {
        let reply = responder.respond(&request, b)?;
        match initiator.handle_reply(&reply)? {
            Progress::Continue(next) => request = next,
            Progress::Done(outcome) => return Ok(outcome),
        }
    }
}

pub(super) fn ids(items: &[Item]) -> BTreeSet<EnvelopeId> {
    items.iter().map(|item| item.id).collect()
}

/// The outcome names exactly the ids each side lacks within the window.
pub(super) fn assert_exact(a: &SortedItems, b: &SortedItems, since: u64, outcome: &Outcome) {
    let (ia, ib) = (ids(a.since(since)), ids(b.since(since)));
    let send: BTreeSet<_> = outcome.send.iter().copied().collect();
    let request: BTreeSet<_> = outcome.request.iter().copied().collect();
    assert_eq!(send.len(), outcome.send.len(), "send lists an id twice");
    assert_eq!(
        request.len(),
        outcome.request.len(),
        "request lists an id twice"
    );
    assert_eq!(send, &ia - &ib, "send is not exactly what b lacks");
    assert_eq!(request, &ib - &ia, "request is not exactly what a lacks");
}

/// Performs the transfer the outcome calls for.
pub(super) fn apply(outcome: &Outcome, a: &mut SortedItems, b: &mut SortedItems) {
    let in_a: HashMap<EnvelopeId, Item> = a.as_slice().iter().map(|i| (i.id, *i)).collect();
    let in_b: HashMap<EnvelopeId, Item> = b.as_slice().iter().map(|i| (i.id, *i)).collect();
    let mut next_a = a.as_slice().to_vec();
    let mut next_b = b.as_slice().to_vec();
    next_b.extend(outcome.send.iter().map(|id| in_a[id]));
    next_a.extend(outcome.request.iter().map(|id| in_b[id]));
    *a = SortedItems::new(next_a);
    *b = SortedItems::new(next_b);
}

pub(super) fn session(rng: &mut impl Rng, since_ms: u64) -> Session {
    Session::new(rng.r#gen(), since_ms)
}
