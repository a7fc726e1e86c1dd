//! Where an image's file table comes from: a saved table (`--files FILE`,
//! written by `image inspect --toc-out`) or an image reference read from its
//! registry (`--image REF`: TOCs with ranged GETs, see `inspect`).
//!
//! Owns the one function every command uses to obtain a table
//! ([`load_image_files`]: `trace`, `advise`) and the checks a saved table must
//! pass. Does not interpret traces or predict.
use super::inspect::{InspectOptions, inspect};
use crate::cli::GlobalArgs;
use crate::estargz::table::{FILE_TABLE_VERSION, ImageFiles};
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
            // The TOCs are the registry's word: the same checks as a saved table.
            files
                .check()
                .map_err(|e| crate::error::user(format!("--image {r}: {e}")))?;
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

/// Read and check a file-table JSON: version, then [`ImageFiles::check`]
/// (paths inside the image, chunk order and extents, sizes within bounds,
/// totals that do not wrap).
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
    files.check().map_err(|e| {
        crate::error::user(format!(
            "{name}: {e}; re-create the table with `advisor image inspect REF --toc-out FILE`"
        ))
    })?;
    Ok(files)
}
