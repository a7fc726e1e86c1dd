//! Pulling an image into containerd: eagerly (layer blobs downloaded, written
//! to the content store and applied onto `overlayfs` snapshots) or lazily
//! (only index, manifest and config stored; every layer mounted remotely by
//! the `stargz` snapshotter from the remote-snapshot labels).
//!
//! A pull is a sequence of steps the caller times one by one ([`Pull::begin`],
//! [`Pull::fetch`], [`Pull::unpack`], [`Pull::finish`]), following
//! containerd-grpc.md §1–2 and ctr's `images pull` (fetch everything, then
//! unpack): a lease first; metadata blobs written with their `gc.ref` labels;
//! eager layer blobs downloaded concurrently; layers unpacked bottom first;
//! `containerd.io/gc.ref.snapshot.<snapshotter>` on the config; Images.Create
//! (Update when it exists); the lease deleted.
//!
//! Guards: a lazy pull refuses layers without the eStargz TOC digest
//! annotation; neither method runs over state the other left (the seed's
//! "target snapshot already exists" corruption); a lazy layer the snapshotter
//! did not mount remotely is reported as [`LayerOutcome::FellBack`] (it was
//! downloaded), never as lazy. Owns the call sequence; it never talks to a
//! registry (bytes come from a [`BlobSource`]) and never times anything.
use super::content::{SourceError, UNCOMPRESSED_LABEL, WriteOutcome};
use super::unpack::{Prepared, chain_ids, inherited_labels, remote_labels, unpack_key};
use super::{Connection, Error, OVERLAYFS, Result, STARGZ};
use bytes::Bytes;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, UpdateImageRequest,
};
use containerd_client::types::Descriptor as PbDescriptor;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Layer annotation naming the TOC digest: present on eStargz layers only
/// (stargz-internals.md §1; the snapshotter refuses to verify a mount without it).
pub const TOC_DIGEST_ANNOTATION: &str = crate::estargz::toc::TOC_DIGEST_ANNOTATION;
/// Prefetch size ctr-remote's `rpull` passes (stargz-internals.md §5).
pub const DEFAULT_PREFETCH_SIZE: u64 = 10 * 1024 * 1024;
/// Retries of a Prepare whose key collided (unpacker.go tries 3 times).
const PREPARE_TRIES: usize = 3;

/// A content descriptor (media type, digest, size, annotations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    fn to_pb(&self) -> PbDescriptor {
        PbDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size as i64,
            annotations: self.annotations.clone().into_iter().collect(),
        }
    }
}

/// A small blob already fetched from the registry (digest-verified by the fetcher).
#[derive(Debug, Clone)]
pub struct FetchedBlob {
    pub descriptor: Descriptor,
    pub bytes: Bytes,
}

/// Everything about an image a pull needs, resolved by the registry client.
#[derive(Debug, Clone)]
pub struct ImageToPull {
    /// Full reference (`host/repo:tag`), used as the image name and the stargz reference label.
    pub reference: String,
    /// Registry host (`host:port`), for `containerd.io/distribution.source.<host>`.
    pub registry: String,
    pub repository: String,
    /// The index the reference pointed at, when it was one.
    pub index: Option<FetchedBlob>,
    pub manifest: FetchedBlob,
    pub config: FetchedBlob,
    pub layers: Vec<Descriptor>,
    /// `rootfs.diff_ids` of the config, one per layer.
    pub diff_ids: Vec<String>,
}

impl ImageToPull {
    /// The descriptor an image record points at (the index if any, else the manifest).
    pub fn target(&self) -> &Descriptor {
        self.index
            .as_ref()
            .map(|i| &i.descriptor)
            .unwrap_or(&self.manifest.descriptor)
    }

    /// Chain IDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids)
    }

    /// Digests of every blob of the image (index, manifest, config, layers).
    pub fn blob_digests(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .index
            .iter()
            .map(|i| i.descriptor.digest.clone())
            .collect();
        v.push(self.manifest.descriptor.digest.clone());
        v.push(self.config.descriptor.digest.clone());
        v.extend(self.layers.iter().map(|l| l.digest.clone()));
        v
    }

    /// Sum of compressed layer sizes: what an eager pull downloads.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Check the image is consistent; a user error names what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.layers.len() != self.diff_ids.len() {
            return Err(Error::BadImage {
                reference: self.reference.clone(),
                detail: format!(
                    "the manifest lists {} layers but the config has {} diff IDs",
                    self.layers.len(),
                    self.diff_ids.len()
                ),
            });
        }
        if self.layers.is_empty() {
            return Err(Error::BadImage {
                reference: self.reference.clone(),
                detail: "the image has no layers".into(),
            });
        }
        Ok(())
    }
}

/// Where layer bytes come from (the registry client). Streams must verify size
/// and digest and fail otherwise.
pub trait BlobSource: Send + Sync {
    fn open(
        &self,
        layer: &Descriptor,
    ) -> BoxStream<'static, std::result::Result<Bytes, SourceError>>;
}

/// How a pull unpacks layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Download every layer and apply it onto `overlayfs` snapshots.
    Eager,
    /// Mount every layer remotely with the `stargz` snapshotter.
    Lazy,
}

impl Method {
    /// The snapshotter this method unpacks into.
    pub fn snapshotter(self) -> &'static str {
        match self {
            Method::Eager => OVERLAYFS,
            Method::Lazy => STARGZ,
        }
    }

    /// The method a snapshotter name stands for (`stargz` is lazy, anything else eager).
    pub fn for_snapshotter(name: &str) -> Method {
        if name == STARGZ {
            Method::Lazy
        } else {
            Method::Eager
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub method: Method,
    /// Snapshotter to unpack into (default: the method's).
    pub snapshotter: String,
    /// `stargz.prefetch` label value (lazy).
    pub prefetch_size: u64,
    /// Concurrent layer downloads (eager); 0 = all at once, as ctr does.
    pub max_concurrent_downloads: usize,
}

impl PullOptions {
    pub fn new(method: Method) -> Self {
        PullOptions {
            method,
            snapshotter: method.snapshotter().to_string(),
            prefetch_size: DEFAULT_PREFETCH_SIZE,
            max_concurrent_downloads: 0,
        }
    }
}

/// What happened to one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerOutcome {
    /// Mounted remotely by the stargz snapshotter (verified: remote label).
    Remote,
    /// Downloaded and applied (eager).
    Downloaded,
    /// Asked to mount remotely, but the snapshotter returned mounts: downloaded and applied.
    FellBack,
    /// The chain ID snapshot already existed (warm); nothing done.
    Present,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerReport {
    pub digest: String,
    pub diff_id: String,
    pub chain_id: String,
    pub size: u64,
    pub outcome: LayerOutcome,
    /// How the blob got into the content store, when it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<WriteOutcome>,
    /// Bytes of this layer streamed from the source into containerd.
    pub downloaded: u64,
    /// Milliseconds this layer's unpack took (Diff.Apply, Commit, labels;
    /// the download too when it was not fetched before): layers unpacked
    /// here only, not remote or present ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpack_ms: Option<u64>,
}

/// The result of a finished pull.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullReport {
    pub reference: String,
    pub method: Method,
    pub snapshotter: String,
    pub target_digest: String,
    pub top_chain_id: String,
    pub layers: Vec<LayerReport>,
    /// Bytes streamed into containerd (metadata blobs and layers).
    pub downloaded: u64,
}

impl PullReport {
    /// Layers the snapshotter did not mount remotely although asked to.
    pub fn fallbacks(&self) -> Vec<&LayerReport> {
        self.layers
            .iter()
            .filter(|l| l.outcome == LayerOutcome::FellBack)
            .collect()
    }
}

/// A pull in progress: holds its lease until [`Pull::finish`] or [`Pull::abort`].
pub struct Pull {
    conn: Connection,
    image: Arc<ImageToPull>,
    source: Arc<dyn BlobSource>,
    opts: PullOptions,
    lease: String,
    chain: Vec<String>,
    layers: Vec<Option<LayerReport>>,
    blobs: Vec<Option<(WriteOutcome, u64)>>,
    downloaded: u64,
}

impl Pull {
    /// Validate the image, refuse a lazy pull of non-eStargz layers and any
    /// mix with state left by the other method, then create the lease.
    pub async fn begin(
        conn: &Connection,
        image: Arc<ImageToPull>,
        source: Arc<dyn BlobSource>,
        opts: PullOptions,
    ) -> Result<Pull> {
        image.validate()?;
        if opts.method == Method::Lazy
            && let Some(l) = image
                .layers
                .iter()
                .find(|l| !l.annotations.contains_key(TOC_DIGEST_ANNOTATION))
        {
            return Err(Error::NotEstargz {
                reference: image.reference.clone(),
                layer: l.digest.clone(),
            });
        }
        let chain = image.chain_ids();
        check_not_mixed(conn, &image, &chain, opts.method, &opts.snapshotter).await?;
        let lease = conn
            .create_lease("pull", super::lease::DEFAULT_EXPIRY)
            .await?;
        let n = image.layers.len();
        Ok(Pull {
            conn: conn.with_lease(&lease),
            image,
            source,
            opts,
            lease,
            chain,
            layers: vec![None; n],
            blobs: vec![None; n],
            downloaded: 0,
        })
    }

    /// The lease this pull holds.
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// Store index, manifest and config (with their `gc.ref` labels) and, for
    /// an eager pull, download every layer blob into the content store.
    pub async fn fetch(&mut self) -> Result<u64> {
        let img = self.image.clone();
        let img = &*img;
        let source_label = (
            format!("containerd.io/distribution.source.{}", img.registry),
            img.repository.clone(),
        );
        let with_source = |mut m: BTreeMap<String, String>| {
            m.insert(source_label.0.clone(), source_label.1.clone());
            m
        };
        if let Some(index) = &img.index {
            let labels = with_source(BTreeMap::from([(
                "containerd.io/gc.ref.content.m.0".to_string(),
                img.manifest.descriptor.digest.clone(),
            )]));
            self.put_small("index", index, labels).await?;
        }
        let mut mlabels = BTreeMap::from([(
            "containerd.io/gc.ref.content.config".to_string(),
            img.config.descriptor.digest.clone(),
        )]);
        for (i, l) in img.layers.iter().enumerate() {
            mlabels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.clone(),
            );
        }
        self.put_small("manifest", &img.manifest, with_source(mlabels))
            .await?;
        self.put_small("config", &img.config, with_source(BTreeMap::new()))
            .await?;
        if self.opts.method == Method::Eager {
            let limit = match self.opts.max_concurrent_downloads {
                0 => img.layers.len().max(1),
                n => n,
            };
            let conn = &self.conn;
            let source = &*self.source;
            let label = with_source(BTreeMap::new());
            let results: Vec<(usize, (WriteOutcome, u64))> =
                futures_util::stream::iter(img.layers.iter().enumerate())
                    .map(|(i, l)| {
                        let label = label.clone();
                        async move {
                            let r = write_layer(conn, img, source, l, &label).await?;
                            Ok::<_, Error>((i, r))
                        }
                    })
                    .buffer_unordered(limit)
                    .try_collect()
                    .await?;
            for (i, r) in results {
                self.downloaded += r.1;
                self.blobs[i] = Some(r);
            }
        }
        Ok(self.downloaded)
    }

    async fn put_small(
        &mut self,
        kind: &str,
        blob: &FetchedBlob,
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        let d = &blob.descriptor;
        let bytes = blob.bytes.clone();
        let data = futures_util::stream::once(async move { Ok::<_, SourceError>(bytes) });
        let (outcome, n) = self
            .conn
            .write_blob(
                &self.image.reference,
                &format!("{kind}-{}", d.digest),
                &d.digest,
                d.size,
                &labels,
                data,
            )
            .await?;
        if outcome != WriteOutcome::Written {
            // Labels ride on COMMIT; a blob already there needs them set.
            self.conn.update_content_labels(&d.digest, &labels).await?;
        }
        self.downloaded += n;
        Ok(())
    }

    /// Unpack every layer, bottom first, into the snapshotter.
    pub async fn unpack(&mut self) -> Result<()> {
        for i in 0..self.image.layers.len() {
            let report = self.unpack_layer(i).await?;
            self.layers[i] = Some(report);
        }
        Ok(())
    }

    async fn unpack_layer(&mut self, i: usize) -> Result<LayerReport> {
        let img = self.image.clone();
        let img = &*img;
        let layer = &img.layers[i];
        let chain_id = self.chain[i].clone();
        let parent = if i == 0 {
            String::new()
        } else {
            self.chain[i - 1].clone()
        };
        let sn = self.opts.snapshotter.clone();
        let mut report = LayerReport {
            digest: layer.digest.clone(),
            diff_id: img.diff_ids[i].clone(),
            chain_id: chain_id.clone(),
            size: layer.size,
            outcome: LayerOutcome::Present,
            blob: self.blobs[i].map(|b| b.0),
            downloaded: self.blobs[i].map(|b| b.1).unwrap_or(0),
            unpack_ms: None,
        };
        if let Some(info) = self.conn.stat_snapshot(&sn, &chain_id).await? {
            self.verify_existing(layer, &info)?;
            return Ok(report);
        }
        let labels = match self.opts.method {
            Method::Lazy => {
                let all: Vec<(String, BTreeMap<String, String>)> = img
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), l.annotations.clone()))
                    .collect();
                remote_labels(&img.reference, &all, i, &chain_id, self.opts.prefetch_size)
            }
            Method::Eager => inherited_labels(&layer.annotations, &chain_id),
        };
        let what = format!("layer {} of {}", layer.digest, img.reference);
        let mut prepared = None;
        for _ in 0..PREPARE_TRIES {
            let key = unpack_key(&chain_id);
            match self
                .conn
                .prepare_snapshot(&sn, &key, &parent, &labels, &what)
                .await?
            {
                Prepared::Mounts(m) => {
                    prepared = Some((key, m));
                    break;
                }
                Prepared::AlreadyExists(_) => {
                    if let Some(info) = self.conn.stat_snapshot(&sn, &chain_id).await? {
                        self.verify_existing(layer, &info)?;
                        report.outcome = if info.is_remote() {
                            LayerOutcome::Remote
                        } else {
                            LayerOutcome::Present
                        };
                        return Ok(report);
                    }
                    // The key collided but the chain ID is not there: try a new key.
                }
            }
        }
        let Some((key, mounts)) = prepared else {
            return Err(self.conn.rpc_error(
                format!("Snapshots.Prepare {sn} ({what})"),
                tonic::Status::already_exists(format!(
                    "extraction snapshot exists but chain ID {chain_id} is not found after {PREPARE_TRIES} tries"
                )),
            ));
        };
        // Mounts: an ordinary unpack. For a lazy pull this is the snapshotter's
        // silent fallback (its log says remote-snapshot-prepared=false).
        report.outcome = match self.opts.method {
            Method::Eager => LayerOutcome::Downloaded,
            Method::Lazy => LayerOutcome::FellBack,
        };
        let started = std::time::Instant::now();
        let r = self.apply_layer(i, &key, &chain_id, &labels, mounts).await;
        report.unpack_ms = Some(started.elapsed().as_millis() as u64);
        if r.is_err() {
            let _ = self.conn.remove_snapshot(&sn, &key).await;
        }
        let (blob, n) = r?;
        report.blob = Some(blob);
        report.downloaded = n;
        Ok(report)
    }

    async fn apply_layer(
        &mut self,
        i: usize,
        key: &str,
        chain_id: &str,
        labels: &BTreeMap<String, String>,
        mounts: Vec<containerd_client::types::Mount>,
    ) -> Result<(WriteOutcome, u64)> {
        let img = self.image.clone();
        let img = &*img;
        let layer = &img.layers[i];
        let blob = match self.blobs[i] {
            Some(b) => b,
            None => {
                let label = BTreeMap::from([(
                    format!("containerd.io/distribution.source.{}", img.registry),
                    img.repository.clone(),
                )]);
                let b = write_layer(&self.conn, img, &*self.source, layer, &label).await?;
                self.downloaded += b.1;
                self.blobs[i] = Some(b);
                b
            }
        };
        let diff_id = self
            .conn
            .apply_diff(&layer.media_type, &layer.digest, layer.size, mounts)
            .await?;
        if diff_id != img.diff_ids[i] {
            return Err(Error::DiffIdMismatch {
                reference: img.reference.clone(),
                layer: layer.digest.clone(),
                expected: img.diff_ids[i].clone(),
                got: diff_id,
            });
        }
        match self
            .conn
            .commit_snapshot(&self.opts.snapshotter, chain_id, key, labels)
            .await
        {
            Ok(()) => {}
            // Someone committed the same chain ID meanwhile (unpacker.go treats it as done).
            Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => {
                let _ = self.conn.remove_snapshot(&self.opts.snapshotter, key).await;
            }
            Err(e) => return Err(e),
        }
        self.conn
            .update_content_labels(
                &layer.digest,
                &BTreeMap::from([(UNCOMPRESSED_LABEL.to_string(), img.diff_ids[i].clone())]),
            )
            .await?;
        Ok(blob)
    }

    /// An existing chain-ID snapshot is fine only if it came from this method.
    fn verify_existing(
        &self,
        layer: &Descriptor,
        info: &super::unpack::SnapshotInfo,
    ) -> Result<()> {
        if self.opts.method == Method::Lazy && !info.is_remote() {
            return Err(Error::Mixed {
                reference: self.image.reference.clone(),
                namespace: self.conn.namespace.clone(),
                layer: layer.digest.clone(),
                existing_lazy: false,
                detail: format!(
                    "snapshot {} in `{}` is not a remote snapshot",
                    info.name, self.opts.snapshotter
                ),
            });
        }
        Ok(())
    }

    /// Label the config with the top snapshot, create (or update) the image
    /// record, delete the lease. The image is now the GC root.
    pub async fn finish(self) -> Result<PullReport> {
        let img = self.image.clone();
        let img = &*img;
        let top = self.chain.last().cloned().unwrap_or_default();
        self.conn
            .update_content_labels(
                &img.config.descriptor.digest,
                &BTreeMap::from([(
                    format!("containerd.io/gc.ref.snapshot.{}", self.opts.snapshotter),
                    top.clone(),
                )]),
            )
            .await?;
        create_or_update_image(&self.conn, &img.reference, img.target()).await?;
        let base = self.conn.in_namespace(&self.conn.namespace);
        base.delete_lease(&self.lease, false).await?;
        let layers: Vec<LayerReport> = self.layers.into_iter().flatten().collect();
        Ok(PullReport {
            reference: img.reference.clone(),
            method: self.opts.method,
            snapshotter: self.opts.snapshotter.clone(),
            target_digest: img.target().digest.clone(),
            top_chain_id: top,
            layers,
            downloaded: self.downloaded,
        })
    }

    /// Give up: delete the lease synchronously so GC removes what it held.
    pub async fn abort(self) -> Result<()> {
        let base = self.conn.in_namespace(&self.conn.namespace);
        base.delete_lease(&self.lease, true).await
    }
}

async fn write_layer(
    conn: &Connection,
    img: &ImageToPull,
    source: &dyn BlobSource,
    layer: &Descriptor,
    labels: &BTreeMap<String, String>,
) -> Result<(WriteOutcome, u64)> {
    // The stream is only polled when containerd lacks the blob, so a present
    // blob costs no download.
    let stream = source.open(layer);
    let r = conn
        .write_blob(
            &img.reference,
            &format!("layer-{}", layer.digest),
            &layer.digest,
            layer.size,
            labels,
            stream,
        )
        .await?;
    if r.0 != WriteOutcome::Written {
        conn.update_content_labels(&layer.digest, labels).await?;
    }
    Ok(r)
}

/// Refuse to pull with one method over layers the other method left behind.
async fn check_not_mixed(
    conn: &Connection,
    image: &ImageToPull,
    chain: &[String],
    method: Method,
    snapshotter: &str,
) -> Result<()> {
    let mixed = |layer: &str, existing_lazy: bool, detail: String| Error::Mixed {
        reference: image.reference.clone(),
        namespace: conn.namespace.clone(),
        layer: layer.to_string(),
        existing_lazy,
        detail,
    };
    for (layer, chain_id) in image.layers.iter().zip(chain) {
        match method {
            Method::Lazy => {
                // An eager unpack stamps the blob with its diff ID.
                if let Some(info) = conn.content_info(&layer.digest).await?
                    && info.labels.contains_key(UNCOMPRESSED_LABEL)
                {
                    return Err(mixed(
                        &layer.digest,
                        false,
                        format!("the blob is in the content store labelled {UNCOMPRESSED_LABEL}"),
                    ));
                }
                if let Some(info) = conn.stat_snapshot(snapshotter, chain_id).await?
                    && !info.is_remote()
                {
                    return Err(mixed(
                        &layer.digest,
                        false,
                        format!("snapshot {chain_id} in `{snapshotter}` is not a remote snapshot"),
                    ));
                }
            }
            Method::Eager => {
                if let Some(info) = conn.stat_snapshot(STARGZ, chain_id).await?
                    && info.is_remote()
                {
                    return Err(mixed(
                        &layer.digest,
                        true,
                        format!("snapshot {chain_id} in `{STARGZ}` is mounted remotely"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Images.Create; on AlreadyExists, Images.Update (pull.go `createNewImage`).
pub async fn create_or_update_image(
    conn: &Connection,
    name: &str,
    target: &Descriptor,
) -> Result<()> {
    let image = Image {
        name: name.to_string(),
        labels: Default::default(),
        target: Some(target.to_pb()),
        created_at: None,
        updated_at: None,
    };
    let mut client = ImagesClient::new(conn.channel());
    match client
        .create(conn.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            client
                .update(conn.request(UpdateImageRequest {
                    image: Some(image),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["target".into()],
                    }),
                    source_date_epoch: None,
                }))
                .await
                .map_err(|s| conn.rpc_error(format!("Images.Update {name}"), s))?;
            Ok(())
        }
        Err(s) => Err(conn.rpc_error(format!("Images.Create {name}"), s)),
    }
}

/// The target descriptor of an image record, or None.
pub async fn get_image(conn: &Connection, name: &str) -> Result<Option<Descriptor>> {
    match ImagesClient::new(conn.channel())
        .get(conn.request(GetImageRequest {
            name: name.to_string(),
        }))
        .await
    {
        Ok(r) => Ok(r
            .into_inner()
            .image
            .and_then(|i| i.target)
            .map(|t| Descriptor {
                media_type: t.media_type,
                digest: t.digest,
                size: t.size.max(0) as u64,
                annotations: t.annotations.into_iter().collect(),
            })),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(conn.rpc_error(format!("Images.Get {name}"), s)),
    }
}

/// Images.Delete; with `sync`, containerd collects garbage before replying.
/// True if the image existed.
pub async fn delete_image(conn: &Connection, name: &str, sync: bool) -> Result<bool> {
    match ImagesClient::new(conn.channel())
        .delete(conn.request(DeleteImageRequest {
            name: name.to_string(),
            sync,
            target: None,
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
        Err(s) => Err(conn.rpc_error(format!("Images.Delete {name}"), s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(layers: usize) -> ImageToPull {
        let blob = |d: &str| FetchedBlob {
            descriptor: Descriptor {
                media_type: "m".into(),
                digest: d.into(),
                size: 1,
                annotations: BTreeMap::new(),
            },
            bytes: Bytes::from_static(b"x"),
        };
        ImageToPull {
            reference: "r/i:t".into(),
            registry: "r".into(),
            repository: "i".into(),
            index: None,
            manifest: blob("sha256:m"),
            config: blob("sha256:c"),
            layers: (0..layers)
                .map(|i| Descriptor {
                    media_type: "l".into(),
                    digest: format!("sha256:l{i}"),
                    size: 10,
                    annotations: BTreeMap::new(),
                })
                .collect(),
            diff_ids: (0..layers).map(|i| format!("sha256:d{i}")).collect(),
        }
    }

    #[test]
    fn target_is_the_manifest_without_an_index() {
        let img = image(2);
        assert_eq!(img.target().digest, "sha256:m");
        assert_eq!(
            img.blob_digests(),
            ["sha256:m", "sha256:c", "sha256:l0", "sha256:l1"]
        );
        assert_eq!(img.layers_size(), 20);
    }

    #[test]
    fn validate_rejects_layer_and_diff_id_count_mismatch() {
        let mut img = image(2);
        img.diff_ids.pop();
        let e = img.validate().unwrap_err();
        assert!(
            e.to_string().contains("2 layers but the config has 1"),
            "{e}"
        );
        assert!(e.is_user_facing());
    }

    #[test]
    fn method_follows_the_snapshotter() {
        assert_eq!(Method::for_snapshotter("stargz"), Method::Lazy);
        assert_eq!(Method::for_snapshotter("overlayfs"), Method::Eager);
        assert_eq!(Method::Lazy.snapshotter(), "stargz");
    }
}
