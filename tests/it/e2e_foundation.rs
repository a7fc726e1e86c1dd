//! End-to-end: the lab's containerd, snapshotters and registry, through advisor's own code.
use crate::common;
use advisor::commands::doctor::DoctorReport;

use advisor::containerd::{self, Connection, Error};

#[test]
fn containerd_answers_version() {
    let Some(lab) = common::lab() else { return };
    let v = common::rt().block_on(async {
        let c = Connection::connect(&lab.containerd, "advisor-test")
            .await
            .unwrap();
        c.version().await.unwrap()
    });
    assert!(
        v.version.starts_with("1.6"),
        "lab runs Debian's containerd 1.6, got {}",
        v.version
    );
}

#[test]
fn introspection_lists_overlayfs_and_stargz_ok() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = Connection::connect(&lab.containerd, "advisor-test")
            .await
            .unwrap();
        let plugins = c.snapshotters().await.unwrap();
        for name in [containerd::OVERLAYFS, containerd::STARGZ] {
            let p = plugins
                .iter()
                .find(|p| p.id == name)
                .unwrap_or_else(|| panic!("{name} missing: {plugins:?}"));
            assert!(p.ok, "{name} not ok: {p:?}");
            c.check_snapshotter(name).await.unwrap();
        }
    });
}

/// Probes run side by side (doctor in one test, introspection in another,
/// a bench in a third): each one's removal sets off containerd's garbage
/// collector, which may collect another's unleased probe snapshot before that
/// probe removes it. No probe may then report the snapshotter as down (a
/// clean-clone CI run failed so).
#[test]
fn concurrent_probes_do_not_fail_each_other() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = Connection::connect(&lab.containerd, "advisor-test-probes")
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        // Collections on demand, as a bench's clean-up or another client sets off.
        let gc = c.clone();
        let collector = tokio::spawn(async move {
            loop {
                let id = gc
                    .create_lease("probe-test", std::time::Duration::from_secs(60))
                    .await
                    .unwrap();
                gc.delete_lease(&id, true).await.unwrap();
            }
        });
        for i in 0..8 {
            let c = c.clone();
            let name = if i % 2 == 0 {
                containerd::OVERLAYFS
            } else {
                containerd::STARGZ
            };
            tasks.spawn(async move {
                for _ in 0..25 {
                    c.check_snapshotter(name).await?;
                }
                Ok::<_, Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        collector.abort();
    });
}

#[test]
fn registry_answers_v2() {
    let Some(lab) = common::lab() else { return };
    let status = common::rt().block_on(async {
        reqwest::get(format!("http://{}/v2/", lab.registry))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 200);
}

#[test]
fn unknown_snapshotter_is_reported_as_missing_from_config() {
    let Some(lab) = common::lab() else { return };
    let err = common::rt().block_on(async {
        let c = Connection::connect(&lab.containerd, "advisor-test")
            .await
            .unwrap();
        c.check_snapshotter("nosuchsnapshotter").await.unwrap_err()
    });
    assert!(matches!(err, Error::SnapshotterMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("[proxy_plugins.nosuchsnapshotter]"), "{msg}");
    assert!(err.is_user_facing());
}

#[test]
fn doctor_passes_on_the_lab() {
    let Some(_lab) = common::lab() else { return };
    let out = common::advisor()
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    let report: DoctorReport = common::parse_json(&out.stdout);
    let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "containerd",
            "snapshotter overlayfs",
            "snapshotter stargz",
            "dedicated node",
            "registry hosts",
            "registry",
            "stargz metrics"
        ]
    );
    for c in &report.checks {
        assert!(c.ok, "{c:?}");
    }
    assert!(out.status.success());
}

#[test]
fn permission_denied_on_socket_says_root_is_needed() {
    let Some(lab) = common::lab() else { return };
    // Run the binary as nobody against the root-owned socket.
    let bin = assert_cmd::cargo::cargo_bin("advisor");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["doctor", "--address"])
        .arg(&lab.containerd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("permission denied") && stdout.contains("needs root"),
        "{stdout}"
    );
}
