//! Drawing one transmission's delay from a latency distribution.

use crate::rng::SimRng;
use crate::scenario::LatencySpec;
use crate::time::Micros;

/// One draw from `spec`, in µs (never negative).
pub fn sample(spec: &LatencySpec, rng: &mut SimRng) -> Micros {
    let us = match spec {
        LatencySpec::Constant { ms } => ms.micros() as f64,
        LatencySpec::Uniform { min, max } => rng.uniform(min.micros() as f64, max.micros() as f64),
        LatencySpec::Lognormal { median, sigma } => rng.lognormal(median.micros() as f64, *sigma),
    };
    us.clamp(0.0, 1e12).round() as Micros
}

/// The distribution's typical value (constant, mid-range, median), for round-trip estimates.
pub fn typical(spec: &LatencySpec) -> Micros {
    match spec {
        LatencySpec::Constant { ms } => ms.micros(),
        LatencySpec::Uniform { min, max } => (min.micros() + max.micros()) / 2,
        LatencySpec::Lognormal { median, .. } => median.micros(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Dur;

    #[test]
    fn samples_stay_in_their_distribution() {
        let mut rng = SimRng::new(7);
        let u = LatencySpec::Uniform {
            min: Dur::from_ms(10),
            max: Dur::from_ms(20),
        };
        for _ in 0..1000 {
            let s = sample(&u, &mut rng);
            assert!((10_000..20_000).contains(&s), "{s}");
        }
        let l = LatencySpec::Lognormal {
            median: Dur::from_ms(50),
            sigma: 0.5,
        };
        let mut v: Vec<Micros> = (0..2001).map(|_| sample(&l, &mut rng)).collect();
        v.sort_unstable();
        let median = v[1000] as f64;
        assert!((42_000.0..58_000.0).contains(&median), "{median}");
    }
}
