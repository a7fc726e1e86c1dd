//! The fleet's simulation: nodes starting by a rollout shape, each running
//! the phases of one node's prediction, their transfers sharing the
//! registry's egress.
//!
//! A fluid model (processor sharing, as in flow-level network models): at
//! every moment the registry's egress is divided among the transfers in
//! flight by max-min fairness, each capped at the rate its node reaches on a
//! path of its own (the single-node prediction's: one stream, the layers at
//! once, or the node's receive work) and at `--node-bandwidth`. A phase is
//! its transfer, then its fixed part (round trips and the node's work,
//! which a busy registry does not slow). A request-rate limit slows every
//! phase that makes requests by the same factor, except its quiet part (the
//! container's start and the workload's compute, which make none): requests
//! queue at the registry; a registry that answers 429 and clients that back
//! off are not modelled. Nodes that start at the same moment run in lockstep, so they
//! are simulated as one cohort: 10,000 nodes in waves are a handful of
//! cohorts.
use serde::{Deserialize, Serialize};

/// One phase of a node's run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Phase {
    /// Bytes from the registry.
    pub bytes: f64,
    /// The fastest the node takes them (bytes/s; infinite for none).
    pub cap: f64,
    /// Seconds of round trips and node work after the transfer.
    pub fixed_s: f64,
    /// Requests to the registry.
    pub requests: f64,
    /// Of `fixed_s`, seconds that make no requests (the container's start,
    /// the workload's compute), counted at its end: a request-rate limit
    /// does not slow them, and the phase's requests are spread over the rest.
    pub quiet_s: f64,
}

impl Phase {
    /// Seconds on a registry of its own.
    pub fn alone_s(&self) -> f64 {
        self.transfer_alone_s() + self.fixed_s
    }

    fn transfer_alone_s(&self) -> f64 {
        if self.bytes > 0.0 {
            self.bytes / self.cap
        } else {
            0.0
        }
    }

    /// Requests per second when running alone, over the phase's time that
    /// makes them.
    fn request_rate(&self) -> f64 {
        let t = self.alone_s() - self.quiet();
        if t > EPS { self.requests / t } else { 0.0 }
    }

    fn quiet(&self) -> f64 {
        self.quiet_s.clamp(0.0, self.fixed_s)
    }

    /// Whether `left` seconds of the fixed part are in its quiet end.
    fn in_quiet(&self, left: f64) -> bool {
        left <= self.quiet() + EPS
    }
}

/// One node's run: to ready, to done, and the background fetch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeRun {
    pub ready: Phase,
    pub done: Phase,
    pub background: Option<Background>,
}

/// The stargz snapshotter's background fetch: it starts a while after the
/// workload's last read, so after the node's ready or done moment — both
/// late when the registry is busy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Background {
    /// `after_s` counts from the node's ready moment (`true`) or its done moment.
    pub after_ready: bool,
    pub after_s: f64,
    pub phase: Phase,
}

/// How nodes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "n")]
pub enum Rollout {
    /// In K waves of equal size; a wave starts when every pod of the one
    /// before is ready.
    Waves(u64),
    /// At most N pods started and not yet ready; each ready pod lets the
    /// next one start (a Deployment's maxSurge on a fresh rollout).
    MaxSurge(u64),
}

/// The shared registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Registry {
    /// Egress (bytes/s).
    pub egress: f64,
    /// Requests per second it serves, if limited.
    pub rps: Option<f64>,
}

/// What held the fleet back, moment by moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Constraint {
    /// The registry's egress is full and some transfer wants more.
    RegistryEgress,
    /// The registry's request-rate limit slows the phases.
    RequestRate,
    /// Transfers run at the node's own rate: its path, its link, its receive work.
    NodeLink,
    /// No transfer: round trips and node work (unpacking, FUSE, the workload).
    Node,
}

/// What one simulation measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Moments pods became ready / done / had their image whole, with how many.
    pub ready: Vec<(f64, u64)>,
    pub done: Vec<(f64, u64)>,
    pub whole: Vec<(f64, u64)>,
    pub bytes: f64,
    pub requests: f64,
    pub peak_egress: f64,
    pub peak_rps: f64,
    /// Seconds each constraint held while some pod was not done, with the
    /// first and last moment.
    pub binding: Vec<(Constraint, f64, f64, f64)>,
}

/// Where a cohort's track is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Until the main track's mark `anchor`, then a wait.
    Held(f64),
    Waiting(f64),
    Transfer(usize, f64),
    Fixed(usize, f64),
    Finished,
}

#[derive(Debug, Clone)]
struct Track {
    phases: Vec<Phase>,
    step: Step,
    /// Marks: the event when phase i ends.
    marks: Vec<Mark>,
    /// For a held track: the mark that releases it.
    anchor: Option<Mark>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Ready,
    Done,
    Whole,
}

impl Track {
    fn new(phases: Vec<Phase>, marks: Vec<Mark>) -> Self {
        let mut t = Track {
            phases,
            step: Step::Finished,
            marks,
            anchor: None,
        };
        t.enter(0);
        t
    }

    /// A track that waits for `anchor`, then `delay` seconds.
    fn held(phase: Phase, mark: Mark, anchor: Mark, delay: f64) -> Self {
        Track {
            phases: vec![phase],
            step: Step::Held(delay.max(0.0)),
            marks: vec![mark],
            anchor: Some(anchor),
        }
    }

    /// Begin phase `i` (or finish).
    fn enter(&mut self, i: usize) {
        self.step = match self.phases.get(i) {
            None => Step::Finished,
            Some(p) if p.bytes > 0.0 => Step::Transfer(i, p.bytes),
            Some(p) => Step::Fixed(i, p.fixed_s),
        };
    }

    fn phase(&self) -> Option<&Phase> {
        match self.step {
            Step::Transfer(i, _) | Step::Fixed(i, _) => self.phases.get(i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Cohort {
    nodes: u64,
    tracks: Vec<Track>,
    wave: usize,
}

/// Simulate `nodes` nodes each running `run`, started by `rollout`,
/// sharing `registry`.
pub fn simulate(run: &NodeRun, nodes: u64, rollout: Rollout, registry: Registry) -> Outcome {
    Sim::new(run, nodes, rollout, registry).run()
}

struct Sim<'a> {
    run: &'a NodeRun,
    nodes: u64,
    rollout: Rollout,
    registry: Registry,
    started: u64,
    done: u64,
    cohorts: Vec<Cohort>,
    wave_left: Vec<u64>,
    t: f64,
    out: Outcome,
    binding: std::collections::BTreeMap<Constraint, (f64, f64, f64)>,
}

/// Below this, a remaining amount is zero (floating-point dust).
const EPS: f64 = 1e-9;

impl<'a> Sim<'a> {
    fn new(run: &'a NodeRun, nodes: u64, rollout: Rollout, registry: Registry) -> Self {
        Sim {
            run,
            nodes,
            rollout,
            registry,
            started: 0,
            done: 0,
            cohorts: Vec::new(),
            wave_left: Vec::new(),
            t: 0.0,
            out: Outcome::default(),
            binding: Default::default(),
        }
    }

    fn wave_size(&self) -> u64 {
        match self.rollout {
            Rollout::Waves(k) => self.nodes.div_ceil(k.max(1)),
            Rollout::MaxSurge(s) => s.max(1),
        }
    }

    /// Start up to `n` more nodes now, as one cohort.
    fn start(&mut self, n: u64) {
        let n = n.min(self.nodes - self.started);
        if n == 0 {
            return;
        }
        let mut tracks = vec![Track::new(
            vec![self.run.ready, self.run.done],
            vec![Mark::Ready, Mark::Done],
        )];
        if let Some(bg) = self.run.background {
            let anchor = if bg.after_ready {
                Mark::Ready
            } else {
                Mark::Done
            };
            tracks.push(Track::held(bg.phase, Mark::Whole, anchor, bg.after_s));
        }
        self.started += n;
        self.wave_left.push(n);
        let wave = self.wave_left.len() - 1;
        self.cohorts.push(Cohort {
            nodes: n,
            tracks,
            wave,
        });
    }

    fn run(mut self) -> Outcome {
        let first = self.wave_size();
        self.start(first);
        self.settle();
        while self
            .cohorts
            .iter()
            .any(|c| c.tracks.iter().any(|t| t.step != Step::Finished))
        {
            let rates = self.rates();
            let dt = self.next_event(&rates);
            if !dt.is_finite() {
                break; // nothing can progress (a phase with zero capacity): a bug guard
            }
            self.account(&rates, dt);
            self.advance(&rates, dt);
            self.t += dt;
            self.settle();
        }
        self.out.binding = self
            .binding
            .iter()
            .map(|(c, (s, from, to))| (*c, *s, *from, *to))
            .collect();
        self.out
    }

    /// Move finished steps on, record marks, start nodes the rollout lets start.
    fn settle(&mut self) {
        loop {
            let mut changed = false;
            let mut ready_now = Vec::new();
            for ci in 0..self.cohorts.len() {
                let (moved, fired) = self.step_cohort(ci);
                changed |= moved;
                let (nodes, wave) = (self.cohorts[ci].nodes, self.cohorts[ci].wave);
                for mark in fired {
                    match mark {
                        Mark::Ready => ready_now.push((nodes, wave)),
                        Mark::Done => {
                            self.out.done.push((self.t, nodes));
                            self.done += nodes;
                        }
                        Mark::Whole => self.out.whole.push((self.t, nodes)),
                    }
                }
            }
            for (nodes, wave) in ready_now {
                self.out.ready.push((self.t, nodes));
                self.wave_left[wave] -= nodes;
                self.release(nodes, wave);
            }
            self.cohorts
                .retain(|c| c.tracks.iter().any(|t| t.step != Step::Finished));
            if !changed {
                break;
            }
        }
    }

    /// One cohort's finished steps moved on; the marks they reached, and
    /// held tracks released by them.
    fn step_cohort(&mut self, ci: usize) -> (bool, Vec<Mark>) {
        let mut fired = Vec::new();
        let mut changed = false;
        let tracks = &mut self.cohorts[ci].tracks;
        for tr in tracks.iter_mut() {
            match tr.step {
                Step::Waiting(w) if w <= EPS => tr.enter(0),
                Step::Transfer(i, b) if b <= EPS => tr.step = Step::Fixed(i, tr.phases[i].fixed_s),
                Step::Fixed(i, f) if f <= EPS => {
                    fired.push(tr.marks[i]);
                    tr.enter(i + 1);
                }
                _ => continue,
            }
            changed = true;
        }
        for tr in tracks.iter_mut() {
            if let (Step::Held(d), Some(a)) = (tr.step, tr.anchor)
                && fired.contains(&a)
            {
                tr.step = Step::Waiting(d);
                changed = true;
            }
        }
        (changed, fired)
    }

    /// `nodes` of `wave` just became ready: start whom the rollout allows.
    fn release(&mut self, nodes: u64, wave: usize) {
        match self.rollout {
            Rollout::MaxSurge(_) => self.start(nodes),
            Rollout::Waves(_) => {
                if self.wave_left[wave] == 0 && wave + 1 == self.wave_left.len() {
                    let n = self.wave_size();
                    self.start(n);
                }
            }
        }
    }

    /// Each track's progress rate: bytes/s for a transfer, seconds/s for a
    /// fixed part or a wait; and the request factor.
    fn rates(&self) -> Rates {
        let unlimited = self.shared(1.0);
        let demand = self.request_rate(&unlimited);
        match self.registry.rps {
            Some(limit) if demand > limit => self.within(limit, demand),
            _ => unlimited,
        }
    }

    /// The rates with the largest factor whose requests stay within
    /// `limit`. Not `limit / demand`: a transfer held below its cap by the
    /// egress share slows only once its factored cap falls below the share,
    /// and then the others' share grows. The fleet's request rate only grows
    /// with the factor (piecewise linearly), so regula falsi (Illinois) finds
    /// it, its first step `limit / demand`: exact when nothing else holds
    /// the requests back.
    fn within(&self, limit: f64, demand: f64) -> Rates {
        let rate = |f: f64| self.request_rate(&self.shared(f)) - limit;
        let (mut lo, mut r_lo) = (0.0, -limit);
        let (mut hi, mut r_hi) = (1.0, demand - limit);
        let mut side = 0;
        for _ in 0..64 {
            let f = (lo - r_lo * (hi - lo) / (r_hi - r_lo)).clamp(lo, hi);
            let r = rate(f);
            if r <= 0.0 {
                (lo, r_lo) = (f, r);
                if r >= -1e-6 * limit {
                    break;
                }
                if side == -1 {
                    r_hi *= 0.5;
                }
                side = -1;
            } else {
                (hi, r_hi) = (f, r);
                if side == 1 {
                    r_lo *= 0.5;
                }
                side = 1;
            }
            if hi - lo < 1e-12 {
                break;
            }
        }
        self.shared(lo)
    }

    /// The egress share with every request-making phase slowed by `factor`.
    fn shared(&self, factor: f64) -> Rates {
        let mut flows: Vec<(f64, f64)> = self
            .tracks()
            .filter_map(|(n, tr)| match (tr.step, tr.phase()) {
                (Step::Transfer(..), Some(p)) => Some((n as f64, p.cap * req_factor(p, factor))),
                _ => None,
            })
            .collect();
        let share = water_fill(&mut flows, self.registry.egress);
        Rates { factor, share }
    }

    /// Requests per second the fleet makes at `r`: each phase's requests
    /// spread evenly over its time alone, at the pace it now progresses.
    fn request_rate(&self, r: &Rates) -> f64 {
        self.tracks()
            .filter_map(|(n, tr)| {
                let p = tr.phase()?;
                Some(n as f64 * p.request_rate() * self.pace(tr, r))
            })
            .sum()
    }

    /// How fast a track moves through its phase's time alone (1: as alone).
    fn pace(&self, tr: &Track, r: &Rates) -> f64 {
        match (tr.step, tr.phase()) {
            (Step::Transfer(..), Some(p)) => self.speed(tr, r) / p.cap,
            (Step::Fixed(_, f), Some(p)) if !p.in_quiet(f) => self.speed(tr, r),
            _ => 0.0,
        }
    }

    fn tracks(&self) -> impl Iterator<Item = (u64, &Track)> {
        self.cohorts
            .iter()
            .flat_map(|c| c.tracks.iter().map(move |t| (c.nodes, t)))
    }

    fn speed(&self, tr: &Track, r: &Rates) -> f64 {
        match (tr.step, tr.phase()) {
            (Step::Waiting(_), _) => 1.0,
            (Step::Held(_), _) => 0.0,
            (Step::Transfer(..), Some(p)) => (p.cap * req_factor(p, r.factor)).min(r.share),
            (Step::Fixed(_, f), Some(p)) if p.in_quiet(f) => 1.0,
            (Step::Fixed(..), Some(p)) => req_factor(p, r.factor),
            _ => 0.0,
        }
    }

    fn next_event(&self, r: &Rates) -> f64 {
        self.tracks()
            .filter_map(|(_, tr)| {
                let left = match (tr.step, tr.phase()) {
                    (Step::Waiting(w), _) => w,
                    (Step::Transfer(_, b), _) => b,
                    // The quiet end runs at another speed: stop where it begins.
                    (Step::Fixed(_, f), Some(p)) if !p.in_quiet(f) => f - p.quiet(),
                    (Step::Fixed(_, f), _) => f,
                    (Step::Held(_) | Step::Finished, _) => return None,
                };
                Some(left / self.speed(tr, r))
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn advance(&mut self, r: &Rates, dt: f64) {
        let speeds: Vec<Vec<f64>> = self
            .cohorts
            .iter()
            .map(|c| c.tracks.iter().map(|t| self.speed(t, r)).collect())
            .collect();
        for (c, sp) in self.cohorts.iter_mut().zip(speeds) {
            for (tr, s) in c.tracks.iter_mut().zip(sp) {
                let d = s * dt;
                tr.step = match tr.step {
                    Step::Waiting(w) => Step::Waiting(w - d),
                    Step::Transfer(i, b) => Step::Transfer(i, b - d),
                    Step::Fixed(i, f) => Step::Fixed(i, f - d),
                    held @ (Step::Held(_) | Step::Finished) => held,
                };
            }
        }
    }

    /// Bytes, requests, peaks and the binding constraint over `dt`.
    fn account(&mut self, r: &Rates, dt: f64) {
        let mut egress = 0.0;
        let rps = self.request_rate(r);
        let mut capped = false;
        let mut transfers = false;
        for (n, tr) in self.tracks() {
            let Some(p) = tr.phase() else { continue };
            let s = self.speed(tr, r);
            if let Step::Transfer(..) = tr.step {
                transfers = true;
                egress += n as f64 * s;
                capped |= s + EPS < p.cap * req_factor(p, r.factor);
            }
        }
        self.out.bytes += egress * dt;
        self.out.requests += rps * dt;
        self.out.peak_egress = self.out.peak_egress.max(egress);
        self.out.peak_rps = self.out.peak_rps.max(rps);
        if self.done < self.nodes && dt > 0.0 {
            let c = if capped {
                Constraint::RegistryEgress
            } else if r.factor < 1.0 {
                Constraint::RequestRate
            } else if transfers {
                Constraint::NodeLink
            } else {
                Constraint::Node
            };
            let e = self.binding.entry(c).or_insert((0.0, self.t, self.t));
            e.0 += dt;
            e.2 = self.t + dt;
        }
    }
}

struct Rates {
    factor: f64,
    /// The egress share of a transfer not held below it by its own cap.
    share: f64,
}

/// A phase that makes requests is slowed by the request-rate factor.
fn req_factor(p: &Phase, factor: f64) -> f64 {
    if p.requests > 0.0 { factor } else { 1.0 }
}

/// Max-min fair share of `capacity` among `flows` (count, cap): the level
/// every flow capped above it gets.
fn water_fill(flows: &mut [(f64, f64)], capacity: f64) -> f64 {
    flows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut left = capacity;
    let mut count: f64 = flows.iter().map(|f| f.0).sum();
    for &(n, cap) in flows.iter() {
        if count <= 0.0 {
            break;
        }
        let level = left / count;
        if cap > level {
            return level;
        }
        left -= n * cap;
        count -= n;
    }
    f64::INFINITY
}

/// The moment the `k`-th pod reached a mark (`marks` in time order).
pub fn moment_of(marks: &[(f64, u64)], k: u64) -> Option<f64> {
    let mut seen = 0;
    for &(t, n) in marks {
        seen += n;
        if seen >= k {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    fn eager(bytes: f64, cap: f64, unpack: f64) -> NodeRun {
        NodeRun {
            ready: Phase {
                bytes,
                cap,
                fixed_s: unpack,
                requests: 4.0,
                quiet_s: 0.0,
            },
            done: Phase {
                fixed_s: 1.0,
                ..Default::default()
            },
            background: None,
        }
    }

    fn reg(egress: f64) -> Registry {
        Registry { egress, rps: None }
    }

    #[test]
    fn one_node_on_a_big_registry_takes_its_own_time() {
        let run = eager(100.0 * MB, 50.0 * MB, 3.0);
        let o = simulate(&run, 1, Rollout::MaxSurge(1), reg(1e12));
        assert!(
            (moment_of(&o.ready, 1).unwrap() - 5.0).abs() < 1e-6,
            "{o:?}"
        );
        assert!((moment_of(&o.done, 1).unwrap() - 6.0).abs() < 1e-6);
        assert!((o.bytes - 100.0 * MB).abs() < 1.0);
        assert!((o.requests - 4.0).abs() < 1e-6, "{}", o.requests);
        assert_eq!(o.binding[0].0, Constraint::NodeLink);
    }

    #[test]
    fn nodes_at_once_share_the_egress() {
        // 4 nodes × 100 MB at 50 MB/s each, 100 MB/s of egress: 4 s of
        // transfer for all, then 3 s of unpack.
        let run = eager(100.0 * MB, 50.0 * MB, 3.0);
        let o = simulate(&run, 4, Rollout::MaxSurge(4), reg(100.0 * MB));
        assert!(
            (moment_of(&o.ready, 4).unwrap() - 7.0).abs() < 1e-6,
            "{o:?}"
        );
        assert!((o.peak_egress - 100.0 * MB).abs() < 1.0);
        assert!((o.bytes - 400.0 * MB).abs() < 10.0);
        let egress = o.binding.iter().find(|b| b.0 == Constraint::RegistryEgress);
        assert!((egress.unwrap().1 - 4.0).abs() < 1e-6, "{:?}", o.binding);
    }

    #[test]
    fn requests_are_counted_once_however_slow_the_registry() {
        // 10 nodes on a registry a tenth of one node's rate: each phase
        // takes 10× longer, its 4 requests are still 4.
        let run = eager(100.0 * MB, 100.0 * MB, 1.0);
        let o = simulate(&run, 10, Rollout::MaxSurge(10), reg(100.0 * MB));
        assert!((o.requests - 40.0).abs() < 1e-6, "{}", o.requests);
        assert!(o.peak_rps < 10.0 * 4.0 / 2.0 + 1e-9, "{}", o.peak_rps);
    }

    #[test]
    fn waves_start_when_the_wave_before_is_ready() {
        let run = eager(100.0 * MB, 100.0 * MB, 1.0);
        let o = simulate(&run, 4, Rollout::Waves(2), reg(1e12));
        // Each wave: 1 s transfer + 1 s unpack.
        assert_eq!(o.ready.len(), 2);
        assert!((o.ready[0].0 - 2.0).abs() < 1e-6 && (o.ready[1].0 - 4.0).abs() < 1e-6);
        assert_eq!(o.ready[1].1, 2);
    }

    #[test]
    fn max_surge_lets_one_start_per_ready_pod() {
        let run = eager(100.0 * MB, 100.0 * MB, 1.0);
        let o = simulate(&run, 3, Rollout::MaxSurge(1), reg(1e12));
        assert_eq!(moment_of(&o.ready, 3), Some(6.0));
    }

    #[test]
    fn a_request_limit_slows_phases_that_make_requests() {
        // 10 nodes × 100 requests over 1 s alone = 1000 rps asked, 100 allowed.
        let run = NodeRun {
            ready: Phase {
                fixed_s: 1.0,
                requests: 100.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let o = simulate(
            &run,
            10,
            Rollout::MaxSurge(10),
            Registry {
                egress: 1e12,
                rps: Some(100.0),
            },
        );
        assert!((moment_of(&o.ready, 10).unwrap() - 10.0).abs() < 1e-6);
        assert!((o.peak_rps - 100.0).abs() < 1e-6);
        assert_eq!(o.binding[0].0, Constraint::RequestRate);
    }

    #[test]
    fn a_request_limit_does_not_slow_the_quiet_part_of_a_phase() {
        // 10 nodes × 100 requests in the first second of a 2 s phase whose
        // second second makes none: 1000 rps asked while they are made, 100
        // allowed: 10 s of requests, then the quiet second.
        let run = NodeRun {
            ready: Phase {
                fixed_s: 2.0,
                requests: 100.0,
                quiet_s: 1.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let reg = Registry {
            egress: 1e12,
            rps: Some(100.0),
        };
        let o = simulate(&run, 10, Rollout::MaxSurge(10), reg);
        assert!(
            (moment_of(&o.ready, 10).unwrap() - 11.0).abs() < 1e-6,
            "{:?}",
            o.ready
        );
        assert!((o.requests - 1000.0).abs() < 1e-6, "{}", o.requests);
        assert!(o.peak_rps <= 100.0 + 1e-6, "{}", o.peak_rps);
    }

    #[test]
    fn a_request_limit_holds_when_the_egress_binds_too() {
        // 4 nodes, each 100 MB in 100 requests at 100 MB/s alone, on 100
        // MB/s of egress: 4 s sharing, 100 rps. Limited to 50 rps, the
        // requests take 8 s; the rate never goes above the limit.
        let run = NodeRun {
            ready: Phase {
                bytes: 100.0 * MB,
                cap: 100.0 * MB,
                requests: 100.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let limited = |rps| {
            simulate(
                &run,
                4,
                Rollout::MaxSurge(4),
                Registry {
                    egress: 100.0 * MB,
                    rps,
                },
            )
        };
        let free = limited(None);
        assert!((moment_of(&free.ready, 4).unwrap() - 4.0).abs() < 1e-6);
        let o = limited(Some(50.0));
        assert!(o.peak_rps <= 50.0 + 1e-6, "{}", o.peak_rps);
        assert!(
            (moment_of(&o.ready, 4).unwrap() - 8.0).abs() < 1e-3,
            "{:?}",
            o.ready
        );
        // A limit above what the shared egress lets the nodes ask changes nothing.
        let o = limited(Some(150.0));
        assert!((moment_of(&o.ready, 4).unwrap() - 4.0).abs() < 1e-6);
    }

    #[test]
    fn background_fetch_competes_with_the_next_wave() {
        // Wave 1 becomes ready at 1 s and background-fetches 100 MB from
        // 1 s; wave 2's 100 MB shares the 100 MB/s egress with it.
        let run = NodeRun {
            ready: Phase {
                bytes: 1.0 * MB,
                cap: 100.0 * MB,
                fixed_s: 0.99,
                requests: 1.0,
                quiet_s: 0.0,
            },
            done: Phase::default(),
            background: Some(Background {
                after_ready: true,
                after_s: 0.0,
                phase: Phase {
                    bytes: 100.0 * MB,
                    cap: 100.0 * MB,
                    fixed_s: 0.0,
                    requests: 10.0,
                    quiet_s: 0.0,
                },
            }),
        };
        let alone = simulate(&run, 1, Rollout::Waves(1), reg(100.0 * MB));
        assert!((moment_of(&alone.whole, 1).unwrap() - 2.0).abs() < 1e-6);
        let two = simulate(&run, 2, Rollout::Waves(2), reg(100.0 * MB));
        // Alone, the second node would be ready at 2.0 s: its 1 MB now
        // shares the egress with the first node's background fetch.
        let second_ready = moment_of(&two.ready, 2).unwrap();
        assert!((second_ready - 2.01).abs() < 1e-6, "{two:?}");
        assert!((two.bytes - 202.0 * MB).abs() < 10.0);
    }

    #[test]
    fn ten_thousand_nodes_in_waves_are_few_cohorts() {
        let run = eager(1e9, 1e9, 10.0);
        let o = simulate(&run, 10_000, Rollout::Waves(20), reg(1.25e9));
        assert!(moment_of(&o.ready, 10_000).is_some());
        assert!((o.bytes - 1e13).abs() / 1e13 < 1e-6);
    }
}
