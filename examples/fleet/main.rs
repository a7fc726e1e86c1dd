//! `cargo run --release --example fleet`: N independent nodes pull one image
//! through one shared registry link at the same moment (issue 16 §3), the
//! measurement `advisor plan`'s fleet predictions are checked against.
//!
//! On the lab: `lab/lab shape --rtt 5ms --bandwidth 200mbit; lab/lab nodes 4;
//! eval "$(lab/lab env)"`, then
//!
//! ```text
//! fleet --strategy eager --reference 127.0.0.1:5125/REPO:TAG \
//!   --command 'cat /opt/app/bin/server >/dev/null; echo READY' --out eager-4.json
//! ```
//!
//! The nodes, their reset command, their metrics, the veth and the access
//! log come from `lab/lab env` (ADVISOR_LAB_NODES, ADVISOR_LAB_NODES_RESET_CMD,
//! ADVISOR_LAB_NODES_METRICS, ADVISOR_LAB_SHAPED_VETH, ADVISOR_LAB_DIR) unless
//! given. Needs root (containerd's clients, the page cache). See fleet.rs.
mod fleet;
#[path = "../validate/truth.rs"]
#[allow(dead_code)]
mod truth;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum Strategy {
    /// `ctr images pull` + `ctr run` (overlayfs).
    Eager,
    /// `ctr-remote images rpull` + `ctr run --snapshotter stargz`.
    Lazy,
}

#[derive(Parser)]
#[command(
    about = "N nodes pull one image at the same moment through one registry link: each node's ready and done times, the registry's bytes and GETs"
)]
struct Args {
    /// The nodes' containerd sockets, comma-separated (`lab/lab nodes N`).
    #[arg(
        long,
        env = "ADVISOR_LAB_NODES",
        value_delimiter = ',',
        required = true
    )]
    nodes: Vec<String>,
    #[arg(long, value_enum)]
    strategy: Strategy,
    /// The image (eager: its gzip form; lazy: its eStargz form), on the shaped registry.
    #[arg(long)]
    reference: String,
    /// The workload, run by `/bin/sh -c` in every node's container: it prints
    /// READY when ready (`echo DONE` is appended: its last line).
    #[arg(long)]
    command: String,
    /// The interface whose received bytes are the registry's downloads: the
    /// host end of the lab's shaped veth pair.
    #[arg(long, env = "ADVISOR_LAB_SHAPED_VETH")]
    veth: String,
    /// Seconds the link must stay idle (under 256 KiB a second) before the
    /// round ends: lazy nodes fetch the rest of the image in the background
    /// after their workload (5 s after their last read).
    #[arg(long, default_value_t = 8.0)]
    settle: f64,
    /// Makes every node cold (`lab/lab nodes reset`).
    #[arg(long, env = "ADVISOR_LAB_NODES_RESET_CMD")]
    reset_cmd: String,
    /// The nodes' stargz metrics endpoints, comma-separated, in the order of
    /// --nodes (lazy: each node's snapshotter counters over the round).
    #[arg(long, env = "ADVISOR_LAB_NODES_METRICS", value_delimiter = ',')]
    metrics: Vec<String>,
    /// The shaped registry's access log, whose lines count the GETs
    /// (default: ADVISOR_LAB_DIR/logs/registry-shaped.log, when it exists).
    #[arg(long)]
    access_log: Option<PathBuf>,
    /// The containerd namespace, on every node.
    #[arg(long, default_value = "advisor-fleet")]
    namespace: String,
    /// Where the JSON report goes.
    #[arg(long)]
    out: PathBuf,
    /// K equal waves, each starting when every pod of the one before is
    /// ready (as `advisor plan --waves`).
    #[arg(long, conflicts_with = "max_surge")]
    waves: Option<usize>,
    /// At most N pods started and not yet ready (as `advisor plan --max-surge`).
    #[arg(long)]
    max_surge: Option<usize>,
    /// HOST:PORT of a proxy that passes every request to the shaped registry
    /// (`scripts/rate_limited_registry.sh`): --reference may be on it, as
    /// its traffic still crosses the shaped veth.
    #[arg(long)]
    front: Option<String>,
}

fn main() {
    let a = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = run(a) {
        eprintln!("fleet: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let on = |host: &str| a.reference.starts_with(&format!("{host}/"));
    if let Some(shaped) = env("ADVISOR_LAB_SHAPED_REGISTRY")
        && !on(&shaped)
        && !a.front.as_deref().is_some_and(on)
    {
        anyhow::bail!(
            "--reference {} is not on the shaped registry {shaped}: the registry's bytes are counted at its veth ({}), which these pulls would not cross; pull {shaped}/REPO:TAG (or through a proxy to it named by --front)",
            a.reference,
            a.veth
        );
    }
    let access_log = a.access_log.or_else(|| {
        let p = PathBuf::from(env("ADVISOR_LAB_DIR")?).join("logs/registry-shaped.log");
        p.exists().then_some(p)
    });
    let cfg = fleet::Config {
        nodes: a.nodes.into_iter().filter(|n| !n.is_empty()).collect(),
        metrics: a.metrics.into_iter().filter(|m| !m.is_empty()).collect(),
        lazy: matches!(a.strategy, Strategy::Lazy),
        reference: a.reference,
        command: a.command,
        reset_cmd: a.reset_cmd,
        veth: a.veth,
        access_log,
        settle_s: a.settle,
        namespace: a.namespace,
        rollout: match (a.waves, a.max_surge) {
            (Some(0), _) | (_, Some(0)) => anyhow::bail!("--waves and --max-surge take 1 or more"),
            (Some(w), _) => fleet::Rollout::Waves(w),
            (None, Some(s)) => fleet::Rollout::MaxSurge(s),
            (None, None) => fleet::Rollout::AllAtOnce,
        },
    };
    let report = fleet::run(&cfg, |m| eprintln!("fleet: {m}"))?;
    let json = serde_json::to_string_pretty(&report)?;
    let tmp = a.out.with_extension("json.tmp");
    std::fs::write(&tmp, &json).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", a.out.display()))?;
    for r in &report.per_node {
        println!(
            "node {}: start {:.2} s, pull {:.2} s, ready {:.2} s, done {:.2} s",
            r.node, r.start_s, r.pull_s, r.ready_s, r.done_s
        );
    }
    let reg = &report.registry;
    println!(
        "registry: {:.1} MB (frames at {}), {} GETs, last byte at {:.2} s",
        reg.bytes as f64 / 1e6,
        reg.veth,
        reg.gets.map_or("?".into(), |g| g.to_string()),
        reg.last_byte_s
    );
    eprintln!("fleet: report in {}", a.out.display());
    Ok(())
}
