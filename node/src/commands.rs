//! The commands that talk to a running daemon, and how they print.

use anyhow::Context;
use serde_json::json;

use crate::api::client::{Client, seg};
use crate::api::views::{
    ContactView, EventView, GroupStatusView, IdView, MessageView, StatusView, VerifyView,
};
use crate::cli::{ContactCommand, GroupCommand};

fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("views serialize")
    );
}

pub async fn id(client: &Client, as_json: bool, qr: bool) -> anyhow::Result<()> {
    let id: IdView = client.get("/v1/id").await?;
    if as_json {
        print_json(&id);
    } else {
        println!("handle       {}", id.handle);
        println!("fingerprint  {}", group_fingerprint(&id.fingerprint));
        println!("peer id      {}", id.peer_id);
        for a in &id.addrs {
            println!("listening    {a}");
        }
        println!(
            "\ninvite code (give it to people who should add you):\n{}",
            id.invite_code
        );
    }
    if qr {
        let fp: identity_tofu::Fingerprint = id.fingerprint.parse().context("fingerprint")?;
        println!(
            "{}",
            fp.to_qr_terminal(identity_tofu::TerminalBackground::Dark)?
        );
    }
    Ok(())
}

/// A fingerprint in groups of four for reading aloud.
fn group_fingerprint(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn contact(client: &Client, command: ContactCommand) -> anyhow::Result<()> {
    match command {
        ContactCommand::Add { address, name } => {
            let c: ContactView = client
                .post("/v1/contacts", json!({ "address": address, "name": name }))
                .await?;
            println!(
                "added {} ({}), fingerprint {}",
                c.name,
                c.handle,
                group_fingerprint(&c.fingerprint)
            );
            println!(
                "compare safety numbers with `chorus contact verify {}`",
                c.name
            );
        }
        ContactCommand::List { json: as_json } => {
            let list: Vec<ContactView> = client.get("/v1/contacts").await?;
            if as_json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no contacts yet: `chorus contact add <invite-code>`");
            } else {
                for c in list {
                    let mark = if c.pending_key_change.is_some() {
                        "KEY CHANGED"
                    } else if c.verified {
                        "verified"
                    } else {
                        "unverified"
                    };
                    println!(
                        "{:<16} {:<16} {}  {mark}",
                        c.name,
                        c.handle,
                        &c.fingerprint[..16]
                    );
                }
            }
        }
        ContactCommand::Verify {
            contact,
            safety_number,
        } => {
            let v: VerifyView = client
                .post(
                    &format!("/v1/contacts/{}/verify", seg(&contact)),
                    json!({ "safety_number": safety_number }),
                )
                .await?;
            println!("safety number with {}:\n  {}", v.contact, v.safety_number);
            if v.verified {
                println!("{} is verified", v.contact);
            } else {
                println!(
                    "compare it with {} in person or on a call; if it matches, run\n  chorus contact verify {} \"{}\"",
                    v.contact, v.contact, v.safety_number
                );
            }
        }
        ContactCommand::AcceptKey { contact } => {
            let c: ContactView = client
                .post(
                    &format!("/v1/contacts/{}/accept-key", seg(&contact)),
                    json!({}),
                )
                .await?;
            println!(
                "{} now pinned to {} (unverified: compare safety numbers again)",
                c.name,
                group_fingerprint(&c.fingerprint)
            );
        }
    }
    Ok(())
}

pub async fn group(client: &Client, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create {
            name,
            json: as_json,
        } => {
            let g: GroupStatusView = client.post("/v1/groups", json!({ "name": name })).await?;
            if as_json {
                print_json(&g);
            } else {
                println!("created group {} ({})", g.name, g.group_id);
            }
        }
        GroupCommand::List { json: as_json } => {
            let list: Vec<GroupStatusView> = client.get("/v1/groups").await?;
            if as_json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no groups yet: `chorus group create NAME`");
            } else {
                for g in list {
                    println!(
                        "{:<20} {}  epoch {:<4} {} members  {}",
                        g.name,
                        &g.group_id[..8],
                        g.epoch,
                        g.members.len(),
                        g.fork
                    );
                }
            }
        }
        GroupCommand::Invite { group, contact } => {
            eprintln!("asking {contact}'s node for a KeyPackage…");
            let g: GroupStatusView = client
                .post(
                    &format!("/v1/groups/{}/invite", seg(&group)),
                    json!({ "contact": contact }),
                )
                .await?;
            println!("invited {contact} to {} (epoch {})", g.name, g.epoch);
        }
        GroupCommand::Remove { group, member } => {
            let g: GroupStatusView = client
                .post(
                    &format!("/v1/groups/{}/remove", seg(&group)),
                    json!({ "member": member }),
                )
                .await?;
            println!("removed {member} from {} (epoch {})", g.name, g.epoch);
        }
        GroupCommand::Update { group } => {
            let g: GroupStatusView = client
                .post(&format!("/v1/groups/{}/update", seg(&group)), json!({}))
                .await?;
            println!("updated your keys in {} (epoch {})", g.name, g.epoch);
        }
        GroupCommand::Leave { group } => {
            let _: serde_json::Value = client
                .post(&format!("/v1/groups/{}/leave", seg(&group)), json!({}))
                .await?;
            println!("asked to leave {group}; another member commits the removal");
        }
        GroupCommand::Status {
            group,
            json: as_json,
        } => {
            let g: GroupStatusView = client.get(&format!("/v1/groups/{}", seg(&group))).await?;
            if as_json {
                print_json(&g);
            } else {
                print_group(&g);
            }
        }
    }
    Ok(())
}

fn print_group(g: &GroupStatusView) {
    println!("group     {} ({})", g.name, g.group_id);
    println!("epoch     {}  branch {}", g.epoch, &g.branch_id[..8]);
    println!(
        "fork      {} ({} held branch states)",
        g.fork, g.held_branches
    );
    if g.removed {
        println!("you are no longer a member");
    }
    println!("members");
    for m in &g.members {
        let online = match m.online {
            Some(true) => "online",
            Some(false) => "away",
            None => "",
        };
        println!("  {:<16} {}  {online}", m.handle, &m.fingerprint[..16]);
    }
}

pub async fn send(client: &Client, group: &str, text: &str) -> anyhow::Result<()> {
    let m: MessageView = client
        .post(
            &format!("/v1/groups/{}/messages", seg(group)),
            json!({ "text": text }),
        )
        .await?;
    println!("sent {}", m.id);
    Ok(())
}

fn print_message(m: &MessageView, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string(m).expect("views serialize"));
    } else {
        println!("[{}] {}: {}", clock(m.sent_at_ms), m.sender, m.text);
    }
}

/// HH:MM:SS (UTC) of a timestamp.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

pub async fn messages(
    client: &Client,
    group: &str,
    as_json: bool,
    follow: bool,
) -> anyhow::Result<()> {
    // Subscribe first when following, so nothing falls between the listing and the stream.
    let mut events = if follow {
        Some(client.events().await?)
    } else {
        None
    };
    let status: GroupStatusView = client.get(&format!("/v1/groups/{}", seg(group))).await?;
    let list: Vec<MessageView> = client
        .get(&format!("/v1/groups/{}/messages", seg(group)))
        .await?;
    let mut next = 0;
    for m in &list {
        print_message(m, as_json);
        next = m.seq + 1;
    }
    let Some(events) = events.as_mut() else {
        return Ok(());
    };
    while let Some(line) = events.next_line().await? {
        if let Ok(EventView::Message { group, message }) = serde_json::from_str(&line)
            && group == status.group_id
            && message.seq >= next
        {
            next = message.seq + 1;
            print_message(&message, as_json);
        }
    }
    Ok(())
}

pub async fn status(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let s: StatusView = client.get("/v1/status").await?;
    if as_json {
        print_json(&s);
        return Ok(());
    }
    println!(
        "{} ({})  peer {}",
        s.id.handle,
        &s.id.fingerprint[..16],
        s.id.peer_id
    );
    println!("{} peers connected", s.peers.len());
    for p in &s.peers {
        println!("  {}", p.peer_id);
    }
    println!("{} groups", s.groups.len());
    for g in &s.groups {
        println!(
            "  {:<20} epoch {:<4} {} members  {}",
            g.name,
            g.epoch,
            g.members.len(),
            g.fork
        );
    }
    Ok(())
}
