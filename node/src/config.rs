//! The daemon's configuration: built-in defaults, then `config.toml`, then flags.
//!
//! The file is looked up at `--config`, else `<data>/config.toml`, else
//! `$XDG_CONFIG_HOME/chorus/config.toml` (or `~/.config/chorus/config.toml`). Unknown keys are
//! refused, so a typo does not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Everything `chorus run` can be told, by file or by flag.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// Peers dialled at start (`/ip4/…/tcp/…/p2p/<id>`, `/dns4/…`).
    pub bootstrap: Vec<String>,
    /// Relays to listen through when not reachable directly.
    pub relays: Vec<String>,
    /// Addresses others reach this node at (public address, port mapping).
    pub external: Vec<String>,
    /// The local HTTP API (loopback only).
    pub api: SocketAddr,
    /// Find peers on the LAN with mDNS.
    pub mdns: bool,
    /// Serve as a circuit relay for others.
    pub relay_server: bool,
    /// Answer DHT queries and store DHT records for others from the start (otherwise only
    /// once the node's address is confirmed public). For LAN-only networks and tests.
    pub dht_server: bool,
    /// Prometheus metrics address, if any.
    pub metrics: Option<SocketAddr>,
    /// Log as JSON lines instead of text.
    pub json_logs: bool,
    /// The fork window (how long forked states are kept), ms.
    pub fork_window_ms: u64,
    /// The tie-break policy: lowest-ref, removes-first or deepest-branch.
    pub policy: String,
    /// How groups order concurrent commits (every member of a group must agree):
    /// `accept-and-hold` (apply at once, switch later if a better commit shows up),
    /// `settle-then-pick[:<ms>]` (wait that long, default 2000, then apply the tie-break
    /// winner) or `sequencer` (the member at the lowest leaf orders commits).
    pub consistency: String,
    /// Per-group overrides of `consistency`, by group reference (32 hex digits, as
    /// `chorus` prints groups), e.g. `[group_consistency]` `"00ff…" = "sequencer"`.
    pub group_consistency: std::collections::BTreeMap<String, String>,
    /// Who may read an own message sent again after a branch switch, a heal or an ask:
    /// `everyone` (nothing is lost; a member added on the other side of a split reads what
    /// this side said while apart) or `members-at-send` (only a group whose every member was
    /// in it when the message was sent; otherwise the message is withheld).
    pub resend_policy: String,
    /// Beacon interval, ms.
    pub beacon_interval_ms: u64,
    /// Anti-entropy interval, ms.
    pub anti_entropy_ms: u64,
    /// Routine anti-entropy rounds reconcile only the envelopes of the last this many ms;
    /// sessions on connect and one round per topic every `full_sync_ms` reconcile the whole
    /// log. Keeps a round's cost from growing with the log.
    pub sync_recent_ms: u64,
    /// How often a routine anti-entropy round on a topic reconciles its whole log, ms.
    pub full_sync_ms: u64,
    /// Gossipsub heartbeat, ms.
    pub heartbeat_ms: u64,
    /// `synced` (nothing is acknowledged, published or shown before it is fsynced: survives
    /// power loss; the steps that arrive together share one fsync) or `process-crash` (written
    /// to the OS but not fsynced: survives a crash of the node, not of the machine).
    pub durability: String,
    /// The DNS server for `contact add <dns-name>` lookups [default: the system's resolver].
    pub dns_server: Option<SocketAddr>,
    /// Pubsub messages per second each connected peer may hand this node; beyond it (and
    /// its burst) messages are dropped and counted in `chorus_gossip_shed_total`.
    pub peer_messages_per_s: u32,
    /// Pubsub bytes per second each connected peer may hand this node.
    pub peer_bytes_per_s: u64,
    /// Seconds of those rates a peer may send at once; a peer that goes on sending once a
    /// further burst's worth over is rejected, and gossipsub's scoring graylists it.
    pub peer_burst_s: u32,
    /// Seconds a peer whose gossipsub score falls to the graylist threshold is disconnected
    /// and refused (counted in `chorus_gossip_banned_total`); 0 keeps it connected and
    /// ignored.
    pub ban_graylisted_s: u64,
    /// MiB the database may hold in memory (memtables, block cache, index and filter blocks,
    /// all column families together); memtables take at most half and are flushed beyond.
    pub db_memory_mib: u64,
}

/// The largest `db_memory_mib` taken (1 TiB): beyond it the setting is surely a typo.
const MAX_DB_MEMORY_MIB: u64 = 1 << 20;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".into(),
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            relays: Vec::new(),
            external: Vec::new(),
            api: "127.0.0.1:7420".parse().expect("valid address"),
            mdns: true,
            relay_server: false,
            dht_server: false,
            metrics: None,
            json_logs: false,
            fork_window_ms: 60_000,
            policy: "lowest-ref".into(),
            consistency: "accept-and-hold".into(),
            group_consistency: Default::default(),
            resend_policy: "everyone".into(),
            beacon_interval_ms: 30_000,
            anti_entropy_ms: 30_000,
            sync_recent_ms: gossip::net::SyncConfig::default().recent_window_ms,
            full_sync_ms: gossip::net::SyncConfig::default()
                .full_sync_interval
                .as_millis() as u64,
            heartbeat_ms: 1_000,
            durability: "synced".into(),
            dns_server: None,
            peer_messages_per_s: gossip::net::PeerBudgetConfig::default().messages_per_s,
            peer_bytes_per_s: gossip::net::PeerBudgetConfig::default().bytes_per_s,
            peer_burst_s: gossip::net::PeerBudgetConfig::default().burst_s,
            ban_graylisted_s: gossip::net::NetConfig::default()
                .ban_graylisted_for
                .as_secs(),
            db_memory_mib: 16,
        }
    }
}

impl Config {
    /// Reads the file at `explicit`, else the first default location that exists, else the
    /// defaults.
    pub fn load(explicit: Option<&Path>, data_dir: &Path) -> anyhow::Result<Self> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => default_locations(data_dir).into_iter().find(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Refuses values the daemon cannot run with, naming the setting.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.api.ip().is_loopback() {
            anyhow::bail!(
                "api = {}: the local API must listen on a loopback address (127.0.0.1 or ::1)",
                self.api
            );
        }
        if self.listen.is_empty() {
            anyhow::bail!("listen: at least one address is needed");
        }
        crate::policy::parse_policy(&self.policy)?;
        self.group_consistency()?;
        self.resend_policy()?;
        self.durability()?;
        for (name, value) in [
            ("fork_window_ms", self.fork_window_ms),
            ("beacon_interval_ms", self.beacon_interval_ms),
            ("anti_entropy_ms", self.anti_entropy_ms),
            ("sync_recent_ms", self.sync_recent_ms),
            ("full_sync_ms", self.full_sync_ms),
            ("heartbeat_ms", self.heartbeat_ms),
            ("peer_messages_per_s", u64::from(self.peer_messages_per_s)),
            ("peer_bytes_per_s", self.peer_bytes_per_s),
            ("peer_burst_s", u64::from(self.peer_burst_s)),
            ("db_memory_mib", self.db_memory_mib),
        ] {
            if value == 0 {
                anyhow::bail!("{name} must be positive");
            }
        }
        if self.db_memory_mib > MAX_DB_MEMORY_MIB {
            anyhow::bail!(
                "db_memory_mib = {}: at most {MAX_DB_MEMORY_MIB} (1 TiB)",
                self.db_memory_mib
            );
        }
        Ok(())
    }

    /// The resend policy, parsed.
    pub fn resend_policy(&self) -> anyhow::Result<ds_p2p::engine::ResendPolicy> {
        self.resend_policy
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))
            .context("resend_policy")
    }

    /// The node's default consistency mode and the per-group ones, parsed.
    pub fn group_consistency(
        &self,
    ) -> anyhow::Result<(
        ds_p2p::engine::ConsistencyMode,
        std::collections::BTreeMap<ds_p2p::wire::GroupRef, ds_p2p::engine::ConsistencyMode>,
    )> {
        let default = crate::policy::parse_consistency(&self.consistency).context("consistency")?;
        let mut groups = std::collections::BTreeMap::new();
        for (group, mode) in &self.group_consistency {
            let group_ref = crate::policy::parse_group_ref(group)
                .with_context(|| format!("group_consistency key {group:?}"))?;
            let mode = crate::policy::parse_consistency(mode)
                .with_context(|| format!("group_consistency.{group}"))?;
            groups.insert(group_ref, mode);
        }
        Ok((default, groups))
    }
}

impl Config {
    /// The database durability the `durability` setting names.
    pub fn durability(&self) -> anyhow::Result<identity_tofu::kv::Durability> {
        use identity_tofu::kv::Durability;
        match self.durability.as_str() {
            // The daemon's core fsyncs once per round of steps, before it acknowledges any.
            "synced" => Ok(Durability::GroupCommit),
            "process-crash" => Ok(Durability::ProcessCrashSafe),
            other => anyhow::bail!("durability {other:?}: use \"synced\" or \"process-crash\""),
        }
    }
}

fn default_locations(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![data_dir.join("config.toml")];
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        out.push(PathBuf::from(dir).join("chorus/config.toml"));
    } else if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".config/chorus/config.toml"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_keeps_the_rest() {
        let c = Config::parse("mdns = false\nfork_window_ms = 5000\n").unwrap();
        assert!(!c.mdns);
        assert_eq!(c.fork_window_ms, 5000);
        assert_eq!(c.api, Config::default().api);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = Config::parse("mdsn = false").unwrap_err();
        assert!(format!("{e:#}").contains("mdsn"), "{e:#}");
        let e = Config::parse("api = \"0.0.0.0:1\"").unwrap_err();
        assert!(format!("{e:#}").contains("loopback"), "{e:#}");
        let e = Config::parse("policy = \"coin-flip\"").unwrap_err();
        assert!(format!("{e:#}").contains("coin-flip"), "{e:#}");
    }

    #[test]
    fn consistency_modes_by_default_and_per_group() {
        use ds_p2p::engine::ConsistencyMode;
        let (default, groups) = Config::default().group_consistency().unwrap();
        assert_eq!(default, ConsistencyMode::AcceptAndHold);
        assert!(groups.is_empty());
        let group = "00112233445566778899aabbccddeeff";
        let c = Config::parse(&format!(
            "consistency = \"settle-then-pick:500\"\n[group_consistency]\n\"{group}\" = \"sequencer\"\n"
        ))
        .unwrap();
        let (default, groups) = c.group_consistency().unwrap();
        assert_eq!(default, ConsistencyMode::SettleThenPick { settle_ms: 500 });
        let only = groups.into_iter().next().unwrap();
        assert_eq!(hex::encode(only.0.0), group);
        assert_eq!(only.1, ConsistencyMode::Sequencer);
        let c = Config::parse("resend_policy = \"members-at-send\"").unwrap();
        assert_eq!(
            c.resend_policy().unwrap(),
            ds_p2p::engine::ResendPolicy::MembersAtSend
        );
        let e = Config::parse("resend_policy = \"nobody\"").unwrap_err();
        assert!(format!("{e:#}").contains("resend_policy"), "{e:#}");
        let e = Config::parse("consistency = \"raft\"").unwrap_err();
        assert!(format!("{e:#}").contains("raft"), "{e:#}");
        let e = Config::parse("[group_consistency]\n\"xyz\" = \"sequencer\"").unwrap_err();
        assert!(format!("{e:#}").contains("xyz"), "{e:#}");
    }
}
