//! Helpers shared by the node's integration tests.

pub mod netns;
