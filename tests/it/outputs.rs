//! Nothing lost (issue 17 §4), through the binary, offline: a failed run
//! leaves an existing output byte-identical with no temporary file beside it,
//! an output naming one of the inputs is refused before anything is read, and
//! advise's two outputs are written all or none.
use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

const OLD: &[u8] = b"{\"an existing output\": true}\n";

/// Names in `dir`, sorted (a leftover `.NAME.XXXXXX.tmp` shows here).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The file still holds exactly [`OLD`].
#[track_caller]
fn assert_old(path: &Path, what: &str) {
    let now = fs::read(path).unwrap();
    assert!(
        now == OLD,
        "{what}: {} was changed to:\n{}",
        path.display(),
        String::from_utf8_lossy(&now[..now.len().min(400)])
    );
}

/// Run advisor; returns stderr after checking the exit code is 1.
fn fails_with_1(args: &[&std::ffi::OsStr]) -> String {
    let out = common::advisor().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// The bundled example's file table and trace, copied into `dir`.
fn example(dir: &Path) -> (PathBuf, PathBuf) {
    let files = dir.join("files.json");
    let trace = dir.join("trace.jsonl");
    fs::copy(
        common::repo().join("models/examples/llm-serving.files.json"),
        &files,
    )
    .unwrap();
    fs::copy(common::repo().join("traces/llm-serving.jsonl"), &trace).unwrap();
    (files, trace)
}

#[test]
fn trace_import_of_a_bad_input_leaves_the_existing_output() {
    // Was: the output replaced by a header-only trace, exit 1.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.jsonl");
    fs::write(&out, OLD).unwrap();
    for (from, text) in [
        ("file-list", "/bin/sh\nrelative/path\n"),
        ("strace", "not strace output\n"),
    ] {
        let input = d.path().join("input");
        fs::write(&input, text).unwrap();
        let err = fails_with_1(&[
            os("trace"),
            os("import"),
            os("--from"),
            os(from),
            os("-o"),
            out.as_os_str(),
            input.as_os_str(),
        ]);
        assert!(err.contains("input"), "{err}");
        assert_old(&out, &format!("--from {from}"));
        assert_eq!(listing(d.path()), ["input", "out.jsonl"], "--from {from}");
    }
}

#[test]
fn trace_import_refuses_an_output_that_is_its_input() {
    // Was: the input truncated, then imported as empty, exit 0.
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("paths.txt");
    let text = b"/bin/sh\n/etc/passwd\n";
    fs::write(&input, text).unwrap();
    // By the same name and through a symbolic link.
    let link = d.path().join("link.txt");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for out in [&input, &link] {
        let err = fails_with_1(&[
            os("trace"),
            os("import"),
            os("--from"),
            os("file-list"),
            os("-o"),
            out.as_os_str(),
            input.as_os_str(),
        ]);
        assert!(
            err.contains(&out.display().to_string()) && err.contains(&input.display().to_string()),
            "names both paths: {err}"
        );
        assert!(err.contains("another path"), "says the fix: {err}");
        assert!(fs::read(&input).unwrap() == text, "the input was changed");
    }
    assert_eq!(listing(d.path()), ["link.txt", "paths.txt"]);
}

#[test]
fn trace_import_replaces_an_existing_output_on_success_keeping_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("paths.txt");
    fs::write(&input, "/bin/sh\n").unwrap();
    let out = d.path().join("out.jsonl");
    fs::write(&out, OLD).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o640)).unwrap();
    common::advisor()
        .args(["trace", "import", "--from", "file-list", "-o"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let text = fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("{\"format\":\"advisor-trace\""), "{text}");
    assert!(text.contains("/bin/sh"), "{text}");
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(listing(d.path()), ["out.jsonl", "paths.txt"]);
}

#[test]
fn trace_synth_refuses_an_output_that_is_its_file_table() {
    let d = tempfile::tempdir().unwrap();
    let (files, _) = example(d.path());
    let before = fs::read(&files).unwrap();
    let err = fails_with_1(&[
        os("trace"),
        os("synth"),
        os("--files"),
        files.as_os_str(),
        os("--working-set"),
        os("10%"),
        os("--pattern"),
        os("sequential"),
        os("-o"),
        files.as_os_str(),
    ]);
    assert!(err.contains("--files"), "{err}");
    assert!(
        fs::read(&files).unwrap() == before,
        "the file table was changed"
    );
}

#[test]
fn advise_with_a_bad_plot_path_writes_no_prefetch_list() {
    // Was: the prefetch list written, then the plot failing, exit 1.
    let d = tempfile::tempdir().unwrap();
    let (files, trace) = example(d.path());
    let list = d.path().join("prefetch.txt");
    fs::write(&list, OLD).unwrap();
    let plot = d.path().join("no-such-dir/plot.svg");
    let args = |list: &Path| {
        vec![
            os("advise").to_owned(),
            os("--files").to_owned(),
            files.as_os_str().to_owned(),
            os("--trace").to_owned(),
            trace.as_os_str().to_owned(),
            os("--plot").to_owned(),
            plot.as_os_str().to_owned(),
            os("--prefetch-list").to_owned(),
            list.as_os_str().to_owned(),
        ]
    };
    let a = args(&list);
    let err = fails_with_1(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert!(err.contains("plot") && err.contains("no-such-dir"), "{err}");
    assert_old(&list, "the existing prefetch list");
    // A new list is not created either.
    let new = d.path().join("new-prefetch.txt");
    let a = args(&new);
    fails_with_1(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert!(!new.exists(), "no prefetch list without the plot");
    assert_eq!(
        listing(d.path()),
        ["files.json", "prefetch.txt", "trace.jsonl"]
    );
}

#[test]
fn advise_refuses_outputs_that_are_its_inputs() {
    // Was: --prefetch-list overwrote the file table it read.
    let d = tempfile::tempdir().unwrap();
    let (files, trace) = example(d.path());
    let (files_before, trace_before) = (fs::read(&files).unwrap(), fs::read(&trace).unwrap());
    for (flag, out, input_flag) in [
        ("--prefetch-list", &files, "--files"),
        ("--plot", &trace, "--trace"),
        ("--prefetch-list", &trace, "--trace"),
    ] {
        let err = fails_with_1(&[
            os("advise"),
            os("--files"),
            files.as_os_str(),
            os("--trace"),
            trace.as_os_str(),
            os(flag),
            out.as_os_str(),
        ]);
        assert!(
            err.contains(flag) && err.contains(input_flag),
            "{flag} {input_flag}: {err}"
        );
        assert!(err.contains(&out.display().to_string()), "{err}");
        assert!(fs::read(&files).unwrap() == files_before, "--files changed");
        assert!(fs::read(&trace).unwrap() == trace_before, "--trace changed");
    }
    // The two outputs naming one file.
    let same = d.path().join("out");
    let err = fails_with_1(&[
        os("advise"),
        os("--files"),
        files.as_os_str(),
        os("--trace"),
        trace.as_os_str(),
        os("--plot"),
        same.as_os_str(),
        os("--prefetch-list"),
        same.as_os_str(),
    ]);
    assert!(err.contains("same file"), "{err}");
    assert_eq!(listing(d.path()), ["files.json", "trace.jsonl"]);
}

#[test]
fn advise_writes_both_outputs_on_success() {
    let d = tempfile::tempdir().unwrap();
    let (files, trace) = example(d.path());
    let (list, plot) = (d.path().join("list.txt"), d.path().join("plot.svg"));
    fs::write(&list, OLD).unwrap();
    common::advisor()
        .arg("advise")
        .arg("--files")
        .arg(&files)
        .arg("--trace")
        .arg(&trace)
        .arg("--plot")
        .arg(&plot)
        .arg("--prefetch-list")
        .arg(&list)
        .assert()
        .success();
    let text = fs::read_to_string(&list).unwrap();
    assert!(text.lines().all(|l| l.starts_with('/')), "{text}");
    assert!(fs::read_to_string(&plot).unwrap().contains("<svg"));
    assert_eq!(
        listing(d.path()),
        ["files.json", "list.txt", "plot.svg", "trace.jsonl"]
    );
}

/// On the lab: a recording that fails (the command does not exist in the
/// image) leaves an existing trace as it was; one that succeeds replaces it.
#[test]
fn trace_record_that_fails_leaves_the_existing_trace() {
    // Was: the trace truncated to its header before the run failed.
    let Some(lab) = common::lab() else { return };
    const REPO: &str = "advisor-test/outputs-record";
    let st = std::process::Command::new(common::repo().join("tests/fixtures/smoke-image.sh"))
        .args([lab.containerd.to_str().unwrap(), &lab.registry, REPO])
        .status()
        .unwrap();
    assert!(st.success(), "smoke-image.sh");
    let image = format!("{}/{REPO}:gzip", lab.registry);
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("app.jsonl");
    fs::write(&out, OLD).unwrap();
    let record = |cmd: &[&str]| {
        common::advisor()
            .args(["--namespace", "advisor-outputs-test", "trace", "record"])
            .args([
                "--no-reference-run",
                "--timeout",
                "60",
                "--image",
                &image,
                "-o",
            ])
            .arg(&out)
            .arg("--")
            .args(cmd)
            .output()
            .unwrap()
    };
    let failed = record(&["/no/such/command"]);
    // The user's command that cannot start is the user's to fix: exit 1, not 2.
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_old(&out, "a failed recording");
    assert_eq!(listing(d.path()), ["app.jsonl"]);

    let ok = record(&["/bin/cat", "/data/small.txt"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = fs::read_to_string(&out).unwrap();
    assert!(text.contains("/data/small.txt"), "{text}");
    assert_eq!(listing(d.path()), ["app.jsonl"]);
}

#[test]
fn calibrate_refuses_a_profile_path_that_is_its_runs_file() {
    // Was: `--refit` fitted the runs and wrote the profile over them.
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join("node.runs.jsonl");
    fs::copy(common::repo().join("calibration/default.runs.jsonl"), &runs).unwrap();
    let before = fs::read(&runs).unwrap();
    let err = fails_with_1(&[
        os("calibrate"),
        os("--refit"),
        os("--runs"),
        runs.as_os_str(),
        os("-o"),
        runs.as_os_str(),
    ]);
    assert!(err.contains("--runs") && err.contains("-o"), "{err}");
    assert!(
        fs::read(&runs).unwrap() == before,
        "the runs file was changed"
    );
    assert_eq!(listing(d.path()), ["node.runs.jsonl"]);
}
