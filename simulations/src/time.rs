//! Virtual time: microseconds since the start of a run. Scenario files write durations as
//! `"250ms"`, `"10s"`, `"5m"`, `"1h"`, `"1.5s"` or a bare number of milliseconds.

use std::fmt;

use serde::{Deserialize, Deserializer, de};

/// A point in virtual time or a duration, in microseconds.
pub type Micros = u64;

/// Microseconds per millisecond.
pub const MS: Micros = 1_000;
/// Microseconds per second.
pub const SEC: Micros = 1_000_000;

/// A duration read from a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Micros);

impl Dur {
    /// Milliseconds.
    pub const fn from_ms(ms: u64) -> Self {
        Dur(ms * MS)
    }

    /// Seconds.
    pub const fn from_secs(s: u64) -> Self {
        Dur(s * SEC)
    }

    /// The duration in microseconds.
    pub fn micros(self) -> Micros {
        self.0
    }

    /// The duration in whole milliseconds.
    pub fn ms(self) -> u64 {
        self.0 / MS
    }
}

/// Parses `"250ms"`, `"10s"`, `"1.5m"`, `"1h"`, `"300us"` or `"42"` (milliseconds).
pub fn parse_duration(text: &str) -> Result<Dur, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try \"250ms\", \"10s\", \"5m\")"))?;
    let scale = match unit.trim() {
        "" | "ms" => MS as f64,
        "us" => 1.0,
        "s" => SEC as f64,
        "m" | "min" => 60.0 * SEC as f64,
        "h" => 3600.0 * SEC as f64,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (us, ms, s, m, h)"
            ));
        }
    };
    let micros = value * scale;
    if !(0.0..=1e15).contains(&micros) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Dur(micros.round() as u64))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\", \"10s\", \"5m\" or milliseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(Dur::from_ms)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur::from_ms(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                parse_duration(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.0, f)
    }
}

fn fmt_micros(us: Micros, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if us.is_multiple_of(SEC) {
        write!(f, "{}s", us / SEC)
    } else if us.is_multiple_of(MS) {
        write!(f, "{}ms", us / MS)
    } else {
        write!(f, "{}us", us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Dur(250 * MS)));
        assert_eq!(parse_duration("10s"), Ok(Dur(10 * SEC)));
        assert_eq!(parse_duration("1.5s"), Ok(Dur(1_500 * MS)));
        assert_eq!(parse_duration("2m"), Ok(Dur(120 * SEC)));
        assert_eq!(parse_duration("1h"), Ok(Dur(3600 * SEC)));
        assert_eq!(parse_duration("42"), Ok(Dur(42 * MS)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
