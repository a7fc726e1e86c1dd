//! Bad input gets a clear error, never an abort or a silent wrong answer
//! (issue 17 §3): each case runs the binary on a hostile input and wants
//! exit 1, a message naming the input and what is wrong, and no panic or
//! allocation failure. Offline: no lab, no registry.
use crate::common;

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/trace").join(name)
}

/// Run advisor; assert exit 1, no panic or abort text, and every `want` in
/// stderr. Returns stderr.
fn fails_clearly(args: &[&str], want: &[&str]) -> String {
    let out = common::advisor().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for bad in ["panicked", "memory allocation", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{args:?}: {err}");
    }
    for w in want {
        assert!(err.contains(w), "{args:?}: want `{w}` in: {err}");
    }
    err
}

/// The fixture table with `edit` applied to its JSON, saved in `dir` as `name`.
fn edited_table(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(fixture("trace-fixture.files.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p.display().to_string()
}

fn busybox(v: &mut serde_json::Value) -> &mut serde_json::Value {
    v["layers"][0]["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["path"] == "bin/busybox")
        .unwrap()
}

/// A small valid trace of the fixture image.
fn trace(dir: &Path) -> String {
    let p = dir.join("t.jsonl");
    std::fs::write(
        &p,
        "{\"format\":\"advisor-trace\",\"version\":1,\"recorder\":\"x\",\"clock\":\"none\"}\n\
         {\"t\":1,\"pid\":1,\"op\":\"read\",\"path\":\"/bin/busybox\",\"offset\":0,\"len\":4096}\n",
    )
    .unwrap();
    p.display().to_string()
}

/// Each table through `trace analyze` and `advise`.
fn table_fails_clearly(table: &str, trace: &str, want: &[&str]) {
    fails_clearly(
        &["trace", "analyze", "--files", table, "--trace", trace],
        want,
    );
    fails_clearly(&["advise", "--files", table, "--trace", trace], want);
}

#[test]
fn file_table_with_a_huge_blob_size_is_refused_not_an_allocation_abort() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path());
    let table = edited_table(dir.path(), "big.json", |v| {
        v["layers"][0]["blob_size"] = (1u64 << 56).into();
    });
    table_fails_clearly(
        &table,
        &t,
        &["big.json: layer sha256:", "blob_size 72057594037927936"],
    );
}

#[test]
fn file_table_chunk_past_u64_is_refused_not_counted_as_4_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path());
    let table = edited_table(dir.path(), "wrap.json", |v| {
        busybox(v)["chunks"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "offset": u64::MAX - 3, "size": 8, "compressed_offset": 0, "compressed_end": 10
            }));
    });
    table_fails_clearly(
        &table,
        &t,
        &[
            "wrap.json: layer",
            "file `bin/busybox` chunk 1",
            "past 2^64",
        ],
    );
}

#[test]
fn file_table_file_size_of_u64_max_is_refused_not_a_wrapped_total() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path());
    let table = edited_table(dir.path(), "max.json", |v| {
        busybox(v)["size"] = u64::MAX.into();
    });
    table_fails_clearly(
        &table,
        &t,
        &[
            "max.json: layer",
            "file `bin/busybox` size 18446744073709551615",
        ],
    );
    // Sizes each within bounds whose sum passes the image bound.
    let table = edited_table(dir.path(), "sum.json", |v| {
        let files = v["layers"][0]["files"].as_array_mut().unwrap();
        let mut f = files[3].clone();
        for i in 0..2000 {
            f["path"] = format!("big{i}").into();
            f["size"] = (1u64 << 49).into();
            f["chunks"] = serde_json::json!([]);
            files.push(f.clone());
        }
    });
    table_fails_clearly(&table, &t, &["sum.json: layer", "add up to more than"]);
    // A layer total that disagrees with its files.
    let table = edited_table(dir.path(), "total.json", |v| {
        v["layers"][0]["uncompressed_size"] = 5.into();
    });
    table_fails_clearly(
        &table,
        &t,
        &["total.json: layer", "uncompressed_size 5 is not the sum"],
    );
}

#[test]
fn import_of_an_input_without_line_ends_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // A finite stand-in for /dev/zero: 3 MiB of NUL bytes, no `\n`.
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 3 << 20]).unwrap();
    let out = dir.path().join("o.jsonl").display().to_string();
    for from in ["strace", "file-list"] {
        fails_clearly(
            &[
                "trace",
                "import",
                "--from",
                from,
                "-o",
                &out,
                zeros.to_str().unwrap(),
            ],
            &["zeros line 1: is longer than 1048576 bytes (no line end)"],
        );
    }
}

fn import_strace(dir: &Path, name: &str, text: &str, want: &[&str]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let out = dir.join("o.jsonl").display().to_string();
    fails_clearly(
        &[
            "trace",
            "import",
            "--from",
            "strace",
            "-o",
            &out,
            p.to_str().unwrap(),
        ],
        want,
    )
}

#[test]
fn strace_path_with_a_nul_byte_is_refused_at_import_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    import_strace(
        dir.path(),
        "nul.strace",
        "1 12:00:00.000001 openat(AT_FDCWD, \"/ok\", O_RDONLY) = 3\n\
         1 12:00:00.000002 openat(AT_FDCWD, \"/a\\0b\", O_RDONLY) = 4\n",
        &["nul.strace line 2: open: the path contains a NUL byte"],
    );
}

#[test]
fn strace_negative_offsets_and_lengths_are_errors_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let open = "1 12:00:00.000001 openat(AT_FDCWD, \"/a\", O_RDONLY) = 3\n";
    for (call, want) in [
        (
            "pread64(3, \"x\", 1, -4096) = 1",
            "neg.strace line 2: pread64: argument 4 is negative (-4096)",
        ),
        (
            "mmap(NULL, -8192, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f00",
            "neg.strace line 2: mmap: argument 2 is negative (-8192)",
        ),
        (
            "mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3, -4096) = 0x7f00",
            "neg.strace line 2: mmap: argument 6 is negative (-4096)",
        ),
        (
            "mmap2(NULL, 8192, PROT_READ, MAP_PRIVATE, 3, 0x7fffffffffffff) = 0x7f00",
            "neg.strace line 2: mmap2: argument 6 is out of range",
        ),
        (
            "sendfile(1, 3, [-5], 10) = 10",
            "neg.strace line 2: sendfile: argument 3 is negative (-5)",
        ),
    ] {
        import_strace(
            dir.path(),
            "neg.strace",
            &format!("{open}1 12:00:00.000002 {call}\n"),
            &[want, "expected bytes from the start of the file"],
        );
    }
}

#[test]
fn strace_calls_that_never_resume_are_an_error_when_nothing_was_imported() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..200_000)
        .map(|i| {
            format!(
                "{} 12:00:00.{:06} read(3, <unfinished ...>\n",
                100 + i % 7,
                i
            )
        })
        .collect();
    import_strace(
        dir.path(),
        "cut.strace",
        &text,
        &[
            "cut.strace: no events imported: 200000 call(s) never resumed",
            "7 at the end",
        ],
    );
    // With events: imported, and a warning with the count.
    let p = dir.path().join("some.strace");
    std::fs::write(
        &p,
        "1 12:00:00.000001 openat(AT_FDCWD, \"/a\", O_RDONLY) = 3\n\
         1 12:00:00.000002 read(3, <unfinished ...>\n\
         1 12:00:00.000003 read(3, <unfinished ...>\n",
    )
    .unwrap();
    let out = common::advisor()
        .args(["trace", "import", "--from", "strace", "-o"])
        .arg(dir.path().join("o.jsonl"))
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("some.strace: 2 call(s) never resumed"),
        "{err}"
    );
}

#[test]
fn malformed_and_nonsense_profiles_exit_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let default = std::fs::read_to_string(common::repo().join("calibration/default.json")).unwrap();
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&default).unwrap();
        f(&mut v);
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{nope").unwrap();
    let cases = [
        (
            broken.display().to_string(),
            "broken.json is not valid JSON",
        ),
        (
            edit("lots.json", &|p| {
                p["node"]["snapshotter_config"]["prefetch_size"] = "lots".into()
            }),
            "lots.json: node.snapshotter_config.prefetch_size is `lots`",
        ),
        (
            edit("neg.json", &|p| {
                p["node"]["snapshotter_config"]["prefetch_size"] = "-1".into()
            }),
            "neg.json: node.snapshotter_config.prefetch_size is `-1`",
        ),
        (
            edit("cov.json", &|p| {
                p["fits"]["lazy-io"]["covariance"] = serde_json::json!([[1.0]])
            }),
            "cov.json: fit `lazy-io`: the covariance has rows of lengths [1]",
        ),
        (
            edit("huge.json", &|p| {
                p["parameters"]["resolve_s"]["value"] = 1e308.into();
                p["parameters"]["resolve_s"]["high"] = 1e308.into();
            }),
            "huge.json: parameter `resolve_s` reaches 1e308 s",
        ),
        (
            edit("old.json", &|p| p["schema"] = "advisor.profile/v0".into()),
            "old.json has schema `advisor.profile/v0`",
        ),
        // The calibration's recorded link (issue 15 §3).
        (
            edit("rtt.json", &|p| {
                p["node"]["link"] = serde_json::json!({"rtt_s": -0.005,
                    "stream_bytes_per_s": 1e8, "total_bytes_per_s": 1e8, "setup_s": 0.005})
            }),
            "rtt.json: node.link.rtt_s must be a time ≥ 0 s, not -0.005",
        ),
        (
            edit("bw.json", &|p| {
                p["node"]["link"] = serde_json::json!({"rtt_s": 0.005,
                    "stream_bytes_per_s": 0.0, "total_bytes_per_s": 1e8, "setup_s": 0.005})
            }),
            "bw.json: node.link.stream_bytes_per_s must be a bandwidth > 0 bytes/s, not 0",
        ),
    ];
    for (path, want) in &cases {
        fails_clearly(&["advise", "--profile", path], &[want]);
    }
}

/// A closed local port: every request fails fast.
const CLOSED: &str = "127.0.0.1:9";

#[test]
fn credentials_in_urls_are_never_printed() {
    let with_secret = format!("user:s3cret-pw@{CLOSED}");
    let metrics = format!("http://u:s3cret-pw@{CLOSED}/metrics");
    for format in ["table", "json"] {
        let out = common::advisor()
            .args(["--format", format, "doctor", "--registry", &with_secret])
            .env("ADVISOR_STARGZ_METRICS", &metrics)
            .env("ADVISOR_CONTAINERD", "/nonexistent/containerd.sock")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(!all.contains("s3cret-pw"), "{all}");
        assert!(all.contains(&format!("user:***@{CLOSED}")), "{all}");
        assert!(all.contains(&format!("u:***@{CLOSED}/metrics")), "{all}");
    }
}

#[test]
fn a_registry_port_out_of_range_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path());
    let err = fails_clearly(
        &[
            "trace",
            "analyze",
            "--image",
            "127.0.0.1:99999/app:1",
            "--trace",
            &t,
        ],
        &[
            "`127.0.0.1:99999/app:1`",
            "port `99999`",
            "is not a TCP port (1-65535)",
        ],
    );
    assert!(!err.contains("could not clone request builder"), "{err}");
    let out = common::advisor()
        .args(["doctor", "--registry", "127.0.0.1:99999"])
        .env("ADVISOR_CONTAINERD", "/nonexistent/containerd.sock")
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("--registry 127.0.0.1:99999: registry port `99999`"),
        "{all}"
    );
}

#[test]
fn whole_file_inputs_are_bounded_not_read_until_memory_runs_out() {
    let spec = common::repo().join("models/calibration/few-large.json");
    let spec = spec.to_str().unwrap();
    fails_clearly(
        &["advise", "--profile", "/dev/zero"],
        &["cannot read profile /dev/zero: larger than 64.0 MiB"],
    );
    fails_clearly(
        &[
            "image",
            "build",
            "--spec",
            "/dev/zero",
            "--push",
            "127.0.0.1:9/x:1",
        ],
        &["the image spec /dev/zero: larger than 64.0 MiB"],
    );
    fails_clearly(
        &[
            "image",
            "build",
            "--spec",
            spec,
            "--prioritize",
            "/dev/zero",
            "--push",
            "127.0.0.1:9/x:1",
        ],
        &["the prioritized-files list /dev/zero: larger than 64.0 MiB"],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    fails_clearly(
        &[
            "calibrate",
            "--refit",
            "--runs",
            "/dev/zero",
            "-o",
            out.to_str().unwrap(),
        ],
        &["/dev/zero line 1: longer than 64.0 MiB: not a calibration runs file"],
    );
    let bad = dir.path().join("bad.runs");
    std::fs::write(&bad, b"\xff\xfe\n").unwrap();
    fails_clearly(
        &[
            "calibrate",
            "--refit",
            "--runs",
            bad.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &["bad.runs line 1: not valid UTF-8"],
    );
}

#[test]
fn image_spec_sizes_that_wrap_the_total_are_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("huge.json");
    std::fs::write(
        &spec,
        r#"{"name":"h","seed":1,"base":"none","layers":[{"name":"d","groups":[
            {"dir":"/d","name":"f{i}","count":2,"size":"18446744073709551615","content":"random"}]}]}"#,
    )
    .unwrap();
    fails_clearly(
        &[
            "image",
            "build",
            "--spec",
            spec.to_str().unwrap(),
            "--push",
            "127.0.0.1:9/x:1",
        ],
        &[
            "image spec",
            "huge.json: `layers`: the files' sizes add up to more than 1.00 PiB",
        ],
    );
}

/// `advise --rtt/--bandwidth` (issue 15 §4): nonsense paths are refused by
/// flag, with the units that work.
#[test]
fn nonsense_network_paths_are_refused_naming_the_flag() {
    for (rtt, bw, want) in [
        ("-5ms", "1gbit", "--rtt"),
        ("20ms", "0mbit", "--bandwidth"),
        ("20ms", "100mb", "unknown unit"),
        ("20ms", "fast", "500mbit"),
        ("soon", "1gbit", "--rtt"),
    ] {
        fails_clearly(&["advise", "--rtt", rtt, "--bandwidth", bw], &[want]);
    }
    fails_clearly(&["advise", "--rtt", "20ms"], &["--bandwidth"]);
    let dir = tempfile::tempdir().unwrap();
    let not_a_profile = dir.path().join("not-a-profile.json");
    std::fs::write(&not_a_profile, r#"{"kind": "advisor-profile"}"#).unwrap();
    let p = not_a_profile.to_str().unwrap();
    fails_clearly(
        &["advise", "--network", p],
        &["--network", p, "advisor probe"],
    );
    fails_clearly(
        &["advise", "--network", "/nonexistent/net.json"],
        &["--network /nonexistent/net.json", "cannot read"],
    );
    fails_clearly(
        &[
            "advise",
            "--network",
            p,
            "--rtt",
            "1ms",
            "--bandwidth",
            "1gbit",
        ],
        &["--network", "--rtt"],
    );
    fails_clearly(&["advise", "--bandwidth", "1gbit"], &["--rtt"]);
}

/// `advise --rtt-max` (issue 15 §4): the RTT sweep's top must be a duration
/// more than 0 and at most 10 s; `--plot-rtt` may not replace an input.
#[test]
fn nonsense_rtt_sweep_flags_are_refused_naming_the_flag() {
    for (max, want) in [
        ("0", "more than 0"),
        ("0ms", "more than 0"),
        ("11s", "at most 10.00 s"),
        ("-5ms", "200ms"),
        ("soon", "200ms"),
        ("", "200ms"),
    ] {
        fails_clearly(&["advise", "--rtt-max", max], &["--rtt-max", want]);
    }
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path());
    let table = fixture("trace-fixture.files.json");
    let table = table.to_str().unwrap();
    let before = std::fs::read(&t).unwrap();
    fails_clearly(
        &["advise", "--files", table, "--trace", &t, "--plot-rtt", &t],
        &["--plot-rtt", "is the input --trace"],
    );
    assert_eq!(std::fs::read(&t).unwrap(), before, "the trace was changed");
}
