//! `chorus chat <group>`: a full-screen terminal chat (title bar with the fork state,
//! scrollback with membership, fork and key-change notices inline, who is online, an input
//! line with history), or a line-mode chat when stdin or stdout is not a terminal, or with
//! `--plain`. `/who` and `/status` show the group's state, `/quit` leaves.
//!
//! [`model`] is the full-screen chat without a terminal (tested on its own); [`tui`] reads
//! keys and draws it; [`plain`] is the line mode; [`notices`] holds the texts both show.

mod input;
pub mod model;
pub mod notices;
mod plain;
mod text;
mod tui;

use std::io::IsTerminal;

use crate::api::client::{Client, seg};
use crate::api::views::{GroupStatusView, MessageView};

/// The node's event stream, one JSON event per line.
pub(crate) type Events = tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>;

/// Messages the line mode prints at the start.
const PLAIN_SCROLLBACK: usize = 50;

pub async fn chat(client: &Client, group: &str, plain: bool) -> anyhow::Result<()> {
    // Subscribe first, so that nothing falls between the listing and the stream.
    let events = client.events().await?;
    let status: GroupStatusView = client.get(&format!("/v1/groups/{}", seg(group))).await?;
    let list: Vec<MessageView> = client
        .get(&format!("/v1/groups/{}/messages", seg(group)))
        .await?;
    if plain || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        plain::run(client, status, list, events).await
    } else {
        tui::run(client, status, list, events).await
    }
}
