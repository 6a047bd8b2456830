//! `chorus run`: the daemon. Opens the node's RocksDB, starts the gossip node, the engine and
//! the local API, and drives them until SIGINT/SIGTERM or `POST /v1/shutdown`.

mod core;
mod disk_space;
mod key_exchange;
mod lookups;
pub mod memory;
mod present;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ds_p2p::engine::{Engine, EngineConfig};
use ds_p2p::storage::ChorusProvider;
use ds_p2p::wire::{Envelope, EnvelopeKind, WireLimits};
use gossip::net::{NetConfig, Node};
use gossip::{Log, LogConfig, Topic};
use identity_tofu::kv::{DbMemoryBudget, RocksDb};
use identity_tofu::{LocalIdentity, TrustStore};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use tokio::sync::{broadcast, mpsc};

pub use self::core::now_ms;
use crate::api::server::{self, ApiCall};
use crate::config::Config;
use crate::paths::{DataDir, write_private};
use crate::sealing::{SealedColumns, Unlock, key_files_seal, unlock_master_key};

/// At most this many ready inputs join one round (one fsync); bounds the latency a burst adds
/// to the first input of the round.
const ROUND_LIMIT: usize = 64;

/// Column families of the node's database.
pub const COLUMN_FAMILIES: [&str; 4] = ["mls", "trust", "gossip", "node"];

pub async fn run(data: DataDir, config: Config, unlock: Unlock) -> anyhow::Result<()> {
    data.require_initialized()?;
    config.check()?;
    let master = unlock_master_key(&data, &unlock)?;
    let me = LocalIdentity::load_sealed(&data.keys(), Some(&key_files_seal(&master)))
        .with_context(|| format!("reading the identity in {}", data.keys().display()))?;
    let keypair = crate::peer_key::read(&data, &master)?;
    let db = RocksDb::open_with_budget(
        data.db(),
        &COLUMN_FAMILIES,
        config.durability()?,
        DbMemoryBudget::mib(usize::try_from(config.db_memory_mib).unwrap_or(usize::MAX)),
    )
    .with_context(|| {
        format!(
            "opening the database in {} (is another `chorus run` using this data dir?)",
            data.db().display()
        )
    })?;
    let sealed = SealedColumns::open(&db, &master)
        .with_context(|| format!("opening the sealed database in {}", data.db().display()))?;
    drop(master);
    let store = |cf: &str| sealed.store(cf);

    let (consistency, group_consistency) = config.group_consistency()?;
    let engine_config = EngineConfig {
        consistency,
        group_consistency,
        window_ms: config.fork_window_ms,
        beacon_interval_ms: config.beacon_interval_ms,
        policy: crate::policy::parse_policy(&config.policy)?,
        resend_policy: config.resend_policy()?,
        // The history is written after the engine's step: see `Core::deliver_unconfirmed`.
        confirm_delivery: true,
        // Envelopes are published after the round's fsync: see `Core::publish_unsent`.
        confirm_publish: true,
        ..EngineConfig::default()
    };
    let limits = engine_config.limits;
    let device = me.device_key();
    let signer = SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        device.to_secret_bytes().to_vec(),
        device.public().as_bytes().to_vec(),
    );
    let engine = Engine::open(
        engine_config,
        ChorusProvider::new(store("mls")?),
        signer,
        me.credential_identity().to_vec(),
        rand::random(),
    )
    .context("opening the group engine")?
    .with_trust_store(TrustStore::new(store("trust")?));
    let trust = TrustStore::new(store("trust")?);

    let log = Log::open(sealed.gossip.clone(), LogConfig::default()).context("opening the log")?;
    let replay = recent_log_envelopes(&log, config.fork_window_ms).context("reading the log")?;
    let net_config = net_config(&config)?;
    let (net, mut net_events) = Node::start(net_config, keypair, log, validator(limits))
        .await
        .context("starting the network")?;

    let metrics = Arc::new(crate::metrics::Metrics::default());
    let memory = memory::probe(db.clone());
    memory::trim_heap_every(Duration::from_secs(60));
    if let Some(addr) = config.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics address {addr}"))?;
        let bound = listener.local_addr()?;
        write_private(&data.metrics_addr(), bound.to_string().as_bytes())?;
        eprintln!("chorus: metrics at http://{bound}/metrics");
        let (net, scraped, memory) = (net.clone(), metrics.clone(), memory.clone());
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            move || {
                scraped.memory.set(&memory());
                net.libp2p_metrics()
            },
        ));
    }

    let (events_tx, _) = broadcast::channel(1024);
    let (found_tx, mut found) = mpsc::unbounded_channel();
    let mut core = core::Core::new(
        engine,
        net.clone(),
        crate::store::NodeStore::new(store("node")?),
        trust,
        me,
        events_tx.clone(),
        limits,
        metrics,
        found_tx,
        {
            let db = db.clone();
            Box::new(move || db.sync().map_err(anyhow::Error::from))
        },
    );
    core.memory = Some(memory);
    if let Some(server) = config.dns_server {
        core.dns = crate::lookup::DnsResolverConfig::Nameserver(server);
    }
    core.subscribe_all().await?;
    core.deliver_unconfirmed()
        .context("storing the messages read before the last stop")?;
    core.replay(replay).await;
    core.publish_unsent()
        .context("reading what the engine made before the last stop")?;
    core.publish_outbox().await?;
    core.publish_records(now_ms()).await;
    core.commit()
        .await
        .map_err(|e| disk_space::explain(e, &data.db()))?;

    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .with_context(|| {
            format!(
                "the API address {} is not free (try --api 127.0.0.1:0)",
                config.api
            )
        })?;
    let api_addr = listener.local_addr()?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&data.api_token(), token.as_bytes())?;
    write_private(&data.api_addr(), api_addr.to_string().as_bytes())?;
    let (calls_tx, mut calls) = mpsc::channel::<ApiCall>(64);
    tokio::spawn(server::serve(listener, token, calls_tx, events_tx));

    let addrs = net.listen_addrs().await?;
    tracing::info!(peer = %net.peer_id(), api = %api_addr, ?addrs, "node running");
    eprintln!(
        "chorus: running as {} ({}), peer {}\n  api {api_addr}\n  listening on {}",
        core.me.handle(),
        core.me.fingerprint(),
        net.peer_id(),
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let sleep = match core.next_timer() {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            event = net_events.recv() => match event {
                Some(e) => core.on_net(e).await,
                None => anyhow::bail!("the network task stopped"),
            },
            call = calls.recv() => if let Some(call) = call {
                core.on_api(call.route, call.reply).await;
            },
            Some(result) = found.recv() => core.on_found(result).await,
            Some(done) = core.next_published() => core.on_published(done),
            _ = tokio::time::sleep(sleep) => core.on_timer().await,
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
        // Whatever else is ready joins this round, so that it shares the round's one fsync.
        for _ in 0..ROUND_LIMIT {
            if core.shutdown {
                break;
            }
            if let Ok(e) = net_events.try_recv() {
                core.on_net(e).await;
            } else if let Ok(call) = calls.try_recv() {
                core.on_api(call.route, call.reply).await;
            } else {
                break;
            }
        }
        core.commit()
            .await
            .map_err(|e| disk_space::explain(e, &data.db()))?;
        if core.shutdown {
            break;
        }
    }
    eprintln!("chorus: shutting down");
    core.finish_publishing().await;
    let _ = std::fs::remove_file(data.api_addr());
    let _ = std::fs::remove_file(data.metrics_addr());
    drop(core);
    let _ = net.shutdown().await;
    drop(db);
    Ok(())
}

fn net_config(config: &Config) -> anyhow::Result<NetConfig> {
    let parse = |what: &str, list: &[String]| -> anyhow::Result<Vec<gossip::net::Multiaddr>> {
        list.iter()
            .map(|s| {
                s.parse()
                    .with_context(|| format!("{what} address {s:?} is not a multiaddr"))
            })
            .collect()
    };
    let mut net = NetConfig {
        listen: parse("listen", &config.listen)?,
        bootstrap: parse("bootstrap", &config.bootstrap)?,
        relays: parse("relay", &config.relays)?,
        external_addresses: parse("external", &config.external)?,
        relay_server: config.relay_server,
        kad_server: config.dht_server || config.relay_server,
        mdns: config.mdns,
        heartbeat: Duration::from_millis(config.heartbeat_ms),
        peer_budget: gossip::net::PeerBudgetConfig {
            messages_per_s: config.peer_messages_per_s,
            bytes_per_s: config.peer_bytes_per_s,
            burst_s: config.peer_burst_s,
            ..Default::default()
        },
        ban_graylisted_for: Duration::from_secs(config.ban_graylisted_s),
        ..NetConfig::default()
    };
    net.sync.anti_entropy_interval = Duration::from_millis(config.anti_entropy_ms);
    net.sync.recent_window_ms = config.sync_recent_ms;
    net.sync.full_sync_interval = Duration::from_millis(config.full_sync_ms);
    Ok(net)
}

/// Admits an envelope if it decodes within the limits and its kind belongs on the topic:
/// group traffic on group topics, Welcomes and KeyPackage traffic on inbox topics.
fn validator(limits: WireLimits) -> impl Fn(&Topic, &[u8]) -> bool + Send + 'static {
    move |topic: &Topic, bytes: &[u8]| {
        let Ok(envelope) = Envelope::decode(bytes, &limits) else {
            return false;
        };
        let on_inbox = topic.as_str().starts_with("chorus/inbox/");
        let on_group = topic.as_str() == envelope.group_ref.topic();
        match envelope.kind {
            EnvelopeKind::Handshake
            | EnvelopeKind::Application
            | EnvelopeKind::Beacon
            | EnvelopeKind::SequencerEcho => on_group,
            EnvelopeKind::GroupInfo => on_group,
            EnvelopeKind::Welcome | EnvelopeKind::KeyPackage => on_inbox,
        }
    }
}

/// The newest envelopes of each topic in the log, oldest first: those within the fork window
/// (plus a minute) of the topic's newest one.
///
/// The log takes an envelope when it arrives, before the engine reads it; a node killed in
/// between holds the envelope, so sync never fetches it again, and the engine never saw it.
/// At start they are given to the engine again ([`core::Core::replay`]); what it already
/// read it recognises (ids seen, commits known) and drops.
fn recent_log_envelopes<S: identity_tofu::kv::KvStore>(
    log: &Log<S>,
    window_ms: u64,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for topic in log.topics()? {
        let items = log.items_since(&topic, 0)?.into_vec();
        let Some(newest) = items.last().map(|i| i.timestamp_ms) else {
            continue;
        };
        let since = newest.saturating_sub(window_ms.saturating_add(60_000));
        for item in items.into_iter().filter(|i| i.timestamp_ms >= since) {
            if let Some(entry) = log.get(&topic, &item.id)? {
                out.push((
                    item.timestamp_ms,
                    topic.as_str().to_string(),
                    entry.envelope,
                ));
            }
        }
    }
    out.sort_by_key(|(t, ..)| *t);
    Ok(out.into_iter().map(|(_, topic, e)| (topic, e)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ds_p2p::wire::GroupRef;

    #[test]
    fn the_validator_admits_kinds_on_their_topics_only() {
        let v = validator(WireLimits::default());
        let g = GroupRef([9; 16]);
        let app = Envelope::new(EnvelopeKind::Application, g, vec![1])
            .encode()
            .unwrap();
        let welcome = Envelope::new(EnvelopeKind::Welcome, g, vec![1])
            .encode()
            .unwrap();
        let group_topic = Topic::new(g.topic()).unwrap();
        let other_group = Topic::new(GroupRef([1; 16]).topic()).unwrap();
        let inbox = Topic::new("chorus/inbox/00").unwrap();
        assert!(v(&group_topic, &app));
        assert!(!v(&other_group, &app));
        assert!(!v(&inbox, &app));
        assert!(v(&inbox, &welcome));
        assert!(!v(&group_topic, &welcome));
        assert!(!v(&group_topic, b"garbage"));
    }
}
