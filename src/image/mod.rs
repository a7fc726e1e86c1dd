//! Synthetic images and reading images back: `advisor image build` and
//! `advisor image inspect`, and the file table every command obtains.
//!
//! Owns the image spec (JSON/TOML), deterministic content, layer assembly in
//! both forms (gzip and eStargz, through `estargz::writer`), OCI configs and
//! manifests, the tag scheme, and reading layers' TOCs from a registry within
//! a byte budget. Must not talk to containerd (pulls and runs are `bench`'s)
//! nor print (commands render its typed results). docs/images.md.
//!
//! - [`spec`]: parse and check a spec; [`plan`]: expand it into layer entries.
//! - [`content`]: seeded sizes and bytes; [`base`]: the busybox base layer.
//! - [`build`]: layer files, config, manifest; [`push`]: both forms, tag scheme.
//! - [`inspect`]: formats, TOCs and file tables over ranged GETs.
//! - [`files`]: `load_image_files`, the one way to get an image's file table.
pub mod base;
pub mod build;
pub mod content;
mod error;
pub mod files;
pub mod inspect;
pub mod plan;
pub mod push;
pub mod spec;

pub use error::Error;

/// Build a spec given as text (named `name` in errors) with the host's
/// busybox, and push both forms to `target` (tag scheme of [`push`]).
/// Returns the manifest digests of the gzip and eStargz forms.
pub async fn build_and_push_spec(
    text: &str,
    name: &str,
    target: &str,
    client: &crate::registry::RegistryClient,
) -> anyhow::Result<[String; 2]> {
    use anyhow::Context;
    let path = std::path::Path::new(name);
    let spec = spec::parse(path, text)?;
    let busybox = match spec.base {
        spec::Base::Busybox => Some(base::Busybox::locate(std::path::Path::new(&std::env::var("ADVISOR_BUSYBOX").unwrap_or_else(|_| base::BUSYBOX_PATH.into())))?),
        spec::Base::None => None,
    };
    let plan = plan::plan(&spec, path, busybox.as_ref(), &[])?;
    let settings = build::BuildSettings {
        chunk_size: spec.chunk_size.0,
        gzip_level: spec.gzip_level,
        work_dir: None,
        entrypoint: spec.entrypoint(),
        cmd: spec.cmd(),
        env: spec.env(),
        workdir: spec.workdir.clone(),
        platform: crate::registry::Platform::host(),
    };
    let built = tokio::task::spawn_blocking(move || build::build(&plan, &settings, &build::Progress::hidden()))
        .await
        .context("the image build thread failed (a bug)")??;
    let targets = push::Targets::from_reference(target, false)?;
    push::push(client, &built, &targets).await
}
