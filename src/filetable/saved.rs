//! A saved file table (`--files FILE`, written by `image inspect --toc-out`):
//! read it, check its version, and run [`ImageFiles::check`] before anything
//! sizes an allocation or a total from it.
//!
//! Owns the messages that name the file and say how to re-create it. Must
//! not read a registry (that is [`inspect`](mod@super::inspect)) or print.
use crate::estargz::table::{FILE_TABLE_VERSION, ImageFiles};
use anyhow::Context;
use std::io::BufReader;
use std::path::Path;

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
