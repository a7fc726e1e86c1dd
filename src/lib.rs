//! advisor: measures, calibrates and predicts lazy (eStargz via the stargz
//! snapshotter) versus eager (gzip via overlayfs) image pulling.
//!
//! Data flows one way: image → TOC → trace join → model → report. Each stage
//! is one module; `commands` wires them to the CLI.
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod commands;
pub mod containerd;
pub mod error;
pub mod estargz;
pub mod exit;
pub mod filetable;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod input;
pub mod output;
pub mod plan;
pub mod predict;
pub mod printer;
pub mod probe;
pub mod profile;
pub mod recorder;
pub mod redact;
pub mod registry;
pub mod report;
pub mod simulate;
pub mod trace;
pub mod units;

use cli::{Cli, Command};
use printer::Printer;
use std::process::ExitCode;

/// Entry point used by the binary: build the runtime, parse, run, map to an exit code.
pub fn main_entry() -> ExitCode {
    // ctr's CONTAINERD_ADDRESS / CONTAINERD_NAMESPACE when advisor's are
    // unset, then the config file for what neither gave.
    let cli = match cli::env::try_parse() {
        Ok(parsed) => {
            if let Some(note) = parsed.note().filter(|_| !parsed.cli.global.quiet) {
                eprintln!("{note}");
            }
            parsed.cli
        }
        Err(cli::env::ParseError::Config(e)) => {
            eprintln!("error: {}", redact::redact(&e.to_string()));
            return ExitCode::from(exit::USER);
        }
        Err(cli::env::ParseError::Cli(e)) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    init_logging(cli.global.quiet, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `advisor … | head -1`: the reader has what it wanted.
        Err(err) if printer::stdout_was_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Credentials never printed: a URL's password in any message is hidden.
            eprintln!("error: {}", redact::redact(&err.to_string()));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", redact::redact(&cause.to_string()));
            }
            ExitCode::from(exit::exit_code(&err))
        }
    }
}

/// Logs on stderr: advisor's own modules at the level of `-q`/`-v`, or what
/// `ADVISOR_LOG` says (see [`log_filter`]). Colours only on a terminal.
fn init_logging(quiet: bool, verbose: u8) {
    use std::io::IsTerminal;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let (filter, warning) = log_filter(std::env::var_os(LOG_ENV), level);
    if let Some(w) = warning {
        eprintln!("warning: {}", redact::redact(&w));
    }
    let shown = filter.to_string();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
    tracing::debug!(
        "advisor {}; log filter `{shown}`",
        env!("CARGO_PKG_VERSION")
    );
}

/// The variable holding a tracing-subscriber env-filter that replaces `-q`/`-v`.
const LOG_ENV: &str = "ADVISOR_LOG";

/// The log filter: `ADVISOR_LOG` when it is set, not empty and parses, else
/// `advisor={level}`; a value that does not parse (or is not UTF-8) falls back
/// to the default with a warning to show (an empty one is unset: as a filter
/// it would hide every log, warnings too).
fn log_filter(
    var: Option<std::ffi::OsString>,
    level: &str,
) -> (tracing_subscriber::EnvFilter, Option<String>) {
    use tracing_subscriber::EnvFilter;
    let default = format!("advisor={level}");
    let fallback = |why: String| {
        (
            EnvFilter::new(&default),
            Some(format!(
                "{LOG_ENV} {why}; logging at the default level ({default}); write e.g. \
                 {LOG_ENV}=advisor=debug or {LOG_ENV}=debug"
            )),
        )
    };
    let Some(var) = var else {
        return (EnvFilter::new(&default), None);
    };
    let Some(text) = var.to_str() else {
        return fallback("is not UTF-8".into());
    };
    if text.trim().is_empty() {
        return (EnvFilter::new(&default), None);
    }
    match EnvFilter::builder().parse(text) {
        Ok(f) => (f, None),
        Err(e) => fallback(format!("`{text}` is not a log filter ({e})")),
    }
}

/// stderr for the logs, every line passed through [`redact::redact`]: a
/// retried request's URL can carry credentials (`-v`).
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = redact::redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Run one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let printer = Printer::new(cli.global.format, cli.global.quiet, cli.global.verbose);
    match &cli.command {
        Command::Advise(args) => commands::advise::run(&cli.global, args, &printer).await,
        Command::Doctor(args) => commands::doctor::run(&cli.global, args, &printer).await,
        Command::Trace(args) => commands::trace::run(&cli.global, args, &printer).await,
        Command::Image(args) => commands::image::run(&cli.global, args, &printer).await,
        Command::Calibrate(args) => commands::calibrate::run(&cli.global, args, &printer).await,
        Command::Bench(args) => commands::bench::run(&cli.global, args, &printer).await,
        Command::Probe(args) => commands::probe::run(&cli.global, args, &printer).await,
        Command::Plan(args) => commands::plan::run(&cli.global, args, &printer).await,
        Command::Completions(args) => commands::completions::run(args, &printer),
        Command::Man(args) => commands::man::run(args, &printer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(var: Option<&str>) -> (String, Option<String>) {
        let (f, w) = log_filter(var.map(Into::into), "warn");
        (f.to_string(), w)
    }

    #[test]
    fn advisor_log_replaces_the_level_and_a_bad_value_warns() {
        assert_eq!(filter(None), ("advisor=warn".into(), None));
        assert_eq!(filter(Some("  ")), ("advisor=warn".into(), None));
        assert_eq!(filter(Some("debug")), ("debug".into(), None));
        assert_eq!(filter(Some("advisor::registry=trace,advisor=info")).1, None);
        let (f, w) = filter(Some("advisor=loud"));
        assert_eq!(f, "advisor=warn");
        let w = w.expect("a warning");
        assert!(
            w.contains("ADVISOR_LOG `advisor=loud` is not a log filter")
                && w.contains("default level (advisor=warn)")
                && w.contains("e.g. ADVISOR_LOG=advisor=debug"),
            "{w}"
        );
        use std::os::unix::ffi::OsStringExt;
        let (f, w) = log_filter(Some(std::ffi::OsString::from_vec(vec![0xff])), "info");
        assert_eq!(f.to_string(), "advisor=info");
        assert!(w.unwrap().contains("not UTF-8"));
    }
}
