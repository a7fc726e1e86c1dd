//! One syntax for sizes, rates and durations on every flag (issue 19 §4),
//! without the lab: bad values exit 1 naming the flag and an example, and a
//! value written with a unit means what its plain form means.
use crate::common;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/trace").join(name)
}

const SIZE_EXAMPLE: &str = "e.g. 10MiB, 512KiB, 1.5GB";
const RATE_EXAMPLE: &str = "e.g. 500mbit, 10gbit, 25MB/s, 1GiB/s";
const DURATION_EXAMPLE: &str = "e.g. 250ms, 10m, 1h30m";

#[test]
fn bad_sizes_rates_and_durations_exit_1_with_the_flag_and_an_example() {
    let files = fixture("trace-fixture.files.json");
    let files = files.to_str().unwrap();
    // Flag values are checked before any file is read.
    let trace = "never-read.jsonl";
    let synth = [
        "trace",
        "synth",
        "--files",
        files,
        "--working-set",
        "50%",
        "--pattern",
        "random",
        "-o",
        "-",
    ];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["probe", "--registry", "x", "--max-bytes", "10 parsecs"],
            &["--max-bytes", "unknown unit `parsecs`", SIZE_EXAMPLE],
        ),
        (
            &["plan", "--node-disk", "1.5xB"],
            &["--node-disk", "unknown unit `xB`", SIZE_EXAMPLE],
        ),
        (
            &["plan", "--node-disk", "16EiB"],
            &["--node-disk", "more than 16 EiB", SIZE_EXAMPLE],
        ),
        (
            &["advise", "--prefetch-size", "-1MiB"],
            &["--prefetch-size", "cannot be negative", SIZE_EXAMPLE],
        ),
        (
            &["advise", "--gzip-bytes", "NaN"],
            &["--gzip-bytes", SIZE_EXAMPLE],
        ),
        (
            &[&synth[..], &["--read-size", "3 furlongs"]].concat(),
            &["--read-size", SIZE_EXAMPLE],
        ),
        (
            &[
                "trace",
                "analyze",
                "--files",
                files,
                "--trace",
                trace,
                "--prefetch-size",
                "lots",
            ],
            &["--prefetch-size", SIZE_EXAMPLE],
        ),
        (
            &["plan", "--registry-egress", "100mb"],
            &["--registry-egress", "unknown unit `mb`", RATE_EXAMPLE],
        ),
        (
            &["plan", "--node-bandwidth", "-1gbit"],
            &["--node-bandwidth", "cannot be negative", RATE_EXAMPLE],
        ),
        (
            &["advise", "--rtt", "5ms", "--bandwidth", "fast"],
            &["--bandwidth", RATE_EXAMPLE],
        ),
        (
            &["advise", "--rtt", "20", "--bandwidth", "1gbit"],
            &["--rtt", "at most 10.00 s", "e.g. 20ms"],
        ),
        (
            &["calibrate", "--budget", "-5m"],
            &["--budget", "cannot be negative", DURATION_EXAMPLE],
        ),
        (
            &["calibrate", "--timeout", "soon"],
            &["--timeout", "not a duration", DURATION_EXAMPLE],
        ),
        (
            &[
                "bench",
                "--image",
                "x",
                "--snapshotter",
                "overlayfs",
                "--timeout",
                "1.5 fortnights",
            ],
            &["--timeout", "unknown unit `fortnights`", DURATION_EXAMPLE],
        ),
        (
            &["trace", "record", "--image", "x", "--timeout", "2y"],
            &["--timeout", "more than a year", DURATION_EXAMPLE],
        ),
        (
            &["plan", "--nodes", "3", "--target", "ready-p95=-1m"],
            &["--target", "cannot be negative", "e.g. 60s"],
        ),
    ];
    for (args, needles) in cases {
        common::fails_with(common::advisor().args(*args), 1, needles);
    }
}

/// `--timeout` of bench, trace record and calibrate takes any duration, a
/// fraction of a second too (it once refused `250ms` and `1.5s`, which the
/// README offered), and the stages get it as given.
#[test]
fn timeouts_take_fractions_of_a_second() {
    use advisor::cli::{Cli, Command, trace::TraceCommand};
    use clap::Parser;
    use std::time::Duration;
    let parse = |args: &[&str]| {
        Cli::try_parse_from([&["advisor"], args].concat())
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    };
    for (value, want) in [
        ("250ms", Duration::from_millis(250)),
        ("1.5s", Duration::from_millis(1500)),
        ("1.5", Duration::from_millis(1500)),
        ("1h30m", Duration::from_secs(5400)),
    ] {
        let bench = ["bench", "--image", "x", "--snapshotter", "overlayfs"];
        match parse(&[&bench[..], &["--timeout", value]].concat()) {
            Command::Bench(a) => {
                assert_eq!(a.timeout, want, "{value}");
                let (settings, _) = advisor::commands::bench::settings(&a).unwrap();
                assert_eq!(settings.timeout, want, "{value}");
            }
            c => panic!("{c:?}"),
        }
        match parse(&["trace", "record", "--image", "x", "--timeout", value]) {
            Command::Trace(t) => match t.command {
                TraceCommand::Record(r) => assert_eq!(r.timeout, want, "{value}"),
                c => panic!("{c:?}"),
            },
            c => panic!("{c:?}"),
        }
        match parse(&["calibrate", "--timeout", value]) {
            Command::Calibrate(a) => assert_eq!(a.timeout, want, "{value}"),
            c => panic!("{c:?}"),
        }
    }
}

/// stdout of a successful run.
fn stdout(args: &[&str]) -> String {
    let out = common::advisor().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn units_and_plain_numbers_give_the_same_advice() {
    let advise = |args: &[&str]| stdout(&[&["--format", "json", "-q", "advise"], args].concat());
    let with_units = advise(&[
        "--prefetch-size",
        "10MiB",
        "--gzip-bytes",
        "1GiB",
        "--rtt",
        "5ms",
        "--bandwidth",
        "1gbit",
    ]);
    let plain = advise(&[
        "--prefetch-size",
        "10485760",
        "--gzip-bytes",
        "1073741824",
        "--rtt",
        "0.005",
        "--bandwidth",
        "125MB/s",
    ]);
    assert_eq!(with_units, plain);
    let short = advise(&[
        "--prefetch-size",
        "10M",
        "--gzip-bytes",
        "1G",
        "--rtt",
        "5 ms",
        "--bandwidth",
        "1Gbit/s",
    ]);
    assert_eq!(with_units, short);
    // The sizes did change the prediction (not ignored).
    assert_ne!(
        with_units,
        advise(&["--rtt", "5ms", "--bandwidth", "1gbit"])
    );
}

#[test]
fn units_and_plain_numbers_give_the_same_plan() {
    let plan = |args: &[&str]| {
        stdout(
            &[
                &["--format", "json", "-q", "plan", "--nodes", "20"][..],
                args,
            ]
            .concat(),
        )
    };
    let with_units = plan(&[
        "--node-disk",
        "64GiB",
        "--registry-egress",
        "10gbit",
        "--rtt",
        "5ms",
        "--bandwidth",
        "1gbit",
        "--target",
        "ready-p95=1m30s",
    ]);
    let plain = plan(&[
        "--node-disk",
        "68719476736",
        "--registry-egress",
        "1.25GB/s",
        "--rtt",
        "0.005",
        "--bandwidth",
        "125000000B/s",
        "--target",
        "ready-p95=90",
    ]);
    assert_eq!(with_units, plain);
}

#[test]
fn synth_read_size_with_a_unit_is_its_bytes() {
    let files = fixture("trace-fixture.files.json");
    let synth = |read_size: &str| {
        stdout(&[
            "trace",
            "synth",
            "--files",
            files.to_str().unwrap(),
            "--working-set",
            "50%",
            "--pattern",
            "random",
            "--seed",
            "7",
            "--read-size",
            read_size,
            "-o",
            "-",
        ])
    };
    let a = synth("64KiB");
    assert_eq!(a, synth("65536"));
    assert_eq!(a, synth("64k"));
    assert_ne!(a, synth("64KB"), "KB is SI: 64000 bytes");
}

#[test]
fn help_shows_defaults_in_the_same_syntax() {
    for (cmd, want) in [
        (
            &["bench", "--help"][..],
            &["[default: 10m]", "[default: 10MiB]"][..],
        ),
        (
            &["calibrate", "--help"],
            &["[default: 10m]", "[default: 5m]"],
        ),
        (&["probe", "--help"], &["[default: 64MiB]"]),
        (&["trace", "record", "--help"], &["[default: 10m]"]),
    ] {
        let help = stdout(cmd);
        for w in want {
            assert!(help.contains(w), "{cmd:?} lacks {w}:\n{help}");
        }
    }
}
