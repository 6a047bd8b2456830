//! The node's Prometheus metrics, served at `--metrics HOST:PORT` `/metrics` in the
//! OpenMetrics text format: Chorus's own (`chorus_*`: peers, envelopes, messages, forks,
//! branch switches, syncs, commits) followed by libp2p's (`libp2p_*`: connections, bandwidth,
//! gossipsub, Kademlia, identify, ping, relay, DCUtR), one encoder for both.

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
    registry: Registry,
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
/// `libp2p` renders the network layer's metrics at each scrape.
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
