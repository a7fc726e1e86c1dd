//! `advisor advise`: predict eager, lazy and lazy+prefetch for an image and
//! a workload, and recommend one.
use crate::cli::GlobalArgs;
use crate::cli::advise::AdviseArgs;
use crate::estargz::table::ImageFiles;
use crate::image::files::{ImageSource, load_image_files};
use crate::predict::workload::Workload;
use crate::predict::{PredictOptions, Prediction, predict};
use crate::printer::Printer;
use crate::profile::Profile;
use crate::trace::fetch::FetchConfig;
use crate::trace::format::TraceReader;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments resolved before any work.
struct Settings {
    image: ImageSource,
    trace: PathBuf,
    profile: Option<PathBuf>,
    options: PredictOptions,
    plot: Option<PathBuf>,
    prefetch_list: Option<PathBuf>,
}

fn settings(args: &AdviseArgs) -> anyhow::Result<Settings> {
    let image = match (&args.image, &args.files) {
        (_, Some(f)) => ImageSource::Files(f.clone()),
        (Some(r), None) => ImageSource::Reference(r.clone()),
        (None, None) => {
            crate::bail_user!("give the image: --image REF (its eStargz form) or --files FILE")
        }
    };
    let Some(trace) = args.trace.clone() else {
        crate::bail_user!(
            "give the workload: --trace FILE (make one with `advisor trace record`, `trace import` or `trace synth`)"
        );
    };
    let mut options = PredictOptions {
        gzip_bytes: args.gzip_bytes,
        background: !args.no_background_fetch,
        ..Default::default()
    };
    if let Some(p) = args.prefetch_size {
        options.fetch.prefetch_size = p;
    }
    Ok(Settings {
        image,
        trace,
        profile: args.profile.clone(),
        options,
        plot: args.plot.clone(),
        prefetch_list: args.prefetch_list.clone(),
    })
}

#[derive(Serialize)]
struct AdviseOutput<'a> {
    image: String,
    trace: String,
    profile: String,
    #[serde(flatten)]
    prediction: &'a Prediction,
}

pub async fn run(global: &GlobalArgs, args: &AdviseArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut s = settings(args)?;
    let image = load_image_files(&s.image, global).await?;
    let (profile, profile_name) = match &s.profile {
        Some(p) => (Profile::load(p)?, p.display().to_string()),
        None => {
            crate::bail_user!("give the node's profile: --profile FILE (from `advisor calibrate`)")
        }
    };
    if args.prefetch_size.is_none() {
        s.options.fetch = fetch_config_of(&profile);
    }
    let prediction = compute(&image, &s, &profile)?;
    let image_name = match &s.image {
        ImageSource::Files(f) => f.display().to_string(),
        ImageSource::Reference(r) => r.clone(),
    };
    let trace_name = s.trace.display().to_string();

    if let Some(path) = &s.prefetch_list {
        let mut text = prediction.prioritized_files.join("\n");
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the prefetch list {}", path.display()))?;
        printer.note(&format!(
            "wrote {} prioritized file(s) to {}",
            prediction.prioritized_files.len(),
            path.display()
        ));
    }
    if let Some(path) = &s.plot {
        let svg =
            crate::report::plot::sweep_svg(&prediction, &format!("{image_name} — {trace_name}"))
                .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        std::fs::write(path, svg)
            .with_context(|| format!("cannot write the plot {}", path.display()))?;
        printer.note(&format!("wrote the plot to {}", path.display()));
    }
    if printer.is_json() {
        printer.json(&AdviseOutput {
            image: image_name,
            trace: trace_name,
            profile: profile_name,
            prediction: &prediction,
        })?;
    } else {
        printer.out(&crate::report::advise::render(
            &prediction,
            &image_name,
            &trace_name,
        ))?;
    }
    Ok(())
}

fn compute(image: &ImageFiles, s: &Settings, profile: &Profile) -> anyhow::Result<Prediction> {
    let mut reader = TraceReader::open(&s.trace)?;
    let w = Workload::from_trace(image, &mut reader)?;
    if w.accesses.is_empty() {
        crate::bail_user!(
            "{}: no file access resolves to a file of the image ({} event(s), {} missing path(s)); is it the trace of this image?",
            s.trace.display(),
            w.events,
            w.missing_count
        );
    }
    Ok(predict(image, &w, profile, &s.options))
}

/// The fetch rules of the node the profile was measured on.
pub fn fetch_config_of(profile: &Profile) -> FetchConfig {
    let mut f = FetchConfig::default();
    let cfg = &profile.node.snapshotter_config;
    if let Some(v) = cfg.get("prefetch_size").and_then(|v| v.parse().ok()) {
        f.prefetch_size = v;
    }
    if let Some(v) = cfg.get("noprefetch").and_then(|v| v.parse().ok()) {
        f.no_prefetch = v;
    }
    f
}
