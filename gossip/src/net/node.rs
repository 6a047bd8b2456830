//! Starting a node: build the swarm, listen, dial the bootstrap peers, hand the rest to the
//! node's task.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use identity_tofu::kv::KvStore;
use libp2p::identity::Keypair;
use libp2p::metrics::Registry;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{SwarmBuilder, noise, tcp, yamux};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use super::behaviour::Behaviour;
use super::config::NetConfig;
use super::driver::Driver;
use super::error::NetError;
use super::event::NetEvents;
use super::handle::NodeHandle;
use super::metrics::{MetricsText, NetMetrics};
use super::validator::Validator;
use crate::log::Log;

/// How long `Node::start` waits for its listeners to report an address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands queued for the node's task before a handle's call waits.
const COMMAND_QUEUE: usize = 64;

/// A Chorus network node; see [`Node::start`].
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts a node with identity `keypair` over `log`, admitting only envelopes that
    /// `validator` accepts. Returns once every listen address is bound, so
    /// [`NodeHandle::listen_addrs`] is ready to share; the node runs on a tokio task until
    /// [`NodeHandle::shutdown`] or until every handle is dropped.
    ///
    /// Must be called within a tokio runtime.
    pub async fn start<S: KvStore + 'static>(
        config: NetConfig,
        keypair: Keypair,
        log: Log<S>,
        validator: impl Validator,
    ) -> Result<(NodeHandle, NetEvents), NetError> {
        let max_envelope_bytes = log.config().max_envelope_bytes;
        config.validate(max_envelope_bytes)?;
        let idle = config.idle_connection_timeout;
        // libp2p names its metrics `libp2p_…` itself.
        let mut registry = Registry::default();
        let swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Setup(format!("tcp: {e}")))?
            .with_quic()
            .with_dns()
            .map_err(|e| NetError::Setup(format!("dns: {e}")))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| NetError::Setup(format!("relay client: {e}")))?
            .with_bandwidth_metrics(&mut registry)
            .with_behaviour(|key, relay_client| {
                Behaviour::new(key, &config, max_envelope_bytes, relay_client)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })
            .map_err(|e| NetError::Setup(format!("behaviour: {e}")))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        let peer_id = *swarm.local_peer_id();
        let span = info_span!("gossip", peer = %peer_id);

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let recorder = NetMetrics::new(&mut registry);
        let mut driver = Driver::new(swarm, log, Box::new(validator), config, events_tx, recorder)?;
        driver.listen().instrument(span.clone()).await?;
        span.in_scope(|| {
            for addr in driver.config.external_addresses.clone() {
                driver.swarm.add_external_address(addr);
            }
            driver.listen_through_relays();
            driver.dial_bootstrap();
        });

        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(driver.run(commands_rx).instrument(span));
        let handle = NodeHandle::new(commands_tx, peer_id, MetricsText::new(registry));
        Ok((handle, events_rx))
    }
}

impl<S: KvStore + 'static> Driver<S> {
    /// Opens every listener and waits until each has an address (events seen meanwhile are
    /// handled as usual, so none is lost).
    async fn listen(&mut self) -> Result<(), NetError> {
        let mut waiting = HashSet::new();
        for addr in self.config.listen.clone() {
            let id = self
                .swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
            waiting.insert(id);
        }
        let wait = async {
            while !waiting.is_empty() {
                let event = self.swarm.select_next_some().await;
                match &event {
                    SwarmEvent::NewListenAddr { listener_id, .. } => {
                        waiting.remove(listener_id);
                    }
                    SwarmEvent::ListenerClosed {
                        listener_id,
                        reason,
                        ..
                    } if waiting.contains(listener_id) => {
                        return Err(NetError::Listen {
                            addr: format!("{listener_id:?}"),
                            reason: format!("{reason:?}"),
                        });
                    }
                    SwarmEvent::ListenerError { listener_id, error }
                        if waiting.contains(listener_id) =>
                    {
                        return Err(NetError::Listen {
                            addr: format!("{listener_id:?}"),
                            reason: error.to_string(),
                        });
                    }
                    _ => {}
                }
                self.on_swarm_event(event);
            }
            Ok(())
        };
        tokio::time::timeout(LISTEN_TIMEOUT, wait)
            .await
            .map_err(|_| NetError::StartTimeout)??;
        let addrs: Vec<String> = self.swarm.listeners().map(ToString::to_string).collect();
        info!(?addrs, "node started");
        Ok(())
    }

    /// Asks each configured relay for a reservation. Not awaited: a relay that is down must
    /// not keep the node from starting; `NetEvent::Listening` reports the circuit address
    /// once the relay accepted.
    fn listen_through_relays(&mut self) {
        for relay in self.config.relays.clone() {
            let circuit = relay.clone().with(Protocol::P2pCircuit);
            if let Err(e) = self.swarm.listen_on(circuit) {
                warn!(%relay, error = %e, "cannot listen through relay");
            }
        }
    }

    /// Dials the bootstrap peers and seeds Kademlia with those that name their peer id.
    fn dial_bootstrap(&mut self) {
        let mut seeded = false;
        for addr in self.config.bootstrap.clone() {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
                seeded = true;
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        if seeded && let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
            warn!(error = %e, "kademlia bootstrap failed");
        }
    }
}
