//! Throughput and memory of advisor's layer writers (eStargz and plain gzip
//! forms) on a synthetic layer generated on the fly, written to a counting
//! sink. Results and how to read them: docs/estargz.md.
//!
//!   cargo bench --bench estargz                         # 256 MiB, levels 1,6,9
//!   ADVISOR_BENCH_SIZE=2G cargo bench --bench estargz   # the documented run
//!
//! Settings: ADVISOR_BENCH_SIZE (bytes, or with K/M/G), ADVISOR_BENCH_LEVELS
//! (comma list, default 1,6,9), ADVISOR_BENCH_CHUNK (eStargz chunk size,
//! default 4M). Peak RSS is VmHWM from /proc/self/status, reset before each run
//! through /proc/self/clear_refs (Linux ≥ 4.0), so each row has its own peak.
use advisor::estargz::writer::{EntryHeader, EstargzWriter, GzipWriter, WriterOptions};
use std::io::{self, Read, Write};
use std::time::Instant;

/// File sizes of the synthetic layer, cycled until the size is reached: a mix
/// of large (several chunks), medium and small files, as application images
/// have. Sizes in bytes.
const FILE_SIZES: [u64; 16] = [
    4 << 10,
    16 << 10,
    1 << 20,
    2 << 10,
    64 << 10,
    12 << 20,
    8 << 10,
    300 << 10,
    32 << 10,
    1 << 10,
    3 << 20,
    128 << 10,
    40 << 20,
    24 << 10,
    600 << 10,
    6 << 20,
];

/// Words the corpus is made of.
const WORDS: [&[u8]; 16] = [
    b"the ", b"lazy ", b"pull ", b"image ", b"layer ", b"chunk ", b"file ", b"read ", b"fetch ",
    b"cache ", b"start ", b"ready\n", b"0x4f3a ", b"return ", b"struct ", b"{}\n",
];

/// Size of the pre-generated corpus files are cut from.
const CORPUS: usize = 16 << 20;

/// Dictionary words with one random 8-byte run in four: text-like content
/// about 2:1 compressible by gzip. Generated once, so that producing file
/// content costs a memcpy and the benchmark measures the writer.
fn corpus() -> &'static [u8] {
    static C: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(CORPUS + 16);
        while out.len() < CORPUS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(4) {
                out.extend_from_slice(&x.to_le_bytes());
            } else {
                out.extend_from_slice(WORDS[(x >> 8) as usize % WORDS.len()]);
            }
        }
        out.truncate(CORPUS);
        out
    })
}

/// A file's content: the corpus from a seed-dependent start, wrapping.
struct Synth {
    pos: usize,
    left: u64,
}

impl Synth {
    fn new(seed: u64, len: u64) -> Self {
        Synth {
            pos: (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % CORPUS,
            left: len,
        }
    }
}

impl Read for Synth {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let c = corpus();
        let n = buf.len().min(self.left as usize).min(CORPUS - self.pos);
        buf[..n].copy_from_slice(&c[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % CORPUS;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A sink that counts bytes.
#[derive(Default)]
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The layer's entries: a directory per 64 files, then the files.
fn entries(total: u64) -> Vec<EntryHeader> {
    let mut out = Vec::new();
    let mut sum = 0;
    let mut i = 0usize;
    while sum < total {
        if i.is_multiple_of(64) {
            out.push(EntryHeader::dir(format!("d{:04}", i / 64)));
        }
        let size = FILE_SIZES[i % FILE_SIZES.len()].min(total - sum);
        let mut h = EntryHeader::file(format!("d{:04}/f{i:06}", i / 64), size);
        h.mtime = 1_700_000_000;
        out.push(h);
        sum += size;
        i += 1;
    }
    out
}

trait Append {
    fn add(&mut self, h: &EntryHeader, r: Synth) -> Result<(), advisor::estargz::Error>;
}
impl<W: Write> Append for EstargzWriter<W> {
    fn add(&mut self, h: &EntryHeader, r: Synth) -> Result<(), advisor::estargz::Error> {
        self.append(h, r)
    }
}
impl<W: Write> Append for GzipWriter<W> {
    fn add(&mut self, h: &EntryHeader, r: Synth) -> Result<(), advisor::estargz::Error> {
        self.append(h, r)
    }
}

fn feed(w: &mut dyn Append, entries: &[EntryHeader]) {
    for (i, h) in entries.iter().enumerate() {
        w.add(h, Synth::new(i as u64, h.size)).expect("append");
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system, all threads) used by this process so far,
/// from /proc/self/stat (clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

fn env_size(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => parse_size(&v)
            .unwrap_or_else(|| panic!("{key}={v}: expected bytes, or a number with K, M or G")),
        Err(_) => default,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and
    // expects a quick run: then build a small layer once as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total = if smoke {
        8 << 20
    } else {
        env_size("ADVISOR_BENCH_SIZE", 256 << 20)
    };
    let chunk = env_size("ADVISOR_BENCH_CHUNK", 4 << 20);
    let levels: Vec<u32> = std::env::var("ADVISOR_BENCH_LEVELS")
        .unwrap_or_else(|_| if smoke { "1".into() } else { "1,6,9".into() })
        .split(',')
        .map(|l| {
            l.trim()
                .parse()
                .expect("ADVISOR_BENCH_LEVELS: comma-separated gzip levels 0-9")
        })
        .collect();
    let entries = entries(total);
    let files = entries.iter().filter(|h| h.size > 0).count();
    println!(
        "synthetic layer: {:.0} MiB in {files} files, chunk {} KiB, {} rayon threads",
        total as f64 / (1 << 20) as f64,
        chunk >> 10,
        rayon::current_num_threads()
    );
    println!(
        "| form | level | MB/s (uncompressed, wall) | MB per CPU-second | cores busy | compressed / uncompressed | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &level in &levels {
        for form in ["gzip", "estargz"] {
            reset_peak();
            let opts = WriterOptions {
                chunk_size: chunk,
                level,
                label: "bench".into(),
            };
            let start = Instant::now();
            let cpu0 = cpu_seconds();
            let layer = if form == "gzip" {
                let mut w = GzipWriter::new(Count::default(), opts).expect("options");
                feed(&mut w, &entries);
                w.finish().expect("finish").0
            } else {
                let mut w = EstargzWriter::new(Count::default(), opts).expect("options");
                feed(&mut w, &entries);
                w.finish().expect("finish").0
            };
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            let mb = layer.uncompressed_size as f64 / 1e6;
            println!(
                "| {form} | {level} | {:.1} | {:.1} | {:.2} | {:.3} | {:.0} |",
                mb / secs,
                mb / cpu,
                cpu / secs,
                layer.size as f64 / layer.uncompressed_size as f64,
                peak_rss_mib()
            );
        }
    }
}
