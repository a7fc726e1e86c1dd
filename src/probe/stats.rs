//! Summaries of timing samples: median and the 10th and 90th percentiles.
//!
//! Method: the linear interpolation between closest ranks of Hyndman & Fan
//! (1996), definition 7 — numpy's and R's default: for sorted samples
//! `x[0..n]` and probability `p`, `h = (n − 1)·p` and the quantile is
//! `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. The median (`p = 0.5`) is the
//! middle sample, or the mean of the middle two. Degenerate input is handled
//! explicitly: no samples have no quantiles (None), one sample is every
//! quantile, equal samples give zero spread. Non-finite samples are refused.
use crate::units::Seconds;
use serde::{Deserialize, Serialize};

/// Lower percentile reported beside the median.
pub const P_LOW: f64 = 0.10;
/// Upper percentile reported beside the median.
pub const P_HIGH: f64 = 0.90;

/// Median and spread of timing samples, with how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: Seconds,
    pub p10: Seconds,
    pub p90: Seconds,
    pub samples: usize,
}

/// The `p`-quantile (0 ≤ p ≤ 1) of `xs`, Hyndman & Fan definition 7; None for
/// no samples, a non-finite sample or `p` outside [0, 1].
pub fn quantile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() || !(0.0..=1.0).contains(&p) || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    Some(v[lo] + (h - lo as f64) * (v[hi] - v[lo]))
}

/// Median, p10 and p90 of durations in seconds; None for no (or non-finite) samples.
pub fn spread(xs: &[f64]) -> Option<Spread> {
    Some(Spread {
        median: Seconds(quantile(xs, 0.5)?),
        p10: Seconds(quantile(xs, P_LOW)?),
        p90: Seconds(quantile(xs, P_HIGH)?),
        samples: xs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let xs: Vec<f64> = (1..=11).map(f64::from).collect(); // 1..11
        assert_eq!(quantile(&xs, 0.5), Some(6.0));
        assert_eq!(quantile(&xs, 0.1), Some(2.0));
        assert_eq!(quantile(&xs, 0.9), Some(10.0));
        // numpy.percentile([4, 1, 3, 2], [10, 50, 90]) = [1.3, 2.5, 3.7]
        let ys = [4.0, 1.0, 3.0, 2.0];
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(quantile(&ys, 0.1), 1.3));
        assert!(close(quantile(&ys, 0.5), 2.5));
        assert!(close(quantile(&ys, 0.9), 3.7));
        assert_eq!(quantile(&ys, 0.0), Some(1.0));
        assert_eq!(quantile(&ys, 1.0), Some(4.0));
    }

    #[test]
    fn median_agrees_with_units_median() {
        let xs = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4];
        assert_eq!(quantile(&xs, 0.5), Some(crate::units::median(&xs)));
    }

    #[test]
    fn degenerate_samples() {
        assert_eq!(spread(&[]), None);
        let one = spread(&[0.004]).unwrap();
        assert_eq!(
            (one.median, one.p10, one.p90),
            (Seconds(0.004), Seconds(0.004), Seconds(0.004))
        );
        assert_eq!(one.samples, 1);
        let same = spread(&[0.002; 7]).unwrap();
        assert_eq!(same.p90.0 - same.p10.0, 0.0);
        assert_eq!(spread(&[0.1, f64::NAN]), None);
        assert_eq!(quantile(&[1.0], 1.5), None);
    }
}
