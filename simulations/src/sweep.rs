//! Sweeps: a scenario run over a grid of parameter settings × seeds, in parallel where
//! cores allow, with one CSV row per run, a table of medians and spread per setting, and
//! plots.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::SimError;
use crate::metrics::quantile;
use crate::report::Summary;
use crate::report::svg::bar_chart;
use crate::scenario::Scenario;
use crate::sim::RunOptions;

/// One setting of the grid: (parameter, value) pairs.
pub type Setting = Vec<(String, String)>;

/// Parses `name=v1,v2,...`.
pub fn parse_param(text: &str) -> Result<(String, Vec<String>), SimError> {
    let (name, values) = text.split_once('=').ok_or_else(|| SimError::Param {
        param: text.to_string(),
        message: "expected name=value1,value2,...".into(),
    })?;
    let values: Vec<String> = values
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(SimError::Param {
            param: name.to_string(),
            message: "no values".into(),
        });
    }
    Ok((name.trim().to_string(), values))
}

/// Every combination of the parameters' values, the first parameter varying slowest.
pub fn grid(params: &[(String, Vec<String>)]) -> Vec<Setting> {
    let mut out: Vec<Setting> = vec![Vec::new()];
    for (name, values) in params {
        out = out
            .into_iter()
            .flat_map(|s| {
                values.iter().map(move |v| {
                    let mut s = s.clone();
                    s.push((name.clone(), v.clone()));
                    s
                })
            })
            .collect();
    }
    out
}

/// Applies one `name=value` parameter to a scenario.
pub fn apply(scenario: &mut Scenario, name: &str, value: &str) -> Result<(), SimError> {
    let err = |m: String| SimError::Param {
        param: name.to_string(),
        message: m,
    };
    let dur = |v: &str| crate::time::parse_duration(v).map_err(err);
    match name {
        "fork_window" => scenario.engine.fork_window = dur(value)?,
        "policy" => scenario.engine.policy = value.parse().map_err(err)?,
        "consistency" => scenario.engine.consistency = value.parse().map_err(err)?,
        "max_held" => scenario.engine.max_held = value.parse().map_err(|e| err(format!("{e}")))?,
        "beacon_interval" => scenario.engine.beacon_interval = dur(value)?,
        "sync_interval" => scenario.sync.interval = dur(value)?,
        "loss" => {
            let p: f64 = value.parse().map_err(|e| err(format!("{e}")))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(err(format!("{p} is not a probability")));
            }
            scenario.network.loss = p;
        }
        "dissemination" => {
            scenario.dissemination.mode = match value {
                "flood" => crate::scenario::Mode::Flood,
                "mesh" => crate::scenario::Mode::Mesh,
                other => return Err(err(format!("{other:?}: flood or mesh"))),
            }
        }
        "mesh_degree" => {
            let d: usize = value.parse().map_err(|e| err(format!("{e}")))?;
            if d == 0 {
                return Err(err("must be at least 1".into()));
            }
            scenario.dissemination.mesh_degree = d;
        }
        "partition" => {
            // Every partition lasts this long (its heal moves).
            let len = dur(value)?.micros();
            if scenario.partitions.is_empty() {
                return Err(err("the scenario has no partition".into()));
            }
            for p in &mut scenario.partitions {
                p.heal = Some(p.start + len);
            }
        }
        other => {
            return Err(SimError::Param {
                param: other.to_string(),
                message: "unknown; known: fork_window, policy, consistency, max_held, beacon_interval, sync_interval, loss, dissemination, mesh_degree, partition".into(),
            });
        }
    }
    Ok(())
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub setting: Setting,
    pub summary: Summary,
    /// The run's application delivery latencies at [`CDF_POINTS`] evenly spaced quantiles
    /// (0 to 1), ms: enough to draw its CDF without keeping every delivery.
    pub delivery_cdf: Vec<f64>,
    /// The same for commit latencies (intent to applied everywhere).
    pub commit_cdf: Vec<f64>,
}

/// Quantiles kept per run for latency CDFs (0 %, 2 %, …, 100 %).
pub const CDF_POINTS: usize = 51;

/// `sorted` at [`CDF_POINTS`] evenly spaced quantiles (empty when `sorted` is).
pub fn cdf_of(sorted: &[f64]) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    (0..CDF_POINTS)
        .map(|k| quantile(sorted, k as f64 / (CDF_POINTS - 1) as f64))
        .collect()
}

/// Runs every setting with seeds `seed_base..seed_base + seeds`, on `jobs` threads.
pub fn run_sweep(
    scenario: &Scenario,
    settings: &[Setting],
    seed_base: u64,
    seeds: u64,
    jobs: usize,
    progress: bool,
) -> Result<Vec<SweepRow>, SimError> {
    run_sweep_reporting(
        scenario,
        settings,
        seed_base,
        seeds,
        jobs,
        &|finished, total| {
            if progress && finished.is_multiple_of(total.div_ceil(20).max(1)) {
                eprintln!("sweep: {finished}/{total} runs");
            }
        },
    )
}

/// [`run_sweep`], calling `report(finished, total)` after every run.
pub fn run_sweep_reporting(
    scenario: &Scenario,
    settings: &[Setting],
    seed_base: u64,
    seeds: u64,
    jobs: usize,
    report: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<SweepRow>, SimError> {
    let mut work = Vec::new();
    for setting in settings {
        let mut sc = scenario.clone();
        for (name, value) in setting {
            apply(&mut sc, name, value)?;
        }
        for k in 0..seeds {
            work.push((setting.clone(), sc.clone(), seed_base + k));
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SweepRow, SimError>>>> =
        Mutex::new((0..work.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some((setting, sc, seed)) = work.get(k) else {
                        break;
                    };
                    let options = RunOptions {
                        seed: Some(*seed),
                        ..RunOptions::default()
                    };
                    let row = crate::run(sc, &options).map(|r| SweepRow {
                        setting: setting.clone(),
                        delivery_cdf: cdf_of(&r.metrics.latencies_ms()),
                        commit_cdf: cdf_of(&r.metrics.commit_latencies_ms().0),
                        summary: r.summary,
                    });
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    report(finished, work.len());
                    if let Ok(mut r) = results.lock() {
                        r[k] = Some(row);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    results.into_iter().flatten().collect()
}

fn label(setting: &Setting) -> String {
    setting
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Medians and spread of one setting.
#[derive(Debug, Clone)]
pub struct SettingStats {
    pub setting: Setting,
    pub runs: usize,
    pub converged: usize,
    /// (p10, median, p90) of convergence time over converged runs, ms.
    pub convergence_ms: (f64, f64, f64),
    pub forks: (f64, f64, f64),
    pub switches: (f64, f64, f64),
    pub lost: (f64, f64, f64),
    pub max_held: (f64, f64, f64),
    pub fs_violations: u64,
    pub duplicates: u64,
}

pub(crate) fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (quantile(&v, 0.1), quantile(&v, 0.5), quantile(&v, 0.9))
}

/// Groups rows by setting (in grid order).
pub fn stats(rows: &[SweepRow]) -> Vec<SettingStats> {
    let mut order: Vec<Setting> = Vec::new();
    let mut by: BTreeMap<String, Vec<&Summary>> = BTreeMap::new();
    for r in rows {
        let key = label(&r.setting);
        if !by.contains_key(&key) {
            order.push(r.setting.clone());
        }
        by.entry(key).or_default().push(&r.summary);
    }
    order
        .into_iter()
        .map(|setting| {
            let runs = &by[&label(&setting)];
            let f = |g: &dyn Fn(&Summary) -> f64| spread(runs.iter().map(|s| g(s)).collect());
            SettingStats {
                runs: runs.len(),
                converged: runs.iter().filter(|s| s.converged).count(),
                convergence_ms: spread(
                    runs.iter()
                        .filter_map(|s| s.convergence_ms)
                        .map(|v| v as f64)
                        .collect(),
                ),
                forks: f(&|s| s.forks_detected as f64),
                switches: f(&|s| s.branch_switches as f64),
                lost: f(&|s| s.messages_lost as f64),
                max_held: f(&|s| s.max_held_branches as f64),
                fs_violations: runs.iter().map(|s| s.fs_violations).sum(),
                duplicates: runs.iter().map(|s| s.duplicates_delivered).sum(),
                setting,
            }
        })
        .collect()
}

fn fmt3(v: (f64, f64, f64)) -> String {
    format!("{:.0} [{:.0}–{:.0}]", v.1, v.0, v.2)
}

/// The Markdown table of a sweep: median [p10–p90] per setting.
pub fn table(stats: &[SettingStats]) -> String {
    let mut out = String::from(
        "| setting | runs | converged | convergence ms | forks | switches | lost | max held | fs violations | duplicates |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in stats {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            label(&s.setting),
            s.runs,
            s.converged,
            if s.converged > 0 {
                fmt3(s.convergence_ms)
            } else {
                "–".into()
            },
            fmt3(s.forks),
            fmt3(s.switches),
            fmt3(s.lost),
            fmt3(s.max_held),
            s.fs_violations,
            s.duplicates
        ));
    }
    out
}

/// Writes `runs.csv`, `summary.md`, `summary.csv` and the plots into `dir`.
pub fn write_sweep(dir: &Path, rows: &[SweepRow]) -> Result<Vec<SettingStats>, SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let params: Vec<String> = rows
        .first()
        .map(|r| r.setting.iter().map(|p| p.0.clone()).collect())
        .unwrap_or_default();
    let mut csv = params.join(",");
    csv.push_str(if params.is_empty() { "" } else { "," });
    csv.push_str("seed,converged,convergence_ms,messages_sent,messages_delivered,messages_lost,duplicates_delivered,forks_detected,branch_switches,resent_messages,reissued_intents,max_held_branches,fs_violations,events,wall_ms,trace_hash\n");
    for r in rows {
        let s = &r.summary;
        for (_, v) in &r.setting {
            csv.push_str(v);
            csv.push(',');
        }
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            s.seed,
            s.converged,
            s.convergence_ms.map(|v| v.to_string()).unwrap_or_default(),
            s.messages_sent,
            s.messages_delivered,
            s.messages_lost,
            s.duplicates_delivered,
            s.forks_detected,
            s.branch_switches,
            s.resent_messages,
            s.reissued_intents,
            s.max_held_branches,
            s.fs_violations,
            s.events,
            s.wall_ms,
            s.trace_hash
        ));
    }
    crate::report::write(&dir.join("runs.csv"), &csv)?;
    let st = stats(rows);
    crate::report::write(&dir.join("summary.md"), &table(&st))?;
    let mut scsv = String::from(
        "setting,runs,converged,convergence_p10,convergence_median,convergence_p90,forks_median,switches_median,lost_median,lost_p90,max_held_median,fs_violations,duplicates\n",
    );
    for s in &st {
        scsv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            label(&s.setting),
            s.runs,
            s.converged,
            s.convergence_ms.0,
            s.convergence_ms.1,
            s.convergence_ms.2,
            s.forks.1,
            s.switches.1,
            s.lost.1,
            s.lost.2,
            s.max_held.1,
            s.fs_violations,
            s.duplicates
        ));
    }
    crate::report::write(&dir.join("summary.csv"), &scsv)?;
    let cats: Vec<String> = st.iter().map(|s| label(&s.setting)).collect();
    let conv = bar_chart(
        "median convergence time after the heal (p10–p90), converged runs",
        "ms",
        &cats,
        &[(
            "convergence ms".into(),
            st.iter().map(|s| s.convergence_ms.1).collect(),
        )],
        Some(&[st
            .iter()
            .map(|s| (s.convergence_ms.0, s.convergence_ms.2))
            .collect()]),
    );
    crate::report::write(&dir.join("convergence.svg"), &conv)?;
    let frac = bar_chart(
        "runs converged and messages lost (median) per setting",
        "fraction / count",
        &cats,
        &[
            (
                "converged fraction".into(),
                st.iter()
                    .map(|s| s.converged as f64 / s.runs.max(1) as f64)
                    .collect(),
            ),
            (
                "lost (median)".into(),
                st.iter().map(|s| s.lost.1).collect(),
            ),
        ],
        None,
    );
    crate::report::write(&dir.join("outcomes.svg"), &frac)?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_cartesian_products() {
        let p = vec![
            parse_param("fork_window=10s,60s").unwrap(),
            parse_param("policy=lowest-ref,removes-first,deepest-branch").unwrap(),
        ];
        let g = grid(&p);
        assert_eq!(g.len(), 6);
        assert_eq!(
            g[0],
            vec![
                ("fork_window".into(), "10s".into()),
                ("policy".into(), "lowest-ref".into())
            ]
        );
        assert_eq!(g[5][0].1, "60s");
        assert!(parse_param("nonsense").is_err());
    }

    #[test]
    fn parameters_are_applied_or_refused_by_name() {
        let mut sc = Scenario::parse("t", "duration = \"1m\"\nnodes = 2\n[[partitions]]\nstart = \"5s\"\nheal = \"10s\"\nsides = { a = [\"n0\"] }\n").unwrap();
        apply(&mut sc, "fork_window", "10s").unwrap();
        assert_eq!(sc.engine.fork_window.ms(), 10_000);
        apply(&mut sc, "policy", "deepest-branch").unwrap();
        assert_eq!(sc.engine.policy.name(), "deepest-branch");
        apply(&mut sc, "partition", "40s").unwrap();
        assert_eq!(sc.partitions[0].heal, Some(45_000_000));
        assert!(apply(&mut sc, "policy", "fastest").is_err());
        apply(&mut sc, "dissemination", "mesh").unwrap();
        assert_eq!(sc.dissemination.mode, crate::scenario::Mode::Mesh);
        assert!(apply(&mut sc, "mesh_degree", "0").is_err());
        assert!(
            apply(&mut sc, "warp", "9")
                .unwrap_err()
                .to_string()
                .contains("warp")
        );
    }
}
