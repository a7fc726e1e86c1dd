//! The read recorder: a read-only FUSE passthrough filesystem that serves a
//! directory (an image's merged rootfs) and records every open and read with
//! its offset, length, pid, time and duration, and every lookup the kernel
//! did not answer from its cache.
//!
//! Why FUSE: mounted as the lower layer of the container's overlay rootfs, it
//! receives exactly the requests the stargz snapshotter's FUSE layer would:
//! page-cache fills from `read(2)` and from mmap page faults alike, widened by
//! the kernel's readahead, and nothing for data already in the page cache. Like
//! stargz (fs/layer/node.go opens with `FOPEN_KEEP_CACHE`, attr/entry timeouts
//! of 1 s) it keeps the page cache across opens, so repeated reads are not
//! recorded twice. It cannot tell an mmap fault from a `read(2)`: both arrive
//! as FUSE READ requests and are recorded as `read`.
//!
//! Owns the filesystem and the recording; does not know containers (`trace
//! record` arranges the mounts) nor the trace file format (callers receive
//! [`RecordedEvent`]s on a channel); `record` arranges a container around it.
pub mod probe;
pub mod progress;
pub mod record;

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request, SessionACL,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Attribute and entry cache timeout, as the stargz snapshotter's default
/// (`[fuse] attr_timeout` / `entry_timeout` = 1 s).
const TTL: Duration = Duration::from_secs(1);

/// What the recorder saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedOp {
    /// A file opened (path resolved inside the served tree).
    Open,
    /// A read request: `offset`, `len` bytes asked, `got` bytes returned.
    Read { offset: u64, len: u64, got: u64 },
    /// A directory listed.
    Readdir,
    /// A name looked up that the kernel had not cached (a FUSE round trip,
    /// as on the stargz snapshotter's mount): `errno` set when it failed
    /// (ENOENT for an absent name, which the kernel does not cache at all).
    Lookup { errno: Option<i32> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Nanoseconds since the recorder's origin (the workload's start).
    pub t_ns: u64,
    /// Process that caused the request (host pid namespace; 0 for kernel readahead without a task).
    pub pid: u32,
    /// Path inside the served tree, absolute (`/usr/bin/python3`).
    pub path: String,
    pub op: RecordedOp,
    /// How long serving the request took (ns).
    pub dur_ns: u64,
}

/// Inode table: inode numbers are ours (1 = root), mapped to paths relative to the source.
struct Inodes {
    paths: Vec<PathBuf>,
    by_path: HashMap<PathBuf, u64>,
}

impl Inodes {
    fn new() -> Self {
        // Index 0 unused so that inode n lives at paths[n]; 1 is the root.
        Inodes {
            paths: vec![PathBuf::new(), PathBuf::new()],
            by_path: HashMap::from([(PathBuf::new(), 1)]),
        }
    }
}

/// Which processes' requests are recorded: all of them until
/// [`Scope::set`], then only those of one pid namespace (the container's),
/// so a process outside it touching the mount (a shell `cd`'d into it, `du`
/// or an indexer walking /tmp) does not end up in the trace.
#[derive(Debug, Default)]
pub struct Scope {
    /// Inode of the pid namespace (`/proc/PID/ns/pid`) whose requests count.
    ns: OnceLock<u64>,
    /// Namespace inode of each pid seen (None: unreadable, kept).
    seen: Mutex<HashMap<u32, Option<u64>>>,
    foreign: AtomicU64,
}

impl Scope {
    /// Record only the requests of processes in `pid`'s pid namespace.
    pub fn set(&self, pid: u32) -> std::io::Result<()> {
        let ns = pid_namespace(pid)?;
        let _ = self.ns.set(ns);
        Ok(())
    }

    /// Requests left out because they came from another pid namespace.
    pub fn foreign(&self) -> u64 {
        self.foreign.load(Ordering::Relaxed)
    }

    /// Whether a request of `pid` is recorded. The caller of a FUSE request
    /// is blocked in it, so its /proc entry is there to read; pid 0 (kernel
    /// readahead without a task) and unreadable ones are kept.
    fn admits(&self, pid: u32) -> bool {
        let Some(&ns) = self.ns.get() else {
            return true;
        };
        if pid == 0 {
            return true;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let theirs = *seen.entry(pid).or_insert_with(|| pid_namespace(pid).ok());
        if theirs.is_some_and(|t| t != ns) {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

fn pid_namespace(pid: u32) -> std::io::Result<u64> {
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/pid"))?.ino())
}

/// The passthrough filesystem.
pub struct RecordingFs {
    source: PathBuf,
    inodes: RwLock<Inodes>,
    handles: Mutex<HashMap<u64, (File, String)>>,
    next_fh: AtomicU64,
    origin: Instant,
    events: Mutex<Sender<RecordedEvent>>,
    scope: Arc<Scope>,
}

impl RecordingFs {
    /// Serve `source`; event times count from `origin`.
    pub fn new(
        source: &Path,
        origin: Instant,
        events: Sender<RecordedEvent>,
        scope: Arc<Scope>,
    ) -> Self {
        RecordingFs {
            source: source.to_path_buf(),
            inodes: RwLock::new(Inodes::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            origin,
            events: Mutex::new(events),
            scope,
        }
    }

    fn rel(&self, ino: INodeNo) -> Option<PathBuf> {
        let inodes = self.inodes.read().ok()?;
        inodes
            .paths
            .get(ino.0 as usize)
            .filter(|_| ino.0 >= 1)
            .cloned()
    }

    fn ino_for(&self, rel: &Path) -> u64 {
        if let Ok(inodes) = self.inodes.read()
            && let Some(&i) = inodes.by_path.get(rel)
        {
            return i;
        }
        let Ok(mut inodes) = self.inodes.write() else {
            return 0;
        };
        if let Some(&i) = inodes.by_path.get(rel) {
            return i;
        }
        let i = inodes.paths.len() as u64;
        inodes.paths.push(rel.to_path_buf());
        inodes.by_path.insert(rel.to_path_buf(), i);
        i
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.source.join(rel)
    }

    fn attr(&self, ino: u64, rel: &Path) -> std::io::Result<FileAttr> {
        let m = std::fs::symlink_metadata(self.full(rel))?;
        Ok(to_attr(ino, &m))
    }

    fn record(&self, start: Instant, pid: u32, rel: &Path, op: RecordedOp) {
        if !self.scope.admits(pid) {
            return;
        }
        let t_ns = start.saturating_duration_since(self.origin).as_nanos() as u64;
        let ev = RecordedEvent {
            t_ns,
            pid,
            path: format!("/{}", rel.display()),
            op,
            dur_ns: start.elapsed().as_nanos() as u64,
        };
        if let Ok(tx) = self.events.lock() {
            // A closed receiver only means nobody wants events any more.
            let _ = tx.send(ev);
        }
    }
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH
    }
}

fn file_type(m: &std::fs::Metadata) -> FileType {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else {
        FileType::RegularFile
    }
}

fn to_attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: system_time(m.atime(), m.atime_nsec()),
        mtime: system_time(m.mtime(), m.mtime_nsec()),
        ctime: system_time(m.ctime(), m.ctime_nsec()),
        crtime: system_time(m.ctime(), m.ctime_nsec()),
        kind: file_type(m),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        flags: 0,
        blksize: m.blksize() as u32,
    }
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc_eio()))
}

fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}

impl Filesystem for RecordingFs {
    fn init(&mut self, _req: &Request, _config: &mut KernelConfig) -> std::io::Result<()> {
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let start = Instant::now();
        let Some(prel) = self.rel(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = prel.join(name);
        match std::fs::symlink_metadata(self.full(&rel)) {
            Ok(m) => {
                let ino = self.ino_for(&rel);
                reply.entry(&TTL, &to_attr(ino, &m), Generation(0));
                self.record(start, req.pid(), &rel, RecordedOp::Lookup { errno: None });
            }
            Err(e) => {
                reply.error(errno(&e));
                let errno = Some(e.raw_os_error().unwrap_or(libc_eio()));
                self.record(start, req.pid(), &rel, RecordedOp::Lookup { errno });
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.attr(ino.0, &rel) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match std::fs::read_link(self.full(&rel)) {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let start = Instant::now();
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match File::open(self.full(&rel)) {
            Ok(f) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                let path = format!("/{}", rel.display());
                if let Ok(mut h) = self.handles.lock() {
                    h.insert(fh, (f, path));
                }
                self.record(start, req.pid(), &rel, RecordedOp::Open);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let start = Instant::now();
        let mut buf = vec![0u8; size as usize];
        let res = {
            let Ok(h) = self.handles.lock() else {
                return reply.error(Errno::EIO);
            };
            let Some((f, _)) = h.get(&fh.0) else {
                return reply.error(Errno::EBADF);
            };
            // Clone the descriptor so the lock is not held during the read.
            f.try_clone()
        };
        let file = match res {
            Ok(f) => f,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut got = 0usize;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return reply.error(errno(&e)),
            }
        }
        reply.data(&buf[..got]);
        if let Some(rel) = self.rel(ino) {
            self.record(
                start,
                req.pid(),
                &rel,
                RecordedOp::Read {
                    offset,
                    len: size as u64,
                    got: got as u64,
                },
            );
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut h) = self.handles.lock() {
            h.remove(&fh.0);
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let start = Instant::now();
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let rd = match std::fs::read_dir(self.full(&rel)) {
            Ok(rd) => rd,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut entries: Vec<(u64, FileType, std::ffi::OsString)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for e in rd.flatten() {
            let name = e.file_name();
            let crel = rel.join(&name);
            let kind = e
                .metadata()
                .map(|m| file_type(&m))
                .unwrap_or(FileType::RegularFile);
            entries.push((self.ino_for(&crel), kind, name));
        }
        for (i, (eino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*eino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
        if offset == 0 {
            self.record(start, req.pid(), &rel, RecordedOp::Readdir);
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.source) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match xattr::get(self.full(&rel), name) {
            Ok(Some(v)) if size == 0 => reply.size(v.len() as u32),
            Ok(Some(v)) if v.len() <= size as usize => reply.data(&v),
            Ok(Some(_)) => reply.error(Errno::ERANGE),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match xattr::list(self.full(&rel)) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                if size == 0 {
                    reply.size(buf.len() as u32)
                } else if buf.len() <= size as usize {
                    reply.data(&buf)
                } else {
                    reply.error(Errno::ERANGE)
                }
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.rel(ino) {
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }
}

/// A mounted recorder. Unmounts on drop; [`Recording::finish`] unmounts and
/// waits for the FUSE session to end.
pub struct Recording {
    session: Option<fuser::BackgroundSession>,
    pub mountpoint: PathBuf,
    /// Whose requests are recorded (all, until set).
    pub scope: Arc<Scope>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot mount the read recorder (FUSE) at {mountpoint}: {source}; is /dev/fuse present and fuse3 installed? (it needs root)"
    )]
    Mount {
        mountpoint: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot unmount the read recorder at {mountpoint}: {source}")]
    Unmount {
        mountpoint: PathBuf,
        source: std::io::Error,
    },
}

impl Recording {
    /// Mount a recorder serving `source` (read-only) at `mountpoint`. Events go
    /// to `events`; times count from `origin`.
    pub fn mount(
        source: &Path,
        mountpoint: &Path,
        origin: Instant,
        events: Sender<RecordedEvent>,
    ) -> Result<Self, Error> {
        let scope = Arc::new(Scope::default());
        let fs = RecordingFs::new(source, origin, events, scope.clone());
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("advisor-recorder".into()),
            MountOption::RO,
            MountOption::Suid,
            MountOption::Dev,
            MountOption::Exec,
            MountOption::DefaultPermissions,
        ];
        // Container processes may run as any user.
        config.acl = SessionACL::All;
        config.n_threads = Some(2);
        let session =
            fuser::spawn_mount(fs, mountpoint, &config).map_err(|source| Error::Mount {
                mountpoint: mountpoint.to_path_buf(),
                source,
            })?;
        Ok(Recording {
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
            scope,
        })
    }

    /// Unmount and wait for the session to end; every event has been sent when
    /// this returns. Returns [`Unmounted::Forced`] when a process outside the
    /// recording (a shell `cd`'d into the mount, a `du` walking /tmp) kept the
    /// mount busy past [`BUSY_WAIT`]: the FUSE connection was then aborted and
    /// the mount detached, so this never waits on another process.
    pub fn finish(mut self) -> Result<Unmounted, Error> {
        match self.session.take() {
            Some(s) => {
                // Still mounted after an error: joining would wait on the
                // session for ever, so return (the session's thread is left).
                let how = release(&self.mountpoint)?;
                // The connection is gone, so the session ends: joining cannot hang.
                s.join().map_err(|source| Error::Unmount {
                    mountpoint: self.mountpoint.clone(),
                    source,
                })?;
                Ok(how)
            }
            None => Ok(Unmounted::Clean),
        }
    }
}

/// How the recorder's mount went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmounted {
    Clean,
    /// Busy past [`BUSY_WAIT`]; connection aborted and the mount detached.
    Forced,
}

/// How long an unmount retries while another process keeps the mount busy.
pub const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Unmount `mountpoint`, retrying while it is busy; past [`BUSY_WAIT`],
/// abort the FUSE connection (`MNT_FORCE` calls FUSE's umount_begin, which
/// aborts it: the session's reads end) and detach the mount (`MNT_DETACH`).
fn release(mountpoint: &Path) -> Result<Unmounted, Error> {
    use nix::errno::Errno as E;
    use nix::mount::{MntFlags, umount2};
    let err = |e: E| Error::Unmount {
        mountpoint: mountpoint.to_path_buf(),
        source: std::io::Error::from(e),
    };
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match umount2(mountpoint, MntFlags::empty()) {
            // EINVAL: not a mount point any more (unmounted by someone else).
            Ok(()) | Err(E::EINVAL) => return Ok(Unmounted::Clean),
            Err(E::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            // Busy for too long, or another error: force it.
            Err(_) => break,
        }
    }
    let _ = umount2(mountpoint, MntFlags::MNT_FORCE);
    match umount2(mountpoint, MntFlags::MNT_DETACH) {
        Ok(()) | Err(E::EINVAL) => Ok(Unmounted::Forced),
        Err(e) => Err(err(e)),
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(s) = self.session.take()
            && release(&self.mountpoint).is_ok()
        {
            let _ = s.join();
        }
    }
}
