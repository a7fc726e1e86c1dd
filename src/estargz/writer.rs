//! The streaming eStargz layer writer, the options both writers share and
//! what a finished writer produced; the entry point for callers of either
//! form (the plain gzip writer, [`GzipWriter`], and [`convert_tar`] are
//! re-exported here).
//!
//! Owns the layout of the eStargz layers advisor builds: where gzip members
//! start, the TOC, the footer, and the digests and annotations that describe
//! the result. Tar framing is [`super::tar`]'s, the plain gzip form
//! [`super::gzip`]'s, reordering an input tar [`super::convert`]'s. Does not
//! decide what goes into a layer (the image builder does) and never pushes
//! anything.
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
//! bounded by the batch size plus the TOC, whatever the layer size. The
//! threads are rayon's global pool (`new`) or the [`Workers`] given
//! (`with_workers`: `--jobs` threads).
pub use super::convert::convert_tar;
pub use super::gzip::{GZIP_MEMBER_SIZE, GzipWriter};
pub use super::members::Workers;
pub use super::tar::{EntryHeader, EntryKind};

use super::error::{Error, ErrorKind, err, io_err};
use super::footer::footer_bytes;
use super::members::{ChunkTag, MemberDone, Pipeline};
use super::table::{LayerFiles, LayerFormat};
use super::tar::{
    BLOCK, Names, clean_input_path, encode_header, is_reserved, padding, plain_header,
    read_tar_stream,
};
use super::toc::{
    EntryType, LANDMARK_CONTENT, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION,
    TOC_TAR_NAME, Toc, TocEntry, UNCOMPRESSED_SIZE_ANNOTATION,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::time::{Duration, UNIX_EPOCH};

/// Default uncompressed chunk size (estargz.go `Writer.chunkSize`: 4 MiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// Default gzip level: `gzip.BestCompression`, the Go writer's default.
pub const DEFAULT_LEVEL: u32 = 9;
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
/// RFC 3339 cannot write years past 9999 (253402300799 = 9999-12-31T23:59:59Z).
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

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
    pub(super) fn validate(&self) -> Result<(), Error> {
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

    pub(super) fn batch_target(&self, member: usize, threads: usize) -> usize {
        let threads = threads.max(1);
        (member.max(1 << 20) * threads * 2)
            .clamp(BATCH_MIN, BATCH_MAX)
            .max(member)
    }
}

/// Go's `formatModtime`: RFC 3339 in UTC, omitted for time 0.
fn format_modtime(mtime: u64) -> Option<String> {
    if mtime == 0 || mtime > MAX_RFC3339_SECS {
        return None;
    }
    Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(mtime)).to_string())
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
    /// A writer compressing on rayon's global pool.
    pub fn new(out: W, opts: WriterOptions) -> Result<Self, Error> {
        Self::with_workers(out, opts, Workers::global())
    }

    /// A writer compressing on `workers` (the output is the same).
    pub fn with_workers(out: W, opts: WriterOptions, workers: Workers) -> Result<Self, Error> {
        opts.validate()?;
        let target = opts.batch_target(opts.chunk_size as usize, workers.threads());
        Ok(EstargzWriter {
            pipe: Pipeline::new(out, opts.level, target, &opts.label, workers),
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
        read_tar_stream(&label, input, true, |h, payload| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::tar::tests::untar;
    use flate2::read::MultiGzDecoder;
    use std::io;

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
}
