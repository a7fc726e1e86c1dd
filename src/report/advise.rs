//! Rendering a prediction: the summary, the strategies table, the breakdown
//! and the recommendation. Values arrive computed.
use super::{interval_s, table};
use crate::predict::replay::{Part, Strategy};
use crate::predict::rtt_sweep::{BandwidthFrom, RttSweep, RttWinners, SweptPath};
use crate::predict::{Objective, Prediction, Recommendation};
use crate::units::{Bytes, Seconds};
use std::fmt::Write;

/// The human form of `advisor advise`, section by section.
pub fn render(p: &Prediction, image_name: &str, trace_name: &str) -> String {
    let mut out = summary(p, image_name, trace_name);
    out.push('\n');
    let _ = writeln!(out, "{}", strategies_table(p));
    out.push('\n');
    if let Some(net) = network_table(p) {
        let _ = writeln!(out, "{net}");
        out.push('\n');
    }
    let _ = writeln!(out, "{}", breakdown_table(p));
    let _ = writeln!(out, "(parts: before ready + after ready)\n");
    for r in &p.recommendations {
        let _ = writeln!(out, "{}", recommendation(r));
    }
    out.push('\n');
    let _ = writeln!(out, "{}", crossover(p));
    for o in [Objective::FastestStart, Objective::FastestCompletion] {
        if let Some(line) = rtt_crossover(&p.rtt_sweep, o) {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(out, "{}", rule_of_thumb(p));
    for line in background(p) {
        let _ = writeln!(out, "{line}");
    }
    for n in &p.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if !p.workload.missing_paths.is_empty() {
        let _ = writeln!(
            out,
            "missing from the image: {}",
            p.workload.missing_paths.join(", ")
        );
    }
    out
}

/// The image line and the workload line.
fn summary(p: &Prediction, image_name: &str, trace_name: &str) -> String {
    let i = &p.image;
    let w = &p.workload;
    format!(
        "image {image_name}: {} layer(s), {} files, {} uncompressed, {} eStargz / {} gzip\n\
         workload {trace_name}: {} files touched ({} before ready), {} read = {:.1} % of the image, compute {} before ready + {} after\n",
        i.layers,
        i.entries,
        i.uncompressed_bytes,
        i.estargz_bytes,
        i.gzip_bytes,
        w.files_touched,
        w.files_before_ready,
        w.bytes_read,
        w.working_set_fraction * 100.0,
        w.compute_before_ready_s,
        w.compute_after_ready_s
    ) + &lookups_line(w)
}

/// The lookups a lazy rootfs pays a FUSE round trip for, when the trace
/// has any (a recorded one).
fn lookups_line(w: &crate::predict::WorkloadSummary) -> String {
    let n = w.fuse_lookups_before_ready + w.fuse_lookups_after_ready;
    if n == 0 {
        return String::new();
    }
    format!(
        "lookups that are not opens (absent names, directories, stats): {n} ({} before ready), a FUSE round trip each when lazy\n",
        w.fuse_lookups_before_ready
    )
}

/// Per lazy strategy: what background fetch downloads after the run and
/// when the image is whole on the node.
fn background(p: &Prediction) -> Vec<String> {
    p.strategies
        .iter()
        .filter_map(|s| Some((s.strategy, s.background?)))
        .map(|(strategy, b)| {
            if b.requests == 0 {
                return format!(
                    "background fetch, {}: nothing left (the run fetched every block)",
                    strategy.name()
                );
            }
            format!(
                "background fetch, {}: the other {} in {} GETs, from {} (5 s after the last \
                 read) for {}; the image is whole on the node at {} (it goes on after the \
                 container exits, and shares the link with the next pull)",
                strategy.name(),
                b.bytes,
                b.requests,
                b.starts_s,
                interval_s(&b.duration),
                interval_s(&b.whole)
            )
        })
        .collect()
}

/// One row per strategy: cold start, completion, bytes and requests.
fn strategies_table(p: &Prediction) -> String {
    let mut t = table([
        "strategy",
        "cold start (to ready)",
        "total completion",
        "network",
        "disk",
        "requests",
    ]);
    for s in &p.strategies {
        t.add_row([
            s.strategy.name().to_string(),
            interval_s(&s.cold_start),
            interval_s(&s.completion),
            s.counts.network_bytes.to_string(),
            s.counts.disk_bytes.to_string(),
            s.counts.requests.to_string(),
        ]);
    }
    t.to_string()
}

/// For a prediction on a network path: the path, and how much of each
/// strategy's times is the network's and how much the node's.
fn network_table(p: &Prediction) -> Option<String> {
    let link = p.strategies.iter().find_map(|s| s.network)?.link;
    let mut t = table([
        "strategy",
        "cold start: network",
        "node",
        "completion: network",
        "node",
    ]);
    for s in &p.strategies {
        let n = s.network?;
        t.add_row([
            s.strategy.name().to_string(),
            n.cold_start_s.to_string(),
            Seconds(s.cold_start.value - n.cold_start_s.0).to_string(),
            n.completion_s.to_string(),
            Seconds(s.completion.value - n.completion_s.0).to_string(),
        ]);
    }
    Some(format!(
        "network path: RTT {}, {} per stream, {} in all, connection set-up {}\n{t}",
        Seconds(link.rtt_s),
        rate(link.stream_bytes_per_s),
        rate(link.total_bytes_per_s),
        Seconds(link.setup_s),
    ))
}

/// A bandwidth in bit/s as `tc` writes it: `500 Mbit/s`, `10 Gbit/s`, `2.5 Gbit/s`.
pub(super) fn rate(bytes_per_s: f64) -> String {
    let m = bytes_per_s * 8.0 / 1e6;
    if m < 1000.0 {
        return format!("{m:.0} Mbit/s");
    }
    let g = format!("{:.2}", m / 1000.0);
    format!("{} Gbit/s", g.trim_end_matches('0').trim_end_matches('.'))
}

/// Time to completion by part, one column per strategy; a part no strategy
/// has is left out.
fn breakdown_table(p: &Prediction) -> String {
    let mut header = vec!["time to completion".to_string()];
    header.extend(p.strategies.iter().map(|s| s.strategy.name().to_string()));
    let mut b = table(header);
    for part in Part::ALL {
        let cells: Vec<Option<(Seconds, Seconds)>> = p
            .strategies
            .iter()
            .map(|s| {
                s.breakdown
                    .iter()
                    .find(|x| x.part == part)
                    .map(|x| (x.before_ready_s, x.after_ready_s))
            })
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let mut row = vec![part.name().to_string()];
        row.extend(cells.into_iter().map(|c| match c {
            Some((before, after)) if after > Seconds::ZERO => format!("{before} + {after}"),
            Some((before, _)) => before.to_string(),
            None => "–".into(),
        }));
        b.add_row(row);
    }
    b.to_string()
}

/// One objective's winner and its margin over the runner-up.
fn recommendation(r: &Recommendation) -> String {
    let label = format!("{}:", r.objective.name());
    if r.margin <= 0.0 {
        return format!(
            "{label:<19} {} and {} tie",
            r.best.name(),
            r.runner_up.name()
        );
    }
    let margin = match r.objective {
        Objective::FewestBytes => format!(
            "{} fewer than {}",
            Bytes(r.margin.max(0.0) as u64),
            r.runner_up.name()
        ),
        _ => format!(
            "{} ({:.0} %) faster than {}",
            Seconds(r.margin),
            r.margin_fraction * 100.0,
            r.runner_up.name()
        ),
    };
    let conf = if r.confident || r.objective == Objective::FewestBytes {
        ""
    } else {
        " — intervals overlap: a close call"
    };
    format!("{label:<19} {}: {margin}{conf}", r.best.name())
}

/// Where lazy and eager finish together, if anywhere.
fn crossover(p: &Prediction) -> String {
    match p.crossover_fraction {
        Some(x) => {
            let (below, above) = if p.lazy_wins_below {
                ("lazy", "eager")
            } else {
                ("eager", "lazy")
            };
            format!(
                "crossover: lazy and eager finish together at {:.1} % of this image read on this node; {below} wins below, {above} above (this workload: {:.1} %)",
                x * 100.0,
                p.workload.working_set_fraction * 100.0
            )
        }
        None => {
            let who = if p.lazy_wins_below { "lazy" } else { "eager" };
            format!(
                "crossover: none — {who} finishes first at every working-set fraction for this image on this node"
            )
        }
    }
}

/// One objective of the RTT sweep: the fastest strategy from 0 to the
/// sweep's maximum RTT and where it changes, at the sweep's bandwidth.
fn rtt_crossover(sweep: &RttSweep, o: Objective) -> Option<String> {
    let w = sweep.winners(o)?;
    let what = match o {
        Objective::FastestStart => "start",
        _ => "completion",
    };
    let left_out: Vec<&str> = Strategy::ALL
        .iter()
        .filter(|s| !sweep.candidates.contains(s))
        .map(|s| s.name())
        .collect();
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        format!(" ({} not recommended: see the notes)", left_out.join(", "))
    };
    let mut line = format!(
        "RTT crossover ({what}; RTT 0–{} at {}): {}{left_out}",
        sweep.max_rtt_s,
        path_bandwidth(&sweep.path),
        rtt_ranges(w, o)
    );
    // Prefetch needs the image rebuilt: say where eager and lazy alone
    // change when they change elsewhere.
    if let Some(plain) = sweep.winners_without_prefetch(o)
        && plain.crossovers != w.crossovers
    {
        line.push_str(&format!(
            "\n  without prefetch (the image as it is): {}",
            rtt_ranges(plain, o)
        ));
    }
    Some(line)
}

/// The fastest strategy from RTT 0 up and each change.
fn rtt_ranges(w: &RttWinners, o: Objective) -> String {
    let verb = match o {
        Objective::FastestStart => "starts",
        _ => "finishes",
    };
    if w.crossovers.is_empty() {
        return format!("none — {} {verb} first at every RTT", w.best_at_zero.name());
    }
    let steps: Vec<String> = w
        .crossovers
        .iter()
        .map(|c| format!("{} up to {}", c.from.name(), c.rtt_s))
        .collect();
    let last = w.crossovers.last().map_or(w.best_at_zero, |c| c.to);
    format!("{}, then {}", steps.join(", then "), last.name())
}

/// The swept path's bandwidth, and whether it is the given path's or the default.
pub(super) fn path_bandwidth(p: &SweptPath) -> String {
    let bw = if p.stream_bytes_per_s == p.total_bytes_per_s {
        rate(p.total_bytes_per_s)
    } else {
        format!(
            "{} per stream, {} in all",
            rate(p.stream_bytes_per_s),
            rate(p.total_bytes_per_s)
        )
    };
    match p.bandwidth_from {
        BandwidthFrom::Path => format!("the path's {bw}"),
        BandwidthFrom::Default => format!("{bw}, the default bandwidth"),
    }
}

/// The 10 %/30 % rule of thumb's verdict and whether advisor agrees.
fn rule_of_thumb(p: &Prediction) -> String {
    let rot = &p.rule_of_thumb;
    let verdict = match rot.says {
        Some(s) => s.name(),
        None => "either (10–30 %: depends)",
    };
    let agrees = match (rot.says, rot.agrees) {
        (None, _) => String::new(),
        (Some(_), _) if rot.close_call => {
            " — advisor: too close to call (eager and lazy completion intervals overlap)".into()
        }
        (Some(_), true) => " — advisor agrees".into(),
        (Some(_), false) => {
            let best = p
                .recommendations
                .iter()
                .find(|r| r.objective == Objective::FastestCompletion)
                .map(|r| r.best)
                .unwrap_or(Strategy::Eager);
            format!(" — advisor disagrees: {} finishes first", best.name())
        }
    };
    format!(
        "rule of thumb ({:.1} % read): {verdict} for completion{agrees}",
        p.workload.working_set_fraction * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::commands::advise::example;
    use crate::report::fixtures::example_prediction;

    /// `advisor advise` with no arguments: the bundled example.
    #[test]
    fn bundled_example() {
        let p = example_prediction(Some(example::GZIP_BYTES));
        insta::assert_snapshot!(render(&p, example::FILES_NAME, example::TRACE_NAME));
    }

    /// `advise --rtt 20ms --bandwidth 500mbit` on the example: the path's
    /// share of every time.
    #[test]
    fn example_on_a_network_path() {
        let link = crate::simulate::network::Link::new(0.020, 62.5e6);
        let p =
            crate::report::fixtures::example_prediction_on(Some(example::GZIP_BYTES), Some(link));
        insta::assert_snapshot!(render(&p, example::FILES_NAME, example::TRACE_NAME));
    }

    /// `advise --files … --trace …` on the example: no gzip size given, so
    /// it is estimated from the eStargz form.
    #[test]
    fn example_files_and_trace() {
        let p = example_prediction(None);
        insta::assert_snapshot!(render(&p, example::FILES_NAME, example::TRACE_NAME));
    }

    /// Lazy+prefetch fastest at every RTT, eager and lazy alone changing
    /// places: the image as it is gets its own crossover line.
    #[test]
    fn a_crossover_without_prefetch_is_named_under_the_sweeps() {
        use crate::predict::Objective;
        use crate::predict::replay::Strategy;
        use crate::predict::rtt_sweep::{RttCrossover, RttWinners};
        use crate::units::Seconds;
        let mut p = example_prediction(Some(example::GZIP_BYTES));
        let text = render(&p, example::FILES_NAME, example::TRACE_NAME);
        assert!(!text.contains("without prefetch"), "{text}");
        p.rtt_sweep.without_prefetch = vec![RttWinners {
            objective: Objective::FastestCompletion,
            best_at_zero: Strategy::Lazy,
            crossovers: vec![RttCrossover {
                rtt_s: Seconds(0.0149),
                from: Strategy::Lazy,
                to: Strategy::Eager,
            }],
        }];
        let text = render(&p, example::FILES_NAME, example::TRACE_NAME);
        let line = text
            .lines()
            .skip_while(|l| !l.starts_with("RTT crossover (completion"))
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            line, "  without prefetch (the image as it is): lazy up to 14.9 ms, then eager",
            "{text}"
        );
    }
}
