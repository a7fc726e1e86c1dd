//! Image references, digests and registry URLs.
//!
//! Normalisation is containerd's (docker/reference): a bare name is
//! `docker.io/library/<name>:latest`, a first component with a `.` or `:` or
//! equal to `localhost` is a registry host. Parsing is oci-spec's
//! `distribution::Reference` (the one oci-client uses). Plain HTTP is chosen
//! as containerd's `docker.MatchLocalhost` does, or for every host with
//! `--plain-http`.
use super::error::{Error, Result};
use oci_spec::distribution::Reference;
use std::str::FromStr;

/// Hosts containerd treats as plain HTTP by default (`docker.MatchLocalhost`):
/// `localhost` and loopback IPs, with or without a port.
pub fn is_localhost(host_port: &str) -> bool {
    let host = host_port
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host_port);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A repository on a registry, from a parsed reference: what every request is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The reference as the user wrote it (for messages).
    pub reference: String,
    /// Registry host as normalised (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The host requests go to (`index.docker.io` for Docker Hub).
    pub api_host: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, when the reference has one and no digest.
    pub tag: Option<String>,
    /// Digest, when the reference pins one.
    pub digest: Option<String>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The API root's path on `api_host`: `/v2`, or a mirror's (`/proxy/v2`).
    pub api_path: String,
    /// Set when requests go to a mirror (hosts.toml): the registry the image
    /// belongs to, sent as `?ns=` as containerd does.
    pub ns: Option<String>,
    /// Whether a host was chosen for it from the hosts configuration (else
    /// it names the registry as parsed and is routed on first use).
    pub(crate) routed: bool,
    pub(crate) parsed: Reference,
}

impl Repository {
    /// Parse and normalise a reference; `plain_http` forces http for every host.
    pub fn parse(reference: &str, plain_http: bool) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: reference.to_string(),
            reason,
        };
        if reference.trim().is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let parsed = Reference::from_str(reference).map_err(|e| invalid(e.to_string()))?;
        if let Some(d) = parsed.digest() {
            check_digest(d).map_err(invalid)?;
        }
        check_repository(parsed.repository()).map_err(invalid)?;
        check_host_port(parsed.registry()).map_err(invalid)?;
        let registry = parsed.registry().to_string();
        let api_host = parsed.resolve_registry().to_string();
        let scheme = if plain_http || is_localhost(&api_host) {
            "http"
        } else {
            "https"
        };
        Ok(Repository {
            reference: reference.to_string(),
            registry,
            api_host,
            repository: parsed.repository().to_string(),
            tag: parsed.tag().map(str::to_string),
            digest: parsed.digest().map(str::to_string),
            scheme,
            api_path: "/v2".into(),
            ns: None,
            routed: false,
            parsed,
        })
    }

    /// The same repository as `endpoint` serves it (a mirror or the registry
    /// itself, from hosts.toml): requests go to its host and API path, with
    /// `?ns=<registry>` on a mirror; credentials are looked up for its host.
    pub(crate) fn at(&self, endpoint: &super::hosts::Endpoint) -> Repository {
        let mirror = endpoint.is_mirror_of(&self.registry);
        let mut r = self.clone();
        r.scheme = if endpoint.scheme == "http" {
            "http"
        } else {
            "https"
        };
        r.api_host = endpoint.host.clone();
        r.api_path = endpoint.path.trim_end_matches('/').to_string();
        r.ns = mirror.then(|| self.registry.clone());
        r.routed = true;
        if mirror {
            let (host, repo) = (endpoint.host.clone(), self.repository.clone());
            r.parsed = match (&self.digest, &self.tag) {
                (Some(d), _) => Reference::with_digest(host, repo, d.clone()),
                (None, t) => Reference::with_tag(host, repo, t.clone().unwrap_or("latest".into())),
            };
        }
        r
    }

    /// The host whose credentials requests carry: the registry's name, or a mirror's host.
    pub fn credentials_host(&self) -> &str {
        if self.ns.is_some() {
            &self.api_host
        } else {
            &self.registry
        }
    }

    /// `scheme://host` of the registry's API.
    pub fn registry_url(&self) -> String {
        format!("{}://{}", self.scheme, self.api_host)
    }

    /// The registry's API root, `scheme://host/v2/`.
    pub fn v2_url(&self) -> String {
        format!("{}{}/", self.registry_url(), self.api_path)
    }

    /// `…/v2/<repo>/<rest>`, with `?ns=` on a mirror.
    fn api_url(&self, rest: &str) -> String {
        let ns = self
            .ns
            .as_deref()
            .map(|n| format!("?ns={n}"))
            .unwrap_or_default();
        format!(
            "{}{}/{}/{rest}{ns}",
            self.registry_url(),
            self.api_path,
            self.repository
        )
    }

    /// `…/v2/<repo>/manifests/<tag or digest>`.
    pub fn manifest_url(&self, tag_or_digest: &str) -> String {
        self.api_url(&format!("manifests/{tag_or_digest}"))
    }

    /// `…/v2/<repo>/blobs/<digest>`.
    pub fn blob_url(&self, digest: &str) -> String {
        self.api_url(&format!("blobs/{digest}"))
    }

    /// `…/v2/<repo>/blobs/uploads/`.
    pub fn upload_url(&self) -> String {
        self.api_url("blobs/uploads/")
    }

    /// The tag or digest to ask for (`latest` when neither was given, as containerd).
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> Self {
        let mut r = self.clone();
        r.digest = Some(digest.to_string());
        r.parsed = self.parsed.clone_with_digest(digest.to_string());
        r
    }

    /// The oci-client view of this reference.
    pub(crate) fn oci(&self) -> &Reference {
        &self.parsed
    }

    /// An `InvalidDigest` error for `digest` on this repository, if it is malformed.
    pub fn validate_digest(&self, digest: &str) -> Result<()> {
        check_digest(digest).map_err(|reason| Error::InvalidDigest {
            registry_url: self.registry_url(),
            reference: self.reference.clone(),
            digest: digest.to_string(),
            reason,
        })
    }
}

/// A registry `host:port` whose port is a TCP port (1–65535): an HTTP client
/// fails on any other with a message that names neither (issue 17).
pub fn check_host_port(host_port: &str) -> std::result::Result<(), String> {
    let Some((_, port)) = host_port
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(':'))
    else {
        return Ok(());
    };
    if port.ends_with(']') {
        return Ok(()); // a bare IPv6 literal, no port
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!(
            "registry port `{port}` of `{host_port}` is not a TCP port (1-65535)"
        )),
    }
}

/// The distribution spec's repository name grammar: `/`-separated components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` (docker/reference rejects upper case too).
fn check_repository(name: &str) -> std::result::Result<(), String> {
    for comp in name.split('/') {
        let ok = !comp.is_empty()
            && comp
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            && comp.as_bytes()[0].is_ascii_alphanumeric()
            && comp.as_bytes()[comp.len() - 1].is_ascii_alphanumeric()
            && !comp.contains("..")
            && !comp.contains("___")
            && !comp.contains("._")
            && !comp.contains("_.")
            && !comp.contains(".-")
            && !comp.contains("-.")
            && !comp.contains("_-")
            && !comp.contains("-_");
        if !ok {
            return Err(format!(
                "repository component `{comp}` must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

/// Digests advisor accepts: `sha256:` + 64 or `sha512:` + 128 lowercase hex
/// digits (the OCI image-spec's registered algorithms). Checking before a digest
/// goes into a URL also keeps path tricks out of requests.
pub fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| "no `algorithm:` prefix".to_string())?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        other => return Err(format!("unsupported algorithm `{other}`")),
    };
    if hex.len() != want {
        return Err(format!("{alg} needs {want} hex digits, got {}", hex.len()));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("not lowercase hex".into());
    }
    Ok(())
}

/// Incremental digest of content, for the algorithms [`check_digest`] accepts.
pub enum Digester {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A digester for the algorithm of `digest` (which must pass [`check_digest`]).
    pub fn for_digest(digest: &str) -> Self {
        use sha2::Digest;
        if digest.starts_with("sha512:") {
            Digester::Sha512(sha2::Sha512::new())
        } else {
            Digester::Sha256(sha2::Sha256::new())
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> String {
        use sha2::Digest;
        match self {
            Digester::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Digester::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    let mut d = Digester::Sha256(Default::default());
    d.update(data);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_out_of_range_is_an_invalid_reference() {
        for r in [
            "127.0.0.1:99999/app:1",
            "localhost:0/app",
            "reg.example:65536/a/b",
        ] {
            let e = Repository::parse(r, false).unwrap_err().to_string();
            assert!(e.contains("is not a TCP port (1-65535)"), "{r}: {e}");
            assert!(e.contains(r), "{r}: {e}");
        }
        for r in ["127.0.0.1:65535/app:1", "localhost/app", "docker.io/x"] {
            assert!(Repository::parse(r, false).is_ok(), "{r}");
        }
        assert!(check_host_port("[::1]").is_ok());
    }

    #[test]
    fn localhost_detection_matches_containerd() {
        assert!(is_localhost("localhost:5000"));
        assert!(is_localhost("localhost"));
        assert!(is_localhost("127.0.0.1:5123"));
        assert!(is_localhost("127.1.2.3"));
        assert!(is_localhost("[::1]:5000"));
        assert!(!is_localhost("registry.example.com:5000"));
        assert!(!is_localhost("10.0.0.1:5000"));
        assert!(!is_localhost("localhost.example.com"));
    }

    #[test]
    fn references_normalise_like_containerd() {
        let r = Repository::parse("busybox", false).unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.api_host, "index.docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag_or_digest(), "latest");
        assert_eq!(r.scheme, "https");

        let r = Repository::parse("127.0.0.1:5133/advisor/app:esgz", false).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5133");
        assert_eq!(r.repository, "advisor/app");
        assert_eq!(r.tag.as_deref(), Some("esgz"));
        assert_eq!(r.scheme, "http");
        assert_eq!(
            r.blob_url("sha256:ab"),
            "http://127.0.0.1:5133/v2/advisor/app/blobs/sha256:ab"
        );

        let d = format!("sha256:{}", "a".repeat(64));
        let r = Repository::parse(&format!("registry.example.com/x@{d}"), false).unwrap();
        assert_eq!(r.scheme, "https");
        assert_eq!(r.tag_or_digest(), d);
        assert_eq!(
            r.manifest_url(r.tag_or_digest()),
            format!("https://registry.example.com/v2/x/manifests/{d}")
        );

        let r = Repository::parse("registry.example.com/x:1", true).unwrap();
        assert_eq!(r.scheme, "http", "--plain-http applies to every host");
    }

    /// A repository routed to a mirror (hosts.toml): its host, API path and
    /// `?ns=`; routed to the registry's own server: no `ns`.
    #[test]
    fn routes_address_the_mirror_with_its_path_and_ns() {
        use crate::registry::hosts::{Capabilities, Endpoint};
        let ep = |scheme: &str, host: &str, path: &str| Endpoint {
            scheme: scheme.into(),
            host: host.into(),
            path: path.into(),
            capabilities: Capabilities {
                pull: true,
                resolve: true,
                push: false,
            },
            ca: vec![],
            client: vec![],
            skip_verify: None,
            headers: vec![],
        };
        let r = Repository::parse("busybox:1.36", false).unwrap();
        let m = r.at(&ep("https", "mirror.local:5000", "/proxy/v2"));
        assert_eq!(
            m.manifest_url("1.36"),
            "https://mirror.local:5000/proxy/v2/library/busybox/manifests/1.36?ns=docker.io"
        );
        assert_eq!(m.v2_url(), "https://mirror.local:5000/proxy/v2/");
        assert_eq!(m.credentials_host(), "mirror.local:5000");
        assert_eq!(m.oci().registry(), "mirror.local:5000");
        assert_eq!(m.registry, "docker.io", "still the image's registry");
        let own = r.at(&ep("https", "registry-1.docker.io", "/v2"));
        assert_eq!(own.ns, None);
        assert_eq!(own.credentials_host(), "docker.io");
        assert_eq!(
            own.blob_url("sha256:ab"),
            "https://registry-1.docker.io/v2/library/busybox/blobs/sha256:ab"
        );
    }

    #[test]
    fn bad_references_and_digests_are_rejected() {
        for bad in ["", "UPPER/case", "a/b:tag with space", "x@sha256:short"] {
            let e = Repository::parse(bad, false).unwrap_err();
            assert!(matches!(e, Error::InvalidReference { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("expected [registry/]"), "{e}");
        }
        assert!(check_digest(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(check_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(check_digest(&format!("md5:{}", "0".repeat(32))).is_err());
        assert!(check_digest("sha256:../../etc").is_err());
    }

    #[test]
    fn digester_matches_known_vectors() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut d = Digester::for_digest(&format!("sha512:{}", "0".repeat(128)));
        d.update(b"abc");
        assert!(d.finish().starts_with("sha512:ddaf35a193617aba"));
    }
}
