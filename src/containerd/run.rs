//! Running a container from a pulled image, in composable steps:
//! [`runtime_spec`] (OCI runtime spec from the image config),
//! [`Container::create`] (Snapshots.Prepare of the container's snapshot +
//! Containers.Create), [`Container::create_task`] (stdio FIFOs, Snapshots.Mounts,
//! Tasks.Create, Tasks.Wait issued before Start), [`Task::start`],
//! [`Task::wait_ready`], [`Task::wait`], [`Task::kill`], [`Task::delete`] and
//! [`Container::delete`]. `trace record` can swap in its own spec or mounts
//! between the steps.
//!
//! Follows containerd-grpc.md §3: the spec is a `google.protobuf.Any` holding
//! the runtime spec as JSON; stdio are FIFOs advisor creates and opens before
//! Start (the shim opens their write ends during Tasks.Create); Wait is issued
//! before Start so an instant exit is not missed. Readiness is a regex matched
//! against stdout/stderr lines, a path appearing in the container's root
//! (seen through `/proc/<pid>/root`), or the exit. Owns these calls and the
//! stdio plumbing; it reports the instants it observed events at, and leaves
//! what they mean to the caller.
use super::tracker::Tracked;
use super::unpack::Prepared;
use super::{Connection, Error, Result};
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container as PbContainer, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, KillRequest, ListContainersRequest, ListTasksRequest, StartRequest,
    WaitRequest,
};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};

/// The runtime every container uses (containerd's default shim).
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// Type URL containerd registers for the runtime spec (typeurl, runtime-spec 1).
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// containerd's default PATH when the image sets none (oci.WithDefaultPathEnv).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Prefix of the marker lines a workload prints between its phases.
pub const MARK_PREFIX: &str = "ADVISOR-MARK ";
/// Marker lines kept per task (a bound against a chatty workload).
const MAX_MARKS: usize = 10_000;

/// How many output lines a task keeps for error messages.
const OUTPUT_TAIL: usize = 20;
/// How often a readiness path is polled.
const PATH_POLL: Duration = Duration::from_millis(5);
/// How long a killed task may take to exit before delete gives up waiting.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// When a started container counts as ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// When its process exits (ready = complete).
    Exit,
    /// When a stdout or stderr line matches.
    Line(regex::Regex),
    /// When this absolute path exists inside the container's root.
    Path(PathBuf),
}

impl Readiness {
    pub fn describe(&self) -> String {
        match self {
            Readiness::Exit => "exit".into(),
            Readiness::Line(r) => format!("a stdout/stderr line matching /{}/", r.as_str()),
            Readiness::Path(p) => format!("{} appearing in the rootfs", p.display()),
        }
    }
}

/// The OCI runtime spec `ctr run` gives ([`default_spec`]: containerd's
/// oci/spec.go populateDefaultUnixSpec, namespaces pid, ipc, uts, mount,
/// network; cgroups path `/<namespace>/<id>`; writable root `rootfs`), with the process from
/// the image config (oci.WithImageConfig) or `args` replacing its whole
/// command line, as `ctr run IMAGE ID ARGS…` does.
pub fn runtime_spec(
    namespace: &str,
    id: &str,
    config: &ImageConfiguration,
    args: Option<&[String]>,
) -> Result<Spec> {
    let bad = |detail: String| Error::BadRunSpec {
        container: id.to_string(),
        detail,
    };
    let mut spec = default_spec();
    let c = config.config().clone().unwrap_or_default();
    let args: Vec<String> = match args {
        Some(a) if !a.is_empty() => a.to_vec(),
        _ => c
            .entrypoint()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(c.cmd().clone().unwrap_or_default())
            .collect(),
    };
    if args.is_empty() {
        return Err(bad(
            "the image config has no Entrypoint or Cmd: give a command after `--`".into(),
        ));
    }
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH_ENV.into());
    }
    let cwd = c
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let (uid, gid) = parse_user(c.user().as_deref().unwrap_or("")).map_err(bad)?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(cwd));
    let mut user = process.user().clone();
    user.set_uid(uid);
    user.set_gid(gid);
    // containerd's WithAdditionalGIDs reads the rootfs's /etc/group; root's
    // own group is all it finds in a minimal image.
    user.set_additional_gids((uid == 0).then(|| vec![gid]));
    process.set_user(user);
    spec.set_process(Some(process));
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{namespace}/{id}"))));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The spec `ctr run` gives a container before the image's process is set
/// (containerd 1.6's `oci.GenerateSpec` with ctr's default devices and CPU
/// shares), captured from `ctr containers info` on the lab: the same
/// capabilities, mounts (/proc nosuid,noexec,nodev; /run tmpfs), masked
/// paths, namespaces and device cgroup rules as containerd's own clients, so
/// a bench measures the container they start (issue 14).
fn default_spec() -> Spec {
    serde_json::from_str(include_str!("default-spec.json"))
        .expect("default-spec.json is a valid OCI runtime spec (tested)")
}

/// `uid`, `uid:gid` or `root`; named users would need the rootfs's /etc/passwd.
fn parse_user(user: &str) -> std::result::Result<(u32, u32), String> {
    let num = |s: &str| {
        s.parse::<u32>().map_err(|_| {
            format!(
                "image user `{user}` is not numeric: advisor supports `uid`, `uid:gid` or `root`"
            )
        })
    };
    match user.split_once(':') {
        _ if user.is_empty() || user == "root" => Ok((0, 0)),
        None => Ok((num(user)?, 0)),
        Some((u, g)) => Ok((
            if u == "root" { 0 } else { num(u)? },
            if g == "root" { 0 } else { num(g)? },
        )),
    }
}

/// What to create a container from.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub id: String,
    /// Image name recorded on the container.
    pub image: String,
    pub snapshotter: String,
    /// Snapshot the container's writable snapshot is prepared on (the image's top chain ID).
    pub parent: String,
    pub spec: Spec,
    pub labels: BTreeMap<String, String>,
}

/// A created container (record and snapshot).
#[derive(Debug)]
pub struct Container {
    conn: Connection,
    pub id: String,
    pub snapshotter: String,
    pub snapshot_key: String,
}

impl Container {
    /// Prepare the container's snapshot on the image's top layer and create the
    /// record, under a lease (as Go's `NewContainer`): until the container
    /// record references the new snapshot, a GC pass would collect it.
    pub async fn create(conn: &Connection, spec: &ContainerSpec) -> Result<Container> {
        let lease = conn
            .create_lease("container", std::time::Duration::from_secs(3600))
            .await?;
        let leased = conn.with_lease(&lease);
        let r = Self::create_leased(conn, &leased, spec).await;
        let deleted = conn.delete_lease(&lease, false).await;
        let c = r?;
        deleted?;
        Ok(c)
    }

    async fn create_leased(
        conn: &Connection,
        leased: &Connection,
        spec: &ContainerSpec,
    ) -> Result<Container> {
        let key = format!("advisor-{}", spec.id);
        match leased
            .prepare_snapshot(
                &spec.snapshotter,
                &key,
                &spec.parent,
                &BTreeMap::new(),
                &format!("container {} on {}", spec.id, spec.image),
            )
            .await?
        {
            Prepared::Mounts(_) => {}
            Prepared::AlreadyExists(m) => {
                return Err(conn.rpc_error(
                    format!("Snapshots.Prepare {} {key}", spec.snapshotter),
                    tonic::Status::already_exists(m),
                ));
            }
        }
        let container = Container {
            conn: conn.clone(),
            id: spec.id.clone(),
            snapshotter: spec.snapshotter.clone(),
            snapshot_key: key.clone(),
        };
        let json = serde_json::to_vec(&spec.spec).map_err(|e| Error::BadRunSpec {
            container: spec.id.clone(),
            detail: e.to_string(),
        })?;
        let tracked = Tracked::Container {
            namespace: conn.namespace.clone(),
            id: spec.id.clone(),
        };
        conn.tracker().add(tracked.clone());
        let r = ContainersClient::new(conn.channel())
            .create(leased.request(CreateContainerRequest {
                container: Some(PbContainer {
                    id: spec.id.clone(),
                    labels: spec.labels.clone().into_iter().collect(),
                    image: spec.image.clone(),
                    runtime: Some(Runtime {
                        name: RUNTIME.into(),
                        options: None,
                    }),
                    spec: Some(prost_types::Any {
                        type_url: SPEC_TYPE_URL.into(),
                        value: json,
                    }),
                    snapshotter: spec.snapshotter.clone(),
                    snapshot_key: key,
                    ..Default::default()
                }),
            }))
            .await;
        if let Err(s) = r {
            let e = conn.rpc_error(format!("Containers.Create {}", spec.id), s);
            let e = conn.untrack_unless_lost(&tracked, e);
            let _ = container.remove_snapshot().await;
            return Err(e);
        }
        // The snapshot goes before the record (as Go's WithSnapshotCleanup):
        // with the record deleted first, a GC pass in between collects the
        // snapshot, and containerd 1.6 then keeps its parent listing a child
        // that no longer exists (`Snapshots.Remove` refuses the parent).
        let snapshot = Tracked::Snapshot {
            namespace: leased.namespace.clone(),
            snapshotter: spec.snapshotter.clone(),
            key: container.snapshot_key.clone(),
        };
        conn.tracker().remove(&snapshot);
        conn.tracker().add(snapshot);
        Ok(container)
    }

    async fn remove_snapshot(&self) -> Result<bool> {
        self.conn
            .remove_snapshot(&self.snapshotter, &self.snapshot_key)
            .await
    }

    /// Create the task: FIFOs for stdout/stderr, the rootfs mounts, Tasks.Create,
    /// then Tasks.Wait in the background.
    pub async fn create_task(&self) -> Result<Task> {
        self.create_task_with_rootfs(None).await
    }

    /// The mounts of the container's snapshot (what the task's rootfs is made of).
    pub async fn rootfs_mounts(&self) -> Result<Vec<containerd_client::types::Mount>> {
        self.conn
            .snapshot_mounts(&self.snapshotter, &self.snapshot_key)
            .await
    }

    /// [`Container::create_task`] with a rootfs other than the snapshot's own
    /// mounts (`trace record` puts its recorder under the overlay's lower dirs).
    pub async fn create_task_with_rootfs(
        &self,
        rootfs: Option<Vec<containerd_client::types::Mount>>,
    ) -> Result<Task> {
        let io_err = |what: &str, source: std::io::Error| Error::Io {
            container: self.id.clone(),
            what: what.to_string(),
            source,
        };
        let dir = std::env::temp_dir().join(format!("advisor-fifo-{}", self.id));
        let fifo_tracked = Tracked::FifoDir { path: dir.clone() };
        self.conn.tracker().add(fifo_tracked.clone());
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating the FIFO directory", e))?;
        let stdout = dir.join(format!("{}-stdout", self.id));
        let stderr = dir.join(format!("{}-stderr", self.id));
        for p in [&stdout, &stderr] {
            nix::unistd::mkfifo(p.as_path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| io_err(&format!("mkfifo {}", p.display()), e.into()))?;
        }
        // Open the read ends before Tasks.Create so the shim's open of the write
        // ends does not block; they are read only once the shim holds them
        // (before that, a FIFO with no writer reads as end of file).
        let open = |p: &Path| {
            tokio::net::unix::pipe::OpenOptions::new()
                .open_receiver(p)
                .map_err(|e| io_err(&format!("opening {}", p.display()), e))
        };
        let out_rx = open(&stdout)?;
        let err_rx = open(&stderr)?;
        let mounts = match rootfs {
            Some(m) => m,
            None => self.rootfs_mounts().await?,
        };
        let tracked = Tracked::Task {
            namespace: self.conn.namespace.clone(),
            container: self.id.clone(),
        };
        self.conn.tracker().add(tracked.clone());
        let mut tasks = TasksClient::new(self.conn.channel());
        let created = tasks
            .create(self.conn.request(CreateTaskRequest {
                container_id: self.id.clone(),
                rootfs: mounts,
                stdin: String::new(),
                stdout: stdout.display().to_string(),
                stderr: stderr.display().to_string(),
                terminal: false,
                ..Default::default()
            }))
            .await;
        let pid = match created {
            Ok(r) => r.into_inner().pid,
            Err(s) => {
                let e = self.conn.rpc_error(format!("Tasks.Create {}", self.id), s);
                return Err(self.conn.untrack_unless_lost(&tracked, e));
            }
        };
        let (line_tx, line_rx) = mpsc::unbounded_channel();
        let readers = vec![
            tokio::spawn(read_lines(out_rx, Stream::Stdout, line_tx.clone())),
            tokio::spawn(read_lines(err_rx, Stream::Stderr, line_tx)),
        ];
        let (exit_tx, exit_rx) = watch::channel(None);
        let conn = self.conn.clone();
        let id = self.id.clone();
        let waiter = tokio::spawn(async move {
            let r = TasksClient::new(conn.channel())
                .wait(conn.request(WaitRequest {
                    container_id: id.clone(),
                    exec_id: String::new(),
                }))
                .await;
            let at = Instant::now();
            let v = match r {
                Ok(w) => Ok(Exit {
                    code: w.into_inner().exit_status,
                    at,
                }),
                Err(s) => Err(s.to_string()),
            };
            let _ = exit_tx.send(Some(v));
        });
        Ok(Task {
            conn: self.conn.clone(),
            container: self.id.clone(),
            pid,
            fifo_dir: dir,
            lines: line_rx,
            tail: VecDeque::new(),
            marks: Vec::new(),
            exit: exit_rx,
            waiter,
            readers,
            started: false,
            deleted: false,
        })
    }

    /// Delete the container record, its snapshot and its FIFO directory. Idempotent.
    pub async fn delete(&self) -> Result<()> {
        // Snapshot first, then the record (see `create_leased`); like Go's
        // client, never while the container still has a task (its rootfs is
        // mounted): the task goes first.
        if list_tasks(&self.conn).await?.contains(&self.id) {
            return Err(self.conn.rpc_error(
                format!("Containers.Delete {}", self.id),
                tonic::Status::failed_precondition("the container still has a task"),
            ));
        }
        self.remove_snapshot().await?;
        match ContainersClient::new(self.conn.channel())
            .delete(self.conn.request(DeleteContainerRequest {
                id: self.id.clone(),
            }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => {
                return Err(self
                    .conn
                    .rpc_error(format!("Containers.Delete {}", self.id), s));
            }
        }
        self.conn.tracker().remove(&Tracked::Container {
            namespace: self.conn.namespace.clone(),
            id: self.id.clone(),
        });
        let dir = std::env::temp_dir().join(format!("advisor-fifo-{}", self.id));
        let _ = std::fs::remove_dir_all(&dir);
        self.conn.tracker().remove(&Tracked::FifoDir { path: dir });
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line a container wrote, and when advisor read it.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
    pub at: Instant,
}

/// How the task exited, and when advisor saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: u32,
    pub at: Instant,
}

enum Event {
    Deadline,
    Tick,
    Exit(Exit),
    Line(Line),
}

/// What ended a wait for readiness.
#[derive(Debug, Clone)]
pub enum ReadyOutcome {
    /// The readiness condition held at this instant.
    Ready(Instant),
    /// The process exited before the condition held (or readiness is `Exit`).
    Exited(Exit),
    /// The deadline passed.
    TimedOut,
}

async fn read_lines(
    rx: tokio::net::unix::pipe::Receiver,
    stream: Stream,
    tx: mpsc::UnboundedSender<Line>,
) {
    let mut lines = tokio::io::BufReader::new(rx).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        if tx
            .send(Line {
                stream,
                text,
                at: Instant::now(),
            })
            .is_err()
        {
            break;
        }
    }
}

/// A created task. Delete it with [`Task::delete`] (kills it if running).
pub struct Task {
    conn: Connection,
    pub container: String,
    pub pid: u32,
    fifo_dir: PathBuf,
    lines: mpsc::UnboundedReceiver<Line>,
    tail: VecDeque<Line>,
    /// Marker lines (`ADVISOR-MARK <name>`) with the instant advisor read them.
    marks: Vec<(String, Instant)>,
    exit: watch::Receiver<Option<std::result::Result<Exit, String>>>,
    waiter: tokio::task::JoinHandle<()>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    started: bool,
    deleted: bool,
}

impl Task {
    /// Tasks.Start.
    pub async fn start(&mut self) -> Result<()> {
        TasksClient::new(self.conn.channel())
            .start(self.conn.request(StartRequest {
                container_id: self.container.clone(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|s| {
                self.conn
                    .rpc_error(format!("Tasks.Start {}", self.container), s)
            })?;
        self.started = true;
        Ok(())
    }

    /// The exit, once seen.
    pub fn exited(&self) -> Option<Exit> {
        match &*self.exit.borrow() {
            Some(Ok(e)) => Some(*e),
            _ => None,
        }
    }

    /// The last lines the container wrote (for error messages).
    pub fn output_tail(&self) -> Vec<String> {
        self.tail
            .iter()
            .map(|l| {
                let s = match l.stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                format!("{s}: {}", l.text)
            })
            .collect()
    }

    /// The marker lines seen so far, in order: a workload prints
    /// `ADVISOR-MARK <name>` between its phases and calibration times them.
    pub fn marks(&self) -> &[(String, Instant)] {
        &self.marks
    }

    fn keep(&mut self, line: Line) {
        if let Some(name) = line.text.strip_prefix(MARK_PREFIX)
            && self.marks.len() < MAX_MARKS
        {
            self.marks.push((name.trim().to_string(), line.at));
        }
        if self.tail.len() == OUTPUT_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// Wait until the container is ready, exits, or the deadline passes.
    pub async fn wait_ready(
        &mut self,
        readiness: &Readiness,
        deadline: Instant,
    ) -> Result<ReadyOutcome> {
        if let Some(e) = self.exited() {
            self.drain_lines();
            return Ok(self.ready_at_exit(readiness, e));
        }
        let root = PathBuf::from(format!("/proc/{}/root", self.pid));
        let poll_path = matches!(readiness, Readiness::Path(_));
        loop {
            match self.next_event(deadline, poll_path).await? {
                Event::Deadline => return Ok(ReadyOutcome::TimedOut),
                Event::Exit(e) => {
                    // Lines written just before the exit may still be in flight.
                    self.drain_lines();
                    return Ok(self.ready_at_exit(readiness, e));
                }
                Event::Line(line) => {
                    let at = line.at;
                    let hit = matches!(readiness, Readiness::Line(re) if re.is_match(&line.text));
                    self.keep(line);
                    if hit {
                        return Ok(ReadyOutcome::Ready(at));
                    }
                }
                Event::Tick => {
                    if let Readiness::Path(p) = readiness {
                        let rel = p.strip_prefix("/").unwrap_or(p);
                        if root.join(rel).exists() {
                            return Ok(ReadyOutcome::Ready(Instant::now()));
                        }
                    }
                }
            }
        }
    }

    fn ready_at_exit(&self, readiness: &Readiness, e: Exit) -> ReadyOutcome {
        if let Readiness::Line(re) = readiness
            && let Some(l) = self.tail.iter().find(|l| re.is_match(&l.text))
        {
            return ReadyOutcome::Ready(l.at);
        }
        ReadyOutcome::Exited(e)
    }

    async fn next_event(&mut self, deadline: Instant, tick: bool) -> Result<Event> {
        let mut exit = self.exit.clone();
        let lines = &mut self.lines;
        let sleep = tokio::time::sleep_until(deadline.into());
        let poll = tokio::time::sleep(PATH_POLL);
        tokio::pin!(sleep);
        tokio::pin!(poll);
        loop {
            let ev = tokio::select! {
                _ = &mut sleep => Event::Deadline,
                _ = &mut poll, if tick => Event::Tick,
                changed = exit.changed() => {
                    if changed.is_err() {
                        // The waiter is gone without a result: only the deadline can end this.
                        std::future::pending::<()>().await;
                    }
                    let v = exit.borrow_and_update().clone();
                    match v {
                        Some(Ok(e)) => Event::Exit(e),
                        Some(Err(s)) => {
                            return Err(self.conn.rpc_error(
                                format!("Tasks.Wait {}", self.container),
                                tonic::Status::unknown(s),
                            ));
                        }
                        None => continue,
                    }
                }
                Some(line) = lines.recv() => Event::Line(line),
            };
            return Ok(ev);
        }
    }

    fn drain_lines(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(line);
        }
    }

    /// Wait for the exit, up to the deadline (None: the deadline passed).
    pub async fn wait(&mut self, deadline: Instant) -> Result<Option<Exit>> {
        if let Some(e) = self.exited() {
            self.drain_lines();
            return Ok(Some(e));
        }
        loop {
            match self.next_event(deadline, false).await? {
                Event::Deadline => return Ok(None),
                Event::Exit(e) => {
                    self.drain_lines();
                    return Ok(Some(e));
                }
                Event::Line(l) => self.keep(l),
                Event::Tick => {}
            }
        }
    }

    /// Tasks.Kill with a signal, to every process of the container.
    pub async fn kill(&self, signal: u32) -> Result<()> {
        match TasksClient::new(self.conn.channel())
            .kill(self.conn.request(KillRequest {
                container_id: self.container.clone(),
                exec_id: String::new(),
                signal,
                all: true,
            }))
            .await
        {
            Ok(_) => Ok(()),
            // Already stopped or gone.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::FailedPrecondition
                ) =>
            {
                Ok(())
            }
            Err(s) => Err(self
                .conn
                .rpc_error(format!("Tasks.Kill {}", self.container), s)),
        }
    }

    /// Kill the task if it still runs, wait for its exit, Tasks.Delete. Idempotent.
    pub async fn delete(&mut self) -> Result<Option<u32>> {
        if self.deleted {
            return Ok(self.exited().map(|e| e.code));
        }
        let code = delete_task(&self.conn, &self.container, self.exited().is_some()).await?;
        for r in &self.readers {
            r.abort();
        }
        self.waiter.abort();
        let _ = std::fs::remove_dir_all(&self.fifo_dir);
        self.deleted = true;
        Ok(code.or(self.exited().map(|e| e.code)))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
        self.waiter.abort();
    }
}

/// Kill (unless known exited), wait up to a grace period, Tasks.Delete.
/// Returns the exit status Delete reported, if the task existed.
pub async fn delete_task(conn: &Connection, container: &str, exited: bool) -> Result<Option<u32>> {
    let mut tasks = TasksClient::new(conn.channel());
    let tracked = Tracked::Task {
        namespace: conn.namespace.clone(),
        container: container.to_string(),
    };
    if !exited {
        match tasks
            .kill(conn.request(KillRequest {
                container_id: container.to_string(),
                exec_id: String::new(),
                signal: nix::sys::signal::Signal::SIGKILL as u32,
                all: true,
            }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {
                conn.tracker().remove(&tracked);
                return Ok(None);
            }
            // FailedPrecondition: not running (created or stopped): delete works.
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
            Err(s) => return Err(conn.rpc_error(format!("Tasks.Kill {container}"), s)),
        }
    }
    if !exited {
        // Delete refuses a running process: wait for the kill to land (Go: Kill, then <-statusC).
        let wait = tasks.wait(conn.request(WaitRequest {
            container_id: container.to_string(),
            exec_id: String::new(),
        }));
        let _ = tokio::time::timeout(KILL_GRACE, wait).await;
    }
    let deadline = Instant::now() + KILL_GRACE;
    loop {
        match tasks
            .delete(conn.request(DeleteTaskRequest {
                container_id: container.to_string(),
            }))
            .await
        {
            Ok(r) => {
                conn.tracker().remove(&tracked);
                return Ok(Some(r.into_inner().exit_status));
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                conn.tracker().remove(&tracked);
                return Ok(None);
            }
            // Still running (containerd 1.6 says so with code Unknown): the kill has not landed yet.
            Err(s)
                if (s.code() == tonic::Code::FailedPrecondition
                    || s.message().contains("running"))
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => return Err(conn.rpc_error(format!("Tasks.Delete {container}"), s)),
        }
    }
}

/// Delete a container record by id (and nothing else); false if it did not exist.
pub async fn delete_container(conn: &Connection, id: &str) -> Result<bool> {
    let r = ContainersClient::new(conn.channel())
        .delete(conn.request(DeleteContainerRequest { id: id.to_string() }))
        .await;
    let tracked = Tracked::Container {
        namespace: conn.namespace.clone(),
        id: id.to_string(),
    };
    let existed = match r {
        Ok(_) => true,
        Err(s) if s.code() == tonic::Code::NotFound => false,
        Err(s) => {
            let e = conn.rpc_error(format!("Containers.Delete {id}"), s);
            return Err(conn.untrack_unless_lost(&tracked, e));
        }
    };
    conn.tracker().remove(&tracked);
    Ok(existed)
}

/// IDs of the containers in this namespace.
pub async fn list_containers(conn: &Connection) -> Result<Vec<String>> {
    Ok(ContainersClient::new(conn.channel())
        .list(conn.request(ListContainersRequest { filters: vec![] }))
        .await
        .map_err(|s| conn.rpc_error("Containers.List", s))?
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// Container IDs of the tasks in this namespace.
pub async fn list_tasks(conn: &Connection) -> Result<Vec<String>> {
    Ok(TasksClient::new(conn.channel())
        .list(conn.request(ListTasksRequest {
            filter: String::new(),
        }))
        .await
        .map_err(|s| conn.rpc_error("Tasks.List", s))?
        .into_inner()
        .tasks
        .into_iter()
        .map(|t| t.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceType;

    fn config(json: &str) -> ImageConfiguration {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn spec_takes_process_from_image_config() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"WorkingDir":"/data","User":"1000:1001"},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let s = runtime_spec("ns", "c1", &c, None).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo hi"]);
        assert_eq!(p.env().as_ref().unwrap()[0], DEFAULT_PATH_ENV);
        assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
        assert_eq!(p.cwd(), Path::new("/data"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        let l = s.linux().as_ref().unwrap();
        assert_eq!(
            l.cgroups_path().as_deref(),
            Some(Path::new("/ns/c1")),
            "cgroups path like containerd's default"
        );
        assert!(
            !l.namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
        );
        assert_ne!(s.root().as_ref().unwrap().readonly(), Some(true));
        assert_eq!(s.root().as_ref().unwrap().path(), Path::new("rootfs"));
        assert_eq!(
            p.user().additional_gids(),
            &None,
            "a non-root user gets no guessed groups"
        );
    }

    /// The container `ctr run` starts, not oci-spec's defaults: containerd's
    /// capability set, /proc and /run mounts, device rules, CPU shares.
    #[test]
    fn spec_is_ctr_runs_default() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["x"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let s = runtime_spec("ns", "c1", &c, None).unwrap();
        let p = s.process().as_ref().unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.user().additional_gids(), &Some(vec![0]));
        let mounts = s.mounts().as_ref().unwrap();
        let mount = |d: &str| mounts.iter().find(|m| m.destination() == Path::new(d));
        assert_eq!(
            mount("/proc").unwrap().options().as_deref(),
            Some(&["nosuid".to_string(), "noexec".into(), "nodev".into()][..])
        );
        assert_eq!(mount("/run").unwrap().typ().as_deref(), Some("tmpfs"));
        assert!(
            mount("/sys/fs/cgroup").is_none(),
            "ctr run mounts no cgroupfs"
        );
        let l = s.linux().as_ref().unwrap();
        let r = l.resources().as_ref().unwrap();
        assert_eq!(r.devices().as_ref().unwrap().len(), 10);
        assert!(!r.devices().as_ref().unwrap()[0].allow());
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(1024));
        assert!(s.hostname().is_none());
    }

    #[test]
    fn args_replace_the_whole_command_line_like_ctr_run() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/ep"],"Cmd":["x"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let args = vec!["cat".to_string(), "/f".to_string()];
        let s = runtime_spec("ns", "c1", &c, Some(&args)).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &args);
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin"]);
    }

    #[test]
    fn image_without_command_needs_args() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let e = runtime_spec("ns", "c1", &c, None).unwrap_err();
        assert!(e.to_string().contains("after `--`"), "{e}");
    }

    #[test]
    fn users() {
        assert_eq!(parse_user(""), Ok((0, 0)));
        assert_eq!(parse_user("root"), Ok((0, 0)));
        assert_eq!(parse_user("7"), Ok((7, 0)));
        assert_eq!(parse_user("7:8"), Ok((7, 8)));
        assert!(parse_user("nobody").unwrap_err().contains("not numeric"));
    }
}
