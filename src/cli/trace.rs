//! Arguments of `advisor trace …`.
use crate::cli::values;
use crate::trace::synth::WorkingSet;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub command: TraceCommand,
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Run the workload in a container through containerd with a recording FUSE
    /// layer under its rootfs, and write every read (mmap page faults included).
    Record(RecordArgs),
    /// Convert strace output or a list of paths into an advisor trace.
    Import(ImportArgs),
    /// Generate a synthetic trace for what-if analysis.
    Synth(SynthArgs),
    /// Join a trace with an image's table of contents: what the workload
    /// touched and what a lazy pull fetches for it, before and after ready.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// Output of `strace -f -tt -e trace=%file,read,pread64,readv,mmap CMD` (also -ttt, -T, -y, -o).
    Strace,
    /// One absolute path per line, each read whole; `# ready` marks the cold-start point.
    FileList,
}

/// Where the image's file table comes from.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ImageSourceArgs {
    /// Image reference whose eStargz TOCs to read from the registry.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// A file table saved by `advisor image inspect REF --toc-out FILE`.
    #[arg(long, value_name = "FILE")]
    pub files: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    pub from: ImportFrom,

    /// Input file (`-` = stdin).
    #[arg(value_name = "FILE")]
    pub input: PathBuf,

    /// Output trace (`-` = stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Image reference to record in the trace header (not looked up).
    #[arg(long, value_name = "REF")]
    pub image_ref: Option<String>,

    /// strace: host directory that is the container's root; stripped from `-y` paths.
    #[arg(long, value_name = "DIR")]
    pub root: Option<String>,

    /// strace: working directory of the traced command when it started.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub cwd: String,

    /// strace: mark `ready` at the first write to stdout/stderr containing this
    /// text (trace `write` too, with a large `-s`).
    #[arg(long, value_name = "TEXT")]
    pub ready_line: Option<String>,

    /// file-list: mark `ready` after this many files (else a `# ready` line).
    #[arg(long, value_name = "N")]
    pub ready_after: Option<u64>,
}

/// `--pattern`; commands/trace.rs translates it into `trace::synth::Pattern`.
/// The doc comments are the help text of each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthPattern {
    /// Files in TOC (layer, then archive) order, each read front to back.
    Sequential,
    /// Files picked at random; their `read_size` blocks read in random order
    /// across all of them.
    Random,
    /// The smallest files first (many files, few bytes each), each read whole,
    /// in random order.
    ManySmall,
}

#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    pub source: ImageSourceArgs,

    /// Working set: a share of the image's file bytes (`30%`, `0.3`) or a size (`200MiB`).
    #[arg(long, value_name = "SIZE")]
    pub working_set: WorkingSet,

    /// Access pattern.
    #[arg(long, value_enum)]
    pub pattern: SynthPattern,

    /// Bytes per read.
    #[arg(long, value_name = "SIZE", default_value = "128KiB", value_parser = values::size, allow_hyphen_values = true)]
    pub read_size: u64,

    /// Seed of the random choices (same seed, same trace).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Mark `ready` once this fraction (0–1) of the working set has been read.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub ready_at: Option<f64>,

    /// Output trace (`-` = stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub source: ImageSourceArgs,

    /// The trace (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,

    /// Simulate the snapshotter with `noprefetch = true`.
    #[arg(long)]
    pub no_prefetch: bool,

    /// Prefetch size for layers without a prefetch landmark (the
    /// `stargz.prefetch` label / `prefetch_size`); a landmark wins.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = values::size, allow_hyphen_values = true)]
    pub prefetch_size: u64,

    /// Simulate a registry that only serves single ranges (or
    /// `force_single_range_mode`).
    #[arg(long)]
    pub single_range: bool,

    /// How many missing paths to list.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub show_missing: usize,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number; expected a fraction from 0 to 1"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is outside 0..1"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Image to run (pulled eagerly with overlayfs; its layers are served through the recorder).
    #[arg(long, value_name = "REF")]
    pub image: String,

    /// Mark `ready` when a stdout/stderr line matches this regex (default: at the exit).
    #[arg(long, value_name = "PATTERN", conflicts_with = "ready_path")]
    pub ready_line: Option<String>,

    /// Mark `ready` when this absolute path exists inside the container.
    #[arg(long, value_name = "PATH")]
    pub ready_path: Option<String>,

    /// Stop the workload this long after its start (e.g. 90s, 10m, 1.5s; a bare
    /// number is seconds).
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = values::duration, allow_hyphen_values = true)]
    pub timeout: std::time::Duration,

    /// Output trace.
    #[arg(short, long, value_name = "FILE", default_value = "trace.jsonl")]
    pub output: PathBuf,

    /// Runs of the workload without the recorder before the recording: the
    /// median of their times corrects the recorded gaps (one run catches the
    /// machine's moment: single runs of a CPU-bound start measured up to 76 %
    /// slower than the same start after an eager pull on the lab).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub reference_runs: u32,

    /// Skip the reference runs (for workloads that must not run twice): the
    /// recorder's probed per-operation overhead corrects the gaps instead.
    #[arg(long, conflicts_with = "reference_runs")]
    pub no_reference_run: bool,

    /// Command replacing the image's entrypoint and command.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}
