//! Bad input from the network: truncated, oversized, replayed, wrong-group, wrong-epoch and
//! garbage envelopes each give an error event and change nothing stored; the group keeps
//! working afterwards.

mod support;

use ds_p2p::engine::{Command, Event, TieBreak};
use ds_p2p::wire::{Beacon, CommitRef, Envelope, EnvelopeKind, WireLimits};
use support::net::Net;
use support::scenario::*;

/// Feeds `bytes` to bob and checks: exactly one error event, nothing stored changed, the
/// active state is unchanged.
fn refused(net: &mut Net, group: ds_p2p::wire::GroupRef, bytes: &[u8], what: &str) {
    let before = net.stored("bob");
    let status = net.status("bob", group);
    let bob = net.index("bob");
    let events_before = net.nodes[bob].events.len();
    net.inject("bob", bytes);
    let new_events = &net.nodes[bob].events[events_before..];
    assert!(
        matches!(
            new_events,
            [Event::Rejected { .. }] | [Event::InvalidCredential { .. }]
        ),
        "{what}: expected one error event, got {new_events:?}"
    );
    assert_eq!(
        net.status("bob", group),
        status,
        "{what}: the group changed"
    );
    assert!(net.stored("bob") == before, "{what}: stored state changed");
}

fn setup() -> (Net, ds_p2p::wire::GroupRef) {
    group_of(&["alice", "bob", "carol"], TieBreak::LowestRef, 7)
}

/// The still-working check at the end of each test.
fn still_works(net: &mut Net, group: ds_p2p::wire::GroupRef) {
    say(net, "alice", group, "still fine");
    net.deliver_all();
    assert_delivered_once(net, &["bob", "carol"], &[("alice", "still fine".into())]);
}

fn last_application(net: &Net, name: &str) -> Vec<u8> {
    net.published_by(name)
        .into_iter()
        .rev()
        .map(|(_, bytes)| bytes)
        .find(|bytes| {
            Envelope::decode(bytes, &WireLimits::default())
                .is_ok_and(|e| e.kind == EnvelopeKind::Application)
        })
        .expect("an application message was published")
}

#[test]
fn garbage_and_truncated_envelopes_are_refused() {
    let (mut net, group) = setup();
    say(&mut net, "alice", group, "hello");
    net.drop_in_flight();
    let good = last_application(&net, "alice");
    refused(&mut net, group, b"", "empty");
    refused(&mut net, group, b"\xff\xfe garbage \x00\x01", "garbage");
    for cut in [1, good.len() / 2, good.len() - 1] {
        refused(
            &mut net,
            group,
            &good[..cut],
            &format!("truncated to {cut}"),
        );
    }
    // A valid envelope around a payload that is not MLS.
    let junk = Envelope::new(EnvelopeKind::Application, group, vec![7; 100])
        .encode()
        .unwrap();
    refused(&mut net, group, &junk, "non-MLS payload");
    // The intact message is still accepted after all that.
    net.inject("bob", &good);
    assert_delivered_once(&net, &["bob"], &[("alice", "hello".into())]);
    still_works(&mut net, group);
}

#[test]
fn oversized_envelopes_are_refused_before_decoding() {
    let (mut net, group) = setup();
    let huge = Envelope::new(
        EnvelopeKind::Application,
        group,
        vec![0; WireLimits::default().max_envelope_bytes + 1],
    );
    // Built by hand: the encoder itself refuses to make it.
    let mut bytes = vec![0u8; WireLimits::default().max_envelope_bytes + 64];
    bytes[0] = huge.version;
    refused(&mut net, group, &bytes, "oversized");
    still_works(&mut net, group);
}

#[test]
fn a_replayed_message_is_refused_and_not_delivered_twice() {
    let (mut net, group) = setup();
    say(&mut net, "alice", group, "only once");
    net.deliver_all();
    assert_delivered_once(&net, &["bob"], &[("alice", "only once".into())]);
    let good = last_application(&net, "alice");
    refused(&mut net, group, &good, "replay");
    assert_delivered_once(&net, &["bob"], &[("alice", "only once".into())]);
    still_works(&mut net, group);
}

#[test]
fn an_envelope_for_another_group_is_refused() {
    let (mut net, group) = setup();
    // Carol makes a second group with alice only; its messages re-labelled for the first.
    net.command("carol", Command::CreateGroup);
    let other = net.nodes[net.index("carol")]
        .engine
        .groups()
        .find(|g| *g != group)
        .unwrap();
    say(&mut net, "carol", other, "elsewhere");
    net.drop_in_flight();
    let bytes = last_application(&net, "carol");
    let mut envelope = Envelope::decode(&bytes, &WireLimits::default()).unwrap();
    envelope.group_ref = group;
    refused(&mut net, group, &envelope.encode().unwrap(), "wrong group");
    // And one for a group bob is not in at all.
    refused(&mut net, group, &bytes, "unknown group");
    still_works(&mut net, group);
}

#[test]
fn a_message_from_a_pruned_epoch_is_refused() {
    let (mut net, group) = setup();
    say(&mut net, "alice", group, "from long ago");
    net.drop_in_flight();
    let old = last_application(&net, "alice");
    for _ in 0..10 {
        net.command("carol", Command::SelfUpdate { group });
        net.deliver_all();
    }
    settle(&mut net);
    refused(&mut net, group, &old, "wrong epoch");
    still_works(&mut net, group);
}

/// Known issue, found by the `engine_ingest` fuzz target (fuzz/): beacons are not
/// authenticated, so anyone who can publish on the group topic can forge one showing "another
/// commit at the epoch of your Add". Bob then marks his join lost (`JoinLost`, his state
/// evicted) although nothing forked. Fixing it needs signed beacons (checked against the
/// members of a held state); until then this test is ignored. `cargo test --test bad_input --
/// --ignored` shows it failing.
#[test]
#[ignore = "known issue: beacons are unauthenticated; a forged one marks a join lost"]
fn a_forged_beacon_does_not_mark_a_join_lost() {
    let (mut net, group) = setup();
    let epoch = net.status("bob", group).epoch;
    // Bob was added by alice's commit on epoch 0; the forger claims another commit there.
    let forged = Beacon {
        epoch: epoch + 1,
        branch_id: [0x50; 16],
        recent_commits: vec![(0, CommitRef([0x42; 32]))],
    };
    let payload = identity_tofu::codec::encode(&forged).unwrap();
    let bytes = Envelope::new(EnvelopeKind::Beacon, group, payload)
        .encode()
        .unwrap();
    net.inject("bob", &bytes);
    let bob = net.index("bob");
    assert!(
        !net.nodes[bob]
            .events
            .iter()
            .any(|e| matches!(e, Event::JoinLost { .. })),
        "a forged beacon made bob's join lost"
    );
    assert!(
        !net.status("bob", group).evicted,
        "a forged beacon evicted bob"
    );
    still_works(&mut net, group);
}
