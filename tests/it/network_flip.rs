//! Issue 15 §5: a workload whose best strategy flips as the registry moves
//! away, measured and predicted. `sparse-small` (models/validation/
//! workloads-network.json) reads 240 small files spread over a 12,000-file
//! library: a few MB, but every file its own range request. Near the
//! registry lazy finishes first (docs/results.md: 1.9 s against 5.3 s); at
//! 50 ms every request waits a round trip and eager does (4.5 s against
//! 13.9 s). The node is calibrated on the unshaped lab (`calibrate
//! --quick`); the 50 ms path is priced from `advisor probe` of it alone.
//! Measured with containerd's own clients beside advisor bench, through the
//! validation harness; `lab/lab shape` is cleared when the test ends, pass or
//! fail. The same runs check `parallel-small` (ten readers at once) far from
//! the registry: their round trips overlap.
use crate::common;
use crate::lab_shape::{ClearShape, lab_run};
use crate::validate_lab::{harness, lab_clients};
use std::path::Path;

/// The shaped path: far enough that lazy's round trips outweigh eager's
/// whole pull by about 3× (the margin keeps this shared VM's noise out).
const RTT: &str = "50ms";
const BANDWIDTH: &str = "1gbit";

#[test]
#[ignore = "disruptive: shapes the lab and resets the stargz snapshotter; run serially by lab/test"]
fn lazy_finishes_first_near_the_registry_and_eager_far_from_it_measured_and_predicted() {
    let Some(lab) = common::lab() else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("network-flip");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("node.json");
    common::measuring_command()
        .args(["--address", &lab.containerd.to_string_lossy()])
        .args(["calibrate", "--quick", "--registry", &lab.registry, "-o"])
        .arg(&profile)
        .assert()
        .success();

    let near = run(
        &lab,
        &dir.join("near"),
        &lab.registry,
        None,
        &profile,
        vec![],
    );
    let near_case = sparse(&near);
    assert_eq!(
        (
            near_case.measured_completion_winner.as_str(),
            near_case.predicted_completion_winner.as_str()
        ),
        ("lazy", "lazy"),
        "near the registry lazy should finish first, measured and predicted:\n{}",
        harness::markdown(&near)
    );

    let _clear = ClearShape;
    let out = lab_run(&["shape", "--rtt", RTT, "--bandwidth", BANDWIDTH]);
    assert!(
        out.status.success(),
        "lab/lab shape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shape: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.dir.join("shape.json")).unwrap()).unwrap();
    let shaped = shape["registry"].as_str().expect("registry in shape.json");
    let on_path = |r: &str| r.replacen(&lab.registry, shaped, 1);
    let pushed = (
        on_path(&near.gzip_reference),
        on_path(&near.estargz_reference),
    );
    let net = dir.join("net.json");
    common::measuring_command()
        .args(["probe", "--registry", shaped, "--image", &pushed.0, "-o"])
        .arg(&net)
        .assert()
        .success();
    let far = run(
        &lab,
        &dir.join("far"),
        shaped,
        Some(pushed.clone()),
        &profile,
        vec![format!("--network={}", net.display())],
    );
    let far_case = sparse(&far);
    let table = harness::markdown(&far);
    assert_eq!(
        (
            far_case.measured_completion_winner.as_str(),
            far_case.predicted_completion_winner.as_str()
        ),
        ("eager", "eager"),
        "{RTT} from the registry eager should finish first, measured and predicted:\n{table}"
    );
    // Lazy's time there is its round trips: predicted within 30 %.
    assert_lazy_within(far_case, 0.30, &table);
    // Ten readers at once wait their round trips together: priced one after
    // another they came out +85 to +112 % here (docs/results.md, "Readers at
    // once"), the path adding ~1.3 s to the prediction where it adds 0.3–0.6 s
    // to the runs. The node's own price of their reads moves by ±20 % from
    // one quick calibration to the next, which one cold run shows whole: the
    // same workload near the registry has come out −10 to +49 % (the
    // path-added time, far less near, was too noisy to check: 0.07–0.59 s
    // measured). Priced serially, about +75 % or more.
    assert_lazy_within(case(&far, "parallel-small"), 0.60, &table);
    background_fetch_is_predicted(
        &lab,
        &dir.join("far"),
        sparse(&far),
        &profile,
        &net,
        &pushed.1,
    );
}

/// After a lazy run the snapshotter downloads the rest of the image in the
/// background, 5 s after the last read and after the container is gone;
/// advise predicts when the image is whole (docs/results.md, "Background
/// fetch after the run": 3–7 % at 50 ms / 100 Mbit/s). One cold run by
/// containerd's clients, the registry's bytes counted at the lab's veth.
fn background_fetch_is_predicted(
    lab: &common::Lab,
    out: &Path,
    c: &harness::Case,
    profile: &Path,
    net: &Path,
    estargz: &str,
) {
    let json = common::advisor()
        .args(["--format", "json", "advise", "--files"])
        .arg(out.join("files.json"))
        .arg("--trace")
        .arg(&c.trace)
        .arg("--profile")
        .arg(profile)
        .arg(format!("--network={}", net.display()))
        .output()
        .unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let lazy = v["prediction"]["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["strategy"] == "lazy")
        .expect("a lazy prediction");
    let predicted = &lazy["background"];
    let (whole, bytes) = (
        predicted["whole"]["value"]
            .as_f64()
            .expect("background.whole"),
        predicted["bytes"].as_f64().expect("background.bytes"),
    );
    let port = lab.registry.rsplit(':').next().unwrap();
    let counter = Path::new("/sys/class/net")
        .join(format!("alab{port}h"))
        .join("statistics/rx_bytes");
    let clients = clients(lab);
    clients.prepare().unwrap();
    let m = clients
        .background_run(
            estargz,
            &c.workload.script(),
            "flip-background",
            &counter,
            8.0,
        )
        .unwrap();
    let started = m.starts_s.expect("background fetch after the run");
    let grew = (m.bytes_total - m.bytes_at_done) as f64;
    let said = format!("predicted {predicted}, measured {m:?}");
    eprintln!("network-flip: background fetch after sparse-small: {said}");
    // The snapshotter's 5-s idle rule, then the rest of the image.
    assert!(
        started > m.done_s + 4.0 && started < m.done_s + 8.0,
        "{said}"
    );
    assert!(grew > 0.9 * bytes, "{said}");
    assert!(
        (whole - m.whole_s).abs() < 0.25 * m.whole_s,
        "whole at {:.2} s: {said}",
        m.whole_s
    );
}

fn clients(lab: &common::Lab) -> harness::truth::Clients {
    lab_clients(lab, "advisor-flip-test-ctr")
}

/// Every lazy number of `c` (ready, complete) predicted within `bound`.
fn assert_lazy_within(c: &harness::Case, bound: f64, table: &str) {
    for n in c.numbers.iter().filter(|n| n.strategy == "lazy") {
        assert!(
            n.error.abs() < bound,
            "{} lazy to {} at {RTT}: predicted {}, measured {:.2} s:\n{table}",
            c.workload.name,
            n.point,
            n.predicted_text(),
            n.measured_median
        );
    }
}

/// One harness run of workloads-network.json, one cold run per strategy.
fn run(
    lab: &common::Lab,
    out: &Path,
    registry: &str,
    pushed: Option<(String, String)>,
    profile: &Path,
    advise_args: Vec<String>,
) -> harness::Report {
    std::fs::create_dir_all(out).unwrap();
    let cfg = harness::Config {
        advisor: common::measuring_advisor(),
        registry: registry.to_string(),
        repository: "advisor-test/flip:v1".into(),
        spec: common::repo().join("models/validation/app.json"),
        workloads: common::repo().join("models/validation/workloads-network.json"),
        repeats: 1,
        out_dir: out.to_path_buf(),
        namespace: "advisor-flip-test".into(),
        global: vec![
            "--address".into(),
            lab.containerd.to_string_lossy().into_owned(),
        ],
        only: Vec::new(),
        profile: Some(profile.to_path_buf()),
        calibrate: None,
        prefetch: false,
        pushed,
        ctr_remote_estargz: false,
        advise_args,
        clients: clients(lab),
    };
    let report = harness::run(&cfg, |m| eprintln!("network-flip: {m}")).unwrap();
    eprintln!("{}", harness::markdown(&report));
    report
}

fn sparse(r: &harness::Report) -> &harness::Case {
    case(r, "sparse-small")
}

fn case<'a>(r: &'a harness::Report, name: &str) -> &'a harness::Case {
    r.cases
        .iter()
        .find(|c| c.workload.name == name)
        .unwrap_or_else(|| panic!("the {name} workload"))
}
