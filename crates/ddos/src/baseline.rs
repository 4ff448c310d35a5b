//! The learned baseline: per hour of the week, an exponentially weighted moving average of a
//! target's packet rate and of its absolute deviation from that average.

use crate::config::BaselineConfig;

/// Hours in a week: the number of buckets.
pub(crate) const BUCKETS: usize = 168;

/// The hour of the week (0 = Monday 00:00-01:00 UTC) of a Unix time in milliseconds.
/// 1970-01-01 was a Thursday, 72 hours after a Monday midnight.
pub(crate) fn hour_of_week(ms: u64) -> usize {
    ((ms / 3_600_000 + 72) % BUCKETS as u64) as usize
}

/// One hour-of-week bucket. `f32` keeps a host's baseline at 2 KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    mean: f32,
    deviation: f32,
    samples: u32,
}

/// The baseline parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    alpha: f32,
    k: f32,
    floor_pps: u64,
    min_samples: u32,
}

impl Params {
    /// `None` when `alpha` is outside (0, 1] or `k` is negative or not finite.
    pub fn new(config: &BaselineConfig) -> Option<Params> {
        let ok = config.alpha > 0.0 && config.alpha <= 1.0 && config.k.is_finite() && config.k >= 0.0;
        ok.then_some(Params {
            alpha: config.alpha as f32,
            k: config.k as f32,
            floor_pps: config.floor_pps,
            min_samples: config.min_samples,
        })
    }
}

/// The learned normal of one target.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    buckets: Box<[Bucket]>,
}

impl Baseline {
    /// Nothing learned yet.
    pub fn new() -> Baseline {
        Baseline { buckets: vec![Bucket::default(); BUCKETS].into_boxed_slice() }
    }

    fn bucket(&mut self, ms: u64) -> &mut Bucket {
        let i = hour_of_week(ms);
        &mut self.buckets[i]
    }

    /// Learns the rate `pps` of the window that started at `ms`. The first sample of a bucket
    /// sets its mean; later ones move the mean and the deviation by `alpha`.
    pub fn learn(&mut self, params: &Params, ms: u64, pps: u64) {
        let x = pps as f32;
        let b = self.bucket(ms);
        if b.samples == 0 {
            b.mean = x;
            b.deviation = 0.0;
        } else {
            let distance = (x - b.mean).abs();
            b.mean += params.alpha * (x - b.mean);
            b.deviation += params.alpha * (distance - b.deviation);
        }
        b.samples = b.samples.saturating_add(1);
    }

    /// The rate above which the window starting at `ms` is anomalous, or `None` while its
    /// bucket has learned fewer than `min_samples` windows.
    pub fn limit(&self, params: &Params, ms: u64) -> Option<u64> {
        let b = &self.buckets[hour_of_week(ms)];
        if b.samples < params.min_samples.max(1) {
            return None;
        }
        let learned = f64::from(b.mean) + f64::from(params.k) * f64::from(b.deviation);
        Some((learned.ceil() as u64).max(params.floor_pps))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_week_starts_on_monday() {
        assert_eq!(hour_of_week(0), 72); // Thursday 1970-01-01 00:00
        assert_eq!(hour_of_week(1_704_067_200_000), 0); // Monday 2024-01-01 00:00 UTC
        assert_eq!(hour_of_week(1_704_067_200_000 + 167 * 3_600_000 + 59_000), 167);
        assert_eq!(hour_of_week(1_704_067_200_000 + 168 * 3_600_000), 0);
    }

    #[test]
    fn learns_mean_and_deviation_and_waits_for_samples() {
        let config = BaselineConfig { alpha: 0.1, k: 3.0, floor_pps: 50, min_samples: 20, ..BaselineConfig::default() };
        let p = Params::new(&config).unwrap();
        let mut b = Baseline::new();
        let t = 1_704_067_200_000;
        for i in 0..200u64 {
            assert_eq!(b.limit(&p, t).is_some(), i >= 20);
            b.learn(&p, t + i, if i % 2 == 0 { 90 } else { 110 });
        }
        let limit = b.limit(&p, t).unwrap();
        assert!((125..=135).contains(&limit), "{limit}"); // about 100 + 3 * 10
        assert_eq!(b.limit(&p, t + 3_600_000), None, "another hour has learned nothing");
        let high_floor = Params::new(&BaselineConfig { floor_pps: 1000, ..config.clone() }).unwrap();
        assert_eq!(b.limit(&high_floor, t), Some(1000));
        assert!(Params::new(&BaselineConfig { alpha: 0.0, ..config.clone() }).is_none());
        assert!(Params::new(&BaselineConfig { k: f64::NAN, ..config }).is_none());
    }
}
