//! The application-payload decoder: the plaintext inside an MLS application message. Only
//! members can make one, but a member's client may be hostile or buggy.
//!
//! Checks: no panic; whatever decodes encodes again and decodes to the same value; a body
//! over the limit never decodes.

#![no_main]

use chorus_fuzz::seeds;
use ds_p2p::wire::{ApplicationPayload, MessageId, WireLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let payloads = [
            ApplicationPayload { id: MessageId([1; 16]), sent_at_ms: 1_767_225_600_000, body: b"hello".to_vec() },
            ApplicationPayload { id: MessageId([0; 16]), sent_at_ms: 0, body: Vec::new() },
            ApplicationPayload { id: MessageId([0xff; 16]), sent_at_ms: u64::MAX, body: "héllo wörld ✓".as_bytes().to_vec() },
            ApplicationPayload { id: MessageId([7; 16]), sent_at_ms: 300, body: vec![0xab; 600] },
        ];
        seeds::write(payloads.iter().map(|p| p.encode().expect("a payload encodes")));
    },
    |data: &[u8]| {
        // A small limit too, so the fuzzer reaches the limit check with short inputs.
        for limits in [WireLimits::default(), WireLimits { max_body_bytes: 16, ..WireLimits::default() }] {
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
