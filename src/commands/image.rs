//! `advisor image build | inspect`.
//!
//! Resolves arguments into settings (spec, prioritized list, busybox, push
//! targets: all checked before any work), runs the `image` module, renders its
//! typed results. Build and scan progress is drawn on stderr (hidden when
//! stderr is not a terminal, or with -q); `--jobs` bounds the compression
//! threads of a build and the layers a scan decompresses at once.
use crate::cli::GlobalArgs;
use crate::cli::image::{BuildArgs, ImageArgs, ImageCommand, InspectArgs};
use crate::filetable::inspect::{InspectOptions, Inspection, ScanProgress, inspect_with_progress};
use crate::image::base::Busybox;
use crate::image::build::{
    self, BuildReport, BuildSettings, BuiltImage, FormReport, LayerReport, Progress,
};
use crate::image::plan::{self, Plan};
use crate::image::push::{self, Targets};
use crate::image::spec::{self, Base, Spec};
use crate::printer::Printer;
use crate::registry::{Platform, RegistryClient};
use crate::units::Seconds;
use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    let mut settings = BuildSettings::from_spec(&spec, a.work_dir.clone());
    settings.platform = build_platform(global.platform.as_ref(), &spec.base, settings.platform)?;
    settings.jobs = global.jobs();
    Ok(BuildPlan {
        spec_path: a.spec.clone(),
        spec,
        plan,
        settings,
        targets,
    })
}

/// The platform a built image's config names: `--platform` when the image
/// has no base layer (its files run nowhere), else this host's — a busybox
/// base is the host's, so another platform would label it falsely.
fn build_platform(
    flag: Option<&Platform>,
    base: &Base,
    host: Platform,
) -> anyhow::Result<Platform> {
    match (flag, base) {
        (None, _) => Ok(host),
        (Some(p), Base::None) => Ok(p.clone()),
        (Some(p), Base::Busybox) if p.rank(&host) == Some(0) => Ok(host),
        (Some(p), Base::Busybox) => crate::bail_user!(
            "--platform {p}: the spec's busybox base is this host's ({host}); build on a {p} node, or give the spec `\"base\": \"none\"`"
        ),
    }
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

/// The bars of `image build` and `image inspect --scan`: bytes of the total,
/// throughput, what is being read or written.
fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>8} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A bar per scanned layer: compressed bytes streamed of the blob's size.
fn scan_progress(printer: &Printer) -> ScanProgress {
    if !printer.show_progress() {
        return ScanProgress::hidden();
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = bytes_style();
    ScanProgress::new(move |index, digest, size| {
        let b = multi.add(ProgressBar::new(size).with_style(style.clone()));
        b.set_prefix(format!("layer {index}"));
        let short = digest.get(..19).unwrap_or(digest);
        b.set_message(format!("scanning {short}"));
        b
    })
}

fn progress(printer: &Printer) -> (Progress, Option<MultiProgress>) {
    if !printer.show_progress() {
        return (Progress::hidden(), None);
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = bytes_style();
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
        printer.out(&crate::report::image::render_build(&r))?;
    }
    Ok(())
}

async fn inspect_cmd(
    global: &GlobalArgs,
    a: &InspectArgs,
    printer: &Printer,
) -> anyhow::Result<()> {
    let client = RegistryClient::new(super::registry_options(global))?;
    let opts = InspectOptions {
        scan: a.scan,
        jobs: global.jobs(),
    };
    let insp = inspect_with_progress(&client, &a.reference, opts, &scan_progress(printer)).await?;
    if printer.is_json() {
        printer.json(&insp)?;
    } else {
        printer.out(&crate::report::image::render_inspect(&insp))?;
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
                .map(|l| format!("layer {} ({}, {})", l.index, l.digest, l.format.name()))
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

#[cfg(test)]
mod tests {
    use super::build_platform;
    use crate::image::spec::Base;
    use crate::registry::Platform;

    #[test]
    fn build_platform_is_the_host_s_unless_the_image_has_no_base() {
        let host = Platform::new("linux", "amd64", None);
        let arm = Platform::new("linux", "arm64", None);
        assert_eq!(
            build_platform(None, &Base::Busybox, host.clone()).unwrap(),
            host
        );
        assert_eq!(
            build_platform(Some(&arm), &Base::None, host.clone()).unwrap(),
            arm
        );
        let same = Platform::new("linux", "x86_64", None);
        assert_eq!(
            build_platform(Some(&same), &Base::Busybox, host.clone()).unwrap(),
            host
        );
        let e = build_platform(Some(&arm), &Base::Busybox, host).unwrap_err();
        assert!(crate::exit::is_user_error(&e));
        assert!(e.to_string().contains("--platform linux/arm64"), "{e}");
    }
}
