//! `advisor image` costs (docs/images.md):
//! 1. build throughput of the two forms side by side, per content kind and
//!    gzip level: content MB per wall second, CPU use and compressed ratio,
//!    layer files on disk as `image build` writes them;
//! 2. inspect cost against a registry (the lab's, `ADVISOR_REGISTRY`): bytes
//!    and requests per layer and wall time, for layers whose TOC fits the tail
//!    read and a layer whose TOC does not.
//!
//!   cargo bench --bench image                          # 256 MiB per row
//!   ADVISOR_BENCH_SIZE=1G cargo bench --bench image    # the documented run
//!
//! Settings: ADVISOR_BENCH_SIZE (content bytes per build row; K/M/G),
//! ADVISOR_BENCH_LEVELS (default 6,9), ADVISOR_REGISTRY (skip part 2 when unset),
//! ADVISOR_BENCH_INSPECT_RUNS (default 5).
use advisor::filetable::inspect::{InspectOptions, inspect};
use advisor::image::build::{self, BuildSettings, Form, Progress};
use advisor::image::content::FileKey;
use advisor::image::plan;
use advisor::image::push::{self, Targets};
use advisor::image::spec::{self, Content};
use advisor::registry::{RegistryClient, RegistryOptions};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

fn parse_size(s: &str) -> Option<u64> {
    advisor::trace::synth::parse_size(s).ok()
}

fn env_size(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => parse_size(&v).unwrap_or_else(|| panic!("{key}={v}: expected a size like 256M")),
        Err(_) => default,
    }
}

/// CPU seconds (user + system, all threads) of this process, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A one-layer spec of `total` content bytes of one kind: a mix of file sizes
/// (log-normal around 256 KiB, up to 64 MiB) as application layers have.
fn spec_of(content: Content, total: u64, level: u32) -> serde_json::Value {
    let median = 256u64 << 10;
    // The mean of a log-normal with sigma 1.5 is median · e^(1.125) ≈ 3.1 × median.
    let count = (total / (median * 3)).max(1);
    json!({
        "base": "none",
        "seed": 1,
        "gzip_level": level,
        "layers": [{"name": "bench", "groups": [{
            "dir": "/data", "name": "d{i/64}/f{i:06}", "count": count,
            "size": {"lognormal": {"median": median, "sigma": 1.5, "min": 1, "max": "64MiB"}},
            "content": content,
        }]}]
    })
}

fn settings(spec: &spec::Spec) -> BuildSettings {
    BuildSettings::from_spec(spec, None)
}

fn generation_rate(content: Content, bytes: u64) -> f64 {
    let key = FileKey {
        seed: 1,
        layer: 0,
        group: 0,
        index: 0,
    };
    let mut r = key.reader(content, bytes);
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    while r.read(&mut buf).unwrap() > 0 {}
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn build_rows(total: u64, levels: &[u32]) {
    println!(
        "content generation, one thread: random {:.0} MB/s, text {:.0} MB/s, zeros {:.0} MB/s",
        generation_rate(Content::Random, 256 << 20),
        generation_rate(Content::Text, 256 << 20),
        generation_rate(Content::Zeros, 256 << 20)
    );
    println!(
        "\n| content | level | form | content MB/s (wall) | MB per CPU-second | cores busy | compressed / content |"
    );
    println!("|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().unwrap();
    for content in [Content::Random, Content::Text] {
        for &level in levels {
            let path = Path::new("bench.json");
            let spec = spec::parse(path, &spec_of(content, total, level).to_string()).unwrap();
            let plan = plan::plan(&spec, path, None, &[]).unwrap();
            let bytes = plan.payload_bytes();
            let s = settings(&spec);
            let row = |form: Option<Form>| {
                let cpu0 = cpu_seconds();
                let start = Instant::now();
                let compressed: u64 = match form {
                    Some(f) => build::build_form(&plan, &s, f, dir.path(), &Progress::hidden())
                        .unwrap()
                        .layers
                        .iter()
                        .map(|l| l.written.size)
                        .sum(),
                    None => {
                        let b = build::build(&plan, &s, &Progress::hidden()).unwrap();
                        b.forms()
                            .iter()
                            .flat_map(|f| f.layers.iter())
                            .map(|l| l.written.size)
                            .sum()
                    }
                };
                let secs = start.elapsed().as_secs_f64();
                let cpu = cpu_seconds() - cpu0;
                let content_bytes = if form.is_some() { bytes } else { 2 * bytes };
                let mb = content_bytes as f64 / 1e6;
                println!(
                    "| {content:?} | {level} | {} | {:.1} | {:.1} | {:.2} | {:.3} |",
                    form.map_or("both (image build)", |f| f.name()),
                    mb / secs,
                    mb / cpu,
                    cpu / secs,
                    compressed as f64 / content_bytes as f64
                );
            };
            row(Some(Form::Gzip));
            row(Some(Form::Estargz));
            row(None);
        }
    }
}

fn inspect_rows(registry: &str, runs: usize) {
    // Layers: the busybox base, 40 small files, 20,000 small files (a TOC far
    // larger than the 63.5 KiB tail read), 2 × 8 MiB random files.
    let spec_json = json!({
        "seed": 5, "chunk_size": "1MiB",
        "layers": [
            {"name": "small", "groups": [{"dir": "/app", "name": "m{i:03}.py", "count": 40, "size": "2KiB", "content": "text"}]},
            {"name": "many files", "groups": [{"dir": "/lib", "name": "p{i/500}/m{i:05}.py", "count": 20000,
                "size": {"lognormal": {"median": "1KiB", "sigma": 1.0, "max": "64KiB"}}, "content": "text"}]},
            {"name": "weights", "groups": [{"dir": "/models", "name": "w{i}.bin", "count": 2, "size": "8MiB"}]}
        ]
    });
    let path = Path::new("inspect-bench.json");
    let spec = spec::parse(path, &spec_json.to_string()).unwrap();
    let bb = advisor::image::base::Busybox::locate(Path::new(advisor::image::base::BUSYBOX_PATH))
        .expect("busybox-static");
    let plan = plan::plan(&spec, path, Some(&bb), &[]).unwrap();
    let built = build::build(&plan, &settings(&spec), &Progress::hidden()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reference = format!("{registry}/advisor-bench/inspect:v1");
    let targets = Targets::from_reference(&reference, false).unwrap();
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    rt.block_on(push::push(&client, &built, &targets)).unwrap();
    let esgz = targets.estargz.clone();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let client = RegistryClient::new(RegistryOptions::default()).unwrap();
        let start = Instant::now();
        let i = rt
            .block_on(inspect(&client, &esgz, InspectOptions::default()))
            .unwrap();
        times.push(start.elapsed().as_secs_f64());
        last = Some(i);
    }
    times.sort_by(f64::total_cmp);
    let i = last.unwrap();
    println!(
        "\ninspect {esgz}: median {:.1} ms over {runs} runs (min {:.1}, max {:.1})",
        times[times.len() / 2] * 1e3,
        times[0] * 1e3,
        times[times.len() - 1] * 1e3
    );
    println!(
        "\n| layer | blob | TOC entries | TOC member + footer | bytes fetched | requests | budget (TOC + 64 KiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (l, p) in i.layers.iter().zip(&plan.layers) {
        let t = l.toc.as_ref().unwrap();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            l.compressed_size,
            t.entries,
            t.compressed_size,
            l.ranged_bytes.0,
            l.ranged_requests,
            t.compressed_size + 65536
        );
    }
    let f = &i.fetched;
    println!(
        "\nmanifest + config: {} bytes in {} requests; total {} bytes in {} requests; budget {} bytes ({})",
        f.metadata_bytes.0,
        f.metadata_requests,
        f.total_bytes.0,
        f.total_requests,
        f.budget_bytes.0,
        if f.within_budget {
            "within"
        } else {
            "EXCEEDED"
        }
    );
    let image_bytes: u64 = i.layers.iter().map(|l| l.compressed_size).sum();
    println!(
        "image {} bytes compressed: inspect read {:.2} % of it",
        image_bytes,
        f.total_bytes.as_f64() / image_bytes as f64 * 100.0
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total = if smoke {
        4 << 20
    } else {
        env_size("ADVISOR_BENCH_SIZE", 256 << 20)
    };
    let levels: Vec<u32> = std::env::var("ADVISOR_BENCH_LEVELS")
        .unwrap_or_else(|_| if smoke { "1".into() } else { "6,9".into() })
        .split(',')
        .map(|l| {
            l.trim()
                .parse()
                .expect("ADVISOR_BENCH_LEVELS: gzip levels 0-9")
        })
        .collect();
    println!(
        "image build: {} MiB of content per row, {} rayon threads, {} CPUs",
        total >> 20,
        rayon::current_num_threads(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    build_rows(total, &levels);
    match std::env::var("ADVISOR_REGISTRY") {
        Ok(r) if !smoke => {
            let runs = std::env::var("ADVISOR_BENCH_INSPECT_RUNS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5);
            inspect_rows(&r, runs)
        }
        _ => println!("\ninspect: skipped (set ADVISOR_REGISTRY, e.g. eval \"$(lab/lab env)\")"),
    }
}
