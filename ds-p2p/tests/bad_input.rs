//! Bad input from the network: truncated, oversized, replayed, wrong-group, wrong-epoch and
//! garbage envelopes each give an error event and change nothing stored; the group keeps
//! working afterwards.

mod support;

use ds_p2p::engine::{Command, EngineConfig, Event, TieBreak};
use ds_p2p::wire::{Beacon, CommitRef, Envelope, EnvelopeKind, GroupRef, SignedBeacon, WireLimits};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
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

/// The claim the `engine_ingest` fuzz target found forgeable: "the group went on from another
/// commit at the epoch of your Add". Bob was added by alice's commit on epoch 0; a beacon
/// saying so, from a member, makes him mark his join lost.
fn displacing_beacon(net: &Net, group: GroupRef) -> Beacon {
    Beacon {
        epoch: net.status("bob", group).epoch + 1,
        branch_id: [0x50; 16],
        recent_commits: vec![(0, CommitRef([0x42; 32]))],
    }
}

/// A beacon envelope signed with `signer`.
fn signed_beacon(group: GroupRef, beacon: Beacon, signer: &SignatureKeyPair) -> Vec<u8> {
    let signed = SignedBeacon::sign(group, beacon, signer, signer.public()).expect("signs");
    Envelope::new(EnvelopeKind::Beacon, group, signed.encode().unwrap())
        .encode()
        .unwrap()
}

/// `refused`, and the one error names `why`.
fn refused_because(net: &mut Net, group: GroupRef, bytes: &[u8], what: &str, why: &str) {
    let bob = net.index("bob");
    let before = net.nodes[bob].rejections().len();
    refused(net, group, bytes, what);
    let reasons = net.nodes[bob].rejections();
    assert!(
        reasons[before..].iter().any(|r| r.contains(why)),
        "{what}: expected a refusal saying {why:?}, got {:?}",
        &reasons[before..]
    );
}

fn join_lost(net: &Net, name: &str) -> bool {
    net.nodes[net.index(name)]
        .events
        .iter()
        .any(|e| matches!(e, Event::JoinLost { .. }))
}

/// Found by the `engine_ingest` fuzz target (fuzz/): beacons were not authenticated, so
/// anyone who could publish on the group topic could make a joiner mark its join lost
/// (`JoinLost`, its state evicted) although nothing forked. Beacons are now signed by a
/// member: the same claim unsigned (the old format) or signed by a key that is no member's is
/// refused, and bob stays in.
#[test]
fn a_forged_beacon_does_not_mark_a_join_lost() {
    let (mut net, group) = setup();
    let forged = displacing_beacon(&net, group);
    let unsigned = Envelope::new(
        EnvelopeKind::Beacon,
        group,
        identity_tofu::codec::encode(&forged).unwrap(),
    )
    .encode()
    .unwrap();
    refused_because(
        &mut net,
        group,
        &unsigned,
        "unsigned beacon",
        "malformed beacon",
    );
    let stranger = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let bytes = signed_beacon(group, forged, &stranger);
    refused_because(&mut net, group, &bytes, "stranger's beacon", "not a member");
    assert!(
        !join_lost(&net, "bob"),
        "a forged beacon made bob's join lost"
    );
    assert!(
        !net.status("bob", group).evicted,
        "a forged beacon evicted bob"
    );
    still_works(&mut net, group);
}

/// The check above is the signature, not a weaker lost-join rule: the same claim signed by a
/// member (carol) is taken as her word, and bob marks his join lost — what a genuine beacon
/// from a member on a competing branch does (the scenario tests show that with real forks).
#[test]
fn the_same_beacon_signed_by_a_member_is_accepted() {
    let (mut net, group) = setup();
    let claim = displacing_beacon(&net, group);
    let carol = net.index("carol");
    let bytes = signed_beacon(group, claim, &net.nodes[carol].signer);
    net.inject("bob", &bytes);
    assert!(net.nodes[net.index("bob")].rejections().is_empty());
    assert!(join_lost(&net, "bob"), "carol's beacon was not acted on");
    assert!(net.status("bob", group).evicted);
}

/// A member removed before it signs is no longer a member's word, although bob still holds
/// the state before the removal (for the fork window).
#[test]
fn a_beacon_from_a_removed_member_is_refused() {
    let (mut net, group) = setup();
    net.command(
        "alice",
        Command::Remove {
            group,
            member: net.identity("carol"),
        },
    );
    net.deliver_all();
    assert_eq!(net.status("bob", group).members.len(), 2);
    assert!(
        net.status("bob", group).held_states > 1,
        "bob holds the state before"
    );
    let claim = displacing_beacon(&net, group);
    let carol = net.index("carol");
    let bytes = signed_beacon(group, claim, &net.nodes[carol].signer);
    refused_because(
        &mut net,
        group,
        &bytes,
        "removed member",
        "removed on every branch",
    );
    assert!(!join_lost(&net, "bob"));
    say(&mut net, "alice", group, "after the removal");
    net.deliver_all();
    assert_delivered_once(&net, &["bob"], &[("alice", "after the removal".into())]);
}

/// A genuine beacon with any field changed after signing (or moved to another group) is
/// refused; unchanged, it is accepted.
#[test]
fn a_genuine_beacon_with_altered_fields_is_refused() {
    let (mut net, group) = setup();
    net.advance(EngineConfig::default().beacon_interval_ms + 1);
    let genuine = net
        .published_by("carol")
        .into_iter()
        .map(|(_, bytes)| bytes)
        .rfind(|bytes| {
            Envelope::decode(bytes, &WireLimits::default())
                .is_ok_and(|e| e.kind == EnvelopeKind::Beacon)
        })
        .expect("carol sent a beacon");
    let envelope = Envelope::decode(&genuine, &WireLimits::default()).unwrap();
    let signed = SignedBeacon::decode(&envelope.payload).unwrap();
    let rejections = net.nodes[net.index("bob")].rejections().len();
    net.inject("bob", &genuine);
    assert_eq!(net.nodes[net.index("bob")].rejections().len(), rejections);
    type Alteration = Box<dyn Fn(&mut SignedBeacon)>;
    let stranger = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let stranger_key = stranger.public().to_vec();
    let alterations: Vec<(&str, Alteration)> = vec![
        (
            "epoch",
            Box::new(|b: &mut SignedBeacon| b.beacon.epoch += 1),
        ),
        (
            "branch id",
            Box::new(|b: &mut SignedBeacon| b.beacon.branch_id[0] ^= 1),
        ),
        (
            "log entry",
            Box::new(|b: &mut SignedBeacon| {
                b.beacon.recent_commits.push((0, CommitRef([0x42; 32])))
            }),
        ),
        (
            "signature",
            Box::new(|b: &mut SignedBeacon| b.signature[0] ^= 1),
        ),
        (
            "named signer",
            Box::new(move |b: &mut SignedBeacon| b.signer = stranger_key.clone()),
        ),
    ];
    for (what, alter) in alterations {
        let mut altered = signed.clone();
        alter(&mut altered);
        let bytes = Envelope::new(EnvelopeKind::Beacon, group, altered.encode().unwrap())
            .encode()
            .unwrap();
        let why = if what == "named signer" {
            "not a member"
        } else {
            "does not verify"
        };
        refused_because(&mut net, group, &bytes, what, why);
    }
    // Signed for another group, re-labelled for this one.
    let carol = net.index("carol");
    let other = SignedBeacon::sign(
        GroupRef([9; 16]),
        signed.beacon.clone(),
        &net.nodes[carol].signer,
        net.nodes[carol].signer.public(),
    )
    .unwrap();
    let bytes = Envelope::new(EnvelopeKind::Beacon, group, other.encode().unwrap())
        .encode()
        .unwrap();
    refused_because(
        &mut net,
        group,
        &bytes,
        "another group's",
        "does not verify",
    );
    still_works(&mut net, group);
}
