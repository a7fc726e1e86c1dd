//! `advisor trace record | import | synth | analyze`.
//!
//! Resolves arguments into settings, runs the `trace` module, renders the
//! typed result. The image's file table comes from exactly one place,
//! [`load_image_files`] (over `filetable::load_image_files`).
use crate::cli::GlobalArgs;
use crate::cli::trace::{
    AnalyzeArgs, ImageSourceArgs, ImportArgs, ImportFrom, SynthArgs, SynthPattern, TraceArgs,
    TraceCommand,
};
use crate::estargz::table::ImageFiles;
use crate::printer::Printer;
use crate::simulate::snapshotter::FetchConfig;
use crate::trace::analyze::AnalyzeOptions;
use crate::trace::filelist::{self, FileListOptions};
use crate::trace::format::{Clock, Header, ImageId, TraceReader, TraceWriter};
use crate::trace::strace::{self, StraceOptions};
use crate::trace::synth::{self, SynthOptions};
use crate::units::Bytes;
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub async fn run(global: &GlobalArgs, args: &TraceArgs, printer: &Printer) -> anyhow::Result<()> {
    match &args.command {
        TraceCommand::Record(a) => record(global, a, printer).await,
        TraceCommand::Import(a) => import(a, printer),
        TraceCommand::Synth(a) => synth_cmd(global, a, printer).await,
        TraceCommand::Analyze(a) => analyze_cmd(global, a, printer).await,
    }
}

pub use crate::filetable::{ImageSource, read_file_table};

/// The image's file table from `src`, reading a reference with the registry
/// options of the global flags; what obtaining it cost goes to stderr.
pub async fn load_image_files(
    src: &ImageSource,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ImageFiles> {
    let opts = crate::filetable::LoadOptions {
        registry: super::registry_options(global),
    };
    let loaded = crate::filetable::load_image_files(src, &opts).await?;
    for n in &loaded.notes {
        printer.note(n);
    }
    Ok(loaded.files)
}

impl ImageSource {
    pub fn from_args(a: &ImageSourceArgs) -> anyhow::Result<Self> {
        match (&a.image, &a.files) {
            (_, Some(f)) => Ok(ImageSource::Files(f.clone())),
            (Some(r), None) => Ok(ImageSource::Reference(r.clone())),
            (None, None) => crate::bail_user!("give the image: --image REF or --files FILE"),
        }
    }
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot open the input", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
}

fn image_id(files: &ImageFiles) -> ImageId {
    ImageId {
        reference: (!files.reference.is_empty()).then(|| files.reference.clone()),
        digest: (!files.manifest_digest.is_empty()).then(|| files.manifest_digest.clone()),
    }
}

fn import(a: &ImportArgs, printer: &Printer) -> anyhow::Result<()> {
    crate::output::refuse_overwriting(&[("-o", &a.output)], &[("FILE", &a.input)])?;
    let input = open_input(&a.input)?;
    let name = a.input.display().to_string();
    let (recorder, clock) = match a.from {
        ImportFrom::Strace => ("strace-import", Clock::Wall),
        ImportFrom::FileList => ("file-list", Clock::None),
    };
    let mut header = Header::new(recorder, clock);
    header.image = a.image_ref.as_ref().map(|r| ImageId {
        reference: Some(r.clone()),
        digest: None,
    });
    header.source = Some(name.clone());
    if a.from == ImportFrom::FileList && (a.root.is_some() || a.ready_line.is_some()) {
        crate::bail_user!("--root and --ready-line apply to --from strace only");
    }
    if a.from == ImportFrom::Strace && a.ready_after.is_some() {
        crate::bail_user!(
            "--ready-after applies to --from file-list only; for strace use --ready-line"
        );
    }
    let mut w = TraceWriter::create(&a.output, &header)?;
    let summary: serde_json::Value = match a.from {
        ImportFrom::Strace => {
            let opts = StraceOptions {
                root: a.root.clone(),
                cwd: a.cwd.clone(),
                ready_pattern: a.ready_line.clone(),
            };
            let s = strace::import(input, &name, &opts, |e| w.write(e))?;
            let lost = s.unfinished_at_end + s.never_resumed;
            if lost > 0 {
                printer.warn(&format!(
                    "{name}: {lost} call(s) never resumed (`<unfinished ...>` without its \
                     `<... resumed>`) and are not in the trace; was the capture cut off?"
                ));
            }
            serde_json::to_value(&s)?
        }
        ImportFrom::FileList => {
            let opts = FileListOptions {
                ready_after: a.ready_after,
            };
            let s = filelist::import(input, &name, &opts, |e| w.write(e))?;
            serde_json::to_value(&s)?
        }
    };
    let events = w.commit()?;
    let to_stdout = a.output.as_os_str() == "-";
    if printer.is_json() && !to_stdout {
        printer.json(&summary)?;
    } else {
        let mut lines = vec![format!(
            "{}: {events} events written to {}",
            name,
            a.output.display()
        )];
        if let Some(obj) = summary.as_object() {
            for (k, v) in obj {
                if matches!(v, serde_json::Value::Array(a) if a.is_empty()) || v.is_null() {
                    continue;
                }
                lines.push(format!("  {k}: {v}"));
            }
        }
        if to_stdout {
            printer.note(&lines.join("\n"));
        } else {
            printer.out(&lines.join("\n"))?;
        }
    }
    Ok(())
}

/// The synthesizer's own pattern for `--pattern`.
pub(crate) fn pattern(p: SynthPattern) -> synth::Pattern {
    match p {
        SynthPattern::Sequential => synth::Pattern::Sequential,
        SynthPattern::Random => synth::Pattern::Random,
        SynthPattern::ManySmall => synth::Pattern::ManySmall,
    }
}

async fn synth_cmd(global: &GlobalArgs, a: &SynthArgs, printer: &Printer) -> anyhow::Result<()> {
    let src = ImageSource::from_args(&a.source)?;
    if let ImageSource::Files(f) = &src {
        crate::output::refuse_overwriting(&[("-o", &a.output)], &[("--files", f)])?;
    }
    let opts = SynthOptions {
        working_set: a.working_set,
        pattern: pattern(a.pattern),
        read_size: a.read_size.max(1),
        seed: a.seed,
        ready_at: a.ready_at,
    };
    let files = load_image_files(&src, global, printer).await?;
    let mut header = Header::new("synth", Clock::None);
    header.image = Some(image_id(&files));
    header.source = Some(format!(
        "synth working-set={:?} pattern={:?} read-size={} seed={} ready-at={:?}",
        opts.working_set, opts.pattern, opts.read_size, opts.seed, opts.ready_at
    ));
    let mut w = TraceWriter::create(&a.output, &header)?;
    let s = synth::synthesize(&files, &opts, |e| w.write(e))?;
    w.commit()?;
    if a.output.as_os_str() == "-" {
        printer.note(&format!(
            "synth: {} events, {} files, {} of {} image bytes",
            s.events,
            s.files,
            Bytes(s.bytes),
            s.image_bytes
        ));
    } else if printer.is_json() {
        printer.json(&s)?;
    } else {
        printer.out(&format!(
            "{}: {} events, {} files, {} read of {} image bytes",
            a.output.display(),
            s.events,
            s.files,
            Bytes(s.bytes),
            s.image_bytes
        ))?;
    }
    Ok(())
}

async fn analyze_cmd(
    global: &GlobalArgs,
    a: &AnalyzeArgs,
    printer: &Printer,
) -> anyhow::Result<()> {
    let src = ImageSource::from_args(&a.source)?;
    let opts = AnalyzeOptions {
        fetch: FetchConfig {
            no_prefetch: a.no_prefetch,
            prefetch_size: a.prefetch_size,
            single_range: a.single_range,
            ..FetchConfig::default()
        },
        mount: true,
        show_missing: a.show_missing,
    };
    let files = load_image_files(&src, global, printer).await?;
    let mut reader = TraceReader::open(&a.trace)?;
    let report = crate::trace::analyze::analyze(&files, &mut reader, &opts)?;
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.out(&crate::report::trace::render(&report))?;
        for n in &report.notes {
            printer.note(&format!("note: {n}"));
        }
    }
    Ok(())
}

/// The line `trace record` keeps on stderr: a spinner, the phase, the time
/// in it and what is known (hidden when stderr is not a terminal, or with -q).
fn record_progress(
    printer: &Printer,
    timeout: std::time::Duration,
) -> crate::recorder::progress::RecordProgress {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !printer.show_progress() {
        return crate::recorder::progress::RecordProgress::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} ({elapsed}) {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    crate::recorder::progress::RecordProgress::new(bar, timeout)
}

async fn record(
    global: &GlobalArgs,
    a: &crate::cli::trace::RecordArgs,
    printer: &Printer,
) -> anyhow::Result<()> {
    use crate::recorder::record::{RecordSettings, record};
    let (_, ready) = super::readiness(a.ready_line.as_ref(), a.ready_path.as_ref())?;
    let mut settings = RecordSettings {
        image: a.image.clone(),
        command: a.command.clone(),
        ready,
        timeout: a.timeout,
        output: a.output.clone(),
        registry: super::registry_options(global),
        reference_runs: if a.no_reference_run {
            0
        } else {
            a.reference_runs
        },
        progress: crate::recorder::progress::RecordProgress::hidden(),
    };
    let conn = crate::containerd::Connection::connect_own(
        &global.address,
        &global.namespace,
        global.namespace_origin,
    )
    .await?;
    conn.wait_for_snapshotter(
        crate::containerd::OVERLAYFS,
        std::time::Duration::from_secs(10),
    )
    .await?;
    printer.note(&format!(
        "recording {} (pull, run with the recorder under its rootfs)…",
        a.image
    ));
    settings.progress = record_progress(printer, settings.timeout);
    let (interrupt, signals) = super::interrupt_switch();
    let interrupted = interrupt.clone();
    let r = record(&conn, &settings, interrupt).await;
    settings.progress.finish();
    signals.abort();
    let report =
        r.with_context(|| format!("recording {} failed; nothing was left behind", a.image))?;
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.out(&crate::report::trace::render_record(&report))?;
        if let Some(note) = crate::report::trace::reference_note(&report) {
            printer.note(&note);
        }
    }
    if *interrupted.borrow() {
        crate::bail_user!("interrupted: the trace so far is in {}", report.output);
    }
    if report.timed_out {
        printer.warn(&format!(
            "the workload did not exit within {} (--timeout); it was stopped and the trace ends there",
            crate::units::Seconds::from_duration(a.timeout)
        ));
    }
    Ok(())
}
