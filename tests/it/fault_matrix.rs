//! The fault matrix of issue 17 §6 for `calibrate` and `trace record` (the
//! `bench` cells are in tests/it/bench_interrupt.rs): the registry killed
//! mid-calibration, SIGINT and SIGTERM during `calibrate` and during `trace
//! record`. Each cell checks that advisor exits 1 with an error naming what
//! failed, that what was measured is kept (a calibration resumes from its runs
//! file; an interrupted trace is either complete up to the signal or not
//! written), and, with the lab restored, that nothing is left: no container,
//! task, snapshot or lease in advisor's namespace, no lab or recorder mount,
//! no FUSE connection advisor opened (tests/it/common/faults.rs). Disruptive:
//! `lab/test` runs them serially; docs/results.md has the matrix and its time.
use crate::common;

use common::faults::{
    Seen, assert_nothing_left, connect, containers, empty_namespace, finish, fixture, has_lease,
    has_task, jsonl_records, kill_daemon, signal, spawn, wait_until,
};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// A quick calibration's profile and runs file in a temporary directory.
struct Calibration {
    _dir: tempfile::TempDir,
    profile: PathBuf,
    runs: PathBuf,
}

impl Calibration {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("node.json");
        let runs = dir.path().join("node.runs.jsonl");
        Calibration {
            _dir: dir,
            profile,
            runs,
        }
    }

    fn spawn(&self, lab: &common::Lab, ns: &str, extra: &[&str]) -> Child {
        let mut args = vec![
            "--address",
            lab.containerd.to_str().unwrap(),
            "calibrate",
            "--registry",
            &lab.registry,
            "--quick",
            "-o",
            self.profile.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        spawn(ns, &args)
    }

    fn keys(&self) -> Vec<String> {
        jsonl_records(&self.runs, "run")
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Start a quick calibration and, once one run is kept and the next one's
/// pull holds its lease, apply `fault`. Returns advisor's exit status and
/// stderr, the keys kept, the FUSE connections seen.
fn calibrate_with_fault(
    lab: &common::Lab,
    cal: &Calibration,
    ns: &str,
    fault: impl FnOnce(&Child),
) -> (std::process::ExitStatus, String, Vec<String>, Seen) {
    let conn = connect(lab, ns);
    let mut child = cal.spawn(lab, ns, &[]);
    let mut seen = Seen::default();
    wait_until(&mut child, "the first calibration run", || {
        seen.look(lab);
        !cal.keys().is_empty()
    });
    wait_until(&mut child, "the next run's pull", || {
        seen.look(lab);
        has_lease(&conn)
    });
    seen.look(lab);
    fault(&child);
    let (status, _, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
    (status, stderr, cal.keys(), seen)
}

/// Run the calibration again for one more run: it resumes (no kept run is
/// measured again, something new is) and the runs file stays valid.
fn assert_resumes(lab: &common::Lab, cal: &Calibration, ns: &str, kept: &[String]) {
    let (status, _, stderr) = finish(cal.spawn(lab, ns, &["--budget", "8s"]));
    eprintln!("advisor said:\n{stderr}");
    // Too few runs for a profile is the user's to fix (exit 1), not a crash.
    assert!(matches!(status.code(), Some(0 | 1)), "{stderr}");
    assert!(
        !stderr.contains("interrupted"),
        "the rerun was not interrupted: {stderr}"
    );
    let keys = cal.keys();
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a run measured twice: {keys:?}");
    assert!(
        kept.iter().all(|k| keys.contains(k)),
        "{kept:?} in {keys:?}"
    );
    assert!(
        keys.len() > kept.len(),
        "the rerun measured nothing: {stderr}"
    );
}

fn calibrate_interrupted(sig: Signal, ns: &str) {
    let Some(lab) = common::lab() else { return };
    let cal = Calibration::new();
    let (status, stderr, kept, seen) =
        calibrate_with_fault(&lab, &cal, ns, |child| signal(child, sig));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains(&cal.runs.display().to_string()),
        "names the interrupt and where the runs are: {stderr}"
    );
    assert!(!kept.is_empty());
    assert!(!cal.profile.exists(), "no profile from an interrupted run");
    let conn = connect(&lab, ns);
    assert_nothing_left(&lab, &conn, &seen, "ADVISOR-MARK");
    assert_resumes(&lab, &cal, ns, &kept);
    assert_nothing_left(&lab, &conn, &seen, "ADVISOR-MARK");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_during_calibrate_keeps_its_runs_and_resumes() {
    calibrate_interrupted(Signal::SIGINT, "advisor-fault-cal-int");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigterm_during_calibrate_keeps_its_runs_and_resumes() {
    calibrate_interrupted(Signal::SIGTERM, "advisor-fault-cal-term");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn killed_registry_mid_calibration_names_it_keeps_the_runs_and_resumes() {
    let Some(lab) = common::lab() else { return };
    let ns = "advisor-fault-cal-reg";
    let cal = Calibration::new();
    let (status, stderr, kept, seen) =
        calibrate_with_fault(&lab, &cal, ns, |_| kill_daemon(&lab, "registry"));
    common::lab_cmd(&["up"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&lab.registry) && stderr.contains(&cal.runs.display().to_string()),
        "names the registry and where the runs are: {stderr}"
    );
    assert!(!kept.is_empty());
    let conn = connect(&lab, ns);
    assert_nothing_left(&lab, &conn, &seen, "ADVISOR-MARK");
    assert_resumes(&lab, &cal, ns, &kept);
    assert_nothing_left(&lab, &conn, &seen, "ADVISOR-MARK");
}

/// `trace record` of the smoke image's eager form, a workload that reads
/// 3 MB, prints its ready line and sleeps (`sleep SECS`, the marker).
fn spawn_record(lab: &common::Lab, ns: &str, out: &Path, sleep: &str, extra: &[&str]) -> Child {
    fixture(lab, "fault-record", 3_000_000);
    let image = format!("{}/fault-record:gzip", lab.registry);
    let script = format!("cat /data/big.bin >/dev/null; echo REC-READY; sleep {sleep}");
    let mut args = vec![
        "trace",
        "record",
        "--format",
        "json",
        "--image",
        &image,
        "--ready-line",
        "^REC-READY$",
        "--timeout",
        "200",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    spawn(ns, &args)
}

/// The trace either holds what was recorded (a header, then events) and
/// advisor says where, or was not written and advisor says so.
fn assert_trace_kept_or_not_written(out: &Path, stderr: &str) -> usize {
    if out.exists() {
        assert!(
            stderr.contains(&format!("the trace so far is in {}", out.display())),
            "{stderr}"
        );
        let text = std::fs::read_to_string(out).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert!(header.is_object(), "{header}");
        let events: Vec<serde_json::Value> =
            lines.map(|l| serde_json::from_str(l).unwrap()).collect();
        events.len()
    } else {
        assert!(stderr.contains("no trace written"), "{stderr}");
        0
    }
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigint_during_the_reference_run_of_trace_record_records_nothing_and_leaves_nothing() {
    let Some(lab) = common::lab() else { return };
    let ns = "advisor-fault-rec-int";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    empty_namespace(&lab, ns);
    let conn = connect(&lab, ns);
    let mut child = spawn_record(&lab, ns, &out, "301", &[]);
    let mut seen = Seen::default();
    wait_until(&mut child, "the reference run", || {
        seen.look(&lab);
        containers(&conn)
            .iter()
            .any(|c| c.starts_with("record-ref-"))
            && has_task(&conn)
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    let (status, _, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        assert_trace_kept_or_not_written(&out, &stderr),
        0,
        "nothing was recorded before the recording"
    );
    assert_nothing_left(&lab, &conn, &seen, "sleep 301");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn sigterm_during_trace_record_keeps_the_trace_and_unmounts_the_recorder() {
    let Some(lab) = common::lab() else { return };
    let ns = "advisor-fault-rec-term";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    empty_namespace(&lab, ns);
    let conn = connect(&lab, ns);
    let mut child = spawn_record(&lab, ns, &out, "302", &["--no-reference-run"]);
    let mut seen = Seen::default();
    wait_until(&mut child, "the recording", || {
        seen.look(&lab);
        !seen.fuse.is_empty() && has_task(&conn)
    });
    // The workload reads its file and waits.
    std::thread::sleep(Duration::from_millis(1500));
    seen.look(&lab);
    signal(&child, Signal::SIGTERM);
    let (status, _, stderr) = finish(child);
    eprintln!("advisor said:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        assert_trace_kept_or_not_written(&out, &stderr) > 0,
        "the reads before the signal are in the trace"
    );
    assert_nothing_left(&lab, &conn, &seen, "sleep 302");
}
