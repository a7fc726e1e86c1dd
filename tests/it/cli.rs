//! The binary's contract without the lab: exit codes, --version, clear errors.
use crate::common;
use advisor::commands::doctor::DoctorReport;
use advisor::predict::replay::Strategy;
use advisor::predict::rtt_sweep::BandwidthFrom;
use advisor::predict::{Objective, Prediction};
use advisor::units::Seconds;
use serde::Deserialize;

/// What `advisor --format json advise` prints.
#[derive(Deserialize)]
struct Advice {
    trace_name: String,
    prediction: Prediction,
}

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
    common::fails_with(
        common::advisor().arg("--no-such-flag"),
        1,
        &["--no-such-flag"],
    );
}

/// `advisor doctor --format json` against a socket, nothing else configured:
/// it must fail (exit 1); the output and the containerd check's detail.
fn doctor_containerd(sock: &std::path::Path) -> (std::process::Output, String) {
    let out = common::advisor()
        .args(["doctor", "--format", "json", "--address"])
        .arg(sock)
        .env_remove("ADVISOR_REGISTRY")
        .env_remove("ADVISOR_STARGZ_METRICS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: DoctorReport = common::parse_json(&out.stdout);
    let detail = report.checks[0].detail.clone();
    (out, detail)
}

#[test]
fn missing_socket_names_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("containerd.sock");
    let (out, detail) = doctor_containerd(&sock);
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
    let (_, detail) = doctor_containerd(&sock);
    assert!(detail.contains("containerd is not running"), "{detail}");
}

/// The README's main command: advise on the bundled example, offline (no
/// containerd, no registry: the environment points at nothing that answers).
#[test]
fn advise_without_arguments_runs_the_bundled_example_offline() {
    let advice: Advice = common::run_json(
        common::advisor()
            .args(["--format", "json", "advise"])
            .env("ADVISOR_CONTAINERD", "/nonexistent/containerd.sock")
            .env("ADVISOR_REGISTRY", "127.0.0.1:1")
            .env_remove("ADVISOR_PROFILE"),
    );
    assert_eq!(advice.trace_name, "traces/llm-serving.jsonl");
    let p = &advice.prediction;
    let strategies: Vec<Strategy> = p.strategies.iter().map(|s| s.strategy).collect();
    assert_eq!(
        strategies,
        [Strategy::Eager, Strategy::Lazy, Strategy::LazyPrefetch]
    );
    for s in &p.strategies {
        let c = &s.cold_start;
        assert!(c.low <= c.value && c.value <= c.high);
        assert!(s.completion.value >= c.value, "{s:?}");
    }
    // The recorded LLM server reads most of its image: lazy starts far sooner.
    let cold = |i: usize| p.strategies[i].cold_start.value;
    assert!(
        cold(1) * 5.0 < cold(0),
        "lazy {} vs eager {}",
        cold(1),
        cold(0)
    );
    assert_eq!(p.recommendations.len(), 3);
    assert!(!p.prioritized_files.is_empty());

    // Table output mentions the rule of thumb and the crossover.
    let out = common::advisor().arg("advise").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("crossover:") && text.contains("rule of thumb"),
        "{text}"
    );
}

/// `advise --rtt … --bandwidth …` (issue 15 §4): the same example priced on
/// paths further away; every strategy slows, lazy (a round trip per miss)
/// most, the network share is reported, and the crossover moves towards
/// eager.
#[test]
fn advise_what_if_prices_a_farther_registry() {
    let on = |rtt: &str| -> Advice {
        common::run_json(common::advisor().args([
            "--format",
            "json",
            "advise",
            "--rtt",
            rtt,
            "--bandwidth",
            "1gbit",
        ]))
    };
    let near = on("1ms");
    let far = on("50ms");
    for (n, f) in near
        .prediction
        .strategies
        .iter()
        .zip(&far.prediction.strategies)
    {
        let share = f.network.expect("a network share on a path");
        assert!(share.completion_s >= share.cold_start_s, "{share:?}");
        assert!(f.completion.value > n.completion.value, "{:?}", f.strategy);
    }
    let grew = |i: usize| {
        far.prediction.strategies[i].completion.value
            - near.prediction.strategies[i].completion.value
    };
    assert!(
        grew(1) > 10.0 * grew(0),
        "lazy +{} s, eager +{} s",
        grew(1),
        grew(0)
    );
    let cross = |a: &Advice| a.prediction.crossover_fraction.expect("a crossover");
    assert!(
        cross(&far) < cross(&near),
        "{} vs {}",
        cross(&far),
        cross(&near)
    );
    // Without a path nothing changes in the JSON: no network share.
    let plain: serde_json::Value =
        common::run_json(common::advisor().args(["--format", "json", "advise"]));
    assert!(
        plain["prediction"]["strategies"][0]
            .get("network")
            .is_none()
    );
}

/// `advise --plot-rtt F --rtt-max D` on a path (issue 15 §4): the JSON's
/// RTT sweep at the path's bandwidth up to D, the SVG beside it, both from
/// one run.
#[test]
fn advise_plot_rtt_writes_the_rtt_sweep_and_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("rtt.svg");
    let advice: Advice = common::run_json(
        common::advisor()
            .args(["--format", "json", "advise", "--rtt", "20ms", "--bandwidth"])
            .args(["500mbit", "--rtt-max", "200ms", "--plot-rtt"])
            .arg(&svg),
    );
    let sweep = &advice.prediction.rtt_sweep;
    assert_eq!(sweep.path.bandwidth_from, BandwidthFrom::Path);
    assert_eq!(sweep.path.total_bytes_per_s, 62.5e6);
    assert_eq!(sweep.max_rtt_s, Seconds(0.2));
    assert_eq!(sweep.points.len(), 41);
    assert_eq!(sweep.points[0].rtt_s, Seconds::ZERO);
    assert!((sweep.points[40].rtt_s.0 - 0.2).abs() < 1e-12);
    for pt in &sweep.points {
        assert_eq!(pt.strategies.len(), 3);
        for s in &pt.strategies {
            let c = &s.completion;
            assert!(c.low <= c.value && c.value <= c.high, "{s:?}");
        }
    }
    let objectives: Vec<Objective> = sweep.winners.iter().map(|w| w.objective).collect();
    assert_eq!(
        objectives,
        [Objective::FastestStart, Objective::FastestCompletion]
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
        "{text}"
    );
    assert!(text.contains("round-trip time to the registry (ms)"));
    assert!(
        text.contains("total completion at the path&apos;s 500 Mbit/s"),
        "{text}"
    );
}

/// `--plot-rtt` is one of advise's outputs: when it cannot be written, the
/// others are not either (all or none).
#[test]
fn advise_plot_rtt_into_a_missing_directory_writes_no_other_output() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("sweep.svg");
    let out = common::advisor()
        .arg("advise")
        .arg("--plot")
        .arg(&plot)
        .arg("--plot-rtt")
        .arg(dir.path().join("no-such-dir/rtt.svg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RTT plot") && err.contains("no-such-dir"),
        "{err}"
    );
    assert!(
        !plot.exists(),
        "the working-set plot was written without the RTT plot"
    );
}

/// A workload of random reads of a fifth of the example image: lazy
/// finishes first near the registry, eager far from it; the text names the
/// crossover RTT, and the JSON's grid changes order around it.
#[test]
fn advise_names_the_rtt_where_eager_overtakes_lazy() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::repo().join("models/examples/llm-serving.files.json");
    let trace = dir.path().join("random.jsonl");
    common::advisor()
        .args(["trace", "synth", "--working-set", "20%", "--pattern"])
        .args(["random", "--files"])
        .arg(&files)
        .arg("-o")
        .arg(&trace)
        .assert()
        .success();
    let advise = |json: bool| {
        let mut c = common::advisor();
        if json {
            c.args(["--format", "json"]);
        }
        c.arg("advise")
            .arg("--files")
            .arg(&files)
            .arg("--trace")
            .arg(&trace);
        c
    };
    let advice: Advice = common::run_json(&mut advise(true));
    let sweep = &advice.prediction.rtt_sweep;
    let done = sweep
        .winners
        .iter()
        .find(|w| w.objective == Objective::FastestCompletion)
        .unwrap();
    assert_eq!(done.best_at_zero, Strategy::Lazy, "{done:?}");
    assert_eq!(done.crossovers.len(), 1, "{done:?}");
    let x = done.crossovers[0];
    assert_eq!((x.from, x.to), (Strategy::Lazy, Strategy::Eager));
    assert!(x.rtt_s > Seconds(0.001) && x.rtt_s < Seconds(0.1), "{x:?}");
    let lazy_minus_eager = |i: usize| {
        let c = |s| {
            sweep.points[i]
                .strategies
                .iter()
                .find(|p| p.strategy == s)
                .unwrap()
                .completion
                .value
        };
        c(Strategy::Lazy) - c(Strategy::Eager)
    };
    let i = sweep.points.iter().position(|p| p.rtt_s > x.rtt_s).unwrap();
    assert!(lazy_minus_eager(i - 1) < 0.0 && lazy_minus_eager(i) > 0.0);
    let out = advise(false).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!("lazy up to {}, then eager", x.rtt_s);
    assert!(
        text.lines()
            .any(|l| l.starts_with("RTT crossover (completion;") && l.contains(&want)),
        "{want}: {text}"
    );
}

#[test]
fn advise_with_a_trace_but_no_image_names_the_missing_flag() {
    common::fails_with(
        common::advisor().args(["advise", "--trace", "traces/llm-serving.jsonl"]),
        1,
        &["--image REF", "--files FILE"],
    );
}

/// `advisor completions bash`: a script that completes every subcommand,
/// nested ones included.
#[test]
fn completions_for_bash_name_every_subcommand() {
    let out = common::advisor()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _advisor"), "{script}");
    for sub in [
        "advise",
        "calibrate",
        "probe",
        "trace",
        "image",
        "bench",
        "doctor",
        "completions",
        "man",
        "trace__subcmd__record",
    ] {
        assert!(
            script.contains(&format!("advisor__subcmd__{sub}")),
            "no completion for {sub}"
        );
    }
}

/// An unknown shell is a usage error: exit 1, as every usage error of
/// advisor's (`unknown_flag_exits_1`), naming the shells there are.
#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let out = common::advisor()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'tcsh'") && err.contains("bash") && err.contains("zsh"),
        "{err}"
    );
}

/// A reader that closes stdout early (`advisor completions bash | head -1`)
/// ends the command quietly with 0, for every command that prints: it once
/// exited 2 with "error: Broken pipe" when the reader won the race. Each
/// command runs 5 times, the pipe closed before advisor writes (the broken
/// pipe for certain) or after one line (the race).
#[test]
fn a_reader_closing_stdout_early_is_not_an_error() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["--format", "json", "advise"],
    ] {
        for round in 0..5 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_advisor"))
                .args(args)
                .env("ADVISOR_CONFIG", "/dev/null")
                .env_remove("ADVISOR_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            if round % 2 == 1 {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).unwrap();
                assert!(!line.is_empty(), "{args:?}: no first line");
            } else {
                drop(stdout);
            }
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?} round {round}: {stderr}"
            );
            for bad in ["error", "Broken pipe", "bug", "panicked"] {
                assert!(!stderr.contains(bad), "{args:?} round {round}: {stderr}");
            }
        }
    }
}

/// `ADVISOR_LOG` (README, "Progress and logs") replaces the log level: with
/// `debug`, debug lines on stderr (no colour codes on a pipe) and stdout
/// still only the data; without it, none; a value that does not parse is
/// ignored with a warning naming it and the run goes on.
#[test]
fn advisor_log_sets_the_level_and_a_bad_value_warns() {
    let advise = |log: Option<&str>| {
        let mut cmd = common::advisor();
        cmd.args(["--format", "json", "advise"]);
        match log {
            Some(v) => cmd.env("ADVISOR_LOG", v),
            None => cmd.env_remove("ADVISOR_LOG"),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ADVISOR_LOG={log:?}: {stderr}");
        let _: Advice = common::parse_json(&out.stdout);
        stderr
    };
    let debug = advise(Some("debug"));
    assert!(
        debug
            .lines()
            .any(|l| l.contains(" DEBUG ") && l.contains("log filter `debug`")),
        "{debug}"
    );
    assert!(!debug.contains('\x1b'), "colour codes on a pipe: {debug:?}");
    let scoped = advise(Some("advisor=debug"));
    assert!(scoped.contains(" DEBUG "), "{scoped}");

    let quiet = advise(None);
    assert!(!quiet.contains("DEBUG"), "{quiet}");
    let empty = advise(Some(""));
    assert!(
        !empty.contains("DEBUG") && !empty.contains("warning"),
        "{empty}"
    );

    let bad = advise(Some("advisor=loud"));
    assert!(
        bad.contains("warning: ADVISOR_LOG `advisor=loud` is not a log filter")
            && bad.contains("default level (advisor=warn)"),
        "{bad}"
    );
    assert!(!bad.contains("DEBUG") && !bad.contains("panicked"), "{bad}");
}

/// The lines of a man page from its header on: clap_mangen opens with two
/// string definitions (`.ie`/`.el`), then the `.TH` header.
fn man_header(page: &str) -> &str {
    page.lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or("")
}

#[test]
fn man_without_output_prints_the_top_page() {
    let out = common::advisor().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(man_header(&page).starts_with(".TH advisor 1"), "{page}");
    assert!(page.contains("advisor\\-trace(1)"), "{page}");
}

/// `man -o DIR` creates DIR and writes a page per command, nested ones
/// included, leaving no temporary file behind.
#[test]
fn man_output_writes_a_page_per_command_into_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share/man/man1");
    let out = common::advisor()
        .args(["man", "-o"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (file, th) in [
        ("advisor.1", ".TH advisor 1"),
        ("advisor-advise.1", ".TH advisor-advise 1"),
        ("advisor-trace-record.1", ".TH advisor-trace-record 1"),
    ] {
        let page = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(man_header(&page).starts_with(th), "{file}: {page}");
    }
    let hidden: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || !n.ends_with(".1"))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}

/// A directory that cannot be created (its parent is a regular file) is the
/// user's to fix: exit 1, naming the path.
#[test]
fn man_output_under_a_regular_file_exits_1_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let dir = file.join("man1");
    common::fails_with(
        common::advisor().args(["man", "-o"]).arg(&dir),
        1,
        &[&dir.display().to_string()],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// `advisor --format json doctor` with containerd's variables as given
/// (advisor's and ctr's removed first): the report names the socket and the
/// namespace it used, and fails (nothing listens).
fn doctor_env(vars: &[(&str, &str)], args: &[&str]) -> (DoctorReport, String) {
    let mut cmd = common::advisor_with_env(vars);
    cmd.args(args).args(["--format", "json", "doctor"]);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (common::parse_json(&out.stdout), stderr)
}

/// issue 19 §2: ctr's CONTAINERD_ADDRESS and CONTAINERD_NAMESPACE when
/// advisor's own variables are unset; advisor's win when both are; the
/// flags win over both.
#[test]
fn ctr_s_environment_is_read_after_advisor_s() {
    let ctr = [
        ("CONTAINERD_ADDRESS", "/nonexistent/ctr.sock"),
        ("CONTAINERD_NAMESPACE", "from-ctr"),
    ];
    let (r, err) = doctor_env(&ctr, &[]);
    assert!(
        err.contains("note: namespace `from-ctr` from ctr's CONTAINERD_NAMESPACE"),
        "{err}"
    );
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/ctr.sock", "from-ctr")
    );
    assert!(
        r.checks[0].detail.contains("/nonexistent/ctr.sock"),
        "{:?}",
        r.checks[0]
    );

    let both = [
        ctr[0],
        ctr[1],
        ("ADVISOR_CONTAINERD", "/nonexistent/advisor.sock"),
        ("ADVISOR_NAMESPACE", "from-advisor"),
    ];
    let (r, err) = doctor_env(&both, &[]);
    assert!(!err.contains("note: namespace"), "{err}");
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/advisor.sock", "from-advisor")
    );

    let (r, _) = doctor_env(&both, &["-a", "/nonexistent/flag.sock", "-n", "from-flag"]);
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/flag.sock", "from-flag")
    );

    // Neither: ctr's defaults for the socket, advisor's own namespace.
    let (r, _) = doctor_env(&[], &[]);
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        (advisor::cli::DEFAULT_ADDRESS, "advisor")
    );
}

/// `-a`/`-n` are the global address and namespace, as ctr's, after the
/// subcommand too.
#[test]
fn short_address_and_namespace_flags_are_ctr_s() {
    let mut cmd = common::advisor();
    cmd.env_remove("ADVISOR_REGISTRY")
        .env_remove("ADVISOR_STARGZ_METRICS");
    cmd.args([
        "--format",
        "json",
        "doctor",
        "-a",
        "/nonexistent/x.sock",
        "-n",
        "ns1",
    ]);
    let out = cmd.output().unwrap();
    let r: DoctorReport = common::parse_json(&out.stdout);
    assert_eq!(
        (r.address.as_str(), r.namespace.as_str()),
        ("/nonexistent/x.sock", "ns1")
    );
}

/// `advisor bench` with the image and snapshotter given, on a socket that
/// does not exist (nothing is reached: every check here comes first).
fn bench() -> assert_cmd::Command {
    let mut cmd = common::advisor();
    cmd.env("ADVISOR_CONTAINERD", "/nonexistent/containerd.sock")
        .env_remove("ADVISOR_NAMESPACE")
        .env_remove("CONTAINERD_NAMESPACE")
        .args([
            "bench",
            "--image",
            "127.0.0.1:1/app:gzip",
            "--snapshotter",
            "overlayfs",
        ]);
    cmd
}

/// Regression (issue 19 §2): `bench -n 5` meant five runs; `-n` is now the
/// namespace, and a numeric one is refused with the way to ask for runs
/// rather than benching in a namespace named `5`.
#[test]
fn bench_n_with_a_number_points_to_runs() {
    common::fails_with(
        bench().args(["-n", "5"]),
        1,
        &["namespace `5` is a number", "-r/--runs"],
    );
    // From ctr's variable too.
    common::fails_with(
        bench().env("CONTAINERD_NAMESPACE", "12"),
        1,
        &["namespace `12` is a number"],
    );
}

/// `-r/--runs` and `-w/--warmup`, as hyperfine's: parsed, and zero runs is
/// refused naming the flag.
#[test]
fn bench_runs_and_warmup_take_hyperfine_s_flags() {
    common::fails_with(
        bench().args(["-w", "2", "-r", "0"]),
        1,
        &["-r/--runs must be at least 1"],
    );
    common::fails_with(
        bench().args(["--warmup", "1", "--runs", "0"]),
        1,
        &["-r/--runs must be at least 1"],
    );
    common::fails_with(
        bench().args(["-w", "many"]),
        1,
        &["invalid value 'many'", "--warmup"],
    );
}

/// The export files are checked before any work: only one may be stdout,
/// none may be another output, each directory must be writable.
#[test]
fn bench_exports_are_checked_before_the_first_run() {
    common::fails_with(
        bench().args(["--export-json", "-", "--export-csv", "-"]),
        1,
        &["--export-json and --export-csv all write to stdout"],
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/bench.md");
    common::fails_with(
        bench().arg("--export-markdown").arg(&missing),
        1,
        &["--export-markdown", &missing.display().to_string()],
    );
    let runs = dir.path().join("runs.jsonl");
    common::fails_with(
        bench()
            .arg("--output")
            .arg(&runs)
            .arg("--export-json")
            .arg(&runs),
        1,
        &["--export-json", "--output", "same file"],
    );
    // Nothing was created by the checks.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // Valid exports get as far as containerd.
    let csv = dir.path().join("bench.csv");
    common::fails_with(
        bench()
            .arg("--export-csv")
            .arg(&csv)
            .args(["--export-json", "-"]),
        1,
        &["/nonexistent/containerd.sock"],
    );
    assert!(!csv.exists(), "nothing measured, nothing exported");
}

/// `--platform` takes containerd's forms and refuses anything else with an
/// example; `image build` refuses another platform for a busybox base.
#[test]
fn platform_flag_is_checked() {
    common::fails_with(
        common::advisor().args(["--platform", "linux/", "doctor"]),
        1,
        &["--platform", "OS/ARCH[/VARIANT]", "linux/arm64"],
    );
    let other = if cfg!(target_arch = "s390x") {
        "linux/amd64"
    } else {
        "linux/s390x"
    };
    common::fails_with(
        common::advisor()
            .args([
                "image",
                "build",
                "--dry-run",
                "-q",
                "--platform",
                other,
                "--spec",
            ])
            .arg(common::repo().join("models/examples/small.json")),
        1,
        &[&format!("--platform {other}"), "busybox"],
    );
}

/// A containerd that answers only the Namespaces service, on a unix socket:
/// Create says the namespace exists, List returns the given namespaces and
/// labels; every other call is unimplemented. Enough for advisor to decide
/// whether the namespace it works in is its own, without the lab.
mod fake_namespaces {
    use std::convert::Infallible;
    use std::path::{Path, PathBuf};
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
    use tonic::{Request, Response, Status};

    /// Writes prepared protobuf bytes; ignores the request's.
    #[derive(Default)]
    struct Raw;
    struct RawEncoder;
    struct RawDecoder;

    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }

    impl Decoder for RawDecoder {
        type Item = ();
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
            let n = bytes::Buf::remaining(src);
            bytes::Buf::advance(src, n);
            Ok(Some(()))
        }
    }

    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = ();
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }

    /// One unary answer.
    struct Reply(Vec<u8>);

    impl Service<Request<()>> for Reply {
        type Response = Response<Vec<u8>>;
        type Error = Status;
        type Future = std::future::Ready<Result<Response<Vec<u8>>, Status>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(self.0.clone())))
        }
    }

    #[derive(Clone)]
    struct Namespaces {
        /// An encoded ListNamespacesResponse.
        list: Vec<u8>,
    }

    impl Service<http::Request<tonic::body::Body>> for Namespaces {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Infallible>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let list = self.list.clone();
            Box::pin(async move {
                Ok(match req.uri().path() {
                    "/containerd.services.namespaces.v1.Namespaces/List" => {
                        tonic::server::Grpc::new(Raw).unary(Reply(list), req).await
                    }
                    "/containerd.services.namespaces.v1.Namespaces/Create" => {
                        Status::already_exists("namespace exists").into_http()
                    }
                    other => Status::unimplemented(format!("fake containerd: {other}")).into_http(),
                })
            })
        }
    }

    /// A length-delimited protobuf field (every length here is under 128).
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let len = u8::try_from(bytes.len()).ok().filter(|l| *l < 128);
        let mut out = vec![tag << 3 | 2, len.expect("short field")];
        out.extend_from_slice(bytes);
        out
    }

    /// ListNamespacesResponse { namespaces: [Namespace { name, labels }] }.
    fn list_response(namespaces: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, labels) in namespaces {
            let mut ns = field(1, name.as_bytes());
            for (k, v) in *labels {
                let entry = [field(1, k.as_bytes()), field(2, v.as_bytes())].concat();
                ns.extend(field(2, &entry));
            }
            out.extend(field(1, &ns));
        }
        out
    }

    /// Serve in a thread until the test process ends; returns the socket.
    pub fn serve(dir: &Path, namespaces: &[(&str, &[(&str, &str)])]) -> PathBuf {
        let sock = dir.join("containerd.sock");
        let svc = Namespaces {
            list: list_response(namespaces),
        };
        let rt = crate::common::rt();
        let listener = rt.block_on(async { tokio::net::UnixListener::bind(&sock) });
        let listener = listener.expect("bind the fake containerd's socket");
        std::thread::spawn(move || {
            rt.block_on(tonic::transport::Server::builder().serve_with_incoming(
                svc,
                tokio_stream::wrappers::UnixListenerStream::new(listener),
            ))
        });
        sock
    }
}

/// `advisor calibrate` against the fake containerd with the given
/// variables and flags (advisor's and ctr's namespace variables removed
/// first), and its directory (keep it while the command runs). Calibrate
/// decides whether its namespace is advisor's right after connecting, before
/// the snapshotters (which the fake does not have).
fn calibrate_against(
    namespaces: &[(&str, &[(&str, &str)])],
    vars: &[(&str, &str)],
    args: &[&str],
) -> (tempfile::TempDir, assert_cmd::Command) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sock = fake_namespaces::serve(dir, namespaces);
    let mut cmd = common::advisor();
    cmd.env_remove("ADVISOR_NAMESPACE")
        .env_remove("CONTAINERD_NAMESPACE")
        .env_remove("CONTAINERD_ADDRESS")
        .env("ADVISOR_CONTAINERD", &sock)
        .envs(vars.iter().copied())
        .args([
            "calibrate",
            "--registry",
            "127.0.0.1:1",
            "--lazy-reset-cmd",
            "true",
        ])
        .args(["--stargz-metrics", "http://127.0.0.1:1/metrics", "-o"])
        .arg(dir.join("profile.json"))
        .args(args);
    (tmp, cmd)
}

/// Regression: a node exporting CONTAINERD_NAMESPACE=k8s.io for ctr made
/// advisor work in k8s.io and treat it as its own, so `bench` (cold) and
/// `calibrate` could delete the kubelet's images and snapshots there. A
/// namespace from ctr's variable is advisor's only if advisor created it
/// (labelled); otherwise every clean-up there is refused, naming it and the
/// ways out, before anything is done.
#[test]
fn a_namespace_from_ctr_s_variable_is_not_advisor_s_unless_labelled() {
    const K8S: &[(&str, &[(&str, &str)])] = &[("k8s.io", &[]), ("advisor", &[])];
    let ctr = [("CONTAINERD_NAMESPACE", "k8s.io")];
    let (_dir, mut cmd) = calibrate_against(K8S, &ctr, &[]);
    let err = common::fails_with(
        &mut cmd,
        1,
        &[
            "note: namespace `k8s.io` from ctr's CONTAINERD_NAMESPACE",
            "error: namespace k8s.io came from ctr's CONTAINERD_NAMESPACE and is not advisor's",
            "advisor.dev/owner=advisor",
            "set ADVISOR_NAMESPACE or pass -n",
            "--force",
        ],
    );
    assert!(!err.contains("Introspection"), "refused first: {err}");

    // Past the refusal, the fake has no snapshotters: that failure shows
    // the namespace was taken as advisor's.
    let went_ahead = |(_dir, mut cmd): (tempfile::TempDir, assert_cmd::Command)| {
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("Introspection.Plugins"), "{err}");
        assert!(!err.contains("is not advisor's"), "{err}");
    };
    // Labelled: advisor created it.
    const LABELLED: &[(&str, &[(&str, &str)])] = &[("k8s.io", &[("advisor.dev/owner", "advisor")])];
    went_ahead(calibrate_against(LABELLED, &ctr, &[]));
    // The user's choice: -n, or advisor's own variable.
    went_ahead(calibrate_against(K8S, &ctr, &["-n", "k8s.io"]));
    went_ahead(calibrate_against(
        K8S,
        &[ctr[0], ("ADVISOR_NAMESPACE", "k8s.io")],
        &[],
    ));
    // --force, as for any namespace that is not advisor's.
    went_ahead(calibrate_against(K8S, &ctr, &["--force"]));
}
