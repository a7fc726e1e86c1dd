//! Workload file-access traces: the versioned JSON Lines format, importers
//! (strace output, plain file lists), the synthesizer, and the join with an
//! image's file table.
//!
//! Owns: the trace format (docs/trace-format.md), turning other recordings
//! into it, and resolving container paths against the merged (overlay) view
//! of an [`ImageFiles`](crate::estargz::table::ImageFiles). Analysis drives
//! the snapshotter model in [`crate::simulate`]; the model lives there.
//!
//! Must not: talk to a registry or containerd (callers hand it an
//! `ImageFiles`), time anything, or print (commands render the typed results).
pub mod analyze;
pub mod filelist;
pub mod format;
pub mod resolve;
pub mod strace;
pub mod synth;

use std::path::Path;

/// Errors from reading, writing or importing traces. Every variant names the
/// input (file and, for parse errors, the line and the field).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{file}: {action}: {source}")]
    Io {
        file: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed. `field` is the JSON field (or strace argument) at fault.
    #[error("{file} line {line}: {message}")]
    Parse {
        file: String,
        line: u64,
        field: Option<&'static str>,
        message: String,
    },
    /// The input as a whole is unusable (empty, wrong version, wrong kind).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl Error {
    /// Whether the user can fix this (bad input, missing file); write failures
    /// on a full disk are environment problems too, so every variant is.
    pub fn is_user_facing(&self) -> bool {
        match self {
            Error::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
            ),
            Error::Parse { .. } | Error::Invalid { .. } => true,
        }
    }

    pub(crate) fn io(
        file: impl Into<String>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            file: file.into(),
            action,
            source,
        }
    }

    pub(crate) fn parse(
        file: &str,
        line: u64,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Parse {
            file: file.to_string(),
            line,
            field,
            message: message.into(),
        }
    }
}

/// How a file is named in messages: its path as given, or `-` for stdin/stdout.
pub(crate) fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Read one line (through `\n`) of an imported input into `buf`, at most
/// [`format::MAX_LINE_BYTES`]: an input without line ends (`/dev/zero`, a
/// binary file) is an error naming the file and the line, not an unbounded
/// allocation. Returns the bytes read; 0 at end of input.
pub(crate) fn read_import_line<R: std::io::BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    name: &str,
    line: u64,
    what: &'static str,
) -> Result<usize, Error> {
    crate::input::read_line_bounded(input, buf, format::MAX_LINE_BYTES)
        .map_err(|e| Error::io(name, what, e))?
        .ok_or_else(|| {
            Error::parse(
                name,
                line,
                None,
                format!(
                    "is longer than {} bytes (no line end): not a text file of one entry per line",
                    format::MAX_LINE_BYTES
                ),
            )
        })
}
