//! Disruptive end-to-end tests of `advisor bench`'s interrupt safety: SIGINT
//! mid-pull and mid-run, and the registry or the stargz snapshotter killed
//! mid-run. Each ends with `lab/lab up` (restarting what was killed) and
//! checks that no container, task, snapshot, lease or lab mount is left and
//! that the runs measured so far were kept. `#[ignore]`d in the parallel run;
//! `lab/test` runs them serially (`--ignored --test-threads=1`).
mod common;

use advisor::bench::source::RegistrySource;
use advisor::bench::{BenchReport, Flag};
use advisor::containerd::{Connection, OVERLAYFS, STARGZ, clean, run};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(lab: &common::Lab, repo: &str, bytes: u64) {
    let st = Command::new(common::repo().join("tests/fixtures/smoke-image.sh"))
        .arg(&lab.containerd)
        .args([&lab.registry, repo])
        .env("SMOKE_DATA_BYTES", bytes.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "fixture image {repo} failed");
}

fn spawn_bench(ns: &str, output: &std::path::Path, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("advisor"))
        .args(["--namespace", ns, "--format", "json", "bench", "--output"])
        .arg(output)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Poll until `cond` holds (up to 120 s) while the bench runs; panics with
/// the bench's output if it ended first.
fn wait_until(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("the bench ended ({st}) before {what}: {err}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigint(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

fn kill_daemon(lab: &common::Lab, name: &str) {
    let pid = std::fs::read_to_string(lab.dir.join(format!("run/{name}.pid"))).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.trim().parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// The JSON Lines of `--output`: every line parses, runs are kept.
fn output_runs(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "run")
        .collect()
}

/// One runtime per test: a connection's channel lives in the runtime that made it.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(common::rt)
}

fn has_lease(conn: &Connection) -> bool {
    rt().block_on(conn.list_leases())
        .is_ok_and(|l| !l.is_empty())
}

fn has_task(conn: &Connection) -> bool {
    rt().block_on(run::list_tasks(conn))
        .is_ok_and(|t| !t.is_empty())
}

/// No container, task, lease, snapshot of ours; no blob of the image anywhere;
/// no mount under the lab's stargz directory; no container process.
fn assert_nothing_left(lab: &common::Lab, conn: &Connection, image: &str, marker: &str) {
    rt().block_on(async {
        assert_eq!(run::list_tasks(conn).await.unwrap(), Vec::<String>::new());
        assert_eq!(
            run::list_containers(conn).await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(conn.list_leases().await.unwrap(), Vec::<String>::new());
        for sn in [OVERLAYFS, STARGZ] {
            let left = conn.list_snapshots(sn).await.unwrap();
            assert!(left.is_empty(), "{sn}: {left:?}");
        }
        let src = RegistrySource::new(image, false).unwrap();
        let img = src.resolve().await.unwrap();
        clean::check_cold(
            conn,
            &advisor::bench::real::state_of(&img),
            &[OVERLAYFS, STARGZ],
        )
        .await
        .unwrap();
    });
    let mounts = common::mounts_under(&lab.dir.join("stargz"));
    assert!(mounts.is_empty(), "lab mounts left: {mounts:?}");
    let procs = common::processes_mentioning(marker);
    assert!(procs.is_empty(), "container processes left: {procs:?}");
}

fn finish(child: Child) -> (std::process::ExitStatus, Option<BenchReport>, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status, serde_json::from_slice(&out.stdout).ok(), stderr)
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_mid_pull_stops_cleanly_and_keeps_measured_runs() {
    let Some(lab) = common::lab() else { return };
    fixture(&lab, "int-pull", 200_000_000);
    let ns = "advisor-int-pull";
    let image = format!("{}/int-pull:gzip", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = rt()
        .block_on(Connection::connect(&lab.containerd, ns))
        .unwrap();
    let mut child = spawn_bench(
        ns,
        out.path(),
        &["--image", &image, "--snapshotter", "overlayfs", "-n", "3"],
    );
    // The first run completes; interrupt the second one while it holds its pull lease.
    wait_until(&mut child, "the first run", || {
        output_runs(out.path()).len() == 1
    });
    wait_until(&mut child, "the second pull", || has_lease(&conn));
    sigint(&child);
    let (status, report, stderr) = finish(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let report = report.expect("the report is printed");
    assert!(report.interrupted);
    assert_eq!(report.runs.len(), 2);
    assert!(report.runs[0].included);
    assert_eq!(report.runs[1].error.as_deref(), Some("interrupted"));
    assert!(report.runs[1].phases.resolve.is_some());
    assert!(report.runs[1].phases.create.is_none());
    assert_eq!(report.quantity("pull").unwrap().n, 1);
    let runs = output_runs(out.path());
    assert_eq!(runs.len(), 2, "JSON Lines keep both runs");
    assert_eq!(runs[1]["error"], "interrupted");
    common::lab_cmd(&["up"]);
    assert_nothing_left(&lab, &conn, &image, "int-pull");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_mid_run_removes_the_running_container() {
    let Some(lab) = common::lab() else { return };
    fixture(&lab, "int-run", 3_000_000);
    let ns = "advisor-int-run";
    let image = format!("{}/int-run:esgz", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = rt()
        .block_on(Connection::connect(&lab.containerd, ns))
        .unwrap();
    let mut child = spawn_bench(
        ns,
        out.path(),
        &[
            "--image",
            &image,
            "--snapshotter",
            "stargz",
            "-n",
            "2",
            "--ready-line",
            "never",
            "--",
            "sh",
            "-c",
            "cat /data/big.bin > /dev/null; echo int-run-marker; sleep 300",
        ],
    );
    wait_until(&mut child, "the container to run", || has_task(&conn));
    std::thread::sleep(Duration::from_millis(500));
    sigint(&child);
    let (status, report, stderr) = finish(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let report = report.expect("the report is printed");
    assert!(report.interrupted);
    let partial = &report.runs[0];
    assert!(partial.phases.start.is_some(), "{partial:?}");
    assert!(partial.phases.ready.is_none());
    assert!(
        partial
            .layers
            .iter()
            .all(|l| l.outcome == advisor::containerd::pull::LayerOutcome::Remote)
    );
    assert_eq!(output_runs(out.path()).len(), 1);
    common::lab_cmd(&["up"]);
    assert_nothing_left(&lab, &conn, &image, "sleep 300");
}

/// A lazy bench of one run reading a 20 MB file, with a lab daemon
/// (`registry` or `stargz`) killed once its container runs: the report, the
/// namespace's connection and the image.
struct KilledRun {
    report: BenchReport,
    conn: Connection,
    image: String,
}

fn kill_mid_run(lab: &common::Lab, repo: &str, daemon: &str) -> KilledRun {
    fixture(lab, repo, 20_000_000);
    let ns = format!("advisor-{repo}");
    let image = format!("{}/{repo}:esgz", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = rt()
        .block_on(Connection::connect(&lab.containerd, &ns))
        .unwrap();
    let mut child = spawn_bench(
        &ns,
        out.path(),
        &[
            "--image",
            &image,
            "--snapshotter",
            "stargz",
            "-n",
            "1",
            "--timeout",
            "20",
            "--ready-line",
            "read-done",
            "--",
            "sh",
            "-c",
            "sleep 2; cat /data/big.bin > /dev/null && echo read-done",
        ],
    );
    wait_until(&mut child, "the container to run", || has_task(&conn));
    kill_daemon(lab, daemon);
    let (_, report, stderr) = finish(child);
    let report = report.unwrap_or_else(|| panic!("no report: {stderr}"));
    let run = &report.runs[0];
    // The container's reads fail once the daemon is gone: the run is kept,
    // flagged and left out of the summary.
    assert!(
        !run.included,
        "a run whose reads failed is not averaged in: {run:?}"
    );
    assert!(run.phases.start.is_some(), "{run:?}");
    assert_eq!(output_runs(out.path()).len(), 1, "the run is kept");
    KilledRun {
        report,
        conn,
        image,
    }
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn killed_registry_mid_run_is_reported_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    let k = kill_mid_run(&lab, "kill-reg", "registry");
    assert!(!k.report.runs[0].flags.is_empty(), "{:?}", k.report.runs[0]);
    common::lab_cmd(&["up"]);
    assert_nothing_left(&lab, &k.conn, &k.image, "read-done");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn killed_snapshotter_mid_run_is_reported_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    let KilledRun {
        report,
        conn,
        image,
    } = kill_mid_run(&lab, "kill-sgz", "stargz");
    let run = &report.runs[0];
    assert!(
        run.flags.iter().any(|f| matches!(
            f,
            Flag::NonZeroExit { .. }
                | Flag::ExitedBeforeReady { .. }
                | Flag::TimedOut
                | Flag::Failed
        )),
        "{run:?}"
    );
    assert_eq!(report.quantity("to_ready"), None, "nothing to average");
    // The killed daemon's FUSE mount outlives it; once the snapshotter is back,
    // the clean-up every bench starts with (a synchronous GC and
    // Snapshots.Cleanup) has the snapshotter remove it.
    common::lab_cmd(&["up"]);
    rt().block_on(async {
        let src = RegistrySource::new(&image, false).unwrap();
        let img = src.resolve().await.unwrap();
        clean::clean_image(
            &conn,
            &advisor::bench::real::state_of(&img),
            &[OVERLAYFS, STARGZ],
            clean::Foreign::Refuse,
        )
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !common::mounts_under(&lab.dir.join("stargz")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_nothing_left(&lab, &conn, &image, "read-done");
}
