//! `advisor image build | inspect`.
//!
//! Resolves arguments into settings (spec, prioritized list, busybox, push
//! targets: all checked before any work), runs the `image` module, renders its
//! typed results. Build progress is drawn on stderr (hidden when stderr is not
//! a terminal, or with -q).
use crate::cli::GlobalArgs;
use crate::cli::image::{BuildArgs, ImageArgs, ImageCommand, InspectArgs};
use crate::estargz::table::LayerFormat;
use crate::image::base::Busybox;
use crate::image::build::{self, BuildSettings, BuiltImage, Form, Progress};
use crate::filetable::inspect::{InspectOptions, Inspection, Landmark, inspect};
use crate::image::plan::{self, Plan};
use crate::image::push::{self, Targets};
use crate::image::spec::{self, Base, Spec};
use crate::printer::Printer;
use crate::registry::RegistryClient;
use crate::units::{Bytes, Seconds};
use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub async fn run(global: &GlobalArgs, args: &ImageArgs, printer: &Printer) -> anyhow::Result<()> {
    match &args.command {
        ImageCommand::Build(a) => build_cmd(global, a, printer).await,
        ImageCommand::Inspect(a) => inspect_cmd(global, a, printer).await,
    }
}

/// Everything `build` needs, checked before work starts.
struct BuildPlan {
    spec_path: PathBuf,
    spec: Spec,
    plan: Plan,
    settings: BuildSettings,
    targets: Option<Targets>,
}

fn build_settings(global: &GlobalArgs, a: &BuildArgs) -> anyhow::Result<BuildPlan> {
    let spec = spec::load(&a.spec)?;
    let extra = match &a.prioritize {
        Some(p) => plan::read_prioritize_file(p)?,
        None => Vec::new(),
    };
    let busybox = match spec.base {
        Base::Busybox => Some(Busybox::locate(&a.busybox)?),
        Base::None => None,
    };
    let targets = match (&a.push, a.dry_run) {
        (Some(r), false) => Some(Targets::from_reference(r, global.plain_http)?),
        (_, true) => None,
        (None, false) => crate::bail_user!("give --push REPO[:TAG] (or --dry-run)"),
    };
    let plan = plan::plan(&spec, &a.spec, busybox.as_ref(), &extra)?;
    let settings = BuildSettings::from_spec(&spec, a.work_dir.clone());
    Ok(BuildPlan {
        spec_path: a.spec.clone(),
        spec,
        plan,
        settings,
        targets,
    })
}

/// What `image build` did, per form.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub spec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub seed: u64,
    /// Regular files over all layers (both forms hold the same).
    pub files: usize,
    /// Bytes of file content over all layers.
    pub content_bytes: u64,
    pub build_seconds: Seconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_seconds: Option<Seconds>,
    /// Request body bytes sent to the registry (blobs already there are skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_pushed: Option<u64>,
    pub forms: Vec<FormReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormReport {
    pub form: Form,
    /// Where it was pushed (absent with --dry-run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Sum of the layer blobs.
    pub compressed_size: u64,
    pub layers: Vec<LayerReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    pub files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toc_digest: Option<String>,
}

fn report(
    b: &BuildPlan,
    built: &BuiltImage,
    build_seconds: f64,
    push: Option<(f64, u64)>,
) -> BuildReport {
    let forms = built
        .forms()
        .iter()
        .map(|f| FormReport {
            form: f.form,
            reference: b.targets.as_ref().map(|t| t.of(f.form).to_string()),
            manifest_digest: f.manifest_digest.clone(),
            config_digest: f.config_digest.clone(),
            compressed_size: f.layers.iter().map(|l| l.written.size).sum(),
            layers: f
                .layers
                .iter()
                .map(|l| LayerReport {
                    name: l.name.clone(),
                    digest: l.written.digest.clone(),
                    diff_id: l.written.diff_id.clone(),
                    size: l.written.size,
                    uncompressed_size: l.written.uncompressed_size,
                    files: l.files,
                    toc_digest: l.written.toc.as_ref().map(|t| t.digest.clone()),
                })
                .collect(),
        })
        .collect();
    BuildReport {
        spec: b.spec_path.display().to_string(),
        name: b.spec.name.clone(),
        seed: b.spec.seed,
        files: b.plan.layers.iter().map(|l| l.file_count()).sum(),
        content_bytes: built.payload_bytes,
        build_seconds: Seconds(build_seconds),
        push_seconds: push.map(|p| Seconds(p.0)),
        bytes_pushed: push.map(|p| p.1),
        forms,
    }
}

fn progress(printer: &Printer) -> (Progress, Option<MultiProgress>) {
    if !printer.show_progress() {
        return (Progress::hidden(), None);
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = |name: &'static str| {
        let b = multi.add(ProgressBar::new(0).with_style(style.clone()));
        b.set_prefix(name);
        b
    };
    (
        Progress {
            gzip: bar("gzip"),
            estargz: bar("eStargz"),
        },
        Some(multi),
    )
}

async fn build_cmd(global: &GlobalArgs, a: &BuildArgs, printer: &Printer) -> anyhow::Result<()> {
    let b = build_settings(global, a)?;
    let (bars, multi) = progress(printer);
    let started = Instant::now();
    let plan = b.plan.clone();
    let settings = b.settings.clone();
    let bars2 = bars.clone();
    let built = tokio::task::spawn_blocking(move || build::build(&plan, &settings, &bars2))
        .await
        .context("the image build thread failed (a bug)")??;
    let build_seconds = started.elapsed().as_secs_f64();
    bars.gzip.finish_and_clear();
    bars.estargz.finish_and_clear();
    drop(multi);
    let pushed = match &b.targets {
        Some(t) => {
            printer.note(&format!("pushing {} and {}", t.gzip, t.estargz));
            let client = RegistryClient::new(super::registry_options(global))?;
            let start = Instant::now();
            push::push(&client, &built, t).await?;
            Some((start.elapsed().as_secs_f64(), client.stats().bytes_sent))
        }
        None => None,
    };
    let r = report(&b, &built, build_seconds, pushed);
    if printer.is_json() {
        printer.json(&r)?;
    } else {
        printer.out(&render_build(&r))?;
    }
    Ok(())
}

fn short(d: &str) -> String {
    match d.strip_prefix("sha256:") {
        Some(h) => format!("sha256:{}", &h[..h.len().min(12)]),
        None => d.to_string(),
    }
}

/// The human form of a build report.
pub fn render_build(r: &BuildReport) -> String {
    let mut s = format!(
        "built {}(seed {}): {} files, {} of content, in {}",
        r.name.as_ref().map(|n| format!("{n} ")).unwrap_or_default(),
        r.seed,
        r.files,
        Bytes(r.content_bytes),
        r.build_seconds
    );
    if let (Some(t), Some(b)) = (r.push_seconds, r.bytes_pushed) {
        s.push_str(&format!("; pushed {} in {t}", Bytes(b)));
    }
    s.push('\n');
    let mut t = crate::report::table(["form", "reference", "manifest", "compressed"]);
    for f in &r.forms {
        t.add_row([
            f.form.name().to_string(),
            f.reference.clone().unwrap_or_else(|| "(not pushed)".into()),
            f.manifest_digest.clone(),
            Bytes(f.compressed_size).to_string(),
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    let mut t = crate::report::table([
        "layer",
        "files",
        "uncompressed",
        "gzip",
        "eStargz",
        "TOC digest",
    ]);
    if let [g, e] = &r.forms[..] {
        for (lg, le) in g.layers.iter().zip(&e.layers) {
            t.add_row([
                lg.name.clone(),
                lg.files.to_string(),
                Bytes(lg.uncompressed_size).to_string(),
                Bytes(lg.size).to_string(),
                Bytes(le.size).to_string(),
                le.toc_digest.as_deref().map(short).unwrap_or_default(),
            ]);
        }
    }
    s.push_str(&t.to_string());
    s
}

async fn inspect_cmd(
    global: &GlobalArgs,
    a: &InspectArgs,
    printer: &Printer,
) -> anyhow::Result<()> {
    let client = RegistryClient::new(super::registry_options(global))?;
    let insp = inspect(&client, &a.reference, InspectOptions { scan: a.scan }).await?;
    if printer.is_json() {
        printer.json(&insp)?;
    } else {
        printer.out(&render_inspect(&insp))?;
    }
    if let Some(path) = &a.toc_out {
        write_toc_out(&insp, path, a.scan)?;
        printer.note(&format!("wrote the file table to {}", path.display()));
    }
    Ok(())
}

fn write_toc_out(insp: &Inspection, path: &Path, scanned: bool) -> anyhow::Result<()> {
    let files = match insp.image_files() {
        Ok(f) => f,
        Err(missing) => {
            let list: Vec<String> = missing
                .iter()
                .map(|l| {
                    format!(
                        "layer {} ({}, {})",
                        l.index,
                        l.digest,
                        format_name(l.format)
                    )
                })
                .collect();
            let fix = if scanned {
                "advisor cannot list the files of these formats"
            } else {
                "add --scan to list them by streaming each once"
            };
            crate::bail_user!(
                "--toc-out {}: no file table for {}: {fix}; nothing written",
                path.display(),
                list.join(", ")
            );
        }
    };
    // The TOCs are the registry's word: write only a table `--files` accepts.
    files.check().map_err(|e| {
        crate::error::user(format!(
            "--toc-out {}: the image's file table fails the checks `--files` applies: {e}; \
             nothing written",
            path.display()
        ))
    })?;
    let json = serde_json::to_vec_pretty(&files).context("serializing the file table")?;
    crate::output::write_all_or_none(&[crate::output::Rendered {
        what: "file table (--toc-out)",
        path,
        bytes: &json,
    }])
}

fn format_name(f: LayerFormat) -> &'static str {
    match f {
        LayerFormat::Estargz => "eStargz",
        LayerFormat::LegacyStargz => "legacy stargz",
        LayerFormat::Gzip => "gzip",
        LayerFormat::Zstd => "zstd",
        LayerFormat::Uncompressed => "tar",
        LayerFormat::Other => "other",
    }
}

/// The human form of an inspection.
pub fn render_inspect(i: &Inspection) -> String {
    let mut s = format!(
        "{} ({}/{})\nmanifest {} ({}), config {}, platform {}\n",
        i.reference,
        i.registry,
        i.repository,
        i.manifest_digest,
        i.manifest_media_type,
        short(&i.config_digest),
        i.platform
    );
    if let Some(d) = &i.index_digest {
        s.push_str(&format!("index {d}\n"));
    }
    let mut t = crate::report::table([
        "#",
        "digest",
        "format",
        "compressed",
        "uncompressed",
        "files",
        "dirs",
        "links",
        "chunks",
        "file bytes",
        "TOC",
        "prefetch",
    ]);
    for l in &i.layers {
        let counts = l
            .toc
            .as_ref()
            .map(|t| &t.counts)
            .or(l.scan.as_ref().map(|s| &s.counts));
        let c = |f: fn(&crate::filetable::inspect::FileCounts) -> String| {
            counts.map(f).unwrap_or_else(|| "-".into())
        };
        let toc = match &l.toc {
            Some(t) => format!(
                "{} {}",
                Bytes(t.compressed_size),
                if t.verified { "verified" } else { "unverified" }
            ),
            None => "-".into(),
        };
        let prefetch = match &l.toc {
            Some(t) => match t.landmark {
                Landmark::Prefetch => format!(
                    "{} files, {}",
                    t.prioritized_files,
                    Bytes(t.prefetch_compressed_bytes.unwrap_or(0))
                ),
                Landmark::NoPrefetch => "none (landmark)".into(),
                Landmark::None => "no landmark".into(),
            },
            None => "-".into(),
        };
        t.add_row([
            l.index.to_string(),
            short(&l.digest),
            format_name(l.format).to_string(),
            Bytes(l.compressed_size).to_string(),
            l.uncompressed_size
                .map(|u| Bytes(u).to_string())
                .unwrap_or_else(|| "-".into()),
            c(|c| c.files.to_string()),
            c(|c| c.dirs.to_string()),
            c(|c| (c.symlinks + c.hardlinks).to_string()),
            c(|c| c.chunks.to_string()),
            c(|c| Bytes(c.file_bytes).to_string()),
            toc,
            prefetch,
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    for l in &i.layers {
        let counts = l
            .toc
            .as_ref()
            .map(|t| &t.counts)
            .or(l.scan.as_ref().map(|s| &s.counts));
        if let Some(c) = counts
            && !c.largest.is_empty()
        {
            let list: Vec<String> = c
                .largest
                .iter()
                .map(|f| format!("/{} ({})", f.path, Bytes(f.size)))
                .collect();
            s.push_str(&format!("layer {} largest: {}\n", l.index, list.join(", ")));
        }
        if let Some(n) = &l.note {
            s.push_str(&format!("layer {}: {n}\n", l.index));
        }
    }
    let f = &i.fetched;
    s.push_str(&format!(
        "fetched {} in {} requests: manifest and config {}, layer footers and TOCs {} (ranged GETs; budget {}: {})",
        Bytes(f.total_bytes),
        f.total_requests,
        Bytes(f.metadata_bytes),
        Bytes(f.ranged_bytes),
        Bytes(f.budget_bytes),
        if f.within_budget { "within" } else { "EXCEEDED" }
    ));
    if f.scan_bytes > 0 {
        s.push_str(&format!(", scans {}", Bytes(f.scan_bytes)));
    }
    s.push('\n');
    s
}
