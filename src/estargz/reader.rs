//! Reading layers: the eStargz TOC (parse, verify, validate), format
//! detection from a blob's first and last bytes, and a one-pass scanner that
//! builds the same file table for layers without a TOC.
//!
//! Owns the rules a TOC must follow before advisor trusts it (docs/estargz.md
//! lists them with their error messages). Takes bytes or readers from its
//! callers (ranged GETs, files); never fetches anything itself.
//!
//! Behaviour follows stargz-snapshotter v0.12 `estargz.Open`: the TOC member is
//! one gzip member from the footer's offset to the footer, holding a tar whose
//! first entry is `stargz.index.json`; its digest is the sha256 of that JSON.
//! advisor is stricter than Go where Go would silently misread (names that
//! escape, chunks that do not tile a file, offsets past the TOC).
use super::error::{EntryProblem, Error, ErrorKind, err, io_err};
use super::footer::{FOOTER_SIZE, Footer, parse_footer};
use super::table::{FileEntry, FileKind, LayerFiles, LayerFormat, normalize_path};
use super::toc::{EntryType, TOC_TAR_NAME, Toc, TocEntry};
use super::{digest_string, is_valid_digest, sha256_digest};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::rc::Rc;

/// Largest TOC JSON advisor parses (about 2 million entries): a bound on
/// memory against a corrupt or hostile size field.
pub const MAX_TOC_JSON_SIZE: u64 = 512 << 20;

/// A verified, validated eStargz index: footer, TOC and TOC digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub footer: Footer,
    pub toc: Toc,
    /// `sha256:` of the uncompressed TOC JSON.
    pub toc_digest: String,
}

impl Index {
    /// The layer's file table, with every chunk's compressed extent.
    pub fn layer_files(&self, digest: &str, media_type: &str, blob_size: u64) -> LayerFiles {
        LayerFiles::from_toc(
            digest,
            media_type,
            blob_size,
            self.footer.kind.layer_format(),
            &self.toc,
            Some(self.toc_digest.clone()),
            Some(self.footer.toc_offset),
        )
    }
}

/// The TOC member's bytes inside a blob tail, when the tail covers them:
/// `tail` is the last `tail.len()` bytes of a `blob_size`-byte blob.
pub fn toc_member_in_tail<'a>(footer: &Footer, tail: &'a [u8], blob_size: u64) -> Option<&'a [u8]> {
    let range = footer.toc_range(blob_size);
    let tail_start = blob_size.checked_sub(tail.len() as u64)?;
    if range.start < tail_start || range.end < range.start {
        return None;
    }
    let from = (range.start - tail_start) as usize;
    let to = (range.end - tail_start) as usize;
    tail.get(from..to)
}

/// Parse, verify and validate a TOC from its member's bytes (the blob range
/// [`Footer::toc_range`]). `expected_digest`, when given, is the layer's
/// `containerd.io/snapshot/stargz/toc.digest` annotation.
pub fn parse_index(
    layer: &str,
    footer: Footer,
    toc_member: &[u8],
    expected_digest: Option<&str>,
) -> Result<Index, Error> {
    let (toc, toc_digest) = parse_toc(layer, toc_member, footer.toc_offset, expected_digest)?;
    validate_toc(layer, &toc, footer.toc_offset)?;
    Ok(Index {
        footer,
        toc,
        toc_digest,
    })
}

/// Read the footer and the TOC of an eStargz blob from a seekable reader (a
/// file), then verify and validate it.
pub fn read_index<R: Read + Seek>(
    layer: &str,
    mut blob: R,
    expected_digest: Option<&str>,
) -> Result<Index, Error> {
    let size = blob
        .seek(SeekFrom::End(0))
        .map_err(|e| io_err(layer, "finding the blob size", e))?;
    let tail_len = size.min(FOOTER_SIZE);
    let tail = read_range(layer, &mut blob, size - tail_len..size)?;
    let footer = parse_footer(layer, &tail, size)?;
    let range = footer.toc_range(size);
    if range.end - range.start > MAX_TOC_JSON_SIZE {
        return err(
            layer,
            ErrorKind::TocTooLarge {
                size: range.end - range.start,
                limit: MAX_TOC_JSON_SIZE,
            },
        );
    }
    let member = read_range(layer, &mut blob, range)?;
    parse_index(layer, footer, &member, expected_digest)
}

fn read_range<R: Read + Seek>(layer: &str, r: &mut R, range: Range<u64>) -> Result<Vec<u8>, Error> {
    let what = || format!("reading bytes {}-{} of the blob", range.start, range.end);
    r.seek(SeekFrom::Start(range.start))
        .map_err(|e| io_err(layer, what(), e))?;
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    r.read_exact(&mut buf)
        .map_err(|e| io_err(layer, what(), e))?;
    Ok(buf)
}

/// Decompress a TOC member, extract `stargz.index.json`, hash it, check the
/// digest when one is expected, and parse the JSON. Does not validate entries
/// (see [`validate_toc`]). Returns the TOC and its `sha256:` digest.
pub fn parse_toc(
    layer: &str,
    toc_member: &[u8],
    toc_offset: u64,
    expected_digest: Option<&str>,
) -> Result<(Toc, String), Error> {
    if let Some(exp) = expected_digest
        && !(exp.starts_with("sha256:") && is_valid_digest(exp))
    {
        return err(layer, ErrorKind::BadExpectedDigest(exp.to_string()));
    }
    let json = toc_json(layer, toc_member, toc_offset)?;
    let digest = sha256_digest(&json);
    if let Some(exp) = expected_digest
        && exp != digest
    {
        return err(
            layer,
            ErrorKind::TocDigestMismatch {
                expected: exp.to_string(),
                actual: digest,
            },
        );
    }
    let toc = toc_from_json(layer, &json)?;
    Ok((toc, digest))
}

/// The bytes of `stargz.index.json`: the first and only entry of the tar in
/// the TOC member (one gzip member, read to its end).
fn toc_json(layer: &str, toc_member: &[u8], toc_offset: u64) -> Result<Vec<u8>, Error> {
    let member_err = |detail: String| {
        Error::new(
            layer,
            ErrorKind::TocMember {
                offset: toc_offset,
                detail,
            },
        )
    };
    // One gzip member only, as Go's reader (`Multistream(false)`).
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(toc_member));
    let json = {
        let mut entries = archive
            .entries()
            .map_err(|e| member_err(format!("not a tar: {e}")))?;
        let mut entry = match entries.next() {
            None => return Err(member_err("its tar is empty".into())),
            Some(e) => e.map_err(|e| member_err(format!("not a gzip-compressed tar: {e}")))?,
        };
        if entry.path_bytes().as_ref() != TOC_TAR_NAME.as_bytes() {
            return Err(member_err(format!(
                "its tar entry is named {:?}, expected {TOC_TAR_NAME:?}",
                String::from_utf8_lossy(&entry.path_bytes())
            )));
        }
        let size = entry.size();
        if size > MAX_TOC_JSON_SIZE {
            return err(
                layer,
                ErrorKind::TocTooLarge {
                    size,
                    limit: MAX_TOC_JSON_SIZE,
                },
            );
        }
        let mut json = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut json)
            .map_err(|e| member_err(format!("reading {TOC_TAR_NAME}: {e}")))?;
        if json.len() as u64 != size {
            return Err(member_err(format!(
                "{TOC_TAR_NAME} ends after {} of {size} bytes",
                json.len()
            )));
        }
        json
    };
    // Read the member to its end so a corrupt gzip trailer (CRC) is noticed.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| member_err(format!("gzip stream is corrupt: {e}")))?;
    Ok(json)
}

/// The TOC in `json`; a syntax error names its line and column.
fn toc_from_json(layer: &str, json: &[u8]) -> Result<Toc, Error> {
    serde_json::from_slice(json).map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        Error::new(
            layer,
            ErrorKind::TocJson {
                line: e.line(),
                column: e.column(),
                message,
            },
        )
    })
}

/// The file whose chunks are being checked.
struct OpenFile {
    index: usize,
    name: String,
    size: u64,
    covered: u64,
}

/// A problem with the TOC entry at `index`.
struct Flagged {
    index: usize,
    problem: EntryProblem,
}

/// Check every TOC entry (rules and messages: docs/estargz.md).
pub fn validate_toc(layer: &str, toc: &Toc, toc_offset: u64) -> Result<(), Error> {
    if toc.version != 1 {
        return err(layer, ErrorKind::TocVersion(toc.version));
    }
    check_entries(toc, toc_offset).map_err(|f| {
        Error::new(
            layer,
            ErrorKind::Entry {
                index: f.index,
                name: toc.entries[f.index].name.clone(),
                problem: f.problem,
            },
        )
    })
}

/// The names pass (hardlinks may point forward), then every entry in order.
fn check_entries(toc: &Toc, toc_offset: u64) -> Result<(), Flagged> {
    let mut walk = TocWalk {
        toc_offset,
        names: entry_names(toc)?,
        last_offset: None,
        open: None,
        total: 0,
    };
    for (i, e) in toc.entries.iter().enumerate() {
        walk.entry(i, e)?;
    }
    walk.close_file()
}

/// Every non-chunk entry's name, normalized.
fn entry_names(toc: &Toc) -> Result<HashSet<String>, Flagged> {
    let mut names = HashSet::new();
    for (index, e) in toc.entries.iter().enumerate() {
        if e.kind == EntryType::Chunk {
            continue;
        }
        let name = check_name(&e.name, e.kind).map_err(|problem| Flagged { index, problem })?;
        names.insert(name);
    }
    Ok(names)
}

/// What the walk over the entries carries from one to the next.
struct TocWalk {
    toc_offset: u64,
    names: HashSet<String>,
    /// The last payload offset seen: offsets must increase.
    last_offset: Option<u64>,
    /// The regular file whose chunks follow.
    open: Option<OpenFile>,
    /// Bytes of all regular files so far.
    total: u64,
}

impl TocWalk {
    fn entry(&mut self, index: usize, e: &TocEntry) -> Result<(), Flagged> {
        let at = |problem| Flagged { index, problem };
        if e.inner_offset != 0 {
            return Err(at(EntryProblem::InnerOffset));
        }
        if e.kind != EntryType::Chunk {
            self.close_file()?;
        }
        check_digests(e).map_err(at)?;
        match e.kind {
            EntryType::Reg => self.regular(index, e).map_err(at)?,
            EntryType::Chunk => self.chunk(e).map_err(at)?,
            EntryType::Hardlink => self.hardlink(e).map_err(at)?,
            _ => {}
        }
        // The stargz library ends a payload's extent at the next non-zero
        // offset of any entry, so a stray one would cut an extent short.
        if !matches!(e.kind, EntryType::Reg | EntryType::Chunk) && e.offset != 0 {
            return Err(at(EntryProblem::UnexpectedOffset(e.offset)));
        }
        Ok(())
    }

    /// The open file, if any, ends here: its chunks must have covered it.
    fn close_file(&mut self) -> Result<(), Flagged> {
        match self.open.take() {
            Some(f) if f.covered < f.size => Err(Flagged {
                index: f.index,
                problem: EntryProblem::ChunksIncomplete {
                    size: f.size,
                    covered: f.covered,
                },
            }),
            _ => Ok(()),
        }
    }

    /// A regular file: sizes that fit, its payload offset, its first chunk.
    fn regular(&mut self, index: usize, e: &TocEntry) -> Result<(), EntryProblem> {
        if e.size > i64::MAX as u64 || e.chunk_size > i64::MAX as u64 {
            return Err(EntryProblem::SizeOverflow);
        }
        self.total = match self.total.checked_add(e.size) {
            Some(t) if t <= i64::MAX as u64 => t,
            _ => return Err(EntryProblem::SizeOverflow),
        };
        if e.chunk_offset != 0 {
            return Err(EntryProblem::ChunkGap {
                chunk_offset: e.chunk_offset,
                expected: 0,
            });
        }
        if e.size == 0 {
            if e.offset != 0 {
                return Err(EntryProblem::UnexpectedOffset(e.offset));
            }
            return Ok(());
        }
        self.check_offset(e.offset, e.size)?;
        let first = if e.chunk_size == 0 {
            e.size
        } else {
            e.chunk_size
        };
        if first > e.size {
            return Err(EntryProblem::ChunkBeyondFile {
                end: first,
                size: e.size,
            });
        }
        self.open = Some(OpenFile {
            index,
            name: normalize_path(&e.name).unwrap_or_default(),
            size: e.size,
            covered: first,
        });
        Ok(())
    }

    /// A chunk of the open file: same name, starting where the last ended,
    /// inside the file.
    fn chunk(&mut self, e: &TocEntry) -> Result<(), EntryProblem> {
        let Some(f) = self.open.as_mut() else {
            return Err(EntryProblem::ChunkWithoutReg);
        };
        if normalize_path(&e.name).as_deref() != Some(f.name.as_str()) {
            return Err(EntryProblem::ChunkNameMismatch {
                expected: f.name.clone(),
            });
        }
        if e.chunk_offset != f.covered {
            return Err(EntryProblem::ChunkGap {
                chunk_offset: e.chunk_offset,
                expected: f.covered,
            });
        }
        let end = if e.chunk_size == 0 {
            f.size
        } else {
            e.chunk_offset
                .checked_add(e.chunk_size)
                .ok_or(EntryProblem::SizeOverflow)?
        };
        if end > f.size || end <= e.chunk_offset {
            return Err(EntryProblem::ChunkBeyondFile {
                end: end.max(e.chunk_offset + 1),
                size: f.size,
            });
        }
        f.covered = end;
        self.check_offset(e.offset, e.chunk_size)
    }

    /// A hardlink's target: relative, inside the root, and in the TOC.
    fn hardlink(&self, e: &TocEntry) -> Result<(), EntryProblem> {
        let target = &e.link_name;
        let Some(t) = (!target.starts_with('/'))
            .then(|| normalize_path(target))
            .flatten()
        else {
            return Err(EntryProblem::HardlinkEscapes(target.clone()));
        };
        if !self.names.contains(&t) {
            return Err(EntryProblem::HardlinkTargetMissing(target.clone()));
        }
        Ok(())
    }

    /// A payload offset: present, before the TOC, after the last one.
    fn check_offset(&mut self, offset: u64, size: u64) -> Result<(), EntryProblem> {
        if offset == 0 {
            return Err(EntryProblem::MissingOffset { size });
        }
        if offset >= self.toc_offset {
            return Err(EntryProblem::OffsetBeyondToc {
                offset,
                toc_offset: self.toc_offset,
            });
        }
        if let Some(previous) = self.last_offset
            && offset <= previous
        {
            return Err(EntryProblem::OffsetNotIncreasing { offset, previous });
        }
        self.last_offset = Some(offset);
        Ok(())
    }
}

/// `digest` and `chunkDigest`, when present, are `algorithm:hex`.
fn check_digests(e: &TocEntry) -> Result<(), EntryProblem> {
    for (field, value) in [("digest", &e.digest), ("chunkDigest", &e.chunk_digest)] {
        if !value.is_empty() && !is_valid_digest(value) {
            return Err(EntryProblem::BadDigest {
                field,
                value: value.clone(),
            });
        }
    }
    Ok(())
}

/// A TOC or tar name, normalized; absolute paths, escapes and empty names
/// (other than the root directory) are problems.
fn check_name(name: &str, kind: EntryType) -> Result<String, EntryProblem> {
    if name.starts_with('/') {
        return Err(EntryProblem::Absolute);
    }
    let n = normalize_path(name).ok_or(EntryProblem::EscapesRoot)?;
    if n.is_empty() && kind != EntryType::Dir {
        return Err(EntryProblem::EmptyName);
    }
    Ok(n)
}

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Tell a layer's format from its first bytes (`head`, 512 or more for tar
/// detection) and last bytes (`tail`, 51 or more for the footer) of a blob of
/// `blob_size` bytes. eStargz and legacy stargz need a parseable footer and
/// (when `head` is given) a gzip start; the media type alone cannot tell them
/// from gzip.
pub fn detect_format(head: &[u8], tail: &[u8], blob_size: u64) -> LayerFormat {
    let gzip = head.starts_with(&GZIP_MAGIC);
    if (gzip || head.is_empty())
        && tail.len() as u64 <= blob_size
        && let Ok(f) = parse_footer("", tail, blob_size)
    {
        return f.kind.layer_format();
    }
    if gzip {
        LayerFormat::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        LayerFormat::Zstd
    } else if looks_like_tar(head) {
        LayerFormat::Uncompressed
    } else {
        LayerFormat::Other
    }
}

/// A ustar/GNU magic or a valid header checksum in the first block, or an
/// empty archive (two zero blocks).
fn looks_like_tar(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    if block[257..262] == *b"ustar" {
        return true;
    }
    if block.iter().all(|&b| b == 0) {
        return head.len() >= 1024 && head[512..1024].iter().all(|&b| b == 0);
    }
    let h = tar::Header::from_byte_slice(block);
    let Ok(stored) = h.cksum() else {
        return false;
    };
    let mut copy = h.clone();
    copy.set_cksum();
    copy.cksum().is_ok_and(|c| c == stored)
}

/// What one pass over a layer without a TOC found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedLayer {
    /// The file table (sizes and kinds; no chunk offsets).
    pub files: LayerFiles,
    /// `sha256:` of the bytes read (compare with the layer digest).
    pub blob_digest: String,
    /// `sha256:` of the uncompressed tar (compare with the config's diff_id).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// A reader that hashes and counts what passes through, readable afterwards.
struct Tap<R> {
    inner: R,
    state: TapState,
}

/// What passed through a [`Tap`] so far; shared with its reader.
#[derive(Clone, Default)]
struct TapState(Rc<RefCell<Tapped>>);

#[derive(Default)]
struct Tapped {
    hasher: Sha256,
    bytes: u64,
}

/// The digest and length of what passed through a tap.
struct Tally {
    digest: String,
    bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.0.borrow_mut();
        s.hasher.update(&buf[..n]);
        s.bytes += n as u64;
        Ok(n)
    }
}

impl TapState {
    /// A reader over `inner` that tallies into this state.
    fn tap<R: Read>(&self, inner: R) -> Tap<R> {
        Tap {
            inner,
            state: self.clone(),
        }
    }

    fn take(&self) -> Tally {
        let t = self.0.take();
        Tally {
            digest: digest_string(t.hasher),
            bytes: t.bytes,
        }
    }
}

/// Stream a gzip-compressed (any number of members) or uncompressed tar layer
/// once and build its file table, digest and diffID. Entries keep their tar
/// order (duplicates included, as in a TOC); a leading `/` is dropped as
/// containerd's unpack does; `..` escapes are errors naming the entry.
pub fn scan_layer(layer: &str, media_type: &str, input: impl Read) -> Result<ScannedLayer, Error> {
    let blob_state = TapState::default();
    let mut br = BufReader::with_capacity(1 << 16, blob_state.tap(input));
    let head = br
        .fill_buf()
        .map_err(|e| io_err(layer, "reading the layer", e))?;
    let (format, tar_in): (LayerFormat, Box<dyn Read>) = if head.starts_with(&GZIP_MAGIC[..2]) {
        (
            LayerFormat::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(br)),
        )
    } else if head.starts_with(&ZSTD_MAGIC) {
        return err(
            layer,
            ErrorKind::Unsupported {
                what: "zstd-compressed".into(),
                hint: "advisor scans gzip and uncompressed tar layers".into(),
            },
        );
    } else {
        (LayerFormat::Uncompressed, Box::new(br))
    };
    let tar_state = TapState::default();
    let stream = |e: io::Error| Error::new(layer, ErrorKind::Stream(e.to_string()));
    let mut archive = tar::Archive::new(tar_state.tap(tar_in));
    let mut files = Vec::new();
    for (index, entry) in archive.entries().map_err(stream)?.enumerate() {
        let entry = entry.map_err(stream)?;
        if let Some(f) = scanned_entry(layer, index, &entry)? {
            files.push(f);
        }
    }
    // The rest of the tar stream (end-of-archive blocks, an eStargz TOC's
    // trailer) and of the blob (gzip trailers, a footer) counts in the digests.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(stream)?;
    drop(rest);
    let tar = tar_state.take();
    let blob = blob_state.take();
    let reg_total = files
        .iter()
        .filter(|f| f.kind == FileKind::Reg)
        .map(|f| f.size)
        .fold(0u64, u64::saturating_add);
    Ok(ScannedLayer {
        files: LayerFiles {
            digest: layer.to_string(),
            media_type: media_type.to_string(),
            blob_size: blob.bytes,
            uncompressed_size: reg_total,
            format,
            toc_digest: None,
            toc_offset: None,
            prefetch_end: None,
            no_prefetch: false,
            files,
        },
        blob_digest: blob.digest,
        diff_id: tar.digest,
        uncompressed_size: tar.bytes,
    })
}

/// The file-table entry of one tar entry (None: a global header, no file).
fn scanned_entry<R: Read>(
    layer: &str,
    index: usize,
    entry: &tar::Entry<'_, R>,
) -> Result<Option<FileEntry>, Error> {
    let raw = entry.path_bytes();
    let name = String::from_utf8_lossy(&raw).into_owned();
    let bad = |problem: EntryProblem| {
        Error::new(
            layer,
            ErrorKind::TarEntry {
                index,
                name: name.clone(),
                problem,
            },
        )
    };
    let kind = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::Reg,
        tar::EntryType::Directory => FileKind::Dir,
        tar::EntryType::Symlink => FileKind::Symlink,
        tar::EntryType::Link => FileKind::Hardlink,
        tar::EntryType::XGlobalHeader => return Ok(None),
        _ => FileKind::Other,
    };
    let path = normalize_path(name.trim_start_matches('/'))
        .ok_or_else(|| bad(EntryProblem::EscapesRoot))?;
    let link = entry
        .link_name_bytes()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .filter(|l| !l.is_empty());
    if kind == FileKind::Hardlink
        && let Some(l) = &link
        && normalize_path(l.trim_start_matches('/')).is_none()
    {
        return Err(bad(EntryProblem::HardlinkEscapes(l.clone())));
    }
    Ok(Some(FileEntry {
        path,
        kind,
        size: if kind == FileKind::Reg {
            entry.size()
        } else {
            0
        },
        link,
        chunks: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::footer::{footer_bytes, legacy_footer_bytes};
    use crate::estargz::writer::{EntryHeader, EstargzWriter, GzipWriter, WriterOptions};
    use std::io::Cursor;

    fn sample() -> (Vec<u8>, crate::estargz::writer::WrittenLayer) {
        let opts = WriterOptions {
            chunk_size: 8,
            ..Default::default()
        };
        let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
        w.append(&EntryHeader::dir("d"), io::empty()).unwrap();
        w.append(&EntryHeader::file("d/f", 20), &[7u8; 20][..])
            .unwrap();
        w.append(&EntryHeader::hardlink("d/h", "d/f"), io::empty())
            .unwrap();
        let (layer, blob) = w.finish().unwrap();
        (blob, layer)
    }

    fn toc_with(entries: Vec<TocEntry>) -> Toc {
        Toc {
            version: 1,
            entries,
        }
    }

    fn reg(name: &str, size: u64, offset: u64) -> TocEntry {
        let mut e = TocEntry::new(name, EntryType::Reg);
        e.size = size;
        e.offset = offset;
        e
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let (blob, layer) = sample();
        let toc = layer.toc.as_ref().unwrap();
        let idx = read_index("sha256:l", Cursor::new(&blob), Some(&toc.digest)).unwrap();
        assert_eq!(idx.toc, toc.toc);
        assert_eq!(idx.footer.toc_offset, toc.offset);
        let lf = idx.layer_files(&layer.digest, "m", blob.len() as u64);
        assert_eq!(lf, layer.layer_files("m").unwrap());
        let f = lf.files.iter().find(|f| f.path == "d/f").unwrap();
        assert_eq!(f.chunks.len(), 3);
        assert!(lf.no_prefetch);
    }

    #[test]
    fn a_tail_that_covers_the_toc_is_enough() {
        let (blob, layer) = sample();
        let size = blob.len() as u64;
        let tail = &blob[blob.len() - 2000.min(blob.len())..];
        let footer = parse_footer("l", tail, size).unwrap();
        let member = toc_member_in_tail(&footer, tail, size).unwrap();
        let idx = parse_index("l", footer, member, None).unwrap();
        assert_eq!(idx.toc_digest, layer.toc.unwrap().digest);
        assert!(toc_member_in_tail(&footer, &blob[blob.len() - 60..], size).is_none());
    }

    #[test]
    fn wrong_toc_digest_is_an_error_naming_both() {
        let (blob, _) = sample();
        let want = format!("sha256:{}", "0".repeat(64));
        let e = read_index("sha256:ab12", Cursor::new(&blob), Some(&want)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("layer sha256:ab12: the TOC JSON has digest sha256:"),
            "{msg}"
        );
        assert!(msg.contains(&want), "{msg}");
        let e = read_index("l", Cursor::new(&blob), Some("abc")).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadExpectedDigest(_)));
    }

    #[test]
    fn truncated_blobs_fail_cleanly() {
        let (blob, _) = sample();
        for cut in [1, 10, 51, 200, blob.len() / 2, blob.len() - 1] {
            let e = read_index("sha256:t", Cursor::new(&blob[..blob.len() - cut]), None);
            assert!(e.is_err(), "cut {cut}");
            assert!(e.unwrap_err().to_string().starts_with("layer sha256:t: "));
        }
    }

    #[test]
    fn legacy_footer_blobs_read() {
        let (mut blob, layer) = sample();
        let off = layer.toc.as_ref().unwrap().offset;
        blob.truncate(blob.len() - 51);
        blob.extend_from_slice(&legacy_footer_bytes(off));
        let idx = read_index("l", Cursor::new(&blob), None).unwrap();
        assert_eq!(
            idx.footer.kind,
            crate::estargz::footer::FooterKind::LegacyStargz
        );
        assert_eq!(idx.toc, layer.toc.unwrap().toc);
    }

    #[test]
    fn toc_member_must_hold_stargz_index_json() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        b.append_data(&mut h, "other.json", &b"{}"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &t).unwrap();
        let member = gz.finish().unwrap();
        let e = parse_toc("l", &member, 9, None).unwrap_err();
        assert!(e.to_string().contains("named \"other.json\""), "{e}");
        let e = parse_toc("l", b"not gzip", 9, None).unwrap_err();
        assert!(e.to_string().contains("TOC gzip member at offset 9"), "{e}");
    }

    #[test]
    fn json_errors_give_line_and_column() {
        let json = b"{\"version\": 1, \"entries\": [{\"name\": \"x\", \"type\": \"socket\"}]}";
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(json.len() as u64);
        b.append_data(&mut h, TOC_TAR_NAME, &json[..]).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
        let e = parse_toc("l", &gz.finish().unwrap(), 0, None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("invalid at line 1 column"), "{msg}");
        assert!(msg.contains("unknown variant `socket`"), "{msg}");
    }

    #[test]
    fn escaping_and_absolute_names_are_rejected() {
        let e = validate_toc(
            "sha256:ab12",
            &toc_with(vec![reg("../etc/passwd", 0, 0)]),
            100,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer sha256:ab12: TOC entry 0 `../etc/passwd` escapes the layer root (a `..` component)"
        );
        let e = validate_toc("l", &toc_with(vec![reg("/etc/passwd", 0, 0)]), 100).unwrap_err();
        assert!(e.to_string().contains("is an absolute path"), "{e}");
        let mut link = TocEntry::new("l", EntryType::Hardlink);
        link.link_name = "a/../../x".into();
        let e = validate_toc("l", &toc_with(vec![link.clone()]), 100).unwrap_err();
        assert!(e.to_string().contains("escapes"), "{e}");
        link.link_name = "missing".into();
        let e = validate_toc("l", &toc_with(vec![link]), 100).unwrap_err();
        assert!(e.to_string().contains("not in the TOC"), "{e}");
    }

    #[test]
    fn offsets_must_be_inside_and_increasing() {
        let e = validate_toc("l", &toc_with(vec![reg("a", 5, 100)]), 100).unwrap_err();
        assert!(matches!(
            e.kind,
            ErrorKind::Entry {
                problem: EntryProblem::OffsetBeyondToc { .. },
                ..
            }
        ));
        let e =
            validate_toc("l", &toc_with(vec![reg("a", 5, 50), reg("b", 5, 50)]), 100).unwrap_err();
        assert!(e.to_string().contains("must increase"), "{e}");
        let e = validate_toc("l", &toc_with(vec![reg("a", 5, 0)]), 100).unwrap_err();
        assert!(e.to_string().contains("no offset"), "{e}");
        let e = validate_toc("l", &toc_with(vec![reg("a", 0, 7)]), 100).unwrap_err();
        assert!(e.to_string().contains("has offset 7 but no payload"), "{e}");
        let mut d = TocEntry::new("d", EntryType::Dir);
        d.offset = 9;
        let e = validate_toc("l", &toc_with(vec![d]), 100).unwrap_err();
        assert!(e.to_string().contains("has offset 9 but no payload"), "{e}");
    }

    #[test]
    fn chunks_must_follow_their_file_and_tile_it() {
        let chunk = |name: &str, off: u64, size: u64, offset: u64| {
            let mut c = TocEntry::new(name, EntryType::Chunk);
            c.chunk_offset = off;
            c.chunk_size = size;
            c.offset = offset;
            c
        };
        let mut big = reg("big", 10, 10);
        big.chunk_size = 4;
        let ok = toc_with(vec![
            big.clone(),
            chunk("big", 4, 4, 20),
            chunk("big", 8, 0, 30),
        ]);
        validate_toc("l", &ok, 100).unwrap();
        let cases = [
            (vec![chunk("big", 0, 0, 10)], "without a preceding `reg`"),
            (vec![big.clone()], "covered only up to byte 4"),
            (
                vec![big.clone(), chunk("big", 5, 0, 20)],
                "starts at byte 5 but the previous chunk ends at byte 4",
            ),
            (
                vec![big.clone(), chunk("other", 4, 0, 20)],
                "is a chunk of `big`",
            ),
            (
                vec![big.clone(), chunk("big", 4, 100, 20)],
                "beyond its file's size 10",
            ),
            (
                vec![big.clone(), chunk("big", 4, u64::MAX, 20)],
                "overflows",
            ),
            (
                vec![big.clone(), chunk("big", 4, 4, 20), reg("next", 1, 40)],
                "covered only up to byte 8",
            ),
        ];
        for (entries, want) in cases {
            let e = validate_toc("l", &toc_with(entries), 100).unwrap_err();
            assert!(e.to_string().contains(want), "{e} should contain {want}");
        }
    }

    #[test]
    fn bad_digests_versions_and_inner_offsets_are_rejected() {
        let mut r = reg("a", 1, 5);
        r.chunk_digest = "sha256:xyz".into();
        let e = validate_toc("l", &toc_with(vec![r]), 100).unwrap_err();
        assert!(e.to_string().contains("malformed chunkDigest"), "{e}");
        let mut r = reg("a", 1, 5);
        r.inner_offset = 3;
        let e = validate_toc("l", &toc_with(vec![r]), 100).unwrap_err();
        assert!(e.to_string().contains("innerOffset"), "{e}");
        let t = Toc {
            version: 2,
            entries: vec![],
        };
        assert!(matches!(
            validate_toc("l", &t, 1).unwrap_err().kind,
            ErrorKind::TocVersion(2)
        ));
    }

    #[test]
    fn formats_are_told_apart() {
        let (blob, _) = sample();
        let head = &blob[..512];
        let tail = &blob[blob.len() - 51..];
        let n = blob.len() as u64;
        assert_eq!(detect_format(head, tail, n), LayerFormat::Estargz);
        assert_eq!(detect_format(&[], tail, n), LayerFormat::Estargz);
        let mut legacy = blob[..blob.len() - 51].to_vec();
        legacy.extend_from_slice(&legacy_footer_bytes(5));
        let lt = &legacy[legacy.len() - 51..];
        assert_eq!(
            detect_format(head, lt, legacy.len() as u64),
            LayerFormat::LegacyStargz
        );
        let mut w = GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::file("a", 1), &b"a"[..]).unwrap();
        let (_, gz) = w.finish().unwrap();
        assert_eq!(
            detect_format(
                &gz[..gz.len().min(512)],
                &gz[gz.len() - 51..],
                gz.len() as u64
            ),
            LayerFormat::Gzip
        );
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, "x", &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        assert_eq!(
            detect_format(&t[..512], &t[t.len() - 51..], t.len() as u64),
            LayerFormat::Uncompressed
        );
        let mut old = t.clone();
        old[257..265].fill(0); // v7 tar: no magic, checksum still right after re-sum
        let mut hh = tar::Header::from_byte_slice(&old[..512]).clone();
        hh.set_cksum();
        old[..512].copy_from_slice(hh.as_bytes());
        assert_eq!(
            detect_format(&old[..512], &[], old.len() as u64),
            LayerFormat::Uncompressed
        );
        assert_eq!(
            detect_format(&[0x28, 0xb5, 0x2f, 0xfd, 0], &[], 5),
            LayerFormat::Zstd
        );
        assert_eq!(detect_format(b"hello", b"hello", 5), LayerFormat::Other);
        // A footer on a blob that does not start with gzip is not eStargz.
        let mut fake = vec![b'x'; 100];
        fake.extend_from_slice(&footer_bytes(3));
        assert_eq!(
            detect_format(&fake[..100], &fake[100..], fake.len() as u64),
            LayerFormat::Other
        );
    }

    #[test]
    fn scanner_builds_the_table_and_digests_of_gzip_and_plain_tars() {
        let mut w = GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::dir("d"), io::empty()).unwrap();
        w.append(&EntryHeader::file("d/f", 3), &b"abc"[..]).unwrap();
        w.append(&EntryHeader::symlink("d/s", "/etc/x"), io::empty())
            .unwrap();
        let (layer, gz) = w.finish().unwrap();
        let s = scan_layer("sha256:g", "m", &gz[..]).unwrap();
        assert_eq!(s.blob_digest, layer.digest);
        assert_eq!(s.diff_id, layer.diff_id);
        assert_eq!(s.uncompressed_size, layer.uncompressed_size);
        assert_eq!(s.files.blob_size, gz.len() as u64);
        assert_eq!(s.files.format, LayerFormat::Gzip);
        assert_eq!(s.files.uncompressed_size, 3);
        let kinds: Vec<_> = s
            .files
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("d", FileKind::Dir),
                ("d/f", FileKind::Reg),
                ("d/s", FileKind::Symlink)
            ]
        );
        assert_eq!(s.files.files[2].link.as_deref(), Some("/etc/x"));
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let p = scan_layer("sha256:p", "m", &raw[..]).unwrap();
        assert_eq!(p.files.format, LayerFormat::Uncompressed);
        assert_eq!(p.files.files, s.files.files);
        assert_eq!(p.blob_digest, layer.diff_id);
    }

    #[test]
    fn scanner_rejects_escapes_and_zstd() {
        let mut raw = vec![0u8; 512];
        raw[..13].copy_from_slice(b"../etc/passwd");
        let mut h = tar::Header::from_byte_slice(&raw).clone();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend_from_slice(&[0u8; 1024]);
        let e = scan_layer("sha256:s", "m", &t[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer sha256:s: tar entry 0 `../etc/passwd` escapes the layer root (a `..` component)"
        );
        let e = scan_layer("sha256:z", "m", &[0x28, 0xb5, 0x2f, 0xfd, 1, 2][..]).unwrap_err();
        assert!(e.to_string().contains("zstd"), "{e}");
        let e = scan_layer("sha256:c", "m", &[0x1f, 0x8b, 8, 0, 1, 2, 3][..]).unwrap_err();
        assert!(e.to_string().starts_with("layer sha256:c: "), "{e}");
    }
}
