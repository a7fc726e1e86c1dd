//! `advisor advise`: predict eager, lazy and lazy+prefetch for an image and
//! a workload, and recommend one.
use crate::cli::GlobalArgs;
use crate::cli::advise::{AdviseArgs, InputArgs, PathArgs};
use crate::commands::trace::load_image_files;
use crate::estargz::table::ImageFiles;
use crate::filetable::ImageSource;
use crate::output::{Named, Rendered};
use crate::predict::workload::Workload;
use crate::predict::{PredictOptions, Prediction, predict};
use crate::printer::Printer;
use crate::profile::Profile;
use crate::trace::format::TraceReader;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// The bundled example (the README's main command): the file table of the
/// `models/examples/llm-serving.json` image as `image inspect --toc-out`
/// saved it, and the trace `trace record` made of its command on the lab.
pub mod example {
    pub const FILES_NAME: &str = "models/examples/llm-serving.files.json";
    pub const FILES: &str = include_str!("../../models/examples/llm-serving.files.json");
    pub const TRACE_NAME: &str = "traces/llm-serving.jsonl";
    pub const TRACE: &str = include_str!("../../traces/llm-serving.jsonl");
    /// Compressed size of the image's gzip form (`image build --format json`).
    pub const GZIP_BYTES: crate::units::Bytes = crate::units::Bytes(1_051_840_684);
}

/// Where the image's file table comes from, including the bundled example.
pub(crate) enum Image {
    Source(ImageSource),
    Example,
}

/// Where the trace comes from.
pub(crate) enum Trace {
    File(PathBuf),
    Example,
}

/// Arguments resolved before any work.
struct Settings {
    image: Image,
    trace: Trace,
    profile: Option<PathBuf>,
    options: PredictOptions,
    plot: Option<PathBuf>,
    plot_rtt: Option<PathBuf>,
    prefetch_list: Option<PathBuf>,
}

fn settings(args: &AdviseArgs) -> anyhow::Result<Settings> {
    let (image, trace) = sources(&args.inputs)?;
    let gzip_bytes = match image {
        Image::Example => args.inputs.gzip_bytes.or(Some(example::GZIP_BYTES)),
        Image::Source(_) => args.inputs.gzip_bytes,
    };
    let mut options = PredictOptions {
        gzip_bytes,
        background: !args.no_background_fetch,
        max_rtt: args.rtt_max,
        ..Default::default()
    };
    if let Some(p) = args.prefetch_size {
        options.fetch.prefetch_size = p;
    }
    options.link = path_link(&args.path)?;
    refuse_overwriting_inputs(args)?;
    Ok(Settings {
        image,
        trace,
        profile: args.inputs.profile.clone(),
        options,
        plot: args.plot.clone(),
        plot_rtt: args.plot_rtt.clone(),
        prefetch_list: args.prefetch_list.clone(),
    })
}

/// The image's file table and the trace, from `--image`/`--files` and
/// `--trace`; none of them: the bundled example (advise and plan).
pub(crate) fn sources(inputs: &InputArgs) -> anyhow::Result<(Image, Trace)> {
    Ok(match (&inputs.image, &inputs.files, &inputs.trace) {
        (None, None, None) => (Image::Example, Trace::Example),
        (_, Some(f), Some(t)) => (
            Image::Source(ImageSource::Files(f.clone())),
            Trace::File(t.clone()),
        ),
        (Some(r), None, Some(t)) => (
            Image::Source(ImageSource::Reference(r.clone())),
            Trace::File(t.clone()),
        ),
        (None, None, Some(_)) => {
            crate::bail_user!(
                "give the image the trace belongs to: --image REF (its eStargz form) or --files FILE"
            )
        }
        (_, _, None) => crate::bail_user!(
            "give the workload: --trace FILE (make one with `advisor trace record`, `trace import` or `trace synth`); with no arguments at all, advise runs the bundled example"
        ),
    })
}

/// The path `--network FILE` or `--rtt` and `--bandwidth` give, checked;
/// neither: None (the calibration's own).
pub(crate) fn path_link(path: &PathArgs) -> anyhow::Result<Option<crate::simulate::network::Link>> {
    let link = match (&path.network, path.rtt, path.bandwidth) {
        (Some(file), _, _) => network_link(file)?,
        (None, Some(rtt), Some(bw)) => crate::simulate::network::Link::new(rtt.as_secs_f64(), bw),
        _ => return Ok(None),
    };
    link.validate()
        .map_err(|e| crate::error::user(format!("the network path: {e}")))?;
    Ok(Some(link))
}

/// The path a network profile (`advisor probe -o FILE`) describes.
pub(crate) fn network_link(
    path: &std::path::Path,
) -> anyhow::Result<crate::simulate::network::Link> {
    let fail = |why: String| crate::error::user(format!("--network {}: {why}", path.display()));
    let text = crate::input::read_text(path, crate::input::MAX_INPUT_TEXT)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    let profile = crate::probe::NetworkProfile::from_json(&text).map_err(|e| {
        fail(format!(
            "not a network profile ({e}); make one with `advisor probe --registry HOST --image REF -o FILE`"
        ))
    })?;
    profile.link().map_err(fail)
}

/// Neither output may be an input (the file table, the trace, the profile) or the other output.
fn refuse_overwriting_inputs(args: &AdviseArgs) -> anyhow::Result<()> {
    let outputs: Vec<Named> = [
        ("--prefetch-list", &args.prefetch_list),
        ("--plot", &args.plot),
        ("--plot-rtt", &args.plot_rtt),
    ]
    .into_iter()
    .filter_map(|(flag, p)| Some((flag, p.as_deref()?)))
    .collect();
    let inputs: Vec<Named> = [
        ("--files", &args.inputs.files),
        ("--trace", &args.inputs.trace),
        ("--profile", &args.inputs.profile),
        ("--network", &args.path.network),
    ]
    .into_iter()
    .filter_map(|(flag, p)| Some((flag, p.as_deref()?)))
    .collect();
    crate::output::refuse_overwriting(&outputs, &inputs)
}

#[derive(Serialize)]
struct AdviseOutput<'a> {
    image_name: String,
    trace_name: String,
    profile: String,
    prediction: &'a Prediction,
}

pub async fn run(global: &GlobalArgs, args: &AdviseArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut s = settings(args)?;
    let image = load_image(&s.image, global, printer).await?;
    let (profile, profile_name) = load_profile(s.profile.as_ref(), printer)?;
    if args.prefetch_size.is_none() {
        s.options.fetch = profile.fetch_config();
    }
    let prediction = compute(&image, &s, &profile)?;
    let (image_name, trace_name) = names(&s.image, &s.trace);

    write_outputs(
        &s,
        &prediction,
        &format!("{image_name} — {trace_name}"),
        printer,
    )?;
    if printer.is_json() {
        printer.json(&AdviseOutput {
            image_name,
            trace_name,
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

/// The image's file table: from the registry, a saved file, or the bundled example.
pub(crate) async fn load_image(
    image: &Image,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ImageFiles> {
    Ok(match image {
        Image::Source(src) => load_image_files(src, global, printer).await?,
        Image::Example => {
            printer.note(&format!(
                "the bundled example: {} with {} (pass --image/--files and --trace for your own)",
                example::FILES_NAME,
                example::TRACE_NAME
            ));
            serde_json::from_str(example::FILES)
                .context("the bundled example's file table is invalid (a bug)")?
        }
    })
}

/// The node profile and its name: `--profile FILE` or the bundled one.
pub(crate) fn load_profile(
    path: Option<&PathBuf>,
    printer: &Printer,
) -> anyhow::Result<(Profile, String)> {
    Ok(match path {
        Some(p) => (Profile::load(p)?, p.display().to_string()),
        None => {
            printer.note(
                "profile: the bundled lab calibration (calibration/default.json); pass --profile FILE from `advisor calibrate` for this node",
            );
            (
                Profile::default_profile()?,
                "calibration/default.json (bundled)".to_string(),
            )
        }
    })
}

/// How the image and the trace are named in reports.
pub(crate) fn names(image: &Image, trace: &Trace) -> (String, String) {
    let image_name = match image {
        Image::Source(ImageSource::Files(f)) => f.display().to_string(),
        Image::Source(ImageSource::Reference(r)) => r.clone(),
        Image::Example => example::FILES_NAME.to_string(),
    };
    let trace_name = match trace {
        Trace::File(p) => p.display().to_string(),
        Trace::Example => example::TRACE_NAME.to_string(),
    };
    (image_name, trace_name)
}

/// `--prefetch-list`, `--plot` and `--plot-rtt`: all rendered first, then
/// put in place together, so a failure in one (a directory that does not
/// exist) writes none.
fn write_outputs(
    s: &Settings,
    prediction: &Prediction,
    title: &str,
    printer: &Printer,
) -> anyhow::Result<()> {
    let draw = |what: &str, svg: Result<String, String>| {
        svg.map_err(|e| anyhow::anyhow!("drawing the {what}: {e}"))
    };
    let mut rendered: Vec<(&'static str, &PathBuf, String, String)> = Vec::new();
    if let Some(path) = &s.prefetch_list {
        let mut text = prediction.prioritized_files.join("\n");
        text.push('\n');
        let done = format!(
            "wrote {} prioritized file(s) to {}",
            prediction.prioritized_files.len(),
            path.display()
        );
        rendered.push(("prefetch list", path, text, done));
    }
    if let Some(path) = &s.plot {
        let svg = draw("plot", crate::report::plot::sweep_svg(prediction, title))?;
        let done = format!("wrote the plot to {}", path.display());
        rendered.push(("plot", path, svg, done));
    }
    if let Some(path) = &s.plot_rtt {
        let svg = draw("RTT plot", crate::report::plot::rtt_svg(prediction, title))?;
        let done = format!("wrote the RTT plot to {}", path.display());
        rendered.push(("RTT plot", path, svg, done));
    }
    let files: Vec<Rendered> = rendered
        .iter()
        .map(|(what, path, text, _)| Rendered {
            what,
            path,
            bytes: text.as_bytes(),
        })
        .collect();
    crate::output::write_all_or_none(&files)?;
    for (_, _, _, done) in &rendered {
        printer.note(done);
    }
    Ok(())
}

fn compute(image: &ImageFiles, s: &Settings, profile: &Profile) -> anyhow::Result<Prediction> {
    let w = workload(image, &s.trace)?;
    Ok(predict(image, &w, profile, &s.options))
}

/// The trace joined with the image's files; a trace that names none of
/// them is refused.
pub(crate) fn workload(image: &ImageFiles, trace: &Trace) -> anyhow::Result<Workload> {
    let (w, name) = match trace {
        Trace::File(p) => (
            Workload::from_trace(image, &mut TraceReader::open(p)?)?,
            p.display().to_string(),
        ),
        Trace::Example => {
            let mut r = TraceReader::new(
                std::io::Cursor::new(example::TRACE.as_bytes()),
                example::TRACE_NAME,
            )?;
            (
                Workload::from_trace(image, &mut r)?,
                example::TRACE_NAME.to_string(),
            )
        }
    };
    if w.accesses.is_empty() {
        crate::bail_user!(
            "{name}: no file access resolves to a file of the image ({} event(s), {} missing path(s)); is it the trace of this image?",
            w.events,
            w.missing_count
        );
    }
    Ok(w)
}
