//! The `[network]`, `[[partitions]]`, `[[flaps]]` and `[[crashes]]` sections as written.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::time::Dur;

/// A link latency distribution, in the file as an inline table with `dist`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LatencySpec {
    /// Always `ms`.
    Constant { ms: Dur },
    /// Uniform between `min` and `max`.
    Uniform { min: Dur, max: Dur },
    /// Log-normal with median `median` and shape `sigma` (0.5 is a typical WAN tail).
    Lognormal { median: Dur, sigma: f64 },
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec::Uniform {
            min: Dur::from_ms(20),
            max: Dur::from_ms(80),
        }
    }
}

/// Faults and delays of the links of the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way latency of every link (unless a `[[network.links]]` entry overrides it).
    pub latency: LatencySpec,
    /// Extra delay, uniform in `[-jitter, +jitter]`, added to every transmission.
    pub jitter: Dur,
    /// Probability that a gossip transmission is lost.
    pub loss: f64,
    /// Probability that a gossip transmission arrives twice.
    pub duplicate: f64,
    /// Probability that a transmission is held back by up to `reorder_delay` (reordering).
    pub reorder: f64,
    /// The most a reordered transmission is held back.
    pub reorder_delay: Dur,
    /// Upload bandwidth of every node in kbit/s; 0 means unlimited.
    pub bandwidth_kbps: u64,
    /// Every node's clock is off by a uniform draw in `[-max_skew, +max_skew]`.
    pub max_skew: Dur,
    /// Fixed clock offsets for named nodes, e.g. `{ n3 = "-2s" }` (wins over `max_skew`).
    pub skew: BTreeMap<String, SignedDur>,
    /// Overrides for some links.
    pub links: Vec<LinkSpec>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            latency: LatencySpec::default(),
            jitter: Dur::default(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Dur::from_ms(100),
            bandwidth_kbps: 0,
            max_skew: Dur::default(),
            skew: BTreeMap::new(),
            links: Vec::new(),
        }
    }
}

/// A signed duration (`"-2s"`), for clock offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDur(pub i64);

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Ms(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) => Ok(SignedDur(ms * 1000)),
            Raw::Text(t) => {
                let (neg, rest) = match t.trim().strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, t.trim()),
                };
                let d = crate::time::parse_duration(rest).map_err(serde::de::Error::custom)?;
                let v = d.micros() as i64;
                Ok(SignedDur(if neg { -v } else { v }))
            }
        }
    }
}

/// Different latency or loss on the links from some nodes to others (both directions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end: node selectors (`"n3"`, `"n0..n5"`, `"all"`).
    pub between: Vec<String>,
    /// The other end.
    pub and: Vec<String>,
    pub latency: Option<LatencySpec>,
    pub loss: Option<f64>,
}

/// A partition: from `start` to `heal`, only nodes on the same side hear each other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub start: Dur,
    /// When it heals; absent means never.
    pub heal: Option<Dur>,
    /// Named sides: `{ east = ["n0..n3"], west = ["n3..n6"] }`. Nodes not listed form the side
    /// `rest`.
    pub sides: BTreeMap<String, Vec<String>>,
    /// `"east->west"`: only traffic from east to west is cut (one-way); absent: both ways.
    pub one_way: Option<String>,
}

/// A flapping link: between `start` and `end`, the links between `a` and `b` are down for
/// `down` at the start of every `period`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapSpec {
    pub a: Vec<String>,
    pub b: Vec<String>,
    pub start: Dur,
    pub end: Dur,
    pub period: Dur,
    pub down: Dur,
}

/// A node crash at `at`, restarted at `restart` (absent: stays down). The node's store
/// survives; what it was doing and what was in flight to it is lost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    pub node: String,
    pub at: Dur,
    pub restart: Option<Dur>,
}
