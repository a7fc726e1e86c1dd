//! Regressions with confidence intervals for calibration.
//!
//! Method: ordinary least squares by Householder QR on columns scaled to unit
//! RMS for conditioning; the coefficient covariance is `σ² (XᵀX)⁻¹` with `σ²`
//! the residual variance on `n − p` degrees of freedom (nalgebra for both),
//! and intervals are Student-t (statrs) at the requested level.
//! Physical parameters cannot be negative, so [`fit_nonnegative`] runs an
//! active-set loop: the most negative coefficient is fixed at 0 and the rest
//! refitted, until none is negative (Lawson–Hanson in its simplest form). A
//! fixed coefficient keeps the upper bound of its unconstrained interval.
//!
//! Degenerate input (fewer runs than unknowns, a constant or collinear
//! column, zero residual variance) is reported as an error or handled
//! explicitly, never as NaN.
use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Default confidence level of intervals.
pub const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coefficient {
    pub name: String,
    pub value: f64,
    pub std_error: f64,
    pub low: f64,
    pub high: f64,
    /// Fixed at 0 by the non-negativity constraint.
    #[serde(default)]
    pub clamped: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fit {
    /// Intercept first (when fitted), then the columns in order.
    pub coefficients: Vec<Coefficient>,
    pub r2: f64,
    pub residual_sd: f64,
    pub n: usize,
    /// Covariance of the coefficients, same order; clamped ones have zero rows.
    pub covariance: Vec<Vec<f64>>,
}

impl Fit {
    pub fn get(&self, name: &str) -> Option<&Coefficient> {
        self.coefficients.iter().find(|c| c.name == name)
    }

    /// Prediction for one row of features (without intercept column) and its
    /// standard error from the coefficient covariance.
    pub fn predict(&self, intercept: bool, row: &[f64]) -> (f64, f64) {
        let x: Vec<f64> = if intercept {
            std::iter::once(1.0).chain(row.iter().copied()).collect()
        } else {
            row.to_vec()
        };
        let value = x
            .iter()
            .zip(&self.coefficients)
            .map(|(a, c)| a * c.value)
            .sum();
        let mut var = 0.0;
        for (i, xi) in x.iter().enumerate() {
            for (j, xj) in x.iter().enumerate() {
                var += xi * xj * self.covariance[i][j];
            }
        }
        (value, var.max(0.0).sqrt())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error(
        "fit `{fit}`: {n} runs for {p} unknowns; need at least {need} (run a longer calibration)"
    )]
    TooFewRuns {
        fit: String,
        n: usize,
        p: usize,
        need: usize,
    },
    #[error(
        "fit `{fit}`: column `{column}` does not vary across runs, so it cannot be estimated (widen the calibration matrix)"
    )]
    Constant { fit: String, column: String },
    #[error(
        "fit `{fit}`: the columns are collinear; the calibration matrix does not separate them"
    )]
    Collinear { fit: String },
    #[error("fit `{fit}`: {detail}")]
    Solver { fit: String, detail: String },
}

impl FitError {
    /// Too few runs is fixed by calibrating longer (exit 1); the others are
    /// flaws of the calibration matrix (a bug, exit 2).
    pub fn is_user_facing(&self) -> bool {
        matches!(self, FitError::TooFewRuns { .. })
    }
}

/// Two-sided Student-t quantile for `confidence` with `dof` degrees of freedom.
pub fn t_quantile(confidence: f64, dof: usize) -> f64 {
    let dof = dof.max(1) as f64;
    StudentsT::new(0.0, 1.0, dof)
        .map(|t| t.inverse_cdf(0.5 + confidence / 2.0))
        .unwrap_or(1.96)
}

/// Mean with a Student-t interval. One sample gives an interval of zero width
/// and `std_error` NaN-free 0; callers must require n ≥ 2 for a real interval.
pub fn mean_interval(name: &str, samples: &[f64], confidence: f64) -> Coefficient {
    let n = samples.len();
    let mean = if n == 0 {
        0.0
    } else {
        samples.iter().sum::<f64>() / n as f64
    };
    if n < 2 {
        return Coefficient {
            name: name.into(),
            value: mean,
            std_error: 0.0,
            low: mean,
            high: mean,
            clamped: false,
        };
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let h = t_quantile(confidence, n - 1) * se;
    Coefficient {
        name: name.into(),
        value: mean,
        std_error: se,
        low: mean - h,
        high: mean + h,
        clamped: false,
    }
}

/// Ordinary least squares of `y` on `x` (rows = runs) with optional intercept.
pub fn fit_ols(
    fit: &str,
    names: &[&str],
    x: &[Vec<f64>],
    y: &[f64],
    intercept: bool,
    confidence: f64,
) -> Result<Fit, FitError> {
    let n = y.len();
    let p = names.len() + usize::from(intercept);
    check_shape(fit, names, x, n, p)?;
    let (design, scale) = scaled_design(fit, names, x, intercept)?;
    let xtx_inv = checked_inverse(fit, &design)?;
    let beta_scaled = least_squares(fit, &design, y)?;

    let fitted = &design * &beta_scaled;
    let rss: f64 = y
        .iter()
        .zip(fitted.iter())
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let ymean = y.iter().sum::<f64>() / n as f64;
    let tss: f64 = if intercept {
        y.iter().map(|v| (v - ymean).powi(2)).sum()
    } else {
        y.iter().map(|v| v * v).sum()
    };
    let dof = n - p;
    let sigma2 = rss / dof as f64;
    let r2 = if tss > 0.0 { 1.0 - rss / tss } else { 1.0 };
    let t = t_quantile(confidence, dof);
    let scaled = Scaled {
        names,
        intercept,
        scale: &scale,
        beta: beta_scaled.as_slice(),
        xtx_inv: &xtx_inv,
        sigma2,
    };
    let (coefficients, covariance) = scaled.unscale(t);
    Ok(Fit {
        coefficients,
        r2,
        residual_sd: sigma2.sqrt(),
        n,
        covariance,
    })
}

/// As many feature rows as runs, each as long as `names`; at least `p + 2` runs.
fn check_shape(
    fit: &str,
    names: &[&str],
    x: &[Vec<f64>],
    n: usize,
    p: usize,
) -> Result<(), FitError> {
    if x.len() != n || x.iter().any(|r| r.len() != names.len()) {
        return Err(FitError::Solver {
            fit: fit.into(),
            detail: format!(
                "{} rows of features for {n} runs, {} names (a bug)",
                x.len(),
                names.len()
            ),
        });
    }
    if n < p + 2 {
        return Err(FitError::TooFewRuns {
            fit: fit.into(),
            n,
            p,
            need: p + 2,
        });
    }
    Ok(())
}

/// The design matrix (intercept column of ones first, when fitted) with every
/// feature column scaled to unit RMS so bytes (1e9) and counts (1e2) condition
/// alike, and the scales. A column that is 0, or constant beside an
/// intercept, is an error.
fn scaled_design(
    fit: &str,
    names: &[&str],
    x: &[Vec<f64>],
    intercept: bool,
) -> Result<(DMatrix<f64>, Vec<f64>), FitError> {
    let n = x.len();
    let mut scale = vec![1.0; names.len()];
    for (j, s) in scale.iter_mut().enumerate() {
        let rms = (x.iter().map(|r| r[j] * r[j]).sum::<f64>() / n as f64).sqrt();
        let min = x.iter().map(|r| r[j]).fold(f64::INFINITY, f64::min);
        let max = x.iter().map(|r| r[j]).fold(f64::NEG_INFINITY, f64::max);
        if rms == 0.0 || (intercept && (max - min).abs() <= 1e-12 * rms) {
            return Err(FitError::Constant {
                fit: fit.into(),
                column: names[j].into(),
            });
        }
        *s = rms;
    }
    let c = usize::from(intercept);
    let design = DMatrix::from_fn(n, names.len() + c, |i, k| {
        if k < c {
            1.0
        } else {
            x[i][k - c] / scale[k - c]
        }
    });
    Ok((design, scale))
}

/// `(XᵀX)⁻¹` of the scaled design, refused when XᵀX is singular or nearly so
/// (a nearly singular XᵀX gives a meaningless fit).
fn checked_inverse(fit: &str, design: &DMatrix<f64>) -> Result<DMatrix<f64>, FitError> {
    let xtx = design.transpose() * design;
    let xtx_inv = xtx
        .clone()
        .try_inverse()
        .ok_or_else(|| FitError::Collinear { fit: fit.into() })?;
    let eig = xtx.symmetric_eigenvalues();
    let (emin, emax) = eig.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &e| {
        (a.min(e), b.max(e.abs()))
    });
    if emin <= emax * 1e-12 {
        return Err(FitError::Collinear { fit: fit.into() });
    }
    Ok(xtx_inv)
}

/// The least-squares coefficients of the scaled design by Householder QR
/// (`R β = Qᵀ y`), never by forming the normal equations.
fn least_squares(fit: &str, design: &DMatrix<f64>, y: &[f64]) -> Result<DVector<f64>, FitError> {
    let p = design.ncols();
    let qr = design.clone().qr();
    let mut qty = DVector::from_column_slice(y);
    qr.q_tr_mul(&mut qty);
    let beta = qr
        .r()
        .solve_upper_triangular(&qty.rows(0, p))
        .ok_or_else(|| FitError::Collinear { fit: fit.into() })?;
    if beta.iter().all(|b| b.is_finite()) {
        Ok(beta)
    } else {
        Err(FitError::Solver {
            fit: fit.into(),
            detail: "the least-squares solution is not finite".into(),
        })
    }
}

/// A fit in scaled units, to be brought back to the columns' own units.
struct Scaled<'a> {
    names: &'a [&'a str],
    intercept: bool,
    scale: &'a [f64],
    beta: &'a [f64],
    xtx_inv: &'a DMatrix<f64>,
    sigma2: f64,
}

impl Scaled<'_> {
    /// Scale of coefficient `k` (1 for the intercept).
    fn scale_of(&self, k: usize) -> f64 {
        if self.intercept && k == 0 {
            1.0
        } else {
            self.scale[k - usize::from(self.intercept)]
        }
    }

    /// Unscale: β_j = β'_j / s_j; cov_jk = σ² (XᵀX)⁻¹_jk / (s_j s_k); intervals
    /// β ± t·se.
    fn unscale(&self, t: f64) -> (Vec<Coefficient>, Vec<Vec<f64>>) {
        let p = self.beta.len();
        let covariance: Vec<Vec<f64>> = (0..p)
            .map(|k| {
                (0..p)
                    .map(|l| {
                        self.sigma2 * self.xtx_inv[(k, l)] / (self.scale_of(k) * self.scale_of(l))
                    })
                    .collect()
            })
            .collect();
        let coefficients = (0..p)
            .map(|k| {
                let name = if self.intercept && k == 0 {
                    "intercept".to_string()
                } else {
                    self.names[k - usize::from(self.intercept)].to_string()
                };
                let value = self.beta[k] / self.scale_of(k);
                let se = covariance[k][k].max(0.0).sqrt();
                Coefficient {
                    name,
                    value,
                    std_error: se,
                    low: value - t * se,
                    high: value + t * se,
                    clamped: false,
                }
            })
            .collect();
        (coefficients, covariance)
    }
}

/// OLS with every coefficient constrained to be ≥ 0 (see the module doc).
pub fn fit_nonnegative(
    fit: &str,
    names: &[&str],
    x: &[Vec<f64>],
    y: &[f64],
    intercept: bool,
    confidence: f64,
) -> Result<Fit, FitError> {
    let mut active: Vec<usize> = (0..names.len()).collect();
    let mut clamped: Vec<(usize, f64)> = Vec::new(); // column, unconstrained upper bound
    let mut intercept_on = intercept;
    // Upper bound of the intercept when it was dropped (its unconstrained interval's top).
    let mut intercept_high = 0.0;
    loop {
        let sub_names: Vec<&str> = active.iter().map(|&j| names[j]).collect();
        let sub_x: Vec<Vec<f64>> = x
            .iter()
            .map(|r| active.iter().map(|&j| r[j]).collect())
            .collect();
        let f = if sub_names.is_empty() {
            None
        } else {
            Some(fit_ols(
                fit,
                &sub_names,
                &sub_x,
                y,
                intercept_on,
                confidence,
            )?)
        };
        let worst = f.as_ref().and_then(|f| {
            f.coefficients
                .iter()
                .enumerate()
                .filter(|(_, c)| c.value < 0.0)
                .min_by(|a, b| a.1.value.total_cmp(&b.1.value))
                .map(|(k, c)| (k, c.high))
        });
        match (f, worst) {
            (Some(f), None) => {
                return Ok(assemble(
                    names,
                    (intercept, intercept_on, intercept_high),
                    &active,
                    &clamped,
                    f,
                ));
            }
            (Some(_), Some((k, high))) => {
                if intercept_on && k == 0 {
                    // A negative intercept: the fixed cost is not there; drop it.
                    intercept_on = false;
                    intercept_high = high.max(0.0);
                } else {
                    let col = active.remove(k - usize::from(intercept_on));
                    clamped.push((col, high.max(0.0)));
                }
            }
            (None, _) => {
                return Err(FitError::Solver {
                    fit: fit.into(),
                    detail: "every coefficient was clamped to 0".into(),
                });
            }
        }
    }
}

/// The full model's fit from the active sub-fit: clamped coefficients are 0
/// with the top of their unconstrained interval as upper bound.
fn assemble(
    names: &[&str],
    (intercept, intercept_on, intercept_high): (bool, bool, f64),
    active: &[usize],
    clamped: &[(usize, f64)],
    f: Fit,
) -> Fit {
    let p = names.len() + usize::from(intercept);
    // Position of each full-model coefficient in the sub-fit, if active.
    let pos = |k: usize| -> Option<usize> {
        if intercept && k == 0 {
            return intercept_on.then_some(0);
        }
        let col = k - usize::from(intercept);
        active
            .iter()
            .position(|&a| a == col)
            .map(|i| i + usize::from(intercept_on))
    };
    let mut coefficients = Vec::with_capacity(p);
    let mut covariance = vec![vec![0.0; p]; p];
    for k in 0..p {
        match pos(k) {
            Some(i) => {
                coefficients.push(f.coefficients[i].clone());
                for (l, cell) in covariance[k].iter_mut().enumerate() {
                    if let Some(j) = pos(l) {
                        *cell = f.covariance[i][j];
                    }
                }
            }
            None => {
                let name = if intercept && k == 0 {
                    "intercept".to_string()
                } else {
                    names[k - usize::from(intercept)].to_string()
                };
                let high = if intercept && k == 0 {
                    intercept_high
                } else {
                    let col = k - usize::from(intercept);
                    clamped
                        .iter()
                        .find(|(c, _)| *c == col)
                        .map(|(_, h)| *h)
                        .unwrap_or(0.0)
                };
                coefficients.push(Coefficient {
                    name,
                    value: 0.0,
                    std_error: 0.0,
                    low: 0.0,
                    high,
                    clamped: true,
                });
            }
        }
    }
    Fit {
        coefficients,
        r2: f.r2,
        residual_sd: f.residual_sd,
        n: f.n,
        covariance,
    }
}

/// Add an independently measured quantity to a coefficient fitted on an
/// offset response (`y − by·x`): the coefficient becomes `by + fitted`, its
/// variance the sum of both, its interval's half-widths the root sum of
/// squares of both (independent errors), never below `by`'s own low end.
/// `by`'s standard error is read off its interval.
pub fn shift(f: &mut Fit, name: &str, by: &crate::units::Estimate) {
    let Some(k) = f.coefficients.iter().position(|c| c.name == name) else {
        return;
    };
    let z = statrs::distribution::Normal::standard().inverse_cdf(0.5 + by.confidence / 2.0);
    let se = if z.is_finite() && z > 0.0 {
        (by.high - by.low).max(0.0) / (2.0 * z)
    } else {
        0.0
    };
    let c = &mut f.coefficients[k];
    let below = (c.value - c.low.max(0.0)).hypot(by.value - by.low.max(0.0));
    let above = (c.high - c.value).hypot(by.high - by.value);
    c.value += by.value;
    c.low = (c.value - below).max(by.low.max(0.0));
    c.high = c.value + above;
    c.std_error = (c.std_error * c.std_error + se * se).sqrt();
    c.clamped = false;
    f.covariance[k][k] += se * se;
}

/// Median and 90th percentile of absolute relative errors.
pub fn error_quantiles(errors: &[f64]) -> (f64, f64) {
    if errors.is_empty() {
        return (0.0, 0.0);
    }
    let mut v: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        let pos = p * (v.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    (q(0.5), q(0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 2 + 3·a + 0.5·b with small deterministic noise.
    fn data(noise: f64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..40 {
            let a = (i % 7) as f64 * 1e9;
            let b = (i % 5) as f64 * 1e3 + (i / 7) as f64;
            let e = noise * (((i * 37) % 11) as f64 - 5.0);
            x.push(vec![a, b]);
            y.push(2.0 + 3e-9 * a + 0.5e-3 * b + e);
        }
        (x, y)
    }

    #[test]
    fn a_floor_shifts_a_coefficient_and_keeps_it_off_zero() {
        let (x, y) = data(0.01);
        let by = crate::units::Estimate::new(1e-9, 0.5e-9, 1.5e-9, 0.95);
        // Below the true 3e-9: the offset fit + floor recovers the same value.
        let yo: Vec<f64> = x.iter().zip(&y).map(|(r, v)| v - 1e-9 * r[0]).collect();
        let mut f = fit_nonnegative("t", &["a", "b"], &x, &yo, true, 0.95).unwrap();
        let before = f.get("a").unwrap().clone();
        shift(&mut f, "a", &by);
        let a = f.get("a").unwrap();
        let plain = fit_nonnegative("t", &["a", "b"], &x, &y, true, 0.95).unwrap();
        assert!(
            (a.value - plain.get("a").unwrap().value).abs() < 1e-15,
            "{a:?}"
        );
        assert!(a.std_error > before.std_error);
        assert!(a.low <= a.value && a.value <= a.high, "{a:?}");
        let k = f.coefficients.iter().position(|c| c.name == "a").unwrap();
        assert!((f.covariance[k][k] - a.std_error * a.std_error).abs() < 1e-30);
        // Data whose slope is 0: the non-negative fit would pin it at 0; with
        // a floor it is the floor, with the floor's interval.
        let flat: Vec<f64> = x.iter().map(|r| 2.0 + 0.5e-3 * r[1]).collect();
        let yo: Vec<f64> = x.iter().zip(&flat).map(|(r, v)| v - 1e-9 * r[0]).collect();
        let mut f = fit_nonnegative("t", &["a", "b"], &x, &yo, true, 0.95).unwrap();
        assert_eq!(f.get("a").unwrap().value, 0.0);
        shift(&mut f, "a", &by);
        let a = f.get("a").unwrap();
        assert_eq!(a.value, 1e-9);
        assert!(a.low >= 0.5e-9 && !a.clamped, "{a:?}");
    }

    #[test]
    fn recovers_known_coefficients_with_intervals_covering_them() {
        let (x, y) = data(0.01);
        let f = fit_ols("t", &["a", "b"], &x, &y, true, 0.95).unwrap();
        let i = f.get("intercept").unwrap();
        let a = f.get("a").unwrap();
        let b = f.get("b").unwrap();
        assert!((i.value - 2.0).abs() < 0.02, "{i:?}");
        assert!(a.low <= 3e-9 && 3e-9 <= a.high, "{a:?}");
        assert!(b.low <= 0.5e-3 && 0.5e-3 <= b.high, "{b:?}");
        assert!(f.r2 > 0.99);
        assert!(a.std_error > 0.0);
    }

    /// Two columns, no intercept, noisy data: the coefficients and standard
    /// errors equal the normal equations' closed form, `(XᵀX)⁻¹ Xᵀy` with the
    /// 2×2 inverse written out.
    #[test]
    fn two_columns_match_the_normal_equations_by_hand() {
        let x: Vec<Vec<f64>> = (0..12)
            .map(|i| vec![(1 + i % 5) as f64 * 1e9, (3 + (i * 7) % 11) as f64 * 1e2])
            .collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, r)| 2e-9 * r[0] + 4e-3 * r[1] + 0.05 * (((i * 5) % 7) as f64 - 3.0))
            .collect();
        let dot = |f: &dyn Fn(usize) -> f64| (0..x.len()).map(f).sum::<f64>();
        let (a, b, d) = (
            dot(&|i| x[i][0] * x[i][0]),
            dot(&|i| x[i][0] * x[i][1]),
            dot(&|i| x[i][1] * x[i][1]),
        );
        let (u, v) = (dot(&|i| x[i][0] * y[i]), dot(&|i| x[i][1] * y[i]));
        let det = a * d - b * b;
        let beta = [(d * u - b * v) / det, (a * v - b * u) / det];
        let rss = dot(&|i| (y[i] - beta[0] * x[i][0] - beta[1] * x[i][1]).powi(2));
        let sigma2 = rss / (x.len() - 2) as f64;
        let se = [(sigma2 * d / det).sqrt(), (sigma2 * a / det).sqrt()];
        let f = fit_ols("t", &["a", "b"], &x, &y, false, 0.95).unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-9 * want.abs();
        for (k, c) in f.coefficients.iter().enumerate() {
            assert!(close(c.value, beta[k]), "{k}: {} vs {}", c.value, beta[k]);
            assert!(
                close(c.std_error, se[k]),
                "{k}: {} vs {}",
                c.std_error,
                se[k]
            );
        }
        assert!(close(f.residual_sd, sigma2.sqrt()));
    }

    #[test]
    fn exact_data_gives_zero_width_intervals() {
        let (x, y) = data(0.0);
        let f = fit_ols("t", &["a", "b"], &x, &y, true, 0.95).unwrap();
        let a = f.get("a").unwrap();
        assert!((a.value - 3e-9).abs() < 1e-15);
        assert!(a.high - a.low < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn too_few_runs_and_constant_columns_are_errors() {
        let (x, y) = data(0.01);
        assert!(matches!(
            fit_ols("t", &["a", "b"], &x[..4], &y[..4], true, 0.95),
            Err(FitError::TooFewRuns { n: 4, p: 3, .. })
        ));
        let xc: Vec<Vec<f64>> = x.iter().map(|r| vec![r[0], 7.0]).collect();
        assert!(matches!(
            fit_ols("t", &["a", "c"], &xc, &y, true, 0.95),
            Err(FitError::Constant { .. })
        ));
        let xd: Vec<Vec<f64>> = x.iter().map(|r| vec![r[0], 2.0 * r[0]]).collect();
        assert!(matches!(
            fit_ols("t", &["a", "d"], &xd, &y, true, 0.95),
            Err(FitError::Collinear { .. })
        ));
    }

    #[test]
    fn negative_coefficients_are_clamped_to_zero() {
        // y depends on a only; b has a spurious negative effect in the data.
        let x: Vec<Vec<f64>> = (0..30)
            .map(|i| vec![i as f64, ((i * 7) % 13) as f64])
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 1.0 + 2.0 * r[0] - 0.3 * r[1]).collect();
        let f = fit_nonnegative("t", &["a", "b"], &x, &y, true, 0.95).unwrap();
        let b = f.get("b").unwrap();
        assert!(b.clamped && b.value == 0.0 && b.low == 0.0);
        assert!(f.get("a").unwrap().value > 0.0);
        assert!(f.coefficients.iter().all(|c| c.value >= 0.0));
    }

    #[test]
    fn a_dropped_intercept_keeps_an_upper_bound() {
        // y = 3a − 0.1 + noise: the fixed cost comes out negative and is
        // dropped, but its interval's top stays (every parameter has one).
        let x: Vec<Vec<f64>> = (1..40).map(|i| vec![i as f64]).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, r)| 3.0 * r[0] - 0.1 + if i % 2 == 0 { 0.4 } else { -0.4 })
            .collect();
        let f = fit_nonnegative("t", &["a"], &x, &y, true, 0.95).unwrap();
        let c = f.get("intercept").unwrap();
        assert!(c.clamped && c.value == 0.0, "{c:?}");
        assert!(c.high > 0.0, "{c:?}");
        assert!((f.get("a").unwrap().value - 3.0).abs() < 0.05);
    }

    #[test]
    fn prediction_error_grows_away_from_the_data() {
        let (x, y) = data(0.01);
        let f = fit_ols("t", &["a", "b"], &x, &y, true, 0.95).unwrap();
        let (_, se_mid) = f.predict(true, &[3e9, 2e3]);
        let (_, se_far) = f.predict(true, &[60e9, 2e3]);
        assert!(se_far > se_mid);
    }

    #[test]
    fn mean_interval_handles_one_sample_and_spread() {
        let one = mean_interval("x", &[1.5], 0.95);
        assert_eq!((one.value, one.low, one.high), (1.5, 1.5, 1.5));
        let m = mean_interval("x", &[1.0, 2.0, 3.0], 0.95);
        assert_eq!(m.value, 2.0);
        // t(0.975, 2) = 4.303; se = 1/sqrt(3)
        assert!((m.high - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-3, "{m:?}");
    }

    #[test]
    fn error_quantiles_interpolate() {
        let (m, p90) = error_quantiles(&[0.1, -0.2, 0.3, 0.4, 0.05]);
        assert!((m - 0.2).abs() < 1e-12);
        assert!(p90 > 0.3 && p90 <= 0.4);
    }
}
