//! The network model: which links are cut (partitions, flapping links), and what happens to
//! one transmission on a link that is up — latency, jitter, loss, duplication, reordering, and
//! the sender's upload bandwidth.
//!
//! - [`latency`]: the delay distributions.
//! - this file: [`Network`], asked once per transmission.

pub mod latency;

use crate::rng::SimRng;
use crate::scenario::{NodeId, Scenario};
use crate::time::Micros;

/// What happens to one transmission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The link is cut (partition, flap).
    Cut,
    /// Lost on the way.
    Lost,
    /// Arrives at these instants (two when duplicated).
    Arrives(Vec<Micros>),
}

/// The modelled network of one run.
pub struct Network {
    scenario: Scenario,
    /// When each node's uplink is free again (bandwidth).
    uplink_free: Vec<Micros>,
}

impl Network {
    /// The network of `scenario`.
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            scenario: scenario.clone(),
            uplink_free: vec![0; scenario.nodes],
        }
    }

    /// True when traffic from `a` to `b` is cut at `now`.
    pub fn cut(&self, now: Micros, a: NodeId, b: NodeId) -> bool {
        for p in &self.scenario.partitions {
            let active = now >= p.start && p.heal.is_none_or(|h| now < h);
            if !active {
                continue;
            }
            let (sa, sb) = (p.side_of[a], p.side_of[b]);
            if sa == sb {
                continue;
            }
            match p.one_way {
                None => return true,
                Some((from, to)) if sa == from && sb == to => return true,
                Some(_) => {}
            }
        }
        for f in &self.scenario.flaps {
            let on_link =
                (f.a.contains(&a) && f.b.contains(&b)) || (f.a.contains(&b) && f.b.contains(&a));
            if on_link && now >= f.start && now < f.end && (now - f.start) % f.period < f.down {
                return true;
            }
        }
        false
    }

    /// True when `a` and `b` can talk both ways at `now` (a connection exists).
    pub fn connected(&self, now: Micros, a: NodeId, b: NodeId) -> bool {
        !self.cut(now, a, b) && !self.cut(now, b, a)
    }

    fn link_override(&self, a: NodeId, b: NodeId) -> Option<&crate::scenario::Link> {
        self.scenario.links.iter().rev().find(|l| {
            (l.a.contains(&a) && l.b.contains(&b)) || (l.a.contains(&b) && l.b.contains(&a))
        })
    }

    /// A one-way delay from `a` to `b` (latency and jitter, no faults).
    pub fn delay(&self, a: NodeId, b: NodeId, rng: &mut SimRng) -> Micros {
        let spec = self
            .link_override(a, b)
            .and_then(|l| l.latency.as_ref())
            .unwrap_or(&self.scenario.network.latency);
        let base = latency::sample(spec, rng) as i64;
        let j = self.scenario.network.jitter.micros() as f64;
        let jitter = if j > 0.0 {
            rng.uniform(-j, j).round() as i64
        } else {
            0
        };
        (base + jitter).max(0) as Micros
    }

    /// The typical round trip between `a` and `b`.
    pub fn typical_rtt(&self, a: NodeId, b: NodeId) -> Micros {
        let spec = self
            .link_override(a, b)
            .and_then(|l| l.latency.as_ref())
            .unwrap_or(&self.scenario.network.latency);
        2 * latency::typical(spec)
    }

    /// Time `bytes` occupy `from`'s uplink, starting at `now`: returns when they are sent.
    fn upload(&mut self, from: NodeId, now: Micros, bytes: usize) -> Micros {
        let kbps = self.scenario.network.bandwidth_kbps;
        if kbps == 0 {
            return now;
        }
        // bits / (kbit/s) = ms; in µs: bytes * 8 * 1000 / kbps.
        let busy = (bytes as u64 * 8 * 1000).div_ceil(kbps);
        let start = now.max(self.uplink_free[from]);
        self.uplink_free[from] = start + busy;
        start + busy
    }

    /// What happens to `bytes` sent from `a` to `b` at `now` by gossip (lossy: `reliable` is
    /// false) or by a sync stream (`reliable`: no loss, duplication or reordering, as TCP /
    /// QUIC retransmit; cuts still apply).
    pub fn transmit(
        &mut self,
        now: Micros,
        a: NodeId,
        b: NodeId,
        bytes: usize,
        reliable: bool,
        rng: &mut SimRng,
    ) -> Fate {
        if self.cut(now, a, b) {
            return Fate::Cut;
        }
        let sent = self.upload(a, now, bytes);
        if reliable {
            return Fate::Arrives(vec![sent + self.delay(a, b, rng)]);
        }
        let net = &self.scenario.network;
        let loss = self
            .link_override(a, b)
            .and_then(|l| l.loss)
            .unwrap_or(net.loss);
        let (dup, reorder, reorder_delay) =
            (net.duplicate, net.reorder, net.reorder_delay.micros());
        if rng.chance(loss) {
            return Fate::Lost;
        }
        let mut arrivals = vec![sent + self.delay(a, b, rng)];
        if rng.chance(dup) {
            arrivals.push(sent + self.delay(a, b, rng));
        }
        for t in &mut arrivals {
            if rng.chance(reorder) {
                *t += rng.uniform(0.0, reorder_delay as f64) as Micros;
            }
        }
        Fate::Arrives(arrivals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SEC;

    fn scenario(extra: &str) -> Scenario {
        let text = format!("duration = \"1m\"\nnodes = 4\n{extra}");
        Scenario::parse("t", &text).unwrap()
    }

    #[test]
    fn partitions_cut_between_sides_until_heal() {
        let s = scenario(
            "[[partitions]]\nstart = \"10s\"\nheal = \"20s\"\nsides = { a = [\"n0\", \"n1\"] }\n",
        );
        let net = Network::new(&s);
        assert!(!net.cut(5 * SEC, 0, 2));
        assert!(net.cut(10 * SEC, 0, 2));
        assert!(net.cut(15 * SEC, 3, 1));
        assert!(!net.cut(15 * SEC, 0, 1));
        assert!(!net.cut(15 * SEC, 2, 3));
        assert!(!net.cut(20 * SEC, 0, 2));
    }

    #[test]
    fn one_way_partitions_cut_one_direction() {
        let s = scenario(
            "[[partitions]]\nstart = \"0s\"\nsides = { a = [\"n0\"] }\none_way = \"a->rest\"\n",
        );
        let net = Network::new(&s);
        assert!(net.cut(SEC, 0, 1));
        assert!(!net.cut(SEC, 1, 0));
        assert!(!net.connected(SEC, 1, 0));
    }

    #[test]
    fn flapping_links_go_down_periodically() {
        let s = scenario(
            "[[flaps]]\na = [\"n0\"]\nb = [\"n1\"]\nstart = \"10s\"\nend = \"40s\"\nperiod = \"10s\"\ndown = \"3s\"\n",
        );
        let net = Network::new(&s);
        assert!(net.cut(11 * SEC, 0, 1));
        assert!(net.cut(11 * SEC, 1, 0));
        assert!(!net.cut(14 * SEC, 0, 1));
        assert!(net.cut(22 * SEC, 0, 1));
        assert!(!net.cut(22 * SEC, 0, 2));
        assert!(!net.cut(41 * SEC, 0, 1));
    }

    #[test]
    fn loss_and_duplication_follow_their_rates() {
        let s = scenario("[network]\nloss = 0.2\nduplicate = 0.1\n");
        let mut net = Network::new(&s);
        let mut rng = SimRng::new(3);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.transmit(0, 0, 1, 100, false, &mut rng) {
                Fate::Lost => lost += 1,
                Fate::Arrives(v) if v.len() == 2 => dup += 1,
                _ => {}
            }
        }
        assert!((1800..2200).contains(&lost), "{lost}");
        assert!((650..950).contains(&dup), "{dup}");
        for _ in 0..100 {
            assert!(
                matches!(net.transmit(0, 0, 1, 100, true, &mut rng), Fate::Arrives(v) if v.len() == 1)
            );
        }
    }

    #[test]
    fn bandwidth_queues_uploads() {
        let s =
            scenario("[network]\nbandwidth_kbps = 8\nlatency = { dist = \"constant\", ms = 0 }\n");
        let mut net = Network::new(&s);
        let mut rng = SimRng::new(1);
        // 1000 bytes at 8 kbit/s take one second each.
        assert_eq!(
            net.transmit(0, 0, 1, 1000, false, &mut rng),
            Fate::Arrives(vec![SEC])
        );
        assert_eq!(
            net.transmit(0, 0, 2, 1000, false, &mut rng),
            Fate::Arrives(vec![2 * SEC])
        );
    }
}
