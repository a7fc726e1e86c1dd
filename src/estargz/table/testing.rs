//! Test support: file tables built in a line, for the unit tests of every
//! stage that reads one (`image(vec![layer(vec![reg("a", 4)])])`).
//!
//! Owns the defaults a test does not care about (empty digests, an eStargz
//! layer without landmarks, `version` 1); a test that cares sets the field
//! with struct update syntax (`LayerFiles { blob_size: 1000, ..layer(files) }`).
//! Compiled for tests only; checks nothing ([`ImageFiles::check`] is the check).
use super::{Chunk, FileEntry, FileKind, ImageFiles, LayerFiles, LayerFormat};

/// An image of these layers (bottom first), no reference or manifest digest.
pub fn image(layers: Vec<LayerFiles>) -> ImageFiles {
    ImageFiles {
        version: 1,
        reference: String::new(),
        manifest_digest: String::new(),
        layers,
    }
}

/// An eStargz layer of these files; digest, media type and sizes empty or 0.
pub fn layer(files: Vec<FileEntry>) -> LayerFiles {
    LayerFiles {
        digest: String::new(),
        media_type: String::new(),
        blob_size: 0,
        uncompressed_size: 0,
        format: LayerFormat::Estargz,
        toc_digest: None,
        toc_offset: None,
        prefetch_end: None,
        no_prefetch: false,
        files,
    }
}

/// An entry of any kind, without chunks.
pub fn entry(path: &str, kind: FileKind, size: u64, link: Option<&str>) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind,
        size,
        link: link.map(str::to_string),
        chunks: vec![],
    }
}

/// A regular file without chunks.
pub fn reg(path: &str, size: u64) -> FileEntry {
    entry(path, FileKind::Reg, size, None)
}

/// A regular file of chunks given as (uncompressed size, compressed offset,
/// compressed end); chunk offsets and the file's size follow from the sizes.
pub fn chunked(path: &str, chunks: &[(u64, u64, u64)]) -> FileEntry {
    let mut offset = 0;
    let chunks = chunks
        .iter()
        .map(|&(size, compressed_offset, compressed_end)| {
            let c = Chunk {
                offset,
                size,
                compressed_offset,
                compressed_end,
            };
            offset += size;
            c
        })
        .collect();
    FileEntry {
        chunks,
        ..reg(path, offset)
    }
}
