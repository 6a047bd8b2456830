//! The local API admits only callers with the token, answers bad requests with clear errors,
//! and SIGTERM stops the daemon cleanly (exit status 0, API address file removed, the data dir
//! opens again). `--metrics` serves Chorus's and libp2p's metrics, among them what the
//! groups' consistency mode costs the member.

use std::time::Duration;

use node::api::http;
use node::demo::harness::{LocalNode, NodeOptions, group_of_all, start_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_token_and_sigterm_stops_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let mut ann = LocalNode::init(dir.path(), "ann")?;
    ann.start(&options, 0, &[]).await?;
    let addr = ann.client()?.addr;

    let wrong = http::call(addr, None, "not-the-token", "GET", "/v1/status", None).await?;
    assert_eq!(wrong.status, 401);
    let token = std::fs::read_to_string(ann.data.api_token())?;
    let unknown = http::call(addr, None, token.trim(), "GET", "/v1/nothing", None).await?;
    assert_eq!(unknown.status, 404);
    let bad = http::call(
        addr,
        None,
        token.trim(),
        "POST",
        "/v1/groups",
        Some(&serde_json::json!({ "name": "has space" })),
    )
    .await?;
    assert_eq!(bad.status, 400, "{}", String::from_utf8_lossy(&bad.body));

    // One connection serves call after call, an error answer included, until a call asks
    // to close it.
    let mut conn = http::connect(addr, None).await?;
    for (path, status) in [
        ("/v1/status", 200),
        ("/v1/nothing", 404),
        ("/v1/status", 200),
    ] {
        let (response, kept) = http::exchange(&mut conn, token.trim(), "GET", path, None).await?;
        assert_eq!(response.status, status, "{path}");
        assert!(kept, "the daemon keeps the connection after {path}");
    }
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let last = format!(
            "GET /v1/status HTTP/1.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        );
        conn.get_mut().write_all(last.as_bytes()).await?;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut rest))
            .await
            .map_err(|_| anyhow::anyhow!("the daemon kept a connection asked to close"))??;
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
        assert!(rest.contains("Connection: close"), "{rest}");
    }
    // A wrong token on a kept connection: answered, and the connection closed.
    let mut conn = http::connect(addr, None).await?;
    let (response, kept) = http::exchange(&mut conn, "wrong", "GET", "/v1/status", None).await?;
    assert_eq!((response.status, kept), (401, false));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ann.data.api_token())?
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the token file is private");
    }

    let child = ann.child.as_mut().expect("running");
    let pid = child.id().expect("pid") as i32;
    // SAFETY: sends SIGTERM to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(status.success(), "exit status {status}");
    assert!(
        !ann.data.api_addr().exists(),
        "api.addr removed at shutdown"
    );
    ann.child = None;
    ann.client = None;
    // The database was closed: the node starts again over it.
    ann.start(&options, 0, &[]).await?;
    ann.stop().await?;
    Ok(())
}

/// The value of the sample named exactly `name` in an exposition, if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_chorus_and_libp2p_figures() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions {
        metrics: true,
        ..NodeOptions::default()
    };
    let mut ann = LocalNode::init(dir.path(), "ann")?;
    ann.start(&options, 0, &[]).await?;
    let boot = ann.listen.clone().expect("listening");
    let mut ben = LocalNode::init(dir.path(), "ben")?;
    ben.start(&options, 0, &[boot]).await?;
    let addr: std::net::SocketAddr = std::fs::read_to_string(ann.data.metrics_addr())?
        .trim()
        .parse()?;

    let text = wait_for(
        "ann's metrics to show ben",
        Duration::from_secs(30),
        || async {
            let response = http::call(addr, None, "", "GET", "/metrics", None).await?;
            anyhow::ensure!(response.status == 200, "status {}", response.status);
            let text = String::from_utf8(response.body)?;
            Ok((sample(&text, "chorus_peers") == Some(1.0)).then_some(text))
        },
    )
    .await?;
    // libp2p's own families follow Chorus's, and saw the connection and its bytes.
    let connections = text
        .lines()
        .filter(|l| l.starts_with("libp2p_swarm_connections_established_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>();
    assert!(connections >= 1.0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("libp2p_bandwidth_bytes_total") && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    ann.stop().await?;
    assert!(!ann.data.metrics_addr().exists(), "metrics.addr removed");
    ben.stop().await?;
    Ok(())
}

/// Two nodes whose groups use settle-then-pick. Ann's self-update is held for the 2 s settle
/// and a message she sends meanwhile is queued (the reply says so) and still arrives; her
/// metrics then show the group's mode, the commit's latency (at least the settle), sends
/// paused for part of the time, and member-time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_what_the_consistency_mode_costs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions {
        metrics: true,
        ..NodeOptions::default()
    };
    let mut nodes = vec![
        LocalNode::init(dir.path(), "ann")?,
        LocalNode::init(dir.path(), "ben")?,
    ];
    for node in &nodes {
        let path = node.data.config();
        let mut config = std::fs::read_to_string(&path).unwrap_or_default();
        config.push_str("\nconsistency = \"settle-then-pick\"\n");
        std::fs::write(&path, config)?;
    }
    start_all(&mut nodes, &options).await?;
    let limit = Duration::from_secs(60);
    let gid = group_of_all(&nodes, "team", limit).await?;
    let (ann, ben) = (&nodes[0], &nodes[1]);
    ann.update(&gid).await?;
    let sent = ann.send(&gid, "while the group settles").await?;
    assert!(sent.queued, "the reply does not say the send is queued");
    wait_for("ben to get the queued message", limit, || async {
        let got = ben.messages(&gid).await?;
        Ok(got
            .iter()
            .any(|m| m.text == "while the group settles")
            .then_some(()))
    })
    .await?;
    let addr: std::net::SocketAddr = std::fs::read_to_string(ann.data.metrics_addr())?
        .trim()
        .parse()?;
    // Ann's two commits (the invite, made alone: at once; the update, held by the settle).
    let text = wait_for("ann's metrics to count both commits", limit, || async {
        let response = http::call(addr, None, "", "GET", "/metrics", None).await?;
        let text = String::from_utf8(response.body)?;
        Ok((sample(&text, "chorus_commit_ms_count") == Some(2.0)).then_some(text))
    })
    .await?;
    let value = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("no {name}:\n{text}"));
    assert_eq!(
        value("chorus_consistency_groups{mode=\"settle-then-pick\"}"),
        1.0
    );
    assert_eq!(
        value("chorus_consistency_groups{mode=\"accept-and-hold\"}"),
        0.0
    );
    assert!(value("chorus_commit_ms_sum") >= 2_000.0, "{text}");
    let send = value("chorus_availability_send");
    assert!(
        send > 0.0 && send < 1.0,
        "sends were paused for the settle: {send}"
    );
    assert!(value("chorus_member_seconds_total") > 0.0, "{text}");
    assert!(
        value("chorus_send_available_seconds_total") < value("chorus_member_seconds_total"),
        "{text}"
    );
    for node in &mut nodes {
        node.stop().await?;
    }
    Ok(())
}
