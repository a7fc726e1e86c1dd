//! The one owner of stdout and stderr.
//!
//! Data (tables, JSON) goes to stdout; progress, warnings and notes go to
//! stderr. Measurement code never prints: it returns typed results that a
//! command renders through a `Printer`. Progress bars are hidden when stderr is
//! not a terminal or with `--quiet`.
//!
//! A reader that closes stdout early (`advisor completions bash | head -1`)
//! is not a failure: a write to stdout that meets a broken pipe is marked
//! [`StdoutClosed`], and [`crate::main_entry`] stops quietly with exit 0 on
//! it, as ripgrep does. Writes to stderr never fail a command.
use crate::cli::OutputFormat;
use std::io::{self, IsTerminal, Write};

/// Stdout's reader went away (a broken pipe): the command stops quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed before all output was written (broken pipe)")]
pub struct StdoutClosed;

/// An error of a write to stdout, a broken pipe marked as [`StdoutClosed`]
/// (kind kept: `BrokenPipe`).
pub fn stdout_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe && !is_closed_stdout(&e) {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// Whether `e` is a write to stdout that met a broken pipe ([`stdout_error`]).
pub fn is_closed_stdout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<StdoutClosed>())
}

/// Whether any cause of `err` is a write to a closed stdout: the run ends
/// quietly instead of reporting an error. A broken pipe elsewhere (a
/// registry's connection, a FIFO named by `-o`) is still an error.
pub fn stdout_was_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.is::<StdoutClosed>() || c.downcast_ref::<io::Error>().is_some_and(is_closed_stdout)
    })
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: u8,
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8) -> Self {
        Printer {
            format,
            quiet,
            verbose,
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Write data (a rendered table, a report) to stdout.
    /// A closed stdout is a [`StdoutClosed`] error.
    pub fn out(&self, text: &str) -> io::Result<()> {
        let mut o = io::stdout().lock();
        let newline: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
        o.write_all(text.as_bytes())
            .and_then(|()| o.write_all(newline))
            .and_then(|()| o.flush())
            .map_err(stdout_error)
    }

    /// Write a value as pretty JSON to stdout.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let s = serde_json::to_string_pretty(value)?;
        self.out(&s)?;
        Ok(())
    }

    /// A warning on stderr (shown even with --quiet).
    pub fn warn(&self, msg: &str) {
        let _ = writeln!(io::stderr(), "warning: {}", crate::redact::redact(msg));
    }

    /// A note on stderr (hidden with --quiet).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{}", crate::redact::redact(msg));
        }
    }

    /// Whether progress bars should be drawn.
    pub fn show_progress(&self) -> bool {
        !self.quiet && io::stderr().is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn only_a_broken_pipe_on_stdout_is_a_closed_stdout() {
        let closed = stdout_error(io::ErrorKind::BrokenPipe.into());
        assert_eq!(closed.kind(), io::ErrorKind::BrokenPipe);
        assert!(is_closed_stdout(&closed));
        assert!(is_closed_stdout(&stdout_error(closed)), "marked once");
        let e = Err::<(), _>(stdout_error(io::ErrorKind::BrokenPipe.into()))
            .context("writing the report")
            .unwrap_err();
        assert!(stdout_was_closed(&e));
        // A full disk on stdout, or a broken pipe that is not stdout's.
        let full = stdout_error(io::ErrorKind::StorageFull.into());
        assert!(!stdout_was_closed(&anyhow::Error::new(full)));
        let other = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(!stdout_was_closed(&anyhow::Error::new(other)));
    }
}
