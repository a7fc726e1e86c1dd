//! Calibration: measuring a node and fitting its cost-model parameters.
//!
//! Owns the calibration matrix and its workloads (`workload`, `runner`), the
//! regressions (`fit`, `model`), and assembling the profile with the node's
//! facts. Drives `bench` for every measurement; does not render.
pub mod fit;
pub mod model;
pub mod runner;
pub mod workload;

use crate::containerd::Connection;
use crate::containerd::pull::DEFAULT_PREFETCH_SIZE;
use crate::predict::replay::{self, ImageCounts, Strategy};
use crate::profile::{NodeFacts, PROFILE_SCHEMA, Profile};
use crate::registry::{RegistryClient, RegistryOptions};
use crate::simulate::network::Link;
use crate::simulate::snapshotter::FetchConfig;
use crate::units::{Bytes, Estimate, Seconds};
use model::{RunCheck, fit_all};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;
/// Small GETs timed for the registry round trip.
const RTT_PROBES: usize = 12;
/// Longest wait for one of them (a lost one is left out, not waited for).
const RTT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The fetch rules calibration runs use: the bench's lazy pulls label
/// layers with `stargz.prefetch` = 10 MiB (as `ctr-remote rpull`).
pub fn fetch_config() -> FetchConfig {
    FetchConfig {
        prefetch_size: DEFAULT_PREFETCH_SIZE,
        ..FetchConfig::default()
    }
}

/// The fetch simulator against the snapshotter's own counters, per lazy run.
#[derive(Debug, Clone, Serialize)]
pub struct SimCheck {
    pub key: String,
    pub simulated_requests: u64,
    pub measured_requests: u64,
    pub simulated_bytes: Bytes,
    pub measured_bytes: Bytes,
}

/// What a calibration produced.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub profile: Profile,
    pub runs: usize,
    pub checks: Vec<RunCheck>,
    pub sim_checks: Vec<SimCheck>,
    /// Nuisance terms of the calibration workload (not used by `advise`).
    pub workload_terms: model::Nuisance,
    pub notes: Vec<String>,
}

/// A fresh run against a profile's prediction (`calibrate --check`).
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub key: String,
    pub predicted_s: Seconds,
    pub measured_s: Seconds,
    pub drift: f64,
}

/// Facts of the node: kernel, CPUs, memory, containerd, snapshotter settings,
/// registry and its measured round trip (over the registry client's route:
/// see [`registry_rtt`]).
pub async fn node_facts(
    conn: &Connection,
    registry: &str,
    registry_options: &RegistryOptions,
) -> NodeFacts {
    let uts = nix::sys::utsname::uname().ok();
    let memory = {
        use procfs::Current;
        procfs::Meminfo::current().map(|m| m.mem_total).unwrap_or(0)
    };
    let containerd_version = conn.version().await.map(|v| v.version).unwrap_or_default();
    let mut snapshotter_config = BTreeMap::new();
    snapshotter_config.insert(
        "prefetch_size".to_string(),
        DEFAULT_PREFETCH_SIZE.to_string(),
    );
    snapshotter_config.insert(
        "source".to_string(),
        "stargz.prefetch label of advisor's lazy pulls; other keys at the snapshotter's defaults"
            .to_string(),
    );
    let rtt = match RegistryClient::new(registry_options.clone()) {
        Ok(client) => registry_rtt(&client, registry).await,
        Err(e) => {
            tracing::warn!("the round trip to {registry} was not measured: {e}");
            None
        }
    };
    NodeFacts {
        hostname: uts
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: uts
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes: Bytes(memory),
        containerd_version,
        snapshotter: "stargz".into(),
        snapshotter_config,
        registry: registry.to_string(),
        registry_rtt_s: rtt,
        link: None,
    }
}

/// Mean round trip of small `GET /v2/`s, with a t interval, to the host the
/// calibration images' pulls go to: the client's pull route (a hosts.toml
/// mirror when there is one, else the registry), with that host's TLS
/// settings (`--ca-cert`, hosts.toml CAs and client certificates) and
/// headers, as `advisor probe` measures one. Any status is an answer (a 401
/// too); None when no probe was answered or the route cannot be built.
pub async fn registry_rtt(client: &RegistryClient, registry: &str) -> Option<Estimate> {
    let repo = client
        .repository(&format!("{registry}/{}", runner::REPOSITORY))
        .and_then(|r| client.pull_route(&r));
    let repo = match repo {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("the round trip to {registry} was not measured: {e}");
            return None;
        }
    };
    let mut xs = Vec::new();
    for _ in 0..RTT_PROBES {
        match tokio::time::timeout(RTT_PROBE_TIMEOUT, client.ping(&repo)).await {
            Ok(Ok(a)) => xs.push(a.elapsed.as_secs_f64()),
            Ok(Err(e)) => tracing::debug!("round trip to {}: {e}", repo.v2_url()),
            Err(_) => tracing::debug!(
                "round trip to {}: over {RTT_PROBE_TIMEOUT:?}",
                repo.v2_url()
            ),
        }
    }
    // The first connects; the rest reuse the connection like the snapshotter does.
    let xs = if xs.len() > 2 { &xs[1..] } else { &xs[..] };
    let c = fit::mean_interval("rtt", xs, fit::CONFIDENCE);
    (!xs.is_empty()).then(|| Estimate::new(c.value, c.low.max(0.0), c.high, fit::CONFIDENCE))
}

/// Bounds of the probe of the calibration's link: it reads at most
/// [`LINK_MAX_BYTES`] per throughput measurement and stops at
/// [`LINK_BUDGET`] (on loopback it takes well under a second).
pub const LINK_BUDGET: Duration = Duration::from_secs(10);
pub const LINK_MAX_BYTES: u64 = 64 << 20;
/// Round trips and parallel streams of that probe.
const LINK_RTT_SAMPLES: usize = 50;
const LINK_STREAMS: usize = 4;

/// The path to the registry the calibration ran over, measured as `advisor
/// probe` measures one (`advise --network` prices a probed path the same
/// way), on the largest layer of the calibration images (the registry has
/// them once the matrix has built them).
pub async fn measure_link(
    registry: &str,
    registry_options: &RegistryOptions,
    images: &[model::CalImage],
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Link> {
    let Some(img) = images.iter().max_by_key(|i| i.gzip_bytes) else {
        anyhow::bail!("no calibration image to read");
    };
    let opts = crate::probe::ProbeOptions {
        registry: registry.to_string(),
        target: crate::probe::Target::Image(img.gzip_reference.clone()),
        streams: LINK_STREAMS,
        max_bytes: LINK_MAX_BYTES,
        rtt_samples: LINK_RTT_SAMPLES,
        budget: LINK_BUDGET,
        registry_options: registry_options.clone(),
    };
    let net = crate::probe::run(&opts, progress).await?;
    net.link()
        .map_err(|e| anyhow::anyhow!("the probe of {registry}: {e}"))
}

/// Fit the profile from what the runs file holds, cross-validate it, and
/// check the fetch simulator against the snapshotter's counters.
pub fn build_profile(
    stored: &model::Stored,
    node: NodeFacts,
    runs_file: Option<String>,
) -> anyhow::Result<CalibrationReport> {
    let fetch = fetch_config();
    let fitted = fit_all(
        &stored.images,
        &stored.runs,
        &fetch,
        node.registry_rtt_s.as_ref(),
    )?;
    let mut profile = Profile {
        schema: PROFILE_SCHEMA.into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        advisor_version: env!("CARGO_PKG_VERSION").into(),
        node,
        parameters: fitted.parameters.clone(),
        fits: fitted.fits.clone(),
        validation: None,
        runs_file,
        workload_terms: BTreeMap::from([
            (
                "eager_segment_s".to_string(),
                fitted.nuisance.eager_segment_s.0,
            ),
            (
                "eager_process_s".to_string(),
                fitted.nuisance.eager_process_s.0,
            ),
            (
                "lazy_segment_s".to_string(),
                fitted.nuisance.lazy_segment_s.0,
            ),
            (
                "lazy_process_s".to_string(),
                fitted.nuisance.lazy_process_s.0,
            ),
        ]),
    };
    let model::CrossValidation { validation, checks } =
        model::cross_validate(&stored.images, &stored.runs, &fetch, FOLDS, &profile)?;
    profile.validation = Some(validation);
    let sim_checks = stored
        .runs
        .iter()
        .filter(|r| r.strategy == Strategy::Lazy && r.run.included)
        .filter_map(|r| {
            let img = stored.images.iter().find(|i| i.name == r.image)?;
            let lazy = r.run.network.lazy.as_ref()?;
            let counts = ImageCounts::of(&img.files, Some(img.gzip_bytes));
            let w = img.workload.workload(&img.files);
            let rep = replay::run(
                &img.files,
                &counts,
                &w,
                Strategy::Lazy,
                &fetch,
                &profile,
                false,
            );
            Some(SimCheck {
                key: r.key.clone(),
                simulated_requests: rep.counts.requests,
                measured_requests: lazy.registry_gets,
                simulated_bytes: rep.counts.network_bytes,
                measured_bytes: lazy.fetched,
            })
        })
        .collect();
    let mut notes = Vec::new();
    let excluded = stored.runs.iter().filter(|r| !r.run.included).count();
    if excluded > 0 {
        notes.push(format!("{excluded} run(s) excluded by the bench's checks (not cold, fell back, failed): see the runs file"));
    }
    Ok(CalibrationReport {
        profile,
        runs: stored.runs.len(),
        checks,
        sim_checks,
        workload_terms: fitted.nuisance,
        notes,
    })
}
