//! The MLS part of a message's latency, measured in this process: one member encrypts a
//! message (the engine's `send`) and another decrypts it — on an in-memory store (the crypto
//! alone), and on RocksDB without and with sealing (what encryption at rest adds to each
//! message's store work), side by side in one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_p2p::engine::{Command, Engine, EngineConfig, Event, Output};
use ds_p2p::storage::ChorusProvider;
use identity_tofu::LocalIdentity;
use identity_tofu::kv::{Durability, KvStore, MasterKey, MemoryStore, RocksDb, SealedKv};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;

/// Where the measured engines keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// An ordered map in memory: the MLS crypto and the engine's own work only.
    Memory,
    /// RocksDB on disk, values stored as they are (not fsynced: CPU, not the disk).
    Rocks,
    /// The same RocksDB column, sealed as the node seals it.
    RocksSealed,
}

/// A store of `kind`; RocksDB ones live in `dir`.
fn store(kind: StoreKind, dir: &std::path::Path) -> anyhow::Result<Arc<dyn KvStore>> {
    if kind == StoreKind::Memory {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let db = RocksDb::open(dir, &["mls"], Durability::ProcessCrashSafe)?;
    let column = db.store("mls")?;
    Ok(match kind {
        StoreKind::RocksSealed => Arc::new(SealedKv::open(
            column,
            "mls",
            &MasterKey::generate(&mut rand::rngs::OsRng),
            ds_p2p::storage::layout::sealed_layout(),
            rand::random(),
        )?),
        _ => Arc::new(column),
    })
}

fn engine(name: &str, now: u64, kv: Arc<dyn KvStore>) -> anyhow::Result<Engine> {
    let me = LocalIdentity::create(name, &mut rand::rngs::OsRng, now)?;
    let device = me.device_key();
    let signer = SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        device.to_secret_bytes().to_vec(),
        device.public().as_bytes().to_vec(),
    );
    Ok(Engine::open(
        EngineConfig::default(),
        ChorusProvider::new(kv),
        signer,
        me.credential_identity().to_vec(),
        rand::random(),
    )?)
}

fn publishes(engine: &mut Engine) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(o) = engine.poll_output() {
        if let Output::Publish { envelope, .. } = o {
            out.push(envelope);
        }
    }
    out
}

/// Median time to encrypt one `payload`-byte message and decrypt it at another member, both
/// keeping their state in a store of `kind`.
pub fn per_message(payload: usize, rounds: usize, kind: StoreKind) -> anyhow::Result<Duration> {
    let now = crate::daemon::now_ms();
    let dir = tempfile::tempdir()?;
    let mut a = engine("ann", now, store(kind, &dir.path().join("ann"))?)?;
    let mut b = engine("ben", now, store(kind, &dir.path().join("ben"))?)?;
    let group = a.create_group(now)?;
    publishes(&mut a);
    let key_package = b.key_package(now)?;
    a.handle_command(now, Command::Invite { group, key_package });
    for envelope in publishes(&mut a) {
        b.handle_envelope(now, &envelope);
    }
    publishes(&mut b);
    let body = vec![b'x'; payload];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        a.send(now, group, body.clone())?;
        for envelope in publishes(&mut a) {
            b.handle_envelope(now, &envelope);
        }
        let mut delivered = false;
        while let Some(o) = b.poll_output() {
            delivered |= matches!(o, Output::Event(Event::Message { .. }));
        }
        times.push(start.elapsed());
        if !delivered {
            anyhow::bail!("the crypto measurement's message was not delivered");
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// The per-message time on each kind of store, medians over interleaved repeats.
#[derive(Debug, Clone, Copy)]
pub struct PerStore {
    pub memory: Duration,
    pub rocks: Duration,
    pub sealed: Duration,
}

/// Measures [`per_message`] on each store kind, three times each, interleaved so that a
/// change in the machine's load touches every kind alike; each figure is the median of its
/// three medians.
pub fn per_store(payload: usize) -> anyhow::Result<PerStore> {
    let kinds = [StoreKind::Memory, StoreKind::Rocks, StoreKind::RocksSealed];
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..3 {
        for (i, kind) in kinds.into_iter().enumerate() {
            times[i].push(per_message(payload, 50, kind)?);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ok(PerStore {
        memory: median(&mut times[0]),
        rocks: median(&mut times[1]),
        sealed: median(&mut times[2]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_delivered_on_every_kind_of_store() {
        for kind in [StoreKind::Memory, StoreKind::Rocks, StoreKind::RocksSealed] {
            let time = per_message(64, 2, kind).unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
            assert!(time > Duration::ZERO, "{kind:?}");
        }
    }
}
