//! Where an image's file table comes from: a saved table (`--files FILE`,
//! written by `image inspect --toc-out`) or an image reference read from its
//! registry (`--image REF`: TOCs with ranged GETs, see
//! [`inspect`](mod@inspect)).
//!
//! Owns the one function every command uses to obtain a table
//! ([`load_image_files`]: `trace`, `advise`), the checks a saved table must
//! pass ([`saved`]), and the registry read of layers' formats and TOCs behind
//! `advisor image inspect` ([`inspect`](mod@inspect)). Takes its own
//! [`LoadOptions`], never a CLI type, and returns what it learnt as data
//! ([`Loaded::notes`]): it must not print, interpret traces or predict.
//! Building images is `image`'s.
//!
//! - [`inspect`](mod@inspect): formats, TOCs and file tables over ranged
//!   GETs (and `--scan`).
//! - [`saved`]: read and check a file-table JSON.
pub mod inspect;
pub mod saved;

pub use saved::{parse_file_table, read_file_table};

use crate::estargz::table::ImageFiles;
use crate::registry::{RegistryClient, RegistryOptions};
use inspect::{InspectOptions, LayerInspection, inspect};
use std::path::PathBuf;

/// Where an image's file table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A file table JSON (`image inspect --toc-out`).
    Files(PathBuf),
    /// An image reference, read from its registry.
    Reference(String),
}

/// How to obtain a table: the registry client's options, for a reference.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub registry: RegistryOptions,
}

/// A file table and what obtaining it cost, for the caller to show.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub files: ImageFiles,
    /// Notes for stderr (what reading a reference's TOCs cost), in order.
    pub notes: Vec<String>,
}

/// The one place an image's file table is obtained. For a reference, every
/// layer must be eStargz (its TOC is read with ranged GETs, verified against
/// the layer's annotation); a note says what that cost.
pub async fn load_image_files(src: &ImageSource, opts: &LoadOptions) -> anyhow::Result<Loaded> {
    match src {
        ImageSource::Files(path) => Ok(Loaded {
            files: read_file_table(path)?,
            notes: Vec::new(),
        }),
        ImageSource::Reference(r) => load_reference(r, opts).await,
    }
}

async fn load_reference(r: &str, opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let client = RegistryClient::new(opts.registry.clone())?;
    let insp = inspect(&client, r, InspectOptions::default()).await?;
    let files = insp
        .image_files()
        .map_err(|missing| not_estargz(r, &missing))?;
    // The TOCs are the registry's word: the same checks as a saved table.
    files
        .check()
        .map_err(|e| crate::error::user(format!("--image {r}: {e}")))?;
    let note = format!(
        "read {} layer TOC(s) of {r}: {} in {} request(s) (manifest and config included)",
        files.layers.len(),
        insp.fetched.total_bytes,
        insp.fetched.total_requests
    );
    Ok(Loaded {
        files,
        notes: vec![note],
    })
}

/// The error for an image with layers that have no TOC, naming each of them.
fn not_estargz(r: &str, missing: &[&LayerInspection]) -> anyhow::Error {
    let list: Vec<String> = missing
        .iter()
        .map(|l| {
            format!(
                "layer {} ({}) is {}",
                l.index,
                l.digest,
                l.format.described()
            )
        })
        .collect();
    crate::error::user(format!(
        "--image {r}: {}, not eStargz, so there is no TOC to read; use the image's \
         eStargz form (`advisor image build` pushes it as TAG-esgz), or save a table \
         with `advisor image inspect {r} --scan --toc-out FILE` and pass --files FILE",
        list.join(", ")
    ))
}
