//! Consistency modes of the group engine (issue 8), over the in-memory network: the same
//! races under accept-and-hold, settle-then-pick and sequencer, and what each mode promises.

mod support;

use std::collections::BTreeMap;

use ds_p2p::engine::{Command, ConsistencyMode, Event, TieBreak};
use ds_p2p::wire::{CommitRef, Envelope, EnvelopeKind, GroupRef, SequencerEcho};
use support::net::Net;
use support::scenario::*;

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn settle_then_pick() -> ConsistencyMode {
    ConsistencyMode::SettleThenPick { settle_ms: 2_000 }
}

fn count(net: &Net, name: &str, pick: impl Fn(&Event) -> bool) -> usize {
    net.nodes[net.index(name)]
        .events
        .iter()
        .filter(|e| pick(e))
        .count()
}

fn switches(net: &Net) -> usize {
    NAMES
        .iter()
        .map(|n| count(net, n, |e| matches!(e, Event::BranchSwitched { .. })))
        .sum()
}

/// Epochs at which two of `names` were on different branches at some time (from their
/// `EpochChanged` events): the group forked there.
fn divergent_epochs(net: &Net, names: &[&str]) -> Vec<u64> {
    let mut seen: BTreeMap<u64, [u8; 16]> = BTreeMap::new();
    let mut forked = Vec::new();
    for name in names {
        for event in &net.nodes[net.index(name)].events {
            if let Event::EpochChanged {
                epoch, branch_id, ..
            } = event
                && *seen.entry(*epoch).or_insert(*branch_id) != *branch_id
                && !forked.contains(epoch)
            {
                forked.push(*epoch);
            }
        }
    }
    forked
}

/// Bob and Carol self-update on the same epoch before hearing each other, and each sends a
/// message right after; then everything is delivered and the window passes.
fn race(mode: ConsistencyMode, seed: u64) -> (Net, GroupRef, u64) {
    let (mut net, group) = group_among_in(&NAMES, &NAMES, TieBreak::LowestRef, mode, seed);
    let start = net.status("alice", group).epoch;
    net.command("bob", Command::SelfUpdate { group });
    net.command("carol", Command::SelfUpdate { group });
    say(&mut net, "bob", group, "bob after his commit");
    say(&mut net, "carol", group, "carol after her commit");
    net.deliver_all();
    settle(&mut net);
    let epoch = assert_converged(&net, group, &NAMES);
    assert!(epoch > start, "no commit took effect");
    if std::env::var_os("CHORUS_STORY").is_some() {
        println!("{}", net.story());
    }
    assert_delivered_once(
        &net,
        &NAMES,
        &[
            ("bob", "bob after his commit".to_string()),
            ("carol", "carol after her commit".to_string()),
        ],
    );
    assert_pruned(&net, group, &NAMES);
    (net, group, start)
}

#[test]
fn accept_and_hold_switches_where_settle_then_pick_does_not() {
    for seed in [101, 102, 103] {
        let (net, _, _) = race(ConsistencyMode::AcceptAndHold, seed);
        assert!(
            switches(&net) >= 1,
            "seed {seed}: the losing committer applied its own commit, so it must switch"
        );
        let (net, _, _) = race(settle_then_pick(), seed);
        assert_eq!(
            switches(&net),
            0,
            "seed {seed}: every member heard both commits within the settle delay"
        );
        assert!(
            divergent_epochs(&net, &NAMES).is_empty(),
            "seed {seed}: members were on different branches"
        );
        let resent: usize = NAMES
            .iter()
            .map(|n| {
                net.nodes[net.index(n)]
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Event::BranchSwitched { resent, .. } => Some(resent.len()),
                        _ => None,
                    })
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(resent, 0, "seed {seed}: nothing had to be re-sent");
    }
}

#[test]
fn settle_then_pick_holds_commits_and_sends_until_the_delay_is_over() {
    let (mut net, group) =
        group_among_in(&NAMES, &NAMES, TieBreak::LowestRef, settle_then_pick(), 111);
    let start = net.status("bob", group).epoch;
    net.command("bob", Command::SelfUpdate { group });
    say(&mut net, "bob", group, "queued");
    net.deliver_all();
    // Within the delay: nobody moved, and Bob's message has not gone out.
    for name in NAMES {
        assert_eq!(net.status(name, group).epoch, start, "{name} moved early");
    }
    assert_eq!(
        count(&net, "alice", |e| matches!(e, Event::Message { .. })),
        0,
        "bob's message went out during the settle"
    );
    net.advance(2_500);
    net.deliver_all();
    for name in NAMES {
        assert_eq!(
            net.status(name, group).epoch,
            start + 1,
            "{name} did not apply"
        );
    }
    assert_delivered_once(&net, &NAMES, &[("bob", "queued".to_string())]);
}

#[test]
fn sequencer_never_forks_under_concurrent_commits() {
    for seed in [121, 122, 123] {
        let (net, group, start) = race(ConsistencyMode::Sequencer, seed);
        assert_eq!(switches(&net), 0, "seed {seed}: a member switched branches");
        assert!(
            divergent_epochs(&net, &NAMES).is_empty(),
            "seed {seed}: members were on different branches"
        );
        // Both self-updates took effect, one after the other: the one the sequencer did not
        // echo was re-issued on the next epoch.
        assert_eq!(net.status("alice", group).epoch, start + 2, "seed {seed}");
        // The same race under accept-and-hold does fork (the check can fail).
        let (net, _, _) = race(ConsistencyMode::AcceptAndHold, seed);
        assert!(!divergent_epochs(&net, &NAMES).is_empty(), "seed {seed}");
    }
}

#[test]
fn without_the_sequencer_a_side_can_send_but_not_commit_until_the_heal() {
    // Alice created the group: leaf 0, the sequencer.
    let (mut net, group) = group_among_in(
        &NAMES,
        &NAMES,
        TieBreak::LowestRef,
        ConsistencyMode::Sequencer,
        131,
    );
    let start = net.status("carol", group).epoch;
    net.partition(&[&["alice", "bob"], &["carol", "dave"]]);
    net.command("carol", Command::SelfUpdate { group });
    net.deliver_all();
    net.advance(30_000);
    assert_eq!(
        net.status("carol", group).epoch,
        start,
        "carol committed alone"
    );
    assert_eq!(
        net.status("dave", group).epoch,
        start,
        "dave applied an unordered commit"
    );
    say(&mut net, "carol", group, "from the minority");
    net.deliver_all();
    assert_delivered_once(
        &net,
        &["dave"],
        &[("carol", "from the minority".to_string())],
    );
    net.command("bob", Command::SelfUpdate { group });
    net.deliver_all();
    assert_eq!(
        net.status("bob", group).epoch,
        start + 1,
        "the sequencer's side commits"
    );
    settle(&mut net);
    let epoch = assert_converged(&net, group, &NAMES);
    assert_eq!(epoch, start + 2, "carol's update was done after the heal");
    assert_eq!(switches(&net), 0);
    assert!(divergent_epochs(&net, &NAMES).is_empty());
    assert_delivered_once(&net, &NAMES, &[("carol", "from the minority".to_string())]);
    assert_pruned(&net, group, &NAMES);
}

#[test]
fn the_sequencer_hands_over_when_it_is_removed() {
    let (mut net, group) = group_among_in(
        &NAMES,
        &NAMES,
        TieBreak::LowestRef,
        ConsistencyMode::Sequencer,
        141,
    );
    let member = net.identity("alice");
    net.command("bob", Command::Remove { group, member });
    net.deliver_all();
    settle(&mut net);
    let rest = ["bob", "carol", "dave"];
    let epoch = assert_converged(&net, group, &rest);
    // Bob (leaf 1) orders now: Carol's commit takes effect.
    net.command("carol", Command::SelfUpdate { group });
    net.deliver_all();
    settle(&mut net);
    assert_eq!(assert_converged(&net, group, &rest), epoch + 1);
}

#[test]
fn a_forged_echo_is_refused_with_a_reason() {
    let (mut net, group) = group_among_in(
        &NAMES,
        &NAMES,
        TieBreak::LowestRef,
        ConsistencyMode::Sequencer,
        151,
    );
    let start = net.status("carol", group).epoch;
    net.partition(&[&["alice"], &["bob", "carol", "dave"]]);
    net.command("bob", Command::SelfUpdate { group });
    net.deliver_all();
    // Bob's commit as Carol holds it; an echo for it "from leaf 0" with a made-up signature.
    let commit = net
        .published_by("bob")
        .into_iter()
        .filter_map(|(_, bytes)| Envelope::decode(&bytes, &Default::default()).ok())
        .rfind(|e| e.kind == EnvelopeKind::Handshake)
        .expect("bob published his commit");
    let forged = SequencerEcho {
        epoch: start,
        commit_ref: CommitRef::of(&commit.payload),
        sequencer: 0,
        signature: vec![7; 64],
    };
    let envelope = Envelope::new(EnvelopeKind::SequencerEcho, group, forged.encode().unwrap())
        .encode()
        .unwrap();
    net.inject("carol", &envelope);
    assert_eq!(
        net.status("carol", group).epoch,
        start,
        "carol followed a forged echo"
    );
    let refused = net.nodes[net.index("carol")].rejections();
    assert!(
        refused
            .iter()
            .any(|r| r.contains("not signed by that epoch's sequencer")),
        "{refused:?}"
    );
    // Garbage in an echo envelope is an error value too.
    let junk = Envelope::new(EnvelopeKind::SequencerEcho, group, vec![0xff; 9])
        .encode()
        .unwrap();
    net.inject("carol", &junk);
    assert!(net.nodes[net.index("carol")].rejections().len() > refused.len());
}

const WITH_JOINER: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// Runs `command` by `name` and lets the settle it starts end (a settle-then-pick member's
/// own commits take effect only then).
fn commit_settled(net: &mut Net, name: &str, command: Command) {
    net.command(name, command);
    net.deliver_all();
    net.advance(3_000);
    net.deliver_all();
}

fn in_group(net: &Net, group: GroupRef, name: &str) -> bool {
    let node = &net.nodes[net.index(name)];
    node.engine
        .group_status(group)
        .is_some_and(|s| !s.evicted && s.members.contains(&node.identity))
}

/// Property seed 4000060 as a scenario. Cut off with Erin, Alice self-updates and then adds
/// Erin; the others remove Alice meanwhile. Removes-first picks the removal: Alice's branch
/// loses, Alice is out and cannot re-do her Add, and nobody commits after the removal. The
/// group stays at the epoch Erin's Add was made on, so no beacon can show a competing commit
/// *at* that epoch; what shows the fork is the commit below it (the removal beside Alice's
/// update). Erin must learn that from the Welcome's account of Alice's branch and stop
/// thinking she is in.
#[test]
fn a_joiner_learns_its_add_lost_when_the_branch_forked_below_it() {
    let (mut net, group) = group_among_in(
        &WITH_JOINER,
        &NAMES,
        TieBreak::RemovesFirst,
        settle_then_pick(),
        161,
    );
    net.partition(&[&["alice", "erin"], &["bob", "carol", "dave"]]);
    commit_settled(&mut net, "alice", Command::SelfUpdate { group });
    let key_package = net.key_package("erin");
    commit_settled(&mut net, "alice", Command::Invite { group, key_package });
    assert!(in_group(&net, group, "erin"), "erin joined on alice's side");
    let member = net.identity("alice");
    commit_settled(&mut net, "bob", Command::Remove { group, member });
    settle(&mut net);
    let rest = ["bob", "carol", "dave"];
    assert_converged(&net, group, &rest);
    assert!(
        !in_group(&net, group, "erin"),
        "erin thinks she is in a group that went on without her Add\n{}",
        net.story()
    );
    assert!(
        count(&net, "erin", |e| matches!(e, Event::JoinLost { .. })) >= 1,
        "erin was not told her join was lost"
    );
}

/// Property seed 4000211 as a scenario. Erin holds two Welcomes: one from Alice's branch
/// (later epoch, vouched by Alice's beacon) and one from Bob on the branch the group goes on
/// with. A beacon of that branch marks the first join lost; the second root is then the one
/// to follow, at once — no later commit comes to make the engine look again, and the root
/// would expire behind the lost one.
#[test]
fn a_joiner_follows_its_other_welcome_once_the_active_one_is_marked_lost() {
    let (mut net, group) = group_among_in(
        &WITH_JOINER,
        &NAMES,
        TieBreak::RemovesFirst,
        settle_then_pick(),
        171,
    );
    net.partition(&[&["alice", "erin"], &["bob", "carol", "dave"]]);
    // The group's side removes Alice and adds Erin; the Welcome cannot reach her yet.
    let member = net.identity("alice");
    commit_settled(&mut net, "bob", Command::Remove { group, member });
    let key_package = net.key_package("erin");
    commit_settled(&mut net, "bob", Command::Invite { group, key_package });
    // Alice's side goes two epochs further before adding Erin: its root is the later one.
    commit_settled(&mut net, "alice", Command::SelfUpdate { group });
    commit_settled(&mut net, "alice", Command::SelfUpdate { group });
    let key_package = net.key_package("erin");
    commit_settled(&mut net, "alice", Command::Invite { group, key_package });
    assert!(in_group(&net, group, "erin"), "erin joined on alice's side");
    // Bob's Welcome reaches Erin (a relay that crossed the cut), then Alice's beacon vouches
    // for Alice's root: Erin stays there (vouched, and later).
    let welcome = net
        .published_by("bob")
        .into_iter()
        .filter_map(|(_, bytes)| {
            let envelope = Envelope::decode(&bytes, &Default::default()).ok()?;
            (envelope.kind == EnvelopeKind::Welcome).then_some(bytes)
        })
        .next_back()
        .expect("bob published a Welcome");
    net.inject("erin", &welcome);
    net.advance(31_000);
    assert_eq!(
        net.status("erin", group).branch_id,
        net.status("alice", group).branch_id,
        "erin is on alice's root before the heal"
    );
    settle(&mut net);
    assert_converged(&net, group, &["bob", "carol", "dave", "erin"]);
}

/// Bob's message is queued by his settle; his process dies before the settle ends. The
/// restarted engine still holds the queue and sends it when the settle is over: everyone gets
/// the message exactly once.
#[test]
fn a_send_queued_by_a_settle_survives_a_restart() {
    let (mut net, group) =
        group_among_in(&NAMES, &NAMES, TieBreak::LowestRef, settle_then_pick(), 181);
    let start = net.status("bob", group).epoch;
    net.command("bob", Command::SelfUpdate { group });
    say(&mut net, "bob", group, "queued before the crash");
    net.deliver_all();
    assert_eq!(
        count(&net, "alice", |e| matches!(e, Event::Message { .. })),
        0,
        "bob's message went out during the settle"
    );
    net.restart("bob");
    let status = net.engine("bob").consistency_status(group, net.now);
    assert!(
        status.is_some_and(|s| s.sends_paused),
        "the restarted engine forgot its settle"
    );
    net.advance(2_500);
    net.deliver_all();
    settle(&mut net);
    assert!(assert_converged(&net, group, &NAMES) > start);
    assert_delivered_once(
        &net,
        &NAMES,
        &[("bob", "queued before the crash".to_string())],
    );
}

/// A settle whose end passed while the process was down ends at the first timer after the
/// restart, and the queue goes out then.
#[test]
fn a_settle_that_ended_during_the_downtime_sends_its_queue_at_start() {
    let (mut net, group) =
        group_among_in(&NAMES, &NAMES, TieBreak::LowestRef, settle_then_pick(), 182);
    net.command("carol", Command::SelfUpdate { group });
    say(&mut net, "carol", group, "queued, then down for a minute");
    net.restart("carol");
    // Down for a minute: nothing reaches Carol, her timers do not run.
    net.partition(&[&["carol"], &["alice", "bob", "dave"]]);
    net.now += 60_000;
    let due = net.engine("carol").poll_timeout().expect("a timer is due");
    assert!(due <= net.now, "the settle's end is not due at start");
    settle(&mut net);
    assert_converged(&net, group, &NAMES);
    assert_delivered_once(
        &net,
        &NAMES,
        &[("carol", "queued, then down for a minute".to_string())],
    );
}

/// Under a sequencer, Dave gets the echo of Carol's commit before the commit and restarts in
/// between. The sequencer echoes an epoch once; the restarted Dave must still apply the commit
/// as soon as it arrives (before, he waited for a redelivery of the echo that a node's log,
/// which already holds it, never asks for).
#[test]
fn an_echo_that_came_before_its_commit_survives_a_restart() {
    let (mut net, group) = group_among_in(
        &NAMES,
        &NAMES,
        TieBreak::LowestRef,
        ConsistencyMode::Sequencer,
        191,
    );
    let start = net.status("dave", group).epoch;
    net.partition(&[&["dave"], &["alice", "bob", "carol"]]);
    net.command("carol", Command::SelfUpdate { group });
    net.deliver_all();
    assert_eq!(net.status("alice", group).epoch, start + 1, "alice echoed");
    let last_of = |net: &Net, name: &str, kind: EnvelopeKind| {
        net.published_by(name)
            .into_iter()
            .map(|(_, bytes)| bytes)
            .rfind(|bytes| {
                Envelope::decode(bytes, &Default::default()).is_ok_and(|e| e.kind == kind)
            })
            .expect("published")
    };
    let echo = last_of(&net, "alice", EnvelopeKind::SequencerEcho);
    let commit = last_of(&net, "carol", EnvelopeKind::Handshake);
    net.inject("dave", &echo);
    net.restart("dave");
    net.inject("dave", &commit);
    assert_eq!(
        net.status("dave", group).epoch,
        start + 1,
        "the restarted dave forgot the echo and holds the commit"
    );
}

/// Alice's Add of Erin is held by her settle, and so is its Welcome; her process dies before
/// the settle ends. The restarted engine still holds the Welcome and sends it once the Add is
/// applied: Erin joins (without it she would be in the roster and never in the group).
#[test]
fn a_held_welcome_survives_a_restart() {
    let (mut net, group) = group_among_in(
        &WITH_JOINER,
        &NAMES,
        TieBreak::LowestRef,
        settle_then_pick(),
        201,
    );
    let key_package = net.key_package("erin");
    net.command("alice", Command::Invite { group, key_package });
    net.deliver_all();
    assert!(
        net.engine("erin").group_status(group).is_none(),
        "the Welcome went out before the Add was applied"
    );
    net.restart("alice");
    net.advance(2_500);
    net.deliver_all();
    settle(&mut net);
    assert_converged(&net, group, &WITH_JOINER);
}
