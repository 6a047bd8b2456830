//! # simulations
//!
//! The `chorus-sim` deterministic network simulator runs `ds-p2p` engines over a modelled
//! network. It is built by the simulator issue; until then this crate holds nothing.
