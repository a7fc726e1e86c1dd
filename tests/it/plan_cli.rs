//! `advisor plan` without the lab: the bundled example planned for fleets,
//! its JSON, its plot, and bad fleets refused with exit 1.
use crate::common;
use advisor::plan::Plan;
use advisor::predict::replay::Strategy;
use advisor::simulate::fleet::{Constraint, Rollout};
use serde::Deserialize;

/// What `advisor --format json plan` prints.
#[derive(Deserialize)]
struct Planned {
    plan: Plan,
}

fn plan_json(args: &[&str]) -> Plan {
    let out = common::advisor()
        .args([
            "--format",
            "json",
            "-q",
            "plan",
            "--rtt",
            "5ms",
            "--bandwidth",
            "1gbit",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::parse_json::<Planned>(&out.stdout).plan
}

#[test]
fn plan_of_the_bundled_example_grows_with_the_fleet() {
    let one = plan_json(&["--nodes", "1", "--registry-egress", "10gbit"]);
    let many = plan_json(&["--nodes", "100", "--registry-egress", "10gbit"]);
    assert_eq!(many.nodes, 100);
    assert_eq!(many.rollout, Rollout::MaxSurge(100));
    for (a, b) in one.strategies.iter().zip(&many.strategies) {
        assert_eq!(a.strategy, b.strategy);
        assert!(b.done.all.value > a.done.all.value, "{a:?}\n{b:?}");
        let per_node = b.egress.bytes.0 as f64 / a.egress.bytes.0 as f64;
        assert!((per_node - 100.0).abs() < 0.01, "{per_node}");
    }
    let eager = &many.strategies[0];
    assert_eq!(eager.strategy, Strategy::Eager);
    assert_eq!(eager.binding[0].constraint, Constraint::RegistryEgress);
}

#[test]
fn plan_with_a_max_surge_share_and_a_target_recommends_a_rollout() {
    let p = plan_json(&[
        "--nodes",
        "200",
        "--max-surge",
        "25%",
        "--registry-egress",
        "10gbit",
        "--target",
        "ready-p95=10m",
    ]);
    assert_eq!(p.rollout, Rollout::MaxSurge(50));
    let r = &p.recommendation;
    assert_eq!(r.meets_target, Some(true), "{r:?}");
    assert!(r.predicted.value <= 600.0, "{r:?}");
    assert!(matches!(r.rollout, Some(Rollout::MaxSurge(_))), "{r:?}");
}

#[test]
fn plan_table_names_strategies_constraints_and_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("fleet.svg");
    let out = common::advisor()
        .args([
            "plan",
            "--nodes",
            "20",
            "--waves",
            "2",
            "--registry-egress",
            "10gbit",
        ])
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "fleet: 20 node(s), 2 wave(s) of 10",
        "lazy+prefetch",
        "95 % ready",
        "peak egress",
        "bound by:",
        "recommendation:",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("eager ready"),
        "{svg}"
    );
}

#[test]
fn plan_refuses_nonsense_fleets_with_exit_1() {
    for egress in ["fast", "0mbit"] {
        common::fails_with(
            common::advisor().args(["plan", "--nodes", "10", "--registry-egress", egress]),
            1,
            &["--registry-egress"],
        );
    }
    let cases: &[(&[&str], &str)] = &[
        (&["--nodes", "0"], "--nodes"),
        (&["--nodes", "-5"], "--nodes"),
        (&["--nodes", "many"], "--nodes"),
        (&["--nodes", "99999999999"], "--nodes"),
        (&["--nodes", "10", "--waves", "0"], "--waves"),
        (&["--nodes", "10", "--max-surge", "0"], "--max-surge"),
        (&["--nodes", "10", "--max-surge", "150%"], "--max-surge"),
        (&["--nodes", "10", "--max-surge", "lots"], "--max-surge"),
        (&["--nodes", "10", "--registry-rps", "-3"], "--registry-rps"),
        (&["--nodes", "10", "--target", "ready-p99=1m"], "ready-p99"),
        (&["--nodes", "10", "--target", "ready-p95=soon"], "--target"),
        (
            &["--nodes", "10", "--rtt", "-5ms", "--bandwidth", "1gbit"],
            "--rtt",
        ),
    ];
    for (args, needle) in cases {
        common::fails_with(
            common::advisor()
                .args(["plan", "--registry-egress", "1gbit"])
                .args(*args),
            1,
            &[needle],
        );
    }
    common::fails_with(
        common::advisor().args(["plan", "--nodes", "3"]),
        1,
        &["--registry-egress"],
    );
}

#[test]
fn plan_refuses_a_network_file_that_is_not_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net.json");
    std::fs::write(&net, r#"{"rtt": "far"}"#).unwrap();
    common::fails_with(
        common::advisor()
            .args(["plan", "--nodes", "3", "--network"])
            .arg(&net),
        1,
        &["--network", "net.json", "advisor probe"],
    );
}

#[test]
fn plan_plot_into_a_missing_directory_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("no/such/dir/fleet.svg");
    common::fails_with(
        common::advisor()
            .args([
                "plan",
                "--nodes",
                "3",
                "--registry-egress",
                "1gbit",
                "--plot",
            ])
            .arg(&svg),
        1,
        &["fleet.svg"],
    );
    assert!(!svg.exists());
}

#[test]
fn plan_takes_replicas_and_surge_from_a_deployment_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("llm.yaml");
    std::fs::write(
        &manifest,
        "kind: Service\nmetadata: {name: llm}\n---\napiVersion: apps/v1\nkind: Deployment\n\
         metadata: {name: llm}\nspec:\n  replicas: 120\n  strategy:\n    rollingUpdate: {maxSurge: 10%, maxUnavailable: 0}\n",
    )
    .unwrap();
    let p = plan_json(&[
        "--manifest",
        manifest.to_str().unwrap(),
        "--registry-egress",
        "10gbit",
    ]);
    assert_eq!((p.nodes, p.rollout), (120, Rollout::MaxSurge(12)));
}

#[test]
fn plan_refuses_manifests_it_cannot_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "svc.yaml",
            "kind: Service\nmetadata: {name: web}\n",
            "Service",
        ),
        (
            "ds.yaml",
            "kind: DaemonSet\nmetadata: {name: agent}\nspec: {}\n",
            "--nodes",
        ),
        (
            "zero.yaml",
            "kind: Deployment\nspec: {replicas: 0}\n",
            "0 replicas",
        ),
        (
            "bad.yaml",
            "kind: Deployment\nspec: {replicas: many}\n",
            "spec.replicas",
        ),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        common::fails_with(
            common::advisor()
                .args(["plan", "--registry-egress", "1gbit", "--manifest"])
                .arg(&path),
            1,
            &["--manifest", name, needle],
        );
    }
    common::fails_with(
        common::advisor().args([
            "plan",
            "--registry-egress",
            "1gbit",
            "--manifest",
            "/no/such/manifest.yaml",
        ]),
        1,
        &["/no/such/manifest.yaml"],
    );
}
