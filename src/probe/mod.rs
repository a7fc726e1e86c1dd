//! `advisor probe`: a node's path to a registry, measured in under a minute
//! into a [`NetworkProfile`] (docs/network.md).
//!
//! Owns the measurement plan: DNS, TCP connect, connection set-up through the
//! registry client (fresh minus kept-alive request, hence TLS), the pull
//! authorization, round trips on one kept-alive connection, one ranged GET of
//! a blob on a warm connection, and parallel ranged GETs of distinct parts on
//! connections of their own; the time budget that bounds it all. Every HTTP
//! request goes through [`crate::registry`] (credentials, TLS, retries); the
//! only traffic of its own is the bare TCP connect it times. Must not: parse
//! flags, print (progress goes to the callback the command passes), or write
//! files.
pub mod profile;
pub mod stats;

pub use profile::{BlobUsed, MultiStream, NetworkProfile, SingleStream};

use crate::registry::{self, RegistryClient, RegistryOptions, Repository};
use crate::units::{Bytes, Seconds};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most parallel streams (`--streams`).
pub const MAX_STREAMS: usize = 64;
/// Most round trips (`--rtt-samples`).
pub const MAX_RTT_SAMPLES: usize = 10_000;
/// Most bytes read per throughput measurement (`--max-bytes`).
pub const MAX_BYTES_LIMIT: u64 = 4 << 30;
/// The whole probe's time budget.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// Bare TCP connects timed; their median is `connect_s`.
const CONNECT_SAMPLES: usize = 5;
/// Fresh clients whose first request is timed against their second (`setup_s`).
const SETUP_SAMPLES: usize = 5;
/// Pause between round trips (see [`round_trips`]).
const RTT_GAP: Duration = Duration::from_millis(1);
/// Longest wait for DNS or a TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Shares of the budget for the round trips and each throughput measurement
/// (set-up and authorization take what they take, bounded by the client's timeouts).
const RTT_SHARE: f64 = 0.2;
const SINGLE_SHARE: f64 = 0.3;
const MULTI_SHARE: f64 = 0.3;

/// Which blob the throughput is measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// None: round trips and set-up only.
    None,
    /// A blob by repository path (on the probed registry) and digest.
    Blob { repository: String, digest: String },
    /// The largest layer of an image (a reference on the probed registry).
    Image(String),
}

/// What to probe and how hard.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `HOST[:PORT]` (a `user:password@` before it is ignored and redacted).
    pub registry: String,
    pub target: Target,
    /// Parallel streams, 1..=[`MAX_STREAMS`].
    pub streams: usize,
    /// Bytes read per throughput measurement, at most.
    pub max_bytes: u64,
    /// Round trips, 1..=[`MAX_RTT_SAMPLES`].
    pub rtt_samples: usize,
    pub budget: Duration,
    pub registry_options: RegistryOptions,
}

/// The registry's host and port as given, without a `user:password@`.
pub fn host_of(registry: &str) -> &str {
    registry.rsplit_once('@').map_or(registry, |(_, h)| h)
}

/// An `--image` reference on the probed registry: as given when it names the
/// registry, else below it.
pub fn image_reference(host: &str, image: &str) -> String {
    if image.starts_with(&format!("{host}/")) {
        image.to_string()
    } else {
        format!("{host}/{image}")
    }
}

/// The blob throughput is read from.
struct Blob {
    repo: Repository,
    digest: String,
    size: u64,
}

/// Run the probe; `progress` receives one line per phase.
pub async fn run(
    opts: &ProbeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<NetworkProfile> {
    let started = Instant::now();
    let end = started + opts.budget;
    let phase_end = |share: f64| (Instant::now() + opts.budget.mul_f64(share)).min(end);
    let measured_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let host = host_of(&opts.registry);
    let shown = crate::redact::redact(&opts.registry);
    let mut notes = Vec::new();
    if host.len() != opts.registry.len() {
        notes.push(
            "credentials in --registry are not used: set ADVISOR_REGISTRY_USER and \
             ADVISOR_REGISTRY_PASSWORD or a docker config"
                .to_string(),
        );
    }
    let client = RegistryClient::new(opts.registry_options.clone())?;
    let repo = match &opts.target {
        // Only the registry's URL is used (GET /v2/); messages name the flag.
        Target::None => {
            let mut r = client.repository(&format!("{host}/advisor-probe"))?;
            r.reference = format!("--registry {shown}");
            r
        }
        Target::Blob { repository, digest } => {
            client.repository(&format!("{host}/{repository}@{digest}"))?
        }
        Target::Image(r) => client.repository(&image_reference(host, r))?,
    };
    // What a pull uses: a hosts.toml mirror when there is one.
    let origin = repo.registry_url();
    let repo = client.pull_route(&repo)?;
    if repo.ns.is_some() {
        notes.push(format!(
            "measured the mirror {} that pulls from {shown} go through (hosts.toml under --hosts-dir), not {origin}",
            repo.v2_url()
        ));
    }

    let load_before = load_average();
    progress(&format!("probe: connecting to {shown}"));
    let (addr, dns) = resolve(&repo, &shown).await?;
    let connect = connect_median(addr, &shown).await?;
    let setup = setup_median(opts, &repo).await?;

    let auth = authorization(&client, &repo, &opts.target, &mut notes).await?;
    let blob = find_blob(&client, &repo, &opts.target, &mut notes).await?;

    progress(&format!(
        "probe: {} round trips on one connection",
        opts.rtt_samples
    ));
    let (rtt, rtt_request) =
        round_trips(&client, &repo, blob.as_ref(), opts, phase_end(RTT_SHARE)).await?;
    if rtt.samples < opts.rtt_samples {
        notes.push(format!(
            "round trips stopped at the time budget after {} of {} samples",
            rtt.samples, opts.rtt_samples
        ));
    }

    let tls = tls_of(&repo, setup, dns, connect, &mut notes);

    let (single_stream, multi_stream) = match &blob {
        None => (None, None),
        Some(b) => throughput(opts, &client, b, &phase_end, &mut notes, progress).await?,
    };
    if client.stats().retries > 0 {
        notes.push(format!(
            "{} request(s) were retried: their samples include the retry",
            client.stats().retries
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(n) = [load_before, load_average()]
        .into_iter()
        .flatten()
        .reduce(f64::max)
        .and_then(|load| busy_note(load, cpus))
    {
        notes.push(n);
    }
    Ok(NetworkProfile {
        kind: profile::KIND.into(),
        version: profile::VERSION,
        registry: shown,
        scheme: repo.scheme.to_string(),
        address: addr.to_string(),
        measured_at,
        blob: blob.as_ref().map(|b| BlobUsed {
            reference: format!("{}/{}@{}", b.repo.registry, b.repo.repository, b.digest),
            digest: b.digest.clone(),
            size: Bytes(b.size),
        }),
        dns_s: dns,
        rtt_s: rtt,
        rtt_request,
        connect_s: connect,
        setup_s: setup,
        tls_s: tls,
        auth_s: auth,
        single_stream,
        multi_stream,
        notes,
    })
}

/// The pull authorization's time (None: none asked, or no repository to ask for).
async fn authorization(
    client: &RegistryClient,
    repo: &Repository,
    target: &Target,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Seconds>> {
    if *target == Target::None {
        notes.push(
            "no --blob or --image: the pull authorization was not measured (auth_s is null)".into(),
        );
        return Ok(None);
    }
    match client.authorize_pull(repo).await? {
        None => {
            notes.push("the registry asks for no authorization (auth_s is null)".into());
            Ok(None)
        }
        Some(a) => {
            if a.scheme == "basic" {
                notes.push(
                    "Basic authorization: no token exchange; auth_s is building the header".into(),
                );
            }
            Ok(Some(Seconds::from_duration(a.elapsed)))
        }
    }
}

/// The TLS handshake, derived from the set-up (None over plain HTTP).
fn tls_of(
    repo: &Repository,
    setup: Seconds,
    dns: Seconds,
    connect: Seconds,
    notes: &mut Vec<String>,
) -> Option<Seconds> {
    if repo.scheme != "https" {
        notes.push("plain HTTP: no TLS handshake (tls_s is null)".into());
        return None;
    }
    notes.push(
        "tls_s is derived (the HTTP client does not expose handshake times): a fresh \
         connection's first GET /v2/ minus a kept-alive one (setup_s), less dns_s and connect_s"
            .into(),
    );
    Some(Seconds((setup.0 - dns.0 - connect.0).max(0.0)))
}

/// Single- and multi-stream throughput on the first `--max-bytes` of the blob.
async fn throughput(
    opts: &ProbeOptions,
    client: &RegistryClient,
    b: &Blob,
    phase_end: &(dyn Fn(f64) -> Instant + Sync),
    notes: &mut Vec<String>,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<(Option<SingleStream>, Option<MultiStream>)> {
    if b.size == 0 {
        notes.push("the blob is empty: throughput was not measured".into());
        return Ok((None, None));
    }
    let n = b.size.min(opts.max_bytes);
    progress(&format!(
        "probe: reading {} of {} on one stream",
        Bytes(n),
        b.digest
    ));
    let single = single_stream(client, b, n, phase_end(SINGLE_SHARE), notes).await?;
    progress(&format!(
        "probe: reading {} on {} parallel streams",
        Bytes(n),
        (opts.streams as u64).min(n)
    ));
    let multi = multi_stream(opts, b, n, phase_end(MULTI_SHARE), notes).await?;
    Ok((Some(single), Some(multi)))
}

/// The registry host's first address, and how long resolving took.
async fn resolve(repo: &Repository, shown: &str) -> anyhow::Result<(SocketAddr, Seconds)> {
    let url = reqwest::Url::parse(&repo.registry_url())
        .map_err(|e| crate::error::user(format!("--registry {shown}: not a host: {e}")))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let t0 = Instant::now();
    let found = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    let dns = Seconds::from_duration(t0.elapsed());
    let fail = |why: String| {
        crate::error::user(format!(
            "--registry {shown}: cannot resolve {host}: {why}; check the host name"
        ))
    };
    match found {
        Err(_) => Err(fail(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(a) => Ok((a, dns)),
            None => Err(fail("no address".into())),
        },
    }
}

/// Median of [`CONNECT_SAMPLES`] bare TCP connects to `addr`.
async fn connect_median(addr: SocketAddr, shown: &str) -> anyhow::Result<Seconds> {
    let mut xs = Vec::with_capacity(CONNECT_SAMPLES);
    for _ in 0..CONNECT_SAMPLES {
        let t0 = Instant::now();
        let why = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(s)) => {
                xs.push(t0.elapsed().as_secs_f64());
                drop(s);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
        };
        crate::bail_user!(
            "cannot connect to {addr} (--registry {shown}): {why}; is the registry running, \
             and listening on that port?"
        );
    }
    Ok(Seconds(crate::units::median(&xs)))
}

/// Median over fresh clients of (first `GET /v2/` − second, kept-alive, one).
async fn setup_median(opts: &ProbeOptions, repo: &Repository) -> anyhow::Result<Seconds> {
    let mut xs = Vec::with_capacity(SETUP_SAMPLES);
    for _ in 0..SETUP_SAMPLES {
        let fresh = RegistryClient::new(opts.registry_options.clone())?;
        let first = fresh.ping(repo).await?;
        tokio::time::sleep(RTT_GAP).await;
        let kept = fresh.ping(repo).await?;
        xs.push((first.elapsed.as_secs_f64() - kept.elapsed.as_secs_f64()).max(0.0));
    }
    Ok(Seconds(crate::units::median(&xs)))
}

/// The blob to read: `--blob` (its size from HEAD), the largest layer of
/// `--image`, or none (with a note).
async fn find_blob(
    client: &RegistryClient,
    repo: &Repository,
    target: &Target,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Blob>> {
    match target {
        Target::None => {
            notes.push(
                "no --blob or --image: throughput was not measured (only round trips and \
                 connection set-up)"
                    .into(),
            );
            Ok(None)
        }
        Target::Blob { digest, .. } => {
            let size = client.blob_size(repo, digest).await?;
            Ok(Some(Blob {
                repo: repo.clone(),
                digest: digest.clone(),
                size,
            }))
        }
        Target::Image(_) => {
            let img = client.resolve(&repo.reference).await?;
            let Some(layer) = img.layers().iter().max_by_key(|l| l.size()) else {
                notes.push(format!(
                    "{} has no layers: throughput was not measured",
                    img.reference
                ));
                return Ok(None);
            };
            notes.push(format!(
                "blob: the largest of the image's {} layer(s)",
                img.layers().len()
            ));
            Ok(Some(Blob {
                repo: registry::AsRepository::repository(&img).clone(),
                digest: layer.digest().to_string(),
                size: layer.size(),
            }))
        }
    }
}

/// Round trips on the client's one kept-alive connection: HEAD of the blob
/// when there is one, else `GET /v2/`; one untimed request first opens it.
async fn round_trips(
    client: &RegistryClient,
    repo: &Repository,
    blob: Option<&Blob>,
    opts: &ProbeOptions,
    deadline: Instant,
) -> anyhow::Result<(stats::Spread, String)> {
    let one = || async {
        let t0 = Instant::now();
        match blob {
            Some(b) => client
                .blob_size(&b.repo, &b.digest)
                .await
                .map(|_| t0.elapsed()),
            None => client.ping(repo).await.map(|a| a.elapsed),
        }
    };
    one().await?;
    let mut xs = Vec::with_capacity(opts.rtt_samples);
    while xs.len() < opts.rtt_samples && (xs.is_empty() || Instant::now() < deadline) {
        xs.push(one().await?.as_secs_f64());
        // Let the connection go back to the client's pool before the next
        // request: asked for at once, the pool opens a second one and the
        // samples alternate between the two.
        tokio::time::sleep(RTT_GAP).await;
    }
    let spread = stats::spread(&xs).ok_or_else(|| anyhow::anyhow!("no round-trip samples"))?;
    let what = if blob.is_some() {
        "HEAD blob"
    } else {
        "GET /v2/"
    };
    Ok((spread, what.to_string()))
}

/// One ranged GET of the first `n` bytes on the client's warm connection.
/// Reads of the single stream: its median rate is kept (one read can meet a
/// path still settling: a lab probe once read 55 MB/s where the next read
/// 120 MB/s).
const SINGLE_READS: usize = 3;

async fn single_stream(
    client: &RegistryClient,
    b: &Blob,
    n: u64,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> anyhow::Result<SingleStream> {
    let mut reads = Vec::new();
    while reads.len() < SINGLE_READS && (reads.is_empty() || Instant::now() < deadline) {
        let r = client
            .read_range_timed(&b.repo, &b.digest, 0..n, b.size, deadline)
            .await?;
        let cut = r.cut;
        reads.push(r);
        if cut {
            break;
        }
    }
    // Each read's rate after its first byte (bytes / seconds when it came in one chunk).
    let rate = |r: &crate::registry::RangeRead| {
        let ttfb = r.ttfb.unwrap_or(r.elapsed);
        let after = r.elapsed.saturating_sub(ttfb).as_secs_f64();
        if after > 0.0 && r.bytes > r.first_chunk {
            ((r.bytes - r.first_chunk) as f64 / after, true)
        } else {
            (
                r.bytes as f64 / r.elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
                false,
            )
        }
    };
    let mut order: Vec<usize> = (0..reads.len()).collect();
    order.sort_by(|&x, &y| rate(&reads[x]).0.total_cmp(&rate(&reads[y]).0));
    let r = &reads[order[order.len() / 2]];
    let (bytes_per_s, after_first) = rate(r);
    if !after_first {
        notes.push(
            "single stream: the bytes arrived in one chunk, so bytes_per_s is bytes / seconds \
             (time to first byte included)"
                .into(),
        );
    }
    if reads.len() > 1 {
        let rates: Vec<String> = reads
            .iter()
            .map(|r| format!("{:.0} Mbit/s", rate(r).0 * 8.0 / 1e6))
            .collect();
        notes.push(format!(
            "single stream: the median of {} reads ({})",
            reads.len(),
            rates.join(", ")
        ));
        let rates: Vec<f64> = reads.iter().map(|r| rate(r).0).collect();
        notes.extend(disagreement_note(&rates));
    }
    if r.cut {
        notes.push(format!(
            "single stream stopped at the time budget after {} of {}",
            Bytes(r.bytes),
            Bytes(n)
        ));
    } else if !r.verified {
        notes.push(format!(
            "single stream read the first {} of the blob's {} (--max-bytes): a part, not digest-verified",
            Bytes(n),
            Bytes(b.size)
        ));
    }
    let ttfb = r.ttfb.unwrap_or(r.elapsed);
    Ok(SingleStream {
        bytes: Bytes(r.bytes),
        seconds: Seconds::from_duration(r.elapsed),
        bytes_per_s,
        ttfb_s: Seconds::from_duration(ttfb),
        samples: reads.len(),
        verified: r.verified,
    })
}

/// Reads of one stream that differ by more than this share of the fastest
/// say the path or the node changed while probing.
const READS_DISAGREE: f64 = 0.25;

/// A note when the single stream's reads disagree (a busy node once read
/// 74.5 MB/s where the lab's shape gives 116 MB/s).
fn disagreement_note(rates: &[f64]) -> Option<String> {
    let max = rates.iter().copied().reduce(f64::max)?;
    let min = rates.iter().copied().reduce(f64::min)?;
    let off = 1.0 - min / max;
    (max > 0.0 && off > READS_DISAGREE).then(|| {
        format!(
            "single stream: the reads differ by {:.0} % (slowest {:.0}, fastest {:.0} Mbit/s): the path or \
             this node was busy while probing (on loopback, the CPU sets the rate); bandwidth-bound \
             predictions from this probe are as uncertain (probe again when both are quiet)",
            off * 100.0,
            min * 8.0 / 1e6,
            max * 8.0 / 1e6
        )
    })
}

/// The node's 1-minute load average (`/proc/loadavg`), when readable.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A note when the node was busy: a load at or above its cores takes CPU from
/// the probe's reads, which then measure the node rather than the path.
fn busy_note(load: f64, cpus: usize) -> Option<String> {
    (load >= cpus as f64).then(|| {
        format!(
            "this node was busy while probing (load average {load:.1} on {cpus} cores): throughput may be \
             the node's, not the path's; probe again when it is quiet"
        )
    })
}

/// `[0, n)` in `k` distinct, contiguous parts (the first `n % k` one byte longer).
pub fn split(n: u64, k: u64) -> Vec<std::ops::Range<u64>> {
    (0..k).map(|i| i * n / k..(i + 1) * n / k).collect()
}

/// Parallel ranged GETs of distinct parts of the first `n` bytes, each on a
/// client (so a connection) of its own, warmed (authorized, connected) by a
/// HEAD before the common start.
async fn multi_stream(
    opts: &ProbeOptions,
    b: &Blob,
    n: u64,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> anyhow::Result<MultiStream> {
    let k = (opts.streams as u64).min(n).max(1);
    if k < opts.streams as u64 {
        notes.push(format!(
            "{k} streams instead of {}: the blob has only {n} bytes",
            opts.streams
        ));
    }
    let mut clients = Vec::with_capacity(k as usize);
    for _ in 0..k {
        clients.push(RegistryClient::new(opts.registry_options.clone())?);
    }
    let warm =
        futures_util::future::try_join_all(clients.iter().map(|c| c.blob_size(&b.repo, &b.digest)));
    warm.await?;
    tokio::time::sleep(RTT_GAP).await;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(k as usize);
    for (c, part) in clients.into_iter().zip(split(n, k)) {
        let (repo, digest, size) = (b.repo.clone(), b.digest.clone(), b.size);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = c
                .read_range_timed(&repo, &digest, part, size, deadline)
                .await;
            (r, sent, Instant::now())
        }));
    }
    let (mut bytes, mut last, mut cut) = (0u64, start, 0usize);
    let mut first_byte: Option<Instant> = None;
    for t in tasks {
        let (r, sent, done) = t.await?;
        let r = r?;
        bytes += r.bytes;
        last = last.max(done);
        cut += usize::from(r.cut);
        if let Some(f) = r.ttfb.map(|d| sent + d) {
            first_byte = Some(first_byte.map_or(f, |e| e.min(f)));
        }
    }
    if cut > 0 {
        notes.push(format!(
            "{cut} of {k} streams stopped at the time budget ({} of {} read)",
            Bytes(bytes),
            Bytes(n)
        ));
    }
    let seconds = (last - start).as_secs_f64();
    let first = first_byte.unwrap_or(last);
    let flowing = (last - first).as_secs_f64();
    Ok(MultiStream {
        streams: k as usize,
        bytes: Bytes(bytes),
        seconds: Seconds(seconds),
        // From the first byte of any stream, as the single stream's rate is.
        bytes_per_s: bytes as f64 / flowing.max(f64::MIN_POSITIVE),
        ttfb_s: Seconds((first - start).as_secs_f64()),
        samples: k as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_that_disagree_are_noted_with_their_rates() {
        assert_eq!(disagreement_note(&[120e6, 118e6, 121e6]), None);
        assert_eq!(disagreement_note(&[120e6]), None);
        assert_eq!(disagreement_note(&[]), None);
        let n = disagreement_note(&[74.5e6, 116e6, 115e6]).unwrap();
        assert!(
            n.contains("36 %") && n.contains("596") && n.contains("928"),
            "{n}"
        );
        assert!(!n.contains("  "), "{n}");
    }

    #[test]
    fn a_node_as_loaded_as_its_cores_is_noted() {
        assert_eq!(busy_note(0.3, 2), None);
        assert_eq!(busy_note(1.9, 2), None);
        let n = busy_note(2.4, 2).unwrap();
        assert!(n.contains("2.4 on 2 cores"), "{n}");
    }

    #[test]
    fn parts_are_distinct_and_cover_the_range() {
        for (n, k) in [(10, 3), (64 << 20, 4), (5, 5), (7, 1)] {
            let parts = split(n, k);
            assert_eq!(parts.len() as u64, k);
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts.last().unwrap().end, n);
            for w in parts.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            assert!(parts.iter().all(|p| !p.is_empty()), "{parts:?}");
        }
    }

    #[test]
    fn image_references_are_placed_on_the_registry() {
        assert_eq!(
            image_reference("127.0.0.1:5123", "app:1"),
            "127.0.0.1:5123/app:1"
        );
        assert_eq!(
            image_reference("127.0.0.1:5123", "127.0.0.1:5123/app:1"),
            "127.0.0.1:5123/app:1"
        );
        assert_eq!(host_of("u:pw@reg.example.com:443"), "reg.example.com:443");
        assert_eq!(host_of("reg.example.com"), "reg.example.com");
    }
}
