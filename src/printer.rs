//! The one owner of stdout and stderr.
//!
//! Data (tables, JSON) goes to stdout; progress, warnings and notes go to
//! stderr. Measurement code never prints: it returns typed results that a
//! command renders through a `Printer`. Progress bars are hidden when stderr is
//! not a terminal or with `--quiet`.
use crate::cli::OutputFormat;
use std::io::{IsTerminal, Write};

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
    pub fn out(&self, text: &str) -> std::io::Result<()> {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            o.write_all(b"\n")?;
        }
        o.flush()
    }

    /// Write a value as pretty JSON to stdout.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let s = serde_json::to_string_pretty(value)?;
        self.out(&s)?;
        Ok(())
    }

    /// A warning on stderr (shown even with --quiet).
    pub fn warn(&self, msg: &str) {
        eprintln!("warning: {}", crate::redact::redact(msg));
    }

    /// A note on stderr (hidden with --quiet).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{}", crate::redact::redact(msg));
        }
    }

    /// Whether progress bars should be drawn.
    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}
