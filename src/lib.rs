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

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ADVISOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("advisor={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_target(false)
        .try_init();
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
