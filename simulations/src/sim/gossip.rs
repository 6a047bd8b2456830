//! Dissemination: publishing an envelope, receiving it (dedup by id, the log), forwarding
//! it on the mesh, and the mesh's lazy IHAVE/IWANT gossip on every heartbeat. In `flood`
//! mode the publisher sends to every subscriber and nobody forwards.

use std::rc::Rc;

use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef};
use sha2::{Digest, Sha256};

use super::node::{EnvId, EnvIx};
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
        if self.tracing() {
            let line = format!(
                "{{\"t\":{at},\"n\":{n},\"ev\":\"publish\",\"id\":\"{}\",\"kind\":\"{kind:?}\",\"topic\":{},\"bytes\":{}}}",
                short(&id),
                json_str(&topic),
                bytes.len()
            );
            self.trace_line(line);
        }
        let ix = match self.env_index.get(&id) {
            Some(&ix) => ix,
            None => {
                let ix = self.envs.len() as EnvIx;
                self.envs.push(Rc::new(Env {
                    id,
                    bytes,
                    topic: topic.clone(),
                    origin: at,
                    publisher: n,
                    kind,
                    group,
                }));
                self.env_index.insert(id, ix);
                ix
            }
        };
        let env = self.envs[ix as usize].clone();
        self.store(n, &env, ix, at);
        self.nodes[n].processed.insert(ix);
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
                    id: ix,
                    via: Via::Gossip,
                },
            );
        }
    }

    /// Puts an envelope in node `n`'s log.
    fn store(&mut self, n: NodeId, env: &Env, ix: EnvIx, at: Micros) {
        let node = &mut self.nodes[n];
        if !node.seen.insert(ix) {
            return;
        }
        // Lookups first: the topic string is cloned only for a topic new to the map.
        if !node.log.contains_key(&env.topic) {
            node.log.insert(env.topic.clone(), Vec::new());
        }
        if let Some(log) = node.log.get_mut(&env.topic) {
            // Mostly appended: envelopes arrive roughly in publication order.
            let item = env.item();
            let envs = &self.envs;
            let at_pos = log.partition_point(|&x| envs[x as usize].item() < item);
            log.insert(at_pos, ix);
        }
        if self.sc.dissemination.mode == Mode::Mesh {
            node.recent.push_back((at, ix));
        }
        match self.holders.get_mut(&env.topic) {
            Some(h) => {
                h.insert(n);
            }
            None => {
                self.holders.insert(env.topic.clone(), [n].into());
            }
        }
    }

    /// Sends `msg` from `from` to `to` at `at` through the network model.
    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, at: Micros, msg: Msg) {
        let (bytes, reliable) = match &msg {
            Msg::Data { id, via } => (
                self.envs
                    .get(*id as usize)
                    .map(|e| e.bytes.len())
                    .unwrap_or(0)
                    + 16,
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
                if self.nodes[to].seen.contains(id) {
                    self.metrics.net_duplicates += 1;
                    return;
                }
                let Some(env) = self.envs.get(id as usize).cloned() else {
                    return;
                };
                if self.tracing() {
                    let line = format!(
                        "{{\"t\":{t},\"n\":{to},\"ev\":\"arrive\",\"from\":{from},\"id\":\"{}\",\"via\":\"{}\"}}",
                        short(&env.id),
                        if via == Via::Gossip { "gossip" } else { "sync" }
                    );
                    self.trace_line(line);
                }
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
                let wanted: Vec<EnvIx> = ids
                    .into_iter()
                    .filter(|id| !self.nodes[to].seen.contains(*id))
                    .collect();
                if !wanted.is_empty() {
                    self.metrics.iwant_sent += 1;
                    self.send(to, from, t, Msg::IWant { ids: wanted });
                }
            }
            Msg::IWant { ids } => {
                for id in ids {
                    if self.nodes[to].seen.contains(id) {
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
        while node.recent.front().is_some_and(|(at, _)| *at < horizon) {
            node.recent.pop_front();
        }
        if node.recent.is_empty() {
            return;
        }
        let mut by_topic: std::collections::BTreeMap<String, Vec<EnvIx>> = Default::default();
        for &(_, ix) in &node.recent {
            let topic = &self.envs[ix as usize].topic;
            match by_topic.get_mut(topic) {
                Some(ids) => ids.push(ix),
                None => {
                    by_topic.insert(topic.clone(), vec![ix]);
                }
            }
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
