//! Encryption at rest, end to end: two real nodes talk in a named group; once stopped, a copy of
//! either data directory without the key file shows no message text, no group id and no
//! contact. And a passphrase-protected node refuses a wrong passphrase, leaving its store as
//! it was.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use node::demo::harness::{LocalNode, NodeOptions, chorus_exe, group_of_all, start_all, wait_for};
use node::sealing::KeyProtection;

const LIMIT: Duration = Duration::from_secs(90);
const GROUP_NAME: &str = "heron-watchers-guild";
const FIRST_TEXT: &str = "the heron lands at the north pond 7391";
const REPLY_TEXT: &str = "bring the long lens, quietly 4826";

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// The files under `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_data_directory_reveals_no_message_group_or_contact() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The key files live apart from the data directories, as on a node whose key is kept on
    // other media: a copy of a data directory is then all an attacker has.
    let key_dir = tempfile::tempdir()?;
    let names = ["quillon-ann", "quillon-ben"];
    let mut nodes = Vec::new();
    for name in names {
        let protection = KeyProtection {
            key_file: Some(key_dir.path().join(format!("{name}.key"))),
            ..KeyProtection::default()
        };
        nodes.push(LocalNode::init_with(dir.path(), name, &protection)?);
    }
    let options = NodeOptions::default();
    start_all(&mut nodes, &options).await?;
    let gid = group_of_all(&nodes, GROUP_NAME, LIMIT).await?;
    nodes[0].send(&gid, FIRST_TEXT).await?;
    nodes[1].send(&gid, REPLY_TEXT).await?;
    for node in &nodes {
        wait_for(
            &format!("{} to hold both messages", node.name),
            LIMIT,
            || async {
                let texts: Vec<String> = node
                    .messages(&gid)
                    .await?
                    .into_iter()
                    .map(|m| m.text)
                    .collect();
                Ok(
                    (texts.iter().any(|t| t == FIRST_TEXT)
                        && texts.iter().any(|t| t == REPLY_TEXT))
                    .then_some(()),
                )
            },
        )
        .await?;
    }
    let mut ids = Vec::new();
    for node in &nodes {
        ids.push(
            node.client()?
                .get::<node::api::views::IdView>("/v1/id")
                .await?,
        );
    }
    for node in nodes.iter_mut() {
        node.stop().await?;
    }

    let group_ref = hex::decode(&gid)?;
    for (me, node) in nodes.iter().enumerate() {
        let other = &ids[1 - me];
        let fingerprint: identity_tofu::Fingerprint = other.fingerprint.parse()?;
        let probes: Vec<(&str, Vec<u8>)> = vec![
            ("the first message's text", FIRST_TEXT.into()),
            ("the reply's text", REPLY_TEXT.into()),
            ("the group's name", GROUP_NAME.into()),
            ("the group id, hex", gid.clone().into_bytes()),
            ("the group id, raw", group_ref.clone()),
            ("the contact's handle", other.handle.clone().into_bytes()),
            (
                "the contact's fingerprint",
                other.fingerprint.clone().into_bytes(),
            ),
            (
                "the contact's fingerprint, hex",
                fingerprint.to_hex().into_bytes(),
            ),
            (
                "the contact's fingerprint, raw",
                hex::decode(fingerprint.to_hex())?,
            ),
        ];
        let root = node.data.root();
        for (what, probe) in &probes {
            let found = files_containing(root, probe);
            assert!(
                found.is_empty(),
                "{}: {what} is readable in {found:?}",
                node.name
            );
        }
        // Its own identity is sealed too (the key files under `keys/`; elsewhere its handle is
        // in paths, as the data directory's name).
        let own = files_containing(&root.join("keys"), ids[me].handle.as_bytes());
        assert!(
            own.is_empty(),
            "{}: its own handle is readable in {own:?}",
            node.name
        );
        // The search does find the probes where they are in the clear: the node's log, kept
        // beside the data directory, names the node.
        assert!(
            !files_containing(dir.path(), ids[me].handle.as_bytes()).is_empty(),
            "the search finds nothing at all; this test would prove nothing"
        );
        assert!(
            files_under(&root.join("db")).len() > 3,
            "the database must be there"
        );
    }
    Ok(())
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, "correct horse battery staple\n")?;
    std::fs::write(&wrong, "correct horse battery stapler\n")?;
    let protection = KeyProtection {
        passphrase: true,
        passphrase_file: Some(right.clone()),
        key_file: None,
    };
    let mut node = LocalNode::init_with(dir.path(), "pass-ann", &protection)?;
    let options = NodeOptions::default();

    // The right passphrase starts the node, which stores something.
    node.run_args = vec!["--passphrase-file".into(), right.display().to_string()];
    node.start(&options, 0, &[]).await?;
    node.create_group("kept-under-passphrase").await?;
    node.stop().await?;
    let before = snapshot(node.data.root());

    // A wrong one is refused with an error that says so, and nothing changes on disk.
    node.run_args = vec!["--passphrase-file".into(), wrong.display().to_string()];
    let refused = node.start(&options, 0, &[]).await;
    let message = format!(
        "{:#}",
        refused.expect_err("a wrong passphrase must be refused")
    );
    assert!(message.contains("wrong passphrase"), "{message}");
    assert_eq!(snapshot(node.data.root()), before);

    // Without any passphrase (none on a terminal, none in the environment) it is refused too.
    let out = std::process::Command::new(chorus_exe()?)
        .arg("--data")
        .arg(node.data.root())
        .args(["run", "--api", "127.0.0.1:0", "--no-mdns"])
        .env_remove("CHORUS_PASSPHRASE")
        .stdin(Stdio::null())
        .output()?;
    assert!(!out.status.success());
    assert_eq!(snapshot(node.data.root()), before);

    // And the right one still opens everything.
    node.run_args = vec!["--passphrase-file".into(), right.display().to_string()];
    node.start(&options, 0, &[]).await?;
    let groups: serde_json::Value = node.client()?.get("/v1/groups").await?;
    assert!(
        groups.to_string().contains("kept-under-passphrase"),
        "{groups}"
    );
    node.stop().await?;
    Ok(())
}
