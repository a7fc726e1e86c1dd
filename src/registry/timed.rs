//! Timed requests for `advisor probe`: the registry's `/v2/` endpoint, the
//! pull authorization on its own, and a ranged blob GET that streams and counts
//! bytes without keeping them. Each returns how long it took as measured around
//! the request; interpreting the times is the probe's.
//!
//! Like the rest of the client they send the `Authorization` header earned
//! before, never send credentials to another host, and count requests and
//! body bytes. [`RegistryClient::ping`] makes exactly one attempt (a retried
//! ping would not be a round trip); the ranged read goes through the usual
//! retrying [`RegistryClient::send`].
use super::error::{Error, Result};
use super::reference::{Digester, Repository};
use super::transport::{Body, Op, Req};
use super::{Kind, RegistryClient};
use reqwest::header::{AUTHORIZATION, HeaderMap, RANGE};
use reqwest::{Method, StatusCode};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One answered request: its status and the time from sending to the end of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub elapsed: Duration,
}

/// The pull authorization a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The challenge's scheme, lowercase (`bearer`, `basic`).
    pub scheme: String,
    /// Earning the header: for Bearer, oci-client's token exchange (its own
    /// GET of `/v2/` and the token GET, with their connection set-up); for
    /// Basic, no request at all.
    pub elapsed: Duration,
}

/// What a timed ranged read got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeRead {
    /// Body bytes received.
    pub bytes: u64,
    /// Bytes of the first chunk (what arrived with the first byte).
    pub first_chunk: u64,
    /// From sending the request to the first body byte (None: no body byte arrived).
    pub ttfb: Option<Duration>,
    /// From sending the request to the last byte read.
    pub elapsed: Duration,
    /// The deadline stopped the read before the range was complete.
    pub cut: bool,
    /// The range was the whole blob, read completely and its digest checked.
    pub verified: bool,
}

impl RegistryClient {
    /// One `GET /v2/` with the pull header earned so far for `repo`, no retry
    /// and no re-authentication: any status is an answer (a 401 too). Reads the
    /// (small) body so the connection stays reusable.
    pub async fn ping(&self, repo: &Repository) -> Result<Answer> {
        let st = self.state(repo).await?;
        let url = repo.v2_url();
        let mut rb = st.http.get(&url).headers(st.extra.clone());
        if let Some(h) = st.header(&repo.repository, Op::Pull) {
            rb = rb.header(AUTHORIZATION, h);
        }
        // A ping is none of the counted kinds: it counts as a request only.
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let mut resp = rb.send().await.map_err(|e| {
            let detail = crate::error::error_chain(&e);
            if e.is_connect() {
                Error::connect(url.clone(), repo.reference.clone(), detail)
            } else {
                Error::Protocol {
                    url: url.clone(),
                    reference: repo.reference.clone(),
                    detail,
                }
            }
        })?;
        let status = resp.status().as_u16();
        while let Ok(Some(c)) = resp.chunk().await {
            self.inner.counters.add_received(c.len() as u64);
        }
        Ok(Answer {
            status,
            elapsed: t0.elapsed(),
        })
    }

    /// Earn the pull header for `repo` the way [`RegistryClient::send`] does after
    /// a 401, and time that step alone. An anonymous `GET /v2/` first (untimed)
    /// says whether the registry wants authorization at all: None when it answers
    /// without a challenge.
    pub async fn authorize_pull(&self, repo: &Repository) -> Result<Option<Authorization>> {
        let st = self.state(repo).await?;
        let url = repo.v2_url();
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = st
            .http
            .get(&url)
            .headers(st.extra.clone())
            .send()
            .await
            .map_err(|e| {
                Error::connect(
                    url.clone(),
                    repo.reference.clone(),
                    crate::error::error_chain(&e),
                )
            })?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            self.drain(resp).await;
            return Ok(None);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.drain(resp).await;
        let scheme = challenge
            .as_deref()
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("")
            .to_ascii_lowercase();
        let t0 = Instant::now();
        self.authorize(&st, repo, Op::Pull, "pull", challenge.as_deref())
            .await?;
        Ok(Some(Authorization {
            scheme,
            elapsed: t0.elapsed(),
        }))
    }

    /// Bytes `[range.start, range.end)` of a blob with one ranged GET, streamed
    /// and counted but not kept, timed to the first and the last byte; reading
    /// stops at `deadline` (`cut`). When `size` says the range is the whole
    /// blob and it arrives complete, its digest is checked (a mismatch is an
    /// error); a part is never verified. Status and `Content-Range` are checked
    /// as in [`RegistryClient::fetch_range`].
    pub async fn read_range_timed(
        &self,
        repo: &Repository,
        digest: &str,
        range: Range<u64>,
        size: u64,
        deadline: Instant,
    ) -> Result<RangeRead> {
        use super::blobs::header_value;
        repo.validate_digest(digest)?;
        let url = repo.blob_url(digest);
        let what = format!("bytes {}..{} of blob {digest}", range.start, range.end);
        let protocol = |detail: String| Error::Protocol {
            url: url.clone(),
            reference: repo.reference.clone(),
            detail,
        };
        if range.is_empty() || range.end > size {
            return Err(protocol(format!(
                "{what}: not a non-empty range of a {size}-byte blob"
            )));
        }
        let len = range.end - range.start;
        let spec = format!("bytes={}-{}", range.start, range.end - 1);
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, header_value(&spec));
        let t0 = Instant::now();
        let resp = self
            .send(
                Req {
                    repo,
                    op: Op::Pull,
                    kind: Kind::BlobGet,
                    what: &what,
                    method: Method::GET,
                    url: url.clone(),
                    headers,
                    body: Body::Empty,
                },
                self.inner.backoff.max_retries,
            )
            .await?;
        let mut resp = self
            .range_answer(repo, &url, &what, &spec, &range, resp)
            .await?;
        let whole = range.start == 0 && len == size;
        let mut digester = whole.then(|| Digester::for_digest(digest));
        let mut read = RangeRead {
            bytes: 0,
            first_chunk: 0,
            ttfb: None,
            elapsed: Duration::ZERO,
            cut: false,
            verified: false,
        };
        loop {
            let chunk = match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
                Err(_) => {
                    read.cut = true;
                    break;
                }
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    return Err(protocol(format!(
                        "{what}: the connection broke after {} of {len} bytes: {}",
                        read.bytes,
                        crate::error::error_chain(&e)
                    )));
                }
            };
            let n = chunk.len() as u64;
            self.inner.counters.add_received(n);
            if read.ttfb.is_none() {
                read.ttfb = Some(t0.elapsed());
                read.first_chunk = n;
            }
            read.bytes += n;
            if read.bytes > len {
                return Err(protocol(format!(
                    "{what}: the registry sent more than the {len} bytes asked for"
                )));
            }
            if let Some(d) = digester.as_mut() {
                d.update(&chunk);
            }
        }
        read.elapsed = t0.elapsed();
        if read.cut {
            // Dropping the response closes the connection: nothing more is read.
            return Ok(read);
        }
        if read.bytes != len {
            return Err(protocol(format!(
                "{what}: the body ended after {} of {len} bytes",
                read.bytes
            )));
        }
        if let Some(d) = digester {
            let actual = d.finish();
            if actual != digest {
                return Err(Error::DigestMismatch {
                    url,
                    reference: repo.reference.clone(),
                    what: format!("blob {digest}"),
                    expected: digest.to_string(),
                    actual,
                });
            }
            read.verified = true;
        }
        Ok(read)
    }
}
