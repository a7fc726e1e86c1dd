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
    let out = common::advisor().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
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
    let out = common::advisor()
        .args(["advise", "--trace", "traces/llm-serving.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--image REF") && err.contains("--files FILE"),
        "{err}"
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
    let out = common::advisor()
        .args(["man", "-o"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
