//! Benchmark of `trace analyze`'s join: a 1 M-event trace against a
//! 100 k-entry file table (the `advise` budget is under 2 s and 500 MB on one
//! core for this size). Run: `cargo bench --bench trace_analyze`.
//!
//! Prints wall time of the join (trace streaming, path resolution, fetch
//! simulation) and the process's peak RSS. Not a test: numbers vary by machine.
use advisor::estargz::table::{Chunk, FileEntry, FileKind, ImageFiles, LayerFiles, LayerFormat};
use advisor::trace::analyze::{AnalyzeOptions, analyze};
use advisor::trace::format::{Clock, Event, Header, Op, TraceReader, TraceWriter};
use std::io::BufReader;
use std::time::Instant;

const LAYERS: usize = 4;
const FILES_PER_LAYER: usize = 25_000;
const EVENTS: usize = 1_000_000;
const CHUNK: u64 = 4 << 20;

fn image(rng: &mut fastrand::Rng) -> ImageFiles {
    let layers = (0..LAYERS)
        .map(|l| {
            let mut off = 512u64;
            let mut files = Vec::with_capacity(FILES_PER_LAYER);
            for i in 0..FILES_PER_LAYER {
                let dir = i % 500;
                if i < 500 {
                    files.push(FileEntry {
                        path: format!("l{l}/d{dir}"),
                        kind: FileKind::Dir,
                        size: 0,
                        link: None,
                        chunks: vec![],
                    });
                    continue;
                }
                // Mostly small files, a few large ones (several chunks).
                let size = if rng.u32(0..100) == 0 {
                    rng.u64(4 << 20..64 << 20)
                } else {
                    rng.u64(100..200_000)
                };
                let mut chunks = Vec::new();
                let mut co = 0;
                while co < size {
                    let s = CHUNK.min(size - co);
                    let clen = (s * 2 / 5).max(30) + 40;
                    chunks.push(Chunk {
                        offset: co,
                        size: s,
                        compressed_offset: off,
                        compressed_end: off + clen,
                    });
                    off += clen;
                    co += s;
                }
                off += 512;
                files.push(FileEntry {
                    path: format!("l{l}/d{dir}/f{i}"),
                    kind: FileKind::Reg,
                    size,
                    link: None,
                    chunks,
                });
            }
            LayerFiles {
                digest: format!("sha256:{l:064}"),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                blob_size: off + 100_000,
                uncompressed_size: files.iter().map(|f| f.size).sum(),
                format: LayerFormat::Estargz,
                toc_digest: None,
                toc_offset: Some(off),
                prefetch_end: None,
                no_prefetch: true,
                files,
            }
        })
        .collect();
    ImageFiles {
        version: 1,
        reference: "bench".into(),
        manifest_digest: "sha256:bench".into(),
        layers,
    }
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) this process has used: on a shared machine
/// wall time overstates the cost.
fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15: utime and stime in clock ticks (100 Hz on Linux).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let mut rng = fastrand::Rng::with_seed(42);
    let img = image(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.jsonl");
    // A working set of 30 % of the files, read in 4 KiB–128 KiB pieces.
    let regs: Vec<(String, u64)> = img
        .layers
        .iter()
        .flat_map(|l| l.files.iter())
        .filter(|f| f.kind == FileKind::Reg && rng.u32(0..10) < 3)
        .map(|f| (format!("/{}", f.path), f.size))
        .collect();
    {
        let mut w =
            TraceWriter::create(&path, &Header::new("bench", Clock::Monotonic)).expect("create");
        for i in 0..EVENTS {
            let (p, size) = &regs[rng.usize(0..regs.len())];
            if i == EVENTS / 2 {
                w.write(&Event::new(i as u64, 0, Op::Ready)).expect("write");
                continue;
            }
            let off = rng.u64(0..*size);
            let len = rng.u64(4096..131_072);
            w.write(&Event::read(
                i as u64 * 1000,
                1 + (i % 8) as u32,
                p.as_str(),
                off,
                Some(len),
            ))
            .expect("write");
        }
        w.finish().expect("flush");
    }
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
