//! `chorus-sim compare`: the consistency modes of issue 8 side by side — every scenario run
//! under every mode with the same seeds, so the only difference between two cells is the
//! mode. Writes one CSV row per run (`runs.csv`), the table of medians and spread per mode ×
//! scenario (`compare.md`, `compare.csv`), and plots: availability against partition length
//! (for scenarios with a partition, swept over `--partition-lengths`) and latency CDFs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ds_p2p::engine::ConsistencyMode;

use crate::error::SimError;
use crate::report::svg::{Series, line_chart};
use crate::report::{Summary, write};
use crate::scenario::Scenario;
use crate::sweep::{CDF_POINTS, Setting, SweepRow, run_sweep_reporting, spread};

/// What to compare.
pub struct Compare<'a> {
    pub scenarios: &'a [(PathBuf, Scenario)],
    pub modes: &'a [ConsistencyMode],
    pub seeds: u64,
    pub seed_base: u64,
    pub jobs: usize,
    /// Partition lengths to sweep in scenarios that have a partition (empty: each
    /// scenario's own); the table uses each scenario's own length.
    pub partition_lengths: &'a [String],
    pub out: &'a Path,
    pub progress: bool,
}

/// One run: its scenario, mode, partition length (if swept) and results.
struct Row {
    scenario: String,
    mode: String,
    /// The partition length of this run, s, when the scenario has a partition.
    partition_s: Option<f64>,
    /// Whether this run is the scenario as written (what the table shows).
    as_written: bool,
    run: SweepRow,
}

/// A metric of the table: its column name and how to read it off a summary.
struct Metric {
    name: &'static str,
    get: fn(&Summary) -> f64,
    /// Decimal places in the table.
    places: usize,
}

const METRICS: [Metric; 11] = [
    Metric {
        name: "send availability",
        get: |s| s.availability_send,
        places: 3,
    },
    Metric {
        name: "commit availability",
        get: |s| s.availability_commit,
        places: 3,
    },
    Metric {
        name: "delivery p50 ms",
        get: |s| s.delivery_ms_p50,
        places: 0,
    },
    Metric {
        name: "delivery p99 ms",
        get: |s| s.delivery_ms_p99,
        places: 0,
    },
    Metric {
        name: "commit p50 ms",
        get: |s| s.commit_ms_p50,
        places: 0,
    },
    Metric {
        name: "commit p99 ms",
        get: |s| s.commit_ms_p99,
        places: 0,
    },
    Metric {
        name: "forks seen",
        get: |s| s.forks_detected as f64,
        places: 0,
    },
    Metric {
        name: "branch switches",
        get: |s| s.branch_switches as f64,
        places: 0,
    },
    Metric {
        name: "re-sent",
        get: |s| s.resent_messages as f64,
        places: 0,
    },
    Metric {
        name: "lost",
        get: |s| s.messages_lost as f64,
        places: 0,
    },
    Metric {
        name: "FS exposure state·s",
        get: |s| s.fs_exposure_state_s,
        places: 0,
    },
];

/// Runs the comparison and writes its files; returns the Markdown table.
pub fn run(c: &Compare<'_>) -> Result<String, SimError> {
    std::fs::create_dir_all(c.out).map_err(|source| SimError::Write {
        path: c.out.to_path_buf(),
        source,
    })?;
    let mut rows: Vec<Row> = Vec::new();
    let cells = c.scenarios.len() * c.modes.len();
    let mut cell = 0;
    for (path, scenario) in c.scenarios {
        let own_len = own_partition_s(scenario);
        let mut lengths: Vec<Option<String>> = vec![None];
        if own_len.is_some() {
            lengths.extend(c.partition_lengths.iter().cloned().map(Some));
        }
        for mode in c.modes {
            cell += 1;
            let settings: Vec<Setting> = lengths
                .iter()
                .map(|len| {
                    let mut s = vec![("consistency".to_string(), mode.to_string())];
                    if let Some(len) = len {
                        s.push(("partition".to_string(), len.clone()));
                    }
                    s
                })
                .collect();
            let label = format!(
                "compare [{cell}/{cells}] {} under {mode}",
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("?")
            );
            let progress = c.progress;
            let report = move |finished: usize, total: usize| {
                if progress {
                    eprintln!("{label}: {finished}/{total} runs");
                }
            };
            let runs =
                run_sweep_reporting(scenario, &settings, c.seed_base, c.seeds, c.jobs, &report)?;
            for run in runs {
                let swept = run.setting.iter().find(|(k, _)| k == "partition");
                let partition_s = match swept {
                    Some((_, v)) => Some(
                        crate::time::parse_duration(v)
                            .map_err(|m| SimError::Param {
                                param: "partition".into(),
                                message: m,
                            })?
                            .micros() as f64
                            / 1e6,
                    ),
                    None => own_len,
                };
                rows.push(Row {
                    scenario: scenario.name.clone(),
                    mode: mode.to_string(),
                    partition_s,
                    as_written: swept.is_none(),
                    run,
                });
            }
        }
    }
    write(&c.out.join("runs.csv"), &runs_csv(&rows))?;
    let (table, csv) = table(&rows);
    write(&c.out.join("compare.md"), &table)?;
    write(&c.out.join("compare.csv"), &csv)?;
    plots(c.out, &rows)?;
    Ok(table)
}

/// The length of a scenario's first partition, s, if it has one that heals.
fn own_partition_s(scenario: &Scenario) -> Option<f64> {
    let p = scenario.partitions.first()?;
    Some(p.heal?.saturating_sub(p.start) as f64 / 1e6)
}

fn runs_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "scenario,mode,partition_s,seed,converged,availability_send,availability_commit,delivery_ms_p50,delivery_ms_p99,commit_ms_p50,commit_ms_p99,commits_never_applied,forks_detected,branch_switches,resent_messages,messages_sent,messages_lost,fs_exposure_state_s,trace_hash\n",
    );
    for r in rows {
        let s = &r.run.summary;
        out.push_str(&format!(
            "{},{},{},{},{},{:.4},{:.4},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{},{},{:.1},{}\n",
            r.scenario,
            r.mode,
            r.partition_s.map(|v| format!("{v}")).unwrap_or_default(),
            s.seed,
            s.converged,
            s.availability_send,
            s.availability_commit,
            s.delivery_ms_p50,
            s.delivery_ms_p99,
            s.commit_ms_p50,
            s.commit_ms_p99,
            s.commits_never_applied,
            s.forks_detected,
            s.branch_switches,
            s.resent_messages,
            s.messages_sent,
            s.messages_lost,
            s.fs_exposure_state_s,
            s.trace_hash
        ));
    }
    out
}

/// The Markdown table (median [p10–p90] per scenario × mode, the scenarios as written) and
/// the same numbers as CSV.
fn table(rows: &[Row]) -> (String, String) {
    let mut cells: Vec<(String, String)> = Vec::new();
    let mut by: BTreeMap<(String, String), Vec<&Summary>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.as_written) {
        let key = (r.scenario.clone(), r.mode.clone());
        if !by.contains_key(&key) {
            cells.push(key.clone());
        }
        by.entry(key).or_default().push(&r.run.summary);
    }
    let mut md = String::from("| scenario | mode | runs | converged |");
    let mut csv = String::from("scenario,mode,runs,converged");
    for m in &METRICS {
        md.push_str(&format!(" {} |", m.name));
        let col = m.name.replace([' ', '·'], "_");
        csv.push_str(&format!(",{col}_p10,{col}_median,{col}_p90"));
    }
    md.push_str("\n|---|---|---|---|");
    md.push_str(&"---|".repeat(METRICS.len()));
    md.push('\n');
    csv.push('\n');
    for key in cells {
        let runs = &by[&key];
        let converged = runs.iter().filter(|s| s.converged).count();
        md.push_str(&format!(
            "| {} | {} | {} | {} |",
            key.0,
            key.1,
            runs.len(),
            converged
        ));
        csv.push_str(&format!("{},{},{},{}", key.0, key.1, runs.len(), converged));
        for m in &METRICS {
            let (lo, mid, hi) = spread(runs.iter().map(|s| (m.get)(s)).collect());
            let p = m.places;
            md.push_str(&format!(" {mid:.p$} [{lo:.p$}–{hi:.p$}] |"));
            csv.push_str(&format!(",{lo},{mid},{hi}"));
        }
        md.push('\n');
        csv.push('\n');
    }
    (md, csv)
}

/// `availability-commit-vs-partition.svg` and `availability-send-vs-partition.svg` (median
/// availability against partition length, a line per scenario × mode, for the scenarios
/// swept over `--partition-lengths`) and, per scenario, `latency-cdf-<name>.svg`
/// and `commit-cdf-<name>.svg` (each mode's CDF, the per-run quantile curves averaged).
fn plots(dir: &Path, rows: &[Row]) -> Result<(), SimError> {
    let modes: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for r in rows {
            if !v.contains(&r.mode) {
                v.push(r.mode.clone());
            }
        }
        v
    };
    let scenarios: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for r in rows {
            if !v.contains(&r.scenario) {
                v.push(r.scenario.clone());
            }
        }
        v
    };
    for (what, get) in [
        (
            "commit",
            (|s: &Summary| s.availability_commit) as fn(&Summary) -> f64,
        ),
        ("send", |s: &Summary| s.availability_send),
    ] {
        // One line per scenario × mode: scenarios differ in sides and windows.
        let mut series = Vec::new();
        for scenario in &scenarios {
            for mode in &modes {
                let mut by_len: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for r in rows
                    .iter()
                    .filter(|r| &r.mode == mode && &r.scenario == scenario)
                {
                    if let Some(len) = r.partition_s {
                        by_len
                            .entry((len * 1000.0).round() as u64)
                            .or_default()
                            .push(get(&r.run.summary));
                    }
                }
                if by_len.len() < 2 {
                    continue; // one length is a point, not a line
                }
                series.push(Series {
                    label: format!("{scenario} {mode}"),
                    points: by_len
                        .into_iter()
                        .map(|(len_ms, v)| (len_ms as f64 / 1000.0, spread(v).1))
                        .collect(),
                });
            }
        }
        if !series.is_empty() {
            write(
                &dir.join(format!("availability-{what}-vs-partition.svg")),
                &line_chart(
                    &format!("{what} availability (median over runs) vs partition length"),
                    "partition length (s)",
                    "fraction of member-time",
                    &series,
                ),
            )?;
        }
    }
    for scenario in &scenarios {
        for (file, title, pick) in [
            (
                "latency-cdf",
                "application delivery latency CDF",
                (|r: &SweepRow| &r.delivery_cdf) as fn(&SweepRow) -> &Vec<f64>,
            ),
            (
                "commit-cdf",
                "commit latency CDF (intent to applied everywhere)",
                |r: &SweepRow| &r.commit_cdf,
            ),
        ] {
            let mut lines = Vec::new();
            for mode in &modes {
                let curves: Vec<&Vec<f64>> = rows
                    .iter()
                    .filter(|r| &r.scenario == scenario && &r.mode == mode && r.as_written)
                    .map(|r| pick(&r.run))
                    .filter(|c| c.len() == CDF_POINTS)
                    .collect();
                if curves.is_empty() {
                    continue;
                }
                let points = (0..CDF_POINTS)
                    .map(|k| {
                        // The mean of the runs' k-th quantiles: the CDF of a typical run.
                        let mean = curves.iter().map(|c| c[k]).sum::<f64>() / curves.len() as f64;
                        (mean, k as f64 / (CDF_POINTS - 1) as f64)
                    })
                    .collect();
                lines.push(Series {
                    label: mode.clone(),
                    points,
                });
            }
            if lines.is_empty() {
                continue;
            }
            write(
                &dir.join(format!("{file}-{scenario}.svg")),
                &line_chart(&format!("{scenario}: {title}"), "ms", "fraction", &lines),
            )?;
        }
    }
    Ok(())
}
