//! Blob reads and uploads over advisor's own reqwest client.
//!
//! Why not oci-client here: its `pull_blob_stream_partial` neither checks
//! `Content-Range` nor lets a caller count bytes, and its uploads take a
//! one-shot stream that cannot be retried; see docs/registry.md.
use super::error::{Error, Result};
use super::reference::{Digester, Repository};
use super::route::Need;
use super::transport::{Body, Op, Req};
use super::{AsRepository, Kind, RegistryClient, retry};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use oci_spec::image::Descriptor;
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A whole blob as it arrives; the last item is an error if its size or digest is wrong.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// Read size of a file upload: large enough for few syscalls, small enough that
/// a 2 GiB layer streams in a few MiB of memory.
const UPLOAD_READ_BUF: usize = 1 << 20;

/// The header registries put a blob's or manifest's digest in.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

enum Source {
    File(PathBuf),
    Bytes(Bytes),
}

impl RegistryClient {
    /// A blob's size, from HEAD. Checks `Docker-Content-Digest` when the registry sends it.
    /// Hosts are tried in order (hosts.toml), as for every blob read.
    pub async fn blob_size(&self, image: &impl AsRepository, digest: &str) -> Result<u64> {
        self.on_routes(image.repository(), Need::Pull, |repo| async move {
            match self.head_blob(&repo, digest, Op::Pull).await? {
                Some(n) => Ok(n),
                None => Err(Error::NotFound {
                    url: repo.blob_url(digest),
                    reference: repo.reference.clone(),
                    what: format!("blob {digest}"),
                }),
            }
        })
        .await
    }

    /// Whether the registry has a blob (its size), from HEAD.
    pub async fn blob_exists(
        &self,
        image: &impl AsRepository,
        digest: &str,
    ) -> Result<Option<u64>> {
        match self.blob_size(image, digest).await {
            Ok(n) => Ok(Some(n)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn head_blob(&self, repo: &Repository, digest: &str, op: Op) -> Result<Option<u64>> {
        repo.validate_digest(digest)?;
        let what = format!("blob {digest}");
        let url = repo.blob_url(digest);
        let resp = self
            .send(
                Req {
                    repo,
                    op,
                    kind: Kind::BlobHead,
                    what: &what,
                    method: Method::HEAD,
                    url: url.clone(),
                    headers: HeaderMap::new(),
                    body: Body::Empty,
                },
                self.inner.backoff.max_retries,
            )
            .await?;
        match resp.status() {
            StatusCode::OK => {
                check_digest_header(repo, &url, &what, digest, resp.headers())?;
                // The header, not `content_length()`: a HEAD response has no body to size.
                header_u64(resp.headers(), CONTENT_LENGTH.as_str())
                    .map(Some)
                    .ok_or_else(|| Error::Protocol {
                        url,
                        reference: repo.reference.clone(),
                        detail: format!("HEAD of {what} gave no Content-Length"),
                    })
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.failure(repo, &what, resp).await),
        }
    }

    /// The answer to a ranged GET of `range` (`spec` its header): 206 with
    /// exactly that `Content-Range`, or 200 when the range is the whole body;
    /// anything else is an error (a server ignoring `Range` is refused without
    /// reading its body). Shared by [`Self::fetch_range`] and the probe's
    /// timed read.
    pub(super) async fn range_answer(
        &self,
        repo: &Repository,
        url: &str,
        what: &str,
        spec: &str,
        range: &Range<u64>,
        resp: Response,
    ) -> Result<Response> {
        let len = range.end - range.start;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let got = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                if got != Some((range.start, range.end - 1)) {
                    return Err(Error::Protocol {
                        url: url.to_string(),
                        reference: repo.reference.clone(),
                        detail: format!(
                            "asked for {spec}, the registry answered 206 with Content-Range {:?}",
                            resp.headers().get(CONTENT_RANGE)
                        ),
                    });
                }
                Ok(resp)
            }
            StatusCode::OK
                if range.start == 0
                    && header_u64(resp.headers(), CONTENT_LENGTH.as_str()) == Some(len) =>
            {
                Ok(resp)
            }
            StatusCode::OK => {
                let whole = header_u64(resp.headers(), CONTENT_LENGTH.as_str())
                    .map(|n| format!(", {n} bytes"))
                    .unwrap_or_default();
                // Dropping the response closes the connection: nothing more is read.
                drop(resp);
                Err(Error::RangeIgnored {
                    url: url.to_string(),
                    reference: repo.reference.clone(),
                    start: range.start,
                    end: range.end,
                    whole,
                })
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Err(Error::RangeNotSatisfiable {
                url: url.to_string(),
                reference: repo.reference.clone(),
                start: range.start,
                end: range.end,
            }),
            _ => Err(self.failure(repo, what, resp).await),
        }
    }

    /// Exactly bytes `[range.start, range.end)` of a blob, with one ranged GET
    /// (repeated only after a failure). A server that ignores `Range` (200 with
    /// the whole blob) is refused without reading its body, unless the range is
    /// the whole blob. Received body bytes are counted, failed attempts included.
    pub async fn fetch_range(
        &self,
        image: &impl AsRepository,
        digest: &str,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        self.on_routes(image.repository(), Need::Pull, |repo| {
            let range = range.clone();
            async move { self.fetch_range_at(&repo, digest, range).await }
        })
        .await
    }

    /// [`Self::fetch_range`] on one host.
    async fn fetch_range_at(
        &self,
        repo: &Repository,
        digest: &str,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        repo.validate_digest(digest)?;
        let url = repo.blob_url(digest);
        let what = format!("bytes {}..{} of blob {digest}", range.start, range.end);
        if range.start > range.end {
            return Err(Error::Protocol {
                url,
                reference: repo.reference.clone(),
                detail: format!("{what}: the range is backwards"),
            });
        }
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let len = range.end - range.start;
        let mut headers = HeaderMap::new();
        // HTTP ranges are inclusive (RFC 9110 §14.1.2).
        let spec = format!("bytes={}-{}", range.start, range.end - 1);
        headers.insert(RANGE, header_value(&spec));
        let max_retries = self.inner.backoff.max_retries;
        let mut retry = 0;
        loop {
            let resp = self
                .send(
                    Req {
                        repo,
                        op: Op::Pull,
                        kind: Kind::BlobGet,
                        what: &what,
                        method: Method::GET,
                        url: url.clone(),
                        headers: headers.clone(),
                        body: Body::Empty,
                    },
                    max_retries,
                )
                .await?;
            let resp = self
                .range_answer(repo, &url, &what, &spec, &range, resp)
                .await?;
            match self.read_exact(resp, len).await {
                Ok(data) => return Ok(data),
                Err(ReadError::Fatal(detail)) => {
                    return Err(Error::Protocol {
                        url,
                        reference: repo.reference.clone(),
                        detail: format!("{what}: {detail}"),
                    });
                }
                Err(ReadError::Broken(detail)) if retry < max_retries => {
                    let wait = self.inner.backoff.delay(retry, None);
                    tracing::info!(
                        "{what} of {}: {detail}; retrying in {wait:?}",
                        repo.reference
                    );
                    retry += 1;
                    self.inner.counters.count_retry();
                    tokio::time::sleep(wait).await;
                }
                Err(ReadError::Broken(detail)) => {
                    return Err(Error::TooManyRetries {
                        url,
                        reference: repo.reference.clone(),
                        attempts: retry + 1,
                        last: detail,
                    });
                }
            }
        }
    }

    /// Read a body that must be exactly `len` bytes, counting what arrives.
    async fn read_exact(
        &self,
        mut resp: Response,
        len: u64,
    ) -> std::result::Result<Vec<u8>, ReadError> {
        let cap = usize::try_from(len)
            .map_err(|_| ReadError::Fatal(format!("{len} bytes do not fit in memory")))?;
        let mut out = Vec::with_capacity(cap);
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    self.inner.counters.add_received(c.len() as u64);
                    if (out.len() + c.len()) as u64 > len {
                        return Err(ReadError::Fatal(format!(
                            "the registry sent more than the {len} bytes asked for"
                        )));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) if out.len() as u64 == len => return Ok(out),
                Ok(None) => {
                    return Err(ReadError::Broken(format!(
                        "the body ended after {} of {len} bytes",
                        out.len()
                    )));
                }
                Err(e) => {
                    return Err(ReadError::Broken(format!(
                        "the connection broke after {} of {len} bytes: {}",
                        out.len(),
                        crate::error::error_chain(&e)
                    )));
                }
            }
        }
    }

    /// Stream a whole blob (for containerd's Content.Write), verifying its size
    /// as it goes and its digest at the end: the stream's last item is an error
    /// on a mismatch, so a consumer must not commit before the stream ends.
    pub async fn blob_stream(
        &self,
        image: &impl AsRepository,
        desc: &Descriptor,
    ) -> Result<BlobStream> {
        self.on_routes(image.repository(), Need::Pull, |repo| {
            self.blob_stream_at(repo, desc)
        })
        .await
    }

    /// [`Self::blob_stream`] on one host (once it streams, there is no other host).
    async fn blob_stream_at(&self, repo: Repository, desc: &Descriptor) -> Result<BlobStream> {
        let digest = desc.digest().to_string();
        repo.validate_digest(&digest)?;
        let size = desc.size();
        let what = format!("blob {digest}");
        let url = repo.blob_url(&digest);
        let resp = self
            .send(
                Req {
                    repo: &repo,
                    op: Op::Pull,
                    kind: Kind::BlobGet,
                    what: &what,
                    method: Method::GET,
                    url: url.clone(),
                    headers: HeaderMap::new(),
                    body: Body::Empty,
                },
                self.inner.backoff.max_retries,
            )
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self.failure(&repo, &what, resp).await);
        }
        if let Some(n) = header_u64(resp.headers(), CONTENT_LENGTH.as_str())
            && n != size
        {
            return Err(Error::SizeMismatch {
                url,
                reference: repo.reference.clone(),
                what,
                expected: size,
                actual: n,
            });
        }
        struct State {
            client: RegistryClient,
            resp: Option<Response>,
            digester: Option<Digester>,
            seen: u64,
            size: u64,
            digest: String,
            url: String,
            reference: String,
            what: String,
        }
        let state = State {
            client: self.clone(),
            resp: Some(resp),
            digester: Some(Digester::for_digest(&digest)),
            seen: 0,
            size,
            digest,
            url,
            reference: repo.reference.clone(),
            what,
        };
        let stream = futures_util::stream::unfold(state, |mut s| async move {
            let resp = s.resp.as_mut()?;
            let size_error = |s: &State, actual: u64| Error::SizeMismatch {
                url: s.url.clone(),
                reference: s.reference.clone(),
                what: s.what.clone(),
                expected: s.size,
                actual,
            };
            match resp.chunk().await {
                Ok(Some(c)) => {
                    s.client.inner.counters.add_received(c.len() as u64);
                    s.seen += c.len() as u64;
                    if s.seen > s.size {
                        s.resp = None;
                        let e = size_error(&s, s.seen);
                        return Some((Err(e), s));
                    }
                    if let Some(d) = s.digester.as_mut() {
                        d.update(&c);
                    }
                    Some((Ok(c), s))
                }
                Ok(None) => {
                    s.resp = None;
                    if s.seen != s.size {
                        let e = size_error(&s, s.seen);
                        return Some((Err(e), s));
                    }
                    let actual = s.digester.take()?.finish();
                    if actual != s.digest {
                        let e = Error::DigestMismatch {
                            url: s.url.clone(),
                            reference: s.reference.clone(),
                            what: s.what.clone(),
                            expected: s.digest.clone(),
                            actual,
                        };
                        return Some((Err(e), s));
                    }
                    None
                }
                Err(e) => {
                    s.resp = None;
                    let e = Error::Protocol {
                        url: s.url.clone(),
                        reference: s.reference.clone(),
                        detail: format!(
                            "{}: the connection broke after {} of {} bytes: {}",
                            s.what,
                            s.seen,
                            s.size,
                            crate::error::error_chain(&e)
                        ),
                    };
                    Some((Err(e), s))
                }
            }
        });
        Ok(stream.boxed())
    }

    /// A whole blob in memory (configs, small files), verified; refuses blobs over `max` bytes.
    pub async fn fetch_blob(
        &self,
        image: &impl AsRepository,
        desc: &Descriptor,
        max: u64,
    ) -> Result<Vec<u8>> {
        let repo = image.repository();
        if desc.size() > max {
            return Err(Error::Protocol {
                url: repo.blob_url(desc.digest().as_ref()),
                reference: repo.reference.clone(),
                detail: format!(
                    "blob {} is {} bytes, over the {max}-byte limit for reading into memory",
                    desc.digest(),
                    desc.size()
                ),
            });
        }
        let mut s = self.blob_stream(image, desc).await?;
        let mut out = Vec::with_capacity(desc.size() as usize);
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    /// Upload a blob from a file, streamed with bounded memory (one
    /// [`UPLOAD_READ_BUF`] buffer in flight), as a monolithic upload (POST, then
    /// one PUT with the body). Skipped when HEAD shows the registry has it. A
    /// failed upload is retried from the start of the file.
    pub async fn push_blob_file(
        &self,
        reference: &str,
        path: &Path,
        digest: &str,
        size: u64,
    ) -> Result<()> {
        let repo = self.route(&self.repository(reference)?, Need::Push)?;
        repo.validate_digest(digest)?;
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|source| Error::Io {
                op: "reading",
                path: path.to_path_buf(),
                reference: repo.reference.clone(),
                source,
            })?;
        if meta.len() != size {
            return Err(Error::SizeMismatch {
                url: format!("file://{}", path.display()),
                reference: repo.reference.clone(),
                what: format!("blob {digest} to upload"),
                expected: size,
                actual: meta.len(),
            });
        }
        self.push(&repo, digest, size, Source::File(path.to_path_buf()))
            .await
    }

    /// Upload a blob from memory; its digest is checked before anything is sent.
    /// Skipped when HEAD shows the registry has it.
    pub async fn push_blob_bytes(
        &self,
        reference: &str,
        data: Vec<u8>,
        digest: &str,
    ) -> Result<()> {
        let repo = self.route(&self.repository(reference)?, Need::Push)?;
        repo.validate_digest(digest)?;
        let mut d = Digester::for_digest(digest);
        d.update(&data);
        let actual = d.finish();
        if actual != digest {
            return Err(Error::DigestMismatch {
                url: repo.upload_url(),
                reference: repo.reference.clone(),
                what: "blob to upload".into(),
                expected: digest.to_string(),
                actual,
            });
        }
        let size = data.len() as u64;
        self.push(&repo, digest, size, Source::Bytes(Bytes::from(data)))
            .await
    }

    async fn push(&self, repo: &Repository, digest: &str, size: u64, source: Source) -> Result<()> {
        if let Some(have) = self.head_blob(repo, digest, Op::Push).await?
            && have == size
        {
            tracing::debug!("{} already has blob {digest}", repo.registry_url());
            return Ok(());
        }
        let max_retries = self.inner.backoff.max_retries;
        let mut retry = 0;
        loop {
            match self.upload_once(repo, digest, size, &source).await {
                Ok(()) => return Ok(()),
                Err(e) if upload_retryable(&e) && retry < max_retries => {
                    let wait = self.inner.backoff.delay(retry, None);
                    tracing::info!(
                        "upload of {digest} to {}: {e}; retrying in {wait:?}",
                        repo.reference
                    );
                    retry += 1;
                    self.inner.counters.count_retry();
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(
        &self,
        repo: &Repository,
        digest: &str,
        size: u64,
        source: &Source,
    ) -> Result<()> {
        let what = format!("upload of blob {digest}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let start = self
            .send(
                Req {
                    repo,
                    op: Op::Push,
                    kind: Kind::Upload,
                    what: &what,
                    method: Method::POST,
                    url: repo.upload_url(),
                    headers,
                    body: Body::Empty,
                },
                // The whole upload is retried by the caller.
                0,
            )
            .await?;
        if start.status() != StatusCode::ACCEPTED {
            return Err(self.failure(repo, &what, start).await);
        }
        let location = start
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let base = start.url().clone();
        drop(start);
        let Some(location) = location else {
            return Err(Error::Protocol {
                url: repo.upload_url(),
                reference: repo.reference.clone(),
                detail: "202 to the upload POST without a Location header".into(),
            });
        };
        // Location may be relative or absolute, and carries the session state in its query.
        let mut put_url = base.join(&location).map_err(|e| Error::Protocol {
            url: repo.upload_url(),
            reference: repo.reference.clone(),
            detail: format!("upload Location `{location}` is not a URL: {e}"),
        })?;
        put_url.query_pairs_mut().append_pair("digest", digest);

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, header_value(&size.to_string()));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let body = match source {
            Source::Bytes(b) => Body::Bytes(b.clone()),
            Source::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| Error::Io {
                        op: "opening",
                        path: path.clone(),
                        reference: repo.reference.clone(),
                        source,
                    })?;
                let client = self.clone();
                let stream = tokio_util::io::ReaderStream::with_capacity(file, UPLOAD_READ_BUF)
                    .map(move |chunk| {
                        if let Ok(c) = &chunk {
                            client.inner.counters.add_sent(c.len() as u64);
                        }
                        chunk
                    });
                Body::Once(Some(reqwest::Body::wrap_stream(stream)))
            }
        };
        let put_url = put_url.to_string();
        let done = self
            .send(
                Req {
                    repo,
                    op: Op::Push,
                    kind: Kind::Upload,
                    what: &what,
                    method: Method::PUT,
                    url: put_url.clone(),
                    headers,
                    body,
                },
                0,
            )
            .await?;
        match done.status() {
            StatusCode::CREATED => {
                check_digest_header(repo, &put_url, &what, digest, done.headers())?;
                Ok(())
            }
            StatusCode::BAD_REQUEST => {
                let failure = self.failure(repo, &what, done).await;
                if !failure.to_string().contains("DIGEST_INVALID") {
                    return Err(failure);
                }
                // The registry computed another digest: say which, from the source.
                let actual = match source {
                    Source::Bytes(b) => super::sha256_digest(b),
                    Source::File(path) => file_digest(path, digest)
                        .await
                        .unwrap_or_else(|e| format!("unknown ({e})")),
                };
                Err(Error::DigestMismatch {
                    url: put_url,
                    reference: repo.reference.clone(),
                    what: match source {
                        Source::File(p) => format!("blob uploaded from {}", p.display()),
                        Source::Bytes(_) => "blob uploaded from memory".into(),
                    },
                    expected: digest.to_string(),
                    actual,
                })
            }
            s if retry::retryable_status(s) => Err(Error::TooManyRetries {
                url: put_url,
                reference: repo.reference.clone(),
                attempts: 1,
                last: s.to_string(),
            }),
            _ => Err(self.failure(repo, &what, done).await),
        }
    }
}

enum ReadError {
    /// The connection broke or the body was short: worth another try.
    Broken(String),
    /// The server answered wrongly: another try would not help.
    Fatal(String),
}

/// Failures of one upload attempt worth starting the upload again.
fn upload_retryable(e: &Error) -> bool {
    matches!(e, Error::TooManyRetries { .. } | Error::Unreachable { .. })
}

/// The digest of a file, in a blocking thread.
async fn file_digest(path: &Path, like: &str) -> std::io::Result<String> {
    let path = path.to_path_buf();
    let like = like.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut d = Digester::for_digest(&like);
        let mut buf = vec![0u8; UPLOAD_READ_BUF];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(d.finish());
            }
            d.update(&buf[..n]);
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// A registry that names a digest must name the one asked for.
fn check_digest_header(
    repo: &Repository,
    url: &str,
    what: &str,
    digest: &str,
    headers: &HeaderMap,
) -> Result<()> {
    match headers
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
    {
        Some(d) if d != digest => Err(Error::DigestMismatch {
            url: url.to_string(),
            reference: repo.reference.clone(),
            what: what.to_string(),
            expected: digest.to_string(),
            actual: format!("{d} (Docker-Content-Digest)"),
        }),
        _ => Ok(()),
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A header value from text advisor formatted itself (digits, `bytes=a-b`).
pub(super) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `bytes a-b/total` or `bytes a-b/*` → (a, b).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, _total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 10-10/*"), Some((10, 10)));
        assert_eq!(parse_content_range("bytes */1234"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
