//! From measured calibration runs to a profile: the regressions of
//! docs/calibration.md, stage by stage, and the k-fold cross-validation of
//! whole-run predictions made with the same replay `advise` uses.
//!
//! Every regression has few unknowns and is fed by runs designed to move
//! them apart (image size vs file count vs compressibility vs layers;
//! working-set fraction and read pattern within a run), so each is well
//! conditioned. Nuisance terms of the calibration workload itself (a fixed
//! cost per segment, a cost per process it starts) are fitted beside the
//! parameters so they do not bias them, and added back when predicting a
//! calibration run; they are not part of the profile because a recorded
//! trace carries them as compute time.
use super::fit::{self, CONFIDENCE, Coefficient, Fit, FitError};
use super::workload::{CalWorkload, START_MARK};
use crate::bench::RunRecord;
use crate::estargz::table::{FileRef, ImageFiles};
use crate::predict::replay::{self, ImageCounts, Strategy};
use crate::predict::workload::{AccessKind, Workload};
use crate::profile::{FitQuality, Param, ParamEstimate, Profile, Validation};
use crate::simulate::snapshotter::{FetchConfig, ReadOutcome, Simulator};
use crate::units::{Bytes, Estimate, Seconds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One calibration image: its file table (eStargz form) and gzip size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalImage {
    pub name: String,
    pub gzip_reference: String,
    pub estargz_reference: String,
    /// Compressed bytes of the gzip form's layers.
    pub gzip_bytes: Bytes,
    pub files: ImageFiles,
    pub workload: CalWorkload,
    /// The eStargz form with the workload's prefetch directories prioritized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefetch_reference: Option<String>,
}

impl CalImage {
    /// The prioritized files, in the plain form's file table (what `advise`
    /// replays for lazy+prefetch: the image as built, plus its startup set).
    pub fn prefetch_files(&self) -> Vec<FileRef> {
        self.workload.prefetch_files(&self.files)
    }

    /// The run's workload as `advise` replays it; for lazy+prefetch the
    /// startup set is the prioritized files.
    pub fn replay_workload(&self, strategy: Strategy) -> Workload {
        let mut w = self.workload.workload(&self.files);
        if strategy == Strategy::LazyPrefetch {
            w.startup_files = self.prefetch_files();
        }
        w
    }
}

/// One measured run of a calibration image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalRun {
    /// `image/strategy/repeat`: what resumption skips.
    pub key: String,
    pub image: String,
    pub strategy: Strategy,
    pub repeat: usize,
    pub run: RunRecord,
}

/// What a runs file holds: the images and their runs.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    pub images: Vec<CalImage>,
    pub runs: Vec<CalRun>,
}

/// Features of one workload segment of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SegmentFeatures {
    seconds: f64,
    processes: f64,
    opens: f64,
    bytes: f64,
    fetch: ReadOutcome,
}

/// The nuisance terms of the calibration workload (per segment, per process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Nuisance {
    pub eager_segment_s: Seconds,
    pub eager_process_s: Seconds,
    pub lazy_segment_s: Seconds,
    pub lazy_process_s: Seconds,
}

/// Everything fitted: the profile's parameters and fits, plus nuisance terms.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub parameters: BTreeMap<Param, ParamEstimate>,
    pub fits: BTreeMap<String, FitQuality>,
    pub nuisance: Nuisance,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error("calibration has no usable {what} runs ({detail}); run a longer calibration")]
    NoRuns { what: &'static str, detail: String },
}

impl ModelError {
    /// Missing runs (a budget too short, runs that failed) are the user's to fix.
    pub fn is_user_facing(&self) -> bool {
        match self {
            ModelError::Fit(e) => e.is_user_facing(),
            ModelError::NoRuns { .. } => true,
        }
    }
}

/// Prefetched runs needed to fit the prefetch terms (3 unknowns, 2 degrees
/// of freedom); with fewer, they take the on-demand values.
const PREFETCH_MIN_RUNS: usize = 5;

/// Runs that count: included by the bench (cold, not fallen back, exit 0).
fn usable(runs: &[CalRun], s: Strategy) -> impl Iterator<Item = &CalRun> {
    runs.iter()
        .filter(move |r| r.strategy == s && r.run.included && r.run.exit_code == Some(0))
}

fn secs(o: Option<crate::units::Seconds>) -> Option<f64> {
    o.map(|s| s.0)
}

/// Segment durations from the marks, and their features from the workload
/// replayed through the fetch simulator (lazy) or counted (eager).
fn segments(img: &CalImage, run: &CalRun, fetch: &FetchConfig) -> Vec<SegmentFeatures> {
    let marks = &run.run.marks;
    let at = |name: &str| {
        marks
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.after_start.0)
    };
    let accesses = img.workload.accesses(&img.files);
    let mut sim = (run.strategy != Strategy::Eager).then(|| {
        let mut sim = Simulator::new(&img.files, fetch.clone());
        for l in 0..img.files.layers.len() {
            sim.mount(l);
            sim.prefetch(l);
        }
        sim
    });
    let mut out = Vec::new();
    let mut prev = at(START_MARK);
    // accesses[0] is the shell's start: replay it so the cache state is right.
    for (i, acc) in accesses.iter().enumerate() {
        let mut f = SegmentFeatures::default();
        for a in acc {
            match a.kind {
                AccessKind::Open => f.opens += 1.0,
                AccessKind::Read => match sim.as_mut() {
                    Some(sim) => {
                        let o = sim.read(a.file, a.offset, a.len_opt());
                        f.bytes += o.bytes_served.as_f64();
                        f.fetch += o;
                    }
                    None => {
                        let size = img.files.file(a.file).size;
                        let n = a
                            .len_opt()
                            .map(|l| l.min(size.saturating_sub(a.offset)))
                            .unwrap_or(size.saturating_sub(a.offset));
                        f.bytes += n as f64;
                    }
                },
            }
        }
        if i == 0 {
            continue;
        }
        let seg = &img.workload.segments[i - 1];
        f.processes = img.workload.processes(&img.files, seg) as f64;
        let end = at(&seg.name);
        if let (Some(a), Some(b)) = (prev, end) {
            f.seconds = b - a;
            out.push(f);
        }
        prev = end;
    }
    out
}

/// Fit every parameter from the runs.
///
/// `request_floor` is the registry round trip measured on the node: every
/// on-demand range request waits at least that long, so `request_s` is fitted
/// as the round trip plus a non-negative overhead (a short, noisy calibration
/// could otherwise pin it at 0 when `chunk_s` absorbs it).
///
/// The stage fits run in this order, each reading the parameters the ones
/// before it put (the prefetch fit subtracts the mount and start fits'
/// predictions); the first that cannot be made is the error.
pub fn fit_all(
    images: &[CalImage],
    runs: &[CalRun],
    fetch: &FetchConfig,
    request_floor: Option<&Estimate>,
) -> Result<Fitted, ModelError> {
    let runs = StageRuns::new(images, runs, fetch);
    let mut out = Collected::default();
    fit_constants(&runs, &mut out)?;
    fit_eager_fetch(&runs, &mut out)?;
    fit_eager_unpack(&runs, &mut out)?;
    fit_lazy_mount(&runs, &mut out)?;
    let eager = fit_eager_io(&runs, &mut out)?;
    let lazy = fit_lazy_io(&runs, request_floor, &mut out)?;
    fit_prefetch(&runs, &mut out)?;
    // Terms the runs could not measure (too few prefetched runs, no coded
    // layer) take the profile's fallbacks.
    crate::profile::fill_fallbacks(&mut out.parameters);
    Ok(Fitted {
        parameters: out.parameters,
        fits: out.fits,
        nuisance: Nuisance {
            eager_segment_s: Seconds(eager.segment_s),
            eager_process_s: Seconds(eager.process_s),
            lazy_segment_s: Seconds(lazy.segment_s),
            lazy_process_s: Seconds(lazy.process_s),
        },
    })
}

/// The runs every stage fit reads, split by strategy once.
struct StageRuns<'a> {
    images: &'a [CalImage],
    fetch: &'a FetchConfig,
    /// Every run the bench included that exited 0, any strategy.
    all: Vec<&'a CalRun>,
    eager: Vec<&'a CalRun>,
    lazy: Vec<&'a CalRun>,
    prefetched: Vec<&'a CalRun>,
}

impl<'a> StageRuns<'a> {
    fn new(images: &'a [CalImage], runs: &'a [CalRun], fetch: &'a FetchConfig) -> Self {
        StageRuns {
            images,
            fetch,
            all: runs
                .iter()
                .filter(|r| r.run.included && r.run.exit_code == Some(0))
                .collect(),
            eager: usable(runs, Strategy::Eager).collect(),
            lazy: usable(runs, Strategy::Lazy).collect(),
            prefetched: usable(runs, Strategy::LazyPrefetch).collect(),
        }
    }

    /// Each run beside its image; runs of an image not in the runs file are skipped.
    fn with_images<'r>(
        &'r self,
        runs: &'r [&'a CalRun],
    ) -> impl Iterator<Item = (&'a CalImage, &'a CalRun)> + 'r {
        let images = self.images;
        runs.iter()
            .filter_map(move |r| Some((images.iter().find(|i| i.name == r.image)?, *r)))
    }
}

/// A segment fit's nuisance terms: its intercept and its processes coefficient.
struct SegmentNuisance {
    segment_s: f64,
    process_s: f64,
}

impl SegmentNuisance {
    fn of(f: &Fit) -> Self {
        SegmentNuisance {
            segment_s: value(f, "intercept"),
            process_s: value(f, "processes"),
        }
    }
}

/// How much of an optional column (bytes) one row must hold for the fit to
/// estimate it: the calibration's weights image holds 13–54 MB a row.
const MEASURES_OPTIONAL: f64 = 8e6;

/// One regression's rows: features and the seconds they explain.
#[derive(Default)]
struct Samples {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
}

impl Samples {
    fn push(&mut self, features: Vec<f64>, seconds: f64) {
        self.x.push(features);
        self.y.push(seconds);
    }

    fn fit(&self, name: &str, names: &[&str], intercept: bool) -> Result<Fit, FitError> {
        self.fit_measured(name, names, &[], intercept)
    }

    /// As [`Self::fit`], without the `optional` columns that no row holds
    /// [`MEASURES_OPTIONAL`] of: a matrix without the images that would measure
    /// them (runs from before they existed, where the base layer's binaries
    /// count about a megabyte in every image) leaves their parameters to the
    /// profile's fallback.
    fn fit_measured(
        &self,
        name: &str,
        names: &[&str],
        optional: &[&str],
        intercept: bool,
    ) -> Result<Fit, FitError> {
        let keep: Vec<usize> = (0..names.len())
            .filter(|&j| {
                !optional.contains(&names[j]) || self.x.iter().any(|r| r[j] >= MEASURES_OPTIONAL)
            })
            .collect();
        let x: Vec<Vec<f64>> = self
            .x
            .iter()
            .map(|r| keep.iter().map(|&j| r[j]).collect())
            .collect();
        let names: Vec<&str> = keep.iter().map(|&j| names[j]).collect();
        fit::fit_nonnegative(name, &names, &x, &self.y, intercept, CONFIDENCE)
    }
}

/// The profile's parameters and fits, as the stage fits put them.
#[derive(Default)]
struct Collected {
    parameters: BTreeMap<Param, ParamEstimate>,
    fits: BTreeMap<String, FitQuality>,
}

impl Collected {
    /// Record fit `fit_name`: each coefficient named in `map` becomes its
    /// parameter, and the fit's quality keeps their covariance.
    fn put(&mut self, fit_name: &str, f: &Fit, map: &[(&str, Param)], description: &str) {
        let mut params = Vec::new();
        let mut idx = Vec::new();
        for (coef, p) in map {
            if let Some(k) = f.coefficients.iter().position(|c| c.name == *coef) {
                let c = &f.coefficients[k];
                self.parameters.insert(*p, param(c, *p, fit_name));
                params.push(*p);
                idx.push(k);
            }
        }
        let covariance = idx
            .iter()
            .map(|&a| idx.iter().map(|&b| f.covariance[a][b]).collect())
            .collect();
        self.fits.insert(
            fit_name.to_string(),
            FitQuality {
                description: description.into(),
                n: f.n,
                r2: f.r2,
                residual_sd_s: Seconds(f.residual_sd),
                params,
                covariance,
            },
        );
    }

    /// A parameter already fitted, or 0.
    fn value(&self, p: Param) -> f64 {
        self.parameters
            .get(&p)
            .map(|e| e.estimate.value)
            .unwrap_or(0.0)
    }
}

/// A constant measured directly: the mean with its t interval.
fn mean_fit(name: &str, xs: Vec<f64>, what: &'static str) -> Result<Fit, ModelError> {
    if xs.len() < 2 {
        return Err(ModelError::NoRuns {
            what,
            detail: format!("{} sample(s) for {name}", xs.len()),
        });
    }
    let c = fit::mean_interval(name, &xs, CONFIDENCE);
    let n = xs.len();
    let sd = c.std_error * (n as f64).sqrt();
    Ok(Fit {
        covariance: vec![vec![c.std_error * c.std_error]],
        coefficients: vec![c],
        r2: 0.0,
        residual_sd: sd,
        n,
    })
}

/// Constants measured directly: resolve, create + start per snapshotter,
/// task start to the first marker.
fn fit_constants(runs: &StageRuns<'_>, out: &mut Collected) -> Result<(), ModelError> {
    let resolve = runs.all.iter().filter_map(|r| secs(r.run.phases.resolve));
    let f = mean_fit("resolve", resolve.collect(), "cold")?;
    let description = "mean of the resolve phase over all runs";
    out.put("resolve", &f, &[("resolve", Param::ResolveS)], description);

    let start = |rs: &[&CalRun]| -> Vec<f64> {
        rs.iter()
            .filter_map(|r| Some(secs(r.run.phases.create)? + secs(r.run.phases.start)?))
            .collect()
    };
    let f = mean_fit("start_overlay", start(&runs.eager), "eager")?;
    let map = [("start_overlay", Param::StartOverlayS)];
    out.put(
        "start-overlay",
        &f,
        &map,
        "mean of create + start, eager runs",
    );
    let f = mean_fit("start_stargz", start(&runs.lazy), "lazy")?;
    let map = [("start_stargz", Param::StartStargzS)];
    out.put(
        "start-stargz",
        &f,
        &map,
        "mean of create + start, lazy runs",
    );

    let first_mark = runs.eager.iter().filter_map(|r| {
        r.run
            .marks
            .iter()
            .find(|m| m.name == START_MARK)
            .map(|m| m.after_start.0)
    });
    let f = mean_fit("process_start", first_mark.collect(), "eager")?;
    let map = [("process_start", Param::ProcessStartS)];
    let description = "task start to the first marker, eager runs";
    out.put("process-start", &f, &map, description);
    Ok(())
}

/// Eager pull: download time vs compressed bytes.
fn fit_eager_fetch(runs: &StageRuns<'_>, out: &mut Collected) -> Result<(), ModelError> {
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.eager) {
        if let Some(t) = secs(r.run.phases.fetch) {
            s.push(vec![img.gzip_bytes.as_f64()], t);
        }
    }
    let f = s.fit("eager-fetch", &["bytes"], true)?;
    out.put(
        "eager-fetch",
        &f,
        &[
            ("intercept", Param::EagerPullFixedS),
            ("bytes", Param::EagerFetchSPerByte),
        ],
        "eager fetch phase ~ 1 + compressed bytes",
    );
    Ok(())
}

/// Eager unpack: per layer, per byte, per file.
fn fit_eager_unpack(runs: &StageRuns<'_>, out: &mut Collected) -> Result<(), ModelError> {
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.eager) {
        if let Some(t) = secs(r.run.phases.unpack) {
            let c = ImageCounts::of(&img.files, Some(img.gzip_bytes));
            let features = vec![
                c.layers as f64,
                c.uncompressed_bytes.as_f64(),
                c.inflated_bytes().as_f64(),
                c.entries as f64,
                c.coded_bytes.as_f64(),
            ];
            s.push(features, t);
        }
    }
    let names = ["layers", "bytes", "inflated", "files", "coded"];
    let f = s.fit_measured("eager-unpack", &names, &["coded"], false)?;
    out.put(
        "eager-unpack",
        &f,
        &[
            ("layers", Param::UnpackPerLayerS),
            ("bytes", Param::UnpackSPerByte),
            ("inflated", Param::UnpackSPerInflatedByte),
            ("files", Param::UnpackSPerFile),
            ("coded", Param::UnpackSPerCodedByte),
        ],
        "eager unpack phase ~ layers + uncompressed bytes + bytes of expansion (uncompressed − compressed) + entries + compressed bytes of barely compressible coded chunks",
    );
    Ok(())
}

/// Lazy pull: the remote mounts.
fn fit_lazy_mount(runs: &StageRuns<'_>, out: &mut Collected) -> Result<(), ModelError> {
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.lazy) {
        if let (Some(a), Some(b)) = (secs(r.run.phases.fetch), secs(r.run.phases.unpack)) {
            s.push(mount_features(img).to_vec(), a + b);
        }
    }
    let f = s.fit("lazy-mount", &["layers", "entries"], true)?;
    out.put(
        "lazy-mount",
        &f,
        &[
            ("intercept", Param::LazyPullFixedS),
            ("layers", Param::MountPerLayerS),
            ("entries", Param::MountPerEntryS),
        ],
        "lazy fetch + unpack (remote mount) phases ~ 1 + layers + TOC entries",
    );
    Ok(())
}

/// Eager workload segments; returns their nuisance terms.
fn fit_eager_io(runs: &StageRuns<'_>, out: &mut Collected) -> Result<SegmentNuisance, ModelError> {
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.eager) {
        for seg in segments(img, r, runs.fetch) {
            s.push(vec![seg.bytes, seg.opens, seg.processes], seg.seconds);
        }
    }
    let f = s.fit("eager-io", &["bytes", "opens", "processes"], true)?;
    out.put(
        "eager-io",
        &f,
        &[
            ("bytes", Param::LocalReadSPerByte),
            ("opens", Param::LocalOpenS),
        ],
        "eager workload segments ~ 1 + bytes read + opens + processes (intercept and processes: workload nuisance)",
    );
    Ok(SegmentNuisance::of(&f))
}

/// Lazy workload segments against the simulated fetches; returns their
/// nuisance terms.
fn fit_lazy_io(
    runs: &StageRuns<'_>,
    request_floor: Option<&Estimate>,
    out: &mut Collected,
) -> Result<SegmentNuisance, ModelError> {
    let names = [
        "requests",
        "net_bytes",
        "chunks",
        "verify_bytes",
        "inflate_bytes",
        "fuse_bytes",
        "opens",
        "processes",
        "coded_bytes",
    ];
    let floor = request_floor.map(|e| e.value.max(0.0)).unwrap_or(0.0);
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.lazy) {
        for seg in segments(img, r, runs.fetch) {
            let o = &seg.fetch;
            let features = vec![
                o.requests as f64,
                o.network_bytes.as_f64(),
                o.chunks_missed as f64,
                o.decompressed_bytes.as_f64(),
                o.decompressed_bytes
                    .saturating_sub(o.decompressed_from)
                    .as_f64(),
                (o.bytes_served - o.bytes_served_locally).as_f64(),
                seg.opens,
                seg.processes,
                o.decompressed_coded.as_f64(),
            ];
            s.push(features, seg.seconds - floor * o.requests as f64);
        }
    }
    let mut f = s.fit_measured("lazy-io", &names, &["coded_bytes"], true)?;
    if let Some(e) = request_floor {
        fit::shift(&mut f, "requests", e);
    }
    out.put(
        "lazy-io",
        &f,
        &[
            ("requests", Param::RequestS),
            ("net_bytes", Param::RangeSPerByte),
            ("chunks", Param::ChunkS),
            ("verify_bytes", Param::VerifySPerByte),
            ("inflate_bytes", Param::InflateSPerByte),
            ("fuse_bytes", Param::FuseSPerByte),
            ("opens", Param::FuseOpenS),
            ("coded_bytes", Param::InflateSPerCodedByte),
        ],
        "lazy workload segments ~ 1 + simulated requests (at least the registry round trip each) + bytes fetched + chunks + bytes decompressed + bytes of expansion + bytes served + opens + processes + compressed bytes of barely compressible coded chunks",
    );
    Ok(SegmentNuisance::of(&f))
}

/// Prefetch: a prioritized form's pull + create + start beyond what the
/// plain form's mount and start cost (the container's create waits for
/// the prefetch), against the simulated prefetch. With fewer than
/// `PREFETCH_MIN_RUNS` runs the prefetch terms take the on-demand values.
fn fit_prefetch(runs: &StageRuns<'_>, out: &mut Collected) -> Result<(), ModelError> {
    let mut s = Samples::default();
    for (img, r) in runs.with_images(&runs.prefetched) {
        let ph = &r.run.phases;
        let (Some(a), Some(b), Some(c), Some(d)) = (
            secs(ph.fetch),
            secs(ph.unpack),
            secs(ph.create),
            secs(ph.start),
        ) else {
            continue;
        };
        let mut sim = Simulator::new(&img.files, runs.fetch.clone());
        for l in 0..img.files.layers.len() {
            sim.mount(l);
        }
        let o = sim.prefetch_files(&img.prefetch_files());
        // The `lazy-mount` fit's prediction for this image, on its own features.
        let [layers, entries] = mount_features(img);
        let v = |p: Param| out.value(p);
        let base = v(Param::LazyPullFixedS)
            + v(Param::MountPerLayerS) * layers
            + v(Param::MountPerEntryS) * entries
            + v(Param::StartStargzS)
            + v(Param::RequestS) * o.requests as f64;
        let features = vec![
            o.network_bytes.as_f64(),
            o.decompressed_bytes.as_f64(),
            o.chunks_missed as f64,
        ];
        s.push(features, a + b + c + d - base);
    }
    if s.y.len() < PREFETCH_MIN_RUNS {
        // `fit_all` gives the prefetch terms the on-demand values.
        return Ok(());
    }
    let f = s.fit("prefetch", &["bytes", "decompressed", "chunks"], false)?;
    out.put(
        "prefetch",
        &f,
        &[
            ("bytes", Param::PrefetchSPerByte),
            ("decompressed", Param::PrefetchVerifySPerByte),
            ("chunks", Param::PrefetchChunkS),
        ],
        "prioritized form's pull + create + start, less the plain form's mount and start and one request per layer, ~ prefetched compressed bytes + uncompressed bytes + chunks",
    );
    Ok(())
}

/// The `lazy-mount` fit's features of an image: layers and TOC entries.
fn mount_features(img: &CalImage) -> [f64; 2] {
    let c = ImageCounts::of(&img.files, Some(img.gzip_bytes));
    [c.layers as f64, c.toc_entries as f64]
}

fn value(f: &Fit, name: &str) -> f64 {
    f.get(name).map(|c| c.value).unwrap_or(0.0)
}

fn param(c: &Coefficient, p: Param, fit_name: &str) -> ParamEstimate {
    ParamEstimate {
        estimate: Estimate::new(c.value, c.low.max(0.0), c.high, CONFIDENCE),
        std_error: c.std_error,
        unit: p.unit().into(),
        fit: fit_name.into(),
    }
}

/// A calibration run as `advise` predicts it (seconds from the pull's start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPrediction {
    /// To the workload's `ready` marker.
    pub ready_s: Seconds,
    /// To the workload's exit.
    pub complete_s: Seconds,
}

/// A calibration run as `advise` would predict it (plus the nuisance terms
/// of the calibration workload).
pub fn predict_run(
    img: &CalImage,
    strategy: Strategy,
    profile: &Profile,
    nuisance: &Nuisance,
    fetch: &FetchConfig,
) -> RunPrediction {
    let counts = ImageCounts::of(&img.files, Some(img.gzip_bytes));
    let w = img.replay_workload(strategy);
    let r = replay::run(&img.files, &counts, &w, strategy, fetch, profile, false);
    let (seg_s, proc_s) = match strategy {
        Strategy::Eager => (nuisance.eager_segment_s.0, nuisance.eager_process_s.0),
        _ => (nuisance.lazy_segment_s.0, nuisance.lazy_process_s.0),
    };
    let segs = &img.workload.segments;
    let procs = |range: std::ops::Range<usize>| -> f64 {
        segs[range]
            .iter()
            .map(|s| img.workload.processes(&img.files, s) as f64)
            .sum()
    };
    let ready_n = img.workload.ready_after.min(segs.len());
    let before = ready_n as f64 * seg_s + procs(0..ready_n) * proc_s;
    let after = (segs.len() - ready_n) as f64 * seg_s + procs(ready_n..segs.len()) * proc_s;
    RunPrediction {
        ready_s: Seconds(r.cold_start().value(profile) + before),
        complete_s: Seconds(r.completion().value(profile) + before + after),
    }
}

/// Fold (0..k) of each run: the runs sorted by image, strategy and repeat
/// go round-robin over the folds, so the runs of one image and strategy land
/// in different folds and every training set keeps every image and strategy
/// with two or more runs; a random split can leave out, say, the only
/// multi-layer image's lazy runs, and its fit cannot be made.
fn stratified_folds(runs: &[&CalRun], k: usize) -> Vec<usize> {
    let k = k.max(1);
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (runs[a], runs[b]);
        (&x.image, x.strategy, x.repeat).cmp(&(&y.image, y.strategy, y.repeat))
    });
    let mut assign = vec![0; runs.len()];
    for (pos, &i) in order.iter().enumerate() {
        assign[i] = pos % k;
    }
    assign
}

/// What cross-validation found: the summary the profile keeps, and each
/// run's out-of-fold prediction.
#[derive(Debug, Clone)]
pub struct CrossValidation {
    pub validation: Validation,
    pub checks: Vec<RunCheck>,
}

/// Out-of-fold errors of whole-run predictions (completion), k folds.
pub fn cross_validate(
    images: &[CalImage],
    runs: &[CalRun],
    fetch: &FetchConfig,
    folds: usize,
    base: &Profile,
) -> Result<CrossValidation, ModelError> {
    let usable: Vec<&CalRun> = runs
        .iter()
        .filter(|r| r.run.included && r.run.exit_code == Some(0))
        .collect();
    let nfolds = folds.max(2).min(usable.len().max(2));
    let assign = stratified_folds(&usable, nfolds);
    let mut checks = Vec::new();
    for k in 0..nfolds {
        let train: Vec<CalRun> = usable
            .iter()
            .zip(&assign)
            .filter(|(_, f)| **f != k)
            .map(|(r, _)| (*r).clone())
            .collect();
        let fitted = fit_all(images, &train, fetch, base.node.registry_rtt_s.as_ref())?;
        let mut p = base.clone();
        p.parameters = fitted.parameters;
        p.fits = fitted.fits;
        for (r, _) in usable.iter().zip(&assign).filter(|(_, f)| **f == k) {
            let Some(img) = images.iter().find(|i| i.name == r.image) else {
                continue;
            };
            let predicted = predict_run(img, r.strategy, &p, &fitted.nuisance, fetch);
            if let (Some(mr), Some(mc)) = (measured_ready(&r.run), secs(r.run.to_complete)) {
                checks.push(RunCheck {
                    key: r.key.clone(),
                    predicted_ready_s: predicted.ready_s,
                    measured_ready_s: Seconds(mr),
                    predicted_complete_s: predicted.complete_s,
                    measured_complete_s: Seconds(mc),
                });
            }
        }
    }
    let errors: Vec<f64> = checks
        .iter()
        .map(|c| (c.predicted_complete_s - c.measured_complete_s) / c.measured_complete_s)
        .collect();
    let (median, p90) = fit::error_quantiles(&errors);
    Ok(CrossValidation {
        validation: Validation {
            folds,
            median_abs_pct_error: median,
            p90_abs_pct_error: p90,
            n: checks.len(),
        },
        checks,
    })
}

/// A calibration run's cold start: the pull, create and start phases, then
/// the workload's `ready` marker (the bench itself waits for the exit).
pub fn measured_ready(run: &RunRecord) -> Option<f64> {
    let mark = run
        .marks
        .iter()
        .find(|m| m.name == super::workload::READY_MARK)?;
    Some(secs(run.to_complete)? - secs(run.phases.complete)? + mark.after_start.0)
}

/// One run's out-of-fold prediction against its measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCheck {
    pub key: String,
    pub predicted_ready_s: Seconds,
    pub measured_ready_s: Seconds,
    pub predicted_complete_s: Seconds,
    pub measured_complete_s: Seconds,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_column_is_fitted_only_where_a_row_holds_enough_of_it() {
        // t = 2 s per unit of a + 1e-8 s per coded byte, coded in some rows.
        let rows = |coded: f64| {
            let mut s = Samples::default();
            for (i, a) in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0].into_iter().enumerate() {
                let k = if i % 2 == 0 { coded * a } else { 0.0 };
                s.push(
                    vec![a, k],
                    2.0 * a + 1e-8 * k + 0.01 * (i as f64 - 2.5).sin(),
                );
            }
            s
        };
        let names = ["a", "coded"];
        let f = rows(1e7)
            .fit_measured("t", &names, &["coded"], false)
            .unwrap();
        let k = f.get("coded").unwrap().value;
        assert!((k - 1e-8).abs() < 2e-9, "coded {k}");
        // A megabyte or less in every row (the base layer's share): left out.
        let f = rows(2e5)
            .fit_measured("t", &names, &["coded"], false)
            .unwrap();
        assert!(f.get("coded").is_none());
        assert!((f.get("a").unwrap().value - 2.0).abs() < 0.1);
        // A column that is not optional is never left out.
        let e = rows(0.0).fit_measured("t", &names, &[], false).unwrap_err();
        assert!(
            matches!(e, FitError::Constant { .. } | FitError::Collinear { .. }),
            "{e:?}"
        );
    }

    fn run(image: &str, strategy: Strategy, repeat: usize) -> CalRun {
        CalRun {
            key: crate::calibrate::runner::run_key(image, strategy, repeat),
            image: image.into(),
            strategy,
            repeat,
            run: RunRecord::new(0, crate::bench::Role::Measured),
        }
    }

    #[test]
    fn every_training_fold_keeps_every_image_and_strategy() {
        // Two runs per point, as `--quick` measures: five folds.
        let mut runs = Vec::new();
        for k in 0..2 {
            for img in ["a", "b", "c", "d", "e"] {
                for s in [Strategy::Eager, Strategy::Lazy, Strategy::LazyPrefetch] {
                    runs.push(run(img, s, k));
                }
            }
        }
        let refs: Vec<&CalRun> = runs.iter().collect();
        let assign = stratified_folds(&refs, 5);
        for fold in 0..5 {
            for img in ["a", "b", "c", "d", "e"] {
                for s in [Strategy::Eager, Strategy::Lazy, Strategy::LazyPrefetch] {
                    let trained = runs
                        .iter()
                        .zip(&assign)
                        .filter(|(r, f)| **f != fold && r.image == img && r.strategy == s)
                        .count();
                    assert!(trained >= 1, "fold {fold} trains without {img} {s:?}");
                }
            }
            let size = assign.iter().filter(|f| **f == fold).count();
            assert_eq!(size, 6, "balanced folds");
        }
    }
}
