//! `calibrate --refit --plot` without the lab: the bundled runs fitted again
//! and drawn, a dot per run in each panel; a plot path that cannot be
//! written fails with exit 1 before anything is written. (`bench --plot`
//! needs containerd: its rendering is unit-tested in src/report/bench_plot.rs.)
use crate::common;
use std::fs;
use std::path::Path;

/// The runs in a runs file (its `"kind":"run"` lines).
fn runs_in(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["kind"] == "run"))
        .count()
}

fn refit(out: &Path, plot: &Path) -> assert_cmd::Command {
    let mut cmd = common::advisor();
    cmd.current_dir(common::repo())
        .args([
            "-q",
            "calibrate",
            "--refit",
            "--runs",
            "calibration/default.runs.jsonl",
            "-o",
        ])
        .arg(out)
        .arg("--plot")
        .arg(plot);
    cmd
}

#[test]
fn calibrate_refit_plot_draws_a_dot_per_run_in_both_panels() {
    let d = tempfile::tempdir().unwrap();
    let (out, plot) = (d.path().join("p.json"), d.path().join("c.svg"));
    let runs = runs_in(&common::repo().join("calibration/default.runs.jsonl"));
    assert!(runs > 10, "{runs}");
    let done = refit(&out, &plot).output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.is_file(), "the profile is written with the plot");
    let svg = fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    let title = format!("from calibration/default.runs.jsonl: {runs} run(s)");
    assert!(svg.contains(&title), "{title}: {svg}");
    for text in ["measured vs predicted", "residuals", "measured = predicted"] {
        assert!(svg.contains(text), "{text}");
    }
    assert_eq!(svg.matches("<circle").count(), 2 * runs);
    let mut names: Vec<String> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["c.svg", "p.json"], "no temporary file left");
}

#[test]
fn a_plot_path_that_cannot_be_written_fails_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("p.json");
    fs::write(&out, "old profile").unwrap();
    let plot = d.path().join("no-such-dir/c.svg");
    common::fails_with(
        &mut refit(&out, &plot),
        1,
        &["--plot", "no-such-dir/c.svg", "cannot write there"],
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "old profile");
    assert!(!plot.exists());
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn a_plot_that_is_the_profile_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("p.json");
    common::fails_with(&mut refit(&out, &out), 1, &["--plot", "-o", "same file"]);
    assert!(!out.exists());
}
