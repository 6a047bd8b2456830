//! `chorus chat` against two real nodes: the full-screen chat inside a pseudo-terminal (a line
//! typed reaches the other node, the other node's message shows on the screen, /quit exits 0
//! with the terminal put back), and the line mode with stdin and stdout piped, as scripts use it.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use node::demo::harness::{
    LocalNode, NodeOptions, chorus_exe, group_of_all, start_nodes, wait_for,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(90);
const COLUMNS: u16 = 100;
const ROWS: u16 = 30;

/// Leave the alternate screen, then show the cursor: the last thing the chat writes.
const RESTORED: &str = "\x1b[?1049l\x1b[?25h";

/// A pseudo-terminal of a fixed size. The test keeps the slave open, to read its modes.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

fn open_pty() -> anyhow::Result<Pty> {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors through the pointers; the name and termios
    // arguments may be null, and the size outlives the call.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("openpty");
    }
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: setting close-on-exec on a descriptor we own; nodes started later must not
        // inherit the terminal.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(Pty { master, slave })
}

/// Whether the terminal is in canonical mode with echo (what a shell expects), read on the
/// slave.
fn line_mode(pty: &Pty) -> anyhow::Result<bool> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a valid pointer.
    if unsafe { libc::tcgetattr(pty.slave.as_raw_fd(), &mut t) } != 0 {
        return Err(std::io::Error::last_os_error()).context("tcgetattr");
    }
    Ok(t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0)
}

/// The bytes a terminal or pipe received so far.
type Output = Arc<Mutex<Vec<u8>>>;

/// Everything the terminal received, collected by a thread until the terminal closes.
fn record(pty: &Pty) -> anyhow::Result<(Output, std::thread::JoinHandle<()>)> {
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut master = std::fs::File::from(pty.master.try_clone()?);
    let sink = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once no one holds the slave any more.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("not poisoned")
                .extend_from_slice(&buf[..n]);
        }
    });
    Ok((screen, reader))
}

fn text(screen: &Mutex<Vec<u8>>) -> String {
    text_from(screen, 0)
}

/// What arrived after the first `mark` bytes.
fn text_from(screen: &Mutex<Vec<u8>>, mark: usize) -> String {
    let bytes = screen.lock().expect("not poisoned");
    String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).into_owned()
}

/// The screen's bytes for an error message, escapes made visible.
fn dump(screen: &Mutex<Vec<u8>>) -> String {
    let t = text(screen).replace('\x1b', "␛");
    let tail: String = t.chars().rev().take(3000).collect();
    tail.chars().rev().collect()
}

async fn received(node: &LocalNode, gid: &str, text: &str) -> anyhow::Result<Option<()>> {
    let messages = node.messages(gid).await?;
    Ok(messages.iter().any(|m| m.text == text).then_some(()))
}

/// `chorus chat team [flags]` on `node`, inside the pty.
fn start_chat(pty: &Pty, node: &LocalNode, flags: &[&str]) -> anyhow::Result<Child> {
    let mut command = Command::new(chorus_exe()?);
    command
        .arg("--data")
        .arg(node.data.root())
        .args(["chat", "team"])
        .args(flags)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave.try_clone()?))
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec. The chat gets the pty as
    // its controlling terminal, so that /dev/tty (where crossterm reads the size) is the pty.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().context("starting chorus chat")
}

/// Resizes the terminal (the chat gets SIGWINCH).
fn set_size(pty: &Pty, columns: u16, rows: u16) -> anyhow::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: a valid descriptor and a pointer to a winsize that outlives the call.
    if unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(std::io::Error::last_os_error()).context("TIOCSWINSZ");
    }
    Ok(())
}

/// Waits for the chat to exit with `code`.
async fn exits_with(
    chat: &mut Child,
    code: Option<i32>,
    screen: &Mutex<Vec<u8>>,
) -> anyhow::Result<()> {
    let status = wait_for("the chat to exit", LIMIT, || {
        let exited = chat.try_wait();
        async move { Ok(exited?) }
    })
    .await
    .with_context(|| dump(screen))?;
    anyhow::ensure!(
        status.code() == code,
        "{status:?} (signal {:?}): {}",
        status.signal(),
        dump(screen)
    );
    Ok(())
}

/// Waits for the title bar, with the terminal in raw mode.
async fn first_screen(pty: &Pty, screen: &Mutex<Vec<u8>>) -> anyhow::Result<()> {
    wait_for("the chat's first screen", LIMIT, || async {
        let shown = text(screen).contains(" team · epoch ") && !line_mode(pty)?;
        Ok(shown.then_some(()))
    })
    .await
    .with_context(|| dump(screen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_screen_chat_in_a_terminal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut nodes, _) = start_nodes(dir.path(), &["ann", "ben"], &NodeOptions::default()).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;

    let pty = open_pty()?;
    assert!(line_mode(&pty)?, "a new terminal starts in line mode");
    let (screen, reader) = record(&pty)?;
    let mut keyboard = std::fs::File::from(pty.master.try_clone()?);
    let mut chat = start_chat(&pty, &nodes[0], &[])?;
    first_screen(&pty, &screen).await?;

    keyboard.write_all(b"hello from ann\r")?;
    wait_for("ben to receive ann's line", LIMIT, || {
        received(&nodes[1], &gid, "hello from ann")
    })
    .await
    .with_context(|| dump(&screen))?;

    nodes[1].send(&gid, "hello from ben").await?;
    wait_for("ben's message on ann's screen", LIMIT, || async {
        Ok(text(&screen)
            .contains("] ben: hello from ben")
            .then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    // Ann's own line shows too, from the node's event for it.
    assert!(
        text(&screen).contains("] ann: hello from ann"),
        "{}",
        dump(&screen)
    );

    // A smaller terminal: the chat lays the screen out again, the input line now on row 20.
    set_size(&pty, 60, 20)?;
    wait_for("the screen laid out for 60x20", LIMIT, || async {
        Ok(text(&screen).contains("\x1b[20;1H> ").then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    keyboard.write_all(b"/quit\r")?;
    exits_with(&mut chat, Some(0), &screen).await?;
    wait_for("the terminal put back", LIMIT, || async {
        Ok((text(&screen).ends_with(RESTORED) && line_mode(&pty)?).then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    // --plain in the same terminal: lines, no full screen.
    let mark = screen.lock().expect("not poisoned").len();
    let mut plain = start_chat(&pty, &nodes[0], &["--plain"])?;
    wait_for("the line mode's header", LIMIT, || async {
        Ok(text_from(&screen, mark)
            .contains("── team · epoch ")
            .then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;
    keyboard.write_all(b"/quit\r")?;
    exits_with(&mut plain, Some(0), &screen).await?;
    assert!(
        !text_from(&screen, mark).contains("\x1b[?1049h"),
        "--plain switched to the alternate screen: {}",
        dump(&screen)
    );

    drop(keyboard);
    drop(pty);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_is_restored_on_sigterm_and_when_the_node_stops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut nodes, _) = start_nodes(dir.path(), &["ann"], &NodeOptions::default()).await?;
    group_of_all(&nodes, "team", LIMIT).await?;
    let pty = open_pty()?;
    let (screen, reader) = record(&pty)?;

    // SIGTERM ends the chat like /quit.
    let mut chat = start_chat(&pty, &nodes[0], &[])?;
    first_screen(&pty, &screen).await?;
    let pid = chat.id().context("the chat's pid")?;
    // SAFETY: a signal to our own child, which has not been waited for (its pid is its own).
    if unsafe { libc::kill(libc::pid_t::try_from(pid)?, libc::SIGTERM) } != 0 {
        return Err(std::io::Error::last_os_error()).context("kill");
    }
    exits_with(&mut chat, Some(0), &screen).await?;
    wait_for("the terminal put back after SIGTERM", LIMIT, || async {
        Ok((text(&screen).ends_with(RESTORED) && line_mode(&pty)?).then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    let mark = screen.lock().expect("not poisoned").len();
    let mut chat = start_chat(&pty, &nodes[0], &[])?;
    wait_for("the chat's second first screen", LIMIT, || async {
        let shown = text_from(&screen, mark).contains(" team · epoch ") && !line_mode(&pty)?;
        Ok(shown.then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    // The event stream ends under the chat: it leaves with an error.
    nodes[0].stop().await?;
    exits_with(&mut chat, Some(1), &screen).await?;
    // The error is printed after the terminal was put back, so it stays readable.
    let expected = format!("{RESTORED}chorus: the node stopped");
    wait_for("the terminal put back, then the error", LIMIT, || async {
        let out = text(&screen);
        Ok((out.trim_end().ends_with(&expected) && line_mode(&pty)?).then_some(()))
    })
    .await
    .with_context(|| dump(&screen))?;

    drop(pty);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_mode_with_piped_stdin() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut nodes, _) = start_nodes(dir.path(), &["ann", "ben"], &NodeOptions::default()).await?;
    let gid = group_of_all(&nodes, "team", LIMIT).await?;

    let mut chat = Command::new(chorus_exe()?)
        .arg("--data")
        .arg(nodes[0].data.root())
        .args(["chat", "team"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting chorus chat")?;
    let mut stdin = chat.stdin.take().context("stdin")?;
    let mut stdout = chat.stdout.take().context("stdout")?;
    let output: Output = Arc::default();
    let sink = output.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("not poisoned")
                .extend_from_slice(&buf[..n]);
        }
    });
    let shows = |what: &'static str| {
        let output = output.clone();
        move || {
            let output = output.clone();
            async move { Ok(text(&output).contains(what).then_some(())) }
        }
    };

    wait_for("the header", LIMIT, shows("── team · epoch "))
        .await
        .with_context(|| text(&output))?;
    stdin.write_all(b"piped from ann\n").await?;
    wait_for("ben to receive the piped line", LIMIT, || {
        received(&nodes[1], &gid, "piped from ann")
    })
    .await
    .with_context(|| text(&output))?;
    nodes[1].send(&gid, "reply to the pipe").await?;
    wait_for(
        "ben's reply on stdout",
        LIMIT,
        shows("] ben: reply to the pipe"),
    )
    .await
    .with_context(|| text(&output))?;
    stdin.write_all(b"/who\n").await?;
    wait_for("/who's answer", LIMIT, shows(" · branch "))
        .await
        .with_context(|| text(&output))?;

    // The end of stdin ends the chat, as for a script.
    drop(stdin);
    let status = tokio::time::timeout(LIMIT, chat.wait())
        .await
        .context("the chat did not exit at the end of stdin")??;
    assert!(status.success(), "{status:?}: {}", text(&output));
    assert!(
        !text(&output).contains('\x1b'),
        "no terminal control in line mode: {:?}",
        text(&output)
    );

    for node in nodes.iter_mut() {
        node.stop().await?;
    }
    Ok(())
}
