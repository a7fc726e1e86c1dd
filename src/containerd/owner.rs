//! Which containerd namespaces are advisor's, and what the others hold.
//!
//! advisor deletes only what it created. A cold clean-up removes an image's
//! blobs and snapshots in every namespace (blobs are shared: see [`super::clean`]),
//! so before it does, this module surveys the namespaces that are not
//! advisor's — `k8s.io` (the kubelet's), `moby`, `default`, any made by `ctr`
//! — and [`refuse`] turns a foreign namespace holding the image into an error
//! naming it and `--force`.
//!
//! A namespace is advisor's when it carries the label [`OWNER_LABEL`]` = `
//! [`OWNER_VALUE`], which [`Connection::claim_namespace`] sets when advisor
//! creates a namespace, or when it is the one advisor works in and that name
//! was chosen for advisor (`-n/--namespace`, `ADVISOR_NAMESPACE`, the config
//! file's `namespace`, the default:
//! [`NamespaceOrigin::Advisor`]). A working namespace taken from ctr's
//! `CONTAINERD_NAMESPACE` ([`NamespaceOrigin::Ctr`]) was exported for ctr,
//! often `k8s.io`: it is advisor's only when labelled, and otherwise
//! [`refuse_working`] turns any clean-up in it into an error naming it, `-n`
//! and `--force`. An existing namespace is never relabelled: it may be
//! another tool's.
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

/// Where the name of the namespace advisor works in came from: it decides
/// whether that namespace is advisor's without the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceOrigin {
    /// Chosen for advisor: `-n/--namespace`, `ADVISOR_NAMESPACE`, the config
    /// file's `namespace`, the default (`advisor`), or named by the calling code.
    #[default]
    Advisor,
    /// ctr's `CONTAINERD_NAMESPACE`, exported for ctr (often `k8s.io`, the
    /// kubelet's): advisor's only when labelled as advisor's.
    Ctr,
}

/// Whether `ns` carries advisor's owner label (advisor created it).
pub fn is_labelled(ns: &NamespaceInfo) -> bool {
    ns.labels.get(OWNER_LABEL).map(String::as_str) == Some(OWNER_VALUE)
}

/// Whether advisor may delete in `ns`: one it created (labelled), or the
/// namespace it works in (`working`) when that name was chosen for advisor.
pub fn is_own(ns: &NamespaceInfo, working: &str, origin: NamespaceOrigin) -> bool {
    is_labelled(ns) || (ns.name == working && origin == NamespaceOrigin::Advisor)
}

/// The decision for the namespace advisor works in: refuse (an error naming
/// it, `-n` and `--force`) when it is not advisor's, unless forced.
/// `namespaces` is what containerd lists (a missing one carries no label).
pub fn refuse_working(
    namespaces: &[NamespaceInfo],
    working: &str,
    origin: NamespaceOrigin,
    force: bool,
) -> Result<()> {
    let own = origin == NamespaceOrigin::Advisor
        || namespaces
            .iter()
            .any(|n| n.name == working && is_own(n, working, origin));
    if force || own {
        return Ok(());
    }
    Err(Error::ForeignWorkingNamespace {
        namespace: working.to_string(),
    })
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
    /// `origin` says where the namespace's name came from (see [`is_own`]).
    pub async fn connect_own(
        address: &std::path::Path,
        namespace: &str,
        origin: NamespaceOrigin,
    ) -> Result<Self> {
        let conn = Connection::connect(address, namespace)
            .await?
            .with_origin(origin);
        conn.claim_namespace().await?;
        Ok(conn)
    }

    /// The namespaces that are not advisor's (see [`is_own`]), the working
    /// one among them when it came from ctr's variable and is unlabelled.
    pub async fn foreign_namespaces(&self) -> Result<Vec<String>> {
        Ok(self
            .namespaces()
            .await?
            .into_iter()
            .filter(|n| !is_own(n, &self.namespace, self.origin()))
            .map(|n| n.name)
            .collect())
    }

    /// [`refuse_working`] for this connection's namespace: call before any
    /// clean-up in it.
    pub async fn refuse_working(&self, force: bool) -> Result<()> {
        if force || self.origin() == NamespaceOrigin::Advisor {
            return Ok(());
        }
        refuse_working(
            &self.namespaces().await?,
            &self.namespace,
            self.origin(),
            force,
        )
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

    use NamespaceOrigin::{Advisor, Ctr};

    #[test]
    fn only_the_working_namespace_and_labelled_ones_are_advisors() {
        assert!(is_own(&ns("advisor", &[]), "advisor", Advisor));
        assert!(is_own(
            &ns("advisor-x", &[(OWNER_LABEL, OWNER_VALUE)]),
            "advisor",
            Advisor
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
            assert!(!is_own(&foreign, "advisor", Advisor), "{foreign:?}");
        }
    }

    /// Regression: a node exporting CONTAINERD_NAMESPACE=k8s.io for ctr made
    /// advisor work in k8s.io and treat it as its own, so a cold bench or
    /// calibrate deleted the kubelet's images and snapshots there.
    #[test]
    fn a_working_namespace_from_ctr_s_variable_is_advisors_only_when_labelled() {
        let k8s = ns("k8s.io", &[]);
        assert!(!is_own(&k8s, "k8s.io", Ctr));
        assert!(
            is_own(&k8s, "k8s.io", Advisor),
            "-n k8s.io is the user's choice"
        );
        let made = ns("bench", &[(OWNER_LABEL, OWNER_VALUE)]);
        assert!(is_own(&made, "bench", Ctr), "advisor created it");
        assert!(!is_own(&ns("bench", &[(OWNER_LABEL, "x")]), "bench", Ctr));
        // Labelled namespaces other than the working one stay advisor's.
        assert!(is_own(&made, "k8s.io", Ctr));
    }

    #[test]
    fn a_clean_up_in_an_unlabelled_namespace_from_ctr_is_refused_naming_it_and_the_fixes() {
        let all = [ns("k8s.io", &[]), ns("advisor", &[])];
        let e = refuse_working(&all, "k8s.io", Ctr, false).unwrap_err();
        assert!(
            matches!(e, Error::ForeignWorkingNamespace { ref namespace } if namespace == "k8s.io")
        );
        let msg = e.to_string();
        for want in [
            "k8s.io",
            "CONTAINERD_NAMESPACE",
            OWNER_LABEL,
            "ADVISOR_NAMESPACE",
            "-n",
            "--force",
        ] {
            assert!(msg.contains(want), "{want} missing: {msg}");
        }
        assert!(e.is_user_facing(), "exit 1, not 2");
        // Not listed (not created yet): no label either.
        assert!(refuse_working(&[], "k8s.io", Ctr, false).is_err());
        assert!(refuse_working(&all, "k8s.io", Ctr, true).is_ok(), "--force");
    }

    #[test]
    fn a_clean_up_in_a_labelled_namespace_from_ctr_or_a_chosen_one_goes_ahead() {
        let labelled = [ns("bench", &[(OWNER_LABEL, OWNER_VALUE)])];
        assert!(refuse_working(&labelled, "bench", Ctr, false).is_ok());
        let k8s = [ns("k8s.io", &[])];
        assert!(
            refuse_working(&k8s, "k8s.io", Advisor, false).is_ok(),
            "-n k8s.io: as before"
        );
        assert!(refuse_working(&[], "advisor", Advisor, false).is_ok());
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
