//! The rollout a Kubernetes workload manifest describes: its replicas and
//! how many of its pods are started at once.
//!
//! Kubernetes' rules (kubernetes.io, "Deployments", "StatefulSets",
//! "DaemonSet rolling update"): a Deployment's RollingUpdate replaces pods
//! with at most `maxSurge` above and `maxUnavailable` below the replicas
//! (defaults 25 % each; a surge percentage rounds up, an unavailable one
//! down), so up to their sum of new pods pull at once; `Recreate` starts
//! them all. A StatefulSet with the default `OrderedReady` starts one pod
//! after the other is ready; `Parallel` starts them all (or, on update,
//! `maxUnavailable` at a time). A DaemonSet has a pod per node:
//! `maxUnavailable` (default 1) plus `maxSurge` (default 0) at a time.
//!
//! Must not: read files (the command passes the text), plan.
use yaml_serde::Value;

/// What a manifest says about the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRollout {
    /// `Deployment web`, for messages.
    pub workload: String,
    /// Pods: the replicas (None for a DaemonSet: one per node).
    pub replicas: Option<u64>,
    /// Pods started at once, given the pod count.
    pub at_once: AtOnce,
}

/// Pods that pull at once, resolved against the pod count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtOnce {
    All,
    /// `surge` (rounded up) plus `unavailable` (rounded down), at least 1.
    Sum {
        surge: IntOrPercent,
        unavailable: IntOrPercent,
    },
}

/// A Kubernetes `IntOrString` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u64),
    Percent(u64),
}

impl AtOnce {
    pub fn resolve(self, pods: u64) -> u64 {
        match self {
            AtOnce::All => pods,
            AtOnce::Sum { surge, unavailable } => {
                let of = |v: IntOrPercent, up: bool| match v {
                    IntOrPercent::Int(n) => n,
                    IntOrPercent::Percent(p) => {
                        let x = pods.saturating_mul(p);
                        if up { x.div_ceil(100) } else { x / 100 }
                    }
                };
                (of(surge, true).saturating_add(of(unavailable, false))).clamp(1, pods.max(1))
            }
        }
    }
}

/// The first Deployment, StatefulSet or DaemonSet in `text` (YAML, one or
/// more documents). Errors name the field and what is expected.
pub fn parse(text: &str) -> Result<ManifestRollout, String> {
    let mut kinds = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let v: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("not YAML: {e}"))?;
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match kind.as_str() {
            "Deployment" | "StatefulSet" | "DaemonSet" => return workload(&kind, &v),
            "" => {}
            _ => kinds.push(kind),
        }
    }
    Err(if kinds.is_empty() {
        "no Kubernetes object with a `kind` in it; give a Deployment, StatefulSet or DaemonSet"
            .into()
    } else {
        format!(
            "kind {} is not a workload advisor plans; give a Deployment, StatefulSet or DaemonSet",
            kinds.join(", ")
        )
    })
}

fn workload(kind: &str, v: &Value) -> Result<ManifestRollout, String> {
    let name = v
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let spec = v.get("spec");
    let at = |path: &[&str]| -> Option<&Value> {
        let mut cur = spec?;
        for p in path {
            cur = cur.get(p)?;
        }
        Some(cur)
    };
    let field = |path: &[&str]| format!("{kind} {name}: spec.{}", path.join("."));
    let count = |path: &[&str], default: IntOrPercent| -> Result<IntOrPercent, String> {
        match at(path) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => int_or_percent(x).ok_or_else(|| {
                format!(
                    "{}: {} is not a count or a percentage (like 2 or 25%)",
                    field(path),
                    show(x)
                )
            }),
        }
    };
    let replicas = match at(&["replicas"]) {
        None | Some(Value::Null) => 1,
        Some(x) => x.as_u64().ok_or_else(|| {
            format!(
                "{}: {} is not a whole number of pods",
                field(&["replicas"]),
                show(x)
            )
        })?,
    };
    let strategy_type = |path: &[&str], default: &str| -> String {
        at(path)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let pct = IntOrPercent::Percent;
    let (replicas, at_once) = match kind {
        "Deployment" => {
            let at_once = if strategy_type(&["strategy", "type"], "RollingUpdate") == "Recreate" {
                AtOnce::All
            } else {
                AtOnce::Sum {
                    surge: count(&["strategy", "rollingUpdate", "maxSurge"], pct(25))?,
                    unavailable: count(&["strategy", "rollingUpdate", "maxUnavailable"], pct(25))?,
                }
            };
            (Some(replicas), at_once)
        }
        "StatefulSet" => {
            let at_once = if strategy_type(&["podManagementPolicy"], "OrderedReady") == "Parallel" {
                match at(&["updateStrategy", "rollingUpdate", "maxUnavailable"]) {
                    None => AtOnce::All,
                    Some(_) => AtOnce::Sum {
                        surge: IntOrPercent::Int(0),
                        unavailable: count(
                            &["updateStrategy", "rollingUpdate", "maxUnavailable"],
                            IntOrPercent::Int(1),
                        )?,
                    },
                }
            } else {
                AtOnce::Sum {
                    surge: IntOrPercent::Int(0),
                    unavailable: IntOrPercent::Int(1),
                }
            };
            (Some(replicas), at_once)
        }
        _ => {
            let at_once = AtOnce::Sum {
                surge: count(
                    &["updateStrategy", "rollingUpdate", "maxSurge"],
                    IntOrPercent::Int(0),
                )?,
                unavailable: count(
                    &["updateStrategy", "rollingUpdate", "maxUnavailable"],
                    IntOrPercent::Int(1),
                )?,
            };
            (None, at_once)
        }
    };
    Ok(ManifestRollout {
        workload: format!("{kind} {name}"),
        replicas,
        at_once,
    })
}

fn int_or_percent(v: &Value) -> Option<IntOrPercent> {
    if let Some(n) = v.as_u64() {
        return Some(IntOrPercent::Int(n));
    }
    let p = v
        .as_str()?
        .trim()
        .strip_suffix('%')?
        .trim()
        .parse::<u64>()
        .ok()?;
    (p <= 100).then_some(IntOrPercent::Percent(p))
}

/// A value as a user wrote it, for messages.
fn show(v: &Value) -> String {
    yaml_serde::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_pulls_surge_plus_unavailable_at_once() {
        let m = parse(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 200\n  strategy:\n    rollingUpdate: {maxSurge: 10%, maxUnavailable: 5}\n",
        )
        .unwrap();
        assert_eq!(m.workload, "Deployment web");
        assert_eq!(m.replicas, Some(200));
        assert_eq!(m.at_once.resolve(200), 25);
    }

    #[test]
    fn kubernetes_defaults_and_rounding() {
        let d = parse("kind: Deployment\nspec: {replicas: 10}\n").unwrap();
        // 25 % of 10 up (3) + 25 % of 10 down (2).
        assert_eq!(d.at_once.resolve(10), 5);
        let r =
            parse("kind: Deployment\nspec: {replicas: 4, strategy: {type: Recreate}}\n").unwrap();
        assert_eq!(r.at_once.resolve(4), 4);
        let s = parse("kind: StatefulSet\nspec: {replicas: 6}\n").unwrap();
        assert_eq!(s.at_once.resolve(6), 1);
        let p = parse("kind: StatefulSet\nspec: {replicas: 6, podManagementPolicy: Parallel}\n")
            .unwrap();
        assert_eq!(p.at_once.resolve(6), 6);
        let ds = parse("kind: DaemonSet\nmetadata: {name: agent}\nspec: {}\n").unwrap();
        assert_eq!(ds.replicas, None);
        assert_eq!(ds.at_once.resolve(300), 1);
    }

    #[test]
    fn the_workload_is_found_among_other_documents() {
        let text = "kind: Service\nmetadata: {name: web}\n---\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n";
        assert_eq!(parse(text).unwrap().replicas, Some(3));
    }

    #[test]
    fn what_is_not_a_workload_is_refused_by_name() {
        let e = parse("kind: Service\nmetadata: {name: web}\n").unwrap_err();
        assert!(e.contains("Service") && e.contains("Deployment"), "{e}");
        assert!(parse("just: text\n").unwrap_err().contains("kind"));
        assert!(parse(": : :\n  - [").unwrap_err().contains("YAML"));
        let e = parse("kind: Deployment\nspec: {replicas: -3}\n").unwrap_err();
        assert!(e.contains("spec.replicas"), "{e}");
        let e = parse("kind: Deployment\nspec:\n  strategy: {rollingUpdate: {maxSurge: lots}}\n")
            .unwrap_err();
        assert!(e.contains("maxSurge") && e.contains("lots"), "{e}");
    }
}
