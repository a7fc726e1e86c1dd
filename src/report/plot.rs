//! SVG plots (plotters, SVG backend only: no fonts or native libraries).
use crate::predict::Prediction;
use crate::predict::replay::Strategy;
use plotters::prelude::*;

fn color(s: Strategy) -> RGBColor {
    match s {
        Strategy::Eager => RGBColor(0x1f, 0x77, 0xb4),
        Strategy::Lazy => RGBColor(0xd6, 0x27, 0x28),
        Strategy::LazyPrefetch => RGBColor(0x2c, 0xa0, 0x2c),
    }
}

/// Predicted completion vs working-set fraction, one line and 95 % band per
/// strategy, this workload and the crossover marked. Returns the SVG text.
pub fn sweep_svg(p: &Prediction, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = p
            .sweep
            .iter()
            .flat_map(|pt| pt.completion.iter().map(|(_, e)| e.high))
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.08;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0f64..100.0f64, 0.0f64..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("working set: % of the image's uncompressed bytes read")
            .y_desc("predicted total completion (s)")
            .draw()
            .map_err(|e| e.to_string())?;
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
                .label(s.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        let wf = p.workload.working_set_fraction * 100.0;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(wf, 0.0), (wf, ymax)],
                BLACK.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?
            .label(format!("this workload ({wf:.1} %)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(1)));
        if let Some(x) = p.crossover_fraction {
            let xc = x * 100.0;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(xc, 0.0), (xc, ymax)],
                    RGBColor(0x80, 0x80, 0x80).stroke_width(1),
                )))
                .map_err(|e| e.to_string())?
                .label(format!("lazy = eager at {xc:.1} %"))
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 18, y)],
                        RGBColor(0x80, 0x80, 0x80).stroke_width(1),
                    )
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK.mix(0.3))
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::sweep_svg;
    use crate::commands::advise::example;
    use crate::report::fixtures::{example_prediction, svg_skeleton};

    /// The plot of `advise --plot` on the bundled example: its elements,
    /// colours and labels (coordinates left out).
    #[test]
    fn bundled_example_structure() {
        let p = example_prediction(Some(example::GZIP_BYTES));
        let title = format!("{} — {}", example::FILES_NAME, example::TRACE_NAME);
        let svg = sweep_svg(&p, &title).expect("the plot draws");
        insta::assert_snapshot!(svg_skeleton(&svg));
    }
}
