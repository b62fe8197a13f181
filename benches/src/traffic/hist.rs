//! A latency histogram with log-linear buckets (HdrHistogram's layout).
//!
//! Values below 2^[`SUB_BITS`] have a bucket each; above, every power of two
//! is split into 2^`SUB_BITS` equal buckets, so a bucket is at most 1/32 of
//! its value wide (~3 %). Recording is a few integer operations and one
//! increment, with no allocation: it runs on the generator's hot path.

use serde::{Deserialize, Serialize};

/// Sub-bucket bits: 32 buckets per power of two.
pub const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of values (TSC cycles) per bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0, max: 0 }
    }
}

/// The bucket of `v`.
#[inline]
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) & (SUB - 1);
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    // Bucket covers [(SUB + sub) << shift, (SUB + sub + 1) << shift).
    let end = u128::from(SUB + sub + 1) << shift;
    u64::try_from(end - 1).unwrap_or(u64::MAX)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the upper edge of the bucket that
    /// holds it, so never below the true value and at most ~3 % above it.
    /// `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    /// Summary in microseconds for a TSC of `hz`.
    pub fn summary(&self, hz: u64) -> Latency {
        let us = |v: Option<u64>| v.map(|c| c as f64 * 1e6 / hz.max(1) as f64);
        Latency {
            samples: self.total,
            p50_us: us(self.quantile(0.50)),
            p90_us: us(self.quantile(0.90)),
            p99_us: us(self.quantile(0.99)),
            p999_us: us(self.quantile(0.999)),
            max_us: us((self.total > 0).then_some(self.max)),
        }
    }
}

/// Latency percentiles in microseconds (`None` without samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_three_percent() {
        let mut prev = None;
        let mut values: Vec<u64> = (0..5000u64).chain((1..64).map(|s| 1u64 << s)).chain([u64::MAX]).collect();
        values.sort_unstable();
        for v in values {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(upper(i) >= v, "{v}: upper {}", upper(i));
            if v >= SUB {
                assert!((upper(i) - v) as f64 <= v as f64 / 32.0 + 1.0, "{v}");
            }
            if let Some(p) = prev {
                assert!(i >= p);
            }
            prev = Some(i);
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 100);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((50_000..=51_600).contains(&p50), "{p50}");
        assert!((99_000..=100_000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(100_000));
        let mut g = Histogram::new();
        g.record(7);
        g.merge(&h);
        assert_eq!(g.count(), 1001);
        assert_eq!(g.quantile(0.0), Some(7));
        let s = h.summary(1_000_000_000);
        assert!((s.p50_us.unwrap() - 50.0).abs() < 2.0);
    }
}
