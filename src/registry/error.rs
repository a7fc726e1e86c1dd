//! Typed registry errors. Every variant names the registry URL and the image
//! reference (or blob digest) it concerns, and says what to do; none ever
//! carries a password or token (credentials are described by their source only).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid image reference `{reference}`: {reason}; expected [registry/]repository[:tag][@sha256:<digest>], e.g. 127.0.0.1:5000/app:esgz"
    )]
    InvalidReference { reference: String, reason: String },

    #[error(
        "invalid digest `{digest}` for {reference} at {registry_url}: {reason}; expected sha256:<64 lowercase hex digits>"
    )]
    InvalidDigest {
        registry_url: String,
        reference: String,
        digest: String,
        reason: String,
    },

    #[error(
        "cannot reach {url} (for {reference}): {detail}; is the registry running? a plain-HTTP registry needs --plain-http"
    )]
    Unreachable {
        url: String,
        reference: String,
        detail: String,
    },

    #[error(
        "TLS to {url} failed (for {reference}): {detail}; trust the registry's CA with --ca-cert FILE or `ca` in \
         <hosts-dir>/<host>/hosts.toml (--hosts-dir, default /etc/containerd/certs.d); a registry that wants a \
         client certificate needs `client` there"
    )]
    Tls {
        url: String,
        reference: String,
        detail: String,
    },

    #[error(
        "{registry_url} refused {what} of {reference}: {detail}; credentials tried: {credentials}. \
         Set ADVISOR_REGISTRY_USER and ADVISOR_REGISTRY_PASSWORD, ADVISOR_REGISTRY_TOKEN (a bearer token), \
         or `docker login` (~/.docker/config.json or $DOCKER_CONFIG)"
    )]
    Unauthorized {
        registry_url: String,
        reference: String,
        what: String,
        credentials: String,
        detail: String,
    },

    #[error(
        "{what} not found at {url} (image {reference}): check the reference and that the image was pushed"
    )]
    NotFound {
        url: String,
        reference: String,
        what: String,
    },

    #[error(
        "digest mismatch for {what} of {reference} from {url}: expected {expected}, got {actual}; the content is not what was asked for"
    )]
    DigestMismatch {
        url: String,
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error(
        "size mismatch for {what} of {reference} from {url}: expected {expected} bytes, got {actual}"
    )]
    SizeMismatch {
        url: String,
        reference: String,
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "{url} ignored the Range header for bytes {start}..{end} of {reference}: it answered 200 with the whole blob{whole}; \
         stopped without downloading it. advisor (like the stargz snapshotter) needs a registry that serves ranged GETs"
    )]
    RangeIgnored {
        url: String,
        reference: String,
        start: u64,
        end: u64,
        /// ", N bytes" when the server said how big the blob is.
        whole: String,
    },

    #[error(
        "bytes {start}..{end} are outside the blob at {url} ({reference}): the registry answered 416; the blob is smaller"
    )]
    RangeNotSatisfiable {
        url: String,
        reference: String,
        start: u64,
        end: u64,
    },

    #[error(
        "{url} kept failing for {reference}: {attempts} attempts, the last: {last}; the registry is overloaded or broken, try again later"
    )]
    TooManyRetries {
        url: String,
        reference: String,
        attempts: u32,
        last: String,
    },

    #[error(
        "{reference} at {url} has no manifest for platform {platform} (it has: {available}); use an image built for {platform}"
    )]
    NoMatchingPlatform {
        url: String,
        reference: String,
        platform: String,
        available: String,
    },

    #[error("registry protocol error from {url} ({reference}): {detail}")]
    Protocol {
        url: String,
        reference: String,
        detail: String,
    },

    #[error("credentials for {registry} from {origin}: {detail}")]
    Credentials {
        registry: String,
        origin: String,
        detail: String,
    },

    #[error("{op} {} (for {reference}): {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        reference: String,
        source: std::io::Error,
    },

    /// The registry host configuration (`--hosts-dir`, hosts.toml, `--ca-cert`)
    /// cannot be used; `detail` names the file and the fix.
    #[error("registry hosts: {detail}")]
    Hosts { detail: String },

    /// advisor could not set itself up (e.g. build the HTTP client): a bug or a broken host.
    #[error("registry client setup failed: {detail}")]
    Internal { detail: String },
}

impl Error {
    /// Whether the user (or their environment: registry, network, files) can fix this.
    pub fn is_user_facing(&self) -> bool {
        !matches!(self, Error::Internal { .. })
    }
}

impl Error {
    /// A connection that failed: [`Error::Tls`] when the TLS handshake did
    /// (an untrusted certificate, a client certificate refused), else
    /// [`Error::Unreachable`].
    pub fn connect(url: String, reference: String, detail: String) -> Error {
        let d = detail.to_ascii_lowercase();
        if ["certificate", "tls", "handshake", "alert"]
            .iter()
            .any(|w| d.contains(w))
        {
            Error::Tls {
                url,
                reference,
                detail,
            }
        } else {
            Error::Unreachable {
                url,
                reference,
                detail,
            }
        }
    }

    /// Whether another host (a mirror's registry, the next mirror) may do
    /// better: containerd moves on after any failed request; content that
    /// arrived wrong, bad input and a broken configuration stop at once.
    pub fn tries_next_host(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Tls { .. }
                | Error::Unauthorized { .. }
                | Error::NotFound { .. }
                | Error::TooManyRetries { .. }
                | Error::Protocol { .. }
                | Error::RangeIgnored { .. }
                | Error::NoMatchingPlatform { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;
