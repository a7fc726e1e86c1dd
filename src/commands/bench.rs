//! `advisor bench`: resolve the arguments, run [`crate::bench::run_bench`]
//! with the real engine, draw progress, append runs to `--output` as JSON
//! Lines as they finish, then render the report (table or JSON) and write the
//! `--export-*` files (hyperfine's formats, [`crate::report::bench_export`])
//! and the `--plot` SVG ([`crate::report::bench_plot`]). Their paths are
//! checked before the first run (a missing directory fails then, not after
//! minutes of measuring); each file is staged beside its target and renamed
//! into place ([`crate::output`]), also after a failure or an interrupt, with
//! what was measured.
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
use crate::output::{self, Named, Output};
use crate::printer::Printer;
use crate::report::bench_export::ExportFormat;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Settings for the loop and for the real engine.
pub fn settings(args: &BenchArgs) -> anyhow::Result<(BenchSettings, RealSettings)> {
    if args.runs == 0 {
        crate::bail_user!("-r/--runs must be at least 1 (got 0)");
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
        timeout: args.timeout,
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

/// A namespace that is a number is refused: it is almost surely an old
/// `bench -n N` meaning runs — `-n` became the namespace (issue 19 §2, as
/// ctr's) — and benching in namespace `5` would create and clean it.
pub fn check_namespace(namespace: &str) -> anyhow::Result<()> {
    if !namespace.is_empty() && namespace.chars().all(|c| c.is_ascii_digit()) {
        crate::bail_user!(
            "namespace `{namespace}` is a number: -n is containerd's namespace (as ctr's), the number of runs is -r/--runs (e.g. `bench -r {namespace}`); give a namespace with a letter in it"
        );
    }
    Ok(())
}

/// One `--export-*` file.
#[derive(Debug, Clone)]
pub struct Export {
    pub format: ExportFormat,
    pub path: PathBuf,
}

impl Export {
    fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// The `--export-*` files, checked: at most one `-` (stdout holds one
/// document), no two the same file nor `--output` nor `--plot`, and each
/// one's directory writable now (a temporary file is made there and
/// removed), `--plot`'s too.
pub fn exports(args: &BenchArgs) -> anyhow::Result<Vec<Export>> {
    let v: Vec<Export> = [
        (ExportFormat::Json, &args.export_json),
        (ExportFormat::Markdown, &args.export_markdown),
        (ExportFormat::Csv, &args.export_csv),
    ]
    .into_iter()
    .filter_map(|(format, p)| {
        Some(Export {
            format,
            path: p.clone()?,
        })
    })
    .collect();
    let stdout: Vec<&str> = v
        .iter()
        .filter(|e| e.is_stdout())
        .map(|e| e.format.flag())
        .collect();
    if stdout.len() > 1 {
        crate::bail_user!(
            "{} all write to stdout (`-`): only one export can; give the others a file",
            stdout.join(" and ")
        );
    }
    let mut named: Vec<Named<'_>> = v
        .iter()
        .map(|e| (e.format.flag(), e.path.as_path()))
        .collect();
    if let Some(o) = &args.output {
        named.push(("--output", o.as_path()));
    }
    if let Some(p) = &args.plot {
        named.push(("--plot", p.as_path()));
    }
    output::refuse_overwriting(&named, &[])?;
    for e in v.iter().filter(|e| !e.is_stdout()) {
        output::check_writable(e.format.flag(), &e.path)?;
    }
    if let Some(p) = &args.plot {
        output::check_writable("--plot", p)?;
    }
    Ok(v)
}

/// Write every export of `report`: files staged and renamed, `-` on stdout.
/// Each is tried; the first failure is returned.
fn write_exports(
    exports: &[Export],
    report: &BenchReport,
    printer: &Printer,
) -> anyhow::Result<()> {
    let mut first = None;
    for e in exports {
        let r = e.format.exporter().serialize(report).and_then(|bytes| {
            if e.is_stdout() {
                printer.out(&String::from_utf8_lossy(&bytes))?;
                return Ok(());
            }
            let mut out = Output::create(&e.path)?;
            out.write_all(&bytes)?;
            out.commit()?;
            Ok(())
        });
        if let Err(err) = r {
            if crate::printer::stdout_was_closed(&err) {
                return Err(err);
            }
            first.get_or_insert(crate::error::user(format!(
                "{} {}: cannot write: {err:#}",
                e.format.flag(),
                e.path.display()
            )));
        }
    }
    first.map_or(Ok(()), Err)
}

/// `--plot`: each phase over the measured runs, also after a failure or an
/// interrupt, with what was measured; when no measured run has a phase, a
/// warning, and a file already there is left as it is.
fn write_plot(path: &Path, report: &BenchReport, printer: &Printer) -> anyhow::Result<()> {
    if crate::report::bench_plot::phases(report).is_empty() {
        printer.warn(&format!(
            "--plot {}: not written: no measured run has a timed phase",
            path.display()
        ));
        return Ok(());
    }
    let svg = crate::report::bench_plot::svg(report)
        .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
    output::write_all_or_none(&[output::Rendered {
        what: "plot",
        path,
        bytes: svg.as_bytes(),
    }])?;
    printer.note(&format!("wrote the plot to {}", path.display()));
    Ok(())
}

pub async fn run(global: &GlobalArgs, args: &BenchArgs, printer: &Printer) -> anyhow::Result<()> {
    let (bench, real) = settings(args)?;
    check_namespace(&global.namespace)?;
    let exports = exports(args)?;
    if bench.method == Method::Lazy
        && bench.mode == crate::bench::Mode::Cold
        && real.lazy_reset.is_none()
    {
        crate::bail_user!(
            "a cold lazy bench needs the stargz snapshotter's caches purged between runs: pass --lazy-reset-cmd \
             (e.g. \"systemctl restart stargz-snapshotter\"), or on the lab `eval \"$(lab/lab env)\"`, which sets ADVISOR_LAZY_RESET_CMD"
        );
    }
    let conn = Connection::connect_own(&global.address, &global.namespace, global.namespace_origin)
        .await?;
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
    // An export on stdout takes the report's place: stdout holds one document.
    if !exports.iter().any(Export::is_stdout) {
        if printer.is_json() {
            printer.json(&report)?;
        } else {
            printer.out(&crate::report::bench::render(&report))?;
        }
    }
    let exported = write_exports(&exports, &report, printer);
    let plotted = args
        .plot
        .as_deref()
        .map_or(Ok(()), |p| write_plot(p, &report, printer));
    let exported = exported.and(plotted);
    for p in &report.cleanup_problems {
        printer.warn(&format!("clean-up: {p}"));
    }
    if let (Err(e), Some(_)) = (&exported, &error) {
        printer.warn(&format!("{e:#}"));
    }
    if let Some(e) = error {
        return Err(e.context(format!(
            "bench of {} stopped after {} run(s); what was measured is shown above",
            report.image,
            report.runs.len()
        )));
    }
    exported?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::path::Path;

    fn parse(extra: &[&str]) -> (GlobalArgs, BenchArgs) {
        let mut args = vec![
            "advisor",
            "bench",
            "--image",
            "r/app:gzip",
            "--snapshotter",
            "overlayfs",
        ];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Command::Bench(b) => (cli.global, b),
            _ => unreachable!(),
        }
    }

    #[test]
    fn runs_and_warmup_are_hyperfine_s_short_flags() {
        let (_, a) = parse(&["-r", "7", "-w", "2"]);
        let (bench, _) = settings(&a).unwrap();
        assert_eq!((bench.runs, bench.warmup), (7, 2));
        let (_, a) = parse(&["--runs", "3", "--warmup", "1"]);
        assert_eq!((a.runs, a.warmup), (3, 1));
        let (_, a) = parse(&["-r", "0"]);
        let e = settings(&a).unwrap_err();
        assert!(e.to_string().contains("-r/--runs"), "{e}");
    }

    /// `-n` after `bench` is the global namespace now (issue 19 §2).
    #[test]
    fn n_is_the_namespace_and_a_number_is_refused() {
        let (g, a) = parse(&["-n", "5"]);
        assert_eq!((g.namespace.as_str(), a.runs), ("5", 5));
        let e = check_namespace(&g.namespace).unwrap_err();
        assert!(crate::exit::is_user_error(&e));
        assert!(e.to_string().contains("-r/--runs"), "{e}");
        for ok in ["advisor", "k8s.io", "ns5", "5a", ""] {
            check_namespace(ok).unwrap();
        }
    }

    #[test]
    fn exports_are_resolved_in_flag_order() {
        let d = tempfile::tempdir().unwrap();
        let md = d.path().join("b.md");
        let (_, a) = parse(&[
            "--export-markdown",
            md.to_str().unwrap(),
            "--export-json",
            "-",
        ]);
        let e = exports(&a).unwrap();
        let got: Vec<(ExportFormat, &Path)> =
            e.iter().map(|e| (e.format, e.path.as_path())).collect();
        assert_eq!(
            got,
            [
                (ExportFormat::Json, Path::new("-")),
                (ExportFormat::Markdown, md.as_path())
            ]
        );
        assert!(!md.exists(), "the check leaves nothing behind");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let (_, none) = parse(&[]);
        assert!(exports(&none).unwrap().is_empty());
    }

    #[test]
    fn bad_exports_are_user_errors_naming_the_flags() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        let x = f.to_str().unwrap();
        let missing = d.path().join("no/x.csv");
        for (args, want) in [
            (
                vec!["--export-json", "-", "--export-markdown", "-"],
                "--export-json and --export-markdown",
            ),
            (vec!["--export-json", x, "--export-csv", x], "same file"),
            (vec!["--output", x, "--export-csv", x], "--output"),
            (
                vec!["--export-csv", missing.to_str().unwrap()],
                "--export-csv",
            ),
        ] {
            let (_, a) = parse(&args);
            let e = exports(&a).unwrap_err();
            assert!(crate::exit::is_user_error(&e), "{e}");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
    }

    /// `--plot` is checked with the exports, before the first run.
    #[test]
    fn a_bad_plot_path_is_refused_before_the_first_run() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("no/b.svg");
        let (_, a) = parse(&["--plot", missing.to_str().unwrap()]);
        let e = exports(&a).unwrap_err();
        assert!(crate::exit::is_user_error(&e), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("--plot ") && msg.contains("no/b.svg"),
            "{msg}"
        );
        let f = d.path().join("x");
        let (_, a) = parse(&[
            "--plot",
            f.to_str().unwrap(),
            "--output",
            f.to_str().unwrap(),
        ]);
        assert!(exports(&a).unwrap_err().to_string().contains("same file"));
        let (_, a) = parse(&["--plot", f.to_str().unwrap()]);
        exports(&a).unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    /// The plot replaces a file whole; with nothing measured it is left as it was.
    #[test]
    fn write_plot_replaces_the_file_or_leaves_it() {
        let d = tempfile::tempdir().unwrap();
        let svg = d.path().join("b.svg");
        std::fs::write(&svg, "old").unwrap();
        let printer = Printer::new(crate::cli::OutputFormat::Table, true, 0);
        let mut report = empty_report();
        write_plot(&svg, &report, &printer).unwrap();
        assert_eq!(std::fs::read_to_string(&svg).unwrap(), "old");
        let mut run = RunRecord::new(0, Role::Measured);
        run.phases.fetch = Some(crate::units::Seconds(1.5));
        run.included = true;
        report.runs.push(run);
        write_plot(&svg, &report, &printer).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("fetch: median 1.50 s"));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    fn empty_report() -> BenchReport {
        BenchReport {
            image: "r/app:gzip".into(),
            snapshotter: "overlayfs".into(),
            method: Method::Eager,
            mode: Mode::Cold,
            runs_requested: 1,
            warmup: 0,
            ready: crate::bench::ReadySpec::Exit,
            command: vec![],
            setup: None,
            runs: vec![],
            summary: vec![],
            excluded: 0,
            interrupted: false,
            error: None,
            cleanup_problems: vec![],
        }
    }

    /// Files are staged and renamed: what is there before is replaced whole.
    #[test]
    fn write_exports_replaces_the_files() {
        let d = tempfile::tempdir().unwrap();
        let csv = d.path().join("b.csv");
        std::fs::write(&csv, "old").unwrap();
        let report = empty_report();
        let printer = Printer::new(crate::cli::OutputFormat::Table, true, 0);
        let e = [Export {
            format: ExportFormat::Csv,
            path: csv.clone(),
        }];
        write_exports(&e, &report, &printer).unwrap();
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            "command,mean,stddev,median,min,max\n"
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
