//! Arguments of `advisor probe`.
use crate::cli::values;
use clap::Args;
use std::path::PathBuf;

/// Measure this node's path to a registry in under a minute: connection and
/// TLS set-up, authorization, round-trip time on one connection, single- and
/// multi-stream throughput of a blob; writes a network profile (docs/network.md).
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Registry to probe (env ADVISOR_REGISTRY, else the config file's
    /// `registry`). With a hosts.toml mirror for it, the mirror a pull would
    /// use is measured.
    #[arg(long, env = "ADVISOR_REGISTRY", value_name = "HOST[:PORT]")]
    pub registry: Option<String>,

    /// Blob to read for throughput: a repository on the registry and a digest.
    #[arg(long, value_name = "REPO@sha256:…", conflicts_with = "image")]
    pub blob: Option<String>,

    /// Image whose largest layer is read for throughput (a reference on the registry).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// Parallel streams (each on its own connection) for the aggregate throughput.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub streams: usize,

    /// Bytes read at most per throughput measurement (e.g. `64MiB`).
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = values::size, allow_hyphen_values = true)]
    pub max_bytes: u64,

    /// Round trips timed on one kept-alive connection.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rtt_samples: usize,

    /// Write the network profile (JSON) here (`-` for stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
