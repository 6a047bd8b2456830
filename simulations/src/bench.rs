//! The speed benchmark (`chorus-sim bench`): two generated scenarios with the load of issue 5
//! — 100 nodes in 10 groups of 10 and 1,000 nodes in 20 groups of 50; groups built one every
//! 15 s, then for the workload's duration every member sends `rate` messages a minute, every
//! group sees a commit every five minutes on average, and a partition of 30 s to 5 min (half
//! the nodes from the other half) starts every ten minutes. It reports events per wall
//! second, the virtual-to-wall ratio and the peak memory. The trace is off: the benchmark
//! measures the simulation, not the formatting of its trace.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::SimError;
use crate::rng::SimRng;
use crate::scenario::Scenario;
use crate::sim::RunOptions;
use crate::time::{SEC, parse_duration};

/// When the workload starts: after the 20 groups of the large case are built (15 s apart).
const WORKLOAD_START_S: u64 = 360;
/// A partition starts every this many seconds of the workload.
const PARTITION_EVERY_S: u64 = 600;

/// One benchmark case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub nodes: usize,
    pub groups: usize,
    pub size: usize,
}

/// The two cases of issue 5.
pub const CASES: [Case; 2] = [
    Case {
        name: "small",
        nodes: 100,
        groups: 10,
        size: 10,
    },
    Case {
        name: "large",
        nodes: 1000,
        groups: 20,
        size: 50,
    },
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// The workload's virtual duration (after the setup), e.g. `"1h"`.
    pub duration: &'a str,
    /// `small`, `large` or `both`.
    pub case: &'a str,
    /// Messages per member per minute.
    pub rate: f64,
    /// A partition every ten minutes.
    pub partitions: bool,
    pub seed: u64,
    /// Where to write the generated scenarios too.
    pub scenarios: Option<&'a Path>,
    pub quiet: bool,
    /// Every engine verifies every signature (no shared memo): the cost before the memo.
    pub verify_every_signature: bool,
}

/// The scenario text of `case` under `load`.
pub fn scenario_text(case: &Case, load: &Load<'_>) -> Result<String, SimError> {
    let workload = parse_duration(load.duration).map_err(|message| SimError::Param {
        param: "--duration".into(),
        message,
    })?;
    let end_s = WORKLOAD_START_S + workload.micros().div_ceil(SEC);
    let mut text = String::new();
    let _ = write!(
        text,
        r#"description = "bench {name}: {nodes} nodes, {groups} groups of {size}, {rate} msg/min/member, a commit per group every 5 min{parts}"
duration = "{end_s}s"
nodes = {nodes}
[network]
latency = {{ dist = "lognormal", median = "50ms", sigma = 0.5 }}
loss = 0.01
[dissemination]
mode = "mesh"
[sync]
interval = "60s"
[metrics]
interval = "10s"
[[groups]]
name = "g"
size = {size}
copies = {groups}
stagger = "15s"
traffic = {{ rate_per_min = {rate}, size = 256, start = "{WORKLOAD_START_S}s" }}
random_commits = {{ rate_per_min = 0.2, start = "{WORKLOAD_START_S}s", update = 1 }}
"#,
        name = case.name,
        nodes = case.nodes,
        groups = case.groups,
        size = case.size,
        rate = load.rate,
        parts = if load.partitions {
            ", a partition of 30 s to 5 min every 10 min"
        } else {
            ""
        },
    );
    if load.partitions {
        // Lengths drawn from their own stream, so they do not depend on the run's draws.
        let mut rng = SimRng::new(load.seed ^ 0x7061_7274);
        let mut start = WORKLOAD_START_S;
        while start < end_s {
            let len = rng.uniform(30.0, 300.0).round() as u64;
            let _ = write!(
                text,
                "[[partitions]]\nstart = \"{start}s\"\nheal = \"{}s\"\nsides = {{ a = [\"n0..n{}\"] }}\n",
                start + len,
                case.nodes / 2
            );
            start += PARTITION_EVERY_S;
        }
    }
    Ok(text)
}

/// One line of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: Case,
    pub virtual_s: f64,
    pub wall_s: f64,
    pub events: u64,
    /// CPU seconds of the simulator's thread (the machine may be shared: wall ≥ CPU).
    pub cpu_s: Option<f64>,
    /// Signature verifications answered from the shared memo.
    pub memo_hits: u64,
    pub peak_rss: String,
}

/// Runs the cases of `load`, printing a Markdown table row after each.
pub fn run(load: &Load<'_>) -> Result<Vec<Row>, SimError> {
    let cases: Vec<Case> = match load.case {
        "small" => vec![CASES[0]],
        "large" => vec![CASES[1]],
        "both" => CASES.to_vec(),
        other => {
            return Err(SimError::Param {
                param: "--case".into(),
                message: format!("unknown case {other:?}: small, large or both"),
            });
        }
    };
    println!(
        "| case | virtual | wall (CPU) | events | events / wall s | virtual / wall (per CPU s) | verifications from memo | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for case in cases {
        let text = scenario_text(&case, load)?;
        let name = format!("bench-{}", case.name);
        if let Some(dir) = load.scenarios {
            let path = dir.join(format!("{name}.toml"));
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&path, &text))
                .map_err(|source| SimError::Write { path, source })?;
        }
        let scenario = Scenario::parse(&name, &text)?;
        let options = RunOptions {
            seed: Some(load.seed),
            progress: !load.quiet,
            untraced: true,
            verify_every_signature: load.verify_every_signature,
            ..RunOptions::default()
        };
        let cpu_before = thread_cpu_s();
        let result = crate::run(&scenario, &options)?;
        let cpu_s = thread_cpu_s()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let s = &result.summary;
        let row = Row {
            case,
            virtual_s: s.virtual_duration_ms as f64 / 1000.0,
            wall_s: s.wall_ms as f64 / 1000.0,
            events: s.events,
            cpu_s,
            memo_hits: result.signature_memo_hits,
            peak_rss: peak_rss(),
        };
        let (cpu, per_cpu) = match row.cpu_s {
            Some(cpu) => (
                format!(" ({cpu:.1} s)"),
                format!(" ({:.1}x)", row.virtual_s / cpu.max(1e-9)),
            ),
            None => (String::new(), String::new()),
        };
        println!(
            "| {} nodes, {} groups of {} | {:.0} s | {:.1} s{cpu} | {} | {:.0} | {:.1}x{per_cpu} | {} | {} |",
            case.nodes,
            case.groups,
            case.size,
            row.virtual_s,
            row.wall_s,
            row.events,
            row.events as f64 / row.wall_s.max(1e-9),
            row.virtual_s / row.wall_s.max(1e-9),
            row.memo_hits,
            row.peak_rss
        );
        rows.push(row);
    }
    Ok(rows)
}

/// CPU time (user + system) of the calling thread so far, from Linux's
/// `/proc/thread-self/schedstat` (nanoseconds on the CPU); `None` elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The process's peak resident memory (Linux `VmHWM`), for the table.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(partitions: bool) -> Load<'static> {
        Load {
            duration: "1h",
            case: "both",
            rate: 1.0,
            partitions,
            seed: 1,
            scenarios: None,
            quiet: true,
            verify_every_signature: false,
        }
    }

    #[test]
    fn the_generated_scenarios_carry_the_issue_load() {
        let text = scenario_text(&CASES[1], &load(true)).unwrap();
        let sc = Scenario::parse("bench-large", &text).unwrap();
        assert_eq!(sc.nodes, 1000);
        assert_eq!(sc.groups.len(), 20);
        assert_eq!(sc.duration, (WORKLOAD_START_S + 3600) * SEC);
        // One partition every 10 min of the hour, each 30 s to 5 min long.
        assert_eq!(sc.partitions.len(), 6);
        for (k, p) in sc.partitions.iter().enumerate() {
            assert_eq!(p.start, (WORKLOAD_START_S + 600 * k as u64) * SEC);
            let len = p.heal.unwrap() - p.start;
            assert!((30 * SEC..=300 * SEC).contains(&len), "{len}");
        }
        let quiet = scenario_text(&CASES[0], &load(false)).unwrap();
        assert!(
            Scenario::parse("bench-small", &quiet)
                .unwrap()
                .partitions
                .is_empty()
        );
    }
}
