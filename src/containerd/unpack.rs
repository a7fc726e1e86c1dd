//! Unpacking layers into snapshots: chain IDs, the remote-snapshot labels, and
//! the Snapshots/Diff calls (Stat, Prepare, Mounts, Commit, Remove, List,
//! Usage, Cleanup, Diff.Apply).
//!
//! Follows containerd-grpc.md §2 and containerd 1.6's unpacker.go: one layer at
//! a time, bottom first; Stat the chain ID first (present = done); Prepare an
//! `extract-<unique> <chainID>` key with `containerd.io/snapshot.ref` and the
//! layer's `containerd.io/snapshot/` annotations as labels; AlreadyExists from
//! Prepare means "Stat and verify" (the stargz snapshotter mounted the layer
//! remotely and committed it under the chain ID, labelled
//! `containerd.io/snapshot/remote`); mounts returned mean an ordinary unpack:
//! Diff.Apply the blob, require the diff ID, Commit, label the blob
//! `containerd.io/uncompressed`. Owns these calls and the label rules; which
//! method to use is the pull's decision.
use super::tracker::Tracked;
use super::{Connection, Result};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest, MountsRequest,
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest,
};
use containerd_client::types::{Descriptor as PbDescriptor, Mount};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Label naming the chain ID a snapshot is for (snapshots.go `labelSnapshotRef`).
pub const SNAPSHOT_REF_LABEL: &str = "containerd.io/snapshot.ref";
/// Layer annotations with this prefix are passed to the snapshotter as labels
/// (snapshots.FilterInheritedLabels).
pub const INHERITED_LABEL_PREFIX: &str = "containerd.io/snapshot/";
/// Label the stargz snapshotter puts on a layer it mounted remotely (snapshot/snapshot.go).
pub const REMOTE_LABEL: &str = "containerd.io/snapshot/remote";
/// Its value.
pub const REMOTE_LABEL_VALUE: &str = "remote snapshot";
/// stargz remote-snapshot labels (fs/source/source.go).
pub const STARGZ_REFERENCE_LABEL: &str = "containerd.io/snapshot/remote/stargz.reference";
pub const STARGZ_DIGEST_LABEL: &str = "containerd.io/snapshot/remote/stargz.digest";
pub const STARGZ_LAYERS_LABEL: &str = "containerd.io/snapshot/remote/stargz.layers";
pub const STARGZ_PREFETCH_LABEL: &str = "containerd.io/snapshot/remote/stargz.prefetch";
/// containerd's limit on a label's key plus value (labels/validate.go).
pub const MAX_LABEL_BYTES: usize = 4096;
/// Prefix of extraction keys (snapshots.UnpackKeyPrefix).
pub const UNPACK_KEY_PREFIX: &str = "extract";

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    let sum = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in sum.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Chain IDs of a list of diff IDs (image-spec config.md "Layer ChainID"):
/// `C0 = D0`, `Ci = sha256(Ci-1 + " " + Di)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The labels the stargz snapshotter needs to mount layer `index` remotely, as
/// `source.AppendDefaultLabelsHandlerWrapper` sets them: reference, this
/// layer's digest, this and later layer digests (cut to fit the label limit),
/// the prefetch size; plus the layer's own `containerd.io/snapshot/`
/// annotations (the TOC digest) and `containerd.io/snapshot.ref`.
pub fn remote_labels(
    reference: &str,
    layers: &[(String, BTreeMap<String, String>)],
    index: usize,
    chain_id: &str,
    prefetch_size: u64,
) -> BTreeMap<String, String> {
    let (digest, annotations) = &layers[index];
    let mut labels = inherited_labels(annotations, chain_id);
    labels.insert(STARGZ_REFERENCE_LABEL.into(), reference.into());
    labels.insert(STARGZ_DIGEST_LABEL.into(), digest.clone());
    let mut list = String::new();
    for (d, _) in &layers[index..] {
        let candidate = if list.is_empty() {
            d.clone()
        } else {
            format!("{list},{d}")
        };
        if STARGZ_LAYERS_LABEL.len() + candidate.len() > MAX_LABEL_BYTES {
            // Skipping neighbours only costs pre-resolution, as source.go says.
            break;
        }
        list = candidate;
    }
    labels.insert(STARGZ_LAYERS_LABEL.into(), list);
    labels.insert(STARGZ_PREFETCH_LABEL.into(), prefetch_size.to_string());
    labels
}

/// `containerd.io/snapshot.ref` plus the layer annotations containerd forwards.
pub fn inherited_labels(
    annotations: &BTreeMap<String, String>,
    chain_id: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(INHERITED_LABEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(SNAPSHOT_REF_LABEL.into(), chain_id.into());
    labels
}

/// A unique extraction key for a chain ID (`extract-<unique> <chainID>`).
pub fn unpack_key(chain_id: &str) -> String {
    format!(
        "{UNPACK_KEY_PREFIX}-{}-{} {chain_id}",
        super::nanos(),
        std::process::id()
    )
}

/// A snapshot as Stat/List report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub parent: String,
    /// 1 view, 2 active, 3 committed.
    pub kind: i32,
    pub labels: BTreeMap<String, String>,
}

impl SnapshotInfo {
    /// Whether the stargz snapshotter mounted this layer remotely.
    pub fn is_remote(&self) -> bool {
        self.labels.get(REMOTE_LABEL).map(String::as_str) == Some(REMOTE_LABEL_VALUE)
    }
}

/// What Prepare did.
#[derive(Debug)]
pub enum Prepared {
    /// Mounts to populate (an ordinary snapshot; for stargz, a fallback).
    Mounts(Vec<Mount>),
    /// gRPC AlreadyExists: the target exists (for stargz: mounted remotely).
    AlreadyExists(String),
}

impl Connection {
    fn snapshots(&self) -> SnapshotsClient<tonic::transport::Channel> {
        SnapshotsClient::new(self.channel())
    }

    /// Stat a snapshot; None when it does not exist.
    pub async fn stat_snapshot(
        &self,
        snapshotter: &str,
        key: &str,
    ) -> Result<Option<SnapshotInfo>> {
        match self
            .snapshots()
            .stat(self.request(StatSnapshotRequest {
                snapshotter: snapshotter.into(),
                key: key.into(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().info.map(|i| SnapshotInfo {
                name: i.name,
                parent: i.parent,
                kind: i.kind,
                labels: i.labels.into_iter().collect(),
            })),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.rpc_error(format!("Snapshots.Stat {snapshotter} {key}"), s)),
        }
    }

    /// Prepare an active snapshot (tracked until committed or removed).
    pub async fn prepare_snapshot(
        &self,
        snapshotter: &str,
        key: &str,
        parent: &str,
        labels: &BTreeMap<String, String>,
        what: &str,
    ) -> Result<Prepared> {
        let tracked = Tracked::Snapshot {
            namespace: self.namespace.clone(),
            snapshotter: snapshotter.into(),
            key: key.into(),
        };
        self.tracker().add(tracked.clone());
        match self
            .snapshots()
            .prepare(self.request(PrepareSnapshotRequest {
                snapshotter: snapshotter.into(),
                key: key.into(),
                parent: parent.into(),
                labels: labels.clone().into_iter().collect(),
            }))
            .await
        {
            Ok(r) => Ok(Prepared::Mounts(r.into_inner().mounts)),
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                self.tracker().remove(&tracked);
                Ok(Prepared::AlreadyExists(s.message().to_string()))
            }
            Err(s) => {
                let e =
                    self.rpc_error(format!("Snapshots.Prepare {snapshotter} {key} ({what})"), s);
                Err(self.untrack_unless_lost(&tracked, e))
            }
        }
    }

    /// Mounts of an active snapshot.
    pub async fn snapshot_mounts(&self, snapshotter: &str, key: &str) -> Result<Vec<Mount>> {
        Ok(self
            .snapshots()
            .mounts(self.request(MountsRequest {
                snapshotter: snapshotter.into(),
                key: key.into(),
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Snapshots.Mounts {snapshotter} {key}"), s))?
            .into_inner()
            .mounts)
    }

    /// Commit an active snapshot under a name.
    pub async fn commit_snapshot(
        &self,
        snapshotter: &str,
        name: &str,
        key: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let r = self
            .snapshots()
            .commit(self.request(CommitSnapshotRequest {
                snapshotter: snapshotter.into(),
                name: name.into(),
                key: key.into(),
                labels: labels.clone().into_iter().collect(),
            }))
            .await;
        match r {
            Ok(_) => {
                self.tracker().remove(&Tracked::Snapshot {
                    namespace: self.namespace.clone(),
                    snapshotter: snapshotter.into(),
                    key: key.into(),
                });
                Ok(())
            }
            Err(s) => {
                Err(self.rpc_error(format!("Snapshots.Commit {snapshotter} {key} as {name}"), s))
            }
        }
    }

    /// Remove a snapshot; true if it existed.
    pub async fn remove_snapshot(&self, snapshotter: &str, key: &str) -> Result<bool> {
        self.remove_snapshot_inner(snapshotter, key, false)
            .await
            .map(|r| r.unwrap_or(true))
    }

    /// Like [`Connection::remove_snapshot`], but a snapshot containerd keeps
    /// because its metadata still lists a child (`FailedPrecondition`) is
    /// `Ok(None)` instead of an error. containerd 1.6's garbage collector
    /// deletes a collected snapshot without unlisting it from its parent, so
    /// a parent whose child went that way can only be collected too.
    pub async fn try_remove_snapshot(&self, snapshotter: &str, key: &str) -> Result<Option<bool>> {
        self.remove_snapshot_inner(snapshotter, key, true).await
    }

    async fn remove_snapshot_inner(
        &self,
        snapshotter: &str,
        key: &str,
        held_ok: bool,
    ) -> Result<Option<bool>> {
        let r = self
            .snapshots()
            .remove(self.request(RemoveSnapshotRequest {
                snapshotter: snapshotter.into(),
                key: key.into(),
            }))
            .await;
        let existed = match r {
            Ok(_) => true,
            Err(s) if s.code() == tonic::Code::NotFound => false,
            Err(s) if held_ok && s.code() == tonic::Code::FailedPrecondition => return Ok(None),
            Err(s) => {
                return Err(self.rpc_error(format!("Snapshots.Remove {snapshotter} {key}"), s));
            }
        };
        self.tracker().remove(&Tracked::Snapshot {
            namespace: self.namespace.clone(),
            snapshotter: snapshotter.into(),
            key: key.into(),
        });
        Ok(Some(existed))
    }

    /// Every snapshot of a snapshotter in this namespace.
    pub async fn list_snapshots(&self, snapshotter: &str) -> Result<Vec<SnapshotInfo>> {
        let mut stream = self
            .snapshots()
            .list(self.request(ListSnapshotsRequest {
                snapshotter: snapshotter.into(),
                filters: vec![],
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Snapshots.List {snapshotter}"), s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream
            .message()
            .await
            .map_err(|s| self.rpc_error(format!("Snapshots.List {snapshotter}"), s))?
        {
            out.extend(m.info.into_iter().map(|i| SnapshotInfo {
                name: i.name,
                parent: i.parent,
                kind: i.kind,
                labels: i.labels.into_iter().collect(),
            }));
        }
        Ok(out)
    }

    /// Disk used by a snapshot (bytes), as the snapshotter reports it.
    pub async fn snapshot_usage(&self, snapshotter: &str, key: &str) -> Result<u64> {
        Ok(self
            .snapshots()
            .usage(self.request(UsageRequest {
                snapshotter: snapshotter.into(),
                key: key.into(),
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Snapshots.Usage {snapshotter} {key}"), s))?
            .into_inner()
            .size
            .max(0) as u64)
    }

    /// Ask a snapshotter to release resources of removed snapshots.
    pub async fn cleanup_snapshotter(&self, snapshotter: &str) -> Result<()> {
        match self
            .snapshots()
            .cleanup(self.request(CleanupRequest {
                snapshotter: snapshotter.into(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            // Snapshotters without a Cleanup answer Unimplemented: nothing to release.
            Err(s) if s.code() == tonic::Code::Unimplemented => Ok(()),
            Err(s) => Err(self.rpc_error(format!("Snapshots.Cleanup {snapshotter}"), s)),
        }
    }

    /// Apply a layer blob (in the content store) onto mounts; returns the diff ID.
    pub async fn apply_diff(
        &self,
        media_type: &str,
        digest: &str,
        size: u64,
        mounts: Vec<Mount>,
    ) -> Result<String> {
        let r = DiffClient::new(self.channel())
            .apply(self.request(ApplyRequest {
                diff: Some(PbDescriptor {
                    media_type: media_type.into(),
                    digest: digest.into(),
                    size: size as i64,
                    annotations: Default::default(),
                }),
                mounts,
                payloads: Default::default(),
                sync_fs: false,
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Diff.Apply layer {digest}"), s))?
            .into_inner();
        Ok(r.applied.map(|d| d.digest).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        // Expected values computed with coreutils:
        // printf 'sha256:aa sha256:bb' | sha256sum, then the same with that and sha256:cc.
        let d: Vec<String> = ["sha256:aa", "sha256:bb", "sha256:cc"]
            .map(String::from)
            .to_vec();
        let c = chain_ids(&d);
        assert_eq!(c[0], "sha256:aa");
        assert_eq!(
            c[1],
            "sha256:b68ad689d6d1ec110ea1c13617437ad6f3766d4b3b309f6a603a222e07a0164f"
        );
        assert_eq!(
            c[2],
            "sha256:ced946a3b9b1c697ead0fa9bf9ad36e03198566077f3950076f64a4760acde1b"
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn sha256_digest_matches_a_known_value() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn layers(n: usize) -> Vec<(String, BTreeMap<String, String>)> {
        (0..n)
            .map(|i| {
                (
                    format!("sha256:{i:064x}"),
                    BTreeMap::from([
                        (
                            "containerd.io/snapshot/stargz/toc.digest".to_string(),
                            format!("sha256:toc{i}"),
                        ),
                        ("org.example/other".to_string(), "x".to_string()),
                    ]),
                )
            })
            .collect()
    }

    #[test]
    fn remote_labels_carry_reference_digest_later_layers_and_toc() {
        let l = layers(3);
        let labels = remote_labels("reg/img:tag", &l, 1, "sha256:chain", 10485760);
        assert_eq!(labels[STARGZ_REFERENCE_LABEL], "reg/img:tag");
        assert_eq!(labels[STARGZ_DIGEST_LABEL], l[1].0);
        assert_eq!(
            labels[STARGZ_LAYERS_LABEL],
            format!("{},{}", l[1].0, l[2].0)
        );
        assert_eq!(labels[STARGZ_PREFETCH_LABEL], "10485760");
        assert_eq!(labels[SNAPSHOT_REF_LABEL], "sha256:chain");
        assert_eq!(
            labels["containerd.io/snapshot/stargz/toc.digest"],
            "sha256:toc1"
        );
        assert!(
            !labels.contains_key("org.example/other"),
            "only containerd.io/snapshot/ annotations are inherited"
        );
    }

    #[test]
    fn layers_label_is_cut_to_the_label_size_limit() {
        let l = layers(100);
        let labels = remote_labels("r", &l, 0, "c", 0);
        let v = &labels[STARGZ_LAYERS_LABEL];
        assert!(STARGZ_LAYERS_LABEL.len() + v.len() <= MAX_LABEL_BYTES);
        assert!(
            v.starts_with(&l[0].0),
            "the target layer always comes first"
        );
        assert!(v.split(',').count() < 100);
        assert!(!v.ends_with(','));
    }

    #[test]
    fn unpack_keys_are_unique_and_name_the_chain() {
        let a = unpack_key("sha256:c");
        let b = unpack_key("sha256:c");
        assert_ne!(a, b);
        assert!(a.starts_with("extract-") && a.ends_with(" sha256:c"));
    }

    #[test]
    fn remote_label_detection() {
        let mut i = SnapshotInfo {
            name: "c".into(),
            parent: String::new(),
            kind: 3,
            labels: BTreeMap::new(),
        };
        assert!(!i.is_remote());
        i.labels
            .insert(REMOTE_LABEL.into(), REMOTE_LABEL_VALUE.into());
        assert!(i.is_remote());
    }
}
