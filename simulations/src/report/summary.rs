//! `summary.json`: one run in numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The summary of one run. Counts are over all nodes and groups.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub seed: u64,
    pub scenario: String,
    pub nodes: usize,
    pub groups: usize,
    pub policy: String,
    /// The groups' consistency mode (issue 8).
    #[serde(default)]
    pub consistency: String,
    pub fork_window_ms: u64,
    pub dissemination: String,
    pub virtual_duration_ms: u64,
    /// Wall-clock time of the run (the only thing that reads the clock).
    pub wall_ms: u64,
    /// Events the queue handled.
    pub events: u64,
    pub virtual_to_wall: f64,
    /// Application messages the workload sent.
    pub messages_sent: u64,
    /// First deliveries of those messages, over all receivers.
    pub messages_delivered: u64,
    /// (message, receiver) pairs never delivered, where the receiver was in the sender's
    /// view when it sent, and both are in the group at the end and the receiver never left.
    pub messages_lost: u64,
    /// Deliveries of a message to a receiver beyond the first.
    pub duplicates_delivered: u64,
    pub delivery_ms_p50: f64,
    pub delivery_ms_p99: f64,
    /// Fraction of member-time (members up and in the group, sampled every metrics interval)
    /// during which a member could send an application message at once.
    #[serde(default)]
    pub availability_send: f64,
    /// Fraction of member-time during which a commit of the member's could take effect
    /// (under `sequencer`: connected to the sequencer).
    #[serde(default)]
    pub availability_commit: f64,
    /// Commit latency, ms: from a workload commit until every member is on one branch past
    /// the committer's epoch then (p50, p99 over the commits that got there).
    #[serde(default)]
    pub commit_ms_p50: f64,
    #[serde(default)]
    pub commit_ms_p99: f64,
    /// Workload commits whose epoch the group never moved past everywhere.
    #[serde(default)]
    pub commits_never_applied: u64,
    /// Forward-secrecy exposure: held states beyond each member's active head, times the
    /// time they were held, in state-seconds (sampled).
    #[serde(default)]
    pub fs_exposure_state_s: f64,
    /// `ForkDetected` events, over all members.
    pub forks_detected: u64,
    pub forks_beyond_window: u64,
    /// `BranchSwitched` events, over all members.
    pub branch_switches: u64,
    /// Own messages re-sent after a switch or a re-add.
    pub resent_messages: u64,
    /// Own commits re-issued after a switch or a re-add.
    pub reissued_intents: u64,
    /// Requests sent for messages that came too late to be read (`RedeliveryAsked`).
    #[serde(default)]
    pub redelivery_asks: u64,
    /// Own messages sent again because a member asked (`RedeliveryAnswered`).
    #[serde(default)]
    pub redelivered_on_ask: u64,
    /// Own messages not sent again (after a switch, a heal or an ask) because the group now
    /// has members that were not in it when they were sent: the engine's
    /// `ResendPolicy::MembersAtSend` (`ResendWithheld`). Always 0 under `everyone`.
    #[serde(default)]
    pub resends_withheld: u64,
    /// Messages read by a member that was not in the sender's group when it was sent (the
    /// sender's view then): a member added on the other side of a split, reached by a
    /// re-send. 0 under `ResendPolicy::MembersAtSend`.
    #[serde(default)]
    pub read_outside_roster: u64,
    pub commits_made: u64,
    pub welcomes_joined: u64,
    pub join_lost: u64,
    pub removed: u64,
    /// Members added again after a removal (`Readded`; not counted as branch switches).
    #[serde(default)]
    pub readded: u64,
    /// Every group's members agree on epoch, branch and member list at the end.
    pub converged: bool,
    /// From `convergence_reference_ms` (the last heal, or the last workload commit when
    /// nothing failed) until every group agreed for good; `null` when not converged.
    pub convergence_ms: Option<u64>,
    pub convergence_reference_ms: u64,
    /// The most states any member held for one group (sampled).
    pub max_held_branches: usize,
    /// Member-group pairs that held a forked state longer than the window (plus a grace of
    /// two metric intervals and a second) after their last state change.
    pub fs_violations: u64,
    pub engine_rejections: u64,
    pub engine_dropped: u64,
    pub transmissions: u64,
    pub bytes_sent: u64,
    pub network_lost: u64,
    pub network_cut: u64,
    /// Copies that reached a node that already had the envelope (filtered by id).
    pub network_duplicates: u64,
    pub arrived_while_down: u64,
    pub sync_sessions: u64,
    pub sync_bytes: u64,
    pub sync_fetched: u64,
    pub ihave_sent: u64,
    pub iwant_sent: u64,
    pub trace_lines: u64,
    /// SHA-256 of `trace.jsonl`: equal for equal runs.
    pub trace_hash: String,
    /// Why engines refused inputs, counted (many are benign: a commit for a branch the
    /// member does not hold, an echo).
    pub rejection_reasons: BTreeMap<String, u64>,
    /// What the reader should know (unhealed faults, beyond-window partitions, ...).
    pub notes: Vec<String>,
}
