//! Cleaning up: what an interrupted run left ([`cleanup_tracked`]) and the
//! cold clean-up between cold runs ([`clean_image`], [`check_cold`]).
//!
//! The cold clean-up follows containerd-grpc.md §4: Images.Delete with a
//! synchronous GC; leftover leases deleted synchronously; the image's blobs
//! deleted in **every** namespace (blobs are stored once and adopted by any
//! namespace with no download, so a fresh namespace is not cold); snapshots of
//! the image's chain IDs and everything on top of them removed from every
//! namespace and both snapshotters, children first; Snapshots.Cleanup. Then the
//! post-conditions of §4.7 are checked and a violation is an error
//! ([`Error::NotCold`]). Purging the stargz daemon's caches is not a gRPC call
//! and is the caller's job. Owns these calls only.
//!
//! Before deleting anything, [`clean_image`] asks [`owner`] whether the
//! namespace it works in is advisor's (not when its name came from ctr's
//! `CONTAINERD_NAMESPACE` and advisor did not create it:
//! [`Error::ForeignWorkingNamespace`]) and whether a namespace that is not
//! advisor's holds any of the image ([`Error::ForeignNamespaces`]), and
//! refuses unless the caller passes [`Foreign::Delete`] (the user's
//! `--force`): advisor never deletes what it did not create.
use super::owner;
use super::pull::delete_image;
use super::run::{delete_container, delete_task};
use super::tracker::Tracked;
use super::{Connection, Error, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// What identifies an image's state in containerd.
#[derive(Debug, Clone, Default)]
pub struct ImageState {
    /// Image record name (the reference).
    pub reference: String,
    /// Index, manifest, config and layer digests.
    pub blobs: Vec<String>,
    /// Chain IDs of the layers, bottom first.
    pub chain_ids: Vec<String>,
}

/// What a clean-up removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanReport {
    pub image_deleted: bool,
    pub leases_deleted: Vec<String>,
    /// `namespace digest` of each deleted blob.
    pub content_deleted: Vec<String>,
    /// `namespace snapshotter key` of each removed snapshot.
    pub snapshots_removed: Vec<String>,
    /// Namespaces other than the working one where something was removed.
    pub other_namespaces: Vec<String>,
}

impl Connection {
    /// The name of every namespace in this containerd.
    pub async fn list_namespaces(&self) -> Result<Vec<String>> {
        Ok(self
            .namespaces()
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect())
    }
}

/// Delete everything the tracker still records, newest first (task before
/// container before snapshot before lease). Returns the errors met; keeps going.
pub async fn cleanup_tracked(conn: &Connection) -> Vec<Error> {
    let mut errors = Vec::new();
    for t in conn.tracker().take() {
        let r = match &t {
            Tracked::Task {
                namespace,
                container,
            } => delete_task(&conn.in_namespace(namespace), container, false)
                .await
                .map(|_| ()),
            Tracked::Container { namespace, id } => {
                delete_container(&conn.in_namespace(namespace), id)
                    .await
                    .map(|_| ())
            }
            Tracked::Snapshot {
                namespace,
                snapshotter,
                key,
            } => conn
                .in_namespace(namespace)
                .remove_snapshot(snapshotter, key)
                .await
                .map(|_| ()),
            Tracked::Lease { namespace, id } => {
                conn.in_namespace(namespace).delete_lease(id, true).await
            }
            Tracked::FifoDir { path } => {
                let _ = std::fs::remove_dir_all(path);
                Ok(())
            }
        };
        if let Err(e) = r {
            errors.push(e);
        }
    }
    errors
}

/// What a clean-up does when a namespace that is not advisor's holds the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// Delete nothing and fail with [`Error::ForeignNamespaces`].
    Refuse,
    /// Delete there too (the user passed `--force`).
    Delete,
}

/// Remove the image and every trace of it (see the module doc), then check
/// the post-conditions. `snapshotters` are the ones to clear (overlayfs and stargz).
pub async fn clean_image(
    conn: &Connection,
    image: &ImageState,
    snapshotters: &[&str],
    foreign: Foreign,
) -> Result<CleanReport> {
    conn.refuse_working(foreign == Foreign::Delete).await?;
    let holdings = owner::foreign_holdings(conn, image, snapshotters).await?;
    owner::refuse(&image.reference, &holdings, foreign == Foreign::Delete)?;
    let mut report = CleanReport {
        image_deleted: delete_image(conn, &image.reference, true).await?,
        ..Default::default()
    };
    for id in conn.list_leases().await? {
        conn.delete_lease(&id, true).await?;
        report.leases_deleted.push(id);
    }
    let namespaces = conn.list_namespaces().await?;
    let mut others = BTreeSet::new();
    // Snapshots containerd refused to remove (a stale child entry): left to
    // its garbage collector once the blobs that reference them are gone.
    let mut held = Vec::new();
    for ns in &namespaces {
        let c = conn.in_namespace(ns);
        for sn in snapshotters {
            let (removed, kept) = remove_chain_snapshots(&c, sn, &image.chain_ids).await?;
            for key in removed {
                report.snapshots_removed.push(format!("{ns} {sn} {key}"));
                if *ns != conn.namespace {
                    others.insert(ns.clone());
                }
            }
            held.extend(kept.into_iter().map(|k| (ns.clone(), sn.to_string(), k)));
        }
        for d in &image.blobs {
            if c.delete_content(d).await? {
                report.content_deleted.push(format!("{ns} {d}"));
                if *ns != conn.namespace {
                    others.insert(ns.clone());
                }
            }
        }
    }
    if !held.is_empty() {
        // Nothing references them any more: a synchronous collection (the
        // deletion of a lease with sync) removes them.
        let lease = conn.create_lease("gc", Duration::from_secs(60)).await?;
        conn.delete_lease(&lease, true).await?;
        for (ns, sn, key) in held {
            if conn
                .in_namespace(&ns)
                .stat_snapshot(&sn, &key)
                .await?
                .is_none()
            {
                report
                    .snapshots_removed
                    .push(format!("{ns} {sn} {key} (garbage-collected)"));
                if ns != conn.namespace {
                    others.insert(ns);
                }
            }
        }
    }
    for sn in snapshotters {
        conn.cleanup_snapshotter(sn).await?;
    }
    report.other_namespaces = others.into_iter().collect();
    check_cold(conn, image, snapshotters).await?;
    Ok(report)
}

/// Remove the snapshots named by chain IDs (or extraction keys for them) and
/// everything on top of them, children first. Returns the removed keys and
/// the ones containerd refused for a child it still lists (with their
/// parents, which then have a child too).
async fn remove_chain_snapshots(
    conn: &Connection,
    snapshotter: &str,
    chain_ids: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let all = conn.list_snapshots(snapshotter).await?;
    let chain: BTreeSet<&str> = chain_ids.iter().map(String::as_str).collect();
    let mut doomed: BTreeSet<String> = all
        .iter()
        .filter(|s| owner::on_chain(&s.name, &chain))
        .map(|s| s.name.clone())
        .collect();
    loop {
        let more: Vec<String> = all
            .iter()
            .filter(|s| doomed.contains(&s.parent) && !doomed.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        doomed.extend(more);
    }
    let mut removed = Vec::new();
    let mut held = Vec::new();
    // Children first: remove snapshots nothing left in `doomed` has as parent.
    while !doomed.is_empty() {
        let leaves: Vec<String> = doomed
            .iter()
            .filter(|name| {
                !all.iter()
                    .any(|s| &s.parent == *name && doomed.contains(&s.name))
            })
            .cloned()
            .collect();
        if leaves.is_empty() {
            break; // a cycle cannot happen; never loop forever
        }
        for key in leaves {
            match conn.try_remove_snapshot(snapshotter, &key).await? {
                Some(true) => removed.push(key.clone()),
                Some(false) => {}
                None => held.push(key.clone()),
            }
            doomed.remove(&key);
        }
    }
    Ok((removed, held))
}

/// The post-conditions of a cold clean-up (containerd-grpc.md §4.7): no image
/// record and no lease in advisor's namespace; in every namespace, no blob of
/// the image and no snapshot of its chain IDs in the given snapshotters.
pub async fn check_cold(
    conn: &Connection,
    image: &ImageState,
    snapshotters: &[&str],
) -> Result<()> {
    let mut left = Vec::new();
    if super::pull::get_image(conn, &image.reference)
        .await?
        .is_some()
    {
        left.push(format!(
            "image record {} in {}",
            image.reference, conn.namespace
        ));
    }
    for id in conn.list_leases().await? {
        left.push(format!("lease {id} in {}", conn.namespace));
    }
    for ns in conn.list_namespaces().await? {
        let c = conn.in_namespace(&ns);
        for d in &image.blobs {
            if c.content_info(d).await?.is_some() {
                left.push(format!("blob {d} in namespace {ns}"));
            }
        }
        for sn in snapshotters {
            for id in &image.chain_ids {
                if c.stat_snapshot(sn, id).await?.is_some() {
                    left.push(format!("snapshot {id} in {sn}, namespace {ns}"));
                }
            }
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::NotCold {
            reference: image.reference.clone(),
            leftovers: left,
        })
    }
}
