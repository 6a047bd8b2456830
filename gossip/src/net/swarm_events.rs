//! How the node's task reacts to the network: connections, pubsub messages (validated and
//! logged before gossipsub may forward them), subscriptions (which start sync), and peer
//! discovery (identify and mDNS feed Kademlia; mDNS peers are dialled).

use identity_tofu::kv::KvStore;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{PeerId, StreamProtocol, identify, mdns};
use tracing::{debug, trace, warn};

use super::admit::{Admission, admit};
use super::anti_entropy::Scope;
use super::behaviour::{BehaviourEvent, KAD_PROTOCOL};
use super::driver::{Driver, now_ms};
use super::event::{NetEvent, Via};
use super::frame::{self, FrameError};
use super::peer_budget::BudgetVerdict;
use crate::topic::Topic;

impl<S: KvStore + 'static> Driver<S> {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossipsub(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => self.on_mdns(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                debug!(?event, "relay client");
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => {
                trace!(?event, "relay server");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => match event.result {
                Ok(_) => debug!(peer = %event.remote_peer_id, "hole punch: direct connection"),
                Err(e) => debug!(peer = %event.remote_peer_id, error = %e, "hole punch failed"),
            },
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(event)) => match event.result {
                Ok(()) => debug!(addr = %event.tested_addr, "autonat: address reachable"),
                Err(e) => debug!(addr = %event.tested_addr, error = %e, "autonat: not reachable"),
            },
            SwarmEvent::Behaviour(BehaviourEvent::AutonatServer(event)) => {
                trace!(?event, "autonat server");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "connected");
                    self.emit(NetEvent::PeerConnected { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    debug!(peer = %peer_id, "disconnected");
                    self.budgets.forget(&peer_id);
                    self.emit(NetEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                debug!(%address, "listening");
                self.emit(NetEvent::Listening { addr: address });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection failed");
            }
            other => trace!(event = ?other, "swarm"),
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let acceptance = self.on_pubsub_message(propagation_source, &message);
                let rejected = matches!(acceptance, MessageAcceptance::Reject);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                if rejected {
                    // The rejection may have just graylisted the peer: cut it off now, not at
                    // the next periodic check (a flood sends a thousand more in between).
                    self.cut_off_graylisted(Some(propagation_source));
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                let Ok(topic) = Topic::new(topic.as_str()) else {
                    return;
                };
                self.emit(NetEvent::PeerSubscribed {
                    peer: peer_id,
                    topic: topic.clone(),
                });
                // A peer joining a topic we are on is the "on connect" of anti-entropy:
                // subscriptions are exchanged as soon as a connection opens.
                if self.subscribed.contains(&topic) {
                    self.start_sync(peer_id, topic, Scope::Full);
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Ok(topic) = Topic::new(topic.as_str()) {
                    self.emit(NetEvent::PeerUnsubscribed {
                        peer: peer_id,
                        topic,
                    });
                }
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                debug!(peer = %peer_id, "peer does not speak Chorus gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                debug!(peer = %peer_id, "slow gossipsub peer");
            }
        }
    }

    /// Decides the fate of a pubsub message: malformed frames and refused envelopes are
    /// rejected (the sender's score pays), frames of a newer version and expired envelopes
    /// are ignored, and valid envelopes are stored and delivered (or already were).
    fn on_pubsub_message(
        &mut self,
        source: PeerId,
        message: &gossipsub::Message,
    ) -> MessageAcceptance {
        if self.bans.is_banned(&source) {
            // Read off the connection before it closed: not worth a look.
            return MessageAcceptance::Ignore;
        }
        let verdict = self.budgets.charge(&source, message.data.len(), now_ms());
        if verdict != BudgetVerdict::Within {
            let shed = self.metrics.shed(verdict);
            // Say it in the log without writing a line per message of a flood.
            if shed.is_power_of_two() {
                warn!(peer = %source, ?verdict, shed, "pubsub: peer over its budget; messages dropped");
            }
            // Rejecting penalises the peer that handed the message over. That is fair only for
            // the peer's own messages: a relay's forwards passed its own budget, and a
            // reject here would let a flood through several paths graylist honest relays.
            let own = message.source == Some(source);
            return match verdict {
                BudgetVerdict::Abusive if own => MessageAcceptance::Reject,
                _ => MessageAcceptance::Ignore,
            };
        }
        let Ok(topic) = Topic::new(message.topic.as_str()) else {
            debug!(peer = %source, "pubsub: invalid topic name");
            return MessageAcceptance::Reject;
        };
        let max = self.log.config().max_envelope_bytes;
        let frame = match frame::decode(&message.data, max) {
            Ok(frame) => frame,
            Err(FrameError::UnknownVersion(version)) => {
                debug!(peer = %source, %topic, version, "pubsub: frame of an unknown version");
                return MessageAcceptance::Ignore;
            }
            Err(e) => {
                debug!(peer = %source, %topic, error = %e, "pubsub: rejected");
                self.emit(NetEvent::Rejected {
                    topic,
                    from: source,
                    via: Via::Gossip,
                    reason: "not a pubsub frame",
                });
                return MessageAcceptance::Reject;
            }
        };
        let now = now_ms();
        match admit(
            &mut self.log,
            &*self.validator,
            &topic,
            frame.envelope,
            frame.timestamp_ms,
            now,
        ) {
            Admission::Stored { id, timestamp_ms } => {
                self.emit(NetEvent::Received {
                    topic,
                    id,
                    envelope: frame.envelope.to_vec(),
                    timestamp_ms,
                    from: source,
                    via: Via::Gossip,
                });
                MessageAcceptance::Accept
            }
            Admission::Duplicate => MessageAcceptance::Accept,
            Admission::Expired => MessageAcceptance::Ignore,
            Admission::Invalid(reason) => {
                debug!(peer = %source, %topic, reason, "pubsub: rejected");
                let id = crate::envelope_id::EnvelopeId::of(frame.envelope);
                self.reject(topic, id, source, Via::Gossip, reason);
                MessageAcceptance::Reject
            }
            Admission::Failed(e) => {
                warn!(%topic, error = %e, "pubsub: cannot store an envelope");
                MessageAcceptance::Ignore
            }
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            let kad = StreamProtocol::new(KAD_PROTOCOL);
            if info.protocols.contains(&kad) {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
        }
    }

    fn on_mdns(&mut self, event: mdns::Event) {
        if let mdns::Event::Discovered(found) = event {
            for (peer, addr) in found {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
                if !self.swarm.is_connected(&peer) {
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                    if let Err(e) = self.swarm.dial(opts) {
                        trace!(%peer, error = %e, "mdns: not dialling");
                    }
                }
            }
        }
    }
}
