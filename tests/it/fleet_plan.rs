//! Issue 16 §3: `advisor plan` against a measured fleet. Three independent
//! lab nodes (`lab/lab nodes 3`: each its own containerd and stargz
//! snapshotter) pull one image at the same moment through one shaped
//! registry link (5 ms, 200 Mbit/s), eagerly and lazily, measured with
//! containerd's own clients by the fleet harness (examples/fleet); `plan`
//! predicts the same fleet from a `calibrate --quick` of the unshaped lab, a
//! recorded trace and `advisor probe` of the path alone. The nodes share the
//! link, so every eager pull takes about three times as long as one alone:
//! the test requires the plan to say so (closer to the measurement than one
//! node's prediction), each strategy's last node within 20 % of the plan
//! (the link drains the same bytes however TCP shares it), its median node
//! between one node alone and the plan's fair share (TCP need not be fair),
//! and the registry's bytes within 5 % (eager) and 30 % (lazy: the
//! snapshotter's background fetch over-reads, docs/results.md). Then the
//! lazy round again through a registry with a request-rate limit (nginx
//! queuing requests above 5 a second: scripts/rate_limited_registry.sh):
//! the last node within 25 % of `plan --registry-rps 5`, which must be
//! nearer the measurement than the plan without the limit. Run serially by
//! lab/test; nodes stopped, the limiter and the shape cleared pass or fail.
use crate::common;
use crate::fleet_lab::{StopNodes, compressed_bytes, env_var, fleet};
use crate::lab_shape::ClearShape;
use advisor::plan::Plan;
use advisor::predict::replay::Strategy;
use serde::Deserialize;
use std::path::Path;

const REPO: &str = "advisor-test/fleet-plan";
/// `/data/big.bin` of the fixture: about 2 s of the shaped link per node.
const DATA_BYTES: u64 = 48_000_000;
const WORKLOAD: &str = "cat /data/small.txt >/dev/null; echo READY; cat /data/big.bin >/dev/null";
const NODES: usize = 3;

#[derive(Deserialize)]
struct Planned {
    plan: Plan,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The request-rate limit of the last round (requests a second).
const RATE_LIMIT: &str = "5";

/// `advisor --format json plan` for `nodes` nodes with the test's inputs.
fn plan(dir: &Path, gzip_bytes: u64, nodes: usize, extra: &[&str]) -> Plan {
    let out = common::measuring_command()
        .args(["-q", "--format", "json", "plan", "--files"])
        .arg(dir.join("files.json"))
        .arg("--trace")
        .arg(dir.join("trace.jsonl"))
        .arg("--profile")
        .arg(dir.join("node.json"))
        .arg("--network")
        .arg(dir.join("net.json"))
        .args(["--gzip-bytes", &gzip_bytes.to_string()])
        .args(["--nodes", &nodes.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::parse_json::<Planned>(&out.stdout).plan
}

/// Calibrate, record the workload's trace and the image's file table on
/// the unshaped lab; shape it and probe the path.
fn inputs(lab: &common::Lab, dir: &Path) -> String {
    let address = lab.containerd.to_string_lossy().into_owned();
    common::measuring_command()
        .args(["--address", &address, "calibrate", "--quick", "--registry"])
        .arg(&lab.registry)
        .arg("-o")
        .arg(dir.join("node.json"))
        .assert()
        .success();
    common::advisor()
        .args(["image", "inspect", &format!("{}/{REPO}:esgz", lab.registry)])
        .arg("--toc-out")
        .arg(dir.join("files.json"))
        .assert()
        .success();
    common::advisor()
        .args(["--address", &address, "trace", "record", "--image"])
        .arg(format!("{}/{REPO}:gzip", lab.registry))
        .args(["--ready-line", "READY", "-o"])
        .arg(dir.join("trace.jsonl"))
        .args(["--", "sh", "-c", WORKLOAD])
        .assert()
        .success();
    common::lab_cmd(&["shape", "--rtt", "5ms", "--bandwidth", "200mbit"]);
    let env = common::lab_cmd(&["env"]);
    let shaped = env_var(&env, "ADVISOR_LAB_SHAPED_REGISTRY");
    common::measuring_command()
        .args([
            "probe",
            "--registry",
            &shaped,
            "--image",
            &format!("{REPO}:gzip"),
            "-o",
        ])
        .arg(dir.join("net.json"))
        .assert()
        .success();
    shaped
}

#[test]
#[ignore = "disruptive: calibrates, shapes the lab and starts lab nodes; run serially by lab/test"]
fn plan_predicts_three_nodes_sharing_one_registry_link() {
    let Some(lab) = common::lab() else { return };
    let _clear = ClearShape;
    let _nodes = StopNodes;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-plan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    common::faults::fixture(&lab, REPO, DATA_BYTES);
    let gzip_bytes = compressed_bytes(&lab.registry, REPO, "gzip");
    let shaped = inputs(&lab, &dir);

    common::lab_cmd(&["nodes", &NODES.to_string()]);
    let env = common::lab_cmd(&["env"]);
    let nodes: Vec<String> = env_var(&env, "ADVISOR_LAB_NODES")
        .split(',')
        .map(String::from)
        .collect();
    assert_eq!(nodes.len(), NODES, "{env}");
    let one = plan(&dir, gzip_bytes, 1, &[]);
    let fleet_plan = plan(&dir, gzip_bytes, NODES, &[]);
    for (strategy, lazy, tag) in [
        (Strategy::Eager, false, "gzip"),
        (Strategy::Lazy, true, "esgz"),
    ] {
        let cfg = config(&lab, &env, &nodes, lazy, format!("{shaped}/{REPO}:{tag}"));
        let report = fleet::run(&cfg, |m| eprintln!("fleet-plan: {m}")).expect("a fleet round");
        let json = serde_json::to_string_pretty(&report).unwrap();
        let done: Vec<f64> = report.per_node.iter().map(|r| r.done_s).collect();
        let measured_done = median(done.clone());
        let measured_last = done.iter().copied().fold(0.0, f64::max);
        let measured_ready = median(report.per_node.iter().map(|r| r.ready_s).collect());
        let predicted = fleet_plan
            .strategies
            .iter()
            .find(|s| s.strategy == strategy)
            .unwrap();
        let alone = one
            .strategies
            .iter()
            .find(|s| s.strategy == strategy)
            .unwrap();
        let err = |p: f64, m: f64| (p - m) / m.max(1.0);
        eprintln!(
            "fleet-plan: {} × {NODES}: ready {measured_ready:.2} s measured, {:.2} s planned; median done {measured_done:.2} s measured, {:.2} s planned; last done {measured_last:.2} s measured, {:.2} s planned ({:+.0} %), {:.2} s for one node alone; registry {} B measured, {} B planned",
            strategy.name(),
            predicted.ready.p50.value,
            predicted.done.p50.value,
            predicted.done.all.value,
            100.0 * err(predicted.done.all.value, measured_last),
            alone.done.p50.value,
            report.registry.bytes,
            predicted.egress.bytes.0
        );
        // The link drains the fleet's bytes however TCP shares it, so the
        // last node is the plan's firm claim. The median assumes a fair
        // share: TCP may favour some nodes (CI, 2026-12-06: eager nodes done
        // at 4.8, 4.9 and 6.6 s, planned 6.5 s for all), so it is a ceiling,
        // with one node alone as the floor.
        assert!(
            err(predicted.done.all.value, measured_last).abs() <= 0.20,
            "{}: the last node was done at {measured_last:.2} s, planned {:.2} s:\n{json}",
            strategy.name(),
            predicted.done.all.value
        );
        assert!(
            measured_done >= 0.9 * alone.done.p50.value
                && measured_done <= 1.2 * predicted.done.p50.value,
            "{}: the median node was done at {measured_done:.2} s, outside one node alone ({:.2} s) to the fair share ({:.2} s):\n{json}",
            strategy.name(),
            alone.done.p50.value,
            predicted.done.p50.value
        );
        let bytes_err = predicted.egress.bytes.0 as f64 / report.registry.bytes as f64 - 1.0;
        let allowed = if lazy { 0.30 } else { 0.05 };
        assert!(
            bytes_err.abs() <= allowed,
            "{}: the registry sent {} B, planned {} B:\n{json}",
            strategy.name(),
            report.registry.bytes,
            predicted.egress.bytes.0
        );
        if !lazy {
            // The link is shared: the fleet's plan is nearer the truth than one node's.
            assert!(
                (predicted.done.all.value - measured_last).abs()
                    < (alone.done.p50.value - measured_last).abs(),
                "eager × {NODES}: last node done at {measured_last:.2} s, planned {:.2} s, one node alone {:.2} s",
                predicted.done.all.value,
                alone.done.p50.value
            );
        }
    }
    rate_limited_round(&lab, &env, &nodes, &shaped, &dir, gzip_bytes, &fleet_plan);
}

/// One round of the fleet harness on the lab's nodes.
fn config(
    lab: &common::Lab,
    env: &str,
    nodes: &[String],
    lazy: bool,
    reference: String,
) -> fleet::Config {
    fleet::Config {
        nodes: nodes.to_vec(),
        metrics: Vec::new(),
        lazy,
        reference,
        command: WORKLOAD.into(),
        reset_cmd: env_var(env, "ADVISOR_LAB_NODES_RESET_CMD"),
        veth: env_var(env, "ADVISOR_LAB_SHAPED_VETH"),
        access_log: Some(lab.dir.join("logs/registry-shaped.log")),
        settle_s: 8.0,
        namespace: "advisor-fleet-plan".into(),
        rollout: fleet::Rollout::AllAtOnce,
    }
}

/// nginx in front of the shaped registry, queuing requests above
/// [`RATE_LIMIT`] a second (scripts/rate_limited_registry.sh); stopped when
/// dropped.
struct RateLimited(String);

impl RateLimited {
    fn script() -> std::process::Command {
        std::process::Command::new(common::repo().join("scripts/rate_limited_registry.sh"))
    }

    fn up(shaped: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
            .to_string();
        let out = Self::script()
            .args(["up", &port, RATE_LIMIT, "queue"])
            .env("ADVISOR_LAB_SHAPED_REGISTRY", shaped)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rate_limited_registry.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RateLimited(port)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.0)
    }
}

impl Drop for RateLimited {
    fn drop(&mut self) {
        let _ = Self::script().args(["down", &self.0]).output();
    }
}

/// The lazy round through a registry that serves [`RATE_LIMIT`] requests a
/// second: the requests, not the link, set the pace, as `plan
/// --registry-rps` says; the plan without the limit must be further off.
fn rate_limited_round(
    lab: &common::Lab,
    env: &str,
    nodes: &[String],
    shaped: &str,
    dir: &Path,
    gzip_bytes: u64,
    free: &Plan,
) {
    let front = RateLimited::up(shaped);
    let limited = plan(dir, gzip_bytes, NODES, &["--registry-rps", RATE_LIMIT]);
    let reference = format!("{}/{REPO}:esgz", front.address());
    let report = fleet::run(&config(lab, env, nodes, true, reference), |m| {
        eprintln!("fleet-plan: {m}")
    })
    .expect("a fleet round");
    let json = serde_json::to_string_pretty(&report).unwrap();
    let measured = report.per_node.iter().map(|r| r.done_s).fold(0.0, f64::max);
    let last_done = |p: &Plan| {
        p.strategies
            .iter()
            .find(|s| s.strategy == Strategy::Lazy)
            .unwrap()
            .done
            .all
            .value
    };
    let (planned, unlimited) = (last_done(&limited), last_done(free));
    eprintln!(
        "fleet-plan: lazy × {NODES} at {RATE_LIMIT} requests/s: last done {measured:.2} s measured, {planned:.2} s planned ({unlimited:.2} s without the limit); {} GETs",
        report.registry.gets.unwrap_or(0)
    );
    assert!(
        ((planned - measured) / measured.max(1.0)).abs() <= 0.25,
        "at {RATE_LIMIT} requests/s the last node was done at {measured:.2} s, planned {planned:.2} s:\n{json}"
    );
    assert!(
        (planned - measured).abs() < (unlimited - measured).abs(),
        "the request-rate limit made the plan no better: measured {measured:.2} s, planned {planned:.2} s with the limit, {unlimited:.2} s without:\n{json}"
    );
}
