//! The sync protocol without a network: an initiator session against the responder, with the
//! messages handed over in memory (and through the wire codec's encoding), so that batching,
//! convergence and hostile replies are checked exactly.

use std::collections::BTreeSet;

use identity_tofu::kv::MemoryStore;
use libp2p::PeerId;

use super::serve::{ServeContext, serve};
use super::session::{Next, Outgoing, SyncError};
use super::wire::{Refusal, SyncRequest, SyncResponse, WireEnvelope};
use crate::codec;
use crate::envelope_id::EnvelopeId;
use crate::log::{Log, LogConfig};
use crate::net::admit::{Admission, admit};
use crate::net::config::{SYNC_OVERHEAD_BYTES, SyncConfig};
use crate::reconcile::Responder;
use crate::topic::Topic;

const NOW: u64 = 1_700_000_000_000;

fn topic() -> Topic {
    Topic::new("chorus/g/test").unwrap()
}

fn accept_all(_: &Topic, _: &[u8]) -> bool {
    true
}

fn log_with(envelopes: &[String]) -> Log<MemoryStore> {
    let mut log = Log::open(MemoryStore::new(), LogConfig::default()).unwrap();
    for (i, envelope) in envelopes.iter().enumerate() {
        let _ = log
            .append(&topic(), envelope.as_bytes(), NOW - 1000 + i as u64)
            .unwrap();
    }
    log
}

fn envelopes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} #{i}")).collect()
}

/// Runs a whole session: `mine` initiates against `theirs`. Every message goes through the
/// bincode encoding, as on the wire. Returns the summary or the error that ended it.
fn run(
    mine: &mut Log<MemoryStore>,
    theirs: &mut Log<MemoryStore>,
    config: &SyncConfig,
) -> Result<super::SyncSummary, SyncError> {
    let responder = Responder::new(config.reconcile.clone()).unwrap();
    let subscribed: BTreeSet<Topic> = [topic()].into();
    let (mut session, mut request) =
        Outgoing::open(topic(), PeerId::random(), mine, config, [7; 16], 0)?;
    loop {
        let received = codec::decode(&codec::encode(&request).unwrap(), usize::MAX).unwrap();
        let mut ctx = ServeContext {
            log: &mut *theirs,
            validator: &accept_all,
            responder: &responder,
            config,
            subscribed: &subscribed,
            now_ms: NOW,
        };
        let (response, _) = serve(&mut ctx, received);
        let response = codec::decode(&codec::encode(&response).unwrap(), usize::MAX).unwrap();
        let fetched = session.handle(response, &|_| false)?;
        let mut stored = 0;
        for WireEnvelope {
            timestamp_ms,
            envelope,
        } in fetched
        {
            if let Admission::Stored { .. } =
                admit(mine, &accept_all, &topic(), &envelope, timestamp_ms, NOW)
            {
                stored += 1;
            }
        }
        session.count_pulled(stored);
        match session.next(mine, config)? {
            Next::Send(next) => request = next,
            Next::Done(summary) => return Ok(summary),
        }
    }
}

fn ids(log: &Log<MemoryStore>) -> BTreeSet<EnvelopeId> {
    log.items_since(&topic(), 0)
        .unwrap()
        .as_slice()
        .iter()
        .map(|item| item.id)
        .collect()
}

/// Both sides end with the union, in batches no larger than the limits allow, and the
/// pulled envelopes keep the serving side's timestamps (so the logs agree item for item).
#[test]
fn a_session_converges_both_ways_in_batches() {
    let shared = envelopes("shared", 20);
    let mut mine = log_with(&[shared.clone(), envelopes("mine", 7)].concat());
    let mut theirs = log_with(&[shared, envelopes("theirs", 11)].concat());
    let config = SyncConfig {
        max_fetch_ids: 2,
        // Room for one small envelope per message: every push and every fetch reply is
        // split, and the ids a full fetch reply left out are asked again.
        max_message_bytes: SYNC_OVERHEAD_BYTES + 40,
        ..SyncConfig::default()
    };
    let summary = run(&mut mine, &mut theirs, &config).unwrap();
    assert_eq!(summary.pulled, 11);
    assert_eq!(summary.pushed, 7);
    assert_eq!(ids(&mine), ids(&theirs));
    assert_eq!(
        mine.items_since(&topic(), 0).unwrap(),
        theirs.items_since(&topic(), 0).unwrap()
    );

    // Nothing left to do the second time.
    let again = run(&mut mine, &mut theirs, &config).unwrap();
    assert_eq!((again.pulled, again.pushed), (0, 0));
}

#[test]
fn unsubscribed_topics_are_refused() {
    let config = SyncConfig::default();
    let responder = Responder::new(config.reconcile.clone()).unwrap();
    let mut theirs = log_with(&envelopes("theirs", 3));
    let mut ctx = ServeContext {
        log: &mut theirs,
        validator: &accept_all,
        responder: &responder,
        config: &config,
        subscribed: &BTreeSet::new(),
        now_ms: NOW,
    };
    let request = SyncRequest::Fetch {
        topic: topic().as_str().into(),
        ids: vec![EnvelopeId::of(b"theirs #0")],
    };
    let (response, _) = serve(&mut ctx, request);
    assert_eq!(response, SyncResponse::Refused(Refusal::NotSubscribed));
}

#[test]
fn oversized_fetches_and_bad_topics_are_bad_requests() {
    let config = SyncConfig {
        max_fetch_ids: 2,
        ..SyncConfig::default()
    };
    let responder = Responder::new(config.reconcile.clone()).unwrap();
    let mut theirs = log_with(&[]);
    let subscribed: BTreeSet<Topic> = [topic()].into();
    let mut ctx = ServeContext {
        log: &mut theirs,
        validator: &accept_all,
        responder: &responder,
        config: &config,
        subscribed: &subscribed,
        now_ms: NOW,
    };
    let too_many = SyncRequest::Fetch {
        topic: topic().as_str().into(),
        ids: vec![EnvelopeId([1; 32]); 3],
    };
    assert_eq!(
        serve(&mut ctx, too_many).0,
        SyncResponse::Refused(Refusal::BadRequest)
    );
    let bad_topic = SyncRequest::Reconcile {
        topic: "no spaces allowed".into(),
        message: vec![1, 2, 3],
    };
    assert_eq!(
        serve(&mut ctx, bad_topic).0,
        SyncResponse::Refused(Refusal::BadRequest)
    );
    let garbage = SyncRequest::Reconcile {
        topic: topic().as_str().into(),
        message: vec![0xff; 40],
    };
    assert_eq!(
        serve(&mut ctx, garbage).0,
        SyncResponse::Refused(Refusal::BadRequest)
    );
}

/// A responder that sends envelopes nobody asked for, or answers out of turn, ends the
/// session with an error; nothing it sent is handed over for admission.
#[test]
fn hostile_responses_end_the_session() {
    let config = SyncConfig::default();
    let mine = log_with(&envelopes("mine", 1));
    let (mut session, _) =
        Outgoing::open(topic(), PeerId::random(), &mine, &config, [1; 16], 0).unwrap();
    // Out of turn: envelopes in answer to a reconciliation request.
    let unasked = SyncResponse::Envelopes {
        envelopes: vec![WireEnvelope {
            timestamp_ms: NOW,
            envelope: b"planted".to_vec(),
        }],
    };
    assert!(matches!(
        session.handle(unasked.clone(), &|_| false),
        Err(SyncError::Protocol(_))
    ));

    // Unasked envelopes in answer to a fetch.
    let mut theirs = log_with(&envelopes("theirs", 1));
    let (mut session, request) =
        Outgoing::open(topic(), PeerId::random(), &mine, &config, [2; 16], 0).unwrap();
    let responder = Responder::new(config.reconcile.clone()).unwrap();
    let subscribed: BTreeSet<Topic> = [topic()].into();
    let mut ctx = ServeContext {
        log: &mut theirs,
        validator: &accept_all,
        responder: &responder,
        config: &config,
        subscribed: &subscribed,
        now_ms: NOW,
    };
    let (reply, _) = serve(&mut ctx, request);
    assert!(session.handle(reply, &|_| false).unwrap().is_empty());
    assert!(matches!(
        session.next(&mine, &config).unwrap(),
        Next::Send(SyncRequest::Fetch { .. })
    ));
    assert!(matches!(
        session.handle(unasked, &|_| false),
        Err(SyncError::Protocol(_))
    ));
    assert!(!mine.has(&topic(), &EnvelopeId::of(b"planted")).unwrap());
}
