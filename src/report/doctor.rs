//! The human form of `advisor doctor`: one row per check (its name, `ok` or
//! `FAIL`, and what it found or what to fix), then the config file in effect.
//! Rendering only: the checks arrive run, nothing here prints.
use super::table;
use crate::commands::doctor::{ConfigFile, DoctorReport};

/// The checks, in the order they ran, and the config file.
pub fn render(report: &DoctorReport) -> String {
    let mut t = table(["check", "", "detail"]);
    for c in &report.checks {
        t.add_row([
            c.name.as_str(),
            if c.ok { "ok" } else { "FAIL" },
            c.detail.as_str(),
        ]);
    }
    format!("{t}\n{}", config_line(report.config.as_ref()))
}

/// Which config file is in effect and what advisor took from it.
fn config_line(config: Option<&ConfigFile>) -> String {
    match config {
        None => format!(
            "config file: none (no --config, no ADVISOR_CONFIG, no {})",
            crate::cli::config::DEFAULT_PATH
        ),
        Some(c) if c.used.is_empty() => format!("config file: {} (no value taken from it)", c.path),
        Some(c) => format!("config file: {} ({} from it)", c.path, c.used.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::commands::doctor::{Check, ConfigFile, DoctorReport};

    fn check(name: &str, ok: bool, detail: &str) -> Check {
        Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }

    /// `doctor --registry … --stargz-metrics …` on a node where the stargz
    /// snapshotter is down and another namespace holds images: passed and
    /// failed checks side by side.
    #[test]
    fn checks_table() {
        let report = DoctorReport {
            address: "/run/containerd/containerd.sock".into(),
            namespace: "advisor".into(),
            containerd_version: Some("v2.1.4".into()),
            checks: vec![
                check(
                    "containerd",
                    true,
                    "v2.1.4 (/run/containerd/containerd.sock)",
                ),
                check("snapshotter overlayfs", true, "loaded and answering"),
                check(
                    "snapshotter stargz",
                    false,
                    "containerd at /run/containerd/containerd.sock has no `stargz` snapshotter plugin: \
                     declare it in containerd's config ([proxy_plugins.stargz] type = \"snapshot\", \
                     address = the snapshotter's socket; see docs/real-node.md) and restart containerd",
                ),
                check(
                    "dedicated node",
                    true,
                    "no: namespaces that are not advisor's hold images: k8s.io (2 images, 9 blobs, \
                     7 snapshots); a cold bench or calibrate refuses an image they hold (deletes \
                     nothing there) unless --force",
                ),
                check(
                    "registry",
                    true,
                    "http://127.0.0.1:5123/v2/ answered 200 OK",
                ),
                check(
                    "stargz metrics",
                    false,
                    "http://127.0.0.1:8234/metrics unreachable: error sending request: \
                     tcp connect error: Connection refused (os error 111)",
                ),
            ],
            config: Some(ConfigFile {
                path: "/etc/advisor/config.toml".into(),
                used: vec!["namespace".into(), "stargz_metrics".into()],
            }),
        };
        insta::assert_snapshot!(render(&report));
    }

    /// No containerd: the one check there is to show.
    #[test]
    fn no_containerd() {
        let report = DoctorReport {
            address: "/run/containerd/containerd.sock".into(),
            namespace: "advisor".into(),
            containerd_version: None,
            checks: vec![check(
                "containerd",
                false,
                "no containerd socket at /run/containerd/containerd.sock: is containerd running? \
                 try `lab/lab up` then `eval \"$(lab/lab env)\"`, or pass --address",
            )],
            config: None,
        };
        insta::assert_snapshot!(render(&report));
    }
}
