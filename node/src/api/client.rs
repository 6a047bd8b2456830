//! The CLI's side of the API: finds the running daemon through the data dir and calls it.

use std::net::SocketAddr;

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::http;
use crate::paths::DataDir;

/// A connection to the daemon of one data dir.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    token: String,
    /// A network namespace (`/run/netns/<name>`) the daemon runs in: connections are opened
    /// from inside it, where its loopback API is. For tests that put nodes on separate hosts.
    netns: Option<std::path::PathBuf>,
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
        let response = http::call(
            self.addr,
            self.netns.as_deref(),
            &self.token,
            method,
            path,
            body,
        )
        .await
        .with_context(|| {
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
