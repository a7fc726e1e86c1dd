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
use crate::estargz::footer::{FOOTER_SIZE, parse_footer};
use crate::estargz::reader::{
    MAX_TOC_JSON_SIZE, detect_format, parse_index, scan_layer, toc_member_in_tail,
};
use crate::estargz::table::{FILE_TABLE_VERSION, FileKind, ImageFiles, LayerFiles, LayerFormat};
use crate::estargz::toc::{
    NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION,
};
use crate::registry::{RegistryClient, RegistryStats, ResolvedImage};
use anyhow::Context;
use futures_util::StreamExt;
use oci_spec::image::Descriptor;
use serde::Serialize;
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
const CONCURRENCY: usize = 4;
/// Files listed as the largest of a layer.
const LARGEST: usize = 5;

/// What to do beyond the ranged reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectOptions {
    /// Stream each gzip or uncompressed (non-eStargz) layer once to build its file table.
    pub scan: bool,
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
    pub metadata_bytes: u64,
    pub metadata_requests: u64,
    /// Ranged reads of layer blobs (footers, TOCs, heads).
    pub ranged_bytes: u64,
    pub ranged_requests: u64,
    /// Whole-blob streams of `--scan`.
    pub scan_bytes: u64,
    pub scan_requests: u64,
    /// Every body byte received and every request sent, retries included.
    pub total_bytes: u64,
    pub total_requests: u64,
    /// The budget of the ranged reads: metadata + Σ (TOC member + 64 KiB).
    pub budget_bytes: u64,
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
    pub ranged_bytes: u64,
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
    pub prioritized_bytes: u64,
    /// Compressed bytes the snapshotter prefetches at mount: `[0, landmark offset)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch_compressed_bytes: Option<u64>,
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
    pub file_bytes: u64,
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
            .map(|(i, d)| inspect_layer(client, &image, i, d, diff_ids.get(i), opts)),
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
    let ranged_bytes: u64 = layers.iter().map(|l| l.ranged_bytes).sum();
    let ranged_requests: u64 = layers.iter().map(|l| l.ranged_requests).sum();
    let scan_bytes: u64 = layers
        .iter()
        .filter_map(|l| l.scan.as_ref())
        .map(|s| s.bytes_streamed)
        .sum();
    let scan_requests = layers.iter().filter(|l| l.scan.is_some()).count() as u64;
    let budget_bytes = meta.bytes_received
        + layers
            .iter()
            .map(|l| l.toc.as_ref().map_or(0, |t| t.compressed_size) + LAYER_BUDGET)
            .sum::<u64>();
    Fetched {
        metadata_bytes: meta.bytes_received,
        metadata_requests: meta.requests,
        ranged_bytes,
        ranged_requests,
        scan_bytes,
        scan_requests,
        total_bytes: total.bytes_received,
        total_requests: total.requests,
        budget_bytes,
        within_budget: meta.bytes_received + ranged_bytes <= budget_bytes,
    }
}

/// Names a layer in errors: its position and digest.
fn layer_label(index: usize, digest: &str) -> String {
    format!("layer {index} ({digest})")
}

async fn inspect_layer(
    client: &RegistryClient,
    image: &ResolvedImage,
    index: usize,
    desc: &Descriptor,
    diff_id: Option<&String>,
    opts: InspectOptions,
) -> anyhow::Result<LayerInspection> {
    let digest = desc.digest().to_string();
    let media_type = desc.media_type().to_string();
    let size = desc.size();
    let label = layer_label(index, &digest);
    let annotation = |k: &str| desc.annotations().as_ref().and_then(|a| a.get(k)).cloned();
    let toc_annotation = annotation(TOC_DIGEST_ANNOTATION);
    let uncompressed_annotation = annotation(UNCOMPRESSED_SIZE_ANNOTATION)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                crate::error::user(format!(
                    "{label} of {}: annotation {UNCOMPRESSED_SIZE_ANNOTATION} is `{v}`, not a byte count",
                    image.reference
                ))
            })
        })
        .transpose()?;
    let mut out = LayerInspection {
        index,
        digest: digest.clone(),
        media_type: media_type.clone(),
        compressed_size: size,
        uncompressed_size: uncompressed_annotation,
        format: LayerFormat::Other,
        toc: None,
        scan: None,
        ranged_bytes: 0,
        ranged_requests: 0,
        note: None,
        files: None,
    };
    let ctx = || format!("{label} of {}", image.reference);

    let tail_start = size.saturating_sub(TAIL_READ);
    let tail = client
        .fetch_range(image, &digest, tail_start..size)
        .await
        .with_context(ctx)?;
    out.ranged_bytes += tail.len() as u64;
    out.ranged_requests += u64::from(!tail.is_empty());

    // A layer that says it is eStargz (the annotation, or `STARGZ` in its last
    // bytes) must have a readable footer; without either it is another format.
    let last = &tail[tail.len().saturating_sub(FOOTER_SIZE as usize)..];
    let claims_estargz = toc_annotation.is_some() || last.windows(6).any(|w| w == b"STARGZ");
    match parse_footer(&digest, &tail, size) {
        Ok(footer) => {
            let range = footer.toc_range(size);
            if range.end - range.start > MAX_TOC_JSON_SIZE {
                return Err(crate::estargz::Error::new(
                    digest.clone(),
                    crate::estargz::ErrorKind::TocTooLarge {
                        size: range.end - range.start,
                        limit: MAX_TOC_JSON_SIZE,
                    },
                ))
                .with_context(ctx);
            }
            let member = match toc_member_in_tail(&footer, &tail, size) {
                Some(m) => m.to_vec(),
                None => {
                    // Only the front of the TOC member that the tail missed.
                    let front = client
                        .fetch_range(image, &digest, range.start..tail_start)
                        .await
                        .with_context(ctx)?;
                    out.ranged_bytes += front.len() as u64;
                    out.ranged_requests += 1;
                    let in_tail = (range.end - tail_start) as usize;
                    let mut m = front;
                    m.extend_from_slice(&tail[..in_tail]);
                    m
                }
            };
            let idx = parse_index(&digest, footer, &member, toc_annotation.as_deref())
                .with_context(ctx)?;
            let files = idx.layer_files(&digest, &media_type, size);
            out.format = files.format;
            out.toc = Some(toc_summary(&idx, &files, toc_annotation.is_some(), size));
            if toc_annotation.is_none() {
                out.note = Some(format!(
                    "no {TOC_DIGEST_ANNOTATION} annotation: the stargz snapshotter will not mount it lazily (verification fails)"
                ));
            }
            out.files = Some(files);
        }
        Err(e) if claims_estargz => {
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!(
                    "{}: it claims to be eStargz ({}) but its footer is unreadable",
                    ctx(),
                    if toc_annotation.is_some() {
                        "toc.digest annotation"
                    } else {
                        "`STARGZ` at its end"
                    }
                )
            });
        }
        Err(_) => {
            let head = if tail_start == 0 {
                tail[..tail.len().min(HEAD_READ as usize)].to_vec()
            } else {
                let h = client
                    .fetch_range(image, &digest, 0..HEAD_READ.min(size))
                    .await
                    .with_context(ctx)?;
                out.ranged_bytes += h.len() as u64;
                out.ranged_requests += 1;
                h
            };
            out.format = detect_format(&head, &tail, size);
            if opts.scan && matches!(out.format, LayerFormat::Gzip | LayerFormat::Uncompressed) {
                let (scan, files, uncompressed) =
                    scan_remote(client, image, desc, index, diff_id).await?;
                out.uncompressed_size = Some(uncompressed);
                out.scan = Some(scan);
                out.files = Some(files);
            } else {
                out.note = Some(match out.format {
                    LayerFormat::Gzip | LayerFormat::Uncompressed => {
                        "not eStargz: no TOC (eager pull only); --scan streams it once to list its files".into()
                    }
                    LayerFormat::Zstd => {
                        "zstd: not eStargz, and advisor cannot scan zstd layers".into()
                    }
                    _ => "unknown format: neither eStargz, gzip, zstd nor tar".into(),
                });
            }
        }
    }
    Ok(out)
}

fn toc_summary(
    idx: &crate::estargz::reader::Index,
    files: &LayerFiles,
    verified: bool,
    blob_size: u64,
) -> TocSummary {
    let counts = counts(files);
    let mut prioritized_files = 0;
    let mut prioritized_bytes = 0u64;
    let landmark = if files.prefetch_end.is_some() {
        for f in &files.files {
            if f.path == PREFETCH_LANDMARK {
                break;
            }
            if f.kind == FileKind::Reg {
                prioritized_files += 1;
                // TOC sizes are the registry's word: saturate, never wrap.
                prioritized_bytes = prioritized_bytes.saturating_add(f.size);
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
        prefetch_compressed_bytes: files.prefetch_end,
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
                c.file_bytes = c.file_bytes.saturating_add(f.size);
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

/// Stream a whole layer through the scanner (off the async workers), checking
/// its digest (the registry stream) and its diff_id (the config).
async fn scan_remote(
    client: &RegistryClient,
    image: &ResolvedImage,
    desc: &Descriptor,
    index: usize,
    diff_id: Option<&String>,
) -> anyhow::Result<(ScanSummary, LayerFiles, u64)> {
    let digest = desc.digest().to_string();
    let label = layer_label(index, &digest);
    let stream = client
        .blob_stream(image, desc)
        .await
        .with_context(|| format!("{label} of {}: streaming it for --scan", image.reference))?;
    // The registry's own error (digest or size mismatch, broken connection)
    // is kept aside: through the io bridge it would become a vague read error.
    let failure: Arc<Mutex<Option<crate::registry::Error>>> = Arc::new(Mutex::new(None));
    let slot = failure.clone();
    let io_stream = stream.map(move |r| {
        r.map_err(|e| {
            let msg = e.to_string();
            if let Ok(mut s) = slot.lock() {
                *s = Some(e);
            }
            std::io::Error::other(msg)
        })
    });
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(io_stream));
    let media_type = desc.media_type().to_string();
    let d2 = digest.clone();
    let scanned = tokio::task::spawn_blocking(move || scan_layer(&d2, &media_type, reader))
        .await
        .context("the layer scanner thread failed (a bug)")?;
    let registry_failure = failure.lock().ok().and_then(|mut s| s.take());
    let scanned = match (scanned, registry_failure) {
        (_, Some(e)) => {
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!("{label} of {}: streaming it for --scan", image.reference)
            });
        }
        (Err(e), None) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("{label} of {}: scanning it", image.reference));
        }
        (Ok(s), None) => s,
    };
    if let Some(want) = diff_id
        && *want != scanned.diff_id
    {
        crate::bail_user!(
            "{label} of {}: its uncompressed tar has digest {} but the config's diff_ids[{index}] is {want}: the image is corrupt",
            image.reference,
            scanned.diff_id
        );
    }
    let summary = ScanSummary {
        counts: counts(&scanned.files),
        diff_id: scanned.diff_id.clone(),
        bytes_streamed: scanned.files.blob_size,
    };
    Ok((summary, scanned.files, scanned.uncompressed_size))
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
        assert_eq!((c.files, c.file_bytes), (2, u64::MAX));
    }
}
