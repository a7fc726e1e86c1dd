//! `cargo run --release --example validate`: advisor's predictions against
//! measured runs on a node (the lab by default), as in docs/results.md.
//!
//! Needs the lab (`lab/lab up; eval "$(lab/lab env)"`) or `ADVISOR_CONTAINERD`,
//! `ADVISOR_REGISTRY` and `ADVISOR_LAZY_RESET_CMD` for a real node, and the
//! advisor binary (`cargo build --release` first).
mod harness;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Predicted vs measured cold start and completion, eager and lazy")]
struct Args {
    /// Image spec to build and push.
    #[arg(long, default_value = "models/validation/app.json")]
    spec: PathBuf,
    /// The workloads (JSON list of name, description, command).
    #[arg(long, default_value = "models/validation/workloads.json")]
    workloads: PathBuf,
    /// Cold runs per strategy and workload.
    #[arg(short = 'n', long, default_value_t = 3)]
    repeats: usize,
    /// Registry to push to (host:port).
    #[arg(long, env = "ADVISOR_REGISTRY")]
    registry: String,
    /// Where traces and raw JSON go.
    #[arg(long, default_value = "target/validate")]
    out: PathBuf,
    /// Only these workloads.
    #[arg(long)]
    only: Vec<String>,
    /// Node profile for the predictions (default: the bundled calibration/default.json).
    #[arg(long, conflicts_with = "calibrate")]
    profile: Option<PathBuf>,
    /// Calibrate this node into FILE around the measurements (`calibrate --quick` before the
    /// first cold run, the full matrix's last round after the last) and predict with it.
    #[arg(long, value_name = "FILE")]
    calibrate: Option<PathBuf>,
    /// Also measure lazy+prefetch: per workload, the image rebuilt with `advise --prefetch-list`'s
    /// files prioritized (`image build --prioritize`).
    #[arg(long)]
    prefetch: bool,
    /// The advisor binary (default: next to this example).
    #[arg(long)]
    advisor: Option<PathBuf>,
    /// Measure these pushed images (gzip form) instead of building `--spec` (e.g. images
    /// converted by `ctr-remote image optimize`); needs `--estargz`.
    #[arg(long, requires = "estargz", value_name = "REF")]
    gzip: Option<String>,
    /// Lazy pulls the built gzip form converted by Debian's `ctr-remote image optimize
    /// --no-optimize --oci`, not advisor's own eStargz form.
    #[arg(long, conflicts_with = "gzip")]
    ctr_remote: bool,
    /// The eStargz form of `--gzip`.
    #[arg(long, requires = "gzip", value_name = "REF")]
    estargz: Option<String>,
    /// containerd's socket, for containerd's own clients (ctr, ctr-remote).
    #[arg(
        long,
        env = "ADVISOR_CONTAINERD",
        default_value = "/run/containerd/containerd.sock"
    )]
    address: String,
    /// An extra flag for every `advise` (repeat it): `--advise-arg=--rtt=20ms
    /// --advise-arg=--bandwidth=500mbit` predicts for a shaped path.
    #[arg(long, allow_hyphen_values = true)]
    advise_arg: Vec<String>,
    /// Restarts the stargz snapshotter empty before the clients' cold lazy runs.
    #[arg(long, env = "ADVISOR_LAZY_RESET_CMD")]
    lazy_reset_cmd: String,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let advisor = match a.advisor.or_else(harness::sibling_advisor) {
        Some(p) => p,
        None => anyhow::bail!(
            "no advisor binary next to this example: build it (cargo build --release) or pass --advisor"
        ),
    };
    let stem = a
        .spec
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    // Pushed images: the out dir is named after the gzip form's repository.
    let named = match &a.gzip {
        Some(g) => PathBuf::from(g.rsplit('/').next().unwrap_or(g).replace(':', "-")),
        None => a.spec.clone(),
    };
    let cfg = harness::Config {
        advisor,
        registry: a.registry,
        repository: format!("advisor-validate/{stem}:v1"),
        out_dir: harness::default_out_dir(&a.out, &named),
        spec: a.spec,
        workloads: a.workloads,
        repeats: a.repeats,
        namespace: "advisor-validate".into(),
        global: Vec::new(),
        only: a.only,
        profile: a.profile,
        calibrate: a.calibrate,
        prefetch: a.prefetch,
        pushed: a.gzip.zip(a.estargz),
        ctr_remote_estargz: a.ctr_remote,
        advise_args: a.advise_arg,
        clients: harness::truth::Clients {
            address: a.address,
            namespace: "advisor-validate-ctr".into(),
            lazy_reset: a.lazy_reset_cmd,
            plain_http: true,
            metrics: std::env::var("ADVISOR_STARGZ_METRICS").ok(),
        },
    };
    let report = harness::run(&cfg, |m| eprintln!("validate: {m}"))?;
    std::fs::write(
        cfg.out_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    print!("{}", harness::markdown(&report));
    eprintln!("validate: raw results in {}", cfg.out_dir.display());
    Ok(())
}
