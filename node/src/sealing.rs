//! Encryption at rest for the node: the master key (made by `init`, unlocked by `run`) and the
//! sealed views of the database's column families.
//!
//! Every column family is opened through [`SealedKv`]: values sealed with XChaCha20-Poly1305
//! under keys derived from the master key, key parts naming groups or contacts stored as keyed
//! hashes, and each group branch under its own data key that pruning destroys. The master key
//! is kept either wrapped by a passphrase (Argon2id) in `<data>/master.key`, or in a 0600 key
//! file: `<data>/master.key` itself, or a file elsewhere (`init --key-file PATH`) that
//! `<data>/master.key` points to — then a copy of the data directory opens nothing. The
//! identity and device key files in `<data>/keys/` are sealed under a key derived from the
//! master key too, so with a passphrase they open only once it is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use identity_tofu::kv::sealed::DataKey;
use identity_tofu::kv::{KeySchema, KvStore, MasterKey, RocksDb, RocksStore, SealedKv};
use identity_tofu::master_key_file::{self, Argon2Cost};
use identity_tofu::trust;

use crate::paths::DataDir;

/// The environment variable a passphrase may come from (scripts, tests).
pub const PASSPHRASE_ENV: &str = "CHORUS_PASSPHRASE";

/// How `init` keeps the master key.
#[derive(Debug, Clone, Default)]
pub struct KeyProtection {
    /// Wrap it by a passphrase.
    pub passphrase: bool,
    /// Read the passphrase from this file instead of `$CHORUS_PASSPHRASE` or the terminal.
    pub passphrase_file: Option<PathBuf>,
    /// Keep the key in this file (outside the data directory) instead of `<data>/master.key`.
    pub key_file: Option<PathBuf>,
}

/// Where `run` finds what unlocks the master key.
#[derive(Debug, Clone, Default)]
pub struct Unlock {
    /// The key file, if not the one `<data>/master.key` names.
    pub key_file: Option<PathBuf>,
    /// The passphrase file, if the key is wrapped (else `$CHORUS_PASSPHRASE`, else a prompt).
    pub passphrase_file: Option<PathBuf>,
}

/// A passphrase from `file`, else `$CHORUS_PASSPHRASE`, else the terminal.
fn passphrase(file: Option<&Path>, confirm: bool) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    if let Some(file) = file {
        let text = std::fs::read(file)
            .with_context(|| format!("reading the passphrase file {}", file.display()))?;
        // A trailing newline is the editor's, not the passphrase's.
        let mut text = zeroize::Zeroizing::new(text);
        while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            text.pop();
        }
        return Ok(text);
    }
    if let Some(text) = std::env::var_os(PASSPHRASE_ENV) {
        return Ok(zeroize::Zeroizing::new(text.into_encoded_bytes()));
    }
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "the master key is protected by a passphrase: give --passphrase-file FILE or set \
         {PASSPHRASE_ENV} (no terminal to ask on)"
    );
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("chorus: passphrase for the data directory: ")
            .context("reading the passphrase from the terminal")?,
    );
    if confirm {
        let again = zeroize::Zeroizing::new(
            rpassword::prompt_password("chorus: the same passphrase again: ")
                .context("reading the passphrase from the terminal")?,
        );
        anyhow::ensure!(*first == *again, "the two passphrases differ");
    }
    Ok(zeroize::Zeroizing::new(first.as_bytes().to_vec()))
}

/// The key the identity key files in `<data>/keys/` are sealed under.
pub fn key_files_seal(master: &MasterKey) -> DataKey {
    master.derive("chorus/key-files/v1/seal")
}

/// Makes a master key for a new data directory, stores it as `protection` says, and returns it.
pub fn create_master_key(data: &DataDir, protection: &KeyProtection) -> anyhow::Result<MasterKey> {
    let key = MasterKey::generate(&mut rand::rngs::OsRng);
    let path = data.master_key();
    if protection.passphrase || protection.passphrase_file.is_some() {
        anyhow::ensure!(
            protection.key_file.is_none(),
            "choose either a passphrase or a key file, not both"
        );
        let passphrase = passphrase(protection.passphrase_file.as_deref(), true)?;
        anyhow::ensure!(!passphrase.is_empty(), "the passphrase is empty");
        master_key_file::write_with_passphrase(
            &path,
            &key,
            &passphrase,
            Argon2Cost::default(),
            &mut rand::rngs::OsRng,
        )?;
        return Ok(key);
    }
    match &protection.key_file {
        Some(elsewhere) => {
            anyhow::ensure!(
                !elsewhere.exists(),
                "{} exists already; choose a new key file path",
                elsewhere.display()
            );
            let elsewhere = std::path::absolute(elsewhere)
                .with_context(|| format!("the key file path {}", elsewhere.display()))?;
            master_key_file::write_key_file(&elsewhere, &key)?;
            master_key_file::write_pointer(&path, &elsewhere)?;
        }
        None => master_key_file::write_key_file(&path, &key)?,
    }
    Ok(key)
}

/// The master key of `data`, unlocked as `unlock` says.
pub fn unlock_master_key(data: &DataDir, unlock: &Unlock) -> anyhow::Result<MasterKey> {
    let path = data.master_key();
    if !path.exists() && unlock.key_file.is_none() {
        anyhow::bail!(
            "{} has no master key: the data directory was created by an older build without \
             encryption at rest; move it away and run `chorus init` again",
            data.root().display()
        );
    }
    let stored = master_key_file::read(&path, unlock.key_file.as_deref())
        .with_context(|| format!("reading the master key of {}", data.root().display()))?;
    let passphrase = match stored.needs_passphrase() {
        true => Some(passphrase(unlock.passphrase_file.as_deref(), false)?),
        false => None,
    };
    Ok(stored.unlock(passphrase.as_deref().map(|p| p.as_slice()))?)
}

/// The node's column families, each sealed.
pub struct SealedColumns {
    pub mls: Arc<SealedKv<RocksStore>>,
    pub trust: Arc<SealedKv<RocksStore>>,
    pub gossip: Arc<SealedKv<RocksStore>>,
    pub node: Arc<SealedKv<RocksStore>>,
}

impl SealedColumns {
    /// Opens every column family of `db` sealed under `master`. A wrong key or a database from
    /// a build without encryption is an error, and nothing is changed.
    pub fn open(db: &Arc<RocksDb>, master: &MasterKey) -> anyhow::Result<Self> {
        let open = |cf: &str, schema: KeySchema| -> anyhow::Result<Arc<SealedKv<RocksStore>>> {
            Ok(Arc::new(SealedKv::open(
                db.store(cf)?,
                cf,
                master,
                schema,
                rand::random(),
            )?))
        };
        Ok(Self {
            mls: open("mls", ds_p2p::storage::layout::sealed_layout())?,
            trust: open("trust", trust::sealed_layout(trust::DEFAULT_PREFIX))?,
            gossip: open("gossip", gossip::log::sealed_layout())?,
            node: open("node", crate::store::sealed_layout())?,
        })
    }

    /// One column as a `KvStore`.
    pub fn store(&self, cf: &str) -> anyhow::Result<Arc<dyn KvStore>> {
        let column: Arc<dyn KvStore> = match cf {
            "mls" => self.mls.clone(),
            "trust" => self.trust.clone(),
            "gossip" => self.gossip.clone(),
            "node" => self.node.clone(),
            other => anyhow::bail!("no column family {other:?}"),
        };
        Ok(column)
    }
}
