//! A deterministic model of how the stargz snapshotter (v0.12) fetches an
//! eStargz layer's bytes: which HTTP range requests a sequence of file reads
//! causes, how many compressed bytes cross the network, and how much is
//! decompressed and verified. Trace analysis and prediction both drive it.
//!
//! Owns the per-layer cache state (the http cache of 50,000-byte compressed
//! blocks and the fs cache of verified chunks) and the rules that move bytes
//! into them. Must not time anything (prediction turns outcomes into seconds)
//! and must not know about traces or paths (callers pass [`FileRef`]s).
//!
//! The rules, each cited where it is implemented (sources: the Debian Go
//! module github.com/containerd/stargz-snapshotter v0.12):
//! - A FUSE read walks the eStargz chunks it overlaps; each fs-cache miss
//!   decompresses and verifies the **whole chunk** (`fs/reader/reader.go`
//!   `file.ReadAt`).
//! - The decompression reads the blob from the chunk's gzip member start
//!   through a `bufio.Reader` of min(2 MiB, compressed bytes left in the
//!   file): one blob read of that size, then more of the same size only while
//!   the chunk's member extends past it (`estargz/estargz.go`
//!   `fileReader.ReadAt`, `maxRead = 2 << 20`). This is the read-ahead that
//!   puts following chunks' compressed bytes in the http cache.
//! - Each blob read is widened to 50,000-byte blocks; cached blocks are
//!   skipped; all missing blocks go in **one** GET whose ranges merge
//!   adjacent blocks (`fs/remote/blob.go` `ReadAt`, `fetchRange`;
//!   `fs/remote/resolver.go` `httpFetcher.fetch`; `fs/remote/util.go`
//!   `regionSet.add`). Every received block is cached.
//! - Prefetch fetches `[0, prefetch_end)` in one GET, then caches the chunks
//!   of every file whose payload starts in that range (`fs/layer/layer.go`
//!   `prefetch`, `reader.go` `cacheWithReader` with its offset filter).
//! - Mount reads the 51-byte footer then the TOC (`estargz.go` `Open`,
//!   `parseTOC`), each through the same block cache.
//! - Background fetch walks every file's chunks like the fs-cache miss path
//!   (`layer.go` `backgroundFetch`); this module exposes it one file at a
//!   time so the predictor can apply the 5-s idle rule and the 2-way
//!   concurrency (`task/task.go`). Trace analysis does not run it. Its two
//!   reads in flight fetch the blocks where one chunk's reads run into the
//!   next chunk's member twice, half of them on average
//!   (`Simulator::background_overread`).
use crate::estargz::table::{Chunk, FileKind, ImageFiles, LayerFiles, LayerFormat};
use crate::units::Bytes;
use fixedbitset::FixedBitSet;
use serde::Serialize;

pub use crate::estargz::table::FileRef;

/// Bytes per http-cache block: fs/config `[blob] chunk_size` default
/// (`defaultChunkSize = 50000` in fs/remote/resolver.go).
pub const BLOCK_SIZE: u64 = 50_000;
/// Largest blob read one chunk decompression issues at a time
/// (estargz.go `fileReader.ReadAt`: `const maxRead = 2 << 20`).
pub const MAX_READ: u64 = 2 << 20;
/// The footer read at mount: `maxFooterSize` over the decompressors the
/// snapshotter registers (gzip 51, legacy gzip 47, zstd:chunked 40), the
/// largest one that fits in the blob (estargz.go `Open`).
pub const FOOTER_SIZES: [u64; 3] = [51, 47, 40];
/// The eStargz footer (51 bytes) and the legacy stargz footer (47 bytes).
pub const ESTARGZ_FOOTER: u64 = 51;
pub const LEGACY_FOOTER: u64 = 47;
/// FUSE reads through the page cache arrive page-aligned.
pub const PAGE_SIZE: u64 = 4096;

/// Knobs of the model, defaulting to the snapshotter's defaults.
#[derive(Debug, Clone, Serialize)]
pub struct FetchConfig {
    /// http-cache block size (`[blob] chunk_size`).
    pub block_size: u64,
    /// Blob read size cap of a chunk decompression (`maxRead`).
    pub max_read: u64,
    /// `[blob] force_single_range_mode`, or a registry that answers 400 to
    /// multi-range requests: one span from the lowest to the highest block.
    pub single_range: bool,
    /// Prefetch size when a layer has no landmark (`prefetch_size` or the
    /// `containerd.io/snapshot/remote/stargz.prefetch` label). A landmark wins.
    pub prefetch_size: u64,
    /// `noprefetch`: no prefetch at all.
    pub no_prefetch: bool,
    /// FUSE page size reads are aligned to (0 = no alignment).
    pub page_size: u64,
    /// Keep a log of every request (tests, validation); off for speed.
    pub record_requests: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            block_size: BLOCK_SIZE,
            max_read: MAX_READ,
            single_range: false,
            prefetch_size: 0,
            no_prefetch: false,
            page_size: PAGE_SIZE,
            record_requests: false,
        }
    }
}

/// What one operation cost. Counts add up across operations (`+=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadOutcome {
    /// HTTP GETs sent to the registry.
    pub requests: u64,
    /// Byte ranges in those GETs after merging adjacent blocks.
    pub ranges: u64,
    /// Compressed bytes received.
    pub network_bytes: Bytes,
    /// 50,000-byte blocks received (and added to the http cache).
    pub blocks_fetched: u64,
    /// eStargz chunks touched for the first time by an on-demand read.
    pub chunks_touched: u64,
    /// fs-cache misses: chunks decompressed and verified (the snapshotter's
    /// `on_demand_remote_registry_fetch_count` for on-demand reads).
    pub chunks_missed: u64,
    /// Uncompressed bytes decompressed and verified (whole chunks; the
    /// snapshotter's `on_demand_bytes_fetched` for on-demand reads).
    pub decompressed_bytes: Bytes,
    /// Compressed size of those chunks (their gzip members): what the
    /// decompressor decoded to produce `decompressed_bytes`. Incompressible
    /// data is stored in the member, and decoding it is a copy; the surplus
    /// `decompressed_bytes - decompressed_from` is what Huffman decoding made.
    pub decompressed_from: Bytes,
    /// The part of `decompressed_from` in coded members ([`Chunk::coded_len`]):
    /// what the decompressor Huffman-decodes symbol by symbol. Barely
    /// compressible coded data (model weights, NumPy arrays) expands little
    /// but costs its every byte here.
    pub decompressed_coded: Bytes,
    /// Bytes returned to the reader (`on_demand_bytes_served`).
    pub bytes_served: Bytes,
    /// Bytes returned from layers that are not lazily mounted (read from
    /// local disk after an eager download; included in `bytes_served`).
    pub bytes_served_locally: Bytes,
}

impl std::ops::AddAssign for ReadOutcome {
    fn add_assign(&mut self, o: ReadOutcome) {
        self.requests += o.requests;
        self.ranges += o.ranges;
        self.network_bytes += o.network_bytes;
        self.blocks_fetched += o.blocks_fetched;
        self.chunks_touched += o.chunks_touched;
        self.chunks_missed += o.chunks_missed;
        self.decompressed_bytes += o.decompressed_bytes;
        self.decompressed_from += o.decompressed_from;
        self.decompressed_coded += o.decompressed_coded;
        self.bytes_served += o.bytes_served;
        self.bytes_served_locally += o.bytes_served_locally;
    }
}

/// Why a request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    Mount,
    Prefetch,
    OnDemand,
    Background,
    /// A layer that cannot be mounted lazily, downloaded whole.
    Eager,
}

/// One logged GET (with [`FetchConfig::record_requests`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub layer: usize,
    pub cause: Cause,
    /// Inclusive byte ranges, as in the HTTP `Range` header.
    pub ranges: Vec<(u64, u64)>,
}

/// A unit of background fetch: one file's uncached chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundJob {
    pub file: FileRef,
}

/// Where the walk for the next background job resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackgroundCursor {
    pub layer: usize,
    pub file: usize,
}

#[derive(Debug, Clone, Copy)]
enum Undo {
    Block(usize, usize),
    Chunk(usize, usize),
}

#[derive(Debug, Clone)]
struct LayerSim {
    lazy: bool,
    blob_size: u64,
    /// `chunk_base[f]` = index of file f's first chunk in the chunk bitsets.
    chunk_base: Vec<usize>,
    /// `sizes[f]` = file f's size: the read fast path touches this dense
    /// table and `complete` only, not the (much larger) file entries.
    sizes: Vec<u64>,
    fs_cached: FixedBitSet,
    touched: FixedBitSet,
    /// Files whose every chunk is touched and in the fs cache: a read of one
    /// costs nothing more (the fast path of `read`; caches only grow outside
    /// a rolled-back background probe, which never removes such chunks).
    complete: FixedBitSet,
    http_cached: FixedBitSet,
    /// Compressed bytes in the http cache (the snapshotter's
    /// `stargz_fs_layer_fetched_size_bytes`, all causes).
    fetched_bytes: u64,
    downloaded: bool,
}

/// The simulator: one per image and scenario (caches start cold).
#[derive(Debug, Clone)]
pub struct Simulator<'a> {
    image: &'a ImageFiles,
    config: FetchConfig,
    layers: Vec<LayerSim>,
    log: Vec<Request>,
    undo: Option<Vec<Undo>>,
}

impl<'a> Simulator<'a> {
    /// A cold simulator for an image: nothing cached, nothing mounted.
    pub fn new(image: &'a ImageFiles, config: FetchConfig) -> Self {
        let block = config.block_size.max(1);
        let layers = image
            .layers
            .iter()
            .map(|l| {
                let mut chunk_base = Vec::with_capacity(l.files.len() + 1);
                let mut n = 0usize;
                for f in &l.files {
                    chunk_base.push(n);
                    n += f.chunks.len();
                }
                chunk_base.push(n);
                let blocks = l.blob_size.div_ceil(block) as usize;
                LayerSim {
                    lazy: l.format.is_lazy(),
                    blob_size: l.blob_size,
                    chunk_base,
                    sizes: l.files.iter().map(|f| f.size).collect(),
                    fs_cached: FixedBitSet::with_capacity(n),
                    touched: FixedBitSet::with_capacity(n),
                    complete: FixedBitSet::with_capacity(l.files.len()),
                    http_cached: FixedBitSet::with_capacity(blocks),
                    fetched_bytes: 0,
                    downloaded: false,
                }
            })
            .collect();
        Simulator {
            image,
            config: FetchConfig {
                block_size: block,
                max_read: config.max_read.max(1),
                ..config
            },
            layers,
            log: Vec::new(),
            undo: None,
        }
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    pub fn image(&self) -> &'a ImageFiles {
        self.image
    }

    /// Requests logged so far (empty unless `record_requests`).
    pub fn requests(&self) -> &[Request] {
        &self.log
    }

    /// Compressed bytes of a layer in the http cache (all causes).
    pub fn layer_fetched_bytes(&self, layer: usize) -> u64 {
        self.layers[layer].fetched_bytes
    }

    /// Whether a layer is mounted lazily (eStargz) rather than downloaded.
    pub fn is_lazy(&self, layer: usize) -> bool {
        self.layers[layer].lazy
    }

    /// Whether a file's chunk is in the fs cache.
    pub fn chunk_cached(&self, file: FileRef, chunk: usize) -> bool {
        let l = &self.layers[file.layer];
        l.fs_cached.contains(l.chunk_base[file.file] + chunk)
    }

    /// Whether the http cache holds the block containing a compressed offset.
    pub fn block_cached(&self, layer: usize, compressed_offset: u64) -> bool {
        let b = (compressed_offset / self.config.block_size) as usize;
        self.layers[layer].http_cached.contains(b)
    }

    fn layer_files(&self, layer: usize) -> &'a LayerFiles {
        &self.image.layers[layer]
    }

    /// Mount a layer: for eStargz, the footer read then the TOC read
    /// (estargz.go `Open` with no TOC offset hint, as fs/layer resolves it);
    /// for any other format, the whole blob is downloaded (the snapshotter
    /// cannot mount it and containerd falls back to download-and-unpack).
    /// Idempotent per layer only in the sense that cached blocks are free.
    pub fn mount(&mut self, layer: usize) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let size = self.layers[layer].blob_size;
        if !self.layers[layer].lazy {
            if !self.layers[layer].downloaded && size > 0 {
                self.layers[layer].downloaded = true;
                out.requests = 1;
                out.ranges = 1;
                out.network_bytes = Bytes(size);
                self.layers[layer].fetched_bytes = size;
                if self.config.record_requests {
                    self.log.push(Request {
                        layer,
                        cause: Cause::Eager,
                        ranges: vec![(0, size - 1)],
                    });
                }
            }
            return out;
        }
        let Some(footer) = FOOTER_SIZES.iter().copied().find(|&s| s <= size) else {
            return out;
        };
        self.blob_read(layer, size - footer, footer, Cause::Mount, &mut out);
        let lf = self.layer_files(layer);
        if let Some(toc) = lf.toc_offset {
            let fsize = match lf.format {
                LayerFormat::LegacyStargz => LEGACY_FOOTER,
                _ => ESTARGZ_FOOTER,
            };
            let toc_len = size.saturating_sub(toc).saturating_sub(fsize);
            self.blob_read(layer, toc, toc_len, Cause::Mount, &mut out);
        }
        out
    }

    /// The prefetch the snapshotter starts at mount (layer.go `prefetch`):
    /// nothing with `.no.prefetch.landmark` (or `noprefetch`); else the range
    /// `[0, landmark offset)`, or `[0, min(prefetch_size, blob size))` without
    /// a landmark, in one GET; then every file whose payload starts in the
    /// range is decompressed and cached whole.
    pub fn prefetch(&mut self, layer: usize) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let lf = self.layer_files(layer);
        if self.config.no_prefetch || !self.layers[layer].lazy || lf.no_prefetch {
            return out;
        }
        let size = match lf.prefetch_end {
            Some(end) => end,
            None => self.config.prefetch_size.min(lf.blob_size),
        };
        // blob.go cacheAt: region {0, ceil(size-1)-1} with Go's truncating
        // division, so a size of 0 still fetches the first block.
        self.fetch_spans(layer, &[(0, size.max(1))], Cause::Prefetch, &mut out);
        for (fi, f) in lf.files.iter().enumerate() {
            // reader.go cacheWithReader filter: the entry's own offset (its
            // first payload member) must lie before the prefetch size.
            if f.kind != FileKind::Reg
                || f.chunks.is_empty()
                || f.chunks[0].compressed_offset >= size
            {
                continue;
            }
            let file = FileRef { layer, file: fi };
            for ci in 0..f.chunks.len() {
                if !self.chunk_cached(file, ci) {
                    self.fetch_chunk(file, ci, Cause::Prefetch, &mut out);
                }
            }
        }
        out
    }

    /// What-if prefetch of a set of files (as if the image had been optimized
    /// with them prioritized): their compressed extents in one GET per layer,
    /// then their chunks decompressed and cached. Ranges are counted in the
    /// current layout; after a real `ctr-remote image optimize` they would be
    /// one contiguous range per layer.
    pub fn prefetch_files(&mut self, files: &[FileRef]) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let image = self.image;
        let mut by_layer: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.layers.len()];
        for r in files {
            if !self.layers[r.layer].lazy {
                continue;
            }
            let f = &image.layers[r.layer].files[r.file];
            if let (Some(first), Some(last)) = (f.chunks.first(), f.chunks.last()) {
                let (s, e) = (first.compressed_offset, last.compressed_end);
                if e > s {
                    by_layer[r.layer].push((s, e - s));
                }
            }
        }
        for (layer, mut spans) in by_layer.into_iter().enumerate() {
            if spans.is_empty() {
                continue;
            }
            spans.sort_unstable();
            self.fetch_spans(layer, &spans, Cause::Prefetch, &mut out);
        }
        for &r in files {
            let n = self.image.layers[r.layer].files[r.file].chunks.len();
            if !self.layers[r.layer].lazy {
                continue;
            }
            for ci in 0..n {
                if !self.chunk_cached(r, ci) {
                    self.fetch_chunk(r, ci, Cause::Prefetch, &mut out);
                }
            }
        }
        out
    }

    /// An on-demand read of `[offset, offset+len)` of a regular file (`len`
    /// None = to the end of the file), as the FUSE layer serves it.
    pub fn read(&mut self, file: FileRef, offset: u64, len: Option<u64>) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let layer = &self.layers[file.layer];
        let size = layer.sizes[file.file];
        if offset >= size {
            return out;
        }
        let end = match len {
            Some(l) => size.min(offset.saturating_add(l)),
            None => size,
        };
        if end <= offset {
            return out;
        }
        out.bytes_served = Bytes(end - offset);
        if !layer.lazy {
            out.bytes_served_locally = out.bytes_served;
            return out;
        }
        if layer.complete.contains(file.file) {
            return out;
        }
        let image = self.image;
        let f = &image.layers[file.layer].files[file.file];
        // The kernel asks FUSE for whole pages (page cache), clamped at EOF.
        let (a0, a1) = match self.config.page_size {
            0 | 1 => (offset, end),
            p => (
                (offset / p) * p,
                end.div_ceil(p).saturating_mul(p).min(size),
            ),
        };
        let chunks = &f.chunks;
        // estargz.go ChunkEntryForOffset: the chunk containing the offset.
        let mut ci = chunks.partition_point(|c| c.offset.saturating_add(c.size) <= a0);
        let first = ci;
        let base = self.layers[file.layer].chunk_base[file.file];
        while ci < chunks.len() && chunks[ci].offset < a1 {
            let id = base + ci;
            let l = &mut self.layers[file.layer];
            if !l.touched.contains(id) {
                l.touched.insert(id);
                out.chunks_touched += 1;
            }
            if !l.fs_cached.contains(id) {
                self.fetch_chunk(file, ci, Cause::OnDemand, &mut out);
            }
            ci += 1;
        }
        if first == 0 && ci == chunks.len() {
            // Every chunk of the file is now touched and cached.
            self.layers[file.layer].complete.insert(file.file);
        }
        out
    }

    /// The next file, in TOC order from `cursor` (layers bottom first), that
    /// background fetch would still have to fetch: a regular file of a lazy
    /// layer with a chunk not in the fs cache. Advances the cursor past it.
    ///
    /// The snapshotter walks each layer's directory tree in Go map order
    /// (random) with up to GOMAXPROCS chunk reads in flight, throttled to
    /// `max_concurrency` (2) blob reads daemon-wide; TOC order is the
    /// deterministic stand-in.
    pub fn next_background_job(&self, cursor: &mut BackgroundCursor) -> Option<BackgroundJob> {
        while cursor.layer < self.layers.len() {
            let l = &self.layers[cursor.layer];
            let files = &self.image.layers[cursor.layer].files;
            if l.lazy {
                while cursor.file < files.len() {
                    let fi = cursor.file;
                    cursor.file += 1;
                    let f = &files[fi];
                    if f.kind != FileKind::Reg {
                        continue;
                    }
                    let (b, e) = (l.chunk_base[fi], l.chunk_base[fi + 1]);
                    if (b..e).any(|c| !l.fs_cached.contains(c)) {
                        return Some(BackgroundJob {
                            file: FileRef {
                                layer: cursor.layer,
                                file: fi,
                            },
                        });
                    }
                }
            }
            cursor.layer += 1;
            cursor.file = 0;
        }
        None
    }

    /// Run a background job now: every uncached chunk of the file, through
    /// the same blob reads as an fs-cache miss (layer.go `backgroundFetch`).
    pub fn run_background_job(&mut self, job: BackgroundJob) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let n = self.image.layers[job.file.layer].files[job.file.file]
            .chunks
            .len();
        for ci in 0..n {
            if !self.chunk_cached(job.file, ci) {
                self.fetch_chunk(job.file, ci, Cause::Background, &mut out);
            }
        }
        out
    }

    /// What a background job would cost if run now, without changing the
    /// caches (it runs and is rolled back).
    pub fn background_job_cost(&mut self, job: BackgroundJob) -> ReadOutcome {
        let log_len = self.log.len();
        let fetched: Vec<u64> = self.layers.iter().map(|l| l.fetched_bytes).collect();
        self.undo = Some(Vec::new());
        let out = self.run_background_job(job);
        for u in self.undo.take().unwrap_or_default() {
            match u {
                Undo::Block(l, b) => self.layers[l].http_cached.set(b, false),
                Undo::Chunk(l, c) => self.layers[l].fs_cached.set(c, false),
            }
        }
        for (l, f) in self.layers.iter_mut().zip(fetched) {
            l.fetched_bytes = f;
        }
        self.log.truncate(log_len);
        out
    }

    /// An fs-cache miss on one chunk: the blob reads its decompression issues
    /// (estargz.go fileReader.ReadAt), then the chunk is cached.
    fn fetch_chunk(&mut self, file: FileRef, ci: usize, cause: Cause, out: &mut ReadOutcome) {
        let image = self.image;
        let f = &image.layers[file.layer].files[file.file];
        let c: Chunk = f.chunks[ci];
        let file_end = f
            .chunks
            .last()
            .map_or(c.compressed_end, |l| l.compressed_end);
        let start = c.compressed_offset;
        // compressedBytesRemain: from this chunk's member to the file's last
        // member end (nextOffset), over 1+ chunks.
        let remain = file_end.saturating_sub(start);
        let buf = self.config.max_read.min(remain);
        // Background fetch: the blocks these reads take past the chunk's own
        // member, into the next chunk's, that no one fetched yet. The other
        // background read in flight is fetching them too (see
        // `background_overread`); counted before the reads cache them.
        let overread = match cause {
            Cause::Background if ci + 1 < f.chunks.len() && !self.chunk_cached(file, ci + 1) => {
                self.background_overread(file.layer, start, buf, c.compressed_end, file_end)
            }
            _ => (0, 0),
        };
        if buf > 0 {
            self.blob_read(file.layer, start, buf, cause, out);
            // bufio refills with reads of the buffer size while the gzip
            // reader still needs this chunk's member.
            let mut covered = start + buf;
            while covered < c.compressed_end && covered < file_end {
                let n = buf.min(file_end - covered);
                self.blob_read(file.layer, covered, n, cause, out);
                covered += n;
            }
        }
        // Half of them again, on average (`background_overread`), and one
        // more GET: the next chunk's first read, which in this sequential
        // walk finds them cached, is a GET of its own when the two overlap.
        let (n_over, over_bytes) = overread;
        if n_over > 1 {
            let dup = n_over / 2;
            out.requests += 1;
            out.ranges += 1;
            out.blocks_fetched += dup;
            out.network_bytes += Bytes(over_bytes * dup / n_over);
        }
        out.chunks_missed += 1;
        out.decompressed_bytes += Bytes(c.size);
        out.decompressed_from += Bytes(c.compressed_len());
        out.decompressed_coded += Bytes(c.coded_len());
        let id = self.layers[file.layer].chunk_base[file.file] + ci;
        self.layers[file.layer].fs_cached.insert(id);
        if let Some(u) = self.undo.as_mut() {
            u.push(Undo::Chunk(file.layer, id));
        }
    }

    /// The uncached blocks (count, bytes) that a chunk decompression's blob
    /// reads (`[start, start + k·buf)`, as [`Self::fetch_chunk`] issues them)
    /// take wholly past the chunk's member end `member_end`, i.e. inside the
    /// following chunks of the same file. [`Self::fetch_chunk`] adds half of
    /// them again, and one GET (the next chunk's first read, which the
    /// sequential walk finds cached, is a GET of its own when both run).
    ///
    /// Why they count twice in background fetch (stargz-snapshotter v0.12):
    /// `fs/reader/reader.go` `cacheWithReader` starts one goroutine per
    /// chunk (up to GOMAXPROCS at once), each decompressing its chunk through
    /// `estargz.go` `fileReader.ReadAt`, whose `bufio.Reader` of min(2 MiB,
    /// bytes left in the file) peeks and refills in reads of that size from
    /// the chunk's member start; `fs/layer/layer.go` `backgroundFetch` sends
    /// each such read through `task.go` `InvokeBackgroundTask`, two at once
    /// daemon-wide. So the chunk whose last read runs past its member (a
    /// 4 MiB chunk of incompressible data is 4 MiB + ~1.3 kB: a third 2 MiB
    /// read for the last 1.3 kB), or whose peek covers its small
    /// successors, overlaps the next chunk's first read, issued by the other
    /// goroutine at about the same time. `fs/remote/blob.go` `ReadAt` decides
    /// which 50,000-B blocks to GET from the http cache *when the read
    /// starts*, and `fetchRegions` caches blocks only as they arrive: a block
    /// the other read is still receiving is requested again (`fetchRange`'s
    /// singleflight joins identical block sets only). Which read starts first
    /// and how far the other got is timing; with the two reads' phases
    /// uniform the expectation is half of the overlap, which is what the
    /// model adds. Measured (lab registry log, 1 node, `app:v1-esgz`, layer
    /// of four 48 MiB random files, 4 MiB chunks): the third read of a chunk
    /// is a GET of 0–43 blocks, on average 23 of the 42 it overlaps (50.3 MB
    /// more than the blob over 44 such chunks); the layer took 251.7 MB in
    /// 132 GETs (its mount's included: 33 more than the 99 of an in-order
    /// walk) for a 201.4 MB blob; the model, 247.4 MB in 143.
    ///
    /// On-demand reads are not affected: one reader per file reads its
    /// chunks in order, and the next chunk's read finds the read-ahead in
    /// the http cache.
    fn background_overread(
        &self,
        layer: usize,
        start: u64,
        buf: u64,
        member_end: u64,
        file_end: u64,
    ) -> (u64, u64) {
        if buf == 0 {
            return (0, 0);
        }
        let mut reads_end = start + buf;
        while reads_end < member_end && reads_end < file_end {
            reads_end += buf.min(file_end - reads_end);
        }
        let l = &self.layers[layer];
        let bs = self.config.block_size;
        let reads_end = reads_end.min(file_end).min(l.blob_size);
        let first = member_end.div_ceil(bs);
        if reads_end == 0 || first * bs >= reads_end {
            return (0, 0);
        }
        let last = (reads_end - 1) / bs;
        let (mut n, mut bytes) = (0, 0);
        for b in first..=last {
            if !l.http_cached.contains(b as usize) {
                n += 1;
                bytes += bs.min(l.blob_size - b * bs);
            }
        }
        (n, bytes)
    }

    /// blob.go `ReadAt`: one blob read of `[offset, offset+len)`.
    fn blob_read(
        &mut self,
        layer: usize,
        offset: u64,
        len: u64,
        cause: Cause,
        out: &mut ReadOutcome,
    ) {
        // `if len(p) == 0 || offset > b.size { return 0, nil }`
        if len == 0 || offset > self.layers[layer].blob_size {
            return;
        }
        self.fetch_spans(layer, &[(offset, len)], cause, out);
    }

    /// Widen byte spans `(offset, len)` (sorted by offset) to blocks, skip
    /// cached blocks, and send the missing ones in one GET: adjacent blocks
    /// merge into one range (`regionSet.add` merges when `r.b <= l.e+1`); in
    /// single-range mode one span from the lowest to the highest missing
    /// block is requested and every block in it is (re)cached.
    fn fetch_spans(
        &mut self,
        layer: usize,
        spans: &[(u64, u64)],
        cause: Cause,
        out: &mut ReadOutcome,
    ) {
        let bs = self.config.block_size;
        let blob = self.layers[layer].blob_size;
        if blob == 0 {
            return;
        }
        let last_block = ((blob - 1) / bs) as usize;
        let record = self.config.record_requests;
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut n_ranges = 0u64;
        let mut run: Option<(usize, usize)> = None;
        let mut lowest: Option<usize> = None;
        let mut highest = 0usize;
        let mut bytes = 0u64;
        let mut blocks = 0u64;
        let mut prev_last: Option<usize> = None;
        let block_len = |b: usize| -> u64 {
            let s = b as u64 * bs;
            bs.min(blob - s)
        };
        for &(off, len) in spans {
            if len == 0 || off >= blob {
                continue;
            }
            let first = (off / bs) as usize;
            let last = (((off + len - 1) / bs) as usize).min(last_block);
            let start = match prev_last {
                Some(p) if p >= first => p + 1,
                _ => first,
            };
            for b in start..=last {
                if self.layers[layer].http_cached.contains(b) {
                    continue;
                }
                lowest.get_or_insert(b);
                highest = b;
                bytes += block_len(b);
                blocks += 1;
                run = match run {
                    Some((s, e)) if e + 1 == b => Some((s, b)),
                    Some((s, e)) => {
                        n_ranges += 1;
                        if record {
                            ranges.push((s as u64 * bs, e as u64 * bs + block_len(e) - 1));
                        }
                        Some((b, b))
                    }
                    None => Some((b, b)),
                };
            }
            prev_last = Some(prev_last.map_or(last, |p| p.max(last)));
        }
        let Some(lo) = lowest else {
            return;
        };
        if let Some((s, e)) = run {
            n_ranges += 1;
            if record {
                ranges.push((s as u64 * bs, e as u64 * bs + block_len(e) - 1));
            }
        }
        out.requests += 1;
        if self.config.single_range {
            out.ranges += 1;
            let span_end = highest as u64 * bs + block_len(highest);
            out.network_bytes += Bytes(span_end - lo as u64 * bs);
            out.blocks_fetched += (highest - lo + 1) as u64;
            for b in lo..=highest {
                self.cache_block(layer, b, block_len(b));
            }
            if record {
                ranges = vec![(lo as u64 * bs, span_end - 1)];
            }
        } else {
            out.ranges += n_ranges;
            out.network_bytes += Bytes(bytes);
            out.blocks_fetched += blocks;
            // Only missing blocks were requested; cache exactly those.
            for &(off, len) in spans {
                if len == 0 || off >= blob {
                    continue;
                }
                let first = (off / bs) as usize;
                let last = (((off + len - 1) / bs) as usize).min(last_block);
                for b in first..=last {
                    self.cache_block(layer, b, block_len(b));
                }
            }
        }
        if record {
            self.log.push(Request {
                layer,
                cause,
                ranges,
            });
        }
    }

    fn cache_block(&mut self, layer: usize, b: usize, len: u64) {
        let l = &mut self.layers[layer];
        if !l.http_cached.contains(b) {
            l.http_cached.insert(b);
            l.fetched_bytes += len;
            if let Some(u) = self.undo.as_mut() {
                u.push(Undo::Block(layer, b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::testing::{self, chunked as file};
    use crate::estargz::table::{FileEntry, LayerFiles};

    const B: u64 = BLOCK_SIZE;

    fn layer(blob_size: u64, files: Vec<FileEntry>) -> LayerFiles {
        LayerFiles {
            digest: "sha256:l0".into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            blob_size,
            uncompressed_size: files.iter().map(|f| f.size).sum(),
            ..testing::layer(files)
        }
    }

    fn image(layers: Vec<LayerFiles>) -> ImageFiles {
        ImageFiles {
            reference: "test".into(),
            manifest_digest: "sha256:m".into(),
            ..testing::image(layers)
        }
    }

    fn logged() -> FetchConfig {
        FetchConfig {
            record_requests: true,
            ..FetchConfig::default()
        }
    }

    fn at(file: usize) -> FileRef {
        FileRef { layer: 0, file }
    }

    #[test]
    fn read_inside_one_chunk_fetches_its_member_widened_to_blocks() {
        // One 100-byte file whose member is [120_000, 130_000); the blob is
        // 1 MB, so the read-ahead is bounded by the file's end.
        let img = image(vec![layer(
            1_000_000,
            vec![file("a", &[(100, 120_000, 130_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        let o = s.read(at(0), 10, Some(20));
        assert_eq!(o.requests, 1);
        assert_eq!(o.ranges, 1);
        // [120000, 130000) lies in block 2 = [100000, 150000).
        assert_eq!(o.network_bytes, Bytes(B));
        assert_eq!(o.chunks_missed, 1);
        assert_eq!(
            o.decompressed_bytes,
            Bytes(100),
            "the whole chunk is decompressed"
        );
        assert_eq!(o.bytes_served, Bytes(20));
        assert_eq!(s.requests()[0].ranges, vec![(100_000, 149_999)]);
        assert_eq!(s.requests()[0].cause, Cause::OnDemand);
        assert_eq!(s.layer_fetched_bytes(0), B);
    }

    #[test]
    fn second_read_of_the_same_chunk_is_an_fs_cache_hit() {
        let img = image(vec![layer(
            1_000_000,
            vec![file("a", &[(100, 120_000, 130_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        s.read(at(0), 0, Some(50));
        let o = s.read(at(0), 50, Some(50));
        assert_eq!(o.requests, 0);
        assert_eq!(o.network_bytes, Bytes(0));
        assert_eq!(o.chunks_missed, 0);
        assert_eq!(o.decompressed_bytes, Bytes(0));
        assert_eq!(o.chunks_touched, 0, "already touched");
        assert_eq!(o.bytes_served, Bytes(50));
    }

    #[test]
    fn read_across_a_chunk_boundary_misses_both_chunks() {
        // A file of two 4 MiB chunks with small members: chunk 0 in
        // [1_000, 61_000), chunk 1 in [61_000, 121_000). The first miss reads
        // min(2 MiB, 120_000) = 120_000 bytes from 1_000: blocks 0..=2; the
        // second chunk's blob read [61_000, 121_000) is then fully cached.
        let mib4 = 4 << 20;
        let img = image(vec![layer(
            10_000_000,
            vec![file(
                "big",
                &[(mib4, 1_000, 61_000), (mib4, 61_000, 121_000)],
            )],
        )]);
        let mut s = Simulator::new(&img, logged());
        let o = s.read(at(0), mib4 - 10, Some(20));
        assert_eq!(o.chunks_touched, 2);
        assert_eq!(o.chunks_missed, 2);
        assert_eq!(o.decompressed_bytes, Bytes(2 * mib4));
        assert_eq!(o.requests, 1, "the read-ahead of chunk 0 covered chunk 1");
        assert_eq!(o.network_bytes, Bytes(3 * B));
        assert_eq!(s.requests()[0].ranges, vec![(0, 149_999)]);
    }

    #[test]
    fn small_files_sharing_a_block_second_is_http_cache_hit() {
        // Two small files in one block: the second read sends no request but
        // still decompresses its own chunk.
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 1_000, 1_500)]),
                file("b", &[(20, 1_500, 2_000)]),
            ],
        )]);
        let mut s = Simulator::new(&img, logged());
        let a = s.read(at(0), 0, None);
        assert_eq!((a.requests, a.network_bytes), (1, Bytes(B)));
        let b = s.read(at(1), 0, None);
        assert_eq!(b.requests, 0);
        assert_eq!(b.network_bytes, Bytes(0));
        assert_eq!(b.chunks_missed, 1);
        assert_eq!(b.decompressed_bytes, Bytes(20));
        assert_eq!(b.bytes_served, Bytes(20));
    }

    #[test]
    fn large_file_read_sequentially_uses_the_read_ahead() {
        // 4 chunks of 4 MiB, each member 1 MB compressed, file members at
        // [0, 4_000_000). Chunk 0 miss: read [0, 2 MiB) = blocks 0..=41
        // (2_097_152 / 50_000 → last byte 2_097_151 in block 41).
        // Chunk 1 [1_000_000, ...): read [1_000_000, 3_097_152) → blocks up to
        // 61, missing 42..=61 (20 blocks). Chunk 2 [2_000_000, 4_000_000)
        // (remain 2_000_000 < 2 MiB): blocks 40..=79, missing 62..=79 (18).
        // Chunk 3 [3_000_000, 4_000_000): blocks 60..=79, all cached.
        let mib4 = 4 << 20;
        let chunks: Vec<(u64, u64, u64)> = (0..4)
            .map(|i| (mib4, i * 1_000_000, (i + 1) * 1_000_000))
            .collect();
        let img = image(vec![layer(5_000_000, vec![file("big", &chunks)])]);
        let mut s = Simulator::new(&img, logged());
        let per_chunk: Vec<ReadOutcome> = (0..4)
            .map(|i| s.read(at(0), i * mib4, Some(mib4)))
            .collect();
        let reqs: Vec<u64> = per_chunk.iter().map(|o| o.requests).collect();
        let blocks: Vec<u64> = per_chunk.iter().map(|o| o.blocks_fetched).collect();
        assert_eq!(reqs, vec![1, 1, 1, 0]);
        assert_eq!(blocks, vec![42, 20, 18, 0]);
        assert!(
            per_chunk
                .iter()
                .all(|o| o.chunks_missed == 1 && o.decompressed_bytes == Bytes(mib4))
        );
        assert_eq!(s.layer_fetched_bytes(0), 80 * B);
        assert_eq!(s.requests()[1].ranges, vec![(42 * B, 62 * B - 1)]);
    }

    #[test]
    fn a_chunk_member_longer_than_2_mib_needs_a_second_blob_read() {
        // One incompressible 4 MiB chunk: its member is 4_200_000 bytes. The
        // bufio buffer is 2 MiB, so decompression reads [0, 2 MiB) (blocks
        // 0..=41), [2 MiB, 4 MiB) (blocks 41..=83, 42..=83 missing) and
        // [4 MiB, 4_200_000) (block 83, cached): two GETs.
        let img = image(vec![layer(
            5_000_000,
            vec![file("rnd", &[(4 << 20, 0, 4_200_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        let o = s.read(at(0), 0, Some(10));
        assert_eq!(o.requests, 2);
        assert_eq!(o.chunks_missed, 1);
        // blocks 0..=83 (4_199_999 / 50_000 = 83)
        assert_eq!(o.blocks_fetched, 84);
        assert_eq!(o.network_bytes, Bytes(84 * B));
    }

    #[test]
    fn cached_block_in_the_middle_splits_the_get_into_two_ranges() {
        // File b's member is in block 1; reading a afterwards (blocks 0..=2)
        // requests blocks 0 and 2 in one GET with two ranges.
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 10_000, 140_000)]),
                file("b", &[(10, 60_000, 70_000)]),
            ],
        )]);
        let mut s = Simulator::new(&img, logged());
        s.read(at(1), 0, None);
        let o = s.read(at(0), 0, None);
        assert_eq!((o.requests, o.ranges), (1, 2));
        assert_eq!(o.network_bytes, Bytes(2 * B));
        assert_eq!(s.requests()[1].ranges, vec![(0, B - 1), (2 * B, 3 * B - 1)]);
    }

    #[test]
    fn single_range_mode_requests_the_superset_span() {
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 10_000, 140_000)]),
                file("b", &[(10, 60_000, 70_000)]),
            ],
        )]);
        let mut s = Simulator::new(
            &img,
            FetchConfig {
                single_range: true,
                ..logged()
            },
        );
        s.read(at(1), 0, None);
        let o = s.read(at(0), 0, None);
        assert_eq!((o.requests, o.ranges), (1, 1));
        assert_eq!(
            o.network_bytes,
            Bytes(3 * B),
            "the cached middle block is fetched again"
        );
        assert_eq!(s.layer_fetched_bytes(0), 3 * B);
    }

    #[test]
    fn last_block_is_truncated_at_the_blob_end() {
        let img = image(vec![layer(
            120_000,
            vec![file("a", &[(10, 110_000, 120_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        let o = s.read(at(0), 0, None);
        assert_eq!(o.network_bytes, Bytes(20_000));
        assert_eq!(s.requests()[0].ranges, vec![(100_000, 119_999)]);
    }

    #[test]
    fn reads_past_the_end_or_empty_serve_nothing() {
        let img = image(vec![layer(
            1_000_000,
            vec![file("a", &[(100, 1_000, 2_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        assert_eq!(s.read(at(0), 100, Some(10)), ReadOutcome::default());
        assert_eq!(s.read(at(0), 5, Some(0)), ReadOutcome::default());
        let o = s.read(at(0), 90, Some(1000));
        assert_eq!(o.bytes_served, Bytes(10), "clamped to the file size");
    }

    #[test]
    fn page_alignment_can_touch_the_neighbouring_chunk() {
        // Chunks of 5000 bytes (not page multiples): a read of [4096, 4100)
        // is widened to [4096, 8192) and touches chunk 1 as well.
        let img = image(vec![layer(
            1_000_000,
            vec![file("a", &[(5000, 1_000, 2_000), (5000, 200_000, 201_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        let o = s.read(at(0), 4096, Some(4));
        assert_eq!(o.chunks_touched, 2);
        assert_eq!(o.bytes_served, Bytes(4));
        let mut unaligned = Simulator::new(
            &img,
            FetchConfig {
                page_size: 0,
                ..logged()
            },
        );
        assert_eq!(unaligned.read(at(0), 4096, Some(4)).chunks_touched, 1);
    }

    #[test]
    fn prefetch_range_is_one_get_and_caches_files_starting_in_it() {
        // Landmark at 130_000: blocks 0..=2 in one GET. Files a and b start
        // before it and are cached whole; b's chunk 1 lies past the range
        // ([300_000, 320_000)), so caching it fetches block 6 too. c starts
        // after the landmark and stays cold.
        let mut l = layer(
            1_000_000,
            vec![
                file("a", &[(10, 1_000, 60_000)]),
                file("b", &[(4 << 20, 60_000, 120_000), (10, 300_000, 320_000)]),
                file("c", &[(10, 400_000, 410_000)]),
            ],
        );
        l.prefetch_end = Some(130_000);
        let img = image(vec![l]);
        let mut s = Simulator::new(&img, logged());
        let p = s.prefetch(0);
        assert_eq!(s.requests()[0].ranges, vec![(0, 3 * B - 1)]);
        assert_eq!(s.requests()[0].cause, Cause::Prefetch);
        // b chunk 0's read-ahead [60_000, 320_000) adds blocks 3..=6.
        assert_eq!(p.requests, 2);
        assert_eq!(p.network_bytes, Bytes(7 * B));
        assert_eq!(p.chunks_missed, 3);
        assert!(s.chunk_cached(at(0), 0) && s.chunk_cached(at(1), 1));
        assert!(!s.chunk_cached(at(2), 0));
        let hit = s.read(at(1), 0, Some(100));
        assert_eq!((hit.requests, hit.chunks_missed), (0, 0));
        let miss = s.read(at(2), 0, None);
        assert_eq!((miss.requests, miss.chunks_missed), (1, 1));
    }

    #[test]
    fn no_landmark_and_no_prefetch_size_still_fetches_the_first_block() {
        let img = image(vec![layer(
            1_000_000,
            vec![file("a", &[(10, 1_000, 60_000)])],
        )]);
        let mut s = Simulator::new(&img, logged());
        let p = s.prefetch(0);
        assert_eq!((p.requests, p.network_bytes), (1, Bytes(B)));
        assert_eq!(p.chunks_missed, 0, "no file starts before offset 0");
        let mut l = layer(1_000_000, vec![]);
        l.no_prefetch = true;
        let img = image(vec![l]);
        assert_eq!(
            Simulator::new(&img, logged()).prefetch(0),
            ReadOutcome::default()
        );
    }

    #[test]
    fn mount_reads_footer_then_toc() {
        // Blob 1_000_000, TOC at 900_000: the footer read caches block 19
        // ([950_000, 1_000_000)); the TOC read [900_000, 999_949) then needs
        // block 18 only: two GETs.
        let mut l = layer(1_000_000, vec![]);
        l.toc_offset = Some(900_000);
        let img = image(vec![l.clone()]);
        let mut s = Simulator::new(&img, logged());
        let m = s.mount(0);
        assert_eq!((m.requests, m.network_bytes), (2, Bytes(2 * B)));
        // A TOC inside the tail block is a cache hit: one GET.
        l.toc_offset = Some(960_000);
        let img = image(vec![l]);
        let m = Simulator::new(&img, logged()).mount(0);
        assert_eq!((m.requests, m.network_bytes), (1, Bytes(B)));
    }

    #[test]
    fn non_lazy_layers_download_whole_and_read_locally() {
        let mut l = layer(300_000, vec![file("a", &[(10, 1_000, 2_000)])]);
        l.format = LayerFormat::Gzip;
        let img = image(vec![l]);
        let mut s = Simulator::new(&img, logged());
        let m = s.mount(0);
        assert_eq!((m.requests, m.network_bytes), (1, Bytes(300_000)));
        let r = s.read(at(0), 0, None);
        assert_eq!(r.requests, 0);
        assert_eq!(r.bytes_served_locally, Bytes(10));
        assert_eq!(s.mount(0), ReadOutcome::default(), "downloaded once");
    }

    #[test]
    fn background_jobs_walk_uncached_files_in_toc_order_and_cost_is_side_effect_free() {
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 1_000, 60_000)]),
                file("b", &[(10, 60_000, 70_000)]),
                file("c", &[(10, 400_000, 410_000)]),
            ],
        )]);
        let mut s = Simulator::new(&img, logged());
        s.read(at(1), 0, None);
        let mut cur = BackgroundCursor::default();
        let j = s.next_background_job(&mut cur).unwrap();
        assert_eq!(j.file, at(0));
        let cost = s.background_job_cost(j);
        // a's blob read is [1_000, 60_000) (min(2 MiB, to the file's end)):
        // blocks 0 and 1, and b's read already cached block 1.
        assert_eq!((cost.requests, cost.network_bytes), (1, Bytes(B)));
        assert!(!s.chunk_cached(at(0), 0), "cost does not change the caches");
        assert!(!s.block_cached(0, 0));
        assert_eq!(s.requests().len(), 1);
        assert_eq!(s.run_background_job(j), cost);
        assert!(s.chunk_cached(at(0), 0));
        let j = s.next_background_job(&mut cur).unwrap();
        assert_eq!(j.file, at(2), "b is already cached");
        s.run_background_job(j);
        assert_eq!(s.next_background_job(&mut cur), None);
        assert_eq!(
            s.requests().last().map(|r| r.cause),
            Some(Cause::Background)
        );
    }

    /// A file of three 4 MiB chunks of random data, laid out as in the lab's
    /// `app:v1-esgz` model layer: each member 4 MiB + 1,303 bytes, so each
    /// chunk's decompression reads 2 MiB three times from its member start.
    fn random_file_image() -> ImageFiles {
        const M: u64 = 4_195_607;
        const S: u64 = 199;
        let chunks: Vec<(u64, u64, u64)> = (0..3)
            .map(|i| (4 << 20, S + i * M, S + (i + 1) * M))
            .collect();
        image(vec![layer(
            S + 3 * M + 3_000,
            vec![file("w0.bin", &chunks)],
        )])
    }

    #[test]
    fn background_refetches_half_of_a_chunk_s_overread_into_the_next_chunk() {
        // Pins `background_overread` (reader.go `cacheWithReader`, estargz.go
        // `fileReader.ReadAt`, blob.go `ReadAt`/`fetchRegions`): chunk 0's
        // third read [199 + 4 MiB, 199 + 6 MiB) lies past its member end
        // (4_195_806) in blocks 84..=125, 42 blocks chunk 1's first read (on
        // the other goroutine) fetches at the same time; chunk 1's third read
        // likewise blocks 168..=209 of chunk 2. Chunk 2 is the file's last:
        // its reads stop at the file's end. Half of 2 × 42 blocks again.
        let img = random_file_image();
        let mut lazy = Simulator::new(&img, FetchConfig::default());
        let demand = lazy.read(at(0), 0, None);
        let mut s = Simulator::new(&img, FetchConfig::default());
        let mut cur = BackgroundCursor::default();
        let j = s.next_background_job(&mut cur).unwrap();
        let cost = s.background_job_cost(j);
        let bg = s.run_background_job(j);
        assert_eq!(cost, bg);
        // In order, a chunk's first read finds the previous chunk's third
        // read in the cache (3 + 2 + 1 GETs, the last chunk's third read of
        // its final 1,303 bytes too); run at once, chunks 1 and 2's first
        // reads are GETs as well.
        assert_eq!(demand.requests, 6);
        assert_eq!(bg.requests, 6 + 2);
        assert_eq!(bg.ranges, demand.ranges + 2);
        assert_eq!(bg.network_bytes, demand.network_bytes + Bytes(42 * B));
        assert_eq!(bg.blocks_fetched, demand.blocks_fetched + 42);
        assert_eq!(
            s.layer_fetched_bytes(0),
            demand.network_bytes.0,
            "the cache holds each block once"
        );
    }

    #[test]
    fn background_overread_already_cached_or_into_a_cached_chunk_counts_once() {
        // Chunk 1 read on demand first: its blocks (and its own over-read
        // into chunk 2) are cached, so chunk 0's third read finds them and
        // no one fetches chunk 1 again; chunk 2 is the last. No extra bytes.
        let img = random_file_image();
        let mut s = Simulator::new(&img, FetchConfig::default());
        s.read(at(0), 4 << 20, Some(1));
        let before = s.layer_fetched_bytes(0);
        let mut cur = BackgroundCursor::default();
        let j = s.next_background_job(&mut cur).unwrap();
        let bg = s.run_background_job(j);
        assert_eq!(bg.network_bytes.0, s.layer_fetched_bytes(0) - before);
        // Small files: reads stop at the file's end, nothing past it.
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 1_000, 60_000)]),
                file("b", &[(10, 60_000, 70_000)]),
            ],
        )]);
        let mut s = Simulator::new(&img, FetchConfig::default());
        let mut cur = BackgroundCursor::default();
        let mut total = 0;
        while let Some(j) = s.next_background_job(&mut cur) {
            total += s.run_background_job(j).network_bytes.0;
        }
        assert_eq!(total, 2 * B);
    }

    #[test]
    fn what_if_prefetch_of_files_fetches_their_extents_in_one_get() {
        let img = image(vec![layer(
            1_000_000,
            vec![
                file("a", &[(10, 1_000, 60_000)]),
                file("b", &[(10, 60_000, 70_000)]),
                file("c", &[(10, 400_000, 410_000)]),
            ],
        )]);
        let mut s = Simulator::new(&img, logged());
        let p = s.prefetch_files(&[at(0), at(2)]);
        assert_eq!(p.requests, 1);
        assert_eq!(p.ranges, 2);
        assert_eq!(p.network_bytes, Bytes(3 * B));
        assert_eq!(p.chunks_missed, 2);
        let hit = s.read(at(2), 0, None);
        assert_eq!((hit.requests, hit.chunks_missed), (0, 0));
    }
}
