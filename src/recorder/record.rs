//! `trace record`: run a workload in a container with the recorder under its
//! rootfs and write what it read as an advisor trace.
//!
//! Arrangement: the image is pulled eagerly (overlayfs); the container's
//! snapshot is prepared as usual, but its overlay gets one lower directory —
//! the recorder's FUSE mount — which serves the image's layers (the original
//! lower directories, merged read-only). Writes go to the container's upper
//! directory as always. This is the stargz arrangement (FUSE lowers under an
//! overlay), so the recorder is asked for exactly the reads the lazy
//! snapshotter would be asked for.
//!
//! Every mount made here is undone by a guard, on success, error or
//! interrupt; containers, tasks and snapshots by the connection's tracker;
//! the image, when this run pulled it, by deleting it afterwards.
use super::progress::{Phase, RecordProgress};
use super::{RecordedEvent, RecordedOp, Recording, Unmounted};
use crate::bench::source::RegistrySource;
use crate::containerd::clean;
use crate::containerd::pull::{Method, Pull, PullOptions, delete_image, get_image};
use crate::containerd::run::{self, Container, ContainerSpec, Readiness, ReadyOutcome};
use crate::containerd::{Connection, OVERLAYFS};
use crate::trace::format::{Clock, Event, Header, ImageId, Op, ReferenceRun, TraceWriter};
use crate::units::Seconds;
use anyhow::Context;
use containerd_client::types::Mount;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub image: String,
    /// Replaces the image's entrypoint and command (empty: the image's).
    pub command: Vec<String>,
    pub ready: Readiness,
    pub timeout: Duration,
    pub output: PathBuf,
    pub registry: crate::registry::RegistryOptions,
    /// Runs of the workload without the recorder first, to time it (the
    /// trace header's `reference_run`, their median); 0: none.
    pub reference_runs: u32,
    /// Where the phase and the counts so far are shown
    /// ([`RecordProgress::hidden`]: nowhere).
    pub progress: RecordProgress,
}

/// What a recording produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordReport {
    pub image: String,
    pub manifest_digest: String,
    pub output: String,
    pub events: u64,
    pub reads: u64,
    pub bytes_read: u64,
    pub files_opened: u64,
    /// Lookups the kernel sent to the recorder (names it had not cached),
    /// and of those the failed ones (names that do not exist): `stat`
    /// events in the trace.
    pub lookups: u64,
    pub absent_lookups: u64,
    pub ready_s: Option<Seconds>,
    pub exit_s: Option<Seconds>,
    pub exit_code: Option<u32>,
    pub timed_out: bool,
    /// Requests from processes outside the container, left out of the trace.
    pub foreign_events: u64,
    /// The recorder's overhead per open and per read, measured before the
    /// run when there is no reference run, and written to the trace header.
    pub recorder_overhead: Option<crate::trace::format::RecorderOverhead>,
    /// The runs without the recorder, when made: their median (what the
    /// trace header carries) and each run.
    pub reference_run: Option<ReferenceRun>,
    pub reference_runs: Vec<ReferenceRun>,
}

/// Messages to the trace writer: recorder events and the markers.
enum Msg {
    Fs(RecordedEvent),
    Ready(Instant),
    Exit(Instant, u32),
}

/// Mounts made by the recording, undone in reverse order on drop.
struct Mounts {
    dir: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.mounted.iter().rev() {
            if nix::mount::umount(m).is_err() {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An overlay mount's options: its lower directories, and the rest (upper
/// and work directory, flags).
struct OverlayParts {
    lowers: Vec<String>,
    options: Vec<String>,
}

/// The lower directories, upper and work directory of an overlay mount.
fn overlay_parts(m: &Mount) -> anyhow::Result<OverlayParts> {
    if m.r#type != "overlay" {
        anyhow::bail!(
            "the container's rootfs is a `{}` mount, not overlay: trace record needs the overlayfs snapshotter",
            m.r#type
        );
    }
    let mut lowers = Vec::new();
    let mut rest = Vec::new();
    for o in &m.options {
        match o.strip_prefix("lowerdir=") {
            Some(l) => lowers.extend(l.split(':').map(str::to_string)),
            None => rest.push(o.clone()),
        }
    }
    if lowers.is_empty() {
        anyhow::bail!("the container's overlay rootfs has no lower directory");
    }
    Ok(OverlayParts {
        lowers,
        options: rest,
    })
}

/// Pull, run with the recorder, write the trace. `interrupt` stops the
/// workload early; what was recorded so far is kept.
pub async fn record(
    conn: &Connection,
    s: &RecordSettings,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<RecordReport> {
    let mut pulled_here = None;
    let r = record_inner(conn, s, &mut interrupt, &mut pulled_here).await;
    s.progress.phase(Phase::CleanUp);
    // Whatever happened, nothing of ours stays in containerd: the container,
    // then the image if this run pulled it (a synchronous GC takes its
    // content and snapshots).
    let mut problems = clean::cleanup_tracked(conn).await;
    if let Some(reference) = pulled_here
        && let Err(e) = delete_image(conn, &reference, true).await
    {
        problems.push(e);
    }
    let report = r?;
    if let Some(p) = problems.into_iter().next() {
        return Err(anyhow::Error::new(p).context("removing the recording container and image"));
    }
    Ok(report)
}

async fn record_inner(
    conn: &Connection,
    s: &RecordSettings,
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
    pulled_here: &mut Option<String>,
) -> anyhow::Result<RecordReport> {
    let Prepared {
        id,
        container,
        overlay,
        manifest_digest,
        reference_runs,
    } = prepare(conn, s, interrupt, pulled_here).await?;
    let reference = ReferenceRun::median_of(&reference_runs);

    // The recorder serves the merged lower layers.
    let guard = Mounts::view_of(&id, &overlay.lowers)?;
    let overhead = match reference {
        Some(_) => None,
        None => measure_overhead(&guard.dir),
    };
    let header = trace_header(s, &manifest_digest, overhead, reference);
    // Unmounted (with the session joined) before the view below it.
    s.progress.phase(Phase::RecordedRun);
    let session = Session::start(&guard, header, &s.output, s.progress.clone())?;
    let rootfs = recorder_rootfs(overlay.options, &guard.fuse());
    let scope = session.scope.clone();
    let run = run_recorded(&container, rootfs, &scope, s, &session.timeline, interrupt).await;
    container.delete().await.ok();
    let Stopped {
        finished,
        written: Written { stats, trace },
    } = session.stop()?;
    let fuse = guard.fuse();
    drop(guard);
    let foreign_events = scope.foreign();
    warn_after_recording(finished, &fuse, foreign_events);
    let end = run?;
    // Only a recording that returned (interrupted or timed out included: the
    // trace so far) replaces an existing file; on an error it is as it was.
    trace.commit()?;
    Ok(RecordReport {
        image: s.image.clone(),
        manifest_digest,
        output: s.output.display().to_string(),
        events: stats.events,
        reads: stats.reads,
        bytes_read: stats.bytes,
        files_opened: stats.opens,
        lookups: stats.lookups,
        absent_lookups: stats.absent,
        ready_s: stats.ready_ns.map(|t| Seconds(t as f64 * 1e-9)),
        exit_s: stats.exit_ns.map(|t| Seconds(t as f64 * 1e-9)),
        exit_code: end.exit_code,
        timed_out: end.timed_out,
        foreign_events,
        recorder_overhead: overhead,
        reference_run: reference,
        reference_runs,
    })
}

/// The image pulled, the reference run made (when asked for) and the
/// recording's container created.
struct Prepared {
    id: String,
    container: Container,
    /// The container's rootfs as the overlayfs snapshotter prepared it.
    overlay: OverlayParts,
    manifest_digest: String,
    /// Every reference run that finished, in order.
    reference_runs: Vec<ReferenceRun>,
}

async fn prepare(
    conn: &Connection,
    s: &RecordSettings,
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
    pulled_here: &mut Option<String>,
) -> anyhow::Result<Prepared> {
    let source = RegistrySource::with_options(&s.image, s.registry.clone())?;
    let img = std::sync::Arc::new(source.resolve().await?);
    let manifest_digest = img.target().digest.clone();
    if get_image(conn, &img.reference).await?.is_none() {
        *pulled_here = Some(img.reference.clone());
    }
    let top_chain_id = pull_eagerly(conn, &source, &img).await?;

    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&img.config.bytes).context("the image config is not valid JSON")?;
    let args = (!s.command.is_empty()).then_some(s.command.as_slice());
    let mut reference_runs = Vec::new();
    for i in 0..s.reference_runs {
        s.progress.reference_run(i + 1, s.reference_runs);
        match reference_run(conn, s, &img, &top_chain_id, &config, args, interrupt).await? {
            Some(r) => reference_runs.push(r),
            // Interrupted or timed out: another try would be no different.
            None => {
                warn_unfinished_reference(i, s.reference_runs);
                break;
            }
        }
    }
    if *interrupt.borrow() {
        crate::bail_user!("interrupted before the recording started: no trace written");
    }
    let id = format!("record-{}", crate::containerd::nanos());
    let container = overlay_container(conn, &id, &img, &top_chain_id, &config, args).await?;
    let mounts = container.rootfs_mounts().await?;
    let [root] = mounts.as_slice() else {
        anyhow::bail!("expected one rootfs mount for {id}, got {}", mounts.len());
    };
    let overlay = overlay_parts(root)?;
    Ok(Prepared {
        id,
        container,
        overlay,
        manifest_digest,
        reference_runs,
    })
}

/// Pull the image eagerly (overlayfs); returns the chain id of its top layer.
async fn pull_eagerly(
    conn: &Connection,
    source: &RegistrySource,
    img: &std::sync::Arc<crate::containerd::pull::ImageToPull>,
) -> anyhow::Result<String> {
    let mut pull = Pull::begin(
        conn,
        img.clone(),
        std::sync::Arc::new(source.clone()),
        PullOptions::new(Method::Eager),
    )
    .await?;
    pull.fetch().await?;
    if let Err(e) = pull.unpack().await {
        let _ = pull.abort().await;
        return Err(e.into());
    }
    Ok(pull.finish().await?.top_chain_id)
}

impl Mounts {
    /// A scratch directory for container `id` with the image's `lowers`
    /// mounted, merged and read-only, at its `view` (and an empty `fuse`
    /// for the recorder).
    fn view_of(id: &str, lowers: &[String]) -> anyhow::Result<Mounts> {
        let mut guard = Mounts {
            dir: std::env::temp_dir().join(format!("advisor-{id}")),
            mounted: Vec::new(),
        };
        let (view, fuse) = (guard.view(), guard.fuse());
        for d in [&view, &fuse] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        mount_view(lowers, &view)?;
        guard.mounted.push(view);
        Ok(guard)
    }

    /// The image's layers, merged read-only: what the recorder serves.
    fn view(&self) -> PathBuf {
        self.dir.join("view")
    }

    /// Where the recorder is mounted: the overlay's one lower directory.
    fn fuse(&self) -> PathBuf {
        self.dir.join("fuse")
    }
}

/// Without a reference run, the recorder's own cost on this node is the
/// correction prediction falls back on (the probe's mounts are gone when it
/// returns, error or not).
fn measure_overhead(dir: &Path) -> Option<crate::trace::format::RecorderOverhead> {
    match super::probe::measure(&dir.join("probe")) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(
                "could not measure the recorder's overhead ({e:#}); compute gaps of this trace include it"
            );
            None
        }
    }
}

/// Forward recorder events into the writer's channel (one ordered stream).
fn forward(
    rx: mpsc::Receiver<RecordedEvent>,
    tx: mpsc::Sender<Msg>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for ev in rx {
            if tx.send(Msg::Fs(ev)).is_err() {
                break;
            }
        }
    })
}

/// The container's overlay with the recorder's mount as its one lower directory.
fn recorder_rootfs(mut options: Vec<String>, fuse: &Path) -> Mount {
    options.push(format!("lowerdir={}", fuse.display()));
    Mount {
        r#type: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options,
    }
}

fn trace_header(
    s: &RecordSettings,
    manifest_digest: &str,
    overhead: Option<crate::trace::format::RecorderOverhead>,
    reference: Option<ReferenceRun>,
) -> Header {
    let mut header = Header::new(crate::trace::format::RECORDED, Clock::Monotonic);
    header.image = Some(ImageId {
        reference: Some(s.image.clone()),
        digest: Some(manifest_digest.to_string()),
    });
    header.source = Some(format!("advisor trace record; command: {:?}", s.command));
    header.recorder_overhead = overhead;
    header.reference_run = reference;
    header
}

/// The recorder at work: its FUSE mount, the thread forwarding its events
/// and the trace writer's thread.
struct Session {
    recording: Recording,
    scope: std::sync::Arc<super::Scope>,
    forwarder: std::thread::JoinHandle<()>,
    writer: std::thread::JoinHandle<anyhow::Result<Written>>,
    timeline: Timeline,
}

/// What a stopped session left: how its mount came off, and the trace.
struct Stopped {
    finished: Unmounted,
    written: Written,
}

impl Session {
    /// Mount the recorder on `guard`'s view and start writing the trace
    /// (`header`, then events as they come) beside `output`.
    fn start(
        guard: &Mounts,
        header: Header,
        output: &Path,
        progress: RecordProgress,
    ) -> anyhow::Result<Session> {
        let origin = Instant::now();
        let (tx, rx) = mpsc::channel::<RecordedEvent>();
        let (mtx, mrx) = mpsc::channel::<Msg>();
        let forwarder = forward(rx, mtx.clone());
        let recording = Recording::mount(&guard.view(), &guard.fuse(), origin, tx)?;
        let scope = recording.scope.clone();
        let timeline = Timeline {
            origin,
            start_ns: std::sync::Arc::new(std::sync::OnceLock::new()),
            tx: mtx,
        };
        let writer = spawn_writer(
            output,
            header,
            mrx,
            origin,
            timeline.start_ns.clone(),
            progress,
        )?;
        Ok(Session {
            recording,
            scope,
            forwarder,
            writer,
            timeline,
        })
    }

    /// Unmount the recorder (joins its session: every event is sent), then
    /// wait for the writer. If the recorder's mount could not be removed, its
    /// session still holds the event channel: waiting for the forwarder and
    /// the writer would hang.
    fn stop(self) -> anyhow::Result<Stopped> {
        let finished = self.recording.finish()?;
        let _ = self.forwarder.join();
        drop(self.timeline);
        let written = self
            .writer
            .join()
            .map_err(|_| anyhow::anyhow!("the trace writer panicked"))??;
        Ok(Stopped { finished, written })
    }
}

/// The recording's clock and the markers' way to the writer.
struct Timeline {
    origin: Instant,
    /// When the task started, from `origin`: the trace's time zero.
    start_ns: std::sync::Arc<std::sync::OnceLock<u64>>,
    tx: mpsc::Sender<Msg>,
}

/// How the recorded run ended.
struct RunEnd {
    exit_code: Option<u32>,
    timed_out: bool,
}

/// Run the workload on the recorder's rootfs until it exits, times out or is
/// interrupted, sending `ready` and `exit` to the writer.
async fn run_recorded(
    container: &Container,
    rootfs: Mount,
    scope: &super::Scope,
    s: &RecordSettings,
    timeline: &Timeline,
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<RunEnd> {
    let mut task = container
        .create_task_with_rootfs(Some(vec![rootfs]))
        .await?;
    // From here on only the container's processes are recorded.
    if let Err(e) = scope.set(task.pid) {
        tracing::warn!(
            "cannot read the pid namespace of the container's process {} ({e}); requests from processes outside the container will be recorded too",
            task.pid
        );
    }
    let t_start = Instant::now();
    let _ = timeline.start_ns.set(
        t_start
            .saturating_duration_since(timeline.origin)
            .as_nanos() as u64,
    );
    task.start().await?;
    let deadline = t_start + s.timeout;
    let mtx = &timeline.tx;
    let mut end = RunEnd {
        exit_code: None,
        timed_out: false,
    };
    tokio::select! {
        r = async {
            match task.wait_ready(&s.ready, deadline).await? {
                ReadyOutcome::Ready(at) => {
                    let _ = mtx.send(Msg::Ready(at));
                    Ok::<_, anyhow::Error>(task.wait(deadline).await?)
                }
                ReadyOutcome::Exited(e) => {
                    if matches!(s.ready, Readiness::Exit) {
                        let _ = mtx.send(Msg::Ready(e.at));
                    }
                    Ok(Some(e))
                }
                ReadyOutcome::TimedOut => Ok(None),
            }
        } => {
            match r? {
                Some(e) => {
                    let _ = mtx.send(Msg::Exit(e.at, e.code));
                    end.exit_code = Some(e.code);
                }
                None => end.timed_out = true,
            }
        }
        _ = interrupt.changed() => {}
    }
    task.delete().await?;
    Ok(end)
}

/// What the user should know about a finished recording's mounts and scope.
fn warn_after_recording(finished: Unmounted, fuse: &Path, foreign_events: u64) {
    if finished == Unmounted::Forced {
        tracing::warn!(
            "a process outside the container kept the recorder's mount {} busy after the run; it was detached (the trace is complete)",
            fuse.display()
        );
    }
    if foreign_events > 0 {
        tracing::warn!(
            "{foreign_events} request(s) from processes outside the container (a shell, `du` or an indexer walking {}) were left out of the trace",
            std::env::temp_dir().display()
        );
    }
}

/// The workload's container on the eagerly pulled image (overlayfs), as both
/// the reference run and the recording use it.
async fn overlay_container(
    conn: &Connection,
    id: &str,
    img: &crate::containerd::pull::ImageToPull,
    parent: &str,
    config: &oci_spec::image::ImageConfiguration,
    args: Option<&[String]>,
) -> anyhow::Result<Container> {
    let spec = run::runtime_spec(&conn.namespace, id, config, args)?;
    Ok(Container::create(
        conn,
        &ContainerSpec {
            id: id.to_string(),
            image: img.reference.clone(),
            snapshotter: OVERLAYFS.into(),
            parent: parent.to_string(),
            spec,
            labels: Default::default(),
        },
    )
    .await?)
}

/// Run the workload once on the plain overlayfs rootfs (no recorder) and
/// time it from task start to `ready` and to exit. None when it was
/// interrupted or timed out (the recording still goes ahead).
async fn reference_run(
    conn: &Connection,
    s: &RecordSettings,
    img: &crate::containerd::pull::ImageToPull,
    parent: &str,
    config: &oci_spec::image::ImageConfiguration,
    args: Option<&[String]>,
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<ReferenceRun>> {
    let id = format!("record-ref-{}", crate::containerd::nanos());
    let container = overlay_container(conn, &id, img, parent, config, args).await?;
    let run = async {
        let mut task = container.create_task().await?;
        let t0 = Instant::now();
        task.start().await?;
        let deadline = t0 + s.timeout;
        let ns = |at: Instant| at.saturating_duration_since(t0).as_nanos() as u64;
        let out = tokio::select! {
            r = async {
                let (ready, exit) = match task.wait_ready(&s.ready, deadline).await? {
                    ReadyOutcome::Ready(at) => {
                        s.progress.ready(at.saturating_duration_since(t0));
                        (Some(ns(at)), task.wait(deadline).await?)
                    }
                    ReadyOutcome::Exited(e) => (None, Some(e)),
                    ReadyOutcome::TimedOut => (None, None),
                };
                anyhow::Ok(exit.map(|e| ReferenceRun {
                    ready_ns: ready,
                    exit_ns: ns(e.at),
                    exit_code: e.code,
                    runs: None,
                }))
            } => r?,
            _ = interrupt.changed() => None,
        };
        task.delete().await?;
        anyhow::Ok(out)
    }
    .await;
    container.delete().await.ok();
    run
}

fn warn_unfinished_reference(done: u32, asked: u32) {
    if done == 0 {
        tracing::warn!(
            "the reference run (without the recorder) did not finish; gaps are corrected by the measured recorder overhead only"
        );
    } else {
        tracing::warn!(
            "reference run {} of {asked} (without the recorder) did not finish; the trace keeps the median of the {done} before it",
            done + 1
        );
    }
}

/// Mount the image's lower directories, merged and read-only, at `view`.
fn mount_view(lowers: &[String], view: &Path) -> anyhow::Result<()> {
    use nix::mount::{MsFlags, mount};
    let r = if lowers.len() == 1 {
        // overlayfs needs two lowers without an upper: bind the single layer.
        mount(
            Some(lowers[0].as_str()),
            view,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .and_then(|_| {
            mount(
                None::<&str>,
                view,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
        })
    } else {
        let opts = format!("lowerdir={}", lowers.join(":"));
        mount(
            Some("overlay"),
            view,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(opts.as_str()),
        )
    };
    r.with_context(|| format!("mounting the image's layers at {}", view.display()))
}

#[derive(Debug, Default)]
struct WriterStats {
    events: u64,
    reads: u64,
    bytes: u64,
    opens: u64,
    lookups: u64,
    absent: u64,
    ready_ns: Option<u64>,
    exit_ns: Option<u64>,
}

/// How often the writer updates the progress line.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The trace being written (committed when the recording returns).
type TraceFile = TraceWriter<crate::output::Output>;

/// What the writer thread hands back: its counts and the trace to commit.
struct Written {
    stats: WriterStats,
    trace: TraceFile,
}

/// The writer thread: events in arrival order, times from the task's start.
fn spawn_writer(
    path: &Path,
    header: Header,
    rx: mpsc::Receiver<Msg>,
    origin: Instant,
    start_ns: std::sync::Arc<std::sync::OnceLock<u64>>,
    progress: RecordProgress,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Written>>> {
    // Written beside the target; put in place once the recording returns.
    let file = crate::output::Output::create(path)
        .with_context(|| format!("cannot create the trace {}", path.display()))?;
    let mut w = TraceWriter::new(file, path.display().to_string(), &header)?;
    Ok(std::thread::spawn(move || {
        let mut st = WriterStats::default();
        let rel = |t_ns: u64| t_ns.saturating_sub(start_ns.get().copied().unwrap_or(0));
        let since = |at: Instant| rel(at.saturating_duration_since(origin).as_nanos() as u64);
        // The progress line is redrawn a few times a second at most, not per event.
        let mut next_update = Instant::now();
        for m in rx {
            let ev = match m {
                Msg::Fs(e) => {
                    let t = rel(e.t_ns);
                    let mut ev = match e.op {
                        RecordedOp::Open => {
                            st.opens += 1;
                            Event::on_path(t, e.pid, Op::Open, e.path)
                        }
                        RecordedOp::Read {
                            offset,
                            len: _,
                            got,
                        } => {
                            st.reads += 1;
                            st.bytes += got;
                            Event::read(t, e.pid, e.path, offset, Some(got))
                        }
                        RecordedOp::Readdir => Event::on_path(t, e.pid, Op::Readdir, e.path),
                        RecordedOp::Lookup { errno } => {
                            st.lookups += 1;
                            let mut ev = Event::on_path(t, e.pid, Op::Stat, e.path);
                            if let Some(n) = errno {
                                st.absent += 1;
                                let name = format!("{:?}", nix::errno::Errno::from_raw(n));
                                ev.err = Some(name.into());
                                ev.result = Some(-i64::from(n));
                            }
                            ev
                        }
                    };
                    ev.dur = Some(e.dur_ns);
                    ev
                }
                Msg::Ready(at) => {
                    let t = since(at);
                    st.ready_ns = Some(t);
                    progress.ready(Duration::from_nanos(t));
                    Event::new(t, 0, Op::Ready)
                }
                Msg::Exit(at, code) => {
                    let t = since(at);
                    st.exit_ns = Some(t);
                    let mut e = Event::new(t, 0, Op::Exit);
                    e.result = Some(code as i64);
                    e
                }
            };
            st.events += 1;
            w.write(&ev)?;
            let now = Instant::now();
            if now >= next_update {
                progress.seen(st.events, st.opens, st.bytes);
                next_update = now + PROGRESS_EVERY;
            }
        }
        progress.seen(st.events, st.opens, st.bytes);
        Ok(Written {
            stats: st,
            trace: w,
        })
    }))
}
