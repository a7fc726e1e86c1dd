//! SVG plots (plotters, SVG backend only: no fonts or native libraries).
use crate::predict::replay::Strategy;
use crate::predict::rtt_sweep::RttStrategyPoint;
use crate::predict::{Objective, Prediction};
use crate::units::Estimate;
use plotters::prelude::*;

pub(super) fn color(s: Strategy) -> RGBColor {
    match s {
        Strategy::Eager => RGBColor(0x1f, 0x77, 0xb4),
        Strategy::Lazy => RGBColor(0xd6, 0x27, 0x28),
        Strategy::LazyPrefetch => RGBColor(0x2c, 0xa0, 0x2c),
    }
}

/// The drawing area of a chart with x and y in f64.
pub(super) type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

pub(super) const GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);

/// One strategy's line and its 95 % band, labelled for the legend.
/// `pts`: (x, value, low, high).
fn strategy_line(
    chart: &mut Chart,
    s: Strategy,
    label: String,
    pts: &[(f64, f64, f64, f64)],
) -> Result<(), String> {
    let c = color(s);
    let mut band: Vec<(f64, f64)> = pts.iter().map(|&(x, _, _, h)| (x, h)).collect();
    band.extend(pts.iter().rev().map(|&(x, _, l, _)| (x, l)));
    chart
        .draw_series(std::iter::once(Polygon::new(band, c.mix(0.15))))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|&(x, v, _, _)| (x, v)),
            c.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    Ok(())
}

/// A vertical line at `x` from 0 to `ymax`, labelled for the legend.
fn marker(chart: &mut Chart, x: f64, ymax: f64, c: RGBColor, label: String) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, ymax)],
            c.stroke_width(1),
        )))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(1)));
    Ok(())
}

/// The legend in the upper left, over a white background.
pub(super) fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| e.to_string())
}

/// Axes from 0 to `xmax` and to `ymax` with their descriptions.
pub(super) fn axes<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    (xmax, ymax): (f64, f64),
    desc: (&str, &str),
) -> Result<Chart<'a, 'b>, String> {
    axes_over(area, caption, (0.0..xmax, 0.0..ymax), desc)
}

/// Axes over the ranges `x` and `y` (a residual's goes below 0) with their descriptions.
pub(super) fn axes_over<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_desc, y_desc): (&str, &str),
) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The top of a y axis: the highest value with 8 % headroom.
pub(super) fn y_top(highs: impl Iterator<Item = f64>) -> f64 {
    highs.fold(0.0f64, f64::max).max(1e-3) * 1.08
}

/// Predicted completion vs working-set fraction, one line and 95 % band per
/// strategy, this workload and the crossover marked. Returns the SVG text.
pub fn sweep_svg(p: &Prediction, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = y_top(
            p.sweep
                .iter()
                .flat_map(|pt| pt.completion.iter().map(|(_, e)| e.high)),
        );
        let mut chart = axes(
            &root,
            title,
            (100.0, ymax),
            (
                "working set: % of the image's uncompressed bytes read",
                "predicted total completion (s)",
            ),
        )?;
        for s in Strategy::ALL {
            let pts: Vec<(f64, f64, f64, f64)> = p
                .sweep
                .iter()
                .filter_map(|pt| {
                    pt.completion
                        .iter()
                        .find(|(x, _)| *x == s)
                        .map(|(_, e)| (pt.fraction * 100.0, e.value, e.low, e.high))
                })
                .collect();
            strategy_line(&mut chart, s, s.name().to_string(), &pts)?;
        }
        let wf = p.workload.working_set_fraction * 100.0;
        marker(
            &mut chart,
            wf,
            ymax,
            BLACK,
            format!("this workload ({wf:.1} %)"),
        )?;
        if let Some(x) = p.crossover_fraction {
            let xc = x * 100.0;
            marker(
                &mut chart,
                xc,
                ymax,
                GREY,
                format!("lazy = eager at {xc:.1} %"),
            )?;
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Predicted cold start (left) and completion (right) vs the registry's
/// RTT, one line and 95 % band per strategy, each RTT where the fastest
/// strategy changes marked and named. Returns the SVG text.
pub fn rtt_svg(p: &Prediction, title: &str) -> Result<String, String> {
    let sweep = &p.rtt_sweep;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1400, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(700);
        let bw = super::advise::path_bandwidth(&sweep.path);
        let xmax = sweep.max_rtt_s.0 * 1e3;
        for (area, o) in [
            (&left, Objective::FastestStart),
            (&right, Objective::FastestCompletion),
        ] {
            let (name, pick): (&str, fn(&RttStrategyPoint) -> Estimate) = match o {
                Objective::FastestStart => ("cold start (to ready)", |x| x.cold_start),
                _ => ("total completion", |x| x.completion),
            };
            let ymax = y_top(
                sweep
                    .points
                    .iter()
                    .flat_map(|pt| pt.strategies.iter().map(|x| pick(x).high)),
            );
            let mut chart = axes(
                area,
                &format!("{name} at {bw}"),
                (xmax, ymax),
                (
                    "round-trip time to the registry (ms)",
                    &format!("predicted {name} (s)"),
                ),
            )?;
            for s in Strategy::ALL {
                let pts: Vec<(f64, f64, f64, f64)> = sweep
                    .points
                    .iter()
                    .filter_map(|pt| {
                        let e = pick(pt.strategies.iter().find(|x| x.strategy == s)?);
                        Some((pt.rtt_s.0 * 1e3, e.value, e.low, e.high))
                    })
                    .collect();
                let label = if sweep.candidates.contains(&s) {
                    s.name().to_string()
                } else {
                    format!("{} (not recommended: see the notes)", s.name())
                };
                strategy_line(&mut chart, s, label, &pts)?;
            }
            for c in sweep.winners(o).map_or(&[][..], |w| &w.crossovers[..]) {
                let label = format!("{} → {} at {}", c.from.name(), c.to.name(), c.rtt_s);
                marker(&mut chart, c.rtt_s.0 * 1e3, ymax, GREY, label)?;
            }
            legend(&mut chart)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::{rtt_svg, sweep_svg};
    use crate::commands::advise::example;
    use crate::predict::Objective;
    use crate::predict::replay::Strategy;
    use crate::predict::rtt_sweep::RttCrossover;
    use crate::report::fixtures::{example_prediction, example_prediction_on, svg_skeleton};
    use crate::units::Seconds;

    /// The plot of `advise --plot` on the bundled example: its elements,
    /// colours and labels (coordinates left out).
    #[test]
    fn bundled_example_structure() {
        let p = example_prediction(Some(example::GZIP_BYTES));
        let title = format!("{} — {}", example::FILES_NAME, example::TRACE_NAME);
        let svg = sweep_svg(&p, &title).expect("the plot draws");
        insta::assert_snapshot!(svg_skeleton(&svg));
    }

    /// The plot of `advise --rtt 20ms --bandwidth 500mbit --plot-rtt` on the
    /// bundled example: two panels, each a line and a band per strategy in
    /// its colour, named in the legend; no crossover, so no marker. (Not a
    /// snapshot: the axes' ticks follow the model's numbers.)
    #[test]
    fn rtt_plot_of_the_bundled_example_has_two_panels_of_three_strategies() {
        let link = crate::simulate::network::Link::new(0.020, 62.5e6);
        let p = example_prediction_on(Some(example::GZIP_BYTES), Some(link));
        let skeleton = svg_skeleton(&rtt_svg(&p, "example").expect("the plot draws"));
        let count = |needle: &str| skeleton.lines().filter(|l| l.contains(needle)).count();
        for colour in ["#1F77B4", "#D62728", "#2CA02C"] {
            assert_eq!(
                count(&format!("polygon opacity fill={colour}")),
                2,
                "{skeleton}"
            );
        }
        // The panels' own texts once, the shared axis and legend in each.
        for (text, n) in [
            ("cold start (to ready) at the path&apos;s 500 Mbit/s", 1),
            ("total completion at the path&apos;s 500 Mbit/s", 1),
            ("predicted cold start (to ready) (s)", 1),
            ("predicted total completion (s)", 1),
            ("round-trip time to the registry (ms)", 2),
            ("eager", 2),
            ("lazy", 2),
            ("lazy+prefetch", 2),
        ] {
            assert_eq!(count(&format!("\"{text}\"")), n, "{text}: {skeleton}");
        }
        assert!(!skeleton.contains('→'), "{skeleton}");
    }

    /// Each crossover is a marker named in its panel's legend; a strategy
    /// the recommendation leaves out says so.
    #[test]
    fn rtt_plot_marks_each_crossover_in_its_panel() {
        let mut p = example_prediction(Some(example::GZIP_BYTES));
        let done = p
            .rtt_sweep
            .winners
            .iter_mut()
            .find(|w| w.objective == Objective::FastestCompletion)
            .unwrap();
        done.crossovers.push(RttCrossover {
            rtt_s: Seconds(0.0123),
            from: Strategy::Lazy,
            to: Strategy::Eager,
        });
        p.rtt_sweep
            .candidates
            .retain(|s| *s != Strategy::LazyPrefetch);
        let svg = rtt_svg(&p, "example").expect("the plot draws");
        assert_eq!(svg.matches("lazy → eager at 12.3 ms").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("lazy+prefetch (not recommended: see the notes)")
                .count(),
            2
        );
        assert_eq!(
            svg.matches("at 10 Gbit/s, the default bandwidth").count(),
            2
        );
    }
}
