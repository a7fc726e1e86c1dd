//! Synthetic images: `advisor image build`, and the build-and-push that
//! `calibrate` uses.
//!
//! Owns the image spec (JSON/TOML), deterministic content, layer assembly in
//! both forms (gzip and eStargz, through `estargz::writer`), OCI configs and
//! manifests, and the tag scheme. Must not talk to containerd (pulls and runs
//! are `bench`'s), read images back (reference or saved file → file table is
//! [`crate::filetable`]'s), nor print (commands render its typed results).
//! docs/images.md.
//!
//! - [`spec`]: parse and check a spec; [`plan`]: expand it into layer entries.
//! - [`content`]: seeded sizes and bytes; [`base`]: the busybox base layer.
//! - [`build`]: layer files, config, manifest; [`push`]: both forms, tag scheme.
//! - [`build_and_push_spec`]: spec text → both forms pushed (for `calibrate`).
pub mod base;
pub mod build;
pub mod content;
mod error;
pub mod plan;
pub mod push;
pub mod spec;

pub use error::Error;

use crate::registry::RegistryClient;
use std::path::Path;

/// What [`build_and_push_spec`] pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The gzip and eStargz references (tag scheme of [`push`]).
    pub targets: push::Targets,
    /// Manifest digests: gzip, then eStargz.
    pub manifest_digests: [String; 2],
}

/// Build a spec given as text and push both forms under `reference` (the gzip
/// form as REPO:TAG, eStargz as REPO:TAG-esgz), as `image build` does without
/// progress. `prioritized` are absolute paths written before the prefetch
/// landmark, as `--prioritize` gives them (empty: none). `name` names the
/// spec in errors and picks JSON or TOML by its extension. The base layer
/// uses the host's busybox.
pub async fn build_and_push_spec(
    text: &str,
    name: &str,
    reference: &str,
    prioritized: &[String],
    client: &RegistryClient,
) -> anyhow::Result<Pushed> {
    build_and_push_spec_with_jobs(
        text,
        name,
        reference,
        prioritized,
        client,
        build::default_jobs(),
    )
    .await
}

/// [`build_and_push_spec`] compressing on `jobs` threads (`--jobs`).
pub async fn build_and_push_spec_with_jobs(
    text: &str,
    name: &str,
    reference: &str,
    prioritized: &[String],
    client: &RegistryClient,
    jobs: std::num::NonZeroUsize,
) -> anyhow::Result<Pushed> {
    let path = Path::new(name);
    let spec = spec::parse(path, text)?;
    let targets = push::Targets::from_reference(reference, client.options().plain_http)?;
    let busybox = match spec.base {
        spec::Base::Busybox => Some(base::Busybox::locate(Path::new(base::BUSYBOX_PATH))?),
        spec::Base::None => None,
    };
    let extra: Vec<plan::Prioritized> = prioritized
        .iter()
        .enumerate()
        .map(|(i, p)| plan::Prioritized {
            path: p.clone(),
            origin: format!("prioritized path {} of {name}", i + 1),
        })
        .collect();
    let plan = plan::plan(&spec, path, busybox.as_ref(), &extra)?;
    let mut settings = build::BuildSettings::from_spec(&spec, None);
    settings.jobs = jobs;
    let built = tokio::task::spawn_blocking(move || {
        build::build(&plan, &settings, &build::Progress::hidden())
    })
    .await
    .map_err(|e| anyhow::anyhow!("the image build thread failed (a bug): {e}"))??;
    let manifest_digests = push::push(client, &built, &targets).await?;
    Ok(Pushed {
        targets,
        manifest_digests,
    })
}
