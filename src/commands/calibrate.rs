//! `advisor calibrate`: run the calibration matrix on this node, fit the
//! profile, write it; or `--check` a profile against fresh runs.
use crate::calibrate::model::{self, CalRun, Nuisance};
use crate::calibrate::runner::{self, Progress, Record, RunnerSettings};
use crate::calibrate::{
    CalibrationReport, Drift, build_profile, fetch_config, measure_link, node_facts,
};
use crate::cli::GlobalArgs;
use crate::cli::calibrate::CalibrateArgs;
use crate::containerd::{Connection, OVERLAYFS, STARGZ};
use crate::output::{Named, Rendered};
use crate::printer::Printer;
use crate::profile::{NodeFacts, Profile};
use crate::units::Seconds;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

fn default_output() -> PathBuf {
    let host = nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "node".into());
    PathBuf::from("calibration").join(format!("{host}.json"))
}

fn runs_path(output: &Path) -> PathBuf {
    output.with_extension("runs.jsonl")
}

struct Bar {
    bar: ProgressBar,
    printer: Printer,
}

impl Progress for Bar {
    fn stage(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
        if self.bar.is_hidden() {
            self.printer.note(msg);
        }
    }
    fn planned(&self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.reset_eta();
    }
    fn run_done(&self, key: &str, run: &crate::bench::RunRecord) {
        self.bar.inc(1);
        if self.bar.is_hidden() {
            let t = run
                .to_complete
                .map(|s| s.to_string())
                .unwrap_or_else(|| "–".into());
            self.printer.note(&format!(
                "  {key}: {t}{}",
                if run.included { "" } else { " (excluded)" }
            ));
        }
    }
}

fn settings(global: &GlobalArgs, args: &CalibrateArgs, runs_file: PathBuf) -> RunnerSettings {
    RunnerSettings {
        address: global.address.clone(),
        namespace: global.namespace.clone(),
        namespace_origin: global.namespace_origin,
        registry: args.registry.clone().unwrap_or_default(),
        registry_options: super::registry_options(global),
        lazy_reset: args.lazy_reset_cmd.clone(),
        stargz_metrics: args.stargz_metrics.clone(),
        runs_file,
        budget: args.budget,
        quick: args.quick,
        timeout: args.timeout,
        only: None,
        rebuild: args.rebuild,
        force: args.force,
        jobs: global.jobs(),
    }
}

async fn preflight(global: &GlobalArgs, args: &CalibrateArgs) -> anyhow::Result<Connection> {
    if args.registry.is_none() {
        crate::bail_user!(
            "calibration pushes its images to a registry and pulls them back: pass --registry HOST:PORT (or ADVISOR_REGISTRY; the lab's: `eval \"$(lab/lab env)\"`)"
        );
    }
    let conn = Connection::connect_own(&global.address, &global.namespace, global.namespace_origin)
        .await?;
    // Every calibration run cleans up in this namespace: refuse before any.
    conn.refuse_working(args.force).await?;
    conn.check_snapshotter(OVERLAYFS).await?;
    conn.check_snapshotter(STARGZ).await?;
    if args.lazy_reset_cmd.is_none() {
        crate::bail_user!(
            "calibration runs cold lazy pulls: pass --lazy-reset-cmd (a command restarting the stargz snapshotter with empty caches), or on the lab `eval \"$(lab/lab env)\"`"
        );
    }
    if args.stargz_metrics.is_none() {
        crate::bail_user!(
            "calibration checks lazy runs against the snapshotter's counters: pass --stargz-metrics URL (its metrics_address), or on the lab `eval \"$(lab/lab env)\"`"
        );
    }
    Ok(conn)
}

fn bar(printer: &Printer) -> Bar {
    let bar = if printer.show_progress() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Bar {
        bar,
        printer: printer.clone(),
    }
}

pub async fn run(
    global: &GlobalArgs,
    args: &CalibrateArgs,
    printer: &Printer,
) -> anyhow::Result<()> {
    let output = args.output.clone().unwrap_or_else(default_output);
    let runs_file = args.runs.clone().unwrap_or_else(|| runs_path(&output));
    if let Some(p) = &args.check {
        return check(global, args, p, printer).await;
    }
    // The runs file is the fit's input (and is only ever appended to).
    let mut outputs: Vec<Named> = vec![("-o", output.as_path())];
    outputs.extend(args.plot.as_deref().map(|p| ("--plot", p)));
    crate::output::refuse_overwriting(&outputs, &[("--runs", &runs_file)])?;
    if let Some(p) = &args.plot {
        // Before minutes of measuring, not after.
        crate::output::check_writable("--plot", p)?;
    }
    let s = settings(global, args, runs_file.clone());
    let mut notes = Vec::new();
    if !args.refit {
        let conn = preflight(global, args).await?;
        let node = node_facts(&conn, &s.registry, &s.registry_options).await;
        runner::append(&runs_file, &Record::Node(Box::new(node.clone())))?;
        let progress = bar(printer);
        let (interrupt, signals) = super::interrupt_switch();
        let interrupted = interrupt.clone();
        let r = runner::run_matrix(&s, &progress, interrupt).await;
        signals.abort();
        progress.bar.finish_and_clear();
        let (stored, n) = r?;
        if *interrupted.borrow() {
            crate::bail_user!(
                "interrupted: {} run(s) kept in {}; run the same command again to resume (no profile written)",
                stored.runs.len(),
                runs_file.display()
            );
        }
        notes.extend(n);
        // The path the runs went over, recorded with the node for `--refit`.
        let stage = |m: &str| progress.stage(m);
        match measure_link(&s.registry, &s.registry_options, &stored.images, &stage).await {
            Ok(link) => {
                let node = NodeFacts {
                    link: Some(link),
                    ..node
                };
                runner::append(&runs_file, &Record::Node(Box::new(node)))?;
            }
            Err(e) => notes.push(format!(
                "the link to {} was not measured ({e:#}): `advise --network` takes the \
                 calibration's path as loopback at the registry round trip",
                s.registry
            )),
        }
    }
    let (stored, n) = runner::load_runs(&runs_file)?;
    notes.extend(n);
    let Some(node) = stored.node.clone() else {
        crate::bail_user!(
            "{}: no calibration measurements yet; run `advisor calibrate` without --refit",
            runs_file.display()
        );
    };
    let rel = runs_file
        .strip_prefix(output.parent().unwrap_or(Path::new("")))
        .unwrap_or(&runs_file)
        .display()
        .to_string();
    let mut report = build_profile(&stored.as_model(), node, Some(rel))
        .with_context(|| format!("fitting the profile from {}", runs_file.display()))?;
    report.notes.extend(notes);
    if let Some(d) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let plot = match &args.plot {
        Some(path) => Some((path, plot_svg(&report, &stored.runs, &runs_file)?)),
        None => None,
    };
    let profile = serde_json::to_string_pretty(&report.profile)? + "\n";
    let mut files = vec![Rendered {
        what: "profile",
        path: &output,
        bytes: profile.as_bytes(),
    }];
    if let Some((path, svg)) = &plot {
        files.push(Rendered {
            what: "plot",
            path: path.as_path(),
            bytes: svg.as_bytes(),
        });
    }
    // The profile and the plot are put in place together, or neither.
    crate::output::write_all_or_none(&files)?;
    printer.note(&format!(
        "wrote the profile to {} (runs: {})",
        output.display(),
        runs_file.display()
    ));
    if let Some((path, _)) = &plot {
        printer.note(&format!("wrote the plot to {}", path.display()));
    }
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.out(&crate::report::calibrate::render(&report))?;
    }
    Ok(())
}

/// `--plot`: each run's measured total completion against its out-of-fold
/// prediction, and the residuals ([`crate::report::calibrate_plot`]).
fn plot_svg(
    report: &CalibrationReport,
    runs: &[CalRun],
    runs_file: &Path,
) -> anyhow::Result<String> {
    use crate::report::calibrate_plot;
    let points = calibrate_plot::points(&report.checks, runs);
    let node = &report.profile.node.hostname;
    let folds = report
        .profile
        .validation
        .as_ref()
        .map_or(crate::calibrate::FOLDS, |v| v.folds);
    let title = format!(
        "calibration of {} from {}: {} run(s), each predicted by a {folds}-fold cross-validation",
        if node.is_empty() {
            "the node"
        } else {
            node.as_str()
        },
        runs_file.display(),
        points.len()
    );
    calibrate_plot::svg(&points, &title).map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))
}

async fn check(
    global: &GlobalArgs,
    args: &CalibrateArgs,
    profile_path: &Path,
    printer: &Printer,
) -> anyhow::Result<()> {
    let profile = Profile::load(profile_path)?;
    let term = |k: &str| profile.workload_terms.get(k).copied().unwrap_or(0.0);
    let nuisance = Nuisance {
        eager_segment_s: Seconds(term("eager_segment_s")),
        eager_process_s: Seconds(term("eager_process_s")),
        lazy_segment_s: Seconds(term("lazy_segment_s")),
        lazy_process_s: Seconds(term("lazy_process_s")),
    };
    preflight(global, args).await?;
    let dir = tempfile::tempdir().context("creating a temporary runs file")?;
    let mut s = settings(global, args, dir.path().join("check.runs.jsonl"));
    s.only = Some(runner::Matrix::embedded()?.check_plan(&["few-large", "many-small"]));
    let progress = bar(printer);
    let (interrupt, signals) = super::interrupt_switch();
    let interrupted = interrupt.clone();
    let r = runner::run_matrix(&s, &progress, interrupt).await;
    signals.abort();
    progress.bar.finish_and_clear();
    let (stored, _) = r?;
    if *interrupted.borrow() {
        crate::bail_user!(
            "interrupted: the drift check against {} stopped before its runs were done",
            profile_path.display()
        );
    }
    let fetch = fetch_config();
    let mut drifts = Vec::new();
    for run in stored.runs.iter().filter(|r| r.run.included) {
        let Some(img) = stored.images.iter().find(|i| i.name == run.image) else {
            continue;
        };
        let predicted = model::predict_run(img, run.strategy, &profile, &nuisance, &fetch)
            .complete_s
            .0;
        if let Some(m) = run.run.to_complete {
            drifts.push(Drift {
                key: run.key.clone(),
                predicted_s: Seconds(predicted),
                measured_s: m,
                drift: (m.0 - predicted) / predicted,
            });
        }
    }
    if printer.is_json() {
        printer.json(&drifts)?;
    } else {
        printer.out(&crate::report::calibrate::render_drift(&drifts))?;
    }
    let worst = drifts.iter().map(|d| d.drift.abs()).fold(0.0, f64::max);
    if worst > 0.2 {
        printer.warn(&format!(
            "the node drifted up to {:.0} % from {}: re-run `advisor calibrate`",
            worst * 100.0,
            profile_path.display()
        ));
    }
    Ok(())
}
