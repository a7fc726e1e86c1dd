//! A predicted time as a linear combination of calibrated parameters.
//!
//! Every cost in the model is `Σ count_p · θ_p + c`, where the counts
//! (bytes, files, requests, chunks, layers…) come from the image, the trace and
//! the fetch simulator, `θ` are the profile's parameters and `c` is time known
//! without the model (compute gaps taken from the trace). Because the cost is
//! linear in `θ`, its variance is exactly `countᵀ Σ count` with `Σ` the
//! parameters' covariance (delta method without approximation), which is how
//! parameter intervals propagate to predictions.
use crate::profile::{Param, Profile};
use crate::units::{Estimate, Seconds};

const NP: usize = Param::ALL.len();

/// Normal quantile for the two-sided 95 % interval of predictions.
const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    counts: [f64; NP],
    /// Time known without the model (compute gaps).
    pub constant_s: Seconds,
}

impl Default for Cost {
    fn default() -> Self {
        Cost {
            counts: [0.0; NP],
            constant_s: Seconds::ZERO,
        }
    }
}

impl Cost {
    pub fn zero() -> Self {
        Cost::default()
    }

    /// `amount` units of parameter `p` (e.g. 4096 bytes of `RangeSPerByte`).
    pub fn of(p: Param, amount: f64) -> Self {
        let mut c = Cost::default();
        c.counts[p.index()] = amount;
        c
    }

    pub fn seconds(s: f64) -> Self {
        Cost {
            counts: [0.0; NP],
            constant_s: Seconds(s),
        }
    }

    pub fn add(&mut self, p: Param, amount: f64) {
        self.counts[p.index()] += amount;
    }

    pub fn add_cost(&mut self, other: &Cost) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.constant_s += other.constant_s;
    }

    pub fn count(&self, p: Param) -> f64 {
        self.counts[p.index()]
    }

    /// Point value with the profile's parameters.
    pub fn value(&self, profile: &Profile) -> f64 {
        self.constant_s.0
            + Param::ALL
                .iter()
                .map(|&p| self.counts[p.index()] * profile.value(p))
                .sum::<f64>()
    }

    /// Value with a 95 % interval propagated from the parameters' covariance.
    pub fn estimate(&self, profile: &Profile) -> Estimate {
        let value = self.value(profile);
        let mut var = 0.0;
        for &a in &Param::ALL {
            let ca = self.counts[a.index()];
            if ca == 0.0 {
                continue;
            }
            for &b in &Param::ALL {
                let cb = self.counts[b.index()];
                if cb != 0.0 {
                    var += ca * cb * profile.covariance(a, b);
                }
            }
        }
        let h = Z95 * var.max(0.0).sqrt();
        Estimate::new(value, (value - h).max(0.0), value + h, 0.95)
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(mut self, o: Cost) -> Cost {
        self.add_cost(&o);
        self
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(it: I) -> Cost {
        it.fold(Cost::zero(), |a, b| a + b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::{FitQuality, NodeFacts, PROFILE_SCHEMA, ParamEstimate, Profile};
    use std::collections::BTreeMap;

    /// A profile for unit tests: every parameter `value` with standard error
    /// `rel·value`; RequestS and RangeSPerByte share a fit with correlation `rho`.
    pub(crate) fn test_profile(values: &[(Param, f64)], rel: f64, rho: f64) -> Profile {
        let mut parameters = BTreeMap::new();
        let given = |p: Param| values.iter().find(|(q, _)| *q == p).map(|x| x.1);
        let prefetch = |p: Param| {
            crate::profile::PREFETCH_FALLBACK
                .iter()
                .any(|(q, _)| *q == p)
        };
        for &p in &Param::ALL {
            // Prefetch terms not given take the on-demand ones, as in an old
            // profile (filled below by the profile's own fallback).
            if prefetch(p) && given(p).is_none() {
                continue;
            }
            let v = given(p).unwrap_or(0.0);
            let se = rel * v;
            let fit = if matches!(p, Param::RequestS | Param::RangeSPerByte) {
                "lazy-io"
            } else {
                p.name()
            };
            parameters.insert(
                p,
                ParamEstimate {
                    estimate: Estimate::new(v, v - 1.96 * se, v + 1.96 * se, 0.95),
                    std_error: se,
                    unit: p.unit().into(),
                    fit: fit.into(),
                },
            );
        }
        crate::profile::fill_fallbacks(&mut parameters);
        let sr = parameters[&Param::RequestS].std_error;
        let sb = parameters[&Param::RangeSPerByte].std_error;
        let mut fits = BTreeMap::new();
        fits.insert(
            "lazy-io".to_string(),
            FitQuality {
                description: "test".into(),
                n: 10,
                r2: 1.0,
                residual_sd_s: Seconds::ZERO,
                params: vec![Param::RequestS, Param::RangeSPerByte],
                covariance: vec![vec![sr * sr, rho * sr * sb], vec![rho * sr * sb, sb * sb]],
            },
        );
        Profile {
            schema: PROFILE_SCHEMA.into(),
            created: "test".into(),
            advisor_version: "test".into(),
            node: NodeFacts::default(),
            parameters,
            fits,
            validation: None,
            runs_file: None,
            workload_terms: BTreeMap::new(),
        }
    }

    #[test]
    fn value_is_the_linear_combination_plus_constant() {
        let prof = test_profile(
            &[(Param::RequestS, 0.002), (Param::RangeSPerByte, 1e-9)],
            0.1,
            0.0,
        );
        let c = Cost::of(Param::RequestS, 10.0)
            + Cost::of(Param::RangeSPerByte, 1e9)
            + Cost::seconds(0.5);
        assert!((c.value(&prof) - (0.02 + 1.0 + 0.5)).abs() < 1e-12);
    }

    #[test]
    fn interval_uses_covariance_within_a_fit() {
        let base = [(Param::RequestS, 0.002), (Param::RangeSPerByte, 1e-9)];
        let c = Cost::of(Param::RequestS, 100.0) + Cost::of(Param::RangeSPerByte, 2e8);
        let indep = c.estimate(&test_profile(&base, 0.1, 0.0));
        let neg = c.estimate(&test_profile(&base, 0.1, -0.9));
        let pos = c.estimate(&test_profile(&base, 0.1, 0.9));
        let w = |e: Estimate| e.high - e.low;
        assert!(w(neg) < w(indep) && w(indep) < w(pos));
        // Independent: sd = sqrt((100·0.0002)² + (2e8·1e-10)²) = sqrt(0.0004 + 0.0004)
        let sd = (0.0008f64).sqrt();
        assert!((indep.high - indep.value - 1.959_963_984_540_054 * sd).abs() < 1e-9);
    }

    #[test]
    fn constant_only_cost_has_zero_width() {
        let prof = test_profile(&[], 0.1, 0.0);
        let e = Cost::seconds(3.0).estimate(&prof);
        assert_eq!((e.low, e.value, e.high), (3.0, 3.0, 3.0));
    }
}
