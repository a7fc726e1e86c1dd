//! Reading an image's layers from its registry without downloading them: per
//! layer its format and, for eStargz, the verified TOC and file table, with
//! ranged GETs of the blob's tail only; `--scan` streams a non-eStargz layer
//! once to build the same table.
//!
//! Owns the read plan and its byte budget. Per layer: one GET of the last
//! [`TAIL_READ`] bytes (the footer, and usually the whole TOC member); if the
//! footer puts the TOC before that tail, one more GET of the missing front of
//! the TOC member only; if there is no footer, one GET of the first
//! [`HEAD_READ`] bytes to tell gzip, zstd and tar apart. So a layer costs at
//! most `max(TAIL_READ, TOC member + footer) + HEAD_READ` ≤ TOC compressed
//! size + 64 KiB ([`LAYER_BUDGET`]), plus the manifest and config once.
//! The TOC digest is checked against the layer's
//! `containerd.io/snapshot/stargz/toc.digest` annotation, as the snapshotter
//! does before a lazy mount.
//!
//! Registry traffic goes through `registry`, format rules through `estargz`;
//! this module prints nothing. `advisor image inspect` renders its result.
use crate::estargz::footer::{FOOTER_SIZE, Footer, parse_footer};
use crate::estargz::reader::{
    MAX_TOC_JSON_SIZE, detect_format, parse_index, scan_layer, toc_member_in_tail,
};
use crate::estargz::table::{FILE_TABLE_VERSION, FileKind, ImageFiles, LayerFiles, LayerFormat};
use crate::estargz::toc::{
    NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION,
};
use crate::registry::{RegistryClient, RegistryStats, ResolvedImage};
use crate::units::Bytes;
use anyhow::Context;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use oci_spec::image::Descriptor;
use serde::Serialize;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Allowance per layer beyond its TOC member: the tail read plus the head read.
pub const LAYER_BUDGET: u64 = 64 << 10;
/// Bytes read from the start of a blob without a footer (a tar header block is
/// 512 bytes; gzip and zstd magics are the first 2-4).
pub const HEAD_READ: u64 = 512;
/// Bytes read from the end of every blob: the rest of the budget. The stargz
/// snapshotter reads a 50,000-byte block for the footer (fs/reader, `chunk_size`),
/// so a TOC that fits its tail block fits this tail too.
pub const TAIL_READ: u64 = LAYER_BUDGET - HEAD_READ;
/// Layers read at once.
pub const CONCURRENCY: usize = 4;
/// Files listed as the largest of a layer.
const LARGEST: usize = 5;

/// What to do beyond the ranged reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectOptions {
    /// Stream each gzip or uncompressed (non-eStargz) layer once to build its file table.
    pub scan: bool,
    /// Layers decompressed at once by `scan` (`--jobs`; at most the
    /// [`CONCURRENCY`] layers read at once). Each scan is one thread.
    pub jobs: NonZeroUsize,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            scan: false,
            jobs: crate::image::build::default_jobs(),
        }
    }
}

/// Makes the bar of a scanned layer from its index, digest and compressed size.
type MakeBar = dyn Fn(usize, &str, u64) -> ProgressBar + Send + Sync;

/// Where a scan reports the bytes it has read of each layer: a bar per
/// scanned layer, made by the command (hidden: nothing drawn).
#[derive(Clone, Default)]
pub struct ScanProgress {
    /// Given the layer's index, digest and compressed size, its bar.
    make: Option<Arc<MakeBar>>,
}

impl ScanProgress {
    /// No bars.
    pub fn hidden() -> Self {
        ScanProgress { make: None }
    }

    /// A bar per scanned layer, from `make(index, digest, compressed size)`.
    pub fn new(make: impl Fn(usize, &str, u64) -> ProgressBar + Send + Sync + 'static) -> Self {
        ScanProgress {
            make: Some(Arc::new(make)),
        }
    }

    fn layer(&self, index: usize, digest: &str, size: u64) -> ProgressBar {
        match &self.make {
            Some(m) => m(index, digest, size),
            None => ProgressBar::hidden(),
        }
    }
}

/// An inspected image.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub reference: String,
    pub registry: String,
    pub repository: String,
    pub platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_digest: String,
    pub layers: Vec<LayerInspection>,
    pub fetched: Fetched,
}

/// Bytes and requests spent, from the registry client's own counters.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    /// Index (if any), manifest and config bodies.
    pub metadata_bytes: Bytes,
    pub metadata_requests: u64,
    /// Ranged reads of layer blobs (footers, TOCs, heads).
    pub ranged_bytes: Bytes,
    pub ranged_requests: u64,
    /// Whole-blob streams of `--scan`.
    pub scan_bytes: Bytes,
    pub scan_requests: u64,
    /// Every body byte received and every request sent, retries included.
    pub total_bytes: Bytes,
    pub total_requests: u64,
    /// The budget of the ranged reads: metadata + Σ (TOC member + 64 KiB).
    pub budget_bytes: Bytes,
    /// Whether metadata + ranged reads stayed within the budget.
    pub within_budget: bool,
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInspection {
    pub index: usize,
    pub digest: String,
    pub media_type: String,
    /// Compressed blob size (from the manifest).
    pub compressed_size: u64,
    /// Uncompressed tar size: the eStargz annotation, or measured by `--scan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncompressed_size: Option<u64>,
    pub format: LayerFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toc: Option<TocSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanSummary>,
    /// Bytes of this blob read with ranged GETs, and how many GETs.
    pub ranged_bytes: Bytes,
    pub ranged_requests: u64,
    /// Why there is no file table, or what to know about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The layer's file table, when there is one (TOC or scan).
    #[serde(skip)]
    pub files: Option<LayerFiles>,
}

/// What a layer's TOC says.
#[derive(Debug, Clone, Serialize)]
pub struct TocSummary {
    /// sha256 of the TOC JSON.
    pub digest: String,
    /// Whether the digest was checked against the layer's annotation (it
    /// matched: a mismatch is an error). Without the annotation the stargz
    /// snapshotter refuses a verified lazy mount.
    pub verified: bool,
    /// Compressed offset of the TOC member.
    pub offset: u64,
    /// Compressed size of the TOC member and footer.
    pub compressed_size: u64,
    pub entries: usize,
    #[serde(flatten)]
    pub counts: FileCounts,
    /// Prefetch landmark: `prefetch`, `no-prefetch` or `none`.
    pub landmark: Landmark,
    /// Files written before `.prefetch.landmark`, and their bytes.
    pub prioritized_files: u64,
    pub prioritized_bytes: Bytes,
    /// Compressed bytes the snapshotter prefetches at mount: `[0, landmark offset)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch_compressed_bytes: Option<Bytes>,
}

/// Counts over a file table (landmarks excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub other: u64,
    /// Payload chunks (eStargz; 0 for a scan).
    pub chunks: u64,
    /// Bytes of regular files.
    pub file_bytes: Bytes,
    /// The largest files, largest first.
    pub largest: Vec<SizedPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizedPath {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Landmark {
    Prefetch,
    NoPrefetch,
    None,
}

/// What a scan found.
#[derive(Debug, Clone, Serialize)]
pub struct ScanSummary {
    #[serde(flatten)]
    pub counts: FileCounts,
    /// sha256 of the uncompressed tar; equals the config's diff_id (checked).
    pub diff_id: String,
    pub bytes_streamed: u64,
}

impl Inspection {
    /// The image's file table, when every layer has one.
    pub fn image_files(&self) -> Result<ImageFiles, Vec<&LayerInspection>> {
        let missing: Vec<&LayerInspection> =
            self.layers.iter().filter(|l| l.files.is_none()).collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(ImageFiles {
            version: FILE_TABLE_VERSION,
            reference: self.reference.clone(),
            manifest_digest: self.manifest_digest.clone(),
            layers: self.layers.iter().filter_map(|l| l.files.clone()).collect(),
        })
    }
}

/// Inspect `reference`: resolve it, then read every layer as the module doc says.
pub async fn inspect(
    client: &RegistryClient,
    reference: &str,
    opts: InspectOptions,
) -> anyhow::Result<Inspection> {
    inspect_with_progress(client, reference, opts, &ScanProgress::hidden()).await
}

/// [`inspect`], reporting the bytes each `--scan` has read to `progress`.
pub async fn inspect_with_progress(
    client: &RegistryClient,
    reference: &str,
    opts: InspectOptions,
    progress: &ScanProgress,
) -> anyhow::Result<Inspection> {
    let scans = Scans {
        slots: tokio::sync::Semaphore::new(opts.jobs.get()),
        progress: progress.clone(),
    };
    let start = client.stats();
    let image = client
        .resolve(reference)
        .await
        .with_context(|| format!("resolving {reference}"))?;
    let meta = client.stats().since(&start);
    let diff_ids = image.config.rootfs().diff_ids().clone();
    let layers: Vec<LayerInspection> = futures_util::stream::iter(
        image
            .layers()
            .iter()
            .enumerate()
            .map(|(i, d)| inspect_layer(client, &image, i, d, diff_ids.get(i), opts, &scans)),
    )
    .buffered(CONCURRENCY)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    let total = client.stats().since(&start);
    Ok(Inspection {
        reference: reference.to_string(),
        registry: image.registry.clone(),
        repository: image.repository.clone(),
        platform: image.platform.to_string(),
        index_digest: image.index_digest.clone(),
        manifest_digest: image.manifest_digest.clone(),
        manifest_media_type: image.manifest_media_type.clone(),
        config_digest: image.config_descriptor.digest().to_string(),
        fetched: fetched(&meta, &total, &layers),
        layers,
    })
}

fn fetched(meta: &RegistryStats, total: &RegistryStats, layers: &[LayerInspection]) -> Fetched {
    let ranged_bytes: Bytes = layers.iter().map(|l| l.ranged_bytes).sum();
    let ranged_requests: u64 = layers.iter().map(|l| l.ranged_requests).sum();
    let scan_bytes: Bytes = layers
        .iter()
        .filter_map(|l| l.scan.as_ref())
        .map(|s| Bytes(s.bytes_streamed))
        .sum();
    let scan_requests = layers.iter().filter(|l| l.scan.is_some()).count() as u64;
    let budget_bytes = Bytes(
        meta.bytes_received
            + layers
                .iter()
                .map(|l| l.toc.as_ref().map_or(0, |t| t.compressed_size) + LAYER_BUDGET)
                .sum::<u64>(),
    );
    Fetched {
        metadata_bytes: Bytes(meta.bytes_received),
        metadata_requests: meta.requests,
        ranged_bytes,
        ranged_requests,
        scan_bytes,
        scan_requests,
        total_bytes: Bytes(total.bytes_received),
        total_requests: total.requests,
        budget_bytes,
        within_budget: Bytes(meta.bytes_received) + ranged_bytes <= budget_bytes,
    }
}

/// Names a layer in errors: its position and digest.
fn layer_label(index: usize, digest: &str) -> String {
    format!("layer {index} ({digest})")
}

/// One layer of the image being inspected: what its manifest descriptor says
/// about it, and the ranged reads of its blob.
struct Layer<'a> {
    client: &'a RegistryClient,
    image: &'a ResolvedImage,
    desc: &'a Descriptor,
    index: usize,
    digest: String,
    media_type: String,
    /// Compressed blob size (from the manifest).
    size: u64,
    /// The [`TOC_DIGEST_ANNOTATION`] an eStargz layer carries.
    toc_annotation: Option<String>,
    /// The [`UNCOMPRESSED_SIZE_ANNOTATION`], parsed.
    uncompressed_annotation: Option<u64>,
}

impl<'a> Layer<'a> {
    /// The layer of `desc`; an uncompressed-size annotation that is not a
    /// byte count is the image's fault.
    fn new(
        client: &'a RegistryClient,
        image: &'a ResolvedImage,
        index: usize,
        desc: &'a Descriptor,
    ) -> anyhow::Result<Self> {
        let digest = desc.digest().to_string();
        let annotation = |k: &str| desc.annotations().as_ref().and_then(|a| a.get(k)).cloned();
        let uncompressed_annotation = annotation(UNCOMPRESSED_SIZE_ANNOTATION)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    crate::error::user(format!(
                        "{} of {}: annotation {UNCOMPRESSED_SIZE_ANNOTATION} is `{v}`, not a byte count",
                        layer_label(index, &digest),
                        image.reference
                    ))
                })
            })
            .transpose()?;
        Ok(Layer {
            client,
            image,
            desc,
            index,
            media_type: desc.media_type().to_string(),
            size: desc.size(),
            toc_annotation: annotation(TOC_DIGEST_ANNOTATION),
            uncompressed_annotation,
            digest,
        })
    }

    /// `layer N (digest) of reference`: how every error about it begins.
    fn context(&self) -> String {
        format!(
            "{} of {}",
            layer_label(self.index, &self.digest),
            self.image.reference
        )
    }

    /// One ranged GET of the blob, counted in `reads`.
    async fn fetch(&self, range: Range<u64>, reads: &mut RangedReads) -> anyhow::Result<Vec<u8>> {
        let bytes = self
            .client
            .fetch_range(self.image, &self.digest, range)
            .await
            .with_context(|| self.context())?;
        reads.bytes += bytes.len() as u64;
        reads.requests += 1;
        Ok(bytes)
    }

    /// A layer that says it is eStargz (the annotation, or `STARGZ` in its
    /// last bytes) must have a readable footer; without either it is another
    /// format.
    fn claims_estargz(&self, tail: &Tail) -> bool {
        let last = &tail.bytes[tail.bytes.len().saturating_sub(FOOTER_SIZE as usize)..];
        self.toc_annotation.is_some() || last.windows(6).any(|w| w == b"STARGZ")
    }
}

/// Bytes and GETs spent on one layer's ranged reads.
#[derive(Debug, Default)]
struct RangedReads {
    bytes: u64,
    requests: u64,
}

/// The last [`TAIL_READ`] bytes of a blob (all of it when it is smaller).
struct Tail {
    /// Offset of the first byte in the blob.
    start: u64,
    bytes: Vec<u8>,
}

/// What a layer's bytes said: its format and, when there is one, its file
/// table (from the TOC or a scan), or a note on why there is none.
struct Findings {
    format: LayerFormat,
    toc: Option<TocSummary>,
    scan: Option<ScanSummary>,
    /// Measured by a scan.
    uncompressed_size: Option<u64>,
    files: Option<LayerFiles>,
    note: Option<String>,
}

/// One layer, read as the module doc says: its tail; then, with a footer, its
/// TOC; without one, its head (and with `--scan` the whole blob).
async fn inspect_layer(
    client: &RegistryClient,
    image: &ResolvedImage,
    index: usize,
    desc: &Descriptor,
    diff_id: Option<&String>,
    opts: InspectOptions,
    scans: &Scans,
) -> anyhow::Result<LayerInspection> {
    let layer = Layer::new(client, image, index, desc)?;
    let mut reads = RangedReads::default();
    let tail = read_tail(&layer, &mut reads).await?;
    let found = match parse_footer(&layer.digest, &tail.bytes, layer.size) {
        Ok(footer) => read_estargz(&layer, footer, &tail, &mut reads).await?,
        Err(e) if layer.claims_estargz(&tail) => return Err(unreadable_footer(&layer, e)),
        Err(_) => read_other(&layer, &tail, diff_id, opts, scans, &mut reads).await?,
    };
    Ok(LayerInspection {
        index,
        digest: layer.digest,
        media_type: layer.media_type,
        compressed_size: layer.size,
        uncompressed_size: found.uncompressed_size.or(layer.uncompressed_annotation),
        format: found.format,
        toc: found.toc,
        scan: found.scan,
        ranged_bytes: Bytes(reads.bytes),
        ranged_requests: reads.requests,
        note: found.note,
        files: found.files,
    })
}

/// The first ranged read of every layer: its tail, where an eStargz footer
/// (and usually the whole TOC member) is.
async fn read_tail(layer: &Layer<'_>, reads: &mut RangedReads) -> anyhow::Result<Tail> {
    let start = layer.size.saturating_sub(TAIL_READ);
    let bytes = layer
        .client
        .fetch_range(layer.image, &layer.digest, start..layer.size)
        .await
        .with_context(|| layer.context())?;
    reads.bytes += bytes.len() as u64;
    // An empty blob is read without a GET.
    reads.requests += u64::from(!bytes.is_empty());
    Ok(Tail { start, bytes })
}

/// A layer with a footer: its TOC, verified against the annotation when
/// there is one, and the file table it gives.
async fn read_estargz(
    layer: &Layer<'_>,
    footer: Footer,
    tail: &Tail,
    reads: &mut RangedReads,
) -> anyhow::Result<Findings> {
    let member = toc_member(layer, &footer, tail, reads).await?;
    let idx = parse_index(
        &layer.digest,
        footer,
        &member,
        layer.toc_annotation.as_deref(),
    )
    .with_context(|| layer.context())?;
    let files = idx.layer_files(&layer.digest, &layer.media_type, layer.size);
    let verified = layer.toc_annotation.is_some();
    Ok(Findings {
        format: files.format,
        toc: Some(toc_summary(&idx, &files, verified, layer.size)),
        scan: None,
        uncompressed_size: None,
        note: (!verified).then(|| {
            format!(
                "no {TOC_DIGEST_ANNOTATION} annotation: the stargz snapshotter will not mount it lazily (verification fails)"
            )
        }),
        files: Some(files),
    })
}

/// The TOC member the footer points at: from the tail, or the front the tail
/// missed (one more GET) followed by the tail's part.
async fn toc_member(
    layer: &Layer<'_>,
    footer: &Footer,
    tail: &Tail,
    reads: &mut RangedReads,
) -> anyhow::Result<Vec<u8>> {
    let range = footer.toc_range(layer.size);
    if range.end - range.start > MAX_TOC_JSON_SIZE {
        return Err(crate::estargz::Error::new(
            layer.digest.clone(),
            crate::estargz::ErrorKind::TocTooLarge {
                size: range.end - range.start,
                limit: MAX_TOC_JSON_SIZE,
            },
        ))
        .with_context(|| layer.context());
    }
    if let Some(member) = toc_member_in_tail(footer, &tail.bytes, layer.size) {
        return Ok(member.to_vec());
    }
    let mut member = layer.fetch(range.start..tail.start, reads).await?;
    let in_tail = (range.end - tail.start) as usize;
    member.extend_from_slice(&tail.bytes[..in_tail]);
    Ok(member)
}

/// The error of a layer that claims to be eStargz without a readable footer.
fn unreadable_footer(layer: &Layer<'_>, e: crate::estargz::Error) -> anyhow::Error {
    let claim = if layer.toc_annotation.is_some() {
        "toc.digest annotation"
    } else {
        "`STARGZ` at its end"
    };
    anyhow::Error::new(e).context(format!(
        "{}: it claims to be eStargz ({claim}) but its footer is unreadable",
        layer.context()
    ))
}

/// A layer without a footer: its format from its first bytes and, with
/// `--scan`, the file table of a gzip or tar layer streamed once.
async fn read_other(
    layer: &Layer<'_>,
    tail: &Tail,
    diff_id: Option<&String>,
    opts: InspectOptions,
    scans: &Scans,
    reads: &mut RangedReads,
) -> anyhow::Result<Findings> {
    let head = read_head(layer, tail, reads).await?;
    let format = detect_format(&head, &tail.bytes, layer.size);
    if opts.scan && matches!(format, LayerFormat::Gzip | LayerFormat::Uncompressed) {
        let scanned = scan_remote(layer, diff_id, scans).await?;
        return Ok(Findings {
            format,
            toc: None,
            scan: Some(scanned.summary),
            uncompressed_size: Some(scanned.uncompressed_size),
            files: Some(scanned.files),
            note: None,
        });
    }
    Ok(Findings {
        format,
        toc: None,
        scan: None,
        uncompressed_size: None,
        files: None,
        note: Some(no_table_note(format)),
    })
}

/// The first [`HEAD_READ`] bytes: from the tail when it is the whole blob.
async fn read_head(
    layer: &Layer<'_>,
    tail: &Tail,
    reads: &mut RangedReads,
) -> anyhow::Result<Vec<u8>> {
    if tail.start == 0 {
        return Ok(tail.bytes[..tail.bytes.len().min(HEAD_READ as usize)].to_vec());
    }
    layer.fetch(0..HEAD_READ.min(layer.size), reads).await
}

/// Why a layer without a footer has no file table.
fn no_table_note(format: LayerFormat) -> String {
    match format {
        LayerFormat::Gzip | LayerFormat::Uncompressed => {
            "not eStargz: no TOC (eager pull only); --scan streams it once to list its files".into()
        }
        LayerFormat::Zstd => "zstd: not eStargz, and advisor cannot scan zstd layers".into(),
        _ => "unknown format: neither eStargz, gzip, zstd nor tar".into(),
    }
}

fn toc_summary(
    idx: &crate::estargz::reader::Index,
    files: &LayerFiles,
    verified: bool,
    blob_size: u64,
) -> TocSummary {
    let counts = counts(files);
    let mut prioritized_files = 0;
    let mut prioritized_bytes = Bytes::ZERO;
    let landmark = if files.prefetch_end.is_some() {
        for f in &files.files {
            if f.path == PREFETCH_LANDMARK {
                break;
            }
            if f.kind == FileKind::Reg {
                prioritized_files += 1;
                // TOC sizes are the registry's word: saturate, never wrap.
                prioritized_bytes = prioritized_bytes.saturating_add(Bytes(f.size));
            }
        }
        Landmark::Prefetch
    } else if files.no_prefetch {
        Landmark::NoPrefetch
    } else {
        Landmark::None
    };
    TocSummary {
        digest: idx.toc_digest.clone(),
        verified,
        offset: idx.footer.toc_offset,
        compressed_size: blob_size - idx.footer.toc_offset,
        entries: idx.toc.entries.len(),
        counts,
        landmark,
        prioritized_files,
        prioritized_bytes,
        prefetch_compressed_bytes: files.prefetch_end.map(Bytes),
    }
}

/// Counts over a layer's table, landmarks excluded.
pub fn counts(files: &LayerFiles) -> FileCounts {
    let mut c = FileCounts::default();
    let mut sizes: Vec<SizedPath> = Vec::new();
    for f in &files.files {
        if f.path == PREFETCH_LANDMARK || f.path == NO_PREFETCH_LANDMARK {
            continue;
        }
        match f.kind {
            FileKind::Reg => {
                c.files += 1;
                c.file_bytes = c.file_bytes.saturating_add(Bytes(f.size));
                c.chunks += f.chunks.len() as u64;
                sizes.push(SizedPath {
                    path: f.path.clone(),
                    size: f.size,
                });
            }
            FileKind::Dir => c.dirs += 1,
            FileKind::Symlink => c.symlinks += 1,
            FileKind::Hardlink => c.hardlinks += 1,
            FileKind::Other => c.other += 1,
        }
    }
    sizes.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    sizes.truncate(LARGEST);
    c.largest = sizes;
    c
}

/// What bounds and reports the scans of one inspection.
struct Scans {
    /// One permit per scan at work: `--jobs` of them.
    slots: tokio::sync::Semaphore,
    progress: ScanProgress,
}

/// A layer streamed through the scanner.
struct Scanned {
    summary: ScanSummary,
    files: LayerFiles,
    /// Bytes of the uncompressed tar.
    uncompressed_size: u64,
}

/// Stream a whole layer through the scanner (off the async workers), checking
/// its digest (the registry stream) and its diff_id (the config).
async fn scan_remote(
    layer: &Layer<'_>,
    diff_id: Option<&String>,
    scans: &Scans,
) -> anyhow::Result<Scanned> {
    let streaming = || format!("{}: streaming it for --scan", layer.context());
    // Held until the scan is done: at most `--jobs` layers decompress at once.
    let _slot = scans
        .slots
        .acquire()
        .await
        .context("the scan slots were closed (a bug)")?;
    let bar = scans.progress.layer(layer.index, &layer.digest, layer.size);
    let counted = bar.clone();
    let stream = layer
        .client
        .blob_stream(layer.image, layer.desc)
        .await
        .with_context(streaming)?;
    // The registry's own error (digest or size mismatch, broken connection)
    // is kept aside: through the io bridge it would become a vague read error.
    let failure: Arc<Mutex<Option<crate::registry::Error>>> = Arc::new(Mutex::new(None));
    let slot = failure.clone();
    let io_stream = stream.map(move |r| {
        if let Ok(chunk) = &r {
            counted.inc(chunk.len() as u64);
        }
        r.map_err(|e| {
            let msg = e.to_string();
            if let Ok(mut s) = slot.lock() {
                *s = Some(e);
            }
            std::io::Error::other(msg)
        })
    });
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(io_stream));
    let media_type = layer.media_type.clone();
    let d2 = layer.digest.clone();
    let scanned = tokio::task::spawn_blocking(move || scan_layer(&d2, &media_type, reader))
        .await
        .context("the layer scanner thread failed (a bug)")?;
    bar.finish_and_clear();
    let registry_failure = failure.lock().ok().and_then(|mut s| s.take());
    let scanned = match (scanned, registry_failure) {
        (_, Some(e)) => return Err(anyhow::Error::new(e)).with_context(streaming),
        (Err(e), None) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("{}: scanning it", layer.context()));
        }
        (Ok(s), None) => s,
    };
    if let Some(want) = diff_id
        && *want != scanned.diff_id
    {
        crate::bail_user!(
            "{}: its uncompressed tar has digest {} but the config's diff_ids[{}] is {want}: the image is corrupt",
            layer.context(),
            scanned.diff_id,
            layer.index
        );
    }
    Ok(Scanned {
        summary: ScanSummary {
            counts: counts(&scanned.files),
            diff_id: scanned.diff_id.clone(),
            bytes_streamed: scanned.files.blob_size,
        },
        files: scanned.files,
        uncompressed_size: scanned.uncompressed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::{FileEntry, FileKind, LayerFiles, LayerFormat};

    #[test]
    fn counts_of_a_hostile_toc_saturate_not_wrap() {
        let big = |p: &str| FileEntry {
            path: p.into(),
            kind: FileKind::Reg,
            size: u64::MAX,
            link: None,
            chunks: vec![],
        };
        let l = LayerFiles {
            digest: "sha256:x".into(),
            media_type: String::new(),
            blob_size: 0,
            uncompressed_size: u64::MAX,
            format: LayerFormat::Estargz,
            toc_digest: None,
            toc_offset: None,
            prefetch_end: None,
            no_prefetch: false,
            files: vec![big("a"), big("b")],
        };
        let c = counts(&l);
        assert_eq!((c.files, c.file_bytes), (2, Bytes(u64::MAX)));
    }
}
