//! The simulator and real nodes agree on the same script: the same race has the same winner.
//!
//! Script (four members; ann, ben and dan on one network host, cat alone on another): the link
//! between the hosts is cut; cat removes dan while ben commits an update — two commits for the
//! same epoch, made apart; the link comes back. Under the `removes-first` policy the Remove
//! wins although cat's side is the minority: ann and ben switch to cat's branch (ben re-issues
//! his update on it), cat never switches, dan is out, and nothing sent is lost.
//!
//! The simulator runs the script as a scenario (its engines are the same `ds-p2p` code), the
//! real nodes run it over real sockets between network namespaces; the test checks that both
//! report the same winner and the same losers. Needs root and iproute2 for the real half;
//! skips that half with a message otherwise.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use node::api::http;
use node::demo::harness::{LocalNode, NodeOptions, converged, group_of_all, start_all, wait_for};
use simulations::{RunOptions, Scenario};
use support::netns::{Hosts, namespaces_available};

const LIMIT: Duration = Duration::from_secs(120);
const POLICY: &str = "removes-first";

/// Who switched branch, by name, and how the race ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    switched: BTreeSet<&'static str>,
    members_after: BTreeSet<String>,
}

/// The simulated half: n0 = ann, n1 = ben, n2 = cat, n3 = dan.
fn simulated(seed: u64) -> Outcome {
    let text = format!(
        r#"
        duration = "150s"
        nodes = 4
        [engine]
        fork_window = "60s"
        policy = "{POLICY}"
        beacon_interval = "5s"
        [[groups]]
        name = "g"
        members = ["n0..n4"]
        traffic = {{ rate_per_min = 6, size = 64, start = "2s", end = "60s" }}
        [[partitions]]
        start = "10s"
        heal = "30s"
        sides = {{ big = ["n0", "n1", "n3"], small = ["n2"] }}
        [[commits]]
        at = "15s"
        group = "g"
        node = "n2"
        op = "remove"
        target = "n3"
        [[commits]]
        at = "16s"
        group = "g"
        node = "n1"
        op = "update"
        "#
    );
    let scenario = Scenario::parse("remove-vs-update-across-a-cut", &text).unwrap();
    println!("simulating with seed {seed}");
    let options = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    let run = simulations::run(&scenario, &options).unwrap();
    let s = &run.summary;
    assert!(
        s.converged,
        "seed {seed}: the simulated group did not converge"
    );
    assert!(s.forks_detected > 0, "seed {seed}: no fork, so no race");
    assert_eq!(s.messages_lost, 0, "seed {seed}");
    assert_eq!(s.duplicates_delivered, 0, "seed {seed}");
    let names = ["ann", "ben", "cat", "dan"];
    let switched = (0..3) // dan is removed: whether he switched says nothing about the winner
        .filter(|&n| run.metrics.switches_per_node[n] > 0)
        .map(|n| names[n])
        .collect();
    let members_after = if s.removed == 1 {
        ["ann", "ben", "cat"].map(String::from).into()
    } else {
        panic!(
            "seed {seed}: {} members removed, expected dan alone",
            s.removed
        )
    };
    Outcome {
        switched,
        members_after,
    }
}

#[test]
fn the_simulator_gives_the_race_to_the_remove_for_every_seed() {
    for seed in 1..6 {
        let outcome = simulated(seed);
        assert_eq!(
            outcome.switched,
            BTreeSet::from(["ann", "ben"]),
            "seed {seed}"
        );
    }
}

/// Times a node's active branch changed, from its `/metrics`.
async fn branch_switches(node: &LocalNode) -> anyhow::Result<u64> {
    let addr: std::net::SocketAddr = std::fs::read_to_string(node.data.metrics_addr())?
        .trim()
        .parse()?;
    // The node may live in a network namespace: its loopback is only reachable from there.
    let netns = node
        .netns
        .as_ref()
        .map(|ns| std::path::Path::new("/run/netns").join(ns));
    let response = http::call(addr, netns.as_deref(), "", "GET", "/metrics", None).await?;
    anyhow::ensure!(
        response.status == 200,
        "metrics: status {}",
        response.status
    );
    let text = String::from_utf8(response.body)?;
    text.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            name.starts_with("chorus_branch_switches")
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .map(|v| v as u64)
        .ok_or_else(|| anyhow::anyhow!("no chorus_branch_switches in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_nodes_and_the_simulator_pick_the_same_winner() -> anyhow::Result<()> {
    let expected = simulated(1);
    if let Err(why) = namespaces_available() {
        eprintln!("SKIPPED (real half): needs root and iproute2 ({why})");
        return Ok(());
    }
    let hosts = Hosts::create()?;
    let dir = tempfile::tempdir()?;
    let options = NodeOptions {
        policy: POLICY.into(),
        metrics: true,
        ..NodeOptions::default()
    };
    let mut nodes = Vec::new();
    for (name, ns, ip) in [
        ("ann", &hosts.a, "10.231.0.1"),
        ("ben", &hosts.a, "10.231.0.1"),
        ("cat", &hosts.b, "10.231.0.2"),
        ("dan", &hosts.a, "10.231.0.1"),
    ] {
        let mut node = LocalNode::init(dir.path(), name)?;
        node.netns = Some(ns.clone());
        node.listen_ip = ip.into();
        nodes.push(node);
    }
    start_all(&mut nodes, &options).await?;
    let gid = group_of_all(&nodes, "race", LIMIT).await?;
    let mut sent = BTreeSet::new();
    for node in &nodes {
        sent.insert(node.send(&gid, &format!("{} before", node.name)).await?.id);
    }
    let all: Vec<&LocalNode> = nodes.iter().collect();
    wait_for("agreement before the cut", LIMIT, || {
        converged(&all, &gid, &sent)
    })
    .await?;
    let switches_before = [
        branch_switches(&nodes[0]).await?,
        branch_switches(&nodes[1]).await?,
        branch_switches(&nodes[2]).await?,
    ];

    hosts.link(false)?;
    nodes[2].remove(&gid, "dan").await?;
    nodes[1].update(&gid).await?;
    sent.insert(nodes[0].send(&gid, "ann during the cut").await?.id);
    sent.insert(nodes[2].send(&gid, "cat during the cut").await?.id);
    hosts.link(true)?;

    let remaining: Vec<&LocalNode> = nodes[..3].iter().collect();
    let after = wait_for("ann, ben and cat to converge", LIMIT, || {
        converged(&remaining, &gid, &sent)
    })
    .await?;
    let names = ["ann", "ben", "cat"];
    let mut switched = BTreeSet::new();
    for (i, node) in nodes[..3].iter().enumerate() {
        if branch_switches(node).await? > switches_before[i] {
            switched.insert(names[i]);
        }
    }
    let real = Outcome {
        switched,
        members_after: after.members.iter().cloned().collect(),
    };
    println!("simulated: {expected:?}\nreal:      {real:?}");
    assert_eq!(real, expected, "the real nodes and the simulator disagree");
    let dan = wait_for("dan to see he was removed", LIMIT, || async {
        Ok(nodes[3].status(&gid).await?.filter(|s| s.removed))
    })
    .await?;
    assert!(dan.removed);
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
