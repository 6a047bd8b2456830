//! The MLS part of a message's latency, measured in this process: one member encrypts a
//! message (the engine's `send`, in-memory store) and another decrypts it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_p2p::engine::{Command, Engine, EngineConfig, Event, Output};
use ds_p2p::storage::ChorusProvider;
use identity_tofu::LocalIdentity;
use identity_tofu::kv::{KvStore, MemoryStore};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;

fn engine(name: &str, now: u64) -> anyhow::Result<Engine> {
    let me = LocalIdentity::create(name, &mut rand::rngs::OsRng, now)?;
    let kv: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
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

/// Median time to encrypt one `payload`-byte message and decrypt it at another member.
pub fn per_message(payload: usize, rounds: usize) -> anyhow::Result<Duration> {
    let now = crate::daemon::now_ms();
    let mut a = engine("ann", now)?;
    let mut b = engine("ben", now)?;
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
