//! The FUSE read recorder on real FUSE and overlay mounts (needs root and /dev/fuse).
use advisor::recorder::{RecordedEvent, RecordedOp, Recording};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Instant;

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("data/sub")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path().join("data/big.bin"), &big).unwrap();
    std::fs::write(d.path().join("data/sub/small.txt"), b"hello\n").unwrap();
    std::os::unix::fs::symlink("sub/small.txt", d.path().join("data/link")).unwrap();
    d
}

fn reads_of(evs: &[RecordedEvent], path: &str) -> Vec<(u64, u64, u64)> {
    evs.iter()
        .filter(|e| e.path == path)
        .filter_map(|e| match e.op {
            RecordedOp::Read { offset, len, got } => Some((offset, len, got)),
            _ => None,
        })
        .collect()
}

/// Bytes covered by reads, merged: what reached the filesystem.
fn covered(reads: &[(u64, u64, u64)]) -> u64 {
    let mut v: Vec<(u64, u64)> = reads.iter().map(|&(o, _, g)| (o, o + g)).collect();
    v.sort();
    let (mut total, mut end) = (0, 0);
    for (s, e) in v {
        let s = s.max(end);
        if e > s {
            total += e - s;
            end = e;
        }
    }
    total
}

#[test]
fn records_opens_and_reads_with_offsets_and_serves_identical_bytes() {
    let src = tree();
    let mnt = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let rec = Recording::mount(src.path(), mnt.path(), Instant::now(), tx).unwrap();

    let small = std::fs::read_to_string(mnt.path().join("data/link")).unwrap();
    assert_eq!(small, "hello\n");
    let mut f = std::fs::File::open(mnt.path().join("data/big.bin")).unwrap();
    f.seek(SeekFrom::Start(1_000_000)).unwrap();
    let mut buf = vec![0u8; 10_000];
    f.read_exact(&mut buf).unwrap();
    let want: Vec<u8> = (1_000_000..1_010_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(buf, want);
    drop(f);
    let names: Vec<_> = std::fs::read_dir(mnt.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3);

    rec.finish().unwrap();
    let evs: Vec<RecordedEvent> = rx.try_iter().collect();
    assert!(
        evs.iter()
            .any(|e| e.path == "/data/sub/small.txt" && e.op == RecordedOp::Open),
        "{evs:#?}"
    );
    assert!(
        evs.iter()
            .any(|e| e.path == "/data/big.bin" && e.op == RecordedOp::Open)
    );
    assert!(
        evs.iter()
            .any(|e| e.path == "/data" && e.op == RecordedOp::Readdir)
    );
    let big = reads_of(&evs, "/data/big.bin");
    // The kernel widens reads (readahead) but the requested range must be covered
    // and far less than the whole 3 MB file read.
    assert!(
        big.iter()
            .any(|&(o, _, g)| o <= 1_000_000 && o + g >= 1_010_000),
        "{big:?}"
    );
    assert!(covered(&big) < 3_000_000, "read more than asked: {big:?}");
    assert!(
        evs.iter()
            .all(|e| e.pid > 0 || matches!(e.op, RecordedOp::Read { .. }))
    );
    let mut last = 0;
    for e in &evs {
        assert!(
            e.t_ns >= last || e.t_ns + 50_000_000 >= last,
            "times go backwards a lot"
        );
        last = last.max(e.t_ns);
    }
}

#[test]
fn records_reads_through_an_overlay_and_mmap_page_faults() {
    let src = tree();
    let lower = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let rec = Recording::mount(src.path(), lower.path(), Instant::now(), tx).unwrap();
    let upper = work.path().join("upper");
    let wdir = work.path().join("work");
    let merged = work.path().join("merged");
    for d in [&upper, &wdir, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.path().display(),
        upper.display(),
        wdir.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .unwrap();

    // mmap the big file and touch one page in the middle.
    let f = std::fs::File::open(merged.join("data/big.bin")).unwrap();
    let map = unsafe { memmap_read(&f, 3_000_000) };
    let byte = map[2_500_123];
    assert_eq!(byte, (2_500_123u32 % 251) as u8);
    drop(map);
    // A write goes to the upper dir, never to the recorder.
    std::fs::write(merged.join("data/new.txt"), b"x").unwrap();
    let mut tail = [0u8; 4];
    f.read_at(&mut tail, 2_999_996).unwrap();
    drop(f);

    nix::mount::umount(&merged).unwrap();
    rec.finish().unwrap();
    let evs: Vec<RecordedEvent> = rx.try_iter().collect();
    let big = reads_of(&evs, "/data/big.bin");
    assert!(
        big.iter()
            .any(|&(o, _, g)| o <= 2_500_123 && o + g > 2_500_123),
        "page fault not recorded: {big:?}"
    );
    assert!(covered(&big) < 3_000_000, "{big:?}");
    assert!(upper.join("data/new.txt").exists());
    assert!(!src.path().join("data/new.txt").exists());
}

/// A read-only private mapping of a whole file.
unsafe fn memmap_read(f: &std::fs::File, len: usize) -> MapGuard {
    use std::os::fd::AsFd;
    let p = unsafe {
        nix::sys::mman::mmap(
            None,
            std::num::NonZeroUsize::new(len).unwrap(),
            nix::sys::mman::ProtFlags::PROT_READ,
            nix::sys::mman::MapFlags::MAP_PRIVATE,
            f.as_fd(),
            0,
        )
        .unwrap()
    };
    MapGuard { p, len }
}

struct MapGuard {
    p: std::ptr::NonNull<std::ffi::c_void>,
    len: usize,
}

impl std::ops::Index<usize> for MapGuard {
    type Output = u8;
    fn index(&self, i: usize) -> &u8 {
        assert!(i < self.len);
        unsafe { &*(self.p.as_ptr() as *const u8).add(i) }
    }
}

impl Drop for MapGuard {
    fn drop(&mut self) {
        unsafe {
            let _ = nix::sys::mman::munmap(self.p, self.len);
        }
    }
}
