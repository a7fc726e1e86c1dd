//! The real [`Engine`]: the `containerd` adapter, the registry client, the
//! stargz metrics endpoint and procfs.
//!
//! Cold preparation (containerd-grpc.md §4): delete what a previous run left
//! ([`clean::cleanup_tracked`]), remove every trace of the image
//! ([`clean::clean_image`], which checks the post-conditions), purge the
//! stargz snapshotter's caches with the lazy reset command (`lab/lab
//! reset-lazy` on the lab, `--lazy-reset-cmd` on a node; the snapshotter
//! keeps resolved layers and fetched blocks per image for 120 s after their
//! last unmount, so only a restart makes the next lazy pull cold), drop the
//! page cache (so the registry's disk reads are cold too), and check again.
//! Before the first run, [`Engine::preflight`] claims the working namespace
//! (labelled as advisor's when advisor creates it) and refuses when it is not
//! advisor's (an unlabelled one named by ctr's `CONTAINERD_NAMESPACE`) or a
//! namespace that is not advisor's holds the image, unless `force`
//! ([`crate::containerd::owner`]). Owns this orchestration; the calls are the
//! adapter's.
use super::{CounterSample, DiskUsage, Engine, ImageFacts, Readiness};
use crate::containerd::clean::{self, ImageState};
use crate::containerd::owner;
use crate::containerd::pull::{BlobSource, ImageToPull, LayerReport, Method, Pull, PullOptions};
use crate::containerd::run::{self, Container, ContainerSpec, Task};
use crate::containerd::{Connection, Error, OVERLAYFS, STARGZ};
use std::sync::Arc;
use tokio::time::Instant;

/// How long to wait for a restarted snapshotter to answer through containerd.
pub const SNAPSHOTTER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// How long an aborted bench waits for containerd to answer again (it was
/// restarted mid-run) before giving up on removing what the run created.
pub const CONTAINERD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything the real engine needs beyond the bench settings.
#[derive(Debug, Clone)]
pub struct RealSettings {
    pub image: String,
    pub method: Method,
    pub snapshotter: String,
    /// The stargz snapshotter's Prometheus endpoint.
    pub stargz_metrics: Option<String>,
    /// Shell command that restarts the stargz snapshotter with empty caches.
    pub lazy_reset: Option<String>,
    /// Drop the kernel page cache before each cold run.
    pub drop_caches: bool,
    pub prefetch_size: u64,
    pub max_concurrent_downloads: usize,
    pub ready: run::Readiness,
    pub command: Vec<String>,
    /// Clean the image in namespaces that are not advisor's too (`--force`).
    pub force: bool,
}

pub struct RealEngine {
    conn: Connection,
    s: RealSettings,
    registry: super::source::RegistrySource,
    image: Option<Arc<ImageToPull>>,
    /// Chain IDs and digests of the image, kept for clean-up after the pull.
    state: Option<ImageState>,
    pull: Option<Pull>,
    top_chain_id: Option<String>,
    container: Option<Container>,
    task: Option<Task>,
    /// Things worth telling the user (a cache that could not be dropped…).
    pub notes: Vec<String>,
}

impl RealEngine {
    pub fn new(
        conn: Connection,
        s: RealSettings,
        registry: crate::registry::RegistryOptions,
    ) -> anyhow::Result<Self> {
        let registry = super::source::RegistrySource::with_options(&s.image, registry)?;
        Ok(RealEngine {
            conn,
            s,
            registry,
            image: None,
            state: None,
            pull: None,
            top_chain_id: None,
            container: None,
            task: None,
            notes: super::debug_build_note().into_iter().collect(),
        })
    }

    /// The connection (calibration reads snapshotter and registry facts through it).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn snapshotters() -> [&'static str; 2] {
        [OVERLAYFS, STARGZ]
    }

    fn foreign(&self) -> clean::Foreign {
        if self.s.force {
            clean::Foreign::Delete
        } else {
            clean::Foreign::Refuse
        }
    }

    async fn image_state(&mut self) -> anyhow::Result<ImageState> {
        if let Some(s) = &self.state {
            return Ok(s.clone());
        }
        let img = self.registry.resolve().await?;
        let st = state_of(&img);
        self.state = Some(st.clone());
        Ok(st)
    }

    async fn lazy_reset(&mut self) -> anyhow::Result<()> {
        let Some(cmd) = self.s.lazy_reset.clone() else {
            crate::bail_user!(
                "a cold lazy run needs the stargz snapshotter's caches purged: pass --lazy-reset-cmd \
                 (e.g. \"systemctl restart stargz-snapshotter\"), or on the lab `eval \"$(lab/lab env)\"` \
                 which sets ADVISOR_LAZY_RESET_CMD"
            );
        };
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| Error::LazyReset {
                command: cmd.clone(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            let tail: String = String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(Error::LazyReset {
                command: cmd,
                detail: format!("{}: {tail}", out.status),
            }
            .into());
        }
        // containerd re-dials the proxy snapshotter lazily: make sure it answers.
        self.conn
            .wait_for_snapshotter(STARGZ, SNAPSHOTTER_PATIENCE)
            .await?;
        Ok(())
    }

    fn drop_page_cache(&mut self) {
        nix::unistd::sync();
        if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3") {
            let note = format!(
                "cannot drop the page cache ({e}); cold runs may read the registry's blobs from memory"
            );
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
    }

    /// A run that failed because containerd stopped answering (a restart)
    /// leaves its task, container, snapshot and lease in containerd: wait
    /// for it to come back so the clean-up can remove them.
    async fn wait_for_containerd(&mut self) {
        let deadline = Instant::now() + CONTAINERD_PATIENCE;
        let mut waited = false;
        while self.conn.version().await.is_err() {
            if Instant::now() >= deadline {
                self.notes.push(format!(
                    "containerd at {} did not answer for {} s: what this run created in namespace {} could not be removed",
                    self.conn.address.display(),
                    CONTAINERD_PATIENCE.as_secs(),
                    self.conn.namespace
                ));
                return;
            }
            waited = true;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        if waited {
            self.notes.push(format!(
                "containerd at {} stopped answering during the run and came back; the clean-up ran after it",
                self.conn.address.display()
            ));
        }
    }
}

/// Digests and chain IDs that identify an image's state in containerd.
pub fn state_of(img: &ImageToPull) -> ImageState {
    ImageState {
        reference: img.reference.clone(),
        blobs: img.blob_digests(),
        chain_ids: img.chain_ids(),
    }
}

impl Engine for RealEngine {
    async fn preflight(&mut self) -> anyhow::Result<()> {
        self.conn.claim_namespace().await?;
        self.conn.refuse_working(self.s.force).await?;
        let state = self.image_state().await?;
        let holdings = owner::foreign_holdings(&self.conn, &state, &Self::snapshotters()).await?;
        owner::refuse(&state.reference, &holdings, self.s.force)?;
        if !holdings.is_empty() {
            self.notes.push(format!(
                "--force: the image's blobs and snapshots were deleted in namespaces that are not advisor's \
                 (their image records stay and need a new pull): {}",
                holdings
                    .iter()
                    .map(|h| h.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok(())
    }

    async fn make_cold(&mut self) -> anyhow::Result<()> {
        let errs = clean::cleanup_tracked(&self.conn).await;
        if let Some(e) = errs.into_iter().next() {
            return Err(anyhow::Error::new(e).context("removing what a previous run left"));
        }
        let state = self.image_state().await?;
        clean::clean_image(&self.conn, &state, &Self::snapshotters(), self.foreign()).await?;
        if self.s.method == Method::Lazy {
            self.lazy_reset().await?;
        }
        if self.s.drop_caches {
            self.drop_page_cache();
        } else {
            // Let the previous run's writeback settle outside the timing.
            nix::unistd::sync();
        }
        clean::check_cold(&self.conn, &state, &Self::snapshotters()).await?;
        Ok(())
    }

    async fn sample(&mut self) -> CounterSample {
        let stargz = match &self.s.stargz_metrics {
            Some(url) => super::metrics::scrape(url).await.ok(),
            None => None,
        };
        CounterSample {
            registry_bytes: Some(crate::units::Bytes(self.registry.received())),
            stargz,
            net_rx: super::metrics::net_rx_bytes(),
        }
    }

    async fn resolve(&mut self) -> anyhow::Result<ImageFacts> {
        let img = Arc::new(self.registry.resolve().await?);
        self.state = Some(state_of(&img));
        let facts = ImageFacts {
            layers: img.layers.iter().map(|l| l.digest.clone()).collect(),
            layers_size: img.layers_size(),
        };
        self.image = Some(img);
        Ok(facts)
    }

    async fn fetch(&mut self) -> anyhow::Result<()> {
        let Some(img) = self.image.clone() else {
            anyhow::bail!("fetch before resolve");
        };
        let mut opts = PullOptions::new(self.s.method);
        opts.snapshotter = self.s.snapshotter.clone();
        opts.prefetch_size = self.s.prefetch_size;
        opts.max_concurrent_downloads = self.s.max_concurrent_downloads;
        let source: Arc<dyn BlobSource> = Arc::new(self.registry.clone());
        let mut pull = Pull::begin(&self.conn, img, source, opts).await?;
        let r = pull.fetch().await;
        self.pull = Some(pull);
        r?;
        Ok(())
    }

    async fn unpack(&mut self) -> anyhow::Result<Vec<LayerReport>> {
        let Some(mut pull) = self.pull.take() else {
            anyhow::bail!("unpack before fetch");
        };
        if let Err(e) = pull.unpack().await {
            let _ = pull.abort().await;
            return Err(e.into());
        }
        let report = pull.finish().await?;
        self.top_chain_id = Some(report.top_chain_id.clone());
        Ok(report.layers)
    }

    async fn disk_usage(&mut self) -> anyhow::Result<DiskUsage> {
        let Some(state) = self.state.clone() else {
            return Ok(DiskUsage::default());
        };
        let mut content = 0;
        for d in &state.blobs {
            if let Some(i) = self.conn.content_info(d).await? {
                content += i.size;
            }
        }
        let mut snapshots = 0;
        for c in &state.chain_ids {
            snapshots += self
                .conn
                .snapshot_usage(&self.s.snapshotter, c)
                .await
                .unwrap_or(0);
        }
        Ok(DiskUsage {
            content: crate::units::Bytes(content),
            snapshots: crate::units::Bytes(snapshots),
        })
    }

    async fn create(&mut self, id: &str) -> anyhow::Result<()> {
        let (Some(img), Some(top)) = (self.image.clone(), self.top_chain_id.clone()) else {
            anyhow::bail!("create before the image was pulled");
        };
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&img.config.bytes)
            .map_err(|e| Error::BadImage {
                reference: img.reference.clone(),
                detail: format!(
                    "config {} is not valid JSON: {e}",
                    img.config.descriptor.digest
                ),
            })?;
        let args = (!self.s.command.is_empty()).then_some(self.s.command.as_slice());
        let spec = run::runtime_spec(&self.conn.namespace, id, &config, args)?;
        let container = Container::create(
            &self.conn,
            &ContainerSpec {
                id: id.to_string(),
                image: img.reference.clone(),
                snapshotter: self.s.snapshotter.clone(),
                parent: top,
                spec,
                labels: Default::default(),
            },
        )
        .await?;
        let task = container.create_task().await;
        self.container = Some(container);
        self.task = Some(task?);
        Ok(())
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        match &mut self.task {
            Some(t) => Ok(t.start().await?),
            None => anyhow::bail!("start before create"),
        }
    }

    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<Readiness> {
        let Some(t) = &mut self.task else {
            anyhow::bail!("wait before create");
        };
        Ok(
            match t.wait_ready(&self.s.ready, deadline.into_std()).await? {
                run::ReadyOutcome::Ready(at) => Readiness::Ready(Instant::from_std(at)),
                run::ReadyOutcome::Exited(e) => Readiness::Exited {
                    code: e.code,
                    at: Instant::from_std(e.at),
                },
                run::ReadyOutcome::TimedOut => Readiness::TimedOut,
            },
        )
    }

    async fn wait_exit(&mut self, deadline: Instant) -> anyhow::Result<Option<(u32, Instant)>> {
        let Some(t) = &mut self.task else {
            anyhow::bail!("wait before create");
        };
        Ok(t.wait(deadline.into_std())
            .await?
            .map(|e| (e.code, Instant::from_std(e.at))))
    }

    fn marks(&self) -> Vec<(String, Instant)> {
        self.task
            .as_ref()
            .map(|t| {
                t.marks()
                    .iter()
                    .map(|(n, at)| (n.clone(), Instant::from_std(*at)))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn remove_container(&mut self) -> anyhow::Result<()> {
        if let Some(mut t) = self.task.take() {
            t.delete().await?;
        }
        if let Some(c) = self.container.take() {
            c.delete().await?;
        }
        Ok(())
    }

    async fn abort(&mut self) -> Vec<String> {
        self.task = None;
        self.container = None;
        self.pull = None;
        self.wait_for_containerd().await;
        let mut problems: Vec<String> = clean::cleanup_tracked(&self.conn)
            .await
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        let foreign = self.foreign();
        if let Some(state) = self.state.clone()
            && let Err(e) =
                clean::clean_image(&self.conn, &state, &Self::snapshotters(), foreign).await
        {
            problems.push(e.to_string());
        }
        problems
    }

    async fn finish(&mut self, keep_image: bool) -> anyhow::Result<()> {
        let errs = clean::cleanup_tracked(&self.conn).await;
        if let Some(e) = errs.into_iter().next() {
            return Err(e.into());
        }
        if !keep_image && let Some(state) = self.state.clone() {
            clean::clean_image(&self.conn, &state, &Self::snapshotters(), self.foreign()).await?;
        }
        Ok(())
    }
}
