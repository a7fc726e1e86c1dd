//! Which containerd namespaces are advisor's, and what the others hold.
//!
//! advisor deletes only what it created. A cold clean-up removes an image's
//! blobs and snapshots in every namespace (blobs are shared: see [`super::clean`]),
//! so before it does, this module surveys the namespaces that are not
//! advisor's — `k8s.io` (the kubelet's), `moby`, `default`, any made by `ctr`
//! — and [`refuse`] turns a foreign namespace holding the image into an error
//! naming it and `--force`.
//!
//! A namespace is advisor's when it is the one advisor works in (`--namespace`)
//! or carries the label [`OWNER_LABEL`]` = `[`OWNER_VALUE`], which
//! [`Connection::claim_namespace`] sets when advisor creates a namespace. An
//! existing namespace is never relabelled: it may be another tool's.
//!
//! Owns Namespaces.Create/List and the read-only survey; it never deletes.
use super::clean::ImageState;
use super::{Connection, Error, Result};
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{
    CreateNamespaceRequest, ListImagesRequest, ListNamespacesRequest, Namespace,
    images_client::ImagesClient,
};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// The containerd namespace label marking a namespace advisor created.
pub const OWNER_LABEL: &str = "advisor.dev/owner";
/// Its value.
pub const OWNER_VALUE: &str = "advisor";

/// A namespace and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// Whether advisor may delete in `ns`: the namespace it works in, or one it
/// created (labelled).
pub fn is_own(ns: &NamespaceInfo, working: &str) -> bool {
    ns.name == working || ns.labels.get(OWNER_LABEL).map(String::as_str) == Some(OWNER_VALUE)
}

/// What a namespace that is not advisor's holds of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub namespace: String,
    /// An image record with the image's reference.
    pub image_record: bool,
    /// Blobs of the image (index, manifest, config, layers).
    pub blobs: usize,
    /// Snapshots of the image's chain IDs (or extraction keys for them).
    pub snapshots: usize,
}

impl Holding {
    pub fn is_empty(&self) -> bool {
        !self.image_record && self.blobs == 0 && self.snapshots == 0
    }

    /// `k8s.io (image record, 3 blobs, 2 snapshots)`.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.image_record {
            what.push("image record".to_string());
        }
        if self.blobs > 0 {
            what.push(counted(self.blobs, "blob"));
        }
        if self.snapshots > 0 {
            what.push(counted(self.snapshots, "snapshot"));
        }
        format!("{} ({})", self.namespace, what.join(", "))
    }
}

/// `1 blob`, `3 blobs`.
pub fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The decision: refuse (an error naming the namespaces and `--force`) when a
/// namespace that is not advisor's holds any of the image, unless forced.
pub fn refuse(reference: &str, holdings: &[Holding], force: bool) -> Result<()> {
    let held: Vec<&Holding> = holdings.iter().filter(|h| !h.is_empty()).collect();
    if force || held.is_empty() {
        return Ok(());
    }
    Err(Error::ForeignNamespaces {
        reference: reference.to_string(),
        namespaces: held.iter().map(|h| h.namespace.clone()).collect(),
        holdings: held.iter().map(|h| h.describe()).collect(),
    })
}

/// Whether a snapshot name is one of the chain IDs or an extraction key for
/// one (`extract-<nanos>-<rand> <chainID>`): what a cold clean-up removes.
pub fn on_chain(name: &str, chain: &BTreeSet<&str>) -> bool {
    chain.contains(name)
        || name
            .rsplit_once(' ')
            .is_some_and(|(_, c)| chain.contains(c))
}

impl Connection {
    /// Every namespace in this containerd, with its labels.
    pub async fn namespaces(&self) -> Result<Vec<NamespaceInfo>> {
        Ok(NamespacesClient::new(self.channel())
            .list(tonic::Request::new(ListNamespacesRequest {
                filter: String::new(),
            }))
            .await
            .map_err(|s| self.rpc_error("Namespaces.List", s))?
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| NamespaceInfo {
                name: n.name,
                labels: n.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Create this connection's namespace labelled as advisor's; true if it
    /// was created. An existing namespace is left as it is (never relabelled).
    pub async fn claim_namespace(&self) -> Result<bool> {
        // In the namespace's own context (the header): containerd publishes
        // the creation event there and fails the call without one.
        let r = NamespacesClient::new(self.channel())
            .create(
                self.request(CreateNamespaceRequest {
                    namespace: Some(Namespace {
                        name: self.namespace.clone(),
                        labels: [(OWNER_LABEL.to_string(), OWNER_VALUE.to_string())]
                            .into_iter()
                            .collect(),
                    }),
                }),
            )
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(false),
            Err(s) => Err(self.rpc_error(format!("Namespaces.Create {}", self.namespace), s)),
        }
    }

    /// [`Connection::connect`], then [`claim_namespace`](Self::claim_namespace):
    /// for commands that create things in their namespace. Claim before any
    /// other call: containerd creates a namespace, unlabelled, on first use.
    pub async fn connect_own(address: &std::path::Path, namespace: &str) -> Result<Self> {
        let conn = Connection::connect(address, namespace).await?;
        conn.claim_namespace().await?;
        Ok(conn)
    }

    /// The namespaces that are not advisor's (see [`is_own`]).
    pub async fn foreign_namespaces(&self) -> Result<Vec<String>> {
        Ok(self
            .namespaces()
            .await?
            .into_iter()
            .filter(|n| !is_own(n, &self.namespace))
            .map(|n| n.name)
            .collect())
    }

    /// Names of the image records in this namespace.
    pub async fn list_images(&self) -> Result<Vec<String>> {
        Ok(ImagesClient::new(self.channel())
            .list(self.request(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| self.rpc_error("Images.List", s))?
            .into_inner()
            .images
            .into_iter()
            .map(|i| i.name)
            .collect())
    }
}

/// What each namespace that is not advisor's holds of the image (only those
/// holding something).
pub async fn foreign_holdings(
    conn: &Connection,
    image: &ImageState,
    snapshotters: &[&str],
) -> Result<Vec<Holding>> {
    let chain: BTreeSet<&str> = image.chain_ids.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for ns in conn.foreign_namespaces().await? {
        let c = conn.in_namespace(&ns);
        let mut h = Holding {
            image_record: super::pull::get_image(&c, &image.reference)
                .await?
                .is_some(),
            namespace: ns,
            ..Default::default()
        };
        for d in &image.blobs {
            if c.content_info(d).await?.is_some() {
                h.blobs += 1;
            }
        }
        for sn in snapshotters {
            h.snapshots += c
                .list_snapshots(sn)
                .await?
                .iter()
                .filter(|s| on_chain(&s.name, &chain))
                .count();
        }
        if !h.is_empty() {
            out.push(h);
        }
    }
    Ok(out)
}

/// What a namespace that is not advisor's holds in all (for `doctor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignNamespace {
    pub namespace: String,
    pub images: usize,
    pub blobs: usize,
    pub snapshots: usize,
}

/// Every namespace that is not advisor's, with what it holds.
pub async fn survey(conn: &Connection, snapshotters: &[&str]) -> Result<Vec<ForeignNamespace>> {
    let mut out = Vec::new();
    for ns in conn.foreign_namespaces().await? {
        let c = conn.in_namespace(&ns);
        // A snapshotter that is missing or down counts nothing here: doctor
        // reports it in its own check.
        let mut snapshots = 0;
        for sn in snapshotters {
            snapshots += c.list_snapshots(sn).await.map_or(0, |v| v.len());
        }
        out.push(ForeignNamespace {
            images: c.list_images().await?.len(),
            blobs: c.list_content().await?.len(),
            snapshots,
            namespace: ns,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceInfo {
        NamespaceInfo {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn only_the_working_namespace_and_labelled_ones_are_advisors() {
        assert!(is_own(&ns("advisor", &[]), "advisor"));
        assert!(is_own(
            &ns("advisor-x", &[(OWNER_LABEL, OWNER_VALUE)]),
            "advisor"
        ));
        for foreign in [
            ns("k8s.io", &[]),
            ns("moby", &[]),
            ns("default", &[]),
            // A look-alike name without the label is not advisor's.
            ns("advisor-made-by-ctr", &[]),
            ns("k8s.io", &[(OWNER_LABEL, "someone-else")]),
            ns("k8s.io", &[("other", OWNER_VALUE)]),
        ] {
            assert!(!is_own(&foreign, "advisor"), "{foreign:?}");
        }
    }

    fn held(namespace: &str, blobs: usize, snapshots: usize) -> Holding {
        Holding {
            namespace: namespace.into(),
            image_record: false,
            blobs,
            snapshots,
        }
    }

    #[test]
    fn a_foreign_namespace_holding_the_image_is_refused_naming_it_and_the_flag() {
        let hs = [held("k8s.io", 3, 2), held("moby", 0, 1)];
        let e = refuse("r/i:t", &hs, false).unwrap_err();
        let msg = e.to_string();
        for want in [
            "k8s.io (3 blobs, 2 snapshots)",
            "moby (1 snapshot)",
            "--force",
            "r/i:t",
        ] {
            assert!(msg.contains(want), "{want} missing: {msg}");
        }
        assert!(e.is_user_facing(), "exit 1, not 2");
        assert!(
            matches!(e, Error::ForeignNamespaces { ref namespaces, .. } if namespaces == &["k8s.io", "moby"])
        );
    }

    #[test]
    fn force_or_nothing_held_goes_ahead() {
        assert!(refuse("r", &[held("k8s.io", 1, 0)], true).is_ok());
        assert!(refuse("r", &[], false).is_ok());
        assert!(refuse("r", &[held("k8s.io", 0, 0)], false).is_ok());
        let record_only = Holding {
            image_record: true,
            ..held("default", 0, 0)
        };
        let e = refuse("r", &[record_only], false).unwrap_err();
        assert!(e.to_string().contains("default (image record)"), "{e}");
    }

    #[test]
    fn chain_ids_and_their_extraction_keys_are_on_the_chain() {
        let chain: BTreeSet<&str> = ["sha256:c0", "sha256:c1"].into_iter().collect();
        assert!(on_chain("sha256:c1", &chain));
        assert!(on_chain("extract-123-abc sha256:c0", &chain));
        assert!(!on_chain("sha256:c2", &chain));
        assert!(!on_chain("advisor-bench-1-run-0", &chain));
    }
}
