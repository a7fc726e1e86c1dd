//! Fleet planning: N nodes pulling one image through a shared registry.
//!
//! Owns the fleet model (docs/plan.md): one node's prediction for a path
//! (`predict` with a link: each phase's bytes, the seconds it moves them
//! alone and its requests) turned into a [`fleet::NodeRun`], simulated for
//! the fleet by [`fleet::simulate`] at the prediction's low, point and high
//! node times (the intervals), then percentiles of pods ready and done,
//! registry egress and requests, disk per node, the binding constraint and
//! a recommendation for a target. Every node is the same node (one profile,
//! one path); the interval is the profile's, not a spread of nodes.
//!
//! Must not: read traces, images or profiles (callers pass a
//! [`Prediction`]), talk to a registry or containerd, or print.
pub mod manifest;
use crate::predict::replay::{Part, Strategy};
use crate::predict::{BackgroundFetch, Prediction, StrategyPrediction};
use crate::simulate::fleet::{
    self, Background, Constraint, NodeRun, Outcome, Phase, Registry, Rollout,
};
use crate::units::{Bytes, Estimate, Seconds};
use serde::{Deserialize, Serialize};

/// The fleet and its registry.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    pub nodes: u64,
    pub rollout: Rollout,
    /// The registry's egress, shared by every node (bytes/s).
    pub registry_egress: f64,
    /// Requests per second the registry serves, if limited.
    pub registry_rps: Option<f64>,
    /// Each node's own link (bytes/s), if slower than its path's.
    pub node_bandwidth: Option<f64>,
    /// Each node's disk for images.
    pub node_disk: Option<Bytes>,
    pub target: Option<Target>,
}

/// A moment of the rollout a user wants by a deadline: `ready-p95=60s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub metric: Metric,
    pub seconds: Seconds,
}

/// A percentile of pods ready or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    ReadyP50,
    ReadyP95,
    ReadyAll,
    DoneP50,
    DoneP95,
    DoneAll,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::ReadyP50,
        Metric::ReadyP95,
        Metric::ReadyAll,
        Metric::DoneP50,
        Metric::DoneP95,
        Metric::DoneAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ReadyP50 => "ready-p50",
            Metric::ReadyP95 => "ready-p95",
            Metric::ReadyAll => "ready-all",
            Metric::DoneP50 => "done-p50",
            Metric::DoneP95 => "done-p95",
            Metric::DoneAll => "done-all",
        }
    }

    fn of(self, s: &StrategyPlan) -> Estimate {
        match self {
            Metric::ReadyP50 => s.ready.p50,
            Metric::ReadyP95 => s.ready.p95,
            Metric::ReadyAll => s.ready.all,
            Metric::DoneP50 => s.done.p50,
            Metric::DoneP95 => s.done.p95,
            Metric::DoneAll => s.done.all,
        }
    }
}

/// Parse `ready-p95=60s` (metrics: ready-p50, ready-p95, ready-all,
/// done-p50, done-p95, done-all; a duration as every flag writes one,
/// [`crate::units::parse_duration_like`]: 90s, 2m, 1m30s, a bare number of
/// seconds), more than 0.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let example = "give METRIC=DURATION, like ready-p95=60s (metrics: ready-p50, ready-p95, ready-all, done-p50, done-p95, done-all)";
    let (m, d) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: {example}"))?;
    let metric = Metric::ALL
        .into_iter()
        .find(|x| x.name() == m.trim())
        .ok_or_else(|| format!("{s:?}: unknown metric {m:?}; {example}"))?;
    let d = crate::units::parse_duration_like(d, "60s, 2m, 1m30s")
        .map_err(|e| format!("{s:?}: {e}"))?;
    if d.is_zero() {
        return Err(format!(
            "{s:?}: the deadline must be more than 0 s; {example}"
        ));
    }
    Ok(Target {
        metric,
        seconds: Seconds::from_duration(d),
    })
}

/// Moments for a share of the pods, each with the profile's interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Estimate,
    pub p95: Estimate,
    pub all: Estimate,
}

/// What the registry serves for the whole rollout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Egress {
    /// Bytes, background fetch included.
    pub bytes: Bytes,
    pub peak_bytes_per_s: f64,
    /// HTTP requests (GET and HEAD): the manifest and config, blob downloads
    /// (eager), the snapshotter's per-layer probes and range reads (lazy).
    pub requests: u64,
    pub peak_requests_per_s: f64,
}

/// How long a constraint held while pods were not done.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub constraint: Constraint,
    pub seconds: f64,
    pub from_s: f64,
    pub to_s: f64,
}

/// Pods ready and done by a moment (the point prediction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub t_s: f64,
    pub ready: u64,
    pub done: u64,
}

/// One strategy for the whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyPlan {
    pub strategy: Strategy,
    pub ready: Percentiles,
    pub done: Percentiles,
    /// Lazy strategies: every node's image whole (background fetch done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_whole: Option<Estimate>,
    pub egress: Egress,
    pub disk_per_node: Bytes,
    /// Whether that fits `--node-disk` (absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fits_disk: Option<bool>,
    /// Largest first.
    pub binding: Vec<Binding>,
    /// Nodes that can pull at once before the registry's egress binds
    /// (each at its own path's rate).
    pub nodes_before_egress_binds: u64,
    pub timeline: Vec<TimelinePoint>,
}

/// The answer for the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecommendation {
    pub strategy: Strategy,
    pub metric: Metric,
    pub predicted: Estimate,
    /// With a target: whether the asked rollout meets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meets_target: Option<bool>,
    /// With a target: the gentlest rollout (fewest nodes at once) that
    /// meets it with the recommended strategy, if any does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    pub verdict: String,
}

/// A fleet plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub nodes: u64,
    pub rollout: Rollout,
    pub registry_egress_bytes_per_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_rps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_bandwidth_bytes_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub strategies: Vec<StrategyPlan>,
    pub recommendation: PlanRecommendation,
    pub notes: Vec<String>,
}

/// Plan the fleet from one node's prediction for its path (`predict` with
/// a link: every strategy carries its `demand`).
pub fn plan(p: &Prediction, o: &PlanOptions) -> Result<Plan, String> {
    validate(o)?;
    let strategies = p
        .strategies
        .iter()
        .map(|s| {
            let mut sp = plan_strategy(p, s, o, o.rollout)?;
            sp.nodes_before_egress_binds = nodes_before_egress_binds(p, s, o)?;
            Ok(sp)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let recommendation = recommend(p, &strategies, o)?;
    let notes = notes(p, &strategies);
    Ok(Plan {
        nodes: o.nodes,
        rollout: o.rollout,
        registry_egress_bytes_per_s: o.registry_egress,
        registry_rps: o.registry_rps,
        node_bandwidth_bytes_per_s: o.node_bandwidth,
        target: o.target,
        strategies,
        recommendation,
        notes,
    })
}

/// Largest fleet `plan` takes: far above any cluster, far below where
/// counts lose precision.
pub const MAX_NODES: u64 = 10_000_000;

fn validate(o: &PlanOptions) -> Result<(), String> {
    if o.nodes == 0 || o.nodes > MAX_NODES {
        return Err(format!(
            "--nodes {}: give a number of nodes from 1 to {MAX_NODES}",
            o.nodes
        ));
    }
    match o.rollout {
        Rollout::Waves(0) => return Err("--waves 0: give at least 1 wave".into()),
        Rollout::MaxSurge(0) => return Err("--max-surge 0: give at least 1 node".into()),
        _ => {}
    }
    let rate = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(format!("{name}: give a rate above 0, like 10gbit"))
        }
    };
    rate("--registry-egress", o.registry_egress)?;
    if let Some(v) = o.node_bandwidth {
        rate("--node-bandwidth", v)?;
    }
    if let Some(v) = o.registry_rps
        && !(v.is_finite() && v > 0.0)
    {
        return Err(format!(
            "--registry-rps {v}: give requests per second above 0"
        ));
    }
    Ok(())
}

/// Which end of the interval a simulation runs at.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Low,
    Point,
    High,
}

fn at(e: &Estimate, b: Bound) -> f64 {
    match b {
        Bound::Low => e.low,
        Bound::Point => e.value,
        Bound::High => e.high,
    }
}

/// Requests a pull makes before its layers: containerd's resolver HEADs the
/// tag, then GETs the manifest by digest and the image config (the lab's
/// registry log, per node).
const RESOLVE_REQUESTS: f64 = 3.0;

/// Requests the stargz snapshotter makes for each layer it mounts besides
/// the footer and TOC reads the prediction counts: `GET bytes=0-1`
/// (redirect discovery) and a `HEAD` (the blob's size). A request-rate
/// limit counts them: with many small reads they are a fair part of a lazy
/// node's requests before it is ready.
const MOUNT_PROBE_REQUESTS: f64 = 2.0;

/// One node's run at one end of the interval: each phase's fixed part is
/// its predicted time less the seconds it moves its bytes alone.
fn node_run(
    p: &Prediction,
    s: &StrategyPrediction,
    o: &PlanOptions,
    b: Bound,
) -> Result<NodeRun, String> {
    let d = s.demand.as_ref().ok_or_else(|| {
        format!(
            "the {} prediction has no path demand (a bug: plan predicts for a path)",
            s.strategy.name()
        )
    })?;
    let ready_s = at(&s.cold_start, b).max(0.0);
    let done_s = (at(&s.completion, b) - ready_s).max(0.0);
    let phase = |dem: &crate::predict::PhaseDemand, total_s: f64| {
        let bytes = dem.bytes.as_f64();
        let moving = dem.moving_s.0.max(0.0).min(total_s);
        let mut cap = if moving > 0.0 {
            bytes / moving
        } else {
            f64::MAX / 4.0
        };
        if let Some(n) = o.node_bandwidth {
            cap = cap.min(n);
        }
        Phase {
            bytes,
            cap,
            fixed_s: (total_s - moving).max(0.0),
            requests: dem.requests,
            quiet_s: 0.0,
        }
    };
    let background = match (&s.background, &d.background) {
        (Some(bg), Some(dem)) => Some(background(s, bg, phase(dem, at(&bg.duration, b).max(0.0)))),
        _ => None,
    };
    let mut ready = phase(&d.before_ready, ready_s);
    ready.requests += RESOLVE_REQUESTS;
    ready.quiet_s = quiet_s(s);
    if s.strategy != Strategy::Eager {
        ready.requests += MOUNT_PROBE_REQUESTS * p.image.layers as f64;
    }
    Ok(NodeRun {
        ready,
        done: phase(&d.after_ready, done_s),
        background,
    })
}

/// Seconds before ready that make no requests — the container's start and
/// the workload's own compute — so a request-rate limit does not slow them.
fn quiet_s(s: &StrategyPrediction) -> f64 {
    s.breakdown
        .iter()
        .filter(|p| matches!(p.part, Part::Start | Part::Compute))
        .map(|p| p.before_ready_s.0.max(0.0))
        .sum()
}

/// The background fetch starts when `advise` says (5 s after the last
/// read): counted from the node's done moment, or from its ready moment
/// when the workload computes past the start (the fetch then begins before
/// it is done).
fn background(s: &StrategyPrediction, bg: &BackgroundFetch, phase: Phase) -> Background {
    let after_done = bg.starts_s.0 - s.completion.value;
    if after_done >= 0.0 {
        Background {
            after_ready: false,
            after_s: after_done,
            phase,
        }
    } else {
        Background {
            after_ready: true,
            after_s: (bg.starts_s.0 - s.cold_start.value).max(0.0),
            phase,
        }
    }
}

fn plan_strategy(
    p: &Prediction,
    s: &StrategyPrediction,
    o: &PlanOptions,
    rollout: Rollout,
) -> Result<StrategyPlan, String> {
    let registry = Registry {
        egress: o.registry_egress,
        rps: o.registry_rps,
    };
    let mut runs = [Bound::Low, Bound::Point, Bound::High]
        .into_iter()
        .map(|b| {
            Ok(fleet::simulate(
                &node_run(p, s, o, b)?,
                o.nodes,
                rollout,
                registry,
            ))
        })
        .collect::<Result<Vec<Outcome>, String>>()?;
    let high = runs.pop().unwrap_or_default();
    let point = runs.pop().unwrap_or_default();
    let low = runs.pop().unwrap_or_default();
    let moment = |pick: fn(&Outcome) -> &Vec<(f64, u64)>, share: f64| {
        let k = ((o.nodes as f64 * share).ceil() as u64).clamp(1, o.nodes);
        let m = |x: &Outcome| fleet::moment_of(pick(x), k).unwrap_or(f64::NAN);
        Estimate::new(m(&point), m(&low), m(&high), s.completion.confidence)
    };
    let percentiles = |pick: fn(&Outcome) -> &Vec<(f64, u64)>| Percentiles {
        p50: moment(pick, 0.5),
        p95: moment(pick, 0.95),
        all: moment(pick, 1.0),
    };
    let ready = percentiles(|x| &x.ready);
    let done = percentiles(|x| &x.done);
    let image_whole = (!point.whole.is_empty()).then(|| moment(|x| &x.whole, 1.0));
    let disk = disk_per_node(p, s);
    let mut binding: Vec<Binding> = point
        .binding
        .iter()
        .map(|&(constraint, seconds, from_s, to_s)| Binding {
            constraint,
            seconds,
            from_s,
            to_s,
        })
        .collect();
    binding.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Ok(StrategyPlan {
        strategy: s.strategy,
        ready,
        done,
        image_whole,
        egress: Egress {
            bytes: Bytes(point.bytes.round() as u64),
            peak_bytes_per_s: point.peak_egress,
            requests: point.requests.round() as u64,
            peak_requests_per_s: point.peak_rps,
        },
        disk_per_node: disk,
        fits_disk: o.node_disk.map(|d| disk <= d),
        binding,
        nodes_before_egress_binds: 0,
        timeline: timeline(&point),
    })
}

/// A registry that slows all pods' readiness by less than this share is
/// not yet the bottleneck.
const EGRESS_SLOWDOWN: f64 = 0.05;

/// The most nodes (up to the fleet) that can start at once and all be
/// ready within [`EGRESS_SLOWDOWN`] of one node alone: bisection on the
/// simulated fleet (readiness only grows with the nodes sharing the registry).
fn nodes_before_egress_binds(
    p: &Prediction,
    s: &StrategyPrediction,
    o: &PlanOptions,
) -> Result<u64, String> {
    let run = node_run(p, s, o, Bound::Point)?;
    let registry = Registry {
        egress: o.registry_egress,
        rps: o.registry_rps,
    };
    let all_ready = |k: u64| {
        let out = fleet::simulate(&run, k, Rollout::MaxSurge(k), registry);
        fleet::moment_of(&out.ready, k).unwrap_or(f64::INFINITY)
    };
    let limit = all_ready(1) * (1.0 + EGRESS_SLOWDOWN) + 1e-9;
    if all_ready(o.nodes) <= limit {
        return Ok(o.nodes);
    }
    let (mut ok, mut bad) = (1u64, o.nodes);
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if all_ready(mid) <= limit {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    Ok(ok)
}

/// Disk a node needs: eager keeps the compressed blobs and the unpacked
/// snapshots; lazy ends with its caches, and with background fetch the
/// whole image decompressed in the snapshotter's cache.
fn disk_per_node(p: &Prediction, s: &StrategyPrediction) -> Bytes {
    if s.background.is_some() {
        s.counts.disk_bytes.max(p.image.uncompressed_bytes)
    } else {
        s.counts.disk_bytes
    }
}

fn timeline(o: &Outcome) -> Vec<TimelinePoint> {
    let mut marks: Vec<(f64, u64, u64)> = o
        .ready
        .iter()
        .map(|&(t, n)| (t, n, 0))
        .chain(o.done.iter().map(|&(t, n)| (t, 0, n)))
        .collect();
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points = vec![TimelinePoint {
        t_s: 0.0,
        ready: 0,
        done: 0,
    }];
    for (t, r, d) in marks {
        let last = *points.last().unwrap_or(&TimelinePoint {
            t_s: 0.0,
            ready: 0,
            done: 0,
        });
        points.push(TimelinePoint {
            t_s: t,
            ready: last.ready + r,
            done: last.done + d,
        });
    }
    points
}

/// Rollouts gentler than all at once, smallest first: 1, 2, 5, 10, 20, 50…
fn surge_candidates(nodes: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut base = 1u64;
    while base < nodes {
        for m in [1, 2, 5] {
            let s = base.saturating_mul(m);
            if s < nodes {
                v.push(s);
            }
        }
        base = base.saturating_mul(10);
    }
    v.push(nodes);
    v
}

fn recommend(
    p: &Prediction,
    plans: &[StrategyPlan],
    o: &PlanOptions,
) -> Result<PlanRecommendation, String> {
    let metric = o.target.map_or(Metric::ReadyP95, |t| t.metric);
    let best = plans
        .iter()
        .min_by(|a, b| metric.of(a).value.total_cmp(&metric.of(b).value))
        .ok_or("no strategy to plan")?;
    let predicted = metric.of(best);
    let Some(target) = o.target else {
        return Ok(PlanRecommendation {
            strategy: best.strategy,
            metric,
            predicted,
            meets_target: None,
            rollout: None,
            verdict: format!(
                "{} reaches {} first: {}",
                best.strategy.name(),
                metric.name(),
                Seconds(predicted.value)
            ),
        });
    };
    let meets = predicted.value <= target.seconds.0;
    let goal = format!("{}≤{}", metric.name(), Seconds(target.seconds.0));
    let asked = format!(
        "with the asked rollout, {} takes {}",
        best.strategy.name(),
        Seconds(predicted.value)
    );
    // The gentlest rollout that meets the target, strategies best first.
    let mut order: Vec<&StrategyPlan> = plans.iter().collect();
    order.sort_by(|a, b| metric.of(a).value.total_cmp(&metric.of(b).value));
    for sp in &order {
        let s = strategy_of(p, sp.strategy)?;
        for surge in surge_candidates(o.nodes) {
            let r = Rollout::MaxSurge(surge);
            let tried = plan_strategy(p, s, o, r)?;
            let got = metric.of(&tried);
            if got.value <= target.seconds.0 {
                let gentlest = format!(
                    "{} with at most {surge} node(s) pulling at once ({})",
                    sp.strategy.name(),
                    Seconds(got.value)
                );
                let verdict = if meets {
                    format!(
                        "{goal} is met: {asked}; the gentlest rollout that meets it: {gentlest}"
                    )
                } else {
                    format!("{goal} is not met: {asked}; it is met by {gentlest}")
                };
                return Ok(PlanRecommendation {
                    strategy: sp.strategy,
                    metric,
                    predicted: got,
                    meets_target: Some(meets),
                    rollout: Some(r),
                    verdict,
                });
            }
        }
    }
    Ok(PlanRecommendation {
        strategy: best.strategy,
        metric,
        predicted,
        meets_target: Some(false),
        rollout: None,
        verdict: format!("{goal} is not met: {asked}; {}", unmet(p, best, o, target)?),
    })
}

fn strategy_of(p: &Prediction, s: Strategy) -> Result<&StrategyPrediction, String> {
    p.strategies
        .iter()
        .find(|x| x.strategy == s)
        .ok_or_else(|| format!("no {} prediction", s.name()))
}

/// No rollout meets the target: say what would, if anything.
fn unmet(
    p: &Prediction,
    best: &StrategyPlan,
    o: &PlanOptions,
    target: Target,
) -> Result<String, String> {
    let s = strategy_of(p, best.strategy)?;
    let alone = PlanOptions {
        nodes: 1,
        rollout: Rollout::MaxSurge(1),
        ..o.clone()
    };
    let mut floors = Vec::new();
    for x in &p.strategies {
        let one = plan_strategy(p, x, &alone, alone.rollout)?;
        floors.push((target.metric.of(&one).value, x.strategy));
    }
    let (floor, fastest) = floors
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .ok_or("no strategy to plan")?;
    if floor > target.seconds.0 {
        return Ok(format!(
            "no rollout meets it: one node alone takes {} at best ({}); a faster node or path is needed",
            Seconds(floor),
            fastest.name()
        ));
    }
    for factor in [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0] {
        let more = PlanOptions {
            registry_egress: o.registry_egress * factor,
            registry_rps: o.registry_rps.map(|r| r * factor),
            ..o.clone()
        };
        let tried = plan_strategy(p, s, &more, Rollout::MaxSurge(o.nodes))?;
        if target.metric.of(&tried).value <= target.seconds.0 {
            return Ok(format!(
                "no rollout meets it on this registry; {} all at once would with {factor}× its egress{}, {} ({})",
                best.strategy.name(),
                if o.registry_rps.is_some() {
                    " and request rate"
                } else {
                    ""
                },
                rate_text(o.registry_egress * factor),
                Seconds(target.metric.of(&tried).value)
            ));
        }
    }
    Ok(
        "no rollout meets it, even with 1024× the registry's egress: fewer nodes or faster nodes"
            .into(),
    )
}

/// A rate in Gbit/s.
fn rate_text(bytes_per_s: f64) -> String {
    format!("{:.1} Gbit/s", bytes_per_s * 8.0 / 1e9)
}

fn notes(p: &Prediction, plans: &[StrategyPlan]) -> Vec<String> {
    let mut n = vec![
        "every node is the calibrated node on the probed path; the intervals are the profile's, not a spread of nodes".to_string(),
    ];
    n.extend(request_rate_notes(plans));
    if p.strategies
        .iter()
        .any(|s| s.strategy == Strategy::LazyPrefetch)
    {
        n.push("lazy+prefetch needs the image rebuilt with the trace's startup files prioritized (advise --prefetch-list)".into());
    }
    n
}

/// A request-rate limit is modelled as queuing; what the real clients do
/// when the registry answers 429 instead (containerd v1.6 `remotes/docker`
/// `retryRequest`, stargz-snapshotter v0.12 `fs/remote/resolver.go` with
/// go-retryablehttp v0.7; docs/plan.md), for the strategies it binds.
fn request_rate_notes(plans: &[StrategyPlan]) -> Vec<String> {
    let binds = |s: &StrategyPlan| {
        s.binding
            .iter()
            .any(|b| b.constraint == Constraint::RequestRate)
    };
    let bound: Vec<&StrategyPlan> = plans.iter().filter(|s| binds(s)).collect();
    if bound.is_empty() {
        return vec!["a request-rate limit is modelled as requests queuing at the registry (docs/plan.md: what containerd and the snapshotter do when it answers 429)".into()];
    }
    bound
        .iter()
        .map(|s| match s.strategy {
            Strategy::Eager => "eager asks more than --registry-rps, modelled as queuing: a registry that answers 429 instead fails eager pulls (containerd 1.6 resends a 429 at once, at most 6 times, no back-off; one failed layer fails the pull; kubelet retries with its image-pull back-off), so eager's times are a lower bound".to_string(),
            other => format!("{} asks more than --registry-rps, modelled as queuing: on 429 the stargz snapshotter retries each range GET 5 times (30 ms doubling, jittered, Retry-After honoured), then the read fails with EIO and a failed background fetch is not retried", other.name()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_name_the_fix() {
        let t = parse_target("ready-p95=60s").unwrap();
        assert_eq!(t.metric, Metric::ReadyP95);
        assert_eq!(t.seconds, Seconds(60.0));
        assert_eq!(
            parse_target("done-all=1m30s").unwrap().seconds,
            Seconds(90.0)
        );
        for bad in [
            "ready-p95",
            "ready-p99=1s",
            "ready-p95=soon",
            "ready-p95=0s",
        ] {
            let e = parse_target(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    use crate::commands::advise::example;
    use crate::report::fixtures::example_prediction_on;
    use crate::simulate::network::Link;

    /// The bundled example predicted for a 5 ms / 1 Gbit/s path.
    fn example() -> Prediction {
        example_prediction_on(Some(example::GZIP_BYTES), Some(Link::new(0.005, 125e6)))
    }

    fn fleet(nodes: u64, rollout: Rollout, egress: f64) -> PlanOptions {
        PlanOptions {
            nodes,
            rollout,
            registry_egress: egress,
            registry_rps: None,
            node_bandwidth: None,
            node_disk: None,
            target: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn one_node_on_a_registry_of_its_own_is_the_single_node_prediction() {
        let p = example();
        let plan = plan(&p, &fleet(1, Rollout::MaxSurge(1), 1e15)).unwrap();
        for (sp, s) in plan.strategies.iter().zip(&p.strategies) {
            assert!(close(sp.ready.all.value, s.cold_start.value), "{sp:?}");
            assert!(close(sp.ready.all.low, s.cold_start.low), "{sp:?}");
            assert!(close(sp.done.all.value, s.completion.value), "{sp:?}");
            if let Some(bg) = &s.background {
                assert!(
                    close(sp.image_whole.unwrap().value, bg.whole.value),
                    "{sp:?}"
                );
            }
            let bytes = s.demand.unwrap().before_ready.bytes.0
                + s.demand.unwrap().after_ready.bytes.0
                + s.demand.unwrap().background.map_or(0, |b| b.bytes.0);
            assert!(sp.egress.bytes.0.abs_diff(bytes) <= 2, "{sp:?}");
            assert_eq!(sp.nodes_before_egress_binds, 1);
        }
    }

    #[test]
    fn a_fleet_at_once_shares_the_egress_and_moves_every_nodes_bytes() {
        let p = example();
        let egress = 1.25e9; // 10 Gbit/s
        let plan = plan(&p, &fleet(100, Rollout::MaxSurge(100), egress)).unwrap();
        let eager = &plan.strategies[0];
        let one = p.strategies[0].demand.unwrap().before_ready.bytes.as_f64();
        // 100 images through 10 Gbit/s cannot be ready sooner than that takes.
        assert!(eager.ready.all.value >= 100.0 * one / egress, "{eager:?}");
        assert!(eager.ready.all.value > 2.0 * p.strategies[0].cold_start.value);
        assert!(close(eager.egress.peak_bytes_per_s, egress), "{eager:?}");
        assert_eq!(eager.binding[0].constraint, Constraint::RegistryEgress);
        // At 1 Gbit/s a node, 10 Gbit/s carries about 10 eager pulls at once.
        assert!(
            (9..=14).contains(&eager.nodes_before_egress_binds),
            "{eager:?}"
        );
        // Lazy's background fetch moves the whole image after all.
        let lazy = &plan.strategies[1];
        let ratio = lazy.egress.bytes.as_f64() / eager.egress.bytes.as_f64();
        assert!((0.9..1.1).contains(&ratio), "{ratio}");
        assert!(lazy.ready.p95.value < eager.ready.p95.value / 5.0);
    }

    #[test]
    fn a_request_limit_that_binds_says_what_real_clients_do_on_429() {
        let p = example();
        let free = plan(&p, &fleet(100, Rollout::MaxSurge(100), 1e12)).unwrap();
        assert!(
            free.notes
                .iter()
                .any(|n| n.contains("modelled as requests queuing"))
        );
        assert!(!free.notes.iter().any(|n| n.contains("lower bound")));
        let mut limited = fleet(100, Rollout::MaxSurge(100), 1e12);
        limited.registry_rps = Some(10.0);
        let plan = plan(&p, &limited).unwrap();
        let eager = plan.notes.iter().find(|n| n.starts_with("eager asks"));
        assert!(
            eager.is_some_and(|n| n.contains("lower bound")),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.starts_with("lazy asks") && n.contains("EIO")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn waves_are_slower_to_all_ready_than_all_at_once_on_a_big_registry() {
        let p = example();
        let once = plan(&p, &fleet(40, Rollout::MaxSurge(40), 1e12)).unwrap();
        let waves = plan(&p, &fleet(40, Rollout::Waves(4), 1e12)).unwrap();
        let (a, b) = (&once.strategies[0], &waves.strategies[0]);
        assert!(
            close(b.ready.all.value, 4.0 * a.ready.all.value),
            "{a:?} {b:?}"
        );
        assert!(close(b.ready.p50.value, 2.0 * a.ready.all.value));
    }

    #[test]
    fn a_target_is_met_missed_or_out_of_reach_with_the_reason() {
        let p = example();
        let mut o = fleet(200, Rollout::Waves(4), 1.25e9);
        o.target = Some(parse_target("ready-p95=10m").unwrap());
        let r = plan(&p, &o).unwrap().recommendation;
        assert_eq!(r.meets_target, Some(true), "{r:?}");
        assert!(r.rollout.is_some(), "{r:?}");
        o.target = Some(parse_target("done-all=1s").unwrap());
        let r = plan(&p, &o).unwrap().recommendation;
        assert_eq!(r.meets_target, Some(false));
        assert!(r.verdict.contains("one node alone"), "{}", r.verdict);
        // Every pod done within twice one node's time: more egress would do.
        let alone = p
            .strategies
            .iter()
            .map(|s| s.completion.value)
            .fold(f64::MAX, f64::min);
        o.target = Some(Target {
            metric: Metric::DoneAll,
            seconds: Seconds(alone * 2.0),
        });
        let r = plan(&p, &o).unwrap().recommendation;
        assert_eq!(r.meets_target, Some(false), "{r:?}");
        assert!(r.verdict.contains("its egress"), "{}", r.verdict);
    }

    #[test]
    fn nonsense_fleets_are_refused_naming_the_flag() {
        let p = example();
        for (o, flag) in [
            (fleet(0, Rollout::MaxSurge(1), 1e9), "--nodes"),
            (fleet(5, Rollout::Waves(0), 1e9), "--waves"),
            (fleet(5, Rollout::MaxSurge(0), 1e9), "--max-surge"),
            (fleet(5, Rollout::MaxSurge(5), 0.0), "--registry-egress"),
            (
                fleet(5, Rollout::MaxSurge(5), f64::NAN),
                "--registry-egress",
            ),
        ] {
            let e = plan(&p, &o).unwrap_err();
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn a_disk_too_small_is_said() {
        let p = example();
        let mut o = fleet(3, Rollout::MaxSurge(3), 1e9);
        o.node_disk = Some(Bytes(1 << 30));
        let plan = plan(&p, &o).unwrap();
        assert_eq!(plan.strategies[0].fits_disk, Some(false));
        assert!(plan.strategies[0].disk_per_node > Bytes(1 << 30));
    }

    #[test]
    fn surge_candidates_grow_to_the_fleet() {
        assert_eq!(surge_candidates(1), vec![1]);
        assert_eq!(surge_candidates(30), vec![1, 2, 5, 10, 20, 30]);
    }
}
