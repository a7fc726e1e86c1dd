//! Shared by the benches: a synthetic 100 k-entry file table and a 1 M-event
//! trace over it (the size the `advise` budget is stated for).
#![allow(dead_code)]
use advisor::estargz::table::{Chunk, FileEntry, FileKind, ImageFiles, LayerFiles, LayerFormat};
use advisor::trace::format::{Clock, Event, Header, Op, TraceWriter};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub const LAYERS: usize = 4;
pub const FILES_PER_LAYER: usize = 25_000;
pub const EVENTS: usize = 1_000_000;
const CHUNK: u64 = 4 << 20;

pub fn image(rng: &mut fastrand::Rng) -> ImageFiles {
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

pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) this process has used: on a shared machine
/// wall time overstates the cost.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15: utime and stime in clock ticks (100 Hz on Linux).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Write a 1 M-event trace over 30 % of the image's regular files, read in
/// 4 KiB–128 KiB pieces, with `ready` half way.
pub fn write_trace(img: &ImageFiles, rng: &mut fastrand::Rng, path: &Path) {
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
            TraceWriter::create(path, &Header::new("bench", Clock::Monotonic)).expect("create");
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
        w.commit().expect("commit");
    }
}

/// A child run of the advisor binary.
pub struct Measured {
    pub wall: f64,
    pub cpu: f64,
    pub peak_rss_mib: f64,
}

/// Run the advisor binary pinned to one core; wall, CPU and peak RSS of the child.
pub fn measure(args: &[&str]) -> Measured {
    let bin = env!("CARGO_BIN_EXE_advisor");
    let pinned = Command::new("taskset").arg("-V").output().is_ok();
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).stdout(std::process::Stdio::null());
    let start = Instant::now();
    // Reaped by wait4 below, which std's Child::wait cannot report rusage for.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("run advisor");
    // wait4 gives this child's own rusage (getrusage(CHILDREN) would report
    // the largest child so far).
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as nix::libc::pid_t;
    // SAFETY: plain FFI call with valid pointers.
    let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(r, pid, "wait4");
    assert!(
        nix::libc::WIFEXITED(status) && nix::libc::WEXITSTATUS(status) == 0,
        "advisor {args:?} failed"
    );
    let secs = |t: nix::libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Measured {
        wall,
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        peak_rss_mib: ru.ru_maxrss as f64 / 1024.0,
    }
}
