//! The composed libp2p behaviour, one small behaviour per job, and how each is configured.
//!
//! - gossipsub: live delivery. Message id = the envelope id (SHA-256 of the envelope, not of
//!   the frame around it), so a copy is a duplicate whichever way and whenever it was sent.
//!   Strict signing, and `validate_messages`: nothing is forwarded until the node has run it
//!   through the validator and the log and reported Accept, Reject or Ignore. Peer scoring
//!   is on, with per-topic parameters that punish invalid messages and nothing else (a quiet
//!   chat group must not look like a dead mesh peer).
//! - request-response `/chorus/sync/1`: anti-entropy (see [`super::sync`]).
//! - Kademlia (own protocol name, so the DHT is Chorus's alone; records of at most
//!   `MAX_RECORD_VALUE_BYTES` in a memory store; server mode forced by `NetConfig::kad_server`,
//!   else libp2p's automatic client/server switch), identify (feeds Kademlia the addresses
//!   peers listen on), ping (keeps NATs open, measures), mDNS (LAN, optional).
//! - NAT traversal: the circuit relay v2 client (a node behind NAT listens through relays
//!   named in the config), DCUtR (a relayed connection is upgraded to a direct one by hole
//!   punching), AutoNAT v2 client and server (peers confirm each other's public addresses,
//!   which also moves Kademlia into server mode). Relayed connections are limited: gossip and
//!   sync wait for the direct connection DCUtR makes. A reachable node may also serve as a
//!   relay (`NetConfig::relay_server`).

use std::time::Duration;

use libp2p::gossipsub::{
    self, AllowAllSubscriptionFilter, IdentityTransform, MaxCountSubscriptionFilter,
    MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
    ValidationMode, score_parameter_decay,
};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, allow_block_list, autonat, dcutr, identify, kad, mdns, ping, relay};
use sha2::{Digest, Sha256};

use super::config::{MAX_RECORD_VALUE_BYTES, NetConfig};
use super::error::NetError;
use super::frame;
use super::sync::{SYNC_PROTOCOL, SyncCodec};
use crate::envelope_id::EnvelopeId;

/// The Kademlia protocol name: a DHT of Chorus nodes only.
pub const KAD_PROTOCOL: &str = "/chorus/kad/1.0.0";
/// The identify protocol version.
pub const IDENTIFY_PROTOCOL: &str = "/chorus/id/1.0.0";
/// The gossipsub protocol prefix, so that Chorus meshes do not mix with other applications'.
pub const GOSSIPSUB_PREFIX: &str = "/chorus/meshsub";

/// Gossipsub with a raised topic cap.
pub(crate) type Gossipsub =
    gossipsub::Behaviour<IdentityTransform, MaxCountSubscriptionFilter<AllowAllSubscriptionFilter>>;

/// Everything the swarm runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub gossipsub: Gossipsub,
    pub sync: request_response::Behaviour<SyncCodec>,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub relay_client: relay::client::Behaviour,
    pub relay_server: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat_client: autonat::v2::client::Behaviour,
    pub autonat_server: autonat::v2::server::Behaviour,
    /// Peers cut off for being graylisted (see [`super::ban`]).
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

impl Behaviour {
    /// Builds the behaviour for `key`, with gossip frames around envelopes of at most
    /// `max_envelope_bytes`; `relay_client` comes from the transport builder, which ties it
    /// to the relay transport.
    pub fn new(
        key: &Keypair,
        config: &NetConfig,
        max_envelope_bytes: usize,
        relay_client: relay::client::Behaviour,
    ) -> Result<Self, NetError> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = Gossipsub::new_with_subscription_filter(
            MessageAuthenticity::Signed(key.clone()),
            gossipsub_config(config, max_envelope_bytes)?,
            MaxCountSubscriptionFilter {
                filter: AllowAllSubscriptionFilter {},
                max_subscribed_topics: config.max_topics,
                max_subscriptions_per_request: config.max_topics,
            },
        )
        .map_err(|e| NetError::Setup(format!("gossipsub: {e}")))?;
        gossipsub
            .with_peer_score(PeerScoreParams::default(), PeerScoreThresholds::default())
            .map_err(|e| NetError::Setup(format!("gossipsub scoring: {e}")))?;

        let sync = request_response::Behaviour::with_codec(
            SyncCodec::new(config.sync.max_message_bytes),
            [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(config.sync.request_timeout),
        );

        let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kad_config
            .set_query_timeout(config.kad_query_timeout)
            .set_max_packet_size(NetConfig::max_kad_packet_bytes())
            // Records peers store here go through the driver, which holds their keys to
            // `MAX_RECORD_KEY_BYTES` (the store itself only bounds values).
            .set_record_filtering(kad::StoreInserts::FilterBoth);
        let store = kad::store::MemoryStore::with_config(
            peer_id,
            kad::store::MemoryStoreConfig {
                // The store refuses values of `max_value_bytes` or more.
                max_value_bytes: MAX_RECORD_VALUE_BYTES + 1,
                ..kad::store::MemoryStoreConfig::default()
            },
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        if config.kad_server {
            kad.set_mode(Some(kad::Mode::Server));
        }

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(format!("chorus/{}", env!("CARGO_PKG_VERSION"))),
        );

        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| NetError::Setup(format!("mdns: {e}")))?,
            )
        } else {
            None
        };

        Ok(Self {
            gossipsub,
            sync,
            kad,
            identify,
            ping: ping::Behaviour::default(),
            mdns: Toggle::from(mdns),
            relay_client,
            relay_server: Toggle::from(
                config
                    .relay_server
                    .then(|| relay::Behaviour::new(peer_id, relay::Config::default())),
            ),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat_client: autonat::v2::client::Behaviour::default(),
            autonat_server: autonat::v2::server::Behaviour::default(),
            blocked: allow_block_list::Behaviour::default(),
        })
    }
}

fn gossipsub_config(
    config: &NetConfig,
    max_envelope_bytes: usize,
) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(GOSSIPSUB_PREFIX)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(move |message| message_id(&message.data, max_envelope_bytes))
        .max_transmit_size(NetConfig::max_transmit_bytes(max_envelope_bytes))
        .heartbeat_interval(config.heartbeat)
        .heartbeat_initial_delay(config.heartbeat)
        .duplicate_cache_time(super::regossip::DUPLICATE_CACHE_TIME)
        .build()
        .map_err(|e| NetError::Setup(format!("gossipsub config: {e}")))
}

/// The gossipsub id of a message: its envelope's id, or for data that is not a frame (to be
/// rejected) the SHA-256 of the data, so garbage still gets a stable id to be rejected by.
pub(crate) fn message_id(data: &[u8], max_envelope_bytes: usize) -> MessageId {
    let digest = match frame::decode(data, max_envelope_bytes) {
        Ok(frame) => EnvelopeId::of(frame.envelope).0,
        Err(_) => Sha256::digest(data).into(),
    };
    MessageId::new(&digest)
}

/// Scoring for a Chorus topic, tuned for chat traffic (bursty, often quiet):
///
/// - invalid messages cost quadratically (-10 × count²: three put a peer below the graylist
///   threshold of -80) and are remembered for minutes (the count decays to nothing in 10 min),
///   so a flood that stops does not buy back its standing within seconds;
/// - first deliveries earn little and are capped (at most +10): junk that only a member can
///   tell from ciphertext passes the gossip checks, and must not earn an attacker a cushion
///   against its own invalid messages;
/// - time in the mesh earns at most +36 after an hour;
/// - mesh delivery penalties are off: they assume steady traffic, which a chat group does not
///   have, and would push honest but quiet peers out.
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: score_parameter_decay(Duration::from_secs(600)),
        ..TopicScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_the_envelope_id_whatever_the_timestamp() {
        let a = frame::encode(1, b"envelope").unwrap();
        let b = frame::encode(2, b"envelope").unwrap();
        let id = message_id(&a, 100);
        assert_eq!(id, message_id(&b, 100));
        assert_eq!(id, MessageId::new(&EnvelopeId::of(b"envelope").0));
        assert_ne!(message_id(b"garbage", 100), id);
    }

    #[test]
    fn topic_score_params_are_valid() {
        topic_score_params().validate().unwrap();
    }
}
