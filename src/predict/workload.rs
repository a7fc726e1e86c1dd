//! A trace reduced to what the model needs, resolved against one image once.
//!
//! Each file access keeps its time, its duration as recorded, the file it hit
//! in the image's merged view, and the byte range; markers give the `ready`
//! and `exit` times. Compute gaps are derived here (docs/model.md): the time
//! between the end of one access and the start of the next, never negative.
//! The gap before the first access is the runtime starting the process on
//! the recording node; the model prices that as `process_start_s` instead.
//! Recording slows a workload down (FUSE round trips the recorder cannot
//! time land in the gaps), so recording cost must not be priced as compute.
//! When the trace's header has a reference run (the same workload timed
//! without the recorder), the gaps before and after `ready` are scaled down
//! so their sums match its durations (never up). Otherwise, when the header
//! states the recorder's overhead per open and per read, each gap loses the
//! overhead of the access that ends it.
use crate::estargz::table::{FileRef, ImageFiles};
use crate::trace::format::{Event, Op, RecorderOverhead, ReferenceRun, TraceReader};
use crate::trace::resolve::{Resolution, Resolver};
use std::io::BufRead;

/// Length meaning "to the end of the file".
const TO_EOF: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Open,
    Read,
}

/// One file access of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Start, ns since the workload started.
    pub t_ns: u64,
    /// Duration as recorded (0 if unknown).
    pub dur_ns: u64,
    pub file: FileRef,
    pub kind: AccessKind,
    pub offset: u64,
    /// Bytes; [`u64::MAX`] = to the end of the file.
    pub len: u64,
    /// The reader: the trace's pid (or tid); 0 when unknown. Kernel
    /// read-ahead without a task (pid 0) counts as the reader before it.
    pub lane: u32,
}

impl Access {
    pub fn len_opt(&self) -> Option<u64> {
        (self.len != TO_EOF).then_some(self.len)
    }
}

/// A workload ready to replay.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Accesses in trace order.
    pub accesses: Vec<Access>,
    /// Index of the first access after `ready` (= accesses.len() without ready).
    pub ready_index: usize,
    pub ready_ns: Option<u64>,
    pub exit_ns: Option<u64>,
    /// Paths the workload used that the image does not have (distinct).
    pub missing_paths: Vec<String>,
    pub missing_count: u64,
    /// Events skipped: failed operations, virtual paths, directories.
    pub skipped: u64,
    /// The recorder's overhead per access, taken out of the gaps.
    pub overhead: RecorderOverhead,
    /// Factors on the raw gaps before and after `ready`, from a reference
    /// run (replaces `overhead`).
    pub gap_scale: Option<(f64, f64)>,
    pub events: u64,
    /// Files first touched before `ready`, in first-touch order (the
    /// prioritized set of lazy+prefetch).
    pub startup_files: Vec<FileRef>,
    /// Every file touched, in first-touch order.
    pub touched_files: Vec<FileRef>,
    /// Runs of accesses during which two or more readers were active at
    /// once ([`concurrent_spans`]); none crosses `ready_index`.
    pub concurrent: Vec<Concurrent>,
    /// Lookups a FUSE lower answers with a round trip of its own, before
    /// and after `ready`: the recorder's (`trace record`) lookups that failed
    /// (absent names, which the kernel never caches) or found a path the
    /// workload never opened (an open's own lookup is in its price).
    /// Zero for other traces: a `stat(2)` in an strace is not a lookup the
    /// kernel could not answer.
    pub lookups: [u64; 2],
}

/// Accesses (an index range, trace order) of readers that ran at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrent {
    pub accesses: std::ops::Range<usize>,
    /// Distinct readers (lanes) among them.
    pub readers: usize,
}

/// How many missing paths to keep by name.
pub const MISSING_SHOWN: usize = 20;

impl Workload {
    /// Read a trace and resolve it against the image.
    pub fn from_trace<R: BufRead>(
        image: &ImageFiles,
        trace: &mut TraceReader<R>,
    ) -> Result<Workload, crate::trace::Error> {
        let mut b = Building::new(image, trace.header().recorder_overhead.unwrap_or_default());
        b.fuse_lookups = trace.header().recorder == crate::trace::format::RECORDED;
        while let Some(ev) = trace.next_event()? {
            b.event(&ev);
        }
        let mut w = b.finish();
        if let Some(r) = trace.header().reference_run {
            w.gap_scale = Some(w.scale_to(&r));
        }
        Ok(w)
    }

    /// Gap factors (before, after `ready`) that make the compute of this
    /// trace match a reference run's durations; 1 where the trace's gaps are
    /// already shorter.
    fn scale_to(&self, r: &ReferenceRun) -> (f64, f64) {
        let raw = |i: usize| self.raw_gap_ns(i) as f64 * 1e-9;
        let n = self.accesses.len();
        let factor = |target: f64, raw: f64| {
            if raw > 0.0 {
                (target.max(0.0) / raw).min(1.0)
            } else {
                1.0
            }
        };
        let exit_s = r.exit_ns as f64 * 1e-9;
        let before: f64 =
            (1..self.ready_index.min(n)).map(raw).sum::<f64>() + self.gap_to_ready_raw();
        // The gap that spans the marker counts up to it before, the rest after.
        let spanning = if self.ready_index >= 1 && self.ready_index < n {
            self.gap_to_ready_raw().min(raw(self.ready_index))
        } else {
            0.0
        };
        let after: f64 =
            (self.ready_index.max(1)..n).map(raw).sum::<f64>() - spanning + self.gap_to_exit_raw();
        match (self.ready_ns, r.ready_ns) {
            (Some(_), Some(ready)) => {
                let ready_s = ready as f64 * 1e-9;
                (factor(ready_s, before), factor(exit_s - ready_s, after))
            }
            // No split to match: one factor for the whole run.
            _ => {
                let k = factor(exit_s, before + after);
                (k, k)
            }
        }
    }

    /// A synthetic workload: open and read whole each file, no compute, ready
    /// after the first `ready_after` files.
    pub fn whole_files(files: &[FileRef], ready_after: usize) -> Workload {
        let mut w = Workload::default();
        for (i, &f) in files.iter().enumerate() {
            if i == ready_after {
                w.ready_index = w.accesses.len();
            }
            for kind in [AccessKind::Open, AccessKind::Read] {
                w.accesses.push(Access {
                    t_ns: 0,
                    dur_ns: 0,
                    file: f,
                    kind,
                    offset: 0,
                    len: if kind == AccessKind::Open { 0 } else { TO_EOF },
                    lane: 0,
                });
            }
        }
        if ready_after >= files.len() {
            w.ready_index = w.accesses.len();
        }
        w.startup_files = files[..ready_after.min(files.len())].to_vec();
        w.touched_files = files.to_vec();
        w.events = w.accesses.len() as u64;
        w
    }

    /// Time (ns) from the end of access `i − 1` to the start of access `i`,
    /// as recorded (`i` ≥ 1).
    fn raw_gap_ns(&self, i: usize) -> u64 {
        let p = &self.accesses[i - 1];
        self.accesses[i]
            .t_ns
            .saturating_sub(p.t_ns.saturating_add(p.dur_ns))
    }

    /// Compute gap (s) before access `i`: from the end of the previous access
    /// to its start, less the recorder's overhead for access `i`. 0 for the
    /// first access (see the module doc).
    pub fn gap_before(&self, i: usize) -> f64 {
        if i == 0 {
            return 0.0;
        }
        let raw = self.raw_gap_ns(i);
        if let Some((before, after)) = self.gap_scale {
            let raw = raw as f64 * 1e-9;
            return if i < self.ready_index {
                raw * before
            } else if i == self.ready_index {
                // Spans the marker: each side at its own factor.
                let to_ready = self.gap_to_ready_raw().min(raw);
                to_ready * before + (raw - to_ready) * after
            } else {
                raw * after
            };
        }
        let overhead = match self.accesses[i].kind {
            AccessKind::Open => self.overhead.open_ns,
            AccessKind::Read => self.overhead.read_ns,
        };
        raw.saturating_sub(overhead) as f64 * 1e-9
    }

    /// Compute after the last access before `ready` up to the marker (s).
    pub fn gap_to_ready(&self) -> f64 {
        self.gap_to_ready_raw() * self.gap_scale.map_or(1.0, |k| k.0)
    }

    fn gap_to_ready_raw(&self) -> f64 {
        match (
            self.ready_ns,
            self.ready_index.checked_sub(1).map(|i| self.accesses[i]),
        ) {
            (Some(r), Some(p)) => r.saturating_sub(p.t_ns.saturating_add(p.dur_ns)) as f64 * 1e-9,
            _ => 0.0,
        }
    }

    /// Compute from the last access (or `ready`) to `exit` (s).
    pub fn gap_to_exit(&self) -> f64 {
        self.gap_to_exit_raw() * self.gap_scale.map_or(1.0, |k| k.1)
    }

    fn gap_to_exit_raw(&self) -> f64 {
        let Some(x) = self.exit_ns else { return 0.0 };
        let last_end = self
            .accesses
            .last()
            .map(|p| p.t_ns.saturating_add(p.dur_ns))
            .unwrap_or(0);
        let from = if self.ready_index == self.accesses.len() {
            last_end.max(self.ready_ns.unwrap_or(0))
        } else {
            last_end
        };
        x.saturating_sub(from) as f64 * 1e-9
    }
}

/// A workload being read from a trace, event by event.
struct Building<'i> {
    resolver: Resolver<'i>,
    w: Workload,
    /// Files touched so far, per layer (dense: one test per event).
    seen: Vec<fixedbitset::FixedBitSet>,
    seen_missing: rustc_hash::FxHashSet<Box<str>>,
    ready_seen: bool,
    /// The last nonzero pid seen on an access.
    last_lane: u32,
    /// The trace's `stat` events are FUSE lookups (`trace record`).
    fuse_lookups: bool,
    /// Paths found by a lookup, and whether after `ready`; and the paths
    /// opened (successfully or not) anywhere in the trace.
    found: Vec<(Box<str>, bool)>,
    opened: rustc_hash::FxHashSet<Box<str>>,
}

impl<'i> Building<'i> {
    fn new(image: &'i ImageFiles, overhead: RecorderOverhead) -> Self {
        Building {
            resolver: Resolver::new(image),
            w: Workload {
                overhead,
                ..Default::default()
            },
            seen: image
                .layers
                .iter()
                .map(|l| fixedbitset::FixedBitSet::with_capacity(l.files.len()))
                .collect(),
            seen_missing: Default::default(),
            ready_seen: false,
            last_lane: 0,
            fuse_lookups: false,
            found: Vec::new(),
            opened: Default::default(),
        }
    }

    fn event(&mut self, ev: &Event<'_>) {
        let w = &mut self.w;
        w.events += 1;
        match ev.op {
            Op::Ready => {
                if !self.ready_seen {
                    self.ready_seen = true;
                    w.ready_ns = Some(ev.t);
                    w.ready_index = w.accesses.len();
                }
                return;
            }
            Op::Exit => {
                w.exit_ns.get_or_insert(ev.t);
                return;
            }
            Op::Open | Op::Read | Op::MmapRead => {}
            // Lookups the kernel did not cache are FUSE round trips on a
            // lazy rootfs (counted here, priced by the replay); listings
            // come from stargz's in-memory TOC: no model cost.
            Op::Stat | Op::Readdir => {
                w.skipped += 1;
                if ev.op == Op::Stat && self.fuse_lookups {
                    self.lookup(ev);
                }
                return;
            }
        }
        if ev.op == Op::Open
            && self.fuse_lookups
            && let Some(p) = ev.path.as_deref()
            && !self.opened.contains(p)
        {
            self.opened.insert(p.into());
        }
        if ev.failed() {
            w.skipped += 1;
            return;
        }
        let Some(path) = ev.path.as_deref() else {
            w.skipped += 1;
            return;
        };
        match self.resolver.resolve(path) {
            Resolution::File(f) => self.access(ev, f),
            Resolution::Missing => {
                w.missing_count += 1;
                if w.missing_paths.len() < MISSING_SHOWN && self.seen_missing.insert(path.into()) {
                    w.missing_paths.push(path.to_string());
                }
            }
            _ => w.skipped += 1,
        }
    }

    /// An open or read of an image file; its first touches make the
    /// touched (and, before `ready`, the startup) files.
    fn access(&mut self, ev: &Event<'_>, f: FileRef) {
        if ev.pid != 0 {
            self.last_lane = ev.pid;
        }
        let lane = self.last_lane;
        let w = &mut self.w;
        let kind = if ev.op == Op::Open {
            AccessKind::Open
        } else {
            AccessKind::Read
        };
        if !self.seen[f.layer].put(f.file) {
            w.touched_files.push(f);
            if !self.ready_seen {
                w.startup_files.push(f);
            }
        }
        w.accesses.push(Access {
            t_ns: ev.t,
            dur_ns: ev.dur.unwrap_or(0),
            file: f,
            kind,
            offset: ev.offset.unwrap_or(0),
            len: if kind == AccessKind::Open {
                0
            } else {
                ev.len.unwrap_or(TO_EOF)
            },
            lane,
        });
    }

    /// A recorded lookup: absent names are priced, found ones unless the
    /// path is opened (in [`Building::finish`], once every open is known).
    fn lookup(&mut self, ev: &Event<'_>) {
        let after = usize::from(self.ready_seen);
        match ev.path.as_deref() {
            Some(_) if ev.failed() => self.w.lookups[after] += 1,
            Some(p) => self.found.push((p.into(), self.ready_seen)),
            None => {}
        }
    }

    /// Without a `ready` marker, every access is before ready.
    fn finish(mut self) -> Workload {
        if !self.ready_seen {
            self.w.ready_index = self.w.accesses.len();
        }
        for (path, after) in std::mem::take(&mut self.found) {
            if !self.opened.contains(&path) {
                self.w.lookups[usize::from(after)] += 1;
            }
        }
        self.w.concurrent = concurrent_spans(&self.w.accesses, self.w.ready_index);
        self.w
    }
}

/// Index ranges of `accesses` during which two or more readers (lanes) were
/// active at once. A reader is active from the start of its first access to
/// the end of its last; readers whose active times overlap, directly or
/// through others, form one span, and a span of one reader is left out. A
/// span is cut at `ready` (the two phases are priced apart). Accesses are
/// taken in trace order; one out of time order joins the span its time falls
/// in.
pub fn concurrent_spans(accesses: &[Access], ready_index: usize) -> Vec<Concurrent> {
    let times = shared_times(accesses);
    if times.is_empty() {
        return Vec::new();
    }
    let span_of = |t: u64| {
        let i = times.partition_point(|s| s.0 <= t);
        (i > 0 && t <= times[i - 1].1).then(|| i - 1)
    };
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut open: Option<(usize, usize)> = None; // (span, first index)
    for (i, a) in accesses.iter().enumerate() {
        let s = span_of(a.t_ns);
        if let Some((span, first)) = open
            && (s != Some(span) || i == ready_index)
        {
            runs.push(first..i);
            open = None;
        }
        if open.is_none()
            && let Some(span) = s
        {
            open = Some((span, i));
        }
    }
    if let Some((_, first)) = open {
        runs.push(first..accesses.len());
    }
    runs.into_iter()
        .filter_map(|r| {
            let mut lanes: Vec<u32> = accesses[r.clone()].iter().map(|a| a.lane).collect();
            lanes.sort_unstable();
            lanes.dedup();
            (lanes.len() >= 2).then_some(Concurrent {
                accesses: r,
                readers: lanes.len(),
            })
        })
        .collect()
}

/// The times (ns, start and end, sorted) when two or more readers were
/// active: each reader's active time, merged where they overlap, kept where
/// two or more merged.
fn shared_times(accesses: &[Access]) -> Vec<(u64, u64)> {
    let mut active: rustc_hash::FxHashMap<u32, (u64, u64)> = Default::default();
    for a in accesses {
        let end = a.t_ns.saturating_add(a.dur_ns);
        let e = active.entry(a.lane).or_insert((a.t_ns, end));
        e.0 = e.0.min(a.t_ns);
        e.1 = e.1.max(end);
    }
    let mut lanes: Vec<(u64, u64)> = active.into_values().collect();
    lanes.sort_unstable();
    let mut times = Vec::new();
    let Some((&first, rest)) = lanes.split_first() else {
        return times;
    };
    let (mut cur, mut n) = (first, 1usize);
    for &l in rest {
        if l.0 < cur.1 {
            cur.1 = cur.1.max(l.1);
            n += 1;
        } else {
            if n >= 2 {
                times.push(cur);
            }
            (cur, n) = (l, 1);
        }
    }
    if n >= 2 {
        times.push(cur);
    }
    times
}

#[cfg(test)]
mod concurrent_tests {
    use super::*;

    /// An access by `lane` at `t` ms lasting `dur` ms.
    fn at(lane: u32, t: u64, dur: u64) -> Access {
        Access {
            t_ns: t * 1_000_000,
            dur_ns: dur * 1_000_000,
            file: FileRef { layer: 0, file: 0 },
            kind: AccessKind::Read,
            offset: 0,
            len: 1,
            lane,
        }
    }

    #[test]
    fn one_reader_is_never_concurrent() {
        let a: Vec<_> = (0..10).map(|i| at(7, i, 1)).collect();
        assert!(concurrent_spans(&a, a.len()).is_empty());
    }

    #[test]
    fn readers_one_after_the_other_are_not_concurrent() {
        let a = vec![at(1, 0, 1), at(1, 2, 1), at(2, 5, 1), at(2, 7, 1)];
        assert!(concurrent_spans(&a, a.len()).is_empty());
    }

    #[test]
    fn overlapping_readers_make_one_span_with_their_count() {
        // A shell (lane 1) alone, then three readers interleaved, then the shell again later.
        let mut a = vec![at(1, 0, 1), at(1, 1, 1)];
        for i in 0..9 {
            a.push(at(2 + (i % 3) as u32, 10 + i, 1));
        }
        a.push(at(9, 40, 1));
        let s = concurrent_spans(&a, a.len());
        assert_eq!(
            s,
            vec![Concurrent {
                accesses: 2..11,
                readers: 3
            }]
        );
    }

    #[test]
    fn a_span_is_cut_at_ready() {
        let a: Vec<_> = (0..8).map(|i| at(1 + (i % 2) as u32, i, 1)).collect();
        let s = concurrent_spans(&a, 4);
        assert_eq!(
            s,
            vec![
                Concurrent {
                    accesses: 0..4,
                    readers: 2
                },
                Concurrent {
                    accesses: 4..8,
                    readers: 2
                }
            ]
        );
    }

    #[test]
    fn kernel_read_ahead_without_a_task_counts_as_the_reader_before_it() {
        let image: ImageFiles =
            serde_json::from_str(crate::commands::advise::example::FILES).unwrap();
        let path = image.layers[0]
            .files
            .iter()
            .find(|f| f.kind == crate::estargz::table::FileKind::Reg)
            .unwrap()
            .path
            .clone();
        let mut trace = String::from(
            r#"{"format":"advisor-trace","version":1,"recorder":"test","clock":"monotonic"}"#,
        );
        trace.push('\n');
        for (t, pid) in [(1, 5), (2, 0), (3, 5), (4, 0)] {
            trace.push_str(&format!(
                r#"{{"t":{t},"pid":{pid},"op":"read","path":"/{path}","offset":0,"len":1}}"#
            ));
            trace.push('\n');
        }
        let mut r = TraceReader::new(std::io::Cursor::new(trace.into_bytes()), "t").unwrap();
        let w = Workload::from_trace(&image, &mut r).unwrap();
        assert_eq!(w.accesses.len(), 4);
        assert!(w.accesses.iter().all(|a| a.lane == 5), "{:?}", w.accesses);
        assert!(w.concurrent.is_empty());
    }
}
