//! The node's Prometheus metrics, served as text at `--metrics HOST:PORT` `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);
impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);
impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
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
}

impl Metrics {
    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP chorus_{name} {help}\n# TYPE chorus_{name} {kind}\nchorus_{name} {value}\n"
            ));
        };
        line(
            "peers",
            "gauge",
            "Connected peers.",
            self.peers.get().to_string(),
        );
        for (name, help, c) in [
            (
                "envelopes_received_total",
                "Envelopes newly stored from the network.",
                &self.envelopes_received,
            ),
            (
                "envelopes_rejected_total",
                "Envelopes refused by validation.",
                &self.envelopes_rejected,
            ),
            (
                "envelopes_published_total",
                "Envelopes this node published.",
                &self.envelopes_published,
            ),
            (
                "messages_sent_total",
                "Application messages sent by this node's user.",
                &self.messages_sent,
            ),
            (
                "messages_delivered_total",
                "Application messages delivered to this node's user.",
                &self.messages_delivered,
            ),
            (
                "forks_total",
                "Forks detected (a second commit for an epoch).",
                &self.forks,
            ),
            (
                "branch_switches_total",
                "Times the active branch changed.",
                &self.branch_switches,
            ),
            (
                "syncs_total",
                "Anti-entropy sync sessions completed.",
                &self.syncs,
            ),
        ] {
            line(name, "counter", help, c.get().to_string());
        }
        out
    }
}

/// Serves `/metrics` until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let Ok(req) = crate::api::http::read_request(&mut stream).await else {
                return;
            };
            let (status, body) = if req.path == "/metrics" {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "see /metrics\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
    fn rendering_lists_every_metric_with_its_value() {
        let m = Metrics::default();
        m.forks.inc();
        m.peers.set(3);
        let text = m.render();
        assert!(text.contains("chorus_forks_total 1\n"), "{text}");
        assert!(text.contains("chorus_peers 3\n"), "{text}");
        assert!(text.contains("# TYPE chorus_syncs_total counter"), "{text}");
    }
}
