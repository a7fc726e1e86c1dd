//! `advisor probe`: flags into [`ProbeOptions`], the probe, then the table or
//! JSON on stdout and the profile written atomically with `-o`.
use crate::cli::GlobalArgs;
use crate::cli::probe::ProbeArgs;
use crate::printer::Printer;
use crate::probe::{self, ProbeOptions, Target};
use std::io::Write;

/// The error of writing `-o PATH`; a closed stdout (`-o -`) stays itself.
fn cannot_write(path: &std::path::Path, e: std::io::Error) -> anyhow::Error {
    if crate::printer::is_closed_stdout(&e) {
        return e.into();
    }
    crate::error::user(format!(
        "cannot write the network profile -o {}: {e}",
        path.display()
    ))
}

pub async fn run(global: &GlobalArgs, args: &ProbeArgs, printer: &Printer) -> anyhow::Result<()> {
    let opts = options(global, args)?;
    let note = |m: &str| printer.note(m);
    let profile = probe::run(&opts, &note).await?;
    if let Some(path) = &args.output {
        let mut out = crate::output::Output::create_or_stdout(path)
            .and_then(|mut o| {
                serde_json::to_writer_pretty(&mut o, &profile)?;
                o.write_all(b"\n")?;
                Ok(o)
            })
            .map_err(|e| cannot_write(path, e))?;
        out.flush()?;
        out.commit().map_err(|e| cannot_write(path, e))?;
    }
    if printer.is_json() {
        printer.json(&profile)?;
    } else {
        printer.out(&crate::report::probe::render(&profile))?;
    }
    Ok(())
}

/// The flags, checked, as the stage's options.
pub fn options(global: &GlobalArgs, args: &ProbeArgs) -> anyhow::Result<ProbeOptions> {
    let Some(registry) = &args.registry else {
        crate::bail_user!(
            "probe needs a registry: give --registry HOST[:PORT], set ADVISOR_REGISTRY, \
             or put `registry = \"HOST[:PORT]\"` in the config file"
        );
    };
    let shown = crate::redact::redact(registry);
    let host = probe::host_of(registry);
    if host.is_empty() || host.contains('/') {
        crate::bail_user!(
            "--registry {shown}: expected HOST[:PORT], e.g. 127.0.0.1:5123 or registry.example.com"
        );
    }
    crate::registry::check_host_port(host)
        .map_err(|e| crate::error::user(format!("--registry {shown}: {e}")))?;
    if !(1..=probe::MAX_STREAMS).contains(&args.streams) {
        crate::bail_user!(
            "--streams {}: give 1 to {} parallel streams",
            args.streams,
            probe::MAX_STREAMS
        );
    }
    if !(1..=probe::MAX_RTT_SAMPLES).contains(&args.rtt_samples) {
        crate::bail_user!(
            "--rtt-samples {}: give 1 to {} round trips",
            args.rtt_samples,
            probe::MAX_RTT_SAMPLES
        );
    }
    if !(1..=probe::MAX_BYTES_LIMIT).contains(&args.max_bytes) {
        crate::bail_user!(
            "--max-bytes {}: give 1 byte to {} (the probe reads at most this per measurement)",
            args.max_bytes,
            crate::units::Bytes(probe::MAX_BYTES_LIMIT)
        );
    }
    let target = match (&args.blob, &args.image) {
        (Some(b), _) => {
            let Some((repository, digest)) = b.split_once('@') else {
                crate::bail_user!(
                    "--blob {b}: expected REPO@sha256:<64 hex digits>, e.g. app@sha256:…"
                );
            };
            crate::registry::check_digest(digest)
                .map_err(|e| crate::error::user(format!("--blob {b}: {e}")))?;
            if repository.is_empty() {
                crate::bail_user!("--blob {b}: the repository before `@` is empty");
            }
            Target::Blob {
                repository: repository.to_string(),
                digest: digest.to_string(),
            }
        }
        (None, Some(i)) => Target::Image(i.clone()),
        (None, None) => Target::None,
    };
    Ok(ProbeOptions {
        registry: registry.clone(),
        target,
        streams: args.streams,
        max_bytes: args.max_bytes,
        rtt_samples: args.rtt_samples,
        budget: probe::DEFAULT_BUDGET,
        registry_options: super::registry_options(global),
    })
}
