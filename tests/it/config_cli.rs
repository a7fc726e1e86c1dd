//! The config file (issue 19 §5): `--config FILE` or `ADVISOR_CONFIG` fills
//! in what no flag and no variable gives; a bad or missing file exits 1
//! naming it. Every run here names its file (or a missing one): none reads
//! /etc/advisor/config.toml.
use crate::common;
use advisor::commands::doctor::DoctorReport;
use std::path::{Path, PathBuf};

/// What the file sets: a socket nothing listens on, registry and metrics
/// URLs on a port nothing listens on (their checks fail at once).
const NODE: &str = r#"# a node's settings
address = "/nonexistent/config.sock"
namespace = "from-config"
registry = "127.0.0.1:1"
stargz_metrics = "http://127.0.0.1:1/metrics"
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// advisor with every variable it reads for these settings removed (its
/// `ADVISOR_CONFIG` stays common's empty file), then `vars` set.
fn advisor(vars: &[(&str, &str)]) -> assert_cmd::Command {
    common::advisor_with_env(vars)
}

/// `advisor ARGS --format json doctor`: the report (it fails, exit 1:
/// nothing listens) and stderr.
fn doctor(vars: &[(&str, &str)], args: &[&str]) -> (DoctorReport, String) {
    let out = advisor(vars)
        .args(args)
        .args(["--format", "json", "doctor"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    (common::parse_json(&out.stdout), stderr)
}

fn detail<'a>(r: &'a DoctorReport, check: &str) -> &'a str {
    r.checks
        .iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("no {check} check: {r:?}"))
        .detail
        .as_str()
}

#[test]
fn the_file_fills_in_what_no_flag_or_variable_gives() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.toml", NODE);
    let path = file.to_str().unwrap();
    for (vars, args) in [
        (vec![], vec!["--config", path]),
        (vec![("ADVISOR_CONFIG", path)], vec![]),
    ] {
        let (r, stderr) = doctor(&vars, &args);
        assert_eq!(
            (r.address.as_str(), r.namespace.as_str()),
            ("/nonexistent/config.sock", "from-config")
        );
        assert!(
            detail(&r, "containerd").contains("/nonexistent/config.sock"),
            "{r:?}"
        );
        assert!(detail(&r, "registry").contains("127.0.0.1:1"), "{r:?}");
        assert!(
            detail(&r, "stargz metrics").contains("http://127.0.0.1:1/metrics"),
            "{r:?}"
        );
        let config = r.config.expect("a config file in effect");
        assert_eq!(config.path, path);
        assert_eq!(
            config.used,
            ["address", "namespace", "registry", "stargz_metrics"]
        );
        // The file's namespace was chosen for advisor: no note about ctr's.
        assert!(!stderr.contains("note: namespace"), "{stderr}");
    }
}

/// flag > advisor's variable > ctr's variable > the file > the default.
#[test]
fn flags_and_variables_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.toml", NODE);
    let path = file.to_str().unwrap();
    let with = |v: &[(&'static str, &'static str)]| {
        let mut all = vec![("ADVISOR_CONFIG", path)];
        all.extend_from_slice(v);
        all
    };

    let (r, _) = doctor(&with(&[("ADVISOR_NAMESPACE", "from-env")]), &[]);
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/config.sock", "from-env")
    );
    assert_eq!(
        r.config.unwrap().used,
        ["address", "registry", "stargz_metrics"]
    );

    // ctr's variable wins over the file, and keeps its caution.
    let (r, stderr) = doctor(
        &with(&[
            ("CONTAINERD_NAMESPACE", "from-ctr"),
            ("CONTAINERD_ADDRESS", "/nonexistent/ctr.sock"),
        ]),
        &[],
    );
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/ctr.sock", "from-ctr")
    );
    assert!(
        stderr.contains("note: namespace `from-ctr` from ctr's CONTAINERD_NAMESPACE"),
        "{stderr}"
    );

    let (r, _) = doctor(
        &with(&[("ADVISOR_NAMESPACE", "from-env")]),
        &["-n", "from-flag", "-a", "/nonexistent/flag.sock"],
    );
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/flag.sock", "from-flag")
    );

    // --config wins over ADVISOR_CONFIG (here naming a missing file).
    let other = write(dir.path(), "other.toml", "namespace = \"other\"\n");
    let (r, _) = doctor(
        &[("ADVISOR_CONFIG", "/nonexistent/advisor/config.toml")],
        &[
            "--config",
            other.to_str().unwrap(),
            "-a",
            "/nonexistent/x.sock",
        ],
    );
    assert_eq!(r.namespace, "other");
    assert_eq!(r.config.unwrap().used, ["namespace"]);
}

#[test]
fn doctor_s_table_names_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "config.toml",
        "address = \"/nonexistent/t.sock\"\n",
    );
    let out = advisor(&[])
        .args(["doctor", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "config file: {} (address from it)",
            file.display()
        )),
        "{stdout}"
    );
}

/// A file that cannot be used stops advisor before any work: exit 1, the
/// message names the file and what is wrong, nothing on stdout.
#[test]
fn a_bad_or_missing_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "address = \"/a.sock\"\nnamespace = \n",
    );
    let typo = write(dir.path(), "typo.toml", "adress = \"/a.sock\"\n");
    let missing = dir.path().join("missing.toml");
    let (bad, typo, missing) = (
        bad.to_str().unwrap(),
        typo.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let cases = [
        (vec![], vec!["--config", bad], vec![bad, "at line 2 column"]),
        (
            vec![("ADVISOR_CONFIG", typo)],
            vec![],
            vec![typo, "unknown field `adress`"],
        ),
        (
            vec![],
            vec!["--config", missing],
            vec![missing, "does not exist", "--config"],
        ),
        (
            vec![("ADVISOR_CONFIG", missing)],
            vec![],
            vec![missing, "does not exist", "ADVISOR_CONFIG"],
        ),
    ];
    for (vars, args, want) in cases {
        let out = advisor(&vars)
            .args(&args)
            .args(["--format", "json", "doctor"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.starts_with("error: "), "{stderr}");
        for w in want {
            assert!(stderr.contains(w), "{w} missing: {stderr}");
        }
    }
}

/// `probe` takes its registry from the file when no flag or variable names
/// one; with none at all it says every way to give one.
#[test]
fn probe_takes_its_registry_from_the_file_and_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.toml", NODE);
    common::fails_with(
        advisor(&[("ADVISOR_CONFIG", file.to_str().unwrap())]).arg("probe"),
        1,
        &["127.0.0.1:1"],
    );
    common::fails_with(
        advisor(&[]).arg("probe"),
        1,
        &["--registry", "ADVISOR_REGISTRY", "config file"],
    );
}

/// `hosts_dir` in the file points advisor at containerd's host directory:
/// doctor shows the registry resolving to the mirror its hosts.toml names;
/// `--hosts-dir` (or ADVISOR_HOSTS_DIR) wins over the file.
#[test]
fn hosts_dir_from_the_file_routes_the_registry_through_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("certs.d");
    std::fs::create_dir_all(hosts.join("127.0.0.1:1")).unwrap();
    write(
        &hosts.join("127.0.0.1:1"),
        "hosts.toml",
        "server = \"http://127.0.0.1:1\"\n[host.\"http://127.0.0.1:2\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
    );
    let text = format!("{NODE}hosts_dir = \"{}\"\n", hosts.display());
    let file = write(dir.path(), "config.toml", &text);
    let (r, _) = doctor(&[("ADVISOR_CONFIG", file.to_str().unwrap())], &[]);
    let d = detail(&r, "registry hosts");
    assert!(
        d.starts_with("127.0.0.1:1 -> http://127.0.0.1:2/v2 (pull, resolve)"),
        "{d}"
    );
    assert!(d.contains("hosts.toml"), "{d}");
    assert!(
        r.checks.iter().any(|c| c.name == "registry mirror"),
        "{r:?}"
    );

    let empty = dir.path().join("empty");
    let (r, _) = doctor(
        &[
            ("ADVISOR_CONFIG", file.to_str().unwrap()),
            ("ADVISOR_HOSTS_DIR", empty.to_str().unwrap()),
        ],
        &[],
    );
    let d = detail(&r, "registry hosts");
    assert!(d.contains("containerd's defaults"), "{d}");
}
