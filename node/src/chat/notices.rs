//! What the chat shows for the group's messages and events, in both modes: the line mode
//! prints these texts, the full-screen mode puts the same texts in its scrollback.

use crate::api::views::{EventView, GroupStatusView, MemberView, MessageView};
use crate::commands::clock;

use super::text::printable;

/// One item of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Message {
        sent_at_ms: u64,
        sender: String,
        text: String,
    },
    /// Membership, fork, key change, removal, or an answer to /who, /status.
    Notice(String),
}

impl Entry {
    pub fn message(m: &MessageView) -> Self {
        Self::Message {
            sent_at_ms: m.sent_at_ms,
            sender: m.sender.clone(),
            text: m.text.clone(),
        }
    }

    /// The line mode's line: `[HH:MM:SS] sender: text` (unchanged for scripts that read it).
    pub fn line(&self) -> String {
        printable(&match self {
            Self::Message {
                sent_at_ms,
                sender,
                text,
            } => format!("[{}] {sender}: {text}", clock(*sent_at_ms)),
            Self::Notice(text) => text.clone(),
        })
    }

    /// The full-screen text, `[hh:mm] sender: text`, and the indent of its wrapped rows (under
    /// the text after the time).
    pub fn screen_text(&self) -> (String, usize) {
        match self {
            Self::Message {
                sent_at_ms,
                sender,
                text,
            } => {
                let time = clock(*sent_at_ms);
                let hhmm = time.get(..5).unwrap_or(&time);
                (printable(&format!("[{hhmm}] {sender}: {text}")), 8)
            }
            // Notices start with "· ": their rows line up after it.
            Self::Notice(text) => (printable(text), 2),
        }
    }

    pub fn is_notice(&self) -> bool {
        matches!(self, Self::Notice(_))
    }
}

/// The entry for an event of this group, if it shows one. `next` is the next message number
/// not yet shown, so that a message listed at the start and also streamed is shown once.
pub fn describe(event: &EventView, gid: &str, next: &mut u64) -> Option<Entry> {
    let notice = |text: String| Some(Entry::Notice(text));
    match event {
        EventView::Message { group, message } if group == gid && message.seq >= *next => {
            *next = message.seq + 1;
            Some(Entry::message(message))
        }
        EventView::MembershipChanged { group, members } if group == gid => notice(format!(
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
        } if group == gid => notice(format!(
            "· fork at epoch {epoch}: {commits} competing commits, resolving"
        )),
        EventView::BranchSwitched {
            group,
            epoch,
            resent,
            reissued,
        } if group == gid => notice(format!(
            "· switched to the winning branch at epoch {epoch}; re-sent {resent} of your messages, re-issued {reissued} changes"
        )),
        EventView::Readded {
            group,
            epoch,
            resent,
            ..
        } if group == gid => notice(format!(
            "· you were added to the group again at epoch {epoch}; re-sent {resent} of your messages"
        )),
        EventView::ForkBeyondWindow { group, epoch } if group == gid => notice(format!(
            "· SPLIT: a branch forked before epoch {epoch}, outside the window"
        )),
        EventView::Removed { group } if group == gid => {
            notice("· you are no longer a member of this group".into())
        }
        EventView::SplitHealed {
            group,
            fork_epoch,
            epoch,
            branch_id,
            redelivered,
            reapplied,
        } if group == gid => notice(format!(
            "· split healed: rejoined branch {} at epoch {epoch} (the sides parted at epoch {fork_epoch}); {redelivered} of your messages re-delivered, {reapplied} of your membership changes re-applied",
            &branch_id[..branch_id.len().min(8)]
        )),
        EventView::SplitRejoined {
            group,
            epoch,
            redelivered,
            ..
        } if group == gid => notice(format!(
            "· split healed: the other side rejoined this branch at epoch {epoch}; {redelivered} of your messages re-delivered to them"
        )),
        EventView::ResendWithheld { group, withheld } if group == gid => notice(format!(
            "· {withheld} of your messages were not sent again: the group now has members who were not in it when you sent them"
        )),
        EventView::JoinLost { group } if group == gid => notice(
            "· the commit that added you lost (a race or a split): you are out until your inviter's node adds you again".into(),
        ),
        EventView::KeyChanged {
            handle, offered, ..
        } => notice(format!(
            "· KEY CHANGE: {handle} shows a new identity key {offered}; compare safety numbers"
        )),
        _ => None,
    }
}

/// Whether the event may change what the group's status shows (epoch, fork state, members,
/// who is online), so that it is worth reading again.
pub fn changes_status(event: &EventView, gid: &str) -> bool {
    match event {
        EventView::GroupJoined { group, .. }
        | EventView::EpochChanged { group, .. }
        | EventView::MembershipChanged { group, .. }
        | EventView::ForkDetected { group, .. }
        | EventView::ForkBeyondWindow { group, .. }
        | EventView::BranchSwitched { group, .. }
        | EventView::Readded { group, .. }
        | EventView::SplitHealed { group, .. }
        | EventView::SplitRejoined { group, .. }
        | EventView::JoinLost { group }
        | EventView::Removed { group } => group == gid,
        EventView::PeerConnected { .. } | EventView::PeerDisconnected { .. } => true,
        _ => false,
    }
}

/// A member with what is known of their presence: `ann (online)`, `ben (away)`, `cat`.
pub fn presence(m: &MemberView) -> String {
    match m.online {
        Some(true) => format!("{} (online)", m.handle),
        Some(false) => format!("{} (away)", m.handle),
        None => m.handle.clone(),
    }
}

/// The answer to /who and /status.
pub fn status_line(s: &GroupStatusView) -> String {
    let who: Vec<String> = s.members.iter().map(presence).collect();
    format!(
        "· epoch {} · branch {} · {} · members: {}",
        s.epoch,
        s.branch_id.get(..8).unwrap_or(&s.branch_id),
        s.fork,
        who.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(handle: &str, online: Option<bool>) -> MemberView {
        MemberView {
            handle: handle.into(),
            fingerprint: "f".repeat(64),
            online,
        }
    }

    fn message(seq: u64, text: &str) -> MessageView {
        MessageView {
            seq,
            id: format!("id{seq}"),
            sender: "ann".into(),
            sender_fingerprint: "f".repeat(64),
            // 13:05:09 UTC
            sent_at_ms: (13 * 3600 + 5 * 60 + 9) * 1000,
            received_at_ms: 0,
            text: text.into(),
            queued: false,
        }
    }

    #[test]
    fn messages_show_once_and_only_for_this_group() {
        let mut next = 3;
        let old = EventView::Message {
            group: "g".into(),
            message: message(2, "old"),
        };
        assert_eq!(describe(&old, "g", &mut next), None, "listed already");
        let new = EventView::Message {
            group: "g".into(),
            message: message(3, "new"),
        };
        let other = EventView::Message {
            group: "h".into(),
            message: message(9, "elsewhere"),
        };
        assert_eq!(describe(&other, "g", &mut next), None);
        let entry = describe(&new, "g", &mut next).expect("shown");
        assert_eq!(next, 4);
        assert_eq!(entry.line(), "[13:05:09] ann: new");
        assert_eq!(entry.screen_text(), ("[13:05] ann: new".into(), 8));
        assert_eq!(describe(&new, "g", &mut next), None, "not twice");
    }

    #[test]
    fn notice_texts() {
        let mut next = 0;
        let mut text = |e: EventView| describe(&e, "g", &mut next).map(|e| e.line());
        let g = || "g".to_string();
        assert_eq!(
            text(EventView::MembershipChanged {
                group: g(),
                members: vec![member("ann", None), member("ben", Some(true))],
            })
            .as_deref(),
            Some("· members now: ann, ben")
        );
        assert_eq!(
            text(EventView::ForkDetected {
                group: g(),
                epoch: 4,
                commits: 2
            })
            .as_deref(),
            Some("· fork at epoch 4: 2 competing commits, resolving")
        );
        assert_eq!(
            text(EventView::BranchSwitched {
                group: g(),
                epoch: 5,
                resent: 1,
                reissued: 0
            })
            .as_deref(),
            Some(
                "· switched to the winning branch at epoch 5; re-sent 1 of your messages, re-issued 0 changes"
            )
        );
        assert_eq!(
            text(EventView::SplitHealed {
                group: g(),
                fork_epoch: 3,
                epoch: 9,
                branch_id: "0123456789abcdef".into(),
                redelivered: 14,
                reapplied: 1
            })
            .as_deref(),
            Some(
                "· split healed: rejoined branch 01234567 at epoch 9 (the sides parted at epoch 3); 14 of your messages re-delivered, 1 of your membership changes re-applied"
            )
        );
        assert_eq!(
            text(EventView::ForkBeyondWindow {
                group: g(),
                epoch: 7
            })
            .as_deref(),
            Some("· SPLIT: a branch forked before epoch 7, outside the window")
        );
        assert_eq!(
            text(EventView::Removed { group: g() }).as_deref(),
            Some("· you are no longer a member of this group")
        );
        assert_eq!(
            text(EventView::KeyChanged {
                group: None,
                handle: "cat".into(),
                pinned: "a".into(),
                offered: "b".into()
            })
            .as_deref(),
            Some("· KEY CHANGE: cat shows a new identity key b; compare safety numbers")
        );
        assert_eq!(
            text(EventView::Removed { group: "h".into() }),
            None,
            "another group's removal"
        );
        assert_eq!(
            text(EventView::PeerConnected {
                peer_id: "p".into()
            }),
            None
        );
    }

    #[test]
    fn a_hostile_message_cannot_send_escapes() {
        let entry = Entry::message(&message(0, "\x1b]0;pwned\x07hi"));
        assert!(!entry.line().contains('\x1b'));
        assert!(!entry.screen_text().0.contains('\x1b'));
    }

    #[test]
    fn status_line_survives_a_short_branch_id() {
        let status = GroupStatusView {
            group_id: "g".into(),
            name: "team".into(),
            epoch: 3,
            branch_id: "abc".into(),
            members: vec![
                member("ann", Some(true)),
                member("ben", Some(false)),
                member("cat", None),
            ],
            held_branches: 1,
            fork: "settled".into(),
            removed: false,
        };
        assert_eq!(
            status_line(&status),
            "· epoch 3 · branch abc · settled · members: ann (online), ben (away), cat"
        );
        assert!(changes_status(
            &EventView::EpochChanged {
                group: "g".into(),
                epoch: 4,
                branch_id: "x".into()
            },
            "g"
        ));
        assert!(!changes_status(
            &EventView::Message {
                group: "g".into(),
                message: message(0, "x")
            },
            "g"
        ));
    }
}
