//! The trace file format (docs/trace-format.md): versioned JSON Lines, one
//! header line then one event per line.
//!
//! Owns the header and event types, the streaming reader (one line in memory
//! at a time, events borrowed from that line) and the writer. Every parse
//! error names the file, the line number and the field. Must not interpret
//! events (that is `analyze`'s job) or know where they came from.
use super::Error;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// Value of the header's `format` field.
pub const TRACE_FORMAT: &str = "advisor-trace";
/// The format version this build reads and writes. Readers ignore unknown
/// fields within a version; a change in meaning bumps it.
pub const TRACE_VERSION: u32 = 1;
/// Longest accepted line; longer ones are an error rather than unbounded memory.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// The first line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// Always [`TRACE_VERSION`] for what this build writes.
    pub version: u32,
    /// The image the workload ran on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageId>,
    /// What produced the trace: `strace-import`, `file-list`, `synth`, `record`.
    pub recorder: String,
    /// Where `t` comes from.
    pub clock: Clock,
    /// Free-form provenance (input file, command line, synth parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What the recorder itself added per operation, outside the recorded
    /// durations (`trace record` measures it on the node before recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder_overhead: Option<RecorderOverhead>,
    /// The same workload run without the recorder, on the same warm local
    /// rootfs (`trace record` does it first, by default three times): its
    /// true duration, the median of those runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_run: Option<ReferenceRun>,
}

/// The `recorder` of a trace `advisor trace record` wrote: its `stat`
/// events are the FUSE lookups the kernel sent (docs/trace-format.md §7).
pub const RECORDED: &str = "record";

/// Times of the reference run, from task start (ns): one run's, or the
/// median of `runs` runs' (each time its own median).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRun {
    /// The readiness condition held (None: never, or readiness is the exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_ns: Option<u64>,
    pub exit_ns: u64,
    pub exit_code: u32,
    /// How many runs the times are the median of (absent: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
}

impl ReferenceRun {
    /// The median run of several: the median time to ready (of the runs
    /// that got there; None when fewer than half did), the median time to
    /// exit, and the first failing exit code (0 when every run succeeded).
    /// None for no runs.
    pub fn median_of(runs: &[ReferenceRun]) -> Option<ReferenceRun> {
        let median = |mut v: Vec<u64>| {
            v.sort_unstable();
            let n = v.len();
            match n {
                0 => None,
                _ if n % 2 == 1 => Some(v[n / 2]),
                _ => Some(v[n / 2 - 1] / 2 + v[n / 2] / 2 + (v[n / 2 - 1] % 2 + v[n / 2] % 2) / 2),
            }
        };
        let exit_ns = median(runs.iter().map(|r| r.exit_ns).collect())?;
        let ready: Vec<u64> = runs.iter().filter_map(|r| r.ready_ns).collect();
        let ready_ns = (2 * ready.len() >= runs.len())
            .then(|| median(ready))
            .flatten();
        Some(ReferenceRun {
            ready_ns,
            exit_ns,
            exit_code: runs
                .iter()
                .map(|r| r.exit_code)
                .find(|c| *c != 0)
                .unwrap_or(0),
            runs: (runs.len() > 1).then_some(runs.len() as u32),
        })
    }
}

/// Time a recording added to each operation beyond the `dur` it recorded:
/// FUSE round trips and the unrecorded requests around an open (lookup,
/// getattr, flush, release). Prediction subtracts it from compute gaps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecorderOverhead {
    /// Per `open` event (ns).
    pub open_ns: u64,
    /// Per `read` event (ns).
    pub read_ns: u64,
}

impl Header {
    pub fn new(recorder: &str, clock: Clock) -> Self {
        Header {
            format: TRACE_FORMAT.to_string(),
            version: TRACE_VERSION,
            image: None,
            recorder: recorder.to_string(),
            clock,
            source: None,
            recorder_overhead: None,
            reference_run: None,
        }
    }
}

/// Image reference and manifest digest a trace belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImageId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The clock behind the events' `t`. In every case `t` is nanoseconds since
/// the workload started (the first event is at or after 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// A monotonic clock read while recording.
    Monotonic,
    /// Wall-clock timestamps (strace `-tt`/`-ttt`), made relative to the first event.
    Wall,
    /// No timing: synthesized traces and file lists (every `t` is 0).
    None,
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A path was opened (or an open failed: `result` < 0).
    Open,
    /// `len` bytes (absent: to the end of the file) read at `offset`.
    Read,
    /// A file mapping was read through page faults: `[offset, offset+len)`.
    MmapRead,
    /// Metadata lookup (stat, access, readlink).
    Stat,
    /// A directory listing.
    Readdir,
    /// Marker: the workload is ready (the cold-start point).
    Ready,
    /// Marker: the workload exited (`result` = exit status when known).
    Exit,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Open,
        Op::Read,
        Op::MmapRead,
        Op::Stat,
        Op::Readdir,
        Op::Ready,
        Op::Exit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Read => "read",
            Op::MmapRead => "mmap_read",
            Op::Stat => "stat",
            Op::Readdir => "readdir",
            Op::Ready => "ready",
            Op::Exit => "exit",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the event names a file (needs `path` and `pid`).
    pub fn is_file_op(self) -> bool {
        !matches!(self, Op::Ready | Op::Exit)
    }

    /// Whether the event reads file content (needs `offset`).
    pub fn is_read(self) -> bool {
        matches!(self, Op::Read | Op::MmapRead)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event. Borrowed from the reader's current line while streaming
/// (`Event<'_>`), or owned (`Event<'static>`, see [`Event::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event<'a> {
    /// Nanoseconds since the workload started.
    pub t: u64,
    /// Process (or thread) id as recorded; 0 when unknown.
    pub pid: u32,
    pub op: Op,
    /// Absolute path inside the container (file ops only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Cow<'a, str>>,
    /// Byte offset in the file (reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bytes read; absent on a read = to the end of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Nanoseconds the operation took while recording (separates I/O from compute gaps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<u64>,
    /// File descriptor involved, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i64>,
    /// Return value (negative = failed) or, on `exit`, the exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// Error name of a failed operation (`ENOENT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<Cow<'a, str>>,
    /// open(2) flags as symbols (`O_RDWR|O_CLOEXEC`), when known: a
    /// non-truncating open for writing makes overlayfs copy the file up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// A bare event of a kind at a time; optional fields empty.
    pub fn new(t: u64, pid: u32, op: Op) -> Self {
        Event {
            t,
            pid,
            op,
            path: None,
            offset: None,
            len: None,
            dur: None,
            fd: None,
            result: None,
            err: None,
            flags: None,
        }
    }

    /// A read of `[offset, offset+len)` (`len` None = to the end of the file).
    pub fn read(
        t: u64,
        pid: u32,
        path: impl Into<Cow<'a, str>>,
        offset: u64,
        len: Option<u64>,
    ) -> Self {
        let mut e = Event::new(t, pid, Op::Read);
        e.path = Some(path.into());
        e.offset = Some(offset);
        e.len = len;
        e
    }

    /// An event on a path.
    pub fn on_path(t: u64, pid: u32, op: Op, path: impl Into<Cow<'a, str>>) -> Self {
        let mut e = Event::new(t, pid, op);
        e.path = Some(path.into());
        e
    }

    /// Whether the operation failed (`result` negative or `err` set).
    pub fn failed(&self) -> bool {
        self.err.is_some() || self.result.is_some_and(|r| r < 0 && self.op != Op::Exit)
    }

    pub fn into_owned(self) -> Event<'static> {
        Event {
            t: self.t,
            pid: self.pid,
            op: self.op,
            path: self.path.map(|p| Cow::Owned(p.into_owned())),
            offset: self.offset,
            len: self.len,
            dur: self.dur,
            fd: self.fd,
            result: self.result,
            err: self.err.map(|p| Cow::Owned(p.into_owned())),
            flags: self.flags.map(|p| Cow::Owned(p.into_owned())),
        }
    }
}

/// Visitor for integer fields: accepts any JSON integer, names the field when
/// the value is not one.
struct IntVisitor(&'static str);

impl Visitor<'_> for IntVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "`{}` as an integer", self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v as i128)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v as i128)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e18 {
            Ok(v as i128)
        } else {
            Err(E::custom(format!(
                "`{}` is {v}; expected an integer",
                self.0
            )))
        }
    }
}

macro_rules! int_field {
    ($fn:ident, $name:literal) => {
        fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i128>, D::Error> {
            d.deserialize_any(IntVisitor($name)).map(Some)
        }
    };
}
int_field!(de_t, "t");
int_field!(de_pid, "pid");
int_field!(de_offset, "offset");
int_field!(de_len, "len");
int_field!(de_dur, "dur");
int_field!(de_fd, "fd");
int_field!(de_result, "result");

/// Visitor for string fields: borrows from the line when the JSON string has
/// no escapes (serde's own `Option<Cow<str>>` always allocates), names the
/// field when the value is not a string.
struct StrVisitor(&'static str);

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "`{}` as a string", self.0)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

macro_rules! str_field {
    ($fn:ident, $name:literal) => {
        fn $fn<'de, 'a, D>(d: D) -> Result<Option<Cow<'a, str>>, D::Error>
        where
            D: Deserializer<'de>,
            'de: 'a,
        {
            d.deserialize_any(StrVisitor($name))
        }
    };
}
str_field!(de_op, "op");
str_field!(de_path, "path");
str_field!(de_err, "err");
str_field!(de_flags, "flags");

/// The line as JSON, before validation. Strings borrow from the line unless
/// they contain escapes.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default, deserialize_with = "de_t")]
    t: Option<i128>,
    #[serde(default, deserialize_with = "de_pid")]
    pid: Option<i128>,
    #[serde(borrow, default, deserialize_with = "de_op")]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de_path")]
    path: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de_offset")]
    offset: Option<i128>,
    #[serde(default, deserialize_with = "de_len")]
    len: Option<i128>,
    #[serde(default, deserialize_with = "de_dur")]
    dur: Option<i128>,
    #[serde(default, deserialize_with = "de_fd")]
    fd: Option<i128>,
    #[serde(default, deserialize_with = "de_result")]
    result: Option<i128>,
    #[serde(borrow, default, deserialize_with = "de_err")]
    err: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "de_flags")]
    flags: Option<Cow<'a, str>>,
}

/// Streaming reader: the header is read by [`TraceReader::new`], then
/// [`TraceReader::next_event`] yields events borrowed from the current line
/// (no allocation per event unless a string has escapes). The `Iterator`
/// implementation yields owned events for convenience.
pub struct TraceReader<R> {
    input: R,
    name: String,
    buf: String,
    line: u64,
    header: Header,
}

impl TraceReader<Box<dyn BufRead>> {
    /// Open a trace file (`-` = stdin) and read its header.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let name = super::display_name(path);
        let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| Error::io(&name, "cannot open the trace", e))?;
            Box::new(BufReader::with_capacity(1 << 16, f))
        };
        TraceReader::new(input, name)
    }
}

impl<R: BufRead> TraceReader<R> {
    /// Read and check the header line of `input`; `name` is used in messages.
    pub fn new(input: R, name: impl Into<String>) -> Result<Self, Error> {
        let mut r = TraceReader {
            input,
            name: name.into(),
            buf: String::new(),
            line: 0,
            header: Header::new("", Clock::None),
        };
        if !r.read_line()? {
            return Err(Error::Invalid {
                file: r.name.clone(),
                message: "is empty; expected a trace header line \
                          ({\"format\":\"advisor-trace\",\"version\":1,...})"
                    .into(),
            });
        }
        r.header = r.parse_header()?;
        Ok(r)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Name of the input in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Line number of the last line read (1 = the header).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Read the next non-blank line into `buf`; false at end of input.
    fn read_line(&mut self) -> Result<bool, Error> {
        loop {
            self.buf.clear();
            self.line += 1;
            let n = (&mut self.input)
                .take(MAX_LINE_BYTES + 1)
                .read_line(&mut self.buf)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        Error::parse(&self.name, self.line, None, "is not valid UTF-8")
                    } else {
                        Error::io(&self.name, "cannot read the trace", e)
                    }
                })?;
            if n == 0 {
                return Ok(false);
            }
            if n as u64 > MAX_LINE_BYTES {
                return Err(Error::parse(
                    &self.name,
                    self.line,
                    None,
                    format!(
                        "is longer than {MAX_LINE_BYTES} bytes; a trace event is one short JSON object per line"
                    ),
                ));
            }
            if !self.buf.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    fn parse_header(&self) -> Result<Header, Error> {
        let v: serde_json::Value = serde_json::from_str(&self.buf)
            .map_err(|e| Error::parse(&self.name, self.line, None, json_message(&e)))?;
        let format = v.get("format").and_then(|f| f.as_str());
        if format != Some(TRACE_FORMAT) {
            return Err(Error::parse(
                &self.name,
                self.line,
                Some("format"),
                format!(
                    "`format` is {}; expected \"{TRACE_FORMAT}\" (is this an advisor trace? \
                     convert other recordings with `advisor trace import`)",
                    v.get("format")
                        .map_or("missing".to_string(), |f| f.to_string())
                ),
            ));
        }
        match v.get("version").and_then(|x| x.as_u64()) {
            Some(n) if n == TRACE_VERSION as u64 => {}
            Some(n) => {
                return Err(Error::parse(
                    &self.name,
                    self.line,
                    Some("version"),
                    format!(
                        "trace format version {n} is not supported; this advisor reads version \
                         {TRACE_VERSION} (upgrade advisor or re-create the trace)"
                    ),
                ));
            }
            None => {
                return Err(Error::parse(
                    &self.name,
                    self.line,
                    Some("version"),
                    "`version` is missing or not a number; expected 1",
                ));
            }
        }
        serde_json::from_value(v).map_err(|e| {
            Error::parse(
                &self.name,
                self.line,
                None,
                format!("header: {}", json_message(&e)),
            )
        })
    }

    /// The next event, borrowed from the current line; None at end of input.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        if !self.read_line()? {
            return Ok(None);
        }
        let raw: RawEvent<'_> = serde_json::from_str(&self.buf)
            .map_err(|e| Error::parse(&self.name, self.line, None, json_message(&e)))?;
        validate(raw, &self.name, self.line).map(Some)
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<Event<'static>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
            .map(|o| o.map(Event::into_owned))
            .transpose()
    }
}

/// serde_json's message without its "at line 1 column N" (we name the line).
fn json_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let base = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(b, _)| b)
        .to_string();
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("is not valid JSON: {base} (column {})", e.column())
        }
        _ => base,
    }
}

fn validate<'a>(raw: RawEvent<'a>, file: &str, line: u64) -> Result<Event<'a>, Error> {
    let err = |field: &'static str, msg: String| Error::parse(file, line, Some(field), msg);
    let op_text = raw.op.ok_or_else(|| {
        err(
            "op",
            "`op` is missing; expected one of open, read, mmap_read, stat, readdir, ready, exit"
                .into(),
        )
    })?;
    let op = Op::parse(&op_text).ok_or_else(|| {
        err(
            "op",
            format!(
                "`op` is \"{op_text}\"; expected one of open, read, mmap_read, stat, readdir, ready, exit"
            ),
        )
    })?;
    let t = match raw.t {
        None => {
            return Err(err(
                "t",
                "`t` is missing; expected nanoseconds since the workload started".into(),
            ));
        }
        Some(v) if v < 0 => {
            return Err(err(
                "t",
                format!("`t` is negative ({v}); expected nanoseconds since the workload started"),
            ));
        }
        Some(v) => u64::try_from(v).map_err(|_| err("t", format!("`t` is too large ({v})")))?,
    };
    let pid = match raw.pid {
        None if op.is_file_op() => {
            return Err(err(
                "pid",
                format!("`pid` is missing; a {op} event needs the process id (0 if unknown)"),
            ));
        }
        None => 0,
        Some(v) => u32::try_from(v).map_err(|_| {
            err(
                "pid",
                format!("`pid` is {v}; expected a process id from 0 to {}", u32::MAX),
            )
        })?,
    };
    let path = match raw.path {
        None if op.is_file_op() => {
            return Err(err(
                "path",
                format!(
                    "`path` is missing; a {op} event needs the absolute path inside the container"
                ),
            ));
        }
        Some(p) if op.is_file_op() && !p.starts_with('/') => {
            return Err(err(
                "path",
                format!("`path` is \"{p}\"; expected an absolute path inside the container"),
            ));
        }
        Some(p) if p.contains('\0') => {
            return Err(err("path", "`path` contains a NUL byte".into()));
        }
        p => p,
    };
    let offset = match raw.offset {
        None if op.is_read() => {
            return Err(err(
                "offset",
                format!(
                    "`offset` is missing; a {op} event needs the bytes from the start of the file"
                ),
            ));
        }
        None => None,
        Some(v) if v < 0 => {
            return Err(err(
                "offset",
                format!("`offset` is negative ({v}); expected bytes from the start of the file"),
            ));
        }
        Some(v) => Some(
            u64::try_from(v).map_err(|_| err("offset", format!("`offset` is too large ({v})")))?,
        ),
    };
    let len = match raw.len {
        Some(v) if v < 0 => {
            return Err(err(
                "len",
                format!(
                    "`len` is negative ({v}); expected the bytes read (omit it for \"to the end of the file\")"
                ),
            ));
        }
        Some(v) => {
            Some(u64::try_from(v).map_err(|_| err("len", format!("`len` is too large ({v})")))?)
        }
        None => None,
    };
    let dur = match raw.dur {
        Some(v) if v < 0 => {
            return Err(err(
                "dur",
                format!("`dur` is negative ({v}); expected the nanoseconds the operation took"),
            ));
        }
        Some(v) => {
            Some(u64::try_from(v).map_err(|_| err("dur", format!("`dur` is too large ({v})")))?)
        }
        None => None,
    };
    let fd = match raw.fd {
        Some(v) => {
            Some(i64::try_from(v).map_err(|_| err("fd", format!("`fd` is out of range ({v})")))?)
        }
        None => None,
    };
    let result = match raw.result {
        Some(v) => Some(
            i64::try_from(v)
                .map_err(|_| err("result", format!("`result` is out of range ({v})")))?,
        ),
        None => None,
    };
    Ok(Event {
        t,
        pid,
        op,
        path,
        offset,
        len,
        dur,
        fd,
        result,
        err: raw.err,
        flags: raw.flags,
    })
}

/// Streaming writer: the header first, then one event per line.
pub struct TraceWriter<W: Write> {
    out: W,
    name: String,
    events: u64,
}

impl TraceWriter<crate::output::Output> {
    /// Start a trace file (`-` = stdout) and write the header. The file is
    /// written beside its target and put in place by [`commit`](Self::commit)
    /// only: a failed run leaves an existing file as it was.
    pub fn create(path: &Path, header: &Header) -> Result<Self, Error> {
        let name = super::display_name(path);
        let out = crate::output::Output::create_or_stdout(path)
            .map_err(|e| Error::io(&name, "cannot create the trace", e))?;
        TraceWriter::new(out, name, header)
    }

    /// Finish the trace and put it in place; returns the events written.
    pub fn commit(self) -> Result<u64, Error> {
        let (name, events) = (self.name.clone(), self.events);
        self.finish()?
            .commit()
            .map_err(|e| Error::io(&name, "cannot write the trace", e))?;
        Ok(events)
    }
}

impl<W: Write> TraceWriter<W> {
    pub fn new(mut out: W, name: impl Into<String>, header: &Header) -> Result<Self, Error> {
        let name = name.into();
        serde_json::to_writer(&mut out, header)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| Error::io(&name, "cannot write the trace", e))?;
        Ok(TraceWriter {
            out,
            name,
            events: 0,
        })
    }

    pub fn write(&mut self, event: &Event<'_>) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, event)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| Error::io(&self.name, "cannot write the trace", e))?;
        self.events += 1;
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Flush and return the output.
    pub fn finish(mut self) -> Result<W, Error> {
        self.out
            .flush()
            .map_err(|e| Error::io(&self.name, "cannot write the trace", e))?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_run_of_several_is_their_median() {
        let run = |ready: Option<u64>, exit: u64, code: u32| ReferenceRun {
            ready_ns: ready,
            exit_ns: exit,
            exit_code: code,
            runs: None,
        };
        assert_eq!(ReferenceRun::median_of(&[]), None);
        let one = run(Some(5), 9, 0);
        assert_eq!(ReferenceRun::median_of(&[one]), Some(one));
        // A slow outlier moves the median no further than the middle run.
        let m = ReferenceRun::median_of(&[
            run(Some(2_000), 3_000, 0),
            run(Some(9_000), 12_000, 0),
            run(Some(2_400), 3_300, 0),
        ])
        .expect("three runs");
        assert_eq!(
            (m.ready_ns, m.exit_ns, m.runs),
            (Some(2_400), 3_300, Some(3))
        );
        // Even counts: the mean of the middle two, without overflow.
        let m = ReferenceRun::median_of(&[
            run(Some(u64::MAX), u64::MAX, 0),
            run(Some(u64::MAX - 2), 1, 0),
        ])
        .expect("two runs");
        assert_eq!(
            (m.ready_ns, m.exit_ns),
            (Some(u64::MAX - 1), u64::MAX / 2 + 1)
        );
        // Ready in fewer than half of the runs: not ready; a failing code shows.
        let m = ReferenceRun::median_of(&[run(None, 10, 0), run(None, 20, 0), run(Some(5), 30, 2)])
            .expect("three runs");
        assert_eq!((m.ready_ns, m.exit_ns, m.exit_code), (None, 20, 2));
        // The header keeps the count; a one-run header reads as before.
        let h = serde_json::to_string(&m).expect("serialises");
        assert!(h.contains(r#""runs":3"#), "{h}");
        let old: ReferenceRun =
            serde_json::from_str(r#"{"ready_ns":1,"exit_ns":2,"exit_code":0}"#).expect("parses");
        assert_eq!(old.runs, None);
    }

    const HEADER: &str =
        r#"{"format":"advisor-trace","version":1,"recorder":"test","clock":"none"}"#;

    fn reader(text: &str) -> Result<TraceReader<&[u8]>, Error> {
        TraceReader::new(text.as_bytes(), "trace.jsonl")
    }

    fn first_error(body: &str) -> String {
        let text = format!("{HEADER}\n{body}\n");
        let mut r = reader(&text).unwrap();
        loop {
            match r.next_event() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error in {body}"),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn round_trips_every_op_through_writer_and_reader() {
        let mut h = Header::new("test", Clock::Monotonic);
        h.image = Some(ImageId {
            reference: Some("r/x:1".into()),
            digest: Some("sha256:ab".into()),
        });
        let mut events = vec![
            Event::on_path(1, 7, Op::Open, "/etc/passwd"),
            Event::read(2, 7, "/etc/passwd", 0, Some(4096)),
            Event::read(3, 7, "/a \"quoted\"\n name", 10, None),
            Event::on_path(4, 7, Op::Stat, "/bin"),
            Event::on_path(5, 7, Op::Readdir, "/bin"),
            Event::new(6, 0, Op::Ready),
            Event::new(7, 7, Op::Exit),
        ];
        let mut m = Event::on_path(8, 8, Op::MmapRead, "/lib/libc.so");
        m.offset = Some(0x26000);
        m.len = Some(1400832);
        m.dur = Some(1200);
        m.fd = Some(3);
        m.result = Some(0);
        events.push(m);
        let mut rw = Event::on_path(9, 8, Op::Open, "/etc/x");
        rw.flags = Some("O_RDWR|O_CLOEXEC".into());
        events.push(rw);
        let mut failed = Event::on_path(9, 8, Op::Open, "/nope");
        failed.result = Some(-1);
        failed.err = Some("ENOENT".into());
        events.push(failed);
        let mut w = TraceWriter::new(Vec::new(), "mem", &h).unwrap();
        for e in &events {
            w.write(e).unwrap();
        }
        assert_eq!(w.events(), events.len() as u64);
        let bytes = w.finish().unwrap();
        let r = TraceReader::new(bytes.as_slice(), "mem").unwrap();
        assert_eq!(r.header(), &h);
        let back: Vec<_> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(back, events);
        assert!(back[9].failed());
        assert!(!back[1].failed());
    }

    #[test]
    fn negative_offset_names_line_and_field() {
        let body = format!(
            "{}\n{}",
            r#"{"t":1,"pid":1,"op":"read","path":"/a","offset":0,"len":1}"#,
            r#"{"t":2,"pid":1,"op":"read","path":"/a","offset":-4096,"len":1}"#
        );
        assert_eq!(
            first_error(&body),
            "trace.jsonl line 3: `offset` is negative (-4096); expected bytes from the start of the file"
        );
    }

    #[test]
    fn field_errors_name_the_field() {
        let cases = [
            (
                r#"{"t":1,"pid":1,"op":"read","path":"/a"}"#,
                "`offset` is missing",
            ),
            (
                r#"{"t":1,"pid":1,"op":"jump","path":"/a"}"#,
                "`op` is \"jump\"",
            ),
            (r#"{"pid":1,"op":"open","path":"/a"}"#, "`t` is missing"),
            (
                r#"{"t":-5,"pid":1,"op":"open","path":"/a"}"#,
                "`t` is negative (-5)",
            ),
            (r#"{"t":1,"op":"open","path":"/a"}"#, "`pid` is missing"),
            (
                r#"{"t":1,"pid":1,"op":"open","path":"a/b"}"#,
                "expected an absolute path",
            ),
            (r#"{"t":1,"pid":1,"op":"open"}"#, "`path` is missing"),
            (
                r#"{"t":1,"pid":1,"op":"read","path":"/a","offset":0,"len":-1}"#,
                "`len` is negative (-1)",
            ),
            (
                r#"{"t":1,"pid":1,"op":"read","path":"/a","offset":1.5}"#,
                "`offset` is 1.5; expected an integer",
            ),
            (
                r#"{"t":"x","pid":1,"op":"open","path":"/a"}"#,
                "expected `t` as an integer",
            ),
            (r#"{"t":1,"pid":-1,"op":"open","path":"/a"}"#, "`pid` is -1"),
            (
                r#"{"t":1,"pid":1,"op":"open","path":"/a""#,
                "line 2: is not valid JSON",
            ),
        ];
        for (line, want) in cases {
            let got = first_error(line);
            assert!(got.contains(want), "{line}: got {got:?}, want {want:?}");
            assert!(got.starts_with("trace.jsonl line 2: "), "{got}");
        }
    }

    #[test]
    fn markers_need_no_pid_or_path_and_blank_lines_are_skipped() {
        let text = format!(
            "{HEADER}\n\n{{\"t\":5,\"op\":\"ready\"}}\r\n\n{{\"t\":9,\"op\":\"exit\",\"result\":3}}\n"
        );
        let events: Vec<_> = reader(&text).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].op, Op::Ready);
        assert_eq!(events[1].result, Some(3));
        assert!(!events[1].failed(), "an exit status is not a failure");
    }

    #[test]
    fn header_errors_are_clear() {
        let e = reader("").err().unwrap().to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = reader(r#"{"format":"advisor-trace","version":2,"recorder":"x","clock":"none"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version 2 is not supported"), "{e}");
        let e = reader(r#"{"t":1,"pid":1,"op":"open","path":"/a"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("trace.jsonl line 1: `format` is missing"), "{e}");
        let e =
            reader(r#"{"format":"advisor-trace","version":1,"recorder":"x","clock":"sundial"}"#)
                .err()
                .unwrap()
                .to_string();
        assert!(
            e.contains("line 1: header: unknown variant `sundial`"),
            "{e}"
        );
    }

    #[test]
    fn over_long_line_is_an_error_not_unbounded_memory() {
        let long = "x".repeat(MAX_LINE_BYTES as usize + 10);
        let e = first_error(&long);
        assert!(e.contains("line 2: is longer than"), "{e}");
    }

    #[test]
    fn unknown_fields_are_ignored_within_a_version() {
        let text = format!(
            "{HEADER}\n{}\n",
            r#"{"t":1,"pid":1,"op":"open","path":"/a","future":{"x":1}}"#
        );
        let events: Vec<_> = reader(&text).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(events[0].path.as_deref(), Some("/a"));
    }

    #[test]
    fn streaming_borrows_paths_without_escapes() {
        let text = format!(
            "{HEADER}\n{}\n",
            r#"{"t":1,"pid":1,"op":"open","path":"/plain"}"#
        );
        let mut r = reader(&text).unwrap();
        let e = r.next_event().unwrap().unwrap();
        assert!(matches!(e.path, Some(Cow::Borrowed("/plain"))));
    }
}
