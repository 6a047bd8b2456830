//! The plots of one run: convergence over time, messages in flight and delivered, and
//! forks and branch switches per node.

use std::path::Path;

use super::svg::{Series, bar_chart, line_chart};
use super::write;
use crate::error::SimError;
use crate::sim::RunResult;

/// Writes `convergence.svg`, `messages.svg` and `forks.svg` into `dir`.
pub fn write_run_plots(dir: &Path, result: &RunResult) -> Result<(), SimError> {
    let tl = &result.metrics.timeline;
    let secs = |t: u64| t as f64 / 1000.0;
    let conv = Series {
        label: "groups converged".into(),
        points: tl
            .iter()
            .map(|r| (secs(r.t_ms), r.groups_converged as f64))
            .collect(),
    };
    let held = Series {
        label: "max held states".into(),
        points: tl
            .iter()
            .map(|r| (secs(r.t_ms), r.max_held as f64))
            .collect(),
    };
    write(
        &dir.join("convergence.svg"),
        &line_chart(
            &format!(
                "{}: convergence (seed {})",
                result.summary.scenario, result.summary.seed
            ),
            "virtual time (s)",
            "groups / states",
            &[conv, held],
        ),
    )?;
    let series = vec![
        Series {
            label: "sent".into(),
            points: tl
                .iter()
                .map(|r| (secs(r.t_ms), r.messages_sent as f64))
                .collect(),
        },
        Series {
            label: "delivered".into(),
            points: tl
                .iter()
                .map(|r| (secs(r.t_ms), r.messages_delivered as f64))
                .collect(),
        },
        Series {
            label: "in flight".into(),
            points: tl
                .iter()
                .map(|r| (secs(r.t_ms), r.in_flight.max(0) as f64))
                .collect(),
        },
    ];
    write(
        &dir.join("messages.svg"),
        &line_chart(
            &format!("{}: messages", result.summary.scenario),
            "virtual time (s)",
            "count",
            &series,
        ),
    )?;
    let categories: Vec<String> = (0..result.nodes).map(|n| format!("n{n}")).collect();
    let forks: Vec<f64> = result
        .metrics
        .forks_per_node
        .iter()
        .map(|&v| v as f64)
        .collect();
    let switches: Vec<f64> = result
        .metrics
        .switches_per_node
        .iter()
        .map(|&v| v as f64)
        .collect();
    write(
        &dir.join("forks.svg"),
        &bar_chart(
            &format!(
                "{}: forks and branch switches per node",
                result.summary.scenario
            ),
            "events",
            &categories,
            &[
                ("forks detected".into(), forks),
                ("branch switches".into(), switches),
            ],
            None,
        ),
    )
}
