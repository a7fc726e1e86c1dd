//! Where a bench's images come from: resolves a reference to an
//! [`ImageToPull`] and streams layer blobs ([`BlobSource`]), counting the
//! bytes received. The one place that adapts the registry client to the
//! containerd adapter's types.
use crate::containerd::content::SourceError;
use crate::containerd::pull::{BlobSource, Descriptor, ImageToPull};
use bytes::Bytes;
use futures_util::stream::BoxStream;

/// A registry-backed image source. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct RegistrySource {
    inner: super::tmp_registry::TmpRegistry,
}

impl RegistrySource {
    pub fn new(reference: &str, plain_http: bool) -> anyhow::Result<Self> {
        Ok(RegistrySource {
            inner: super::tmp_registry::TmpRegistry::new(reference, plain_http)?,
        })
    }

    /// Index (if any), manifest and config, digest-verified.
    pub async fn resolve(&self) -> anyhow::Result<ImageToPull> {
        self.inner.resolve().await
    }

    /// Bytes received from the registry so far.
    pub fn received(&self) -> u64 {
        self.inner.received()
    }
}

impl BlobSource for RegistrySource {
    fn open(&self, layer: &Descriptor) -> BoxStream<'static, Result<Bytes, SourceError>> {
        self.inner.open(layer)
    }
}
