//! Issue 16 §3: fleet measurements on the lab. `lab/lab nodes 2` starts two
//! extra nodes (each its own containerd and stargz snapshotter under
//! STATE/nodes/K); they must be independent (an image pulled on one is absent
//! on the other: no shared content store), and the fleet harness
//! (examples/fleet) must see both nodes' pulls cross the shaped registry link
//! at once. The nodes are stopped (`lab/lab nodes 0`) and the shape cleared
//! when the test ends, pass or fail (drop guards); run serially by `lab/test`.
use crate::common;
use crate::lab_shape::{ClearShape, lab_run};
use crate::validate_lab::harness::truth;
#[path = "../../examples/fleet/fleet.rs"]
#[allow(dead_code)]
pub(crate) mod fleet;

use std::process::Command;

const REPO: &str = "advisor-test/fleet";
/// The fixture's random file: the image's one layer is about this big.
const DATA_BYTES: u64 = 16_000_000;
const WORKLOAD: &str = "cat /data/small.txt >/dev/null; echo READY; cat /data/big.bin >/dev/null";

/// Stops the lab's nodes on drop, so a failing assertion cannot leave them running.
pub(crate) struct StopNodes;

impl Drop for StopNodes {
    fn drop(&mut self) {
        let out = lab_run(&["nodes", "0"]);
        if !out.status.success() {
            eprintln!(
                "lab/lab nodes 0 failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `export KEY=VALUE` (or `'VALUE'`) from `lab/lab env`'s output.
pub(crate) fn env_var(env: &str, key: &str) -> String {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .map(|v| v.trim_matches('\'').to_string())
        .unwrap_or_else(|| panic!("lab/lab env exports no {key}:\n{env}"))
}

/// `ctr -a SOCKET -n NS ARGS…` on a node: its stdout; panics on failure.
fn ctr_on(socket: &str, args: &[&str]) -> String {
    let out = Command::new("ctr")
        .args(["-a", socket, "-n", "advisor-fleet-test"])
        .args(args)
        .output()
        .expect("run ctr");
    assert!(
        out.status.success(),
        "ctr -a {socket} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The compressed size of an image's layers, from its manifest in the registry.
pub(crate) fn compressed_bytes(registry: &str, repo: &str, tag: &str) -> u64 {
    let out = Command::new("curl")
        .args([
            "-fsS",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "no manifest for {repo}:{tag}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON manifest");
    m["layers"]
        .as_array()
        .expect("a manifest with layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("a layer size"))
        .sum()
}

#[test]
#[ignore = "disruptive: starts lab nodes and shapes the lab; run serially by lab/test"]
fn two_nodes_are_independent_and_a_fleet_round_counts_both_pulls() {
    let Some(lab) = common::lab() else { return };
    let _clear = ClearShape;
    let _nodes = StopNodes;
    common::faults::fixture(&lab, REPO, DATA_BYTES);

    common::lab_cmd(&["nodes", "2"]);
    let again = common::lab_cmd(&["nodes", "2"]);
    assert!(
        !again.contains("starting"),
        "a second `nodes 2` started something:\n{again}"
    );
    let status = String::from_utf8_lossy(&lab_run(&["status"]).stdout).into_owned();
    assert!(
        status.contains("node 1:") && status.contains("node 2:"),
        "lab/lab status does not list the nodes:\n{status}"
    );
    let env = common::lab_cmd(&["env"]);
    let nodes: Vec<String> = env_var(&env, "ADVISOR_LAB_NODES")
        .split(',')
        .map(String::from)
        .collect();
    assert_eq!(nodes.len(), 2, "{env}");
    assert!(
        nodes
            .iter()
            .all(|n| n.starts_with(&format!("{}/nodes/", lab.dir.display()))),
        "{nodes:?}"
    );

    // Independent: an image pulled on node 1 is on neither node 2 nor in its content store.
    let gzip = format!("{}/{REPO}:gzip", lab.registry);
    ctr_on(&nodes[0], &["images", "pull", "--plain-http", &gzip]);
    assert!(ctr_on(&nodes[0], &["images", "ls", "-q"]).contains(&gzip));
    assert!(
        !ctr_on(&nodes[1], &["images", "ls", "-q"]).contains(&gzip),
        "an image pulled on node 1 is on node 2"
    );
    assert_eq!(
        ctr_on(&nodes[1], &["content", "ls", "-q"]).trim(),
        "",
        "node 2's content store is not empty after a pull on node 1"
    );

    common::lab_cmd(&["shape", "--rtt", "5ms", "--bandwidth", "200mbit"]);
    let env = common::lab_cmd(&["env"]);
    let cfg = fleet::Config {
        nodes: nodes.clone(),
        metrics: Vec::new(),
        lazy: false,
        reference: format!(
            "{}/{REPO}:gzip",
            env_var(&env, "ADVISOR_LAB_SHAPED_REGISTRY")
        ),
        command: WORKLOAD.into(),
        reset_cmd: env_var(&env, "ADVISOR_LAB_NODES_RESET_CMD"),
        veth: env_var(&env, "ADVISOR_LAB_SHAPED_VETH"),
        access_log: Some(lab.dir.join("logs/registry-shaped.log")),
        settle_s: 3.0,
        namespace: "advisor-fleet-test".into(),
        rollout: fleet::Rollout::AllAtOnce,
    };
    let report = fleet::run(&cfg, |m| eprintln!("fleet-lab: {m}")).expect("a fleet round");
    let json = serde_json::to_string_pretty(&report).unwrap();
    eprintln!("{json}");
    assert_eq!(report.strategy, "eager");
    assert_eq!(report.per_node.len(), 2, "{json}");
    for r in &report.per_node {
        assert!(
            0.0 < r.pull_s && r.pull_s <= r.ready_s && r.ready_s <= r.done_s,
            "node {}: pull {} ready {} done {}:\n{json}",
            r.node,
            r.pull_s,
            r.ready_s,
            r.done_s
        );
    }
    // Both nodes were cold (the reset wiped node 1's earlier pull): the link
    // carried the image twice.
    let image = compressed_bytes(&lab.registry, REPO, "gzip");
    let reg = &report.registry;
    assert!(
        reg.bytes as f64 >= 2.0 * image as f64 * 0.95,
        "the registry sent {} bytes for two pulls of a {image}-byte image:\n{json}",
        reg.bytes
    );
    assert!(
        (reg.bytes as f64) < 2.0 * image as f64 * 1.25 + 2e6,
        "the registry sent {} bytes for two pulls of a {image}-byte image: other traffic counted?\n{json}",
        reg.bytes
    );
    let log = reg.access_log.as_ref().expect("the access log's counts");
    // Each node: its manifest, its config and its one layer.
    assert!(
        log.manifest_gets >= 2 && log.blob_gets >= 4 && log.errors == 0,
        "{json}"
    );
    assert!(
        reg.last_byte_s > 0.0 && reg.last_byte_s <= report.last_done_s + 1.0,
        "{json}"
    );

    // Stopping the nodes leaves nothing of theirs.
    common::lab_cmd(&["nodes", "0"]);
    let dir = lab.dir.join("nodes");
    assert!(
        common::mounts_under(&dir).is_empty(),
        "{:?}",
        common::mounts_under(&dir)
    );
    assert!(!dir.exists(), "{} is left", dir.display());
    let left = common::processes_mentioning(&format!("{}/", dir.display()));
    assert!(left.is_empty(), "node processes left: {left:?}");
}
