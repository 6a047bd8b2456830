//! # ds-p2p
//!
//! The Chorus delivery service and group logic, sans-IO (no clock, socket, task or OS
//! randomness in here; see `DESIGN.md` §1).
//!
//! - [`crypto`]: the seeded crypto provider (all randomness from one seeded stream, so a
//!   seed replays a run byte for byte).
//! - [`engine`]: the group engine — MLS over an eventually consistent DS, with the fork
//!   window and the deterministic tie-breaker.
//! - [`directory`]: the KeyPackage directory a node serves for people who are away.
//! - [`signature_memo`]: Ed25519 verifications shared by the engines of one process (the
//!   simulator's).
//! - [`wire`]: the envelope and application payload, and their size limits.
//! - [`storage`]: the openmls storage provider over a `KvStore`, with branch namespaces that
//!   hold forked group states and atomic storage steps.

pub mod crypto;
pub mod directory;
pub mod engine;
pub mod signature_memo;
pub mod storage;
pub mod wire;
