//! The envelope: what gossip carries and logs. Its id is SHA-256 of its encoded bytes.

use identity_tofu::codec::{self, CodecError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::WireLimits;

/// The envelope format version this code writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// Why bytes from the network were refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Longer than the limit; not decoded.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A value of ours could not be encoded (it exceeds the codec's bound).
    #[error("cannot encode {what}: {source}")]
    Unencodable {
        what: &'static str,
        source: CodecError,
    },
    /// A message of ours could not be signed (the signer refused).
    #[error("cannot sign {what}: {reason}")]
    Unsignable { what: &'static str, reason: String },
    /// Not a valid encoding.
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        source: CodecError,
    },
    /// Decoded, but inconsistent with what carried it.
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    /// Written by a version of Chorus this one does not speak.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// The envelope is of another kind than the one expected here.
    #[error("expected a {expected:?} envelope, got {got:?}")]
    WrongKind {
        expected: EnvelopeKind,
        got: EnvelopeKind,
    },
}

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EnvelopeKind {
    /// An MLS commit or proposal (a PrivateMessage).
    Handshake,
    /// An MLS application message (a PrivateMessage).
    Application,
    /// A [`WelcomeBundle`] for a new member.
    Welcome,
    /// An MLS KeyPackage.
    KeyPackage,
    /// An MLS GroupInfo (for external joins).
    GroupInfo,
    /// A [`SignedBeacon`](super::SignedBeacon).
    Beacon,
    /// A [`SequencerEcho`](super::SequencerEcho) (consistency mode `sequencer`). Last, so the
    /// encoding of the kinds before it is unchanged.
    SequencerEcho,
}

/// The inbox topic of a member, named by its credential identity (`chorus/inbox/<hex>`):
/// Welcomes for it are published there.
pub fn inbox_topic(credential_identity: &[u8]) -> String {
    let digest = Sha256::digest(credential_identity);
    format!("chorus/inbox/{}", hex::encode(&digest[..8]))
}

/// The first 16 bytes of SHA-256 of a group id: names the group on the wire and in topics
/// without revealing the id itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupRef(pub [u8; 16]);

impl GroupRef {
    /// The reference of a group id.
    pub fn of(group_id: &[u8]) -> Self {
        let digest = Sha256::digest(group_id);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Self(out)
    }

    /// The gossip topic of the group (`chorus/g/<hex>`).
    pub fn topic(&self) -> String {
        format!("chorus/g/{}", hex::encode(self.0))
    }
}

/// SHA-256 of an encoded envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnvelopeId(pub [u8; 32]);

/// SHA-256 of a commit's envelope payload (the MLS message bytes): the same for every member,
/// and what tie-break policies compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommitRef(pub [u8; 32]);

impl CommitRef {
    /// The reference of a commit carried as `payload`.
    pub fn of(payload: &[u8]) -> Self {
        Self(Sha256::digest(payload).into())
    }
}

impl std::fmt::Display for CommitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..6]))
    }
}

/// The unit of the DS: versioned, kind-tagged, addressed to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    pub kind: EnvelopeKind,
    pub group_ref: GroupRef,
    pub payload: Vec<u8>,
}

impl Envelope {
    /// A current-version envelope.
    pub fn new(kind: EnvelopeKind, group_ref: GroupRef, payload: Vec<u8>) -> Self {
        Self {
            version: WIRE_VERSION,
            kind,
            group_ref,
            payload,
        }
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode("envelope", self)
    }

    /// Decodes network bytes, checking the size first and the version after.
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, WireError> {
        let envelope: Envelope = decode_limited("envelope", bytes, limits.max_envelope_bytes)?;
        if envelope.version != WIRE_VERSION {
            return Err(WireError::UnsupportedVersion(envelope.version));
        }
        Ok(envelope)
    }

    /// The id of these encoded bytes.
    pub fn id_of(encoded: &[u8]) -> EnvelopeId {
        EnvelopeId(Sha256::digest(encoded).into())
    }

    /// Fails unless the envelope is of kind `expected`.
    pub fn expect_kind(&self, expected: EnvelopeKind) -> Result<(), WireError> {
        if self.kind != expected {
            return Err(WireError::WrongKind {
                expected,
                got: self.kind,
            });
        }
        Ok(())
    }
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, WireError> {
    codec::encode(value).map_err(|source| WireError::Unencodable { what, source })
}

pub(crate) fn decode_limited<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<T, WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    codec::decode(bytes, max).map_err(|source| WireError::Malformed { what, source })
}

/// What a member publishes on the group topic (as an [`EnvelopeKind::GroupInfo`] envelope)
/// when it sees a fork older than anything it still holds: everything a member of the other
/// side needs to decide which side wins and, if it lost, to rejoin this member's branch by an
/// external commit (DESIGN §4 item 8, `Engine`'s heal module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealOffer {
    /// The epoch of the offering member's active state (the GroupInfo's epoch).
    pub epoch: u64,
    /// That member's whole public log of (epoch made on, commit ref), oldest first: both sides
    /// find the fork point from their own log and this one.
    pub log: Vec<(u64, CommitRef)>,
    /// The RFC 9420 GroupInfo of that state, signed, with the ratchet tree and the external
    /// public key.
    pub group_info: Vec<u8>,
    /// Set by a member that was added on the losing side of a split (so it is not in the
    /// winning branch's tree and cannot rejoin by an external commit): a fresh KeyPackage
    /// (RFC 9420 `MLSMessage` bytes) for whoever added it to re-do that Add on the winning
    /// branch.
    pub readd_with: Option<Vec<u8>>,
}

/// A Welcome, with the commit that added the joiner, so that a joiner holding Welcomes from
/// competing branches can follow the one the group converges on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeBundle {
    /// The reference of the Add commit this Welcome belongs to.
    pub commit_ref: CommitRef,
    /// Members that commit removes (the joiner cannot read the commit; tie-break policies
    /// need it).
    pub removes: u32,
    /// Members that commit adds.
    pub adds: u32,
    /// The RFC 9420 Welcome message bytes.
    pub welcome: Vec<u8>,
    /// The last few (epoch, commit ref) of the adder's branch below the Add, oldest first
    /// (what its beacons carry). The joiner cannot read those commits; with them it can tell
    /// a member that is only behind on its branch from one on a branch that forked off
    /// before the Add (see `Engine::join_lost`).
    pub history: Vec<(u64, CommitRef)>,
}
