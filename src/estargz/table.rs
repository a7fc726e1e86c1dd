//! The file table: what advisor knows about an image's files, per layer, with
//! the compressed extent of every payload chunk. Built from eStargz TOCs (or a
//! scan of a plain gzip layer), saved with `image inspect --toc-out`, bundled
//! for the embedded example, and joined with traces by `trace` and `predict`.
//!
//! Owns the table's shape, its JSON form (versioned) and the overlay view
//! (upper layers shadow lower ones; whiteouts delete). Does not fetch anything.
use super::toc::{EntryType, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, Toc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Version of the file-table JSON written by `--toc-out`.
pub const FILE_TABLE_VERSION: u32 = 1;

/// Largest compressed layer a table may describe: 1 TiB. The fetch simulator
/// keeps one bit per 50,000-byte block of every blob (2.7 MiB for 1 TiB), so
/// a larger, made-up `blob_size` would make it allocate without bound.
pub const MAX_BLOB_SIZE: u64 = 1 << 40;

/// Largest uncompressed size of a table's files, all layers together: 1 PiB.
/// Bounds every size and total so sums of them never wrap a `u64`.
pub const MAX_IMAGE_UNCOMPRESSED: u64 = 1 << 50;

/// The totals of a table that passed [`ImageFiles::check`]: checked sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableTotals {
    /// Sum of the layers' `blob_size`.
    pub compressed: u64,
    /// Sum of the layers' regular file sizes (each equal to the layer's
    /// `uncompressed_size`).
    pub uncompressed: u64,
}

/// An image's files, layer by layer (bottom first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFiles {
    pub version: u32,
    /// The reference it was read from.
    pub reference: String,
    /// Digest of the platform manifest.
    pub manifest_digest: String,
    pub layers: Vec<LayerFiles>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerFormat {
    /// eStargz with the 51-byte footer.
    Estargz,
    /// Legacy stargz (47-byte footer).
    LegacyStargz,
    /// A plain gzip tar (table from a scan; no chunk offsets).
    Gzip,
    Zstd,
    Uncompressed,
    Other,
}

impl LayerFormat {
    /// Whether the stargz snapshotter can mount this layer lazily.
    pub fn is_lazy(self) -> bool {
        matches!(self, LayerFormat::Estargz | LayerFormat::LegacyStargz)
    }

    /// Its name in a table cell: `eStargz`, `gzip`, `tar`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            LayerFormat::Estargz => "eStargz",
            LayerFormat::LegacyStargz => "legacy stargz",
            LayerFormat::Gzip => "gzip",
            LayerFormat::Zstd => "zstd",
            LayerFormat::Uncompressed => "tar",
            LayerFormat::Other => "other",
        }
    }

    /// It in a sentence, after "the layer is": `gzip`, `an uncompressed tar`,
    /// `of an unknown format`.
    pub fn described(self) -> &'static str {
        match self {
            LayerFormat::Uncompressed => "an uncompressed tar",
            LayerFormat::Other => "of an unknown format",
            f => f.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFiles {
    /// Digest of the compressed blob.
    pub digest: String,
    pub media_type: String,
    /// Compressed blob size.
    pub blob_size: u64,
    /// Sum of regular file sizes.
    pub uncompressed_size: u64,
    pub format: LayerFormat,
    /// sha256 of the uncompressed TOC JSON (eStargz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toc_digest: Option<String>,
    /// Compressed offset of the TOC's gzip member (eStargz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toc_offset: Option<u64>,
    /// End of the prioritized range `[0, prefetch_end)` from `.prefetch.landmark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefetch_end: Option<u64>,
    /// The layer carries `.no.prefetch.landmark`.
    #[serde(default)]
    pub no_prefetch: bool,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Reg,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the image, relative, no leading `./` or `/`, no trailing `/`.
    pub path: String,
    pub kind: FileKind,
    #[serde(default)]
    pub size: u64,
    /// Target of a symlink or hardlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Payload chunks in file order (eStargz `reg` + `chunk` entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Chunk>,
}

/// One eStargz chunk: an uncompressed range of a file and the compressed
/// extent `[compressed_offset, compressed_end)` of the gzip member holding it
/// (the end is the next member's start, or the blob's end for the last one,
/// as the stargz library computes `nextOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub offset: u64,
    pub size: u64,
    pub compressed_offset: u64,
    pub compressed_end: u64,
}

impl Chunk {
    pub fn compressed_len(&self) -> u64 {
        self.compressed_end.saturating_sub(self.compressed_offset)
    }

    /// The compressed bytes of this chunk that a decompressor decodes symbol
    /// by symbol: its member's length when the data is barely compressible yet
    /// Huffman-coded — the member smaller than the chunk (stored deflate
    /// blocks, which compressors choose for incompressible data and which
    /// decompress as a copy, never are) but at least half its size (model
    /// weights, NumPy arrays: nearly every symbol a literal). 0 otherwise:
    /// stored data, and compressible data, whose decoding the expansion
    /// (`size − compressed_len`) prices.
    pub fn coded_len(&self) -> u64 {
        let len = self.compressed_len();
        if len < self.size && 2 * len >= self.size {
            len
        } else {
            0
        }
    }
}

/// Normalize a tar/TOC path: strip `./` and `/` prefixes and trailing `/`.
/// Returns None for paths that escape the root (`..` components) — callers
/// reject those with an error naming the layer.
pub fn normalize_path(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for comp in name.split('/') {
        match comp {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl LayerFiles {
    /// Build a layer's table from a parsed (already validated) TOC.
    ///
    /// `blob_size` bounds the last payload's compressed extent.
    pub fn from_toc(
        digest: &str,
        media_type: &str,
        blob_size: u64,
        format: LayerFormat,
        toc: &Toc,
        toc_digest: Option<String>,
        toc_offset: Option<u64>,
    ) -> Self {
        // nextOffset as the stargz library computes it: walking backwards, a
        // data entry's extent ends at the next entry with a non-zero offset.
        let n = toc.entries.len();
        let mut next_offset = vec![blob_size; n];
        let mut last = blob_size;
        for i in (0..n).rev() {
            next_offset[i] = last;
            if toc.entries[i].offset != 0 {
                last = toc.entries[i].offset;
            }
        }
        let mut files: Vec<FileEntry> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut prefetch_end = None;
        let mut no_prefetch = false;
        for (i, e) in toc.entries.iter().enumerate() {
            let Some(path) = normalize_path(&e.name) else {
                continue;
            };
            match e.kind {
                EntryType::Chunk => {
                    if let Some(&fi) = index.get(&path) {
                        let f = &mut files[fi];
                        let size = if e.chunk_size == 0 {
                            f.size.saturating_sub(e.chunk_offset)
                        } else {
                            e.chunk_size
                        };
                        f.chunks.push(Chunk {
                            offset: e.chunk_offset,
                            size,
                            compressed_offset: e.offset,
                            compressed_end: next_offset[i],
                        });
                    }
                    continue;
                }
                EntryType::Reg => {
                    if path == PREFETCH_LANDMARK {
                        prefetch_end = Some(e.offset);
                    } else if path == NO_PREFETCH_LANDMARK {
                        no_prefetch = true;
                    }
                }
                _ => {}
            }
            let kind = match e.kind {
                EntryType::Reg => FileKind::Reg,
                EntryType::Dir => FileKind::Dir,
                EntryType::Symlink => FileKind::Symlink,
                EntryType::Hardlink => FileKind::Hardlink,
                _ => FileKind::Other,
            };
            let mut chunks = Vec::new();
            if e.kind == EntryType::Reg && e.size > 0 {
                let size = if e.chunk_size == 0 {
                    e.size
                } else {
                    e.chunk_size
                };
                chunks.push(Chunk {
                    offset: 0,
                    size,
                    compressed_offset: e.offset,
                    compressed_end: next_offset[i],
                });
            }
            let link = (!e.link_name.is_empty()).then(|| e.link_name.clone());
            index.insert(path.clone(), files.len());
            files.push(FileEntry {
                path,
                kind,
                size: if kind == FileKind::Reg { e.size } else { 0 },
                link,
                chunks,
            });
        }
        let uncompressed_size = files
            .iter()
            .filter(|f| f.kind == FileKind::Reg)
            .map(|f| f.size)
            // A TOC's sizes are the registry's word: `check` rejects a total
            // this saturates.
            .fold(0u64, u64::saturating_add);
        LayerFiles {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            blob_size,
            uncompressed_size,
            format,
            toc_digest,
            toc_offset,
            prefetch_end,
            no_prefetch,
            files,
        }
    }
}

fn too_big(what: String) -> String {
    format!(
        "{what} add up to more than the {} advisor models",
        crate::units::Bytes(MAX_IMAGE_UNCOMPRESSED)
    )
}

/// One file of [`ImageFiles::check`]: a clean path, a size within bounds,
/// chunks in order and inside the file and the blob (checked ends).
fn check_file(l: &LayerFiles, f: &FileEntry) -> Result<(), String> {
    let d = &l.digest;
    // The root directory (`./` in a TOC) is the one entry with an empty path.
    let root_dir = f.path.is_empty() && f.kind == FileKind::Dir;
    if normalize_path(&f.path).as_deref() != Some(f.path.as_str())
        || (f.path.is_empty() && !root_dir)
    {
        return Err(format!(
            "layer {d}: path `{}` is not a clean relative path (escapes the root or is not \
             normalized)",
            f.path
        ));
    }
    if f.size > MAX_IMAGE_UNCOMPRESSED {
        return Err(format!(
            "layer {d}: file `{}` size {} is larger than the {} advisor models",
            f.path,
            f.size,
            crate::units::Bytes(MAX_IMAGE_UNCOMPRESSED)
        ));
    }
    let mut prev_end = 0u64;
    for (i, c) in f.chunks.iter().enumerate() {
        if c.compressed_offset > c.compressed_end || c.compressed_end > l.blob_size {
            return Err(format!(
                "layer {d}: file `{}` chunk {i}: compressed extent [{}, {}) is outside the \
                 blob ({} bytes)",
                f.path, c.compressed_offset, c.compressed_end, l.blob_size
            ));
        }
        let end = c.offset.checked_add(c.size);
        let inside = end.is_some_and(|e| {
            e <= MAX_IMAGE_UNCOMPRESSED && (f.kind != FileKind::Reg || e <= f.size)
        });
        if c.offset < prev_end || !inside {
            let end = end.map_or_else(|| "past 2^64".to_string(), |e| e.to_string());
            return Err(format!(
                "layer {d}: file `{}` chunk {i}: uncompressed range [{}, {end}) overlaps the \
                 previous chunk or passes the file size {}",
                f.path, c.offset, f.size
            ));
        }
        prev_end = c.offset + c.size;
    }
    Ok(())
}

/// Where a path of the merged (overlay) view lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRef {
    pub layer: usize,
    pub file: usize,
}

impl ImageFiles {
    /// Check a table from outside the process (a saved JSON, a registry's
    /// TOCs) before anything sizes an allocation or a total from it: paths
    /// stay inside the image; chunks are in order, inside their file and
    /// their blob; sizes are within [`MAX_BLOB_SIZE`] and
    /// [`MAX_IMAGE_UNCOMPRESSED`]; each layer's `uncompressed_size` is the sum
    /// of its regular files. Every sum is checked, so none wraps. The error
    /// names the layer, the file and the chunk, not the table's origin.
    pub fn check(&self) -> Result<TableTotals, String> {
        let mut totals = TableTotals {
            compressed: 0,
            uncompressed: 0,
        };
        for l in &self.layers {
            let d = &l.digest;
            if l.blob_size > MAX_BLOB_SIZE {
                return Err(format!(
                    "layer {d}: blob_size {} is larger than the {} layer advisor models",
                    l.blob_size,
                    crate::units::Bytes(MAX_BLOB_SIZE)
                ));
            }
            for (what, v) in [
                ("toc_offset", l.toc_offset),
                ("prefetch_end", l.prefetch_end),
            ] {
                if let Some(v) = v.filter(|&v| v > l.blob_size) {
                    return Err(format!(
                        "layer {d}: {what} {v} is past the end of the blob ({} bytes)",
                        l.blob_size
                    ));
                }
            }
            let mut reg_total = 0u64;
            for f in &l.files {
                check_file(l, f)?;
                if f.kind == FileKind::Reg {
                    reg_total = reg_total
                        .checked_add(f.size)
                        .filter(|&t| t <= MAX_IMAGE_UNCOMPRESSED)
                        .ok_or_else(|| too_big(format!("layer {d}: its regular files")))?;
                }
            }
            if l.uncompressed_size != reg_total {
                return Err(format!(
                    "layer {d}: uncompressed_size {} is not the sum of its regular files' \
                     sizes ({reg_total})",
                    l.uncompressed_size
                ));
            }
            totals.compressed = totals
                .compressed
                .checked_add(l.blob_size)
                .ok_or_else(|| too_big("the layers' blob sizes".into()))?;
            totals.uncompressed = totals
                .uncompressed
                .checked_add(reg_total)
                .filter(|&t| t <= MAX_IMAGE_UNCOMPRESSED)
                .ok_or_else(|| too_big("the image's regular files".into()))?;
        }
        Ok(totals)
    }

    /// Total compressed bytes of all layers.
    pub fn compressed_size(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.blob_size)
            .fold(0, u64::saturating_add)
    }

    /// Total uncompressed bytes of regular files over all layers.
    pub fn uncompressed_size(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.uncompressed_size)
            .fold(0, u64::saturating_add)
    }

    /// The merged view a container sees: path → the topmost layer's entry.
    /// Whiteouts (`.wh.NAME`) hide NAME and everything under it from lower
    /// layers; opaque markers (`.wh..wh..opq`) hide a directory's lower content.
    pub fn merged(&self) -> rustc_hash::FxHashMap<&str, FileRef> {
        let mut view: rustc_hash::FxHashMap<&str, FileRef> = rustc_hash::FxHashMap::default();
        for (li, layer) in self.layers.iter().enumerate() {
            let mut hidden_dirs: Vec<String> = Vec::new();
            for f in &layer.files {
                let (dir, base) = match f.path.rsplit_once('/') {
                    Some((d, b)) => (d, b),
                    None => ("", f.path.as_str()),
                };
                if base == ".wh..wh..opq" {
                    hidden_dirs.push(if dir.is_empty() {
                        String::new()
                    } else {
                        format!("{dir}/")
                    });
                } else if let Some(target) = base.strip_prefix(".wh.") {
                    let t = if dir.is_empty() {
                        target.to_string()
                    } else {
                        format!("{dir}/{target}")
                    };
                    hidden_dirs.push(format!("{t}/"));
                    view.remove(t.as_str());
                }
            }
            if !hidden_dirs.is_empty() {
                view.retain(|p, r| {
                    r.layer == li || !hidden_dirs.iter().any(|d| p.starts_with(d.as_str()))
                });
            }
            for (fi, f) in layer.files.iter().enumerate() {
                let base = f.path.rsplit('/').next().unwrap_or("");
                if base.starts_with(".wh.") {
                    continue;
                }
                view.insert(
                    f.path.as_str(),
                    FileRef {
                        layer: li,
                        file: fi,
                    },
                );
            }
        }
        view
    }

    pub fn file(&self, r: FileRef) -> &FileEntry {
        &self.layers[r.layer].files[r.file]
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::{entry, image, layer};
    use super::*;
    use crate::estargz::toc::{EntryType, Toc, TocEntry};

    #[test]
    fn only_members_smaller_than_their_chunk_count_as_coded() {
        let c = |size: u64, len: u64| Chunk {
            offset: 0,
            size,
            compressed_offset: 100,
            compressed_end: 100 + len,
        };
        assert_eq!(c(1000, 960).coded_len(), 960, "barely compressible, coded");
        assert_eq!(c(1000, 500).coded_len(), 500, "half");
        assert_eq!(c(1000, 300).coded_len(), 0, "text: priced by its expansion");
        assert_eq!(c(1000, 1000).coded_len(), 0, "stored");
        assert_eq!(c(1000, 1040).coded_len(), 0, "stored with headers");
        assert_eq!(c(0, 20).coded_len(), 0, "empty");
    }

    #[test]
    fn a_format_has_a_table_name_and_words_for_a_sentence() {
        let all = [
            LayerFormat::Estargz,
            LayerFormat::LegacyStargz,
            LayerFormat::Gzip,
            LayerFormat::Zstd,
            LayerFormat::Uncompressed,
            LayerFormat::Other,
        ];
        let names: Vec<_> = all.iter().map(|f| f.name()).collect();
        let said: Vec<_> = all.iter().map(|f| f.described()).collect();
        assert_eq!(
            names,
            ["eStargz", "legacy stargz", "gzip", "zstd", "tar", "other"]
        );
        assert_eq!(
            said,
            [
                "eStargz",
                "legacy stargz",
                "gzip",
                "zstd",
                "an uncompressed tar",
                "of an unknown format"
            ]
        );
    }

    fn reg(name: &str, size: u64, offset: u64) -> TocEntry {
        let mut e = TocEntry::new(name, EntryType::Reg);
        e.size = size;
        e.offset = offset;
        e
    }

    fn chunk(name: &str, chunk_offset: u64, chunk_size: u64, offset: u64) -> TocEntry {
        let mut e = TocEntry::new(name, EntryType::Chunk);
        e.chunk_offset = chunk_offset;
        e.chunk_size = chunk_size;
        e.offset = offset;
        e
    }

    #[test]
    fn normalize_strips_prefixes_and_rejects_escapes() {
        assert_eq!(normalize_path("./bin/sh").as_deref(), Some("bin/sh"));
        assert_eq!(normalize_path("/etc/").as_deref(), Some("etc"));
        assert_eq!(normalize_path("a/./b").as_deref(), Some("a/b"));
        assert_eq!(normalize_path("../etc/passwd"), None);
        assert_eq!(normalize_path("a/../../b"), None);
    }

    #[test]
    fn chunk_extents_end_at_the_next_member_or_the_blob_end() {
        let mut big = reg("data/big", 10, 100);
        big.chunk_size = 4;
        let toc = Toc {
            version: 1,
            entries: vec![
                TocEntry::new("data/", EntryType::Dir),
                big,
                chunk("data/big", 4, 4, 150),
                chunk("data/big", 8, 0, 190),
                reg("data/small", 3, 230),
                reg("data/empty", 0, 0),
            ],
        };
        let l = LayerFiles::from_toc(
            "sha256:x",
            "m",
            300,
            LayerFormat::Estargz,
            &toc,
            None,
            Some(260),
        );
        let big = &l.files[1];
        assert_eq!(big.chunks.len(), 3);
        assert_eq!(
            (
                big.chunks[0].compressed_offset,
                big.chunks[0].compressed_end
            ),
            (100, 150)
        );
        assert_eq!(
            (
                big.chunks[1].compressed_offset,
                big.chunks[1].compressed_end
            ),
            (150, 190)
        );
        assert_eq!((big.chunks[2].offset, big.chunks[2].size), (8, 2));
        assert_eq!(big.chunks[2].compressed_end, 230);
        let small = &l.files[2];
        assert_eq!(
            small.chunks[0].compressed_end, 300,
            "last payload ends at the blob end"
        );
        assert!(l.files[3].chunks.is_empty());
        assert_eq!(l.uncompressed_size, 13);
    }

    #[test]
    fn merged_view_applies_whiteouts_and_opaque_dirs() {
        let layer = |files: Vec<(&str, FileKind)>| {
            let files = files.into_iter().map(|(p, k)| entry(p, k, 1, None));
            layer(files.collect())
        };
        let img = image(vec![
            layer(vec![
                ("a", FileKind::Dir),
                ("a/x", FileKind::Reg),
                ("b", FileKind::Dir),
                ("b/y", FileKind::Reg),
                ("c", FileKind::Reg),
            ]),
            layer(vec![
                ("a/.wh..wh..opq", FileKind::Reg),
                ("a/z", FileKind::Reg),
                ("b/.wh.y", FileKind::Reg),
                ("c", FileKind::Reg),
            ]),
        ]);
        let m = img.merged();
        assert!(!m.contains_key("a/x"), "opaque dir hides lower content");
        assert_eq!(m["a/z"].layer, 1);
        assert!(!m.contains_key("b/y"), "whiteout hides the file");
        assert_eq!(m["c"].layer, 1, "upper layer shadows lower");
        assert!(!m.keys().any(|k| k.contains(".wh.")));
    }
}
