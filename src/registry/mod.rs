//! The OCI registry client (OCI distribution spec v1.1, Docker registry v2).
//!
//! Owns every HTTP request advisor makes to a registry: reference
//! normalisation, credentials (environment, docker config, credential helpers),
//! anonymous/Basic/Bearer auth, TLS by default with plain HTTP for
//! `--plain-http` or localhost, retries with backoff, index → platform
//! resolution, digest and size verification, and byte/request counters. It
//! must not interpret layers (eStargz TOCs are `estargz`'s), talk to
//! containerd, or print: callers render its typed results and errors.
//!
//! API (see docs/registry.md for choices and behaviour):
//! - [`RegistryClient::new`]`(`[`RegistryOptions`]`)` — cheap to clone; clones share
//!   connections, tokens and counters.
//! - [`RegistryClient::resolve`]`(reference)` → [`ResolvedImage`]: index (if any),
//!   platform manifest and config, bytes and oci-spec types, all digest-verified.
//! - [`RegistryClient::blob_size`], [`RegistryClient::fetch_range`] (one ranged GET,
//!   exact bytes, refuses a server that ignores `Range`),
//!   [`RegistryClient::blob_stream`] (whole blob, verified at the end),
//!   [`RegistryClient::fetch_blob`] (small blobs into memory, verified).
//! - [`RegistryClient::push_blob_file`] (streamed from disk, bounded memory,
//!   skipped when the registry has it), [`RegistryClient::push_blob_bytes`],
//!   [`RegistryClient::push_manifest`].
//! - [`RegistryClient::ping`], [`RegistryClient::authorize_pull`],
//!   [`RegistryClient::read_range_timed`]: timed requests for `advisor probe`.
//! - [`RegistryClient::stats`] → [`RegistryStats`].
//!
//! Blob functions take any [`AsRepository`]: a [`ResolvedImage`] or a parsed
//! [`Repository`].
//!
//! Built on oci-client (manifests, token flow) and oci-spec (types, references);
//! blob traffic uses reqwest directly because oci-client cannot count bytes,
//! honour `Retry-After`, check `Content-Range` or replay an upload from a file.
mod auth;
mod blobs;
mod error;
pub mod hosts;
mod platform;
mod reference;
mod retry;
mod route;
mod timed;
mod tls;
mod transport;

pub use auth::{BasicCredentials, ENV_PASSWORD, ENV_TOKEN, ENV_USER, Secret, docker_config_dir};
pub use blobs::BlobStream;
pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::{Repository, check_digest, check_host_port, is_localhost, sha256_digest};
pub use retry::Backoff;
pub use route::source_text as route_source;
pub use timed::{Answer, Authorization, RangeRead};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use transport::RegistryState;

/// OCI image manifest media type (image-spec).
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type (image-spec).
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (the Docker flavour of an index).
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest types advisor asks for, as containerd's resolver does.
const ACCEPT_MANIFESTS: &[&str] = &[
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_LIST,
];

/// Largest manifest or config advisor reads into memory. containerd's
/// remotes/docker limits manifests to 4 MiB (`limit.go`); configs are far smaller.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest config blob read into memory.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Deepest chain of indexes followed (an index of indexes is legal but rare).
const MAX_INDEX_DEPTH: usize = 4;

/// How the client behaves. `Default` reads the environment: credentials from
/// `ADVISOR_REGISTRY_USER`/`ADVISOR_REGISTRY_PASSWORD`, the docker config
/// directory from `$DOCKER_CONFIG` or `~/.docker`.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP for every registry (localhost and loopback always get it).
    pub plain_http: bool,
    /// The platform an index resolves to (default: this host's).
    pub platform: Platform,
    /// Retries after a first failed attempt (connection errors, 5xx, 429).
    pub max_retries: u32,
    pub user_agent: String,
    /// Credentials for every registry, ahead of the docker config.
    pub credentials: Option<BasicCredentials>,
    /// A bearer token for every registry, ahead of everything else
    /// (`ADVISOR_REGISTRY_TOKEN`), sent without a token exchange.
    pub token: Option<Secret>,
    /// Directory of docker's `config.json` (None: no docker config).
    pub docker_config_dir: Option<PathBuf>,
    /// First retry wait before jitter; doubles each retry up to `backoff_max`.
    pub backoff_base: Duration,
    /// Longest single wait, also the cap on a server's `Retry-After`.
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// containerd's registry host directory (`certs.d`: `<host>/hosts.toml`
    /// with mirrors, CAs, client certificates); None: containerd's defaults.
    pub hosts_dir: Option<PathBuf>,
    /// CA certificate files (PEM) trusted for every registry, beside the
    /// system's and hosts.toml's.
    pub ca_certs: Vec<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        let b = Backoff::default();
        let env = |k: &str| std::env::var(k).ok();
        RegistryOptions {
            plain_http: false,
            platform: Platform::host(),
            max_retries: b.max_retries,
            user_agent: format!("advisor/{}", env!("CARGO_PKG_VERSION")),
            credentials: BasicCredentials::from_env(),
            token: auth::token_from_env(),
            docker_config_dir: docker_config_dir(
                env("DOCKER_CONFIG").as_deref(),
                env("HOME").as_deref(),
            ),
            backoff_base: b.base,
            backoff_max: b.max,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            hosts_dir: None,
            ca_certs: Vec::new(),
        }
    }
}

/// Counters since the client was created. Bytes are HTTP body bytes (what a
/// registry bills and what a range read costs), not headers or TLS framing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RegistryStats {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Every HTTP request advisor itself sent, retries included. The token
    /// exchanges inside oci-client are counted in `auth_requests` as one each.
    pub requests: u64,
    pub manifest_requests: u64,
    pub blob_head_requests: u64,
    pub blob_get_requests: u64,
    pub upload_requests: u64,
    pub auth_requests: u64,
    /// Attempts that were repeated after a retryable failure.
    pub retries: u64,
}

impl RegistryStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &RegistryStats) -> RegistryStats {
        RegistryStats {
            bytes_received: self.bytes_received - earlier.bytes_received,
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            requests: self.requests - earlier.requests,
            manifest_requests: self.manifest_requests - earlier.manifest_requests,
            blob_head_requests: self.blob_head_requests - earlier.blob_head_requests,
            blob_get_requests: self.blob_get_requests - earlier.blob_get_requests,
            upload_requests: self.upload_requests - earlier.upload_requests,
            auth_requests: self.auth_requests - earlier.auth_requests,
            retries: self.retries - earlier.retries,
        }
    }
}

/// Kinds of request, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Manifest,
    BlobHead,
    BlobGet,
    Upload,
    Auth,
}

#[derive(Default)]
struct Counters {
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    requests: AtomicU64,
    manifest: AtomicU64,
    blob_head: AtomicU64,
    blob_get: AtomicU64,
    upload: AtomicU64,
    auth: AtomicU64,
    retries: AtomicU64,
}

impl Counters {
    fn count(&self, kind: Kind) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let c = match kind {
            Kind::Manifest => &self.manifest,
            Kind::BlobHead => &self.blob_head,
            Kind::BlobGet => &self.blob_get,
            Kind::Upload => &self.upload,
            Kind::Auth => &self.auth,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
    fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    fn add_received(&self, n: u64) {
        self.bytes_received.fetch_add(n, Ordering::Relaxed);
    }
    fn add_sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Ordering::Relaxed);
    }
    fn snapshot(&self) -> RegistryStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RegistryStats {
            bytes_received: g(&self.bytes_received),
            bytes_sent: g(&self.bytes_sent),
            requests: g(&self.requests),
            manifest_requests: g(&self.manifest),
            blob_head_requests: g(&self.blob_head),
            blob_get_requests: g(&self.blob_get),
            upload_requests: g(&self.upload),
            auth_requests: g(&self.auth),
            retries: g(&self.retries),
        }
    }
}

/// The registry client. Clones share connections, credentials, tokens and counters.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    opts: RegistryOptions,
    backoff: Backoff,
    /// oci-client wants a `&'static str` user agent: leaked once per client.
    user_agent: &'static str,
    counters: Counters,
    /// Connection state per `scheme://host`.
    registries: Mutex<HashMap<String, Arc<RegistryState>>>,
    /// Each registry's hosts (hosts.toml), read once.
    hosts: Mutex<HashMap<String, Arc<hosts::Hosts>>>,
    /// Each host's settings (CA, client certificate, headers) by `scheme://host`.
    endpoints: Mutex<HashMap<String, Arc<hosts::Endpoint>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("opts", &self.inner.opts)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What blob calls need: which repository on which registry.
pub trait AsRepository {
    fn repository(&self) -> &Repository;
}

impl AsRepository for Repository {
    fn repository(&self) -> &Repository {
        self
    }
}

impl AsRepository for ResolvedImage {
    fn repository(&self) -> &Repository {
        &self.repo
    }
}

/// An image resolved to one platform: every byte verified against its digest.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as given.
    pub reference: String,
    /// Registry host as normalised (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// The index the reference named, when it named one.
    pub index_digest: Option<String>,
    pub index_bytes: Option<Vec<u8>>,
    pub index_media_type: Option<String>,
    /// The platform manifest.
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    pub config_descriptor: Descriptor,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    /// The platform the image was resolved for.
    pub platform: Platform,
    repo: Repository,
}

impl ResolvedImage {
    /// The layers, base first, with media types, sizes and annotations.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// The digest of what the reference names: the index if there is one, else the manifest.
    pub fn top_digest(&self) -> &str {
        self.index_digest
            .as_deref()
            .unwrap_or(&self.manifest_digest)
    }
}

impl RegistryClient {
    pub fn new(opts: RegistryOptions) -> Result<Self> {
        let backoff = Backoff {
            max_retries: opts.max_retries,
            base: opts.backoff_base,
            max: opts.backoff_max,
        };
        let user_agent: &'static str = Box::leak(opts.user_agent.clone().into_boxed_str());
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                opts,
                backoff,
                user_agent,
                counters: Counters::default(),
                registries: Mutex::new(HashMap::new()),
                hosts: Mutex::new(HashMap::new()),
                endpoints: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.inner.opts
    }

    /// Counters since creation, shared by every clone.
    pub fn stats(&self) -> RegistryStats {
        self.inner.counters.snapshot()
    }

    /// Parse a reference with this client's `--plain-http` setting.
    pub fn repository(&self, reference: &str) -> Result<Repository> {
        Repository::parse(reference, self.inner.opts.plain_http)
    }

    /// Resolve a reference (tag or digest) to a platform manifest and config.
    /// Follows an index (OCI or Docker manifest list) to the options' platform,
    /// as containerd's `platforms.Only`; a plain manifest must have a config for
    /// that platform too (containerd checks it the same way). Verifies the digest
    /// of everything it fetches against the reference, the `Docker-Content-Digest`
    /// header, or the parent's descriptor, and the parent's sizes.
    /// With a hosts directory, the hosts of the registry's hosts.toml are tried
    /// in order (a tag on hosts that may `resolve`, a digest on those that may
    /// `pull`); the image keeps the host that answered for its blobs.
    pub async fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        let repo = self.repository(reference)?;
        let need = if repo.digest.is_some() {
            route::Need::Pull
        } else {
            route::Need::Resolve
        };
        self.on_routes(&repo, need, |r| self.resolve_at(r)).await
    }

    /// [`Self::resolve`] on one host.
    async fn resolve_at(&self, repo: Repository) -> Result<ResolvedImage> {
        let want = self.inner.opts.platform.clone();
        let (mut bytes, mut digest) = self.fetch_manifest(&repo, repo.tag_or_digest()).await?;
        let mut media_type = sniff_media_type(&repo, &bytes)?;
        let mut index: Option<(String, Vec<u8>, String)> = None;
        let mut depth = 0;
        while is_index(&media_type) {
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(protocol(
                    &repo,
                    &digest,
                    format!("more than {MAX_INDEX_DEPTH} nested indexes"),
                ));
            }
            let parsed: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                protocol(
                    &repo,
                    &digest,
                    format!("index {digest} is not a valid image index: {e}"),
                )
            })?;
            let Some(i) = platform::select(&parsed, &want) else {
                return Err(Error::NoMatchingPlatform {
                    url: repo.manifest_url(&digest),
                    reference: repo.reference.clone(),
                    platform: want.to_string(),
                    available: platform::available(&parsed),
                });
            };
            let entry = parsed.manifests()[i].clone();
            let child_digest = entry.digest().to_string();
            repo.validate_digest(&child_digest)?;
            let (child, got) = self
                .fetch_manifest(&repo.with_digest(&child_digest), &child_digest)
                .await?;
            check_size(
                &repo,
                &child_digest,
                "manifest",
                entry.size(),
                child.len() as u64,
            )?;
            if index.is_none() {
                index = Some((digest.clone(), bytes, media_type.clone()));
            }
            media_type = sniff_media_type(&repo, &child)?;
            bytes = child;
            digest = got;
        }
        if media_type != MEDIA_TYPE_OCI_MANIFEST && media_type != MEDIA_TYPE_DOCKER_MANIFEST {
            return Err(protocol(
                &repo,
                &digest,
                format!("{digest} is a `{media_type}`, not an image manifest advisor can use"),
            ));
        }
        let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
            protocol(
                &repo,
                &digest,
                format!("manifest {digest} is not a valid image manifest: {e}"),
            )
        })?;
        let config_descriptor = manifest.config().clone();
        let config_bytes = self
            .fetch_blob(&repo, &config_descriptor, MAX_CONFIG_BYTES)
            .await?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            protocol(
                &repo,
                &digest,
                format!(
                    "config {} is not a valid image config: {e}",
                    config_descriptor.digest()
                ),
            )
        })?;
        if index.is_none() {
            let have = Platform::new(
                &config.os().to_string(),
                &config.architecture().to_string(),
                config.variant().as_deref(),
            );
            if want.rank(&have).is_none() {
                return Err(Error::NoMatchingPlatform {
                    url: repo.manifest_url(&digest),
                    reference: repo.reference.clone(),
                    platform: want.to_string(),
                    available: have.to_string(),
                });
            }
        }
        let (index_digest, index_bytes, index_media_type) = match index {
            Some((d, b, m)) => (Some(d), Some(b), Some(m)),
            None => (None, None, None),
        };
        Ok(ResolvedImage {
            reference: repo.reference.clone(),
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            index_digest,
            index_bytes,
            index_media_type,
            manifest_digest: digest,
            manifest_bytes: bytes,
            manifest_media_type: media_type,
            manifest,
            config_descriptor,
            config_bytes,
            config,
            platform: want,
            repo,
        })
    }

    /// GET one manifest (or index), at most [`MAX_MANIFEST_BYTES`]; its digest
    /// is checked against the reference and `Docker-Content-Digest` (as
    /// containerd does: the header is trusted only to name the digest, the
    /// bytes must hash to it).
    async fn fetch_manifest(
        &self,
        repo: &Repository,
        tag_or_digest: &str,
    ) -> Result<(Vec<u8>, String)> {
        let url = repo.manifest_url(tag_or_digest);
        let what = format!("manifest `{tag_or_digest}`");
        let mut headers = reqwest::header::HeaderMap::new();
        let accept = ACCEPT_MANIFESTS.join(", ");
        headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_str(&accept).expect("media types are header-safe"),
        );
        let resp = self
            .send(
                transport::Req {
                    repo,
                    op: transport::Op::Pull,
                    kind: Kind::Manifest,
                    what: &what,
                    method: reqwest::Method::GET,
                    url: url.clone(),
                    headers,
                    body: transport::Body::Empty,
                },
                self.inner.backoff.max_retries,
            )
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(self.failure(repo, &what, resp).await);
        }
        let header = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = self
            .read_limited(resp, MAX_MANIFEST_BYTES)
            .await
            .map_err(|detail| protocol(repo, tag_or_digest, format!("{what}: {detail}")))?;
        let named = repo.digest.clone().or(header);
        let digest = match named {
            Some(want) => {
                check_digest(&want).map_err(|r| {
                    protocol(repo, tag_or_digest, format!("Docker-Content-Digest: {r}"))
                })?;
                let mut d = reference::Digester::for_digest(&want);
                d.update(&body);
                let actual = d.finish();
                if actual != want {
                    return Err(Error::DigestMismatch {
                        url,
                        reference: repo.reference.clone(),
                        what,
                        expected: want,
                        actual,
                    });
                }
                want
            }
            None => sha256_digest(&body),
        };
        Ok((body, digest))
    }

    /// PUT a manifest (or index) under a tag or digest; returns its digest.
    /// With a digest reference, the bytes must hash to it.
    pub async fn push_manifest(
        &self,
        reference: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String> {
        let repo = self.repository(reference)?;
        let digest = sha256_digest(&bytes);
        if let Some(want) = &repo.digest
            && want != &digest
        {
            return Err(Error::DigestMismatch {
                url: repo.manifest_url(want),
                reference: repo.reference.clone(),
                what: "manifest to push".into(),
                expected: want.clone(),
                actual: digest,
            });
        }
        let content_type =
            reqwest::header::HeaderValue::from_str(media_type).map_err(|_| Error::Protocol {
                url: repo.manifest_url(repo.tag_or_digest()),
                reference: repo.reference.clone(),
                detail: format!("media type `{media_type}` is not a valid header value"),
            })?;
        let repo = self.route(&repo, route::Need::Push)?;
        let url = repo.manifest_url(repo.tag_or_digest());
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::CONTENT_TYPE, content_type);
        let resp = self
            .send(
                transport::Req {
                    repo: &repo,
                    op: transport::Op::Push,
                    kind: Kind::Manifest,
                    what: "manifest push",
                    method: reqwest::Method::PUT,
                    url,
                    headers,
                    body: transport::Body::Bytes(bytes::Bytes::from(bytes)),
                },
                self.inner.backoff.max_retries,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.failure(&repo, "manifest push", resp).await);
        }
        self.drain(resp).await;
        Ok(digest)
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST
}

/// A manifest's media type from its own `mediaType` field, else from its shape
/// (OCI allows omitting the field: `manifests` means an index, `layers` a manifest).
fn sniff_media_type(repo: &Repository, bytes: &[u8]) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<i64>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| {
        protocol(
            repo,
            repo.tag_or_digest(),
            format!("manifest is not JSON: {e}"),
        )
    })?;
    if p.schema_version != Some(2) {
        return Err(protocol(
            repo,
            repo.tag_or_digest(),
            format!(
                "manifest schemaVersion is {:?}; advisor reads schema 2 (OCI and Docker v2) only",
                p.schema_version
            ),
        ));
    }
    Ok(match (p.media_type, p.manifests, p.layers) {
        (Some(m), _, _) => m,
        (None, Some(_), _) => MEDIA_TYPE_OCI_INDEX.to_string(),
        (None, None, Some(_)) => MEDIA_TYPE_OCI_MANIFEST.to_string(),
        _ => {
            return Err(protocol(
                repo,
                repo.tag_or_digest(),
                "manifest has neither mediaType, manifests nor layers".into(),
            ));
        }
    })
}

fn check_size(
    repo: &Repository,
    digest: &str,
    what: &str,
    expected: u64,
    actual: u64,
) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::SizeMismatch {
        url: repo.manifest_url(digest),
        reference: repo.reference.clone(),
        what: format!("{what} {digest}"),
        expected,
        actual,
    })
}

fn protocol(repo: &Repository, tag_or_digest: &str, detail: String) -> Error {
    Error::Protocol {
        url: repo.manifest_url(tag_or_digest),
        reference: repo.reference.clone(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_sniffed_from_shape_when_absent() {
        let repo = Repository::parse("127.0.0.1:1/a:b", false).unwrap();
        let m = |s: &str| sniff_media_type(&repo, s.as_bytes());
        assert_eq!(
            m(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            MEDIA_TYPE_OCI_INDEX
        );
        assert_eq!(
            m(r#"{"schemaVersion":2,"layers":[]}"#).unwrap(),
            MEDIA_TYPE_OCI_MANIFEST
        );
        assert_eq!(
            m(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#)
                .unwrap(),
            MEDIA_TYPE_DOCKER_LIST
        );
        let e = m(r#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err();
        assert!(e.to_string().contains("schema 2"), "{e}");
        assert!(m("<html>").is_err());
    }

    #[test]
    fn stats_since_subtracts() {
        let a = RegistryStats {
            bytes_received: 10,
            requests: 2,
            ..Default::default()
        };
        let b = RegistryStats {
            bytes_received: 25,
            requests: 5,
            retries: 1,
            ..Default::default()
        };
        let d = b.since(&a);
        assert_eq!((d.bytes_received, d.requests, d.retries), (15, 3, 1));
    }

    #[test]
    fn options_debug_hides_the_password() {
        let opts = RegistryOptions {
            credentials: Some(BasicCredentials {
                username: "u".into(),
                password: Secret::new("pw-should-not-print"),
            }),
            ..Default::default()
        };
        let c = RegistryClient::new(opts).unwrap();
        let s = format!("{c:?}");
        assert!(
            !s.contains("pw-should-not-print") && s.contains("<redacted>"),
            "{s}"
        );
    }
}
