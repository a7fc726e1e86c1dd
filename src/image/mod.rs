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
