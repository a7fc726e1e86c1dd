//! The binary's contract without the lab: exit codes, --version, clear errors.
mod common;

#[test]
fn version_prints_the_crate_version() {
    let out = common::advisor().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("advisor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_flag_exits_1() {
    let out = common::advisor().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_socket_names_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("containerd.sock");
    let out = common::advisor()
        .args(["doctor", "--format", "json", "--address"])
        .arg(&sock)
        .env_remove("ADVISOR_REGISTRY")
        .env_remove("ADVISOR_STARGZ_METRICS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&sock.display().to_string()), "{detail}");
    assert!(
        detail.contains("is containerd running? try `lab/lab up`"),
        "{detail}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: doctor: 1 check(s) failed: containerd"),
        "{stderr}"
    );
}

#[test]
fn stale_socket_is_reported_as_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap()); // socket file, nobody listening
    let out = common::advisor()
        .args(["doctor", "--format", "json", "--address"])
        .arg(&sock)
        .env_remove("ADVISOR_REGISTRY")
        .env_remove("ADVISOR_STARGZ_METRICS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("containerd is not running"), "{detail}");
}
