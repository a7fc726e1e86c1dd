//! `advisor bench`: resolve the arguments, run [`crate::bench::run_bench`]
//! with the real engine, draw progress, append runs to `--output` as JSON
//! Lines as they finish, then render the report (table or JSON).
//!
//! Ctrl-C (SIGINT) or SIGTERM stop the bench cleanly: the current run is
//! abandoned, everything it created is deleted, and what was measured is
//! reported before advisor exits with code 1.
use crate::bench::real::{RealEngine, RealSettings};
use crate::bench::{BenchReport, BenchSettings, Mode, Observer, Role, RunRecord};
use crate::cli::GlobalArgs;
use crate::cli::bench::{BenchArgs, BenchMode};
use crate::containerd::pull::Method;
use crate::containerd::{self, Connection};
use crate::printer::Printer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Settings for the loop and for the real engine.
pub fn settings(args: &BenchArgs) -> anyhow::Result<(BenchSettings, RealSettings)> {
    if args.runs == 0 {
        crate::bail_user!("-n/--runs must be at least 1");
    }
    let (ready, readiness) = super::readiness(args.ready_line.as_ref(), args.ready_path.as_ref())?;
    let method = Method::for_snapshotter(&args.snapshotter);
    let bench = BenchSettings {
        image: args.image.clone(),
        method,
        snapshotter: args.snapshotter.clone(),
        mode: mode(args.mode),
        runs: args.runs,
        warmup: args.warmup,
        ready,
        timeout: Duration::from_secs(args.timeout),
        command: args.command.clone(),
        keep_image: args.keep_image,
    };
    let real = RealSettings {
        image: args.image.clone(),
        method,
        snapshotter: args.snapshotter.clone(),
        stargz_metrics: args.stargz_metrics.clone(),
        lazy_reset: args.lazy_reset_cmd.clone().filter(|c| !c.trim().is_empty()),
        drop_caches: !args.no_drop_caches,
        prefetch_size: args.prefetch_size,
        max_concurrent_downloads: args.max_concurrent_downloads,
        ready: readiness,
        command: args.command.clone(),
        force: args.force,
    };
    Ok((bench, real))
}

/// The bench's own mode for `--mode`.
pub(crate) fn mode(m: BenchMode) -> Mode {
    match m {
        BenchMode::Cold => Mode::Cold,
        BenchMode::Warm => Mode::Warm,
    }
}

pub async fn run(global: &GlobalArgs, args: &BenchArgs, printer: &Printer) -> anyhow::Result<()> {
    let (bench, real) = settings(args)?;
    if bench.method == Method::Lazy
        && bench.mode == crate::bench::Mode::Cold
        && real.lazy_reset.is_none()
    {
        crate::bail_user!(
            "a cold lazy bench needs the stargz snapshotter's caches purged between runs: pass --lazy-reset-cmd \
             (e.g. \"systemctl restart stargz-snapshotter\"), or on the lab `eval \"$(lab/lab env)\"`, which sets ADVISOR_LAZY_RESET_CMD"
        );
    }
    let conn = Connection::connect_own(&global.address, &global.namespace).await?;
    conn.wait_for_snapshotter(&bench.snapshotter, crate::bench::real::SNAPSHOTTER_PATIENCE)
        .await?;
    if bench.method == Method::Lazy && real.stargz_metrics.is_none() {
        printer.warn("no stargz metrics endpoint (--stargz-metrics / ADVISOR_STARGZ_METRICS): lazy bytes come from procfs and coldness cannot be checked per layer");
    }
    let mut engine = RealEngine::new(conn, real, super::registry_options(global))?;
    let (rx, signals) = super::interrupt_switch();
    let observer = Progress::new(printer, &bench, args.output.clone())?;
    let (report, error) = crate::bench::run_bench(&mut engine, &bench, &observer, rx).await;
    signals.abort();
    let error = match error {
        // Refused before the first run (a namespace that is not advisor's
        // holds the image): nothing was measured, so no table, just the reason.
        Some(e) if report.runs.is_empty() && report.setup.is_none() => {
            observer.bar.finish_and_clear();
            for n in &engine.notes {
                printer.warn(n);
            }
            return Err(e);
        }
        e => e,
    };
    observer.finish(&report);
    for n in &engine.notes {
        printer.warn(n);
    }
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.out(&crate::report::bench::render(&report))?;
    }
    for p in &report.cleanup_problems {
        printer.warn(&format!("clean-up: {p}"));
    }
    if let Some(e) = error {
        return Err(e.context(format!(
            "bench of {} stopped after {} run(s); what was measured is shown above",
            report.image,
            report.runs.len()
        )));
    }
    if report.interrupted {
        crate::bail_user!(
            "interrupted: {} run(s) measured, partial results above; nothing left behind{}",
            report.runs.iter().filter(|r| r.error.is_none()).count(),
            if report.cleanup_problems.is_empty() {
                ""
            } else {
                " except what the clean-up warnings name"
            }
        );
    }
    Ok(())
}

/// Progress on stderr and JSON Lines in `--output`.
struct Progress {
    bar: ProgressBar,
    output: Option<Mutex<std::fs::File>>,
    path: Option<PathBuf>,
    printer: Printer,
}

impl Progress {
    fn new(
        printer: &Printer,
        bench: &BenchSettings,
        output: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let total = bench.runs + bench.warmup + usize::from(bench.mode == crate::bench::Mode::Warm);
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            if printer.show_progress() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} bench [{bar:30}] {pos}/{len} {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let file = match &output {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        crate::error::user(format!(
                            "--output {}: cannot open for appending: {e}",
                            p.display()
                        ))
                    })?,
            )),
            None => None,
        };
        Ok(Progress {
            bar,
            output: file,
            path: output,
            printer: printer.clone(),
        })
    }

    fn append(&self, value: serde_json::Value) {
        if let Some(f) = &self.output
            && let Ok(mut f) = f.lock()
        {
            let line = value.to_string();
            if writeln!(f, "{line}").and_then(|_| f.flush()).is_err()
                && let Some(p) = &self.path
            {
                self.printer
                    .warn(&format!("cannot append to {}", p.display()));
            }
        }
    }

    fn finish(&self, report: &BenchReport) {
        self.bar.finish_and_clear();
        if let Ok(mut v) = serde_json::to_value(&report.summary) {
            v = serde_json::json!({"kind": "summary", "image": report.image, "snapshotter": report.snapshotter,
                "mode": report.mode, "interrupted": report.interrupted, "excluded": report.excluded, "summary": v});
            self.append(v);
        }
    }
}

fn role_name(r: &RunRecord) -> String {
    match r.role {
        Role::Setup => "setup pull".into(),
        Role::Warmup => format!("warm-up {}", r.index + 1),
        Role::Measured => format!("run {}", r.index + 1),
    }
}

impl Observer for Progress {
    fn phase(&self, run: &RunRecord, phase: &str) {
        self.bar.set_message(format!("{}: {phase}", role_name(run)));
    }

    fn run_done(&self, run: &RunRecord) {
        self.bar.inc(1);
        if let Ok(mut v) = serde_json::to_value(run) {
            if let Some(o) = v.as_object_mut() {
                o.insert("kind".into(), "run".into());
            }
            self.append(v);
        }
        for f in &run.flags {
            if !matches!(f, crate::bench::Flag::Failed) {
                self.bar.suspend(|| {
                    self.printer
                        .warn(&format!("{}: {}", role_name(run), f.describe()))
                });
            }
        }
    }
}

/// The snapshotters a bench may use.
pub const SNAPSHOTTERS: [&str; 2] = [containerd::OVERLAYFS, containerd::STARGZ];
