//! Arguments of `advisor advise`.
use crate::cli::values;
use crate::predict::rtt_sweep::LIMIT_MAX_RTT;
use crate::units::{Bytes, Seconds};
use clap::Args;
use std::path::PathBuf;

/// Predict lazy vs eager for an image and a workload, and recommend one.
#[derive(Debug, Clone, Args)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub inputs: InputArgs,

    #[command(flatten)]
    pub path: PathArgs,

    /// Prefetch size the node's lazy pulls use when a layer has no landmark
    /// (`stargz.prefetch` label or `prefetch_size`), e.g. 10MiB; default: the profile's.
    #[arg(long, value_name = "SIZE", value_parser = values::size, allow_hyphen_values = true)]
    pub prefetch_size: Option<u64>,

    /// Do not simulate the snapshotter's background fetch in idle gaps.
    #[arg(long)]
    pub no_background_fetch: bool,

    /// Draw predicted completion vs working-set fraction (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Draw predicted cold start and completion vs the registry's round-trip time,
    /// from 0 to --rtt-max, with the RTTs where the fastest strategy changes (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot_rtt: Option<PathBuf>,

    /// The RTT sweep's upper end (the crossover RTT line and --plot-rtt), e.g. 200ms;
    /// more than 0, at most 10s.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_rtt_max, allow_hyphen_values = true)]
    pub rtt_max: Seconds,

    /// Write the files to prioritize for lazy+prefetch, one per line in first-touch order
    /// (for `ctr-remote image optimize` and `advisor image build --prioritize`).
    #[arg(long, value_name = "FILE")]
    pub prefetch_list: Option<PathBuf>,
}

/// `--rtt-max`: a duration more than 0 and at most [`LIMIT_MAX_RTT`].
fn parse_rtt_max(s: &str) -> Result<Seconds, String> {
    let d = crate::units::parse_duration_like(s, "200ms, 1s")?;
    let v = Seconds::from_duration(d);
    if v <= Seconds::ZERO || v > LIMIT_MAX_RTT {
        return Err(format!(
            "{v}: the sweep's highest RTT must be more than 0 and at most {LIMIT_MAX_RTT}"
        ));
    }
    Ok(v)
}

/// The image, the workload and the node: what a prediction is of (advise, plan).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Image reference (its eStargz form): TOCs are read from the registry with ranged GETs.
    #[arg(long, value_name = "REF", conflicts_with = "files")]
    pub image: Option<String>,

    /// A file table saved by `advisor image inspect REF --toc-out FILE`, instead of --image.
    #[arg(long, value_name = "FILE")]
    pub files: Option<PathBuf>,

    /// The workload's trace (advisor trace format; `advisor trace record|import|synth` make one).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Calibrated node profile (`advisor calibrate`); default: the bundled lab profile.
    #[arg(long, env = "ADVISOR_PROFILE", value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// Compressed size of the image's gzip (eager) form (e.g. 812MiB or plain bytes), when it
    /// differs from the eStargz form's; default: estimated from the eStargz blobs.
    #[arg(long, value_name = "SIZE", value_parser = values::bytes, allow_hyphen_values = true)]
    pub gzip_bytes: Option<Bytes>,
}

/// Another network path than the calibration's (advise, plan).
#[derive(Debug, Clone, Args)]
pub struct PathArgs {
    /// Predict for the network path `advisor probe -o FILE` measured (its RTT,
    /// throughput and set-up) instead of the calibration's.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["rtt", "bandwidth"])]
    pub network: Option<PathBuf>,

    /// Predict for another network path than the calibration's: its round-trip time
    /// (e.g. 20ms), with --bandwidth.
    #[arg(long, value_name = "DURATION", value_parser = values::rtt, requires = "bandwidth", allow_hyphen_values = true)]
    pub rtt: Option<std::time::Duration>,

    /// The path's bandwidth, as tc writes it (500mbit, 1gbit) or in bytes per second
    /// (125MB/s), with --rtt.
    #[arg(long, value_name = "RATE", value_parser = values::rate, requires = "rtt", allow_hyphen_values = true)]
    pub bandwidth: Option<f64>,
}
