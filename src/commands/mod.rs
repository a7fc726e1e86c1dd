//! One module per subcommand. Each takes its resolved settings and the
//! [`Printer`](crate::printer::Printer), computes first, renders after.
//!
//! Owns the translation of flags ([`crate::cli`]) into each stage's own option
//! structs: stages never see a CLI type.
pub mod advise;
pub mod bench;
pub mod calibrate;
pub mod completions;
pub mod doctor;
pub mod image;
pub mod man;
pub mod plan;
pub mod probe;
pub mod trace;

use crate::bench::ReadySpec;
use crate::cli::GlobalArgs;
use crate::containerd::run::Readiness;
use crate::registry::RegistryOptions;

/// The registry client's options: its defaults (credentials and docker config
/// from the environment) plus the global `--plain-http`, `--platform`,
/// `--hosts-dir` and `--ca-cert` flags.
pub fn registry_options(global: &GlobalArgs) -> RegistryOptions {
    let defaults = RegistryOptions::default();
    RegistryOptions {
        plain_http: global.plain_http,
        hosts_dir: Some(global.hosts_dir.clone()),
        ca_certs: global.ca_certs.clone(),
        platform: global
            .platform
            .clone()
            .unwrap_or_else(|| defaults.platform.clone()),
        ..defaults
    }
}

/// `--ready-line` / `--ready-path` into what the bench reports and what the
/// runner waits for; neither: the exit.
pub fn readiness(
    line: Option<&String>,
    path: Option<&String>,
) -> anyhow::Result<(ReadySpec, Readiness)> {
    Ok(match (line, path) {
        (Some(p), _) => {
            let re = regex::Regex::new(p).map_err(|e| {
                crate::error::user(format!("--ready-line `{p}` is not a valid regex: {e}"))
            })?;
            (ReadySpec::Line(p.clone()), Readiness::Line(re))
        }
        (None, Some(p)) => {
            if !p.starts_with('/') {
                crate::bail_user!(
                    "--ready-path `{p}` must be an absolute path inside the container"
                );
            }
            (
                ReadySpec::Path(p.clone()),
                Readiness::Path(std::path::PathBuf::from(p)),
            )
        }
        (None, None) => (ReadySpec::Exit, Readiness::Exit),
    })
}

/// A switch that turns true on SIGINT or SIGTERM; abort the handle when done.
pub fn interrupt_switch() -> (
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    (rx, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, ValueEnum};

    /// A CLI value and the stage value it is translated into have one name:
    /// what the user typed is what the JSON output says.
    fn same_names<C: ValueEnum, S: serde::Serialize>(translate: impl Fn(C) -> S) {
        for v in C::value_variants() {
            let typed = v.to_possible_value().unwrap().get_name().to_string();
            let stage = serde_json::to_value(translate(v.clone())).unwrap();
            assert_eq!(stage, serde_json::Value::String(typed));
        }
    }

    #[test]
    fn bench_mode_and_synth_pattern_keep_their_names() {
        same_names(bench::mode);
        same_names(trace::pattern);
    }

    #[test]
    fn registry_options_carry_plain_http_only() {
        let plain = crate::cli::Cli::parse_from(["advisor", "--plain-http", "doctor"]);
        assert!(registry_options(&plain.global).plain_http);
        let tls = crate::cli::Cli::parse_from(["advisor", "doctor"]);
        let opts = registry_options(&tls.global);
        assert!(!opts.plain_http);
        assert_eq!(opts.max_retries, RegistryOptions::default().max_retries);
        assert_eq!(opts.platform, crate::registry::Platform::host());
    }

    /// `--platform` (issue 19 §2) reaches every registry access.
    #[test]
    fn registry_options_carry_the_platform() {
        let cli = crate::cli::Cli::parse_from(["advisor", "doctor", "--platform", "linux/arm/v7"]);
        assert_eq!(
            registry_options(&cli.global).platform.to_string(),
            "linux/arm/v7"
        );
    }
}
