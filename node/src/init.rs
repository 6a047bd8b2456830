//! `chorus init`: a new identity in a data dir.

use anyhow::Context;
use identity_tofu::LocalIdentity;

use crate::paths::DataDir;
use crate::sealing::{KeyProtection, create_master_key, key_files_seal};

pub fn init(
    data: &DataDir,
    handle: Option<String>,
    protection: &KeyProtection,
) -> anyhow::Result<LocalIdentity> {
    if data.is_initialized() {
        anyhow::bail!(
            "{} already holds a Chorus identity; use another --data DIR for a second one",
            data.root().display()
        );
    }
    let handle = match handle {
        Some(h) => h,
        None => std::env::var("USER").unwrap_or_else(|_| "me".into()),
    };
    identity_tofu::handle::validate_handle(&handle)
        .with_context(|| format!("handle {handle:?}"))?;
    std::fs::create_dir_all(data.root())
        .with_context(|| format!("creating {}", data.root().display()))?;
    // First, so that a passphrase typed wrong twice leaves no half-made data directory.
    let master = create_master_key(data, protection).context("storing the master key")?;
    let now = crate::daemon::now_ms();
    let me = LocalIdentity::create(&handle, &mut rand::rngs::OsRng, now)?;
    me.save_sealed(
        &data.keys(),
        &key_files_seal(&master),
        &mut rand::rngs::OsRng,
    )
    .with_context(|| format!("writing keys to {}", data.keys().display()))?;
    crate::peer_key::create(data, &master)?;
    Ok(me)
}
