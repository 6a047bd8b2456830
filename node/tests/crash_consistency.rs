//! Crash consistency: in a loop, a member's node is killed with SIGKILL at a random point of a
//! commit storm and message burst, then restarted over the same data directory. Nothing a node
//! acknowledged (an API call that returned a result) may be lost, nothing may show twice, and
//! the group must converge after every restart.
//!
//! Seeded: the seed is printed, and `CHORUS_CRASH_SEED=<seed>` replays its choices (victims,
//! kill points, traffic). `CHORUS_CRASH_ROUNDS` sets how many kills (default 3). The kill point
//! is a delay after the storm starts; where in the node's work it lands depends on scheduling,
//! which is the point: each run kills at different places.
//!
//! It was ignored while each of its failures was still a finding (issue 7's crash-consistency
//! bullet); it runs in the suite since it passed 19 runs in a row after the last fix below (12
//! on the day of that fix, the seed that had failed among them; then 7 with random seeds, 3
//! or 6 kills each, while a 10-node soak loaded the same two cores). Fixed since it was
//! written:
//! - the sender killed between a round's fsync and its publishing showed the message in its
//!   own history while nobody else ever got it: a round's envelopes now go into an outbox
//!   inside the round and are published at the next start (seed 3488935374535150255 passes);
//! - a node killed after its log took an envelope and before the engine read it never read it
//!   (sync does not fetch what the log holds): the log's recent envelopes are given to the
//!   engine again at start (seed 11 passes).
//!
//! - a node killed after the engine read a message and before the node wrote it to its
//!   history never showed it (the engine does not read a message twice): the engine now keeps
//!   each read message until the node confirms its history holds it, and a restarted node
//!   stores the unconfirmed ones (seed 5897078249001933958 found it, about 1 run in 12).
//!
//! - a node killed after the step that made its own commit was stored and before its round
//!   published the envelope came back in an epoch no one else would ever hear of; its commit
//!   won the tie-break on its side only and it stayed one or two epochs behind on its own
//!   branch (4 of 15 runs on 2026-12-02): the engine now keeps every envelope it queues, in the
//!   step's own batch, until the node confirms it sent it, and a restarted node publishes what
//!   is left (seed 8903357410315252182, which failed 2 of 3, passes; 9 random seeds passed).
//!
//! Seed 2, which failed once (round 2 did not converge within 120 s), passed every run since.
//!
//! `CHORUS_CRASH_SEED=2 cargo nextest run --workspace -E 'binary(crash_consistency)'
//! --no-capture` shows it.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use node::demo::harness::{self, LocalNode, NodeOptions, group_of_all, start_nodes, wait_for};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const LIMIT: Duration = Duration::from_secs(120);

/// What one node does during a storm, in order.
#[derive(Debug, Clone)]
enum Action {
    Send(String),
    Commit,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A shuffled burst of messages and commits for each node.
fn plan(rng: &mut StdRng, round: usize, names: &[&str]) -> Vec<Vec<Action>> {
    names
        .iter()
        .map(|name| {
            let mut actions: Vec<Action> = (0..rng.gen_range(3..8))
                .map(|i| Action::Send(format!("{name} round {round} message {i}")))
                .collect();
            actions.extend((0..rng.gen_range(1..3)).map(|_| Action::Commit));
            actions.shuffle(rng);
            actions
        })
        .collect()
}

/// Where the victim is killed: `delay` after it starts its action number `before_action`
/// (so usually while that send or commit is in flight), while the others' storms go on.
#[derive(Debug, Clone, Copy)]
struct KillPoint {
    before_action: usize,
    delay: Duration,
    pid: u32,
}

/// Runs `actions` on `node` one after the other; returns the ids of the messages the node
/// acknowledged and how many actions it completed. With a `kill` point, the node is killed
/// there and the storm stops at the first failed action.
async fn storm(
    node: &LocalNode,
    gid: &str,
    actions: &[Action],
    kill: Option<KillPoint>,
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut acknowledged = Vec::new();
    let mut done = 0;
    let mut killer = None;
    for (i, action) in actions.iter().enumerate() {
        if let Some(point) = kill.filter(|k| k.before_action == i) {
            killer = Some(tokio::spawn(kill_later(point)));
        }
        let result = match action {
            Action::Send(text) => node.send(gid, text).await.map(|m| Some(m.id)),
            Action::Commit => node.update(gid).await.map(|_| None),
        };
        match result {
            Ok(Some(id)) => acknowledged.push(id),
            Ok(None) => {}
            Err(_) if kill.is_some() => break,
            Err(e) => anyhow::bail!("{} failed {action:?}: {e:#}", node.name),
        }
        done += 1;
    }
    match killer {
        Some(handle) => handle.await??,
        // The kill point is after the last action: kill now, while the others still storm.
        None => {
            if let Some(point) = kill {
                kill_later(point).await?;
            }
        }
    }
    Ok((acknowledged, done))
}

/// SIGKILL straight to the process after `point.delay`: no shutdown, no flush, mid-request.
async fn kill_later(point: KillPoint) -> anyhow::Result<()> {
    tokio::time::sleep(point.delay).await;
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    let rc = unsafe { libc::kill(point.pid as libc::pid_t, libc::SIGKILL) };
    anyhow::ensure!(rc == 0, "kill failed: {}", std::io::Error::last_os_error());
    Ok(())
}

/// Every node shows every acknowledged message, the same set of messages (each once), and the
/// same settled epoch, branch and members. Returns the messages they all show.
async fn converged_keeping(
    nodes: &[&LocalNode],
    gid: &str,
    acknowledged: &BTreeSet<String>,
) -> anyhow::Result<Option<BTreeSet<String>>> {
    let Some((c, shown)) = harness::converged_keeping(nodes, gid, acknowledged).await? else {
        return Ok(None);
    };
    anyhow::ensure!(c.members.len() == nodes.len(), "members: {:?}", c.members);
    Ok(Some(shown))
}

/// What each node shows, for a failure message.
async fn describe(nodes: &[&LocalNode], gid: &str, acknowledged: &BTreeSet<String>) {
    for node in nodes {
        let status = node.status(gid).await;
        let messages = match node.messages(gid).await {
            Ok(messages) => messages,
            Err(e) => {
                eprintln!("{}: messages: {e:#}", node.name);
                Vec::new()
            }
        };
        for m in &messages {
            eprintln!("{}: shows {} {:?}", node.name, m.id, m.text);
        }
        let shown: BTreeSet<String> = messages.into_iter().map(|m| m.id).collect();
        let missing: Vec<&String> = acknowledged.difference(&shown).collect();
        match status {
            Ok(Some(s)) => eprintln!(
                "{}: epoch {} branch {} fork {} members {:?}; {} messages, missing {missing:?}",
                node.name,
                s.epoch,
                s.branch_id,
                s.fork,
                s.members.iter().map(|m| &m.handle).collect::<Vec<_>>(),
                shown.len()
            ),
            other => eprintln!("{}: status {other:?}", node.name),
        }
        eprintln!("--- {}'s log:\n{}", node.name, node.log_tail());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_nodes_lose_nothing_acknowledged_and_the_group_converges() -> anyhow::Result<()> {
    let seed = env_u64("CHORUS_CRASH_SEED").unwrap_or_else(rand::random);
    let rounds = env_u64("CHORUS_CRASH_ROUNDS").unwrap_or(3) as usize;
    println!("crash-consistency seed {seed}, {rounds} rounds (CHORUS_CRASH_SEED={seed} replays)");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let names = ["ann", "ben", "cat"];
    let (mut nodes, boot) = start_nodes(dir.path(), &names, &options).await?;
    let gid = group_of_all(&nodes, "storm", LIMIT).await?;
    let mut acknowledged = BTreeSet::new();

    for round in 0..rounds {
        // Not ann: she is everyone's bootstrap peer, and a restart would give her a new port.
        let victim = rng.gen_range(1..names.len());
        let plans = plan(&mut rng, round, &names);
        let pid = nodes[victim]
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| anyhow::anyhow!("{} is not running", names[victim]))?;
        let point = KillPoint {
            before_action: rng.gen_range(0..=plans[victim].len()),
            delay: Duration::from_millis(rng.gen_range(0..60)),
            pid,
        };
        println!(
            "round {round}: kill {} {:?} into its action {} of {:?}",
            names[victim], point.delay, point.before_action, plans[victim]
        );

        let results = join_all(
            nodes
                .iter()
                .zip(&plans)
                .enumerate()
                .map(|(i, (node, actions))| {
                    storm(node, &gid, actions, (i == victim).then_some(point))
                }),
        )
        .await;
        for (i, result) in results.into_iter().enumerate() {
            let (ids, done) = result?;
            if i == victim {
                println!(
                    "round {round}: {} completed {done} of {} actions before the kill",
                    names[victim],
                    plans[victim].len()
                );
            }
            acknowledged.extend(ids);
        }
        nodes[victim].kill().await?;
        nodes[victim]
            .start(&options, 0, std::slice::from_ref(&boot))
            .await?;

        let all: Vec<&LocalNode> = nodes.iter().collect();
        let shown = wait_for(
            &format!("round {round}: convergence with every acknowledged message"),
            LIMIT,
            || converged_keeping(&all, &gid, &acknowledged),
        )
        .await;
        let shown = match shown {
            Ok(shown) => shown,
            Err(e) => {
                describe(&all, &gid, &acknowledged).await;
                // The nodes' whole logs and databases are what a post-mortem needs.
                eprintln!("data and logs kept in {}", dir.keep().display());
                return Err(e);
            }
        };
        println!(
            "round {round}: converged, {} acknowledged, {} shown",
            acknowledged.len(),
            shown.len()
        );
        // What everyone shows now is history: later rounds must keep it too.
        acknowledged = shown;
    }

    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
