//! Import of strace output (`strace -f -tt -e trace=%file,read,pread64,readv,mmap`,
//! also `-ttt`, `-T`, `-y`, `-o FILE`) into trace events.
//!
//! Owns the strace line syntax (pid prefixes, timestamps, `<unfinished ...>` /
//! `<... resumed>` pairs, `-y` path decorations, return values and errnos)
//! and the per-process file-descriptor model that turns `read(3, …) = n` into
//! "n bytes of /etc/passwd at offset k": open file descriptions shared by
//! `dup`/`dup2`/`dup3`/`fcntl(F_DUPFD)`, offsets advanced by `read`/`readv`,
//! set by `lseek`, untouched by `pread64`/`preadv`. Approximations are listed
//! in docs/trace-format.md. Works line by line (a push parser) so that
//! `trace record` can feed it live. Must not look at any image.
use super::Error;
use super::format::{Event, Op};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;

/// How many unparseable lines the summary quotes.
const QUOTE_SKIPPED: usize = 5;
/// Nanoseconds per day (for `-tt` timestamps crossing midnight).
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Options of the strace import.
#[derive(Debug, Clone)]
pub struct StraceOptions {
    /// Host directory that is the container's root: stripped from `-y`
    /// decorations, which strace prints as the tracer sees them (and from
    /// absolute arguments, which are host paths before a chroot).
    pub root: Option<String>,
    /// Working directory of the traced command when it started (for relative
    /// paths before any `chdir` or `-y` decoration says otherwise).
    pub cwd: String,
    /// Emit `ready` at the first write to stdout/stderr containing this text
    /// (needs `write` in the strace filter and a large enough `-s`).
    pub ready_pattern: Option<String>,
}

impl Default for StraceOptions {
    fn default() -> Self {
        StraceOptions {
            root: None,
            cwd: "/".into(),
            ready_pattern: None,
        }
    }
}

/// What an import saw and produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StraceSummary {
    pub lines: u64,
    /// Complete system calls parsed (resumed calls count once).
    pub syscalls: u64,
    pub events: u64,
    /// Distinct process/thread ids.
    pub processes: u64,
    /// Lines that are not strace syntax (e.g. the program's own output).
    pub skipped_lines: u64,
    /// The first few skipped lines, with their numbers.
    pub first_skipped: Vec<String>,
    /// Reads on descriptors that were opened before tracing started or are
    /// not files (pipes, sockets): not in the trace.
    pub reads_on_unknown_fds: u64,
    /// `<... resumed>` lines without their `<unfinished ...>` start.
    pub unmatched_resumes: u64,
    /// Calls still unfinished at the end of the input.
    pub unfinished_at_end: u64,
    /// `<unfinished ...>` calls whose process started another call before
    /// their `<... resumed>`: never completed, not imported.
    pub never_resumed: u64,
    /// Relative paths whose directory was unknown (skipped).
    pub unresolved_paths: u64,
    pub ready: bool,
    /// Exit status of the first (root) process, when it exited.
    pub exit_status: Option<i64>,
    /// Whether `-T` durations were present.
    pub durations: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsKind {
    /// `-tt`: wall clock time of day with microseconds.
    TimeOfDay,
    /// `-ttt`: seconds since the epoch with microseconds.
    Epoch,
}

struct Pending {
    ts: u64,
    line: u64,
    text: String,
}

/// An open file description (shared by duplicated descriptors).
struct Ofd {
    /// Absolute container path; None for pipes, sockets and the like.
    path: Option<String>,
    pos: u64,
}

/// A descriptor argument: a number or `AT_FDCWD`, with its `-y` decoration.
struct FdArg {
    fd: Option<i64>,
    decor: Option<String>,
}

/// A complete call: `name(args) = ret`.
struct Call<'l> {
    name: &'l str,
    args: Vec<&'l str>,
    ret: Option<i64>,
    ret_decor: Option<String>,
    errno: Option<&'l str>,
    dur: Option<u64>,
}

impl Call<'_> {
    /// Argument `i` (0-based) as printed, or empty when the call has fewer.
    fn arg(&self, i: usize) -> &str {
        self.args.get(i).copied().unwrap_or("")
    }

    fn fd_arg(&self, i: usize) -> FdArg {
        parse_fd(self.arg(i))
    }

    /// The call succeeded (returned a non-negative value).
    fn ok(&self) -> bool {
        self.ret.is_some_and(|r| r >= 0)
    }
}

/// A complete call with the line, process and time it belongs to: what
/// every syscall family's handler reads.
struct Completed<'l> {
    line_no: u64,
    pid: u32,
    ts: u64,
    call: Call<'l>,
}

impl Completed<'_> {
    /// An event of this call on `path`, carrying its duration, result and errno.
    fn event(&self, op: Op, path: String) -> Event<'static> {
        let mut e = Event::on_path(self.ts, self.pid, op, path);
        e.dur = self.call.dur;
        e.result = self.call.ret;
        e.err = self.call.errno.map(|s| s.to_string().into());
        e
    }
}

/// The push parser: feed lines in order, then [`Importer::finish`].
pub struct Importer {
    name: String,
    opts: StraceOptions,
    ts_kind: Option<TsKind>,
    t0: Option<u64>,
    day_offset: u64,
    last_tod: u64,
    root_pid: Option<u32>,
    /// pid given to unprefixed lines: 0, or the process strace announced
    /// first (`strace: Process N attached` before any call, as with `-p`).
    unprefixed_pid: u32,
    /// strace prints no pid prefix while it traces a single process, so the
    /// root's unprefixed lines (pid 0) and its later `[pid N]` lines are the
    /// same process: N is the first prefixed pid strace never announced.
    root_alias: Option<u32>,
    attached: HashSet<u32>,
    pending: HashMap<u32, Pending>,
    ofds: Vec<Ofd>,
    fds: HashMap<(u32, i64), usize>,
    last_by_fd: HashMap<i64, usize>,
    cwd: HashMap<u32, String>,
    pids: HashSet<u32>,
    summary: StraceSummary,
}

type Sink<'s> = dyn FnMut(&Event<'_>) -> Result<(), Error> + 's;

impl Importer {
    pub fn new(name: impl Into<String>, opts: StraceOptions) -> Self {
        let root = opts
            .root
            .as_ref()
            .map(|r| r.trim_end_matches('/').to_string());
        Importer {
            name: name.into(),
            opts: StraceOptions { root, ..opts },
            ts_kind: None,
            t0: None,
            day_offset: 0,
            last_tod: 0,
            root_pid: None,
            unprefixed_pid: 0,
            root_alias: None,
            attached: HashSet::new(),
            pending: HashMap::new(),
            ofds: Vec::new(),
            fds: HashMap::new(),
            last_by_fd: HashMap::new(),
            cwd: HashMap::new(),
            pids: HashSet::new(),
            summary: StraceSummary::default(),
        }
    }

    fn err(&self, line: u64, msg: impl Into<String>) -> Error {
        Error::parse(&self.name, line, None, msg)
    }

    fn skip(&mut self, line_no: u64, line: &str) {
        self.summary.skipped_lines += 1;
        if self.summary.first_skipped.len() < QUOTE_SKIPPED {
            let mut t: String = line.chars().take(120).collect();
            if t.len() < line.len() {
                t.push('…');
            }
            self.summary
                .first_skipped
                .push(format!("line {line_no}: {t}"));
        }
    }

    /// Parse one line of strace output.
    pub fn feed(&mut self, line_no: u64, line: &str, sink: &mut Sink<'_>) -> Result<(), Error> {
        self.summary.lines = line_no;
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(m) = line.strip_prefix("strace: ") {
            self.strace_message(m);
            return Ok(());
        }
        if line.trim().is_empty() {
            return Ok(());
        }
        let (pid, rest) = split_pid(line);
        let Some((ts_tok, body)) = rest.split_once(' ') else {
            self.skip(line_no, line);
            return Ok(());
        };
        let Some(ts) = self.timestamp(line_no, ts_tok, rest)? else {
            self.skip(line_no, line);
            return Ok(());
        };
        let pid = self.process(pid);
        let body = body.trim_start();
        if body.starts_with("---") {
            return Ok(()); // signal delivery
        }
        if let Some(x) = body.strip_prefix("+++ ") {
            return self.process_exit(pid, ts, x, sink);
        }
        if let Some(r) = body.strip_prefix("<... ") {
            let Some((name, tail)) = r.split_once(" resumed>") else {
                self.skip(line_no, line);
                return Ok(());
            };
            return self.resumed(pid, name, tail, sink);
        }
        if let Some(head) = body.strip_suffix("<unfinished ...>") {
            if !looks_like_syscall(head) {
                self.skip(line_no, line);
                return Ok(());
            }
            self.unfinished(line_no, pid, ts, head);
            return Ok(());
        }
        if !looks_like_syscall(body) {
            self.skip(line_no, line);
            return Ok(());
        }
        self.complete(line_no, pid, ts, body, sink)
    }

    /// `strace: Process N attached`: the first names the root process, the
    /// others processes strace attached to (not the root's alias).
    fn strace_message(&mut self, m: &str) {
        if let Some(n) = m
            .strip_prefix("Process ")
            .and_then(|r| r.strip_suffix(" attached"))
            .and_then(|n| n.trim().parse::<u32>().ok())
        {
            if self.root_pid.is_none() {
                self.root_pid = Some(n);
                self.unprefixed_pid = n;
            } else {
                self.attached.insert(n);
            }
        }
    }

    /// The line's time (ns since the first line); None when `ts_tok` is no
    /// timestamp and the line (`rest`) no system call, so it is skipped.
    fn timestamp(&mut self, line_no: u64, ts_tok: &str, rest: &str) -> Result<Option<u64>, Error> {
        match self.parse_ts(ts_tok) {
            Ok(ts) => Ok(Some(ts)),
            Err(TsError::NotATimestamp) if looks_like_syscall(rest) => Err(self.err(
                line_no,
                "has no timestamp; record with `strace -f -tt` (or -ttt) so events can be \
                 timed",
            )),
            Err(TsError::NotATimestamp) => Ok(None),
            Err(TsError::Seconds) => Err(self.err(
                line_no,
                format!(
                    "timestamp `{ts_tok}` has no sub-second part; record with `strace -tt` or \
                     `-ttt`, not `-t`"
                ),
            )),
            Err(TsError::Mixed) => Err(self.err(
                line_no,
                format!("timestamp `{ts_tok}` mixes -tt and -ttt formats in one file"),
            )),
        }
    }

    /// The process a line belongs to (its `[pid N]` prefix, or none: the
    /// root), counted the first time it is seen.
    fn process(&mut self, prefix: Option<u32>) -> u32 {
        let pid = match prefix {
            None => self.unprefixed_pid,
            Some(p) if self.root_alias == Some(p) => self.unprefixed_pid,
            Some(p) => {
                if self.root_alias.is_none()
                    && self.root_pid == Some(self.unprefixed_pid)
                    && p != self.unprefixed_pid
                    && !self.attached.contains(&p)
                    && !self.pids.contains(&p)
                {
                    self.root_alias = Some(p);
                    self.unprefixed_pid
                } else {
                    p
                }
            }
        };
        if self.root_pid.is_none() {
            self.root_pid = Some(pid);
        }
        if self.pids.insert(pid) {
            self.summary.processes += 1;
        }
        pid
    }

    /// `<... name resumed> tail`: the process's unfinished call, completed.
    fn resumed(
        &mut self,
        pid: u32,
        name: &str,
        tail: &str,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        let Some(p) = self.pending.remove(&pid) else {
            self.summary.unmatched_resumes += 1;
            return Ok(());
        };
        if !p.text.starts_with(name) {
            self.summary.unmatched_resumes += 1;
            return Ok(());
        }
        let full = format!("{}{}", p.text, tail);
        self.complete(p.line, pid, p.ts, &full, sink)
    }

    /// `head <unfinished ...>`: kept until its `<... resumed>`; one the
    /// process left unfinished before it is never completed.
    fn unfinished(&mut self, line_no: u64, pid: u32, ts: u64, head: &str) {
        let replaced = self.pending.insert(
            pid,
            Pending {
                ts,
                line: line_no,
                text: head.trim_end().to_string(),
            },
        );
        self.summary.never_resumed += u64::from(replaced.is_some());
    }

    /// End of input: returns the summary. Errors if nothing was strace output.
    pub fn finish(mut self) -> Result<StraceSummary, Error> {
        self.summary.unfinished_at_end = self.pending.len() as u64;
        let lost = self.summary.unfinished_at_end + self.summary.never_resumed;
        if self.summary.events == 0 && lost > 0 {
            return Err(Error::Invalid {
                file: self.name,
                message: format!(
                    "no events imported: {lost} call(s) never resumed (`<unfinished ...>` \
                     without its `<... resumed>`, {} at the end of the input); was the capture \
                     cut off? Record the whole run with `strace -f -o FILE`",
                    self.summary.unfinished_at_end
                ),
            });
        }
        if self.summary.syscalls == 0 && self.summary.processes == 0 {
            return Err(Error::Invalid {
                file: self.name,
                message: "contains no strace output; expected the output of \
                          `strace -f -tt -e trace=%file,read,pread64,readv,mmap CMD`"
                    .into(),
            });
        }
        Ok(self.summary)
    }

    fn parse_ts(&mut self, tok: &str) -> Result<u64, TsError> {
        let (kind, abs) =
            if tok.len() >= 8 && tok.as_bytes()[2] == b':' && tok.as_bytes()[5] == b':' {
                let (hms, frac) = match tok.split_once('.') {
                    Some((h, f)) => (h, f),
                    None => {
                        return if parse_hms(tok).is_some() {
                            Err(TsError::Seconds)
                        } else {
                            Err(TsError::NotATimestamp)
                        };
                    }
                };
                let s = parse_hms(hms).ok_or(TsError::NotATimestamp)?;
                let ns = frac_ns(frac).ok_or(TsError::NotATimestamp)?;
                let tod = s * 1_000_000_000 + ns;
                // Time of day wraps at midnight: a jump back of more than 12 h is
                // the next day, not time running backwards.
                if self.t0.is_some() && tod + DAY_NS / 2 < self.last_tod {
                    self.day_offset += DAY_NS;
                }
                self.last_tod = tod;
                (TsKind::TimeOfDay, self.day_offset + tod)
            } else {
                let (secs, frac) = tok.split_once('.').ok_or(TsError::NotATimestamp)?;
                if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TsError::NotATimestamp);
                }
                let s: u64 = secs.parse().map_err(|_| TsError::NotATimestamp)?;
                let ns = frac_ns(frac).ok_or(TsError::NotATimestamp)?;
                (
                    TsKind::Epoch,
                    s.saturating_mul(1_000_000_000).saturating_add(ns),
                )
            };
        match self.ts_kind {
            None => self.ts_kind = Some(kind),
            Some(k) if k != kind => return Err(TsError::Mixed),
            _ => {}
        }
        let t0 = *self.t0.get_or_insert(abs);
        Ok(abs.saturating_sub(t0))
    }

    fn process_exit(
        &mut self,
        pid: u32,
        ts: u64,
        text: &str,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        self.pending.remove(&pid);
        if Some(pid) != self.root_pid {
            return Ok(());
        }
        let mut e = Event::new(ts, pid, Op::Exit);
        if let Some(code) = text.strip_prefix("exited with ") {
            let code = code.trim_end_matches("+++").trim();
            e.result = code.parse().ok();
            self.summary.exit_status = e.result;
        } else if let Some(sig) = text.strip_prefix("killed by ") {
            let sig = sig.split_whitespace().next().unwrap_or("signal");
            e.err = Some(sig.to_string().into());
        }
        self.emit(e, sink)
    }

    fn emit(&mut self, e: Event<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        // A trace path is a C string in the kernel: a NUL in one is a
        // corrupt or hand-made capture, refused here with its line rather
        // than by whatever reads the trace later.
        if e.path.as_deref().is_some_and(|p| p.contains('\0')) {
            return Err(self.err(
                self.summary.lines,
                format!("{}: the path contains a NUL byte", e.op.as_str()),
            ));
        }
        self.summary.events += 1;
        sink(&e)
    }

    fn strip_root(&self, p: &str) -> String {
        let p = p.strip_suffix(" (deleted)").unwrap_or(p);
        if let Some(root) = self.opts.root.as_deref().filter(|r| !r.is_empty()) {
            if p == root {
                return "/".into();
            }
            if let Some(rest) = p.strip_prefix(root)
                && rest.starts_with('/')
            {
                return rest.to_string();
            }
        }
        p.to_string()
    }

    fn cwd_of(&self, pid: u32) -> String {
        self.cwd
            .get(&pid)
            .or_else(|| self.root_pid.and_then(|r| self.cwd.get(&r)))
            .cloned()
            .unwrap_or_else(|| self.opts.cwd.clone())
    }

    /// The open file description of `fd` in `pid`, reconciled with a `-y`
    /// decoration when there is one. Falls back to the last description that
    /// used this number in any process: children inherit descriptors across
    /// fork and threads share them, and neither clone nor fork is traced.
    fn ofd_of(&mut self, pid: u32, fd: &FdArg) -> Option<usize> {
        let n = fd.fd?;
        let known = self
            .fds
            .get(&(pid, n))
            .or_else(|| self.last_by_fd.get(&n))
            .copied();
        match fd.decor.as_deref() {
            Some(d) if d.starts_with('/') => {
                let path = clean(&self.strip_root(d));
                if let Some(id) = known
                    && self.ofds[id].path.as_deref() == Some(path.as_str())
                {
                    return Some(id);
                }
                Some(self.new_ofd(pid, n, Some(path)))
            }
            Some(_) => None, // pipe:[…], socket:[…], anon_inode:…
            None => known.filter(|&id| self.ofds[id].path.is_some()),
        }
    }

    fn new_ofd(&mut self, pid: u32, fd: i64, path: Option<String>) -> usize {
        let id = self.ofds.len();
        self.ofds.push(Ofd { path, pos: 0 });
        self.fds.insert((pid, fd), id);
        self.last_by_fd.insert(fd, id);
        id
    }

    fn set_fd(&mut self, pid: u32, fd: i64, id: usize) {
        self.fds.insert((pid, fd), id);
        self.last_by_fd.insert(fd, id);
    }

    fn close_fd(&mut self, pid: u32, fd: i64) {
        if let Some(id) = self.fds.remove(&(pid, fd))
            && self.last_by_fd.get(&fd) == Some(&id)
        {
            self.last_by_fd.remove(&fd);
        }
    }

    /// Absolute container path of `path` relative to a directory descriptor.
    fn abs_path(&mut self, pid: u32, dir: Option<&FdArg>, path: &str) -> Option<String> {
        if path.starts_with('/') {
            // Arguments are container paths, except before a chroot (a test
            // harness) where they are the host's: strip the root there too.
            return Some(clean(&self.strip_root(path)));
        }
        let base = match dir {
            Some(FdArg { decor: Some(d), .. }) if d.starts_with('/') => self.strip_root(d),
            Some(FdArg { fd: Some(n), .. }) if *n != AT_FDCWD => {
                let id = self
                    .fds
                    .get(&(pid, *n))
                    .or_else(|| self.last_by_fd.get(n))
                    .copied()?;
                self.ofds[id].path.clone()?
            }
            _ => self.cwd_of(pid),
        };
        Some(clean(&format!("{base}/{path}")))
    }

    /// Import one complete call: parse it, then hand it to its family's handler.
    fn complete(
        &mut self,
        line_no: u64,
        pid: u32,
        ts: u64,
        text: &str,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        let call = parse_call(text).map_err(|m| self.err(line_no, m))?;
        self.summary.syscalls += 1;
        if call.dur.is_some() {
            self.summary.durations = true;
        }
        let c = Completed {
            line_no,
            pid,
            ts,
            call,
        };
        match c.call.name {
            "open" | "openat" | "creat" | "openat2" => self.on_open(&c, sink),
            "close" => {
                self.on_close(&c);
                Ok(())
            }
            "dup" | "dup2" | "dup3" | "fcntl" | "fcntl64" => {
                self.on_dup(&c);
                Ok(())
            }
            "lseek" | "llseek" => {
                self.on_lseek(&c);
                Ok(())
            }
            "read" | "readv" | "pread64" | "preadv" | "preadv2" => self.on_read(&c, sink),
            "sendfile" | "sendfile64" | "copy_file_range" => self.on_sendfile(&c, sink),
            "mmap" | "mmap2" => self.on_mmap(&c, sink),
            "execve" | "execveat" => self.on_exec(&c, sink),
            "chdir" | "fchdir" => self.on_chdir(&c),
            "getdents" | "getdents64" => self.on_getdents(&c, sink),
            "stat" | "lstat" | "stat64" | "lstat64" | "access" | "readlink" | "getxattr"
            | "lgetxattr" | "statfs" | "newfstatat" | "fstatat64" | "statx" | "faccessat"
            | "faccessat2" | "readlinkat" => self.on_stat(&c, sink),
            "write" | "writev" | "pwrite64" => self.on_write(&c, sink),
            _ => Ok(()),
        }
    }

    /// Argument `i` (0-based) is an offset below 0 or beyond `u64`.
    fn negative_arg(&self, c: &Completed<'_>, i: usize, v: i64) -> Error {
        self.err(
            c.line_no,
            format!(
                "{}: argument {} is {} ({v}); expected bytes from the start of the file",
                c.call.name,
                i + 1,
                if v < 0 { "negative" } else { "out of range" }
            ),
        )
    }

    /// Argument `i` (0-based) is not the `what` the call takes there.
    fn bad_arg(&self, c: &Completed<'_>, i: usize, what: &str) -> Error {
        self.err(
            c.line_no,
            format!(
                "{}: cannot parse argument {} (`{}`); expected {what}",
                c.call.name,
                i + 1,
                c.call.arg(i)
            ),
        )
    }

    /// The quoted path in argument `i`, unescaped.
    fn path_arg(&self, c: &Completed<'_>, i: usize) -> Result<String, Error> {
        match c.call.args.get(i).and_then(|a| parse_quoted(a)) {
            Some((raw, _)) => Ok(raw),
            None => Err(self.bad_arg(c, i, "a quoted path")),
        }
    }

    /// `open`, `openat`, `creat`, `openat2`: an open event, and a new open
    /// file description for the returned descriptor.
    fn on_open(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let call = &c.call;
        let (dir, pi, flags) = match call.name {
            "open" => (None, 0, call.args.get(1).map(|s| s.to_string())),
            "creat" => (None, 0, Some("O_WRONLY|O_CREAT|O_TRUNC".to_string())),
            "openat2" => (
                Some(0),
                1,
                call.args
                    .get(2)
                    .and_then(|s| struct_field(s, "flags"))
                    .map(str::to_string),
            ),
            "openat" => (Some(0), 1, call.args.get(2).map(|s| s.to_string())),
            _ => return Ok(()),
        };
        let dir = dir.map(|i| call.fd_arg(i));
        let raw = self.path_arg(c, pi)?;
        // With -y the returned descriptor names the opened file exactly
        // (symlinks resolved); otherwise resolve the argument.
        let path = match call.ret_decor.as_deref() {
            Some(d) if call.ok() && d.starts_with('/') => Some(clean(&self.strip_root(d))),
            _ => self.abs_path(c.pid, dir.as_ref(), &raw),
        };
        let Some(path) = path else {
            self.summary.unresolved_paths += 1;
            return Ok(());
        };
        let mut e = c.event(Op::Open, path.clone());
        e.flags = flags.map(Into::into);
        if let (true, Some(fd)) = (call.ok(), call.ret) {
            e.fd = Some(fd);
            self.new_ofd(c.pid, fd, Some(path));
        }
        self.emit(e, sink)
    }

    fn on_close(&mut self, c: &Completed<'_>) {
        if let Some(fd) = c.call.fd_arg(0).fd {
            self.close_fd(c.pid, fd);
        }
    }

    /// `dup`, `dup2`, `dup3`, `fcntl(F_DUPFD…)`: the new descriptor shares
    /// the old one's open file description.
    fn on_dup(&mut self, c: &Completed<'_>) {
        let call = &c.call;
        if call.name.starts_with("fcntl") {
            let cmd = call.arg(1);
            if cmd != "F_DUPFD" && cmd != "F_DUPFD_CLOEXEC" {
                return;
            }
        }
        let (Some(new), true) = (call.ret, call.ok()) else {
            return;
        };
        let old = call.fd_arg(0);
        if let Some(id) = self.ofd_of(c.pid, &old) {
            self.set_fd(c.pid, new, id);
        } else {
            self.close_fd(c.pid, new);
        }
    }

    fn on_lseek(&mut self, c: &Completed<'_>) {
        let fd = c.call.fd_arg(0);
        if let (Some(pos), true) = (c.call.ret, c.call.ok())
            && let Some(id) = self.ofd_of(c.pid, &fd)
        {
            self.ofds[id].pos = pos as u64;
        }
    }

    /// `read`, `readv` (at the description's offset, which they advance),
    /// `pread64`, `preadv`, `preadv2` (at their offset argument).
    fn on_read(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let call = &c.call;
        if !call.ok() {
            return Ok(());
        }
        let n = call.ret.unwrap_or(0) as u64;
        let fd = call.fd_arg(0);
        let Some(id) = self.ofd_of(c.pid, &fd) else {
            self.summary.reads_on_unknown_fds += 1;
            return Ok(());
        };
        let offset = match call.name {
            "pread64" | "preadv" | "preadv2" => {
                let Some(o) = call.args.get(3).and_then(|a| parse_int(a)) else {
                    return Err(self.bad_arg(c, 3, "the file offset"));
                };
                non_negative(o).ok_or_else(|| self.negative_arg(c, 3, o))?
            }
            _ => self.advance(id, n),
        };
        if n == 0 {
            return Ok(());
        }
        self.emit_read(c, id, &fd, offset, n, sink)
    }

    /// `sendfile`, `copy_file_range`: a read of the input descriptor, at its
    /// offset argument or (`NULL`) at the description's offset.
    fn on_sendfile(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let call = &c.call;
        if !call.ok() || call.ret == Some(0) {
            return Ok(());
        }
        let n = call.ret.unwrap_or(0) as u64;
        let (in_i, off_i) = if call.name == "copy_file_range" {
            (0, 1)
        } else {
            (1, 2)
        };
        let fd = call.fd_arg(in_i);
        let Some(id) = self.ofd_of(c.pid, &fd) else {
            self.summary.reads_on_unknown_fds += 1;
            return Ok(());
        };
        let off_arg = call.args.get(off_i).copied().unwrap_or("NULL");
        let offset = if off_arg == "NULL" {
            self.advance(id, n)
        } else {
            let inner = off_arg.trim_start_matches('[');
            let num = inner.split([' ', ']']).next().unwrap_or("");
            let Some(o) = parse_int(num) else {
                return Err(self.bad_arg(c, off_i, "NULL or [offset]"));
            };
            non_negative(o).ok_or_else(|| self.negative_arg(c, off_i, o))?
        };
        self.emit_read(c, id, &fd, offset, n, sink)
    }

    /// The description's offset, then moved `n` bytes on.
    fn advance(&mut self, id: usize, n: u64) -> u64 {
        let o = self.ofds[id].pos;
        self.ofds[id].pos = o.saturating_add(n);
        o
    }

    /// A read of `n` bytes at `offset` of description `id`, when it is a file.
    fn emit_read(
        &mut self,
        c: &Completed<'_>,
        id: usize,
        fd: &FdArg,
        offset: u64,
        n: u64,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        let Some(path) = self.ofds[id].path.clone() else {
            return Ok(());
        };
        let mut e = c.event(Op::Read, path);
        e.offset = Some(offset);
        e.len = Some(n);
        e.fd = fd.fd;
        self.emit(e, sink)
    }

    /// `mmap`, `mmap2` of a file: a mapped read of its length at its offset.
    fn on_mmap(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let call = &c.call;
        if !call.ok() && call.ret.is_some() {
            return Ok(());
        }
        if call.arg(3).contains("MAP_ANONYMOUS") {
            return Ok(());
        }
        let fd = call.fd_arg(4);
        if fd.fd.is_none_or(|f| f < 0) {
            return Ok(());
        }
        let (Some(len), Some(off)) = (
            call.args.get(1).and_then(|a| parse_int(a)),
            call.args.get(5).and_then(|a| parse_int(a)),
        ) else {
            let what = "the mapping length and offset (arguments 2 and 6)";
            return Err(self.bad_arg(c, 1, what));
        };
        let len = non_negative(len).ok_or_else(|| self.negative_arg(c, 1, len))?;
        // mmap2 (32-bit) takes the offset in 4096-byte pages.
        let off = non_negative(off)
            .and_then(|o| o.checked_mul(if call.name == "mmap2" { 4096 } else { 1 }))
            .ok_or_else(|| self.negative_arg(c, 5, off))?;
        let Some(id) = self.ofd_of(c.pid, &fd) else {
            self.summary.reads_on_unknown_fds += 1;
            return Ok(());
        };
        let Some(path) = self.ofds[id].path.clone() else {
            return Ok(());
        };
        let mut e = c.event(Op::MmapRead, path);
        e.offset = Some(off);
        e.len = Some(len);
        e.fd = fd.fd;
        e.result = None; // the mapping address is noise
        self.emit(e, sink)
    }

    /// `execve`, `execveat`: an open of the binary and, when it ran, a mapped
    /// read of all of it.
    fn on_exec(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let call = &c.call;
        let (dir, pi) = if call.name == "execveat" {
            (Some(call.fd_arg(0)), 1)
        } else {
            (None, 0)
        };
        let raw = self.path_arg(c, pi)?;
        let Some(path) = self.abs_path(c.pid, dir.as_ref(), &raw) else {
            self.summary.unresolved_paths += 1;
            return Ok(());
        };
        let failed = call.ret.is_some_and(|r| r < 0);
        self.emit(c.event(Op::Open, path.clone()), sink)?;
        if !failed {
            // The kernel maps the binary; its page faults are not
            // traced, so count the whole file (an upper bound).
            let mut m = c.event(Op::MmapRead, path);
            m.offset = Some(0);
            m.result = None;
            self.emit(m, sink)?;
        }
        Ok(())
    }

    /// `chdir`, `fchdir`: the process's working directory, for relative paths.
    fn on_chdir(&mut self, c: &Completed<'_>) -> Result<(), Error> {
        if !c.call.ok() {
            return Ok(());
        }
        let new = if c.call.name == "chdir" {
            let raw = self.path_arg(c, 0)?;
            self.abs_path(c.pid, None, &raw)
        } else {
            let fd = c.call.fd_arg(0);
            match fd.decor.as_deref() {
                Some(d) if d.starts_with('/') => Some(clean(&self.strip_root(d))),
                _ => self
                    .ofd_of(c.pid, &fd)
                    .and_then(|id| self.ofds[id].path.clone()),
            }
        };
        if let Some(p) = new {
            self.cwd.insert(c.pid, p);
        }
        Ok(())
    }

    fn on_getdents(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        if !c.call.ok() {
            return Ok(());
        }
        let fd = c.call.fd_arg(0);
        let Some(path) = self
            .ofd_of(c.pid, &fd)
            .and_then(|id| self.ofds[id].path.clone())
        else {
            return Ok(());
        };
        let mut e = c.event(Op::Readdir, path);
        e.fd = fd.fd;
        self.emit(e, sink)
    }

    /// The stat, access, readlink and xattr families (and their `…at` forms).
    fn on_stat(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let at = matches!(
            c.call.name,
            "newfstatat" | "fstatat64" | "statx" | "faccessat" | "faccessat2" | "readlinkat"
        );
        let (dir, pi) = if at {
            (Some(c.call.fd_arg(0)), 1)
        } else {
            (None, 0)
        };
        let raw = self.path_arg(c, pi)?;
        if raw.is_empty() {
            return Ok(()); // AT_EMPTY_PATH: fstat of an open descriptor
        }
        let Some(path) = self.abs_path(c.pid, dir.as_ref(), &raw) else {
            self.summary.unresolved_paths += 1;
            return Ok(());
        };
        self.emit(c.event(Op::Stat, path), sink)
    }

    /// `write`, `writev`, `pwrite64` to stdout or stderr: `ready` at the
    /// first that contains the ready pattern.
    fn on_write(&mut self, c: &Completed<'_>, sink: &mut Sink<'_>) -> Result<(), Error> {
        let Some(pat) = self.opts.ready_pattern.as_deref() else {
            return Ok(());
        };
        if self.summary.ready {
            return Ok(());
        }
        if !matches!(c.call.fd_arg(0).fd, Some(1) | Some(2)) {
            return Ok(());
        }
        if unescape(c.call.arg(1)).contains(pat) {
            self.summary.ready = true;
            self.emit(Event::new(c.ts, c.pid, Op::Ready), sink)?;
        }
        Ok(())
    }
}

enum TsError {
    NotATimestamp,
    Seconds,
    Mixed,
}

/// `AT_FDCWD` as a number (Linux: -100).
const AT_FDCWD: i64 = -100;

/// A byte offset or length argument as a `u64`; None when negative.
fn non_negative(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// Split the `[pid N] ` (stderr) or `N  ` (`-o FILE`) prefix.
fn split_pid(line: &str) -> (Option<u32>, &str) {
    if let Some(r) = line.strip_prefix("[pid") {
        if let Some((n, rest)) = r.split_once(']')
            && let Ok(p) = n.trim().parse()
        {
            return (Some(p), rest.trim_start());
        }
        return (None, line);
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line.as_bytes().get(digits) == Some(&b' ') {
        let rest = line[digits..].trim_start();
        if rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && let Ok(p) = line[..digits].parse()
        {
            return (Some(p), rest);
        }
    }
    (None, line)
}

fn parse_hms(s: &str) -> Option<u64> {
    let mut it = s.split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let m: u64 = it.next()?.parse().ok()?;
    let sec: u64 = it.next()?.parse().ok()?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// Fractional seconds digits (any precision) → nanoseconds.
fn frac_ns(f: &str) -> Option<u64> {
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut s: String = f.chars().take(9).collect();
    while s.len() < 9 {
        s.push('0');
    }
    s.parse().ok()
}

/// `name(` at the start, name made of identifier characters.
fn looks_like_syscall(s: &str) -> bool {
    let n = s
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    n > 0 && s.as_bytes().get(n) == Some(&b'(')
}

/// Parse `name(args) = ret [decor] [ERRNO (text)] [<dur>]`.
fn parse_call(text: &str) -> Result<Call<'_>, String> {
    let open = text
        .find('(')
        .ok_or_else(|| "is not a system call line".to_string())?;
    let name = &text[..open];
    let inner_start = open + 1;
    let close = matching_paren(text, inner_start)
        .ok_or_else(|| format!("{name}: the argument list is not closed (truncated line?)"))?;
    let args = split_args(&text[inner_start..close]);
    let mut rest = text[close + 1..].trim();
    let mut dur = None;
    if rest.ends_with('>')
        && let Some(i) = rest.rfind(" <")
    {
        let d = &rest[i + 2..rest.len() - 1];
        if let Some((s, f)) = d.split_once('.')
            && let (Ok(s), Some(ns)) = (s.parse::<u64>(), frac_ns(f))
        {
            let Some(ns) = s.checked_mul(1_000_000_000).and_then(|v| v.checked_add(ns)) else {
                return Err(format!(
                    "{name}: duration <{d}> is out of range (more than 584 years)"
                ));
            };
            dur = Some(ns);
            rest = rest[..i].trim_end();
        }
    }
    let mut ret = None;
    let mut ret_decor = None;
    let mut errno = None;
    if let Some(r) = rest.strip_prefix('=') {
        let r = r.trim_start();
        let num_len = r
            .char_indices()
            .take_while(|&(i, c)| c.is_ascii_hexdigit() || c == 'x' || (i == 0 && c == '-'))
            .count();
        ret = parse_int(&r[..num_len]);
        let mut after = &r[num_len..];
        if let Some(d) = after.strip_prefix('<')
            && let Some(end) = d.find('>')
        {
            ret_decor = Some(unescape_decor(&d[..end]));
            after = &d[end + 1..];
        }
        if let Some(e) = after.split_whitespace().next()
            && e.len() > 1
            && e.starts_with('E')
            && e.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            errno = Some(e);
        }
    }
    Ok(Call {
        name,
        args,
        ret,
        ret_decor,
        errno,
        dur,
    })
}

/// Index of the `)` closing the argument list that starts at `from`.
fn matching_paren(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_quoted(b, i),
            b'<' if i > 0 && (b[i - 1].is_ascii_alphanumeric()) => {
                i = s[i..].find('>').map_or(b.len(), |e| i + e);
            }
            b'(' | b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b')' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the closing quote of the string starting at `i`.
fn skip_quoted(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j,
            _ => j += 1,
        }
    }
    b.len()
}

/// Split an argument list at top-level commas.
fn split_args(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_quoted(b, i),
            b'<' if i > 0 && b[i - 1].is_ascii_alphanumeric() => {
                i = s[i..].find('>').map_or(b.len(), |e| i + e);
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = s[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    out
}

/// `3</etc/passwd>`, `AT_FDCWD</app>`, `3`, `AT_FDCWD`.
fn parse_fd(arg: &str) -> FdArg {
    let (base, decor) = match arg.find('<') {
        Some(i) if arg.ends_with('>') => {
            (&arg[..i], Some(unescape_decor(&arg[i + 1..arg.len() - 1])))
        }
        _ => (arg, None),
    };
    let fd = if base == "AT_FDCWD" {
        Some(AT_FDCWD)
    } else {
        parse_int(base)
    };
    FdArg { fd, decor }
}

/// A quoted strace string: its unescaped text and whether it was truncated (`"…"...`).
fn parse_quoted(arg: &str) -> Option<(String, bool)> {
    let b = arg.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let end = skip_quoted(b, 0);
    if end >= b.len() {
        return None;
    }
    let truncated = arg[end + 1..].starts_with("...");
    Some((unescape(&arg[..=end]), truncated))
}

/// Decimal, negative, or 0x hexadecimal.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    s.parse().ok()
}

/// A field of a struct argument: `{flags=O_RDONLY|O_CLOEXEC, mode=0}` → `O_RDONLY|O_CLOEXEC`.
fn struct_field<'s>(s: &'s str, field: &str) -> Option<&'s str> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    split_args(inner)
        .into_iter()
        .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))
}

/// Undo strace's C-style escaping of a quoted string (quotes included or not).
fn unescape(s: &str) -> String {
    let s = s.strip_prefix('"').unwrap_or(s);
    let s = s.strip_suffix("...").unwrap_or(s);
    let s = s.strip_suffix('"').unwrap_or(s);
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'x' => {
                // Bytes, not a str slice: a multi-byte character may follow `\x`.
                let h = &b[i..(i + 2).min(b.len())];
                if h.len() == 2 && h.iter().all(u8::is_ascii_hexdigit) {
                    let hex = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
                    out.push((hex(h[0]) << 4) | hex(h[1]));
                    i += 2;
                } else {
                    out.extend_from_slice(b"\\x");
                }
            }
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + (b[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `-y` decorations escape like strings but without surrounding quotes.
fn unescape_decor(s: &str) -> String {
    unescape(&format!("\"{s}\""))
}

/// Lexically drop empty and `.` components (keep `..`: symlinks decide what it means).
fn clean(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 1);
    for c in p.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Import a whole strace output file.
pub fn import<R: BufRead>(
    input: R,
    name: &str,
    opts: &StraceOptions,
    mut sink: impl FnMut(&Event<'_>) -> Result<(), Error>,
) -> Result<StraceSummary, Error> {
    let mut imp = Importer::new(name, opts.clone());
    let mut buf = Vec::new();
    let mut input = input;
    let mut n = 0u64;
    loop {
        let read = super::read_import_line(
            &mut input,
            &mut buf,
            name,
            n + 1,
            "cannot read the strace output",
        )?;
        if read == 0 {
            break;
        }
        n += 1;
        // strace escapes non-ASCII in strings, but program output mixed into
        // stderr may be anything: decode lossily rather than fail.
        let line = String::from_utf8_lossy(&buf);
        imp.feed(n, &line, &mut sink)?;
    }
    imp.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, opts: StraceOptions) -> Result<(Vec<Event<'static>>, StraceSummary), Error> {
        let mut v = Vec::new();
        let s = import(text.as_bytes(), "strace.txt", &opts, |e| {
            v.push(e.clone().into_owned());
            Ok(())
        })?;
        Ok((v, s))
    }

    fn reads(v: &[Event<'_>]) -> Vec<(u32, String, u64, u64)> {
        v.iter()
            .filter(|e| e.op == Op::Read)
            .map(|e| {
                (
                    e.pid,
                    e.path.as_deref().unwrap_or("").to_string(),
                    e.offset.unwrap_or(0),
                    e.len.unwrap_or(0),
                )
            })
            .collect()
    }

    #[test]
    fn tracks_fds_offsets_and_failed_opens() {
        let text = r#"10:00:00.000100 openat(AT_FDCWD, "/etc/a", O_RDONLY|O_CLOEXEC) = 3
10:00:00.000200 read(3, "abc"..., 100) = 100
10:00:00.000300 read(3, "abc"..., 100) = 50
10:00:00.000400 pread64(3, "x", 10, 7) = 10
10:00:00.000500 read(3, "", 100) = 0
10:00:00.000600 lseek(3, 5, SEEK_SET) = 5
10:00:00.000700 readv(3, [{iov_base="ab", iov_len=2}], 1) = 2
10:00:00.000800 openat(AT_FDCWD, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
10:00:00.000900 dup2(3, 7) = 7
10:00:00.001000 read(7, "q", 4) = 4
10:00:00.001100 close(3) = 0
10:00:00.001200 read(0, "input", 5) = 5
10:00:00.001300 +++ exited with 0 +++
"#;
        let (v, s) = run(text, StraceOptions::default()).unwrap();
        assert_eq!(
            reads(&v),
            vec![
                (0, "/etc/a".into(), 0, 100),
                (0, "/etc/a".into(), 100, 50),
                (0, "/etc/a".into(), 7, 10),
                (0, "/etc/a".into(), 5, 2),
                (0, "/etc/a".into(), 7, 4),
            ]
        );
        let failed: Vec<_> = v.iter().filter(|e| e.failed()).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].path.as_deref(), Some("/nope"));
        assert_eq!(failed[0].err.as_deref(), Some("ENOENT"));
        assert_eq!(v[0].t, 0);
        assert_eq!(v[1].t, 100_000, "ns since the first line");
        assert_eq!(
            v.last().map(|e| (e.op, e.result)),
            Some((Op::Exit, Some(0)))
        );
        assert_eq!(s.reads_on_unknown_fds, 1, "stdin was never opened");
        assert_eq!(s.exit_status, Some(0));
    }

    #[test]
    fn unfinished_and_resumed_calls_join_per_pid() {
        let text = r#"[pid  5] 10:00:00.000001 openat(AT_FDCWD, "/x", O_RDONLY <unfinished ...>
[pid  6] 10:00:00.000002 openat(AT_FDCWD, "/y", O_RDONLY) = 3
[pid  5] 10:00:00.000003 <... openat resumed>) = 4
[pid  5] 10:00:00.000004 read(4,  <unfinished ...>
[pid  6] 10:00:00.000005 read(3, "y", 1) = 1
[pid  5] 10:00:00.000006 <... read resumed>"xx", 2) = 2
[pid  7] 10:00:00.000007 <... read resumed>"zz", 2) = 2
"#;
        let (v, s) = run(text, StraceOptions::default()).unwrap();
        assert_eq!(
            reads(&v),
            vec![(6, "/y".into(), 0, 1), (5, "/x".into(), 0, 2)]
        );
        let open_x = v.iter().find(|e| e.path.as_deref() == Some("/x")).unwrap();
        assert_eq!(
            (open_x.t, open_x.fd),
            (0, Some(4)),
            "timed at the call's start"
        );
        assert_eq!(s.unmatched_resumes, 1);
        assert_eq!(s.processes, 3);
    }

    #[test]
    fn epoch_timestamps_durations_y_decorations_and_root_stripping() {
        let text = r#"2010  1700000000.500000 openat(AT_FDCWD</r/app>, "cfg", O_RDONLY) = 3</r/app/cfg> <0.000024>
2010  1700000000.500100 read(3</r/app/cfg>, "x", 10) = 10 <0.000013>
2010  1700000000.500200 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3</r/app/cfg>, 0x1000) = 0x7f00 <0.000010>
2010  1700000000.500300 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f01
2010  1700000000.500400 read(4<pipe:[66]>, "x", 1) = 1
2011  1700000000.600000 read(3</r/app/cfg>, "y", 5) = 5
2010  1700000000.700000 newfstatat(AT_FDCWD</r/app>, "../lib/x.so", 0x7ff, 0) = -1 ENOENT (No such file or directory)
2010  1700000000.700100 newfstatat(3</r/app/cfg>, "", {st_mode=S_IFREG|0644, st_size=1}, AT_EMPTY_PATH) = 0
2010  1700000000.800000 execve("/bin/sh", ["sh"], 0x7ff /* 3 vars */) = 0 <0.000400>
"#;
        let opts = StraceOptions {
            root: Some("/r/".into()),
            ..StraceOptions::default()
        };
        let (v, s) = run(text, opts).unwrap();
        assert!(s.durations);
        assert_eq!(v[0].path.as_deref(), Some("/app/cfg"));
        assert_eq!(v[0].dur, Some(24_000));
        assert_eq!(v[0].flags.as_deref(), Some("O_RDONLY"));
        assert_eq!(
            reads(&v),
            vec![
                (2010, "/app/cfg".into(), 0, 10),
                (2011, "/app/cfg".into(), 10, 5)
            ],
            "a child inherits the parent's open file description"
        );
        let mm: Vec<_> = v.iter().filter(|e| e.op == Op::MmapRead).collect();
        assert_eq!(
            mm.len(),
            2,
            "file mapping + execve; anonymous mapping skipped"
        );
        assert_eq!((mm[0].offset, mm[0].len), (Some(4096), Some(8192)));
        assert_eq!((mm[1].path.as_deref(), mm[1].len), (Some("/bin/sh"), None));
        let st: Vec<_> = v.iter().filter(|e| e.op == Op::Stat).collect();
        assert_eq!(st.len(), 1, "AT_EMPTY_PATH fstat is no lookup");
        assert_eq!(st[0].path.as_deref(), Some("/app/../lib/x.so"));
        assert_eq!(v[1].t, 100_000);
        assert_eq!(s.reads_on_unknown_fds, 1, "the pipe");
    }

    #[test]
    fn relative_paths_use_chdir_and_dirfds() {
        let text = r#"10:00:00.000001 chdir("/srv") = 0
10:00:00.000002 openat(AT_FDCWD, "./d", O_RDONLY|O_DIRECTORY) = 3
10:00:00.000003 getdents64(3, 0x55 /* 4 entries */, 32768) = 112
10:00:00.000004 openat(3, "f.txt", O_RDONLY) = 4
10:00:00.000005 stat("rel", 0x7ff) = 0
"#;
        let (v, _) = run(text, StraceOptions::default()).unwrap();
        let paths: Vec<(Op, &str)> = v
            .iter()
            .map(|e| (e.op, e.path.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            paths,
            vec![
                (Op::Open, "/srv/d"),
                (Op::Readdir, "/srv/d"),
                (Op::Open, "/srv/d/f.txt"),
                (Op::Stat, "/srv/rel"),
            ]
        );
    }

    #[test]
    fn ready_pattern_on_stdout_write() {
        let text = r#"10:00:00.000001 write(2, "starting\n", 9) = 9
10:00:00.000002 write(1, "server \"ready\" on :80\n", 22) = 22
10:00:00.000003 write(1, "ready again\n", 12) = 12
"#;
        let opts = StraceOptions {
            ready_pattern: Some("\"ready\"".into()),
            ..StraceOptions::default()
        };
        let (v, s) = run(text, opts).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].op, v[0].t), (Op::Ready, 1_000));
        assert!(s.ready);
    }

    #[test]
    fn midnight_wraps_to_the_next_day() {
        let text = "23:59:59.999000 stat(\"/a\", 0x1) = 0\n00:00:00.001000 stat(\"/b\", 0x1) = 0\n";
        let (v, _) = run(text, StraceOptions::default()).unwrap();
        assert_eq!(v[1].t, 2_000_000);
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let e = run(
            "openat(AT_FDCWD, \"/a\", O_RDONLY) = 3\n",
            StraceOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("strace.txt line 1: has no timestamp"), "{e}");
        let e = run(
            "10:00:00 openat(AT_FDCWD, \"/a\", O_RDONLY) = 3\n",
            StraceOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 1: timestamp `10:00:00` has no sub-second part"),
            "{e}"
        );
        let e = run("10:00:00.1 stat(/a, 0x1) = 0\n", StraceOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1: stat: cannot parse argument 1 (`/a`)"),
            "{e}"
        );
        let e = run("hello world\n", StraceOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("contains no strace output"), "{e}");
    }

    #[test]
    fn program_output_mixed_in_is_skipped_and_quoted() {
        let text = "10:00:00.000001 stat(\"/a\", 0x1) = 0\n1000\nstrace: Process 5 attached\n";
        let (v, s) = run(text, StraceOptions::default()).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(s.skipped_lines, 1);
        assert_eq!(s.first_skipped, vec!["line 2: 1000".to_string()]);
    }

    #[test]
    fn unescape_handles_c_escapes() {
        assert_eq!(unescape(r#""a\"b\\c\n\x41\101\0""#), "a\"b\\c\nAA\0");
        assert_eq!(unescape(r#""abc"..."#), "abc");
        assert_eq!(
            parse_quoted(r#""/p\x2fq""#),
            Some(("/p/q".to_string(), false))
        );
        assert_eq!(
            split_args(r#"3</a, b>, "x,y", [{a=1, b=2}], 4"#),
            vec!["3</a, b>", "\"x,y\"", "[{a=1, b=2}]", "4"]
        );
        assert_eq!(
            struct_field("{flags=O_RDONLY|O_CLOEXEC, mode=0}", "flags"),
            Some("O_RDONLY|O_CLOEXEC")
        );
        assert_eq!(clean("//a/./b/../c/"), "/a/b/../c");
    }
}
