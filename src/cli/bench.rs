//! `advisor bench` arguments.
use crate::cli::values;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Time real eager (overlayfs) or lazy (stargz) pulls and container starts
/// through containerd, run after run, and summarise each phase.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Image reference (HOST/REPO:TAG or @DIGEST).
    #[arg(long, value_name = "REF")]
    pub image: String,

    /// `overlayfs`: eager pull (download and unpack every layer); `stargz`: lazy
    /// pull (mount eStargz layers remotely).
    #[arg(long, value_name = "NAME", value_parser = ["overlayfs", "stargz"])]
    pub snapshotter: String,

    /// `cold`: every run pulls from a clean slate (image, content in every
    /// namespace, snapshots and the snapshotter's caches removed first;
    /// refused when a namespace that is not advisor's holds the image, see --force);
    /// `warm`: pull once, then every run starts a new container from it.
    #[arg(long, value_enum, default_value_t = BenchMode::Cold)]
    pub mode: BenchMode,

    /// Measured runs (as hyperfine's -r/--runs; -n is the namespace, as ctr's).
    #[arg(short = 'r', long = "runs", default_value_t = 5, value_name = "N")]
    pub runs: usize,

    /// Runs before the measured ones, as hyperfine's: reported, never summarised.
    #[arg(short = 'w', long, default_value_t = 0, value_name = "N")]
    pub warmup: usize,

    /// Ready when a stdout/stderr line matches this regex (default: when the process exits).
    #[arg(long, value_name = "PATTERN", conflicts_with = "ready_path")]
    pub ready_line: Option<String>,

    /// Ready when this absolute path exists inside the container.
    #[arg(long, value_name = "PATH")]
    pub ready_path: Option<String>,

    /// Kill a container that has not exited this long after its start (e.g. 90s,
    /// 10m, 1.5s; a bare number is seconds).
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = values::duration, allow_hyphen_values = true)]
    pub timeout: std::time::Duration,

    /// Shell command that restarts the stargz snapshotter with empty caches
    /// (cold lazy runs need it; `lab/lab env` sets it for the lab).
    #[arg(long, env = "ADVISOR_LAZY_RESET_CMD", value_name = "CMD")]
    pub lazy_reset_cmd: Option<String>,

    /// The stargz snapshotter's Prometheus metrics URL (bytes fetched, request counts).
    #[arg(long, env = "ADVISOR_STARGZ_METRICS", value_name = "URL")]
    pub stargz_metrics: Option<String>,

    /// Do not drop the kernel page cache before cold runs.
    #[arg(long)]
    pub no_drop_caches: bool,

    /// `stargz.prefetch` label of lazy pulls (e.g. 10MiB or plain bytes; default: ctr-remote's).
    #[arg(long, default_value = "10MiB", value_name = "SIZE", value_parser = values::size, allow_hyphen_values = true)]
    pub prefetch_size: u64,

    /// Concurrent layer downloads of eager pulls (0: all at once, as ctr).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_concurrent_downloads: usize,

    /// Append every run to this file as JSON Lines, as it finishes.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Write the summary as hyperfine's JSON (`results`: one entry per timed
    /// phase with mean, stddev, median, min, max and every run's time) to
    /// FILE at the end; `-` prints it on stdout instead of the report.
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Write the summary as hyperfine's Markdown table (phase, mean ± σ, min,
    /// max) to FILE at the end; `-` prints it on stdout instead of the report.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    /// Write the summary as hyperfine's CSV (phase, mean, stddev, median, min,
    /// max; seconds) to FILE at the end; `-` prints it on stdout instead of the report.
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,

    /// Draw each timed phase over the measured runs (SVG, at the end): a
    /// panel per phase, every run a dot, the median of those that count a line.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Keep the image pulled at the end.
    #[arg(long)]
    pub keep_image: bool,

    /// Clean the image even when a namespace that is not advisor's (e.g.
    /// `k8s.io`) holds its content or snapshots: deletes them there too.
    /// Without it, advisor refuses and deletes nothing.
    #[arg(long)]
    pub force: bool,

    /// Command to run instead of the image's (replaces entrypoint and cmd, as `ctr run`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `--mode`; commands/bench.rs translates it into the bench's own `Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Cold,
    Warm,
}
