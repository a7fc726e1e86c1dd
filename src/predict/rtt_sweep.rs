//! The RTT sweep: each strategy's cold start and completion as the
//! registry's round-trip time grows from 0 to a maximum, at a fixed
//! bandwidth, and the RTTs where the fastest strategy changes
//! (docs/model.md § "The RTT sweep").
//!
//! Owns the family of paths (one path whose RTT varies), the grid and the
//! crossover search. Prices the replays `predict` already made
//! ([`Replay::network_total_s`]): no new replay, so a sweep costs a few
//! hundred pricings. Does not replay, recommend or render.
//!
//! Under the model of `simulate::network` a time is affine in the RTT
//! (round trips and set-ups each pay one RTT; bandwidth does not move)
//! except where a path nearer than the calibration's would take a part
//! below nothing (it is clamped there), so a strategy is mostly fastest on
//! one interval of RTTs. The search does not rely on that: it brackets
//! every change of the fastest strategy between neighbouring grid points
//! and bisects each bracket, several changes in one bracket included.
use super::Objective;
use super::replay::{Replay, Strategy};
use crate::profile::Profile;
use crate::simulate::network::Link;
use crate::units::{Estimate, Seconds};
use serde::{Deserialize, Serialize};

/// The sweep's default upper RTT: 100 ms is a registry on another continent.
pub const DEFAULT_MAX_RTT: Seconds = Seconds(0.100);
/// The largest `--rtt-max` accepted: beyond 10 s no registry client waits.
pub const LIMIT_MAX_RTT: Seconds = Seconds(10.0);
/// Bandwidth of the sweep when no path was given (bytes/s): 10 Gbit/s, a
/// datacentre path, so the sweep shows round trips, not transfer.
pub const DEFAULT_BYTES_PER_S: f64 = 10e9 / 8.0;
/// Grid points from 0 to the maximum, evenly spaced (2.5 ms apart at the
/// default 100 ms): dense enough for the plot, and the search refines
/// between them.
pub const GRID_POINTS: usize = 41;
/// The bisection stops when its bracket is this narrow (s).
const RESOLUTION_S: f64 = 1e-6;
/// A strategy takes the lead only when faster by more than this (s), so
/// two strategies priced alike (lazy and lazy+prefetch with nothing to
/// prefetch) do not swap on rounding.
const TIE_S: f64 = 1e-9;
/// At most this many changes of the fastest strategy are searched for in
/// one grid interval (there are at most two with three strategies).
const CHANGES_PER_INTERVAL: usize = 8;

/// Where the sweep's bandwidth comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BandwidthFrom {
    /// The path of the prediction (`--network`, `--rtt`/`--bandwidth`).
    Path,
    /// No path was given: [`DEFAULT_BYTES_PER_S`].
    Default,
}

/// The path whose RTT the sweep varies: everything but the RTT is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweptPath {
    /// Throughput of one stream (bytes/s).
    pub stream_bytes_per_s: f64,
    /// Throughput of all streams together (bytes/s).
    pub total_bytes_per_s: f64,
    /// Connection set-up beyond its one round trip (the TCP handshake,
    /// which moves with the RTT): a probe's TLS and token exchange as
    /// measured, kept at every RTT (s).
    pub setup_beyond_rtt_s: Seconds,
    pub bandwidth_from: BandwidthFrom,
}

impl SweptPath {
    /// The given path without its RTT, or the default one.
    pub fn of(link: Option<&Link>) -> Self {
        match link {
            Some(l) => SweptPath {
                stream_bytes_per_s: l.stream_bytes_per_s,
                total_bytes_per_s: l.total_bytes_per_s,
                setup_beyond_rtt_s: Seconds((l.setup_s - l.rtt_s).max(0.0)),
                bandwidth_from: BandwidthFrom::Path,
            },
            None => SweptPath {
                stream_bytes_per_s: DEFAULT_BYTES_PER_S,
                total_bytes_per_s: DEFAULT_BYTES_PER_S,
                setup_beyond_rtt_s: Seconds::ZERO,
                bandwidth_from: BandwidthFrom::Default,
            },
        }
    }

    /// The path at this RTT.
    pub fn at(&self, rtt: f64) -> Link {
        Link {
            rtt_s: rtt,
            stream_bytes_per_s: self.stream_bytes_per_s,
            total_bytes_per_s: self.total_bytes_per_s,
            setup_s: rtt + self.setup_beyond_rtt_s.0,
        }
    }
}

/// One strategy at one RTT.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttStrategyPoint {
    pub strategy: Strategy,
    /// To the `ready` marker (s).
    pub cold_start: Estimate,
    /// To `exit` (s).
    pub completion: Estimate,
}

/// Every strategy at one RTT of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttPoint {
    pub rtt_s: Seconds,
    pub strategies: Vec<RttStrategyPoint>,
}

/// An RTT where the fastest strategy (lowest point estimate) changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttCrossover {
    pub rtt_s: Seconds,
    /// Fastest just below.
    pub from: Strategy,
    /// Fastest just above.
    pub to: Strategy,
}

/// The fastest strategy across the sweep for one objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttWinners {
    pub objective: Objective,
    /// Fastest at RTT 0.
    pub best_at_zero: Strategy,
    /// In increasing RTT; empty: `best_at_zero` is fastest up to the maximum.
    pub crossovers: Vec<RttCrossover>,
}

/// Predicted times against RTT and where the fastest strategy changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttSweep {
    pub path: SweptPath,
    pub max_rtt_s: Seconds,
    /// The strategies that compete for fastest: those the recommendation
    /// considers (lazy+prefetch is left out when the prediction's
    /// contention note leaves it out).
    pub candidates: Vec<Strategy>,
    /// [`GRID_POINTS`] RTTs from 0 to `max_rtt_s`.
    pub points: Vec<RttPoint>,
    /// Fastest start, then fastest completion.
    pub winners: Vec<RttWinners>,
    /// The same between eager and lazy alone, when lazy+prefetch is a
    /// candidate (prefetch needs the image rebuilt with a landmark: this is
    /// the answer for the image as it is); empty otherwise.
    #[serde(default)]
    pub without_prefetch: Vec<RttWinners>,
}

impl RttSweep {
    pub fn winners(&self, o: Objective) -> Option<&RttWinners> {
        self.winners.iter().find(|w| w.objective == o)
    }

    /// [`RttSweep::without_prefetch`] for `o`.
    pub fn winners_without_prefetch(&self, o: Objective) -> Option<&RttWinners> {
        self.without_prefetch.iter().find(|w| w.objective == o)
    }
}

/// One strategy's replay with its node-only estimates, priced on any RTT.
struct Priced<'a> {
    replay: &'a Replay,
    cold_start: Estimate,
    completion: Estimate,
}

impl Priced<'_> {
    fn at(&self, profile: &Profile, link: &Link) -> RttStrategyPoint {
        let net = |through_exit| self.replay.network_total_s(through_exit, profile, link);
        RttStrategyPoint {
            strategy: self.replay.strategy,
            cold_start: self.cold_start.shifted(net(false)),
            completion: self.completion.shifted(net(true)),
        }
    }

    /// The objective's point value on `link` (s).
    fn value(&self, o: Objective, profile: &Profile, link: &Link) -> f64 {
        match o {
            Objective::FastestStart => {
                self.cold_start.value + self.replay.network_total_s(false, profile, link)
            }
            _ => self.completion.value + self.replay.network_total_s(true, profile, link),
        }
    }
}

/// The sweep of `replays` (one per strategy) from RTT 0 to `max_rtt` on
/// `link` (its bandwidth and set-up; the default path without one).
pub fn sweep(
    replays: &[Replay],
    profile: &Profile,
    link: Option<&Link>,
    max_rtt: Seconds,
    candidates: &[Strategy],
) -> RttSweep {
    let path = SweptPath::of(link);
    let priced: Vec<Priced> = replays
        .iter()
        .map(|r| Priced {
            replay: r,
            cold_start: r.cold_start().estimate(profile),
            completion: r.completion().estimate(profile),
        })
        .collect();
    let grid = grid(max_rtt.0, GRID_POINTS);
    let points = grid
        .iter()
        .map(|&rtt| RttPoint {
            rtt_s: Seconds(rtt),
            strategies: priced
                .iter()
                .map(|p| p.at(profile, &path.at(rtt)))
                .collect(),
        })
        .collect();
    let contenders: Vec<&Priced> = priced
        .iter()
        .filter(|p| candidates.contains(&p.replay.strategy))
        .collect();
    let winners = winners_among(&contenders, profile, &path, &grid);
    let plain: Vec<&Priced> = contenders
        .iter()
        .copied()
        .filter(|p| p.replay.strategy != Strategy::LazyPrefetch)
        .collect();
    let without_prefetch = if plain.len() < contenders.len() {
        winners_among(&plain, profile, &path, &grid)
    } else {
        Vec::new()
    };
    RttSweep {
        path,
        max_rtt_s: max_rtt,
        candidates: contenders.iter().map(|p| p.replay.strategy).collect(),
        points,
        winners,
        without_prefetch,
    }
}

/// The fastest of `contenders` at RTT 0 and where it changes, per objective
/// (none when there is no contender).
fn winners_among(
    contenders: &[&Priced],
    profile: &Profile,
    path: &SweptPath,
    grid: &[f64],
) -> Vec<RttWinners> {
    if contenders.is_empty() {
        return Vec::new();
    }
    [Objective::FastestStart, Objective::FastestCompletion]
        .into_iter()
        .map(|o| {
            let best = |rtt: f64| fastest(contenders, |p| p.value(o, profile, &path.at(rtt)));
            RttWinners {
                objective: o,
                best_at_zero: best(0.0),
                crossovers: changes(grid, best),
            }
        })
        .collect()
}

/// `n` evenly spaced RTTs from 0 to `max` (s), both included.
fn grid(max: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n).map(|i| max * i as f64 / (n - 1) as f64).collect()
}

/// The strategy of lowest `value`; on a tie (within [`TIE_S`]) the first
/// of `contenders`. `contenders` is not empty.
fn fastest(contenders: &[&Priced], value: impl Fn(&Priced) -> f64) -> Strategy {
    let mut best = (contenders[0].replay.strategy, value(contenders[0]));
    for p in &contenders[1..] {
        let v = value(p);
        if v < best.1 - TIE_S {
            best = (p.replay.strategy, v);
        }
    }
    best.0
}

/// Every RTT of `grid`'s range where `best` changes: each grid interval
/// whose ends differ is bisected, change after change, until the fastest
/// strategy is the one at its right end.
fn changes(grid: &[f64], best: impl Fn(f64) -> Strategy) -> Vec<RttCrossover> {
    let mut out = Vec::new();
    let Some(&first) = grid.first() else {
        return out;
    };
    let mut current = best(first);
    for w in grid.windows(2) {
        let (mut lo, hi) = (w[0], w[1]);
        for _ in 0..CHANGES_PER_INTERVAL {
            if best(hi) == current {
                break;
            }
            let (below, above) = bisect(lo, hi, |x| best(x) == current);
            let to = best(above);
            out.push(RttCrossover {
                rtt_s: Seconds(0.5 * (below + above)),
                from: current,
                to,
            });
            current = to;
            lo = above;
        }
    }
    out
}

/// Narrows `[lo, hi]`, where `holds(lo)` and not `holds(hi)`, to
/// [`RESOLUTION_S`]: the last point found where it holds and the first
/// where it does not.
fn bisect(mut lo: f64, mut hi: f64, holds: impl Fn(f64) -> bool) -> (f64, f64) {
    while hi - lo > RESOLUTION_S {
        let mid = 0.5 * (lo + hi);
        if holds(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{get, image, profile, read_all};
    use super::super::workload::Workload;
    use super::super::{PredictOptions, Prediction, predict};
    use super::*;
    use crate::estargz::table::ImageFiles;

    fn options(link: Option<Link>) -> PredictOptions {
        PredictOptions {
            background: false,
            link,
            ..Default::default()
        }
    }

    /// The completion of `s` at grid point `i`.
    fn completion_at(p: &Prediction, i: usize, s: Strategy) -> f64 {
        p.rtt_sweep.points[i]
            .strategies
            .iter()
            .find(|x| x.strategy == s)
            .unwrap()
            .completion
            .value
    }

    /// A crossover's two strategies priced on the path at `rtt`: completion (s).
    fn completions_at(p: &Prediction, img: &ImageFiles, w: &Workload, rtt: f64) -> (f64, f64) {
        let at = predict(img, w, &profile(), &options(Some(p.rtt_sweep.path.at(rtt))));
        let c = |s| get(&at, s).completion.value;
        (c(Strategy::Lazy), c(Strategy::Eager))
    }

    #[test]
    fn lazy_finishes_first_near_the_registry_and_eager_far_from_it() {
        // 10 of 100 files of 1 MB read, each an on-demand request: lazy
        // skips 90 % of the image but pays a round trip per file.
        let img = image(100, 1_000_000, 600_000);
        let w = read_all(0..10, 0, 0);
        let p = predict(&img, &w, &profile(), &options(None));
        let sweep = &p.rtt_sweep;
        assert_eq!(sweep.path.bandwidth_from, BandwidthFrom::Default);
        assert_eq!(sweep.points.len(), GRID_POINTS);
        assert_eq!(sweep.points[0].rtt_s, Seconds::ZERO);
        assert_eq!(sweep.points[GRID_POINTS - 1].rtt_s, DEFAULT_MAX_RTT);
        let done = sweep.winners(Objective::FastestCompletion).unwrap();
        // Nothing to prefetch: lazy+prefetch ties with lazy, which keeps the lead.
        assert_eq!(done.best_at_zero, Strategy::Lazy);
        assert_eq!(done.crossovers.len(), 1, "{done:?}");
        let x = done.crossovers[0];
        assert_eq!((x.from, x.to), (Strategy::Lazy, Strategy::Eager));
        // Between the grid neighbours where the order changes …
        let i = sweep
            .points
            .iter()
            .position(|pt| pt.rtt_s > x.rtt_s)
            .unwrap();
        assert!(i > 0 && i < GRID_POINTS, "{i}");
        let lazy_minus_eager =
            |i| completion_at(&p, i, Strategy::Lazy) - completion_at(&p, i, Strategy::Eager);
        assert!(lazy_minus_eager(i - 1) < 0.0 && lazy_minus_eager(i) > 0.0);
        // … where the two finish together (to the bisection's microsecond
        // times their difference in round trips, well under 1 ms).
        let (l, e) = completions_at(&p, &img, &w, x.rtt_s.0);
        assert!((l - e).abs() < 1e-3, "lazy {l} eager {e} at {:?}", x.rtt_s);
        let (l, e) = completions_at(&p, &img, &w, x.rtt_s.0 - 1e-4);
        assert!(l < e);
        let (l, e) = completions_at(&p, &img, &w, x.rtt_s.0 + 1e-4);
        assert!(l > e);
        // Between eager and lazy alone (the image as it is, no prefetch
        // landmark): the same change, and lazy+prefetch never named.
        let plain = sweep
            .winners_without_prefetch(Objective::FastestCompletion)
            .unwrap();
        assert_eq!(plain.crossovers, done.crossovers);
        for w in &sweep.without_prefetch {
            assert_ne!(w.best_at_zero, Strategy::LazyPrefetch, "{w:?}");
            assert!(w.crossovers.iter().all(|c| c.to != Strategy::LazyPrefetch));
        }
    }

    #[test]
    fn a_strategy_fastest_at_every_rtt_has_no_crossover() {
        // The whole image read: eager's one download beats lazy's 100 requests at any RTT.
        let img = image(100, 1_000_000, 600_000);
        let w = read_all(0..100, 0, 0);
        let p = predict(&img, &w, &profile(), &options(None));
        let done = p.rtt_sweep.winners(Objective::FastestCompletion).unwrap();
        assert_eq!(done.best_at_zero, Strategy::Eager);
        assert!(done.crossovers.is_empty(), "{done:?}");
        assert!(completion_at(&p, 0, Strategy::Eager) < completion_at(&p, 0, Strategy::Lazy));
    }

    #[test]
    fn the_grid_point_at_the_paths_rtt_is_the_prediction_on_that_path() {
        let img = image(100, 1_000_000, 600_000);
        let w = read_all(0..30, 10, 1_000_000);
        let link = Link {
            rtt_s: 0.025,
            stream_bytes_per_s: 50e6,
            total_bytes_per_s: 80e6,
            setup_s: 0.045,
        };
        let p = predict(&img, &w, &profile(), &options(Some(link)));
        let sweep = &p.rtt_sweep;
        assert_eq!(sweep.path.bandwidth_from, BandwidthFrom::Path);
        assert!((sweep.path.setup_beyond_rtt_s.0 - 0.020).abs() < 1e-12);
        // 25 ms is the 11th of 41 points from 0 to 100 ms.
        let pt = &sweep.points[10];
        assert!((pt.rtt_s.0 - 0.025).abs() < 1e-12);
        for s in &p.strategies {
            let at = pt
                .strategies
                .iter()
                .find(|x| x.strategy == s.strategy)
                .unwrap();
            for (a, b) in [(at.cold_start, s.cold_start), (at.completion, s.completion)] {
                assert!(
                    (a.value - b.value).abs() < 1e-9,
                    "{:?}: {a:?} vs {b:?}",
                    s.strategy
                );
                assert!((a.low - b.low).abs() < 1e-9 && (a.high - b.high).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn the_sweep_reaches_the_asked_maximum() {
        let img = image(10, 1_000_000, 600_000);
        let w = read_all(0..3, 1, 0);
        let opts = PredictOptions {
            max_rtt: Seconds(0.4),
            ..options(None)
        };
        let p = predict(&img, &w, &profile(), &opts);
        assert_eq!(p.rtt_sweep.max_rtt_s, Seconds(0.4));
        assert_eq!(p.rtt_sweep.points.last().unwrap().rtt_s, Seconds(0.4));
        assert!((p.rtt_sweep.points[1].rtt_s.0 - 0.01).abs() < 1e-12);
    }

    #[test]
    fn two_changes_inside_one_grid_interval_are_both_found() {
        use Strategy::*;
        let best = |x: f64| {
            if x < 0.31 {
                Lazy
            } else if x < 0.32 {
                LazyPrefetch
            } else {
                Eager
            }
        };
        let found = changes(&[0.0, 0.5, 1.0], best);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].from, found[0].to), (Lazy, LazyPrefetch));
        assert_eq!((found[1].from, found[1].to), (LazyPrefetch, Eager));
        assert!((found[0].rtt_s.0 - 0.31).abs() < 2.0 * RESOLUTION_S);
        assert!((found[1].rtt_s.0 - 0.32).abs() < 2.0 * RESOLUTION_S);
        // A change on a grid point is found once, in the interval it ends.
        let at_point = changes(&[0.0, 0.5, 1.0], |x| if x < 0.5 { Lazy } else { Eager });
        assert_eq!(at_point.len(), 1, "{at_point:?}");
        assert!((at_point[0].rtt_s.0 - 0.5).abs() < 2.0 * RESOLUTION_S);
        assert!(changes(&[0.0, 1.0], |_| Eager).is_empty());
    }

    #[test]
    fn a_link_without_a_set_up_beyond_its_handshake_keeps_set_up_equal_to_rtt() {
        let p = SweptPath::of(Some(&Link::new(0.020, 62.5e6)));
        assert_eq!(p.setup_beyond_rtt_s, Seconds::ZERO);
        assert_eq!(p.at(0.05), Link::new(0.05, 62.5e6));
        let d = SweptPath::of(None);
        assert_eq!(d.at(0.0).total_bytes_per_s, DEFAULT_BYTES_PER_S);
    }
}
