//! The wire (DESIGN §3): the versioned envelope every group message travels in, and the
//! application payload inside MLS. All of it is bincode 2 through `identity_tofu::codec`,
//! with sizes checked before anything is decoded. MLS messages inside are RFC 9420 bytes.

mod application;
mod beacon;
mod echo;
mod envelope;
mod limits;
mod redelivery;
pub mod signed;

pub use application::{ApplicationPayload, MessageId};
pub use beacon::{Beacon, MAX_BEACON_BYTES, SignedBeacon};
pub use echo::SequencerEcho;
pub use envelope::{
    CommitRef, Envelope, EnvelopeId, EnvelopeKind, GroupRef, HealOffer, WIRE_VERSION,
    WelcomeBundle, WireError, inbox_topic,
};
pub use limits::WireLimits;
pub use redelivery::{CarriedIds, MAX_REDELIVERY_MESSAGES, Redelivery};
