//! `advisor trace …` through the binary, without the lab: real strace
//! captures (tests/fixtures/trace/*.strace, recorded on this machine with
//! busybox in a chroot) and the file table of the lab fixture image
//! (tests/fixtures/trace/trace-fixture.files.json, see README there).
use crate::common;

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/trace").join(name)
}

fn events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["format"], "advisor-trace");
    assert_eq!(header["version"], 1);
    lines.map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn reads(ev: &[serde_json::Value], path: &str) -> Vec<(u64, u64)> {
    ev.iter()
        .filter(|e| e["op"] == "read" && e["path"] == path)
        .map(|e| (e["offset"].as_u64().unwrap(), e["len"].as_u64().unwrap()))
        .collect()
}

fn import_full(dir: &Path) -> PathBuf {
    let out = dir.join("full.jsonl");
    common::advisor()
        .args([
            "trace",
            "import",
            "--from",
            "strace",
            "--root",
            "/tmp/tracefix",
        ])
        .args(["--ready-line", "ready", "-o"])
        .arg(&out)
        .arg(fixture("busybox-full.strace"))
        .assert()
        .success();
    out
}

fn analyze_json(trace: &Path) -> serde_json::Value {
    common::run_json(
        common::advisor()
            .args(["trace", "analyze", "--format", "json", "--files"])
            .arg(fixture("trace-fixture.files.json"))
            .arg("--trace")
            .arg(trace),
    )
}

#[test]
fn strace_with_y_and_full_filter_gives_exact_reads() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events(&import_full(dir.path()));
    // cat: sendfile of the whole 6-byte file; head: one 4 KiB read; dd:
    // dup2 onto stdin, lseek to 300 × 4096, two 4 KiB reads.
    assert_eq!(reads(&ev, "/data/small.txt"), vec![(0, 6)]);
    assert_eq!(
        reads(&ev, "/data/big.bin"),
        vec![(0, 4096), (1_228_800, 4096), (1_232_896, 4096)]
    );
    let ready = ev.iter().position(|e| e["op"] == "ready").unwrap();
    let exit = ev.iter().position(|e| e["op"] == "exit").unwrap();
    assert!(ready < exit);
    assert_eq!(ev[exit]["result"], 3);
    assert!(
        ev.iter()
            .all(|e| e["op"] == "ready" || e["op"] == "exit" || e["dur"].is_u64())
    );
    let failed: Vec<_> = ev
        .iter()
        .filter(|e| e["err"] == "ENOENT")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"/nonexistent"), "{failed:?}");
    assert!(
        ev.iter()
            .any(|e| e["op"] == "readdir" && e["path"] == "/data")
    );
    // Paths are the container's, never the host's.
    assert!(
        ev.iter()
            .all(|e| !e["path"].as_str().unwrap_or("").starts_with("/tmp/"))
    );
}

#[test]
fn strace_with_the_minimal_filter_reports_what_it_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("min.jsonl");
    let s: serde_json::Value = common::run_json(
        common::advisor()
            .args([
                "trace", "import", "--from", "strace", "--format", "json", "-o",
            ])
            .arg(&out_path)
            .arg(fixture("busybox-minimal.strace")),
    );
    // dd reads through a dup2'ed stdin and lseek, neither traced here.
    assert_eq!(s["reads_on_unknown_fds"], 2);
    assert_eq!(s["exit_status"], 3);
    let ev = events(&out_path);
    assert_eq!(s["events"].as_u64(), Some(ev.len() as u64));
    // Before the chroot the paths are the host's; --root was not given.
    assert_eq!(ev[0]["path"], "/tmp/tracefix/bin/busybox");
    assert_eq!(reads(&ev, "/data/big.bin"), vec![(0, 4096)]);
}

#[test]
fn analyze_joins_an_imported_trace_with_the_toc() {
    let dir = tempfile::tempdir().unwrap();
    let r = analyze_json(&import_full(dir.path()));
    let b = &r["before_ready"];
    // busybox (one chunk), small.txt and big.bin (one chunk each).
    assert_eq!(b["files_touched"], 3);
    assert_eq!(b["chunks_missed"], 3);
    assert_eq!(b["decompressed_bytes"], 1_982_256 + 6 + 3_000_000);
    // From the TOC (blob 14,101,857 B, 50,000-B blocks): busybox's member
    // [207, 1,063,859) = blocks 0–21 in one GET; small.txt's block 281 in
    // one; big.bin's member [1,063,859, 4,064,950) exceeds 2 MiB, so two
    // reads: blocks 22–63 then 64–81. Mount: the tail block 282 (1,857 B)
    // holds footer and TOC, one GET.
    assert_eq!(b["requests"], 4);
    assert_eq!(b["compressed_fetched"], (22 + 1 + 42 + 18) * 50_000);
    assert_eq!(r["mount"]["requests"], 1);
    assert_eq!(r["mount"]["compressed_fetched"], 1_857);
    assert_eq!(r["total"]["requests"], 5);
    assert_eq!(r["after_ready"]["reads"], 0);
    assert_eq!(r["missing"]["count"], 0);
    assert_eq!(
        r["outside_image"]["first"],
        serde_json::json!(["/proc/self/exe", "/dev/null"])
    );
    assert_eq!(r["layers"][0]["fetched"], r["total"]["compressed_fetched"]);
}

#[test]
fn file_list_missing_paths_are_listed_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("files.txt");
    std::fs::write(
        &list,
        "/bin/sh\n# ready\n/data/text.txt\n/opt/app/missing.so\n",
    )
    .unwrap();
    let trace = dir.path().join("list.jsonl");
    common::advisor()
        .args(["trace", "import", "--from", "file-list", "-o"])
        .arg(&trace)
        .arg(&list)
        .assert()
        .success();
    let out = common::advisor()
        .args(["trace", "analyze", "--files"])
        .arg(fixture("trace-fixture.files.json"))
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("missing from the image: 1 path(s), 2 event(s)"),
        "{table}"
    );
    assert!(table.contains("/opt/app/missing.so"), "{table}");
    assert!(
        table.contains("before ready") && table.contains("after ready"),
        "{table}"
    );
    let r = analyze_json(&trace);
    assert_eq!(r["before_ready"]["unique_bytes_read"], 1_982_256);
    assert_eq!(r["after_ready"]["unique_bytes_read"], 9_437_184);
    // text.txt compresses well: its three members fit in blocks 281–282, and
    // the first miss's read-ahead covers the other two chunks.
    assert_eq!(r["after_ready"]["chunks_missed"], 3);
    assert_eq!(r["after_ready"]["requests"], 1);
}

#[test]
fn synth_is_deterministic_and_reads_the_working_set() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, seed: &str| {
        let p = dir.path().join(name);
        let summary: serde_json::Value = common::run_json(
            common::advisor()
                .args(["trace", "synth", "--format", "json", "--files"])
                .arg(fixture("trace-fixture.files.json"))
                .args(["--working-set", "50%", "--pattern", "random"])
                .args(["--seed", seed, "--read-size", "64KiB", "--ready-at", "0.5"])
                .arg("-o")
                .arg(&p),
        );
        (std::fs::read(&p).unwrap(), summary)
    };
    let (a, summary) = make("a.jsonl", "7");
    assert_eq!(a, make("b.jsonl", "7").0);
    assert_ne!(a, make("c.jsonl", "8").0);
    // Half of the readable file bytes (the TOC's landmark file excluded).
    let image_bytes = summary["image_bytes"].as_u64().unwrap();
    assert_eq!(
        image_bytes,
        6 + 22 + 1_982_256 + 3_000_000 + 10_000_000 + 9_437_184
    );
    assert_eq!(summary["bytes"].as_u64(), Some(image_bytes / 2));
    let r = analyze_json(&dir.path().join("a.jsonl"));
    assert_eq!(
        r["total"]["unique_bytes_read"].as_u64(),
        Some(image_bytes / 2)
    );
    assert!(r["trace"]["has_ready"].as_bool().unwrap());
    assert_eq!(r["missing"]["count"], 0);
}

#[test]
fn malformed_trace_exits_1_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bad.jsonl");
    std::fs::write(
        &trace,
        "{\"format\":\"advisor-trace\",\"version\":1,\"recorder\":\"x\",\"clock\":\"none\"}\n\
         {\"t\":1,\"pid\":1,\"op\":\"read\",\"path\":\"/bin/sh\",\"offset\":0}\n\
         {\"t\":2,\"pid\":1,\"op\":\"read\",\"path\":\"/bin/sh\",\"offset\":-4096,\"len\":1}\n",
    )
    .unwrap();
    let out = common::advisor()
        .args(["trace", "analyze", "--files"])
        .arg(fixture("trace-fixture.files.json"))
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl line 3: `offset` is negative (-4096); expected bytes from the start of the file"),
        "{err}"
    );
}

#[test]
fn user_errors_exit_1_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "trace",
                "analyze",
                "--image",
                "127.0.0.1:9/app:1",
                "--trace",
                "x.jsonl",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            // --image reads the registry (filetable): a closed port is the user's to fix.
            "is the registry running?",
        ),
        (
            vec![
                "trace".into(),
                "analyze".into(),
                "--files".into(),
                fixture("trace-fixture.files.json").display().to_string(),
                "--trace".into(),
                dir.path().join("nope.jsonl").display().to_string(),
            ],
            "nope.jsonl: cannot open the trace",
        ),
        (
            vec![
                "trace".into(),
                "analyze".into(),
                "--files".into(),
                fixture("busybox-full.strace").display().to_string(),
                "--trace".into(),
                "x".into(),
            ],
            "not a file table",
        ),
        (
            vec![
                "trace".into(),
                "import".into(),
                "--from".into(),
                "strace".into(),
                "-o".into(),
                dir.path().join("o.jsonl").display().to_string(),
                fixture("trace-fixture.files.json").display().to_string(),
            ],
            "contains no strace output",
        ),
    ];
    for (args, want) in cases {
        let out = common::advisor().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let list = dir.path().join("rel.txt");
    std::fs::write(&list, "/ok\nrelative/path\n").unwrap();
    let out = common::advisor()
        .args(["trace", "import", "--from", "file-list", "-o", "-"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("rel.txt line 2: `relative/path` is not an absolute path")
    );
}
