//! `calibrate --plot`: the fitted model against the calibration runs, from
//! the cross-validation's checks (each run predicted by the fit of the folds
//! that left it out, as `advise` predicts an image it never measured). Left:
//! each run's measured total completion against its prediction, with the
//! line where they are equal; right: the residual, measured − predicted,
//! against the prediction. A dot per run in each, coloured by strategy. The
//! plot's data first ([`points`], pure), then the SVG ([`svg`]). Rendering only.
use super::plot::{Chart, GREY, axes, axes_over, color, legend, y_top};
use crate::calibrate::model::{CalRun, RunCheck};
use crate::predict::replay::Strategy;
use plotters::prelude::*;

/// One run: its out-of-fold prediction and its measurement (total completion).
#[derive(Debug, Clone, PartialEq)]
pub struct FitPoint {
    pub key: String,
    pub strategy: Strategy,
    pub predicted_s: f64,
    pub measured_s: f64,
}

impl FitPoint {
    /// What the model missed: measured − predicted (s; > 0: slower than predicted).
    pub fn residual_s(&self) -> f64 {
        self.measured_s - self.predicted_s
    }
}

/// The checks joined with their runs (for the strategy), in the checks' order.
pub fn points(checks: &[RunCheck], runs: &[CalRun]) -> Vec<FitPoint> {
    checks
        .iter()
        .filter_map(|c| {
            let run = runs.iter().find(|r| r.key == c.key)?;
            Some(FitPoint {
                key: c.key.clone(),
                strategy: run.strategy,
                predicted_s: c.predicted_complete_s.0,
                measured_s: c.measured_complete_s.0,
            })
        })
        .collect()
}

/// The SVG: the title over the two panels.
pub fn svg(points: &[FitPoint], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1400, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(700);
        scatter(&left, points)?;
        residuals(&right, points)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

const PREDICTED: &str = "predicted total completion, out of fold (s)";

/// Measured against predicted, both axes alike, and the line y = x.
fn scatter(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[FitPoint],
) -> Result<(), String> {
    let top = y_top(points.iter().flat_map(|p| [p.predicted_s, p.measured_s]));
    let mut chart = axes(
        area,
        "measured vs predicted",
        (top, top),
        (PREDICTED, "measured total completion (s)"),
    )?;
    reference(&mut chart, (0.0, 0.0), (top, top), "measured = predicted")?;
    dots(&mut chart, points, |p| (p.predicted_s, p.measured_s))?;
    legend(&mut chart)
}

/// The residual against the prediction, around 0.
fn residuals(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[FitPoint],
) -> Result<(), String> {
    let right = y_top(points.iter().map(|p| p.predicted_s));
    let r = y_top(points.iter().map(|p| p.residual_s().abs()));
    let mut chart = axes_over(
        area,
        "residuals",
        (0.0..right, -r..r),
        (PREDICTED, "measured − predicted (s)"),
    )?;
    reference(&mut chart, (0.0, 0.0), (right, 0.0), "no error")?;
    dots(&mut chart, points, |p| (p.predicted_s, p.residual_s()))?;
    legend(&mut chart)
}

/// A grey line from `a` to `b`, named in the legend.
fn reference(chart: &mut Chart, a: (f64, f64), b: (f64, f64), label: &str) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![a, b],
            GREY.stroke_width(1),
        )))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(1)));
    Ok(())
}

/// A dot per run at `at(run)`, a series per strategy named with its count.
fn dots(
    chart: &mut Chart,
    points: &[FitPoint],
    at: impl Fn(&FitPoint) -> (f64, f64),
) -> Result<(), String> {
    for s in Strategy::ALL {
        let mine: Vec<&FitPoint> = points.iter().filter(|p| p.strategy == s).collect();
        if mine.is_empty() {
            continue;
        }
        let c = color(s);
        chart
            .draw_series(mine.iter().map(|&p| Circle::new(at(p), 4, c.filled())))
            .map_err(|e| e.to_string())?
            .label(format!("{}: {} run(s)", s.name(), mine.len()))
            .legend(move |(x, y)| Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], c.filled()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{FitPoint, points, svg};
    use crate::bench::{Role, RunRecord};
    use crate::calibrate::model::{CalRun, RunCheck};
    use crate::predict::replay::Strategy;
    use crate::units::Seconds;

    fn run(image: &str, strategy: Strategy) -> CalRun {
        CalRun {
            key: crate::calibrate::runner::run_key(image, strategy, 0),
            image: image.into(),
            strategy,
            repeat: 0,
            run: RunRecord::new(0, Role::Measured),
        }
    }

    fn check(key: &str, predicted: f64, measured: f64) -> RunCheck {
        RunCheck {
            key: key.into(),
            predicted_ready_s: Seconds(predicted / 2.0),
            measured_ready_s: Seconds(measured / 2.0),
            predicted_complete_s: Seconds(predicted),
            measured_complete_s: Seconds(measured),
        }
    }

    fn synthetic() -> Vec<FitPoint> {
        let runs = [run("a", Strategy::Eager), run("a", Strategy::Lazy)];
        let checks = [
            check("a/lazy/0", 4.0, 3.5),
            check("a/eager/0", 2.0, 2.5),
            check("gone/eager/0", 1.0, 1.0),
        ];
        points(&checks, &runs)
    }

    #[test]
    fn a_point_per_checked_run_with_its_strategy_and_residual() {
        let p = synthetic();
        let got: Vec<(&str, Strategy, f64)> = p
            .iter()
            .map(|p| (p.key.as_str(), p.strategy, p.residual_s()))
            .collect();
        assert_eq!(
            got,
            [
                ("a/lazy/0", Strategy::Lazy, -0.5),
                ("a/eager/0", Strategy::Eager, 0.5)
            ],
            "residual = measured − predicted; a check without its run is left out"
        );
        assert_eq!((p[0].predicted_s, p[0].measured_s), (4.0, 3.5));
    }

    /// The SVG: its title, both panels, a dot per run in each, in its
    /// strategy's colour, each strategy named with its count.
    #[test]
    fn svg_has_the_title_both_panels_and_two_dots_per_run() {
        let svg = svg(&synthetic(), "calibration of node-1").expect("the plot draws");
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "calibration of node-1",
            "measured vs predicted",
            "residuals",
            "measured = predicted",
            "eager: 1 run(s)",
            "lazy: 1 run(s)",
        ] {
            assert!(svg.contains(text), "{text}: {svg}");
        }
        assert!(!svg.contains("lazy+prefetch"), "no run, no series");
        let dots = crate::report::fixtures::svg_circles(&svg);
        assert_eq!(dots.len(), 2 * 2, "{svg}");
        for colour in ["#1F77B4", "#D62728"] {
            let fill = format!("fill=\"{colour}\"");
            assert_eq!(dots.iter().filter(|d| d.contains(&fill)).count(), 2);
        }
    }
}
