//! Faults over time: crashes and restarts, partitions and flapping links going down and
//! coming back (a reconnect triggers an anti-entropy sync, as a real node syncs on connect).

use super::{Ev, Simulator, Work, json_str};
use crate::scenario::NodeId;
use crate::time::{MS, Micros};

impl Simulator {
    pub(crate) fn schedule_faults(&mut self) {
        let sc = self.sc.clone();
        let all: Vec<NodeId> = (0..sc.nodes).collect();
        for (k, p) in sc.partitions.iter().enumerate() {
            self.queue.push(
                p.start,
                Ev::Disconnect {
                    what: format!("partition {k} ({})", p.side_names.join(" | ")),
                },
            );
            if let Some(h) = p.heal {
                self.queue.push(
                    h,
                    Ev::Connect {
                        nodes: all.clone(),
                        what: format!("partition {k} heals"),
                    },
                );
            }
        }
        for (k, f) in sc.flaps.iter().enumerate() {
            let ends: Vec<NodeId> = f.a.iter().chain(f.b.iter()).copied().collect();
            let mut t: Micros = f.start;
            while t < f.end {
                self.queue.push(
                    t,
                    Ev::Disconnect {
                        what: format!("flap {k} down"),
                    },
                );
                let up = (t + f.down).min(f.end);
                self.queue.push(
                    up,
                    Ev::Connect {
                        nodes: ends.clone(),
                        what: format!("flap {k} up"),
                    },
                );
                t += f.period;
            }
        }
        for c in &sc.crashes {
            self.queue.push(c.at, Ev::Crash { node: c.node });
            if let Some(r) = c.restart {
                self.queue.push(r, Ev::Restart { node: c.node });
            }
        }
    }

    pub(crate) fn crash(&mut self, n: NodeId) {
        if !self.nodes[n].is_up() {
            return;
        }
        self.nodes[n].crash();
        self.nodes[n].busy_until = self.now;
        let line = format!("{{\"t\":{},\"n\":{n},\"ev\":\"crash\"}}", self.now);
        self.trace_line(line);
    }

    pub(crate) fn restart(&mut self, n: NodeId) {
        if self.nodes[n].is_up() {
            return;
        }
        let config = self.config.clone();
        if let Err(e) = self.nodes[n].open(&config, &mut self.rng, self.signature_memo.as_ref()) {
            if self.tracing() {
                let line = format!(
                    "{{\"t\":{},\"n\":{n},\"ev\":\"restart-failed\",\"error\":{}}}",
                    self.now,
                    json_str(&e.to_string())
                );
                self.trace_line(line);
            }
            return;
        }
        let line = format!("{{\"t\":{},\"n\":{n},\"ev\":\"restart\"}}", self.now);
        self.trace_line(line);
        // The gossip log survived; what the engine had not processed yet is fed again.
        for id in self.unprocessed(n) {
            self.run_work(n, Work::Envelope(id));
        }
        self.reschedule_timer(n, false);
        if self.sc.sync.enabled && self.sc.sync.on_connect {
            self.queue.push(
                self.now + MS,
                Ev::SyncNow {
                    node: n,
                    topic: None,
                    peer: None,
                },
            );
        }
    }

    pub(crate) fn connect(&mut self, nodes: &[NodeId], what: &str) {
        if self.tracing() {
            let line = format!(
                "{{\"t\":{},\"ev\":\"connect\",\"what\":{}}}",
                self.now,
                json_str(what)
            );
            self.trace_line(line);
        }
        if !(self.sc.sync.enabled && self.sc.sync.on_connect) {
            return;
        }
        for &n in nodes {
            let delay = self.rng.uniform(0.0, 500.0 * MS as f64) as Micros;
            self.queue.push(
                self.now + delay,
                Ev::SyncNow {
                    node: n,
                    topic: None,
                    peer: None,
                },
            );
        }
    }
}
