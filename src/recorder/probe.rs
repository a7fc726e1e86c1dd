//! The recorder's own overhead on this node, measured before a recording.
//!
//! A workload recorded through FUSE runs slower than on overlayfs: every
//! file costs FUSE lookups, opens, flushes and releases, and every read a
//! round trip through the kernel. The recorder times its handlers (`dur` of
//! each event), but not the kernel round trips nor the requests it does not
//! record (lookup, getattr, flush, release), so those land in the gaps
//! between events, where prediction would take them for the workload's
//! compute. This probe measures them: the same file cycles (open, read,
//! close) on a scratch tree, directly and through a second recorder mount,
//! minus the handler time the recorder saw. The result goes into the trace
//! header (`recorder_overhead`) and prediction subtracts it from each gap.
use super::{RecordedEvent, Recording};
use crate::trace::format::RecorderOverhead;
use anyhow::Context;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

/// Files per round of the per-file probe.
const FILES: usize = 200;
/// Rounds (fresh files each: the recorder keeps the page cache across opens).
const ROUNDS: usize = 3;
/// Size of the per-read probe file.
const BIG: usize = 8 << 20;

/// Measure the per-open and per-read overhead under `scratch` (created and
/// left empty; the caller removes it).
pub fn measure(scratch: &Path) -> anyhow::Result<RecorderOverhead> {
    let src = scratch.join("src");
    let mnt = scratch.join("mnt");
    for d in [&src, &mnt] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let page = vec![b'x'; 4096];
    for r in 0..ROUNDS {
        let d = src.join(format!("r{r}"));
        std::fs::create_dir_all(&d)?;
        for i in 0..FILES {
            std::fs::write(d.join(format!("f{i}")), &page)?;
        }
    }
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("big"), &big)?;

    let (tx, rx) = mpsc::channel::<RecordedEvent>();
    let rec = Recording::mount(&src, &mnt, Instant::now(), tx)?;
    let result = probe(&src, &mnt, &rx);
    let unmounted = rec.finish();
    let _ = std::fs::remove_dir_all(&src);
    let o = result?;
    unmounted?;
    Ok(o)
}

fn cycle(path: &Path, buf: &mut [u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    while f.read(buf)? > 0 {}
    Ok(())
}

/// Handler time of the events received so far, and how many.
fn drain(rx: &mpsc::Receiver<RecordedEvent>) -> (u64, u64) {
    rx.try_iter()
        .fold((0, 0), |(d, n), e| (d + e.dur_ns, n + 1))
}

fn probe(
    src: &Path,
    mnt: &Path,
    rx: &mpsc::Receiver<RecordedEvent>,
) -> anyhow::Result<RecorderOverhead> {
    let mut buf = vec![0u8; 128 << 10];
    // Reads: the big file in 128 KiB reads, directly (warm) and through FUSE.
    cycle(&src.join("big"), &mut buf)?;
    let t = Instant::now();
    cycle(&src.join("big"), &mut buf)?;
    let direct = t.elapsed().as_nanos() as f64;
    drain(rx);
    let t = Instant::now();
    cycle(&mnt.join("big"), &mut buf)?;
    let fused = t.elapsed().as_nanos() as f64;
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (handled, events) = drain(rx);
    // One open and the reads (the kernel's read size, not ours).
    let reads = events.saturating_sub(1).max(1) as f64;
    let per_read = ((fused - direct - handled as f64) / reads).max(0.0);

    // Files: open, read one page, close; each round on files not yet seen.
    let mut per_file = Vec::new();
    for r in 0..ROUNDS {
        let names: Vec<String> = (0..FILES).map(|i| format!("r{r}/f{i}")).collect();
        for n in &names {
            cycle(&src.join(n), &mut buf)?;
        }
        let t = Instant::now();
        for n in &names {
            cycle(&src.join(n), &mut buf)?;
        }
        let direct = t.elapsed().as_nanos() as f64;
        drain(rx);
        let t = Instant::now();
        for n in &names {
            cycle(&mnt.join(n), &mut buf)?;
        }
        let fused = t.elapsed().as_nanos() as f64;
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (handled, _) = drain(rx);
        per_file.push(((fused - direct - handled as f64) / FILES as f64).max(0.0));
    }
    let per_file = crate::units::median(&per_file);
    Ok(RecorderOverhead {
        open_ns: (per_file - per_read).max(0.0) as u64,
        read_ns: per_read as u64,
    })
}
