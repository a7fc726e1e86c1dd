//! A scripted [`Engine`] for fast tests of the bench logic (statistics,
//! flagging, interruption bookkeeping) under tokio's paused clock. It never
//! replaces the end-to-end tests on the lab.
use super::*;
use crate::containerd::pull::{LayerOutcome, LayerReport};
use std::collections::BTreeMap;

/// What one run of the fake does.
#[derive(Debug, Clone)]
pub struct Script {
    pub resolve: Duration,
    pub fetch: Duration,
    pub unpack: Duration,
    pub create: Duration,
    pub start: Duration,
    pub ready: Duration,
    pub complete: Duration,
    pub exit_code: u32,
    /// Registry bytes the pull downloads.
    pub registry_bytes: Bytes,
    /// Bytes the snapshotter fetches per layer (lazy).
    pub lazy_bytes: Vec<Bytes>,
    pub outcome: LayerOutcome,
    /// Fail in this operation (by name).
    pub fail_in: Option<&'static str>,
    /// Flip the interrupt switch when this operation starts.
    pub interrupt_in: Option<&'static str>,
}

impl Default for Script {
    fn default() -> Self {
        let ms = Duration::from_millis;
        Script {
            resolve: ms(10),
            fetch: ms(1000),
            unpack: ms(500),
            create: ms(20),
            start: ms(30),
            ready: ms(200),
            complete: ms(300),
            exit_code: 0,
            registry_bytes: Bytes(2_000),
            lazy_bytes: vec![Bytes(100), Bytes(100)],
            outcome: LayerOutcome::Downloaded,
            fail_in: None,
            interrupt_in: None,
        }
    }
}

pub struct Fake {
    pub scripts: Vec<Script>,
    pub run: usize,
    pub registry: u64,
    pub lazy: Vec<u64>,
    pub log: Vec<String>,
    /// Objects alive: containers and the image.
    pub alive: BTreeMap<String, bool>,
    pub interrupt: Option<tokio::sync::watch::Sender<bool>>,
    /// Namespaces that are not advisor's holding the image (the preflight's survey).
    pub foreign: Vec<crate::containerd::owner::Holding>,
    /// The user's `--force`.
    pub force: bool,
}

pub const LAYERS: [&str; 2] = ["sha256:l0", "sha256:l1"];

impl Fake {
    pub fn new(scripts: Vec<Script>) -> Self {
        Fake {
            scripts,
            run: 0,
            registry: 0,
            lazy: vec![0, 0],
            log: Vec::new(),
            alive: BTreeMap::new(),
            interrupt: None,
            foreign: Vec::new(),
            force: false,
        }
    }

    fn script(&self) -> Script {
        self.scripts
            .get(self.run.min(self.scripts.len().saturating_sub(1)))
            .cloned()
            .unwrap_or_default()
    }

    async fn op(&mut self, name: &'static str, d: Duration) -> anyhow::Result<()> {
        self.log.push(name.to_string());
        let s = self.script();
        if s.interrupt_in == Some(name)
            && let Some(tx) = &self.interrupt
        {
            let _ = tx.send(true);
        }
        tokio::time::sleep(d).await;
        if s.fail_in == Some(name) {
            anyhow::bail!("scripted failure in {name}");
        }
        Ok(())
    }
}

impl Engine for Fake {
    async fn preflight(&mut self) -> anyhow::Result<()> {
        self.log.push("preflight".into());
        crate::containerd::owner::refuse("r/i:t", &self.foreign, self.force)?;
        Ok(())
    }

    async fn make_cold(&mut self) -> anyhow::Result<()> {
        self.op("make_cold", Duration::from_millis(5)).await?;
        self.alive.remove("image");
        Ok(())
    }

    async fn sample(&mut self) -> CounterSample {
        let mut stargz = StargzScrape::default();
        for (i, l) in LAYERS.iter().enumerate() {
            stargz.layers.insert(
                l.to_string(),
                BTreeMap::from([(metrics::LAYER_FETCHED.to_string(), self.lazy[i] as f64)]),
            );
        }
        CounterSample {
            registry_bytes: Some(Bytes(self.registry)),
            stargz: Some(stargz),
            net_rx: None,
        }
    }

    async fn resolve(&mut self) -> anyhow::Result<ImageFacts> {
        let s = self.script();
        self.op("resolve", s.resolve).await?;
        Ok(ImageFacts {
            layers: LAYERS.iter().map(|s| s.to_string()).collect(),
            layers_size: 2_000,
        })
    }

    async fn fetch(&mut self) -> anyhow::Result<()> {
        let s = self.script();
        self.alive.insert("lease".into(), true);
        self.op("fetch", s.fetch).await?;
        self.registry += s.registry_bytes.0;
        Ok(())
    }

    async fn unpack(&mut self) -> anyhow::Result<Vec<LayerReport>> {
        let s = self.script();
        self.op("unpack", s.unpack).await?;
        self.alive.remove("lease");
        self.alive.insert("image".into(), true);
        Ok(LAYERS
            .iter()
            .map(|d| LayerReport {
                digest: d.to_string(),
                diff_id: String::new(),
                chain_id: String::new(),
                size: 1000,
                outcome: s.outcome,
                blob: None,
                downloaded: 0,
                unpack_ms: None,
            })
            .collect())
    }

    async fn disk_usage(&mut self) -> anyhow::Result<DiskUsage> {
        Ok(DiskUsage {
            content: Bytes(2_000),
            snapshots: Bytes(4_000),
        })
    }

    async fn create(&mut self, id: &str) -> anyhow::Result<()> {
        self.alive.insert(format!("container {id}"), true);
        let s = self.script();
        self.op("create", s.create).await
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let s = self.script();
        self.op("start", s.start).await
    }

    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<Readiness> {
        let s = self.script();
        let at = Instant::now() + s.ready;
        if at > deadline {
            tokio::time::sleep_until(deadline).await;
            return Ok(Readiness::TimedOut);
        }
        self.op("ready", s.ready).await?;
        for (i, b) in s.lazy_bytes.iter().enumerate() {
            self.lazy[i] += b.0;
        }
        Ok(Readiness::Ready(Instant::now()))
    }

    async fn wait_exit(&mut self, deadline: Instant) -> anyhow::Result<Option<(u32, Instant)>> {
        let s = self.script();
        let rest = s.complete.saturating_sub(s.ready);
        if Instant::now() + rest > deadline {
            tokio::time::sleep_until(deadline).await;
            return Ok(None);
        }
        self.op("complete", rest).await?;
        Ok(Some((s.exit_code, Instant::now())))
    }

    async fn remove_container(&mut self) -> anyhow::Result<()> {
        self.log.push("remove_container".into());
        self.alive.retain(|k, _| !k.starts_with("container"));
        self.run += 1;
        Ok(())
    }

    async fn abort(&mut self) -> Vec<String> {
        self.log.push("abort".into());
        self.alive.clear();
        Vec::new()
    }

    async fn finish(&mut self, keep_image: bool) -> anyhow::Result<()> {
        self.log.push("finish".into());
        if !keep_image {
            self.alive.remove("image");
        }
        Ok(())
    }
}

fn settings(method: Method, mode: Mode, runs: usize) -> BenchSettings {
    BenchSettings {
        image: "r/i:t".into(),
        method,
        snapshotter: method.snapshotter().into(),
        mode,
        runs,
        warmup: 0,
        ready: ReadySpec::Line("ready".into()),
        timeout: Duration::from_secs(60),
        command: vec![],
        keep_image: false,
    }
}

fn no_interrupt() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    rx
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test(start_paused = true)]
async fn cold_runs_time_every_phase_and_summarise() {
    let slow = Script {
        fetch: Duration::from_millis(3000),
        ..Script::default()
    };
    let mut fake = Fake::new(vec![Script::default(), slow, Script::default()]);
    let s = settings(Method::Eager, Mode::Cold, 3);
    let (r, e) = run_bench(&mut fake, &s, &Silent, no_interrupt()).await;
    assert!(e.is_none(), "{e:?}");
    assert_eq!(r.runs.len(), 3);
    let first = &r.runs[0];
    assert!(close(first.phases.resolve.unwrap().0, 0.010));
    assert!(close(first.phases.fetch.unwrap().0, 1.0));
    assert!(close(first.phases.unpack.unwrap().0, 0.5));
    assert!(close(first.phases.ready.unwrap().0, 0.2));
    assert!(close(first.phases.complete.unwrap().0, 0.3));
    assert!(close(
        first.to_ready.unwrap().0,
        0.010 + 1.0 + 0.5 + 0.02 + 0.03 + 0.2
    ));
    assert_eq!(first.network.registry, Some(Bytes(2_000)));
    assert!(first.included, "{:?}", first.flags);
    let fetch = r.quantity("fetch").unwrap();
    assert_eq!(fetch.n, 3);
    assert!(close(fetch.mean, 5.0 / 3.0));
    assert!(close(fetch.median, 1.0));
    assert!(close(fetch.max, 3.0));
    assert!(fetch.stddev.unwrap() > 1.0);
    assert_eq!(fake.log.iter().filter(|l| *l == "make_cold").count(), 3);
    assert!(fake.alive.is_empty(), "{:?}", fake.alive);
    assert_eq!(fake.log.last().unwrap(), "finish");
}

#[tokio::test(start_paused = true)]
async fn a_cold_run_that_downloads_too_little_is_flagged_and_not_averaged() {
    let warm = Script {
        registry_bytes: Bytes(10),
        fetch: Duration::from_millis(50),
        ..Script::default()
    };
    let mut fake = Fake::new(vec![Script::default(), warm]);
    let (r, _) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 2),
        &Silent,
        no_interrupt(),
    )
    .await;
    assert!(r.runs[0].included);
    assert!(!r.runs[1].included);
    assert!(matches!(
        r.runs[1].flags[0],
        Flag::NotCold {
            received: Bytes(10),
            expected: Bytes(2000),
            ..
        }
    ));
    assert_eq!(r.excluded, 1);
    let fetch = r.quantity("fetch").unwrap();
    assert_eq!(fetch.n, 1);
    assert_eq!(fetch.stddev, None, "one run has no spread");
    assert!(close(fetch.mean, 1.0));
}

#[tokio::test(start_paused = true)]
async fn lazy_run_with_an_idle_layer_or_a_fallback_is_flagged() {
    let idle = Script {
        outcome: LayerOutcome::Remote,
        lazy_bytes: vec![Bytes(100), Bytes::ZERO],
        ..Script::default()
    };
    let fell = Script {
        outcome: LayerOutcome::FellBack,
        ..Script::default()
    };
    let ok = Script {
        outcome: LayerOutcome::Remote,
        ..Script::default()
    };
    let mut fake = Fake::new(vec![idle, fell, ok]);
    let (r, _) = run_bench(
        &mut fake,
        &settings(Method::Lazy, Mode::Cold, 3),
        &Silent,
        no_interrupt(),
    )
    .await;
    match &r.runs[0].flags[..] {
        [Flag::NotCold { detail, .. }] => assert!(detail.contains("sha256:l1"), "{detail}"),
        f => panic!("{f:?}"),
    }
    assert!(matches!(&r.runs[1].flags[..], [Flag::LazyFallback { layers }] if layers.len() == 2));
    assert!(r.runs[2].included, "{:?}", r.runs[2].flags);
    assert_eq!(r.runs[2].network.lazy.as_ref().unwrap().fetched, Bytes(200));
    assert_eq!(r.quantity("to_ready").unwrap().n, 1);
}

#[tokio::test(start_paused = true)]
async fn warm_mode_pulls_once_then_only_starts_containers() {
    let mut fake = Fake::new(vec![Script::default()]);
    let mut s = settings(Method::Eager, Mode::Warm, 2);
    s.warmup = 1;
    let (r, e) = run_bench(&mut fake, &s, &Silent, no_interrupt()).await;
    assert!(e.is_none());
    let setup = r.setup.as_ref().unwrap();
    assert!(setup.phases.fetch.is_some());
    assert!(setup.phases.create.is_none(), "the setup run only pulls");
    assert_eq!(r.runs.len(), 3);
    assert_eq!(r.runs[0].role, Role::Warmup);
    for run in &r.runs {
        assert!(run.phases.fetch.is_none() && run.phases.create.is_some());
    }
    assert_eq!(fake.log.iter().filter(|l| *l == "make_cold").count(), 1);
    assert_eq!(fake.log.iter().filter(|l| *l == "fetch").count(), 1);
    // Warm-up runs are reported but not summarised.
    assert_eq!(r.quantity("create").unwrap().n, 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_and_nonzero_exit_are_flagged() {
    let slow = Script {
        ready: Duration::from_secs(120),
        ..Script::default()
    };
    let bad = Script {
        exit_code: 3,
        ..Script::default()
    };
    let mut fake = Fake::new(vec![slow, bad]);
    let (r, e) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 2),
        &Silent,
        no_interrupt(),
    )
    .await;
    assert!(e.is_none());
    assert_eq!(r.runs[0].flags, vec![Flag::TimedOut]);
    assert_eq!(r.runs[1].flags, vec![Flag::NonZeroExit { exit_code: 3 }]);
    assert_eq!(r.excluded, 2);
    assert!(fake.alive.keys().all(|k| !k.starts_with("container")));
}

#[tokio::test(start_paused = true)]
async fn interrupt_mid_pull_keeps_measured_runs_and_cleans_up() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let cut = Script {
        interrupt_in: Some("fetch"),
        ..Script::default()
    };
    let mut fake = Fake::new(vec![Script::default(), cut]);
    fake.interrupt = Some(tx);
    let (r, e) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 5),
        &Silent,
        rx,
    )
    .await;
    assert!(e.is_none(), "an interrupt is not an error of the bench");
    assert!(r.interrupted);
    assert_eq!(r.runs.len(), 2, "the finished run and the interrupted one");
    assert!(r.runs[0].included);
    let partial = &r.runs[1];
    assert_eq!(partial.error.as_deref(), Some("interrupted"));
    assert!(
        partial.phases.resolve.is_some(),
        "phases measured so far are kept"
    );
    assert!(partial.phases.fetch.is_none());
    assert_eq!(fake.log.last().unwrap(), "abort");
    assert!(
        fake.alive.is_empty(),
        "abort removed the lease: {:?}",
        fake.alive
    );
    assert_eq!(r.quantity("fetch").unwrap().n, 1);
}

#[tokio::test(start_paused = true)]
async fn interrupt_mid_run_removes_the_container() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let cut = Script {
        interrupt_in: Some("ready"),
        ..Script::default()
    };
    let mut fake = Fake::new(vec![cut]);
    fake.interrupt = Some(tx);
    let (r, _) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 3),
        &Silent,
        rx,
    )
    .await;
    assert!(r.interrupted);
    assert!(r.runs[0].phases.start.is_some());
    assert!(fake.alive.is_empty(), "{:?}", fake.alive);
}

#[tokio::test(start_paused = true)]
async fn a_failure_stops_the_bench_with_its_error_and_partial_results() {
    let broken = Script {
        fail_in: Some("unpack"),
        ..Script::default()
    };
    let mut fake = Fake::new(vec![Script::default(), broken]);
    let (r, e) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 4),
        &Silent,
        no_interrupt(),
    )
    .await;
    let e = e.expect("the failure is returned");
    assert!(e.to_string().contains("scripted failure in unpack"));
    assert_eq!(r.runs.len(), 2);
    assert_eq!(r.runs[1].flags, vec![Flag::Failed]);
    assert!(r.error.as_deref().unwrap().contains("unpack"));
    assert_eq!(fake.log.last().unwrap(), "abort");
}

fn k8s_holding() -> crate::containerd::owner::Holding {
    crate::containerd::owner::Holding {
        namespace: "k8s.io".into(),
        image_record: true,
        blobs: 4,
        snapshots: 2,
    }
}

#[tokio::test(start_paused = true)]
async fn a_foreign_namespace_holding_the_image_stops_the_bench_before_anything_is_cleaned() {
    for mode in [Mode::Cold, Mode::Warm] {
        let mut fake = Fake::new(vec![Script::default()]);
        fake.foreign = vec![k8s_holding()];
        let (r, e) = run_bench(
            &mut fake,
            &settings(Method::Eager, mode, 3),
            &Silent,
            no_interrupt(),
        )
        .await;
        let e = e.expect("refused");
        let msg = format!("{e:#}");
        assert!(msg.contains("k8s.io") && msg.contains("--force"), "{msg}");
        assert!(crate::exit::is_user_error(&e), "exit 1");
        assert_eq!(
            fake.log,
            ["preflight"],
            "nothing cleaned, pulled or aborted"
        );
        assert!(r.runs.is_empty() && r.setup.is_none());
        assert!(r.error.as_deref().unwrap().contains("k8s.io"));
    }
}

#[tokio::test(start_paused = true)]
async fn force_lets_the_bench_clean_what_a_foreign_namespace_holds() {
    let mut fake = Fake::new(vec![Script::default()]);
    fake.foreign = vec![k8s_holding()];
    fake.force = true;
    let (r, e) = run_bench(
        &mut fake,
        &settings(Method::Eager, Mode::Cold, 2),
        &Silent,
        no_interrupt(),
    )
    .await;
    assert!(e.is_none(), "{e:?}");
    assert_eq!(r.runs.len(), 2);
    assert_eq!(fake.log[0], "preflight");
    assert_eq!(fake.log.iter().filter(|l| *l == "make_cold").count(), 2);
}

#[test]
fn a_debug_build_says_it_measures_as_one_and_a_release_build_says_nothing() {
    let note = super::debug_build_note();
    assert_eq!(note.is_some(), cfg!(debug_assertions));
    if let Some(n) = note {
        assert!(
            n.contains("debug build") && n.contains("release build"),
            "{n}"
        );
    }
}
