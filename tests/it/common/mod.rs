//! Shared helpers for integration and end-to-end tests.
//!
//! End-to-end tests run against the real lab (`lab/lab up`; `lab/test` does it).
//! Without the lab they skip with a note, unless `ADVISOR_REQUIRE_LAB=1`
//! (set by `lab/test` and CI), where a missing lab fails the test.
#![allow(dead_code)]
pub mod faults;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};

pub struct Lab {
    pub containerd: PathBuf,
    pub registry: String,
    pub metrics: String,
    pub dir: PathBuf,
    /// Held while the test runs: see [`lab`].
    _turn: LabTurn,
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn lab_script() -> PathBuf {
    repo().join("lab/lab")
}

/// The running lab, or None (the test should return) when it is not up and not required.
///
/// The returned `Lab` holds the lab for the calling test's file until the test
/// ends: tests of one file may run together (they were written to), tests of
/// two files never do. Each file was its own test binary, run one after
/// another, and some measure the snapshotter's global counters or restart it.
#[track_caller]
pub fn lab() -> Option<Lab> {
    let file = std::panic::Location::caller().file();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        env("ADVISOR_CONTAINERD"),
        env("ADVISOR_REGISTRY"),
        env("ADVISOR_STARGZ_METRICS"),
    ) {
        (Some(c), Some(r), Some(m)) if Path::new(&c).exists() => Some(Lab {
            containerd: c.into(),
            registry: r,
            metrics: m,
            dir: env("ADVISOR_LAB_DIR")
                .unwrap_or_else(|| "/var/lib/advisor-lab".into())
                .into(),
            _turn: LabTurn::take(file),
        }),
        _ => {
            if std::env::var("ADVISOR_REQUIRE_LAB").as_deref() == Ok("1") {
                panic!(
                    "ADVISOR_REQUIRE_LAB=1 but the lab is not up: run `lab/lab up` and `eval \"$(lab/lab env)\"`"
                );
            }
            eprintln!(
                "skipped: the lab is not up (run lab/test, or lab/lab up and eval \"$(lab/lab env)\")"
            );
            None
        }
    }
}

/// Which test file holds the lab, and how many of its tests hold it.
static LAB_HOLDER: Mutex<(Option<&'static str>, usize)> = Mutex::new((None, 0));
static LAB_FREED: Condvar = Condvar::new();

/// One test's share of the lab: taken when no other file's test holds it.
struct LabTurn;

impl LabTurn {
    fn take(file: &'static str) -> LabTurn {
        let lock = || LAB_HOLDER.lock().unwrap_or_else(|e| e.into_inner());
        let mut holder = lock();
        while holder.0.is_some_and(|f| f != file) {
            holder = LAB_FREED.wait(holder).unwrap_or_else(|e| e.into_inner());
        }
        *holder = (Some(file), holder.1 + 1);
        LabTurn
    }
}

impl Drop for LabTurn {
    fn drop(&mut self) {
        let mut holder = LAB_HOLDER.lock().unwrap_or_else(|e| e.into_inner());
        holder.1 -= 1;
        if holder.1 == 0 {
            holder.0 = None;
            LAB_FREED.notify_all();
        }
    }
}

/// Run `lab/lab <args>` with the test's environment; panics with its output on failure.
pub fn lab_cmd(args: &[&str]) -> String {
    let out = Command::new(lab_script())
        .args(args)
        .output()
        .expect("run lab/lab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "lab/lab {args:?} failed:\n{text}");
    text
}

/// `tool` (`ctr` or `ctr-remote`) on the lab's containerd in namespace `ns`:
/// its stdout; panics with its output on failure.
pub fn ctr(lab: &Lab, ns: &str, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg("-a")
        .arg(&lab.containerd)
        .args(["-n", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} -n {ns} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mount points under a directory, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Processes whose command line mentions a path (the lab's daemons and shims do).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("cargo") && !cmd.contains("lab_lifecycle") {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

/// The advisor binary, reading no config file of the machine's: its
/// `ADVISOR_CONFIG` is an empty file (a test may set another).
pub fn advisor() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("advisor").expect("advisor binary");
    cmd.env("ADVISOR_CONFIG", "/dev/null");
    cmd
}

/// [`advisor`] with every variable that names a node's settings (advisor's
/// and ctr's) removed, then `vars` set: a test sees only what it gives.
pub fn advisor_with_env(vars: &[(&str, &str)]) -> assert_cmd::Command {
    let mut cmd = advisor();
    for k in [
        "ADVISOR_CONTAINERD",
        "ADVISOR_NAMESPACE",
        "CONTAINERD_ADDRESS",
        "CONTAINERD_NAMESPACE",
        "ADVISOR_REGISTRY",
        "ADVISOR_HOSTS_DIR",
        "ADVISOR_STARGZ_METRICS",
        "ADVISOR_LAZY_RESET_CMD",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied());
    cmd
}

/// The advisor binary for tests whose numbers are compared with containerd's
/// own clients (calibration, bench, predictions): the release build a user
/// runs, named by `ADVISOR_MEASURE_BIN` (lab/test builds and sets it). The
/// test binary's own `advisor` is a debug build when `cargo test` runs
/// without `--release`: its eager downloads took 0.3 s longer for a 237 MB
/// image (10 % of the pull), which a calibration then priced into every
/// eager prediction (docs/results.md, "A debug build measured").
pub fn measuring_advisor() -> PathBuf {
    match std::env::var_os("ADVISOR_MEASURE_BIN") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "ADVISOR_MEASURE_BIN={} is not a file: build it (cargo build --release --bin advisor) or unset it",
                p.display()
            );
            p
        }
        None => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "note: measuring with the debug build of advisor (set ADVISOR_MEASURE_BIN to a release build, as lab/test does)"
                );
            }
            PathBuf::from(env!("CARGO_BIN_EXE_advisor"))
        }
    }
}

/// [`advisor`] on [`measuring_advisor`]'s binary.
pub fn measuring_command() -> assert_cmd::Command {
    assert_cmd::Command::new(measuring_advisor())
}

/// Run advisor (a command from [`advisor`] with its `--format json`
/// arguments), require exit 0, and parse what it printed into the project's
/// own output type: `let r: BenchReport = run_json(advisor().args(…))`.
pub fn run_json<T: DeserializeOwned>(cmd: &mut assert_cmd::Command) -> T {
    let out = cmd.output().expect("run advisor");
    assert!(
        out.status.success(),
        "advisor failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_json(&out.stdout)
}

/// Run advisor, require it to fail with exit `code` (1: the user's input or
/// environment, 2: a bug) and its stderr to contain every one of `needles`,
/// never a panic; returns the stderr for further checks.
#[track_caller]
pub fn fails_with(cmd: &mut assert_cmd::Command, code: i32, needles: &[&str]) -> String {
    let out = cmd.output().expect("run advisor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "advisor exited {} (want {code}):\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
    stderr
}

/// Parse advisor's JSON output into `T`; a failure names the type, the
/// field (serde's error) and shows the output.
pub fn parse_json<T: DeserializeOwned>(stdout: &[u8]) -> T {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "advisor's output is not a {}: {e}\n{}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(stdout)
        )
    })
}

/// A multi-thread runtime for async library calls in tests.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
