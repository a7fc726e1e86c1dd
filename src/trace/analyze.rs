//! The join of a trace with an image's file table: what the workload touched
//! and what a lazy pull would fetch for it, split at the `ready` marker.
//!
//! Owns the per-phase statistics and the classification of trace paths
//! (in the image, missing, virtual). Streams the trace (bounded memory: one
//! line, plus per-distinct-path and per-touched-file state). Drives the fetch
//! simulator for mount, prefetch and on-demand reads; background fetch is
//! time-driven and left to prediction, so it is not simulated here. Must not
//! print or time anything.
use super::Error;
use super::format::{Clock, Event, ImageId, Op, TraceReader};
use super::resolve::{Resolution, Resolver};
use crate::estargz::table::{FileKind, FileRef, ImageFiles, LayerFormat};
use crate::simulate::snapshotter::{FetchConfig, ReadOutcome, Simulator};
use crate::units::Bytes;
use fixedbitset::FixedBitSet;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;

/// Options of the join.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub fetch: FetchConfig,
    /// Simulate the mount (footer and TOC reads) and the prefetch of every layer.
    pub mount: bool,
    /// How many missing paths to list.
    pub show_missing: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            fetch: FetchConfig::default(),
            mount: true,
            show_missing: 20,
        }
    }
}

/// Statistics of one phase. Counts of distinct things (files, chunks, unique
/// bytes) count what was touched for the first time in this phase, so the
/// phases add up to the total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseStats {
    /// Trace events in the phase.
    pub events: u64,
    /// read and mmap_read events.
    pub reads: u64,
    /// open, stat and readdir events (answered from the TOC, no fetching).
    pub metadata_ops: u64,
    /// Regular files read for the first time.
    pub files_touched: u64,
    /// Uncompressed bytes the workload read (sum over reads, clamped to file sizes).
    pub bytes_read: Bytes,
    /// Uncompressed bytes read for the first time (distinct byte ranges).
    pub unique_bytes_read: Bytes,
    /// eStargz chunks touched for the first time.
    pub chunks_touched: u64,
    /// Chunks decompressed and verified (fs-cache misses).
    pub chunks_missed: u64,
    /// Uncompressed bytes decompressed and verified.
    pub decompressed_bytes: Bytes,
    /// Compressed bytes a lazy pull fetches over the network.
    pub compressed_fetched: Bytes,
    /// HTTP range requests (GETs) after the snapshotter's merging.
    pub requests: u64,
    /// Byte ranges in those requests.
    pub ranges: u64,
    /// Reads served from layers that are downloaded eagerly (not eStargz).
    pub bytes_read_locally: Bytes,
    /// `unique_bytes_read` over the image's uncompressed size.
    pub fraction_read: f64,
    /// `compressed_fetched` over the image's compressed size.
    pub fraction_fetched: f64,
}

impl PhaseStats {
    fn add_outcome(&mut self, o: &ReadOutcome) {
        self.chunks_touched += o.chunks_touched;
        self.chunks_missed += o.chunks_missed;
        self.decompressed_bytes += o.decompressed_bytes;
        self.compressed_fetched += o.network_bytes;
        self.requests += o.requests;
        self.ranges += o.ranges;
        self.bytes_read += o.bytes_served;
        self.bytes_read_locally += o.bytes_served_locally;
    }

    fn finish(&mut self, image: &ImageSummary) {
        self.fraction_read = ratio(self.unique_bytes_read.0, image.uncompressed_size.0);
        self.fraction_fetched = ratio(self.compressed_fetched.0, image.compressed_size.0);
    }

    fn sum(parts: &[&PhaseStats]) -> PhaseStats {
        let mut t = PhaseStats::default();
        for p in parts {
            t.events += p.events;
            t.reads += p.reads;
            t.metadata_ops += p.metadata_ops;
            t.files_touched += p.files_touched;
            t.bytes_read.0 += p.bytes_read.0;
            t.unique_bytes_read.0 += p.unique_bytes_read.0;
            t.chunks_touched += p.chunks_touched;
            t.chunks_missed += p.chunks_missed;
            t.decompressed_bytes.0 += p.decompressed_bytes.0;
            t.compressed_fetched.0 += p.compressed_fetched.0;
            t.requests += p.requests;
            t.ranges += p.ranges;
            t.bytes_read_locally.0 += p.bytes_read_locally.0;
        }
        t
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub reference: String,
    pub manifest_digest: String,
    pub layers: usize,
    /// Layers the stargz snapshotter can mount lazily (eStargz).
    pub lazy_layers: usize,
    pub compressed_size: Bytes,
    /// Regular-file bytes of the merged view (what a container can read).
    pub uncompressed_size: Bytes,
    /// Regular files in the merged view.
    pub files: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub file: String,
    pub recorder: String,
    pub clock: Clock,
    pub events: u64,
    /// Whether the trace has a `ready` marker (otherwise everything is "before ready").
    pub has_ready: bool,
    /// `t` of the first `ready` marker.
    pub ready_at_ns: Option<u64>,
    /// `t` of the `exit` marker.
    pub exit_at_ns: Option<u64>,
    /// Largest `t` seen.
    pub last_event_ns: u64,
}

/// Paths of one kind: distinct count, events naming them, the first few.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PathList {
    pub count: u64,
    pub events: u64,
    pub first: Vec<String>,
}

impl PathList {
    fn add(&mut self, path: &str, new: bool, keep: usize) {
        self.events += 1;
        if new {
            self.count += 1;
            if self.first.len() < keep {
                self.first.push(path.to_string());
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub format: LayerFormat,
    pub blob_size: Bytes,
    /// Compressed bytes of this layer fetched in all phases.
    pub fetched: Bytes,
    pub files_touched: u64,
}

/// The result of `trace analyze`.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyzeReport {
    pub image: ImageSummary,
    pub trace: TraceSummary,
    /// Footer and TOC reads (eStargz layers) and whole downloads (other layers).
    pub mount: PhaseStats,
    /// The snapshotter's prefetch at mount (landmark range, or `prefetch_size`).
    pub prefetch: PhaseStats,
    pub before_ready: PhaseStats,
    pub after_ready: PhaseStats,
    pub total: PhaseStats,
    /// Paths the workload used successfully that the image does not have.
    pub missing: PathList,
    /// Paths under /proc, /sys, /dev: runtime mounts, not image content.
    pub outside_image: PathList,
    /// Events whose operation failed while recording (e.g. ENOENT lookups).
    pub failed_ops: u64,
    /// Reads of paths that are not regular files (directories, devices, loops).
    pub reads_of_non_files: u64,
    /// Opens for writing without O_TRUNC: overlayfs copies the file up,
    /// reading it whole (counted as whole-file reads).
    pub copy_ups: u64,
    pub layers: Vec<LayerReport>,
    pub notes: Vec<String>,
}

/// A dense index of every file of the image (layer by layer), so per-file
/// state is a vector slot rather than a hash lookup per event.
struct FileIndex {
    base: Vec<usize>,
}

impl FileIndex {
    fn new(image: &ImageFiles) -> Self {
        let mut base = Vec::with_capacity(image.layers.len() + 1);
        let mut n = 0;
        for l in &image.layers {
            base.push(n);
            n += l.files.len();
        }
        base.push(n);
        FileIndex { base }
    }

    fn len(&self) -> usize {
        self.base.last().copied().unwrap_or(0)
    }

    fn of(&self, f: FileRef) -> usize {
        self.base[f.layer] + f.file
    }
}

/// Per-file distinct byte ranges read, to count unique bytes (start → end).
struct Coverage {
    files: Vec<Option<BTreeMap<u64, u64>>>,
}

impl Coverage {
    fn new(files: usize) -> Self {
        Coverage {
            files: vec![None; files],
        }
    }

    /// Add `[s, e)` to file `f` (dense index); return how many bytes were
    /// not covered before.
    fn add(&mut self, f: usize, s: u64, e: u64) -> u64 {
        if e <= s {
            return 0;
        }
        let m = self.files[f].get_or_insert_with(BTreeMap::new);
        let (mut ns, mut ne) = (s, e);
        let mut covered = 0u64;
        // The range starting at or before s may overlap.
        if let Some((&ps, &pe)) = m.range(..=s).next_back()
            && pe >= s
        {
            if pe >= e {
                return 0;
            }
            covered += pe - s;
            ns = ps;
            m.remove(&ps);
        }
        // Ranges starting inside [s, e].
        while let Some((&a, &b)) = m.range(s..=e).next() {
            covered += b.min(e) - a;
            ne = ne.max(b);
            m.remove(&a);
        }
        m.insert(ns, ne);
        (e - s) - covered
    }
}

/// Join a trace with an image. `trace` is an opened reader (header read).
pub fn analyze<R: BufRead>(
    image: &ImageFiles,
    trace: &mut TraceReader<R>,
    opts: &AnalyzeOptions,
) -> Result<AnalyzeReport, Error> {
    let resolver = Resolver::new(image);
    let image_summary = summarize_image(image, &resolver);
    let mut sim = Simulator::new(image, opts.fetch.clone());
    let at_mount = MountPhases::simulate(&mut sim, image, opts.mount);
    let summary = TraceSummary {
        file: trace.name().to_string(),
        recorder: trace.header().recorder.clone(),
        clock: trace.header().clock,
        events: 0,
        has_ready: false,
        ready_at_ns: None,
        exit_at_ns: None,
        last_event_ns: 0,
    };
    let header_image = trace.header().image.clone();
    let mut join = Join::new(image, resolver, sim, summary, opts.show_missing);
    while let Some(ev) = trace.next_event()? {
        join.event(&ev);
    }
    let notes = join.notes(image, header_image.as_ref());
    Ok(join.report(image, image_summary, at_mount, notes))
}

/// What the snapshotter fetches before the workload runs.
struct MountPhases {
    mount: PhaseStats,
    prefetch: PhaseStats,
}

impl MountPhases {
    /// Every layer's mount, then every layer's prefetch (nothing unless `mount`).
    fn simulate(sim: &mut Simulator<'_>, image: &ImageFiles, mount: bool) -> Self {
        let mut m = MountPhases {
            mount: PhaseStats::default(),
            prefetch: PhaseStats::default(),
        };
        if mount {
            for l in 0..image.layers.len() {
                m.mount.add_outcome(&sim.mount(l));
            }
            for l in 0..image.layers.len() {
                m.prefetch.add_outcome(&sim.prefetch(l));
            }
        }
        m
    }
}

/// Paths of one kind, each listed once.
#[derive(Default)]
struct SeenPaths {
    list: PathList,
    seen: HashSet<Box<str>>,
}

impl SeenPaths {
    fn add(&mut self, path: &str, keep: usize) {
        let new = !self.seen.contains(path);
        if new {
            self.seen.insert(path.into());
        }
        self.list.add(path, new, keep);
    }
}

/// The join's state while the trace streams by: the two phases' statistics
/// (before and after the first `ready`), what was touched, what was not in
/// the image.
struct Join<'i> {
    resolver: Resolver<'i>,
    sim: Simulator<'i>,
    index: FileIndex,
    touched_files: FixedBitSet,
    coverage: Coverage,
    per_layer_files: Vec<u64>,
    phases: [PhaseStats; 2],
    /// 0 before the first `ready` marker, 1 after it.
    phase: usize,
    summary: TraceSummary,
    missing: SeenPaths,
    outside: SeenPaths,
    show_missing: usize,
    failed_ops: u64,
    reads_of_non_files: u64,
    copy_ups: u64,
    extra_ready: u64,
}

impl<'i> Join<'i> {
    fn new(
        image: &'i ImageFiles,
        resolver: Resolver<'i>,
        sim: Simulator<'i>,
        summary: TraceSummary,
        show_missing: usize,
    ) -> Self {
        let index = FileIndex::new(image);
        Join {
            resolver,
            sim,
            touched_files: FixedBitSet::with_capacity(index.len()),
            coverage: Coverage::new(index.len()),
            index,
            per_layer_files: vec![0u64; image.layers.len()],
            phases: [PhaseStats::default(), PhaseStats::default()],
            phase: 0,
            summary,
            missing: SeenPaths::default(),
            outside: SeenPaths::default(),
            show_missing,
            failed_ops: 0,
            reads_of_non_files: 0,
            copy_ups: 0,
            extra_ready: 0,
        }
    }

    /// Count one event in its phase; markers move the phase, paths are joined.
    fn event(&mut self, ev: &Event<'_>) {
        self.summary.events += 1;
        self.summary.last_event_ns = self.summary.last_event_ns.max(ev.t);
        let st = &mut self.phases[self.phase];
        st.events += 1;
        match ev.op {
            Op::Ready => return self.ready(ev.t),
            Op::Exit => {
                self.summary.exit_at_ns.get_or_insert(ev.t);
                return;
            }
            Op::Read | Op::MmapRead => st.reads += 1,
            Op::Open | Op::Stat | Op::Readdir => st.metadata_ops += 1,
        }
        if ev.failed() {
            self.failed_ops += 1;
            return;
        }
        if let Some(path) = ev.path.as_deref() {
            self.on_path(ev, path);
        }
    }

    /// The first `ready` splits the phases; later ones are counted and ignored.
    fn ready(&mut self, t: u64) {
        if self.summary.has_ready {
            self.extra_ready += 1;
        } else {
            self.summary.has_ready = true;
            self.summary.ready_at_ns = Some(t);
            self.phase = 1;
        }
    }

    /// Classify the event's path; reads of image files (and copy-ups, whole
    /// reads) go to the simulator.
    fn on_path(&mut self, ev: &Event<'_>, path: &str) {
        let copy_up = ev.op == Op::Open && ev.flags.as_deref().is_some_and(opens_for_copy_up);
        match self.resolver.resolve(path) {
            Resolution::Virtual => self.outside.add(path, self.show_missing),
            Resolution::Missing => self.missing.add(path, self.show_missing),
            Resolution::Dir | Resolution::Other | Resolution::Loop => {
                if ev.op.is_read() {
                    self.reads_of_non_files += 1;
                }
            }
            Resolution::File(f) => {
                if ev.op.is_read() {
                    self.read(f, ev.offset.unwrap_or(0), ev.len);
                } else if copy_up {
                    self.copy_ups += 1;
                    self.read(f, 0, None);
                }
            }
        }
    }

    fn read(&mut self, f: FileRef, offset: u64, len: Option<u64>) {
        let st = &mut self.phases[self.phase];
        let fi = self.index.of(f);
        if !self.touched_files.put(fi) {
            st.files_touched += 1;
            self.per_layer_files[f.layer] += 1;
        }
        let o = self.sim.read(f, offset, len);
        st.add_outcome(&o);
        if o.bytes_served > Bytes::ZERO {
            st.unique_bytes_read.0 += self.coverage.add(fi, offset, offset + o.bytes_served.0);
        }
    }

    /// What the report's reader should know about the join.
    fn notes(&self, image: &ImageFiles, header_image: Option<&ImageId>) -> Vec<String> {
        let mut notes = vec![
            "background fetch is not simulated (it depends on timing: see `advise`); figures are \
             what mount, prefetch and on-demand reads fetch"
                .to_string(),
        ];
        if !self.summary.has_ready {
            notes.push(
                "the trace has no `ready` marker: every event counts as before ready (cold start \
                 = the whole run)"
                    .into(),
            );
        }
        if self.extra_ready > 0 {
            notes.push(format!(
                "{} further `ready` marker(s) ignored; the first one splits the phases",
                self.extra_ready
            ));
        }
        if let Some(h) = header_image
            && let Some(d) = h.digest.as_deref()
            && !image.manifest_digest.is_empty()
            && d != image.manifest_digest
        {
            notes.push(format!(
                "the trace was recorded on image {d}, but the file table is of {}; results may \
                 not match",
                image.manifest_digest
            ));
        }
        if self.missing.list.count > 0 {
            notes.push(format!(
                "{} path(s) the workload used are not in the image (listed under `missing`): the \
                 trace may belong to another image, or they come from volumes",
                self.missing.list.count
            ));
        }
        notes
    }

    fn report(
        self,
        image: &ImageFiles,
        image_summary: ImageSummary,
        at_mount: MountPhases,
        notes: Vec<String>,
    ) -> AnalyzeReport {
        let MountPhases {
            mut mount,
            mut prefetch,
        } = at_mount;
        let [mut before_ready, mut after_ready] = self.phases;
        for p in [
            &mut mount,
            &mut prefetch,
            &mut before_ready,
            &mut after_ready,
        ] {
            p.finish(&image_summary);
        }
        let mut total = PhaseStats::sum(&[&mount, &prefetch, &before_ready, &after_ready]);
        total.finish(&image_summary);
        let layers = image
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerReport {
                digest: l.digest.clone(),
                format: l.format,
                blob_size: Bytes(l.blob_size),
                fetched: Bytes(self.sim.layer_fetched_bytes(i)),
                files_touched: self.per_layer_files[i],
            })
            .collect();
        AnalyzeReport {
            image: image_summary,
            trace: self.summary,
            mount,
            prefetch,
            before_ready,
            after_ready,
            total,
            missing: self.missing.list,
            outside_image: self.outside.list,
            failed_ops: self.failed_ops,
            reads_of_non_files: self.reads_of_non_files,
            copy_ups: self.copy_ups,
            layers,
            notes,
        }
    }
}

/// An open for writing that is not truncating: overlayfs copies a lower
/// file up to the upper layer, reading all of it.
pub fn opens_for_copy_up(flags: &str) -> bool {
    let has = |f: &str| flags.split('|').any(|x| x.trim() == f);
    (has("O_WRONLY") || has("O_RDWR")) && !has("O_TRUNC")
}

fn summarize_image(image: &ImageFiles, resolver: &Resolver<'_>) -> ImageSummary {
    let mut files = 0usize;
    let mut bytes = 0u64;
    for &r in resolver.merged().values() {
        let f = image.file(r);
        if f.kind == FileKind::Reg {
            files += 1;
            bytes += f.size;
        }
    }
    ImageSummary {
        reference: image.reference.clone(),
        manifest_digest: image.manifest_digest.clone(),
        layers: image.layers.len(),
        lazy_layers: image.layers.iter().filter(|l| l.format.is_lazy()).count(),
        compressed_size: Bytes(image.compressed_size()),
        uncompressed_size: Bytes(bytes),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::{Chunk, FileEntry, LayerFiles};
    use crate::simulate::snapshotter::BLOCK_SIZE as B;

    fn reg(path: &str, size: u64, co: u64, ce: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: FileKind::Reg,
            size,
            link: None,
            chunks: vec![Chunk {
                offset: 0,
                size,
                compressed_offset: co,
                compressed_end: ce,
            }],
        }
    }

    fn image() -> ImageFiles {
        let mut bin = reg("bin", 0, 0, 0);
        bin.kind = FileKind::Dir;
        bin.chunks.clear();
        ImageFiles {
            version: 1,
            reference: "reg/app:1".into(),
            manifest_digest: "sha256:m".into(),
            layers: vec![LayerFiles {
                digest: "sha256:l".into(),
                media_type: String::new(),
                blob_size: 1_000_000,
                uncompressed_size: 3_000,
                format: LayerFormat::Estargz,
                toc_digest: None,
                toc_offset: Some(900_000),
                prefetch_end: None,
                no_prefetch: true,
                files: vec![
                    bin,
                    reg("bin/app", 1_000, 1_000, 20_000),
                    reg("etc/conf", 1_000, 20_000, 30_000),
                    reg("data/late", 1_000, 300_000, 310_000),
                ],
            }],
        }
    }

    fn run(lines: &[&str], opts: &AnalyzeOptions) -> AnalyzeReport {
        let mut text = String::from(
            r#"{"format":"advisor-trace","version":1,"recorder":"test","clock":"monotonic"}"#,
        );
        text.push('\n');
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let img = image();
        let mut r = TraceReader::new(text.as_bytes(), "t.jsonl").unwrap();
        analyze(&img, &mut r, opts).unwrap()
    }

    #[test]
    fn splits_at_ready_and_counts_first_touches_per_phase() {
        let r = run(
            &[
                r#"{"t":1,"pid":1,"op":"open","path":"/bin/app"}"#,
                r#"{"t":2,"pid":1,"op":"read","path":"/bin/app","offset":0,"len":600}"#,
                r#"{"t":3,"pid":1,"op":"read","path":"/bin/app","offset":400,"len":600}"#,
                r#"{"t":4,"pid":1,"op":"read","path":"/etc/conf","offset":0}"#,
                r#"{"t":5,"op":"ready"}"#,
                r#"{"t":6,"pid":1,"op":"read","path":"/bin/app","offset":0,"len":10}"#,
                r#"{"t":7,"pid":1,"op":"mmap_read","path":"/data/late","offset":0,"len":4096}"#,
                r#"{"t":8,"pid":1,"op":"exit","result":0}"#,
            ],
            &AnalyzeOptions::default(),
        );
        let b = &r.before_ready;
        assert_eq!((b.events, b.reads, b.metadata_ops), (5, 3, 1));
        assert_eq!(b.files_touched, 2);
        assert_eq!(b.bytes_read, Bytes(2_200));
        assert_eq!(b.unique_bytes_read, Bytes(2_000));
        // bin/app and etc/conf share block 0: one GET, then an http-cache hit.
        assert_eq!((b.requests, b.compressed_fetched), (1, Bytes(B)));
        assert_eq!((b.chunks_touched, b.chunks_missed), (2, 2));
        let a = &r.after_ready;
        assert_eq!(a.files_touched, 1);
        assert_eq!(a.bytes_read, Bytes(1_010), "mmap past EOF is clamped");
        assert_eq!(a.unique_bytes_read, Bytes(1_000));
        assert_eq!((a.requests, a.compressed_fetched), (1, Bytes(B)));
        // mount: footer (block 19) + TOC (block 18) = 2 GETs.
        assert_eq!(
            (r.mount.requests, r.mount.compressed_fetched),
            (2, Bytes(2 * B))
        );
        assert_eq!(r.prefetch, PhaseStats::default(), "no-prefetch landmark");
        assert_eq!(r.total.requests, 4);
        assert_eq!(r.total.compressed_fetched, Bytes(4 * B));
        assert_eq!(r.layers[0].fetched, Bytes(4 * B));
        assert_eq!(r.trace.ready_at_ns, Some(5));
        assert_eq!(r.trace.exit_at_ns, Some(8));
        assert!((r.total.fraction_read - 1.0).abs() < 1e-9);
        assert!((r.total.fraction_fetched - 0.2).abs() < 1e-9);
    }

    #[test]
    fn missing_and_virtual_paths_are_reported_not_ignored() {
        let r = run(
            &[
                r#"{"t":1,"pid":1,"op":"open","path":"/etc/hosts"}"#,
                r#"{"t":2,"pid":1,"op":"read","path":"/etc/hosts","offset":0}"#,
                r#"{"t":3,"pid":1,"op":"open","path":"/proc/self/maps"}"#,
                r#"{"t":4,"pid":1,"op":"open","path":"/nope","result":-1,"err":"ENOENT"}"#,
                r#"{"t":5,"pid":1,"op":"read","path":"/bin","offset":0}"#,
                r#"{"t":6,"pid":1,"op":"open","path":"/etc/conf","flags":"O_RDWR|O_CLOEXEC"}"#,
            ],
            &AnalyzeOptions {
                mount: false,
                ..AnalyzeOptions::default()
            },
        );
        assert_eq!(r.missing.count, 1);
        assert_eq!(r.missing.events, 2);
        assert_eq!(r.missing.first, vec!["/etc/hosts".to_string()]);
        assert_eq!(r.outside_image.count, 1);
        assert_eq!(r.failed_ops, 1);
        assert_eq!(r.reads_of_non_files, 1);
        assert_eq!(r.copy_ups, 1);
        assert_eq!(
            r.before_ready.bytes_read,
            Bytes(1_000),
            "copy-up reads the file whole"
        );
        assert!(r.notes.iter().any(|n| n.contains("no `ready` marker")));
        assert!(r.notes.iter().any(|n| n.contains("not in the image")));
        assert_eq!(r.mount, PhaseStats::default());
    }

    #[test]
    fn coverage_counts_each_byte_once() {
        let mut c = Coverage::new(1);
        let f = 0;
        assert_eq!(c.add(f, 10, 20), 10);
        assert_eq!(c.add(f, 30, 40), 10);
        assert_eq!(c.add(f, 15, 35), 10, "fills the gap 20..30");
        assert_eq!(c.add(f, 0, 50), 20, "0..10 and 40..50");
        assert_eq!(c.add(f, 5, 45), 0);
        assert_eq!(c.add(f, 50, 50), 0);
        assert_eq!(c.files[0].as_ref().map(BTreeMap::len), Some(1));
    }

    #[test]
    fn copy_up_flags() {
        assert!(opens_for_copy_up("O_RDWR|O_CLOEXEC"));
        assert!(opens_for_copy_up("O_WRONLY|O_APPEND"));
        assert!(!opens_for_copy_up("O_WRONLY|O_CREAT|O_TRUNC"));
        assert!(!opens_for_copy_up("O_RDONLY|O_CLOEXEC"));
    }
}
