//! # ds-p2p
//!
//! The Chorus delivery service and group logic, sans-IO (no clock, socket, task or OS
//! randomness in here; see `DESIGN.md` §1).
//!
//! - [`engine`]: the group engine — MLS over an eventually consistent DS, with the fork
//!   window and the deterministic tie-breaker.
//! - [`wire`]: the envelope and application payload, and their size limits.
//! - [`storage`]: the openmls storage provider over a `KvStore`, with branch namespaces that
//!   hold forked group states and atomic storage steps.

pub mod engine;
pub mod storage;
pub mod wire;
