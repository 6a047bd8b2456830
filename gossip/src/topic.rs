//! A pubsub topic name, validated, and the fixed-size key the log stores it under.

use std::fmt;

use sha2::{Digest, Sha256};

/// The longest topic name accepted, in bytes. Chorus topics are about 50 bytes
/// (`chorus/g/<32 hex digits>`); the bound keeps stored records and keys small.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a string is not a topic name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic name: {reason}")]
pub struct InvalidTopic {
    reason: &'static str,
}

/// A pubsub topic name: 1 to [`MAX_TOPIC_LEN`] printable ASCII characters, no spaces.
///
/// Topic names come from the network and end up in storage keys and logs, so they are held
/// to a strict alphabet rather than any UTF-8.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic(String);

impl Topic {
    /// Validates `name` as a topic name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidTopic> {
        let name = name.into();
        if name.is_empty() {
            return Err(InvalidTopic { reason: "empty" });
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(InvalidTopic {
                reason: "longer than 256 bytes",
            });
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidTopic {
                reason: "not printable ASCII without spaces",
            });
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 16-byte key the log files this topic under: a fixed length keeps every topic's key
    /// prefix free of other topics' keys (no name is a prefix of another's key), and 128 bits
    /// of SHA-256 make accidental collisions out of reach.
    pub(crate) fn storage_key(&self) -> [u8; 16] {
        let digest = Sha256::new()
            .chain_update(b"chorus/gossip/topic/1\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chorus_topic_names_are_accepted() {
        let t = Topic::new("chorus/g/00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(t.as_str(), "chorus/g/00112233445566778899aabbccddeeff");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Topic::new("").is_err());
        assert!(Topic::new("a b").is_err());
        assert!(Topic::new("a\nb").is_err());
        assert!(Topic::new("é").is_err());
        assert!(Topic::new("x".repeat(MAX_TOPIC_LEN + 1)).is_err());
        assert!(Topic::new("x".repeat(MAX_TOPIC_LEN)).is_ok());
    }

    #[test]
    fn storage_keys_differ_between_topics() {
        let a = Topic::new("chorus/g/a").unwrap();
        let b = Topic::new("chorus/g/b").unwrap();
        assert_ne!(a.storage_key(), b.storage_key());
        assert_eq!(
            a.storage_key(),
            Topic::new("chorus/g/a").unwrap().storage_key()
        );
    }
}
