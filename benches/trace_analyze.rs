//! Benchmark of `trace analyze`'s join: a 1 M-event trace against a
//! 100 k-entry file table (the `advise` budget is under 2 s and 500 MB on one
//! core for this size). Run: `cargo bench --bench trace_analyze`.
//!
//! Prints wall time of the join (trace streaming, path resolution, fetch
//! simulation) and the process's peak RSS. Not a test: numbers vary by machine.
use advisor::trace::analyze::{AnalyzeOptions, analyze};
use advisor::trace::format::TraceReader;
use common::{EVENTS, FILES_PER_LAYER, LAYERS, cpu_seconds, image, peak_rss_mib};
mod common;

use std::io::BufReader;
use std::time::Instant;

fn main() {
    let mut rng = fastrand::Rng::with_seed(42);
    let img = image(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.jsonl");
    common::write_trace(&img, &mut rng, &path);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rss_before = peak_rss_mib();
    // The parse alone, for a breakdown.
    let f = std::fs::File::open(&path).expect("open");
    let start = Instant::now();
    let mut r =
        TraceReader::new(BufReader::with_capacity(1 << 16, f), "bench.jsonl").expect("header");
    let mut n = 0u64;
    while let Some(e) = r.next_event().expect("event") {
        n += e.offset.unwrap_or(0) & 1;
    }
    let parse = start.elapsed();
    let f = std::fs::File::open(&path).expect("open");
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut r =
        TraceReader::new(BufReader::with_capacity(1 << 16, f), "bench.jsonl").expect("header");
    let report = analyze(&img, &mut r, &AnalyzeOptions::default()).expect("analyze");
    let took = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "trace analyze: {EVENTS} events ({:.0} MiB), {} entries: {:.2} s wall, {:.2} s CPU (parsing alone {:.2} s wall); peak RSS {:.0} MiB (before the join {:.0} MiB); \
         {} requests, {} fetched",
        size as f64 / 1048576.0,
        LAYERS * FILES_PER_LAYER,
        took.as_secs_f64(),
        cpu,
        parse.as_secs_f64() + (n as f64 * 0.0),
        peak_rss_mib().unwrap_or(f64::NAN),
        rss_before.unwrap_or(f64::NAN),
        report.total.requests,
        report.total.compressed_fetched,
    );
}
