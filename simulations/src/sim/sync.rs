//! Anti-entropy: a node reconciles one topic's log with a random connected peer using
//! gossip's sans-IO range-based set reconciliation (`gossip::reconcile`), then each side
//! sends what the other lacks over the (reliable) sync stream. The session's rounds are run
//! in-process and charged one round trip each before the transfer starts.

use gossip::{Initiator, Item, Progress, ReconcileConfig, Responder, Session, SortedItems};

use super::{Msg, Simulator, Via, json_str};
use crate::scenario::NodeId;
use crate::time::{MS, Micros};

impl Simulator {
    /// Syncs every topic node `n` follows.
    pub(crate) fn sync_all_topics(&mut self, n: NodeId) {
        let topics: Vec<String> = self.nodes[n].topics.iter().cloned().collect();
        for topic in topics {
            self.sync_topic(n, &topic, None);
        }
    }

    /// One reconciliation session of node `a` on `topic` with a random connected peer.
    pub(crate) fn sync_topic(&mut self, a: NodeId, topic: &str, prefer: Option<NodeId>) {
        let t = self.now;
        if !self.nodes[a].is_up() {
            return;
        }
        // Peers on the topic: its subscribers, and nodes that keep it in their log without
        // following it (a publisher to someone's inbox answers sync for that inbox).
        let on_topic = self
            .subs
            .get(topic)
            .into_iter()
            .chain(self.holders.get(topic));
        let mut peers: Vec<NodeId> = on_topic
            .flatten()
            .copied()
            .filter(|p| *p != a && self.nodes[*p].is_up() && self.net.connected(t, a, *p))
            .collect();
        peers.sort_unstable();
        peers.dedup();
        let chosen = match prefer {
            Some(p) if peers.contains(&p) => Some(p),
            _ => self.rng.choose(&peers).copied(),
        };
        let Some(b) = chosen else {
            return;
        };
        let since_ms = t.saturating_sub(self.sc.sync.window.micros()) / MS;
        let salt = self.rng.bytes16();
        let items = |s: &Self, n: NodeId| -> SortedItems {
            let v: Vec<Item> = s.nodes[n]
                .log
                .get(topic)
                .map(|log| {
                    let first = Item::first_at(since_ms);
                    let start = log.partition_point(|&x| s.envs[x as usize].item() < first);
                    log[start..]
                        .iter()
                        .map(|&x| s.envs[x as usize].item())
                        .collect()
                })
                .unwrap_or_default();
            SortedItems::from_sorted(v).unwrap_or_default()
        };
        let (mine, theirs) = (items(self, a), items(self, b));
        let outcome = match reconcile(mine, &theirs, Session::new(salt, since_ms)) {
            Ok(o) => o,
            Err(e) => {
                if self.tracing() {
                    let line = format!(
                        "{{\"t\":{t},\"n\":{a},\"ev\":\"sync-failed\",\"peer\":{b},\"error\":{}}}",
                        json_str(&e)
                    );
                    self.trace_line(line);
                }
                return;
            }
        };
        self.metrics.sync_sessions += 1;
        self.metrics.sync_bytes += outcome.bytes_total();
        let rtt = self.net.typical_rtt(a, b);
        let done: Micros = t + rtt * u64::from(outcome.rounds.max(1));
        if self.tracing() {
            let line = format!(
                "{{\"t\":{t},\"n\":{a},\"ev\":\"sync\",\"peer\":{b},\"topic\":{},\"rounds\":{},\"send\":{},\"request\":{}}}",
                json_str(topic),
                outcome.rounds,
                outcome.send.len(),
                outcome.request.len()
            );
            self.trace_line(line);
        }
        for id in outcome.send {
            if let Some(&ix) = self.env_index.get(&id.0) {
                self.send(
                    a,
                    b,
                    done,
                    Msg::Data {
                        id: ix,
                        via: Via::Sync,
                    },
                );
            }
        }
        for id in outcome.request {
            if let Some(&ix) = self.env_index.get(&id.0) {
                self.send(
                    b,
                    a,
                    done,
                    Msg::Data {
                        id: ix,
                        via: Via::Sync,
                    },
                );
            }
        }
    }
}

/// Runs a whole session between an initiator holding `mine` and a responder holding
/// `theirs`.
fn reconcile(
    mine: SortedItems,
    theirs: &SortedItems,
    session: Session,
) -> Result<gossip::Outcome, String> {
    let config = ReconcileConfig::default();
    let responder = Responder::new(config.clone()).map_err(|e| e.to_string())?;
    let mut initiator = Initiator::new(mine, session, config).map_err(|e| e.to_string())?;
    let mut request = initiator.start().map_err(|e| e.to_string())?;
    loop {
        let reply = responder
            .respond(&request, theirs)
            .map_err(|e| e.to_string())?;
        match initiator.handle_reply(&reply).map_err(|e| e.to_string())? {
            Progress::Continue(next) => request = next,
            Progress::Done(outcome) => return Ok(outcome),
        }
    }
}
