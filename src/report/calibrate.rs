//! The human form of `advisor calibrate`: the fitted parameters, the fits,
//! cross-validation, the fetch simulator's check and the registry round trip;
//! and of `calibrate --check`, the drift of each fresh run. Rendering only:
//! the reports arrive computed, nothing here prints.
use super::table;
use crate::calibrate::fit::error_quantiles;
use crate::calibrate::{CalibrationReport, Drift, SimCheck};
use crate::profile::{Param, Profile};
use crate::units::Seconds;

/// The report: parameters, fits, cross-validation, simulator check.
pub fn render(r: &CalibrationReport) -> String {
    let p = &r.profile;
    let mut out = format!("{}\n\n{}\n\n", parameter_table(p), fit_table(p));
    if let Some(v) = &p.validation {
        out.push_str(&format!(
            "cross-validation ({} folds, {} runs): median |predicted − measured| / measured = {:.1} % (p90 {:.1} %) on total completion\n",
            v.folds,
            v.n,
            v.median_abs_pct_error * 100.0,
            v.p90_abs_pct_error * 100.0
        ));
    }
    if !r.sim_checks.is_empty() {
        out.push_str(&sim_check_line(&r.sim_checks));
    }
    if let Some(rtt) = &p.node.registry_rtt_s {
        out.push_str(&format!(
            "registry {} round trip: {} [{} – {}]\n",
            p.node.registry,
            Seconds(rtt.value),
            Seconds(rtt.low),
            Seconds(rtt.high)
        ));
    }
    out.push_str(&link_line(p));
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// The path the calibration ran over, or what `advise --network` takes for it.
fn link_line(p: &Profile) -> String {
    let Some(l) = &p.node.link else {
        return "calibration link: not recorded; `advise --network` takes it as loopback at the \
                registry round trip\n"
            .into();
    };
    let rate = super::probe::rate;
    format!(
        "calibration link to {}: round trip {}, 1 stream {}, all streams {}, connection set-up {} \
         (in the prices; `advise --network` replaces it)\n",
        p.node.registry,
        Seconds(l.rtt_s),
        rate(l.stream_bytes_per_s),
        rate(l.total_bytes_per_s),
        Seconds(l.setup_s)
    )
}

fn parameter_table(p: &Profile) -> String {
    let mut t = table(["parameter", "value", "95 % interval", "unit", "fit"]);
    for param in Param::ALL {
        if let Some(e) = p.get(param) {
            t.add_row([
                param.name().to_string(),
                format!("{:.4e}", e.estimate.value),
                format!("[{:.3e}, {:.3e}]", e.estimate.low, e.estimate.high),
                e.unit.clone(),
                e.fit.clone(),
            ]);
        }
    }
    t.to_string()
}

fn fit_table(p: &Profile) -> String {
    let mut f = table(["fit", "runs/segments", "R²", "residual sd", "what"]);
    for (name, q) in &p.fits {
        f.add_row([
            name.clone(),
            q.n.to_string(),
            format!("{:.3}", q.r2),
            q.residual_sd_s.to_string(),
            q.description.clone(),
        ]);
    }
    f.to_string()
}

/// The median relative difference of the simulator from the snapshotter's
/// counters, in requests and in bytes.
fn sim_check_line(checks: &[SimCheck]) -> String {
    let rel = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            (a as f64 - b as f64).abs() / b as f64
        }
    };
    let (mr, _) = error_quantiles(
        &checks
            .iter()
            .map(|c| rel(c.simulated_requests, c.measured_requests))
            .collect::<Vec<_>>(),
    );
    let (mb, _) = error_quantiles(
        &checks
            .iter()
            .map(|c| rel(c.simulated_bytes.0, c.measured_bytes.0))
            .collect::<Vec<_>>(),
    );
    format!(
        "fetch simulator vs the snapshotter's counters ({} lazy runs): median difference {:.1} % in requests, {:.1} % in bytes\n",
        checks.len(),
        mr * 100.0,
        mb * 100.0
    )
}

/// `calibrate --check`: one row per fresh run, predicted against measured.
pub fn render_drift(drifts: &[Drift]) -> String {
    let mut t = table(["run", "predicted", "measured", "drift"]);
    for d in drifts {
        t.add_row([
            d.key.clone(),
            d.predicted_s.to_string(),
            d.measured_s.to_string(),
            format!("{:+.1} %", d.drift * 100.0),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::{Seconds, render, render_drift};
    use crate::calibrate::{Drift, build_profile, runner};
    use std::path::Path;

    /// `calibrate --refit --runs calibration/default.runs.jsonl`: the
    /// bundled profile fitted again from its runs.
    #[test]
    fn refit_of_the_bundled_runs() {
        let (stored, notes) =
            runner::load_runs(Path::new("calibration/default.runs.jsonl")).expect("the runs");
        let node = stored.node.clone().expect("the node's facts");
        let mut report = build_profile(&stored.as_model(), node, Some("default.runs.jsonl".into()))
            .expect("the fit");
        report.notes.extend(notes);
        insta::assert_snapshot!(render(&report));
    }

    /// The bundled runs without their prefetched ones (an older runs file):
    /// the refit gives the prefetch terms the on-demand values, and the
    /// coded terms (no weights image) 0, both marked as not fitted.
    #[test]
    fn a_refit_without_prefetched_or_coded_runs_takes_the_fallbacks() {
        use crate::predict::replay::Strategy;
        use crate::profile::{
            CODED_FALLBACK_FIT, CODED_PARAMS, PREFETCH_FALLBACK, PREFETCH_FALLBACK_FIT,
        };
        let (stored, _) =
            runner::load_runs(Path::new("calibration/default.runs.jsonl")).expect("the runs");
        let node = stored.node.clone().expect("the node's facts");
        let mut model = stored.as_model();
        model.runs.retain(|r| r.strategy != Strategy::LazyPrefetch);
        let p = build_profile(&model, node, None).expect("the fit").profile;
        for (param, from) in PREFETCH_FALLBACK {
            let e = p.get(param).unwrap();
            assert_eq!(e.fit, PREFETCH_FALLBACK_FIT, "{param:?}");
            assert_eq!(e.estimate, p.get(from).unwrap().estimate, "{param:?}");
        }
        for param in CODED_PARAMS {
            let e = p.get(param).unwrap();
            assert_eq!(
                (e.fit.as_str(), e.estimate.value),
                (CODED_FALLBACK_FIT, 0.0)
            );
        }
    }

    #[test]
    fn drift_table() {
        let drift = |key: &str, predicted_s: f64, measured_s: f64| Drift {
            key: key.into(),
            predicted_s: Seconds(predicted_s),
            measured_s: Seconds(measured_s),
            drift: (measured_s - predicted_s) / predicted_s,
        };
        insta::assert_snapshot!(render_drift(&[
            drift("few-large/eager", 12.5, 13.1),
            drift("many-small/lazy", 3.2, 2.4),
        ]));
    }
}
