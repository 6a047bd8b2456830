//! Where a node keeps its files: one data directory per node.
//!
//! ```text
//! <data>/keys/          identity and device keys (LocalIdentity), 0600
//! <data>/p2p.key        the libp2p peer key, sealed under the master key, 0600
//! <data>/master.key     the master key of encryption at rest: wrapped by a passphrase, the
//!                       key itself (0600), or a pointer to a key file elsewhere
//! <data>/db/            RocksDB: column families mls, trust, gossip, node, every one sealed
//! <data>/config.toml    optional configuration (every `run` flag can be set there)
//! <data>/api.token      the local API's bearer token, 0600, written by `run`
//! <data>/api.addr       the address the API listens on, written by `run`
//! ```

use std::path::{Path, PathBuf};

/// The files of one node.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// `--data` if given, else `$CHORUS_DATA`, else `$XDG_DATA_HOME/chorus`, else
    /// `~/.local/share/chorus`.
    pub fn resolve(flag: Option<PathBuf>) -> anyhow::Result<Self> {
        if let Some(dir) = flag {
            return Ok(Self { root: dir });
        }
        if let Some(dir) = std::env::var_os("CHORUS_DATA") {
            return Ok(Self { root: dir.into() });
        }
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
            return Ok(Self {
                root: PathBuf::from(dir).join("chorus"),
            });
        }
        let home = std::env::var_os("HOME").ok_or_else(|| {
            anyhow::anyhow!("no data directory: pass --data DIR, or set CHORUS_DATA or HOME")
        })?;
        Ok(Self {
            root: PathBuf::from(home).join(".local/share/chorus"),
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn peer_key(&self) -> PathBuf {
        self.root.join("p2p.key")
    }
    /// The master key file (see `crate::sealing`).
    pub fn master_key(&self) -> PathBuf {
        self.root.join("master.key")
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }
    pub fn api_addr(&self) -> PathBuf {
        self.root.join("api.addr")
    }
    /// Where a running node with `--metrics` says which address its `/metrics` is on.
    pub fn metrics_addr(&self) -> PathBuf {
        self.root.join("metrics.addr")
    }

    /// True once `chorus init` ran here.
    pub fn is_initialized(&self) -> bool {
        identity_tofu::LocalIdentity::exists(&self.keys()) && self.peer_key().exists()
    }

    /// An error that tells the user what to do when `init` has not run.
    pub fn require_initialized(&self) -> anyhow::Result<()> {
        if !self.is_initialized() {
            anyhow::bail!(
                "no Chorus identity in {}: run `chorus --data {} init --handle NAME` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }
}

/// Writes `contents` to `path` readable by the owner only (0600), replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
