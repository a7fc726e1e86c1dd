//! Benchmark: peak memory of a streaming blob upload.
//!
//! Generates a file of SIZE_MIB (default 512) pseudo-random MiB, pushes it with
//! `RegistryClient::push_blob_file` to REGISTRY (default $ADVISOR_REGISTRY, the
//! lab's), and prints the process's peak RSS (VmHWM) before and after, and the
//! throughput. Run in release against the lab:
//!
//!   cargo run --release --example registry_push_rss -- 127.0.0.1:5133 512
//!
//! The number goes in docs/registry.md. Not a test: timing and memory depend on the machine.
use advisor::registry::{RegistryClient, RegistryOptions};
use sha2::Digest;
use std::io::Write;
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let registry = args
        .next()
        .or_else(|| std::env::var("ADVISOR_REGISTRY").ok())
        .ok_or_else(|| anyhow::anyhow!("usage: registry_push_rss REGISTRY [SIZE_MIB]"))?;
    let mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(512);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut hasher = sha2::Sha256::new();
    let mut rng = fastrand::Rng::with_seed(mib);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill(&mut buf);
        hasher.update(&buf);
        f.write_all(&buf)?;
    }
    f.flush()?;
    drop(f);
    drop(buf);
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let size = mib << 20;
    let before = vm_hwm_kib();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reference = format!(
        "{registry}/advisor-bench/push-rss-{}:latest",
        advisor::containerd::nanos()
    );
    let client = RegistryClient::new(RegistryOptions::default())?;
    let t = Instant::now();
    rt.block_on(client.push_blob_file(&reference, &path, &digest, size))?;
    let secs = t.elapsed().as_secs_f64();
    let after = vm_hwm_kib();
    let stats = client.stats();
    println!(
        "pushed {mib} MiB in {secs:.2} s ({:.0} MiB/s); bytes sent {}; peak RSS {} KiB before the upload, {} KiB after (+{} KiB)",
        mib as f64 / secs,
        stats.bytes_sent,
        before,
        after,
        after.saturating_sub(before)
    );
    anyhow::ensure!(
        stats.bytes_sent == size,
        "sent {} of {size} bytes",
        stats.bytes_sent
    );
    Ok(())
}
