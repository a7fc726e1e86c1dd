//! Registry host configuration: containerd's `certs.d` directories and `hosts.toml`.
//!
//! Follows containerd v1.6 `remotes/docker/config` (v1.6.20: `hosts.go`,
//! `config_unix.go`) as `ctr --hosts-dir <root>` uses it. For a registry
//! `host[:port]` the directory is the first that exists of
//! `<root>/host_port_` (only when the name has a port), `<root>/host:port` and
//! `<root>/_default`. In it, a non-empty `hosts.toml` lists mirrors
//! (`[host."URL"]` tables, in file order) and then the registry's own server;
//! without one, Docker-style certificate files (`*.crt` CAs, `*.cert` client
//! certificates with an optional same-stem `*.key`) configure the registry's
//! default endpoint. No directory means containerd's defaults.
//!
//! Where containerd silently ignores a `hosts.toml` it cannot use (it logs the
//! error and falls back to the certificate files), this module returns a
//! [`HostsError`] instead, so a broken mirror configuration is never mistaken
//! for a working one. Certificate files are not read here.
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What a host may be used for (containerd's HostCapabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    pub pull: bool,
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    const ALL: Self = Self {
        pull: true,
        resolve: true,
        push: true,
    };
    const NONE: Self = Self {
        pull: false,
        resolve: false,
        push: false,
    };
}

/// One endpoint a registry name resolves to, in the order containerd tries them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Endpoint {
    /// "http" or "https".
    pub scheme: String,
    /// host[:port] requests go to.
    pub host: String,
    /// API root path: "/v2", or a mirror's path ("/proxy/v2"), or with
    /// override_path exactly as written (cleaned, no trailing slash; "/" when
    /// the URL has no path).
    pub path: String,
    pub capabilities: Capabilities,
    /// CA certificate files (relative ones joined to the host directory as containerd does).
    pub ca: Vec<PathBuf>,
    /// Client certificate and key files; key None = the key is in the certificate file.
    pub client: Vec<(PathBuf, Option<PathBuf>)>,
    /// None = not set (default verification).
    pub skip_verify: Option<bool>,
    /// Extra headers, keys sorted by name, one pair per value (an array gives
    /// several pairs for its key, in array order).
    pub headers: Vec<(String, String)>,
}

impl Endpoint {
    /// `scheme://host` + path, e.g. "https://mirror.example.com/v2".
    pub fn api_root(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }

    /// containerd's isProxy: true when this host is not the reference's own registry host
    /// (`registry` as normalised, e.g. "docker.io" whose own host is registry-1.docker.io):
    /// requests then carry `?ns=<registry>`.
    pub fn is_mirror_of(&self, registry: &str) -> bool {
        registry != self.host && !(registry == "docker.io" && self.host == DOCKER_HUB_HOST)
    }

    /// An entry whose host containerd fills in with its defaults.
    fn unset() -> Self {
        Self {
            scheme: String::new(),
            host: String::new(),
            path: String::new(),
            capabilities: Capabilities::ALL,
            ca: Vec::new(),
            client: Vec::new(),
            skip_verify: None,
            headers: Vec::new(),
        }
    }
}

/// Where the endpoints for one registry came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Source {
    /// No hosts directory, or none for this registry: containerd's defaults.
    Default,
    /// `<dir>/hosts.toml`.
    HostsToml(PathBuf),
    /// A directory of Docker-style certificate files (.crt, .cert, .key) without hosts.toml.
    CertFiles(PathBuf),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hosts {
    pub registry: String,
    pub source: Source,
    pub endpoints: Vec<Endpoint>,
}

/// A hosts directory that cannot be used. Every message names the file and says how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostsError {
    #[error("cannot read {}: {error}; make it readable by advisor (and containerd) or remove it", .path.display())]
    Unreadable { path: PathBuf, error: String },

    #[error("{}{}: invalid TOML: {message}; {IGNORED}", .path.display(), position(.line_col))]
    Toml {
        path: PathBuf,
        /// 1-based line and column, when the parser reports where.
        line_col: Option<(usize, usize)>,
        message: String,
    },

    #[error(
        "{}: no [host.\"URL\"] table; containerd v1.6 cannot read a hosts.toml without one and \
         ignores the whole file (its server, CAs and client certificates are not used); \
         move `server` into a [host.\"URL\"] table or add an empty `[host]` table",
        .path.display()
    )]
    NoHostTable { path: PathBuf },

    #[error(
        "{}:{line}: unknown capability \"{value}\" for {host}; use \"pull\", \"resolve\" or \"push\"; {IGNORED}",
        .path.display()
    )]
    UnknownCapability {
        path: PathBuf,
        line: usize,
        host: String,
        value: String,
    },

    #[error(
        "{}:{line}: `{key}` for {host} is a TOML {found}, expected {expected}; {IGNORED}",
        .path.display()
    )]
    WrongType {
        path: PathBuf,
        line: usize,
        host: String,
        key: String,
        expected: &'static str,
        /// The TOML type found ("integer", "table", ...).
        found: &'static str,
    },

    #[error(
        "{}:{line}: a `client` pair for {host} has {count} paths, expected [certificate, key]; \
         write a certificate that holds its key as a plain string; {IGNORED}",
        .path.display()
    )]
    ClientPair {
        path: PathBuf,
        line: usize,
        host: String,
        count: usize,
    },

    #[error(
        "{}:{line}: an empty path in `{key}` for {host}: containerd would read the directory \
         itself as that file and fail; remove it (a client certificate that holds its key is \
         written as a plain string)",
        .path.display()
    )]
    EmptyPath {
        path: PathBuf,
        line: usize,
        host: String,
        key: String,
    },

    #[error(
        "{}:{line}: cannot use \"{value}\" as a registry URL: {reason}; write it as \
         https://host[:port][/path] or http://host[:port][/path]",
        .path.display()
    )]
    BadUrl {
        path: PathBuf,
        line: usize,
        value: String,
        reason: String,
    },
}

const IGNORED: &str = "containerd ignores the whole file when any of it is invalid (its mirrors \
                       and CAs are not used either): fix the file";

const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

fn position(line_col: &Option<(usize, usize)>) -> String {
    line_col.map_or_else(String::new, |(line, col)| format!(":{line}:{col}"))
}

/// The endpoints for `registry` (normalised name: "docker.io", "127.0.0.1:5123", "ghcr.io") under `hosts_dir`
/// (None = no hosts directory: defaults only). `plain_http` is ctr's --plain-http (containerd's DefaultScheme "http").
pub fn resolve(
    hosts_dir: Option<&Path>,
    registry: &str,
    plain_http: bool,
) -> Result<Hosts, HostsError> {
    let dir = match hosts_dir {
        Some(root) => find_host_dir(root, registry)?,
        None => None,
    };
    let (source, mut endpoints) = match dir {
        Some(dir) => load_host_dir(&dir)?,
        None => (Source::Default, vec![Endpoint::unset()]),
    };
    apply_defaults(&mut endpoints, registry, plain_http);
    Ok(Hosts {
        registry: registry.to_string(),
        source,
        endpoints,
    })
}

/// containerd's `HostDirFromRoot`: the first candidate that exists.
fn find_host_dir(root: &Path, registry: &str) -> Result<Option<PathBuf>, HostsError> {
    for candidate in host_paths(root, registry) {
        match std::fs::metadata(&candidate) {
            Ok(_) => return Ok(Some(candidate)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unreadable(candidate, &e)),
        }
    }
    Ok(None)
}

/// `hostPaths` (unix): `host_port_` first when the name has a port, then the name, then `_default`.
fn host_paths(root: &Path, registry: &str) -> Vec<PathBuf> {
    let mut paths = Vec::with_capacity(3);
    let converted = host_directory(registry);
    if converted != registry {
        paths.push(root.join(converted));
    }
    paths.push(root.join(registry));
    paths.push(root.join("_default"));
    paths
}

/// `hostDirectory`: "host:port" → "host_port_" (the last colon, not at the start).
fn host_directory(registry: &str) -> String {
    match registry.rfind(':') {
        Some(i) if i > 0 => format!("{}_{}_", &registry[..i], &registry[i + 1..]),
        _ => registry.to_string(),
    }
}

fn load_host_dir(dir: &Path) -> Result<(Source, Vec<Endpoint>), HostsError> {
    let file = dir.join("hosts.toml");
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(unreadable(file, &e)),
    };
    if bytes.is_empty() {
        let endpoints = load_cert_files(dir)?;
        return Ok((Source::CertFiles(dir.to_path_buf()), endpoints));
    }
    let text = String::from_utf8(bytes).map_err(|e| HostsError::Toml {
        path: file.clone(),
        line_col: None,
        message: format!("not UTF-8 ({e})"),
    })?;
    let endpoints = HostsFile {
        path: &file,
        dir,
        text: &text,
    }
    .parse()?;
    Ok((Source::HostsToml(file), endpoints))
}

/// `loadCertFiles`: one entry (the registry's own host) with `*.crt` as CAs and
/// `*.cert` (+ `*.key`) as client pairs, in file-name order.
fn load_cert_files(dir: &Path) -> Result<Vec<Endpoint>, HostsError> {
    let mut endpoint = Endpoint::unset();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(dir.to_path_buf(), &e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(unreadable(dir.to_path_buf(), &e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let is_dir = entry
            .file_type()
            .map_err(|e| unreadable(entry.path(), &e))?
            .is_dir();
        if !is_dir {
            files.push(entry.file_name());
        }
    }
    files.sort();
    for name in files {
        let bytes = name.as_bytes();
        if bytes.ends_with(b".crt") {
            endpoint.ca.push(dir.join(&name));
        }
        if let Some(stem) = bytes.strip_suffix(b".cert") {
            let key = dir.join(std::ffi::OsStr::from_bytes(&[stem, b".key"].concat()));
            let key = match std::fs::metadata(&key) {
                Ok(_) => Some(key),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(unreadable(key, &e)),
            };
            endpoint.client.push((dir.join(&name), key));
        }
    }
    Ok(vec![endpoint])
}

/// `ConfigureHosts`: fill the last entry when it has no host (no `server`, or
/// no hosts directory at all).
fn apply_defaults(endpoints: &mut [Endpoint], registry: &str, plain_http: bool) {
    let Some(last) = endpoints.last_mut() else {
        return;
    };
    if !last.host.is_empty() {
        return;
    }
    if registry == "docker.io" {
        last.scheme = "https".into();
        last.host = DOCKER_HUB_HOST.into();
    } else if super::reference::is_localhost(registry) {
        // ctr's DefaultScheme is "" or "http": localhost is always plain HTTP.
        last.host = registry.into();
        last.scheme = "http".into();
        last.skip_verify = Some(true);
    } else {
        last.host = registry.into();
        last.scheme = if plain_http { "http" } else { "https" }.into();
    }
    last.path = "/v2".into();
    last.capabilities = Capabilities::ALL;
}

/// A `hosts.toml` being parsed (`parseHostsFile`).
struct HostsFile<'a> {
    path: &'a Path,
    dir: &'a Path,
    text: &'a str,
}

/// Whose settings a table holds, for messages.
const ROOT: &str = "the top-level server";

impl HostsFile<'_> {
    fn parse(&self) -> Result<Vec<Endpoint>, HostsError> {
        let doc = DeTable::parse(self.text).map_err(|e| self.toml_error(&e))?;
        let root = doc.get_ref();
        let hosts = match root.get("host") {
            None => {
                return Err(HostsError::NoHostTable {
                    path: self.path.to_path_buf(),
                });
            }
            Some(hosts) => self.table(hosts, ROOT, "host")?,
        };
        let mut entries: Vec<_> = hosts.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut endpoints = Vec::with_capacity(entries.len() + 1);
        for (url, config) in entries {
            let config = self.table(config, url.get_ref(), url.get_ref())?;
            let server = Spanned::new(url.span(), url.get_ref().as_ref());
            endpoints.push(self.host_config(Some(server), config, url.get_ref())?);
        }
        let server = match root.get("server") {
            Some(value) => Some(self.string(value, ROOT, "server")?),
            None => None,
        };
        let server = server.filter(|s| !s.get_ref().is_empty());
        endpoints.push(self.host_config(server, root, ROOT)?);
        Ok(endpoints)
    }

    /// `parseHostConfig`: one `[host."URL"]` table, or the top level with `server`.
    fn host_config(
        &self,
        server: Option<Spanned<&str>>,
        config: &DeTable<'_>,
        who: &str,
    ) -> Result<Endpoint, HostsError> {
        let mut endpoint = Endpoint::unset();
        let override_path = match config.get("override_path") {
            Some(value) => self.boolean(value, who, "override_path")?,
            None => false,
        };
        if let Some(server) = server {
            let url = parse_url(server.get_ref()).map_err(|reason| HostsError::BadUrl {
                path: self.path.to_path_buf(),
                line: self.line(server.span()),
                value: server.get_ref().to_string(),
                reason,
            })?;
            endpoint.scheme = url.scheme.into();
            endpoint.host = url.host.into();
            endpoint.path = api_path(url.path, override_path);
        }
        if let Some(value) = config.get("skip_verify") {
            endpoint.skip_verify = Some(self.boolean(value, who, "skip_verify")?);
        }
        if let Some(value) = config.get("capabilities") {
            endpoint.capabilities = self.capabilities(value, who)?;
        }
        if let Some(value) = config.get("ca") {
            endpoint.ca = self.ca(value, who)?;
        }
        if let Some(value) = config.get("client") {
            endpoint.client = self.client(value, who)?;
        }
        if let Some(value) = config.get("header") {
            endpoint.headers = self.headers(value, who)?;
        }
        Ok(endpoint)
    }

    /// Empty = all; otherwise the union of the listed ones (case-insensitive).
    fn capabilities(
        &self,
        value: &Spanned<DeValue<'_>>,
        who: &str,
    ) -> Result<Capabilities, HostsError> {
        let names = self.strings(value, who, "capabilities", "an array of strings")?;
        if names.is_empty() {
            return Ok(Capabilities::ALL);
        }
        let mut caps = Capabilities::NONE;
        for name in names {
            match name.get_ref().to_ascii_lowercase().as_str() {
                "pull" => caps.pull = true,
                "resolve" => caps.resolve = true,
                "push" => caps.push = true,
                _ => {
                    return Err(HostsError::UnknownCapability {
                        path: self.path.to_path_buf(),
                        line: self.line(name.span()),
                        host: who.to_string(),
                        value: name.get_ref().to_string(),
                    });
                }
            }
        }
        Ok(caps)
    }

    /// `ca`: a string or an array of strings.
    fn ca(&self, value: &Spanned<DeValue<'_>>, who: &str) -> Result<Vec<PathBuf>, HostsError> {
        const EXPECTED: &str = "a string or an array of strings";
        let paths = match value.get_ref() {
            DeValue::String(s) => vec![Spanned::new(value.span(), s.as_ref())],
            _ => self.strings(value, who, "ca", EXPECTED)?,
        };
        paths.iter().map(|p| self.file_path(p, who, "ca")).collect()
    }

    /// `client`: a string, or an array of strings and [cert, key] pairs.
    fn client(
        &self,
        value: &Spanned<DeValue<'_>>,
        who: &str,
    ) -> Result<Vec<(PathBuf, Option<PathBuf>)>, HostsError> {
        const EXPECTED: &str = "a string, or an array of strings and [certificate, key] pairs";
        let items = match value.get_ref() {
            DeValue::String(_) => std::slice::from_ref(value),
            DeValue::Array(items) => &items[..],
            _ => return Err(self.wrong_type(value, who, "client", EXPECTED)),
        };
        let mut pairs = Vec::with_capacity(items.len());
        for item in items {
            let pair = match item.get_ref() {
                DeValue::String(cert) => {
                    let cert = Spanned::new(item.span(), cert.as_ref());
                    (self.file_path(&cert, who, "client")?, None)
                }
                DeValue::Array(_) => self.client_pair(item, who)?,
                _ => return Err(self.wrong_type(item, who, "client", EXPECTED)),
            };
            pairs.push(pair);
        }
        Ok(pairs)
    }

    fn client_pair(
        &self,
        item: &Spanned<DeValue<'_>>,
        who: &str,
    ) -> Result<(PathBuf, Option<PathBuf>), HostsError> {
        let paths = self.strings(item, who, "client", "[certificate, key] strings")?;
        let [cert, key] = paths.as_slice() else {
            return Err(HostsError::ClientPair {
                path: self.path.to_path_buf(),
                line: self.line(item.span()),
                host: who.to_string(),
                count: paths.len(),
            });
        };
        let cert = self.file_path(cert, who, "client")?;
        let key = self.file_path(key, who, "client")?;
        Ok((cert, Some(key)))
    }

    /// `header`: a table of strings or arrays of strings; keys sorted by name.
    fn headers(
        &self,
        value: &Spanned<DeValue<'_>>,
        who: &str,
    ) -> Result<Vec<(String, String)>, HostsError> {
        const EXPECTED: &str = "a string or an array of strings";
        let table = self.table(value, who, "header")?;
        let mut names: Vec<_> = table.iter().collect();
        names.sort_by(|a, b| a.0.get_ref().cmp(b.0.get_ref()));
        let mut headers = Vec::new();
        for (name, value) in names {
            let key = format!("header.{}", name.get_ref());
            let values = match value.get_ref() {
                DeValue::String(s) => vec![Spanned::new(value.span(), s.as_ref())],
                _ => self.strings(value, who, &key, EXPECTED)?,
            };
            headers.extend(
                values
                    .iter()
                    .map(|v| (name.get_ref().to_string(), v.get_ref().to_string())),
            );
        }
        Ok(headers)
    }

    /// `makeAbsPath`: relative paths are joined to the hosts.toml directory.
    fn file_path(&self, p: &Spanned<&str>, who: &str, key: &str) -> Result<PathBuf, HostsError> {
        let path = Path::new(p.get_ref());
        if path.as_os_str().is_empty() {
            return Err(HostsError::EmptyPath {
                path: self.path.to_path_buf(),
                line: self.line(p.span()),
                host: who.to_string(),
                key: key.to_string(),
            });
        }
        if path.is_absolute() {
            Ok(path.to_path_buf())
        } else {
            Ok(clean_join(self.dir, path))
        }
    }

    fn table<'t, 'i>(
        &self,
        value: &'t Spanned<DeValue<'i>>,
        who: &str,
        key: &str,
    ) -> Result<&'t DeTable<'i>, HostsError> {
        match value.get_ref() {
            DeValue::Table(table) => Ok(table),
            _ => Err(self.wrong_type(value, who, key, "a table")),
        }
    }

    fn boolean(
        &self,
        value: &Spanned<DeValue<'_>>,
        who: &str,
        key: &str,
    ) -> Result<bool, HostsError> {
        match value.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type(value, who, key, "true or false")),
        }
    }

    fn string<'t>(
        &self,
        value: &'t Spanned<DeValue<'_>>,
        who: &str,
        key: &str,
    ) -> Result<Spanned<&'t str>, HostsError> {
        match value.get_ref() {
            DeValue::String(s) => Ok(Spanned::new(value.span(), s.as_ref())),
            _ => Err(self.wrong_type(value, who, key, "a string")),
        }
    }

    /// An array whose items are all strings.
    fn strings<'t>(
        &self,
        value: &'t Spanned<DeValue<'_>>,
        who: &str,
        key: &str,
        expected: &'static str,
    ) -> Result<Vec<Spanned<&'t str>>, HostsError> {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.wrong_type(value, who, key, expected));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(s) => Ok(Spanned::new(item.span(), s.as_ref())),
                _ => Err(self.wrong_type(item, who, key, expected)),
            })
            .collect()
    }

    fn wrong_type(
        &self,
        value: &Spanned<DeValue<'_>>,
        who: &str,
        key: &str,
        expected: &'static str,
    ) -> HostsError {
        HostsError::WrongType {
            path: self.path.to_path_buf(),
            line: self.line(value.span()),
            host: who.to_string(),
            key: key.to_string(),
            expected,
            found: value.get_ref().type_str(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> HostsError {
        HostsError::Toml {
            path: self.path.to_path_buf(),
            line_col: e.span().map(|span| line_col(self.text, span.start)),
            message: e.message().trim_end().to_string(),
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn unreadable(path: PathBuf, e: &io::Error) -> HostsError {
    HostsError::Unreadable {
        path,
        error: e.to_string(),
    }
}

struct Url<'a> {
    scheme: &'a str,
    host: &'a str,
    path: &'a str,
}

/// What containerd keeps of `url.Parse`: scheme, host (without user info) and
/// path (without query or fragment). containerd prefixes "https://" to a name
/// that does not start with "http"; a name that does but has no http(s)://
/// (e.g. "httpbin.local") would give it a nonsense endpoint, so it is refused.
fn parse_url(server: &str) -> Result<Url<'_>, String> {
    if !server.starts_with("http") {
        if server.contains("://") {
            return Err("only http:// and https:// are supported".into());
        }
        return parse_url_with_scheme(server, "https");
    }
    let (scheme, rest) = server
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .ok_or_else(|| {
            "containerd adds https:// only to names that do not start with \"http\"".to_string()
        })?;
    parse_url_with_scheme(rest, scheme)
}

fn parse_url_with_scheme<'a>(rest: &'a str, scheme: &'a str) -> Result<Url<'a>, String> {
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return Err("no host".into());
    }
    let port_start = host.rfind(']').unwrap_or(0);
    if let Some((_, port)) = host[port_start..].rsplit_once(':')
        && !port.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("invalid port \"{port}\""));
    }
    if host.starts_with('[') != host.contains(']') {
        return Err("unbalanced brackets in the host".into());
    }
    Ok(Url { scheme, host, path })
}

/// The API root containerd builds: the URL path cleaned with "/v2" appended
/// unless it ends with it or `override_path`. containerd joins it with
/// `path.Join`, so the result is cleaned again ("//v2" → "/v2", "" → "/").
fn api_path(url_path: &str, override_path: bool) -> String {
    let path = if url_path.is_empty() {
        if override_path { "" } else { "/v2" }.to_string()
    } else {
        let cleaned = clean_url_path(url_path);
        if cleaned.ends_with("/v2") || override_path {
            cleaned
        } else {
            cleaned + "/v2"
        }
    };
    clean_url_path(&path)
}

/// Go's `path.Clean` for a rooted path.
fn clean_url_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/"))
}

/// Go's `filepath.Join`: join, then clean lexically ("a/./b/../c" → "a/c").
fn clean_join(base: &Path, relative: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(relative).components() {
        match component {
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A hosts root with `<root>/<dir>/hosts.toml` = `toml`.
    fn root_with(dir: &str, toml: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join(dir).join("hosts.toml"), toml);
        root
    }

    fn roots(hosts: &Hosts) -> Vec<String> {
        hosts.endpoints.iter().map(Endpoint::api_root).collect()
    }

    const PULL_ONLY: Capabilities = Capabilities {
        pull: true,
        resolve: false,
        push: false,
    };

    #[test]
    fn defaults_without_a_hosts_dir() {
        let hub = resolve(None, "docker.io", false).unwrap();
        assert_eq!(hub.source, Source::Default);
        assert_eq!(roots(&hub), ["https://registry-1.docker.io/v2"]);
        assert_eq!(hub.endpoints[0].capabilities, Capabilities::ALL);
        assert_eq!(hub.endpoints[0].skip_verify, None);
        assert!(!hub.endpoints[0].is_mirror_of("docker.io"));

        let hub_plain = resolve(None, "docker.io", true).unwrap();
        assert_eq!(roots(&hub_plain), ["https://registry-1.docker.io/v2"]);

        let ghcr = resolve(None, "ghcr.io", false).unwrap();
        assert_eq!(roots(&ghcr), ["https://ghcr.io/v2"]);
        assert!(!ghcr.endpoints[0].is_mirror_of("ghcr.io"));
        let ghcr_plain = resolve(None, "ghcr.io", true).unwrap();
        assert_eq!(roots(&ghcr_plain), ["http://ghcr.io/v2"]);
        assert_eq!(ghcr_plain.endpoints[0].skip_verify, None);

        for (registry, plain) in [
            ("localhost:5000", false),
            ("127.0.0.1:5123", false),
            ("127.0.0.1:5123", true),
        ] {
            let local = resolve(None, registry, plain).unwrap();
            assert_eq!(roots(&local), [format!("http://{registry}/v2")]);
            assert_eq!(local.endpoints[0].skip_verify, Some(true));
            assert_eq!(local.registry, registry);
        }
    }

    #[test]
    fn missing_root_or_registry_dir_is_default() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nope");
        let hosts = resolve(Some(&missing), "ghcr.io", false).unwrap();
        assert_eq!(hosts.source, Source::Default);
        let hosts = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        assert_eq!(hosts.source, Source::Default);
        assert_eq!(roots(&hosts), ["https://ghcr.io/v2"]);
    }

    #[test]
    fn mirrors_in_file_order_then_server() {
        let root = root_with(
            "docker.io",
            r#"
server = "https://registry-1.docker.io"

[host."https://z-mirror.example.com"]
  capabilities = ["pull", "Resolve"]

[host."https://a-mirror.example.com:8443/proxy/"]
  capabilities = ["PULL"]
  skip_verify = true
"#,
        );
        let hosts = resolve(Some(root.path()), "docker.io", false).unwrap();
        let file = root.path().join("docker.io/hosts.toml");
        assert_eq!(hosts.source, Source::HostsToml(file));
        assert_eq!(
            roots(&hosts),
            [
                "https://z-mirror.example.com/v2",
                "https://a-mirror.example.com:8443/proxy/v2",
                "https://registry-1.docker.io/v2",
            ]
        );
        let [z, a, server] = hosts.endpoints.as_slice() else {
            panic!("three endpoints");
        };
        let pull_resolve = Capabilities {
            resolve: true,
            ..PULL_ONLY
        };
        assert_eq!(z.capabilities, pull_resolve);
        assert_eq!(a.capabilities, PULL_ONLY);
        assert_eq!(a.skip_verify, Some(true));
        assert_eq!(a.path, "/proxy/v2");
        assert_eq!(z.skip_verify, None);
        assert_eq!(server.capabilities, Capabilities::ALL);
        assert!(z.is_mirror_of("docker.io"));
        assert!(a.is_mirror_of("docker.io"));
        assert!(!server.is_mirror_of("docker.io"));
    }

    #[test]
    fn host_tables_without_server_get_the_default_server() {
        let root = root_with(
            "registry.example.com",
            r#"
capabilities = ["pull"]
ca = "root-ca.pem"
[host."mirror.example.com"]
"#,
        );
        let hosts = resolve(Some(root.path()), "registry.example.com", true).unwrap();
        assert_eq!(
            roots(&hosts),
            [
                "https://mirror.example.com/v2",
                "http://registry.example.com/v2"
            ]
        );
        // containerd's defaults replace the capabilities but keep the CA.
        let server = &hosts.endpoints[1];
        assert_eq!(server.capabilities, Capabilities::ALL);
        assert_eq!(
            server.ca,
            [root.path().join("registry.example.com/root-ca.pem")]
        );
    }

    #[test]
    fn server_paths_and_override_path() {
        let root = root_with(
            "ghcr.io",
            r#"
server = "https://ghcr.io/"
[host."https://plain.example.com/a/./b/../c/"]
[host."https://ends.example.com/x/v2/"]
[host."https://noncompliant.example.com/v2/prefix"]
  override_path = true
[host."http://root.example.com"]
  override_path = true
[host."https://u:p@auth.example.com:5000/p?q=1#f"]
"#,
        );
        let hosts = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        assert_eq!(
            roots(&hosts),
            [
                "https://plain.example.com/a/c/v2",
                "https://ends.example.com/x/v2",
                "https://noncompliant.example.com/v2/prefix",
                "http://root.example.com/",
                "https://auth.example.com:5000/p/v2",
                "https://ghcr.io/v2",
            ]
        );
        assert_eq!(hosts.endpoints[3].path, "/");
    }

    #[test]
    fn host_port_directory_is_preferred() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join("127.0.0.1_5123_/hosts.toml"),
            "[host.\"https://underscore.example.com\"]\n",
        );
        write(
            &root.path().join("127.0.0.1:5123/hosts.toml"),
            "[host.\"https://colon.example.com\"]\n",
        );
        let hosts = resolve(Some(root.path()), "127.0.0.1:5123", false).unwrap();
        assert_eq!(
            hosts.source,
            Source::HostsToml(root.path().join("127.0.0.1_5123_/hosts.toml"))
        );
        assert_eq!(
            roots(&hosts),
            [
                "https://underscore.example.com/v2",
                "http://127.0.0.1:5123/v2"
            ]
        );
        assert!(hosts.endpoints[0].is_mirror_of("127.0.0.1:5123"));
        assert!(!hosts.endpoints[1].is_mirror_of("127.0.0.1:5123"));

        fs::remove_dir_all(root.path().join("127.0.0.1_5123_")).unwrap();
        let hosts = resolve(Some(root.path()), "127.0.0.1:5123", false).unwrap();
        assert_eq!(roots(&hosts)[0], "https://colon.example.com/v2");
    }

    #[test]
    fn default_directory_is_the_fallback() {
        let root = root_with("_default", "[host.\"https://catch-all.example.com\"]\n");
        write(
            &root.path().join("ghcr.io/hosts.toml"),
            "[host.\"https://ghcr-mirror.example.com\"]\n",
        );
        let quay = resolve(Some(root.path()), "quay.io", false).unwrap();
        assert_eq!(
            quay.source,
            Source::HostsToml(root.path().join("_default/hosts.toml"))
        );
        assert_eq!(
            roots(&quay),
            ["https://catch-all.example.com/v2", "https://quay.io/v2"]
        );
        let ghcr = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        assert_eq!(roots(&ghcr)[0], "https://ghcr-mirror.example.com/v2");
    }

    #[test]
    fn cert_file_layout() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("registry.example.com:5000");
        for name in ["ca.crt", "b.cert", "b.key", "a.cert", "notes.txt"] {
            write(&dir.join(name), "x");
        }
        fs::create_dir_all(dir.join("sub.crt")).unwrap();
        // An empty hosts.toml counts as absent.
        write(&dir.join("hosts.toml"), "");
        let hosts = resolve(Some(root.path()), "registry.example.com:5000", false).unwrap();
        assert_eq!(hosts.source, Source::CertFiles(dir.clone()));
        assert_eq!(roots(&hosts), ["https://registry.example.com:5000/v2"]);
        let endpoint = &hosts.endpoints[0];
        assert_eq!(endpoint.ca, [dir.join("ca.crt")]);
        assert_eq!(
            endpoint.client,
            [
                (dir.join("a.cert"), None),
                (dir.join("b.cert"), Some(dir.join("b.key")))
            ]
        );
    }

    #[test]
    fn relative_ca_and_client_paths() {
        let root = root_with(
            "ghcr.io",
            r#"
server = "ghcr.io"
ca = ["ca.pem", "/etc/ssl/abs.pem", "../shared/ca.pem"]
client = [["client.cert", "keys/client.key"], "combined.pem"]
[host."https://mirror.example.com"]
  ca = "mirror-ca.pem"
  client = "/etc/mirror.pem"
"#,
        );
        let dir = root.path().join("ghcr.io");
        let hosts = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        let [mirror, server] = hosts.endpoints.as_slice() else {
            panic!("two endpoints");
        };
        assert_eq!(mirror.ca, [dir.join("mirror-ca.pem")]);
        assert_eq!(mirror.client, [(PathBuf::from("/etc/mirror.pem"), None)]);
        assert_eq!(
            server.ca,
            [
                dir.join("ca.pem"),
                PathBuf::from("/etc/ssl/abs.pem"),
                root.path().join("shared/ca.pem"),
            ]
        );
        assert_eq!(
            server.client,
            [
                (dir.join("client.cert"), Some(dir.join("keys/client.key"))),
                (dir.join("combined.pem"), None),
            ]
        );
    }

    #[test]
    fn headers_string_and_array() {
        let root = root_with(
            "ghcr.io",
            r#"
[host."https://mirror.example.com"]
  [host."https://mirror.example.com".header]
    x-zeta = "z"
    x-alpha = ["1", "2"]
"#,
        );
        let hosts = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            hosts.endpoints[0].headers,
            pairs(&[("x-alpha", "1"), ("x-alpha", "2"), ("x-zeta", "z")])
        );
        assert!(hosts.endpoints[1].headers.is_empty());
    }

    fn error_for(toml: &str) -> (HostsError, String, PathBuf) {
        let root = root_with("ghcr.io", toml);
        let err = resolve(Some(root.path()), "ghcr.io", false).unwrap_err();
        let message = err.to_string();
        (err, message, root.path().join("ghcr.io/hosts.toml"))
    }

    #[test]
    fn bad_toml_names_file_and_line() {
        let (err, message, file) = error_for("[host.\"https://m.example.com\"]\nca = [\"a\"\n");
        let HostsError::Toml { path, line_col, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(path, &file);
        assert_eq!(line_col.map(|(line, _)| line), Some(2));
        assert!(
            message.starts_with(&format!("{}:2:", file.display())),
            "{message}"
        );
        assert!(
            message.contains("containerd ignores the whole file"),
            "{message}"
        );
    }

    #[test]
    fn unknown_capability() {
        let (err, message, file) =
            error_for("[host.\"https://m.example.com\"]\ncapabilities = [\"pull\", \"delete\"]\n");
        assert_eq!(
            err,
            HostsError::UnknownCapability {
                path: file,
                line: 2,
                host: "https://m.example.com".into(),
                value: "delete".into(),
            }
        );
        assert!(message.contains("\"delete\""), "{message}");
    }

    #[test]
    fn wrong_type_for_ca() {
        let (err, message, file) = error_for("ca = 5\n[host]\n");
        assert_eq!(
            err,
            HostsError::WrongType {
                path: file.clone(),
                line: 1,
                host: ROOT.into(),
                key: "ca".into(),
                expected: "a string or an array of strings",
                found: "integer",
            }
        );
        assert!(
            message.starts_with(&format!("{}:1:", file.display())),
            "{message}"
        );

        let (err, ..) = error_for("[host.\"https://m\"]\nskip_verify = \"yes\"\n");
        assert!(
            matches!(&err, HostsError::WrongType { key, line: 2, .. } if key == "skip_verify"),
            "{err:?}"
        );
    }

    #[test]
    fn client_pair_of_three() {
        let (err, _, file) =
            error_for("[host.\"https://m\"]\nclient = [[\"a.cert\", \"a.key\", \"c\"]]\n");
        assert_eq!(
            err,
            HostsError::ClientPair {
                path: file,
                line: 2,
                host: "https://m".into(),
                count: 3,
            }
        );
        let (err, ..) = error_for("[host.\"https://m\"]\nclient = [[\"a.cert\", \"\"]]\n");
        assert!(
            matches!(err, HostsError::EmptyPath { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn server_only_file_is_refused_like_containerd_v1_6() {
        let (err, message, file) = error_for("server = \"https://ghcr.io\"\n");
        assert_eq!(err, HostsError::NoHostTable { path: file });
        assert!(message.contains("[host]"), "{message}");
        // With an empty [host] table containerd v1.6 reads it.
        let root = root_with(
            "ghcr.io",
            "server = \"https://mirror.example.com\"\n[host]\n",
        );
        let hosts = resolve(Some(root.path()), "ghcr.io", false).unwrap();
        assert_eq!(roots(&hosts), ["https://mirror.example.com/v2"]);
        assert!(hosts.endpoints[0].is_mirror_of("ghcr.io"));
    }

    #[test]
    fn bad_urls() {
        for (url, reason) in [
            ("httpbin.example.com", "only to names"),
            ("ftp://m.example.com", "only http:// and https://"),
            ("https://m.example.com:abc", "invalid port"),
            ("https:///v2", "no host"),
        ] {
            let (err, message, _) = error_for(&format!("[host.\"{url}\"]\n"));
            assert!(matches!(err, HostsError::BadUrl { line: 1, .. }), "{err:?}");
            assert!(message.contains(reason), "{message}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(host_directory("127.0.0.1:5000"), "127.0.0.1_5000_");
        assert_eq!(host_directory("[::1]:5000"), "[::1]_5000_");
        assert_eq!(host_directory("ghcr.io"), "ghcr.io");
        assert_eq!(api_path("", false), "/v2");
        assert_eq!(api_path("", true), "/");
        assert_eq!(api_path("/", false), "/v2");
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(
            clean_join(Path::new("/a/b"), Path::new("../../../c")),
            PathBuf::from("/c")
        );
    }
}
