//! `advisor man [-o DIR]`: the top man page on stdout, or every page written
//! into DIR (created if missing) all or none, each beside its target and
//! renamed into place only when all are written ([`crate::output`]).
use crate::cli::{Cli, ManArgs};
use crate::output::{self, Rendered};
use crate::printer::Printer;
use crate::report::man;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

pub fn run(args: &ManArgs, printer: &Printer) -> anyhow::Result<()> {
    match &args.output {
        None => printer.out(&man::top(Cli::command())?)?,
        Some(dir) => {
            let n = write_pages(dir, &man::pages(Cli::command())?)?;
            printer.note(&format!("wrote {n} man pages to {}", dir.display()));
        }
    }
    Ok(())
}

/// Create `dir` and write `pages` into it, all or none; how many.
fn write_pages(dir: &Path, pages: &[man::Page]) -> anyhow::Result<usize> {
    if dir.exists() && !dir.is_dir() {
        crate::bail_user!(
            "-o {} is not a directory; give a directory for the man pages",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        crate::error::user(format!(
            "cannot create the man page directory -o {}: {e}; give a directory advisor may write",
            dir.display()
        ))
    })?;
    let paths: Vec<PathBuf> = pages.iter().map(|p| dir.join(&p.file_name)).collect();
    let files: Vec<Rendered<'_>> = pages
        .iter()
        .zip(&paths)
        .map(|(p, path)| Rendered {
            what: "man page",
            path,
            bytes: p.roff.as_bytes(),
        })
        .collect();
    output::write_all_or_none(&files)?;
    Ok(files.len())
}
