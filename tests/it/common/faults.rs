//! Fault injection for the disruptive end-to-end tests (tests/it/bench_interrupt.rs,
//! tests/it/fault_matrix.rs): advisor as a child process, signals, lab daemons
//! killed through their pid files, and one check that advisor left nothing.
use super::Lab;
use advisor::containerd::{Connection, OVERLAYFS, STARGZ, run};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Push the smoke image (`:gzip` and `:esgz`) with a `/data/big.bin` of `bytes`.
pub fn fixture(lab: &Lab, repo: &str, bytes: u64) {
    let st = Command::new(super::repo().join("tests/fixtures/smoke-image.sh"))
        .arg(&lab.containerd)
        .args([&lab.registry, repo])
        .env("SMOKE_DATA_BYTES", bytes.to_string())
        .status()
        .expect("run tests/fixtures/smoke-image.sh");
    assert!(st.success(), "fixture image {repo} failed");
}

/// `advisor --namespace NS ARGS…` with stdout and stderr piped.
pub fn spawn(ns: &str, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("advisor"))
        .args(["--namespace", ns])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn advisor")
}

/// `advisor bench --format json --output OUTPUT ARGS…` in a namespace.
pub fn spawn_bench(ns: &str, output: &Path, args: &[&str]) -> Child {
    let output = output.to_str().expect("a UTF-8 temporary path");
    let mut all = vec!["--format", "json", "bench", "--output", output];
    all.extend_from_slice(args);
    spawn(ns, &all)
}

/// Poll until `cond` holds (up to 300 s) while advisor runs; panics with its
/// output if it ended first.
pub fn wait_until(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cond() {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("advisor ended ({st}) before {what}: {err}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn signal(child: &Child, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig)
        .expect("signal advisor");
}

/// SIGKILL a lab daemon (`registry`, `stargz`, `containerd`) by its pid file.
pub fn kill_daemon(lab: &Lab, name: &str) {
    let pid = std::fs::read_to_string(lab.dir.join(format!("run/{name}.pid")))
        .unwrap_or_else(|e| panic!("the lab's {name} pid file: {e}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.trim().parse().expect("a pid")),
        Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("killing the lab's {name}: {e}"));
}

/// Wait for advisor to exit: its status, stdout and stderr.
pub fn finish(child: Child) -> (ExitStatus, Vec<u8>, String) {
    let out = child.wait_with_output().expect("wait for advisor");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status, out.stdout, stderr)
}

/// The records of a JSON Lines file of this `kind`. Every complete line must
/// parse; a last line without its newline is one advisor is still writing
/// (tests poll while it appends: CI once read 5805 bytes of a longer line).
pub fn jsonl_records(path: &Path, kind: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// One runtime per test binary: a connection's channel lives in the runtime that made it.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(super::rt)
}

pub fn connect(lab: &Lab, ns: &str) -> Connection {
    rt().block_on(Connection::connect(&lab.containerd, ns))
        .expect("connect to the lab's containerd")
}

pub fn has_lease(conn: &Connection) -> bool {
    rt().block_on(conn.list_leases())
        .is_ok_and(|l| !l.is_empty())
}

pub fn has_task(conn: &Connection) -> bool {
    rt().block_on(run::list_tasks(conn))
        .is_ok_and(|t| !t.is_empty())
}

/// Container IDs in the namespace (empty when containerd does not answer).
pub fn containers(conn: &Connection) -> Vec<String> {
    rt().block_on(run::list_containers(conn))
        .unwrap_or_default()
}

/// Mount points under `dir` whose file system type starts with `fuse`, with
/// their FUSE connection number (the minor device number, as
/// /sys/fs/fuse/connections names it).
pub fn fuse_mounts_under(dir: &Path) -> Vec<(String, u32)> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(sep + 1)?;
            let minor = f.get(2)?.split(':').nth(1)?.parse().ok()?;
            (fstype.starts_with("fuse") && f.get(4)?.starts_with(&prefix))
                .then(|| (f[4].to_string(), minor))
        })
        .collect()
}

/// The live FUSE connections (/sys/fs/fuse/connections, the fusectl file
/// system, mounted here if the machine has not: a connection outlives its
/// mount while a process holds /dev/fuse open).
pub fn fuse_connections() -> BTreeSet<u32> {
    let dir = Path::new("/sys/fs/fuse/connections");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" - fusectl "));
    if !mounted {
        let st = Command::new("mount")
            .args(["-t", "fusectl", "fusectl"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "cannot mount fusectl on {}", dir.display());
    }
    std::fs::read_dir(dir)
        .expect("read /sys/fs/fuse/connections")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The mounts and FUSE connections advisor may hold while it runs in the
/// lab: lazy layers under the stargz directory, the namespace's container
/// rootfs under containerd's state, the recorder's under the temporary
/// directory. Polled while advisor runs so the check after it knows which
/// connections were advisor's.
#[derive(Debug, Default)]
pub struct Seen {
    pub fuse: BTreeSet<u32>,
}

impl Seen {
    pub fn look(&mut self, lab: &Lab) {
        for dir in watched_dirs(lab) {
            self.fuse
                .extend(fuse_mounts_under(&dir).into_iter().map(|(_, c)| c));
        }
    }
}

fn watched_dirs(lab: &Lab) -> Vec<PathBuf> {
    vec![lab.dir.join("stargz"), std::env::temp_dir()]
}

/// After a fault and the lab restored: no container, task, lease or snapshot
/// (either snapshotter) in advisor's namespace; no mount under the lab's
/// stargz directory, the namespace's task directory or a recorder directory
/// (`advisor-record-*` in the temporary directory); none of the FUSE
/// connections seen while advisor ran still open; no process whose command
/// line holds `marker` in the namespace's cgroups.
pub fn assert_nothing_left(lab: &Lab, conn: &Connection, seen: &Seen, marker: &str) {
    let ns = conn.namespace.clone();
    rt().block_on(async {
        assert_eq!(
            run::list_tasks(conn).await.unwrap(),
            Vec::<String>::new(),
            "{ns}: tasks"
        );
        assert_eq!(
            run::list_containers(conn).await.unwrap(),
            Vec::<String>::new(),
            "{ns}: containers"
        );
        assert_eq!(
            conn.list_leases().await.unwrap(),
            Vec::<String>::new(),
            "{ns}: leases"
        );
        for sn in [OVERLAYFS, STARGZ] {
            let left = conn.list_snapshots(sn).await.unwrap();
            assert!(left.is_empty(), "{ns}: {sn} snapshots {left:?}");
        }
    });
    let mut mounts = super::mounts_under(&lab.dir.join("stargz"));
    mounts.extend(super::mounts_under(
        &lab.dir
            .join("containerd/state/io.containerd.runtime.v2.task")
            .join(&ns),
    ));
    mounts.extend(
        super::mounts_under(&std::env::temp_dir())
            .into_iter()
            .filter(|m| m.contains("/advisor-record")),
    );
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    // A layer the snapshotter detached (lazy unmount) keeps its connection
    // until the daemon closes it: give that a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut live = fuse_connections();
    while !seen.fuse.is_disjoint(&live) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        live = fuse_connections();
    }
    let left: Vec<_> = seen.fuse.intersection(&live).collect();
    assert!(
        left.is_empty(),
        "FUSE connections left (of {:?}): {left:?}",
        seen.fuse
    );
    let procs = container_processes(&ns, marker);
    assert!(procs.is_empty(), "container processes left: {procs:?}");
}

/// No blob or snapshot of the image in any namespace (a cold bench's clean-up
/// ran to the end).
pub fn assert_cold(conn: &Connection, image: &str) {
    use advisor::bench::source::RegistrySource;
    rt().block_on(async {
        let src = RegistrySource::new(image, false).unwrap();
        let img = src.resolve().await.unwrap();
        advisor::containerd::clean::check_cold(
            conn,
            &advisor::bench::real::state_of(&img),
            &[OVERLAYFS, STARGZ],
        )
        .await
        .unwrap();
    });
}

/// Start a test's namespace empty: images a failed earlier run left there
/// would be kept as "not pulled by this run" (removed synchronously, so
/// their content and snapshots go with them).
pub fn empty_namespace(lab: &Lab, ns: &str) {
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("--address")
            .arg(&lab.containerd)
            .args(["--namespace", ns])
            .args(args)
            .output()
            .expect("run ctr")
    };
    let out = ctr(&["images", "ls", "-q"]);
    for image in String::from_utf8_lossy(&out.stdout).lines() {
        let st = ctr(&["images", "rm", "--sync", image]).status;
        assert!(st.success(), "removing {image} from {ns}");
    }
}

/// Processes of the namespace's containers (advisor's runtime spec puts them
/// in cgroup `/NAMESPACE/ID`, as containerd does) whose command line holds
/// `marker`; other tests' containers on the machine are not counted.
pub fn container_processes(ns: &str, marker: &str) -> Vec<String> {
    let cgroup = format!(":/{ns}/");
    super::processes_mentioning(marker)
        .into_iter()
        .filter(|p| {
            let pid = p.split(':').next().unwrap_or_default();
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.lines().any(|l| l.contains(&cgroup)))
        })
        .collect()
}
