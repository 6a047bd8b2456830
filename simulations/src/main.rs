//! `chorus-sim`: run scenarios, check determinism, sweep parameters, benchmark.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use simulations::{RunOptions, Scenario, bench, report};

/// Deterministic network simulator for Chorus: real ds-p2p engines (real MLS, fork window,
/// tie-breakers) over a modelled network, in virtual time. The same seed replays a run.
#[derive(Parser)]
#[command(name = "chorus-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario and write summary.json, timeline.csv, trace.jsonl and SVG plots.
    Run {
        /// The scenario file (TOML), e.g. simulations/scenarios/two-committers.toml.
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (default: target/sim-out/<scenario>-<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not write trace.jsonl (it is still hashed).
        #[arg(long)]
        no_trace: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Every engine verifies every Ed25519 signature itself, instead of sharing the
        /// run's memo of verifications already made (same outcomes and trace; slower).
        #[arg(long)]
        verify_every_signature: bool,
    },
    /// Run a scenario twice with the same seed and compare trace hashes.
    CheckDeterminism {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a scenario over a grid of parameters × seeds; writes runs.csv, summary.md,
    /// summary.csv and plots.
    Sweep {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// A parameter and its values, e.g. `fork_window=10s,60s,300s`,
        /// `policy=lowest-ref,removes-first,deepest-branch`, `partition=20s,90s`
        /// (also max_held, beacon_interval, sync_interval, loss, dissemination, mesh_degree).
        /// Repeat for a grid.
        #[arg(long = "param", value_name = "NAME=V1,V2,..")]
        params: Vec<String>,
        /// Seeds per setting.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed_base: u64,
        /// Parallel runs (default: the cores available).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory (default: target/sim-out/sweep-<scenario>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare consistency modes: run every scenario under every mode with the same seeds and
    /// write runs.csv, compare.md and compare.csv (median [p10–p90] per scenario × mode of
    /// send and commit availability, delivery and commit latency p50/p99, forks seen, branch
    /// switches, re-sent and lost messages, forward-secrecy exposure) and SVG plots:
    /// availability vs partition length (scenarios with a partition, swept over
    /// --partition-lengths) and latency CDFs per scenario. Prints the table.
    ///
    /// Example: chorus-sim compare simulations/scenarios/no-faults.toml
    /// simulations/scenarios/partition-heals.toml --modes
    /// accept-and-hold,settle-then-pick,sequencer --seeds 5
    Compare {
        /// Scenario files (TOML); their own `[engine] consistency` is overridden.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Comma-separated modes: accept-and-hold, settle-then-pick (2 s settle),
        /// settle-then-pick:<ms>, sequencer.
        #[arg(long, default_value = "accept-and-hold,settle-then-pick,sequencer")]
        modes: String,
        /// Seeds per scenario and mode (the same seeds for every mode).
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed_base: u64,
        /// Also run scenarios that have a partition with these partition lengths, for the
        /// availability-vs-partition plot, e.g. `10s,20s,40s` (the table uses each
        /// scenario's own length).
        #[arg(long, value_delimiter = ',')]
        partition_lengths: Vec<String>,
        /// Parallel runs (default: the cores available).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "target/sim-out/compare")]
        out: PathBuf,
        /// No progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Benchmark: events per wall-second, virtual-to-wall ratio and peak memory for
    /// 100 nodes / 10 groups of 10 and 1,000 nodes / 20 groups of 50. The groups are built
    /// first (one every 15 s, the workload starts at 6 min); then, for `--duration`, every
    /// member sends `--rate` messages a minute, every group sees a commit every five minutes
    /// and a partition of 30 s to 5 min (half the nodes from the other half) starts every
    /// ten minutes — the load of issue 5. The trace is off (`trace_hash` empty).
    Bench {
        /// Virtual duration of the workload (after the 6 min of group setup).
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Which cases: small, large or both.
        #[arg(long, default_value = "both")]
        case: String,
        /// Messages per member per minute.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// No partitions.
        #[arg(long)]
        no_partitions: bool,
        /// Seed (also draws the partition lengths).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the generated scenario files into this directory as well.
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Every engine verifies every Ed25519 signature itself, instead of sharing the
        /// run's memo of verifications already made (same outcomes and trace; slower).
        #[arg(long)]
        verify_every_signature: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            scenario,
            seed,
            out,
            no_trace,
            quiet,
            verify_every_signature,
        } => run(
            &scenario,
            seed,
            out,
            no_trace,
            quiet,
            verify_every_signature,
        ),
        Cmd::CheckDeterminism { scenario, seed } => check_determinism(&scenario, seed),
        Cmd::Sweep {
            scenario,
            params,
            seeds,
            seed_base,
            jobs,
            out,
        } => sweep(&scenario, &params, seeds, seed_base, jobs, out),
        Cmd::Compare {
            scenarios,
            modes,
            seeds,
            seed_base,
            partition_lengths,
            jobs,
            out,
            quiet,
        } => compare(
            &scenarios,
            &modes,
            seeds,
            seed_base,
            &partition_lengths,
            jobs,
            &out,
            quiet,
        ),
        Cmd::Bench {
            duration,
            case,
            rate,
            no_partitions,
            seed,
            scenarios,
            quiet,
            verify_every_signature,
        } => bench::run(&bench::Load {
            duration: &duration,
            case: &case,
            rate,
            partitions: !no_partitions,
            seed,
            scenarios: scenarios.as_deref(),
            quiet,
            verify_every_signature,
        })
        .map(|_| ())
        .map_err(Into::into),
    }
}

fn load(path: &Path) -> Result<Scenario> {
    Ok(Scenario::load(path)?)
}

fn run(
    path: &Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    no_trace: bool,
    quiet: bool,
    verify_every_signature: bool,
) -> Result<()> {
    let scenario = load(path)?;
    let seed = seed.unwrap_or(scenario.seed);
    let dir =
        out.unwrap_or_else(|| PathBuf::from(format!("target/sim-out/{}-{seed}", scenario.name)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "chorus-sim: {} (seed {seed}, {} nodes) -> {}",
        scenario.name,
        scenario.nodes,
        dir.display()
    );
    let options = RunOptions {
        seed: Some(seed),
        trace_path: (!no_trace).then(|| dir.join("trace.jsonl")),
        progress: !quiet,
        verify_every_signature,
        ..RunOptions::default()
    };
    let result = simulations::run(&scenario, &options)?;
    report::write_run(&dir, &result)?;
    let s = &result.summary;
    println!(
        "{}: converged {} (in {} ms), sent {}, delivered {}, lost {}, duplicates {}, forks {}, switches {}, max held {}, fs violations {}, {} events, {:.0}x real time, trace {}",
        s.scenario,
        s.converged,
        s.convergence_ms
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into()),
        s.messages_sent,
        s.messages_delivered,
        s.messages_lost,
        s.duplicates_delivered,
        s.forks_detected,
        s.branch_switches,
        s.max_held_branches,
        s.fs_violations,
        s.events,
        s.virtual_to_wall,
        &s.trace_hash[..16]
    );
    println!(
        "{}: availability send {:.3} commit {:.3}, delivery p50/p99 {:.0}/{:.0} ms, commit p50/p99 {:.0}/{:.0} ms ({} never applied), resent {}, FS exposure {:.0} state-s",
        s.consistency,
        s.availability_send,
        s.availability_commit,
        s.delivery_ms_p50,
        s.delivery_ms_p99,
        s.commit_ms_p50,
        s.commit_ms_p99,
        s.commits_never_applied,
        s.resent_messages,
        s.fs_exposure_state_s
    );
    for note in &s.notes {
        println!("note: {note}");
    }
    Ok(())
}

fn check_determinism(path: &Path, seed: Option<u64>) -> Result<()> {
    let scenario = load(path)?;
    let options = RunOptions {
        seed,
        trace_path: None,
        progress: false,
        ..RunOptions::default()
    };
    let a = simulations::run(&scenario, &options)?.summary;
    let b = simulations::run(&scenario, &options)?.summary;
    println!("run 1: {}\nrun 2: {}", a.trace_hash, b.trace_hash);
    if a.trace_hash != b.trace_hash {
        bail!("{} seed {}: the two runs differ", scenario.name, a.seed);
    }
    println!(
        "{} seed {}: deterministic ({} trace lines)",
        scenario.name, a.seed, a.trace_lines
    );
    Ok(())
}

fn sweep(
    path: &Path,
    params: &[String],
    seeds: u64,
    seed_base: u64,
    jobs: Option<usize>,
    out: Option<PathBuf>,
) -> Result<()> {
    use simulations::sweep;
    let scenario = load(path)?;
    let parsed = params
        .iter()
        .map(|p| sweep::parse_param(p))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = sweep::grid(&parsed);
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let dir =
        out.unwrap_or_else(|| PathBuf::from(format!("target/sim-out/sweep-{}", scenario.name)));
    eprintln!(
        "chorus-sim sweep: {} settings x {seeds} seeds of {} on {jobs} threads -> {}",
        settings.len(),
        scenario.name,
        dir.display()
    );
    let rows = sweep::run_sweep(&scenario, &settings, seed_base, seeds, jobs, true)?;
    let stats = sweep::write_sweep(&dir, &rows)?;
    print!("{}", sweep::table(&stats));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn compare(
    paths: &[PathBuf],
    modes: &str,
    seeds: u64,
    seed_base: u64,
    partition_lengths: &[String],
    jobs: Option<usize>,
    out: &Path,
    quiet: bool,
) -> Result<()> {
    let modes = modes
        .split(',')
        .map(|m| m.trim().parse::<ds_p2p::engine::ConsistencyMode>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--modes: {e}"))?;
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    for len in partition_lengths {
        simulations::time::parse_duration(len)
            .map_err(|e| anyhow::anyhow!("--partition-lengths {len:?}: {e}"))?;
    }
    let scenarios = paths
        .iter()
        .map(|p| load(p).map(|s| (p.clone(), s)))
        .collect::<Result<Vec<_>>>()?;
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let extra = partition_lengths.len() as u64;
    let with_partition = scenarios
        .iter()
        .filter(|(_, s)| !s.partitions.is_empty())
        .count() as u64;
    let total = (scenarios.len() as u64 + with_partition * extra) * modes.len() as u64 * seeds;
    eprintln!(
        "chorus-sim compare: {} scenarios x {} modes x {seeds} seeds ({total} runs) on {jobs} threads -> {}",
        scenarios.len(),
        modes.len(),
        out.display()
    );
    let table = simulations::compare::run(&simulations::compare::Compare {
        scenarios: &scenarios,
        modes: &modes,
        seeds,
        seed_base,
        jobs,
        partition_lengths,
        out,
        progress: !quiet,
    })?;
    print!("{table}");
    Ok(())
}
