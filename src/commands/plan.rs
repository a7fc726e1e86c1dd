//! `advisor plan`: one node's prediction for its path, shared by a fleet
//! pulling through one registry.
use crate::cli::GlobalArgs;
use crate::cli::plan::PlanArgs;
use crate::commands::advise::{
    Image, Trace, load_image, load_profile, names, path_link, sources, workload,
};
use crate::output::Rendered;
use crate::plan::{Plan, PlanOptions};
use crate::predict::{PredictOptions, predict};
use crate::printer::Printer;
use crate::simulate::fleet::Rollout;
use crate::simulate::network::Link;
use crate::units::Bytes;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments resolved before any work.
struct Settings {
    image: Image,
    trace: Trace,
    profile: Option<PathBuf>,
    gzip_bytes: Option<Bytes>,
    link: Option<Link>,
    /// The fleet; `registry_egress` 0 until the path is known (its default).
    fleet: PlanOptions,
    egress_given: bool,
    plot: Option<PathBuf>,
}

fn settings(args: &PlanArgs) -> anyhow::Result<Settings> {
    let (image, trace) = sources(&args.inputs)?;
    let gzip_bytes = match image {
        Image::Example => args
            .inputs
            .gzip_bytes
            .or(Some(crate::commands::advise::example::GZIP_BYTES)),
        Image::Source(_) => args.inputs.gzip_bytes,
    };
    let link = path_link(&args.path)?;
    let (nodes, rollout) = fleet_shape(args)?;
    let fleet = PlanOptions {
        nodes,
        rollout,
        registry_egress: args.registry_egress.unwrap_or(0.0),
        registry_rps: args.registry_rps,
        node_bandwidth: args.node_bandwidth,
        node_disk: args.node_disk.map(Bytes),
        target: args.target,
    };
    if let Some(plot) = &args.plot {
        let inputs: Vec<crate::output::Named> = [
            ("--files", &args.inputs.files),
            ("--trace", &args.inputs.trace),
            ("--profile", &args.inputs.profile),
            ("--network", &args.path.network),
            ("--manifest", &args.manifest),
        ]
        .into_iter()
        .filter_map(|(flag, p)| Some((flag, p.as_deref()?)))
        .collect();
        crate::output::refuse_overwriting(&[("--plot", plot.as_path())], &inputs)?;
    }
    Ok(Settings {
        image,
        trace,
        profile: args.inputs.profile.clone(),
        gzip_bytes,
        link,
        fleet,
        egress_given: args.registry_egress.is_some(),
        plot: args.plot.clone(),
    })
}

/// The nodes and the rollout: `--nodes` with `--waves K` or `--max-surge
/// N|P%` (neither: every node at once), or a manifest's.
fn fleet_shape(args: &PlanArgs) -> anyhow::Result<(u64, Rollout)> {
    if let Some(path) = &args.manifest {
        return manifest_shape(path, args.nodes);
    }
    let Some(nodes) = args.nodes else {
        crate::bail_user!(
            "give the fleet: --nodes N (or --manifest FILE, a Deployment's replicas)"
        );
    };
    Ok((nodes, rollout(args, nodes)?))
}

fn manifest_shape(path: &std::path::Path, nodes: Option<u64>) -> anyhow::Result<(u64, Rollout)> {
    let fail = |why: String| crate::error::user(format!("--manifest {}: {why}", path.display()));
    let text = crate::input::read_text(path, crate::input::MAX_INPUT_TEXT)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    let m = crate::plan::manifest::parse(&text).map_err(fail)?;
    let pods = match (nodes, m.replicas) {
        (Some(n), _) => n,
        (None, Some(0)) => {
            return Err(fail(format!(
                "{} has 0 replicas: nothing to roll out",
                m.workload
            )));
        }
        (None, Some(r)) if r > crate::plan::MAX_NODES => {
            return Err(fail(format!(
                "{} has {r} replicas; advisor plans up to {}",
                m.workload,
                crate::plan::MAX_NODES
            )));
        }
        (None, Some(r)) => r,
        (None, None) => {
            return Err(fail(format!(
                "{} runs a pod per node: give --nodes N",
                m.workload
            )));
        }
    };
    Ok((pods, Rollout::MaxSurge(m.at_once.resolve(pods))))
}

/// `--waves K` or `--max-surge N|P%`; neither: every node at once.
fn rollout(args: &PlanArgs, nodes: u64) -> anyhow::Result<Rollout> {
    if let Some(k) = args.waves {
        if k < 1 {
            crate::bail_user!("--waves {k}: give at least 1 wave");
        }
        return Ok(Rollout::Waves((k as u64).min(nodes)));
    }
    let Some(s) = &args.max_surge else {
        return Ok(Rollout::MaxSurge(nodes));
    };
    let bad = || {
        crate::error::user(format!(
            "--max-surge {s}: give a number of nodes (like 50) or a share of --nodes (like 25%)"
        ))
    };
    let n = if let Some(p) = s.trim().strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        // Kubernetes rounds a surge percentage up.
        ((nodes as f64 * p / 100.0).ceil() as u64).max(1)
    } else {
        let n: i128 = s.trim().parse().map_err(|_| bad())?;
        if n < 1 {
            return Err(bad());
        }
        n.min(nodes as i128) as u64
    };
    Ok(Rollout::MaxSurge(n.min(nodes)))
}

#[derive(Serialize)]
struct PlanOutput<'a> {
    image_name: String,
    trace_name: String,
    profile: String,
    path: Link,
    plan: &'a Plan,
}

pub async fn run(global: &GlobalArgs, args: &PlanArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut s = settings(args)?;
    let image = load_image(&s.image, global, printer).await?;
    let (profile, profile_name) = load_profile(s.profile.as_ref(), printer)?;
    let link = match s.link {
        Some(l) => l,
        None => {
            printer.note("the nodes' path: the calibration's own (pass --network FILE from `advisor probe` for a real one)");
            profile.calibration_link()
        }
    };
    if !s.egress_given {
        if !link.total_bytes_per_s.is_finite() {
            crate::bail_user!(
                "give the registry's egress, like --registry-egress 10gbit: the nodes' path (the calibration's own) has no bandwidth to take it from"
            );
        }
        s.fleet.registry_egress = link.total_bytes_per_s;
        printer.note(&format!(
            "registry egress: one node's path, {:.0} Mbit/s (pass --registry-egress for the registry's own)",
            link.total_bytes_per_s * 8.0 / 1e6
        ));
    }
    let w = workload(&image, &s.trace)?;
    let options = PredictOptions {
        gzip_bytes: s.gzip_bytes,
        fetch: profile.fetch_config(),
        link: Some(link),
        sweep_points: 2,
        ..Default::default()
    };
    let prediction = predict(&image, &w, &profile, &options);
    let plan = crate::plan::plan(&prediction, &s.fleet).map_err(crate::error::user)?;
    let (image_name, trace_name) = names(&s.image, &s.trace);
    if let Some(path) = &s.plot {
        let title = format!("{} nodes — {image_name}", plan.nodes);
        let svg = crate::report::plan::svg(&plan, &title)
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        crate::output::write_all_or_none(&[Rendered {
            what: "plot",
            path,
            bytes: svg.as_bytes(),
        }])?;
        printer.note(&format!("wrote the plot to {}", path.display()));
    }
    if printer.is_json() {
        printer.json(&PlanOutput {
            image_name,
            trace_name,
            profile: profile_name,
            path: link,
            plan: &plan,
        })?;
    } else {
        printer.out(&crate::report::plan::render(
            &plan,
            &image_name,
            &trace_name,
        ))?;
    }
    Ok(())
}
