//! The node's Prometheus metrics, served at `--metrics HOST:PORT` `/metrics` in the
//! OpenMetrics text format: Chorus's own (`chorus_*`: peers, envelopes, messages, forks,
//! branch switches, syncs, commits, and what the groups' consistency modes cost this member:
//! availability, commit latency, re-sends, forward-secrecy exposure) followed by libp2p's
//! (`libp2p_*`: connections, bandwidth, gossipsub, Kademlia, identify, ping, relay, DCUtR),
//! one encoder for both.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Seconds, as a float counter.
pub type Seconds = Counter<f64, AtomicU64>;
/// A fraction, as a float gauge.
pub type Fraction = Gauge<f64, AtomicU64>;

/// Chorus's own metrics; the fields are shared with the registry, so updating a field
/// updates what `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    pub peers: Gauge,
    pub envelopes_received: Counter,
    pub envelopes_rejected: Counter,
    pub envelopes_published: Counter,
    pub messages_sent: Counter,
    pub messages_delivered: Counter,
    pub forks: Counter,
    pub branch_switches: Counter,
    pub syncs: Counter,
    pub commits: Counter,
    /// The consistency-mode figures (see `daemon::core::mode_meter`); names as in the
    /// simulator's summary.json where they mean the same.
    pub modes: ModeMetrics,
    /// Read at each scrape (see `daemon::memory`).
    pub memory: MemoryMetrics,
    registry: Registry,
}

/// The node's memory, as gauges in bytes (`chorus_memory_*`).
#[derive(Debug)]
pub struct MemoryMetrics {
    pub resident: Gauge,
    pub heap_in_use: Gauge,
    pub heap_free: Gauge,
    pub db_memtables: Gauge,
    pub db_block_cache: Gauge,
}

impl MemoryMetrics {
    fn register(r: &mut Registry) -> Self {
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        Self {
            resident: gauge(r, "memory_resident_bytes", "The node's resident set"),
            heap_in_use: gauge(
                r,
                "memory_heap_in_use_bytes",
                "Allocated and not freed (the database's part included)",
            ),
            heap_free: gauge(
                r,
                "memory_heap_free_bytes",
                "Freed but kept by the allocator (fragmentation)",
            ),
            db_memtables: gauge(
                r,
                "memory_db_memtables_bytes",
                "The database's memtables (written, not yet flushed)",
            ),
            db_block_cache: gauge(
                r,
                "memory_db_block_cache_bytes",
                "The database's block cache (index and filter blocks included)",
            ),
        }
    }

    /// Shows `view`.
    pub fn set(&self, view: &crate::api::views::MemoryView) {
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        for (gauge, value) in [
            (&self.resident, view.rss_bytes),
            (&self.heap_in_use, view.heap_in_use_bytes),
            (&self.heap_free, view.heap_free_bytes),
        ] {
            if let Some(v) = value {
                gauge.set(bytes(v));
            }
        }
        self.db_memtables.set(bytes(view.db_memtables_bytes));
        self.db_block_cache.set(bytes(view.db_block_cache_bytes));
    }
}

/// What this member measures of its groups' consistency modes (issue 8).
#[derive(Debug)]
pub struct ModeMetrics {
    /// Groups this member is in, by consistency mode (label `mode`).
    pub groups: Family<Vec<(String, String)>, Gauge>,
    /// Member-time: seconds in groups, summed over the groups this member is in.
    pub member_seconds: Seconds,
    /// Of that, seconds it could send an application message at once (not queued).
    pub send_available_seconds: Seconds,
    /// Of that, seconds it could commit at once and no own commit waited on the mode.
    pub commit_available_seconds: Seconds,
    /// `send_available_seconds / member_seconds` since start.
    pub availability_send: Fraction,
    /// `commit_available_seconds / member_seconds` since start.
    pub availability_commit: Fraction,
    /// Held states beyond each group's active head, times the time held (state-seconds).
    pub fs_exposure_state_seconds: Seconds,
    /// Own commits (invite, remove, update), from the API call until the active epoch moved
    /// past the one they were asked on, in ms.
    pub commit_ms: Histogram,
    /// Own commits asked for whose epoch the group did not move past within the bound.
    pub commits_never_applied: Counter,
    /// Own messages re-sent after a branch switch.
    pub resent_messages: Counter,
    /// Own commits re-issued after a branch switch.
    pub reissued_intents: Counter,
}

impl ModeMetrics {
    fn register(r: &mut Registry) -> Self {
        let groups = Family::<Vec<(String, String)>, Gauge>::default();
        r.register(
            "consistency_groups",
            "Groups this member is in, by consistency mode",
            groups.clone(),
        );
        let seconds = |r: &mut Registry, name: &str, help: &str| {
            let c = Seconds::default();
            r.register(name, help, c.clone());
            c
        };
        let fraction = |r: &mut Registry, name: &str, help: &str| {
            let g = Fraction::default();
            r.register(name, help, g.clone());
            g
        };
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let member_seconds = seconds(
            r,
            "member_seconds",
            "Seconds in groups, summed over the groups this member is in",
        );
        let send_available_seconds = seconds(
            r,
            "send_available_seconds",
            "Member-seconds during which an application message would be sent at once",
        );
        let commit_available_seconds = seconds(
            r,
            "commit_available_seconds",
            "Member-seconds during which a commit would be made at once and no own commit \
             waited on the consistency mode",
        );
        let availability_send = fraction(
            r,
            "availability_send",
            "Fraction of member-time since start this member could send at once",
        );
        let availability_commit = fraction(
            r,
            "availability_commit",
            "Fraction of member-time since start this member could commit at once",
        );
        let fs_exposure_state_seconds = seconds(
            r,
            "fs_exposure_state_seconds",
            "Held states beyond each group's active head times the time held",
        );
        // 10 ms to ~82 s: a settle is 2 s, a sequencer side without it waits out a partition.
        let commit_ms = Histogram::new(exponential_buckets(10.0, 2.0, 14));
        r.register(
            "commit_ms",
            "Own commits: API call until the active epoch moved past the one asked on (ms)",
            commit_ms.clone(),
        );
        let commits_never_applied = counter(
            r,
            "commits_never_applied",
            "Own commits whose epoch the group did not move past within 10 minutes",
        );
        let resent_messages = counter(
            r,
            "resent_messages",
            "Own application messages re-sent after a branch switch",
        );
        let reissued_intents = counter(
            r,
            "reissued_intents",
            "Own commits re-issued after a branch switch",
        );
        Self {
            groups,
            member_seconds,
            send_available_seconds,
            commit_available_seconds,
            availability_send,
            availability_commit,
            fs_exposure_state_seconds,
            commit_ms,
            commits_never_applied,
            resent_messages,
            reissued_intents,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chorus");
        let peers = Gauge::default();
        registry.register("peers", "Connected peers", peers.clone());
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let r = &mut registry;
        let envelopes_received = counter(
            r,
            "envelopes_received",
            "Envelopes newly stored from the network",
        );
        let envelopes_rejected =
            counter(r, "envelopes_rejected", "Envelopes refused by validation");
        let envelopes_published =
            counter(r, "envelopes_published", "Envelopes this node published");
        let messages_sent = counter(
            r,
            "messages_sent",
            "Application messages sent by this node's user",
        );
        let messages_delivered = counter(
            r,
            "messages_delivered",
            "Application messages delivered to this node's user",
        );
        let forks = counter(r, "forks", "Forks detected (a second commit for an epoch)");
        let branch_switches = counter(r, "branch_switches", "Times the active branch changed");
        let syncs = counter(r, "syncs", "Anti-entropy sync sessions completed");
        let commits = counter(
            r,
            "commits",
            "Rounds of steps made durable together (one fsync each under durability synced)",
        );
        let modes = ModeMetrics::register(r);
        let memory = MemoryMetrics::register(r);
        Self {
            peers,
            envelopes_received,
            envelopes_rejected,
            envelopes_published,
            messages_sent,
            messages_delivered,
            forks,
            branch_switches,
            syncs,
            commits,
            modes,
            memory,
            registry,
        }
    }
}

impl Metrics {
    /// The exposition: Chorus's metric families, then `libp2p` (libp2p's families as
    /// rendered by the network layer, without their end marker), then `# EOF`.
    pub fn render(&self, libp2p: &str) -> String {
        let mut out = String::new();
        if encode_registry(&mut out, &self.registry).is_err() {
            out = "# chorus metrics could not be encoded\n".to_string();
        }
        out.push_str(libp2p);
        let _ = encode_eof(&mut out);
        out
    }
}

/// Serves `/metrics` until the listener fails.
///
/// `libp2p` is called at each scrape: it refreshes the gauges read on demand and renders the
/// network layer's metrics.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    libp2p: impl Fn() -> String + Clone + Send + 'static,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, libp2p) = (metrics.clone(), libp2p.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let Ok(req) = crate::api::http::read_request(&mut stream).await else {
                return;
            };
            let (status, body) = if req.path == "/metrics" {
                ("200 OK", metrics.render(&libp2p()))
            } else {
                ("404 Not Found", "see /metrics\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_every_metric_with_its_value_then_libp2p_then_the_end() {
        let m = Metrics::default();
        m.forks.inc();
        m.peers.set(3);
        let text = m.render("# TYPE libp2p_x counter\nlibp2p_x_total 2\n");
        assert!(text.contains("chorus_forks_total 1\n"), "{text}");
        assert!(text.contains("chorus_peers 3\n"), "{text}");
        assert!(text.contains("# TYPE chorus_syncs counter"), "{text}");
        let libp2p_at = text.find("libp2p_x_total 2").expect("libp2p part");
        assert!(text.find("chorus_peers").unwrap() < libp2p_at, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}
