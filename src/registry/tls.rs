//! One registry host's HTTP client settings: the system's roots plus
//! `--ca-cert` and hosts.toml's `ca`, hosts.toml's client certificate and
//! `skip_verify`, and its extra headers — read from disk once per host.
use super::RegistryOptions;
use super::error::{Error, Result};
use super::hosts::Endpoint;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::path::{Path, PathBuf};

pub(super) struct Tls {
    /// Extra trusted CAs: each file's certificates and its PEM (for oci-client).
    roots: Vec<(Vec<reqwest::Certificate>, Vec<u8>)>,
    /// A client certificate and key (PEM, concatenated) and where it came from.
    identity: Option<(PathBuf, reqwest::Identity)>,
    pub skip_verify: bool,
    pub headers: HeaderMap,
}

impl Tls {
    /// The settings for a host: `global_ca` (`--ca-cert`) for every host, the
    /// rest from its hosts.toml entry, if it has one.
    pub fn load(global_ca: &[PathBuf], ep: Option<&Endpoint>) -> Result<Tls> {
        let host = ep.map_or("every registry".to_string(), |e| e.host.clone());
        let mut roots = Vec::new();
        for (path, origin) in global_ca
            .iter()
            .map(|p| (p, "--ca-cert"))
            .chain(ep.into_iter().flat_map(|e| e.ca.iter().map(|p| (p, "ca"))))
        {
            let pem = read(path, origin, &host)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    hosts_error(format!(
                        "{origin} file {} for {host} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        path.display()
                    ))
                })?;
            roots.push((certs, pem));
        }
        let identity = match ep.and_then(|e| e.client.first()) {
            None => None,
            Some((cert, key)) => Some((cert.clone(), identity(cert, key.as_deref(), &host)?)),
        };
        let headers = match ep {
            Some(e) => headers(&e.headers, &host)?,
            None => HeaderMap::new(),
        };
        Ok(Tls {
            roots,
            identity,
            skip_verify: ep.and_then(|e| e.skip_verify).unwrap_or(false),
            headers,
        })
    }

    /// The HTTP client for the host.
    pub fn client(&self, opts: &RegistryOptions) -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .tls_certs_merge(self.roots.iter().flat_map(|(c, _)| c.iter().cloned()))
            .danger_accept_invalid_certs(self.skip_verify);
        if let Some((_, id)) = &self.identity {
            b = b.identity(id.clone());
        }
        b.build().map_err(|e| {
            let detail = crate::error::error_chain(&e);
            match &self.identity {
                Some((p, _)) => hosts_error(format!(
                    "the client certificate {} cannot be used: {detail}",
                    p.display()
                )),
                None => Error::Internal {
                    detail: format!("cannot build the HTTP client: {detail}"),
                },
            }
        })
    }

    /// The extra roots for oci-client (its token requests).
    pub fn oci_roots(&self) -> Vec<oci_client::client::Certificate> {
        self.roots
            .iter()
            .map(|(_, pem)| oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect()
    }
}

fn hosts_error(detail: String) -> Error {
    Error::Hosts { detail }
}

fn read(path: &Path, origin: &str, host: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        hosts_error(format!(
            "cannot read the {origin} file {} for {host}: {e}; fix the path (hosts.toml paths are relative to its directory)",
            path.display()
        ))
    })
}

/// A client certificate with its key (from `key`, or from the certificate file).
fn identity(cert: &Path, key: Option<&Path>, host: &str) -> Result<reqwest::Identity> {
    let mut pem = read(cert, "client", host)?;
    if let Some(k) = key {
        pem.push(b'\n');
        pem.extend(read(k, "client key", host)?);
    }
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        let (with, hint) = match key {
            Some(k) => (format!(" with key {}", k.display()), ""),
            None => (
                String::new(),
                "; a `client` file without a key must hold the key too (containerd's rule): \
                 give the key as a pair, client = [[\"cert.pem\", \"key.pem\"]]",
            ),
        };
        hosts_error(format!(
            "client certificate {}{with} for {host} is not a PEM certificate and private key: {}{hint}",
            cert.display(),
            crate::error::error_chain(&e)
        ))
    })
}

fn headers(list: &[(String, String)], host: &str) -> Result<HeaderMap> {
    let mut out = HeaderMap::new();
    for (k, v) in list {
        let bad = || {
            hosts_error(format!(
                "header `{k}` for {host} is not a valid HTTP header"
            ))
        };
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(v).map_err(|_| bad())?;
        // It may be a credential: never in a Debug print.
        value.set_sensitive(true);
        out.append(name, value);
    }
    Ok(out)
}
