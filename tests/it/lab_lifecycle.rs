//! Disruptive lab tests: they stop and restart parts of the lab, so they are
//! `#[ignore]`d in the parallel run and run serially by `lab/test` afterwards
//! (`cargo test -- --ignored --test-threads=1`).
//! Each test leaves the lab up again.
use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn pids(dir: &Path) -> BTreeMap<String, String> {
    ["registry", "stargz", "containerd"]
        .iter()
        .map(|n| {
            let p = std::fs::read_to_string(dir.join("run").join(format!("{n}.pid")))
                .unwrap_or_default();
            (n.to_string(), p.trim().to_string())
        })
        .collect()
}

fn mtimes(dir: &Path) -> Vec<std::time::SystemTime> {
    [
        "registry/config.yml",
        "containerd/config.toml",
        "stargz/config.toml",
        "bin/stargz-grpc",
    ]
    .iter()
    .map(|f| std::fs::metadata(dir.join(f)).unwrap().modified().unwrap())
    .collect()
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn second_up_while_up_changes_nothing() {
    let Some(lab) = common::lab() else { return };
    let before = (pids(&lab.dir), mtimes(&lab.dir));
    let out = common::lab_cmd(&["up"]);
    assert!(
        !out.contains("starting"),
        "a second up restarted something:\n{out}"
    );
    assert!(
        !out.contains("building"),
        "a second up rebuilt the daemon:\n{out}"
    );
    assert_eq!((pids(&lab.dir), mtimes(&lab.dir)), before);
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn down_leaves_no_mounts_and_no_processes() {
    let Some(lab) = common::lab() else { return };
    let sock = lab.containerd.display().to_string();
    // A lazily pulled image with a running container: FUSE and overlay mounts, a shim.
    let fixture = common::repo().join("tests/fixtures/smoke-image.sh");
    let st = Command::new(&fixture)
        .args([&sock, &lab.registry, "lifecycle"])
        .status()
        .unwrap();
    assert!(st.success(), "fixture image failed");
    let ns = "advisor-lifecycle";
    let image = format!("{}/lifecycle:esgz", lab.registry);
    let ok = |args: &[&str]| {
        let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(&[
        "ctr-remote",
        "-a",
        &sock,
        "-n",
        ns,
        "image",
        "rpull",
        "--plain-http",
        &image,
    ]);
    ok(&[
        "ctr",
        "-a",
        &sock,
        "-n",
        ns,
        "run",
        "-d",
        "--snapshotter",
        "stargz",
        &image,
        "lc1",
        "sleep",
        "300",
    ]);
    assert!(
        common::mounts_under(&lab.dir).len() >= 2,
        "expected FUSE and overlay mounts: {:?}",
        common::mounts_under(&lab.dir)
    );

    common::lab_cmd(&["down"]);
    let mounts = common::mounts_under(&lab.dir);
    let procs = common::processes_mentioning(&format!("{}/", lab.dir.display()));
    let sleeper = common::processes_mentioning("sleep 3141");
    common::lab_cmd(&["up"]);
    assert!(mounts.is_empty(), "mounts left after down: {mounts:?}");
    assert!(procs.is_empty(), "processes left after down: {procs:?}");
    assert!(
        sleeper.is_empty(),
        "container process left after down: {sleeper:?}"
    );
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn stopped_snapshotter_is_reported_as_not_answering_and_up_restarts_it() {
    let Some(lab) = common::lab() else { return };
    let pid = std::fs::read_to_string(lab.dir.join("run/stargz.pid")).unwrap();
    let st = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let err = common::rt().block_on(async {
        let c = advisor::containerd::Connection::connect(&lab.containerd, "advisor-test")
            .await
            .unwrap();
        c.check_snapshotter("stargz").await.unwrap_err()
    });
    let out = common::lab_cmd(&["up"]);
    assert!(
        matches!(
            err,
            advisor::containerd::Error::SnapshotterNotAnswering { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("is its daemon running?"), "{err}");
    assert!(out.contains("starting stargz"), "{out}");
}

#[test]
#[ignore = "disruptive: run serially by lab/test"]
fn reset_lazy_restarts_the_snapshotter_with_an_empty_root() {
    let Some(lab) = common::lab() else { return };
    let before = pids(&lab.dir)["stargz"].clone();
    std::fs::create_dir_all(lab.dir.join("stargz/root/marker")).unwrap();
    common::lab_cmd(&["reset-lazy"]);
    assert_ne!(pids(&lab.dir)["stargz"], before);
    assert!(!lab.dir.join("stargz/root/marker").exists());
    common::rt().block_on(async {
        let c = advisor::containerd::Connection::connect(&lab.containerd, "advisor-test")
            .await
            .unwrap();
        c.check_snapshotter("stargz").await.unwrap();
    });
}
