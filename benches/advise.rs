//! Benchmark of `advisor advise` end to end, as a user runs it: a 1 M-event
//! trace against a 100 k-entry file table, on one core (`taskset -c 0` when
//! available), with the bundled profile. The budget (issue 7): under 2 s and
//! 500 MB. Run: `cargo bench --bench advise`.
//!
//! Reports the child's wall time, CPU time and peak RSS (wait4's rusage of
//! the child), and beside it, in the same run, `trace analyze` on the
//! same inputs (the join alone) so the ratio shows what prediction adds,
//! and `advise` on a network path (`--rtt 20ms --bandwidth 500mbit`: the
//! link priced on every part, the sweeps included; issue 15's budget is the
//! same).
//! Not a test: numbers vary by machine.
mod common;

use common::{Measured, measure};
use std::path::Path;

fn main() {
    let mut rng = fastrand::Rng::with_seed(42);
    let img = common::image(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    // ADVISOR_BENCH_DIR keeps the inputs (for profiling advise on them).
    let base = std::env::var_os("ADVISOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    let files = base.join("files.json");
    let trace = base.join("bench.jsonl");
    std::fs::write(&files, serde_json::to_vec(&img).expect("json")).expect("write files");
    common::write_trace(&img, &mut rng, &trace);
    drop(img);
    let p = |x: &Path| x.to_str().expect("utf-8").to_string();
    let (files, trace) = (p(&files), p(&trace));

    // Warm the page cache, then measure each twice, interleaved; keep the best.
    let analyze = [
        "trace", "analyze", "--format", "json", "--files", &files, "--trace", &trace,
    ];
    let advise = [
        "advise", "--format", "json", "--files", &files, "--trace", &trace,
    ];
    let on_path = [&advise[..], &["--rtt", "20ms", "--bandwidth", "500mbit"]].concat();
    let _ = measure(&analyze);
    let mut best: [Option<Measured>; 3] = [None, None, None];
    for _ in 0..2 {
        for (i, args) in [&analyze[..], &advise[..], &on_path[..]].iter().enumerate() {
            let a = measure(args);
            if best[i].as_ref().is_none_or(|b| a.wall < b.wall) {
                best[i] = Some(a);
            }
        }
    }
    let [an, ad, net] = best.map(|m| m.expect("measured twice"));
    println!(
        "advise: {} events, {} entries, one core: {:.2} s wall, {:.2} s CPU, peak RSS {:.0} MiB \
         (budget 2 s, 500 MB)",
        common::EVENTS,
        common::LAYERS * common::FILES_PER_LAYER,
        ad.wall,
        ad.cpu,
        ad.peak_rss_mib
    );
    println!(
        "trace analyze on the same inputs: {:.2} s wall, {:.2} s CPU, peak RSS {:.0} MiB; advise / analyze wall: {:.2}×",
        an.wall,
        an.cpu,
        an.peak_rss_mib,
        ad.wall / an.wall
    );
    println!(
        "advise on a path (--rtt 20ms --bandwidth 500mbit): {:.2} s wall, {:.2} s CPU, peak RSS {:.0} MiB; \
         on a path / loopback wall: {:.2}×",
        net.wall,
        net.cpu,
        net.peak_rss_mib,
        net.wall / ad.wall
    );
}
