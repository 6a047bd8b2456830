//! The envelope decoder (ds-p2p's wire), the payloads an envelope carries outside MLS
//! (beacons, Welcome bundles), and gossip's pubsub frame around it: what every byte string
//! from the network goes through first.
//!
//! Checks: no panic; whatever decodes encodes again and decodes to the same value.

#![no_main]

use chorus_fuzz::{group::Fixture, seeds};
use ds_p2p::wire::{Envelope, EnvelopeKind, SignedBeacon, WelcomeBundle, WireLimits};
use gossip::net::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        if std::env::var_os(seeds::SEEDS_DIR_VAR).is_some() {
            // Real envelopes, bare and in pubsub frames.
            let envelopes = Fixture::build().envelopes;
            let framed: Vec<Vec<u8>> = envelopes
                .iter()
                .map(|e| frame::encode(1_767_225_600_000, e).expect("a frame encodes"))
                .collect();
            seeds::write(envelopes.iter().chain(framed.iter()));
        }
    },
    |data: &[u8]| {
        let limits = WireLimits::default();
        check_envelope(data, &limits);
        if let Ok(frame) = frame::decode(data, limits.max_envelope_bytes) {
            let again = frame::encode(frame.timestamp_ms, frame.envelope).expect("a decoded frame encodes");
            let decoded = frame::decode(&again, limits.max_envelope_bytes).expect("an encoded frame decodes");
            assert_eq!(decoded, frame, "frame round trip");
            check_envelope(frame.envelope, &limits);
        }
    }
);

fn check_envelope(data: &[u8], limits: &WireLimits) {
    let Ok(envelope) = Envelope::decode(data, limits) else {
        return;
    };
    let again = envelope.encode().expect("a decoded envelope encodes");
    let decoded = Envelope::decode(&again, limits).expect("an encoded envelope decodes");
    assert_eq!(decoded, envelope, "envelope round trip");
    match envelope.kind {
        EnvelopeKind::Beacon => {
            if let Ok(beacon) = SignedBeacon::decode(&envelope.payload) {
                let bytes = beacon.encode().expect("a beacon encodes");
                let decoded = SignedBeacon::decode(&bytes).expect("an encoded beacon decodes");
                assert_eq!(decoded, beacon, "beacon round trip");
            }
        }
        EnvelopeKind::Welcome => {
            if let Ok(bundle) = identity_tofu::codec::decode::<WelcomeBundle>(
                &envelope.payload,
                limits.max_envelope_bytes,
            ) {
                let bytes = identity_tofu::codec::encode(&bundle).expect("a bundle encodes");
                let decoded: WelcomeBundle =
                    identity_tofu::codec::decode(&bytes, limits.max_envelope_bytes)
                        .expect("an encoded bundle decodes");
                assert_eq!(decoded, bundle, "Welcome bundle round trip");
            }
        }
        _ => {}
    }
}
