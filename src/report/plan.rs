//! Rendering a fleet plan: the fleet line, the pods table, the registry
//! table, the binding constraints, the recommendation, and the SVG of pods
//! ready over time. Values arrive computed.
use super::plot::{Chart, axes, color, legend, y_top};
use super::{interval_s, table};
use crate::plan::{Plan, StrategyPlan};
use crate::simulate::fleet::{Constraint, Rollout};
use crate::units::{Bytes, Seconds};
use plotters::prelude::*;
use std::fmt::Write;

/// The human form of `advisor plan`.
pub fn render(p: &Plan, image_name: &str, trace_name: &str) -> String {
    let mut out = format!(
        "fleet: {} node(s), {}, registry egress {}{}{}\nimage {image_name}, workload {trace_name}\n\n",
        p.nodes,
        rollout(p.rollout, p.nodes),
        rate(p.registry_egress_bytes_per_s),
        p.registry_rps
            .map_or(String::new(), |r| format!(", at most {r:.0} requests/s")),
        p.node_bandwidth_bytes_per_s
            .map_or(String::new(), |r| format!(", node links {}", rate(r))),
    );
    let _ = writeln!(out, "{}\n", pods_table(p));
    let _ = writeln!(out, "{}\n", registry_table(p));
    for s in &p.strategies {
        let _ = writeln!(out, "{}", binding_line(s, p.nodes));
    }
    out.push('\n');
    let _ = writeln!(out, "recommendation: {}", p.recommendation.verdict);
    for n in &p.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// A rollout in words.
pub fn rollout(r: Rollout, nodes: u64) -> String {
    match r {
        Rollout::MaxSurge(s) if s >= nodes => "all at once".into(),
        Rollout::MaxSurge(s) => format!("at most {s} pulling at once"),
        Rollout::Waves(k) => format!("{k} wave(s) of {}", nodes.div_ceil(k.max(1))),
    }
}

/// Bandwidth as a network engineer writes it.
fn rate(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else {
        format!("{:.0} Mbit/s", bits / 1e6)
    }
}

fn pods_table(p: &Plan) -> String {
    let mut t = table([
        "strategy",
        "50 % ready",
        "95 % ready",
        "all ready",
        "95 % done",
        "all done",
        "images whole",
    ]);
    for s in &p.strategies {
        t.add_row(vec![
            s.strategy.name().to_string(),
            interval_s(&s.ready.p50),
            interval_s(&s.ready.p95),
            interval_s(&s.ready.all),
            interval_s(&s.done.p95),
            interval_s(&s.done.all),
            s.image_whole.map_or("—".into(), |e| interval_s(&e)),
        ]);
    }
    t.to_string()
}

fn registry_table(p: &Plan) -> String {
    let mut t = table([
        "strategy",
        "egress",
        "peak egress",
        "requests",
        "peak requests/s",
        "disk per node",
        "nodes at once before egress binds",
    ]);
    for s in &p.strategies {
        let disk = match s.fits_disk {
            Some(false) => format!("{} (does not fit)", s.disk_per_node),
            _ => s.disk_per_node.to_string(),
        };
        t.add_row(vec![
            s.strategy.name().to_string(),
            Bytes(s.egress.bytes.0).to_string(),
            rate(s.egress.peak_bytes_per_s),
            s.egress.requests.to_string(),
            format!("{:.0}", s.egress.peak_requests_per_s),
            disk,
            if s.nodes_before_egress_binds >= p.nodes {
                format!("all {}", p.nodes)
            } else {
                s.nodes_before_egress_binds.to_string()
            },
        ]);
    }
    t.to_string()
}

fn constraint_name(c: Constraint) -> &'static str {
    match c {
        Constraint::RegistryEgress => "the registry's egress",
        Constraint::RequestRate => "the registry's request rate",
        Constraint::NodeLink => "each node's own path",
        Constraint::Node => "the nodes' own work (round trips, unpacking, the workload)",
    }
}

/// `eager: bound by the registry's egress for 41 s (0 – 41 s), …`
fn binding_line(s: &StrategyPlan, nodes: u64) -> String {
    let parts: Vec<String> = s
        .binding
        .iter()
        .filter(|b| b.seconds > 0.0)
        .map(|b| {
            format!(
                "{} {} ({} – {})",
                constraint_name(b.constraint),
                Seconds(b.seconds),
                moment(b.from_s),
                moment(b.to_s)
            )
        })
        .collect();
    format!(
        "{} until all {nodes} done, bound by: {}",
        s.strategy.name(),
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join("; ")
        }
    )
}

/// A moment of the rollout: its start is "0 s".
fn moment(t: f64) -> String {
    if t <= 0.0 {
        "0 s".into()
    } else {
        Seconds(t).to_string()
    }
}

/// Pods ready (solid) and done (thin) over time, one colour per strategy.
pub fn svg(p: &Plan, title: &str) -> Result<String, String> {
    let xmax = y_top(
        p.strategies
            .iter()
            .flat_map(|s| s.timeline.last().map(|pt| pt.t_s)),
    );
    let ymax = p.nodes as f64 * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = axes(
            &root,
            title,
            (xmax, ymax),
            ("seconds since the rollout began", "pods"),
        )?;
        for s in &p.strategies {
            steps(&mut chart, s, true)?;
            steps(&mut chart, s, false)?;
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One strategy's pods ready (or done) as a step line.
fn steps(chart: &mut Chart, s: &StrategyPlan, ready: bool) -> Result<(), String> {
    let c = color(s.strategy);
    let width = if ready { 2 } else { 1 };
    let mut pts = Vec::new();
    let mut last = 0.0;
    for pt in &s.timeline {
        let n = if ready { pt.ready } else { pt.done } as f64;
        pts.push((pt.t_s, last));
        pts.push((pt.t_s, n));
        last = n;
    }
    let label = format!(
        "{} {}",
        s.strategy.name(),
        if ready { "ready" } else { "done" }
    );
    chart
        .draw_series(LineSeries::new(pts, c.stroke_width(width)))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(width)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{render, svg};
    use crate::commands::advise::example;
    use crate::plan::{PlanOptions, parse_target, plan};
    use crate::report::fixtures::{example_prediction_on, svg_skeleton};
    use crate::simulate::fleet::Rollout;
    use crate::simulate::network::Link;

    fn example_plan() -> crate::plan::Plan {
        let p = example_prediction_on(Some(example::GZIP_BYTES), Some(Link::new(0.005, 125e6)));
        let o = PlanOptions {
            nodes: 200,
            rollout: Rollout::Waves(4),
            registry_egress: 1.25e9,
            registry_rps: None,
            node_bandwidth: None,
            node_disk: Some(crate::units::Bytes(100 << 30)),
            target: Some(parse_target("ready-p95=5m").unwrap()),
        };
        plan(&p, &o).unwrap()
    }

    /// `advisor plan --nodes 200 --waves 4 --registry-egress 10gbit --rtt 5ms
    /// --bandwidth 1gbit --node-disk 100GiB --target ready-p95=5m` on the
    /// bundled example.
    #[test]
    fn bundled_example_plan() {
        insta::assert_snapshot!(render(
            &example_plan(),
            "example.files.json",
            "example.jsonl"
        ));
    }

    /// Two step lines (ready, done) per strategy in its colour, named in the legend.
    #[test]
    fn plot_has_ready_and_done_per_strategy() {
        let skeleton = svg_skeleton(&svg(&example_plan(), "200 nodes").unwrap());
        for name in ["eager", "lazy", "lazy+prefetch"] {
            for what in ["ready", "done"] {
                let label = format!("\"{name} {what}\"");
                assert!(skeleton.contains(&label), "{label}:\n{skeleton}");
            }
        }
    }
}
