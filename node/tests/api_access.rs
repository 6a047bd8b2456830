//! The local API admits only callers with the token, answers bad requests with clear errors,
//! and SIGTERM stops the daemon cleanly (exit status 0, API address file removed, the data dir
//! opens again).

use std::time::Duration;

use node::api::http;
use node::demo::harness::{LocalNode, NodeOptions};

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
