//! A short `chorus soak`: real nodes on loopback with traffic, commits, SIGKILLs and
//! partitions, then every acknowledged message must reach every member of its group once.
//! Seeded: the seed is printed, and `CHORUS_SOAK_SEED=<seed>` repeats the choices (timing
//! still varies). The long run with memory figures is `chorus soak` (README, "Soak test").

use std::time::Duration;

use node::bench::soak::{SoakOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_loses_nothing_and_converges() -> anyhow::Result<()> {
    let seed = std::env::var("CHORUS_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let report = run(SoakOptions {
        nodes: 4,
        groups: 2,
        group_size: 3,
        duration: Duration::from_secs(40),
        messages_per_minute: 20.0,
        commit_every: Duration::from_secs(8),
        crash_every: Duration::from_secs(12),
        partition_every: Duration::from_secs(15),
        fork_window: Duration::from_secs(30),
        // A small database budget, written to each node's config.toml: a node that cannot
        // read it does not start.
        db_memory_mib: Some(4),
        seed,
        keep: false,
        json: None,
    })
    .await?;
    println!(
        "soak seed {} (CHORUS_SOAK_SEED={} repeats)",
        report.seed, report.seed
    );
    assert!(report.sent > 0, "nothing was sent: {report:?}");
    assert!(
        report.crashes > 0 && report.partitions > 0,
        "the faults did not happen: {report:?}"
    );
    assert!(report.converged, "a group did not converge: {report:?}");
    assert_eq!(report.lost, 0, "lost deliveries: {report:?}");
    assert_eq!(report.duplicates, 0, "duplicates: {report:?}");
    Ok(())
}
