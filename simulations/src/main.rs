//! `chorus-sim`: run scenarios, check determinism, sweep parameters, benchmark.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use simulations::{RunOptions, Scenario, report};

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
    /// Benchmark: events per wall-second and virtual-to-wall ratio for 100 nodes / 10 groups
    /// of 10 and 1,000 nodes / 20 groups of 50.
    Bench {
        /// Virtual duration of each case.
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Which cases: small, large or both.
        #[arg(long, default_value = "both")]
        case: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
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
        } => run(&scenario, seed, out, no_trace, quiet),
        Cmd::CheckDeterminism { scenario, seed } => check_determinism(&scenario, seed),
        Cmd::Sweep {
            scenario,
            params,
            seeds,
            seed_base,
            jobs,
            out,
        } => sweep(&scenario, &params, seeds, seed_base, jobs, out),
        Cmd::Bench {
            duration,
            case,
            quiet,
        } => bench(&duration, &case, quiet),
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

fn bench(duration: &str, case: &str, quiet: bool) -> Result<()> {
    let cases: Vec<(&str, usize, usize, usize)> = match case {
        "small" => vec![("100 nodes, 10 groups of 10", 100, 10, 10)],
        "large" => vec![("1000 nodes, 20 groups of 50", 1000, 20, 50)],
        "both" => vec![
            ("100 nodes, 10 groups of 10", 100, 10, 10),
            ("1000 nodes, 20 groups of 50", 1000, 20, 50),
        ],
        other => bail!("unknown case {other:?}: small, large or both"),
    };
    println!("| case | virtual | wall | events | events / wall s | virtual / wall | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for (name, nodes, groups, size) in cases {
        let text = format!(
            r#"
            description = "bench: {name}"
            duration = "{duration}"
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
            traffic = {{ rate_per_min = 0.2, size = 256, start = "6m" }}
            random_commits = {{ rate_per_min = 0.2, start = "6m", update = 1 }}
            "#
        );
        let scenario = Scenario::parse("bench", &text)?;
        let options = RunOptions {
            seed: Some(1),
            trace_path: None,
            progress: !quiet,
        };
        let s = simulations::run(&scenario, &options)?.summary;
        let wall_s = s.wall_ms as f64 / 1000.0;
        println!(
            "| {name} | {} s | {wall_s:.1} s | {} | {:.0} | {:.1}x | {} |",
            s.virtual_duration_ms / 1000,
            s.events,
            s.events as f64 / wall_s.max(1e-9),
            s.virtual_to_wall,
            peak_rss()
        );
    }
    Ok(())
}

/// The process's peak resident memory (Linux), for the bench table.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}
