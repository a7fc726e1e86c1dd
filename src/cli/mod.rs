//! Command-line definitions (clap derive). Doc comments are the help text.
//!
//! Owns argument parsing only; every command resolves its arguments into a
//! settings struct before work starts. Subcommand arguments live in submodules
//! of this module, one per command.
pub mod bench;
pub mod calibrate;
pub mod config;
pub mod env;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::num::NonZeroUsize;
use std::path::PathBuf;

pub mod advise;
pub mod image;
pub mod plan;
pub mod probe;
pub mod trace;
pub mod values;

/// Default containerd socket, as ctr's.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";

/// Default registry host directory, as nerdctl's and CRI's usual `config_path`.
pub const DEFAULT_HOSTS_DIR: &str = "/etc/containerd/certs.d";

/// advisor: lazy (eStargz) or eager (gzip) pulling, for this image, this
/// workload, this node? Measures, calibrates and predicts cold start and total
/// completion.
#[derive(Debug, Parser)]
#[command(name = "advisor", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command shares, named like ctr's.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// containerd's gRPC socket (env ADVISOR_CONTAINERD, else ctr's
    /// CONTAINERD_ADDRESS, else the config file's `address`).
    #[arg(short, long, global = true, env = "ADVISOR_CONTAINERD", default_value = DEFAULT_ADDRESS, value_name = "SOCK")]
    pub address: PathBuf,

    /// containerd namespace advisor works in (env ADVISOR_NAMESPACE, else
    /// ctr's CONTAINERD_NAMESPACE: advisor cleans up in that one only if it
    /// created it, or with --force; else the config file's `namespace`).
    #[arg(
        short,
        long,
        global = true,
        env = "ADVISOR_NAMESPACE",
        default_value = "advisor"
    )]
    pub namespace: String,

    /// Where `namespace` came from: ctr's CONTAINERD_NAMESPACE makes it
    /// advisor's only when advisor created it. Set by [`env::try_parse_from`].
    #[arg(skip)]
    pub namespace_origin: crate::containerd::owner::NamespaceOrigin,

    /// The config file (TOML: address, namespace, registry, hosts_dir,
    /// stargz_metrics, lazy_reset_cmd, plain_http) filling in what no flag and no variable
    /// gives; default: /etc/advisor/config.toml if it exists.
    #[arg(long, global = true, env = "ADVISOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The config file read and the keys taken from it (`None`: no file).
    /// Set by [`env::try_parse_from`].
    #[arg(skip)]
    pub config_used: Option<config::Used>,

    /// Talk plain HTTP to the registry (localhost registries always use plain HTTP, as containerd does).
    #[arg(long, global = true)]
    pub plain_http: bool,

    /// containerd's registry host directory, as ctr's and nerdctl's
    /// --hosts-dir: `<dir>/<host>/hosts.toml` gives a registry's mirrors, CA,
    /// client certificate and `skip_verify`, for every registry request advisor
    /// makes (env ADVISOR_HOSTS_DIR, else the config file's `hosts_dir`; a
    /// missing directory means containerd's defaults).
    #[arg(long, global = true, env = "ADVISOR_HOSTS_DIR", default_value = DEFAULT_HOSTS_DIR, value_name = "DIR")]
    pub hosts_dir: PathBuf,

    /// A CA certificate file (PEM) to trust for every registry, beside the
    /// system's and hosts.toml's `ca`; repeatable.
    #[arg(long = "ca-cert", global = true, value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,

    /// The platform an image index resolves to, as ctr's --platform
    /// (OS/ARCH[/VARIANT], e.g. linux/arm64; default: this host's).
    #[arg(long, global = true, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<crate::registry::Platform>,

    /// Output format for data on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Only print data and errors: no progress, no notes.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace; ADVISOR_LOG,
    /// an env-filter such as `advisor=debug`, overrides it).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Threads that compress or decompress layers (image build, calibration
    /// images, image inspect --scan), 1-1024 (env ADVISOR_JOBS; default: the
    /// cores).
    #[arg(long, global = true, env = "ADVISOR_JOBS", value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<NonZeroUsize>,
}

/// Most threads `--jobs` accepts: more is a typo, not a machine.
pub const MAX_JOBS: usize = 1024;

/// `--jobs N`: a thread count from 1 to [`MAX_JOBS`].
pub fn parse_jobs(s: &str) -> Result<NonZeroUsize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of threads (1-{MAX_JOBS})"))?;
    match NonZeroUsize::new(n) {
        None => Err(format!(
            "0 threads cannot compress anything: give 1-{MAX_JOBS} (omit --jobs for one per core)"
        )),
        Some(_) if n > MAX_JOBS => Err(format!(
            "{n} threads is more than {MAX_JOBS}: give 1-{MAX_JOBS} (omit --jobs for one per core)"
        )),
        Some(j) => Ok(j),
    }
}

impl GlobalArgs {
    /// Compression and decompression threads: `--jobs`, else one per core.
    pub fn jobs(&self) -> NonZeroUsize {
        self.jobs.unwrap_or_else(crate::image::build::default_jobs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Human-readable tables.
    #[default]
    Table,
    /// Machine-readable JSON.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the environment: containerd, its snapshotters, the registry, the stargz metrics.
    Doctor(DoctorArgs),
    /// Predict cold start and completion of eager, lazy and lazy+prefetch pulls for an image
    /// and a workload trace, and recommend one. With no arguments: the bundled example.
    Advise(advise::AdviseArgs),
    /// Workload file-access traces: import, synthesize, analyze against an image.
    Trace(trace::TraceArgs),
    /// Synthetic images (build and push both forms) and what a registry holds (inspect).
    Image(image::ImageArgs),
    /// Time eager (overlayfs) or lazy (stargz) cold/warm starts through containerd.
    Bench(bench::BenchArgs),
    /// Measure this node and fit its cost model into a profile (with intervals).
    Calibrate(calibrate::CalibrateArgs),
    /// Measure this node's path to a registry (round trips, set-up, throughput)
    /// into a network profile, in under a minute.
    Probe(probe::ProbeArgs),
    /// Plan a rollout: N nodes pulling the image through one registry — pods ready and
    /// done, registry egress and requests, disk, the binding constraint, per strategy.
    Plan(plan::PlanArgs),
    /// Print the shell completion script for SHELL on stdout.
    Completions(CompletionsArgs),
    /// Print advisor's man page (roff) on stdout, or with -o write one page
    /// per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Registry to check (host:port).
    #[arg(long, env = "ADVISOR_REGISTRY", value_name = "HOST:PORT")]
    pub registry: Option<String>,

    /// The stargz snapshotter's Prometheus metrics URL.
    #[arg(long, env = "ADVISOR_STARGZ_METRICS", value_name = "URL")]
    pub stargz_metrics: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete advisor's commands and flags in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write advisor.1 and a page per subcommand (advisor-trace-record.1, …)
    /// into DIR, creating it, instead of printing the top page.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod jobs_tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn jobs_takes_1_to_max_jobs() {
        assert_eq!(parse_jobs("1").unwrap().get(), 1);
        assert_eq!(parse_jobs(" 8 ").unwrap().get(), 8);
        assert_eq!(parse_jobs("1024").unwrap().get(), MAX_JOBS);
        for bad in ["0", "1025", "99999999999999999999999", "-1", "two", ""] {
            assert!(parse_jobs(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_jobs("0").unwrap_err().contains("0 threads"));
    }

    #[test]
    fn jobs_is_global_and_defaults_to_the_cores() {
        let cli = Cli::try_parse_from(["advisor", "image", "inspect", "r", "--jobs", "3"]).unwrap();
        assert_eq!(cli.global.jobs().get(), 3);
        let cli = Cli::try_parse_from(["advisor", "--jobs", "2", "doctor"]).unwrap();
        assert_eq!(cli.global.jobs().get(), 2);
        let cli = Cli::try_parse_from(["advisor", "doctor"]).unwrap();
        assert_eq!(
            cli.global.jobs(),
            std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
        );
        let e = Cli::try_parse_from(["advisor", "--jobs", "0", "doctor"]).unwrap_err();
        assert!(e.to_string().contains("--jobs"), "{e}");
    }
}
