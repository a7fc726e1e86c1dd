//! Arguments of `advisor image …`.
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a synthetic image from a spec and push it in both forms: gzip as REPO:TAG,
    /// eStargz as REPO:TAG-esgz. Same spec and seed, same digests.
    Build(BuildArgs),
    /// Per layer: media type, sizes, format and, for eStargz, a TOC summary, read with
    /// ranged GETs of the blobs' tails only (the TOC digest verified against its annotation).
    Inspect(InspectArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The image spec, JSON or TOML (fields: docs/images.md; examples: models/examples/).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,

    /// Where to push, REPO[:TAG]: the gzip form goes to REPO:TAG, the eStargz form to
    /// REPO:TAG-esgz.
    #[arg(long, value_name = "REF", required_unless_present = "dry_run")]
    pub push: Option<String>,

    /// Files to write first in the eStargz layers, before `.prefetch.landmark` (so the
    /// snapshotter prefetches them): one path per line, as `advise --prefetch-list` writes.
    #[arg(long, value_name = "FILE")]
    pub prioritize: Option<PathBuf>,

    /// Build and report digests without pushing.
    #[arg(long)]
    pub dry_run: bool,

    /// Directory for the temporary layer files (default: $TMPDIR); needs about twice the
    /// image's compressed size.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// The static busybox of the base layer.
    #[arg(long, value_name = "FILE", env = "ADVISOR_BUSYBOX", default_value = crate::image::base::BUSYBOX_PATH)]
    pub busybox: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Image reference (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Save the image's file table (paths, sizes, chunk offsets) for `--files` of
    /// `trace` and `advise`.
    #[arg(long, value_name = "FILE")]
    pub toc_out: Option<PathBuf>,

    /// Stream each non-eStargz (gzip or tar) layer once to list its files: downloads it.
    #[arg(long)]
    pub scan: bool,
}
