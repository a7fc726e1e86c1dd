//! End-to-end: the lab's containerd, snapshotters and registry, through advisor's own code.
mod common;

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
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<_> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "containerd",
            "snapshotter overlayfs",
            "snapshotter stargz",
            "registry",
            "stargz metrics"
        ]
    );
    for c in checks {
        assert_eq!(c["ok"], true, "{c}");
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
