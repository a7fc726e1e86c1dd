//! Prediction: replaying a workload's trace against an image's file table
//! under each pulling strategy with a calibrated profile.
//!
//! Owns the model equations (docs/model.md): what each strategy costs, as
//! [`cost::Cost`] vectors whose intervals come from the profile; the
//! recommendation per objective; the working-set crossover. Does not
//! measure, fetch or render.
pub mod cost;
pub mod replay;
pub mod rtt_sweep;
pub mod workload;

use crate::estargz::table::{FileKind, FileRef, ImageFiles};
use crate::profile::Profile;
use crate::simulate::network::Link;
use crate::simulate::snapshotter::FetchConfig;
use crate::units::{Bytes, Estimate, Seconds};
use cost::Cost;
use replay::{ImageCounts, Part, Replay, ReplayCounts, Strategy};
use serde::{Deserialize, Serialize};
use workload::Workload;

/// Knobs of a prediction.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// Compressed size of the gzip form, when known (else estimated from the eStargz form).
    pub gzip_bytes: Option<Bytes>,
    /// The snapshotter's fetch rules and prefetch settings on the node.
    pub fetch: FetchConfig,
    /// Simulate background fetch in idle gaps.
    pub background: bool,
    /// Points of the working-set sweep (crossover and plot).
    pub sweep_points: usize,
    /// Predict for this network path (None: the calibration's own, where
    /// the profile's prices already hold the network).
    pub link: Option<Link>,
    /// The RTT sweep's upper end (from 0; at the link's bandwidth).
    pub max_rtt: Seconds,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            gzip_bytes: None,
            fetch: FetchConfig::default(),
            background: true,
            sweep_points: 21,
            link: None,
            max_rtt: rtt_sweep::DEFAULT_MAX_RTT,
        }
    }
}

/// One part of the time, before and after `ready` (point values, s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartTime {
    pub part: Part,
    pub before_ready_s: Seconds,
    pub after_ready_s: Seconds,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyPrediction {
    pub strategy: Strategy,
    /// To the `ready` marker (s).
    pub cold_start: Estimate,
    /// To `exit` (s).
    pub completion: Estimate,
    pub breakdown: Vec<PartTime>,
    pub counts: ReplayCounts,
    /// How much of each time is the network path's (predictions for a path:
    /// `--network`, `--rtt`/`--bandwidth`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkShare>,
    /// Lazy strategies: the snapshotter's background fetch of the rest of
    /// the image once the workload's reads are 5 s behind; absent for eager
    /// or with `--no-background`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundFetch>,
    /// Predictions for a path: what one node's run asks of it, per phase
    /// (a fleet shares the registry's egress: `plan`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<PathDemand>,
}

/// What one node's run asks of its network path, per phase, when the path
/// is its alone. `advisor plan` shares the registry among many such runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathDemand {
    /// From the start to `ready`.
    pub before_ready: PhaseDemand,
    /// From `ready` to exit.
    pub after_ready: PhaseDemand,
    /// Lazy strategies: the background fetch after the reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<PhaseDemand>,
}

/// One phase's use of the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseDemand {
    /// Compressed bytes from the registry.
    pub bytes: Bytes,
    /// Requests to the registry (the phase's share of the run's requests,
    /// by its round trips; the background fetch's own).
    pub requests: f64,
    /// Seconds the phase moves its bytes on a path of its own: the transfer
    /// or the node receiving them, whichever is slower. The rest of the
    /// phase is round trips and the node's work, which a shared registry
    /// does not slow.
    pub moving_s: Seconds,
}

/// What the stargz snapshotter downloads after the workload's reads, until
/// its layers are whole: it goes on after the container is gone and shares
/// the node's link (and the registry) with whatever pulls next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackgroundFetch {
    /// Compressed bytes left to download.
    pub bytes: Bytes,
    /// Range requests (blob reads of ≤ 2 MiB, two in flight).
    pub requests: u64,
    /// When it starts, on the completion's clock (s): 5 s after the last
    /// access; before completion when the workload computes longer than that.
    pub starts_s: Seconds,
    /// How long it takes (s).
    pub duration: Estimate,
    /// When the image is whole on the node (s, completion's clock).
    pub whole: Estimate,
}

/// Seconds of a strategy's times spent on the network path; the rest is the node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetworkShare {
    pub link: Link,
    /// Of the cold start (s).
    pub cold_start_s: Seconds,
    /// Of the completion (s).
    pub completion_s: Seconds,
}

/// The recommendation for one objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub objective: Objective,
    pub best: Strategy,
    pub runner_up: Strategy,
    /// How much better than the runner-up, in the objective's unit (s or bytes).
    pub margin: f64,
    /// The margin relative to the runner-up's value.
    pub margin_fraction: f64,
    /// The intervals do not overlap.
    pub confident: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    FastestStart,
    FastestCompletion,
    FewestBytes,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::FastestStart => "fastest start",
            Objective::FastestCompletion => "fastest completion",
            Objective::FewestBytes => "fewest bytes",
        }
    }
}

/// One point of the working-set sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Fraction of the image's uncompressed bytes read.
    pub fraction: f64,
    pub completion: Vec<(Strategy, Estimate)>,
}

/// Summary of the workload as the model saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSummary {
    pub events: u64,
    pub accesses: u64,
    pub files_touched: u64,
    pub files_before_ready: u64,
    pub bytes_read: Bytes,
    /// Distinct bytes of the image read, over its uncompressed size.
    pub working_set_fraction: f64,
    pub has_ready: bool,
    pub compute_before_ready_s: Seconds,
    pub compute_after_ready_s: Seconds,
    pub missing_count: u64,
    pub missing_paths: Vec<String>,
    /// Lookups a lazy rootfs answers with a FUSE round trip beyond the
    /// opens' (recorded traces only), before and after ready.
    #[serde(default)]
    pub fuse_lookups_before_ready: u64,
    #[serde(default)]
    pub fuse_lookups_after_ready: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub image: ImageCounts,
    pub workload: WorkloadSummary,
    pub strategies: Vec<StrategyPrediction>,
    pub recommendations: Vec<Recommendation>,
    /// Working-set fraction where lazy and eager completion tie (None: no tie in [0, 1]).
    pub crossover_fraction: Option<f64>,
    /// Which wins on completion below the crossover (or everywhere without one).
    pub lazy_wins_below: bool,
    pub sweep: Vec<SweepPoint>,
    /// Cold start and completion against the registry's RTT, and the RTTs
    /// where the fastest strategy changes.
    pub rtt_sweep: rtt_sweep::RttSweep,
    /// The files to prioritize for lazy+prefetch, in first-touch order.
    pub prioritized_files: Vec<String>,
    /// What the usual rule of thumb would say, for comparison.
    pub rule_of_thumb: RuleOfThumb,
    pub notes: Vec<String>,
}

/// "Under 10 % of the image read: lazy; over 30 %: eager; in between: it depends."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOfThumb {
    pub working_set_fraction: f64,
    /// None: the 10–30 % band where the rule does not decide.
    pub says: Option<Strategy>,
    /// The rule's pick is also advisor's fastest-completion pick (a lazy pick
    /// agrees with either lazy strategy).
    pub agrees: bool,
    /// Eager's completion interval overlaps the best lazy strategy's: the
    /// model cannot tell them apart, so neither agreement nor disagreement
    /// is significant.
    pub close_call: bool,
}

impl RuleOfThumb {
    pub const LAZY_BELOW: f64 = 0.10;
    pub const EAGER_ABOVE: f64 = 0.30;

    pub fn judge(fraction: f64, best_completion: Strategy, close_call: bool) -> Self {
        let says = if fraction < Self::LAZY_BELOW {
            Some(Strategy::Lazy)
        } else if fraction > Self::EAGER_ABOVE {
            Some(Strategy::Eager)
        } else {
            None
        };
        let agrees = match says {
            Some(Strategy::Eager) => best_completion == Strategy::Eager,
            Some(_) => best_completion != Strategy::Eager,
            None => true,
        };
        RuleOfThumb {
            working_set_fraction: fraction,
            says,
            agrees,
            close_call,
        }
    }
}

/// The snapshotter starts background fetch once no prioritized task ran for
/// 5 s, and neither decompressing a downloaded prefetch range nor reads
/// served from its cache count: when the prefetch and the startup reads take
/// longer than that, the rest of the image downloads alongside them. The replay has no clock for that
/// (it prices background fetch in compute gaps only) nor a parameter for the
/// contention, which on the lab made lazy+prefetch slower than plain lazy
/// (docs/results.md), so the prediction says so.
fn prefetch_contention_note(
    strategies: &[StrategyPrediction],
    counts: &ImageCounts,
    opts: &PredictOptions,
) -> Option<String> {
    let lp = strategies
        .iter()
        .find(|s| s.strategy == Strategy::LazyPrefetch)?;
    let reads: Seconds = lp
        .breakdown
        .iter()
        .filter(|p| matches!(p.part, Part::Prefetch | Part::Io))
        .map(|p| p.before_ready_s)
        .sum();
    let reads = reads.0;
    let left = counts.estargz_bytes.saturating_sub(lp.counts.network_bytes);
    (opts.background && reads > replay::BACKGROUND_IDLE_S && left > Bytes(1_000_000)).then(|| {
        format!(
            "lazy+prefetch: the prefetch and the startup reads take about {reads:.1} s, past the \
             snapshotter's {:.0}-s idle rule, so its background fetch will download the other \
             {:.0} MB of the image alongside them; the model does not price that contention \
             (on the lab it made lazy+prefetch slower than plain lazy: docs/results.md), so \
             lazy+prefetch is shown but not recommended here",
            replay::BACKGROUND_IDLE_S,
            left.as_f64() / 1e6
        )
    })
}

/// Predict every strategy for a workload on an image with a profile.
pub fn predict(
    image: &ImageFiles,
    w: &Workload,
    profile: &Profile,
    opts: &PredictOptions,
) -> Prediction {
    let counts = ImageCounts::of(image, opts.gzip_bytes);
    let replays = replay_all(image, &counts, w, profile, opts);
    let strategies: Vec<StrategyPrediction> = replays
        .iter()
        .map(|r| summarize(r, profile, opts.link.as_ref()))
        .collect();
    let contention = prefetch_contention_note(&strategies, &counts, opts);
    // A strategy whose price leaves out a cost it will pay is not recommended.
    let recommendable: Vec<StrategyPrediction> = strategies
        .iter()
        .filter(|s| !(contention.is_some() && s.strategy == Strategy::LazyPrefetch))
        .cloned()
        .collect();
    let recommendations = recommend(&recommendable);
    let eager = &replays[0];
    let workload = summarize_workload(image, &counts, w, eager);
    let total_compute = workload.compute_before_ready_s + workload.compute_after_ready_s;
    let sweep = sweep(image, &counts, w, total_compute, profile, opts);
    let candidates: Vec<Strategy> = recommendable.iter().map(|s| s.strategy).collect();
    let rtt_sweep = rtt_sweep::sweep(
        &replays,
        profile,
        opts.link.as_ref(),
        opts.max_rtt,
        &candidates,
    );
    let mut notes = prediction_notes(image, w, opts, contention);
    notes.extend(coded_note(&counts, profile));
    let prioritized_files = w
        .startup_files
        .iter()
        .map(|f| format!("/{}", image.file(*f).path))
        .collect();
    let rule_of_thumb = rule_of_thumb(
        workload.working_set_fraction,
        &recommendations,
        &recommendable,
    );
    Prediction {
        image: counts,
        rule_of_thumb,
        workload,
        strategies,
        recommendations,
        crossover_fraction: sweep.crossover_fraction,
        lazy_wins_below: sweep.lazy_wins_below,
        sweep: sweep.points,
        rtt_sweep,
        prioritized_files,
        notes,
    }
}

/// The workload as the model saw it; compute time and bytes read from the
/// eager replay.
fn summarize_workload(
    image: &ImageFiles,
    counts: &ImageCounts,
    w: &Workload,
    eager: &Replay,
) -> WorkloadSummary {
    let compute = |after: bool| -> Seconds {
        let parts = if after {
            &eager.after_ready
        } else {
            &eager.before_ready
        };
        parts[Part::Compute as usize].constant_s
    };
    let uncompressed = counts.uncompressed_bytes.max(Bytes(1));
    let unique = unique_bytes(image, w);
    WorkloadSummary {
        events: w.events,
        accesses: w.accesses.len() as u64,
        files_touched: w.touched_files.len() as u64,
        files_before_ready: w.startup_files.len() as u64,
        bytes_read: Bytes(eager.counts.bytes_read),
        working_set_fraction: unique as f64 / uncompressed.as_f64(),
        has_ready: w.ready_ns.is_some(),
        compute_before_ready_s: compute(false),
        compute_after_ready_s: compute(true),
        missing_count: w.missing_count,
        missing_paths: w.missing_paths.clone(),
        fuse_lookups_before_ready: w.lookups[0],
        fuse_lookups_after_ready: w.lookups[1],
    }
}

/// What the reader of a prediction should know about its inputs.
fn prediction_notes(
    image: &ImageFiles,
    w: &Workload,
    opts: &PredictOptions,
    contention: Option<String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if w.ready_ns.is_none() {
        notes.push("the trace has no `ready` marker: cold start is the whole run".to_string());
    }
    if w.missing_count > 0 {
        notes.push(format!(
            "{} access(es) to paths the image does not have (volumes, or another image?): not priced",
            w.missing_count
        ));
    }
    if opts.gzip_bytes.is_none() {
        notes.push("eager size estimated from the eStargz blobs without TOC and footer (pass the gzip form for the exact size)".into());
    }
    if image.layers.iter().any(|l| !l.format.is_lazy()) {
        notes.push("some layers are not eStargz: lazy strategies download and unpack them".into());
    }
    if let Some(n) = contention {
        notes.push(n);
    }
    if !w.concurrent.is_empty() {
        let accesses: usize = w.concurrent.iter().map(|c| c.accesses.len()).sum();
        let most = w.concurrent.iter().map(|c| c.readers).max().unwrap_or(0);
        let priced = if opts.link.is_some() {
            "their on-demand requests are priced overlapped on the path, the node's work serially"
        } else {
            "on another path (--network, --rtt) their on-demand requests are priced overlapped; on the calibration's own, its prices hold them"
        };
        notes.push(format!(
            "readers at once (trace pids): {accesses} of {} accesses in {} span(s) of up to {most} readers; {priced}",
            w.accesses.len(),
            w.concurrent.len()
        ));
    }
    notes
}

/// Share of an image's compressed bytes in barely compressible coded chunks
/// above which a profile that does not price them gets a note.
const CODED_NOTE_SHARE: f64 = 0.05;

/// A note when the image holds barely compressible, Huffman-coded data
/// (model weights, arrays) that the profile prices as stored: calibrated
/// without the weights image (before advisor priced coded bytes).
fn coded_note(counts: &ImageCounts, profile: &Profile) -> Option<String> {
    let unpriced = crate::profile::CODED_PARAMS.iter().any(|&p| {
        profile
            .get(p)
            .is_some_and(|e| e.fit == crate::profile::CODED_FALLBACK_FIT)
    });
    let share = counts.coded_bytes.as_f64() / counts.estargz_bytes.as_f64().max(1.0);
    (unpriced && share >= CODED_NOTE_SHARE).then(|| {
        format!(
            "{:.0} MB ({:.0} %) of the image is barely compressible but Huffman-coded (weights, arrays), \
             which decompresses slowly; this profile does not price that (calibrated without the weights \
             image): eager unpack and lazy reads of it are predicted too fast — recalibrate with `advisor calibrate`",
            counts.coded_bytes.as_f64() / 1e6,
            share * 100.0
        )
    })
}

/// The rule of thumb's verdict against the recommended fastest completion;
/// a close call when eager's and the best lazy strategy's intervals overlap.
fn rule_of_thumb(
    working_set_fraction: f64,
    recommendations: &[Recommendation],
    recommendable: &[StrategyPrediction],
) -> RuleOfThumb {
    let best_completion = recommendations
        .iter()
        .find(|r| r.objective == Objective::FastestCompletion)
        .map(|r| r.best)
        .unwrap_or(Strategy::Eager);
    let completion_of = |s: Strategy| {
        recommendable
            .iter()
            .find(|p| p.strategy == s)
            .map(|p| p.completion)
    };
    let best_lazy = [Strategy::Lazy, Strategy::LazyPrefetch]
        .into_iter()
        .filter_map(completion_of)
        .min_by(|a, b| a.value.total_cmp(&b.value));
    let close_call = match (completion_of(Strategy::Eager), best_lazy) {
        (Some(e), Some(l)) => e.low <= l.high && l.low <= e.high,
        _ => false,
    };
    RuleOfThumb::judge(working_set_fraction, best_completion, close_call)
}

fn replay_all(
    image: &ImageFiles,
    counts: &ImageCounts,
    w: &Workload,
    profile: &Profile,
    opts: &PredictOptions,
) -> Vec<Replay> {
    Strategy::ALL
        .iter()
        .map(|&s| replay::run(image, counts, w, s, &opts.fetch, profile, opts.background))
        .collect()
}

/// A replay's estimates; with a link, each part and total also holds the
/// seconds the path adds (a known shift: the interval is the node's).
fn summarize(r: &Replay, profile: &Profile, link: Option<&Link>) -> StrategyPrediction {
    let net = |after: bool, p: Part| link.map_or(0.0, |l| r.network_s(after, p, profile, l));
    let breakdown = Part::ALL
        .iter()
        .map(|&p| PartTime {
            part: p,
            before_ready_s: Seconds(r.before_ready[p as usize].value(profile) + net(false, p)),
            after_ready_s: Seconds(r.after_ready[p as usize].value(profile) + net(true, p)),
        })
        .filter(|t| t.before_ready_s != Seconds::ZERO || t.after_ready_s != Seconds::ZERO)
        .collect();
    let network = link.map(|l| NetworkShare {
        link: *l,
        cold_start_s: Seconds(r.network_total_s(false, profile, l)),
        completion_s: Seconds(r.network_total_s(true, profile, l)),
    });
    let completion = r
        .completion()
        .estimate(profile)
        .shifted(network.map_or(0.0, |n| n.completion_s.0));
    StrategyPrediction {
        strategy: r.strategy,
        demand: link.map(|l| path_demand(r, profile, l)),
        background: r
            .rest
            .as_ref()
            .map(|rest| background_fetch(rest, completion, profile, link)),
        cold_start: r
            .cold_start()
            .estimate(profile)
            .shifted(network.map_or(0.0, |n| n.cold_start_s.0)),
        completion,
        breakdown,
        counts: r.counts,
        network,
    }
}

/// What `r` asks of `link` per phase; the run's requests split between
/// the phases by their round trips.
fn path_demand(r: &Replay, profile: &Profile, link: &Link) -> PathDemand {
    let before = r.phase_use(false, profile, link);
    let after = r.phase_use(true, profile, link);
    let requests = r.counts.requests as f64;
    let trips = before.round_trips + after.round_trips;
    let share = if trips > 0.0 {
        before.round_trips / trips
    } else {
        1.0
    };
    let phase = |u: replay::PhaseUse, requests: f64| PhaseDemand {
        bytes: Bytes(u.bytes.round() as u64),
        requests,
        moving_s: Seconds(u.moving_s),
    };
    PathDemand {
        before_ready: phase(before, requests * share),
        after_ready: phase(after, requests * (1.0 - share)),
        background: r.rest.as_ref().map(|rest| PhaseDemand {
            bytes: rest.bytes,
            requests: rest.requests as f64,
            moving_s: Seconds(replay::moving_s(&rest.net(), &rest.node, profile, link)),
        }),
    }
}

/// Price the rest background fetch downloads: the node's work with its
/// interval, shifted by what the path adds; it starts 5 s after the last
/// access, so the image is whole at that plus its duration.
fn background_fetch(
    rest: &replay::Rest,
    completion: Estimate,
    profile: &Profile,
    link: Option<&Link>,
) -> BackgroundFetch {
    let path = link.map_or(0.0, |l| {
        replay::path_delta_s(&rest.net(), &rest.node, profile, l).max(-rest.node.value(profile))
    });
    let duration = rest.node.estimate(profile).shifted(path);
    let starts = completion.shifted(replay::BACKGROUND_IDLE_S - rest.after_last_access_s);
    let whole = Estimate::new(
        starts.value + duration.value,
        starts.low + duration.low,
        starts.high + duration.high,
        starts.confidence.min(duration.confidence),
    );
    BackgroundFetch {
        bytes: rest.bytes,
        requests: rest.requests,
        starts_s: Seconds(starts.value),
        duration,
        whole,
    }
}

/// Best and runner-up per objective.
pub fn recommend(strategies: &[StrategyPrediction]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for objective in [
        Objective::FastestStart,
        Objective::FastestCompletion,
        Objective::FewestBytes,
    ] {
        let val = |s: &StrategyPrediction| -> (f64, f64, f64) {
            match objective {
                Objective::FastestStart => {
                    (s.cold_start.value, s.cold_start.low, s.cold_start.high)
                }
                Objective::FastestCompletion => {
                    (s.completion.value, s.completion.low, s.completion.high)
                }
                Objective::FewestBytes => {
                    let b = s.counts.network_bytes.as_f64();
                    (b, b, b)
                }
            }
        };
        let mut order: Vec<&StrategyPrediction> = strategies.iter().collect();
        order.sort_by(|a, b| val(a).0.total_cmp(&val(b).0));
        if order.len() < 2 {
            continue;
        }
        let (b, r) = (val(order[0]), val(order[1]));
        out.push(Recommendation {
            objective,
            best: order[0].strategy,
            runner_up: order[1].strategy,
            margin: r.0 - b.0,
            margin_fraction: if r.0 > 0.0 { (r.0 - b.0) / r.0 } else { 0.0 },
            confident: b.2 < r.1 || (objective == Objective::FewestBytes && b.0 < r.0),
        });
    }
    out
}

/// The sweep order: touched files first, then every other regular file of
/// the merged view in layer and TOC order.
fn sweep_order(image: &ImageFiles, w: &Workload) -> Vec<FileRef> {
    let mut seen: rustc_hash::FxHashSet<FileRef> = w.touched_files.iter().copied().collect();
    let mut order = w.touched_files.clone();
    let mut rest: Vec<FileRef> = image
        .merged()
        .values()
        .copied()
        .filter(|r| image.file(*r).kind == FileKind::Reg && image.file(*r).size > 0)
        .collect();
    rest.sort();
    for r in rest {
        if seen.insert(r) {
            order.push(r);
        }
    }
    order
}

/// The working-set sweep: completion per strategy at each plotted fraction,
/// and where lazy and eager tie.
struct Sweep {
    points: Vec<SweepPoint>,
    /// Working-set fraction where lazy and eager completion tie (None: no tie in [0, 1]).
    crossover_fraction: Option<f64>,
    /// Which wins on completion below the crossover (or everywhere without one).
    lazy_wins_below: bool,
}

/// Completion vs working-set fraction for each strategy, and where lazy and
/// eager tie. The synthetic workload of fraction `f` reads the files of
/// [`sweep_order`], chunk by chunk, until `f` of the image's uncompressed
/// bytes, with this workload's compute time and startup set (prefetched by
/// lazy+prefetch). Every fraction reads a prefix of the same steps, so one
/// replay per strategy gives all of them as prefix sums.
fn sweep(
    image: &ImageFiles,
    counts: &ImageCounts,
    w: &Workload,
    compute: Seconds,
    profile: &Profile,
    opts: &PredictOptions,
) -> Sweep {
    let steps = SweepSteps::new(image, w);
    let n = opts.sweep_points.max(2);
    let fractions: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
    // Prefixes whose full cost (for intervals) the grid needs; every other
    // prefix keeps only its point value (the crossover search).
    let grid: Vec<usize> = fractions.iter().map(|&f| steps.steps_for(f)).collect();
    let mut wanted = grid.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let prefixes: Vec<StrategyPrefixes> = Strategy::ALL
        .iter()
        .map(|&st| {
            let rp = replay::Replayer::new(
                image,
                counts,
                st,
                &w.startup_files,
                &opts.fetch,
                profile,
                false,
            );
            steps.replay(st, rp, &wanted, profile, opts.link.as_ref())
        })
        .collect();
    let points: Vec<SweepPoint> = fractions
        .iter()
        .zip(&grid)
        .map(|(&fraction, k)| {
            let j = wanted.binary_search(k).unwrap_or(0);
            SweepPoint {
                fraction,
                completion: prefixes
                    .iter()
                    .map(|p| {
                        let (mut c, net) = p.kept[j];
                        c.constant_s += compute + Seconds(net);
                        (p.strategy, c.estimate(profile))
                    })
                    .collect(),
            }
        })
        .collect();
    let diff = |f: f64| lazy_minus_eager(&prefixes, steps.steps_for(f));
    Sweep {
        crossover_fraction: crossover(&points, diff),
        lazy_wins_below: diff(0.0) < 0.0,
        points,
    }
}

/// One step of the sweep's synthetic workload: `len` bytes at `offset` of
/// `file`, opening it first when `opens`.
struct SweepStep {
    file: FileRef,
    offset: u64,
    len: u64,
    opens: bool,
}

/// The sweep's steps and the bytes each prefix of them reads.
struct SweepSteps {
    steps: Vec<SweepStep>,
    /// Bytes read by the first k steps, k = 0..=steps.len().
    cum_bytes: Vec<u64>,
    /// The image's uncompressed bytes.
    total: f64,
}

impl SweepSteps {
    /// Each file of the order, one eStargz chunk at a time (whole when it has
    /// no chunks), opened at its first step, so the working set grows in
    /// chunk-sized steps, not file-sized ones.
    fn new(image: &ImageFiles, w: &Workload) -> Self {
        let mut steps = Vec::new();
        for &file in &sweep_order(image, w) {
            let f = image.file(file);
            if f.chunks.is_empty() {
                steps.push(SweepStep {
                    file,
                    offset: 0,
                    len: f.size,
                    opens: true,
                });
            } else {
                for (i, c) in f.chunks.iter().enumerate() {
                    steps.push(SweepStep {
                        file,
                        offset: c.offset,
                        len: c.size,
                        opens: i == 0,
                    });
                }
            }
        }
        let mut cum_bytes = Vec::with_capacity(steps.len() + 1);
        cum_bytes.push(0u64);
        for s in &steps {
            let last = *cum_bytes.last().unwrap_or(&0);
            cum_bytes.push(last + s.len);
        }
        SweepSteps {
            steps,
            cum_bytes,
            total: image.uncompressed_size() as f64,
        }
    }

    /// Number of steps read for fraction f: the shortest prefix reaching f·total.
    fn steps_for(&self, f: f64) -> usize {
        let target = (f * self.total).ceil() as u64;
        self.cum_bytes
            .partition_point(|&b| b < target)
            .min(self.steps.len())
    }

    /// Replay every step with `rp`: the completion's point value after each
    /// prefix, and the full cost after the `wanted` (sorted) ones.
    fn replay(
        &self,
        strategy: Strategy,
        mut rp: replay::Replayer<'_>,
        wanted: &[usize],
        profile: &Profile,
        link: Option<&Link>,
    ) -> StrategyPrefixes {
        let mut out = StrategyPrefixes {
            strategy,
            values: Vec::with_capacity(self.steps.len() + 1),
            kept: Vec::with_capacity(wanted.len()),
        };
        // Prefixes arrive in order, as `wanted` is sorted: a cursor, not a search.
        let mut next = wanted.iter().peekable();
        let mut keep = |k: usize, r: &Replay, out: &mut StrategyPrefixes| {
            let c = r.completion();
            let net = link.map_or(0.0, |l| r.network_total_s(true, profile, l));
            out.values.push(c.value(profile) + net);
            if next.next_if_eq(&&k).is_some() {
                out.kept.push((c, net));
            }
        };
        keep(0, &rp.replay, &mut out);
        for (i, s) in self.steps.iter().enumerate() {
            let access = |kind, offset, len| workload::Access {
                t_ns: 0,
                dur_ns: 0,
                file: s.file,
                kind,
                offset,
                len,
                lane: 0,
            };
            if s.opens {
                rp.access(&access(workload::AccessKind::Open, 0, 0), true);
            }
            rp.access(&access(workload::AccessKind::Read, s.offset, s.len), true);
            keep(i + 1, &rp.replay, &mut out);
        }
        out
    }
}

/// One strategy's completion after each prefix of the sweep's steps.
struct StrategyPrefixes {
    strategy: Strategy,
    /// Point values (s), one per prefix.
    values: Vec<f64>,
    /// Full costs of the prefixes the grid needs, in order, with the
    /// seconds the network path adds to each.
    kept: Vec<(Cost, f64)>,
}

/// Lazy minus eager completion (s) after the first `k` steps.
fn lazy_minus_eager(prefixes: &[StrategyPrefixes], k: usize) -> f64 {
    let get = |s: Strategy| {
        prefixes
            .iter()
            .find(|p| p.strategy == s)
            .map(|p| p.values[k])
            .unwrap_or(0.0)
    };
    get(Strategy::Lazy) - get(Strategy::Eager)
}

/// Where `diff` changes sign: the first sign change on the grid, then
/// bisection inside it.
fn crossover(points: &[SweepPoint], diff: impl Fn(f64) -> f64) -> Option<f64> {
    for win in points.windows(2) {
        let (a, b) = (diff(win[0].fraction), diff(win[1].fraction));
        if (a < 0.0) != (b < 0.0) {
            let (mut lo, mut hi) = (win[0].fraction, win[1].fraction);
            while hi - lo > 1e-4 {
                let mid = 0.5 * (lo + hi);
                if (diff(mid) < 0.0) == (a < 0.0) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return Some(0.5 * (lo + hi));
        }
    }
    None
}

/// Distinct bytes of the image the workload read (merged ranges per file).
fn unique_bytes(image: &ImageFiles, w: &Workload) -> u64 {
    let mut ranges: rustc_hash::FxHashMap<FileRef, Vec<(u64, u64)>> = Default::default();
    for a in &w.accesses {
        if a.kind != workload::AccessKind::Read {
            continue;
        }
        let size = image.file(a.file).size;
        if a.offset >= size {
            continue;
        }
        let end = a
            .len_opt()
            .map(|l| size.min(a.offset.saturating_add(l)))
            .unwrap_or(size);
        ranges.entry(a.file).or_default().push((a.offset, end));
    }
    let mut total = 0;
    for v in ranges.values_mut() {
        v.sort_unstable();
        let mut end = 0;
        for &(s, e) in v.iter() {
            let s = s.max(end);
            if e > s {
                total += e - s;
                end = e;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::cost::tests::test_profile;
    use super::workload::{Access, AccessKind};
    use super::*;
    use crate::estargz::table::{Chunk, FileEntry, FileKind, LayerFiles, LayerFormat};
    use crate::profile::Param;

    /// One eStargz layer: `n` files of `size` bytes, each its own gzip member
    /// of `csize` compressed bytes, laid out back to back from offset 100.
    pub(super) fn image(n: usize, size: u64, csize: u64) -> ImageFiles {
        let mut files = vec![FileEntry {
            path: "data".into(),
            kind: FileKind::Dir,
            size: 0,
            link: None,
            chunks: vec![],
        }];
        let mut off = 100;
        for i in 0..n {
            files.push(FileEntry {
                path: format!("data/f{i}"),
                kind: FileKind::Reg,
                size,
                link: None,
                chunks: vec![Chunk {
                    offset: 0,
                    size,
                    compressed_offset: off,
                    compressed_end: off + csize,
                }],
            });
            off += csize;
        }
        let toc = off;
        ImageFiles {
            version: 1,
            reference: "test".into(),
            manifest_digest: String::new(),
            layers: vec![LayerFiles {
                digest: "sha256:l".into(),
                media_type: String::new(),
                blob_size: toc + 1000,
                uncompressed_size: n as u64 * size,
                format: LayerFormat::Estargz,
                toc_digest: None,
                toc_offset: Some(toc),
                prefetch_end: None,
                no_prefetch: true,
                files,
            }],
        }
    }

    pub(super) fn read_all(
        files: std::ops::Range<usize>,
        ready_after: usize,
        gap_ns: u64,
    ) -> Workload {
        let mut w = Workload::default();
        let mut t = 0;
        for i in files.clone() {
            if i == ready_after {
                w.ready_index = w.accesses.len();
                w.ready_ns = Some(t);
            }
            let f = FileRef {
                layer: 0,
                file: i + 1,
            };
            for kind in [AccessKind::Open, AccessKind::Read] {
                w.accesses.push(Access {
                    t_ns: t,
                    dur_ns: 0,
                    file: f,
                    kind,
                    offset: 0,
                    len: u64::MAX,
                    lane: 0,
                });
                t += gap_ns;
            }
            w.touched_files.push(f);
            if i < ready_after {
                w.startup_files.push(f);
            }
        }
        if ready_after >= files.end {
            w.ready_index = w.accesses.len();
            w.ready_ns = Some(t);
        }
        w.exit_ns = Some(t);
        w.events = w.accesses.len() as u64 + 2;
        w
    }

    pub(super) fn profile() -> Profile {
        profile_with_fuse_open(5e-5)
    }

    fn profile_with_fuse_open(fuse_open_s: f64) -> Profile {
        test_profile(
            &[
                (Param::ResolveS, 0.01),
                (Param::EagerPullFixedS, 0.05),
                (Param::EagerFetchSPerByte, 1e-9),
                (Param::UnpackPerLayerS, 0.02),
                (Param::UnpackSPerByte, 2e-9),
                (Param::UnpackSPerFile, 1e-4),
                (Param::StartOverlayS, 0.1),
                (Param::LocalReadSPerByte, 1e-10),
                (Param::LocalOpenS, 1e-5),
                (Param::ProcessStartS, 0.01),
                (Param::LazyPullFixedS, 0.03),
                (Param::MountPerLayerS, 0.05),
                (Param::MountPerEntryS, 1e-6),
                (Param::StartStargzS, 0.15),
                (Param::RequestS, 0.002),
                (Param::RangeSPerByte, 1e-9),
                (Param::ChunkS, 1e-4),
                (Param::VerifySPerByte, 3e-9),
                (Param::InflateSPerByte, 3e-9),
                (Param::FuseSPerByte, 5e-10),
                (Param::FuseOpenS, fuse_open_s),
            ],
            0.05,
            0.0,
        )
    }

    /// `profile()` with coded bytes priced: 10 ns/B unpacking, 20 ns/B on demand.
    fn profile_pricing_coded_bytes() -> Profile {
        let mut p = profile();
        for (param, v) in [
            (Param::UnpackSPerCodedByte, 1e-8),
            (Param::InflateSPerCodedByte, 2e-8),
        ] {
            let e = p.parameters.get_mut(&param).unwrap();
            e.estimate = Estimate::new(v, v, v, 0.95);
        }
        p
    }

    #[test]
    fn barely_compressible_coded_chunks_cost_their_compressed_bytes_at_the_coded_prices() {
        let opts = PredictOptions {
            gzip_bytes: Some(Bytes(9_000_000)),
            background: false,
            ..Default::default()
        };
        let grew = |img: &ImageFiles| {
            let w = read_all(0..10, 0, 1_000_000);
            let old = predict(img, &w, &profile(), &opts);
            let new = predict(img, &w, &profile_pricing_coded_bytes(), &opts);
            let d = |s| get(&new, s).completion.value - get(&old, s).completion.value;
            (new.image.coded_bytes, d(Strategy::Eager), d(Strategy::Lazy))
        };
        // 10 files of 1 MB in members of 900 kB: barely compressible, coded.
        let (k, eager, lazy) = grew(&image(10, 1_000_000, 900_000));
        assert_eq!(k, Bytes(9_000_000));
        assert!((eager - 9e6 * 1e-8).abs() < 1e-9, "eager grew {eager}");
        assert!((lazy - 9e6 * 2e-8).abs() < 1e-9, "lazy grew {lazy}");
        // Compressible (members of 300 kB) or stored (1,000,040 B): no coded price.
        for csize in [300_000, 1_000_040] {
            let (k, eager, lazy) = grew(&image(10, 1_000_000, csize));
            assert_eq!(k, Bytes(0), "members of {csize}");
            assert!(eager.abs() < 1e-12 && lazy.abs() < 1e-12, "{eager} {lazy}");
        }
    }

    #[test]
    fn a_profile_that_does_not_price_coded_bytes_says_so_when_the_image_has_them() {
        let w = read_all(0..10, 0, 1_000_000);
        let opts = PredictOptions {
            background: false,
            ..Default::default()
        };
        let mut unpriced = profile();
        for p in crate::profile::CODED_PARAMS {
            unpriced.parameters.remove(&p);
        }
        crate::profile::fill_coded_fallback(&mut unpriced.parameters);
        let said = |img: &ImageFiles, p: &Profile| {
            predict(img, &w, p, &opts)
                .notes
                .iter()
                .any(|n| n.contains("Huffman-coded") && n.contains("recalibrate"))
        };
        let coded = image(10, 1_000_000, 900_000);
        assert!(said(&coded, &unpriced));
        assert!(!said(&coded, &profile_pricing_coded_bytes()));
        assert!(!said(&image(10, 1_000_000, 300_000), &unpriced));
    }

    pub(super) fn get(p: &Prediction, s: Strategy) -> &StrategyPrediction {
        p.strategies.iter().find(|x| x.strategy == s).unwrap()
    }

    fn with_link(link: Link) -> PredictOptions {
        PredictOptions {
            gzip_bytes: Some(Bytes(5_000_000)),
            background: false,
            link: Some(link),
            ..Default::default()
        }
    }

    #[test]
    fn a_link_adds_a_round_trip_per_on_demand_request_and_the_bytes_at_its_bandwidth() {
        // 10 files of 1 MB (500 kB compressed, one request each), all read after ready.
        let img = image(10, 1_000_000, 500_000);
        let w = read_all(0..10, 0, 1_000_000);
        let base = predict(&img, &w, &profile(), &with_link(Link::new(0.0, 1e15)));
        let far = predict(&img, &w, &profile(), &with_link(Link::new(0.030, 10e6)));
        let (b, f) = (get(&base, Strategy::Lazy), get(&far, Strategy::Lazy));
        let requests = f.counts.requests - 1; // the mount's footer+TOC read is one
        assert_eq!(requests, 10, "{:?}", f.counts);
        let fetched = f.counts.network_bytes.as_f64();
        // Completion grows by every request's RTT and every byte at 10 MB/s,
        // plus the mount's handshake and first layer (connection + 2 + 1 RTT).
        let grew = f.completion.value - b.completion.value;
        // The node's own receive work (1 ns/B on demand) hides under the
        // arrival: at most that much less.
        let want = 10.0 * 0.030 + fetched / 10e6 + 4.0 * 0.030 + 4.0 * 0.030;
        let hidden = fetched * 1e-9;
        assert!(
            grew <= want + 1e-9 && grew >= want - hidden - 1e-9,
            "grew {grew}, want {want} less up to {hidden}"
        );
        // The share reported is the growth; the interval moves with the value.
        let n = f.network.unwrap();
        assert!((n.completion_s.0 - grew).abs() < 1e-6);
        assert!(
            (f.completion.high - f.completion.value) - (b.completion.high - b.completion.value)
                < 1e-9
        );
        // Without a link nothing is reported and nothing changes.
        let none = predict(
            &img,
            &w,
            &profile(),
            &PredictOptions {
                link: None,
                ..with_link(Link::new(0.0, 1.0))
            },
        );
        assert!(get(&none, Strategy::Lazy).network.is_none());
    }

    #[test]
    fn eager_downloads_overlap_the_nodes_own_work_until_the_link_is_slower() {
        let img = image(10, 1_000_000, 500_000);
        let w = read_all(0..10, 10, 1_000_000);
        // The node writes 5 MB at 1 ns/B = 5 ms: a 10 GB/s link hides under it.
        let fast = predict(&img, &w, &profile(), &with_link(Link::new(0.0, 10e9)));
        let pull = |p: &Prediction| {
            get(p, Strategy::Eager)
                .breakdown
                .iter()
                .find(|t| t.part == Part::Pull)
                .unwrap()
                .before_ready_s
                .0
        };
        assert!(
            (pull(&fast) - (0.05 + 5e6 * 1e-9)).abs() < 1e-9,
            "{}",
            pull(&fast)
        );
        // At 1 MB/s the download takes 5 s and the node's 5 ms hides under it.
        let slow = predict(&img, &w, &profile(), &with_link(Link::new(0.0, 1e6)));
        assert!((pull(&slow) - (0.05 + 5.0)).abs() < 1e-6, "{}", pull(&slow));
        // Eager pays no round trip per file read: the link shows in resolve and pull only.
        let e = get(&slow, Strategy::Eager);
        assert!(
            (e.network.unwrap().completion_s - e.network.unwrap().cold_start_s)
                .0
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn a_far_registry_moves_the_crossover_towards_eager() {
        // Many small files: lazy pays a round trip each, eager one download.
        let img = image(200, 20_000, 10_000);
        let w = read_all(0..200, 200, 100_000);
        let near = predict(&img, &w, &profile(), &with_link(Link::new(0.0001, 1e9)));
        let far = predict(&img, &w, &profile(), &with_link(Link::new(0.050, 1e9)));
        let lazy_minus_eager = |p: &Prediction| {
            get(p, Strategy::Lazy).completion.value - get(p, Strategy::Eager).completion.value
        };
        // One round trip per on-demand request (neighbouring 10 kB files
        // share 50 kB blocks: fewer requests than files).
        let on_demand = get(&far, Strategy::Lazy).counts.requests - 1;
        assert!(on_demand > 20, "{on_demand}");
        let grew = lazy_minus_eager(&far) - lazy_minus_eager(&near);
        assert!(
            grew > on_demand as f64 * 0.0499,
            "{grew} for {on_demand} requests"
        );
        // The sweep prices the link too: its last point is the whole image read.
        let last = |p: &Prediction, s: Strategy| {
            p.sweep
                .last()
                .unwrap()
                .completion
                .iter()
                .find(|(x, _)| *x == s)
                .unwrap()
                .1
                .value
        };
        assert!(
            last(&far, Strategy::Lazy) > last(&near, Strategy::Lazy) + on_demand as f64 * 0.0499
        );
    }

    #[test]
    fn eager_equals_the_hand_computed_equation() {
        // 10 files × 1 MB, 500 kB compressed each; read 2 before ready, 3 after; 1 ms gaps.
        let img = image(10, 1_000_000, 500_000);
        let w = read_all(0..5, 2, 1_000_000);
        let p = predict(
            &img,
            &w,
            &profile(),
            &PredictOptions {
                gzip_bytes: Some(Bytes(5_000_000)),
                ..Default::default()
            },
        );
        let e = get(&p, Strategy::Eager);
        let pull = 0.01 + 0.05 + 5e6 * 1e-9;
        let unpack = 0.02 + 1e7 * 2e-9 + 11.0 * 1e-4;
        let start = 0.1 + 0.01;
        // Before ready: 2 opens, 2 reads of 1 MB; gaps between 4 accesses (3) + up to ready (1).
        let cold = pull + unpack + start + 2.0 * 1e-5 + 2e6 * 1e-10 + 4.0 * 0.001;
        assert!(
            (e.cold_start.value - cold).abs() < 1e-9,
            "{} vs {cold}",
            e.cold_start.value
        );
        // After: 3 opens, 3 reads, 6 gaps (the one after the last access reaches exit).
        let total = cold + 3.0 * 1e-5 + 3e6 * 1e-10 + 6.0 * 0.001;
        assert!(
            (e.completion.value - total).abs() < 1e-9,
            "{} vs {total}",
            e.completion.value
        );
        assert!(e.completion.low < e.completion.value && e.completion.value < e.completion.high);
        assert_eq!(e.counts.network_bytes, Bytes(5_000_000));
        assert_eq!(p.workload.files_touched, 5);
        assert!((p.workload.working_set_fraction - 0.5).abs() < 1e-12);
    }

    #[test]
    fn lazy_pays_one_request_and_one_chunk_per_uncached_file() {
        // Files of 200 kB compressed: no two share a 50,000-B block.
        let img = image(20, 400_000, 200_000);
        let w = read_all(0..20, 20, 0);
        let p = predict(&img, &w, &profile(), &PredictOptions::default());
        let l = get(&p, Strategy::Lazy);
        // mount: footer + TOC reads; then one GET and one chunk per file.
        assert_eq!(l.counts.chunks, 20);
        let on_demand = l
            .breakdown
            .iter()
            .find(|b| b.part == Part::OnDemandFetch)
            .unwrap();
        let per_file_requests = 20.0 * 0.002;
        assert!(
            on_demand.before_ready_s.0 > per_file_requests,
            "{on_demand:?}"
        );
        // lazy+prefetch fetches the same files at mount instead: no on-demand fetch.
        let lp = get(&p, Strategy::LazyPrefetch);
        assert!(
            lp.breakdown
                .iter()
                .all(|b| b.part != Part::OnDemandFetch || b.before_ready_s == Seconds::ZERO),
            "{:?}",
            lp.breakdown
        );
        assert!(lp.cold_start.value < l.cold_start.value);
    }

    #[test]
    fn small_working_set_lazy_wins_start_and_full_read_eager_wins_completion() {
        let img = image(200, 1_000_000, 600_000);
        let prof = profile();
        let small = predict(
            &img,
            &read_all(0..4, 4, 0),
            &prof,
            &PredictOptions::default(),
        );
        let best = |p: &Prediction, o: Objective| {
            p.recommendations
                .iter()
                .find(|r| r.objective == o)
                .unwrap()
                .best
        };
        assert_ne!(best(&small, Objective::FastestStart), Strategy::Eager);
        assert_ne!(best(&small, Objective::FastestCompletion), Strategy::Eager);
        let full = predict(
            &img,
            &read_all(0..200, 200, 0),
            &prof,
            &PredictOptions::default(),
        );
        assert_eq!(best(&full, Objective::FastestCompletion), Strategy::Eager);
        // The sweep crosses over between the two, and says lazy wins below.
        let x = small.crossover_fraction.expect("a crossover");
        assert!(x > 0.02 && x < 1.0, "{x}");
        assert!(small.lazy_wins_below);
        assert_eq!(small.sweep.len(), 21);
    }

    #[test]
    fn background_fetch_in_a_long_idle_gap_saves_later_requests() {
        let img = image(20, 400_000, 200_000);
        // Read one file, idle 60 s, then read the rest.
        let mut w = read_all(0..20, 1, 0);
        for a in w.accesses.iter_mut().skip(2) {
            a.t_ns += 60_000_000_000;
        }
        let with = predict(&img, &w, &profile(), &PredictOptions::default());
        let without = predict(
            &img,
            &w,
            &profile(),
            &PredictOptions {
                background: false,
                ..Default::default()
            },
        );
        let l = |p: &Prediction| get(p, Strategy::Lazy).clone();
        assert!(l(&with).counts.background_bytes > Bytes::ZERO);
        assert!(l(&with).completion.value < l(&without).completion.value);
        // Compute time is the same 60 s either way.
        assert!((with.workload.compute_after_ready_s.0 - 60.0).abs() < 1e-6);
    }

    #[test]
    fn background_fetch_after_the_run_downloads_the_rest_and_pays_the_path() {
        // 20 files of 400 kB (200 kB compressed); the workload reads 2, then
        // computes 2 s before exit.
        let img = image(20, 400_000, 200_000);
        let mut w = read_all(0..2, 1, 0);
        w.exit_ns = Some(2_000_000_000);
        let opts = |link| PredictOptions {
            gzip_bytes: Some(Bytes(4_000_000)),
            link,
            ..Default::default()
        };
        let near = predict(&img, &w, &profile(), &opts(None));
        let lazy = get(&near, Strategy::Lazy);
        let b = lazy.background.expect("lazy has a background fetch");
        // The other 18 files, one read each: 18 × 200 kB less the 50-kB
        // blocks the run's own reads already brought.
        assert!(
            b.bytes.0 > 17 * 200_000 && b.bytes.0 <= 18 * 200_000,
            "{b:?}"
        );
        assert_eq!(b.requests, 18, "{b:?}");
        // It starts 5 s after the last access, 2 s before the exit.
        let want_start = lazy.completion.value - 2.0 + replay::BACKGROUND_IDLE_S;
        assert!(
            (b.starts_s.0 - want_start).abs() < 1e-6,
            "{b:?} vs {want_start}"
        );
        assert!(b.duration.value > 0.0 && b.duration.low <= b.duration.value);
        assert!((b.whole.value - (b.starts_s.0 + b.duration.value)).abs() < 1e-6);
        // Eager has none; nor does lazy with background fetch off.
        assert!(get(&near, Strategy::Eager).background.is_none());
        let off = predict(
            &img,
            &w,
            &profile(),
            &PredictOptions {
                background: false,
                ..opts(None)
            },
        );
        assert!(get(&off, Strategy::Lazy).background.is_none());
        // 50 ms away at 10 MB/s: two reads in flight wait 9 round trips, and
        // the bytes move at the link's total.
        let far = predict(&img, &w, &profile(), &opts(Some(Link::new(0.050, 10e6))));
        let f = get(&far, Strategy::Lazy).background.unwrap();
        let grew = f.duration.value - b.duration.value;
        let want = 9.0 * 0.050 + f.bytes.as_f64() / 10e6;
        // Less by at most the node's receive work hidden under the arrival
        // (1 ns/B) and the calibration link's own share.
        assert!(
            grew <= want + 1e-6 && grew > want - 0.01,
            "grew {grew}, want {want}"
        );
        // A workload that reads everything leaves nothing.
        let all = predict(&img, &read_all(0..20, 20, 0), &profile(), &opts(None));
        let a = get(&all, Strategy::Lazy).background.unwrap();
        assert_eq!((a.requests, a.bytes), (0, Bytes::ZERO));
    }

    #[test]
    fn a_prefetched_startup_read_past_the_idle_rule_gets_the_contention_note() {
        // 1,000 of 2,000 small files read before ready (prefetched), one after.
        let img = image(2000, 4000, 2000);
        let w = read_all(0..1001, 1000, 0);
        let note = |p: &Prediction| {
            p.notes
                .iter()
                .any(|n| n.starts_with("lazy+prefetch: the prefetch and the startup reads"))
        };
        // 1,000 opens at 50 µs and a 0.1-s prefetch: well inside 5 s, no note.
        let quick = predict(&img, &w, &profile(), &PredictOptions::default());
        assert!(!note(&quick), "{:?}", quick.notes);
        // At 10 ms an open they take 10 s: background fetch would run alongside.
        let slow_fuse = profile_with_fuse_open(0.01);
        let slow = predict(&img, &w, &slow_fuse, &PredictOptions::default());
        assert!(note(&slow), "{:?}", slow.notes);
        // Its lazy+prefetch price leaves that out: shown, never recommended.
        assert!(
            slow.strategies
                .iter()
                .any(|s| s.strategy == Strategy::LazyPrefetch)
        );
        assert!(
            slow.recommendations
                .iter()
                .all(|r| r.best != Strategy::LazyPrefetch && r.runner_up != Strategy::LazyPrefetch),
            "{:?}",
            slow.recommendations
        );
        assert!(
            quick
                .recommendations
                .iter()
                .any(|r| r.best == Strategy::LazyPrefetch || r.runner_up == Strategy::LazyPrefetch),
            "without contention it competes: {:?}",
            quick.recommendations
        );
        // Not when background fetch is off, nor when everything is prefetched.
        let off = PredictOptions {
            background: false,
            ..Default::default()
        };
        assert!(!note(&predict(&img, &w, &slow_fuse, &off)));
        let all = read_all(0..2000, 1999, 0);
        let everything = predict(&img, &all, &slow_fuse, &PredictOptions::default());
        assert!(!note(&everything), "{:?}", everything.notes);
    }

    #[test]
    fn recommendation_margins_and_confidence() {
        let mk = |s: Strategy, v: f64, h: f64| StrategyPrediction {
            strategy: s,
            cold_start: Estimate::new(v, v - h, v + h, 0.95),
            completion: Estimate::new(v, v - h, v + h, 0.95),
            breakdown: vec![],
            counts: ReplayCounts {
                network_bytes: Bytes((v * 100.0) as u64),
                ..Default::default()
            },
            network: None,
            background: None,
            demand: None,
        };
        let r = recommend(&[
            mk(Strategy::Eager, 10.0, 1.0),
            mk(Strategy::Lazy, 5.0, 1.0),
            mk(Strategy::LazyPrefetch, 5.5, 1.0),
        ]);
        let start = &r[0];
        assert_eq!(
            (start.best, start.runner_up),
            (Strategy::Lazy, Strategy::LazyPrefetch)
        );
        assert!((start.margin - 0.5).abs() < 1e-12);
        assert!(!start.confident, "overlapping intervals");
        let r = recommend(&[
            mk(Strategy::Eager, 10.0, 0.1),
            mk(Strategy::Lazy, 5.0, 0.1),
            mk(Strategy::LazyPrefetch, 7.0, 0.1),
        ]);
        assert!(r[1].confident);
    }
    #[test]
    fn recorder_overhead_in_the_header_comes_out_of_the_gaps_never_below_zero() {
        let img = image(3, 100, 50);
        let body = r#"{"t":0,"pid":1,"op":"open","path":"/data/f0","dur":1000}
{"t":101000,"pid":1,"op":"read","path":"/data/f0","offset":0,"len":100,"dur":1000}
{"t":202000,"pid":1,"op":"open","path":"/data/f1","dur":1000}
{"t":213000,"pid":1,"op":"read","path":"/data/f1","offset":0,"len":100,"dur":1000}
"#;
        let parse = |header: &str| {
            let text = format!("{header}\n{body}");
            let mut r = crate::trace::format::TraceReader::new(
                std::io::Cursor::new(text.into_bytes()),
                "t.jsonl",
            )
            .unwrap();
            Workload::from_trace(&img, &mut r).unwrap()
        };
        let plain = parse(
            r#"{"format":"advisor-trace","version":1,"recorder":"record","clock":"monotonic"}"#,
        );
        let gaps = |w: &Workload| (1..4).map(|i| w.gap_before(i)).collect::<Vec<f64>>();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(
            close(&gaps(&plain), &[100e-6, 100e-6, 10e-6]),
            "{:?}",
            gaps(&plain)
        );
        let rec = parse(
            r#"{"format":"advisor-trace","version":1,"recorder":"record","clock":"monotonic","recorder_overhead":{"open_ns":40000,"read_ns":20000}}"#,
        );
        // read: 100 µs − 20; open: 100 − 40; read: 10 − 20 → 0.
        assert!(close(&gaps(&rec), &[80e-6, 60e-6, 0.0]), "{:?}", gaps(&rec));
    }
    /// The workload of a monotonic trace: `fields` of the header (its
    /// recorder and more), then `body`'s events.
    fn workload_of(img: &ImageFiles, fields: &str, body: &str) -> Workload {
        let text =
            format!(r#"{{"format":"advisor-trace","version":1,"clock":"monotonic",{fields}}}"#)
                + "\n"
                + body;
        let mut r = crate::trace::format::TraceReader::new(
            std::io::Cursor::new(text.into_bytes()),
            "t.jsonl",
        )
        .unwrap();
        Workload::from_trace(img, &mut r).unwrap()
    }

    #[test]
    fn recorded_lookups_that_are_not_opens_cost_a_fuse_round_trip_when_lazy() {
        let img = image(3, 100, 50);
        // Found and opened (priced with its open), absent, a directory
        // never opened; after ready one more absent name.
        let body = r#"{"t":0,"pid":1,"op":"stat","path":"/data/f0","dur":0}
{"t":10,"pid":1,"op":"stat","path":"/data/nope","err":"ENOENT","result":-2,"dur":0}
{"t":20,"pid":1,"op":"stat","path":"/data","dur":0}
{"t":30,"pid":1,"op":"open","path":"/data/f0","dur":0}
{"t":40,"pid":1,"op":"read","path":"/data/f0","offset":0,"len":100,"dur":0}
{"t":50,"op":"ready"}
{"t":60,"pid":1,"op":"stat","path":"/data/gone","err":"ENOENT","result":-2,"dur":0}
{"t":70,"op":"exit","result":0}
"#;
        let parse =
            |recorder: &str| workload_of(&img, &format!(r#""recorder":"{recorder}""#), body);
        let recorded = parse("record");
        assert_eq!(recorded.lookups, [2, 1]);
        // An strace's stat(2) calls are not lookups the kernel could not answer.
        let imported = parse("strace-import");
        assert_eq!(imported.lookups, [0, 0]);
        assert_eq!(recorded.accesses, imported.accesses);

        let p = profile();
        let opts = PredictOptions {
            fetch: p.fetch_config(),
            ..Default::default()
        };
        let (a, b) = (
            predict(&img, &recorded, &p, &opts),
            predict(&img, &imported, &p, &opts),
        );
        let open = p.value(Param::FuseOpenS);
        for (x, y) in a.strategies.iter().zip(&b.strategies) {
            let (ready, done) = match x.strategy {
                Strategy::Eager => (0.0, 0.0),
                _ => (2.0 * open, 3.0 * open),
            };
            assert!(
                (x.cold_start.value - y.cold_start.value - ready).abs() < 1e-12,
                "{:?}",
                x.strategy
            );
            assert!(
                (x.completion.value - y.completion.value - done).abs() < 1e-12,
                "{:?}",
                x.strategy
            );
        }
        assert_eq!(
            (
                a.workload.fuse_lookups_before_ready,
                a.workload.fuse_lookups_after_ready
            ),
            (2, 1)
        );
    }

    #[test]
    fn a_reference_run_scales_the_gaps_down_to_its_durations_never_up() {
        let img = image(3, 100, 50);
        // Gaps: 100 µs before the 2nd access, 90 µs to the 3rd, 90 µs to
        // ready, 200 µs from ready to the 4th, 290 µs from its end to exit.
        let body = r#"{"t":0,"pid":1,"op":"open","path":"/data/f0","dur":0}
{"t":100000,"pid":1,"op":"read","path":"/data/f0","offset":0,"len":100,"dur":10000}
{"t":200000,"pid":1,"op":"open","path":"/data/f1","dur":10000}
{"t":300000,"op":"ready"}
{"t":500000,"pid":1,"op":"read","path":"/data/f1","offset":0,"len":100,"dur":10000}
{"t":800000,"op":"exit","result":0}
"#;
        let parse = |reference: &str| {
            workload_of(&img, &format!(r#""recorder":"record"{reference}"#), body)
        };
        let before = |w: &Workload| w.gap_before(1) + w.gap_before(2) + w.gap_to_ready();
        // The gap spanning the marker counts up to it before, the rest after.
        let after = |w: &Workload| w.gap_before(3) - w.gap_to_ready() + w.gap_to_exit();
        let plain = parse("");
        assert!(
            (before(&plain) - 280e-6).abs() < 1e-12,
            "{}",
            before(&plain)
        );
        assert!((after(&plain) - 490e-6).abs() < 1e-12, "{}", after(&plain));
        // Reference: ready at 140 µs (half the 280 µs of gaps before ready);
        // 605 µs from ready to exit, more than the 490 µs recorded after
        // (kept as recorded: never stretched).
        let w = parse(r#","reference_run":{"ready_ns":140000,"exit_ns":745000,"exit_code":0}"#);
        assert!((before(&w) - 140e-6).abs() < 1e-12, "{}", before(&w));
        // A reference run supersedes the probed per-operation overhead.
        let both = parse(
            r#","recorder_overhead":{"open_ns":99000,"read_ns":99000},"reference_run":{"ready_ns":140000,"exit_ns":745000,"exit_code":0}"#,
        );
        assert_eq!(both.gap_before(1), w.gap_before(1));
        assert!((w.gap_before(1) - 50e-6).abs() < 1e-12);
        assert!((after(&w) - 490e-6).abs() < 1e-12, "{}", after(&w));
        // Without a ready time in the reference: one factor for the whole run.
        let w = parse(r#","reference_run":{"exit_ns":385000,"exit_code":0}"#);
        assert!((before(&w) + after(&w) - 385e-6).abs() < 1e-12);
        assert!((before(&w) / 280e-6 - after(&w) / 490e-6).abs() < 1e-9);
    }
}
