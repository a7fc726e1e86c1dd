//! Arguments of `advisor calibrate`.
use crate::cli::values;
use clap::Args;
use std::path::PathBuf;

/// Measure this node and fit its cost model: builds and pushes the calibration
/// images, runs them cold eagerly and lazily, fits every parameter with its
/// interval, cross-validates, and writes a profile.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// Registry the calibration images are pushed to and pulled from (needed to measure).
    #[arg(long, env = "ADVISOR_REGISTRY", value_name = "HOST:PORT")]
    pub registry: Option<String>,

    /// Shell command that restarts the stargz snapshotter with empty caches
    /// (`lab/lab env` sets it for the lab).
    #[arg(long, env = "ADVISOR_LAZY_RESET_CMD", value_name = "CMD")]
    pub lazy_reset_cmd: Option<String>,

    /// The stargz snapshotter's Prometheus metrics URL.
    #[arg(long, env = "ADVISOR_STARGZ_METRICS", value_name = "URL")]
    pub stargz_metrics: Option<String>,

    /// Where to write the profile (default: calibration/<hostname>.json).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The runs file measurements are appended to, and resumed from
    /// (default: the profile's path with `.runs.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub runs: Option<PathBuf>,

    /// Stop starting new runs after this long (e.g. `10m`, `1h`); fit what was measured.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = values::duration, allow_hyphen_values = true)]
    pub budget: std::time::Duration,

    /// Fewer repeats: a rough profile in a few minutes.
    #[arg(long)]
    pub quick: bool,

    /// Kill a calibration workload that runs longer than this (e.g. 90s, 5m, 1.5s;
    /// a bare number is seconds).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = values::duration, allow_hyphen_values = true)]
    pub timeout: std::time::Duration,

    /// Build and push the calibration images even when the registry has them.
    #[arg(long)]
    pub rebuild: bool,

    /// Clean a calibration image even when a namespace that is not advisor's
    /// (e.g. `k8s.io`) holds its content or snapshots: deletes them there too.
    /// Without it, advisor refuses and deletes nothing.
    #[arg(long)]
    pub force: bool,

    /// Do not measure: refit the profile from the runs file only.
    #[arg(long)]
    pub refit: bool,

    /// Re-run a few matrix points (eager, lazy, lazy+prefetch) and report the
    /// drift from this profile.
    #[arg(long, value_name = "PROFILE", conflicts_with = "refit")]
    pub check: Option<PathBuf>,

    /// Draw each run's measured total completion against the fit's
    /// out-of-fold prediction, and the residuals (SVG).
    #[arg(long, value_name = "FILE.svg", conflicts_with = "check")]
    pub plot: Option<PathBuf>,
}
