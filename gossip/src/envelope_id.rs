//! The id of an envelope: SHA-256 of its bytes, the same on every node.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 of an envelope's bytes. It is also the gossipsub message id (content addressing),
/// so a duplicate is recognised whichever way it arrived.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnvelopeId(pub [u8; 32]);

impl EnvelopeId {
    /// The id of `envelope`.
    pub fn of(envelope: &[u8]) -> Self {
        Self(Sha256::digest(envelope).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight bytes tell ids apart in logs and test failures without flooding them.
        write!(f, "EnvelopeId({}..)", hex::encode(&self.0[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_sha256_of_the_bytes() {
        let id = EnvelopeId::of(b"abc");
        assert_eq!(
            id.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
