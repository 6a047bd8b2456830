//! The CLI's side of the API: finds the running daemon through the data dir and calls it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::http;
use crate::paths::DataDir;

/// Connections kept for the next call are dropped after this long idle, well before the
/// daemon drops them ([`http::READ_TIMEOUT`]).
const KEPT_IDLE: Duration = Duration::from_secs(4);
/// At most this many idle connections are kept.
const KEPT_MAX: usize = 64;

type Conn = tokio::io::BufReader<tokio::net::TcpStream>;

/// A connection to the daemon of one data dir. Clones share the connections kept open for
/// further calls.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    token: String,
    /// A network namespace (`/run/netns/<name>`) the daemon runs in: connections are opened
    /// from inside it, where its loopback API is. For tests that put nodes on separate hosts.
    netns: Option<std::path::PathBuf>,
    /// Connections the daemon keeps open, idle since when.
    idle: Arc<Mutex<Vec<(Instant, Conn)>>>,
}

impl Client {
    /// Reads `api.addr` and `api.token`; a clear error when no daemon has run here.
    pub fn for_data_dir(data: &DataDir) -> anyhow::Result<Self> {
        data.require_initialized()?;
        let not_running = || {
            format!(
                "the node of {} is not running: start it with `chorus --data {} run`",
                data.root().display(),
                data.root().display()
            )
        };
        let addr = std::fs::read_to_string(data.api_addr()).with_context(not_running)?;
        let token = std::fs::read_to_string(data.api_token()).with_context(not_running)?;
        let addr = addr
            .trim()
            .parse()
            .with_context(|| format!("{} is damaged", data.api_addr().display()))?;
        Ok(Self {
            addr,
            token: token.trim().to_string(),
            netns: None,
            idle: Arc::default(),
        })
    }

    /// The same client, connecting from inside network namespace `name`.
    pub fn in_netns(mut self, name: &str) -> Self {
        self.netns = Some(std::path::Path::new("/run/netns").join(name));
        self
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request("GET", path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        self.request("POST", path, Some(&body)).await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let response = self.call(method, path, body).await.with_context(|| {
            format!(
                "cannot reach the node's API at {} (is `chorus run` still running?)",
                self.addr
            )
        })?;
        if response.status != 200 {
            let message = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
            anyhow::bail!("{message}");
        }
        serde_json::from_slice(&response.body)
            .with_context(|| format!("unexpected answer from the node to {method} {path}"))
    }

    /// One request on a kept connection, or a new one. A kept connection the daemon closed
    /// meanwhile fails before it reads anything, so the call is made again on a new one.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> std::io::Result<http::Response> {
        if let Some(mut conn) = self.take_idle() {
            match http::exchange(&mut conn, &self.token, method, path, body).await {
                Ok((response, keep)) => {
                    self.put_idle(conn, keep);
                    return Ok(response);
                }
                Err(e) if http::is_stale(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = http::connect(self.addr, self.netns.as_deref()).await?;
        let (response, keep) = http::exchange(&mut conn, &self.token, method, path, body).await?;
        self.put_idle(conn, keep);
        Ok(response)
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((since, conn)) = idle.pop() {
            if since.elapsed() < KEPT_IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn, keep: bool) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if keep && idle.len() < KEPT_MAX {
            idle.push((Instant::now(), conn));
        }
    }

    /// Opens the event stream; each item is one JSON line.
    pub async fn events(
        &self,
    ) -> anyhow::Result<tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>> {
        use tokio::io::AsyncBufReadExt;
        let mut reader = http::open(
            self.addr,
            self.netns.as_deref(),
            &self.token,
            "GET",
            "/v1/events",
            None,
        )
        .await
        .with_context(|| format!("cannot reach the node's API at {}", self.addr))?;
        let status = http::read_response_head(&mut reader).await?;
        if status != 200 {
            anyhow::bail!("event stream refused (HTTP {status})");
        }
        Ok(reader.lines())
    }
}

/// A path segment for a group or contact name.
pub fn seg(name: &str) -> String {
    http::percent_encode(name)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;

    /// Reads one request (head and `Content-Length` body) off `conn`.
    async fn read_one(conn: &mut BufReader<tokio::net::TcpStream>) {
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            conn.read_line(&mut line).await.unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line.trim_end().is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).await.unwrap();
    }

    /// A server that answers one call per connection, says it keeps the connection, and
    /// closes it anyway (as the daemon does with one left idle too long): the client's next
    /// call finds its kept connection closed and is made again on a new one, once.
    #[tokio::test]
    async fn a_call_on_a_kept_connection_the_daemon_closed_is_made_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for n in 0..2 {
                let (conn, _) = listener.accept().await.unwrap();
                let mut conn = BufReader::new(conn);
                read_one(&mut conn).await;
                let body = format!("{{\"call\":{n}}}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
                    body.len()
                );
                conn.get_mut().write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let client = Client {
            addr,
            token: "t".into(),
            netns: None,
            idle: Arc::default(),
        };
        let first: serde_json::Value = client.post("/x", serde_json::json!({})).await.unwrap();
        assert_eq!(first["call"], 0);
        // The server has answered and dropped the first connection; the client kept it.
        assert_eq!(client.idle.lock().unwrap().len(), 1);
        let second: serde_json::Value = client.post("/x", serde_json::json!({})).await.unwrap();
        assert_eq!(second["call"], 1, "made again on a new connection");
        server.await.unwrap();
    }
}
