//! Where an image's file table comes from: a saved table (`--files FILE`,
//! written by `image inspect --toc-out`) or an image reference read from its
//! registry (`--image REF`: TOCs with ranged GETs, see `inspect`).
//!
//! Owns the one function every command uses to obtain a table
//! ([`load_image_files`]: `trace`, `advise`) and the checks a saved table must
//! pass. Does not interpret traces or predict.
use super::inspect::{InspectOptions, inspect};
use crate::cli::GlobalArgs;
use crate::estargz::table::{FILE_TABLE_VERSION, FileKind, ImageFiles, normalize_path};
use crate::printer::Printer;
use crate::registry::{RegistryClient, RegistryOptions};
use crate::units::Bytes;
use anyhow::Context;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Where an image's file table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A file table JSON (`image inspect --toc-out`).
    Files(PathBuf),
    /// An image reference, read from its registry.
    Reference(String),
}

/// The one place an image's file table is obtained. For a reference, every
/// layer must be eStargz (its TOC is read with ranged GETs, verified against
/// the layer's annotation); a note on stderr says what that cost.
pub async fn load_image_files(
    src: &ImageSource,
    global: &GlobalArgs,
) -> anyhow::Result<ImageFiles> {
    match src {
        ImageSource::Files(path) => read_file_table(path),
        ImageSource::Reference(r) => {
            let client = RegistryClient::new(RegistryOptions::from_global(global))?;
            let insp = inspect(&client, r, InspectOptions::default()).await?;
            let printer = Printer::new(global.format, global.quiet, global.verbose);
            let files = match insp.image_files() {
                Ok(f) => f,
                Err(missing) => {
                    let list: Vec<String> = missing
                        .iter()
                        .map(|l| {
                            format!(
                                "layer {} ({}) is {}",
                                l.index,
                                l.digest,
                                format_name(l.format)
                            )
                        })
                        .collect();
                    crate::bail_user!(
                        "--image {r}: {}, not eStargz, so there is no TOC to read; use the image's \
                         eStargz form (`advisor image build` pushes it as TAG-esgz), or save a table \
                         with `advisor image inspect {r} --scan --toc-out FILE` and pass --files FILE",
                        list.join(", ")
                    )
                }
            };
            printer.note(&format!(
                "read {} layer TOC(s) of {r}: {} in {} request(s) (manifest and config included)",
                files.layers.len(),
                Bytes(insp.fetched.total_bytes),
                insp.fetched.total_requests
            ));
            Ok(files)
        }
    }
}

fn format_name(f: crate::estargz::table::LayerFormat) -> &'static str {
    use crate::estargz::table::LayerFormat as F;
    match f {
        F::Estargz => "eStargz",
        F::LegacyStargz => "legacy stargz",
        F::Gzip => "gzip",
        F::Zstd => "zstd",
        F::Uncompressed => "an uncompressed tar",
        F::Other => "of an unknown format",
    }
}

/// Read and check a file-table JSON: version, layer extents, chunk order,
/// and paths that stay inside the image.
pub fn read_file_table(path: &Path) -> anyhow::Result<ImageFiles> {
    let name = path.display();
    let f =
        std::fs::File::open(path).with_context(|| format!("{name}: cannot open the file table"))?;
    parse_file_table(BufReader::new(f), &name.to_string())
}

/// Parse and check a file-table JSON read from `input`; `name` names it in
/// errors. The checks of [`read_file_table`], for callers that hold the bytes.
pub fn parse_file_table(input: impl std::io::Read, name: &str) -> anyhow::Result<ImageFiles> {
    let files: ImageFiles = serde_json::from_reader(input).map_err(|e| {
        crate::error::user(format!(
            "{name}: not a file table ({e}); create one with `advisor image inspect REF --toc-out FILE`"
        ))
    })?;
    if files.version != FILE_TABLE_VERSION {
        crate::bail_user!(
            "{name}: file table version {} is not supported; this advisor reads version \
             {FILE_TABLE_VERSION} (re-create it with `advisor image inspect --toc-out`)",
            files.version
        );
    }
    for l in &files.layers {
        for f in &l.files {
            // The root directory (`./` in a TOC) is the one entry with an empty path.
            let root_dir = f.path.is_empty() && f.kind == FileKind::Dir;
            if normalize_path(&f.path).as_deref() != Some(f.path.as_str())
                || (f.path.is_empty() && !root_dir)
            {
                crate::bail_user!(
                    "{name}: layer {}: path `{}` is not a clean relative path (escapes the root or \
                     is not normalized)",
                    l.digest,
                    f.path
                );
            }
            let mut prev_end = 0u64;
            for (i, c) in f.chunks.iter().enumerate() {
                if c.compressed_offset > c.compressed_end || c.compressed_end > l.blob_size {
                    crate::bail_user!(
                        "{name}: layer {}: file `{}` chunk {i}: compressed extent [{}, {}) is \
                         outside the blob ({} bytes)",
                        l.digest,
                        f.path,
                        c.compressed_offset,
                        c.compressed_end,
                        l.blob_size
                    );
                }
                if c.offset < prev_end || (f.kind == FileKind::Reg && c.offset + c.size > f.size) {
                    crate::bail_user!(
                        "{name}: layer {}: file `{}` chunk {i}: uncompressed range [{}, {}) \
                         overlaps the previous chunk or passes the file size {}",
                        l.digest,
                        f.path,
                        c.offset,
                        c.offset + c.size,
                        f.size
                    );
                }
                prev_end = c.offset + c.size;
            }
        }
    }
    Ok(files)
}
