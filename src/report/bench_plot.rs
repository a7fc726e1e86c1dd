//! `bench --plot`: each timed phase over the measured runs, one panel per
//! phase (each its own time axis: `create` takes milliseconds where `fetch`
//! takes seconds). Every measured run is a dot at its run number — filled
//! when it counts in the summary, hollow when it was excluded — and the
//! median of those that count is a line, as the table's. The plot's data
//! first ([`phases`], pure), then the SVG ([`svg`]). Rendering only.
use super::plot::{color, y_top};
use crate::bench::stats::Summary;
use crate::bench::{BenchReport, Mode, Role, TIMES};
use crate::containerd::pull::Method;
use crate::predict::replay::Strategy;
use crate::units::Seconds;
use plotters::prelude::*;

/// Panels per row.
const COLUMNS: usize = 4;
/// One panel's size in pixels.
const PANEL: (u32, u32) = (340, 280);
/// The title's band above the panels.
const TITLE: u32 = 40;

/// One measured run's time in a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// The run's number as the progress and `--output` name it (1, 2, …).
    pub run: usize,
    pub seconds: f64,
    /// Counted in the summary; an excluded run is drawn hollow.
    pub included: bool,
}

/// A phase's dots and the median of those that count.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseDots {
    pub name: &'static str,
    pub dots: Vec<Dot>,
    /// The median over the included dots (the summary's); None when none counts.
    pub median: Option<f64>,
}

/// Every timed phase some measured run has, in the summary's order
/// (warm-up runs and the setup pull are left out, as from the summary).
pub fn phases(report: &BenchReport) -> Vec<PhaseDots> {
    TIMES
        .iter()
        .filter_map(|&(name, of)| {
            let dots: Vec<Dot> = report
                .runs
                .iter()
                .filter(|r| r.role == Role::Measured)
                .filter_map(|r| {
                    Some(Dot {
                        run: r.index + 1,
                        seconds: of(r)?.0,
                        included: r.included,
                    })
                })
                .filter(|d| d.seconds.is_finite())
                .collect();
            let counted: Vec<f64> = dots
                .iter()
                .filter(|d| d.included)
                .map(|d| d.seconds)
                .collect();
            let median = Summary::of(&counted).map(|s| s.median);
            (!dots.is_empty()).then_some(PhaseDots { name, dots, median })
        })
        .collect()
}

/// The image, how it was pulled and what the panels show.
pub fn title(report: &BenchReport) -> String {
    let mode = match report.mode {
        Mode::Cold => "cold",
        Mode::Warm => "warm",
    };
    format!(
        "{} via {} ({}, {mode}): each phase over the measured runs",
        report.image,
        report.snapshotter,
        strategy(report.method).name()
    )
}

/// The colour of a bench's pulls: eager's or lazy's, as in `advise --plot`.
fn strategy(m: Method) -> Strategy {
    match m {
        Method::Eager => Strategy::Eager,
        Method::Lazy => Strategy::Lazy,
    }
}

/// The SVG: the title, then a panel per phase, [`COLUMNS`] to a row.
/// Err when no measured run has a timed phase (nothing to draw).
pub fn svg(report: &BenchReport) -> Result<String, String> {
    let phases = phases(report);
    if phases.is_empty() {
        return Err("no measured run has a timed phase".into());
    }
    let (rows, cols) = (phases.len().div_ceil(COLUMNS), phases.len().min(COLUMNS));
    let title = title(report);
    // Wide enough for the title (about 10 px a character at 20 px) when few panels.
    let width = (PANEL.0 * cols as u32).max(title.chars().count() as u32 * 10 + 40);
    let size = (width, PANEL.1 * rows as u32 + TITLE);
    let runs = phases
        .iter()
        .flat_map(|p| p.dots.iter().map(|d| d.run))
        .max()
        .unwrap_or(1);
    let c = color(strategy(report.method));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        for (area, p) in root.split_evenly((rows, cols)).iter().zip(&phases) {
            panel(area, p, runs, c)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One phase: run number across, seconds up, the median named in the caption.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    p: &PhaseDots,
    runs: usize,
    c: RGBColor,
) -> Result<(), String> {
    let caption = match p.median {
        Some(m) => format!("{}: median {}", p.name, Seconds(m)),
        None => format!("{}: no run counts", p.name),
    };
    let right = runs as f64 + 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(
            0.5f64..right,
            0.0f64..y_top(p.dots.iter().map(|d| d.seconds)),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels((runs + 1).min(11))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("measured run")
        .y_desc("time (s)")
        .draw()
        .map_err(|e| e.to_string())?;
    if let Some(m) = p.median {
        let line = PathElement::new(vec![(0.5, m), (right, m)], BLACK.stroke_width(1));
        chart
            .draw_series(std::iter::once(line))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(p.dots.iter().map(|d| {
            let style = if d.included {
                c.filled()
            } else {
                c.stroke_width(1)
            };
            Circle::new((d.run as f64, d.seconds), 4, style)
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Dot, phases, svg, title};
    use crate::bench::{BenchReport, Mode, Phases, ReadySpec, Role, RunRecord};
    use crate::containerd::pull::Method;
    use crate::units::Seconds;

    /// A measured run with `fetch` and `create` times (s).
    fn run(index: usize, role: Role, included: bool, fetch: f64, create: f64) -> RunRecord {
        RunRecord {
            phases: Phases {
                fetch: Some(Seconds(fetch)),
                create: Some(Seconds(create)),
                ..Phases::default()
            },
            included,
            ..RunRecord::new(index, role)
        }
    }

    /// A warm-up, three measured runs that count and one excluded.
    fn report() -> BenchReport {
        BenchReport {
            image: "127.0.0.1:5123/examples/small:v1".into(),
            snapshotter: "overlayfs".into(),
            method: Method::Eager,
            mode: Mode::Cold,
            runs_requested: 4,
            warmup: 1,
            ready: ReadySpec::Exit,
            command: vec![],
            setup: None,
            runs: vec![
                run(0, Role::Warmup, false, 9.0, 9.0),
                run(0, Role::Measured, true, 3.0, 0.02),
                run(1, Role::Measured, true, 1.0, 0.04),
                run(2, Role::Measured, false, 7.0, 0.05),
                run(3, Role::Measured, true, 2.0, 0.03),
            ],
            summary: vec![],
            excluded: 1,
            interrupted: false,
            error: None,
            cleanup_problems: vec![],
        }
    }

    #[test]
    fn every_measured_run_is_a_dot_and_the_median_is_of_those_that_count() {
        let p = phases(&report());
        let names: Vec<&str> = p.iter().map(|p| p.name).collect();
        assert_eq!(names, ["fetch", "create"], "phases no run has are left out");
        let dot = |run, seconds, included| Dot {
            run,
            seconds,
            included,
        };
        assert_eq!(
            p[0].dots,
            [
                dot(1, 3.0, true),
                dot(2, 1.0, true),
                dot(3, 7.0, false),
                dot(4, 2.0, true)
            ],
            "the warm-up is not a dot"
        );
        assert_eq!(p[0].median, Some(2.0), "the excluded 7 s is not counted");
        assert_eq!(p[1].median, Some(0.03));
    }

    #[test]
    fn a_phase_where_no_run_counts_has_dots_but_no_median() {
        let mut r = report();
        r.runs.iter_mut().for_each(|r| r.included = false);
        let p = phases(&r);
        assert_eq!(p[0].dots.len(), 4);
        assert_eq!(p[0].median, None);
        r.runs.retain(|r| r.role == Role::Warmup);
        assert!(phases(&r).is_empty());
        assert!(svg(&r).is_err(), "nothing to draw");
    }

    /// The SVG: its title, a panel per phase naming the median, a dot per
    /// measured run and phase (filled: counted, hollow: excluded), in eager's colour.
    #[test]
    fn svg_has_the_title_a_panel_per_phase_and_a_dot_per_run() {
        let r = report();
        let svg = svg(&r).expect("the plot draws");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(&title(&r)), "{svg}");
        assert!(title(&r).contains("127.0.0.1:5123/examples/small:v1"));
        assert!(svg.contains("fetch: median 2.00 s"), "{svg}");
        assert!(svg.contains("create: median 30.0 ms"), "{svg}");
        let dots = crate::report::fixtures::svg_circles(&svg);
        assert_eq!(dots.len(), 2 * 4, "{svg}");
        let with = |attr: &str| dots.iter().filter(|d| d.contains(attr)).count();
        assert_eq!(with("fill=\"#1F77B4\""), 2 * 3, "counted: filled");
        assert_eq!(with("stroke=\"#1F77B4\""), 2, "excluded: hollow");
    }
}
