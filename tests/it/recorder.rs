//! The FUSE read recorder on real FUSE and overlay mounts (needs root and /dev/fuse).
use crate::common;

use advisor::recorder::{RecordedEvent, RecordedOp, Recording, Unmounted};
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

    // An absent name is looked up every time (the kernel caches no
    // negative entry from this mount, as from the snapshotter's).
    for _ in 0..2 {
        assert!(std::fs::metadata(mnt.path().join("data/absent")).is_err());
    }

    rec.finish().unwrap();
    let evs: Vec<RecordedEvent> = rx.try_iter().collect();
    assert!(
        evs.iter()
            .any(|e| e.path == "/data/sub/small.txt" && e.op == RecordedOp::Open),
        "{evs:#?}"
    );
    let lookups = |path: &str, errno: Option<i32>| {
        evs.iter()
            .filter(|e| e.path == path && e.op == RecordedOp::Lookup { errno })
            .count()
    };
    assert_eq!(lookups("/data/big.bin", None), 1, "{evs:#?}");
    assert_eq!(
        lookups("/data/absent", Some(nix::errno::Errno::ENOENT as i32)),
        2,
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

/// Waits until every sender of the event channel is gone (the session
/// ended); false if that takes longer than `secs`.
fn stream_ends(rx: &mpsc::Receiver<RecordedEvent>, secs: u64) -> bool {
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
        }
    }
}

/// A process outside the recording with its working directory in the mount
/// (a shell `cd`'d into it; `du` walking /tmp did this on a CI run and the
/// recorder waited forever): finish detaches the mount and returns.
#[test]
fn a_process_holding_the_mount_busy_does_not_hang_finish() {
    let src = tree();
    let mnt = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let rec = Recording::mount(src.path(), mnt.path(), Instant::now(), tx).unwrap();
    let mut holder = std::process::Command::new("sleep")
        .arg("120")
        .current_dir(mnt.path().join("data/sub"))
        .spawn()
        .unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(rec.finish().map_err(|e| e.to_string()));
    });
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    let ended = stream_ends(&rx, 30);
    let at = mnt.path().canonicalize().unwrap();
    let still_mounted = common::mounts_under(at.parent().unwrap())
        .iter()
        .any(|m| std::path::Path::new(m) == at);
    let _ = holder.kill();
    let _ = holder.wait();
    let how = finished
        .expect("finish() still waiting a minute after the run")
        .unwrap();
    assert_eq!(how, Unmounted::Forced);
    assert!(!still_mounted, "the recorder's mount is still there");
    assert!(ended, "the FUSE session did not end: events still open");
}

/// Once scoped to a pid namespace, requests from other namespaces are left
/// out (and counted); those from inside are recorded.
#[test]
fn requests_from_outside_the_scoped_pid_namespace_are_left_out() {
    let src = tree();
    let mnt = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let rec = Recording::mount(src.path(), mnt.path(), Instant::now(), tx).unwrap();
    // A process in a new pid namespace, as a container's init is.
    let mut unshare = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "sleep", "120"])
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", unshare.id());
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let inner: u32 = loop {
        let c = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(p) = c.split_whitespace().next() {
            break p.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    rec.scope.set(inner).unwrap();

    // This process is outside that namespace.
    let outside = std::fs::read_to_string(mnt.path().join("data/sub/small.txt")).unwrap();
    assert_eq!(outside, "hello\n");
    // A process inside it.
    let st = std::process::Command::new("nsenter")
        .args(["--target", &inner.to_string(), "--pid", "--", "cat"])
        .arg(mnt.path().join("data/big.bin"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let foreign = rec.scope.foreign();
    rec.finish().unwrap();
    let _ = unshare.kill();
    let _ = unshare.wait();
    assert!(st.success());
    let evs: Vec<RecordedEvent> = rx.try_iter().collect();
    assert!(foreign > 0, "nothing counted as foreign");
    assert!(
        !evs.iter().any(|e| e.path == "/data/sub/small.txt"),
        "a request from outside the namespace was recorded: {evs:#?}"
    );
    assert!(
        evs.iter()
            .any(|e| e.path == "/data/big.bin" && e.op == RecordedOp::Open),
        "the request from inside the namespace is missing: {evs:#?}"
    );
}
