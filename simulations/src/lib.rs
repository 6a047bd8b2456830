//! # simulations — `chorus-sim`
//!
//! A deterministic discrete-event simulator that runs many real `ds-p2p` engines (real MLS,
//! the real fork window and tie-breakers) over a modelled network, in virtual time, in one
//! thread. Every random choice — the network's, the workload's, and every engine's MLS
//! randomness — comes from one seeded RNG, and nothing reads the wall clock except to report
//! how long a run took: the same scenario and seed give the same trace, byte for byte.
//!
//! Modules, one idea each:
//!
//! - [`scenario`]: the TOML scenario files, checked (unknown fields and bad values refused).
//! - [`time`], [`rng`], [`queue`]: virtual time, the seeded RNG, the event queue.
//! - [`net`]: the network model (latency, jitter, loss, duplication, reordering, bandwidth,
//!   partitions, flapping links).
//! - [`cost`]: the CPU cost model of MLS operations.
//! - [`sim`]: the simulator — nodes, dissemination (flooding or a gossipsub-like mesh),
//!   anti-entropy sync over `gossip::reconcile`, the workload, faults.
//! - [`metrics`], [`trace`], [`report`]: what a run counts and writes.
//! - [`sweep`]: runs over a grid of parameters and seeds.
//! - [`compare`]: the consistency modes side by side (issue 8).
//! - [`bench`]: the speed benchmark of issue 5 (100 and 1,000 nodes).
//!
//! The researchers' guide is `simulations/README.md`.

pub mod bench;
pub mod compare;
pub mod cost;
pub mod error;
pub mod metrics;
pub mod net;
pub mod queue;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod time;
pub mod trace;

pub use error::SimError;
pub use report::Summary;
pub use scenario::Scenario;
pub use sim::{RunOptions, RunResult, Simulator};

/// Runs `scenario` once.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, SimError> {
    Simulator::new(scenario, options)?.run()
}
