//! The terminal side of the full-screen chat: raw mode and the alternate screen, keys and
//! resizes in, the model's screen out. The terminal is put back on every way out: a guard
//! restores it when dropped (return, error), a panic hook before the panic message prints,
//! and SIGTERM / SIGHUP / SIGINT end the loop like /quit.

use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use crossterm::style::{Attribute, Color, Print, SetAttribute, SetForegroundColor};
use crossterm::terminal::{
    self, BeginSynchronizedUpdate, Clear, ClearType, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{cursor, execute, queue};
use futures::{FutureExt, StreamExt};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::api::client::Client;
use crate::api::views::{EventView, GroupStatusView, MessageView};

use super::Events;
use super::model::{Action, Key, Model, Screen, Style};

/// How often the member line's online/away is read again without an event asking for it.
const PRESENCE_REFRESH: Duration = Duration::from_secs(5);
/// Events handled before the screen is drawn again, at most.
const BATCH: usize = 256;

pub async fn run(
    client: &Client,
    status: GroupStatusView,
    list: Vec<MessageView>,
    mut events: Events,
) -> anyhow::Result<()> {
    let (columns, rows) = match terminal::size()? {
        // A terminal that reports no size (some serial lines) gets the classic one.
        (0, _) | (_, 0) => (80, 24),
        size => size,
    };
    let mut model = Model::new(status, &list, columns, rows);
    let _terminal = TerminalGuard::enter()?;
    let mut out = std::io::stdout();
    let mut keys = EventStream::new();
    let mut refresh = tokio::time::interval(PRESENCE_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Ctrl-C arrives as a key in raw mode; this is `kill -INT` from elsewhere.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut shown = None;
    draw(&mut out, &model.screen(), &mut shown)?;
    loop {
        tokio::select! {
            key = keys.next() => {
                let Some(key) = key else { return Ok(()) };
                match key? {
                    Event::Resize(columns, rows) => {
                        model.resize(columns, rows);
                        // What the terminal kept of the old screen is its own business.
                        shown = None;
                        queue!(out, Clear(ClearType::All))?;
                    }
                    event => {
                        let Some(key) = key_of(&event) else { continue };
                        match model.key(key) {
                            Action::None => {}
                            Action::Quit => return Ok(()),
                            Action::ShowStatus => match read_status(client, model.group_id()).await {
                                Ok(s) => model.show_status(s),
                                Err(e) => model.notice(format!("· cannot read the group: {e:#}")),
                            },
                            Action::Send(text) => {
                                let path = format!("/v1/groups/{}/messages", model.group_id());
                                // The message shows when the node's event for it arrives.
                                if let Err(e) = client.post::<MessageView>(&path, json!({ "text": text })).await {
                                    model.notice(format!("· not sent: {e:#}"));
                                }
                            }
                        }
                    }
                }
            }
            line = events.next_line() => {
                // Whatever else has arrived is taken too, so that a burst (a catch-up after
                // a partition) is drawn once, not once per message.
                let mut next = Some(line?);
                let mut taken = 0;
                let mut status_changed = false;
                while let Some(line) = next.take() {
                    let Some(line) = line else {
                        // The error prints once the guard has put the terminal back.
                        anyhow::bail!("the node stopped");
                    };
                    if let Ok(event) = serde_json::from_str::<EventView>(&line) {
                        status_changed |= model.event(&event);
                    }
                    taken += 1;
                    if taken < BATCH {
                        next = events.next_line().now_or_never().transpose()?;
                    }
                }
                if status_changed && let Ok(s) = read_status(client, model.group_id()).await {
                    model.set_status(s);
                }
            }
            _ = refresh.tick() => {
                if let Ok(s) = read_status(client, model.group_id()).await {
                    model.set_status(s);
                }
            }
            _ = term.recv() => return Ok(()),
            _ = hangup.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
        draw(&mut out, &model.screen(), &mut shown)?;
    }
}

async fn read_status(client: &Client, gid: &str) -> anyhow::Result<GroupStatusView> {
    client.get(&format!("/v1/groups/{gid}")).await
}

/// The model's key for a terminal event, if it is one the chat uses.
fn key_of(event: &Event) -> Option<Key> {
    match event {
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press | KeyEventKind::Repeat,
            ..
        }) => {
            let ctrl = modifiers.contains(KeyModifiers::CONTROL);
            Some(match code {
                KeyCode::Char('c') if ctrl => Key::Interrupt,
                KeyCode::Char('d') if ctrl => Key::EndOfInput,
                KeyCode::Char('a') if ctrl => Key::Home,
                KeyCode::Char('e') if ctrl => Key::End,
                KeyCode::Char(_) if ctrl || modifiers.contains(KeyModifiers::ALT) => return None,
                KeyCode::Char(c) => Key::Char(*c),
                KeyCode::Enter => Key::Enter,
                KeyCode::Backspace => Key::Backspace,
                KeyCode::Delete => Key::Delete,
                KeyCode::Left => Key::Left,
                KeyCode::Right => Key::Right,
                KeyCode::Home => Key::Home,
                KeyCode::End => Key::End,
                KeyCode::Up => Key::Up,
                KeyCode::Down => Key::Down,
                KeyCode::PageUp => Key::PageUp,
                KeyCode::PageDown => Key::PageDown,
                _ => return None,
            })
        }
        Event::Paste(text) => Some(Key::Paste(text.clone())),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Key::WheelUp),
            MouseEventKind::ScrollDown => Some(Key::WheelDown),
            _ => None,
        },
        _ => None,
    }
}

/// Draws the rows that differ from the `shown` screen over it (all of them when `shown` is
/// `None`), without clearing the whole screen, so nothing flickers and a keystroke costs one
/// row; `shown` becomes `screen`.
fn draw(out: &mut impl Write, screen: &Screen, shown: &mut Option<Screen>) -> std::io::Result<()> {
    queue!(out, BeginSynchronizedUpdate, cursor::Hide)?;
    for (y, row) in screen.rows.iter().enumerate() {
        let unchanged = shown
            .as_ref()
            .is_some_and(|s| s.columns == screen.columns && s.rows.get(y) == Some(row));
        if unchanged {
            continue;
        }
        let y = u16::try_from(y).unwrap_or(u16::MAX);
        queue!(out, cursor::MoveTo(0, y))?;
        match row.style {
            Style::Title => queue!(out, SetAttribute(Attribute::Reverse))?,
            Style::Notice => queue!(out, SetForegroundColor(Color::DarkYellow))?,
            Style::Members => queue!(out, SetAttribute(Attribute::Dim))?,
            Style::Message | Style::Input => {}
        }
        queue!(out, Print(&row.text), SetAttribute(Attribute::Reset))?;
        // Erasing after a full row would erase its last cell (the cursor waits on it).
        if row.width < screen.columns {
            queue!(out, Clear(ClearType::UntilNewLine))?;
        }
    }
    let (x, y) = screen.cursor;
    queue!(
        out,
        cursor::MoveTo(x, y),
        cursor::Show,
        EndSynchronizedUpdate
    )?;
    *shown = Some(screen.clone());
    out.flush()
}

/// Whether the terminal is in the chat's mode and must be put back.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Raw mode and the alternate screen while alive.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on, dropping the guard (also on the error below) restores the terminal.
        let guard = Self;
        execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            EnableMouseCapture
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back, once: the modes off, the normal screen and the cursor back, then
/// line editing and echo.
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// A panic restores the terminal first, so that its message lands on the normal screen and
/// the shell is usable afterwards.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::super::model::Row;
    use super::*;
    use crossterm::event::{KeyEventState, MouseEvent};

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        })
    }

    #[test]
    fn terminal_keys_map_to_the_models() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(
            key_of(&press(KeyCode::Char('c'), ctrl)),
            Some(Key::Interrupt)
        );
        assert_eq!(
            key_of(&press(KeyCode::Char('d'), ctrl)),
            Some(Key::EndOfInput)
        );
        assert_eq!(
            key_of(&press(KeyCode::Char('x'), KeyModifiers::SHIFT)),
            Some(Key::Char('x'))
        );
        assert_eq!(key_of(&press(KeyCode::Char('x'), ctrl)), None);
        assert_eq!(key_of(&press(KeyCode::PageUp, none)), Some(Key::PageUp));
        let release = Event::Key(KeyEvent {
            code: KeyCode::Char('a'),
            modifiers: none,
            kind: KeyEventKind::Release,
            state: KeyEventState::NONE,
        });
        assert_eq!(key_of(&release), None);
        let wheel = Event::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 0,
            row: 0,
            modifiers: none,
        });
        assert_eq!(key_of(&wheel), Some(Key::WheelUp));
        assert_eq!(
            key_of(&Event::Paste("x".into())),
            Some(Key::Paste("x".into()))
        );
    }

    fn screen(rows: &[(&str, usize)]) -> Screen {
        Screen {
            rows: rows
                .iter()
                .map(|&(text, width)| Row {
                    text: text.into(),
                    width,
                    style: Style::Message,
                })
                .collect(),
            cursor: (1, 1),
            columns: 5,
        }
    }

    fn drawn(screen: &Screen, shown: &mut Option<Screen>) -> String {
        let mut out = Vec::new();
        draw(&mut out, screen, shown).expect("drawn into memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn draws_changed_rows_in_place() {
        let mut shown = None;
        let first = screen(&[("abc", 3), ("12345", 5)]);
        let out = drawn(&first, &mut shown);
        // Row 1 at (0, 0), "abc", erase the rest of the line.
        assert!(out.contains("\x1b[1;1Habc\x1b[0m\x1b[K"), "{out:?}");
        // A full row is not followed by an erase: it would erase its last cell.
        assert!(out.contains("\x1b[2;1H12345\x1b[0m\x1b[2;2H"), "{out:?}");
        assert!(out.ends_with("\x1b[2;2H\x1b[?25h\x1b[?2026l"), "{out:?}");
        assert_eq!(shown.as_ref(), Some(&first));

        let second = screen(&[("abc", 3), ("12", 2)]);
        let out = drawn(&second, &mut shown);
        assert!(
            !out.contains("abc"),
            "an unchanged row is not drawn again: {out:?}"
        );
        assert!(out.contains("\x1b[2;1H12\x1b[0m\x1b[K"), "{out:?}");
    }
}
