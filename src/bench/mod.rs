//! `bench`: timed eager and lazy cold/warm starts, run after run.
//!
//! Owns the run loop, what each phase's interval is, the cold check, the
//! bookkeeping of interrupted and failed runs, and the summary. It never talks
//! to containerd, a registry or the terminal itself: the operations are behind
//! the [`Engine`] trait (the real one, [`real::RealEngine`], over the
//! `containerd` adapter, the registry client and the stargz metrics; a scripted
//! fake in the unit tests), and progress goes to an [`Observer`].
//!
//! Phases are consecutive monotonic intervals (tokio `Instant`): resolve
//! (registry: index, manifest, config), fetch (lease, metadata blobs, and for
//! an eager pull every layer blob into the content store), unpack (snapshots:
//! Prepare/Apply/Commit, or remote mounts), create (container snapshot,
//! Containers.Create, FIFOs, Tasks.Create), start (Tasks.Start); then ready and
//! complete both run from the end of start to the readiness condition and to
//! the exit. `to_ready` and `to_complete` run from the start of resolve.
//!
//! Cold means cold (containerd-grpc.md §4): before every cold run the engine
//! removes every trace of the image and purges the snapshotter's caches. As
//! blobs are shared by all namespaces, that reaches into every namespace: so
//! before the first run the engine's preflight refuses when a namespace that
//! is not advisor's holds the image (unless the user forces it), and nothing
//! is created or deleted then. A
//! cold run whose downloaded bytes fall far below what the image needs (eager:
//! less than [`MIN_COLD_FRACTION`] of the layer bytes; lazy: a layer that
//! fetched nothing) is flagged and left out of the summary, as are runs that
//! fell back from lazy to a download, timed out, failed their readiness or
//! exited non-zero. Every run is kept in the report.
pub mod metrics;
pub mod real;
pub mod source;
pub mod stats;

use crate::containerd::pull::{LayerOutcome, LayerReport, Method};
use crate::units::{Bytes, Seconds};
use metrics::{LazyCounters, StargzScrape};
use serde::{Deserialize, Serialize};
use stats::Summary;
use std::time::Duration;
use tokio::time::Instant;

/// A cold eager run must download at least this fraction of the layer bytes.
/// Half is "far below": a partially warm run (blobs reused from another
/// namespace) downloads close to nothing, while a cold one downloads ~100 %.
pub const MIN_COLD_FRACTION: f64 = 0.5;

/// Cold: every run pulls from scratch. Warm: one pull, then every run starts a
/// new container from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cold,
    Warm,
}

/// When a run counts as ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ReadySpec {
    Exit,
    Line(String),
    Path(String),
}

impl ReadySpec {
    pub fn describe(&self) -> String {
        match self {
            ReadySpec::Exit => "exit".into(),
            ReadySpec::Line(p) => format!("line /{p}/"),
            ReadySpec::Path(p) => format!("path {p}"),
        }
    }
}

/// Everything a bench needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub image: String,
    pub method: Method,
    pub snapshotter: String,
    pub mode: Mode,
    pub runs: usize,
    pub warmup: usize,
    pub ready: ReadySpec,
    /// Per run: from the start of the container to its exit.
    pub timeout: Duration,
    /// Command replacing the image's (empty: the image's).
    pub command: Vec<String>,
    /// Keep the pulled image at the end (default: remove every trace).
    pub keep_image: bool,
}

/// Why a run does not count in the summary (or deserves a look).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "flag")]
pub enum Flag {
    /// A cold run downloaded far less than the image needs.
    NotCold {
        received: Bytes,
        expected: Bytes,
        detail: String,
    },
    /// Layers the snapshotter did not mount remotely: they were downloaded.
    LazyFallback { layers: Vec<String> },
    /// The container did not become ready / exit within the timeout (it was killed).
    TimedOut,
    /// The process exited before the readiness condition held.
    ExitedBeforeReady { exit_code: u32 },
    /// The process exited with a non-zero status.
    NonZeroExit { exit_code: u32 },
    /// No counter could check coldness (no metrics endpoint, no procfs).
    ColdUnverified,
    /// The run failed or was interrupted.
    Failed,
}

impl Flag {
    /// Whether this flag keeps the run out of the summary.
    pub fn excludes(&self) -> bool {
        !matches!(self, Flag::ColdUnverified)
    }

    pub fn describe(&self) -> String {
        match self {
            Flag::NotCold {
                received,
                expected,
                detail,
            } => format!("not cold: received {received}, the image needs {expected}; {detail}"),
            Flag::LazyFallback { layers } => format!(
                "lazy pull fell back to downloading {} layer(s): {}",
                layers.len(),
                layers.join(", ")
            ),
            Flag::TimedOut => "timed out (killed)".into(),
            Flag::ExitedBeforeReady { exit_code } => {
                format!("exited ({exit_code}) before it was ready")
            }
            Flag::NonZeroExit { exit_code } => format!("exit code {exit_code}"),
            Flag::ColdUnverified => "coldness not verified (no counters)".into(),
            Flag::Failed => "failed".into(),
        }
    }
}

/// A marker line the workload printed, and when (s after the end of `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub name: String,
    pub after_start: Seconds,
}

/// Per-phase durations of one run; None for a phase that did not happen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub resolve: Option<Seconds>,
    pub fetch: Option<Seconds>,
    pub unpack: Option<Seconds>,
    pub create: Option<Seconds>,
    pub start: Option<Seconds>,
    pub ready: Option<Seconds>,
    pub complete: Option<Seconds>,
}

/// Bytes that crossed the network during a run, by source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Received by advisor's own registry client (resolve, eager layer downloads).
    pub registry: Option<Bytes>,
    /// The stargz snapshotter's counters (lazy).
    pub lazy: Option<LazyCounters>,
    /// Received on every interface (procfs), the fallback.
    pub procfs: Option<Bytes>,
    /// Best estimate of bytes received from the registry: advisor's client plus
    /// the snapshotter's downloads, or procfs when neither is known.
    pub received: Option<Bytes>,
}

/// Disk used by the image after the pull.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Blobs in the content store.
    pub content: Bytes,
    /// Snapshots of the image's layers, as the snapshotter reports them.
    pub snapshots: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The pull a warm bench starts from.
    Setup,
    Warmup,
    Measured,
}

/// One run, kept whatever happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub index: usize,
    pub role: Role,
    pub phases: Phases,
    /// resolve start → ready (cold) or create start → ready (warm).
    pub to_ready: Option<Seconds>,
    /// resolve start → exit (cold) or create start → exit (warm).
    pub to_complete: Option<Seconds>,
    /// Time the cold clean-up and cache purge took (not a phase).
    pub clean: Option<Seconds>,
    pub exit_code: Option<u32>,
    pub network: Network,
    pub disk: Option<DiskUsage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// Marker lines (`ADVISOR-MARK <name>`) the workload printed, timed from
    /// the end of `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
    pub included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    pub fn new(index: usize, role: Role) -> Self {
        RunRecord {
            index,
            role,
            phases: Phases::default(),
            to_ready: None,
            to_complete: None,
            clean: None,
            exit_code: None,
            network: Network::default(),
            disk: None,
            layers: Vec::new(),
            flags: Vec::new(),
            marks: Vec::new(),
            included: false,
            error: None,
        }
    }

    /// resolve + fetch + unpack, when all happened.
    pub fn pull(&self) -> Option<Seconds> {
        Some(self.phases.resolve? + self.phases.fetch? + self.phases.unpack?)
    }
}

pub(crate) type SecondsOf = fn(&RunRecord) -> Option<Seconds>;
type BytesOf = fn(&RunRecord) -> Option<Bytes>;

/// A quantity summarised over the included measured runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantitySummary {
    pub name: String,
    /// `s` or `bytes`.
    pub unit: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The whole bench: settings, every run, the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub image: String,
    pub snapshotter: String,
    pub method: Method,
    pub mode: Mode,
    pub runs_requested: usize,
    pub warmup: usize,
    pub ready: ReadySpec,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<RunRecord>,
    pub runs: Vec<RunRecord>,
    pub summary: Vec<QuantitySummary>,
    /// Measured runs left out of the summary.
    pub excluded: usize,
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Problems met while cleaning up after a failure or interrupt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_problems: Vec<String>,
}

/// The timed quantities, in the order they are reported.
pub(crate) const TIMES: [(&str, SecondsOf); 10] = [
    ("resolve", |r| r.phases.resolve),
    ("fetch", |r| r.phases.fetch),
    ("unpack", |r| r.phases.unpack),
    ("pull", |r| r.pull()),
    ("create", |r| r.phases.create),
    ("start", |r| r.phases.start),
    ("ready", |r| r.phases.ready),
    ("complete", |r| r.phases.complete),
    ("to_ready", |r| r.to_ready),
    ("to_complete", |r| r.to_complete),
];

/// The byte quantities, in the order they are reported.
const BYTES: [(&str, BytesOf); 4] = [
    ("received", |r| r.network.received),
    ("lazy_fetched", |r| {
        r.network.lazy.as_ref().map(|l| l.fetched)
    }),
    ("disk_content", |r| r.disk.map(|d| d.content)),
    ("disk_snapshots", |r| r.disk.map(|d| d.snapshots)),
];

/// One quantity's values over the runs that count, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub name: &'static str,
    /// `s` or `bytes`.
    pub unit: &'static str,
    pub values: Vec<f64>,
}

impl BenchReport {
    /// The measured runs that count in the summary.
    fn counted(&self) -> impl Iterator<Item = &RunRecord> {
        self.runs
            .iter()
            .filter(|r| r.role == Role::Measured && r.included)
    }

    /// Every quantity's values over the included measured runs (times first,
    /// then bytes; a quantity no run has is left out): what [`summarize`]
    /// summarises and the exporters list run by run.
    ///
    /// [`summarize`]: BenchReport::summarize
    pub fn samples(&self) -> Vec<Samples> {
        let times = TIMES.iter().map(|(name, f)| Samples {
            name,
            unit: "s",
            values: self.counted().filter_map(f).map(|s| s.0).collect(),
        });
        let bytes = BYTES.iter().map(|(name, f)| Samples {
            name,
            unit: "bytes",
            values: self.counted().filter_map(f).map(|b| b.0 as f64).collect(),
        });
        times
            .chain(bytes)
            .map(|mut s| {
                s.values.retain(|v| v.is_finite());
                s
            })
            .filter(|s| !s.values.is_empty())
            .collect()
    }

    /// Summarise the included measured runs.
    pub fn summarize(&mut self) {
        self.excluded = self
            .runs
            .iter()
            .filter(|r| r.role == Role::Measured && !r.included)
            .count();
        self.summary = self
            .samples()
            .into_iter()
            .filter_map(|s| {
                Some(QuantitySummary {
                    name: s.name.into(),
                    unit: s.unit.into(),
                    summary: Summary::of(&s.values)?,
                })
            })
            .collect();
    }

    pub fn quantity(&self, name: &str) -> Option<&Summary> {
        self.summary
            .iter()
            .find(|q| q.name == name)
            .map(|q| &q.summary)
    }
}

/// Counters read before and after a run.
#[derive(Debug, Clone, Default)]
pub struct CounterSample {
    pub registry_bytes: Option<Bytes>,
    pub stargz: Option<StargzScrape>,
    pub net_rx: Option<u64>,
}

/// What the image needs, known after resolve.
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    pub layers: Vec<String>,
    /// Compressed layer bytes: what an eager pull downloads.
    pub layers_size: u64,
}

/// What ended the wait for readiness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Readiness {
    Ready(Instant),
    /// Exited before ready (or readiness is the exit).
    Exited {
        code: u32,
        at: Instant,
    },
    TimedOut,
}

/// The operations a bench needs (hyperfine's `Executor` shape). The real one
/// drives containerd; a scripted fake drives the unit tests.
#[allow(async_fn_in_trait)]
pub trait Engine {
    /// Before anything is pulled or cleaned: refuse when cleaning the image
    /// would delete what advisor did not create (another namespace holds it).
    async fn preflight(&mut self) -> anyhow::Result<()>;
    /// Remove every trace of the image and purge caches so the next pull is cold.
    async fn make_cold(&mut self) -> anyhow::Result<()>;
    /// Read the counters (never fails: a counter that cannot be read is None).
    async fn sample(&mut self) -> CounterSample;
    async fn resolve(&mut self) -> anyhow::Result<ImageFacts>;
    async fn fetch(&mut self) -> anyhow::Result<()>;
    async fn unpack(&mut self) -> anyhow::Result<Vec<LayerReport>>;
    async fn disk_usage(&mut self) -> anyhow::Result<DiskUsage>;
    async fn create(&mut self, id: &str) -> anyhow::Result<()>;
    async fn start(&mut self) -> anyhow::Result<()>;
    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<Readiness>;
    /// The exit code and instant, or None when the deadline passed.
    async fn wait_exit(&mut self, deadline: Instant) -> anyhow::Result<Option<(u32, Instant)>>;
    /// Marker lines (`ADVISOR-MARK <name>`) the container printed, with the
    /// instants advisor read them (none by default).
    fn marks(&self) -> Vec<(String, Instant)> {
        Vec::new()
    }
    /// Kill if running, delete task, container and its snapshot.
    async fn remove_container(&mut self) -> anyhow::Result<()>;
    /// After a failure or interrupt: delete whatever is left (containers,
    /// tasks, snapshots, leases, the image). Returns the problems met.
    async fn abort(&mut self) -> Vec<String>;
    /// At the end: remove the image unless `keep_image`.
    async fn finish(&mut self, keep_image: bool) -> anyhow::Result<()>;
}

/// Progress reports; the command draws them. Must not block.
pub trait Observer {
    fn phase(&self, _run: &RunRecord, _phase: &str) {}
    fn run_done(&self, _run: &RunRecord) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Run the bench. Stops at the first failed run or when `interrupt` turns true;
/// then cleans up through the engine and returns what was measured. The error
/// (if any) is returned next to the report so the caller can print both.
pub async fn run_bench<E: Engine, O: Observer>(
    engine: &mut E,
    settings: &BenchSettings,
    observer: &O,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
) -> (BenchReport, Option<anyhow::Error>) {
    let mut report = BenchReport {
        image: settings.image.clone(),
        snapshotter: settings.snapshotter.clone(),
        method: settings.method,
        mode: settings.mode,
        runs_requested: settings.runs,
        warmup: settings.warmup,
        ready: settings.ready.clone(),
        command: settings.command.clone(),
        setup: None,
        runs: Vec::new(),
        summary: Vec::new(),
        excluded: 0,
        interrupted: false,
        error: None,
        cleanup_problems: Vec::new(),
    };
    // A refusal deletes nothing and creates nothing: no abort, no finish.
    if let Err(e) = engine.preflight().await {
        report.error = Some(format!("{e:#}"));
        return (report, Some(e));
    }
    let mut facts = ImageFacts::default();
    let mut error = None;
    let plan: Vec<(usize, Role)> = (settings.mode == Mode::Warm)
        .then_some((0, Role::Setup))
        .into_iter()
        .chain((0..settings.warmup).map(|i| (i, Role::Warmup)))
        .chain((0..settings.runs).map(|i| (i, Role::Measured)))
        .collect();
    for (index, role) in plan {
        let mut rec = RunRecord::new(index, role);
        let outcome = {
            let run = run_once(engine, settings, &mut rec, &mut facts, observer);
            tokio::select! {
                r = run => Some(r),
                _ = wait_true(&mut interrupt) => None,
            }
        };
        match outcome {
            Some(Ok(())) => {
                rec.included = rec.flags.iter().all(|f| !f.excludes());
            }
            Some(Err(e)) => {
                rec.flags.push(Flag::Failed);
                rec.error = Some(format!("{e:#}"));
                error = Some(e);
            }
            None => {
                rec.flags.push(Flag::Failed);
                rec.error = Some("interrupted".into());
                report.interrupted = true;
            }
        }
        let stop = rec.error.is_some();
        observer.run_done(&rec);
        if role == Role::Setup {
            report.setup = Some(rec);
        } else {
            report.runs.push(rec);
        }
        if stop {
            break;
        }
    }
    if error.is_some() || report.interrupted {
        report.cleanup_problems = engine.abort().await;
    } else if let Err(e) = engine.finish(settings.keep_image).await {
        report.cleanup_problems.push(format!("{e:#}"));
        error = Some(e);
    }
    if let Some(e) = &error {
        report.error = Some(format!("{e:#}"));
    }
    report.summarize();
    (report, error)
}

async fn wait_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn secs(a: Instant, b: Instant) -> Seconds {
    Seconds::from_duration(b.saturating_duration_since(a))
}

async fn run_once<E: Engine, O: Observer>(
    engine: &mut E,
    settings: &BenchSettings,
    rec: &mut RunRecord,
    facts: &mut ImageFacts,
    observer: &O,
) -> anyhow::Result<()> {
    let pulls = settings.mode == Mode::Cold || rec.role == Role::Setup;
    let runs_container = rec.role != Role::Setup;
    if pulls {
        observer.phase(rec, "clean");
        let t = Instant::now();
        engine.make_cold().await?;
        rec.clean = Some(secs(t, Instant::now()));
    }
    let before = engine.sample().await;
    let t0 = Instant::now();
    if pulls {
        observer.phase(rec, "resolve");
        *facts = engine.resolve().await?;
        let t1 = Instant::now();
        rec.phases.resolve = Some(secs(t0, t1));
        observer.phase(rec, "fetch");
        engine.fetch().await?;
        let t2 = Instant::now();
        rec.phases.fetch = Some(secs(t1, t2));
        observer.phase(rec, "unpack");
        rec.layers = engine.unpack().await?;
        let t3 = Instant::now();
        rec.phases.unpack = Some(secs(t2, t3));
        rec.disk = Some(engine.disk_usage().await?);
    }
    if runs_container {
        run_container(engine, settings, rec, observer, t0).await?;
    }
    let after = engine.sample().await;
    rec.network = network_delta(&before, &after, &facts.layers, settings.method);
    if pulls {
        check_pull(settings, rec, facts);
    }
    Ok(())
}

async fn run_container<E: Engine, O: Observer>(
    engine: &mut E,
    settings: &BenchSettings,
    rec: &mut RunRecord,
    observer: &O,
    t0: Instant,
) -> anyhow::Result<()> {
    let id = format!(
        "advisor-bench-{}-{}-{}",
        std::process::id(),
        match rec.role {
            Role::Setup => "setup",
            Role::Warmup => "warmup",
            Role::Measured => "run",
        },
        rec.index
    );
    observer.phase(rec, "create");
    let t3 = Instant::now();
    let r = async {
        engine.create(&id).await?;
        let t4 = Instant::now();
        rec.phases.create = Some(secs(t3, t4));
        observer.phase(rec, "start");
        engine.start().await?;
        let t5 = Instant::now();
        rec.phases.start = Some(secs(t4, t5));
        let deadline = t5 + settings.timeout;
        observer.phase(rec, "ready");
        let ready = engine.wait_ready(deadline).await?;
        let exit = match ready {
            Readiness::Ready(at) => {
                rec.phases.ready = Some(secs(t5, at));
                rec.to_ready = Some(secs(t0, at));
                observer.phase(rec, "complete");
                engine.wait_exit(deadline).await?
            }
            Readiness::Exited { code, at } => {
                if settings.ready == ReadySpec::Exit {
                    rec.phases.ready = Some(secs(t5, at));
                    rec.to_ready = Some(secs(t0, at));
                } else {
                    rec.flags.push(Flag::ExitedBeforeReady { exit_code: code });
                }
                Some((code, at))
            }
            Readiness::TimedOut => None,
        };
        match exit {
            Some((code, at)) => {
                rec.phases.complete = Some(secs(t5, at));
                rec.to_complete = Some(secs(t0, at));
                rec.exit_code = Some(code);
                if code != 0 {
                    rec.flags.push(Flag::NonZeroExit { exit_code: code });
                }
            }
            None => rec.flags.push(Flag::TimedOut),
        }
        rec.marks = engine
            .marks()
            .into_iter()
            .map(|(name, at)| Mark {
                name,
                after_start: secs(t5, at),
            })
            .collect();
        anyhow::Ok(())
    }
    .await;
    // The container goes whatever happened (an interrupt is handled by abort).
    let removed = engine.remove_container().await;
    r?;
    removed
}

fn network_delta(
    before: &CounterSample,
    after: &CounterSample,
    layers: &[String],
    method: Method,
) -> Network {
    let registry = match (before.registry_bytes, after.registry_bytes) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // The snapshotter's counters only mean something for lazy pulls.
    let lazy = match (method, &before.stargz, &after.stargz) {
        (Method::Lazy, Some(a), Some(b)) => Some(StargzScrape::delta(a, b).lazy_counters(layers)),
        (Method::Lazy, None, Some(b)) => Some(b.lazy_counters(layers)),
        _ => None,
    };
    let procfs = match (before.net_rx, after.net_rx) {
        (Some(a), Some(b)) => Some(Bytes(b.saturating_sub(a))),
        _ => None,
    };
    let received = match (registry, &lazy) {
        (None, None) => procfs,
        (r, l) => Some(Bytes(
            r.map(|b| b.0).unwrap_or(0) + l.as_ref().map(|l| l.fetched.0).unwrap_or(0),
        )),
    };
    Network {
        registry,
        lazy,
        procfs,
        received,
    }
}

/// Flags about the pull: fallbacks and coldness.
fn check_pull(settings: &BenchSettings, rec: &mut RunRecord, facts: &ImageFacts) {
    let fell_back: Vec<String> = rec
        .layers
        .iter()
        .filter(|l| l.outcome == LayerOutcome::FellBack)
        .map(|l| l.digest.clone())
        .collect();
    if !fell_back.is_empty() {
        rec.flags.push(Flag::LazyFallback { layers: fell_back });
    }
    let expected = Bytes(facts.layers_size);
    match settings.method {
        Method::Eager => {
            let received = rec.network.registry.or(rec.network.procfs);
            match received {
                Some(r) if (r.0 as f64) < MIN_COLD_FRACTION * facts.layers_size as f64 => {
                    rec.flags.push(Flag::NotCold {
                        received: r,
                        expected,
                        detail: "layer blobs were reused from a previous pull".into(),
                    })
                }
                Some(_) => {}
                None => rec.flags.push(Flag::ColdUnverified),
            }
        }
        Method::Lazy => match &rec.network.lazy {
            Some(l) => {
                let idle: Vec<&String> = l
                    .fetched_per_layer
                    .iter()
                    .filter(|(_, b)| b.0 == 0)
                    .map(|(d, _)| d)
                    .collect();
                if !idle.is_empty() {
                    rec.flags.push(Flag::NotCold {
                        received: l.fetched,
                        expected,
                        detail: format!(
                            "layer(s) {} fetched nothing from the registry: the snapshotter's caches were not purged",
                            idle.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
            None => rec.flags.push(Flag::ColdUnverified),
        },
    }
    if settings.method == Method::Eager
        && rec
            .layers
            .iter()
            .all(|l| l.outcome == LayerOutcome::Present)
        && !rec.layers.is_empty()
    {
        rec.flags.push(Flag::NotCold {
            received: rec.network.received.unwrap_or_default(),
            expected,
            detail: "every layer snapshot already existed".into(),
        });
    }
}

/// A note for a debug build of advisor measuring a node: its eager
/// downloads are slower than a release build's (+12 % on a 237 MB pull
/// against `ctr images pull`, docs/results.md "A debug build measured"), and
/// a calibration would carry that into every eager prediction.
pub fn debug_build_note() -> Option<String> {
    cfg!(debug_assertions).then(|| {
        "this advisor is a debug build: its eager downloads are about 12 % slower than a release \
         build's (and a profile would carry that); measure with a release build \
         (cargo install --path ., or cargo build --release)"
            .to_string()
    })
}

#[cfg(test)]
mod fake;
