//! The registry client against a scripted HTTP server on loopback, for the
//! protocol behaviours the lab's real registry cannot be made to show: token
//! and Basic auth challenges, tampered content, 5xx/429 with Retry-After, a
//! server that ignores Range, a connection that breaks mid-body, an upload
//! Location on another host. Everything else is tested against the real
//! registry in registry_lab.rs.
use crate::common;

use advisor::registry::{
    BasicCredentials, Error, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, Platform,
    RegistryClient, RegistryOptions, Secret, sha256_digest,
};
use base64::Engine;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- the server

#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    fn range(&self) -> Option<(usize, usize)> {
        let r = self.header("range")?.strip_prefix("bytes=")?;
        let (a, b) = r.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

enum Body {
    Bytes(Vec<u8>),
    /// Advertise `len` bytes of zeros and write until the client goes away.
    Endless(u64),
    /// Advertise `len` bytes, send `bytes`, then close.
    Truncated {
        len: u64,
        bytes: Vec<u8>,
    },
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(b.into());
        self
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server that answers with a script and
/// records what it was sent.
struct Script {
    addr: String,
    log: Arc<Mutex<Vec<Request>>>,
    /// Body bytes written by `Endless` replies.
    written: Arc<AtomicU64>,
}

impl Script {
    async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Script {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (l2, w2) = (log.clone(), written.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (h, l, w) = (handler.clone(), l2.clone(), w2.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, h, l, w).await;
                });
            }
        });
        Script { addr, log, written }
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.target.contains(path_contains))
            .count()
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    handler: Arc<Handler>,
    log: Arc<Mutex<Vec<Request>>>,
    written: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    let reply = handler(&req);
    log.lock().unwrap().push(req.clone());
    let (advertised, bytes) = match &reply.body {
        Body::Bytes(b) => (b.len() as u64, b.clone()),
        Body::Endless(n) => (*n, Vec::new()),
        Body::Truncated { len, bytes } => (*len, bytes.clone()),
    };
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    let has_len = reply
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !has_len {
        out.push_str(&format!("Content-Length: {advertised}\r\n"));
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    sock.write_all(out.as_bytes()).await?;
    if req.method != "HEAD" {
        match reply.body {
            Body::Endless(n) => {
                let chunk = vec![0u8; 64 * 1024];
                let mut sent = 0u64;
                while sent < n {
                    if sock.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                    written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            _ => sock.write_all(&bytes).await?,
        }
    }
    sock.shutdown().await
}

// ---------------------------------------------------------------- an image

/// A one-layer image: what a scripted registry serves.
#[derive(Clone)]
struct Image {
    layer: Vec<u8>,
    layer_digest: String,
    config: Vec<u8>,
    config_digest: String,
    manifest: Vec<u8>,
    manifest_digest: String,
}

fn image(seed: u8) -> Image {
    let layer: Vec<u8> = (0..100_000u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let layer_digest = sha256_digest(&layer);
    let host = Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host.architecture, "os": host.os,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = sha256_digest(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    Image {
        layer,
        layer_digest,
        config,
        config_digest,
        manifest,
        manifest_digest,
    }
}

/// Serve `img` as repository `app`: manifests by tag `v1` or digest, blobs with ranges.
fn registry_reply(img: &Image, req: &Request) -> Reply {
    let p = req.path();
    if p == "/v2/" {
        return Reply::new(200);
    }
    if p == "/v2/app/manifests/v1" || p == format!("/v2/app/manifests/{}", img.manifest_digest) {
        return Reply::new(200)
            .header("Content-Type", MEDIA_TYPE_OCI_MANIFEST)
            .header("Docker-Content-Digest", &img.manifest_digest)
            .body(img.manifest.clone());
    }
    for (digest, data) in [
        (&img.config_digest, &img.config),
        (&img.layer_digest, &img.layer),
    ] {
        if p == format!("/v2/app/blobs/{digest}") {
            if let Some((a, b)) = req.range() {
                return Reply::new(206)
                    .header("Content-Range", format!("bytes {a}-{b}/{}", data.len()))
                    .body(data[a..=b].to_vec());
            }
            return Reply::new(200)
                .header("Docker-Content-Digest", digest.as_str())
                .body(data.clone());
        }
    }
    Reply::new(404).body(r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#)
}

fn options() -> RegistryOptions {
    RegistryOptions {
        credentials: None,
        docker_config_dir: None,
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_secs(5),
        ..Default::default()
    }
}

fn client_with(opts: RegistryOptions) -> RegistryClient {
    RegistryClient::new(opts).unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---------------------------------------------------------------- auth

const PASSWORD: &str = "s3cret-PASSWORD-never-printed";

/// A registry behind a token service: /v2/ challenges, /token wants Basic alice:PASSWORD.
fn token_registry(img: Image) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |req| {
        let host = req.header("host").unwrap_or("").to_string();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="scripted""#);
        if req.path() == "/token" {
            return if req.header("authorization")
                == Some(&format!("Basic {}", b64(&format!("alice:{PASSWORD}"))))
            {
                Reply::new(200).body(r#"{"token":"tok-abc"}"#)
            } else {
                Reply::new(401).body(r#"{"details":"bad credentials"}"#)
            };
        }
        if req.header("authorization") != Some("Bearer tok-abc") {
            return Reply::new(401).header("WWW-Authenticate", challenge).body(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
        registry_reply(&img, req)
    }
}

#[test]
fn docker_config_credentials_earn_a_bearer_token() {
    common::rt().block_on(async {
        let img = image(1);
        let srv = Script::start(token_registry(img.clone())).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
                srv.addr,
                b64(&format!("alice:{PASSWORD}"))
            ),
        )
        .unwrap();
        let c = client_with(RegistryOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..options()
        });
        let r = format!("{}/app:v1", srv.addr);
        let resolved = c.resolve(&r).await.unwrap();
        assert_eq!(resolved.manifest_digest, img.manifest_digest);
        let got = c
            .fetch_range(&resolved, &img.layer_digest, 10..20)
            .await
            .unwrap();
        assert_eq!(got, img.layer[10..20]);

        let reqs = srv.requests();
        let token_reqs: Vec<_> = reqs.iter().filter(|r| r.path() == "/token").collect();
        assert!(!token_reqs.is_empty(), "the token service was asked");
        for t in &token_reqs {
            assert_eq!(
                t.header("authorization"),
                Some(format!("Basic {}", b64(&format!("alice:{PASSWORD}"))).as_str()),
                "docker config credentials sent to the token service"
            );
            assert!(
                t.target.contains("scope=repository%3Aapp%3Apull"),
                "{}",
                t.target
            );
        }
        let blob_gets: Vec<_> = reqs
            .iter()
            .filter(|r| {
                r.path().contains("/blobs/") && r.header("authorization") == Some("Bearer tok-abc")
            })
            .collect();
        assert!(
            blob_gets.len() >= 2,
            "config and range fetched with the token: {reqs:#?}"
        );
        assert!(
            reqs.iter().filter(|r| r.path() != "/token").all(|r| !r
                .header("authorization")
                .unwrap_or("")
                .contains(&b64(&format!("alice:{PASSWORD}")))),
            "the password goes to the token service only"
        );
    });
}

#[test]
fn wrong_credentials_are_unauthorized_and_never_printed() {
    common::rt().block_on(async {
        let srv = Script::start(token_registry(image(2))).await;
        let c = client_with(RegistryOptions {
            credentials: Some(BasicCredentials {
                username: "alice".into(),
                password: Secret::new("wrong-PASSWORD-xyz"),
            }),
            ..options()
        });
        let r = format!("{}/app:v1", srv.addr);
        let e = c.resolve(&r).await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
        // The blob path earns its own token and fails the same way.
        let repo = c.repository(&r).unwrap();
        let e2 = c
            .fetch_range(&repo, &image(2).layer_digest, 0..4)
            .await
            .unwrap_err();
        assert!(matches!(e2, Error::Unauthorized { .. }), "{e2}");
        for e in [&e, &e2] {
            let (shown, debug) = (e.to_string(), format!("{e:?}"));
            assert!(
                shown.contains("environment (ADVISOR_REGISTRY_USER=alice)")
                    && shown.contains(&srv.addr),
                "{shown}"
            );
            for s in [&shown, &debug, &format!("{c:?}")] {
                assert!(
                    !s.contains("wrong-PASSWORD-xyz")
                        && !s.contains(&b64("alice:wrong-PASSWORD-xyz")),
                    "{s}"
                );
            }
        }
        assert_eq!(advisor::exit::exit_code(&anyhow::Error::new(e)), 1);
        // Anonymous: says so.
        let anon = client_with(options());
        let e = anon.resolve(&r).await.unwrap_err();
        assert!(
            e.to_string().contains("credentials tried: anonymous"),
            "{e}"
        );
    });
}

#[test]
fn basic_challenge_gets_basic_credentials() {
    common::rt().block_on(async {
        let img = image(3);
        let want = format!("Basic {}", b64(&format!("bob:{PASSWORD}")));
        let img2 = img.clone();
        let srv = Script::start(move |req| {
            if req.header("authorization") != Some(want.as_str()) {
                return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="scripted""#);
            }
            registry_reply(&img2, req)
        })
        .await;
        let c = client_with(RegistryOptions {
            credentials: Some(BasicCredentials {
                username: "bob".into(),
                password: Secret::new(PASSWORD),
            }),
            ..options()
        });
        let resolved = c.resolve(&format!("{}/app:v1", srv.addr)).await.unwrap();
        let got = c
            .fetch_range(&resolved, &img.layer_digest, 0..100)
            .await
            .unwrap();
        assert_eq!(got, img.layer[..100]);
        assert!(srv.count("GET", "/blobs/") >= 2);
    });
}

// ---------------------------------------------------------------- tampering

#[test]
fn tampered_content_is_detected() {
    common::rt().block_on(async {
        let img = image(4);
        let bad = img.clone();
        let srv = Script::start(move |req| {
            let p = req.path();
            // The config and layer are served with one byte changed.
            for (d, data) in [
                (&bad.config_digest, &bad.config),
                (&bad.layer_digest, &bad.layer),
            ] {
                if p == format!("/v2/app/blobs/{d}") {
                    let mut t = data.clone();
                    t[1] ^= 0x20;
                    return Reply::new(200).body(t);
                }
            }
            // A manifest by digest that is not the manifest with that digest.
            if p.starts_with("/v2/app/manifests/sha256:") {
                return Reply::new(200)
                    .header("Content-Type", MEDIA_TYPE_OCI_MANIFEST)
                    .body(
                        bad.manifest
                            .clone()
                            .into_iter()
                            .chain(*b" ")
                            .collect::<Vec<u8>>(),
                    );
            }
            registry_reply(&bad, req)
        })
        .await;
        let c = client_with(options());
        let e = c
            .resolve(&format!("{}/app:v1", srv.addr))
            .await
            .unwrap_err();
        match &e {
            Error::DigestMismatch { expected, what, .. } => {
                assert_eq!(expected, &img.config_digest);
                assert!(what.contains(&img.config_digest), "{what}");
            }
            other => panic!("expected a digest mismatch, got {other}"),
        }
        let e = c
            .resolve(&format!("{}/app@{}", srv.addr, img.manifest_digest))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");

        // The stream delivers the bytes, then fails: nothing may be committed.
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let desc: oci_spec::image::ImageManifest = serde_json::from_slice(&img.manifest).unwrap();
        let mut s = c.blob_stream(&repo, &desc.layers()[0]).await.unwrap();
        let mut items = Vec::new();
        while let Some(i) = s.next().await {
            items.push(i);
        }
        let last = items.pop().unwrap();
        assert!(items.iter().all(Result::is_ok));
        let e = last.unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(e.to_string().contains(&img.layer_digest), "{e}");
    });
}

#[test]
fn tampered_index_child_is_detected() {
    common::rt().block_on(async {
        let img = image(5);
        let host = Platform::host();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
            "manifests": [{"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": img.manifest_digest,
                           "size": img.manifest.len(),
                           "platform": {"os": host.os, "architecture": host.architecture}}],
        }))
        .unwrap();
        let img2 = img.clone();
        let srv = Script::start(move |req| {
            if req.path() == "/v2/app/manifests/multi" {
                return Reply::new(200)
                    .header("Content-Type", MEDIA_TYPE_OCI_INDEX)
                    .body(index.clone());
            }
            if req.path() == format!("/v2/app/manifests/{}", img2.manifest_digest) {
                let mut m = img2.manifest.clone();
                m.push(b'\n');
                return Reply::new(200)
                    .header("Content-Type", MEDIA_TYPE_OCI_MANIFEST)
                    .body(m);
            }
            registry_reply(&img2, req)
        })
        .await;
        let e = client_with(options())
            .resolve(&format!("{}/app:multi", srv.addr))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(e.to_string().contains(&img.manifest_digest), "{e}");
    });
}

// ---------------------------------------------------------------- retries

#[test]
fn server_errors_are_retried_then_succeed() {
    common::rt().block_on(async {
        let img = image(6);
        let heads = Arc::new(AtomicU64::new(0));
        let manifests = Arc::new(AtomicU64::new(0));
        let (h, m, img2) = (heads.clone(), manifests.clone(), img.clone());
        let srv = Script::start(move |req| {
            if req.method == "HEAD" && h.fetch_add(1, Ordering::SeqCst) < 2 {
                return Reply::new(503).body("busy");
            }
            if req.method == "HEAD" {
                return Reply::new(200).header("Content-Length", img2.layer.len().to_string());
            }
            if req.path().contains("/manifests/") && m.fetch_add(1, Ordering::SeqCst) < 1 {
                return Reply::new(500).body("oops");
            }
            registry_reply(&img2, req)
        })
        .await;
        let c = client_with(options());
        let r = format!("{}/app:v1", srv.addr);
        let resolved = c.resolve(&r).await.unwrap();
        assert_eq!(resolved.manifest_digest, img.manifest_digest);
        assert_eq!(
            manifests.load(Ordering::SeqCst),
            2,
            "one failure, one retry"
        );
        let before = c.stats();
        let size = c.blob_size(&resolved, &img.layer_digest).await.unwrap();
        assert_eq!(size, img.layer.len() as u64);
        let d = c.stats().since(&before);
        assert_eq!((d.blob_head_requests, d.retries), (3, 2), "{d:?}");
        assert_eq!(srv.count("HEAD", "/blobs/"), 3);
    });
}

#[test]
fn too_many_requests_honours_retry_after() {
    common::rt().block_on(async {
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        let srv = Script::start(move |req| {
            if req.method == "HEAD" && n2.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::new(429).header("Retry-After", "1");
            }
            Reply::new(200).header("Content-Length", "42")
        })
        .await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let t = Instant::now();
        let size = c.blob_size(&repo, &sha256_digest(b"x")).await.unwrap();
        assert_eq!(size, 42);
        // The backoff alone would wait 5..10 ms: the server's second is what made it wait.
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(c.stats().retries, 1);
    });
}

#[test]
fn persistent_failures_stop_after_max_retries() {
    common::rt().block_on(async {
        let srv = Script::start(|_req| Reply::new(500).body("broken backend")).await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let e = c
            .fetch_range(&repo, &sha256_digest(b"x"), 0..10)
            .await
            .unwrap_err();
        match &e {
            Error::TooManyRetries { attempts, last, .. } => {
                assert_eq!(*attempts, 3);
                assert!(
                    last.contains("500") && last.contains("broken backend"),
                    "{last}"
                );
            }
            other => panic!("expected too many retries, got {other}"),
        }
        assert_eq!(srv.count("GET", "/blobs/"), 3);
        let e = c.blob_size(&repo, &sha256_digest(b"x")).await.unwrap_err();
        assert!(
            matches!(e, Error::TooManyRetries { attempts: 3, .. }),
            "{e}"
        );
        assert_eq!(srv.count("HEAD", "/blobs/"), 3);
        let e = c
            .resolve(&format!("{}/app:v1", srv.addr))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TooManyRetries { .. }), "{e}");
    });
}

#[test]
fn client_errors_are_not_retried() {
    common::rt().block_on(async {
        let srv = Script::start(|req| {
            if req.method == "HEAD" {
                Reply::new(404)
            } else {
                Reply::new(400).body(r#"{"errors":[{"code":"UNSUPPORTED","message":"no"}]}"#)
            }
        })
        .await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        assert_eq!(
            c.blob_exists(&repo, &sha256_digest(b"x")).await.unwrap(),
            None
        );
        assert_eq!(srv.count("HEAD", "/blobs/"), 1);
        let e = c
            .fetch_range(&repo, &sha256_digest(b"x"), 0..10)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        assert!(e.to_string().contains("400"), "{e}");
        assert_eq!(srv.count("GET", "/blobs/"), 1);
        assert_eq!(c.stats().retries, 0);
    });
}

// ---------------------------------------------------------------- ranges

#[test]
fn a_server_ignoring_range_is_refused_without_downloading() {
    common::rt().block_on(async {
        const WHOLE: u64 = 256 << 20;
        let srv = Script::start(|_req| Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Endless(WHOLE),
        })
        .await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let e = c
            .fetch_range(&repo, &sha256_digest(b"x"), 10..20)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RangeIgnored { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("ignored the Range header") && msg.contains(&WHOLE.to_string()),
            "{msg}"
        );
        assert_eq!(c.stats().bytes_received, 0);
        assert_eq!(c.stats().retries, 0);
        // The server stops when the client hangs up, far short of the whole blob.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = u64::MAX;
        while Instant::now() < deadline {
            let now = srv.written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(last < WHOLE / 4, "server wrote {last} of {WHOLE} bytes");
    });
}

#[test]
fn a_wrong_content_range_is_a_protocol_error() {
    common::rt().block_on(async {
        let srv = Script::start(|_req| {
            Reply::new(206)
                .header("Content-Range", "bytes 0-9/100")
                .body(vec![0u8; 10])
        })
        .await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let e = c
            .fetch_range(&repo, &sha256_digest(b"x"), 50..60)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        assert!(e.to_string().contains("bytes=50-59"), "{e}");
    });
}

#[test]
fn a_range_cut_short_is_fetched_again_and_counted() {
    common::rt().block_on(async {
        let data: Vec<u8> = (0..200u8).collect();
        let n = Arc::new(AtomicU64::new(0));
        let (n2, d2) = (n.clone(), data.clone());
        let srv = Script::start(move |req| {
            let (a, b) = req.range().unwrap();
            let cr = format!("bytes {a}-{b}/{}", d2.len());
            if n2.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply {
                    status: 206,
                    headers: vec![("Content-Range".into(), cr)],
                    body: Body::Truncated {
                        len: (b - a + 1) as u64,
                        bytes: d2[a..a + 50].to_vec(),
                    },
                };
            }
            Reply::new(206)
                .header("Content-Range", cr)
                .body(d2[a..=b].to_vec())
        })
        .await;
        let c = client_with(options());
        let repo = c.repository(&format!("{}/app:v1", srv.addr)).unwrap();
        let got = c
            .fetch_range(&repo, &sha256_digest(b"x"), 100..200)
            .await
            .unwrap();
        assert_eq!(got, data[100..200]);
        let s = c.stats();
        assert_eq!(
            (s.blob_get_requests, s.retries, s.bytes_received),
            (2, 1, 150),
            "{s:?}"
        );
    });
}

// ---------------------------------------------------------------- uploads

#[test]
fn uploads_retry_from_the_start_and_keep_credentials_on_the_registry() {
    common::rt().block_on(async {
        // Uploads land on another host (as a registry backed by object storage
        // answers): it must not see the registry's credentials.
        let storage = Script::start(|req| {
            if req.method == "PUT" {
                Reply::new(201)
            } else {
                Reply::new(404)
            }
        })
        .await;
        let puts = Arc::new(AtomicU64::new(0));
        let (p2, storage_addr) = (puts.clone(), storage.addr.clone());
        let want = format!("Basic {}", b64(&format!("bob:{PASSWORD}")));
        let srv = Script::start(move |req| {
            if req.header("authorization") != Some(want.as_str()) {
                return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="scripted""#);
            }
            match (req.method.as_str(), req.path()) {
                ("HEAD", _) => Reply::new(404),
                ("POST", "/v2/app/blobs/uploads/") => {
                    // The first session is on the registry and fails; the second goes to storage.
                    let loc = if p2.load(Ordering::SeqCst) == 0 {
                        "/v2/app/blobs/uploads/session-1?_state=abc".to_string()
                    } else {
                        format!("http://{storage_addr}/upload/session-2?_state=def")
                    };
                    Reply::new(202).header("Location", loc)
                }
                ("PUT", p) if p.starts_with("/v2/app/blobs/uploads/") => {
                    p2.fetch_add(1, Ordering::SeqCst);
                    Reply::new(503)
                }
                _ => Reply::new(404),
            }
        })
        .await;
        let c = client_with(RegistryOptions {
            credentials: Some(BasicCredentials {
                username: "bob".into(),
                password: Secret::new(PASSWORD),
            }),
            ..options()
        });
        let data = b"layer bytes for the upload test".to_vec();
        let digest = sha256_digest(&data);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, &data).unwrap();
        c.push_blob_file(
            &format!("{}/app:v1", srv.addr),
            &path,
            &digest,
            data.len() as u64,
        )
        .await
        .unwrap();
        // The HEAD's 401 earned the credentials: the two sessions are the only POSTs.
        assert_eq!(srv.count("HEAD", "/blobs/"), 2);
        assert_eq!(srv.count("POST", "/blobs/uploads/"), 2);
        assert_eq!(srv.count("PUT", "session-1"), 1);
        let put = storage
            .requests()
            .into_iter()
            .find(|r| r.method == "PUT")
            .expect("the second session's PUT reached storage");
        assert_eq!(put.body, data, "the file was sent again from its start");
        assert!(put.target.contains("_state=def"), "{}", put.target);
        assert!(
            put.target
                .contains(&format!("digest={}", digest.replace(':', "%3A"))),
            "{}",
            put.target
        );
        assert_eq!(
            put.header("authorization"),
            None,
            "credentials stay on the registry host"
        );
        assert_eq!(c.stats().retries, 1);
        assert!(c.stats().bytes_sent >= 2 * data.len() as u64);
    });
}

// ---------------------------------------------------------------- hosts.toml

/// A hosts directory with `hosts.toml` for `registry`.
fn hosts_dir(registry: &str, toml: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join(registry);
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("hosts.toml"), toml).unwrap();
    d
}

/// containerd's hosts.toml: the mirror is asked first, with `?ns=<registry>`
/// and the file's headers; the registry itself is never contacted while the
/// mirror serves everything, and pushes go to the host that may push.
#[test]
fn a_hosts_toml_mirror_serves_first_with_ns_and_headers() {
    common::rt().block_on(async {
        let img = image(7);
        let (a, b) = (img.clone(), img.clone());
        let origin = Script::start(move |req| registry_reply(&a, req)).await;
        let mirror = Script::start(move |req| registry_reply(&b, req)).await;
        let dir = mirror_hosts_dir(&origin.addr, &mirror.addr, "\"pull\", \"resolve\"");
        let c = client_with(RegistryOptions {
            hosts_dir: Some(dir.path().to_path_buf()),
            ..options()
        });
        let r = c.resolve(&format!("{}/app:v1", origin.addr)).await.unwrap();
        assert_eq!(r.manifest_digest, img.manifest_digest);
        let bytes = c.fetch_range(&r, &img.layer_digest, 10..20).await.unwrap();
        assert_eq!(bytes, img.layer[10..20]);
        // A repository parsed afresh is routed to the mirror too.
        let repo = c.repository(&format!("{}/app:v1", origin.addr)).unwrap();
        assert_eq!(
            c.blob_size(&repo, &img.layer_digest).await.unwrap(),
            img.layer.len() as u64
        );
        assert!(origin.requests().is_empty(), "{:?}", origin.requests());
        let ns = format!("ns={}", origin.addr);
        let sent = mirror.requests();
        assert!(sent.len() >= 4, "{sent:?}");
        for q in &sent {
            assert!(q.target.contains(&ns), "{} lacks {ns}", q.target);
            assert_eq!(q.header("x-mirror-key"), Some("k-123"), "{}", q.target);
        }
        // The mirror may not push: the upload goes to the registry itself.
        c.push_blob_bytes(
            &format!("{}/app:v1", origin.addr),
            b"pushed".to_vec(),
            &sha256_digest(b"pushed"),
        )
        .await
        .ok();
        assert!(origin.count("HEAD", "/v2/app/blobs/") >= 1);
        assert_eq!(mirror.count("POST", "/uploads/"), 0);
    });
}

/// A mirror that lacks the image (404) or fails (500) hands over to the next
/// host, as containerd's resolver and fetcher do; a mirror's own failure is
/// what is reported when every host fails.
#[test]
fn a_failing_mirror_falls_back_to_the_registry() {
    common::rt().block_on(async {
        let img = image(8);
        let a = img.clone();
        let origin = Script::start(move |req| registry_reply(&a, req)).await;
        let empty = Script::start(|_| Reply::new(404)).await;
        let broken = Script::start(|_| Reply::new(500)).await;
        let dir = hosts_dir(
            &origin.addr,
            &format!(
                "server = \"http://{o}\"\n[host.\"http://{e}\"]\n[host.\"http://{b}\"]\n",
                o = origin.addr,
                e = empty.addr,
                b = broken.addr
            ),
        );
        let c = client_with(RegistryOptions {
            hosts_dir: Some(dir.path().to_path_buf()),
            ..options()
        });
        let r = c.resolve(&format!("{}/app:v1", origin.addr)).await.unwrap();
        assert_eq!(r.manifest_digest, img.manifest_digest);
        assert!(empty.count("GET", "/manifests/v1") >= 1);
        assert!(broken.count("GET", "/manifests/v1") >= 1);
        assert!(origin.count("GET", "/manifests/v1") >= 1);
        // Every host fails: the broken mirror's error, not the origin's 404.
        let e = c
            .resolve(&format!("{}/app:nope", origin.addr))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TooManyRetries { .. }), "{e}");
        assert!(e.to_string().contains(&broken.addr), "{e}");
    });
}

/// calibrate's registry round trip goes where pulls go: the hosts.toml
/// mirror, with the file's headers, never the registry itself (it once used
/// a bare client that ignored --hosts-dir, --ca-cert and client certificates).
/// A hosts dir for `origin` whose hosts.toml puts `mirror` first with
/// `capabilities` and an `x-mirror-key` header.
fn mirror_hosts_dir(origin: &str, mirror: &str, capabilities: &str) -> tempfile::TempDir {
    hosts_dir(
        origin,
        &format!(
            "server = \"http://{origin}\"\n\
             [host.\"http://{mirror}\"]\n  capabilities = [{capabilities}]\n\
             [host.\"http://{mirror}\".header]\n  x-mirror-key = \"k-123\"\n"
        ),
    )
}

#[test]
fn calibrate_round_trip_is_measured_on_the_hosts_toml_mirror() {
    common::rt().block_on(async {
        let origin = Script::start(|_| Reply::new(200).body("{}")).await;
        let mirror = Script::start(|_| Reply::new(200).body("{}")).await;
        let dir = mirror_hosts_dir(&origin.addr, &mirror.addr, "\"pull\"");
        let c = client_with(RegistryOptions {
            hosts_dir: Some(dir.path().to_path_buf()),
            ..options()
        });
        let rtt = advisor::calibrate::registry_rtt(&c, &origin.addr).await;
        let rtt = rtt.expect("the mirror answered: a round trip");
        assert!(rtt.value > 0.0 && rtt.value < 5.0, "{rtt:?}");
        assert!(origin.requests().is_empty(), "{:?}", origin.requests());
        let sent = mirror.requests();
        assert!(!sent.is_empty() && sent.len() == mirror.count("GET", "/v2/"));
        for q in &sent {
            assert_eq!(q.header("x-mirror-key"), Some("k-123"), "{}", q.target);
        }

        // A broken hosts.toml: no round trip, no request anywhere.
        let bad = hosts_dir(&origin.addr, "[host\n");
        let c = client_with(RegistryOptions {
            hosts_dir: Some(bad.path().to_path_buf()),
            ..options()
        });
        assert!(
            advisor::calibrate::registry_rtt(&c, &origin.addr)
                .await
                .is_none()
        );
        assert!(origin.requests().is_empty());
    });
}

/// A broken hosts.toml, a CA file that is missing or not PEM: a clear error
/// naming the file, never a silent fall back to the registry.
#[test]
fn a_broken_hosts_config_is_an_error_naming_the_file() {
    common::rt().block_on(async {
        let c = |dir: &tempfile::TempDir, ca: Vec<std::path::PathBuf>| {
            client_with(RegistryOptions {
                hosts_dir: Some(dir.path().to_path_buf()),
                ca_certs: ca,
                ..options()
            })
        };
        let bad = hosts_dir(
            "reg.example:5000",
            "server = \"https://reg.example:5000\"\n[host\n",
        );
        let e = c(&bad, vec![])
            .resolve("reg.example:5000/app:v1")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Hosts { .. }), "{e}");
        assert!(e.to_string().contains("hosts.toml"), "{e}");

        let missing = hosts_dir(
            "127.0.0.1:9",
            "server = \"https://127.0.0.1:9\"\nca = \"no-such-ca.pem\"\n[host]\n",
        );
        let e = c(&missing, vec![])
            .resolve("127.0.0.1:9/app:v1")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no-such-ca.pem"), "{e}");

        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        let empty = tempfile::tempdir().unwrap();
        let e = c(&empty, vec![not_pem.path().to_path_buf()])
            .resolve("127.0.0.1:9/app:v1")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--ca-cert"), "{e}");
        assert!(e.to_string().contains("PEM"), "{e}");
    });
}

/// `ADVISOR_REGISTRY_TOKEN`: the bearer token goes out as it is, no token
/// exchange; a refused token is an error naming the variable, never the token.
#[test]
fn a_bearer_token_from_the_environment_is_sent_without_an_exchange() {
    common::rt().block_on(async {
        let img = image(9);
        let srv = Script::start(token_registry(img.clone())).await;
        let c = client_with(RegistryOptions {
            token: Some(Secret::new("tok-abc")),
            ..options()
        });
        let r = c.resolve(&format!("{}/app:v1", srv.addr)).await.unwrap();
        assert_eq!(r.manifest_digest, img.manifest_digest);
        assert_eq!(srv.count("GET", "/token"), 0, "no exchange");

        let c = client_with(RegistryOptions {
            token: Some(Secret::new("tok-WRONG-never-printed")),
            ..options()
        });
        let e = c
            .resolve(&format!("{}/app:v1", srv.addr))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
        let text = format!("{e} {e:?}");
        assert!(text.contains("ADVISOR_REGISTRY_TOKEN"), "{text}");
        assert!(!text.contains("tok-WRONG"), "{text}");
    });
}
