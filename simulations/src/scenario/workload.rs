//! The `[[groups]]`, `[[commits]]`, `[[bursts]]` and `[[joins]]` sections as written.

use serde::Deserialize;

use crate::time::Dur;

/// A group, created at `create_at` by its first member, who invites the others one by one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Referenced by commits, bursts and joins. With `copies` > 1 the copies are called
    /// `<name>0`, `<name>1`, ...
    pub name: String,
    /// Members as node selectors; the first listed node (lowest id) creates the group.
    #[serde(default)]
    pub members: Vec<String>,
    /// Instead of `members`: this many members drawn at random from all nodes.
    pub size: Option<usize>,
    /// How many such groups (each with its own random members when `size` is used).
    #[serde(default = "one")]
    pub copies: usize,
    #[serde(default)]
    pub create_at: Dur,
    /// With copies: copy k is created at `create_at + k × stagger` (spreads the setup).
    #[serde(default)]
    pub stagger: Dur,
    #[serde(default)]
    pub traffic: Option<TrafficSpec>,
    #[serde(default)]
    pub random_commits: Option<RandomCommitsSpec>,
}

fn one() -> usize {
    1
}

/// Application messages: each member sends `rate_per_min` messages a minute on average
/// (Poisson), between `start` and `end`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    pub rate_per_min: f64,
    /// Body size in bytes (at least 8).
    #[serde(default = "default_size")]
    pub size: usize,
    #[serde(default)]
    pub start: Dur,
    pub end: Option<Dur>,
}

fn default_size() -> usize {
    64
}

/// Random commits: `rate_per_min` a minute on average for the whole group, by a random
/// member, of a kind drawn with the given weights.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCommitsSpec {
    pub rate_per_min: f64,
    #[serde(default)]
    pub start: Dur,
    pub end: Option<Dur>,
    #[serde(default = "one_f")]
    pub update: f64,
    #[serde(default)]
    pub add: f64,
    #[serde(default)]
    pub remove: f64,
    #[serde(default)]
    pub leave: f64,
}

fn one_f() -> f64 {
    1.0
}

/// What a commit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitOp {
    /// A self-update (fresh leaf key).
    Update,
    /// Add `target`.
    Add,
    /// Remove `target`.
    Remove,
    /// The node asks to leave (a self-Remove proposal someone else commits).
    Leave,
}

/// One scheduled commit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSpec {
    pub at: Dur,
    pub group: String,
    pub node: String,
    pub op: CommitOp,
    /// The node added or removed (for `add` and `remove`).
    pub target: Option<String>,
}

/// Concurrent commits: at `at`, each of the committers commits `op` at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub at: Dur,
    pub group: String,
    /// These members commit (node selectors)...
    #[serde(default)]
    pub nodes: Vec<String>,
    /// ...or this many members drawn at random.
    pub committers: Option<usize>,
    #[serde(default = "update")]
    pub op: CommitOp,
}

fn update() -> CommitOp {
    CommitOp::Update
}

/// A join: at `at`, `by` (default: a random member) adds `node`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    pub at: Dur,
    pub group: String,
    pub node: String,
    pub by: Option<String>,
}
