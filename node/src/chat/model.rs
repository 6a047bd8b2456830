//! The full-screen chat without a terminal: the group's status, the scrollback, the scroll
//! position and the input line go in; keys and events change them; [`Model::screen`] says
//! what every row of the terminal shows. The terminal layer ([`super::tui`]) only reads keys
//! and draws screens, so everything here is tested without one.
//!
//! Layout, top to bottom: a title bar (group, epoch, fork state), the scrollback, a member
//! line (who is online), the input line.

use std::collections::VecDeque;

use crate::api::views::{EventView, GroupStatusView, MessageView};

use super::input::Input;
use super::notices::{Entry, changes_status, describe, status_line};
use super::text::{ellipsize, width, wrap};

/// Entries kept in the scrollback (the node keeps every message; this is what one session
/// can scroll back through).
const KEPT: usize = 5_000;
/// Rows the mouse wheel moves.
const WHEEL: usize = 3;
/// Rows the title, member and input lines take.
const CHROME: usize = 3;

/// A key (or paste, or wheel turn), as the model understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Paste(String),
    Left,
    Right,
    Home,
    End,
    Backspace,
    Delete,
    Up,
    Down,
    PageUp,
    PageDown,
    WheelUp,
    WheelDown,
    Enter,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D: leaves on an empty line, deletes forward otherwise (as in a shell).
    EndOfInput,
}

/// What the terminal layer does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Send(String),
    /// /who and /status: read the group's status and show [`status_line`].
    ShowStatus,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Title,
    Message,
    Notice,
    Members,
    Input,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub text: String,
    /// Columns `text` takes (never more than the screen's width, short of a wide character in
    /// a one-column terminal).
    pub width: usize,
    pub style: Style,
}

/// Everything the terminal shows: one row per terminal row, and where the cursor goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub rows: Vec<Row>,
    pub cursor: (u16, u16),
    /// The terminal's width the rows were laid out for.
    pub columns: usize,
}

pub struct Model {
    status: GroupStatusView,
    entries: VecDeque<Entry>,
    /// The next message number not shown yet.
    next: u64,
    /// Rows scrolled up from the newest, never more than [`Self::max_scroll`]; 0 follows new
    /// messages.
    scroll: usize,
    input: Input,
    columns: usize,
    rows: usize,
}

impl Model {
    pub fn new(status: GroupStatusView, recent: &[MessageView], columns: u16, rows: u16) -> Self {
        let mut model = Self {
            status,
            entries: VecDeque::new(),
            next: 0,
            scroll: 0,
            input: Input::default(),
            columns: columns.into(),
            rows: rows.into(),
        };
        for m in recent.iter().rev().take(KEPT).rev() {
            model.push(Entry::message(m));
        }
        model.next = recent.last().map_or(0, |m| m.seq + 1);
        model
    }

    pub fn group_id(&self) -> &str {
        &self.status.group_id
    }

    /// An event from the node. Returns whether the group's status should be read again.
    pub fn event(&mut self, event: &EventView) -> bool {
        let gid = self.status.group_id.clone();
        if let Some(entry) = describe(event, &gid, &mut self.next) {
            self.push(entry);
        }
        // What the event says right away; the status read that follows confirms it.
        match event {
            EventView::EpochChanged { group, epoch, .. } if *group == gid => {
                self.status.epoch = *epoch
            }
            EventView::ForkDetected { group, .. } if *group == gid => {
                self.status.fork = "resolving".into()
            }
            EventView::ForkBeyondWindow { group, .. } if *group == gid => {
                self.status.fork = "split".into()
            }
            EventView::MembershipChanged { group, members } if *group == gid => {
                self.status.members = members.clone()
            }
            EventView::Removed { group } | EventView::JoinLost { group } if *group == gid => {
                self.status.removed = true
            }
            EventView::SplitHealed { group, .. } if *group == gid => self.status.removed = false,
            _ => {}
        }
        changes_status(event, &gid)
    }

    /// A fresh read of the group's status.
    pub fn set_status(&mut self, status: GroupStatusView) {
        self.status = status;
    }

    pub fn notice(&mut self, text: String) {
        self.push(Entry::Notice(text));
    }

    /// The answer to /who or /status.
    pub fn show_status(&mut self, status: GroupStatusView) {
        self.notice(status_line(&status));
        self.set_status(status);
    }

    pub fn resize(&mut self, columns: u16, rows: u16) {
        self.columns = columns.into();
        self.rows = rows.into();
        self.scroll = self.scroll.min(self.max_scroll());
    }

    pub fn key(&mut self, key: Key) -> Action {
        let page = self.pane().saturating_sub(1).max(1);
        match key {
            Key::Char(c) => self.input.insert(c),
            Key::Paste(text) => self.input.insert_str(&text),
            Key::Left => self.input.left(),
            Key::Right => self.input.right(),
            Key::Home => self.input.home(),
            Key::End => self.input.end(),
            Key::Backspace => self.input.backspace(),
            Key::Delete => self.input.delete(),
            Key::Up => self.input.up(),
            Key::Down => self.input.down(),
            Key::PageUp => self.scroll_by(page as isize),
            Key::PageDown => self.scroll_by(-(page as isize)),
            Key::WheelUp => self.scroll_by(WHEEL as isize),
            Key::WheelDown => self.scroll_by(-(WHEEL as isize)),
            Key::Interrupt => return Action::Quit,
            Key::EndOfInput if self.input.is_empty() => return Action::Quit,
            Key::EndOfInput => self.input.delete(),
            Key::Enter => {
                return match self.input.take().as_str() {
                    "" => Action::None,
                    "/quit" => Action::Quit,
                    "/who" | "/status" => Action::ShowStatus,
                    text => {
                        // Sending brings the view back to the newest messages.
                        self.scroll = 0;
                        Action::Send(text.to_string())
                    }
                };
            }
        }
        Action::None
    }

    pub fn screen(&self) -> Screen {
        let columns = self.columns;
        let mut rows = Vec::with_capacity(self.rows);
        if self.rows > CHROME {
            rows.push(self.title());
            let pane = self.pane();
            // `scroll` is kept in bounds, so the rows in view are within the last
            // `scroll + pane`: only those are wrapped, however long the scrollback.
            let tail = self.tail(self.scroll + pane);
            let end = tail.len().saturating_sub(self.scroll);
            let start = end.saturating_sub(pane);
            rows.extend(tail[start..end].iter().cloned());
            while rows.len() < 1 + pane {
                rows.push(row(String::new(), Style::Message));
            }
            rows.push(row(ellipsize(&self.members(), columns), Style::Members));
        } else {
            // Too small for anything but the input line.
            while rows.len() + 1 < self.rows {
                rows.push(row(String::new(), Style::Message));
            }
        }
        let prompt = if columns > 4 { "> " } else { "" };
        let (shown, at) = self.input.view(columns - prompt.len().min(columns));
        if self.rows > 0 {
            rows.push(row(format!("{prompt}{shown}"), Style::Input));
        }
        let x = (prompt.len() + at).min(columns.saturating_sub(1));
        let y = self.rows.saturating_sub(1);
        Screen {
            rows,
            cursor: (
                u16::try_from(x).unwrap_or(u16::MAX),
                u16::try_from(y).unwrap_or(u16::MAX),
            ),
            columns,
        }
    }

    fn push(&mut self, entry: Entry) {
        let added = self.entry_rows(&entry).len();
        self.entries.push_back(entry);
        if self.entries.len() > KEPT {
            self.entries.pop_front();
        }
        // Keep the rows in view still while scrolled up (following, the view moves on).
        if self.scroll > 0 {
            self.scroll = (self.scroll + added).min(self.max_scroll());
        }
    }

    /// Rows of the scrollback pane.
    fn pane(&self) -> usize {
        self.rows.saturating_sub(CHROME)
    }

    fn entry_rows(&self, entry: &Entry) -> Vec<Row> {
        let (text, hang) = entry.screen_text();
        let style = if entry.is_notice() {
            Style::Notice
        } else {
            Style::Message
        };
        wrap(&text, self.columns, hang)
            .into_iter()
            .map(|t| row(t, style))
            .collect()
    }

    /// The last `count` rows of the scrollback at the current width (fewer if it is shorter).
    fn tail(&self, count: usize) -> Vec<Row> {
        let mut rows = VecDeque::new();
        for entry in self.entries.iter().rev() {
            if rows.len() >= count {
                break;
            }
            for r in self.entry_rows(entry).into_iter().rev() {
                rows.push_front(r);
            }
        }
        let extra = rows.len().saturating_sub(count);
        rows.into_iter().skip(extra).collect()
    }

    /// How far up the scrollback goes: its rows at the current width, less the pane.
    fn max_scroll(&self) -> usize {
        let total: usize = self.entries.iter().map(|e| self.entry_rows(e).len()).sum();
        total.saturating_sub(self.pane())
    }

    fn scroll_by(&mut self, delta: isize) {
        self.scroll = self
            .scroll
            .saturating_add_signed(delta)
            .min(self.max_scroll());
    }

    fn title(&self) -> Row {
        let s = &self.status;
        let mut left = format!(" {} · epoch {} · {}", s.name, s.epoch, s.fork);
        if s.removed {
            left.push_str(" · removed");
        }
        let right = if self.scroll > 0 {
            format!("{} rows below · PgDn ", self.scroll)
        } else {
            "PgUp/PgDn scroll · /who /status /quit ".to_string()
        };
        let left = super::text::printable(&left).replace('\n', " ");
        let gap = self.columns.saturating_sub(width(&left) + width(&right));
        // The bar spans the whole row; the hint goes when there is no room for it.
        let text = if gap > 0 {
            format!("{left}{}{right}", " ".repeat(gap))
        } else {
            let left = ellipsize(&left, self.columns);
            let pad = self.columns.saturating_sub(width(&left));
            format!("{left}{}", " ".repeat(pad))
        };
        row(text, Style::Title)
    }

    /// `online: ann, ben · away: cat · dan`: presence is known for yourself and contacts.
    fn members(&self) -> String {
        let group = |online: Option<bool>| {
            self.status
                .members
                .iter()
                .filter(|m| m.online == online)
                .map(|m| super::text::printable(&m.handle).replace('\n', " "))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        for (label, online) in [
            ("online: ", Some(true)),
            ("away: ", Some(false)),
            ("", None),
        ] {
            let names = group(online);
            if !names.is_empty() {
                parts.push(format!("{label}{names}"));
            }
        }
        format!(" {}", parts.join(" · "))
    }

    #[cfg(test)]
    fn input_text(&self) -> String {
        self.input.text()
    }
}

fn row(text: String, style: Style) -> Row {
    Row {
        width: width(&text),
        text,
        style,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::views::MemberView;

    fn status() -> GroupStatusView {
        GroupStatusView {
            group_id: "g".into(),
            name: "team".into(),
            epoch: 2,
            branch_id: "0123456789".into(),
            members: vec![
                MemberView {
                    handle: "ann".into(),
                    fingerprint: "a".into(),
                    online: Some(true),
                },
                MemberView {
                    handle: "ben".into(),
                    fingerprint: "b".into(),
                    online: Some(false),
                },
                MemberView {
                    handle: "cat".into(),
                    fingerprint: "c".into(),
                    online: None,
                },
            ],
            held_branches: 1,
            fork: "settled".into(),
            removed: false,
        }
    }

    fn message(seq: u64, text: &str) -> MessageView {
        MessageView {
            seq,
            id: format!("m{seq}"),
            sender: "ben".into(),
            sender_fingerprint: "b".into(),
            sent_at_ms: (9 * 3600 + 30 * 60) * 1000,
            received_at_ms: 0,
            text: text.into(),
            queued: false,
        }
    }

    fn texts(screen: &Screen) -> Vec<&str> {
        screen.rows.iter().map(|r| r.text.as_str()).collect()
    }

    fn with_messages(n: u64, columns: u16, rows: u16) -> Model {
        let recent: Vec<MessageView> = (0..n).map(|i| message(i, &format!("m{i}"))).collect();
        Model::new(status(), &recent, columns, rows)
    }

    #[test]
    fn lays_out_title_scrollback_members_and_input() {
        let mut model = with_messages(2, 70, 8);
        for c in "hi".chars() {
            model.key(Key::Char(c));
        }
        let screen = model.screen();
        let title = format!(
            " team · epoch 2 · settled{}PgUp/PgDn scroll · /who /status /quit ",
            " ".repeat(7)
        );
        assert_eq!(
            texts(&screen),
            [
                title.as_str(),
                "[09:30] ben: m0",
                "[09:30] ben: m1",
                "",
                "",
                "",
                " online: ann · away: ben · cat",
                "> hi",
            ]
        );
        assert_eq!(screen.cursor, (4, 7));
        assert!(screen.rows.iter().all(|r| r.width <= 70));
        assert_eq!(screen.rows[0].width, 70, "the title bar spans the row");
    }

    #[test]
    fn long_messages_wrap_and_resize_relays_them() {
        let mut model = Model::new(
            status(),
            &[message(0, "one two three four five six")],
            20,
            6,
        );
        let screen = model.screen();
        assert_eq!(
            &texts(&screen)[1..4],
            [
                "[09:30] ben: one two",
                "        three four",
                "        five six"
            ]
        );
        model.resize(40, 6);
        assert_eq!(
            texts(&model.screen())[1],
            "[09:30] ben: one two three four five six"
        );
    }

    #[test]
    fn scrolling_stays_in_bounds() {
        // 20 messages, a pane of 5 rows.
        let mut model = with_messages(20, 40, 8);
        let last = |m: &Model| texts(&m.screen())[5].to_string();
        assert_eq!(last(&model), "[09:30] ben: m19");
        model.key(Key::PageUp);
        assert_eq!(
            last(&model),
            "[09:30] ben: m15",
            "a page is the pane less one row"
        );
        for _ in 0..10 {
            model.key(Key::PageUp);
        }
        assert_eq!(
            texts(&model.screen())[1],
            "[09:30] ben: m0",
            "stops at the top"
        );
        assert_eq!(model.scroll, 15);
        model.key(Key::WheelDown);
        assert_eq!(model.scroll, 12);
        for _ in 0..10 {
            model.key(Key::PageDown);
        }
        assert_eq!(model.scroll, 0, "stops at the bottom");
        assert_eq!(last(&model), "[09:30] ben: m19");
    }

    #[test]
    fn the_scrollback_keeps_the_newest_entries() {
        let extra = 100;
        let mut model = with_messages(KEPT as u64 + extra, 40, 8);
        assert_eq!(model.entries.len(), KEPT);
        let top = format!("[09:30] ben: m{extra}");
        let newest = format!("[09:30] ben: m{}", KEPT as u64 + extra - 1);
        assert_eq!(texts(&model.screen())[5], newest);
        // Scrolled to the top, one more message pushes the oldest out: the view stays in
        // bounds, on what is now the oldest.
        model.scroll_by(isize::MAX);
        assert_eq!(texts(&model.screen())[1], top);
        model.event(&EventView::Message {
            group: "g".into(),
            message: message(KEPT as u64 + extra, "newer"),
        });
        assert_eq!(model.scroll, model.max_scroll());
        assert_eq!(
            texts(&model.screen())[1],
            format!("[09:30] ben: m{}", extra + 1)
        );
    }

    #[test]
    fn new_messages_do_not_move_a_scrolled_view() {
        let mut model = with_messages(20, 70, 8);
        model.key(Key::PageUp);
        let before = texts(&model.screen())[1..6].join("|");
        model.event(&EventView::Message {
            group: "g".into(),
            message: message(20, "new"),
        });
        let screen = model.screen();
        assert_eq!(
            screen.rows[1..6]
                .iter()
                .map(|r| r.text.as_str())
                .collect::<Vec<_>>()
                .join("|"),
            before
        );
        assert!(
            screen.rows[0].text.contains("5 rows below"),
            "{:?}",
            screen.rows[0]
        );
        // Following (not scrolled), the new message shows at once.
        model.key(Key::PageDown);
        model.key(Key::PageDown);
        assert_eq!(texts(&model.screen())[5], "[09:30] ben: new");
    }

    #[test]
    fn shrinking_the_window_keeps_the_scroll_in_bounds() {
        let mut model = with_messages(10, 40, 12);
        model.key(Key::PageUp);
        model.resize(40, 30);
        assert_eq!(model.scroll, 0, "everything fits: nothing to scroll");
        let screen = model.screen();
        assert_eq!(screen.rows.len(), 30);
        for (columns, rows) in [(0, 0), (1, 1), (3, 2), (5, 4), (10, 3)] {
            model.resize(columns, rows);
            let screen = model.screen();
            assert_eq!(screen.rows.len(), usize::from(rows), "{columns}x{rows}");
            assert!(
                screen
                    .rows
                    .iter()
                    .all(|r| r.width <= usize::from(columns).max(1))
            );
        }
    }

    #[test]
    fn enter_sends_or_runs_a_command() {
        fn enter(m: &mut Model, text: &str) -> Action {
            for c in text.chars() {
                m.key(Key::Char(c));
            }
            m.key(Key::Enter)
        }
        let mut model = with_messages(0, 40, 8);
        assert_eq!(enter(&mut model, " hello "), Action::Send("hello".into()));
        assert_eq!(enter(&mut model, ""), Action::None);
        assert_eq!(enter(&mut model, "/who"), Action::ShowStatus);
        assert_eq!(enter(&mut model, "/status"), Action::ShowStatus);
        assert_eq!(enter(&mut model, "/quit"), Action::Quit);
        model.key(Key::Up);
        model.key(Key::Up);
        assert_eq!(model.input_text(), "/status");
        assert_eq!(model.key(Key::EndOfInput), Action::None, "deletes forward");
        assert_eq!(model.key(Key::Interrupt), Action::Quit);
        model.key(Key::Home);
        while !model.input.is_empty() {
            model.key(Key::Delete);
        }
        assert_eq!(model.key(Key::EndOfInput), Action::Quit);
    }

    #[test]
    fn events_update_the_title_and_show_notices() {
        let mut model = with_messages(0, 90, 8);
        let refresh = model.event(&EventView::ForkDetected {
            group: "g".into(),
            epoch: 3,
            commits: 2,
        });
        assert!(refresh);
        let screen = model.screen();
        assert!(
            screen.rows[0]
                .text
                .starts_with(" team · epoch 2 · resolving")
        );
        assert_eq!(
            screen.rows[1].text,
            "· fork at epoch 3: 2 competing commits, resolving"
        );
        assert_eq!(screen.rows[1].style, Style::Notice);
        model.event(&EventView::ForkBeyondWindow {
            group: "g".into(),
            epoch: 3,
        });
        assert!(
            model.screen().rows[0]
                .text
                .starts_with(" team · epoch 2 · split")
        );
        model.event(&EventView::MembershipChanged {
            group: "g".into(),
            members: vec![MemberView {
                handle: "dan".into(),
                fingerprint: "d".into(),
                online: Some(true),
            }],
        });
        assert_eq!(texts(&model.screen())[6], " online: dan");
        model.event(&EventView::Removed { group: "g".into() });
        assert!(model.screen().rows[0].text.contains("removed"));
        let other = model.event(&EventView::Removed { group: "h".into() });
        assert!(!other, "another group's event changes nothing here");
        model.show_status(status());
        assert_eq!(
            texts(&model.screen())[5],
            "· epoch 2 · branch 01234567 · settled · members: ann (online), ben (away), cat"
        );
        assert_eq!(texts(&model.screen())[6], " online: ann · away: ben · cat");
    }

    #[test]
    fn the_input_line_scrolls_with_the_cursor() {
        let mut model = with_messages(0, 10, 5);
        for c in "abcdefghijkl".chars() {
            model.key(Key::Char(c));
        }
        let screen = model.screen();
        assert_eq!(screen.rows[4].text, "> fghijkl");
        assert_eq!(screen.cursor, (9, 4));
        model.key(Key::Home);
        let screen = model.screen();
        assert_eq!(screen.rows[4].text, "> abcdefgh");
        assert_eq!(screen.cursor, (2, 4));
    }
}
