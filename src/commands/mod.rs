//! One module per subcommand. Each takes its resolved settings and the
//! [`Printer`](crate::printer::Printer), computes first, renders after.
pub mod advise;
pub mod bench;
pub mod doctor;
pub mod image;
pub mod trace;

use crate::bench::ReadySpec;
use crate::containerd::run::Readiness;

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
