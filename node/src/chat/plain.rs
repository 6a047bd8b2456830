//! The line mode: prints the recent messages, then each new message and notice as a line;
//! each line read from stdin is sent. Used when stdin or stdout is not a terminal (scripts,
//! pipes) or with `--plain`.

use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::api::client::Client;
use crate::api::views::{EventView, GroupStatusView, MessageView};

use super::notices::{Entry, describe, status_line};
use super::{Events, PLAIN_SCROLLBACK};

pub async fn run(
    client: &Client,
    status: GroupStatusView,
    list: Vec<MessageView>,
    mut events: Events,
) -> anyhow::Result<()> {
    let gid = status.group_id.clone();
    println!(
        "── {} · epoch {} · {} members · {} ── /who /status /quit",
        super::text::printable(&status.name),
        status.epoch,
        status.members.len(),
        status.fork
    );
    for m in list.iter().rev().take(PLAIN_SCROLLBACK).rev() {
        println!("{}", Entry::message(m).line());
    }
    let mut next = list.last().map_or(0, |m| m.seq + 1);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                match line.trim() {
                    "" => {}
                    "/quit" => return Ok(()),
                    "/who" | "/status" => {
                        let s: GroupStatusView = client.get(&format!("/v1/groups/{gid}")).await?;
                        println!("{}", Entry::Notice(status_line(&s)).line());
                    }
                    text => {
                        if let Err(e) = client
                            .post::<MessageView>(&format!("/v1/groups/{gid}/messages"), json!({ "text": text }))
                            .await
                        {
                            println!("· not sent: {e:#}");
                        }
                    }
                }
            }
            event = events.next_line() => {
                let Some(line) = event? else {
                    println!("· the node stopped");
                    return Ok(());
                };
                let Ok(event) = serde_json::from_str::<EventView>(&line) else { continue };
                if let Some(entry) = describe(&event, &gid, &mut next) {
                    println!("{}", entry.line());
                }
            }
        }
    }
}
