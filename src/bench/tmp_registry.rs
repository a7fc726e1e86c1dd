//! TEMPORARY minimal registry fetch, until `crate::registry` lands on main;
//! then this file is deleted and [`super::source`] adapts the real client.
//! Anonymous, plain HTTP only for localhost or `--plain-http`, linux/amd64.
use crate::containerd::content::SourceError;
use crate::containerd::pull::{BlobSource, Descriptor, FetchedBlob, ImageToPull};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone)]
pub struct TmpRegistry {
    http: reqwest::Client,
    base: String,
    host: String,
    repo: String,
    tag: String,
    reference: String,
    received: Arc<AtomicU64>,
}

fn hex_digest(data: &[u8]) -> String {
    crate::containerd::unpack::sha256_digest(data)
}

impl TmpRegistry {
    pub fn new(reference: &str, plain_http: bool) -> anyhow::Result<Self> {
        let (host, rest) = reference.split_once('/').ok_or_else(|| {
            crate::error::user(format!(
                "image reference `{reference}` must be HOST/REPO:TAG"
            ))
        })?;
        let (repo, tag) = match rest.split_once('@') {
            Some((r, d)) => (r.to_string(), d.to_string()),
            None => match rest.rsplit_once(':') {
                Some((r, t)) => (r.to_string(), t.to_string()),
                None => (rest.to_string(), "latest".to_string()),
            },
        };
        let plain = plain_http || crate::commands::doctor::is_localhost(host);
        Ok(TmpRegistry {
            http: reqwest::Client::new(),
            base: format!(
                "{}://{host}/v2/{repo}",
                if plain { "http" } else { "https" }
            ),
            host: host.to_string(),
            repo,
            tag,
            reference: reference.to_string(),
            received: Arc::default(),
        })
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    async fn get(&self, url: &str, accept: Option<&str>) -> anyhow::Result<(Bytes, String)> {
        let mut req = self.http.get(url);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let r = req.send().await?;
        if !r.status().is_success() {
            crate::bail_user!("{url} answered {}", r.status());
        }
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let b = r.bytes().await?;
        self.received.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok((b, ct))
    }

    pub async fn resolve(&self) -> anyhow::Result<ImageToPull> {
        let (mut bytes, mut ct) = self
            .get(
                &format!("{}/manifests/{}", self.base, self.tag),
                Some(ACCEPT),
            )
            .await?;
        let mut index = None;
        if ct.contains("index") || ct.contains("list") {
            let v: serde_json::Value = serde_json::from_slice(&bytes)?;
            let m = v["manifests"]
                .as_array()
                .and_then(|a| {
                    a.iter().find(|m| {
                        m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64"
                    })
                })
                .ok_or_else(|| anyhow::anyhow!("no linux/amd64 manifest"))?
                .clone();
            index = Some(FetchedBlob {
                descriptor: Descriptor {
                    media_type: ct.clone(),
                    digest: hex_digest(&bytes),
                    size: bytes.len() as u64,
                    annotations: BTreeMap::new(),
                },
                bytes: bytes.clone(),
            });
            let d = m["digest"].as_str().unwrap_or_default().to_string();
            (bytes, ct) = self
                .get(&format!("{}/manifests/{d}", self.base), Some(ACCEPT))
                .await?;
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let desc = |d: &serde_json::Value| Descriptor {
            media_type: d["mediaType"].as_str().unwrap_or_default().to_string(),
            digest: d["digest"].as_str().unwrap_or_default().to_string(),
            size: d["size"].as_u64().unwrap_or(0),
            annotations: d["annotations"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let cdesc = desc(&v["config"]);
        let (cbytes, _) = self
            .get(&format!("{}/blobs/{}", self.base, cdesc.digest), None)
            .await?;
        let cfg: serde_json::Value = serde_json::from_slice(&cbytes)?;
        let diff_ids = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let layers = v["layers"]
            .as_array()
            .map(|a| a.iter().map(desc).collect())
            .unwrap_or_default();
        Ok(ImageToPull {
            reference: self.reference.clone(),
            registry: self.host.clone(),
            repository: self.repo.clone(),
            index,
            manifest: FetchedBlob {
                descriptor: Descriptor {
                    media_type: ct,
                    digest: hex_digest(&bytes),
                    size: bytes.len() as u64,
                    annotations: BTreeMap::new(),
                },
                bytes,
            },
            config: FetchedBlob {
                descriptor: cdesc,
                bytes: cbytes,
            },
            layers,
            diff_ids,
        })
    }
}

impl BlobSource for TmpRegistry {
    fn open(&self, layer: &Descriptor) -> BoxStream<'static, Result<Bytes, SourceError>> {
        let url = format!("{}/blobs/{}", self.base, layer.digest);
        let http = self.http.clone();
        let received = self.received.clone();
        // containerd checks the digest on COMMIT (expected digest in STAT/COMMIT).
        futures_util::stream::once(async move {
            let r = http.get(&url).send().await?;
            if !r.status().is_success() {
                return Err::<_, SourceError>(format!("{url} answered {}", r.status()).into());
            }
            Ok(r.bytes_stream())
        })
        .map(move |r| match r {
            Ok(s) => {
                let received = received.clone();
                s.map(move |c| {
                    let c = c.map_err(|e| -> SourceError { Box::new(e) })?;
                    received.fetch_add(c.len() as u64, Ordering::Relaxed);
                    Ok(c)
                })
                .boxed()
            }
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }
}
