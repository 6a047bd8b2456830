//! One round of the protocol, as both roles play it: how each range of an incoming message
//! is answered, and how the initiator learns from the ranges a responder resolved.
//!
//! For each incoming range `[lower, upper)`, with `mine` = my items in it:
//!
//! - `Skip` → skip.
//! - `Fingerprint` equal to mine (same count, same hash) → skip. Otherwise the range differs
//!   and is *expanded*: if I hold at most `id_list_threshold` items there, I list my ids;
//!   else I split my items into `branching` parts of equal count and send each part's
//!   fingerprint. Every split divides the splitter's items per range by `branching`, so a
//!   difference is cornered in O(log n) rounds.
//! - `IdList` at the responder → `Diff`: which listed ids I hold, and my ids that were not
//!   listed. If those extras are more than `max_diff_ids`, I split instead.
//! - `IdList` or `Diff` at the initiator → the range is resolved (see [`resolve`]); skip.
//!
//! When the answers no longer fit the message, the remaining ranges are *deferred*: each is
//! answered with my plain fingerprint (the peer compares it next round), and if even that no
//! longer fits, all the rest is closed with one fingerprint to the end. Either way the
//! ranges answered in full were progress, and nothing is lost: a deferred range differs, so
//! the peer expands it again.

use std::collections::BTreeSet;

use super::bound::Bound;
use super::config::ReconcileConfig;
use super::error::ReconcileError;
use super::fingerprint::fingerprint;
use super::item::Item;
use super::message::{Message, Mode, Range, Sender};
use super::writer::Writer;
use crate::envelope_id::EnvelopeId;

/// Answers every range of `incoming` (sent by `from`) with `own` items, the ascending items
/// of the session's window.
pub(crate) fn answer(
    incoming: &Message,
    from: Sender,
    own: &[Item],
    config: &ReconcileConfig,
) -> Writer {
    let salt = &incoming.session.salt;
    let mut writer = Writer::new(incoming.session, config);
    let mut lower = Bound::MIN;
    let mut deferring = false;
    for range in &incoming.ranges {
        let mine = Bound::slice(own, &lower, &range.upper);
        if !deferring {
            if writer.try_extend(answer_range(range, from, mine, salt, config)) {
                lower = range.upper;
                continue;
            }
            deferring = true;
        }
        let deferred = Range {
            upper: range.upper,
            mode: deferred_mode(range, from, mine, salt),
        };
        if writer.try_extend(vec![deferred]) {
            lower = range.upper;
            continue;
        }
        let rest = Bound::slice(own, &lower, &Bound::End);
        writer.close(fingerprint_mode(salt, rest));
        return writer;
    }
    writer
}

/// The full answer to one range.
fn answer_range(
    range: &Range,
    from: Sender,
    mine: &[Item],
    salt: &[u8; 16],
    config: &ReconcileConfig,
) -> Vec<Range> {
    let skip = || {
        vec![Range {
            upper: range.upper,
            mode: Mode::Skip,
        }]
    };
    match (&range.mode, from) {
        (Mode::Skip, _) => skip(),
        (Mode::Fingerprint { count, fingerprint }, _) => {
            if matches(mine, *count, fingerprint, salt) {
                skip()
            } else {
                expand(mine, range.upper, salt, config)
            }
        }
        (Mode::IdList(theirs), Sender::Initiator) => diff(mine, theirs, range.upper, salt, config),
        // At the initiator, lists and diffs were resolved before answering.
        (Mode::IdList(_) | Mode::Diff { .. }, _) => skip(),
    }
}

/// What a deferred range becomes: a skip where nothing is left to do, else my fingerprint.
fn deferred_mode(range: &Range, from: Sender, mine: &[Item], salt: &[u8; 16]) -> Mode {
    match (&range.mode, from) {
        (Mode::Skip, _) | (Mode::IdList(_) | Mode::Diff { .. }, Sender::Responder) => Mode::Skip,
        (Mode::Fingerprint { count, fingerprint }, _)
            if matches(mine, *count, fingerprint, salt) =>
        {
            Mode::Skip
        }
        _ => fingerprint_mode(salt, mine),
    }
}

fn matches(mine: &[Item], count: u64, theirs: &[u8; 16], salt: &[u8; 16]) -> bool {
    // Comparing counts first spares hashing most differing ranges.
    mine.len() as u64 == count && fingerprint(salt, mine) == *theirs
}

fn fingerprint_mode(salt: &[u8; 16], items: &[Item]) -> Mode {
    Mode::Fingerprint {
        count: items.len() as u64,
        fingerprint: fingerprint(salt, items),
    }
}

/// The answer to a differing range: my ids if few, else my items split into parts.
pub(crate) fn expand(
    mine: &[Item],
    upper: Bound,
    salt: &[u8; 16],
    config: &ReconcileConfig,
) -> Vec<Range> {
    if mine.len() <= config.id_list_threshold {
        return vec![Range {
            upper,
            mode: Mode::IdList(mine.iter().map(|item| item.id).collect()),
        }];
    }
    let parts = config.branching.min(mine.len());
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 1..=parts {
        let end = mine.len() * part / parts;
        let part_upper = if part == parts {
            upper
        } else {
            // start < end < mine.len(): parts <= mine.len() makes every part non-empty.
            Bound::between(&mine[end - 1], &mine[end])
        };
        out.push(Range {
            upper: part_upper,
            mode: fingerprint_mode(salt, &mine[start..end]),
        });
        start = end;
    }
    out
}

/// The responder's answer to an initiator's id list.
fn diff(
    mine: &[Item],
    theirs: &[EnvelopeId],
    upper: Bound,
    salt: &[u8; 16],
    config: &ReconcileConfig,
) -> Vec<Range> {
    let mut theirs_sorted = theirs.to_vec();
    theirs_sorted.sort_unstable();
    let extra: Vec<EnvelopeId> = mine
        .iter()
        .map(|item| item.id)
        .filter(|id| theirs_sorted.binary_search(id).is_err())
        .collect();
    if extra.len() > config.max_diff_ids {
        return expand(mine, upper, salt, config);
    }
    let mut mine_sorted: Vec<EnvelopeId> = mine.iter().map(|item| item.id).collect();
    mine_sorted.sort_unstable();
    let mut have = vec![0u8; theirs.len().div_ceil(8)];
    for (i, id) in theirs.iter().enumerate() {
        if mine_sorted.binary_search(id).is_ok() {
            have[i / 8] |= 1 << (i % 8);
        }
    }
    vec![Range {
        upper,
        mode: Mode::Diff { have, extra },
    }]
}

/// What the initiator has learnt so far: ids to send, ids to request.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub(crate) send: BTreeSet<EnvelopeId>,
    pub(crate) request: BTreeSet<EnvelopeId>,
}

/// Records what the id lists and diffs of a responder's `reply` tell the initiator holding
/// `own`. A diff must match my ids in its range exactly (one bit per id, unused bits zero).
pub(crate) fn resolve(
    reply: &Message,
    own: &[Item],
    resolved: &mut Resolved,
) -> Result<(), ReconcileError> {
    let mut lower = Bound::MIN;
    for range in &reply.ranges {
        let mine = Bound::slice(own, &lower, &range.upper);
        match &range.mode {
            Mode::IdList(theirs) => {
                let mut theirs_sorted = theirs.clone();
                theirs_sorted.sort_unstable();
                let mut mine_sorted: Vec<EnvelopeId> = mine.iter().map(|item| item.id).collect();
                mine_sorted.sort_unstable();
                for id in &theirs_sorted {
                    if mine_sorted.binary_search(id).is_err() {
                        resolved.request.insert(*id);
                    }
                }
                for id in &mine_sorted {
                    if theirs_sorted.binary_search(id).is_err() {
                        resolved.send.insert(*id);
                    }
                }
            }
            Mode::Diff { have, extra } => {
                if have.len() != mine.len().div_ceil(8) {
                    return Err(ReconcileError::Malformed(
                        "diff bitfield does not match the listed ids",
                    ));
                }
                let spare_bits = have.len() * 8 - mine.len();
                if spare_bits > 0
                    && have
                        .last()
                        .is_some_and(|last| last >> (8 - spare_bits) != 0)
                {
                    return Err(ReconcileError::Malformed("diff bitfield has stray bits"));
                }
                for (i, item) in mine.iter().enumerate() {
                    if have[i / 8] & (1 << (i % 8)) == 0 {
                        resolved.send.insert(item.id);
                    }
                }
                let mut mine_sorted: Vec<EnvelopeId> = mine.iter().map(|item| item.id).collect();
                mine_sorted.sort_unstable();
                for id in extra {
                    if mine_sorted.binary_search(id).is_err() {
                        resolved.request.insert(*id);
                    }
                }
            }
            Mode::Skip | Mode::Fingerprint { .. } => {}
        }
        lower = range.upper;
    }
    Ok(())
}
