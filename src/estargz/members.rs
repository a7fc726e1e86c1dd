//! Parallel gzip members with bounded memory, written in order.
//!
//! Owns turning an uncompressed stream, cut into members by the caller, into
//! a chain of independent gzip members on any `Write`; the sha256 of the
//! uncompressed stream (diffID), of the compressed output (blob digest) and of
//! each tagged chunk; and the compressed offset of every tagged member. Does
//! not know tar or eStargz: `writer` decides where members start.
//!
//! Members are independent gzip streams (a concatenation of gzip members is a
//! valid gzip file, RFC 1952 §2.2), so a batch of them is compressed on all
//! cores (rayon) while the caller fills the next batch. At most two batches
//! and one batch of compressed output exist at a time, so memory is bounded by
//! about three times the batch target whatever the layer size.
//!
//! The cores are [`Workers`]: rayon's global pool, or a pool of its own with
//! a set number of threads (`--jobs`), which bounds the compression threads.
use super::error::{Error, ErrorKind};
use super::{digest_from_bytes, digest_string};
use flate2::Compression;
use flate2::write::GzEncoder;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, mpsc};

/// The threads that compress members: rayon's global pool (one thread per
/// core), or a pool of exactly `jobs` threads shared by every writer handed
/// a clone of it. The output does not depend on the threads: members are cut
/// by the caller and written in order.
#[derive(Clone, Default)]
pub struct Workers {
    /// None: rayon's global pool.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pool {
            Some(p) => write!(f, "Workers({} threads)", p.current_num_threads()),
            None => f.write_str("Workers(global pool)"),
        }
    }
}

impl Workers {
    /// rayon's global pool (all cores unless `RAYON_NUM_THREADS` says otherwise).
    pub fn global() -> Self {
        Workers { pool: None }
    }

    /// A pool of exactly `jobs` threads (`advisor-gzip-N`).
    pub fn new(jobs: NonZeroUsize) -> io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.get())
            .thread_name(|i| format!("advisor-gzip-{i}"))
            .build()
            .map_err(|e| {
                io::Error::other(format!("cannot start {jobs} compression threads: {e}"))
            })?;
        Ok(Workers {
            pool: Some(Arc::new(pool)),
        })
    }

    /// How many threads compress.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads(),
        }
        .max(1)
    }

    /// Whether the calling thread is a worker of any rayon pool.
    fn on_a_worker() -> bool {
        rayon::current_thread_index().is_some()
    }

    /// Run `job` on these workers and wait for it (the calling thread is a
    /// rayon worker: see [`Pipeline::submit`]).
    fn run_here<R: Send>(&self, job: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            // Already on one of ours: par_iter inside spreads over this pool.
            Some(p) if p.current_thread_index().is_some() => job(),
            Some(p) => p.install(job),
            None => job(),
        }
    }

    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        match &self.pool {
            Some(p) => p.spawn(job),
            None => rayon::spawn(job),
        }
    }
}

/// The caller's note on a member whose first `len` bytes are one chunk of a
/// file payload: the pipeline hashes those bytes and reports the member's
/// compressed offset with the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkTag {
    /// The caller's index (a TOC entry).
    pub entry: usize,
    pub len: usize,
}

/// A tagged member, compressed and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDone {
    pub tag: ChunkTag,
    /// Compressed offset of the member in the output.
    pub offset: u64,
    /// `sha256:<hex>` of the chunk's bytes.
    pub chunk_digest: String,
}

/// Totals once the pipeline is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Totals {
    pub compressed: u64,
    pub uncompressed: u64,
    pub blob_digest: String,
    pub diff_id: String,
}

#[derive(Debug)]
struct MemberMeta {
    start: usize,
    tag: Option<ChunkTag>,
}

#[derive(Debug, Default)]
struct Batch {
    buf: Vec<u8>,
    members: Vec<MemberMeta>,
}

impl Batch {
    fn ranges(&self) -> Vec<Range<usize>> {
        let ends = self
            .members
            .iter()
            .skip(1)
            .map(|m| m.start)
            .chain(std::iter::once(self.buf.len()));
        self.members
            .iter()
            .zip(ends)
            .map(|(m, end)| m.start..end)
            .collect()
    }
}

struct CompressedMember {
    data: Vec<u8>,
    chunk_digest: Option<[u8; 32]>,
}

/// What a compression job hands back: the results, the hashers, and the batch
/// buffer for reuse.
struct Done {
    batch: Batch,
    out: Result<Vec<CompressedMember>, String>,
    diff: Sha256,
    blob: Sha256,
}

/// The pipeline. Write bytes into the open member, `cut` to start the next
/// member, `flush` to wait until everything is written.
pub(crate) struct Pipeline<W: Write> {
    out: W,
    workers: Workers,
    label: String,
    level: Compression,
    target: usize,
    batch: Batch,
    spare: Vec<u8>,
    inflight: Option<mpsc::Receiver<Done>>,
    /// None while a job holds them.
    diff: Option<Sha256>,
    blob: Option<Sha256>,
    uncompressed: u64,
    compressed: u64,
    done: Vec<MemberDone>,
}

impl<W: Write> Pipeline<W> {
    /// `target`: uncompressed bytes per batch before it is handed to the
    /// compressors (a batch closes at the first member boundary past it).
    pub fn new(out: W, level: u32, target: usize, label: &str, workers: Workers) -> Self {
        Pipeline {
            out,
            workers,
            label: label.to_string(),
            level: Compression::new(level),
            target: target.max(1),
            batch: Batch::default(),
            spare: Vec::new(),
            inflight: None,
            diff: Some(Sha256::new()),
            blob: Some(Sha256::new()),
            uncompressed: 0,
            compressed: 0,
            done: Vec::new(),
        }
    }

    /// Bytes in the open member so far.
    pub fn member_len(&self) -> usize {
        self.batch
            .members
            .last()
            .map_or(0, |m| self.batch.buf.len() - m.start)
    }

    /// Compressed bytes written to the output so far (everything before the
    /// open batch once `flush` returned).
    pub fn compressed(&self) -> u64 {
        self.compressed
    }

    fn open_member(&mut self) {
        if self.batch.members.is_empty() {
            self.batch.members.push(MemberMeta {
                start: self.batch.buf.len(),
                tag: None,
            });
        }
    }

    /// Append bytes to the open member.
    pub fn write(&mut self, data: &[u8]) {
        self.open_member();
        self.batch.buf.extend_from_slice(data);
        self.uncompressed += data.len() as u64;
    }

    /// Append exactly `n` bytes read from `r` to the open member; returns them.
    pub fn fill_from(&mut self, r: &mut dyn Read, n: usize) -> io::Result<&[u8]> {
        self.open_member();
        let start = self.batch.buf.len();
        self.batch.buf.resize(start + n, 0);
        if let Err(e) = read_full(r, &mut self.batch.buf[start..]) {
            self.batch.buf.truncate(start);
            return Err(e);
        }
        self.uncompressed += n as u64;
        Ok(&self.batch.buf[start..])
    }

    /// Close the open member and start a new one at the current position. An
    /// empty open member is reused (the Go writer never emits empty members).
    pub fn cut(&mut self, tag: Option<ChunkTag>) -> Result<(), Error> {
        if let Some(last) = self.batch.members.last_mut()
            && last.start == self.batch.buf.len()
        {
            last.tag = tag;
            return Ok(());
        }
        if self.batch.buf.len() >= self.target {
            self.submit()?;
        }
        self.batch.members.push(MemberMeta {
            start: self.batch.buf.len(),
            tag,
        });
        Ok(())
    }

    /// Compress and write everything accepted so far; afterwards
    /// [`Pipeline::compressed`] is the offset where the next member starts.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.submit()?;
        self.wait()
    }

    /// Tagged members written since the last call, in order.
    pub fn take_done(&mut self) -> Vec<MemberDone> {
        std::mem::take(&mut self.done)
    }

    /// After `flush`: append bytes to the output as they are (the footer).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.flush()?;
        self.out
            .write_all(bytes)
            .map_err(|e| self.io("writing the layer", e))?;
        match self.blob.as_mut() {
            Some(blob) => blob.update(bytes),
            None => return Err(self.internal("blob hasher held by a job after flush")),
        }
        self.compressed += bytes.len() as u64;
        Ok(())
    }

    /// Flush, then hand back the output and the totals.
    pub fn finish(mut self) -> Result<(W, Totals), Error> {
        self.flush()?;
        self.out
            .flush()
            .map_err(|e| Error::new(&self.label, io_kind("flushing the layer", e)))?;
        let (Some(diff), Some(blob)) = (self.diff.take(), self.blob.take()) else {
            return Err(self.internal("hashers missing after flush"));
        };
        let totals = Totals {
            compressed: self.compressed,
            uncompressed: self.uncompressed,
            blob_digest: digest_string(blob),
            diff_id: digest_string(diff),
        };
        Ok((self.out, totals))
    }

    fn internal(&self, what: &str) -> Error {
        Error::new(&self.label, ErrorKind::Internal(what.to_string()))
    }

    fn io(&self, context: &str, e: io::Error) -> Error {
        Error::new(&self.label, io_kind(context, e))
    }

    /// Hand the open batch to the compressors (after the previous one is
    /// written), and start a fresh batch.
    fn submit(&mut self) -> Result<(), Error> {
        if self.batch.buf.is_empty() {
            self.batch.members.clear();
            return Ok(());
        }
        self.wait()?;
        let mut next = Batch {
            buf: std::mem::take(&mut self.spare),
            members: Vec::new(),
        };
        next.buf.clear();
        let batch = std::mem::replace(&mut self.batch, next);
        let (Some(diff), Some(blob)) = (self.diff.take(), self.blob.take()) else {
            return Err(self.internal("hashers missing before a job"));
        };
        let level = self.level;
        if Workers::on_a_worker() {
            // Called from inside a rayon pool (e.g. layers built in
            // parallel): blocking this worker on a job queued to the same pool
            // could deadlock, so compress here; the members still spread over
            // the workers through par_iter.
            let done = self.workers.run_here(|| run_job(batch, level, diff, blob));
            return self.complete(done);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.workers.spawn(move || {
            let _ = tx.send(run_job(batch, level, diff, blob));
        });
        self.inflight = Some(rx);
        Ok(())
    }

    /// Wait for the job in flight, if any, and write its output.
    fn wait(&mut self) -> Result<(), Error> {
        let Some(rx) = self.inflight.take() else {
            return Ok(());
        };
        let done = rx
            .recv()
            .map_err(|_| self.internal("a compression job ended without a result"))?;
        self.complete(done)
    }

    fn complete(&mut self, done: Done) -> Result<(), Error> {
        let Done {
            mut batch,
            out,
            diff,
            blob,
        } = done;
        self.diff = Some(diff);
        self.blob = Some(blob);
        let out = out.map_err(|e| self.io("compressing", io::Error::other(e)))?;
        for (meta, member) in batch.members.iter().zip(out) {
            let offset = self.compressed;
            self.out
                .write_all(&member.data)
                .map_err(|e| self.io("writing the layer", e))?;
            self.compressed += member.data.len() as u64;
            if let (Some(tag), Some(d)) = (meta.tag, member.chunk_digest) {
                self.done.push(MemberDone {
                    tag,
                    offset,
                    chunk_digest: digest_from_bytes(&d),
                });
            }
        }
        batch.buf.clear();
        self.spare = batch.buf;
        Ok(())
    }
}

fn io_kind(context: &str, source: io::Error) -> ErrorKind {
    ErrorKind::Io {
        context: context.to_string(),
        source,
    }
}

/// `read_exact` that reports how far it got.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("ended after {got} of {} bytes", buf.len()),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Compress a batch's members in parallel, hash the uncompressed batch (the
/// diffID runs in order: batches are submitted one after another) beside
/// them, then hash the compressed output in order.
fn run_job(batch: Batch, level: Compression, mut diff: Sha256, mut blob: Sha256) -> Done {
    let ranges = batch.ranges();
    let (out, diff) = rayon::join(
        || {
            ranges
                .par_iter()
                .zip(batch.members.par_iter())
                .map(|(r, m)| compress_member(&batch.buf[r.clone()], level, m.tag))
                .collect::<Result<Vec<_>, String>>()
        },
        || {
            diff.update(&batch.buf);
            diff
        },
    );
    if let Ok(members) = &out {
        for m in members {
            blob.update(&m.data);
        }
    }
    Done {
        batch,
        out,
        diff,
        blob,
    }
}

fn compress_member(
    data: &[u8],
    level: Compression,
    tag: Option<ChunkTag>,
) -> Result<CompressedMember, String> {
    let chunk_digest = match tag {
        Some(t) => {
            let chunk = data.get(..t.len).ok_or_else(|| {
                format!("chunk of {} bytes in a {}-byte member", t.len, data.len())
            })?;
            Some(Sha256::digest(chunk).into())
        }
        None => None,
    };
    let mut gz = GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    gz.write_all(data).map_err(|e| e.to_string())?;
    let data = gz.finish().map_err(|e| e.to_string())?;
    Ok(CompressedMember { data, chunk_digest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};

    fn member_lengths(blob: &[u8]) -> Vec<Vec<u8>> {
        // Decode member by member to see the boundaries.
        let mut rest = blob;
        let mut members = Vec::new();
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            rest = d.into_inner();
            members.push(out);
        }
        members
    }

    #[test]
    fn members_are_written_in_order_with_offsets_and_digests() {
        // A tiny target forces many batches (and so the in-flight path).
        let mut p = Pipeline::new(Vec::new(), 6, 10, "test", Workers::global());
        p.write(b"head");
        p.cut(Some(ChunkTag { entry: 0, len: 5 })).unwrap();
        p.write(b"first-tail");
        for i in 1..20 {
            p.cut(Some(ChunkTag { entry: i, len: 3 })).unwrap();
            p.write(format!("{i:03}xx").as_bytes());
        }
        p.flush().unwrap();
        let done = p.take_done();
        let (blob, totals) = p.finish().unwrap();
        assert_eq!(done.len(), 20);
        assert_eq!(
            done[0].chunk_digest,
            crate::estargz::sha256_digest(b"first")
        );
        assert_eq!(done[7].chunk_digest, crate::estargz::sha256_digest(b"007"));
        let members = member_lengths(&blob);
        assert_eq!(members.len(), 21);
        assert_eq!(members[0], b"head");
        for d in &done {
            let mut out = Vec::new();
            GzDecoder::new(&blob[d.offset as usize..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(members[d.tag.entry + 1], out);
        }
        let mut all = Vec::new();
        MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(totals.uncompressed, all.len() as u64);
        assert_eq!(totals.diff_id, crate::estargz::sha256_digest(&all));
        assert_eq!(totals.blob_digest, crate::estargz::sha256_digest(&blob));
        assert_eq!(totals.compressed, blob.len() as u64);
    }

    /// Feed the same members through `workers`; a tiny target makes many
    /// batches (the in-flight path).
    fn pipeline_bytes(workers: Workers) -> (Vec<u8>, Totals) {
        let mut p = Pipeline::new(Vec::new(), 6, 64, "t", workers);
        for i in 0..200u32 {
            p.cut(Some(ChunkTag {
                entry: i as usize,
                len: 4,
            }))
            .unwrap();
            p.write(format!("{i:04}-{}", "abc".repeat(i as usize % 17)).as_bytes());
        }
        p.finish().unwrap()
    }

    #[test]
    fn the_output_is_the_same_whatever_the_number_of_workers() {
        let one = Workers::new(NonZeroUsize::new(1).unwrap()).unwrap();
        let two = Workers::new(NonZeroUsize::new(2).unwrap()).unwrap();
        assert_eq!(one.threads(), 1);
        assert_eq!(two.threads(), 2);
        let reference = pipeline_bytes(Workers::global());
        assert_eq!(pipeline_bytes(one.clone()), reference);
        assert_eq!(pipeline_bytes(two.clone()), reference);
        // From a worker of another pool (rayon's global one): the batch is
        // compressed on ours, waited for in place.
        let (tx, rx) = mpsc::channel();
        rayon::spawn(move || {
            let _ = tx.send(pipeline_bytes(two));
        });
        assert_eq!(rx.recv().unwrap(), reference);
    }

    /// The compression runs on the pool's threads, none other.
    #[test]
    fn a_pool_of_its_own_compresses_on_its_threads() {
        let workers = Workers::new(NonZeroUsize::new(1).unwrap()).unwrap();
        let names = std::sync::Mutex::new(std::collections::BTreeSet::new());
        workers.run_here(|| {
            rayon::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|_| {
                        let n = std::thread::current().name().map(str::to_string);
                        names.lock().unwrap().insert(n);
                    });
                }
            })
        });
        let names = names.into_inner().unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            names.into_iter().next().flatten().as_deref(),
            Some("advisor-gzip-0")
        );
    }

    #[test]
    fn an_empty_open_member_is_retagged_not_duplicated() {
        let mut p = Pipeline::new(Vec::new(), 1, 1 << 20, "t", Workers::global());
        p.cut(None).unwrap();
        p.cut(Some(ChunkTag { entry: 3, len: 2 })).unwrap();
        p.write(b"abc");
        let (blob, _) = {
            p.flush().unwrap();
            let done = p.take_done();
            assert_eq!(done.len(), 1);
            assert_eq!(done[0].offset, 0);
            p.finish().unwrap()
        };
        assert_eq!(member_lengths(&blob).len(), 1);
    }

    #[test]
    fn short_payload_is_an_error_and_leaves_no_bytes() {
        let mut p = Pipeline::new(Vec::new(), 1, 1 << 20, "t", Workers::global());
        let e = p.fill_from(&mut &b"abc"[..], 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("after 3 of 5"));
        assert_eq!(p.member_len(), 0);
    }

    #[test]
    fn write_raw_appends_uncompressed_bytes_to_the_digest() {
        let mut p = Pipeline::new(Vec::new(), 1, 1 << 20, "t", Workers::global());
        p.write(b"x");
        p.write_raw(b"RAW").unwrap();
        let (blob, totals) = p.finish().unwrap();
        assert!(blob.ends_with(b"RAW"));
        assert_eq!(totals.blob_digest, crate::estargz::sha256_digest(&blob));
        assert_eq!(totals.uncompressed, 1);
    }
}
