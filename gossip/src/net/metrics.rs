//! libp2p's own metrics — connections, bandwidth per transport, gossipsub, Kademlia,
//! identify, ping, relay and DCUtR — recorded by the node's task into a Prometheus registry
//! and rendered as text for the node's `/metrics` endpoint.
//!
//! Gossipsub's per-topic metrics are left out on purpose: their labels would be the topic
//! names, which name the user's groups and contacts' inboxes to whoever scrapes `/metrics`.

use std::sync::Arc;

use libp2p::metrics::{Metrics, Recorder, Registry};
use libp2p::swarm::SwarmEvent;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::behaviour::BehaviourEvent;
use super::peer_budget::BudgetVerdict;

/// The recording side, owned by the node's task.
pub(super) struct NetMetrics {
    recorder: Metrics,
    /// Pubsub messages dropped because their peer was over its budget, by verdict.
    shed: Family<ShedLabels, Counter>,
    banned: Counter,
}

/// The label of `chorus_gossip_shed_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    /// `over_budget` (ignored) or `abusive` (rejected, the peer's score pays).
    verdict: &'static str,
}

impl NetMetrics {
    /// Registers libp2p's protocol metrics in `registry` (the transport's bandwidth metrics
    /// are registered by the swarm builder).
    pub fn new(registry: &mut Registry) -> Self {
        let shed = Family::<ShedLabels, Counter>::default();
        registry.register(
            "chorus_gossip_shed",
            "Pubsub messages dropped because the peer that handed them over was over its budget",
            shed.clone(),
        );
        let banned = Counter::default();
        registry.register(
            "chorus_gossip_banned",
            "Peers disconnected and refused for a while because their score graylisted them",
            banned.clone(),
        );
        Self {
            recorder: Metrics::new(registry),
            shed,
            banned,
        }
    }

    /// Counts a peer cut off for being graylisted.
    pub fn banned(&self) {
        self.banned.inc();
    }

    /// Counts a message shed under `verdict` and returns how many such were shed so far.
    pub fn shed(&self, verdict: BudgetVerdict) -> u64 {
        let verdict = match verdict {
            BudgetVerdict::Within => return 0,
            BudgetVerdict::Over => "over_budget",
            BudgetVerdict::Abusive => "abusive",
        };
        self.shed.get_or_create(&ShedLabels { verdict }).inc() + 1
    }

    /// Records what `event` tells: the swarm's connection events and each protocol's own.
    pub fn record(&self, event: &SwarmEvent<BehaviourEvent>) {
        let m = &self.recorder;
        m.record(event);
        if let SwarmEvent::Behaviour(event) = event {
            match event {
                BehaviourEvent::Gossipsub(e) => m.record(e),
                BehaviourEvent::Kad(e) => m.record(e),
                BehaviourEvent::Identify(e) => m.record(e),
                BehaviourEvent::Ping(e) => m.record(e),
                BehaviourEvent::RelayServer(e) => m.record(e),
                BehaviourEvent::Dcutr(e) => m.record(e),
                _ => {}
            }
        }
    }
}

/// The reading side, shared by every [`NodeHandle`](super::NodeHandle).
#[derive(Clone)]
pub struct MetricsText {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for MetricsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsText")
    }
}

impl MetricsText {
    pub(super) fn new(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
        }
    }

    /// Every libp2p metric family in the OpenMetrics text format, without the closing
    /// `# EOF` line: the caller adds its own families and then ends the exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
        {
            // Writing to a String cannot fail; say so rather than panic if it ever does.
            out = format!("# libp2p metrics could not be encoded: {e}\n");
        }
        out
    }
}
