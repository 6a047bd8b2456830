//! Shared steps of the engine scenario and property tests: build a group over [`Net`], send
//! traffic, and check convergence, delivery and pruning.

use std::collections::BTreeSet;

use ds_p2p::engine::{Command, ConsistencyMode, TieBreak};
use ds_p2p::wire::GroupRef;

use super::net::Net;

/// A group created by the first name with every other name invited one at a time, everything
/// delivered and synced.
pub fn group_of(names: &[&str], policy: TieBreak, seed: u64) -> (Net, GroupRef) {
    group_among(names, names, policy, seed)
}

/// A network of `nodes` in which the `members` (the first creates it) form a group.
pub fn group_among(
    nodes: &[&str],
    members: &[&str],
    policy: TieBreak,
    seed: u64,
) -> (Net, GroupRef) {
    group_among_in(nodes, members, policy, ConsistencyMode::default(), seed)
}

/// [`group_among`] with every engine using the consistency mode `mode`.
pub fn group_among_in(
    nodes: &[&str],
    members: &[&str],
    policy: TieBreak,
    mode: ConsistencyMode,
    seed: u64,
) -> (Net, GroupRef) {
    let mut net = Net::with_mode(nodes, policy, mode, seed);
    net.command(members[0], Command::CreateGroup);
    let group = net.group_of(members[0]);
    for name in &members[1..] {
        let key_package = net.key_package(name);
        net.command(members[0], Command::Invite { group, key_package });
        net.deliver_all();
        net.sync();
        if let ConsistencyMode::SettleThenPick { settle_ms } = mode {
            // The Add takes effect when the settle ends; the next one is made after it.
            // (Deliveries inside `advance` move the clock too: leave room for them.)
            net.advance(settle_ms + 1_000);
            net.sync();
        }
    }
    (net, group)
}

/// Sends `body` from `name`.
pub fn say(net: &mut Net, name: &str, group: GroupRef, body: &str) {
    net.command(
        name,
        Command::Send {
            group,
            body: body.as_bytes().to_vec(),
        },
    );
}

/// `adder` invites `joiner` (a fresh KeyPackage), and delivery runs to quiescence.
pub fn invite(net: &mut Net, adder: &str, joiner: &str, group: GroupRef) {
    let key_package = net.key_package(joiner);
    net.command(adder, Command::Invite { group, key_package });
    net.deliver_all();
}

/// `who` commits `count` self-updates, delivery running to quiescence after each.
pub fn self_updates(net: &mut Net, who: &str, group: GroupRef, count: usize) {
    for _ in 0..count {
        net.command(who, Command::SelfUpdate { group });
        net.deliver_all();
    }
}

/// Heals, syncs, lets the fork window pass and syncs again: the end of every scenario.
///
/// Half a window at a time (so beacons, every 30 s, flow before states expire at 60 s), with
/// a sync after each step, until a step publishes no commit, proposal or Welcome (re-issued
/// changes are done) — at least two steps, at most [`SETTLE_MAX_STEPS`]. Then a full window
/// with nothing new: every state left behind expires.
pub fn settle(net: &mut Net) {
    net.heal();
    net.deliver_all();
    net.sync();
    for step in 0..SETTLE_MAX_STEPS {
        let before = net.changes_published;
        net.advance(30_001);
        net.sync();
        if step >= 1 && net.changes_published == before {
            break;
        }
    }
    // Then whole windows until one passes with no change: a timer may still act after a quiet
    // half window (a re-issue, a re-add after a lost join), and the states its change leaves
    // behind are only due a window later.
    for _ in 0..SETTLE_MAX_STEPS {
        let before = net.changes_published;
        net.advance(60_001);
        if net.changes_published == before {
            break;
        }
        net.sync();
    }
}

/// Settle steps after which a group that still changes is left as it is (the checks then
/// fail, as they should).
pub const SETTLE_MAX_STEPS: usize = 10;

/// Every one of `members` has the same active branch, epoch and member list, and that list
/// is exactly `members`. Returns the epoch.
pub fn assert_converged(net: &Net, group: GroupRef, members: &[&str]) -> u64 {
    let first = net.status(members[0], group);
    for name in members {
        let status = net.status(name, group);
        if (status.branch_id, status.epoch) != (first.branch_id, first.epoch) {
            println!("{}", net.story());
        }
        assert_eq!(
            (status.branch_id, status.epoch),
            (first.branch_id, first.epoch),
            "{name} is on another branch than {}",
            members[0]
        );
        assert_eq!(
            status.members, first.members,
            "{name}'s member list differs"
        );
    }
    let expected: BTreeSet<Vec<u8>> = members.iter().map(|n| net.identity(n)).collect();
    let actual: BTreeSet<Vec<u8>> = first.members.iter().cloned().collect();
    assert_eq!(actual, expected, "converged member list");
    first.epoch
}

/// Every one of `receivers` got each of `bodies` exactly once, unless it sent it itself.
pub fn assert_delivered_once(net: &Net, receivers: &[&str], bodies: &[(&str, String)]) {
    for name in receivers {
        let node = &net.nodes[net.index(name)];
        let delivered = node.delivered();
        for (sender, body) in bodies {
            let count = delivered.get(body.as_bytes()).copied().unwrap_or(0);
            let expected = usize::from(sender != name);
            assert_eq!(
                count,
                expected,
                "{name} got {body:?} (from {sender}) {count} times; rejections: {:?}",
                node.rejections()
            );
        }
    }
}

/// After the window, only the active head is held.
pub fn assert_pruned(net: &Net, group: GroupRef, members: &[&str]) {
    for name in members {
        let status = net.status(name, group);
        assert_eq!(status.held_states, 1, "{name} still holds forked states");
    }
}
