//! The human form of `advisor bench`: what was measured, then one row per
//! quantity (mean ± σ, min, median, max, n). Rendering only: the report
//! arrives computed, nothing here prints.
use super::table;
use crate::bench::{BenchReport, Mode, Role};
use crate::containerd::pull::Method;
use crate::units::{Bytes, Seconds};

/// The summary line, then the table (or why there is none).
pub fn render(report: &BenchReport) -> String {
    format!("{}\n{}", summary_line(report), summary_table(report))
}

fn summary_line(report: &BenchReport) -> String {
    let measured = report
        .runs
        .iter()
        .filter(|r| r.role == Role::Measured)
        .count();
    format!(
        "{} via {} ({}, {} mode), ready on {}: {measured} measured run(s), {} excluded",
        report.image,
        report.snapshotter,
        match report.method {
            Method::Eager => "eager",
            Method::Lazy => "lazy",
        },
        match report.mode {
            Mode::Cold => "cold",
            Mode::Warm => "warm",
        },
        report.ready.describe(),
        report.excluded
    )
}

fn summary_table(report: &BenchReport) -> String {
    if report.summary.is_empty() {
        return "no run counts: nothing to summarise".into();
    }
    let mut t = table(["quantity", "mean ± σ", "min", "median", "max", "n"]);
    for q in &report.summary {
        let s = &q.summary;
        let f = |v: f64| {
            if q.unit == "s" {
                Seconds(v).to_string()
            } else {
                Bytes(v.round() as u64).to_string()
            }
        };
        let mean = match s.stddev {
            Some(sd) => format!("{} ± {}", f(s.mean), f(sd)),
            None => f(s.mean),
        };
        t.add_row(vec![
            q.name.clone(),
            mean,
            f(s.min),
            f(s.median),
            f(s.max),
            s.n.to_string(),
        ]);
    }
    t.to_string()
}
