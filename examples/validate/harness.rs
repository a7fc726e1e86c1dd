//! Predicted vs measured, end to end, through advisor's own commands.
//!
//! For one image spec and a list of workloads: `advisor image build` pushes
//! both forms; `advisor image inspect --toc-out` saves the eStargz form's file
//! table; every workload is recorded with `advisor trace record` on the gzip
//! form; `advisor bench` measures cold eager (overlayfs) and cold lazy
//! (stargz) runs of the same commands, in rounds (each workload and strategy
//! once per round); `advisor advise` then predicts each from the bundled
//! profile, a given one, or one `advisor calibrate` makes of the node around
//! the measurements (`Config::calibrate`). With `Config::prefetch`, each
//! workload's lazy+prefetch image (`advise --prefetch-list`, `image build
//! --prioritize`) is measured too. Shared by `cargo run --example validate`
//! (the results page) and the lab test `tests/it/validate_lab.rs`.
#![allow(dead_code)]
use advisor::units::median;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "truth.rs"]
pub mod truth;

/// Line the workloads print when ready.
pub const READY_LINE: &str = "^READY$";

#[derive(Debug, Clone)]
pub struct Config {
    /// The advisor binary.
    pub advisor: PathBuf,
    /// Registry host:port to push to (plain HTTP on localhost).
    pub registry: String,
    /// Repository (under the registry) and tag for the built image.
    pub repository: String,
    pub spec: PathBuf,
    pub workloads: PathBuf,
    /// Cold runs per strategy and workload.
    pub repeats: usize,
    /// Where traces, file tables and raw JSON go.
    pub out_dir: PathBuf,
    /// containerd namespace for records and benches.
    pub namespace: String,
    /// Extra global flags (e.g. `--address SOCK`).
    pub global: Vec<String>,
    /// Only these workloads (by name); empty: all.
    pub only: Vec<String>,
    /// The node profile for `advise` (None: the bundled one).
    pub profile: Option<PathBuf>,
    /// Calibrate this node into this profile around the measurements and
    /// predict with it (overrides `profile`): `calibrate --quick` before the
    /// first cold run, the full matrix's remaining round after the last.
    pub calibrate: Option<PathBuf>,
    /// Also measure lazy+prefetch: per workload, an eStargz image rebuilt
    /// with the startup set `advise --prefetch-list` names prioritized.
    pub prefetch: bool,
    /// Images already pushed (gzip, eStargz), e.g. converted by
    /// `ctr-remote image optimize`, instead of building `spec`.
    pub pushed: Option<(String, String)>,
    /// Lazy pulls the gzip form converted by Debian's `ctr-remote image
    /// optimize --no-optimize --oci` instead of advisor's eStargz form.
    pub ctr_remote_estargz: bool,
    /// Extra `advise` flags, e.g. `--rtt 20ms --bandwidth 500mbit` to
    /// predict for a shaped path with a profile calibrated on loopback.
    pub advise_args: Vec<String>,
    /// containerd's own clients, measured beside every `advisor bench` run:
    /// the ground truth predictions are checked against.
    pub clients: truth::Clients,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub command: String,
    /// A trace made outside the harness (e.g. strace, `advisor trace
    /// import`): predicted from too, beside the recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_trace: Option<PathBuf>,
}

impl Workload {
    /// The command as run: the workload, then the `DONE` line its completion
    /// is taken at (a user timing `ctr run` sees the workload's last line,
    /// not the teardown after it).
    pub fn script(&self) -> String {
        format!("{}\necho {}", self.command, truth::DONE)
    }
}

/// One of the four numbers: a strategy to a point.
#[derive(Debug, Clone, Serialize)]
pub struct Number {
    pub strategy: String,
    /// "ready" or "complete".
    pub point: String,
    pub predicted: f64,
    pub predicted_low: f64,
    pub predicted_high: f64,
    /// containerd's own clients' runs (the ground truth).
    pub measured: Vec<f64>,
    pub measured_median: f64,
    /// `advisor bench`'s runs, interleaved with the clients' ones.
    pub bench: Vec<f64>,
    pub bench_median: f64,
    /// (predicted − measured median) / max(measured median, 1 s).
    pub error: f64,
}

impl Number {
    /// `predicted` against the measured runs (error relative to at least 1 s).
    pub fn new(
        strategy: &str,
        point: &str,
        (predicted, predicted_low, predicted_high): (f64, f64, f64),
        measured: Vec<f64>,
        bench: Vec<f64>,
    ) -> Number {
        let measured_median = median(&measured);
        Number {
            strategy: strategy.into(),
            point: point.into(),
            predicted,
            predicted_low,
            predicted_high,
            measured_median,
            bench_median: median(&bench),
            error: (predicted - measured_median) / measured_median.max(1.0),
            measured,
            bench,
        }
    }
    /// "P s (low – high)": the prediction with its 95 % interval.
    pub fn predicted_text(&self) -> String {
        format!(
            "{:.2} s ({:.2} – {:.2})",
            self.predicted, self.predicted_low, self.predicted_high
        )
    }
    pub fn measured_min(&self) -> f64 {
        self.measured.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub fn measured_max(&self) -> f64 {
        self.measured.iter().copied().fold(0.0, f64::max)
    }
    /// Off by more than `tolerance` of the measured median, and no measured
    /// run inside the prediction's 95 % interval widened by `accuracy` (the
    /// profile's own cross-validated p90 error, 0 for none): neither the
    /// calibration's uncertainty nor the run-to-run spread explains the miss.
    pub fn clearly_off(&self, tolerance: f64, accuracy: f64) -> bool {
        let low = self.predicted_low * (1.0 - accuracy).max(0.0);
        let high = self.predicted_high * (1.0 + accuracy);
        self.error.abs() > tolerance && (high < self.measured_min() || low > self.measured_max())
    }
}

/// Medians of one strategy's measured runs, in the seed study's terms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    /// resolve + fetch + unpack (for lazy: the remote mounts).
    pub pull_s: f64,
    /// create + start + ready phases: container start to ready.
    pub start_to_ready_s: f64,
    pub to_ready_s: f64,
    pub to_complete_s: f64,
    /// Bytes received from the registry during the run.
    pub received_bytes: f64,
    /// Content store + snapshots after the run (lazy: snapshotter caches not counted).
    pub disk_bytes: f64,
    /// Lazy: the snapshotter's GETs to the registry (NaN: not counted).
    pub registry_gets: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub workload: Workload,
    pub trace: PathBuf,
    pub working_set_fraction: f64,
    pub files_touched: u64,
    /// advisor's pick for fastest completion (eager, lazy or lazy-prefetch).
    pub advised_completion: String,
    /// Whether the completion pick is a close call (intervals overlap).
    pub advised_completion_confident: bool,
    /// The rule of thumb's pick for completion (None in its 10–30 % band).
    pub rule_of_thumb: Option<String>,
    /// The strategy measured fastest to completion (medians), among those
    /// measured: eager, lazy and, with `Config::prefetch`, lazy-prefetch.
    pub measured_completion_winner: String,
    /// The strategy advisor predicts fastest to completion among the same.
    pub predicted_completion_winner: String,
    pub numbers: Vec<Number>,
    /// The same predicted from the workload's imported trace (strace), if any.
    pub imported_numbers: Vec<Number>,
    pub imported_completion_winner: Option<String>,
    /// Per strategy measured, the measured medians: advisor bench's runs
    /// under the strategy's name, containerd's clients' as "<name> (ctr)".
    pub measured: std::collections::BTreeMap<String, Measured>,
    /// Task start to exit while `trace record` recorded it through FUSE (s).
    pub recorded_s: f64,
    /// Task start to exit in the eager runs, median (s): the same workload
    /// on the same warm overlayfs rootfs without the recorder.
    pub unrecorded_s: f64,
}

impl Case {
    /// Recorder overhead: recorded / unrecorded workload time.
    pub fn recorder_ratio(&self) -> f64 {
        self.recorded_s / self.unrecorded_s
    }
}

impl Case {
    pub fn number(&self, strategy: &str, point: &str) -> &Number {
        self.numbers
            .iter()
            .find(|n| n.strategy == strategy && n.point == point)
            .expect("every case has the numbers of the strategies it measured")
    }
    /// The measured completion median of a strategy's runs.
    pub fn measured_completion(&self, strategy: &str) -> f64 {
        self.number(strategy, "complete").measured_median
    }
    /// How much longer advisor's predicted-fastest strategy measured than the
    /// measured fastest: 0 when advisor picked the winner.
    pub fn pick_regret(&self) -> f64 {
        self.measured_completion(&self.predicted_completion_winner)
            / self.measured_completion(&self.measured_completion_winner)
            - 1.0
    }
    /// The rule of thumb decides and picks the other family (eager or lazy,
    /// prefetched or not) than the one that measured fastest.
    pub fn rule_is_wrong(&self) -> bool {
        self.rule_of_thumb
            .as_deref()
            .is_some_and(|r| r != family(&self.measured_completion_winner))
    }
}

/// eager, or lazy for lazy and lazy-prefetch.
pub fn family(strategy: &str) -> &str {
    if strategy == "eager" { "eager" } else { "lazy" }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub spec: PathBuf,
    /// The image as the tables name it.
    pub image: String,
    /// The profile predictions used (None: the bundled one).
    pub profile: Option<PathBuf>,
    /// When the harness calibrated the node: the profile's runs and its
    /// cross-validation (calibrate's JSON report, abridged).
    pub calibration: Option<Calibration>,
    pub gzip_reference: String,
    pub estargz_reference: String,
    pub gzip_bytes: u64,
    pub uncompressed_bytes: u64,
    pub repeats: usize,
    pub cases: Vec<Case>,
}

impl Config {
    fn advisor(&self) -> Command {
        let mut c = Command::new(&self.advisor);
        c.args(&self.global);
        c
    }

    /// Run advisor with `--format json` and parse its stdout.
    fn json(&self, what: &str, args: &[&str]) -> anyhow::Result<Value> {
        let mut c = self.advisor();
        c.args(["--format", "json"]).args(args);
        let out = c
            .output()
            .with_context(|| format!("running {}", self.advisor.display()))?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "{what}: stdout is not JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// A calibration the harness made.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub runs: u64,
    /// Out-of-fold median and 90th percentile |error| of the calibration's own runs.
    pub cv_median: f64,
    pub cv_p90: f64,
}

/// `advisor calibrate` into `profile` on the harness's registry and namespace
/// (`quick`: the quick matrix; otherwise the full one, resuming the runs the
/// profile's runs file already holds).
fn calibrate(cfg: &Config, profile: &Path, quick: bool) -> anyhow::Result<Calibration> {
    let out = profile.to_str().context("profile path is not UTF-8")?;
    let mut args = vec![
        "--namespace",
        &cfg.namespace,
        "calibrate",
        "--registry",
        &cfg.registry,
        "--budget",
        "40m",
        "-o",
        out,
    ];
    if quick {
        args.push("--quick");
    }
    let r = cfg.json("calibrate", &args)?;
    let v = &r["profile"]["validation"];
    Ok(Calibration {
        runs: r["runs"].as_u64().unwrap_or(0),
        cv_median: f(
            &v["median_abs_pct_error"],
            "validation.median_abs_pct_error",
        )?,
        cv_p90: f(&v["p90_abs_pct_error"], "validation.p90_abs_pct_error")?,
    })
}

/// Build and push the image lazy+prefetch pulls for one workload: the spec
/// rebuilt with `advise --prefetch-list`'s files prioritized, as advise tells
/// a user to do (`image build --prioritize`). Returns its eStargz reference.
fn prefetch_image(
    cfg: &Config,
    w: &Workload,
    trace: &Path,
    files: &str,
    gzip_bytes: u64,
) -> anyhow::Result<String> {
    let list = cfg.out_dir.join(format!("{}.prefetch.txt", w.name));
    let list_s = list.to_str().context("out dir is not UTF-8")?;
    cfg.json(
        "advise --prefetch-list",
        &[
            "advise",
            "--files",
            files,
            "--trace",
            trace.to_str().context("out dir is not UTF-8")?,
            "--gzip-bytes",
            &gzip_bytes.to_string(),
            "--prefetch-list",
            list_s,
        ],
    )?;
    let (repo, tag) = cfg
        .repository
        .rsplit_once(':')
        .unwrap_or((&cfg.repository, "latest"));
    let reference = format!("{}/{repo}:{tag}-{}-prefetch", cfg.registry, w.name);
    let spec = cfg.spec.to_str().context("spec path is not UTF-8")?;
    let built = cfg.json(
        "image build --prioritize",
        &[
            "image",
            "build",
            "--spec",
            spec,
            "--prioritize",
            list_s,
            "--push",
            &reference,
        ],
    )?;
    built["forms"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["form"] == "estargz"))
        .and_then(|f| f["reference"].as_str())
        .map(String::from)
        .with_context(|| format!("image build reported no eStargz form: {built}"))
}

/// The image every strategy pulls, in both forms.
pub struct Pushed {
    pub gzip: String,
    pub estargz: String,
    /// Compressed bytes of the gzip form's layers.
    pub gzip_bytes: u64,
    pub uncompressed_bytes: u64,
}

/// Build and push `cfg.spec` with `advisor image build`, or take the images
/// `cfg.pushed` names (sizes read back with `advisor image inspect`).
fn push_image(cfg: &Config, progress: &mut impl FnMut(&str)) -> anyhow::Result<Pushed> {
    let sum = |v: &Value, key: &str| -> u64 {
        v["layers"]
            .as_array()
            .map(|ls| ls.iter().filter_map(|l| l[key].as_u64()).sum())
            .unwrap_or(0)
    };
    if let Some((gzip, estargz)) = &cfg.pushed {
        progress(&format!("inspecting {gzip} and {estargz}"));
        let g = cfg.json("image inspect", &["image", "inspect", gzip])?;
        let e = cfg.json("image inspect", &["image", "inspect", estargz])?;
        std::fs::write(cfg.out_dir.join("inspect-gzip.json"), g.to_string())?;
        return Ok(Pushed {
            gzip: gzip.clone(),
            estargz: estargz.clone(),
            gzip_bytes: sum(&g, "compressed_size"),
            uncompressed_bytes: sum(&e, "uncompressed_size"),
        });
    }
    progress(&format!("building and pushing {}", cfg.spec.display()));
    let reference = format!("{}/{}", cfg.registry, cfg.repository);
    let spec = cfg.spec.to_str().context("spec path is not UTF-8")?;
    let built = cfg.json(
        "image build",
        &["image", "build", "--spec", spec, "--push", &reference],
    )?;
    std::fs::write(cfg.out_dir.join("build.json"), built.to_string())?;
    let form = |name: &str| -> anyhow::Result<&Value> {
        built["forms"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["form"] == name))
            .with_context(|| format!("image build reported no {name} form: {built}"))
    };
    let (gzip, esgz) = (form("gzip")?, form("estargz")?);
    let reference = |f: &Value| f["reference"].as_str().map(String::from);
    let gzip_ref = reference(gzip).context("gzip reference")?;
    let mut estargz = reference(esgz).context("eStargz reference")?;
    if cfg.ctr_remote_estargz {
        estargz = format!("{estargz}-ctr-remote");
        progress(&format!(
            "converting {gzip_ref} with ctr-remote into {estargz}"
        ));
        cfg.clients.prepare()?;
        cfg.clients.convert(&gzip_ref, &estargz)?;
    }
    Ok(Pushed {
        gzip: gzip_ref,
        estargz,
        gzip_bytes: gzip["compressed_size"].as_u64().context("gzip size")?,
        uncompressed_bytes: sum(gzip, "uncompressed_size"),
    })
}

/// One strategy's cold runs of one workload: advisor bench's (raw JSON
/// runs) and containerd's clients' (the ground truth).
#[derive(Debug, Clone, Default)]
struct Runs {
    bench: Vec<Value>,
    truth: Vec<truth::ClientRun>,
}

/// One cold run to measure.
struct Run<'a> {
    w: &'a Workload,
    strategy: &'a str,
    image: &'a str,
    snapshotter: &'a str,
    round: usize,
}

/// One cold `advisor bench` run; its raw JSON is kept in the out dir.
fn bench_run(cfg: &Config, r: &Run) -> anyhow::Result<Vec<Value>> {
    if r.snapshotter != "stargz" {
        // No background fetch of an earlier lazy run on the link (bench
        // resets the snapshotter for its lazy runs only).
        cfg.clients.reset_lazy()?;
    }
    let b = cfg.json(
        "bench",
        &[
            "--namespace",
            &cfg.namespace,
            "bench",
            "--image",
            r.image,
            "--snapshotter",
            r.snapshotter,
            "--mode",
            "cold",
            "-r",
            "1",
            "--ready-line",
            READY_LINE,
            "--",
            "/bin/sh",
            "-c",
            &r.w.script(),
        ],
    )?;
    let name = format!("{}.bench-{}-{}.json", r.w.name, r.strategy, r.round);
    std::fs::write(cfg.out_dir.join(name), b.to_string())?;
    Ok(b["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .collect())
}

/// One cold run through containerd's own clients; kept in the out dir.
fn client_run(cfg: &Config, r: &Run) -> anyhow::Result<truth::ClientRun> {
    let id = format!("validate-{}-{}", std::process::id(), r.round);
    let lazy = r.snapshotter == "stargz";
    let run = cfg
        .clients
        .cold_run(r.image, lazy, &r.w.script(), &id)
        .with_context(|| format!("{}: {} through containerd's clients", r.w.name, r.strategy))?;
    let name = format!("{}.clients-{}-{}.json", r.w.name, r.strategy, r.round);
    std::fs::write(cfg.out_dir.join(name), serde_json::to_string(&run)?)?;
    Ok(run)
}

/// `advisor advise` of one trace against the image's file table.
fn predict(
    cfg: &Config,
    profile: Option<&Path>,
    trace: &Path,
    files: &str,
    gzip_bytes: u64,
) -> anyhow::Result<Value> {
    let trace_s = trace.to_str().context("trace path is not UTF-8")?;
    let gzip_bytes_s = gzip_bytes.to_string();
    let mut args = vec![
        "advise",
        "--files",
        files,
        "--trace",
        trace_s,
        "--gzip-bytes",
        &gzip_bytes_s,
    ];
    if let Some(p) = profile {
        args.extend([
            "--profile",
            p.to_str().context("profile path is not UTF-8")?,
        ]);
    }
    args.extend(cfg.advise_args.iter().map(String::as_str));
    cfg.json("advise", &args)
}

/// The measured runs of one strategy: containerd's clients' (truth) and advisor bench's.
#[derive(Debug, Clone, Default)]
struct Measures {
    ready: Vec<f64>,
    complete: Vec<f64>,
    bench_ready: Vec<f64>,
    bench_complete: Vec<f64>,
}

/// What one workload's runs measured, per strategy.
struct Summary {
    measures: std::collections::BTreeMap<String, Measures>,
    summary: std::collections::BTreeMap<String, Measured>,
    /// Task start to exit of the eager bench runs.
    unrecorded: Vec<f64>,
}

/// Medians per strategy of advisor bench's included runs (phases, bytes) and
/// of the clients' runs (their own rows, "<strategy> (ctr)").
fn summarise(
    cfg: &Config,
    w: &Workload,
    strategies: &[&str],
    runs: &[Runs],
) -> anyhow::Result<Summary> {
    let mut out = Summary {
        measures: Default::default(),
        summary: Default::default(),
        unrecorded: Vec::new(),
    };
    for (&strategy, rs) in strategies.iter().zip(runs) {
        let mut m = Measures::default();
        let mut cols: [Vec<f64>; 5] = Default::default();
        for r in &rs.bench {
            if r["role"] != "measured" || r["included"] != true || r["exit_code"] != 0 {
                continue;
            }
            let ph = |k: &str| r["phases"][k].as_f64().unwrap_or(0.0);
            if strategy == "eager" {
                out.unrecorded.push(ph("start") + ph("complete"));
            }
            cols[0].push(ph("resolve") + ph("fetch") + ph("unpack"));
            cols[1].push(ph("create") + ph("start") + ph("ready"));
            cols[2].push(r["network"]["received"].as_f64().unwrap_or(f64::NAN));
            cols[3].push(
                r["disk"]["content"].as_f64().unwrap_or(0.0)
                    + r["disk"]["snapshots"].as_f64().unwrap_or(0.0),
            );
            cols[4].push(
                r["network"]["lazy"]["registry_gets"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            m.bench_ready.push(f(&r["to_ready"], "runs[].to_ready")?);
            m.bench_complete
                .push(f(&r["to_complete"], "runs[].to_complete")?);
        }
        if m.bench_ready.is_empty() || rs.truth.is_empty() {
            bail!(
                "{}: no usable {strategy} run (raw results in {})",
                w.name,
                cfg.out_dir.display()
            );
        }
        m.ready = rs.truth.iter().map(|t| t.to_ready_s).collect();
        m.complete = rs.truth.iter().map(|t| t.to_complete_s).collect();
        let pulls: Vec<f64> = rs.truth.iter().map(|t| t.pull_s).collect();
        let starts: Vec<f64> = rs.truth.iter().map(|t| t.to_ready_s - t.pull_s).collect();
        let lazy = |get: fn(&advisor::bench::metrics::LazyCounters) -> f64| -> Vec<f64> {
            rs.truth
                .iter()
                .map(|t| t.lazy.as_ref().map_or(f64::NAN, get))
                .collect()
        };
        out.summary.insert(
            strategy.to_string(),
            Measured {
                pull_s: median(&cols[0]),
                start_to_ready_s: median(&cols[1]),
                to_ready_s: median(&m.bench_ready),
                to_complete_s: median(&m.bench_complete),
                received_bytes: median(&cols[2]),
                disk_bytes: median(&cols[3]),
                registry_gets: median(&cols[4]),
            },
        );
        out.summary.insert(
            format!("{strategy} (ctr)"),
            Measured {
                pull_s: median(&pulls),
                start_to_ready_s: median(&starts),
                to_ready_s: median(&m.ready),
                to_complete_s: median(&m.complete),
                received_bytes: median(&lazy(|l| l.fetched.0 as f64)),
                disk_bytes: f64::NAN,
                registry_gets: median(&lazy(|l| l.registry_gets as f64)),
            },
        );
        out.measures.insert(strategy.to_string(), m);
    }
    Ok(out)
}

/// Predicted against measured, per strategy measured and point.
fn numbers_of(
    p: &Value,
    strategies: &[&str],
    measures: &std::collections::BTreeMap<String, Measures>,
) -> anyhow::Result<Vec<Number>> {
    let mut numbers = Vec::new();
    for &strategy in strategies {
        let s = p["strategies"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["strategy"] == strategy))
            .with_context(|| format!("advise predicted no {strategy}: {p}"))?;
        let m = &measures[strategy];
        for (point, key, truth, bench) in [
            ("ready", "cold_start", &m.ready, &m.bench_ready),
            ("complete", "completion", &m.complete, &m.bench_complete),
        ] {
            let e = &s[key];
            let predicted = (
                f(&e["value"], key)?,
                f(&e["low"], key)?,
                f(&e["high"], key)?,
            );
            numbers.push(Number::new(
                strategy,
                point,
                predicted,
                truth.clone(),
                bench.clone(),
            ));
        }
    }
    Ok(numbers)
}

/// The strategy fastest to completion by `key` (measured or predicted).
fn fastest(numbers: &[Number], key: impl Fn(&Number) -> f64) -> String {
    numbers
        .iter()
        .filter(|n| n.point == "complete")
        .min_by(|a, b| key(a).total_cmp(&key(b)))
        .map(|n| n.strategy.clone())
        .unwrap_or_default()
}

fn f(v: &Value, what: &str) -> anyhow::Result<f64> {
    v.as_f64()
        .with_context(|| format!("no number at {what}: {v}"))
}

/// Build, push and inspect the image; then record, predict and measure every workload.
pub fn run(cfg: &Config, mut progress: impl FnMut(&str)) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let workloads: Vec<Workload> = serde_json::from_str(
        &std::fs::read_to_string(&cfg.workloads)
            .with_context(|| format!("reading {}", cfg.workloads.display()))?,
    )
    .with_context(|| format!("parsing {}", cfg.workloads.display()))?;
    let workloads: Vec<Workload> = workloads
        .into_iter()
        .filter(|w| cfg.only.is_empty() || cfg.only.contains(&w.name))
        .collect();
    if workloads.is_empty() {
        bail!("no workload selected from {}", cfg.workloads.display());
    }
    // Before any measurement: a missing imported trace would fail the run
    // only when predicting, after every cold run.
    if let Some((w, t)) = workloads
        .iter()
        .find_map(|w| Some((w, w.imported_trace.as_ref()?)).filter(|(_, t)| !t.exists()))
    {
        bail!(
            "workload {}: imported trace {} does not exist (a gzipped one is unpacked with `gunzip -k {}.gz`)",
            w.name,
            t.display(),
            t.display()
        );
    }
    if cfg.prefetch && cfg.pushed.is_some() {
        bail!("lazy+prefetch rebuilds the image from its spec: not with pushed images");
    }

    let image = push_image(cfg, &mut progress)?;
    let (gzip_ref, esgz_ref, gzip_bytes) =
        (image.gzip.clone(), image.estargz.clone(), image.gzip_bytes);
    let files = cfg.out_dir.join("files.json");
    let files_s = files.to_str().context("out dir is not UTF-8")?;
    cfg.json(
        "image inspect",
        &["image", "inspect", &esgz_ref, "--toc-out", files_s],
    )?;

    // This node's profile, calibrated around the measurements: the quick
    // matrix (two rounds) before them, its third round after (a resumed full
    // `calibrate`), so slow and fast stretches of a shared machine reach the
    // fit and the measurements alike.
    let profile = cfg.calibrate.clone().or_else(|| cfg.profile.clone());
    if let Some(p) = &cfg.calibrate {
        progress(&format!(
            "calibrating this node (quick matrix) into {}",
            p.display()
        ));
        calibrate(cfg, p, true)?;
    }

    let mut records = Vec::new();
    for w in &workloads {
        let trace = cfg.out_dir.join(format!("{}.jsonl", w.name));
        let trace_s = trace.to_str().context("out dir is not UTF-8")?;
        progress(&format!("{}: recording", w.name));
        let rec = cfg.json(
            "trace record",
            &[
                "--namespace",
                &cfg.namespace,
                "trace",
                "record",
                "--image",
                &gzip_ref,
                "--ready-line",
                READY_LINE,
                "-o",
                trace_s,
                "--",
                "/bin/sh",
                "-c",
                &w.script(),
            ],
        )?;
        if rec["exit_code"] != 0 {
            bail!("{}: the recorded workload failed: {rec}", w.name);
        }
        // Kept for its reference runs (each run's times, and their median).
        let rec_file = cfg.out_dir.join(format!("{}.record.json", w.name));
        std::fs::write(&rec_file, serde_json::to_vec_pretty(&rec)?)
            .with_context(|| format!("writing {}", rec_file.display()))?;
        records.push((trace, f(&rec["exit_s"], "trace record exit_s")?));
    }

    // Per workload, the images each strategy pulls: the gzip form (eager),
    // the eStargz form (lazy) and, with `prefetch`, an eStargz image rebuilt
    // with the workload's startup set prioritized (lazy+prefetch, as advise
    // tells a user to build it).
    let mut images: Vec<Vec<(&str, String, &str)>> = Vec::new();
    for (w, (trace, _)) in workloads.iter().zip(&records) {
        let mut v = vec![
            ("eager", gzip_ref.clone(), "overlayfs"),
            ("lazy", esgz_ref.clone(), "stargz"),
        ];
        if cfg.prefetch {
            progress(&format!("{}: building the prefetch image", w.name));
            v.push((
                "lazy-prefetch",
                prefetch_image(cfg, w, trace, files_s, gzip_bytes)?,
                "stargz",
            ));
        }
        images.push(v);
    }

    // Cold runs in rounds (every workload and strategy once, then the next
    // round), so a slow stretch of the machine costs each workload at most
    // one run of its median, not all of them. Each advisor bench run has a
    // run through containerd's own clients beside it, the two in turns
    // (bench first, then the clients first), so both see the same noise.
    let mut runs: Vec<Vec<Runs>> = images
        .iter()
        .map(|v| vec![Runs::default(); v.len()])
        .collect();
    cfg.clients.prepare()?;
    for round in 0..cfg.repeats {
        for ((w, imgs), ws) in workloads.iter().zip(&images).zip(runs.iter_mut()) {
            for (k, ((strategy, image, snapshotter), slot)) in
                imgs.iter().zip(ws.iter_mut()).enumerate()
            {
                progress(&format!(
                    "{}: measuring {strategy}, cold run {} of {} (advisor bench and containerd's clients)",
                    w.name,
                    round + 1,
                    cfg.repeats
                ));
                let run = Run {
                    w,
                    strategy,
                    image,
                    snapshotter,
                    round,
                };
                // Who goes first alternates round by round for every strategy.
                if (round + k).is_multiple_of(2) {
                    slot.bench.extend(bench_run(cfg, &run)?);
                    slot.truth.push(client_run(cfg, &run)?);
                } else {
                    slot.truth.push(client_run(cfg, &run)?);
                    slot.bench.extend(bench_run(cfg, &run)?);
                }
            }
        }
    }

    let mut calibration = None;
    if let Some(p) = &cfg.calibrate {
        progress(&format!(
            "calibrating this node (the full matrix's last round) into {}",
            p.display()
        ));
        calibration = Some(calibrate(cfg, p, false)?);
    }

    let mut cases = Vec::new();
    for (((w, (trace, recorded_s)), ws), imgs) in
        workloads.iter().zip(records).zip(&runs).zip(&images)
    {
        progress(&format!("{}: predicting", w.name));
        let strategies: Vec<&str> = imgs.iter().map(|i| i.0).collect();
        let m = summarise(cfg, w, &strategies, ws)?;
        let advise = |trace: &Path, name: &str| -> anyhow::Result<Value> {
            let adv = predict(cfg, profile.as_deref(), trace, files_s, gzip_bytes)?;
            std::fs::write(cfg.out_dir.join(name), adv.to_string())?;
            Ok(adv["prediction"].clone())
        };
        let p = advise(&trace, &format!("{}.advise.json", w.name))?;
        let numbers = numbers_of(&p, &strategies, &m.measures)?;
        let mut imported_numbers = Vec::new();
        let mut imported_completion_winner = None;
        if let Some(t) = &w.imported_trace {
            let q = advise(t, &format!("{}.advise-imported.json", w.name))?;
            imported_numbers = numbers_of(&q, &strategies, &m.measures)?;
            imported_completion_winner = Some(fastest(&imported_numbers, |n| n.predicted));
        }
        let rec_completion = p["recommendations"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["objective"] == "fastest-completion"))
            .with_context(|| format!("no completion recommendation: {p}"))?;
        cases.push(Case {
            workload: w.clone(),
            trace,
            working_set_fraction: f(
                &p["workload"]["working_set_fraction"],
                "working_set_fraction",
            )?,
            files_touched: p["workload"]["files_touched"].as_u64().unwrap_or(0),
            advised_completion: rec_completion["best"].as_str().unwrap_or("?").into(),
            advised_completion_confident: rec_completion["confident"] == true,
            rule_of_thumb: p["rule_of_thumb"]["says"].as_str().map(String::from),
            measured_completion_winner: fastest(&numbers, |n| n.measured_median),
            predicted_completion_winner: fastest(&numbers, |n| n.predicted),
            numbers,
            imported_numbers,
            imported_completion_winner,
            measured: m.summary,
            recorded_s,
            unrecorded_s: median(&m.unrecorded),
        });
    }
    Ok(Report {
        spec: cfg.spec.clone(),
        image: match &cfg.pushed {
            Some((g, e)) => format!("`{g}` and `{e}`"),
            None if cfg.ctr_remote_estargz => format!(
                "`{}` (eStargz form converted by ctr-remote)",
                cfg.spec.display()
            ),
            None => format!("`{}`", cfg.spec.display()),
        },
        profile,
        calibration,
        gzip_reference: gzip_ref,
        estargz_reference: esgz_ref,
        gzip_bytes,
        uncompressed_bytes: image.uncompressed_bytes,
        repeats: cfg.repeats,
        cases,
    })
}

/// The report as Markdown tables (docs/results.md).
pub fn markdown(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Image {} ({:.0} MB gzip, {:.0} MB uncompressed); {} cold run(s) per strategy and workload, each through advisor bench and containerd's own clients (the ground truth, measured); profile {}.\n",
        r.image,
        r.gzip_bytes as f64 / 1e6,
        r.uncompressed_bytes as f64 / 1e6,
        r.repeats,
        match (&r.profile, &r.calibration) {
            (Some(p), Some(c)) => format!(
                "`{}`, calibrated on this node around the measurements ({} runs; cross-validated error median {:.1} %, p90 {:.1} %)",
                p.display(),
                c.runs,
                c.cv_median * 100.0,
                c.cv_p90 * 100.0
            ),
            (Some(p), None) => format!("`{}`", p.display()),
            (None, _) => "the bundled `calibration/default.json`".into(),
        }
    );
    let _ = writeln!(
        s,
        "| workload | read | strategy | to | predicted (95 % interval) | measured median (min – max), containerd's clients | error | advisor bench median |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &r.cases {
        for n in &c.numbers {
            let _ = writeln!(
                s,
                "| {} | {:.1} % | {} | {} | {} | {:.2} s ({:.2} – {:.2}) | {:+.0} % | {:.2} s |",
                c.workload.name,
                c.working_set_fraction * 100.0,
                n.strategy,
                n.point,
                n.predicted_text(),
                n.measured_median,
                n.measured_min(),
                n.measured_max(),
                n.error * 100.0,
                n.bench_median
            );
        }
    }
    if r.cases.iter().any(|c| !c.imported_numbers.is_empty()) {
        let _ = writeln!(
            s,
            "\nPredicted from the imported (strace) trace instead of the recorded one, against the same runs:\n\n| workload | strategy | to | predicted (95 % interval) | measured median | error |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for c in &r.cases {
            for n in &c.imported_numbers {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.2} s | {:+.0} % |",
                    c.workload.name,
                    n.strategy,
                    n.point,
                    n.predicted_text(),
                    n.measured_median,
                    n.error * 100.0
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n| workload | read | files | rule of thumb | advisor's pick (completion) | advisor's fastest of those measured | measured fastest (completion medians) | rule wrong? |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &r.cases {
        let medians: Vec<String> = c
            .numbers
            .iter()
            .filter(|n| n.point == "complete")
            .map(|n| format!("{} {:.2} s", n.strategy, n.measured_median))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {:.1} % | {} | {} | {}{} | {} | {} ({}) | {} |",
            c.workload.name,
            c.working_set_fraction * 100.0,
            c.files_touched,
            c.rule_of_thumb.as_deref().unwrap_or("either (10–30 %)"),
            c.advised_completion,
            if c.advised_completion_confident {
                ""
            } else {
                " (close call)"
            },
            c.predicted_completion_winner,
            c.measured_completion_winner,
            medians.join(", "),
            if c.rule_is_wrong() { "**yes**" } else { "no" }
        );
    }
    let _ = writeln!(
        s,
        "\n| workload | strategy | pull | start → ready | cold start (to ready) | completion | received | GETs | disk after |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for c in &r.cases {
        for (name, m) in &c.measured {
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} s | {:.3} s | {:.2} s | {:.2} s | {} | {} | {} |",
                c.workload.name,
                name,
                m.pull_s,
                m.start_to_ready_s,
                m.to_ready_s,
                m.to_complete_s,
                mb(m.received_bytes),
                if m.registry_gets.is_nan() {
                    "".into()
                } else {
                    format!("{:.0}", m.registry_gets)
                },
                mb(m.disk_bytes)
            );
        }
        if let (Some(e), Some(l)) = (c.measured.get("eager"), c.measured.get("lazy")) {
            let _ = writeln!(
                s,
                "| {} | lazy vs eager | {} | {} | {} | {} | | | |",
                c.workload.name,
                ratio(e.pull_s, l.pull_s, "faster", "slower"),
                ratio(e.start_to_ready_s, l.start_to_ready_s, "shorter", "longer"),
                ratio(e.to_ready_s, l.to_ready_s, "faster", "slower"),
                ratio(e.to_complete_s, l.to_complete_s, "faster", "slower"),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n| workload | task start → exit, recorded (FUSE) | same, eager runs without recorder (median) | ratio |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for c in &r.cases {
        let _ = writeln!(
            s,
            "| {} | {:.2} s | {:.2} s | {:.2}× |",
            c.workload.name,
            c.recorded_s,
            c.unrecorded_s,
            c.recorder_ratio()
        );
    }
    s
}

/// Megabytes, blank when not measured.
fn mb(bytes: f64) -> String {
    if bytes.is_nan() {
        String::new()
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

/// "N× faster" when lazy (`l`) took less than eager (`e`), "N× slower" otherwise.
fn ratio(e: f64, l: f64, less: &str, more: &str) -> String {
    if l <= e {
        format!("{:.1}× {less}", e / l)
    } else {
        format!("{:.1}× {more}", l / e)
    }
}

/// The advisor binary next to this executable (target/<profile>/advisor for
/// target/<profile>/examples/validate).
pub fn sibling_advisor() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("advisor"), dir.parent()?.join("advisor")]
        .into_iter()
        .find(|p| p.is_file())
}

pub fn default_out_dir(base: &Path, spec: &Path) -> PathBuf {
    base.join(
        spec.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "validate".into()),
    )
}
