//! The baseline: bare libp2p gossipsub (TCP + Noise + Yamux, nothing else), configured like
//! Chorus's swarm — strict signing, content-hash message ids, the same heartbeat and
//! transmit limit — in this process, one tokio task per node.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, noise, tcp, yamux};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

const TOPIC: &str = "bench";

/// Commands to one raw node's task.
enum Ctl {
    Publish(Vec<u8>),
}

pub struct RawNet {
    senders: Vec<mpsc::UnboundedSender<Ctl>>,
    /// (node index, payload) for every message a node received.
    received: mpsc::UnboundedReceiver<(usize, Vec<u8>, Instant)>,
}

fn swarm(heartbeat: Duration) -> anyhow::Result<Swarm<gossipsub::Behaviour>> {
    let swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(ValidationMode::Strict)
                .message_id_fn(|m| gossipsub::MessageId::new(&Sha256::digest(&m.data)))
                .max_transmit_size(1024 * 1024 + 4096)
                .heartbeat_interval(heartbeat)
                .heartbeat_initial_delay(heartbeat)
                .build()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
                .map_err(|e| anyhow::anyhow!("{e}").into())
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

impl RawNet {
    /// `n` nodes, each dialling node 0 (the topology the Chorus nodes get from `--bootstrap`),
    /// all subscribed to one topic; returns once every node has a mesh peer.
    pub async fn start(n: usize, heartbeat: Duration) -> anyhow::Result<Self> {
        let (rx_tx, received) = mpsc::unbounded_channel();
        let mut senders = Vec::new();
        let mut first_addr: Option<Multiaddr> = None;
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        for index in 0..n {
            let mut s = swarm(heartbeat)?;
            s.behaviour_mut()
                .subscribe(&IdentTopic::new(TOPIC))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            s.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
            let addr = loop {
                if let SwarmEvent::NewListenAddr { address, .. } = s.select_next_some().await {
                    break address;
                }
            };
            match &first_addr {
                None => first_addr = Some(addr),
                Some(a) => s.dial(a.clone())?,
            }
            let (tx, mut ctl) = mpsc::unbounded_channel();
            senders.push(tx);
            let (rx_tx, ready_tx) = (rx_tx.clone(), ready_tx.clone());
            tokio::spawn(async move {
                let topic = IdentTopic::new(TOPIC);
                let mut announced = false;
                loop {
                    tokio::select! {
                        event = s.select_next_some() => match event {
                            SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                                let _ = rx_tx.send((index, message.data, Instant::now()));
                            }
                            SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) if !announced => {
                                announced = true;
                                let _ = ready_tx.send(index);
                            }
                            _ => {}
                        },
                        c = ctl.recv() => match c {
                            Some(Ctl::Publish(data)) => {
                                let _ = s.behaviour_mut().publish(topic.clone(), data);
                            }
                            None => return,
                        },
                    }
                }
            });
        }
        let mut up = std::collections::BTreeSet::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            while up.len() < n {
                if let Some(i) = ready.recv().await {
                    up.insert(i);
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("raw gossipsub nodes did not find each other in 30 s"))?;
        // Meshes form on the heartbeat after subscriptions are known.
        tokio::time::sleep(heartbeat * 3).await;
        Ok(Self { senders, received })
    }

    pub fn publish(&self, from: usize, data: Vec<u8>) {
        let _ = self.senders[from].send(Ctl::Publish(data));
    }

    /// Waits until node `at` receives a message whose first 8 bytes are `tag`.
    pub async fn wait(&mut self, at: usize, tag: u64, limit: Duration) -> anyhow::Result<Instant> {
        tokio::time::timeout(limit, async {
            while let Some((node, data, when)) = self.received.recv().await {
                if node == at && data.len() >= 8 && data[..8] == tag.to_be_bytes() {
                    return Ok(when);
                }
            }
            anyhow::bail!("raw network stopped")
        })
        .await
        .map_err(|_| anyhow::anyhow!("raw message {tag} not delivered in {limit:?}"))?
    }
}
