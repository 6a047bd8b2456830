//! Dissemination: publishing an envelope, receiving it (dedup by id, the log), forwarding
//! it on the mesh, and the mesh's lazy IHAVE/IWANT gossip on every heartbeat. In `flood`
//! mode the publisher sends to every subscriber and nobody forwards.

use std::rc::Rc;

use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef};
use gossip::Item;
use sha2::{Digest, Sha256};

use super::node::EnvId;
use super::{Env, Ev, Msg, Simulator, Via, json_str, short};
use crate::net::Fate;
use crate::scenario::{Mode, NodeId};
use crate::time::{MS, Micros};

impl Simulator {
    /// Node `n` publishes `bytes` on `topic` at `at`.
    pub(crate) fn publish(&mut self, n: NodeId, at: Micros, topic: String, bytes: Vec<u8>) {
        let id: EnvId = Sha256::digest(&bytes).into();
        let (kind, group) = match Envelope::decode(&bytes, &self.config.limits) {
            Ok(e) => (e.kind, e.group_ref),
            Err(_) => (EnvelopeKind::KeyPackage, GroupRef([0; 16])),
        };
        let line = format!(
            "{{\"t\":{at},\"n\":{n},\"ev\":\"publish\",\"id\":\"{}\",\"kind\":\"{kind:?}\",\"topic\":{},\"bytes\":{}}}",
            short(&id),
            json_str(&topic),
            bytes.len()
        );
        self.trace_line(line);
        let env = self
            .envs
            .entry(id)
            .or_insert_with(|| {
                Rc::new(Env {
                    bytes,
                    topic: topic.clone(),
                    origin: at,
                    publisher: n,
                    kind,
                    group,
                })
            })
            .clone();
        self.store(n, &env, id, at);
        self.nodes[n].processed.insert(id);
        let subscribed = self.nodes[n].topics.contains(&topic);
        let d = &self.sc.dissemination;
        let targets: Vec<NodeId> = if d.mode == Mode::Mesh && subscribed && !d.flood_publish {
            self.nodes[n]
                .mesh
                .get(&topic)
                .map(|m| m.iter().copied().collect())
                .unwrap_or_default()
        } else {
            self.subs
                .get(&topic)
                .map(|s| s.iter().copied().filter(|x| *x != n).collect())
                .unwrap_or_default()
        };
        for to in targets {
            self.send(
                n,
                to,
                at,
                Msg::Data {
                    id,
                    via: Via::Gossip,
                },
            );
        }
    }

    /// Puts an envelope in node `n`'s log.
    fn store(&mut self, n: NodeId, env: &Env, id: EnvId, at: Micros) {
        let node = &mut self.nodes[n];
        if node.seen.insert(id) {
            node.log
                .entry(env.topic.clone())
                .or_default()
                .insert(Item::new(env.origin / MS, gossip::EnvelopeId(id)));
            if self.sc.dissemination.mode == Mode::Mesh {
                node.recent.push_back((at, env.topic.clone(), id));
            }
            self.holders.entry(env.topic.clone()).or_default().insert(n);
        }
    }

    /// Sends `msg` from `from` to `to` at `at` through the network model.
    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, at: Micros, msg: Msg) {
        let (bytes, reliable) = match &msg {
            Msg::Data { id, via } => (
                self.envs.get(id).map(|e| e.bytes.len()).unwrap_or(0) + 16,
                *via == Via::Sync,
            ),
            Msg::IHave { ids, .. } => (40 + 32 * ids.len(), false),
            Msg::IWant { ids } => (8 + 32 * ids.len(), false),
        };
        self.metrics.transmissions += 1;
        self.metrics.bytes_sent += bytes as u64;
        match self
            .net
            .transmit(at, from, to, bytes, reliable, &mut self.rng)
        {
            Fate::Cut => self.metrics.net_cut += 1,
            Fate::Lost => self.metrics.net_lost += 1,
            Fate::Arrives(times) => {
                for t in times {
                    let msg = clone_msg(&msg);
                    self.metrics.in_flight += 1;
                    self.queue.push(t, Ev::Arrive { to, from, msg });
                }
            }
        }
    }

    /// Something arrives at node `to`.
    pub(crate) fn arrive(&mut self, to: NodeId, from: NodeId, msg: Msg) {
        self.metrics.in_flight -= 1;
        let t = self.now;
        if !self.nodes[to].is_up() {
            self.metrics.arrived_down += 1;
            return;
        }
        match msg {
            Msg::Data { id, via } => {
                if self.nodes[to].seen.contains(&id) {
                    self.metrics.net_duplicates += 1;
                    return;
                }
                let Some(env) = self.envs.get(&id).cloned() else {
                    return;
                };
                let line = format!(
                    "{{\"t\":{t},\"n\":{to},\"ev\":\"arrive\",\"from\":{from},\"id\":\"{}\",\"via\":\"{}\"}}",
                    short(&id),
                    if via == Via::Gossip { "gossip" } else { "sync" }
                );
                self.trace_line(line);
                if via == Via::Sync {
                    self.metrics.sync_fetched += 1;
                }
                self.store(to, &env, id, t);
                if via == Via::Gossip && self.sc.dissemination.mode == Mode::Mesh {
                    let peers: Vec<NodeId> = self.nodes[to]
                        .mesh
                        .get(&env.topic)
                        .map(|m| m.iter().copied().filter(|p| *p != from).collect())
                        .unwrap_or_default();
                    for p in peers {
                        self.send(
                            to,
                            p,
                            t,
                            Msg::Data {
                                id,
                                via: Via::Gossip,
                            },
                        );
                    }
                }
                self.run_work(to, super::Work::Envelope(id));
            }
            Msg::IHave { ids, .. } => {
                let wanted: Vec<EnvId> = ids
                    .into_iter()
                    .filter(|id| !self.nodes[to].seen.contains(id))
                    .collect();
                if !wanted.is_empty() {
                    self.metrics.iwant_sent += 1;
                    self.send(to, from, t, Msg::IWant { ids: wanted });
                }
            }
            Msg::IWant { ids } => {
                for id in ids {
                    if self.nodes[to].seen.contains(&id) {
                        self.send(
                            to,
                            from,
                            t,
                            Msg::Data {
                                id,
                                via: Via::Gossip,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Node `n` follows `topic`: joins the mesh and syncs it at once.
    pub(crate) fn subscribe(&mut self, n: NodeId, topic: String) {
        if !self.nodes[n].topics.insert(topic.clone()) {
            return;
        }
        let others: Vec<NodeId> = self
            .subs
            .get(&topic)
            .map(|s| s.iter().copied().filter(|x| *x != n).collect())
            .unwrap_or_default();
        self.subs.entry(topic.clone()).or_default().insert(n);
        if self.sc.dissemination.mode == Mode::Mesh {
            let peers = self.rng.sample(&others, self.sc.dissemination.mesh_degree);
            for p in peers {
                self.nodes[n]
                    .mesh
                    .entry(topic.clone())
                    .or_default()
                    .insert(p);
                self.nodes[p]
                    .mesh
                    .entry(topic.clone())
                    .or_default()
                    .insert(n);
            }
        }
        if self.sc.sync.enabled && !others.is_empty() {
            self.queue.push(
                self.now + 10 * MS,
                Ev::SyncNow {
                    node: n,
                    topic: Some(topic),
                    peer: self.welcome_from.take(),
                },
            );
        }
    }

    /// The mesh heartbeat of node `n`: IHAVE the recent ids of each topic to a few
    /// subscribers outside the mesh.
    pub(crate) fn heartbeat(&mut self, n: NodeId) {
        let t = self.now;
        let d = self.sc.dissemination.clone();
        self.queue
            .push(t + d.heartbeat.micros(), Ev::Heartbeat { node: n });
        if !self.nodes[n].is_up() {
            return;
        }
        let horizon = t.saturating_sub(d.history.micros());
        let node = &mut self.nodes[n];
        while node.recent.front().is_some_and(|(at, _, _)| *at < horizon) {
            node.recent.pop_front();
        }
        if node.recent.is_empty() {
            return;
        }
        let mut by_topic: std::collections::BTreeMap<String, Vec<EnvId>> = Default::default();
        for (_, topic, id) in &node.recent {
            by_topic.entry(topic.clone()).or_default().push(*id);
        }
        for (topic, ids) in by_topic {
            let mesh = self.nodes[n].mesh.get(&topic).cloned().unwrap_or_default();
            let candidates: Vec<NodeId> = self
                .subs
                .get(&topic)
                .map(|s| {
                    s.iter()
                        .copied()
                        .filter(|x| *x != n && !mesh.contains(x))
                        .collect()
                })
                .unwrap_or_default();
            for p in self.rng.sample(&candidates, d.lazy_degree) {
                self.metrics.ihave_sent += 1;
                self.send(
                    n,
                    p,
                    t,
                    Msg::IHave {
                        topic: topic.clone(),
                        ids: ids.clone(),
                    },
                );
            }
        }
    }
}

fn clone_msg(msg: &Msg) -> Msg {
    match msg {
        Msg::Data { id, via } => Msg::Data { id: *id, via: *via },
        Msg::IHave { topic, ids } => Msg::IHave {
            topic: topic.clone(),
            ids: ids.clone(),
        },
        Msg::IWant { ids } => Msg::IWant { ids: ids.clone() },
    }
}
