//! Streaming eStargz and plain gzip layer writers.
//!
//! Owns the layout of the layers advisor builds: tar framing (ustar headers,
//! PAX records for what ustar cannot hold), where gzip members start, the TOC,
//! the footer, and the digests and annotations that describe the result. Does
//! not decide what goes into a layer (the image builder does) and never
//! pushes anything.
//!
//! The eStargz layout follows stargz-snapshotter v0.12 `estargz.Writer`
//! (estargz/estargz.go `appendTar`, gzip.go `WriteTOCAndFooter`):
//! - a new gzip member at the first payload byte of every non-empty regular
//!   file and at every chunk boundary (chunks of `chunk_size`, 4 MiB default);
//!   tar headers of the following entries (and the previous payload's block
//!   padding) sit at the tail of the preceding member;
//! - the payload tar has no end-of-archive blocks; the TOC tar
//!   (`stargz.index.json`, with them) follows in its own member, then the
//!   51-byte footer;
//! - prioritized entries first, then `.prefetch.landmark`; with none, a leading
//!   `.no.prefetch.landmark` (estargz/build.go `sortEntries`), each one byte 0x0f.
//!
//! Input is taken entry by entry ([`EntryHeader`] plus a `Read` of the payload)
//! so generated files are never materialized, or as a tar stream. Members are
//! compressed on all cores in bounded batches (see `members`), so memory stays
//! bounded by the batch size plus the TOC, whatever the layer size.
use super::error::{Error, ErrorKind, err, io_err};
use super::footer::footer_bytes;
use super::members::{ChunkTag, MemberDone, Pipeline};
use super::table::{LayerFiles, LayerFormat, normalize_path};
use super::toc::{
    EntryType, LANDMARK_CONTENT, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION,
    TOC_TAR_NAME, Toc, TocEntry, UNCOMPRESSED_SIZE_ANNOTATION,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};

/// Default uncompressed chunk size (estargz.go `Writer.chunkSize`: 4 MiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// Default gzip level: `gzip.BestCompression`, the Go writer's default.
pub const DEFAULT_LEVEL: u32 = 9;
/// Uncompressed size of the independent members of the plain gzip form: big
/// enough that the per-member dictionary reset costs little ratio, small
/// enough to spread over cores.
pub const GZIP_MEMBER_SIZE: usize = 1 << 20;
/// Largest accepted chunk size; a chunk is held in memory while compressed.
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;
/// A run of headers without payload (thousands of directories, symlinks or
/// empty files) would grow one member without bound; past this many bytes a
/// new member starts. Only payload offsets matter to readers, so the extra
/// boundary is harmless; the Go writer never splits such a run.
const MAX_HEADER_RUN: usize = 16 << 20;
/// Batch bounds for the parallel compressors (see `members`).
const BATCH_MIN: usize = 8 << 20;
const BATCH_MAX: usize = 64 << 20;
const BLOCK: u64 = 512;
/// RFC 3339 cannot write years past 9999 (253402300799 = 9999-12-31T23:59:59Z).
const MAX_RFC3339_SECS: u64 = 253_402_300_799;
/// Largest value of the 7 octal digits of ustar's mode and device fields.
const MAX_OCTAL7: u32 = 0o7_777_777;

/// Options shared by both writers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Uncompressed bytes per eStargz chunk (ignored by the gzip form).
    pub chunk_size: u64,
    /// gzip level 0-9.
    pub level: u32,
    /// Names the layer in errors (its digest is not known while writing).
    pub label: String,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            level: DEFAULT_LEVEL,
            label: "(being written)".into(),
        }
    }
}

impl WriterOptions {
    fn validate(&self) -> Result<(), Error> {
        if self.level > 9 {
            return err(
                &self.label,
                ErrorKind::Input {
                    path: String::new(),
                    problem: format!("gzip level {} is out of range 0-9", self.level),
                },
            );
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return err(
                &self.label,
                ErrorKind::Input {
                    path: String::new(),
                    problem: format!(
                        "chunk size {} is out of range 1-{MAX_CHUNK_SIZE}",
                        self.chunk_size
                    ),
                },
            );
        }
        Ok(())
    }

    fn batch_target(&self, member: usize) -> usize {
        let threads = rayon::current_num_threads().max(1);
        (member.max(1 << 20) * threads * 2)
            .clamp(BATCH_MIN, BATCH_MAX)
            .max(member)
    }
}

/// Kinds of tar entries a layer may hold (those the Go writer accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Reg,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl EntryKind {
    fn toc_type(self) -> EntryType {
        match self {
            EntryKind::Reg => EntryType::Reg,
            EntryKind::Dir => EntryType::Dir,
            EntryKind::Symlink => EntryType::Symlink,
            EntryKind::Hardlink => EntryType::Hardlink,
            EntryKind::Char => EntryType::Char,
            EntryKind::Block => EntryType::Block,
            EntryKind::Fifo => EntryType::Fifo,
        }
    }

    fn tar_type(self) -> tar::EntryType {
        match self {
            EntryKind::Reg => tar::EntryType::Regular,
            EntryKind::Dir => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::Hardlink => tar::EntryType::Link,
            EntryKind::Char => tar::EntryType::Char,
            EntryKind::Block => tar::EntryType::Block,
            EntryKind::Fifo => tar::EntryType::Fifo,
        }
    }
}

/// One entry to append: what a tar header says, with names and attributes of
/// any length (written as PAX records when ustar cannot hold them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Path in the layer, relative (a leading `/` is stripped; `..` is refused).
    pub path: String,
    pub kind: EntryKind,
    /// Payload bytes (regular files only).
    pub size: u64,
    /// Permission and mode bits as tar stores them (e.g. 0o755).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Target of a symlink or hardlink.
    pub link_name: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes (PAX `SCHILY.xattr.*`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl EntryHeader {
    fn bare(path: impl Into<String>, kind: EntryKind, mode: u32) -> Self {
        EntryHeader {
            path: path.into(),
            kind,
            size: 0,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
            link_name: String::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// A regular file of `size` bytes, mode 0644, root-owned, mtime 0.
    pub fn file(path: impl Into<String>, size: u64) -> Self {
        let mut h = Self::bare(path, EntryKind::Reg, 0o644);
        h.size = size;
        h
    }

    /// A directory, mode 0755; the path gets the trailing `/` tar uses.
    pub fn dir(path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.ends_with('/') {
            path.push('/');
        }
        Self::bare(path, EntryKind::Dir, 0o755)
    }

    /// A symlink to `target` (any target: it resolves inside the container).
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        let mut h = Self::bare(path, EntryKind::Symlink, 0o777);
        h.link_name = target.into();
        h
    }

    /// A hardlink to `target`, an earlier path of the same layer.
    pub fn hardlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        let mut h = Self::bare(path, EntryKind::Hardlink, 0o644);
        h.link_name = target.into();
        h
    }

    /// From a tar crate header (names as the header holds them; use
    /// [`EstargzWriter::append_tar`] for tar streams with long names).
    pub fn from_tar(header: &tar::Header) -> Result<Self, String> {
        let path = utf8(&header.path_bytes(), "path")?;
        let link = header
            .link_name_bytes()
            .map(|l| utf8(&l, "link name"))
            .transpose()?
            .unwrap_or_default();
        entry_header(
            header,
            path,
            link,
            header.size().map_err(|e| e.to_string())?,
        )
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        format!(
            "{what} {:?} is not UTF-8; the TOC is JSON and holds UTF-8 names",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn entry_header(
    h: &tar::Header,
    path: String,
    link_name: String,
    size: u64,
) -> Result<EntryHeader, String> {
    let kind = match h.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::Reg,
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink,
        tar::EntryType::Link => EntryKind::Hardlink,
        tar::EntryType::Char => EntryKind::Char,
        tar::EntryType::Block => EntryKind::Block,
        tar::EntryType::Fifo => EntryKind::Fifo,
        other => {
            return Err(format!(
                "unsupported tar entry type {:?} (the eStargz writer takes files, directories, links, devices and FIFOs)",
                other.as_byte() as char
            ));
        }
    };
    // Go's tar reader reads an empty (all NUL or space) numeric field as 0;
    // the tar crate refuses it. Be as lenient as Go.
    let old = h.as_old();
    let num = |r: io::Result<u64>, raw: &[u8], what: &str| match r {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        Err(e) => Err(format!("bad {what}: {e}")),
    };
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let is_dev = matches!(kind, EntryKind::Char | EntryKind::Block);
    let dev = |r: io::Result<Option<u32>>, what: &str| -> Result<u32, String> {
        if !is_dev {
            return Ok(0);
        }
        r.map(Option::unwrap_or_default)
            .map_err(|e| format!("bad {what}: {e}"))
    };
    let mode = num(h.mode().map(u64::from), &old.mode, "mode")?;
    Ok(EntryHeader {
        path,
        kind,
        size: if kind == EntryKind::Reg { size } else { 0 },
        mode: mode as u32,
        uid: num(h.uid(), &old.uid, "uid")?,
        gid: num(h.gid(), &old.gid, "gid")?,
        uname: text(h.username_bytes()).unwrap_or_default(),
        gname: text(h.groupname_bytes()).unwrap_or_default(),
        mtime: num(h.mtime(), &old.mtime, "mtime")?,
        link_name,
        dev_major: dev(h.device_major(), "device major")?,
        dev_minor: dev(h.device_minor(), "device minor")?,
        xattrs: BTreeMap::new(),
    })
}

/// Read a tar stream entry as an [`EntryHeader`]: long names (GNU or PAX),
/// PAX owner names, mtime and xattrs applied. None for entries that carry no
/// file (PAX global headers).
fn header_of_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<EntryHeader>, Error> {
    let lossy = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let input = |problem: String| {
        Error::new(
            "",
            ErrorKind::Input {
                path: lossy.clone(),
                problem,
            },
        )
    };
    if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
        return Ok(None);
    }
    let path = utf8(&entry.path_bytes(), "path").map_err(input)?;
    let link = entry
        .link_name_bytes()
        .map(|l| utf8(&l, "link name"))
        .transpose()
        .map_err(input)?
        .unwrap_or_default();
    let size = entry.size();
    let mut h = entry_header(entry.header(), path, link, size).map_err(input)?;
    let pax = entry
        .pax_extensions()
        .map_err(|e| input(format!("bad PAX records: {e}")))?;
    if let Some(pax) = pax {
        for ext in pax {
            let ext = ext.map_err(|e| input(format!("bad PAX record: {e}")))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            match key {
                "uname" => h.uname = String::from_utf8_lossy(value).into_owned(),
                "gname" => h.gname = String::from_utf8_lossy(value).into_owned(),
                "mtime" => {
                    if let Some(t) = parse_pax_time(value) {
                        h.mtime = t;
                    }
                }
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        h.xattrs.insert(name.to_string(), value.to_vec());
                    }
                }
            }
        }
    }
    Ok(Some(h))
}

/// A PAX time (`1234.5678`) rounded to whole seconds, as Go's writer rounds
/// the TOC's modtime; None when negative or malformed.
fn parse_pax_time(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().ok()?;
    let round_up = frac.as_bytes().first().is_some_and(|d| *d >= b'5');
    Some(secs + u64::from(round_up))
}

/// Go's `formatModtime`: RFC 3339 in UTC, omitted for time 0.
fn format_modtime(mtime: u64) -> Option<String> {
    if mtime == 0 || mtime > MAX_RFC3339_SECS {
        return None;
    }
    Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(mtime)).to_string())
}

/// Check and clean an entry path: strip leading `/` (layer tars are
/// root-relative; containerd applies `/x` as `x`), refuse `..` escapes and
/// empty names.
fn clean_input_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_start_matches('/');
    match normalize_path(trimmed) {
        None => Err("escapes the layer root (a `..` component)".into()),
        Some(n) if n.is_empty() && trimmed.is_empty() => Err("has an empty name".into()),
        Some(_) => Ok(trimmed.to_string()),
    }
}

/// Paths written so far, so a hardlink can be checked to point at an earlier
/// entry (tar extraction needs it; stargz's reader fails on a missing one).
#[derive(Debug, Default)]
struct Names(HashSet<String>);

impl Names {
    fn add(&mut self, path: &str) {
        if let Some(n) = normalize_path(path) {
            self.0.insert(n);
        }
    }

    fn check_link(&self, e: &EntryHeader) -> Result<(), String> {
        if e.kind != EntryKind::Hardlink {
            return Ok(());
        }
        let target = clean_input_path(&e.link_name)
            .map_err(|p| format!("hardlink target `{}` {p}", e.link_name))?;
        match normalize_path(&target) {
            Some(t) if self.0.contains(&t) => Ok(()),
            _ => Err(format!(
                "is a hardlink to `{}`, which is not an earlier entry of the layer",
                e.link_name
            )),
        }
    }
}

fn is_reserved(path: &str) -> bool {
    matches!(
        normalize_path(path).as_deref(),
        Some(TOC_TAR_NAME | PREFETCH_LANDMARK | NO_PREFETCH_LANDMARK)
    )
}

/// The tar bytes of one header: a PAX extended header entry when needed, then
/// the ustar header.
fn encode_header(e: &EntryHeader, path: &str) -> Result<Vec<u8>, String> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(e.kind.tar_type());
    if e.mode > MAX_OCTAL7 {
        return Err(format!("mode {:o} does not fit a tar header", e.mode));
    }
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(if e.kind == EntryKind::Reg { e.size } else { 0 });
    let Some(ustar) = h.as_ustar_mut() else {
        return Err("internal: a new ustar header is not ustar".into());
    };
    match split_ustar_path(path.as_bytes()) {
        Some((prefix, name)) => {
            ustar.prefix[..prefix.len()].copy_from_slice(prefix);
            ustar.name[..name.len()].copy_from_slice(name);
        }
        None => {
            pax.push(("path".into(), path.as_bytes().to_vec()));
            let cut = truncate_at_char(path, 100);
            ustar.name[..cut.len()].copy_from_slice(cut.as_bytes());
        }
    }
    if matches!(e.kind, EntryKind::Symlink | EntryKind::Hardlink) {
        if e.link_name.is_empty() {
            return Err("is a link without a target".into());
        }
        if e.link_name.len() <= 100 {
            ustar.linkname[..e.link_name.len()].copy_from_slice(e.link_name.as_bytes());
        } else {
            pax.push(("linkpath".into(), e.link_name.as_bytes().to_vec()));
            let cut = truncate_at_char(&e.link_name, 100);
            ustar.linkname[..cut.len()].copy_from_slice(cut.as_bytes());
        }
    }
    for (key, value, field) in [
        ("uname", &e.uname, &mut ustar.uname),
        ("gname", &e.gname, &mut ustar.gname),
    ] {
        if value.len() <= field.len() {
            field[..value.len()].copy_from_slice(value.as_bytes());
        } else {
            pax.push((key.into(), value.as_bytes().to_vec()));
        }
    }
    // Every header gets device fields, as Go and GNU tar write them.
    let (major, minor) = if matches!(e.kind, EntryKind::Char | EntryKind::Block) {
        (e.dev_major, e.dev_minor)
    } else {
        (0, 0)
    };
    if major > MAX_OCTAL7 || minor > MAX_OCTAL7 {
        return Err(format!("device {major}:{minor} does not fit a tar header"));
    }
    h.set_device_major(major).map_err(|x| x.to_string())?;
    h.set_device_minor(minor).map_err(|x| x.to_string())?;
    for (k, v) in &e.xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
    }
    h.set_cksum();
    let mut out = Vec::with_capacity(BLOCK as usize * 2);
    if !pax.is_empty() {
        pax.sort();
        out.extend_from_slice(&pax_entry(path, &pax));
    }
    out.extend_from_slice(h.as_bytes());
    Ok(out)
}

/// Split a path into ustar `prefix` (≤ 155 bytes) and `name` (≤ 100 bytes) at
/// a `/`, as Go's `splitUSTARPath`; None when it cannot be split.
fn split_ustar_path(p: &[u8]) -> Option<(&[u8], &[u8])> {
    if p.len() <= 100 {
        return Some((&[], p));
    }
    let limit = p.len().min(156);
    let i = p[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (&p[..i], &p[i + 1..]);
    (!name.is_empty() && name.len() <= 100 && prefix.len() <= 155).then_some((prefix, name))
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A PAX extended header entry (type `x`) holding records `len key=value\n`.
fn pax_entry(path: &str, records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        // The length counts itself: find the digit count that is consistent.
        let base = k.len() + v.len() + 3;
        let mut len = base + digits(base);
        if digits(len) > digits(base) {
            len += 1;
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let mut h = plain_header(tar::EntryType::XHeader, 0o644, body.len() as u64);
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = format!("PaxHeaders.0/{base}");
    let name = truncate_at_char(&name, 100);
    if let Some(u) = h.as_ustar_mut() {
        u.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&body);
    out.resize(out.len() + padding(body.len() as u64), 0);
    out
}

/// A ustar header with every numeric field written (owner root, time 0), as
/// Go's writer fills them; the caller sets the name and the checksum.
fn plain_header(ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    // Infallible on a ustar header.
    let _ = h.set_device_major(0);
    let _ = h.set_device_minor(0);
    h
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Zero bytes that complete a tar block after `len` bytes.
fn padding(len: u64) -> usize {
    ((BLOCK - len % BLOCK) % BLOCK) as usize
}

/// What a finished writer produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenLayer {
    /// `sha256:` of the compressed blob (the layer digest).
    pub digest: String,
    /// Compressed blob size.
    pub size: u64,
    /// `sha256:` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of the uncompressed tar stream.
    pub uncompressed_size: u64,
    /// The TOC (eStargz form only).
    pub toc: Option<WrittenToc>,
}

/// The TOC of a written eStargz layer.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenToc {
    /// `sha256:` of the uncompressed TOC JSON.
    pub digest: String,
    /// Compressed offset of the TOC member.
    pub offset: u64,
    pub toc: Toc,
}

impl WrittenLayer {
    /// The layer annotations a manifest needs: the TOC digest (required by the
    /// snapshotter for a verified lazy mount) and the uncompressed size (as
    /// ctr-remote's converter writes them). Empty for the gzip form.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        if let Some(toc) = &self.toc {
            a.insert(TOC_DIGEST_ANNOTATION.to_string(), toc.digest.clone());
            a.insert(
                UNCOMPRESSED_SIZE_ANNOTATION.to_string(),
                self.uncompressed_size.to_string(),
            );
        }
        a
    }

    /// The file table of an eStargz layer (None for the gzip form).
    pub fn layer_files(&self, media_type: &str) -> Option<LayerFiles> {
        let toc = self.toc.as_ref()?;
        Some(LayerFiles::from_toc(
            &self.digest,
            media_type,
            self.size,
            LayerFormat::Estargz,
            &toc.toc,
            Some(toc.digest.clone()),
            Some(toc.offset),
        ))
    }
}

/// Where the writer is relative to the prefetch landmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the landmark; whether prioritized entries were written.
    Start { prioritized: bool },
    /// After the landmark.
    Rest,
}

/// A streaming eStargz layer writer.
///
/// ```no_run
/// # use advisor::estargz::writer::*;
/// let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default())?;
/// w.append(&EntryHeader::dir("app"), std::io::empty())?;
/// w.append(&EntryHeader::file("app/data", 5), &b"hello"[..])?;
/// let (layer, blob) = w.finish()?;
/// # Ok::<(), advisor::estargz::Error>(())
/// ```
pub struct EstargzWriter<W: Write> {
    pipe: Pipeline<W>,
    opts: WriterOptions,
    entries: Vec<TocEntry>,
    phase: Phase,
    unames: HashMap<u64, String>,
    gnames: HashMap<u64, String>,
    names: Names,
}

impl<W: Write> EstargzWriter<W> {
    pub fn new(out: W, opts: WriterOptions) -> Result<Self, Error> {
        opts.validate()?;
        let target = opts.batch_target(opts.chunk_size as usize);
        Ok(EstargzWriter {
            pipe: Pipeline::new(out, opts.level, target, &opts.label),
            opts,
            entries: Vec::new(),
            phase: Phase::Start { prioritized: false },
            unames: HashMap::new(),
            gnames: HashMap::new(),
            names: Names::default(),
        })
    }

    /// Append a prioritized entry (one the workload reads first). All of them
    /// come before the other entries; `.prefetch.landmark` follows them.
    pub fn append_prioritized(
        &mut self,
        entry: &EntryHeader,
        mut payload: impl Read,
    ) -> Result<(), Error> {
        if self.phase == Phase::Rest {
            return self.input_err(
                &entry.path,
                "is prioritized but other entries were already appended: append prioritized entries first"
                    .into(),
            );
        }
        self.check_not_reserved(entry)?;
        self.write_entry(entry, &mut payload)?;
        self.phase = Phase::Start { prioritized: true };
        Ok(())
    }

    /// Append an entry and its payload (`size` bytes are read; pass
    /// `std::io::empty()` for entries without one).
    pub fn append(&mut self, entry: &EntryHeader, mut payload: impl Read) -> Result<(), Error> {
        self.check_not_reserved(entry)?;
        self.end_prioritized()?;
        self.write_entry(entry, &mut payload)
    }

    /// Append every entry of a tar stream (gzip-compressed or not), as the Go
    /// `Writer.AppendTar`: an existing TOC and landmarks are dropped (this
    /// writer adds its own), the rest is kept in order.
    pub fn append_tar(&mut self, input: impl Read) -> Result<(), Error> {
        self.end_prioritized()?;
        let label = self.opts.label.clone();
        append_tar_stream(&label, input, true, |h, payload| {
            self.write_entry(h, payload)
        })
    }

    /// Write the landmark, the TOC and the footer; returns the result and the
    /// output.
    pub fn finish(mut self) -> Result<(WrittenLayer, W), Error> {
        self.end_prioritized()?;
        self.pipe.flush()?;
        self.apply_done();
        let toc_offset = self.pipe.compressed();
        let toc = Toc {
            version: 1,
            entries: std::mem::take(&mut self.entries),
        };
        let json = toc_json(&toc).map_err(|e| self.internal(e))?;
        let toc_digest = super::sha256_digest(&json);
        // The TOC tar in its own member: header, JSON, padding, end of archive.
        let mut h = plain_header(tar::EntryType::Regular, 0, json.len() as u64);
        if let Some(u) = h.as_ustar_mut() {
            u.name[..TOC_TAR_NAME.len()].copy_from_slice(TOC_TAR_NAME.as_bytes());
        }
        h.set_cksum();
        self.pipe.write(h.as_bytes());
        self.pipe.write(&json);
        self.pipe
            .write(&vec![0u8; padding(json.len() as u64) + 2 * BLOCK as usize]);
        self.pipe.write_raw(&footer_bytes(toc_offset))?;
        let (out, totals) = self.pipe.finish()?;
        Ok((
            WrittenLayer {
                digest: totals.blob_digest,
                size: totals.compressed,
                diff_id: totals.diff_id,
                uncompressed_size: totals.uncompressed,
                toc: Some(WrittenToc {
                    digest: toc_digest,
                    offset: toc_offset,
                    toc,
                }),
            },
            out,
        ))
    }

    fn internal(&self, what: impl Into<String>) -> Error {
        Error::new(&self.opts.label, ErrorKind::Internal(what.into()))
    }

    fn input_err<T>(&self, path: &str, problem: String) -> Result<T, Error> {
        err(
            &self.opts.label,
            ErrorKind::Input {
                path: path.to_string(),
                problem,
            },
        )
    }

    fn check_not_reserved(&self, entry: &EntryHeader) -> Result<(), Error> {
        if is_reserved(&entry.path) {
            return self.input_err(
                &entry.path,
                "is a name the eStargz writer reserves for the TOC and landmarks".into(),
            );
        }
        Ok(())
    }

    /// Write the prefetch landmark once, before the first non-prioritized entry.
    fn end_prioritized(&mut self) -> Result<(), Error> {
        let Phase::Start { prioritized } = self.phase else {
            return Ok(());
        };
        let name = if prioritized {
            PREFETCH_LANDMARK
        } else {
            NO_PREFETCH_LANDMARK
        };
        // As estargz/build.go writes it: mode 0, no owner, no time.
        let mut landmark = EntryHeader::file(name, 1);
        landmark.mode = 0;
        self.write_entry(&landmark, &mut &[LANDMARK_CONTENT][..])?;
        self.phase = Phase::Rest;
        Ok(())
    }

    fn name_if_changed(map: &mut HashMap<u64, String>, id: u64, name: &str) -> String {
        if name.is_empty() || map.get(&id).is_some_and(|n| n == name) {
            return String::new();
        }
        map.insert(id, name.to_string());
        name.to_string()
    }

    fn write_entry(&mut self, e: &EntryHeader, payload: &mut dyn Read) -> Result<(), Error> {
        let path = match clean_input_path(&e.path) {
            Ok(p) => p,
            Err(problem) => return self.input_err(&e.path, problem),
        };
        if let Err(problem) = self.names.check_link(e) {
            return self.input_err(&e.path, problem);
        }
        let header = match encode_header(e, &path) {
            Ok(h) => h,
            Err(problem) => return self.input_err(&e.path, problem),
        };
        if self.pipe.member_len() >= MAX_HEADER_RUN {
            self.pipe.cut(None)?;
        }
        self.pipe.write(&header);
        self.names.add(&path);

        let mut ent = TocEntry::new(path.clone(), e.kind.toc_type());
        ent.mode = i64::from(e.mode);
        ent.uid = e.uid;
        ent.gid = e.gid;
        ent.user_name = Self::name_if_changed(&mut self.unames, e.uid, &e.uname);
        ent.group_name = Self::name_if_changed(&mut self.gnames, e.gid, &e.gname);
        ent.mod_time = format_modtime(e.mtime);
        let b64 = base64::engine::general_purpose::STANDARD;
        ent.xattrs = e
            .xattrs
            .iter()
            .map(|(k, v)| (k.clone(), b64.encode(v)))
            .collect();
        match e.kind {
            EntryKind::Reg => ent.size = e.size,
            EntryKind::Symlink | EntryKind::Hardlink => ent.link_name = e.link_name.clone(),
            EntryKind::Char | EntryKind::Block => {
                ent.dev_major = u64::from(e.dev_major);
                ent.dev_minor = u64::from(e.dev_minor);
            }
            EntryKind::Dir | EntryKind::Fifo => {}
        }

        if e.kind != EntryKind::Reg || e.size == 0 {
            if e.kind == EntryKind::Reg {
                // Go records the digest of every regular file, empty ones too.
                ent.digest = super::sha256_digest(b"");
            }
            self.entries.push(ent);
            self.apply_done();
            return Ok(());
        }

        // Payload: one member per chunk. Full chunks record chunkSize; the
        // last, shorter one leaves it 0 ("to the end of the file"), as Go does.
        let size = e.size;
        let chunk = self.opts.chunk_size;
        let reg_index = self.entries.len();
        let mut file_hash = (size > chunk).then(Sha256::new);
        let mut written = 0u64;
        while written < size {
            let remain = size - written;
            let len = remain.min(chunk);
            ent.chunk_offset = written;
            ent.chunk_size = if remain >= chunk { chunk } else { 0 };
            let index = self.entries.len();
            self.entries.push(ent);
            self.pipe.cut(Some(ChunkTag {
                entry: index,
                len: len as usize,
            }))?;
            let bytes = match self.pipe.fill_from(payload, len as usize) {
                Ok(b) => b,
                Err(source) => {
                    return Err(io_err(
                        &self.opts.label,
                        format!("reading the payload of `{}` at byte {written}", e.path),
                        source,
                    ));
                }
            };
            if let Some(h) = file_hash.as_mut() {
                h.update(bytes);
            }
            written += len;
            ent = TocEntry::new(path.clone(), EntryType::Chunk);
        }
        self.pipe.write(&vec![0u8; padding(size)]);
        if let Some(h) = file_hash {
            self.entries[reg_index].digest = super::digest_string(h);
        }
        self.apply_done();
        Ok(())
    }

    /// Fill in offsets and digests of members the pipeline has written.
    fn apply_done(&mut self) {
        for MemberDone {
            tag,
            offset,
            chunk_digest,
        } in self.pipe.take_done()
        {
            let Some(e) = self.entries.get_mut(tag.entry) else {
                continue;
            };
            e.offset = offset;
            // A file in one chunk: the chunk digest is the file digest.
            if e.kind == EntryType::Reg && (e.chunk_size == 0 || e.chunk_size >= e.size) {
                e.digest = chunk_digest.clone();
            }
            e.chunk_digest = chunk_digest;
        }
    }
}

/// The TOC as the Go writer marshals it (`json.MarshalIndent(toc, "", "\t")`).
fn toc_json(toc: &Toc) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(toc, &mut ser).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A streaming plain gzip layer writer: the same tar stream as a normal
/// `tar | gzip` layer (with end-of-archive blocks), compressed as independent
/// members of about [`GZIP_MEMBER_SIZE`] so all cores work. Any gunzip reads
/// it as one stream.
pub struct GzipWriter<W: Write> {
    pipe: Pipeline<W>,
    opts: WriterOptions,
    names: Names,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(out: W, opts: WriterOptions) -> Result<Self, Error> {
        opts.validate()?;
        let target = opts.batch_target(GZIP_MEMBER_SIZE);
        Ok(GzipWriter {
            pipe: Pipeline::new(out, opts.level, target, &opts.label),
            opts,
            names: Names::default(),
        })
    }

    /// Append an entry and its payload (`size` bytes are read).
    pub fn append(&mut self, entry: &EntryHeader, mut payload: impl Read) -> Result<(), Error> {
        self.write_entry(entry, &mut payload)
    }

    /// Append every entry of a tar stream (gzip-compressed or not), unchanged.
    pub fn append_tar(&mut self, input: impl Read) -> Result<(), Error> {
        let label = self.opts.label.clone();
        append_tar_stream(&label, input, false, |h, payload| {
            self.write_entry(h, payload)
        })
    }

    /// Write the end-of-archive blocks; returns the result and the output.
    pub fn finish(mut self) -> Result<(WrittenLayer, W), Error> {
        self.pipe.write(&[0u8; 2 * BLOCK as usize]);
        let (out, totals) = self.pipe.finish()?;
        Ok((
            WrittenLayer {
                digest: totals.blob_digest,
                size: totals.compressed,
                diff_id: totals.diff_id,
                uncompressed_size: totals.uncompressed,
                toc: None,
            },
            out,
        ))
    }

    fn write_entry(&mut self, e: &EntryHeader, payload: &mut dyn Read) -> Result<(), Error> {
        let input = |problem: String| {
            Error::new(
                &self.opts.label,
                ErrorKind::Input {
                    path: e.path.clone(),
                    problem,
                },
            )
        };
        let path = clean_input_path(&e.path).map_err(input)?;
        self.names.check_link(e).map_err(input)?;
        let header = encode_header(e, &path).map_err(input)?;
        if self.pipe.member_len() >= GZIP_MEMBER_SIZE {
            self.pipe.cut(None)?;
        }
        self.pipe.write(&header);
        self.names.add(&path);
        if e.kind != EntryKind::Reg {
            return Ok(());
        }
        let mut left = e.size;
        while left > 0 {
            let mut room = GZIP_MEMBER_SIZE.saturating_sub(self.pipe.member_len());
            if room == 0 {
                self.pipe.cut(None)?;
                room = GZIP_MEMBER_SIZE;
            }
            let n = left.min(room as u64) as usize;
            if let Err(source) = self.pipe.fill_from(payload, n) {
                return Err(io_err(
                    &self.opts.label,
                    format!(
                        "reading the payload of `{}` at byte {}",
                        e.path,
                        e.size - left
                    ),
                    source,
                ));
            }
            left -= n as u64;
        }
        self.pipe.write(&vec![0u8; padding(e.size)]);
        Ok(())
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A reader of the tar inside `input`: gunzipped (all members) when it starts
/// with the gzip magic, as is otherwise; zstd is refused.
pub(crate) fn tar_reader<'a>(
    label: &str,
    input: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>, Error> {
    let mut br = BufReader::with_capacity(1 << 16, input);
    let head = br
        .fill_buf()
        .map_err(|e| io_err(label, "reading the input tar", e))?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        err(
            label,
            ErrorKind::Unsupported {
                what: "zstd-compressed".into(),
                hint: "decompress it first (`zstd -d`) and pass the tar".into(),
            },
        )
    } else {
        Ok(Box::new(br))
    }
}

/// Feed every entry of a tar stream to `append`, then drain the input.
fn append_tar_stream(
    label: &str,
    input: impl Read,
    drop_reserved: bool,
    mut append: impl FnMut(&EntryHeader, &mut dyn Read) -> Result<(), Error>,
) -> Result<(), Error> {
    let stream = |e: io::Error| Error::new(label, ErrorKind::Stream(format!("input tar: {e}")));
    let mut archive = tar::Archive::new(tar_reader(label, input)?);
    for entry in archive.entries().map_err(stream)? {
        let mut entry = entry.map_err(stream)?;
        let Some(h) = header_of_entry(&mut entry).map_err(|mut e| {
            e.layer = label.to_string();
            e
        })?
        else {
            continue;
        };
        if drop_reserved && is_reserved(&h.path) {
            continue;
        }
        append(&h, &mut entry)?;
    }
    // Past the end-of-archive blocks: read the rest so a truncated or corrupt
    // gzip input fails here rather than passing unnoticed.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| io_err(label, "reading the end of the input tar", e))?;
    Ok(())
}

/// Convert a tar stream (gzip-compressed or not) into an eStargz layer, as
/// stargz-snapshotter's `estargz.Build`: `prioritized` paths (each with its
/// parent directories and hardlink targets) first, in order, then
/// `.prefetch.landmark`, then the rest in input order; duplicates keep the
/// last occurrence. With prioritized paths the input is spooled to an
/// anonymous temporary file (disk, not memory); without, it streams.
///
/// Unlike Go, a prioritized path whose parent directories have no entries
/// is accepted (Go fails the build).
pub fn convert_tar<R: Read, W: Write>(
    input: R,
    out: W,
    opts: WriterOptions,
    prioritized: &[String],
) -> Result<(WrittenLayer, W), Error> {
    let label = opts.label.clone();
    let mut w = EstargzWriter::new(out, opts)?;
    if prioritized.is_empty() {
        w.append_tar(input)?;
        return w.finish();
    }
    let mut spool = tempfile::tempfile()
        .map_err(|e| io_err(&label, "creating a temporary file to reorder the tar", e))?;
    io::copy(&mut tar_reader(&label, input)?, &mut spool)
        .map_err(|e| io_err(&label, "spooling the input tar", e))?;
    spool
        .seek(SeekFrom::Start(0))
        .map_err(|e| io_err(&label, "rewinding the spooled tar", e))?;

    // Index the spooled tar: headers and payload positions.
    struct Indexed {
        header: EntryHeader,
        data: u64,
        removed: bool,
    }
    let stream = |e: io::Error| Error::new(&label, ErrorKind::Stream(format!("input tar: {e}")));
    let mut items: Vec<Indexed> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    {
        let mut archive = tar::Archive::new(&spool);
        for entry in archive.entries().map_err(stream)? {
            let mut entry = entry.map_err(stream)?;
            let Some(h) = header_of_entry(&mut entry).map_err(|mut e| {
                e.layer = label.clone();
                e
            })?
            else {
                continue;
            };
            if is_reserved(&h.path) {
                continue;
            }
            let name = go_clean(&h.path);
            if let Some(&old) = by_name.get(&name) {
                items[old].removed = true;
            }
            by_name.insert(name, items.len());
            items.push(Indexed {
                header: h,
                data: entry.raw_file_position(),
                removed: false,
            });
        }
    }

    // estargz/build.go moveRec: parents first, then hardlink targets, then the file.
    let mut order: Vec<usize> = Vec::new();
    let mut moved = vec![false; items.len()];
    fn move_rec(
        name: &str,
        by_name: &HashMap<String, usize>,
        items_links: &dyn Fn(usize) -> Option<String>,
        moved: &mut [bool],
        order: &mut Vec<usize>,
        depth: usize,
    ) -> bool {
        let name = go_clean(name);
        if depth > 4096 {
            return false;
        }
        let found = by_name.get(&name).copied();
        if !name.is_empty() {
            let parent = match name.rsplit_once('/') {
                Some((p, _)) => p.to_string(),
                None => String::new(),
            };
            move_rec(&parent, by_name, items_links, moved, order, depth + 1);
        }
        let Some(i) = found else {
            return false;
        };
        if let Some(target) = items_links(i) {
            move_rec(&target, by_name, items_links, moved, order, depth + 1);
        }
        if !moved[i] {
            moved[i] = true;
            order.push(i);
        }
        true
    }
    let links = |i: usize| {
        let h = &items[i].header;
        (h.kind == EntryKind::Hardlink).then(|| h.link_name.clone())
    };
    for p in prioritized {
        let name = go_clean(p);
        if name.is_empty() || !by_name.contains_key(&name) {
            return err(&label, ErrorKind::PrioritizedMissing(p.clone()));
        }
        move_rec(&name, &by_name, &links, &mut moved, &mut order, 0);
    }

    let mut write = |i: usize, prioritized: bool| -> Result<(), Error> {
        let item = &items[i];
        spool
            .seek(SeekFrom::Start(item.data))
            .map_err(|e| io_err(&label, "reading the spooled tar", e))?;
        let payload = (&spool).take(item.header.size);
        if prioritized {
            w.append_prioritized(&item.header, payload)
        } else {
            w.append(&item.header, payload)
        }
    };
    for &i in &order {
        write(i, true)?;
    }
    for i in 0..items.len() {
        if !moved[i] && !items[i].removed {
            write(i, false)?;
        }
    }
    w.finish()
}

/// Go's `cleanEntryName`: `path.Clean("/" + name)` without the leading `/`,
/// so `..` stops at the root.
fn go_clean(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::reader;
    use flate2::read::MultiGzDecoder;

    fn untar(blob: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(MultiGzDecoder::new(blob));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let mut d = Vec::new();
                e.read_to_end(&mut d).unwrap();
                (p, d)
            })
            .collect()
    }

    #[test]
    fn no_prioritized_files_means_a_leading_no_prefetch_landmark() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::file("a", 3), &b"abc"[..]).unwrap();
        let (layer, blob) = w.finish().unwrap();
        let toc = layer.toc.unwrap().toc;
        assert_eq!(toc.entries[0].name, NO_PREFETCH_LANDMARK);
        assert_eq!(toc.entries[0].size, 1);
        assert_eq!(toc.entries[1].name, "a");
        let files = untar(&blob);
        assert_eq!(files[0], (NO_PREFETCH_LANDMARK.into(), vec![0x0f]));
        assert_eq!(files[1], ("a".into(), b"abc".to_vec()));
        assert_eq!(files[2].0, TOC_TAR_NAME);
    }

    #[test]
    fn prioritized_files_come_first_then_the_prefetch_landmark() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append_prioritized(&EntryHeader::file("hot", 1), &b"h"[..])
            .unwrap();
        w.append(&EntryHeader::file("cold", 1), &b"c"[..]).unwrap();
        let e = w
            .append_prioritized(&EntryHeader::file("late", 1), &b"l"[..])
            .unwrap_err();
        assert!(
            e.to_string().contains("append prioritized entries first"),
            "{e}"
        );
        let (layer, _) = w.finish().unwrap();
        let names: Vec<_> = layer
            .toc
            .unwrap()
            .toc
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(names, ["hot", PREFETCH_LANDMARK, "cold"]);
    }

    #[test]
    fn chunk_fields_follow_the_go_writer() {
        let opts = WriterOptions {
            chunk_size: 4,
            ..Default::default()
        };
        let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
        w.append(&EntryHeader::file("ten", 10), &b"0123456789"[..])
            .unwrap();
        w.append(&EntryHeader::file("eight", 8), &b"abcdefgh"[..])
            .unwrap();
        w.append(&EntryHeader::file("three", 3), &b"xyz"[..])
            .unwrap();
        let (layer, _) = w.finish().unwrap();
        let toc = layer.toc.unwrap().toc;
        let e: Vec<_> = toc.entries[1..]
            .iter()
            .map(|e| (e.kind, e.chunk_offset, e.chunk_size))
            .collect();
        assert_eq!(
            e,
            [
                (EntryType::Reg, 0, 4),
                (EntryType::Chunk, 4, 4),
                (EntryType::Chunk, 8, 0),
                (EntryType::Reg, 0, 4),
                (EntryType::Chunk, 4, 4),
                (EntryType::Reg, 0, 0),
            ]
        );
        assert_eq!(
            toc.entries[1].digest,
            crate::estargz::sha256_digest(b"0123456789")
        );
        assert_eq!(
            toc.entries[1].chunk_digest,
            crate::estargz::sha256_digest(b"0123")
        );
        assert_eq!(
            toc.entries[3].chunk_digest,
            crate::estargz::sha256_digest(b"89")
        );
        assert_eq!(toc.entries[6].digest, crate::estargz::sha256_digest(b"xyz"));
        assert_eq!(toc.entries[6].chunk_digest, toc.entries[6].digest);
        assert!(
            toc.entries[3].digest.is_empty(),
            "chunks carry no file digest"
        );
    }

    #[test]
    fn long_names_xattrs_and_owners_survive_a_tar_reader() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let mut h = EntryHeader::file(long.clone(), 2);
        h.xattrs.insert("user.k".into(), b"v\x00w".to_vec());
        h.uname = "u".repeat(40);
        h.uid = 3_000_000;
        h.mtime = 1_700_000_000;
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&h, &b"hi"[..]).unwrap();
        w.append(&EntryHeader::symlink("s", "x".repeat(150)), io::empty())
            .unwrap();
        let (layer, blob) = w.finish().unwrap();
        let mut a = tar::Archive::new(MultiGzDecoder::new(&blob[..]));
        let mut entries = a.entries().unwrap();
        entries.next().unwrap().unwrap(); // landmark
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), long.as_bytes());
        assert_eq!(e.header().uid().unwrap(), 3_000_000);
        let pax: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| {
                let x = x.unwrap();
                (x.key().unwrap().to_string(), x.value_bytes().to_vec())
            })
            .collect();
        assert!(pax.contains(&("SCHILY.xattr.user.k".into(), b"v\x00w".to_vec())));
        assert!(pax.contains(&("uname".into(), "u".repeat(40).into_bytes())));
        let s = entries.next().unwrap().unwrap();
        assert_eq!(
            s.link_name_bytes().unwrap().as_ref(),
            "x".repeat(150).as_bytes()
        );
        let toc = layer.toc.unwrap().toc;
        assert_eq!(toc.entries[1].name, long);
        assert_eq!(toc.entries[1].xattrs["user.k"], "dgB3");
        assert_eq!(toc.entries[1].user_name, "u".repeat(40));
        assert_eq!(
            toc.entries[1].mod_time.as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }

    #[test]
    fn escaping_and_reserved_names_are_refused_with_the_entry_named() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        let e = w
            .append(&EntryHeader::file("../etc/passwd", 0), io::empty())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer (being written): input tar entry `../etc/passwd`: escapes the layer root (a `..` component)"
        );
        let e = w
            .append(&EntryHeader::file("./stargz.index.json", 0), io::empty())
            .unwrap_err();
        assert!(e.to_string().contains("reserves"), "{e}");
        let e = w
            .append(&EntryHeader::hardlink("l", "a/../../x"), io::empty())
            .unwrap_err();
        assert!(e.to_string().contains("hardlink target"), "{e}");
        let e = w
            .append(&EntryHeader::hardlink("l", "not/yet"), io::empty())
            .unwrap_err();
        assert!(e.to_string().contains("not an earlier entry"), "{e}");
        // A leading slash is stripped, as containerd applies such entries.
        w.append(&EntryHeader::file("/abs", 0), io::empty())
            .unwrap();
        let (layer, _) = w.finish().unwrap();
        assert_eq!(layer.toc.unwrap().toc.entries[1].name, "abs");
    }

    #[test]
    fn a_short_payload_names_the_file_and_offset() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        let e = w
            .append(&EntryHeader::file("short", 10), &b"abc"[..])
            .unwrap_err();
        let msg = crate::error::error_chain(&e);
        assert!(
            msg.contains("reading the payload of `short` at byte 0"),
            "{msg}"
        );
        assert!(msg.contains("ended after 3 of 10 bytes"), "{msg}");
    }

    #[test]
    fn bad_options_are_refused() {
        for opts in [
            WriterOptions {
                level: 10,
                ..Default::default()
            },
            WriterOptions {
                chunk_size: 0,
                ..Default::default()
            },
        ] {
            assert!(EstargzWriter::new(Vec::new(), opts.clone()).is_err());
            assert!(GzipWriter::new(Vec::new(), opts).is_err());
        }
    }

    #[test]
    fn gzip_form_is_a_plain_tar_gz_in_many_members() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::dir("d"), io::empty()).unwrap();
        w.append(&EntryHeader::file("d/big", big.len() as u64), &big[..])
            .unwrap();
        let (layer, blob) = w.finish().unwrap();
        assert!(layer.toc.is_none());
        assert!(layer.annotations().is_empty());
        let files = untar(&blob);
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].1, big);
        let mut raw = Vec::new();
        MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(layer.diff_id, crate::estargz::sha256_digest(&raw));
        assert_eq!(layer.uncompressed_size, raw.len() as u64);
        assert_eq!(raw.len() % 512, 0);
        assert!(raw.ends_with(&[0u8; 1024]));
        // More than one member: the first member alone is not the whole stream.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut first)
            .unwrap();
        assert!(first.len() < raw.len());
    }

    #[test]
    fn convert_tar_reorders_prioritized_files_with_parents_and_link_targets() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8], ty: tar::EntryType, link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(ty);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, data).unwrap();
        };
        add("a/", b"", tar::EntryType::Directory, None);
        add("a/one", b"1", tar::EntryType::Regular, None);
        add("b/", b"", tar::EntryType::Directory, None);
        add("b/two", b"22", tar::EntryType::Regular, None);
        add("b/link", b"", tar::EntryType::Link, Some("a/one"));
        add("a/one", b"one!", tar::EntryType::Regular, None); // duplicate: last wins
        let tar_bytes = b.into_inner().unwrap();
        let (layer, blob) = convert_tar(
            &tar_bytes[..],
            Vec::new(),
            WriterOptions::default(),
            &["/b/link".to_string()],
        )
        .unwrap();
        let names: Vec<_> = layer
            .toc
            .as_ref()
            .unwrap()
            .toc
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(
            names,
            ["b/", "a/", "a/one", "b/link", PREFETCH_LANDMARK, "b/two"]
        );
        let files = untar(&blob);
        assert_eq!(files[2], ("a/one".into(), b"one!".to_vec()));
        let e = convert_tar(
            &tar_bytes[..],
            Vec::new(),
            WriterOptions::default(),
            &["nope".to_string()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("prioritized file `nope`"), "{e}");
        // The result reads back.
        let idx = reader::read_index("t", std::io::Cursor::new(&blob), None).unwrap();
        assert_eq!(idx.toc_digest, layer.toc.unwrap().digest);
    }

    #[test]
    fn append_tar_drops_an_existing_toc_and_landmarks() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::file("x", 1), &b"x"[..]).unwrap();
        let (_, first) = w.finish().unwrap();
        // Convert the eStargz blob again: it is a tar.gz too.
        let (again, _) =
            convert_tar(&first[..], Vec::new(), WriterOptions::default(), &[]).unwrap();
        let names: Vec<_> = again
            .toc
            .unwrap()
            .toc
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(names, [NO_PREFETCH_LANDMARK, "x"]);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [1usize, 90, 92, 93, 95, 990, 995, 9990] {
            let v = vec![b'x'; n];
            let bytes = pax_entry("p", &[("k".into(), v.clone())]);
            let body = &bytes[512..];
            let sp = body.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&body[..sp]).unwrap().parse().unwrap();
            assert_eq!(body[len - 1], b'\n', "record of {n}");
            assert_eq!(len, sp + 1 + 2 + n + 1);
        }
    }

    #[test]
    fn ustar_split_prefers_the_last_fitting_slash() {
        let p = format!("{}/{}", "a".repeat(150), "b".repeat(90));
        let (pre, name) = split_ustar_path(p.as_bytes()).unwrap();
        assert_eq!(pre.len(), 150);
        assert_eq!(name.len(), 90);
        assert!(split_ustar_path("c".repeat(101).as_bytes()).is_none());
    }
}
