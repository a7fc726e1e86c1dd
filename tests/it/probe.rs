//! `advisor probe`: the real binary against the lab's registry (read-only but
//! for the blobs and image it pushes to a repository of its own), and the bad
//! inputs that need no lab.
use crate::common::{self, advisor, run_json};
use advisor::probe::NetworkProfile;
use advisor::registry::sha256_digest;
use advisor::registry::{MEDIA_TYPE_OCI_MANIFEST, Platform, RegistryClient, RegistryOptions};

/// Deterministic incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        credentials: None,
        docker_config_dir: None,
        ..Default::default()
    })
    .unwrap()
}

/// A repository path (without the registry) no other test uses.
fn unique_repo(name: &str) -> String {
    format!("advisor-test/probe-{name}-{}", advisor::containerd::nanos())
}

/// Push a blob of `len` noise bytes into `registry/repo`; its digest.
fn push_blob(registry: &str, repo: &str, len: usize, seed: u64) -> String {
    let data = noise(len, seed);
    let digest = sha256_digest(&data);
    common::rt().block_on(async {
        client()
            .push_blob_bytes(&format!("{registry}/{repo}:x"), data, &digest)
            .await
            .unwrap();
    });
    digest
}

/// A refused loopback port: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn sane(p: &NetworkProfile) {
    assert_eq!(p.kind, "advisor-network-profile");
    assert_eq!(p.version, 1);
    let r = &p.rtt_s;
    assert!(
        r.median.0 > 0.0 && r.median.0 < 0.05,
        "loopback RTT {:?}",
        r.median
    );
    assert!(r.p10.0 <= r.median.0 && r.median.0 <= r.p90.0, "{r:?}");
    assert!(p.connect_s.0 > 0.0 && p.connect_s.0 < 0.05, "{p:?}");
    assert_eq!(p.scheme, "http");
    assert!(p.tls_s.is_none(), "plain HTTP has no TLS: {p:?}");
    assert!(p.notes.iter().any(|n| n.contains("plain HTTP")), "{p:?}");
}

#[test]
fn probe_measures_the_lab_registry() {
    let Some(lab) = common::lab() else { return };
    let repo = unique_repo("blob");
    let len = 8 << 20;
    let digest = push_blob(&lab.registry, &repo, len, 7);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network.json");
    let p: NetworkProfile = run_json(
        advisor()
            .args(["--format", "json", "probe", "--registry", &lab.registry])
            .args(["--blob", &format!("{repo}@{digest}")])
            .args(["--rtt-samples", "50", "--streams", "4", "-o"])
            .arg(&file),
    );
    sane(&p);
    assert_eq!(p.rtt_s.samples, 50);
    assert_eq!(p.rtt_request, "HEAD blob");
    let blob = p.blob.as_ref().expect("blob");
    assert_eq!(
        (blob.digest.as_str(), blob.size.0),
        (digest.as_str(), len as u64)
    );
    let s = p.single_stream.expect("single stream");
    assert_eq!(s.bytes.0, len as u64);
    assert!(s.verified, "the whole blob was read: digest-verified");
    assert_eq!(s.samples, 3, "the median of three reads");
    assert!(
        p.notes.iter().any(|n| n.contains("median of 3 reads")),
        "{:?}",
        p.notes
    );
    assert!(s.bytes_per_s > 0.0 && s.ttfb_s.0 > 0.0 && s.ttfb_s.0 <= s.seconds.0);
    let m = p.multi_stream.expect("multi stream");
    assert_eq!((m.streams, m.samples, m.bytes.0), (4, 4, len as u64));
    assert!(m.bytes_per_s > 0.0 && m.ttfb_s.0 > 0.0 && m.ttfb_s.0 < m.seconds.0);
    // The file is the same profile, with every documented field present.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(NetworkProfile::from_json(&text).unwrap(), p);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for k in [
        "kind",
        "version",
        "registry",
        "measured_at",
        "rtt_s",
        "connect_s",
        "tls_s",
        "auth_s",
        "single_stream",
        "multi_stream",
        "notes",
    ] {
        assert!(v.get(k).is_some(), "field {k} missing: {v}");
    }
    for k in ["median", "p10", "p90", "samples"] {
        assert!(v["rtt_s"][k].is_number(), "rtt_s.{k}: {v}");
    }
    for k in ["bytes", "seconds", "bytes_per_s", "ttfb_s"] {
        assert!(v["single_stream"][k].is_number(), "single_stream.{k}: {v}");
    }
    for k in ["streams", "bytes", "seconds", "bytes_per_s", "ttfb_s"] {
        assert!(v["multi_stream"][k].is_number(), "multi_stream.{k}: {v}");
    }

    // advise prices the bundled example on the probed path: the path's
    // numbers reach the prediction as they were measured.
    let a: serde_json::Value = run_json(
        advisor()
            .args(["--format", "json", "advise", "--network"])
            .arg(&file),
    );
    let link = &a["prediction"]["strategies"][1]["network"]["link"];
    assert_eq!(link["rtt_s"].as_f64(), Some(p.rtt_s.median.0), "{a}");
    assert_eq!(link["stream_bytes_per_s"].as_f64(), Some(s.bytes_per_s));
    assert_eq!(link["total_bytes_per_s"].as_f64(), Some(m.bytes_per_s));
}

#[test]
fn max_bytes_reads_a_part_that_is_not_verified() {
    let Some(lab) = common::lab() else { return };
    let repo = unique_repo("part");
    let digest = push_blob(&lab.registry, &repo, 3 << 20, 8);
    let p: NetworkProfile = common::run_json(
        advisor()
            .args(["--format", "json", "probe", "--registry", &lab.registry])
            .args(["--blob", &format!("{repo}@{digest}"), "--max-bytes", "1MiB"])
            .args(["--rtt-samples", "5", "--streams", "3"]),
    );
    sane(&p);
    let s = p.single_stream.unwrap();
    assert_eq!(s.bytes.0, 1 << 20);
    assert!(!s.verified);
    assert!(
        p.notes.iter().any(|n| n.contains("not digest-verified")),
        "{p:?}"
    );
    assert_eq!(p.multi_stream.unwrap().bytes.0, 1 << 20);
}

#[test]
fn probe_reads_the_largest_layer_of_an_image() {
    let Some(lab) = common::lab() else { return };
    let repo = unique_repo("image");
    let reference = format!("{}/{repo}:1", lab.registry);
    let small = noise(100_000, 1);
    let large = noise(2 << 20, 2);
    let (ds, dl) = (sha256_digest(&small), sha256_digest(&large));
    let platform = Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": [ds, dl]},
    }))
    .unwrap();
    let dc = sha256_digest(&config);
    let layer = |d: &str, n: usize| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": d, "size": n})
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": dc, "size": config.len()},
        "layers": [layer(&ds, small.len()), layer(&dl, large.len())],
    }))
    .unwrap();
    common::rt().block_on(async {
        let c = client();
        c.push_blob_bytes(&reference, small.clone(), &ds)
            .await
            .unwrap();
        c.push_blob_bytes(&reference, large.clone(), &dl)
            .await
            .unwrap();
        c.push_blob_bytes(&reference, config.clone(), &dc)
            .await
            .unwrap();
        c.push_manifest(&reference, manifest, MEDIA_TYPE_OCI_MANIFEST)
            .await
            .unwrap();
    });
    let p: NetworkProfile = common::run_json(
        advisor()
            .args(["--format", "json", "probe", "--registry", &lab.registry])
            .args(["--image", &format!("{repo}:1"), "--rtt-samples", "5"]),
    );
    sane(&p);
    assert_eq!(p.blob.as_ref().unwrap().digest, dl, "the largest layer");
    assert!(p.single_stream.unwrap().verified);
}

#[test]
fn without_a_blob_only_round_trips_and_set_up_are_measured() {
    let Some(lab) = common::lab() else { return };
    let p: NetworkProfile = common::run_json(advisor().args([
        "--format",
        "json",
        "probe",
        "--registry",
        &lab.registry,
        "--rtt-samples",
        "20",
    ]));
    sane(&p);
    assert_eq!(p.rtt_request, "GET /v2/");
    assert!(p.blob.is_none() && p.single_stream.is_none() && p.multi_stream.is_none());
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("throughput was not measured")),
        "{p:?}"
    );
}

#[test]
fn a_blob_the_registry_does_not_have_is_exit_1() {
    let Some(lab) = common::lab() else { return };
    let absent = format!("sha256:{}", "0".repeat(64));
    let out = advisor()
        .args(["probe", "--registry", &lab.registry])
        .args(["--blob", &format!("{}@{absent}", unique_repo("absent"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&absent) && err.contains("not found"), "{err}");
}

#[test]
fn a_refused_port_is_exit_1_naming_the_address() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network.json");
    std::fs::write(&file, "keep me").unwrap();
    let out = advisor()
        .args(["probe", "--registry", &format!("127.0.0.1:{port}"), "-o"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("is the registry running"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "keep me",
        "a failed probe leaves -o as it was"
    );
}

#[test]
fn bad_flags_are_exit_1_naming_the_flag() {
    let reg = format!("127.0.0.1:{}", closed_port());
    let digest = format!("sha256:{}", "a".repeat(64));
    for (args, flag) in [
        (vec!["--streams", "0"], "--streams 0"),
        (vec!["--streams", "1000000"], "--streams 1000000"),
        (vec!["--rtt-samples", "0"], "--rtt-samples 0"),
        (vec!["--max-bytes", "0"], "--max-bytes 0"),
        (vec!["--max-bytes", "1TiB"], "--max-bytes"),
        (vec!["--blob", "app"], "--blob app"),
        (vec!["--blob", "app@sha256:12"], "--blob app@sha256:12"),
        (vec!["--blob", &format!("@{digest}")], "--blob @"),
    ] {
        let out = advisor()
            .args(["probe", "--registry", &reg])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    for bad in [
        "http://127.0.0.1:5000",
        "127.0.0.1:99999",
        "user:hunter2@127.0.0.1:99999",
    ] {
        let out = advisor()
            .args(["probe", "--registry", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(
            err.contains("--registry") && !err.contains("hunter2"),
            "{bad}: {err}"
        );
    }
}

/// A registry behind a token service, one request per connection: `/v2/` and
/// the blob (`app`, HEAD and ranged GET) want `Bearer tok`; `/token` hands it
/// out after [`TOKEN_DELAY`]. Returns its `HOST:PORT`.
async fn token_registry(blob: Vec<u8>, digest: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let blob = std::sync::Arc::new(blob);
    let host = addr.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (blob, digest, host) = (blob.clone(), digest.clone(), host.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let mut lines = head.lines();
                let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
                let (method, path) = (first[0], first.get(1).copied().unwrap_or(""));
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let (status, mut headers, body): (&str, Vec<String>, Vec<u8>) = if path
                    .starts_with("/token")
                {
                    tokio::time::sleep(TOKEN_DELAY).await;
                    ("200 OK", vec![], br#"{"token":"tok"}"#.to_vec())
                } else if header("authorization").as_deref() != Some("Bearer tok") {
                    (
                        "401 Unauthorized",
                        vec![format!(
                            r#"WWW-Authenticate: Bearer realm="http://{host}/token",service="t""#
                        )],
                        br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
                    )
                } else if path == "/v2/" {
                    ("200 OK", vec![], b"{}".to_vec())
                } else if path == format!("/v2/app/blobs/{digest}") {
                    let range = header("range").and_then(|r| {
                        let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
                        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                    });
                    match range {
                        Some((a, b)) => (
                            "206 Partial Content",
                            vec![format!("Content-Range: bytes {a}-{b}/{}", blob.len())],
                            blob[a..=b].to_vec(),
                        ),
                        None => ("200 OK", vec![], blob.to_vec()),
                    }
                } else {
                    ("404 Not Found", vec![], b"{}".to_vec())
                };
                headers.push(format!("Content-Length: {}", body.len()));
                headers.push("Connection: close".into());
                let mut reply =
                    format!("HTTP/1.1 {status}\r\n{}\r\n\r\n", headers.join("\r\n")).into_bytes();
                if method != "HEAD" {
                    reply.extend_from_slice(&body);
                }
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

/// How long the scripted token service takes to answer.
const TOKEN_DELAY: std::time::Duration = std::time::Duration::from_millis(40);

#[test]
fn a_token_exchange_is_timed_as_auth_s() {
    use advisor::probe::{ProbeOptions, Target};
    let blob = noise(300_000, 3);
    let digest = sha256_digest(&blob);
    let p = common::rt().block_on(async {
        let addr = token_registry(blob.clone(), digest.clone()).await;
        let opts = ProbeOptions {
            registry: addr,
            target: Target::Blob {
                repository: "app".into(),
                digest: digest.clone(),
            },
            streams: 2,
            max_bytes: 1 << 20,
            rtt_samples: 5,
            budget: advisor::probe::DEFAULT_BUDGET,
            registry_options: RegistryOptions {
                credentials: None,
                docker_config_dir: None,
                ..Default::default()
            },
        };
        advisor::probe::run(&opts, &|_| {}).await.unwrap()
    });
    let auth = p.auth_s.expect("the registry asked for a token");
    assert!(
        auth.0 >= TOKEN_DELAY.as_secs_f64() && auth.0 < 5.0,
        "auth_s {auth:?} includes the token service's {TOKEN_DELAY:?}"
    );
    assert!(
        p.rtt_s.median.0 < TOKEN_DELAY.as_secs_f64(),
        "round trips carry the token, not a new exchange each: {:?}",
        p.rtt_s
    );
    let s = p.single_stream.unwrap();
    assert!(s.verified && s.bytes.0 == blob.len() as u64, "{s:?}");
    assert_eq!(p.multi_stream.unwrap().bytes.0, blob.len() as u64);
}
