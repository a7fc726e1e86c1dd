//! Disruptive end-to-end tests of `advisor bench`'s interrupt safety: SIGINT
//! mid-pull and mid-run, and the registry or the stargz snapshotter killed
//! mid-run. Each ends with `lab/lab up` (restarting what was killed) and
//! checks that no container, task, snapshot, lease, lab mount or FUSE
//! connection is left and that the runs measured so far were kept (the
//! helpers are in tests/it/common/faults.rs; tests/it/fault_matrix.rs has the
//! other faults). `#[ignore]`d in the parallel run;
//! `lab/test` runs them serially (`--ignored --test-threads=1`).
use crate::common;

use advisor::bench::source::RegistrySource;
use advisor::bench::{BenchReport, Flag};
use advisor::containerd::{Connection, OVERLAYFS, STARGZ, clean};
use std::process::Child;
use std::time::{Duration, Instant};

use common::faults::{
    Seen, assert_cold, assert_nothing_left, connect, fixture, has_lease, has_task, jsonl_records,
    kill_daemon, rt, signal, spawn_bench, wait_until,
};
use nix::sys::signal::Signal;

fn output_runs(path: &std::path::Path) -> Vec<serde_json::Value> {
    jsonl_records(path, "run")
}

fn sigint(child: &Child) {
    signal(child, Signal::SIGINT);
}

/// Nothing of ours left (common::faults) and no trace of the image (cold).
fn assert_clean(lab: &common::Lab, conn: &Connection, seen: &Seen, image: &str, marker: &str) {
    assert_nothing_left(lab, conn, seen, marker);
    assert_cold(conn, image);
}

fn finish(child: Child) -> (std::process::ExitStatus, Option<BenchReport>, String) {
    let (status, stdout, stderr) = common::faults::finish(child);
    (status, serde_json::from_slice(&stdout).ok(), stderr)
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_mid_pull_stops_cleanly_and_keeps_measured_runs() {
    let Some(lab) = common::lab() else { return };
    fixture(&lab, "int-pull", 200_000_000);
    let ns = "advisor-int-pull";
    let image = format!("{}/int-pull:gzip", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = connect(&lab, ns);
    let mut child = spawn_bench(
        ns,
        out.path(),
        &["--image", &image, "--snapshotter", "overlayfs", "-r", "3"],
    );
    // The first run completes; interrupt the second one while it holds its pull lease.
    wait_until(&mut child, "the first run", || {
        output_runs(out.path()).len() == 1
    });
    wait_until(&mut child, "the second pull", || has_lease(&conn));
    sigint(&child);
    let (status, report, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
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
    assert_clean(&lab, &conn, &Seen::default(), &image, "int-pull");
}

/// A lazy bench whose container reads its file and sleeps (`sleep SECS`,
/// the marker), signalled once it runs: the run is kept, the container,
/// its lazy layers and their FUSE connections are gone.
fn signal_mid_run(sig: Signal, repo: &str, sleep: &str) {
    let Some(lab) = common::lab() else { return };
    fixture(&lab, repo, 3_000_000);
    let ns = format!("advisor-{repo}");
    let image = format!("{}/{repo}:esgz", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = connect(&lab, &ns);
    let script = format!("cat /data/big.bin > /dev/null; echo int-run-marker; sleep {sleep}");
    let mut child = spawn_bench(
        &ns,
        out.path(),
        &[
            "--image",
            &image,
            "--snapshotter",
            "stargz",
            "-r",
            "2",
            "--ready-line",
            "never",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let mut seen = Seen::default();
    wait_until(&mut child, "the container to run", || {
        seen.look(&lab);
        has_task(&conn)
    });
    std::thread::sleep(Duration::from_millis(500));
    seen.look(&lab);
    assert!(!seen.fuse.is_empty(), "the lazy layers are FUSE mounts");
    assert!(
        !common::faults::container_processes(&ns, &format!("sleep {sleep}")).is_empty(),
        "the check for processes left sees the running container's"
    );
    signal(&child, sig);
    let (status, report, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
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
    assert_clean(&lab, &conn, &seen, &image, &format!("sleep {sleep}"));
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_mid_run_removes_the_running_container() {
    signal_mid_run(Signal::SIGINT, "int-run", "300");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigterm_mid_run_removes_the_running_container() {
    signal_mid_run(Signal::SIGTERM, "term-run", "303");
}

/// A lazy bench of one run reading a 20 MB file, with a lab daemon
/// (`registry` or `stargz`) killed once its container runs: the report, the
/// namespace's connection and the image.
struct KilledRun {
    report: BenchReport,
    conn: Connection,
    image: String,
    /// The FUSE connections of the lazy layers.
    seen: Seen,
}

fn kill_mid_run(lab: &common::Lab, repo: &str, daemon: &str) -> KilledRun {
    fixture(lab, repo, 20_000_000);
    let ns = format!("advisor-{repo}");
    let image = format!("{}/{repo}:esgz", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = connect(lab, &ns);
    let mut child = spawn_bench(
        &ns,
        out.path(),
        &[
            "--image",
            &image,
            "--snapshotter",
            "stargz",
            "-r",
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
    let mut seen = Seen::default();
    wait_until(&mut child, "the container to run", || {
        seen.look(lab);
        has_task(&conn)
    });
    seen.look(lab);
    assert!(!seen.fuse.is_empty(), "the lazy layers are FUSE mounts");
    kill_daemon(lab, daemon);
    let (_, report, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
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
        seen,
    }
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn killed_registry_mid_run_is_reported_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    let k = kill_mid_run(&lab, "kill-reg", "registry");
    assert!(!k.report.runs[0].flags.is_empty(), "{:?}", k.report.runs[0]);
    common::lab_cmd(&["up"]);
    assert_clean(&lab, &k.conn, &k.seen, &k.image, "read-done");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn killed_snapshotter_mid_run_is_reported_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    let KilledRun {
        report,
        conn,
        image,
        seen,
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
    assert_clean(&lab, &conn, &seen, &image, "read-done");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn restarted_containerd_mid_run_is_reported_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    fixture(&lab, "ctrd-restart", 3_000_000);
    let ns = "advisor-ctrd-restart";
    let image = format!("{}/ctrd-restart:gzip", lab.registry);
    let out = tempfile::NamedTempFile::new().unwrap();
    let conn = connect(&lab, ns);
    let mut child = spawn_bench(
        ns,
        out.path(),
        &[
            "--image",
            &image,
            "--snapshotter",
            "overlayfs",
            "-r",
            "2",
            "--ready-line",
            "never",
            "--timeout",
            "60",
            "--",
            "sh",
            "-c",
            "echo started; sleep 304",
        ],
    );
    wait_until(&mut child, "the container to run", || has_task(&conn));
    kill_daemon(&lab, "containerd");
    std::thread::sleep(Duration::from_secs(1));
    common::lab_cmd(&["up"]);
    let (status, report, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("containerd") && stderr.contains(&lab.containerd.display().to_string()),
        "names containerd and its socket: {stderr}"
    );
    let report = report.expect("the report is printed");
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert_eq!(output_runs(out.path()).len(), 1, "the run is kept");
    let conn = connect(&lab, ns);
    assert_clean(&lab, &conn, &Seen::default(), &image, "sleep 304");
}
