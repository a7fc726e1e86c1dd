//! Where a bench's images come from: the registry client
//! ([`crate::registry`]) resolves a reference to an [`ImageToPull`] and
//! streams layer blobs ([`BlobSource`], digest- and size-verified by the
//! client), counting the bytes received. The one place that adapts the
//! registry client's types to the containerd adapter's.
use crate::containerd::content::SourceError;
use crate::containerd::pull::{BlobSource, Descriptor, FetchedBlob, ImageToPull};
use crate::registry::{RegistryClient, RegistryOptions, Repository, ResolvedImage};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::collections::BTreeMap;
use std::str::FromStr;

/// A registry-backed image source. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct RegistrySource {
    client: RegistryClient,
    repo: Repository,
}

impl RegistrySource {
    /// A source for `reference` with the default registry options and `plain_http`.
    pub fn new(reference: &str, plain_http: bool) -> anyhow::Result<Self> {
        Self::with_options(
            reference,
            RegistryOptions {
                plain_http,
                ..Default::default()
            },
        )
    }

    pub fn with_options(reference: &str, opts: RegistryOptions) -> anyhow::Result<Self> {
        let client = RegistryClient::new(opts)?;
        let repo = client.repository(reference)?;
        Ok(RegistrySource { client, repo })
    }

    /// The reference in containerd's normalised form (`host/repo:tag`,
    /// `host/repo@digest`): the image record's name and the stargz reference label.
    pub fn normalized(&self) -> String {
        let r = &self.repo;
        let mut s = format!("{}/{}", r.registry, r.repository);
        if let Some(t) = &r.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &r.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Index (if any), manifest and config, digest-verified.
    pub async fn resolve(&self) -> anyhow::Result<ImageToPull> {
        let r = self.client.resolve(&self.repo.reference).await?;
        Ok(to_pull(&r, self.normalized()))
    }

    /// Bytes received from the registry so far.
    pub fn received(&self) -> u64 {
        self.client.stats().bytes_received
    }
}

fn descriptor(d: &oci_spec::image::Descriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type().to_string(),
        digest: d.digest().to_string(),
        size: d.size(),
        annotations: d
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

/// The registry's resolved image as the pull needs it.
pub fn to_pull(r: &ResolvedImage, reference: String) -> ImageToPull {
    let small = |media_type: &str, digest: &str, bytes: &[u8]| FetchedBlob {
        descriptor: Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        },
        bytes: Bytes::copy_from_slice(bytes),
    };
    ImageToPull {
        reference,
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        index: match (&r.index_digest, &r.index_bytes, &r.index_media_type) {
            (Some(d), Some(b), Some(m)) => Some(small(m, d, b)),
            _ => None,
        },
        manifest: small(
            &r.manifest_media_type,
            &r.manifest_digest,
            &r.manifest_bytes,
        ),
        config: FetchedBlob {
            descriptor: descriptor(&r.config_descriptor),
            bytes: Bytes::copy_from_slice(&r.config_bytes),
        },
        layers: r.layers().iter().map(descriptor).collect(),
        diff_ids: r
            .config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.to_string())
            .collect(),
    }
}

impl BlobSource for RegistrySource {
    fn open(&self, layer: &Descriptor) -> BoxStream<'static, Result<Bytes, SourceError>> {
        let client = self.client.clone();
        let repo = self.repo.clone();
        let layer = layer.clone();
        futures_util::stream::once(async move {
            let digest =
                oci_spec::image::Digest::from_str(&layer.digest).map_err(|e| -> SourceError {
                    format!("layer digest {}: {e}", layer.digest).into()
                })?;
            let desc = oci_spec::image::Descriptor::new(
                oci_spec::image::MediaType::from(layer.media_type.as_str()),
                layer.size,
                digest,
            );
            client
                .blob_stream(&repo, &desc)
                .await
                .map_err(|e| -> SourceError { Box::new(e) })
        })
        .map(|r| match r {
            Ok(s) => s
                .map(|c| c.map_err(|e| -> SourceError { Box::new(e) }))
                .boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }
}
