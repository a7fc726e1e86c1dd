//! Synthetic traces for what-if analysis: a working set of a given size,
//! read with a given access pattern, from an image's merged view.
//! Deterministic: the same image, options and seed give the same trace.
//!
//! Owns the patterns' definitions (docs/trace-format.md). Must not simulate
//! fetching or print.
use super::Error;
use super::format::{Event, Op};
use crate::estargz::table::{FileKind, FileRef, ImageFiles};
use crate::estargz::toc::{NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME};
use crate::units::Bytes;
use serde::Serialize;

/// How the working set is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Files in TOC (layer, then archive) order, each read front to back.
    Sequential,
    /// Files picked at random; their `read_size` blocks read in random order
    /// across all of them.
    Random,
    /// The smallest files first (many files, few bytes each), each read whole,
    /// in random order.
    ManySmall,
}

/// How large the working set is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkingSet {
    /// A fraction (0–1) of the merged view's regular-file bytes.
    Fraction(f64),
    /// Uncompressed bytes.
    Bytes(u64),
}

impl std::str::FromStr for WorkingSet {
    type Err = String;

    /// `30%`, `0.3` (a fraction), or a size: `200MiB`, `1.5G`, `4096`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage; expected e.g. 30%"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`{s}` is outside 0%..100%"));
            }
            return Ok(WorkingSet::Fraction(v / 100.0));
        }
        if let Ok(v) = t.parse::<f64>()
            && t.contains('.')
        {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "`{s}` is a fraction outside 0..1; use a percentage (30%) or a size (200MiB)"
                ));
            }
            return Ok(WorkingSet::Fraction(v));
        }
        parse_size(t).map(WorkingSet::Bytes).map_err(|e| {
            format!("`{s}`: {e}; expected a percentage (30%), a fraction (0.3) or a size (200MiB)")
        })
    }
}

/// Sizes parse one way everywhere: [`crate::units::parse_size`].
pub use crate::units::parse_size;

/// Options of the synthesizer.
#[derive(Debug, Clone, Serialize)]
pub struct SynthOptions {
    pub working_set: WorkingSet,
    pub pattern: Pattern,
    /// Bytes per read event.
    pub read_size: u64,
    pub seed: u64,
    /// Emit `ready` once this fraction (0–1) of the working set has been read.
    pub ready_at: Option<f64>,
}

/// What the synthesizer produced.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    /// Uncompressed bytes of regular files in the merged view.
    pub image_bytes: Bytes,
    /// The requested working set in bytes.
    pub target_bytes: Bytes,
    /// Bytes the trace reads (the target, or the whole image if smaller).
    pub bytes: u64,
    pub files: u64,
    pub events: u64,
}

/// One file of the working set and the bytes of it to read (a prefix).
struct Pick {
    file: FileRef,
    bytes: u64,
}

/// Regular files of the merged view in TOC order, without the TOC and the
/// landmarks (files the workload cannot meaningfully read).
fn candidates(image: &ImageFiles) -> Vec<FileRef> {
    let mut v: Vec<FileRef> = image
        .merged()
        .into_iter()
        .filter(|(p, r)| {
            let f = image.file(*r);
            f.kind == FileKind::Reg
                && f.size > 0
                && !matches!(*p, TOC_TAR_NAME | PREFETCH_LANDMARK | NO_PREFETCH_LANDMARK)
        })
        .map(|(_, r)| r)
        .collect();
    v.sort_unstable_by_key(|r| (r.layer, r.file));
    v
}

/// Generate the trace, passing each event to `sink`.
pub fn synthesize(
    image: &ImageFiles,
    opts: &SynthOptions,
    mut sink: impl FnMut(&Event<'_>) -> Result<(), Error>,
) -> Result<SynthSummary, Error> {
    let read_size = opts.read_size.max(1);
    let mut files = candidates(image);
    let image_bytes: u64 = files.iter().map(|r| image.file(*r).size).sum();
    let target = match opts.working_set {
        WorkingSet::Fraction(f) => (image_bytes as f64 * f).round() as u64,
        WorkingSet::Bytes(b) => b,
    }
    .min(image_bytes);
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    match opts.pattern {
        Pattern::Sequential => {}
        Pattern::Random => rng.shuffle(&mut files),
        Pattern::ManySmall => files.sort_by_key(|r| (image.file(*r).size, r.layer, r.file)),
    }
    let mut picks: Vec<Pick> = Vec::new();
    let mut left = target;
    for r in files {
        if left == 0 {
            break;
        }
        let b = image.file(r).size.min(left);
        left -= b;
        picks.push(Pick { file: r, bytes: b });
    }
    if opts.pattern == Pattern::ManySmall {
        rng.shuffle(&mut picks);
    }
    let bytes = target - left;
    let ready_bytes = opts
        .ready_at
        .map(|f| (bytes as f64 * f.clamp(0.0, 1.0)).round() as u64);
    let mut st = Emitter {
        sink: &mut sink,
        events: 0,
        read: 0,
        ready_bytes,
        ready_done: false,
    };
    let path_of = |r: FileRef| format!("/{}", image.file(r).path);
    st.maybe_ready()?;
    match opts.pattern {
        Pattern::Sequential | Pattern::ManySmall => {
            for p in &picks {
                let path = path_of(p.file);
                st.emit(Event::on_path(0, 1, Op::Open, path.as_str()))?;
                let mut off = 0;
                while off < p.bytes {
                    let n = read_size.min(p.bytes - off);
                    st.read(&path, off, n)?;
                    off += n;
                }
            }
        }
        Pattern::Random => {
            let paths: Vec<String> = picks.iter().map(|p| path_of(p.file)).collect();
            let mut blocks: Vec<(u32, u64)> = Vec::new();
            for (i, p) in picks.iter().enumerate() {
                let i = u32::try_from(i).map_err(|_| Error::Invalid {
                    file: "synth".into(),
                    message: "too many files in the working set".into(),
                })?;
                for b in 0..p.bytes.div_ceil(read_size) {
                    blocks.push((i, b));
                }
            }
            rng.shuffle(&mut blocks);
            let mut opened = vec![false; picks.len()];
            for (i, b) in blocks {
                let p = &picks[i as usize];
                let path = &paths[i as usize];
                if !opened[i as usize] {
                    opened[i as usize] = true;
                    st.emit(Event::on_path(0, 1, Op::Open, path.as_str()))?;
                }
                let off = b * read_size;
                st.read(path, off, read_size.min(p.bytes - off))?;
            }
        }
    }
    if !st.ready_done && ready_bytes.is_some() {
        st.emit_ready()?;
    }
    st.emit(Event::new(0, 1, Op::Exit))?;
    Ok(SynthSummary {
        image_bytes: Bytes(image_bytes),
        target_bytes: Bytes(target),
        bytes,
        files: picks.len() as u64,
        events: st.events,
    })
}

struct Emitter<'s, F> {
    sink: &'s mut F,
    events: u64,
    read: u64,
    ready_bytes: Option<u64>,
    ready_done: bool,
}

impl<F: FnMut(&Event<'_>) -> Result<(), Error>> Emitter<'_, F> {
    fn emit(&mut self, e: Event<'_>) -> Result<(), Error> {
        self.events += 1;
        (self.sink)(&e)
    }

    fn emit_ready(&mut self) -> Result<(), Error> {
        self.ready_done = true;
        self.emit(Event::new(0, 0, Op::Ready))
    }

    fn maybe_ready(&mut self) -> Result<(), Error> {
        if !self.ready_done && self.ready_bytes.is_some_and(|r| self.read >= r) {
            self.emit_ready()?;
        }
        Ok(())
    }

    fn read(&mut self, path: &str, off: u64, n: u64) -> Result<(), Error> {
        self.emit(Event::read(0, 1, path, off, Some(n)))?;
        self.read += n;
        self.maybe_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::testing::{self, layer, reg};

    fn image() -> ImageFiles {
        testing::image(vec![layer(vec![
            reg("a", 400),
            reg("b", 100),
            reg("c", 300),
            reg("d", 200),
            reg(".prefetch.landmark", 1),
            reg("e", 0),
        ])])
    }

    fn run(opts: &SynthOptions) -> (Vec<Event<'static>>, SynthSummary) {
        let img = image();
        let mut v = Vec::new();
        let s = synthesize(&img, opts, |e| {
            v.push(e.clone().into_owned());
            Ok(())
        })
        .unwrap();
        (v, s)
    }

    fn opts(ws: WorkingSet, pattern: Pattern) -> SynthOptions {
        SynthOptions {
            working_set: ws,
            pattern,
            read_size: 150,
            seed: 7,
            ready_at: None,
        }
    }

    fn reads(v: &[Event<'_>]) -> Vec<(String, u64, u64)> {
        v.iter()
            .filter(|e| e.op == Op::Read)
            .map(|e| {
                (
                    e.path.as_deref().unwrap_or("").to_string(),
                    e.offset.unwrap_or(0),
                    e.len.unwrap_or(0),
                )
            })
            .collect()
    }

    #[test]
    fn sequential_reads_files_in_toc_order_up_to_the_working_set() {
        let (v, s) = run(&opts(WorkingSet::Fraction(0.5), Pattern::Sequential));
        assert_eq!(
            (s.image_bytes.0, s.target_bytes.0, s.bytes, s.files),
            (1000, 500, 500, 2)
        );
        assert_eq!(
            reads(&v),
            vec![
                ("/a".into(), 0, 150),
                ("/a".into(), 150, 150),
                ("/a".into(), 300, 100),
                ("/b".into(), 0, 100),
            ]
        );
        assert_eq!(v.last().map(|e| e.op), Some(Op::Exit));
    }

    #[test]
    fn many_small_picks_the_smallest_files_whole() {
        let (v, s) = run(&opts(WorkingSet::Bytes(300), Pattern::ManySmall));
        assert_eq!((s.bytes, s.files), (300, 2));
        let mut files: Vec<String> = reads(&v).into_iter().map(|r| r.0).collect();
        files.sort();
        files.dedup();
        assert_eq!(files, vec!["/b".to_string(), "/d".to_string()]);
    }

    #[test]
    fn random_reads_every_block_once_and_is_deterministic() {
        let o = opts(WorkingSet::Fraction(1.0), Pattern::Random);
        let (v1, s) = run(&o);
        let (v2, _) = run(&o);
        assert_eq!(v1, v2, "same seed, same trace");
        assert_eq!(s.bytes, 1000);
        let mut r = reads(&v1);
        assert_eq!(r.iter().map(|x| x.2).sum::<u64>(), 1000);
        r.sort();
        r.dedup();
        assert_eq!(r.len(), 3 + 1 + 2 + 2, "ceil(size/150) blocks per file");
        let (v3, _) = run(&SynthOptions { seed: 8, ..o });
        assert_ne!(reads(&v1), reads(&v3), "another seed, another order");
    }

    #[test]
    fn ready_is_emitted_at_the_fraction() {
        let (v, _) = run(&SynthOptions {
            ready_at: Some(0.5),
            ..opts(WorkingSet::Fraction(1.0), Pattern::Sequential)
        });
        let pos = v.iter().position(|e| e.op == Op::Ready).unwrap();
        let before: u64 = v[..pos]
            .iter()
            .filter(|e| e.op == Op::Read)
            .map(|e| e.len.unwrap_or(0))
            .sum();
        assert_eq!(before, 500, "ready once 500 bytes have been read");
        let (v, _) = run(&SynthOptions {
            ready_at: Some(0.0),
            ..opts(WorkingSet::Fraction(1.0), Pattern::Sequential)
        });
        assert_eq!(v[0].op, Op::Ready);
    }

    #[test]
    fn working_set_and_size_parsing() {
        assert_eq!("30%".parse::<WorkingSet>(), Ok(WorkingSet::Fraction(0.3)));
        assert_eq!("0.25".parse::<WorkingSet>(), Ok(WorkingSet::Fraction(0.25)));
        assert_eq!(
            "200MiB".parse::<WorkingSet>(),
            Ok(WorkingSet::Bytes(200 << 20))
        );
        assert_eq!(
            "1GB".parse::<WorkingSet>(),
            Ok(WorkingSet::Bytes(1_000_000_000))
        );
        assert_eq!("4096".parse::<WorkingSet>(), Ok(WorkingSet::Bytes(4096)));
        assert!("130%".parse::<WorkingSet>().is_err());
        assert!(
            "lots"
                .parse::<WorkingSet>()
                .unwrap_err()
                .contains("expected a percentage")
        );
        assert_eq!(parse_size("128k"), Ok(128 * 1024));
        assert_eq!(parse_size("1.5M"), Ok(1_572_864));
        assert!(parse_size("3 parsecs").is_err());
    }
}
