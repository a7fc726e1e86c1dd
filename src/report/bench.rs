//! The human form of `advisor bench`: what was measured, then one row per
//! quantity in hyperfine's form (mean ± σ, min … max, median, runs).
//! Rendering only: the report arrives computed, nothing here prints.
use super::bench_export::TimeUnit;
use super::table;
use crate::bench::{BenchReport, Mode, Role};
use crate::containerd::pull::Method;
use crate::units::Bytes;

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

/// One row per quantity in hyperfine's form: `mean ± σ` and `min … max`,
/// a time row in one unit (chosen by its mean, as hyperfine's), then the
/// median and the number of runs.
fn summary_table(report: &BenchReport) -> String {
    if report.summary.is_empty() {
        return "no run counts: nothing to summarise".into();
    }
    let mut t = table(["quantity", "mean ± σ", "min … max", "median", "runs"]);
    for q in &report.summary {
        let s = &q.summary;
        let f = |v: f64| {
            if q.unit == "s" {
                TimeUnit::of(s.mean).format_with_unit(v)
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
            format!("{} … {}", f(s.min), f(s.max)),
            f(s.median),
            s.n.to_string(),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::bench::stats::Summary;
    use crate::bench::{
        BenchReport, Mode, Network, Phases, QuantitySummary, ReadySpec, Role, RunRecord,
    };
    use crate::containerd::pull::Method;

    fn run(index: usize, role: Role, included: bool) -> RunRecord {
        RunRecord {
            index,
            role,
            phases: Phases::default(),
            to_ready: None,
            to_complete: None,
            clean: None,
            exit_code: Some(0),
            network: Network::default(),
            disk: None,
            layers: vec![],
            flags: vec![],
            marks: vec![],
            included,
            error: None,
        }
    }

    fn quantity(name: &str, unit: &str, samples: &[f64]) -> QuantitySummary {
        QuantitySummary {
            name: name.into(),
            unit: unit.into(),
            summary: Summary::of(samples).expect("samples"),
        }
    }

    /// A warm-up and three measured runs, one excluded; a time with a
    /// standard deviation, bytes, and a quantity of one sample (no σ).
    fn report() -> BenchReport {
        BenchReport {
            image: "127.0.0.1:5123/examples/small:v1-esgz".into(),
            snapshotter: "stargz".into(),
            method: Method::Lazy,
            mode: Mode::Cold,
            runs_requested: 3,
            warmup: 1,
            ready: ReadySpec::Line("ready".into()),
            command: vec![],
            setup: None,
            runs: vec![
                run(0, Role::Warmup, false),
                run(0, Role::Measured, true),
                run(1, Role::Measured, true),
                run(2, Role::Measured, false),
            ],
            summary: vec![
                quantity("to ready", "s", &[1.25, 1.5]),
                quantity("registry", "bytes", &[2_000_000.0, 2_100_000.4]),
                quantity("clean", "s", &[0.0123]),
            ],
            excluded: 1,
            interrupted: false,
            error: None,
            cleanup_problems: vec![],
        }
    }

    #[test]
    fn summary_table() {
        insta::assert_snapshot!(render(&report()));
    }

    /// Every run excluded: the line, and why there is no table.
    #[test]
    fn nothing_to_summarise() {
        let r = BenchReport {
            method: Method::Eager,
            snapshotter: "overlayfs".into(),
            mode: Mode::Warm,
            ready: ReadySpec::Exit,
            summary: vec![],
            excluded: 3,
            ..report()
        };
        insta::assert_snapshot!(render(&r));
    }
}
