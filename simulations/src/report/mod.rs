//! What a run writes: `summary.json`, `timeline.csv`, the SVG plots (the trace is written
//! while the run goes, see [`crate::trace`]).
//!
//! - [`summary`]: the summary's fields.
//! - [`svg`]: a small hand-written SVG line and bar chart.
//! - [`plots`]: the plots of a run.

pub mod plots;
pub mod summary;
pub mod svg;

use std::path::Path;

pub use summary::Summary;

use crate::error::SimError;
use crate::sim::RunResult;

pub(crate) fn write(path: &Path, text: &str) -> Result<(), SimError> {
    std::fs::write(path, text).map_err(|source| SimError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `summary.json`, `timeline.csv` and the plots of `result` into `dir`.
pub fn write_run(dir: &Path, result: &RunResult) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&result.summary).unwrap_or_default();
    write(&dir.join("summary.json"), &(json + "\n"))?;
    let mut csv = String::from(
        "t_ms,messages_sent,messages_delivered,in_flight,transmissions,forks_detected,branch_switches,groups_converged,groups,max_held,nodes_up,events\n",
    );
    for r in &result.metrics.timeline {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.t_ms,
            r.messages_sent,
            r.messages_delivered,
            r.in_flight,
            r.transmissions,
            r.forks_detected,
            r.branch_switches,
            r.groups_converged,
            r.groups,
            r.max_held,
            r.nodes_up,
            r.events
        ));
    }
    write(&dir.join("timeline.csv"), &csv)?;
    plots::write_run_plots(dir, result)
}
