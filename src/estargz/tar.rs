//! Tar framing of the layers advisor writes and reads: entry headers (ustar,
//! with PAX records for what ustar cannot hold, as Go's `archive/tar`
//! writes them), entry paths and the names an eStargz layer reserves, and the
//! one loop over an input tar's entries that both the writers' `append_tar`
//! and [`convert_tar`](super::convert::convert_tar) use.
//!
//! Owns the bytes of a header and what an input header means. Must not decide
//! where gzip members start or what goes into a TOC (the writers do).
use super::error::{Error, ErrorKind, err, io_err};
use super::table::normalize_path;
use super::toc::{EntryType, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};

/// Bytes per tar block: headers and padded payloads are whole blocks.
pub(super) const BLOCK: u64 = 512;
/// Largest value of the 7 octal digits of ustar's mode and device fields.
const MAX_OCTAL7: u32 = 0o7_777_777;

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
    pub(super) fn toc_type(self) -> EntryType {
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
    /// [`EstargzWriter::append_tar`](super::writer::EstargzWriter::append_tar)
    /// for tar streams with long names).
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

/// Check and clean an entry path: strip leading `/` (layer tars are
/// root-relative; containerd applies `/x` as `x`), refuse `..` escapes and
/// empty names.
pub(super) fn clean_input_path(path: &str) -> Result<String, String> {
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
pub(super) struct Names(HashSet<String>);

impl Names {
    pub(super) fn add(&mut self, path: &str) {
        if let Some(n) = normalize_path(path) {
            self.0.insert(n);
        }
    }

    pub(super) fn check_link(&self, e: &EntryHeader) -> Result<(), String> {
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

pub(super) fn is_reserved(path: &str) -> bool {
    matches!(
        normalize_path(path).as_deref(),
        Some(TOC_TAR_NAME | PREFETCH_LANDMARK | NO_PREFETCH_LANDMARK)
    )
}

/// The tar bytes of one header: a PAX extended header entry when needed, then
/// the ustar header.
pub(super) fn encode_header(e: &EntryHeader, path: &str) -> Result<Vec<u8>, String> {
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
pub(super) fn plain_header(ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
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
pub(super) fn padding(len: u64) -> usize {
    ((BLOCK - len % BLOCK) % BLOCK) as usize
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

/// The one loop over a tar archive's entries: each entry that carries a file
/// (PAX global headers do not) as an [`EntryHeader`] (long names, PAX owner
/// names, mtime and xattrs applied) with the entry itself, its payload and
/// position. With `drop_reserved`, an eStargz input's TOC and landmarks are
/// skipped: the eStargz writer adds its own. Errors name the layer `label`.
pub(super) fn for_each_entry<R: Read>(
    label: &str,
    archive: &mut tar::Archive<R>,
    drop_reserved: bool,
    mut each: impl FnMut(EntryHeader, &mut tar::Entry<'_, R>) -> Result<(), Error>,
) -> Result<(), Error> {
    let stream = |e: io::Error| Error::new(label, ErrorKind::Stream(format!("input tar: {e}")));
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
        each(h, &mut entry)?;
    }
    Ok(())
}

/// Feed every entry of a tar stream (gzip-compressed or not: [`tar_reader`])
/// to `append`, then drain the input.
pub(super) fn read_tar_stream(
    label: &str,
    input: impl Read,
    drop_reserved: bool,
    mut append: impl FnMut(&EntryHeader, &mut dyn Read) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut archive = tar::Archive::new(tar_reader(label, input)?);
    for_each_entry(label, &mut archive, drop_reserved, |h, entry| {
        append(&h, entry)
    })?;
    // Past the end-of-archive blocks: read the rest so a truncated or corrupt
    // gzip input fails here rather than passing unnoticed.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| io_err(label, "reading the end of the input tar", e))?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;

    /// Every entry of a (multi-member) tar.gz blob: path and payload.
    pub(in crate::estargz) fn untar(blob: &[u8]) -> Vec<(String, Vec<u8>)> {
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
