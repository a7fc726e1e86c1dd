//! The HTTP layer under the client: one place that sends a request with the
//! right credentials, retries what is worth retrying, counts requests and body
//! bytes, and turns failures into [`Error`]s naming the registry and reference.
//!
//! Every request goes through [`RegistryClient::send`] on advisor's own
//! reqwest client, one per host with that host's TLS settings (oci-client
//! cannot count bytes, honour `Retry-After`, replay an upload from a file or
//! address a mirror's path; see docs/registry.md). Bearer tokens come from
//! oci-client's token flow ([`oci_client::Client::auth`]).
use super::error::{Error, Result};
use super::reference::Repository;
use super::retry;
use super::{Inner, Kind, RegistryClient};
use crate::registry::auth::Credentials;
use oci_client::RegistryOperation;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How much of an error body goes into a message.
const ERROR_BODY_LIMIT: usize = 1024;

/// Per-registry state: the oci-client instance (auth store, token cache), the
/// credentials and the `Authorization` headers the blob path has earned.
pub(super) struct RegistryState {
    pub oci: oci_client::Client,
    pub creds: Credentials,
    /// The HTTP client for this host: its CAs, client certificate, `skip_verify`.
    pub http: reqwest::Client,
    /// Headers hosts.toml adds to every request to this host.
    pub extra: HeaderMap,
    /// `Authorization: Bearer` from ADVISOR_REGISTRY_TOKEN, built once.
    bearer: Option<HeaderValue>,
    headers: Mutex<HashMap<(String, Op), HeaderValue>>,
}

/// The scope a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Op {
    Pull,
    Push,
}

impl From<Op> for RegistryOperation {
    fn from(op: Op) -> Self {
        match op {
            Op::Pull => RegistryOperation::Pull,
            Op::Push => RegistryOperation::Push,
        }
    }
}

impl RegistryState {
    pub(super) fn header(&self, repo: &str, op: Op) -> Option<HeaderValue> {
        if self.bearer.is_some() {
            return self.bearer.clone();
        }
        let map = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(repo.to_string(), op))
            .or_else(|| {
                // A push token's scope (pull,push) covers pulls.
                (op == Op::Pull)
                    .then(|| map.get(&(repo.to_string(), Op::Push)))
                    .flatten()
            })
            .cloned()
    }

    fn set_header(&self, repo: &str, op: Op, v: HeaderValue) {
        self.headers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((repo.to_string(), op), v);
    }
}

/// A request body that can be produced again for a retry (bytes), or once (a stream).
pub(super) enum Body {
    Empty,
    Bytes(bytes::Bytes),
    Once(Option<reqwest::Body>),
}

impl Body {
    fn next(&mut self) -> Option<(reqwest::Body, u64)> {
        match self {
            Body::Empty => None,
            Body::Bytes(b) => Some((reqwest::Body::from(b.clone()), b.len() as u64)),
            // The stream counts its own bytes as it goes.
            Body::Once(b) => b.take().map(|b| (b, 0)),
        }
    }

    fn replayable(&self) -> bool {
        !matches!(self, Body::Once(_))
    }
}

/// One request to send.
pub(super) struct Req<'a> {
    pub repo: &'a Repository,
    pub op: Op,
    pub kind: Kind,
    /// What is asked for, for messages ("blob sha256:…", "upload").
    pub what: &'a str,
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Body,
}

impl RegistryClient {
    /// The state for the host a repository's requests go to, created on first use.
    pub(super) async fn state(&self, repo: &Repository) -> Result<Arc<RegistryState>> {
        let key = super::route::host_key(repo.scheme, &repo.api_host);
        if let Some(s) = self.lock_states().get(&key) {
            return Ok(s.clone());
        }
        let inner: &Inner = &self.inner;
        // A credential helper is a subprocess: keep it off the async workers.
        let (registry, token, env, dir) = (
            repo.credentials_host().to_string(),
            inner.opts.token.clone(),
            inner.opts.credentials.clone(),
            inner.opts.docker_config_dir.clone(),
        );
        let creds = tokio::task::spawn_blocking(move || {
            Credentials::lookup(&registry, token.as_ref(), env.as_ref(), dir.as_deref())
        })
        .await
        .map_err(|e| Error::Internal {
            detail: format!("credential lookup task failed: {e}"),
        })??;
        // A client that has not routed this registry yet (a probe's extra
        // streams) reads its hosts now: the host's TLS settings live there.
        if self.endpoint_for(&key).is_none() {
            self.hosts(&repo.registry)?;
        }
        let endpoint = self.endpoint_for(&key);
        let tls = super::tls::Tls::load(&inner.opts.ca_certs, endpoint.as_deref())?;
        let http = tls.client(&inner.opts)?;
        let config = oci_client::client::ClientConfig {
            protocol: if repo.scheme == "http" {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            connect_timeout: Some(inner.opts.connect_timeout),
            read_timeout: Some(inner.opts.read_timeout),
            user_agent: inner.user_agent,
            // advisor resolves indexes itself (containerd's rules, oci-spec types).
            platform_resolver: None,
            accept_invalid_certificates: tls.skip_verify,
            extra_root_certificates: tls.oci_roots(),
            ..Default::default()
        };
        let oci = oci_client::Client::try_from(config).map_err(|e| Error::Internal {
            detail: format!("oci-client: {e}"),
        })?;
        oci.store_auth_if_needed(&repo.api_host, &creds.registry_auth())
            .await;
        // The token's characters were checked at lookup: it is a valid header.
        let bearer = creds.token.as_ref().and_then(|t| {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose())).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        let state = Arc::new(RegistryState {
            oci,
            bearer,
            creds,
            http,
            extra: tls.headers,
            headers: Mutex::new(HashMap::new()),
        });
        Ok(self
            .lock_states()
            .entry(key)
            .or_insert_with(|| state)
            .clone())
    }

    fn lock_states(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RegistryState>>> {
        self.inner
            .registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Send a request: credentials, retries (connection errors, 5xx, 429 with
    /// `Retry-After`), one re-authentication on 401, counters. Returns any
    /// other response for the caller to interpret (see [`Self::failure`]).
    pub(super) async fn send(&self, mut req: Req<'_>, max_retries: u32) -> Result<Response> {
        let st = self.state(req.repo).await?;
        let same_host = same_registry(&req.url, req.repo);
        let max_retries = if req.body.replayable() {
            max_retries
        } else {
            0
        };
        let mut retry = 0u32;
        let mut reauthed = false;
        loop {
            let mut rb = st
                .http
                .request(req.method.clone(), &req.url)
                .headers(st.extra.clone())
                .headers(req.headers.clone());
            // Credentials go only to the registry itself, never to another host a
            // Location header points at (distribution spec; CVE-2020-15157).
            if same_host && let Some(h) = st.header(&req.repo.repository, req.op) {
                rb = rb.header(AUTHORIZATION, h);
            }
            if let Some((body, len)) = req.body.next() {
                self.inner.counters.add_sent(len);
                rb = rb.body(body);
            }
            self.inner.counters.count(req.kind);
            let outcome = rb.send().await;
            let (delay_hint, last) = match outcome {
                Err(e) => {
                    if !(retry::retryable_error(&e) && retry < max_retries) {
                        return Err(self.transport_error(&req, &e, retry));
                    }
                    (None, crate::error::error_chain(&e))
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && same_host && !reauthed => {
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    self.drain(resp).await;
                    reauthed = true;
                    self.authorize(&st, req.repo, req.op, req.what, challenge.as_deref())
                        .await?;
                    if !req.body.replayable() {
                        return Err(Error::Unauthorized {
                            registry_url: req.repo.registry_url(),
                            reference: req.repo.reference.clone(),
                            what: req.what.to_string(),
                            credentials: st.creds.origin.clone(),
                            detail: "the registry asked for credentials in the middle of an upload"
                                .into(),
                        });
                    }
                    continue;
                }
                Ok(resp) if retry::retryable_status(resp.status()) => {
                    let status = resp.status();
                    let hint = retry::retry_after(resp.headers());
                    if retry >= max_retries {
                        let detail = self.body_snippet(resp).await;
                        return Err(Error::TooManyRetries {
                            url: req.url.clone(),
                            reference: req.repo.reference.clone(),
                            attempts: retry + 1,
                            last: format!("{status}{detail}"),
                        });
                    }
                    self.drain(resp).await;
                    (hint, status.to_string())
                }
                Ok(resp) => return Ok(resp),
            };
            let wait = self.inner.backoff.delay(retry, delay_hint);
            tracing::info!(
                "{} {} for {}: {last}; retry {} of {max_retries} in {wait:?}",
                req.method,
                req.url,
                req.repo.reference,
                retry + 1
            );
            retry += 1;
            self.inner.counters.count_retry();
            tokio::time::sleep(wait).await;
        }
    }

    /// Earn an `Authorization` header after a 401 with `challenge`.
    pub(super) async fn authorize(
        &self,
        st: &RegistryState,
        repo: &Repository,
        op: Op,
        what: &str,
        challenge: Option<&str>,
    ) -> Result<()> {
        let unauthorized = |detail: String| Error::Unauthorized {
            registry_url: repo.registry_url(),
            reference: repo.reference.clone(),
            what: what.to_string(),
            credentials: st.creds.origin.clone(),
            detail,
        };
        if st.creds.token.is_some() {
            return Err(unauthorized(format!(
                "the registry refused the bearer token from {}",
                super::auth::ENV_TOKEN
            )));
        }
        let scheme = challenge
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("")
            .to_ascii_lowercase();
        match scheme.as_str() {
            "bearer" => {
                // oci-client's token flow: GET /v2/, parse the challenge, GET the
                // realm with scope and service (Basic credentials when we have them).
                self.inner.counters.count(Kind::Auth);
                match st
                    .oci
                    .auth(repo.oci(), &st.creds.registry_auth(), op.into())
                    .await
                {
                    Ok(Some(token)) => {
                        let mut v =
                            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                                unauthorized("the token endpoint returned a token that is not a valid header value".into())
                            })?;
                        v.set_sensitive(true);
                        st.set_header(&repo.repository, op, v);
                        Ok(())
                    }
                    Ok(None) => Err(unauthorized(
                        "401 with a Bearer challenge, but the registry's /v2/ endpoint offers no token service".into(),
                    )),
                    Err(e) => Err(self.oci_error(st, repo, what, &repo.v2_url(), e, 0)),
                }
            }
            "basic" => match &st.creds.basic {
                Some(b) => {
                    use base64::Engine;
                    let raw = format!("{}:{}", b.username, b.password.expose());
                    let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                    let mut v = HeaderValue::from_str(&format!("Basic {enc}")).map_err(|_| {
                        unauthorized("the user name or password is not a valid header value".into())
                    })?;
                    v.set_sensitive(true);
                    st.set_header(&repo.repository, op, v);
                    Ok(())
                }
                None => Err(unauthorized(
                    "the registry wants a user name and password (Basic auth)".into(),
                )),
            },
            _ => Err(unauthorized(format!(
                "401 without a challenge advisor supports (WWW-Authenticate: {})",
                challenge.unwrap_or("none")
            ))),
        }
    }

    /// Map an oci-client error to ours.
    fn oci_error(
        &self,
        st: &RegistryState,
        repo: &Repository,
        what: &str,
        url: &str,
        e: OciDistributionError,
        retries: u32,
    ) -> Error {
        use OciDistributionError as O;
        let unauthorized = |detail: String| Error::Unauthorized {
            registry_url: repo.registry_url(),
            reference: repo.reference.clone(),
            what: what.to_string(),
            credentials: st.creds.origin.clone(),
            detail,
        };
        let not_found = || Error::NotFound {
            url: url.to_string(),
            reference: repo.reference.clone(),
            what: what.to_string(),
        };
        let protocol = |detail: String| Error::Protocol {
            url: url.to_string(),
            reference: repo.reference.clone(),
            detail,
        };
        let too_many = |last: String| Error::TooManyRetries {
            url: url.to_string(),
            reference: repo.reference.clone(),
            attempts: retries + 1,
            last,
        };
        match e {
            O::RequestError(re) if re.is_connect() => Error::connect(
                repo.v2_url(),
                repo.reference.clone(),
                crate::error::error_chain(&re),
            ),
            O::RequestError(re) if retries > 0 => too_many(crate::error::error_chain(&re)),
            O::RequestError(re) => protocol(crate::error::error_chain(&re)),
            O::UnauthorizedError { url } => unauthorized(format!("401 from {url}")),
            O::AuthenticationFailure(reason) => unauthorized(format!(
                "the token endpoint refused the credentials: {}",
                truncate(&reason)
            )),
            O::RegistryError { envelope, url: u } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text = truncate(&envelope.to_string());
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    not_found()
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(format!("{u}: {text}"))
                } else if codes.contains(&&OciErrorCode::Toomanyrequests) {
                    too_many(text)
                } else if codes.contains(&&OciErrorCode::DigestInvalid) {
                    Error::DigestMismatch {
                        url: u,
                        reference: repo.reference.clone(),
                        what: what.to_string(),
                        expected: "the digest given".into(),
                        actual: format!("content the registry rejected: {text}"),
                    }
                } else {
                    protocol(format!("{u}: {text}"))
                }
            }
            O::ServerError {
                code,
                url: u,
                message,
            } => match code {
                404 => not_found(),
                401 | 403 => unauthorized(format!("{code} from {u}")),
                429 | 500..=599 => too_many(format!("{code} {}", truncate(&message))),
                _ => protocol(format!("{code} from {u}: {}", truncate(&message))),
            },
            O::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => Error::DigestMismatch {
                url: url.to_string(),
                reference: repo.reference.clone(),
                what: what.to_string(),
                expected,
                actual,
            },
            other => protocol(other.to_string()),
        }
    }

    fn transport_error(&self, req: &Req<'_>, e: &reqwest::Error, retries: u32) -> Error {
        if e.is_connect() {
            Error::connect(
                req.repo.v2_url(),
                req.repo.reference.clone(),
                crate::error::error_chain(e),
            )
        } else if req.repo.scheme == "https" && refused_after_handshake(e) {
            // TLS 1.3: a server refusing the client's certificate (or its
            // absence) sends an alert or closes the connection after the
            // client's side of the handshake completed.
            Error::Tls {
                url: req.url.clone(),
                reference: req.repo.reference.clone(),
                detail: format!(
                    "the server refused or closed the connection after the TLS handshake, {} time(s) ({}): \
                     a registry that requires a client certificate does this",
                    retries + 1,
                    crate::error::error_chain(e)
                ),
            }
        } else if retries > 0 || retry::retryable_error(e) {
            Error::TooManyRetries {
                url: req.url.clone(),
                reference: req.repo.reference.clone(),
                attempts: retries + 1,
                last: crate::error::error_chain(e),
            }
        } else {
            Error::Protocol {
                url: req.url.clone(),
                reference: req.repo.reference.clone(),
                detail: crate::error::error_chain(e),
            }
        }
    }

    /// The error for a response the caller did not expect.
    pub(super) async fn failure(&self, req_repo: &Repository, what: &str, resp: Response) -> Error {
        let url = resp.url().to_string();
        let status = resp.status();
        match status {
            StatusCode::NOT_FOUND => {
                self.drain(resp).await;
                Error::NotFound {
                    url,
                    reference: req_repo.reference.clone(),
                    what: what.to_string(),
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let detail = self.body_snippet(resp).await;
                let credentials = match self.state(req_repo).await {
                    Ok(st) => st.creds.origin.clone(),
                    Err(_) => "unknown".into(),
                };
                Error::Unauthorized {
                    registry_url: req_repo.registry_url(),
                    reference: req_repo.reference.clone(),
                    what: what.to_string(),
                    credentials,
                    detail: format!("{status}{detail}"),
                }
            }
            _ => {
                let detail = self.body_snippet(resp).await;
                Error::Protocol {
                    url,
                    reference: req_repo.reference.clone(),
                    detail: format!("unexpected {status} for {what}{detail}"),
                }
            }
        }
    }

    /// The start of an error body, counted, for a message (": …" or "").
    async fn body_snippet(&self, mut resp: Response) -> String {
        let mut buf = Vec::new();
        while buf.len() < ERROR_BODY_LIMIT {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    self.inner.counters.add_received(c.len() as u64);
                    buf.extend_from_slice(&c);
                }
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&buf[..buf.len().min(ERROR_BODY_LIMIT)]);
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    }

    /// A whole body of at most `max` bytes, counted as it arrives.
    pub(super) async fn read_limited(
        &self,
        mut resp: Response,
        max: u64,
    ) -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    self.inner.counters.add_received(c.len() as u64);
                    if (out.len() + c.len()) as u64 > max {
                        return Err(format!("over the {max}-byte limit"));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    return Err(format!(
                        "the connection broke after {} bytes: {}",
                        out.len(),
                        crate::error::error_chain(&e)
                    ));
                }
            }
        }
    }

    /// Read and count a small response body we do not need (keeps the connection reusable).
    pub(super) async fn drain(&self, mut resp: Response) {
        let mut n = 0usize;
        while n < ERROR_BODY_LIMIT * 4 {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    n += c.len();
                    self.inner.counters.add_received(c.len() as u64);
                }
                _ => break,
            }
        }
    }
}

/// A TLS alert or a connection closed as the first request went out: how a
/// server that wants a client certificate answers under TLS 1.3.
fn refused_after_handshake(e: &reqwest::Error) -> bool {
    closed_after_handshake(&crate::error::error_chain(e))
}

/// Whether an error chain reads as the server closing the connection: an
/// alert, a closed channel, or (when the request was written into the
/// closing connection) a broken pipe or a reset.
fn closed_after_handshake(chain: &str) -> bool {
    let chain = chain.to_ascii_lowercase();
    [
        "alert",
        "channel closed",
        "connection closed",
        "broken pipe",
        "connection reset",
    ]
    .iter()
    .any(|w| chain.contains(w))
}

/// Whether `url` is on the repository's registry (same scheme, host and port).
fn same_registry(url: &str, repo: &Repository) -> bool {
    let (Ok(target), Ok(base)) = (
        reqwest::Url::parse(url),
        reqwest::Url::parse(&repo.registry_url()),
    ) else {
        return false;
    };
    target.scheme() == base.scheme()
        && target.host_str() == base.host_str()
        && target.port_or_known_default() == base.port_or_known_default()
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_closed_by_the_server_reads_as_refused_after_the_handshake() {
        // The ways hyper reports a TLS 1.3 server refusing a missing client
        // certificate, depending on when the request hit the closed socket.
        for chain in [
            "client error (SendRequest): connection error: received fatal alert: CertificateRequired",
            "client error (SendRequest): connection error: stream closed because of a broken pipe",
            "client error (SendRequest): connection closed before message completed",
            "client error (SendRequest): Connection reset by peer (os error 104)",
            "client error (SendRequest): channel closed",
        ] {
            assert!(closed_after_handshake(chain), "{chain}");
        }
        for chain in [
            "client error (SendRequest): operation timed out",
            "error decoding response body",
        ] {
            assert!(!closed_after_handshake(chain), "{chain}");
        }
    }

    #[test]
    fn credentials_stay_on_the_registry_host() {
        let repo = Repository::parse("127.0.0.1:5000/a/b:t", false).unwrap();
        assert!(same_registry(
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/x?_state=1",
            &repo
        ));
        assert!(!same_registry("http://127.0.0.1:5001/upload", &repo));
        assert!(!same_registry("http://storage.example.com/upload", &repo));
        let tls = Repository::parse("reg.example.com/a:t", false).unwrap();
        assert!(same_registry("https://reg.example.com:443/v2/a", &tls));
        assert!(
            !same_registry("http://reg.example.com/v2/a", &tls),
            "no downgrade to http"
        );
    }
}
