//! `advisor image build` without a registry (`--dry-run`): determinism, seed
//! independence between groups, TOML specs, and the errors a user sees for a
//! bad spec, a bad prioritized list, a missing busybox or a bad `--push`.
use crate::common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const SMALL: &str = "models/examples/small.json";

fn dry_run(spec: &Path, extra: &[&str]) -> Value {
    let args = ["image", "build", "--dry-run", "--format", "json", "-q"];
    common::run_json(
        common::advisor()
            .args(args)
            .arg("--spec")
            .arg(spec)
            .args(extra),
    )
}

fn user_error(args: &[&str]) -> String {
    let out = common::advisor().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn small() -> Value {
    serde_json::from_slice(&std::fs::read(common::repo().join(SMALL)).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn layer_digests(r: &Value, form: usize) -> Vec<String> {
    r["forms"][form]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn same_spec_and_seed_give_the_same_digests_and_groups_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "a.json", &small());
    let a = dry_run(&spec, &[]);
    let b = dry_run(&spec, &[]);
    assert_eq!(a["forms"], b["forms"], "two builds of one spec differ");
    assert!(a["forms"][0]["reference"].is_null());
    assert_eq!(a["files"], 52);
    // Another seed changes the generated layers, not the base.
    let mut v = small();
    v["seed"] = json!(2);
    let c = dry_run(&write(dir.path(), "c.json", &v), &[]);
    for f in 0..2 {
        let (x, y) = (layer_digests(&a, f), layer_digests(&c, f));
        assert_eq!(x[0], y[0], "base layer");
        assert_ne!(x[1], y[1]);
        assert_ne!(x[2], y[2]);
    }
    // Changing one group of the data layer leaves the app layer byte-identical.
    let mut v = small();
    v["layers"][1]["groups"][0]["count"] = json!(5);
    let d = dry_run(&write(dir.path(), "d.json", &v), &[]);
    for f in 0..2 {
        let (x, y) = (layer_digests(&a, f), layer_digests(&d, f));
        assert_eq!(x[..2], y[..2]);
        assert_ne!(x[2], y[2]);
    }
    // The data layer's untouched groups keep their bytes: only the new files differ.
    assert_eq!(d["forms"][0]["layers"][2]["files"], 9);
    assert_ne!(
        a["forms"][0]["manifest_digest"],
        d["forms"][0]["manifest_digest"]
    );
    // eStargz layers carry a TOC digest; gzip ones do not.
    for l in a["forms"][1]["layers"].as_array().unwrap() {
        assert!(l["toc_digest"].as_str().unwrap().starts_with("sha256:"));
    }
    for l in a["forms"][0]["layers"].as_array().unwrap() {
        assert!(l["toc_digest"].is_null());
    }
}

#[test]
fn toml_specs_build_like_json() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
seed = 3
base = "none"
entrypoint = ["/app/run"]

[[layers]]
name = "only"

[[layers.groups]]
dir = "/app"
name = "f{i:03}.txt"
count = 4
size = { min = "1KiB", max = "4KiB" }
content = "text"
"#;
    let p = dir.path().join("s.toml");
    std::fs::write(&p, toml).unwrap();
    let r = dry_run(&p, &[]);
    assert_eq!(r["forms"][0]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(r["files"], 4);
    let json = json!({"seed": 3, "base": "none", "entrypoint": ["/app/run"], "layers": [{"name": "only",
        "groups": [{"dir": "/app", "name": "f{i:03}.txt", "count": 4,
                    "size": {"min": "1KiB", "max": "4KiB"}, "content": "text"}]}]});
    let j = dry_run(&write(dir.path(), "s.json", &json), &[]);
    assert_eq!(r["forms"], j["forms"]);
}

#[test]
fn bad_specs_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = small();
    v["layers"][0]["groups"][1]["size"] = json!("7 furlongs");
    let p = write(dir.path(), "bad.json", &v);
    let e = user_error(&["image", "build", "--dry-run", "--spec", p.to_str().unwrap()]);
    assert!(e.contains("bad.json: `layers[0].groups[1].size`"), "{e}");
    assert!(e.contains("unknown unit `furlongs`"), "{e}");

    let mut v = small();
    v["layers"][1]["groups"][0]["name"] = json!("blob.bin");
    let p = write(dir.path(), "dup.json", &v);
    let e = user_error(&["image", "build", "--dry-run", "--spec", p.to_str().unwrap()]);
    assert!(e.contains("`layers[1].groups[0].name`"), "{e}");
    assert!(e.contains("no {i} placeholder"), "{e}");

    let e = user_error(&[
        "image",
        "build",
        "--dry-run",
        "--spec",
        "/nonexistent/spec.json",
    ]);
    assert!(
        e.contains("cannot read the image spec /nonexistent/spec.json"),
        "{e}"
    );
}

#[test]
fn prioritized_lists_busybox_and_push_references_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::repo().join(SMALL);
    let spec = spec.to_str().unwrap();
    let list = dir.path().join("hot.txt");
    std::fs::write(&list, "/app/config.yaml\n/app/nope.txt\n").unwrap();
    let e = user_error(&[
        "image",
        "build",
        "--dry-run",
        "--spec",
        spec,
        "--prioritize",
        list.to_str().unwrap(),
    ]);
    assert!(e.contains("prioritized file `/app/nope.txt`"), "{e}");
    assert!(e.contains("hot.txt line 2"), "{e}");

    std::fs::write(&list, "/app/config.yaml\n/bin/sh\n").unwrap();
    let r = dry_run(Path::new(spec), &["--prioritize", list.to_str().unwrap()]);
    assert_eq!(r["forms"][1]["layers"].as_array().unwrap().len(), 3);

    let e = user_error(&[
        "image",
        "build",
        "--dry-run",
        "--spec",
        spec,
        "--busybox",
        "/nonexistent/busybox",
    ]);
    assert!(e.contains("apt-get install busybox-static"), "{e}");

    let digest_ref = format!("127.0.0.1:1/app@sha256:{}", "a".repeat(64));
    let e = user_error(&["image", "build", "--spec", spec, "--push", &digest_ref]);
    assert!(e.contains("a digest cannot be pushed to"), "{e}");
    let e = user_error(&["image", "build", "--spec", spec]);
    assert!(e.contains("--push"), "{e}");
}

#[test]
fn example_specs_parse_and_plan_to_their_documented_sizes() {
    use advisor::image::{base::Busybox, plan, spec};
    let bb = Busybox {
        path: "/bin/busybox".into(),
        size: 2_000_000,
    };
    for (name, files, low, high) in [
        ("small.json", 52, 3 << 20, 6 << 20),
        ("llm-serving.json", 6470, 900 << 20, 1200 << 20),
    ] {
        let p = common::repo().join("models/examples").join(name);
        let s = spec::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan = plan::plan(&s, &p, Some(&bb), &[]).unwrap();
        let n: usize = plan.layers.iter().map(|l| l.file_count()).sum();
        let bytes = plan.payload_bytes();
        assert_eq!(n, files, "{name}");
        assert!((low..high).contains(&bytes), "{name}: {bytes} bytes");
        eprintln!("{name}: {n} files, {bytes} bytes");
    }
}
