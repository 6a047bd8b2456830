//! The node's task: one loop owns the swarm, the log and the sync sessions, and reacts to
//! swarm events, commands from handles, and two timers. Owning everything in one task means
//! no locks, and every log append and the event it causes happen in one step.
//!
//! What it does per input lives next door: `swarm_events` (network), `commands` (handles),
//! `anti_entropy` (sync sessions and their timer).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use identity_tofu::kv::KvStore;
use libp2p::kad::QueryId;
use libp2p::request_response::OutboundRequestId;
use libp2p::{PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};
use tracing::warn;

use super::ban::{self, Bans};
use super::behaviour::Behaviour;
use super::config::NetConfig;
use super::dht::DhtQuery;
use super::error::NetError;
use super::event::NetEvent;
use super::handle::Command;
use super::metrics::NetMetrics;
use super::peer_budget::PeerBudgets;
use super::sync::session::Outgoing;
use super::validator::Validator;
use crate::envelope_id::EnvelopeId;
use crate::log::Log;
use crate::reconcile::Responder;
use crate::topic::Topic;

/// Ids of envelopes the validator refused during sync are remembered (up to this many) so
/// that each anti-entropy round does not fetch them again from a peer that holds them.
const MAX_REFUSED_IDS: usize = 4096;

/// Sync sessions this node runs as initiator, and the state for serving.
pub(super) struct SyncState {
    pub responder: Responder,
    pub sessions: HashMap<(PeerId, Topic), Outgoing>,
    pub in_flight: HashMap<OutboundRequestId, (PeerId, Topic)>,
    pub refused: HashSet<EnvelopeId>,
    /// Sessions asked for (by `sync_now`) while one with the same peer and topic was
    /// running: each starts again when the running one ends, so that the caller gets a
    /// session that began after its request.
    pub again: HashSet<(PeerId, Topic)>,
    /// When a routine round last reconciled each subscribed topic's whole window.
    pub last_full: HashMap<Topic, Instant>,
}

impl SyncState {
    /// Remembers a refused id, forgetting all when full (a crude bound; refusals are rare).
    pub fn remember_refused(&mut self, id: EnvelopeId) {
        if self.refused.len() >= MAX_REFUSED_IDS {
            self.refused.clear();
        }
        self.refused.insert(id);
    }
}

/// Everything the node's task owns.
pub(super) struct Driver<S> {
    pub swarm: Swarm<Behaviour>,
    pub log: Log<S>,
    pub validator: Box<dyn Validator>,
    pub config: NetConfig,
    pub events: mpsc::UnboundedSender<NetEvent>,
    pub subscribed: BTreeSet<Topic>,
    pub sync: SyncState,
    /// DHT queries started for a handle, by Kademlia query id, each with the caller's reply
    /// channel (removed when answered, so each caller is answered once).
    pub dht: HashMap<QueryId, DhtQuery>,
    /// libp2p's metrics, recorded from every swarm event.
    pub metrics: NetMetrics,
    /// How much pubsub traffic each peer has left.
    pub budgets: PeerBudgets<PeerId>,
    /// Graylisted peers cut off, and until when.
    pub bans: Bans,
    /// When envelopes published again last went out on pubsub.
    pub regossip: super::regossip::Regossip,
}

impl<S: KvStore + 'static> Driver<S> {
    pub fn new(
        swarm: Swarm<Behaviour>,
        log: Log<S>,
        validator: Box<dyn Validator>,
        config: NetConfig,
        events: mpsc::UnboundedSender<NetEvent>,
        metrics: NetMetrics,
    ) -> Result<Self, NetError> {
        let budgets = PeerBudgets::new(config.peer_budget);
        let responder = Responder::new(config.sync.reconcile.clone())
            .map_err(|_| NetError::InvalidConfig("invalid reconciliation config"))?;
        Ok(Self {
            swarm,
            log,
            validator,
            config,
            events,
            subscribed: BTreeSet::new(),
            sync: SyncState {
                responder,
                sessions: HashMap::new(),
                in_flight: HashMap::new(),
                refused: HashSet::new(),
                again: HashSet::new(),
                last_full: HashMap::new(),
            },
            dht: HashMap::new(),
            budgets,
            metrics,
            bans: Bans::default(),
            regossip: super::regossip::Regossip::new(now_ms()),
        })
    }

    /// Runs until a shutdown command or until every handle is gone.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut anti_entropy = ticker(self.config.sync.anti_entropy_interval);
        let mut retention = ticker(self.config.retention_interval);
        let mut ban_check = ticker(ban::CHECK_EVERY);
        let done: Option<oneshot::Sender<()>> = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(Command::Shutdown(done)) => break Some(done),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                _ = anti_entropy.tick() => self.anti_entropy_tick(),
                _ = retention.tick() => self.enforce_retention(),
                _ = ban_check.tick() => self.cut_off_graylisted(None),
            }
        };
        // Close connections and release the store before saying we are done.
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Disconnects and refuses `peer` (or, given `None`, every connected peer) if it scores
    /// graylisted; lets those whose ban is over connect again.
    pub(super) fn cut_off_graylisted(&mut self, peer: Option<PeerId>) {
        let ban_for = self.config.ban_graylisted_for;
        if ban_for.is_zero() {
            return;
        }
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let scores: Vec<(PeerId, Option<f64>)> = match peer {
            Some(peer) => vec![(peer, gossipsub.peer_score(&peer))],
            None => self
                .swarm
                .connected_peers()
                .map(|peer| (*peer, gossipsub.peer_score(peer)))
                .collect(),
        };
        let changes = self.bans.check(scores, Instant::now(), ban_for);
        for (peer, score) in changes.banned {
            tracing::warn!(
                %peer,
                score,
                minutes = ban_for.as_secs() / 60,
                "peer graylisted: disconnected and refused"
            );
            self.metrics.banned();
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
        for peer in changes.lifted {
            tracing::info!(%peer, "ban over: the peer may connect again");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    /// Tells the consumer; a consumer that dropped its receiver just stops hearing.
    pub fn emit(&self, event: NetEvent) {
        let _ = self.events.send(event);
    }

    fn enforce_retention(&mut self) {
        if let Err(e) = self.log.enforce_retention_all(now_ms()) {
            warn!(error = %e, "log: retention failed");
        }
    }
}

/// A timer whose first tick is one period from now (tokio's first tick is immediate).
fn ticker(period: Duration) -> Interval {
    let mut interval = interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// Milliseconds since the Unix epoch by the local clock (0 if it is before 1970).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
