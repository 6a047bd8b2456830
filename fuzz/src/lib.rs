//! Shared parts of the fuzz targets (fuzz_targets/*.rs, one per kind of untrusted input):
//!
//! - [`seeds`]: seed corpora made from real encodings, written when a run starts.
//! - [`group`]: a real three-member group (real MLS crypto, memory storage), built once from a
//!   fixed seed, whose member `bob` the engine target feeds fuzzed envelopes.
//! - [`config`], [`invite_code`], [`policy`]: the node's parsers of user input, compiled from
//!   the node crate's own source files. The node crate needs RocksDB (its store, its daemon);
//!   building it here would compile RocksDB's C++ a second time with fuzzing flags. These three
//!   files use nothing of the node but each other, so the targets fuzz the very code `chorus`
//!   runs. (If one of them starts using another node module, add it here or split it out.)

pub mod group;
pub mod seeds;

#[path = "../../node/src/config.rs"]
pub mod config;
#[path = "../../node/src/invite_code.rs"]
pub mod invite_code;
#[path = "../../node/src/policy.rs"]
pub mod policy;
