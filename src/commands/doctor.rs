//! `advisor doctor`: is this node (or the lab) ready for advisor?
//!
//! Checks containerd, its `overlayfs` and `stargz` snapshotters, the registry's
//! `/v2/` endpoint and the stargz metrics endpoint, and says what to fix. Also
//! says whether the node is a dedicated one: namespaces that are not advisor's
//! (`k8s.io`, `moby`, …) holding images make a cold bench or calibrate refuse
//! any image they hold (informational: it never fails). Says which config
//! file is in effect, if any, and which of its values were used.
use crate::cli::{DoctorArgs, GlobalArgs};
use crate::containerd::{self, Connection};
use crate::printer::Printer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DoctorReport {
    pub address: String,
    pub namespace: String,
    pub containerd_version: Option<String>,
    pub checks: Vec<Check>,
    /// The config file in effect; `None` (JSON `null`): none.
    #[serde(default)]
    pub config: Option<ConfigFile>,
}

/// The config file advisor read (`--config`, `ADVISOR_CONFIG` or
/// /etc/advisor/config.toml) and the keys whose values it took from it: those
/// no flag and no variable gave.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    pub used: Vec<String>,
}

impl DoctorReport {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

pub async fn run(global: &GlobalArgs, args: &DoctorArgs, printer: &Printer) -> anyhow::Result<()> {
    let report = check(global, args).await;
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.out(&crate::report::doctor::render(&report))?;
    }
    if !report.ok() {
        let failed: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        crate::bail_user!(
            "doctor: {} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Run every check; never fails, every problem becomes a failed check.
pub async fn check(global: &GlobalArgs, args: &DoctorArgs) -> DoctorReport {
    let mut checks = Vec::new();
    let mut version = None;
    match Connection::connect(&global.address, &global.namespace)
        .await
        .map(|c| c.with_origin(global.namespace_origin))
    {
        Err(e) => checks.push(Check {
            name: "containerd".into(),
            ok: false,
            detail: e.to_string(),
        }),
        Ok(conn) => {
            // The snapshotter probes below create the namespace if it is
            // missing: create it labelled as advisor's first (errors show below).
            let _ = conn.claim_namespace().await;
            match conn.version().await {
                Ok(v) => {
                    checks.push(Check {
                        name: "containerd".into(),
                        ok: true,
                        detail: format!("{} ({})", v.version, conn.address.display()),
                    });
                    version = Some(v.version);
                }
                Err(e) => checks.push(Check {
                    name: "containerd".into(),
                    ok: false,
                    detail: e.to_string(),
                }),
            }
            for name in [containerd::OVERLAYFS, containerd::STARGZ] {
                let r = conn.check_snapshotter(name).await;
                checks.push(Check {
                    name: format!("snapshotter {name}"),
                    ok: r.is_ok(),
                    detail: r
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "loaded and answering".into()),
                });
            }
            checks.push(dedicated(&conn).await);
        }
    }
    if let Some(reg) = &args.registry {
        let host = reg.rsplit_once('@').map_or(reg.as_str(), |(_, h)| h);
        if let Err(e) = crate::registry::check_host_port(host) {
            checks.push(Check {
                name: "registry".into(),
                ok: false,
                detail: format!("--registry {}: {e}", crate::redact::redact(reg)),
            });
        } else {
            let mut found = registry_checks(global, host).await;
            if host.len() != reg.len()
                && let Some(first) = found.first_mut()
            {
                first.detail.push_str(&format!(
                    "; the credentials in --registry {} are not used: set ADVISOR_REGISTRY_USER and \
                     ADVISOR_REGISTRY_PASSWORD, ADVISOR_REGISTRY_TOKEN or a docker config",
                    crate::redact::redact(reg)
                ));
            }
            checks.extend(found);
        }
    }
    if let Some(url) = &args.stargz_metrics {
        checks.push(http_check("stargz metrics", url, &[200]).await);
    }
    DoctorReport {
        address: global.address.display().to_string(),
        namespace: global.namespace.clone(),
        containerd_version: version,
        checks,
        config: global.config_used.as_ref().map(|u| ConfigFile {
            path: u.path.display().to_string(),
            used: u.keys.iter().map(|k| k.to_string()).collect(),
        }),
    }
}

/// Whether advisor is alone in this containerd (see the module doc).
async fn dedicated(conn: &Connection) -> Check {
    let name = "dedicated node".to_string();
    match containerd::owner::survey(conn, &[containerd::OVERLAYFS, containerd::STARGZ]).await {
        Err(e) => Check {
            name,
            ok: false,
            detail: e.to_string(),
        },
        Ok(all) => {
            let held: Vec<String> = all
                .iter()
                .filter(|n| n.images + n.blobs + n.snapshots > 0)
                .map(|n| {
                    use containerd::owner::counted;
                    format!(
                        "{} ({}, {}, {})",
                        n.namespace,
                        counted(n.images, "image"),
                        counted(n.blobs, "blob"),
                        counted(n.snapshots, "snapshot")
                    )
                })
                .collect();
            let mut detail = if held.is_empty() {
                "yes: no namespace that is not advisor's holds anything".to_string()
            } else {
                format!(
                    "no: namespaces that are not advisor's hold images: {}; a cold bench or calibrate \
                     refuses an image they hold (deletes nothing there) unless --force",
                    held.join(", ")
                )
            };
            // Only a namespace from ctr's CONTAINERD_NAMESPACE that advisor
            // did not create is listed here while advisor works in it.
            if all.iter().any(|n| n.namespace == conn.namespace) {
                detail.push_str(&format!(
                    "; the namespace advisor works in, {} (from ctr's CONTAINERD_NAMESPACE), is not advisor's: \
                     a cold bench or calibrate there is refused unless --force; set ADVISOR_NAMESPACE or -n",
                    conn.namespace
                ));
            }
            Check {
                name,
                ok: true,
                detail,
            }
        }
    }
}

pub use crate::registry::is_localhost;

/// Where requests for `host` go (containerd's hosts.toml under --hosts-dir:
/// mirrors first, then the registry) and whether each host's `/v2/` answers
/// with its TLS settings (200 or 401).
async fn registry_checks(global: &GlobalArgs, host: &str) -> Vec<Check> {
    use crate::registry::RegistryClient;
    let failed = |name: &str, detail: String| Check {
        name: name.into(),
        ok: false,
        detail,
    };
    let client = match RegistryClient::new(super::registry_options(global)) {
        Ok(c) => c,
        Err(e) => return vec![failed("registry", e.to_string())],
    };
    let hosts = match client.hosts(host) {
        Ok(h) => h,
        Err(e) => return vec![failed("registry hosts", e.to_string())],
    };
    let mut out = vec![Check {
        name: "registry hosts".into(),
        ok: true,
        detail: describe_hosts(&hosts),
    }];
    let repo = match client.repository(&format!("{host}/advisor-doctor")) {
        Ok(r) => r,
        Err(e) => return vec![failed("registry", e.to_string())],
    };
    for ep in &hosts.endpoints {
        let name = if ep.is_mirror_of(host) {
            "registry mirror"
        } else {
            "registry"
        };
        let at = repo.at(ep);
        let url = at.v2_url();
        let wait = std::time::Duration::from_secs(5);
        out.push(match tokio::time::timeout(wait, client.ping(&at)).await {
            Err(_) => failed(name, format!("{url} did not answer in {wait:?}")),
            Ok(Err(e)) => failed(name, e.to_string()),
            Ok(Ok(a)) => Check {
                name: name.into(),
                ok: matches!(a.status, 200 | 401),
                detail: format!("{url} answered {}", a.status),
            },
        });
    }
    out
}

/// `host → mirror (pull, resolve), then registry (pull, resolve, push); from FILE`.
fn describe_hosts(h: &crate::registry::hosts::Hosts) -> String {
    let list: Vec<String> = h
        .endpoints
        .iter()
        .map(|e| {
            let c = &e.capabilities;
            let caps: Vec<&str> = [(c.pull, "pull"), (c.resolve, "resolve"), (c.push, "push")]
                .into_iter()
                .filter_map(|(on, w)| on.then_some(w))
                .collect();
            let mut extra = Vec::new();
            if !e.ca.is_empty() {
                extra.push(format!("{} CA file(s)", e.ca.len()));
            }
            if !e.client.is_empty() {
                extra.push("client certificate".to_string());
            }
            if e.skip_verify == Some(true) && e.scheme == "https" {
                extra.push("skip_verify".to_string());
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!("; {}", extra.join(", "))
            };
            format!("{} ({}{extra})", e.api_root(), caps.join(", "))
        })
        .collect();
    format!(
        "{} -> {}; from {}",
        h.registry,
        list.join(", then "),
        crate::registry::route_source(&h.source)
    )
}

async fn http_check(name: &str, url: &str, ok_codes: &[u16]) -> Check {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Check {
                name: name.into(),
                ok: false,
                detail: e.to_string(),
            };
        }
    };
    // The URL may carry credentials (`user:password@host`): never printed.
    let shown = crate::redact::redact(url);
    match client.get(url).send().await {
        Ok(r) if ok_codes.contains(&r.status().as_u16()) => Check {
            name: name.into(),
            ok: true,
            detail: format!("{shown} answered {}", r.status()),
        },
        Ok(r) => Check {
            name: name.into(),
            ok: false,
            detail: format!("{shown} answered {}", r.status()),
        },
        Err(e) => Check {
            name: name.into(),
            ok: false,
            detail: crate::redact::redact(&format!(
                "{shown} unreachable: {}",
                crate::error::error_chain(&e)
            )),
        },
    }
}
