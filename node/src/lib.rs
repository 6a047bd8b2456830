//! The Chorus node: the `chorus` binary's daemon, local API, CLI, chat and demo (DESIGN §1).
//!
//! - [`daemon`]: `chorus run` — the engine, the gossip node and the API on one core task.
//! - [`api`]: the local HTTP JSON API (server, client, routes, views).
//! - [`commands`], [`chat`]: the CLI side.
//! - [`bench`]: `chorus bench`, Chorus nodes against bare gossipsub.
//! - [`demo`]: real nodes as child processes, for `chorus demo` and the integration tests.
//! - [`store`]: the node's own records (group names, contacts, delivered messages).
//! - [`invite_code`], [`config`], [`paths`], [`metrics`], [`policy`], [`init`].

pub mod api;
pub mod bench;
pub mod chat;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod init;
pub mod invite_code;
pub mod lookup;
pub mod metrics;
pub mod paths;
pub mod peer_key;
pub mod policy;
pub mod sealing;
pub mod store;
