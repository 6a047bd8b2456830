//! `chorus chat <group>`: a line-mode chat. Prints the group's recent messages, then every new
//! message, membership change, fork and key-change notice as it happens; each line typed is
//! sent. `/who` lists members, `/status` the group's fork state, `/quit` leaves the chat.

use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::api::client::{Client, seg};
use crate::api::views::{EventView, GroupStatusView, MessageView};
use crate::commands::clock;

const SCROLLBACK: usize = 50;

pub async fn chat(client: &Client, group: &str) -> anyhow::Result<()> {
    let mut events = client.events().await?;
    let status: GroupStatusView = client.get(&format!("/v1/groups/{}", seg(group))).await?;
    let gid = status.group_id.clone();
    let list: Vec<MessageView> = client
        .get(&format!("/v1/groups/{}/messages", seg(group)))
        .await?;
    println!(
        "── {} · epoch {} · {} members · {} ── /who /status /quit",
        status.name,
        status.epoch,
        status.members.len(),
        status.fork
    );
    let mut next = 0;
    for m in list.iter().rev().take(SCROLLBACK).rev() {
        println!("[{}] {}: {}", clock(m.sent_at_ms), m.sender, m.text);
    }
    if let Some(last) = list.last() {
        next = last.seq + 1;
    }
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                let line = line.trim();
                match line {
                    "" => {}
                    "/quit" => return Ok(()),
                    "/who" | "/status" => {
                        let s: GroupStatusView = client.get(&format!("/v1/groups/{gid}")).await?;
                        let who: Vec<String> = s.members.iter().map(|m| match m.online {
                            Some(true) => format!("{} (online)", m.handle),
                            Some(false) => format!("{} (away)", m.handle),
                            None => m.handle.clone(),
                        }).collect();
                        println!("· epoch {} · branch {} · {} · members: {}", s.epoch, &s.branch_id[..8], s.fork, who.join(", "));
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
                if let Some(text) = describe(&event, &gid, &mut next) {
                    println!("{text}");
                }
            }
        }
    }
}

/// The chat line for an event of this group, if it shows one.
fn describe(event: &EventView, gid: &str, next: &mut u64) -> Option<String> {
    match event {
        EventView::Message { group, message } if group == gid && message.seq >= *next => {
            *next = message.seq + 1;
            Some(format!(
                "[{}] {}: {}",
                clock(message.sent_at_ms),
                message.sender,
                message.text
            ))
        }
        EventView::MembershipChanged { group, members } if group == gid => Some(format!(
            "· members now: {}",
            members
                .iter()
                .map(|m| m.handle.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        EventView::ForkDetected {
            group,
            epoch,
            commits,
        } if group == gid => Some(format!(
            "· fork at epoch {epoch}: {commits} competing commits, resolving"
        )),
        EventView::BranchSwitched {
            group,
            epoch,
            resent,
            reissued,
        } if group == gid => Some(format!(
            "· switched to the winning branch at epoch {epoch}; re-sent {resent} of your messages, re-issued {reissued} changes"
        )),
        EventView::ForkBeyondWindow { group, epoch } if group == gid => Some(format!(
            "· SPLIT: a branch forked before epoch {epoch}, outside the window"
        )),
        EventView::Removed { group } if group == gid => {
            Some("· you are no longer a member of this group".into())
        }
        EventView::KeyChanged {
            handle, offered, ..
        } => Some(format!(
            "· KEY CHANGE: {handle} shows a new identity key {offered}; compare safety numbers"
        )),
        _ => None,
    }
}
