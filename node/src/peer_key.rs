//! The node's libp2p peer key (`<data>/p2p.key`), sealed under the master key like the key
//! files: a copy of the data directory without the passphrase or key file does not let anyone
//! pose as this node on the network. Data directories from before sealing hold it in the clear;
//! it is read once as it is and written back sealed.

use anyhow::Context;
use gossip::net::Keypair;
use identity_tofu::kv::MasterKey;

use crate::paths::{DataDir, write_private};
use crate::sealing::key_files_seal;

/// What the seal binds the key to: a sealed value from elsewhere does not open as the peer
/// key.
const ASSOCIATED: &[u8] = b"chorus p2p.key v1";

/// Makes a fresh peer key and stores it sealed.
pub fn create(data: &DataDir, master: &MasterKey) -> anyhow::Result<Keypair> {
    let key = Keypair::generate_ed25519();
    write(data, master, &key)?;
    Ok(key)
}

fn write(data: &DataDir, master: &MasterKey, key: &Keypair) -> anyhow::Result<()> {
    let encoded = zeroize::Zeroizing::new(
        key.to_protobuf_encoding()
            .context("encoding the peer key")?,
    );
    let sealed = key_files_seal(master).seal(&mut rand::rngs::OsRng, ASSOCIATED, &encoded);
    write_private(&data.peer_key(), &sealed)?;
    Ok(())
}

/// Reads the peer key; one stored in the clear (an older data directory) is sealed on the way.
pub fn read(data: &DataDir, master: &MasterKey) -> anyhow::Result<Keypair> {
    let path = data.peer_key();
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(encoded) = key_files_seal(master).open(ASSOCIATED, &bytes) {
        let encoded = zeroize::Zeroizing::new(encoded);
        return Keypair::from_protobuf_encoding(&encoded)
            .with_context(|| format!("{} opens but holds no libp2p key", path.display()));
    }
    let Ok(key) = Keypair::from_protobuf_encoding(&bytes) else {
        anyhow::bail!(
            "{} does not open with this data directory's master key (copied from another \
             data directory?)",
            path.display()
        );
    };
    write(data, master, &key).with_context(|| format!("sealing {}", path.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::generate(&mut rand::rngs::OsRng)
    }

    #[test]
    fn a_created_key_is_sealed_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path());
        let master = master();
        let key = create(&data, &master).unwrap();
        let stored = std::fs::read(data.peer_key()).unwrap();
        assert!(
            Keypair::from_protobuf_encoding(&stored).is_err(),
            "stored in the clear"
        );
        let secret = key.to_protobuf_encoding().unwrap();
        assert!(
            !stored
                .windows(32)
                .any(|w| secret.windows(32).any(|s| s == w))
        );
        assert_eq!(read(&data, &master).unwrap().public(), key.public());
    }

    #[test]
    fn a_key_in_the_clear_is_read_and_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path());
        let master = master();
        let key = Keypair::generate_ed25519();
        write_private(&data.peer_key(), &key.to_protobuf_encoding().unwrap()).unwrap();
        assert_eq!(read(&data, &master).unwrap().public(), key.public());
        let stored = std::fs::read(data.peer_key()).unwrap();
        assert!(
            Keypair::from_protobuf_encoding(&stored).is_err(),
            "left in the clear"
        );
        assert_eq!(read(&data, &master).unwrap().public(), key.public());
    }

    #[test]
    fn another_master_key_or_garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path());
        create(&data, &master()).unwrap();
        let before = std::fs::read(data.peer_key()).unwrap();
        let error = format!("{:#}", read(&data, &master()).unwrap_err());
        assert!(error.contains("does not open"), "{error}");
        assert_eq!(std::fs::read(data.peer_key()).unwrap(), before, "changed");
        write_private(&data.peer_key(), b"not a key").unwrap();
        let error = format!("{:#}", read(&data, &master()).unwrap_err());
        assert!(error.contains("does not open"), "{error}");
    }
}
