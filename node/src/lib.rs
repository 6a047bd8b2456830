//! # node
//!
//! The `chorus` binary — daemon, config, local HTTP API, CLI, chat — wires `gossip`,
//! `ds-p2p` and `identity-tofu` together. It is built by the node issue; until then this crate
//! holds nothing, so that no command pretends to work.
