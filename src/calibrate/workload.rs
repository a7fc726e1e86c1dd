//! Calibration workloads: shell scripts (busybox) made of segments, each
//! acting on one directory of a calibration image, with the same reads as a
//! [`Workload`] for the replay.
//!
//! Each segment is followed by `echo ADVISOR-MARK <name>`; advisor times the
//! marker lines as they arrive, so one run measures every segment. A segment
//! starts as few processes as it can (`cat dir/*` is one process whatever the
//! number of files; `dd` is one per offset), and its process count is a
//! regressor of its own, so process start-up does not leak into per-file or
//! per-byte parameters.
use crate::estargz::table::{FileKind, FileRef, ImageFiles};
use crate::predict::workload::{Access, AccessKind, Workload};
use serde::{Deserialize, Serialize};

/// Block size of the offset reads (`dd bs=`).
pub const OFFSET_READ: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Action {
    /// `cat DIR/* > /dev/null`: every file whole, in name order.
    CatAll,
    /// `head -c BYTES DIR/*`: the first bytes of every file.
    Head { bytes: u64 },
    /// `dd if=FILE bs=4096 skip=K count=1` at evenly spread offsets, `reads`
    /// per file, for the first `files` files.
    Offsets { files: usize, reads: usize },
    /// `cat` of every `step`-th file of the directory (the first, the
    /// step+1-th, …) in one process: small files far enough apart in the blob
    /// that each read is a range request of its own, which separates the cost
    /// of a request from the cost of its bytes and of a chunk.
    Sparse { step: usize },
    /// `cat DIR/*` of files an earlier segment read whole: their pages are in
    /// the page cache (stargz opens with `FOPEN_KEEP_CACHE`), so only the
    /// opens reach the filesystem. Separates per-open from per-chunk costs.
    Reread,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Marker name printed after it.
    pub name: String,
    /// Directory inside the image (absolute).
    pub dir: String,
    pub action: Action,
}

/// A calibration workload: segments in order; `ready_after` segments form
/// the startup (the `ready` marker is printed after them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalWorkload {
    pub segments: Vec<Segment>,
    pub ready_after: usize,
    /// Directories whose files a prioritized form of the image puts before
    /// the prefetch landmark (runs of strategy lazy+prefetch); empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefetch: Vec<String>,
}

/// Marker printed before any segment.
pub const START_MARK: &str = "start";
/// Marker printed after the startup segments.
pub const READY_MARK: &str = "ready";

impl CalWorkload {
    /// The `sh -c` script. Paths come from the image (checked clean by the
    /// TOC reader); they are quoted anyway.
    pub fn script(&self, image: &ImageFiles) -> String {
        let mut s = format!("echo 'ADVISOR-MARK {START_MARK}'; ");
        for (i, seg) in self.segments.iter().enumerate() {
            let dir = shell_quote(&seg.dir);
            match &seg.action {
                Action::CatAll | Action::Reread => s.push_str(&format!("cat {dir}/* >/dev/null; ")),
                Action::Head { bytes } => {
                    s.push_str(&format!("head -c {bytes} {dir}/* >/dev/null; "))
                }
                Action::Sparse { step } => {
                    s.push_str("cat");
                    for f in sparse_files(image, &seg.dir, *step) {
                        s.push(' ');
                        s.push_str(&shell_quote(&format!("/{}", image.file(f).path)));
                    }
                    s.push_str(" >/dev/null; ");
                }
                Action::Offsets { .. } => {
                    for (path, off) in offset_reads(image, seg) {
                        s.push_str(&format!(
                            "dd if={} bs={OFFSET_READ} skip={} count=1 2>/dev/null >/dev/null; ",
                            shell_quote(&path),
                            off / OFFSET_READ
                        ));
                    }
                }
            }
            s.push_str(&format!("echo 'ADVISOR-MARK {}'; ", seg.name));
            if i + 1 == self.ready_after {
                s.push_str(&format!("echo 'ADVISOR-MARK {READY_MARK}'; "));
            }
        }
        s
    }

    /// Processes each segment starts (for the regression).
    pub fn processes(&self, image: &ImageFiles, seg: &Segment) -> usize {
        match seg.action {
            Action::CatAll | Action::Head { .. } | Action::Reread | Action::Sparse { .. } => 1,
            Action::Offsets { .. } => offset_reads(image, seg).len(),
        }
    }

    /// The reads of each segment, as workload accesses, in script order; the
    /// first list is the process start (the shell binary, read through exec).
    pub fn accesses(&self, image: &ImageFiles) -> Vec<Vec<Access>> {
        let mut out = Vec::with_capacity(self.segments.len() + 1);
        let merged = image.merged();
        let mut start = Vec::new();
        if let Some(&sh) = merged.get("bin/busybox") {
            push_read(&mut start, sh, 0, None);
        }
        out.push(start);
        for seg in &self.segments {
            let mut v = Vec::new();
            match &seg.action {
                Action::CatAll => {
                    for f in files_in(image, &seg.dir) {
                        push_read(&mut v, f, 0, None);
                    }
                }
                Action::Head { bytes } => {
                    for f in files_in(image, &seg.dir) {
                        push_read(&mut v, f, 0, Some(*bytes));
                    }
                }
                Action::Sparse { step } => {
                    for f in sparse_files(image, &seg.dir, *step) {
                        push_read(&mut v, f, 0, None);
                    }
                }
                Action::Reread => {
                    for f in files_in(image, &seg.dir) {
                        v.push(Access {
                            t_ns: 0,
                            dur_ns: 0,
                            file: f,
                            kind: AccessKind::Open,
                            offset: 0,
                            len: 0,
                            lane: 0,
                        });
                    }
                }
                Action::Offsets { .. } => {
                    for (path, off) in offset_reads(image, seg) {
                        if let Some(&f) = merged.get(path.trim_start_matches('/')) {
                            push_read(&mut v, f, off, Some(OFFSET_READ));
                        }
                    }
                }
            }
            out.push(v);
        }
        out
    }

    /// Files of the prefetch directories, in their order (each in glob order).
    pub fn prefetch_files(&self, image: &ImageFiles) -> Vec<FileRef> {
        self.prefetch
            .iter()
            .flat_map(|d| files_in(image, d))
            .collect()
    }

    /// The whole run as one workload (ready after `ready_after` segments),
    /// with no compute: what `predict` replays for a calibration run.
    pub fn workload(&self, image: &ImageFiles) -> Workload {
        let segs = self.accesses(image);
        let mut w = Workload::default();
        let mut seen = std::collections::HashSet::new();
        for (i, seg) in segs.into_iter().enumerate() {
            // Segment 0 is the process start; segment i ≥ 1 is self.segments[i-1].
            if i == self.ready_after + 1 {
                w.ready_index = w.accesses.len();
                w.ready_ns = Some(0);
            }
            for a in seg {
                if seen.insert(a.file) {
                    w.touched_files.push(a.file);
                    if i <= self.ready_after {
                        w.startup_files.push(a.file);
                    }
                }
                w.accesses.push(a);
            }
        }
        if w.ready_ns.is_none() {
            w.ready_index = w.accesses.len();
            w.ready_ns = Some(0);
        }
        w.exit_ns = Some(0);
        w.events = w.accesses.len() as u64;
        w
    }
}

fn push_read(v: &mut Vec<Access>, f: FileRef, offset: u64, len: Option<u64>) {
    v.push(Access {
        t_ns: 0,
        dur_ns: 0,
        file: f,
        kind: AccessKind::Open,
        offset: 0,
        len: 0,
        lane: 0,
    });
    v.push(Access {
        t_ns: 0,
        dur_ns: 0,
        file: f,
        kind: AccessKind::Read,
        offset,
        len: len.unwrap_or(u64::MAX),
        lane: 0,
    });
}

/// Regular files directly in `dir` (absolute), in name order as a shell glob
/// lists them (byte order in the C locale busybox uses).
pub fn files_in(image: &ImageFiles, dir: &str) -> Vec<FileRef> {
    let prefix = format!("{}/", dir.trim_matches('/'));
    let mut v: Vec<(&str, FileRef)> = image
        .merged()
        .into_iter()
        .filter(|(p, r)| {
            p.strip_prefix(prefix.as_str())
                .is_some_and(|rest| !rest.contains('/'))
                && image.file(*r).kind == FileKind::Reg
                && !p.rsplit('/').next().unwrap_or("").starts_with('.')
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.into_iter().map(|(_, r)| r).collect()
}

/// Every `step`-th regular file of `dir` in glob order, from the first.
pub fn sparse_files(image: &ImageFiles, dir: &str, step: usize) -> Vec<FileRef> {
    files_in(image, dir)
        .into_iter()
        .step_by(step.max(1))
        .collect()
}

/// (absolute path, byte offset) of every offset read of a segment: `reads`
/// offsets per file spread evenly over the file, page-aligned.
fn offset_reads(image: &ImageFiles, seg: &Segment) -> Vec<(String, u64)> {
    let Action::Offsets { files, reads } = seg.action else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in files_in(image, &seg.dir).into_iter().take(files) {
        let f = image.file(r);
        let pages = f.size / OFFSET_READ;
        if pages == 0 {
            continue;
        }
        for k in 0..reads {
            // Spread over the file: the middle of each of `reads` equal slices.
            let page = (pages * (2 * k as u64 + 1)) / (2 * reads as u64);
            out.push((format!("/{}", f.path), page.min(pages - 1) * OFFSET_READ));
        }
    }
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::LayerFiles;
    use crate::estargz::table::testing::{self, chunked, layer, reg};

    fn image() -> ImageFiles {
        let mut files = vec![reg("bin/busybox", 1000)];
        for i in 0..3 {
            let extent = (40960, 100 + i * 100, 200 + i * 100);
            files.push(chunked(&format!("data/a/f{i}"), &[extent]));
        }
        files.push(reg("data/a/sub/x", 5));
        testing::image(vec![LayerFiles {
            blob_size: 1000,
            ..layer(files)
        }])
    }

    fn wl() -> CalWorkload {
        CalWorkload {
            segments: vec![
                Segment {
                    name: "all".into(),
                    dir: "/data/a".into(),
                    action: Action::CatAll,
                },
                Segment {
                    name: "offsets".into(),
                    dir: "/data/a".into(),
                    action: Action::Offsets { files: 2, reads: 2 },
                },
            ],
            ready_after: 1,
            prefetch: vec!["/data/a".into()],
        }
    }

    #[test]
    fn a_sparse_segment_reads_every_step_th_file_in_one_process() {
        let img = image();
        let w = CalWorkload {
            segments: vec![Segment {
                name: "sparse".into(),
                dir: "/data/a".into(),
                action: Action::Sparse { step: 2 },
            }],
            ready_after: 1,
            prefetch: vec![],
        };
        let s = w.script(&img);
        assert!(
            s.contains("cat '/data/a/f0' '/data/a/f2' >/dev/null; echo 'ADVISOR-MARK sparse'"),
            "{s}"
        );
        assert_eq!(w.processes(&img, &w.segments[0]), 1);
        let acc = w.accesses(&img);
        let read: Vec<&str> = acc[1]
            .iter()
            .filter(|a| a.kind == AccessKind::Read)
            .map(|a| img.file(a.file).path.as_str())
            .collect();
        assert_eq!(read, ["data/a/f0", "data/a/f2"]);
        let json = serde_json::to_string(&w.segments[0].action).unwrap();
        assert_eq!(json, r#"{"kind":"sparse","step":2}"#);
    }

    #[test]
    fn script_marks_every_segment_and_ready() {
        let s = wl().script(&image());
        assert!(s.starts_with("echo 'ADVISOR-MARK start'; cat '/data/a'/* >/dev/null; echo 'ADVISOR-MARK all'; echo 'ADVISOR-MARK ready'; "), "{s}");
        // 2 files × 2 offsets: pages 10/4=2 → pages 2 and 7 of 10.
        assert!(
            s.contains("dd if='/data/a/f0' bs=4096 skip=2 count=1"),
            "{s}"
        );
        assert!(
            s.contains("dd if='/data/a/f1' bs=4096 skip=7 count=1"),
            "{s}"
        );
        assert!(!s.contains("f2' bs"), "{s}");
        assert!(s.ends_with("echo 'ADVISOR-MARK offsets'; "));
    }

    #[test]
    fn accesses_follow_the_script_and_skip_subdirectories() {
        let img = image();
        let w = wl();
        let a = w.accesses(&img);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].len(), 2, "busybox open + read");
        assert_eq!(a[1].len(), 6, "3 files, not sub/x");
        assert_eq!(a[2].len(), 8);
        assert_eq!(a[2][1].offset, 2 * 4096);
        assert_eq!(w.processes(&img, &w.segments[1]), 4);
        let wk = w.workload(&img);
        assert_eq!(wk.ready_index, 8);
        assert_eq!(wk.startup_files.len(), 4);
    }
}
