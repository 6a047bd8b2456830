//! What a node listens on, whom it dials first, and the limits it holds peers to.

use std::time::Duration;

use libp2p::Multiaddr;

use super::error::NetError;
use super::peer_budget::PeerBudgetConfig;
use crate::reconcile::ReconcileConfig;

/// Bytes a sync message may spend on everything but envelope bytes: enum tags, the topic name
/// (at most 256 bytes), length prefixes. Budgets for envelope batches leave this much room.
pub(crate) const SYNC_OVERHEAD_BYTES: usize = 1024;

/// Bytes a gossipsub RPC spends around our frame: author key and signature, sequence number,
/// topic name, protobuf tags. The transmit limit is the largest frame plus this.
const GOSSIPSUB_OVERHEAD_BYTES: usize = 2048;

/// The longest DHT record key `NodeHandle::put_record` and `get_record` accept, in bytes.
pub const MAX_RECORD_KEY_BYTES: usize = 256;

/// The largest DHT record value `NodeHandle::put_record` accepts (and the local record store
/// keeps, from us or from peers), in bytes.
pub const MAX_RECORD_VALUE_BYTES: usize = 64 * 1024;

/// Bytes a Kademlia message may spend beside one record's key and value: the publisher, the
/// closer peers sent along with a record (up to 20, each with addresses), protobuf tags.
const KAD_OVERHEAD_BYTES: usize = 16 * 1024;

/// The network configuration of a node.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on. `Node::start` returns once each has at least one address.
    pub listen: Vec<Multiaddr>,
    /// Peers dialled at start, as multiaddrs ending in `/p2p/<peer id>` (those are also put
    /// in the Kademlia routing table). `/dns4/...` names are resolved by the DNS transport.
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses at which others reach this node, known to its operator (a public address,
    /// a port mapping). Announced as confirmed from the start, which a relay server needs and
    /// which puts Kademlia in server mode; otherwise AutoNAT confirms addresses over time.
    pub external_addresses: Vec<Multiaddr>,
    /// Relays to listen through when this node is not reachable directly, as multiaddrs
    /// ending in `/p2p/<relay peer id>`. Peers reach it at `<relay>/p2p-circuit/p2p/<us>`,
    /// and DCUtR then upgrades such connections to direct ones.
    pub relays: Vec<Multiaddr>,
    /// Serve as a circuit relay for others (for publicly reachable nodes), with libp2p's
    /// default limits on reservations and circuits.
    pub relay_server: bool,
    /// Find peers on the local network with mDNS. Off in tests, so that test nodes on one
    /// machine do not find each other (or someone else's).
    pub mdns: bool,
    /// Run Kademlia in server mode from the start: answer DHT queries and store records for
    /// others, and be added to their routing tables. When false, libp2p decides: client mode
    /// (query, but do not serve) until the node has a confirmed external address (configured
    /// in `external_addresses`, or confirmed by AutoNAT), server mode after. Only force it
    /// on for a node that others can actually reach (loopback tests, a LAN, a public host): a
    /// server that peers cannot dial back slows their lookups down. Default false.
    pub kad_server: bool,
    /// How long a DHT query (`NodeHandle::put_record`, `get_record`, bootstrap) may run
    /// before it is given up (Kademlia's query timeout).
    pub kad_query_timeout: Duration,
    /// The most topics a remote peer may be subscribed to in our view, and the most
    /// subscriptions one message of it may carry. libp2p's default of 100 is too low for a
    /// member of many groups (DESIGN §5): raise it to the group limit.
    pub max_topics: usize,
    /// Gossipsub heartbeat (mesh maintenance, gossip of recent ids). Also its initial delay.
    pub heartbeat: Duration,
    /// A connection with no open stream is closed after this long.
    pub idle_connection_timeout: Duration,
    /// Anti-entropy sync.
    pub sync: SyncConfig,
    /// How often the log's age-based retention runs.
    pub retention_interval: Duration,
    /// How much pubsub traffic each directly connected peer may hand us (see
    /// [`PeerBudgetConfig`]): beyond it messages are dropped, and a peer that keeps on is
    /// rejected until its score graylists it.
    pub peer_budget: PeerBudgetConfig,
    /// How long a peer whose gossipsub score falls to the graylist threshold is disconnected
    /// and refused (see `net::ban`); zero turns the cut-off off (the peer stays connected and
    /// ignored).
    pub ban_graylisted_for: Duration,
}

/// How and how often the node runs `/chorus/sync/1` with its peers.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Every this often, each subscribed topic is synced with one random peer on it.
    pub anti_entropy_interval: Duration,
    /// Sessions reconcile the envelopes of the last `window_ms` (both peers use the
    /// initiator's window). Defaults to the log's default retention age.
    pub window_ms: u64,
    /// Routine anti-entropy rounds reconcile only the envelopes of the last
    /// `recent_window_ms`: what gossip dropped is recent, and reading the whole log of a topic
    /// every round would cost time and memory growing with the log. Sessions on connect, on
    /// subscribe and on `sync_now`, and one round per topic every `full_sync_interval`,
    /// reconcile the whole `window_ms` (what a peer that was away or cut off brings is old).
    pub recent_window_ms: u64,
    /// How often a routine round on a topic reconciles the whole window; see
    /// `recent_window_ms`.
    pub full_sync_interval: Duration,
    /// A request without a response after this long fails the session.
    pub request_timeout: Duration,
    /// The largest sync message sent or accepted, in bytes, checked before reading it. It must
    /// hold the largest envelope and the largest reconciliation message with room to spare.
    pub max_message_bytes: usize,
    /// The most ids one fetch request may name.
    pub max_fetch_ids: usize,
    /// The most sync sessions this node runs at once as initiator.
    pub max_sessions: usize,
    /// The reconciliation limits (message size, rounds, branching).
    pub reconcile: ReconcileConfig,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr"),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            external_addresses: Vec::new(),
            relays: Vec::new(),
            relay_server: false,
            mdns: true,
            kad_server: false,
            kad_query_timeout: Duration::from_secs(30),
            max_topics: 1024,
            heartbeat: Duration::from_secs(1),
            idle_connection_timeout: Duration::from_secs(60),
            sync: SyncConfig::default(),
            retention_interval: Duration::from_secs(10 * 60),
            peer_budget: PeerBudgetConfig::default(),
            // About how long gossipsub takes to forgive the three invalid messages that
            // graylist a peer (see `behaviour::topic_score_params`).
            ban_graylisted_for: Duration::from_secs(10 * 60),
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            anti_entropy_interval: Duration::from_secs(60),
            window_ms: crate::log::LogConfig::default().retention.max_age_ms,
            recent_window_ms: 10 * 60 * 1000,
            full_sync_interval: Duration::from_secs(10 * 60),
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 2 * 1024 * 1024,
            max_fetch_ids: 1024,
            max_sessions: 32,
            reconcile: ReconcileConfig::default(),
        }
    }
}

impl NetConfig {
    /// A configuration for a node on loopback only: one TCP listener on 127.0.0.1, no mDNS,
    /// a fast heartbeat, Kademlia in server mode (loopback nodes have no confirmed external
    /// address, so they would otherwise neither serve nor store records) with a 5 s query
    /// timeout. For tests and local experiments.
    pub fn loopback() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            mdns: false,
            kad_server: true,
            kad_query_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_millis(200),
            ..Self::default()
        }
    }

    /// Checks the configuration against the log's largest envelope.
    pub(crate) fn validate(&self, max_envelope_bytes: usize) -> Result<(), NetError> {
        let invalid = |reason| Err(NetError::InvalidConfig(reason));
        if self.listen.is_empty() {
            return invalid("at least one listen address is needed");
        }
        if self.max_topics == 0 {
            return invalid("max_topics must be positive");
        }
        if self.heartbeat.is_zero() || self.sync.anti_entropy_interval.is_zero() {
            return invalid("heartbeat and anti-entropy interval must be positive");
        }
        if self.retention_interval.is_zero() {
            return invalid("retention_interval must be positive");
        }
        if self.kad_query_timeout.is_zero() {
            return invalid("kad_query_timeout must be positive");
        }
        if !self.peer_budget.is_valid() {
            return invalid("peer budget rates, burst and max_peers must be positive");
        }
        let sync = &self.sync;
        if sync.max_message_bytes > crate::codec::MAX_DECODE_LEN {
            return invalid("sync max_message_bytes is above the codec's 4 MiB ceiling");
        }
        if sync.max_message_bytes < max_envelope_bytes + SYNC_OVERHEAD_BYTES {
            return invalid("sync max_message_bytes must hold the log's largest envelope");
        }
        if sync.max_message_bytes < sync.reconcile.max_message_bytes + SYNC_OVERHEAD_BYTES {
            return invalid("sync max_message_bytes must hold a reconciliation message");
        }
        if sync.max_fetch_ids == 0
            || sync.max_fetch_ids * 33 + SYNC_OVERHEAD_BYTES > sync.max_message_bytes
        {
            return invalid("max_fetch_ids must be positive and fit one sync message");
        }
        if sync.max_sessions == 0 {
            return invalid("max_sessions must be positive");
        }
        sync.reconcile
            .validate()
            .map_err(|_| NetError::InvalidConfig("invalid reconciliation config"))
    }

    /// The largest Kademlia message sent or accepted: one record of the largest key and value,
    /// with room for the peers that come along.
    pub(crate) fn max_kad_packet_bytes() -> usize {
        MAX_RECORD_KEY_BYTES + MAX_RECORD_VALUE_BYTES + KAD_OVERHEAD_BYTES
    }

    /// The gossipsub transmit limit for a log whose envelopes are at most this large.
    pub(crate) fn max_transmit_bytes(max_envelope_bytes: usize) -> usize {
        super::frame::max_frame_len(max_envelope_bytes) + GOSSIPSUB_OVERHEAD_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_the_default_log() {
        let max = crate::log::LogConfig::default().max_envelope_bytes;
        NetConfig::default().validate(max).unwrap();
        NetConfig::loopback().validate(max).unwrap();
    }

    #[test]
    fn kademlia_defaults_and_limits() {
        let (default, loopback) = (NetConfig::default(), NetConfig::loopback());
        assert!(!default.kad_server && loopback.kad_server);
        assert_eq!(default.kad_query_timeout, Duration::from_secs(30));
        assert_eq!(loopback.kad_query_timeout, Duration::from_secs(5));
        assert!(NetConfig::max_kad_packet_bytes() > MAX_RECORD_KEY_BYTES + MAX_RECORD_VALUE_BYTES);
        let config = NetConfig {
            kad_query_timeout: Duration::ZERO,
            ..loopback
        };
        assert!(config.validate(1024).is_err());
    }

    #[test]
    fn sync_messages_must_hold_an_envelope() {
        let mut config = NetConfig::default();
        config.sync.max_message_bytes = 64 * 1024;
        assert!(config.validate(1024 * 1024).is_err());
    }
}
