//! The engine's ingestion of a received envelope, on a real three-member group (real MLS
//! crypto): every input goes to a fresh copy of member bob as an envelope from the network.
//!
//! Checks (chorus_fuzz::group): no panic, no forged delivery, and bob still works afterwards
//! (a valid message sent after the snapshot is delivered exactly once).

#![no_main]

use std::sync::OnceLock;

use chorus_fuzz::group::Fixture;
use chorus_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(Fixture::build)
}

fuzz_target!(
    init: {
        let fixture = fixture();
        seeds::write(&fixture.envelopes);
        // The checks must hold for every real envelope, or they would flag the engine's
        // normal behaviour as a crash.
        for envelope in &fixture.envelopes {
            fixture.ingest(envelope);
        }
    },
    |data: &[u8]| {
        fixture().ingest(data);
    }
);
