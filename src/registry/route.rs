//! Which hosts a registry's requests go to, and trying them in order.
//!
//! containerd reads `<hosts-dir>/<host>/hosts.toml` (see [`super::hosts`]) and
//! tries a registry's mirrors first, then the registry itself; a host that
//! fails or lacks the content hands over to the next. advisor does the same
//! for every request, so what it measures is what the node's pulls do: tag
//! resolution on hosts with `resolve`, manifests by digest and blobs on hosts
//! with `pull`, pushes on the first host with `push`. A repository already
//! routed (a [`super::ResolvedImage`]'s) keeps its host first.
use super::error::{Error, Result};
use super::hosts::{self, Endpoint, Hosts};
use super::reference::Repository;
use super::{Inner, RegistryClient};
use std::sync::Arc;

/// What a request needs a host to be able to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Resolve a tag to a digest (`pull` and `resolve`).
    Resolve,
    /// Fetch by digest (`pull`).
    Pull,
    /// Push (`push`).
    Push,
}

impl Need {
    fn allows(self, e: &Endpoint) -> bool {
        let c = &e.capabilities;
        match self {
            Need::Resolve => c.pull && c.resolve,
            Need::Pull => c.pull,
            Need::Push => c.push,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Need::Resolve => "resolve",
            Need::Pull => "pull",
            Need::Push => "push",
        }
    }
}

/// The key a host's connection state is kept under.
pub(super) fn host_key(scheme: &str, host: &str) -> String {
    format!("{scheme}://{host}")
}

impl RegistryClient {
    /// The hosts `registry` resolves to under the client's hosts directory
    /// (read once per client), in the order they are tried.
    pub fn hosts(&self, registry: &str) -> Result<Arc<Hosts>> {
        let inner: &Inner = &self.inner;
        if let Some(h) = lock(&inner.hosts).get(registry) {
            return Ok(h.clone());
        }
        let found = hosts::resolve(
            inner.opts.hosts_dir.as_deref(),
            registry,
            inner.opts.plain_http,
        )
        .map_err(|e| Error::Hosts {
            detail: e.to_string(),
        })?;
        let found = Arc::new(found);
        {
            let mut tls = lock(&inner.endpoints);
            for e in &found.endpoints {
                tls.entry(host_key(&e.scheme, &e.host))
                    .or_insert_with(|| Arc::new(e.clone()));
            }
        }
        Ok(lock(&inner.hosts)
            .entry(registry.to_string())
            .or_insert(found)
            .clone())
    }

    /// The host settings (CA, client certificate, headers) for a connection key.
    pub(super) fn endpoint_for(&self, key: &str) -> Option<Arc<Endpoint>> {
        lock(&self.inner.endpoints).get(key).cloned()
    }

    /// `repo` as each host able to serve `need` sees it, in order; when `repo`
    /// was routed already (an image resolved on a mirror), its host first.
    pub(super) fn routes(&self, repo: &Repository, need: Need) -> Result<Vec<Repository>> {
        let hosts = self.hosts(&repo.registry)?;
        let mut out: Vec<Repository> = hosts
            .endpoints
            .iter()
            .filter(|e| need.allows(e))
            .map(|e| repo.at(e))
            .collect();
        if out.is_empty() {
            return Err(Error::Hosts {
                detail: format!(
                    "no host for {} may {} (capabilities in {}); add `{}` to a host's capabilities",
                    repo.registry,
                    need.word(),
                    source_text(&hosts.source),
                    need.word()
                ),
            });
        }
        if let Some(i) = out.iter().position(|r| {
            repo.routed
                && r.scheme == repo.scheme
                && r.api_host == repo.api_host
                && r.api_path == repo.api_path
        }) {
            let mine = out.remove(i);
            out.insert(0, mine);
        }
        Ok(out)
    }

    /// `repo` on the first host able to serve `need` (what the probe measures,
    /// where a push goes).
    pub(super) fn route(&self, repo: &Repository, need: Need) -> Result<Repository> {
        let mut r = self.routes(repo, need)?;
        Ok(r.swap_remove(0))
    }

    /// `repo` on the first host a pull would use: a mirror from hosts.toml
    /// when there is one, else the registry itself.
    pub fn pull_route(&self, repo: &Repository) -> Result<Repository> {
        self.route(repo, Need::Pull)
    }

    /// Run `f` on each host able to serve `need` until one succeeds, as
    /// containerd does: a host that fails, refuses or lacks the content hands
    /// over to the next. When all fail, the first error that is not "not
    /// found" is reported (a mirror's broken certificate, not the origin's
    /// 404), else the last. Errors about the content itself (a wrong digest or
    /// size) stop at once.
    pub(super) async fn on_routes<T, F, Fut>(
        &self,
        repo: &Repository,
        need: Need,
        f: F,
    ) -> Result<T>
    where
        F: Fn(Repository) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let routes = self.routes(repo, need)?;
        let last = routes.len() - 1;
        let mut first_err = None;
        for (i, r) in routes.into_iter().enumerate() {
            let host = r.registry_url();
            match f(r).await {
                Ok(v) => return Ok(v),
                Err(e) if i < last && e.tries_next_host() => {
                    tracing::info!("{host}: {e}; trying the next host");
                    if first_err.is_none() && !matches!(e, Error::NotFound { .. }) {
                        first_err = Some(e);
                    }
                }
                Err(e) => return Err(first_err.unwrap_or(e)),
            }
        }
        unreachable!("routes() returns at least one host")
    }
}

/// Where a registry's hosts came from, for messages.
pub fn source_text(s: &hosts::Source) -> String {
    match s {
        hosts::Source::Default => "containerd's defaults (no hosts directory entry)".into(),
        hosts::Source::HostsToml(p) => p.display().to_string(),
        hosts::Source::CertFiles(d) => format!("{} (certificate files)", d.display()),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
