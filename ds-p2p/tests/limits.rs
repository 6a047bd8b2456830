//! The engine's bounds at work: how late an application message may arrive (openmls's sender
//! ratchet tolerance), how many branch states a member holds (`max_held`), and what a joiner
//! makes of the group's history from before it joined.

mod support;

use ds_p2p::engine::{Command, EngineConfig, Event, TieBreak};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, WireLimits};
use support::net::Net;
use support::scenario::say;

/// A network of `names` with `config`, the first creating a group and inviting the others.
fn group_with(names: &[&str], config: EngineConfig, seed: u64) -> (Net, GroupRef) {
    group_among(names, names.len(), config, seed)
}

/// A network of `nodes` with `config` in which the first `members` of them form a group.
fn group_among(nodes: &[&str], members: usize, config: EngineConfig, seed: u64) -> (Net, GroupRef) {
    let config = EngineConfig {
        // Simulated time starts at a fixed date; keep its KeyPackages valid today.
        key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
        ..config
    };
    let mut net = Net::new(nodes, config, seed);
    net.command(nodes[0], Command::CreateGroup);
    let group = net.group_of(nodes[0]);
    for name in &nodes[1..members] {
        let key_package = net.key_package(name);
        net.command(nodes[0], Command::Invite { group, key_package });
        net.deliver_all();
        net.sync();
    }
    (net, group)
}

/// The application envelopes `name` published, oldest first.
fn applications_of(net: &Net, name: &str) -> Vec<Vec<u8>> {
    net.published_by(name)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .filter(|bytes| {
            Envelope::decode(bytes, &WireLimits::default())
                .is_ok_and(|e| e.kind == EnvelopeKind::Application)
        })
        .collect()
}

/// Alice sends `count` messages while Bob hears nothing; then Bob gets all but the first in
/// order, and the first last, after `count - 1` newer ones of its sender (a message lost on
/// gossip and brought back by anti-entropy long after). Returns Bob's events from then on.
fn first_message_last(config: EngineConfig, count: usize, seed: u64) -> (Net, Vec<Event>) {
    let (mut net, group) = group_with(&["alice", "bob"], config, seed);
    net.partition(&[&["alice"], &["bob"]]);
    for k in 0..count {
        say(&mut net, "alice", group, &format!("message {k}"));
    }
    net.deliver_all();
    net.heal();
    let before = net.nodes[net.index("bob")].events.len();
    let mut messages = applications_of(&net, "alice");
    assert_eq!(messages.len(), count);
    messages.rotate_left(1);
    for bytes in messages {
        net.inject("bob", &bytes);
    }
    let events = net.nodes[net.index("bob")].events[before..].to_vec();
    (net, events)
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
            _ => None,
        })
        .collect()
}

/// openmls keeps 5 past generations per sender by default; a gossip DS delivers further out
/// of order than that, so the engine raises the tolerance. Eight messages, the first arriving
/// after the seven others: all are read (with openmls's default, the first was lost).
#[test]
fn a_message_later_than_openmls_default_tolerance_is_still_read() {
    let (_, events) = first_message_last(EngineConfig::default(), 8, 101);
    let mut got = bodies(&events);
    got.sort();
    let expected: Vec<String> = (0..8).map(|k| format!("message {k}")).collect();
    assert_eq!(got, expected, "events: {events:?}");
}

/// Beyond the tolerance the message cannot be read; the member is told so, naming why,
/// instead of the message vanishing (it used to wait in the buffer without a word).
#[test]
fn a_message_beyond_the_tolerance_is_refused_with_the_reason() {
    let config = EngineConfig {
        out_of_order_tolerance: 3,
        ..EngineConfig::default()
    };
    let (_, events) = first_message_last(config, 6, 102);
    let got = bodies(&events);
    assert_eq!(got.len(), 5, "the five in order are read: {events:?}");
    assert!(!got.contains(&"message 0".to_string()));
    let reasons: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "one refusal, for message 0: {events:?}");
    assert!(
        reasons[0].contains("newer messages of its sender")
            && reasons[0].contains("out-of-order tolerance"),
        "the refusal says why: {}",
        reasons[0]
    );
}

/// `max_held` bounds the held states after every input, not only when a timer fires: a member
/// that catches up on a run of commits, or makes them, never holds more.
#[test]
fn the_bound_on_held_states_holds_after_every_step() {
    let config = EngineConfig {
        max_held: 4,
        ..EngineConfig::default()
    };
    let (mut net, group) = group_with(&["alice", "bob"], config, 103);
    net.partition(&[&["alice"], &["bob"]]);
    for _ in 0..10 {
        net.command("alice", Command::SelfUpdate { group });
        let held = net.status("alice", group).held_states;
        assert!(held <= 4, "alice holds {held} states after her own commit");
    }
    net.deliver_all();
    net.heal();
    let commits = net.published_kind("alice", EnvelopeKind::Handshake);
    let start = net.status("bob", group).epoch;
    for bytes in &commits {
        net.inject("bob", bytes);
        let held = net.status("bob", group).held_states;
        assert!(held <= 4, "bob holds {held} states while catching up");
    }
    let bob = net.status("bob", group);
    assert_eq!(bob.epoch, start + 10, "bob caught up with every commit");
    assert_eq!(
        (bob.branch_id, bob.epoch),
        {
            let alice = net.status("alice", group);
            (alice.branch_id, alice.epoch)
        },
        "on alice's branch"
    );
}

/// A member that joins late and is handed the group's older log by sync sees beacons and
/// commits from before it joined: history it was never part of, not forks beyond the window.
#[test]
fn a_joiner_synced_the_older_log_reports_no_fork() {
    for (k, policy) in TieBreak::ALL.into_iter().enumerate() {
        let config = EngineConfig {
            policy,
            ..EngineConfig::default()
        };
        let (mut net, group) = group_among(&["alice", "bob", "carol"], 2, config, 104 + k as u64);
        // The group lives a while: commits, and beacons at every epoch.
        for round in 0..4 {
            let who = if round % 2 == 0 { "alice" } else { "bob" };
            net.command(who, Command::SelfUpdate { group });
            net.deliver_all();
            net.advance(30_001);
        }
        let key_package = net.key_package("carol");
        net.command("alice", Command::Invite { group, key_package });
        net.deliver_all();
        // Anti-entropy hands carol everything on the group topic, the old log included.
        net.sync();
        net.advance(30_001);
        net.sync();
        let carol = &net.nodes[net.index("carol")];
        let beyond: Vec<&Event> = carol
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::ForkBeyondWindow { .. } | Event::ForkDetected { .. }
                )
            })
            .collect();
        assert!(
            beyond.is_empty(),
            "{}: carol reported {beyond:?}",
            policy.name()
        );
        let (a, c) = (net.status("alice", group), net.status("carol", group));
        assert_eq!((a.branch_id, a.epoch), (c.branch_id, c.epoch));
    }
}
