//! How the node's task carries out what handles ask.

use identity_tofu::kv::KvStore;
use libp2p::gossipsub::{IdentTopic, PublishError};
use tracing::{debug, warn};

use super::anti_entropy::Scope;
use super::behaviour::topic_score_params;
use super::driver::{Driver, now_ms};
use super::error::NetError;
use super::frame;
use super::handle::{Command, Published};
use crate::log::Appended;
use crate::topic::Topic;

impl<S: KvStore + 'static> Driver<S> {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Subscribe(topic, reply) => {
                let _ = reply.send(self.subscribe(topic));
            }
            Command::Unsubscribe(topic, reply) => {
                let _ = reply.send(self.unsubscribe(&topic));
            }
            Command::Publish(topic, envelope, reply) => {
                let _ = reply.send(self.publish(topic, envelope));
            }
            Command::PublishMany(envelopes, reply) => {
                let results = envelopes
                    .into_iter()
                    .map(|(topic, envelope)| self.publish(topic, envelope))
                    .collect();
                let _ = reply.send(results);
            }
            Command::Dial(addr, reply) => {
                let result = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NetError::Dial(e.to_string()));
                let _ = reply.send(result);
            }
            Command::AddExternalAddress(addr, reply) => {
                self.swarm.add_external_address(addr);
                let _ = reply.send(());
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::SyncNow(topic, reply) => {
                let _ = reply.send(self.sync_now(topic));
            }
            Command::Has(topic, id, reply) => {
                let _ = reply.send(self.log.has(&topic, &id).map_err(NetError::from));
            }
            Command::PeerScore(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::PutRecord(key, value, reply) => self.put_record(key, value, reply),
            Command::GetRecord(key, reply) => self.get_record(key, reply),
            Command::DhtPeers(reply) => {
                let _ = reply.send(self.dht_peers());
            }
            // Handled by the run loop, which must end.
            Command::Shutdown(_) => {}
        }
    }

    fn subscribe(&mut self, topic: Topic) -> Result<bool, NetError> {
        let ident = IdentTopic::new(topic.as_str());
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let new = gossipsub
            .subscribe(&ident)
            .map_err(|e| NetError::Pubsub(e.to_string()))?;
        if let Err(e) = gossipsub.set_topic_params(ident, topic_score_params()) {
            warn!(%topic, error = e, "pubsub: topic scoring not set");
        }
        self.subscribed.insert(topic.clone());
        // Peers already on the topic told us so before we cared: catch up with them now.
        for peer in self.topic_peers(&topic) {
            self.start_sync(peer, topic.clone(), Scope::Full);
        }
        debug!(%topic, new, "subscribed");
        Ok(new)
    }

    fn unsubscribe(&mut self, topic: &Topic) -> Result<bool, NetError> {
        self.subscribed.remove(topic);
        self.sync.last_full.remove(topic);
        let was = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .unsubscribe(&IdentTopic::new(topic.as_str()));
        Ok(was)
    }

    /// Stores, then gossips. The log comes first: once it holds the envelope, sync delivers
    /// it even if gossip cannot right now.
    fn publish(&mut self, topic: Topic, envelope: Vec<u8>) -> Result<Published, NetError> {
        let max = self.log.config().max_envelope_bytes;
        if envelope.len() > max {
            return Err(NetError::EnvelopeTooLarge {
                len: envelope.len(),
                max,
            });
        }
        let now = now_ms();
        let (id, stored, timestamp_ms) = match self.log.append(&topic, &envelope, now)? {
            Appended::Stored { id, .. } => (id, true, now),
            // Published again: keep the timestamp it is filed under everywhere already.
            Appended::Duplicate { id } => {
                let filed = self.log.get(&topic, &id)?.map(|e| e.timestamp_ms);
                let filed = filed.unwrap_or(now);
                if !self.regossip.may_send(id, filed, now) {
                    // gossipsub would refuse it (and warn); the log has it for sync.
                    debug!(%topic, %id, "published again too soon: not gossiped");
                    return Ok(Published {
                        id,
                        stored: false,
                        gossiped: false,
                    });
                }
                (id, false, filed)
            }
            Appended::Expired { .. } => return Err(NetError::Expired),
        };
        let frame =
            frame::encode(timestamp_ms, &envelope).map_err(|e| NetError::Pubsub(e.to_string()))?;
        let gossiped = match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(topic.as_str()), frame)
        {
            Ok(_) => true,
            Err(PublishError::Duplicate | PublishError::NoPeersSubscribedToTopic) => false,
            Err(PublishError::AllQueuesFull(peers)) => {
                warn!(%topic, peers, "pubsub: every peer's queue is full; sync will deliver");
                false
            }
            Err(e) => return Err(NetError::Pubsub(e.to_string())),
        };
        debug!(%topic, %id, stored, gossiped, "published");
        Ok(Published {
            id,
            stored,
            gossiped,
        })
    }

    fn sync_now(&mut self, topic: Topic) -> Result<usize, NetError> {
        if !self.subscribed.contains(&topic) {
            return Err(NetError::NotSubscribed(topic));
        }
        let started = self
            .topic_peers(&topic)
            .into_iter()
            .filter(|peer| self.request_sync(*peer, topic.clone()))
            .count();
        Ok(started)
    }
}
