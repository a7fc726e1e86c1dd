//! Ground truth from containerd's own clients: one cold run of a workload
//! pulled and started with `ctr images pull` + `ctr run` (eager) or
//! `ctr-remote images rpull` + `ctr run --snapshotter stargz` (lazy), timed
//! from outside as a user would: from the pull's start to the workload's
//! READY line and to its last output line (ctr's `--rm` teardown, 0.6–3.8 s
//! on this lab, is not the workload's time; the exit is kept beside it).
//!
//! Owns the clients' namespace (advisor's owner label, so advisor may clean
//! it too) and leaves it empty after every run. Knows nothing of advisor's
//! own runs: the harness interleaves the two.
use advisor::bench::metrics::{LazyCounters, StargzScrape};
use anyhow::{Context, bail};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The line workloads print when ready.
pub const READY: &str = "READY";
/// The line workloads print last (see `Workload::script`).
pub const DONE: &str = "DONE";

/// The containerd and snapshotter the clients talk to.
#[derive(Debug, Clone)]
pub struct Clients {
    /// containerd's socket (`ctr -a`).
    pub address: String,
    /// Namespace the clients pull and run in (created with advisor's owner label).
    pub namespace: String,
    /// Shell command restarting the stargz snapshotter with empty caches
    /// (`ADVISOR_LAZY_RESET_CMD`, as `advisor bench` uses it).
    pub lazy_reset: String,
    /// Pass `--plain-http` to the clients (a loopback registry).
    pub plain_http: bool,
    /// The snapshotter's Prometheus endpoint (`ADVISOR_STARGZ_METRICS`):
    /// scraped around lazy runs, for the same counters `advisor bench` keeps.
    pub metrics: Option<String>,
}

/// A cold lazy run and the stargz snapshotter's background fetch after it,
/// seen as bytes arriving at a counter (seconds from the start of the pull).
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundRun {
    /// The workload's last output line.
    pub done_s: f64,
    /// Bytes counted by then.
    pub bytes_at_done: u64,
    /// Growth after `done_s` began (the snapshotter's 5-s idle rule).
    pub starts_s: Option<f64>,
    /// The counter stopped growing: the layers are whole.
    pub whole_s: f64,
    /// Bytes counted in all.
    pub bytes_total: u64,
}

/// Bytes in a second that count as a download (keep-alives stay far below).
pub const ACTIVE_BYTES: u64 = 256 * 1024;

/// A byte counter (a `/sys/class/net/*/statistics/rx_bytes` that sees only
/// the registry's traffic) sampled every 50 ms on a thread: `(seconds from
/// t0, bytes since the start)`.
pub struct Sampler {
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    t0: Instant,
}

impl Sampler {
    /// Start counting from what `counter` holds now, on the clock `t0`.
    pub fn start(counter: &Path, t0: Instant) -> Sampler {
        let counter = counter.to_path_buf();
        let read = move || -> u64 {
            std::fs::read_to_string(&counter)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let base = read();
        let samples = Arc::new(Mutex::new(vec![(0.0, 0u64)]));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let b = read().saturating_sub(base);
                    samples
                        .lock()
                        .unwrap()
                        .push((t0.elapsed().as_secs_f64(), b));
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Sampler {
            samples,
            stop,
            thread: Some(thread),
            t0,
        }
    }

    /// Wait until the counter has grown by less than [`ACTIVE_BYTES`] a
    /// second for `settle_s` (counting from now at the earliest); returns
    /// when it last grew (seconds from t0).
    pub fn wait_idle(&self, settle_s: f64) -> f64 {
        let mut last_active = self.t0.elapsed().as_secs_f64();
        while self.t0.elapsed().as_secs_f64() - last_active < settle_s {
            std::thread::sleep(Duration::from_millis(200));
            let s = self.samples.lock().unwrap();
            let (now_t, now_b) = *s.last().unwrap();
            if now_b.saturating_sub(bytes_at(&s, now_t - 1.0)) > ACTIVE_BYTES {
                last_active = now_t;
            }
        }
        last_active
    }

    /// Stop sampling; the samples.
    pub fn finish(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bytes counted by `t` (the last sample at or before it).
pub fn bytes_at(samples: &[(f64, u64)], t: f64) -> u64 {
    samples.iter().rev().find(|s| s.0 <= t).map_or(0, |s| s.1)
}

/// One cold run measured through containerd's clients (seconds from the
/// start of the pull).
#[derive(Debug, Clone, Serialize)]
pub struct ClientRun {
    pub pull_s: f64,
    pub to_ready_s: f64,
    /// The workload's last output line.
    pub to_complete_s: f64,
    /// `ctr run --rm` returned (teardown included).
    pub exit_s: f64,
    /// Lazy runs: what the snapshotter did (GETs, bytes, prefetch, on-demand
    /// reads), as `advisor bench` reports it in `network.lazy`.
    pub lazy: Option<LazyCounters>,
}

impl Clients {
    fn ctr(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(["-a", &self.address, "-n", &self.namespace]);
        c
    }

    fn quiet(&self, mut c: Command, what: &str) -> anyhow::Result<()> {
        let out = c.output().with_context(|| format!("running {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Create the clients' namespace with advisor's owner label (no-op when it exists).
    pub fn prepare(&self) -> anyhow::Result<()> {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.address, "namespaces", "create"])
            .args([&self.namespace, "advisor.dev/owner=advisor"]);
        let out = c.output().context("running ctr namespaces create")?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("already exists") {
            bail!(
                "ctr namespaces create {} failed: {}",
                self.namespace,
                err.trim()
            );
        }
        Ok(())
    }

    /// Remove the image and every blob left in the clients' namespace
    /// (synchronous garbage collection takes the snapshots with them).
    pub fn clean(&self, reference: &str) -> anyhow::Result<()> {
        let mut rm = self.ctr("ctr");
        rm.args(["images", "rm", "--sync", reference]);
        let _ = rm.output();
        let out = self
            .ctr("ctr")
            .args(["content", "ls", "-q"])
            .output()
            .context("running ctr content ls")?;
        let blobs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !blobs.is_empty() {
            let mut c = self.ctr("ctr");
            c.args(["content", "rm"]).args(&blobs);
            self.quiet(c, "ctr content rm")?;
        }
        Ok(())
    }

    /// Convert `gzip` to eStargz with Debian's `ctr-remote image optimize
    /// --no-optimize --oci` (not advisor's writer) and push it as `target`;
    /// leaves nothing in the clients' namespace.
    pub fn convert(&self, gzip: &str, target: &str) -> anyhow::Result<()> {
        let plain: &[&str] = if self.plain_http {
            &["--plain-http"]
        } else {
            &[]
        };
        let mut pull = self.ctr("ctr");
        pull.args(["images", "pull"]).args(plain).arg(gzip);
        let mut optimize = self.ctr("ctr-remote");
        optimize
            .args(["image", "optimize", "--no-optimize", "--oci"])
            .args([gzip, target]);
        let mut push = self.ctr("ctr");
        push.args(["images", "push"]).args(plain).arg(target);
        let result = self
            .quiet(pull, "ctr images pull")
            .and_then(|_| self.quiet(optimize, "ctr-remote image optimize"))
            .and_then(|_| self.quiet(push, "ctr images push"));
        let mut rm = self.ctr("ctr");
        rm.args(["images", "rm", "--sync", gzip, target]);
        let _ = rm.output();
        self.clean(gzip)?;
        result
    }

    /// The snapshotter's counters now (None without an endpoint).
    pub fn scrape(&self) -> anyhow::Result<Option<StargzScrape>> {
        let Some(url) = &self.metrics else {
            return Ok(None);
        };
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "10", url])
            .output()
            .context("running curl for the snapshotter's metrics")?;
        if !out.status.success() {
            bail!(
                "the snapshotter's metrics endpoint did not answer ({})",
                out.status
            );
        }
        Ok(Some(StargzScrape::parse(&String::from_utf8_lossy(
            &out.stdout,
        ))?))
    }

    /// The stargz snapshotter restarted empty: a lazy run's background fetch
    /// goes on after its container is gone, until its layers are whole, and
    /// an eager pull beside it shares the link (at 100 Mbit/s it added 10–19 s
    /// to the eager pull after each lazy run, in proportion to what the lazy
    /// run had left unread: docs/results.md).
    pub fn reset_lazy(&self) -> anyhow::Result<()> {
        let mut c = Command::new("sh");
        c.args(["-c", &self.lazy_reset]);
        self.quiet(c, "the lazy reset command")
    }

    /// Cold slate: the image gone, the snapshotter restarted empty (for an
    /// eager run too: see [`Clients::reset_lazy`]), the page cache dropped
    /// (as `advisor bench` does before a cold run).
    fn cold(&self, reference: &str) -> anyhow::Result<()> {
        self.clean(reference)?;
        self.reset_lazy()?;
        let mut c = Command::new("sh");
        c.args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"]);
        self.quiet(c, "dropping the page cache")
    }

    /// One cold run of `command` (run by `/bin/sh -c`, printing [`READY`]
    /// and, last, [`DONE`]) from `reference`, eager or lazy.
    pub fn cold_run(
        &self,
        reference: &str,
        lazy: bool,
        command: &str,
        id: &str,
    ) -> anyhow::Result<ClientRun> {
        self.cold(reference)?;
        let before = if lazy { self.scrape()? } else { None };
        let run = self.run_from(reference, lazy, command, id, Instant::now());
        let counters = match (&run, before) {
            (Ok(_), Some(b)) => self
                .scrape()
                .map(|a| a.map(|a| StargzScrape::delta(&b, &a).lazy_counters(&[]))),
            _ => Ok(None),
        };
        let cleaned = self.clean(reference);
        let mut run = run?;
        run.lazy = counters?;
        cleaned?;
        Ok(run)
    }

    /// Pull `reference` (eager: `ctr images pull`; lazy: `ctr-remote images
    /// rpull`) and run `command` in it with `ctr run --rm` (lazy: on the
    /// stargz snapshotter), timed on the clock `t0` the caller started (the
    /// fleet harness starts every node's run at one `t0`). Nothing is made
    /// cold before and the image stays pulled after; `lazy` is left `None`.
    pub fn run_from(
        &self,
        reference: &str,
        lazy: bool,
        command: &str,
        id: &str,
        t0: Instant,
    ) -> anyhow::Result<ClientRun> {
        self.run_from_notify(reference, lazy, command, id, t0, &|| {})
    }

    /// [`Self::run_from`], calling `on_ready` the moment the workload's
    /// `READY` line arrives (a fleet's rollout lets the next pod start).
    pub fn run_from_notify(
        &self,
        reference: &str,
        lazy: bool,
        command: &str,
        id: &str,
        t0: Instant,
        on_ready: &dyn Fn(),
    ) -> anyhow::Result<ClientRun> {
        let mut pull = if lazy {
            let mut c = self.ctr("ctr-remote");
            c.args(["images", "rpull"]);
            c
        } else {
            let mut c = self.ctr("ctr");
            c.args(["images", "pull"]);
            c
        };
        if self.plain_http {
            pull.arg("--plain-http");
        }
        pull.arg(reference);
        self.quiet(
            pull,
            if lazy {
                "ctr-remote images rpull"
            } else {
                "ctr images pull"
            },
        )?;
        let pull_s = t0.elapsed().as_secs_f64();
        let mut run = self.ctr("ctr");
        run.args(["run", "--rm"]);
        if lazy {
            run.args(["--snapshotter", "stargz"]);
        }
        run.args([reference, id, "/bin/sh", "-c", command])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = run.spawn().context("running ctr run")?;
        let stdout = child.stdout.take().context("ctr run's stdout")?;
        let (mut to_ready, mut done) = (None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading ctr run's output")?;
            let t = t0.elapsed().as_secs_f64();
            match line.trim_end() {
                READY if to_ready.is_none() => {
                    to_ready = Some(t);
                    on_ready();
                }
                DONE => done = Some(t),
                _ => {}
            }
        }
        let out = child.wait_with_output().context("waiting for ctr run")?;
        let exit_s = t0.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "ctr run {reference} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = |t: Option<f64>, l: &str| {
            t.with_context(|| format!("ctr run {reference}: the workload printed no `{l}` line"))
        };
        Ok(ClientRun {
            pull_s,
            to_ready_s: line(to_ready, READY)?,
            to_complete_s: line(done, DONE)?,
            exit_s,
            lazy: None,
        })
    }

    /// A cold lazy run of `command` with the bytes at `counter` (a
    /// `/sys/class/net/*/statistics/rx_bytes` that sees only the registry's
    /// traffic) sampled every 50 ms from the pull until they stop growing
    /// (under [`ACTIVE_BYTES`] a second for `settle_s`): background fetch
    /// goes on after the container is gone. The image stays until then.
    pub fn background_run(
        &self,
        reference: &str,
        command: &str,
        id: &str,
        counter: &Path,
        settle_s: f64,
    ) -> anyhow::Result<BackgroundRun> {
        self.cold(reference)?;
        let t0 = Instant::now();
        let sampler = Sampler::start(counter, t0);
        let done_s = match self.lazy_run_keeping_the_image(reference, command, id, t0) {
            Ok(d) => d,
            Err(e) => {
                drop(sampler);
                let _ = self.clean(reference);
                return Err(e);
            }
        };
        let last_active = sampler.wait_idle(settle_s);
        let s = sampler.finish();
        self.clean(reference)?;
        let bytes_total = bytes_at(&s, last_active);
        let bytes_at_done = bytes_at(&s, done_s);
        let first = |pred: &dyn Fn(&(f64, u64)) -> bool| s.iter().find(|x| pred(x)).map(|x| x.0);
        Ok(BackgroundRun {
            done_s,
            bytes_at_done,
            starts_s: first(&|x| x.0 >= done_s && x.1 > bytes_at_done + ACTIVE_BYTES / 4),
            whole_s: first(&|x| x.1 + ACTIVE_BYTES / 4 >= bytes_total).unwrap_or(last_active),
            bytes_total,
        })
    }

    /// `ctr-remote images rpull` + `ctr run --rm --snapshotter stargz`;
    /// the time of the workload's [`DONE`] line from the pull's start. The
    /// image stays pulled.
    fn lazy_run_keeping_the_image(
        &self,
        reference: &str,
        command: &str,
        id: &str,
        t0: Instant,
    ) -> anyhow::Result<f64> {
        let mut pull = self.ctr("ctr-remote");
        pull.args(["images", "rpull"]);
        if self.plain_http {
            pull.arg("--plain-http");
        }
        pull.arg(reference);
        self.quiet(pull, "ctr-remote images rpull")?;
        let mut run = self.ctr("ctr");
        run.args(["run", "--rm", "--snapshotter", "stargz"])
            .args([reference, id, "/bin/sh", "-c", command])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = run.spawn().context("running ctr run")?;
        let stdout = child.stdout.take().context("ctr run's stdout")?;
        let mut done = None;
        for line in BufReader::new(stdout).lines() {
            if line.context("reading ctr run's output")?.trim_end() == DONE {
                done = Some(t0.elapsed().as_secs_f64());
            }
        }
        let out = child.wait_with_output().context("waiting for ctr run")?;
        if !out.status.success() {
            bail!(
                "ctr run {reference} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        done.with_context(|| format!("ctr run {reference}: the workload printed no `{DONE}` line"))
    }
}
