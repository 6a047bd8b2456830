//! `/chorus/sync/1`: the codec that reads requests and responses off a peer's stream (length
//! prefix, size limit, bincode body), and the reconciliation messages inside them, handled by
//! a real responder and a real initiator over fixed sets of items.
//!
//! Checks: no panic; decoded messages encode and decode to the same value; a hostile reply
//! never makes the initiator offer an envelope it does not hold.

#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chorus_fuzz::seeds;
use futures::executor::block_on;
use futures::io::Cursor;
use gossip::net::SyncConfig;
use gossip::net::sync::{
    Refusal, SYNC_PROTOCOL, SyncCodec, SyncRequest, SyncResponse, WireEnvelope,
};
use gossip::{
    EnvelopeId, Initiator, Item, Progress, ReconcileConfig, Responder, Session, SortedItems,
};
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

const TOPIC: &str = "chorus/g/00112233445566778899aabbccddeeff";

/// Two overlapping sets of items: the initiator's and the responder's.
struct Sets {
    mine: SortedItems,
    theirs: SortedItems,
    mine_ids: BTreeSet<EnvelopeId>,
}

fn item(n: u32) -> Item {
    Item::new(
        1_767_225_600_000 + u64::from(n) * 1_000,
        EnvelopeId::of(&n.to_le_bytes()),
    )
}

fn sets() -> &'static Sets {
    static SETS: OnceLock<Sets> = OnceLock::new();
    SETS.get_or_init(|| {
        // 0..60 and 20..90: 40 in common, 20 only mine, 30 only theirs.
        let mine: Vec<Item> = (0..60).map(item).collect();
        let theirs: Vec<Item> = (20..90).map(item).collect();
        Sets {
            mine_ids: mine.iter().map(|i| i.id).collect(),
            mine: SortedItems::new(mine),
            theirs: SortedItems::new(theirs),
        }
    })
}

fn session() -> Session {
    Session::new([9; 16], 0)
}

fn codec() -> SyncCodec {
    SyncCodec::new(SyncConfig::default().max_message_bytes)
}

fn protocol() -> StreamProtocol {
    StreamProtocol::new(SYNC_PROTOCOL)
}

fn framed_request(request: SyncRequest) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    block_on(codec().write_request(&protocol(), &mut out, request)).expect("a request encodes");
    out.into_inner()
}

fn framed_response(response: SyncResponse) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    block_on(codec().write_response(&protocol(), &mut out, response)).expect("a response encodes");
    out.into_inner()
}

/// A real session between the two sets, every request and reply in frames.
fn real_exchange() -> Vec<Vec<u8>> {
    let config = ReconcileConfig::default();
    let responder = Responder::new(config.clone()).expect("default config");
    let mut initiator =
        Initiator::new(sets().mine.clone(), session(), config).expect("default config");
    let mut request = initiator.start().expect("a session starts");
    let mut out = Vec::new();
    loop {
        let reply = responder
            .respond(&request, &sets().theirs)
            .expect("a real request");
        out.push(framed_request(SyncRequest::Reconcile {
            topic: TOPIC.into(),
            message: request,
        }));
        out.push(framed_response(SyncResponse::Reconcile {
            message: reply.clone(),
        }));
        match initiator.handle_reply(&reply).expect("a real reply") {
            Progress::Continue(next) => request = next,
            Progress::Done(outcome) => {
                let envelopes: Vec<WireEnvelope> = outcome
                    .send
                    .iter()
                    .take(3)
                    .map(|id| WireEnvelope {
                        timestamp_ms: 1_767_225_600_000,
                        envelope: id.0.to_vec(),
                    })
                    .collect();
                out.push(framed_request(SyncRequest::Fetch {
                    topic: TOPIC.into(),
                    ids: outcome.request,
                }));
                out.push(framed_request(SyncRequest::Push {
                    topic: TOPIC.into(),
                    envelopes: envelopes.clone(),
                }));
                out.push(framed_response(SyncResponse::Envelopes { envelopes }));
                out.push(framed_response(SyncResponse::Pushed { stored: 3 }));
                for refusal in [
                    Refusal::NotSubscribed,
                    Refusal::BadRequest,
                    Refusal::Unavailable,
                ] {
                    out.push(framed_response(SyncResponse::Refused(refusal)));
                }
                return out;
            }
        }
    }
}

fuzz_target!(
    init: {
        seeds::write(real_exchange());
    },
    |data: &[u8]| {
        let mut codec = codec();
        if let Ok(request) = block_on(codec.read_request(&protocol(), &mut Cursor::new(data))) {
            let again = framed_request(request.clone());
            let decoded = block_on(codec.read_request(&protocol(), &mut Cursor::new(&again)))
                .expect("an encoded request decodes");
            assert_eq!(decoded, request, "request round trip");
            if let SyncRequest::Reconcile { message, .. } = &request {
                let responder = Responder::new(ReconcileConfig::default()).expect("default config");
                let _ = responder.respond(message, &sets().theirs);
            }
        }
        if let Ok(response) = block_on(codec.read_response(&protocol(), &mut Cursor::new(data))) {
            let again = framed_response(response.clone());
            let decoded = block_on(codec.read_response(&protocol(), &mut Cursor::new(&again)))
                .expect("an encoded response decodes");
            assert_eq!(decoded, response, "response round trip");
            if let SyncResponse::Reconcile { message } = &response {
                let mut initiator = Initiator::new(sets().mine.clone(), session(), ReconcileConfig::default())
                    .expect("default config");
                initiator.start().expect("a session starts");
                if let Ok(Progress::Done(outcome)) = initiator.handle_reply(message) {
                    for id in &outcome.send {
                        assert!(sets().mine_ids.contains(id), "offered an envelope it does not hold");
                    }
                }
            }
        }
    }
);
