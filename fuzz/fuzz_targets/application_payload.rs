//! The application-payload decoder: the plaintext inside an MLS application message. Only
//! members can make one, but a member's client may be hostile or buggy.
//!
//! Checks: no panic; whatever decodes encodes again and decodes to the same value; a body
//! over the limit never decodes. The same for a redelivery (several payloads in one message),
//! read as carrying the ids it decodes with, and as carrying the authenticated data the
//! input's first bytes would be.

#![no_main]

use chorus_fuzz::seeds;
use ds_p2p::wire::{ApplicationPayload, CarriedIds, MessageId, Redelivery, WireLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let payloads = [
            ApplicationPayload { id: MessageId([1; 16]), sent_at_ms: 1_767_225_600_000, body: b"hello".to_vec() },
            ApplicationPayload { id: MessageId([0; 16]), sent_at_ms: 0, body: Vec::new() },
            ApplicationPayload { id: MessageId([0xff; 16]), sent_at_ms: u64::MAX, body: "héllo wörld ✓".as_bytes().to_vec() },
            ApplicationPayload { id: MessageId([7; 16]), sent_at_ms: 300, body: vec![0xab; 600] },
        ];
        let redelivery = Redelivery { messages: payloads.to_vec() };
        seeds::write(
            payloads
                .iter()
                .map(|p| p.encode().expect("a payload encodes"))
                .chain([redelivery.encode().expect("a redelivery encodes")]),
        );
    },
    |data: &[u8]| {
        // A small limit too, so the fuzzer reaches the limit check with short inputs.
        for limits in [WireLimits::default(), WireLimits { max_body_bytes: 16, ..WireLimits::default() }] {
            if let Some(carried) = CarriedIds::parse(data.get(..data.len().min(1 + 16 * 4)).unwrap_or_default()) {
                let _ = Redelivery::decode(data, &limits, carried.ids());
            }
            if let Ok(bundle) = Redelivery::decode(data, &limits, &ids_of(data, &limits)) {
                assert!(bundle.messages.iter().all(|m| m.body.len() <= limits.max_body_bytes), "a body over the limit decoded");
                let again = bundle.encode().expect("a decoded redelivery encodes");
                let carried = CarriedIds::parse(&bundle.aad());
                if let Some(carried) = carried {
                    let decoded = Redelivery::decode(&again, &limits, carried.ids()).expect("an encoded redelivery decodes");
                    assert_eq!(decoded, bundle, "redelivery round trip");
                }
            }
            let Ok(payload) = ApplicationPayload::decode(data, &limits) else {
                continue;
            };
            assert!(payload.body.len() <= limits.max_body_bytes, "a body over the limit decoded");
            let again = payload.encode().expect("a decoded payload encodes");
            let decoded = ApplicationPayload::decode(&again, &limits).expect("an encoded payload decodes");
            assert_eq!(decoded, payload, "payload round trip");
        }
    }
);

/// The ids a redelivery in `data` carries, if it decodes at all (so the id check passes and
/// the fuzzer reaches what comes after it).
fn ids_of(data: &[u8], limits: &WireLimits) -> Vec<MessageId> {
    identity_tofu::codec::decode::<Redelivery>(data, limits.max_envelope_bytes)
        .map(|r| r.messages.iter().map(|m| m.id).collect())
        .unwrap_or_default()
}
