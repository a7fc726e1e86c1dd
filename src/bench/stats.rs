//! Summary statistics of repeated measurements, as hyperfine reports them:
//! mean ± sample standard deviation (Bessel's correction, n − 1), min, median,
//! max. Degenerate input is explicit: no samples gives no summary, one sample
//! gives `stddev: None` (a spread of one value does not exist), identical
//! samples give a standard deviation of 0. The median of an even count is the
//! mean of the two middle values.
use serde::{Deserialize, Serialize};

/// Summary of one quantity over the runs that count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation; None for one sample.
    pub stddev: Option<f64>,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// Summarise finite samples; None when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let stddev = (n > 1).then(|| {
            let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            n,
            mean,
            stddev,
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn one_sample_has_no_stddev() {
        let s = Summary::of(&[2.5]).unwrap();
        assert_eq!(
            (s.n, s.mean, s.stddev, s.min, s.median, s.max),
            (1, 2.5, None, 2.5, 2.5, 2.5)
        );
    }

    #[test]
    fn identical_samples_have_zero_spread() {
        let s = Summary::of(&[3.0, 3.0, 3.0]).unwrap();
        assert_eq!(s.stddev, Some(0.0));
    }

    #[test]
    fn sample_stddev_uses_n_minus_one() {
        // 2,4,4,4,5,5,7,9: mean 5, sum of squares 32, sample variance 32/7.
        let s = Summary::of(&[9.0, 2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        assert!((s.stddev.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.median, s.max), (2.0, 4.5, 9.0));
    }

    #[test]
    fn odd_count_median_is_the_middle() {
        assert_eq!(Summary::of(&[5.0, 1.0, 3.0]).unwrap().median, 3.0);
    }
}
