//! Property tests of the group engine (issue 3): random runs with 2–6 members, 1–4 concurrent
//! committers per round, random application traffic, random delivery order, duplicates and
//! drops-then-sync, for each tie-break policy. After everything is delivered and the window
//! has passed:
//!
//! 1. convergence — every member has the same active branch id and member list;
//! 2. no loss — every message sent by a member of the final group reaches every member that
//!    was in the group throughout exactly once, and no member gets any message twice;
//! 3. forward secrecy — no state other than the active head is held;
//! 4. determinism — the same seed gives the same outputs, byte for byte (checked on every
//!    `DETERMINISM_EVERY`th run by running it twice).
//!
//! The runs model a gossip network: random order, loss and duplicates while the members act;
//! then the partition heals, anti-entropy hands every node what it missed, and time passes in
//! half-window steps (timers fire in order, what they publish is delivered) until no commit or
//! Welcome is published any more; then a full window passes.
//!
//! The same properties are checked under the other consistency modes (issue 8), with the
//! lowest-ref policy: `settle-then-pick` and `sequencer`, [`DEFAULT_MODE_RUNS`] runs each;
//! under `sequencer` also 5. no fork — no member ever switches branches (with convergence,
//! every member's heads were one lineage).
//!
//! `CHORUS_PROP_RUNS` sets the runs per policy (default [`DEFAULT_RUNS`], 2,000, which CI has
//! time for; `CHORUS_PROP_RUNS=100 make properties` is a quick check); `CHORUS_PROP_SEED=<n>`
//! replays one run, `CHORUS_PROP_DUMP=1` prints its output trace (with `--nocapture`);
//! `CHORUS_PROP_FROM=<k>` starts each sweep at its `k`th seed instead of its first, so a long
//! sweep can cover seeds no earlier one ran. Every failing seed is printed; the test fails at
//! the end with the first.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use ds_p2p::engine::{Command, ConsistencyMode, Event, TieBreak};
use ds_p2p::wire::GroupRef;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use support::net::{Faults, Net};
use support::scenario::{group_among_in, settle};

const NAMES: [&str; 7] = ["ann", "ben", "cat", "dan", "eve", "fay", "gus"];
const DETERMINISM_EVERY: u64 = 25;
/// Runs per policy unless `CHORUS_PROP_RUNS` says otherwise: the 2,000 issue 3 asks for. About
/// 7 min of CPU per policy in a debug build (2026-12-01), so the three policies, run in
/// parallel, take some 11 min on two idle cores; `CHORUS_PROP_RUNS=100` for a quick check.
const DEFAULT_RUNS: u64 = 2000;
/// Runs per other consistency mode unless `CHORUS_PROP_RUNS` says otherwise: ~1 min of CPU
/// each in a debug build, so CI spends a few minutes more, not another eleven.
const DEFAULT_MODE_RUNS: u64 = 300;
/// Seeds beyond the default runs that once failed, run every time as well (found by
/// `CHORUS_PROP_RUNS=6000`, 2026-12-03): a joiner that dropped a commit from below its join,
/// a lost join outranking what was left of a pruned Welcome lineage, and (sequencer) a re-add
/// after a removal reported as a branch switch.
/// Also 4001811, 4003793, 4005817 and lowest-ref 1005159, which a wider first version of the
/// lost-join ranking failed. Then (`CHORUS_PROP_FROM=6000`, the next 6,000 seeds) lowest-ref
/// 1007737 and settle-then-pick 4006794, 4008840: a Welcome root of a lineage that lost,
/// ranked by its later epoch over what beacons showed the group going on from.
const LOWEST_REF_REGRESSIONS: &[u64] = &[1005159, 1007737];
const SETTLE_REGRESSIONS: &[u64] = &[
    4001811, 4001877, 4002167, 4002507, 4002985, 4003793, 4004042, 4005817, 4006794, 4008840,
];
const SEQUENCER_REGRESSIONS: &[u64] = &[5001421, 5004045];

/// What a run did, for the checks.
struct Run {
    net: Net,
    group: GroupRef,
    /// Members from setup that were never removed: the group "throughout".
    stayed: BTreeSet<String>,
    /// (sender, body) of every message sent.
    sent: Vec<(String, String)>,
}

fn members_now(net: &Net, group: GroupRef, name: &str) -> Vec<String> {
    let status = net.status(name, group);
    net.names()
        .into_iter()
        .filter(|n| status.members.contains(&net.identity(n)))
        .collect()
}

fn in_group(net: &Net, group: GroupRef, name: &str) -> bool {
    let node = &net.nodes[net.index(name)];
    node.engine
        .group_status(group)
        .is_some_and(|s| !s.evicted && s.members.contains(&node.identity))
}

fn random_run(policy: TieBreak, mode: ConsistencyMode, seed: u64) -> Run {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let size = rng.gen_range(2..=6);
    let members: Vec<&str> = NAMES[..size].to_vec();
    // One spare node that may be added during the run.
    let nodes: Vec<&str> = NAMES[..size + 1].to_vec();
    let (mut net, group) = group_among_in(&nodes, &members, policy, mode, rng.r#gen());
    let mut stayed: BTreeSet<String> = members.iter().map(|s| s.to_string()).collect();
    let mut sent = Vec::new();
    let mut removed = BTreeSet::new();
    let rounds = rng.gen_range(1..=3);
    for round in 0..rounds {
        net.faults = Faults {
            loss: rng.gen_range(0.0..0.3),
            duplicate: rng.gen_range(0.0..0.2),
        };
        let current: Vec<String> = nodes
            .iter()
            .filter(|n| in_group(&net, group, n))
            .map(|n| n.to_string())
            .collect();
        let mut committers = current.clone();
        committers.shuffle(&mut rng);
        committers.truncate(rng.gen_range(1..=4.min(current.len())));
        for who in &committers {
            let choice = rng.gen_range(0..10);
            let spare = nodes[size];
            if choice == 0 && current.len() > 2 {
                let victim = current
                    .iter()
                    .filter(|n| *n != who)
                    .collect::<Vec<_>>()
                    .choose(&mut rng)
                    .map(|s| s.to_string());
                if let Some(victim) = victim {
                    removed.insert(victim.clone());
                    stayed.remove(&victim);
                    let member = net.identity(&victim);
                    net.command(who, Command::Remove { group, member });
                }
            } else if choice == 1 && !in_group(&net, group, spare) && !removed.contains(spare) {
                let key_package = net.key_package(spare);
                net.command(who, Command::Invite { group, key_package });
            } else {
                net.command(who, Command::SelfUpdate { group });
            }
        }
        for k in 0..rng.gen_range(0..=4) {
            let who = current.choose(&mut rng).expect("a member").clone();
            if removed.contains(&who) {
                continue;
            }
            let body = format!("r{round} m{k} from {who}");
            net.command(
                &who,
                Command::Send {
                    group,
                    body: body.clone().into_bytes(),
                },
            );
            sent.push((who, body));
        }
        net.deliver_all();
        if rng.gen_bool(0.5) {
            net.sync();
        }
    }
    settle(&mut net);
    Run {
        net,
        group,
        stayed,
        sent,
    }
}

fn check(run: &Run) {
    let net = &run.net;
    let group = run.group;
    let final_members: Vec<String> = net
        .names()
        .into_iter()
        .filter(|n| in_group(net, group, n))
        .collect();
    assert!(!final_members.is_empty(), "nobody is left in the group");
    // 1. Convergence.
    let first = net.status(&final_members[0], group);
    let roster = members_now(net, group, &final_members[0]);
    if roster != final_members {
        println!("{}", net.story());
    }
    assert_eq!(
        roster, final_members,
        "member list vs who thinks they are in"
    );
    for name in &final_members {
        let status = net.status(name, group);
        if (status.branch_id, status.epoch) != (first.branch_id, first.epoch) {
            println!("{}", net.story());
        }
        assert_eq!(
            (status.branch_id, status.epoch, &status.members),
            (first.branch_id, first.epoch, &first.members),
            "{name} differs from {}",
            final_members[0]
        );
        // 3. Forward secrecy.
        if status.held_states != 1 {
            println!("{}", net.story());
        }
        assert_eq!(status.held_states, 1, "{name} still holds forked states");
    }
    // 2. No loss, no duplicates.
    for name in net.names() {
        let delivered = net.nodes[net.index(&name)].delivered();
        for (body, count) in &delivered {
            assert_eq!(
                *count,
                1,
                "{name} got {:?} {count} times",
                String::from_utf8_lossy(body)
            );
        }
        if !run.stayed.contains(&name) || !final_members.contains(&name) {
            continue;
        }
        for (sender, body) in &run.sent {
            if sender == &name || !final_members.contains(sender) {
                continue;
            }
            assert!(
                delivered.contains_key(body.as_bytes()),
                "{name} never got {body:?}; rejections: {:?}",
                net.nodes[net.index(&name)].rejections()
            );
        }
    }
}

fn forks(run: &Run) -> usize {
    run.net
        .nodes
        .iter()
        .flat_map(|n| &n.events)
        .filter(|e| matches!(e, Event::ForkDetected { .. }))
        .count()
}

/// Branch switches over all members: none may happen under a unique sequencer.
fn switches(run: &Run) -> usize {
    run.net
        .nodes
        .iter()
        .flat_map(|n| &n.events)
        .filter(|e| matches!(e, Event::BranchSwitched { .. }))
        .count()
}

fn property(policy: TieBreak, base: u64, regressions: &[u64]) {
    property_in(
        policy,
        ConsistencyMode::AcceptAndHold,
        base,
        DEFAULT_RUNS,
        regressions,
    );
}

fn property_in(
    policy: TieBreak,
    mode: ConsistencyMode,
    base: u64,
    default_runs: u64,
    regressions: &[u64],
) {
    let runs: u64 = std::env::var("CHORUS_PROP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_runs);
    let from: u64 = std::env::var("CHORUS_PROP_FROM")
        .map(|v| v.parse().expect("CHORUS_PROP_FROM is a number"))
        .unwrap_or(0);
    let swept = (base + from)..(base + from + runs);
    let seeds: Vec<u64> = match std::env::var("CHORUS_PROP_SEED") {
        Ok(seed) => vec![seed.parse().expect("CHORUS_PROP_SEED is a number")],
        Err(_) => swept
            .clone()
            .chain(regressions.iter().copied().filter(|s| !swept.contains(s)))
            .collect(),
    };
    let mut stats: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed: Vec<(u64, String)> = Vec::new();
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| {
            let run = random_run(policy, mode, seed);
            if std::env::var_os("CHORUS_PROP_DUMP").is_some() {
                for line in &run.net.trace_lines {
                    println!("trace: {line}");
                }
            }
            check(&run);
            if mode == ConsistencyMode::Sequencer {
                assert_eq!(
                    switches(&run),
                    0,
                    "a member switched branches under a sequencer"
                );
            }
            if seed % DETERMINISM_EVERY == 0 {
                let again = random_run(policy, mode, seed);
                if run.net.trace() != again.net.trace() {
                    let (a, b) = (&run.net.trace_lines, &again.net.trace_lines);
                    if let Some(k) = a.iter().zip(b).position(|(x, y)| x != y) {
                        for line in &a[k.saturating_sub(5)..k] {
                            println!("  same: {line}");
                        }
                        println!("first difference at output {k}:\n  {}\n  {}", a[k], b[k]);
                    }
                    panic!("outputs differ between two runs");
                }
            }
            forks(&run)
        });
        match outcome {
            Ok(f) => {
                *stats.entry("passed").or_default() += 1;
                *stats.entry("fork events").or_default() += f;
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!(
                    "policy {policy:?} ({mode}), seed {seed} failed (replay: CHORUS_PROP_SEED={seed}): {message}"
                );
                failed.push((seed, message));
            }
        }
    }
    println!(
        "policy {policy:?} ({mode}): {stats:?}, failed seeds: {:?}",
        failed.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    if let Some((seed, message)) = failed.first() {
        panic!(
            "policy {policy:?} ({mode}): {} of the runs failed, first seed {seed} (replay: CHORUS_PROP_SEED={seed}): {message}",
            failed.len()
        );
    }
}

#[test]
fn properties_hold_under_lowest_ref() {
    property(TieBreak::LowestRef, 1_000_000, LOWEST_REF_REGRESSIONS);
}

#[test]
fn properties_hold_under_removes_first() {
    property(TieBreak::RemovesFirst, 2_000_000, &[]);
}

#[test]
fn properties_hold_under_deepest_branch() {
    property(TieBreak::DeepestBranch, 3_000_000, &[]);
}

#[test]
fn properties_hold_under_settle_then_pick() {
    let mode = ConsistencyMode::SettleThenPick {
        settle_ms: ds_p2p::engine::consistency::DEFAULT_SETTLE_MS,
    };
    property_in(
        TieBreak::LowestRef,
        mode,
        4_000_000,
        DEFAULT_MODE_RUNS,
        SETTLE_REGRESSIONS,
    );
}

#[test]
fn properties_hold_under_a_sequencer() {
    property_in(
        TieBreak::LowestRef,
        ConsistencyMode::Sequencer,
        5_000_000,
        DEFAULT_MODE_RUNS,
        SEQUENCER_REGRESSIONS,
    );
}
