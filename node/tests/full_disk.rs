//! A full disk gives an error, not a corrupt store (issue 7). Ann's data directory is a small
//! tmpfs; once the group runs, the rest of it is filled with a file, and both members keep
//! sending large messages until ann's node refuses (an API error, or the node stopping with a
//! clear error: a round whose fsync fails must not be acknowledged). Then the filler goes, ann's
//! node starts again over the same directory, and every message either node acknowledged is
//! in both histories, once — and ann can send again.
//!
//! Needs root (to mount a tmpfs); skips with a message otherwise. CI runs as root.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use node::demo::harness::{
    LocalNode, NodeOptions, converged_keeping, group_of_all, start_all, wait_for_every,
};

const LIMIT: Duration = Duration::from_secs(120);
/// Ann fetches the megabytes she missed from ben by anti-entropy; a debug build on a machine
/// busy with the rest of the suite needs minutes for that.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// Big enough for RocksDB's preallocated files and a few hundred large messages.
const DISK: &str = "size=192m";
/// Large messages fill what the disk has left (and RocksDB's preallocated WAL) quickly.
const BODY_BYTES: usize = 128 * 1024;
/// How long the members keep sending into the full disk before the test gives up on seeing
/// a refusal.
const FILL_FOR: Duration = Duration::from_secs(180);

/// A tmpfs mounted at a directory, unmounted when dropped.
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(at)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", DISK, "tmpfs"])
            .arg(at)
            .status()?;
        anyhow::ensure!(status.success(), "mount -t tmpfs failed ({status})");
        Ok(Self {
            at: at.to_path_buf(),
        })
    }

    /// Writes a file until the disk refuses; returns its path and size.
    fn fill(&self) -> anyhow::Result<(std::path::PathBuf, u64)> {
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0x5a; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(e.into()),
            }
        }
        Ok((path, written))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Ann's data directory is the tmpfs itself; her log stays beside it, on the real disk.
    let disk = match SmallDisk::mount(&dir.path().join("ann")) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test needs root to mount a tmpfs ({why})");
            return Ok(());
        }
    };
    let options = NodeOptions::default();
    let mut nodes = vec![
        LocalNode::init(dir.path(), "ann")?,
        LocalNode::init(dir.path(), "ben")?,
    ];
    start_all(&mut nodes, &options).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;
    let mut acknowledged = BTreeSet::new();
    for node in &nodes {
        acknowledged.insert(node.send(&gid, &format!("{} before", node.name)).await?.id);
    }

    let (filler, filled) = disk.fill()?;
    eprintln!("filled ann's disk with {} MiB", filled >> 20);
    let body = "x".repeat(BODY_BYTES);
    let started = Instant::now();
    let mut refusal = None;
    let mut sent = 0usize;
    while refusal.is_none() && started.elapsed() < FILL_FOR {
        for node in &nodes {
            match node
                .send(&gid, &format!("{} {sent} {body}", node.name))
                .await
            {
                Ok(message) => {
                    acknowledged.insert(message.id);
                }
                Err(e) if node.name == "ann" => refusal = Some(format!("{e:#}")),
                Err(e) => return Err(e.context("ben's send failed; his disk is not full")),
            }
        }
        sent += 1;
    }
    let refusal = refusal.unwrap_or_else(|| {
        panic!(
            "ann's node acknowledged {sent} messages of {BODY_BYTES} bytes on a full disk\n{}",
            nodes[0].log_tail()
        )
    });
    eprintln!(
        "ann refused after {sent} rounds ({:.1} s): {refusal}",
        started.elapsed().as_secs_f64()
    );
    nodes[0].stop().await?;
    let log = nodes[0].log_tail();
    for line in log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("stopping"))
    {
        eprintln!("ann's log: {line}");
    }
    assert!(
        log.contains("no space left on the disk holding"),
        "ann's log does not say why it stopped:\n{log}"
    );

    // Space again: the same directory opens, and nothing acknowledged is missing anywhere.
    std::fs::remove_file(filler)?;
    let boot = nodes[1]
        .listen
        .clone()
        .expect("ben's node listens on an address");
    nodes[0].start(&options, 0, &[boot]).await?;
    let after = nodes[0].send(&gid, "ann after").await?;
    acknowledged.insert(after.id);
    // Ben first: what he shows must hold every acknowledged id, and ann must show the same.
    let all: Vec<&LocalNode> = vec![&nodes[1], &nodes[0]];
    let restarted = Instant::now();
    // Every poll lists megabytes of messages from both nodes: poll seldom, so that the check
    // does not starve the catch-up it waits for on a loaded machine.
    let waited = wait_for_every(
        "both nodes to show every acknowledged message once",
        CATCH_UP_LIMIT,
        Duration::from_secs(2),
        || converged_keeping(&all, &gid, &acknowledged),
    )
    .await;
    let (keep, _) = match waited {
        Ok(v) => v,
        Err(e) => {
            let mut shown = Vec::new();
            for node in &all {
                let messages = node.messages(&gid).await?;
                let ids: BTreeSet<String> = messages.iter().map(|m| m.id.clone()).collect();
                let status = node.status(&gid).await?;
                eprintln!(
                    "{}: {} acknowledged ids missing of {}; status {status:?}\n{}",
                    node.name,
                    acknowledged.difference(&ids).count(),
                    acknowledged.len(),
                    node.log_tail()
                );
                shown.push((node.name.clone(), messages, ids));
            }
            for (name, messages, _) in &shown {
                for (other, _, ids) in &shown {
                    for m in messages.iter().filter(|m| !ids.contains(&m.id)) {
                        eprintln!(
                            "{name} shows {} from {} (seq {}, acknowledged: {}) that {other} does not",
                            m.id,
                            m.sender,
                            m.seq,
                            acknowledged.contains(&m.id)
                        );
                    }
                }
            }
            return Err(e);
        }
    };
    eprintln!(
        "{:.1} s after the restart: {} messages on both nodes ({} acknowledged), epoch {}",
        restarted.elapsed().as_secs_f64(),
        keep.messages,
        acknowledged.len(),
        keep.epoch
    );
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
