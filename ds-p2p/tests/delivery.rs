//! `EngineConfig::confirm_delivery`: a message the engine read stays in its store until the
//! embedder confirms it has its own copy, so that a crash between the engine's step and the
//! embedder's history write loses nothing (the engine never reads a message twice).

mod support;

use ds_p2p::engine::{Command, EngineConfig, Event, TieBreak};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, MessageId, WireLimits};
use support::net::Net;
use support::scenario::{group_of, say};

fn config(confirm_delivery: bool) -> EngineConfig {
    EngineConfig {
        confirm_delivery,
        // Simulated time starts at a fixed date; keep its KeyPackages valid today.
        key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
        ..EngineConfig::default()
    }
}

fn pair(confirm_delivery: bool) -> (Net, GroupRef) {
    let mut net = Net::new(&["ann", "ben"], config(confirm_delivery), 7);
    net.command("ann", Command::CreateGroup);
    let group = net.group_of("ann");
    let key_package = net.key_package("ben");
    net.command("ann", Command::Invite { group, key_package });
    net.deliver_all();
    net.sync();
    (net, group)
}

fn messages(events: &[Event]) -> Vec<(GroupRef, MessageId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                group, id, body, ..
            } => Some((*group, *id, body.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_read_message_is_kept_until_confirmed_and_survives_in_the_store() {
    let (mut net, group) = pair(true);
    say(&mut net, "ann", group, "first");
    say(&mut net, "ann", group, "second");
    net.deliver_all();
    let ben = net.index("ben");
    let delivered = messages(&net.nodes[ben].events);
    assert_eq!(delivered.len(), 2, "ben read both");

    // Not confirmed: both are handed back, as the events they were (oldest send time
    // first; these two were sent in the same millisecond).
    let mut kept = messages(&net.nodes[ben].engine.undelivered().unwrap());
    let mut expected = delivered.clone();
    kept.sort();
    expected.sort();
    assert_eq!(kept, expected);
    // The sender keeps its own two as well, for its history (written after the send's step).
    let ann = net.index("ann");
    assert_eq!(net.nodes[ann].engine.undelivered().unwrap().len(), 2);

    // What is kept lives in the store: a restarted engine over it would find it.
    let stored_keys = net
        .stored("ben")
        .into_iter()
        .filter(|(k, _)| k.first() == Some(&b'u'))
        .count();
    assert_eq!(stored_keys, 2);

    let (g, first, _) = delivered[0].clone();
    net.nodes[ben]
        .engine
        .confirm_delivered(&[(g, first)])
        .unwrap();
    let kept = messages(&net.nodes[ben].engine.undelivered().unwrap());
    assert_eq!(
        kept,
        delivered[1..].to_vec(),
        "only the unconfirmed one is left"
    );
    let (g, second, _) = delivered[1].clone();
    net.nodes[ben]
        .engine
        .confirm_delivered(&[(g, second)])
        .unwrap();
    assert!(net.nodes[ben].engine.undelivered().unwrap().is_empty());
}

#[test]
fn without_the_option_nothing_is_kept() {
    let (mut net, group) = pair(false);
    say(&mut net, "ann", group, "hello");
    net.deliver_all();
    let ben = net.index("ben");
    assert_eq!(messages(&net.nodes[ben].events).len(), 1);
    assert!(net.nodes[ben].engine.undelivered().unwrap().is_empty());
}

#[test]
fn a_message_read_again_is_not_kept_again() {
    let (mut net, group) = pair(true);
    say(&mut net, "ann", group, "once");
    net.deliver_all();
    let ben = net.index("ben");
    let delivered = messages(&net.nodes[ben].events);
    let (g, id, _) = delivered[0].clone();
    net.nodes[ben].engine.confirm_delivered(&[(g, id)]).unwrap();
    // The same envelope again (a replay of the log at start, a duplicate from the network).
    let envelope = net
        .published_by("ann")
        .into_iter()
        .map(|(_, bytes)| bytes)
        .rfind(|bytes| {
            Envelope::decode(bytes, &WireLimits::default())
                .is_ok_and(|e| e.kind == EnvelopeKind::Application)
        })
        .expect("ann published her message");
    net.inject("ben", &envelope);
    assert!(net.nodes[ben].engine.undelivered().unwrap().is_empty());
    assert_eq!(messages(&net.nodes[ben].events).len(), 1, "read once");
}

/// `Engine::send_many`: a batch of sends goes out as one envelope (one MLS message), and
/// every member reads each message of it once, with its own id, in the order sent; a lone
/// send is a plain message, as `send` makes it.
#[test]
fn a_batch_of_sends_is_one_envelope_and_every_message_of_it_is_read() {
    let (mut net, group) = pair(false);
    let ann = net.index("ann");
    let before = net.published_by("ann").len();
    let bodies: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("batched {i}").into_bytes())
        .collect();
    let now = net.now;
    let ids = net.nodes[ann]
        .engine
        .send_many(now, group, bodies.clone())
        .expect("sent");
    net.collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        5,
        "every message has an id of its own"
    );
    let published = net.published_by("ann");
    assert_eq!(published.len() - before, 1, "one envelope for the batch");
    net.deliver_all();
    let ben = net.index("ben");
    let read: Vec<(MessageId, Vec<u8>)> = messages(&net.nodes[ben].events)
        .into_iter()
        .map(|(_, id, body)| (id, body))
        .collect();
    let sent: Vec<(MessageId, Vec<u8>)> = ids.iter().copied().zip(bodies).collect();
    assert_eq!(read, sent, "each read once, in order, under its id");

    // Read again (a duplicate from the network): nothing new.
    let (_, bundle) = published.last().expect("published").clone();
    net.inject("ben", &bundle);
    assert_eq!(messages(&net.nodes[ben].events).len(), 5);

    // One body: a plain message.
    let now = net.now;
    let lone = net.nodes[ann]
        .engine
        .send_many(now, group, vec![b"alone".to_vec()])
        .expect("sent");
    net.collect();
    net.deliver_all();
    assert_eq!(lone.len(), 1);
    let last = messages(&net.nodes[ben].events).pop().expect("read");
    assert_eq!((last.1, last.2), (lone[0], b"alone".to_vec()));

    // A body over the limit refuses the whole batch: nothing goes out.
    let published_now = net.published_by("ann").len();
    let too_big = vec![0u8; WireLimits::default().max_body_bytes + 1];
    let now = net.now;
    let refused = net.nodes[ann]
        .engine
        .send_many(now, group, vec![b"fine".to_vec(), too_big]);
    assert!(refused.is_err());
    net.collect();
    assert_eq!(net.published_by("ann").len(), published_now);
}

/// The kind of a published envelope.
fn kind_of(bytes: &[u8]) -> Option<EnvelopeKind> {
    Envelope::decode(bytes, &WireLimits::default())
        .ok()
        .map(|e| e.kind)
}

/// A message sent on the other branch of a fork reaches a member before the commit that
/// made that branch: no held state reads it, so it waits — and is read as soon as that
/// commit gives the member a state at the message's epoch (`Retry::OnNewStateAt`), not at
/// the next heal or re-send.
#[test]
fn a_message_from_the_other_branch_waits_for_its_commit_and_is_read_then() {
    let (mut net, group) = group_of(&["ann", "ben", "cat"], TieBreak::LowestRef, 11);
    let epoch = net.status("cat", group).epoch;

    // ann and cat on one side, ben alone: both sides commit on the same epoch.
    net.partition(&[&["ann", "cat"], &["ben"]]);
    net.command("ann", Command::SelfUpdate { group });
    net.deliver_all();
    assert_eq!(
        net.status("cat", group).epoch,
        epoch + 1,
        "cat took ann's commit"
    );
    let before = net.published_by("ben").len();
    net.command("ben", Command::SelfUpdate { group });
    say(&mut net, "ben", group, "from ben's branch");
    let ben_out: Vec<Vec<u8>> = net.published_by("ben")[before..]
        .iter()
        .map(|(_, bytes)| bytes.clone())
        .collect();
    let commit = ben_out
        .iter()
        .find(|b| kind_of(b) == Some(EnvelopeKind::Handshake))
        .expect("ben's commit")
        .clone();
    let message = ben_out
        .iter()
        .find(|b| kind_of(b) == Some(EnvelopeKind::Application))
        .expect("ben's message")
        .clone();

    let cat = net.index("cat");
    let read = |net: &Net| {
        messages(&net.nodes[cat].events)
            .iter()
            .any(|(_, _, body)| body == b"from ben's branch")
    };
    net.inject("cat", &message);
    assert!(!read(&net), "no state cat holds reads it yet");
    net.inject("cat", &commit);
    assert!(
        read(&net),
        "read once ben's commit gave cat a state at its epoch"
    );
}
