//! Arguments of `advisor plan`.
use crate::cli::values;
use clap::Args;
use std::path::PathBuf;

/// Plan a rollout: N nodes pulling one image through a shared registry.
/// When 50 %, 95 % and all pods are ready and done, the registry's egress
/// and requests, disk per node and the binding constraint, for eager, lazy
/// and lazy+prefetch (docs/plan.md). With no image and trace: the bundled example.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inputs: crate::cli::advise::InputArgs,

    /// The nodes' path to the registry (`advisor probe -o FILE` from one node of the
    /// pool, or --rtt and --bandwidth); default: the calibration's own.
    #[command(flatten)]
    pub path: crate::cli::advise::PathArgs,

    /// Nodes that pull the image (one pod each); default with --manifest: its replicas.
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_nodes)]
    pub nodes: Option<u64>,

    /// Roll out in K waves of equal size, each when the one before is ready.
    #[arg(
        long,
        value_name = "K",
        conflicts_with_all = ["max_surge", "manifest"],
        allow_hyphen_values = true
    )]
    pub waves: Option<i64>,

    /// At most N pods (or P% of --nodes) started and not ready at once; default: all at once.
    #[arg(
        long,
        value_name = "N|P%",
        conflicts_with = "manifest",
        allow_hyphen_values = true
    )]
    pub max_surge: Option<String>,

    /// Take the pods and the rollout from a Kubernetes Deployment, StatefulSet or DaemonSet
    /// (YAML): its replicas and rolling-update settings (a DaemonSet needs --nodes).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The registry's egress shared by all nodes (10gbit, 1.25GB/s); default: one node's
    /// path bandwidth (as if the probe's path were the registry's limit).
    #[arg(long, value_name = "RATE", value_parser = values::rate, allow_hyphen_values = true)]
    pub registry_egress: Option<f64>,

    /// Requests per second the registry serves (a rate limit), if any.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub registry_rps: Option<f64>,

    /// Each node's own link, when slower than its path to the registry (e.g. 10gbit).
    #[arg(long, value_name = "RATE", value_parser = values::rate, allow_hyphen_values = true)]
    pub node_bandwidth: Option<f64>,

    /// Each node's disk for images (e.g. 100GiB): says whether each strategy fits.
    #[arg(long, value_name = "SIZE", value_parser = values::size, allow_hyphen_values = true)]
    pub node_disk: Option<u64>,

    /// A deadline to meet: METRIC=DURATION with METRIC one of ready-p50, ready-p95,
    /// ready-all, done-p50, done-p95, done-all (e.g. ready-p95=60s).
    #[arg(long, value_name = "METRIC=DURATION", value_parser = crate::plan::parse_target, allow_hyphen_values = true)]
    pub target: Option<crate::plan::Target>,

    /// Draw pods ready and done over time per strategy (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// `--nodes`: a whole number from 1 to [`crate::plan::MAX_NODES`].
fn parse_nodes(s: &str) -> Result<u64, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: give a whole number of nodes, like 200"))?;
    if n < 1 || n > crate::plan::MAX_NODES as i128 {
        return Err(format!(
            "{n}: give a number of nodes from 1 to {}",
            crate::plan::MAX_NODES
        ));
    }
    Ok(n as u64)
}
