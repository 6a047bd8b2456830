//! `EngineConfig::confirm_publish`: an envelope the engine queued stays in its store until
//! the embedder confirms it sent it, so that a process killed between the engine's step and
//! its publishing does not come back in a state no one else will ever hear of (an own commit
//! that wins the tie-break on its side only: the crash test's split).

mod support;

use ds_p2p::engine::{Command, EngineConfig, Event, Output};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, WireLimits};
use support::net::Net;
use support::scenario::say;

fn config(confirm: bool) -> EngineConfig {
    EngineConfig {
        confirm_delivery: confirm,
        confirm_publish: confirm,
        // Simulated time starts at a fixed date; keep its KeyPackages valid today.
        key_package_lifetime_ms: 100 * 365 * 24 * 3600 * 1000,
        ..EngineConfig::default()
    }
}

fn pair(confirm: bool) -> (Net, GroupRef) {
    let mut net = Net::new(&["ann", "ben"], config(confirm), 7);
    net.command("ann", Command::CreateGroup);
    let group = net.group_of("ann");
    let key_package = net.key_package("ben");
    net.command("ann", Command::Invite { group, key_package });
    net.deliver_all();
    net.sync();
    for name in ["ann", "ben"] {
        let i = net.index(name);
        net.nodes[i].engine.confirm_published().unwrap();
        net.nodes[i].engine.take_unpublished().unwrap();
        net.nodes[i].engine.confirm_published().unwrap();
    }
    (net, group)
}

/// Ann commits and the process dies before the envelope leaves: the step stored her new
/// epoch, the queued outputs are gone with the process.
fn commit_then_die(net: &mut Net, group: GroupRef) {
    let ann = net.index("ann");
    let now = 1_000;
    net.nodes[ann]
        .engine
        .handle_command(now, Command::SelfUpdate { group });
    net.restart("ann");
}

#[test]
fn a_commit_whose_envelope_never_left_is_sent_after_a_restart() {
    let (mut net, group) = pair(true);
    let before = net.status("ben", group).epoch;
    commit_then_die(&mut net, group);
    let ann = net.index("ann");
    assert_eq!(
        net.status("ann", group).epoch,
        before + 1,
        "the step is stored"
    );

    let unsent = net.nodes[ann].engine.take_unpublished().unwrap();
    assert_eq!(unsent.len(), 1, "the commit is kept: {unsent:?}");
    let (topic, envelope) = &unsent[0];
    assert_eq!(topic, &group.topic());
    let kind = Envelope::decode(envelope, &WireLimits::default()).map(|e| e.kind);
    assert_eq!(kind.ok(), Some(EnvelopeKind::Handshake));
    net.inject("ben", envelope);
    let (a, b) = (net.status("ann", group), net.status("ben", group));
    assert_eq!(
        (b.epoch, b.branch_id),
        (a.epoch, a.branch_id),
        "ben follows ann"
    );

    // Sent and confirmed: a further restart finds nothing to send.
    net.nodes[ann].engine.confirm_published().unwrap();
    net.restart("ann");
    assert!(net.nodes[ann].engine.take_unpublished().unwrap().is_empty());
}

#[test]
fn without_the_option_the_commit_is_lost_and_the_member_is_left_alone() {
    let (mut net, group) = pair(false);
    let before = net.status("ben", group).epoch;
    commit_then_die(&mut net, group);
    let ann = net.index("ann");
    assert!(net.nodes[ann].engine.take_unpublished().unwrap().is_empty());
    assert_eq!(net.status("ann", group).epoch, before + 1);
    assert_eq!(
        net.status("ben", group).epoch,
        before,
        "no one else hears of ann's epoch: what the option prevents"
    );
}

#[test]
fn polled_and_confirmed_envelopes_are_forgotten_and_unpolled_ones_kept() {
    let (mut net, group) = pair(true);
    let ann = net.index("ann");
    // Two messages queued; the embedder takes the first only, then confirms.
    for body in ["one", "two"] {
        net.nodes[ann].engine.handle_command(
            2_000,
            Command::Send {
                group,
                body: body.as_bytes().to_vec(),
            },
        );
    }
    let mut first = None;
    while let Some(output) = net.nodes[ann].engine.poll_output() {
        if let Output::Publish { envelope, .. } = output {
            first = Some(envelope);
            break;
        }
    }
    let first = first.expect("a message envelope");
    net.nodes[ann].engine.confirm_published().unwrap();
    net.restart("ann");
    let unsent = net.nodes[ann].engine.take_unpublished().unwrap();
    assert_eq!(unsent.len(), 1, "only the envelope never taken is left");
    assert_ne!(unsent[0].1, first);
}

#[test]
fn an_own_message_is_kept_for_the_history_in_the_step_that_sends_it() {
    let (mut net, group) = pair(true);
    say(&mut net, "ann", group, "mine");
    let ann = net.index("ann");
    let kept: Vec<Vec<u8>> = net.nodes[ann]
        .engine
        .undelivered()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { body, sender, .. } => {
                assert_eq!(sender, net.identity("ann"), "kept as ann's own");
                Some(body)
            }
            _ => None,
        })
        .collect();
    assert_eq!(kept, [b"mine".to_vec()]);
}
