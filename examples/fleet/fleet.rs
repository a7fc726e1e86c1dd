//! A fleet round (issue 16 §3): N independent nodes pull one image through
//! one shared registry link at the same moment, and each runs the workload.
//!
//! Every node is made cold first (the reset command: `lab/lab nodes reset`
//! restarts each node's containerd and stargz snapshotter from empty state),
//! the page cache is dropped, then one thread per node waits at a barrier and
//! all start together on one clock: eager is `ctr images pull` + `ctr run`
//! (overlayfs), lazy `ctr-remote images rpull` + `ctr run --snapshotter
//! stargz`, as containerd's own clients make them ([`truth::Clients::run_from`],
//! the validation's ground truth for one node). Per node: the time from the
//! common start to the pull's end, the workload's `READY` line and its last
//! line (`DONE`, appended to the command).
//!
//! The registry's side: bytes counted at the host end of the lab's shaped veth
//! pair (its `rx_bytes` see only what the shaped registry sends: Ethernet
//! frames, ~3 % above the HTTP payload), sampled every 50 ms from the start
//! until the link has been idle (under [`truth::ACTIVE_BYTES`] a second) for
//! the settle time, since lazy nodes keep fetching in the background after
//! their workload ends; and the requests, counted in the shaped registry's
//! access log (`STATE/logs/registry-shaped.log`, one line per answered
//! request, read from where it ended before the round).
//!
//! A rollout shape (`--waves K`, `--max-surge N`) holds nodes back as
//! `advisor plan` models it: a wave starts when every pod of the one before
//! is ready; with a max surge at most N pods are started and not yet ready,
//! each `READY` line letting the next node (in `--nodes` order) start. Each
//! node's start is in the report; all times stay on the common clock.
//!
//! The includer provides `truth` (examples/validate/truth.rs) beside this
//! module: main.rs declares it, tests/it/fleet_lab.rs takes the validation
//! harness's (a file is loaded as one module only once per crate).
use super::truth;

use advisor::bench::metrics::{LazyCounters, StargzScrape};
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Barrier, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// The interval of the registry's byte samples in the report.
pub const SAMPLE_INTERVAL_S: f64 = 0.5;

/// One round to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The nodes' containerd sockets.
    pub nodes: Vec<String>,
    /// Each node's stargz metrics endpoint (empty: none scraped).
    pub metrics: Vec<String>,
    /// Lazy (`ctr-remote images rpull`, stargz) or eager (`ctr images pull`, overlayfs).
    pub lazy: bool,
    pub reference: String,
    /// The workload (`/bin/sh -c`), printing `READY`; `echo DONE` is appended.
    pub command: String,
    /// Shell command making every node cold (`ADVISOR_LAB_NODES_RESET_CMD`).
    pub reset_cmd: String,
    /// The network interface whose `rx_bytes` are the registry's downloads.
    pub veth: String,
    /// The shaped registry's access log (None: requests not counted).
    pub access_log: Option<PathBuf>,
    /// Seconds of an idle link that end the round.
    pub settle_s: f64,
    /// The containerd namespace the clients pull and run in.
    pub namespace: String,
    /// How many nodes pull at once.
    pub rollout: Rollout,
}

/// The rollout shape, as `advisor plan`'s `--waves` and `--max-surge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollout {
    /// Every node at once.
    AllAtOnce,
    /// K equal waves (`ceil(N/K)` nodes each); a wave starts when every pod
    /// of the one before is ready.
    Waves(usize),
    /// At most this many pods started and not yet ready.
    MaxSurge(usize),
}

impl Rollout {
    /// How many pods must be ready before node `k` (0-based) of `n` starts.
    pub fn ready_before(self, k: usize, n: usize) -> usize {
        match self {
            Rollout::AllAtOnce => 0,
            Rollout::Waves(w) => {
                let size = n.div_ceil(w.max(1));
                (k / size) * size
            }
            Rollout::MaxSurge(s) => (k + 1).saturating_sub(s.max(1)),
        }
    }
}

/// Ready pods so far, and a wake-up for the nodes waiting on them.
#[derive(Default)]
struct Gate {
    ready: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    fn wait_for(&self, n: usize) {
        let mut r = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        while *r < n {
            r = self.changed.wait(r).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn one_more(&self) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_all();
    }
}

/// Counts a node ready once: at its `READY` line, or when its run ends
/// without one (a failed node must not hold the rollout forever).
struct ReadyOnce<'a> {
    gate: &'a Gate,
    done: std::cell::Cell<bool>,
}

impl ReadyOnce<'_> {
    fn fire(&self) {
        if !self.done.replace(true) {
            self.gate.one_more();
        }
    }
}

impl Drop for ReadyOnce<'_> {
    fn drop(&mut self) {
        self.fire();
    }
}

/// One node's run, seconds from the common start.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRun {
    /// 1-based, in the order of `--nodes`.
    pub node: usize,
    pub address: String,
    /// The node's pull started (0 unless the rollout held it back).
    pub start_s: f64,
    /// The pull returned (`ctr images pull` / `ctr-remote images rpull`).
    pub pull_s: f64,
    /// The workload's `READY` line.
    pub ready_s: f64,
    /// The workload's last line (`DONE`).
    pub done_s: f64,
    /// `ctr run --rm` returned (teardown included).
    pub exit_s: f64,
    /// Lazy runs with a metrics endpoint: the node's snapshotter over the
    /// whole round (background fetch included).
    pub lazy: Option<LazyCounters>,
}

/// The requests in the shaped registry's access log during the round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessLog {
    pub path: String,
    pub gets: u64,
    pub blob_gets: u64,
    pub manifest_gets: u64,
    /// GETs answered 206 (range requests: lazy reads and prefetch).
    pub partial_gets: u64,
    pub heads: u64,
    /// Requests answered 4xx or 5xx.
    pub errors: u64,
    /// The GETs' response bodies as the registry counts them.
    pub get_bytes: u64,
}

/// The shared registry link during the round.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    /// Where the bytes were counted (`/sys/class/net/VETH/statistics/rx_bytes`).
    pub veth: String,
    /// Bytes sent by the registry until the link went idle (frames).
    pub bytes: u64,
    /// GET requests (the access log's count; None without it).
    pub gets: Option<u64>,
    /// When the count came within [`truth::ACTIVE_BYTES`]/4 of `bytes`.
    pub last_byte_s: f64,
    /// The end of the link's last second with more than [`truth::ACTIVE_BYTES`].
    pub last_active_s: f64,
    /// The idle time that ended the round.
    pub settle_s: f64,
    pub sample_interval_s: f64,
    /// Bytes in each interval from the start (`[i × interval, (i+1) × interval)`).
    pub samples: Vec<u64>,
    pub access_log: Option<AccessLog>,
}

/// A round's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub strategy: String,
    pub nodes: usize,
    pub rollout: Rollout,
    pub reference: String,
    pub command: String,
    /// UTC, when the nodes started.
    pub started_at: String,
    /// Seconds the reset (every node cold) took before the start.
    pub cold_s: f64,
    /// The slowest node's `ready_s` and `done_s`.
    pub last_ready_s: f64,
    pub last_done_s: f64,
    pub per_node: Vec<NodeRun>,
    pub registry: Registry,
}

impl Config {
    fn clients(&self, k: usize) -> truth::Clients {
        let host = self.reference.split('/').next().unwrap_or("");
        truth::Clients {
            address: self.nodes[k].clone(),
            namespace: self.namespace.clone(),
            // The node is made cold by `reset_cmd`, never by the clients.
            lazy_reset: String::new(),
            plain_http: host.starts_with("127.0.0.1:") || host.starts_with("localhost:"),
            metrics: self.metrics.get(k).cloned(),
        }
    }

    fn counter(&self) -> PathBuf {
        Path::new("/sys/class/net")
            .join(&self.veth)
            .join("statistics/rx_bytes")
    }

    /// What a round cannot run without, said before anything is reset.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.nodes.is_empty() {
            bail!(
                "no nodes: give --nodes SOCK,SOCK… (lab/lab nodes N starts them; `lab/lab env` exports ADVISOR_LAB_NODES)"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &self.nodes {
            if !seen.insert(n) {
                bail!("node {n} is given twice in --nodes: each node must be its own containerd");
            }
            if !Path::new(n).exists() {
                bail!(
                    "node socket {n} does not exist: start the nodes (lab/lab nodes N) and take their sockets from `lab/lab env` (ADVISOR_LAB_NODES)"
                );
            }
        }
        if !self.metrics.is_empty() && self.metrics.len() != self.nodes.len() {
            bail!(
                "{} metrics endpoints for {} nodes: give one per node, in the order of --nodes, or none",
                self.metrics.len(),
                self.nodes.len()
            );
        }
        if !self.counter().exists() {
            bail!(
                "{} does not exist: --veth {} is not a network interface here (shape the lab: lab/lab shape --rtt 5ms --bandwidth 200mbit; `lab/lab env` then exports ADVISOR_LAB_SHAPED_VETH)",
                self.counter().display(),
                self.veth
            );
        }
        if let Some(log) = &self.access_log
            && !log.exists()
        {
            bail!(
                "the registry's access log {} does not exist (the shaped registry writes it: lab/lab shape)",
                log.display()
            );
        }
        if !self.command.contains(truth::READY) {
            bail!(
                "--command never prints {}: a node's ready time is its first `{}` line",
                truth::READY,
                truth::READY
            );
        }
        if self.settle_s.is_nan() || self.settle_s <= 0.0 {
            bail!(
                "--settle {}: give a number of seconds above 0",
                self.settle_s
            );
        }
        Ok(())
    }
}

fn sh(cmd: &str, what: &str) -> anyhow::Result<()> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn file_len(p: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len())
}

/// Count the requests of an access log's lines (the registry's combined log
/// format: `ADDR - - [TIME] "METHOD PATH HTTP/1.1" STATUS BYTES "REFERER" "AGENT"`);
/// other lines are skipped.
pub fn count_requests(text: &str) -> AccessLog {
    let mut a = AccessLog::default();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once('"') else {
            continue;
        };
        let Some((request, tail)) = rest.split_once('"') else {
            continue;
        };
        let mut req = request.split_whitespace();
        let (Some(method), Some(path)) = (req.next(), req.next()) else {
            continue;
        };
        let mut t = tail.split_whitespace();
        let Some(status) = t.next().and_then(|s| s.parse::<u16>().ok()) else {
            continue;
        };
        let bytes = t.next().and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
        if status >= 400 {
            a.errors += 1;
        }
        match method {
            "GET" => {
                a.gets += 1;
                a.get_bytes += bytes;
                if path.contains("/blobs/") {
                    a.blob_gets += 1;
                } else if path.contains("/manifests/") {
                    a.manifest_gets += 1;
                }
                if status == 206 {
                    a.partial_gets += 1;
                }
            }
            "HEAD" => a.heads += 1,
            _ => {}
        }
    }
    a
}

/// The registry's bytes in each interval from 0 to `end`.
fn per_interval(samples: &[(f64, u64)], end: f64) -> Vec<u64> {
    let n = (end / SAMPLE_INTERVAL_S).ceil().max(1.0) as usize;
    (0..n)
        .map(|i| {
            let a = truth::bytes_at(samples, i as f64 * SAMPLE_INTERVAL_S);
            let b = truth::bytes_at(samples, (i + 1) as f64 * SAMPLE_INTERVAL_S);
            b.saturating_sub(a)
        })
        .collect()
}

/// One round: every node cold, then all at once; `progress` hears what happens.
pub fn run(cfg: &Config, mut progress: impl FnMut(&str)) -> anyhow::Result<Report> {
    cfg.check()?;
    let n = cfg.nodes.len();
    let clients: Vec<truth::Clients> = (0..n).map(|k| cfg.clients(k)).collect();
    let strategy = if cfg.lazy { "lazy" } else { "eager" };

    progress(&format!("making {n} node(s) cold: {}", cfg.reset_cmd));
    let cold = Instant::now();
    sh(&cfg.reset_cmd, "the nodes' reset command")?;
    for (k, c) in clients.iter().enumerate() {
        c.prepare()
            .with_context(|| format!("node {} ({})", k + 1, c.address))?;
    }
    let reset_s = cold.elapsed().as_secs_f64();
    sh(
        "sync && echo 3 > /proc/sys/vm/drop_caches",
        "dropping the page cache",
    )?;
    let cold_s = cold.elapsed().as_secs_f64();
    progress(&format!(
        "cold in {cold_s:.1} s (reset {reset_s:.1} s, sync and page cache {:.1} s)",
        cold_s - reset_s
    ));
    let before: Vec<Option<StargzScrape>> = if cfg.lazy {
        clients
            .iter()
            .enumerate()
            .map(|(k, c)| {
                c.scrape()
                    .with_context(|| format!("node {}'s metrics", k + 1))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        vec![None; n]
    };
    let log_start = match &cfg.access_log {
        Some(p) => Some(file_len(p)?),
        None => None,
    };

    let script = format!("{}\necho {}", cfg.command, truth::DONE);
    let ready = Barrier::new(n + 1);
    let go = Barrier::new(n + 1);
    let gate = Gate::default();
    let clock: OnceLock<Instant> = OnceLock::new();
    progress(&format!(
        "{n} node(s), {strategy}, {}, {:?}",
        cfg.reference, cfg.rollout
    ));
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (runs, sampler, t0) = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let (ready, go, clock, script, gate) = (&ready, &go, &clock, &script, &gate);
                let id = format!("fleet-{}-{}", std::process::id(), k + 1);
                scope.spawn(move || {
                    ready.wait();
                    go.wait();
                    let t0 = *clock
                        .get()
                        .expect("the start is set before the barrier opens");
                    gate.wait_for(cfg.rollout.ready_before(k, n));
                    let start_s = t0.elapsed().as_secs_f64();
                    let mine = ReadyOnce {
                        gate,
                        done: std::cell::Cell::new(false),
                    };
                    c.run_from_notify(&cfg.reference, cfg.lazy, script, &id, t0, &|| mine.fire())
                        .map(|r| (start_s, r))
                })
            })
            .collect();
        // Every thread is parked at `go`: the start is now.
        ready.wait();
        let t0 = Instant::now();
        let sampler = truth::Sampler::start(&cfg.counter(), t0);
        clock.set(t0).expect("one start");
        go.wait();
        let runs: Vec<anyhow::Result<(f64, truth::ClientRun)>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the node's thread panicked")))
            })
            .collect();
        (runs, sampler, t0)
    });
    let failed: Vec<String> = runs
        .iter()
        .enumerate()
        .filter_map(|(k, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("node {} ({}): {e:#}", k + 1, cfg.nodes[k]))
        })
        .collect();
    if !failed.is_empty() {
        drop(sampler);
        bail!(
            "{} of {n} node(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    let runs: Vec<(f64, truth::ClientRun)> = runs.into_iter().map(Result::unwrap).collect();
    progress(&format!(
        "every workload done at {:.2} s; waiting until the link is idle for {} s",
        t0.elapsed().as_secs_f64(),
        cfg.settle_s
    ));
    let last_active = sampler.wait_idle(cfg.settle_s);
    let samples = sampler.finish();

    let mut per_node = Vec::with_capacity(n);
    for (k, ((start_s, r), b)) in runs.iter().zip(before).enumerate() {
        let lazy = match b {
            Some(b) => clients[k]
                .scrape()
                .with_context(|| format!("node {}'s metrics", k + 1))?
                .map(|a| StargzScrape::delta(&b, &a).lazy_counters(&[])),
            None => None,
        };
        per_node.push(NodeRun {
            node: k + 1,
            address: cfg.nodes[k].clone(),
            start_s: *start_s,
            pull_s: r.pull_s,
            ready_s: r.to_ready_s,
            done_s: r.to_complete_s,
            exit_s: r.exit_s,
            lazy,
        });
    }
    let access_log = match (&cfg.access_log, log_start) {
        (Some(p), Some(start)) => {
            let all = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let new = all.get(start as usize..).unwrap_or_default();
            let mut a = count_requests(&String::from_utf8_lossy(new));
            a.path = p.display().to_string();
            Some(a)
        }
        _ => None,
    };
    for c in &clients {
        if let Err(e) = c.clean(&cfg.reference) {
            progress(&format!("cleaning {} failed: {e:#}", c.address));
        }
    }
    let bytes = truth::bytes_at(&samples, last_active);
    let last_active_s = samples
        .iter()
        .rev()
        .find(|s| s.1.saturating_sub(truth::bytes_at(&samples, s.0 - 1.0)) > truth::ACTIVE_BYTES)
        .map_or(0.0, |s| s.0);
    let last_byte_s = samples
        .iter()
        .find(|s| s.1 + truth::ACTIVE_BYTES / 4 >= bytes)
        .map_or(last_active, |s| s.0);
    let max = |f: fn(&NodeRun) -> f64| per_node.iter().map(f).fold(0.0, f64::max);
    Ok(Report {
        strategy: strategy.into(),
        nodes: n,
        rollout: cfg.rollout,
        reference: cfg.reference.clone(),
        command: cfg.command.clone(),
        started_at,
        cold_s,
        last_ready_s: max(|r| r.ready_s),
        last_done_s: max(|r| r.done_s),
        registry: Registry {
            veth: cfg.veth.clone(),
            bytes,
            gets: access_log.as_ref().map(|a| a.gets),
            last_byte_s,
            last_active_s,
            settle_s: cfg.settle_s,
            sample_interval_s: SAMPLE_INTERVAL_S,
            samples: per_interval(&samples, last_active + cfg.settle_s),
            access_log,
        },
        per_node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_combined_log_format() {
        let log = r#"10.201.80.13 - - [06/Dec/2026:21:00:00 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
time="2026-12-06T21:00:00Z" level=warning msg="something"
10.201.80.13 - - [06/Dec/2026:21:00:00 +0000] "HEAD /v2/a/manifests/v1 HTTP/1.1" 200 0 "" "containerd/1.6.20"
10.201.80.13 - - [06/Dec/2026:21:00:00 +0000] "GET /v2/a/manifests/sha256:ab HTTP/1.1" 200 530 "" "containerd/1.6.20"
10.201.80.13 - - [06/Dec/2026:21:00:01 +0000] "GET /v2/a/blobs/sha256:cd HTTP/1.1" 206 1000 "" "Go-http-client/1.1"
10.201.80.13 - - [06/Dec/2026:21:00:01 +0000] "GET /v2/a/blobs/sha256:ef HTTP/1.1" 404 19 "" "containerd/1.6.20"
"#;
        let a = count_requests(log);
        assert_eq!(
            (
                a.gets,
                a.blob_gets,
                a.manifest_gets,
                a.partial_gets,
                a.heads,
                a.errors,
                a.get_bytes
            ),
            (4, 2, 1, 1, 1, 1, 1551)
        );
    }

    /// Who waits for how many ready pods: plan's rollouts (src/simulate/fleet.rs).
    #[test]
    fn rollouts_hold_nodes_back_as_plan_models_them() {
        let held = |r: Rollout, n: usize| (0..n).map(|k| r.ready_before(k, n)).collect::<Vec<_>>();
        assert_eq!(held(Rollout::AllAtOnce, 3), [0, 0, 0]);
        assert_eq!(held(Rollout::Waves(2), 4), [0, 0, 2, 2]);
        assert_eq!(held(Rollout::Waves(2), 5), [0, 0, 0, 3, 3]);
        assert_eq!(held(Rollout::Waves(3), 3), [0, 1, 2]);
        assert_eq!(held(Rollout::MaxSurge(2), 5), [0, 0, 1, 2, 3]);
        assert_eq!(held(Rollout::MaxSurge(9), 3), [0, 0, 0]);
    }

    #[test]
    fn intervals_cover_the_round() {
        let s = [(0.0, 0), (0.4, 10), (0.6, 30), (1.2, 30), (1.6, 50)];
        assert_eq!(per_interval(&s, 2.0), vec![10, 20, 0, 20]);
    }
}
