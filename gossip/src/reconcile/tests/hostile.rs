//! Whatever a peer sends, the answer is a value: an error for anything malformed, never a
//! panic, and never more work or memory than the message size allows.

use rand::Rng;

use super::*;
use crate::codec;
use crate::reconcile::message::{PROTOCOL_VERSION, WireBound, WireMessage, WireMode, WireRange};
use crate::test_support::{rng, seed};

const SALT: [u8; 16] = [7; 16];

fn wire(version: u8, ranges: Vec<WireRange>) -> Vec<u8> {
    codec::encode(&WireMessage {
        version,
        salt: SALT,
        since_ms: 0,
        ranges,
    })
    .unwrap()
}

fn at(timestamp_delta: u64, prefix: &[u8], mode: WireMode) -> WireRange {
    WireRange {
        upper: WireBound::At {
            timestamp_delta,
            prefix: prefix.to_vec(),
        },
        mode,
    }
}

fn end(mode: WireMode) -> WireRange {
    WireRange {
        upper: WireBound::End,
        mode,
    }
}

fn fp() -> WireMode {
    WireMode::Fingerprint {
        count: 3,
        fingerprint: [1; 16],
    }
}

fn responder() -> Responder {
    Responder::new(ReconcileConfig::default()).unwrap()
}

fn some_items(n: usize) -> SortedItems {
    let mut rng = rng(99);
    SortedItems::new(random_items(&mut rng, n, HOUR))
}

/// An initiator that has sent its opening request and awaits a reply.
fn waiting_initiator(items: SortedItems) -> Initiator {
    let mut initiator =
        Initiator::new(items, Session::new(SALT, 0), ReconcileConfig::default()).unwrap();
    initiator.start().unwrap();
    initiator
}

fn malformed(result: Result<impl std::fmt::Debug, ReconcileError>) -> &'static str {
    match result {
        Err(ReconcileError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_well_formed_hand_built_request_is_accepted() {
    // The control for the tests below: the same builders make a valid request.
    let bytes = wire(
        PROTOCOL_VERSION,
        vec![at(10, &[], WireMode::Skip), end(fp())],
    );
    responder().respond(&bytes, &some_items(50)).unwrap();
}

#[test]
fn garbage_bytes_are_errors_never_panics() {
    let seed = seed("garbage_bytes_are_errors_never_panics");
    let mut rng = rng(seed);
    let responder = responder();
    let items = some_items(200);
    for _ in 0..3_000 {
        let len = rng.gen_range(0..400);
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes[..]);
        if rng.gen_bool(0.5) && !bytes.is_empty() {
            bytes[0] = PROTOCOL_VERSION; // get past the version check more often
        }
        // A random string that happens to be a valid message needs the right tags at the
        // right places and exactly the right length: about 1 in 10^10 per try.
        assert!(responder.respond(&bytes, &items).is_err(), "{bytes:?}");
        // A reply must also carry this session's salt.
        let mut initiator = waiting_initiator(items.clone());
        assert!(initiator.handle_reply(&bytes).is_err(), "{bytes:?}");
    }
}

#[test]
fn damaged_valid_messages_are_errors_never_panics() {
    let seed = seed("damaged_valid_messages_are_errors_never_panics");
    let mut rng = rng(seed);
    let config = ReconcileConfig::default();
    let (a, b) = pair(&mut rng, 2_000, 20, 20, HOUR);
    let responder = Responder::new(config.clone()).unwrap();
    let mut initiator = Initiator::new(a.clone(), Session::new(SALT, 0), config.clone()).unwrap();
    let request = initiator.start().unwrap();
    let reply = responder.respond(&request, &b).unwrap();
    for _ in 0..500 {
        for original in [&request, &reply] {
            let mut bytes = original.clone();
            match rng.gen_range(0..3) {
                0 => {
                    let cut = rng.gen_range(0..bytes.len());
                    bytes.truncate(cut);
                    // A truncated message is always incomplete.
                    assert!(responder.respond(&bytes, &b).is_err());
                }
                1 => {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.gen_range(0..8);
                }
                _ => {
                    bytes.push(rng.r#gen());
                    assert!(responder.respond(&bytes, &b).is_err());
                }
            }
            // A flipped bit may still leave a valid message (say, inside a fingerprint);
            // whatever it is, it is answered with a value.
            let _ = responder.respond(&bytes, &b);
            let mut fresh =
                Initiator::new(a.clone(), Session::new(SALT, 0), config.clone()).unwrap();
            fresh.start().unwrap();
            let _ = fresh.handle_reply(&bytes);
        }
    }
}

#[test]
fn oversized_messages_are_refused_before_decoding() {
    let max = ReconcileConfig::default().max_message_bytes;
    let huge = vec![0u8; max + 1];
    assert!(matches!(
        responder().decode_request(&huge),
        Err(ReconcileError::MessageTooLarge { len, .. }) if len == max + 1
    ));
    let mut initiator = waiting_initiator(some_items(10));
    assert!(matches!(
        initiator.handle_reply(&huge),
        Err(ReconcileError::MessageTooLarge { .. })
    ));
}

#[test]
fn ranges_out_of_order_or_not_covering_everything_are_refused() {
    let r = responder();
    let items = some_items(10);
    let cases: Vec<(Vec<WireRange>, &str)> = vec![
        // Same timestamp, prefix going down.
        (
            vec![
                at(5, &[9], WireMode::Skip),
                at(0, &[3], WireMode::Skip),
                end(WireMode::Skip),
            ],
            "ranges out of order or empty",
        ),
        // The same bound twice: an empty range.
        (
            vec![
                at(5, &[1], WireMode::Skip),
                at(0, &[1, 0, 0], WireMode::Skip),
                end(WireMode::Skip),
            ],
            "ranges out of order or empty",
        ),
        // An empty first range (its lower bound is the start).
        (
            vec![at(0, &[], WireMode::Skip), end(WireMode::Skip)],
            "ranges out of order or empty",
        ),
        (
            vec![end(WireMode::Skip), at(5, &[], WireMode::Skip)],
            "a range follows the end",
        ),
        (
            vec![at(5, &[], WireMode::Skip)],
            "ranges do not reach the end",
        ),
        (vec![], "no ranges"),
        (
            vec![at(5, &[0; 33], WireMode::Skip), end(WireMode::Skip)],
            "id prefix longer than 32 bytes",
        ),
        (
            vec![
                at(u64::MAX, &[], WireMode::Skip),
                at(1, &[], WireMode::Skip),
                end(WireMode::Skip),
            ],
            "timestamp overflows",
        ),
        (
            vec![end(WireMode::Diff {
                have: vec![],
                extra: vec![],
            })],
            "diff in a request",
        ),
    ];
    for (ranges, reason) in cases {
        let bytes = wire(PROTOCOL_VERSION, ranges);
        assert_eq!(malformed(r.respond(&bytes, &items)), reason);
    }
}

#[test]
fn other_versions_trailing_bytes_and_too_many_ranges_are_refused() {
    let r = responder();
    let items = some_items(10);
    let bytes = wire(PROTOCOL_VERSION + 1, vec![end(fp())]);
    assert!(matches!(
        r.respond(&bytes, &items),
        Err(ReconcileError::UnsupportedVersion(v)) if v == PROTOCOL_VERSION + 1
    ));
    let mut bytes = wire(PROTOCOL_VERSION, vec![end(fp())]);
    bytes.push(0);
    assert!(matches!(
        r.respond(&bytes, &items),
        Err(ReconcileError::Decode(codec::CodecError::TrailingBytes {
            count: 1
        }))
    ));
    let max = ReconcileConfig::default().max_ranges_per_message;
    let mut ranges: Vec<WireRange> = (0..max).map(|_| at(1, &[], WireMode::Skip)).collect();
    ranges.push(end(WireMode::Skip));
    let bytes = wire(PROTOCOL_VERSION, ranges);
    assert!(matches!(
        r.respond(&bytes, &items),
        Err(ReconcileError::TooManyRanges { count, .. }) if count == max + 1
    ));
}

#[test]
fn a_reply_from_another_session_is_refused() {
    let mut initiator = waiting_initiator(some_items(100));
    let bytes = codec::encode(&WireMessage {
        version: PROTOCOL_VERSION,
        salt: [8; 16],
        since_ms: 0,
        ranges: vec![end(WireMode::Skip)],
    })
    .unwrap();
    assert!(matches!(
        initiator.handle_reply(&bytes),
        Err(ReconcileError::SessionMismatch)
    ));
    // The session is over after an error.
    assert!(matches!(
        initiator.handle_reply(&wire(PROTOCOL_VERSION, vec![end(WireMode::Skip)])),
        Err(ReconcileError::UnexpectedReply)
    ));
}

#[test]
fn a_diff_that_does_not_match_my_ids_is_refused() {
    // 10 items: a diff over the whole range needs exactly 2 bytes, the top 6 bits clear.
    let diff = |have: Vec<u8>| {
        wire(
            PROTOCOL_VERSION,
            vec![end(WireMode::Diff {
                have,
                extra: vec![],
            })],
        )
    };
    let mut initiator = waiting_initiator(some_items(10));
    assert_eq!(
        malformed(initiator.handle_reply(&diff(vec![0xff]))),
        "diff bitfield does not match the listed ids"
    );
    let mut initiator = waiting_initiator(some_items(10));
    assert_eq!(
        malformed(initiator.handle_reply(&diff(vec![0xff, 0b0000_0111]))),
        "diff bitfield has stray bits"
    );
    let mut initiator = waiting_initiator(some_items(10));
    match initiator
        .handle_reply(&diff(vec![0xff, 0b0000_0011]))
        .unwrap()
    {
        Progress::Done(outcome) => assert!(outcome.send.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_responder_that_never_agrees_hits_the_round_limit() {
    let config = ReconcileConfig {
        max_rounds: 20,
        ..ReconcileConfig::default()
    };
    let mut rng = rng(5);
    let mut initiator = Initiator::new(some_items(5_000), Session::new(SALT, 0), config).unwrap();
    initiator.start().unwrap();
    let mut result = Ok(Progress::Continue(Vec::new()));
    for _ in 0..20 {
        // Always "the whole range differs", with a fresh random fingerprint.
        let reply = wire(
            PROTOCOL_VERSION,
            vec![end(WireMode::Fingerprint {
                count: 5_000,
                fingerprint: rng.r#gen(),
            })],
        );
        result = initiator.handle_reply(&reply);
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(ReconcileError::TooManyRounds(20))),
        "{result:?}"
    );
}

#[test]
fn steps_out_of_turn_are_refused() {
    let mut initiator = Initiator::new(
        some_items(5),
        Session::new(SALT, 0),
        ReconcileConfig::default(),
    )
    .unwrap();
    let skip_all = wire(PROTOCOL_VERSION, vec![end(WireMode::Skip)]);
    assert!(matches!(
        initiator.handle_reply(&skip_all),
        Err(ReconcileError::UnexpectedReply)
    ));
    initiator.start().unwrap();
    assert!(initiator.start().is_err());
    assert!(matches!(
        initiator.handle_reply(&skip_all),
        Ok(Progress::Done(_))
    ));
    assert!(matches!(
        initiator.handle_reply(&skip_all),
        Err(ReconcileError::UnexpectedReply)
    ));
}

#[test]
fn a_hostile_id_list_only_costs_what_it_carries() {
    // A reply listing thousands of ids (some mine, some repeated) yields each unknown id
    // once, and nothing I already hold.
    let mine = some_items(100);
    let mut rng = rng(11);
    let mut listed: Vec<EnvelopeId> = (0..5_000).map(|_| random_id(&mut rng)).collect();
    listed.extend(mine.as_slice().iter().map(|i| i.id));
    listed.extend(listed[..1_000].to_vec());
    let reply = wire(
        PROTOCOL_VERSION,
        vec![end(WireMode::IdList { ids: listed })],
    );
    let mut initiator = waiting_initiator(mine);
    match initiator.handle_reply(&reply).unwrap() {
        Progress::Done(outcome) => {
            assert_eq!(outcome.request.len(), 5_000);
            assert!(outcome.send.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_configs_are_refused_by_both_roles() {
    let bad = ReconcileConfig {
        branching: 0,
        ..ReconcileConfig::default()
    };
    assert!(Responder::new(bad.clone()).is_err());
    assert!(Initiator::new(SortedItems::default(), Session::new(SALT, 0), bad).is_err());
}
