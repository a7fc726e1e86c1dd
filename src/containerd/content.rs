//! The content store: Content.Write (STAT / WRITE / COMMIT), Info, Read,
//! Update (labels), List and Delete.
//!
//! Follows containerd-grpc.md §1 step 2 and containerd's contentserver: the
//! first message of a Write stream is STAT with the ingest ref, total and
//! expected digest; a gRPC AlreadyExists means the blob is already in this
//! namespace; a STAT reply with `offset == total` means another namespace has
//! it (the default "shared" policy) and a COMMIT with no data adopts it. Data
//! goes in messages of at most [`WRITE_CHUNK`] bytes, each acknowledged before
//! the next (as Go's remote writer does), so a wrong offset fails at once.
//! Owns these calls only: where bytes come from is the caller's business.
use super::{Connection, Error, Result};
use bytes::Bytes;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{
    DeleteContentRequest, Info, InfoRequest, ListContentRequest, ReadContentRequest, UpdateRequest,
    WriteAction, WriteContentRequest,
};
use futures_util::{Stream, StreamExt};
use std::collections::{BTreeMap, HashMap};

/// Largest data message: Go writes 1 MiB buffers (content.Copy's buffer pool);
/// gRPC's default message limit is 16 MiB.
pub const WRITE_CHUNK: usize = 1 << 20;

/// Waiting on an ingest ref another writer holds: first pause, longest
/// pause, and how long before giving up with containerd's error.
const LOCK_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const LOCK_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// containerd's answer when another writer holds the ingest ref:
/// Unavailable, "ref … locked for …" (content/local store `tryLock`).
fn is_locked(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable && s.message().contains("locked")
}

/// Label set on a layer blob once unpacked: the diff ID (unpacker.go). Its
/// presence means "unpacked eagerly" (images/diffid.go fast path).
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// How a blob got into the content store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteOutcome {
    /// Streamed and committed.
    Written,
    /// Already in this namespace (gRPC AlreadyExists): nothing sent.
    AlreadyPresent,
    /// Another namespace had it: adopted with a data-less COMMIT.
    Shared,
}

/// Metadata of a blob in this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfo {
    pub digest: String,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
}

impl From<Info> for ContentInfo {
    fn from(i: Info) -> Self {
        ContentInfo {
            digest: i.digest,
            size: i.size.max(0) as u64,
            labels: i.labels.into_iter().collect(),
        }
    }
}

/// Where the bytes of a blob failed to arrive: the source's own error.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

impl Connection {
    /// Write one blob from a stream of byte chunks. `reference` names the image
    /// (for errors); `ingest_ref` is the ingest key (`layer-<digest>` etc.).
    /// Returns how the blob got in and how many bytes were sent. If `data` is
    /// never polled (the blob was present), nothing is downloaded.
    pub async fn write_blob<S>(
        &self,
        reference: &str,
        ingest_ref: &str,
        digest: &str,
        size: u64,
        labels: &BTreeMap<String, String>,
        data: S,
    ) -> Result<(WriteOutcome, u64)>
    where
        S: Stream<Item = std::result::Result<Bytes, SourceError>> + Send,
    {
        let op = |what: &str| format!("Content.Write {what} {digest} (image {reference})");
        let next = |r: std::result::Result<Option<_>, tonic::Status>, what: &str| match r {
            Ok(Some(m)) => Ok(Some(m)),
            Ok(None) => Err(self.rpc_error(
                op(what),
                tonic::Status::unknown("containerd closed the write stream early"),
            )),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(None),
            Err(s) => Err(self.rpc_error(op(what), s)),
        };
        // Another writer of the same ingest ref (a second pull of the image in
        // this namespace) holds its lock: wait for it, as containerd's own
        // pull does (content.OpenWriter), then find the blob committed.
        let mut wait = LOCK_RETRY_FIRST;
        let waited_since = std::time::Instant::now();
        let (tx, mut responses, stat) = loop {
            let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(2);
            // The server sends its response headers only after the first message:
            // queue STAT before starting the call, or the call never resolves.
            let _ = tx
                .send(WriteContentRequest {
                    action: WriteAction::Stat as i32,
                    r#ref: ingest_ref.to_string(),
                    total: size as i64,
                    expected: digest.to_string(),
                    ..Default::default()
                })
                .await;
            let resp = ContentClient::new(self.channel())
                .write(self.request(tokio_stream::wrappers::ReceiverStream::new(rx)))
                .await;
            let first = match resp {
                Ok(r) => {
                    let mut responses = r.into_inner();
                    responses.message().await.map(|m| (responses, m))
                }
                Err(s) => Err(s),
            };
            match first {
                Err(s) if is_locked(&s) && waited_since.elapsed() < LOCK_RETRY_FOR => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(LOCK_RETRY_MAX);
                }
                Err(s) if s.code() == tonic::Code::AlreadyExists => {
                    return Ok((WriteOutcome::AlreadyPresent, 0));
                }
                Err(s) => return Err(self.rpc_error(op("STAT"), s)),
                Ok((responses, m)) => {
                    let Some(stat) = next(Ok(m), "STAT")? else {
                        return Ok((WriteOutcome::AlreadyPresent, 0));
                    };
                    break (tx, responses, stat);
                }
            }
        };
        let send = |req: WriteContentRequest| {
            let tx = tx.clone();
            async move { tx.send(req).await.is_ok() }
        };
        let commit = |offset: i64| WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: ingest_ref.to_string(),
            total: size as i64,
            offset,
            expected: digest.to_string(),
            labels: labels.clone().into_iter().collect::<HashMap<_, _>>(),
            ..Default::default()
        };
        if stat.offset == size as i64 && size > 0 {
            // Shared policy: another namespace holds the blob; commit adopts it.
            send(commit(stat.offset)).await;
            next(responses.message().await, "COMMIT")?;
            return Ok((WriteOutcome::Shared, 0));
        }
        // A partial ingest left by an interrupted run: offset 0 truncates it.
        let mut offset: i64 = 0;
        let mut sent: u64 = 0;
        futures_util::pin_mut!(data);
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|source| Error::Fetch {
                reference: reference.to_string(),
                digest: digest.to_string(),
                source,
            })?;
            for piece in chunk.chunks(WRITE_CHUNK) {
                if !send(WriteContentRequest {
                    action: WriteAction::Write as i32,
                    r#ref: ingest_ref.to_string(),
                    offset,
                    data: piece.to_vec(),
                    ..Default::default()
                })
                .await
                {
                    break;
                }
                let Some(ack) = next(responses.message().await, "WRITE")? else {
                    return Ok((WriteOutcome::AlreadyPresent, sent));
                };
                offset += piece.len() as i64;
                sent += piece.len() as u64;
                if ack.offset != offset {
                    return Err(self.rpc_error(
                        op("WRITE"),
                        tonic::Status::out_of_range(format!(
                            "containerd is at offset {} after advisor sent {offset} bytes",
                            ack.offset
                        )),
                    ));
                }
            }
        }
        send(commit(offset)).await;
        next(responses.message().await, "COMMIT")?;
        Ok((WriteOutcome::Written, sent))
    }

    /// Metadata of a blob in this namespace, or None.
    pub async fn content_info(&self, digest: &str) -> Result<Option<ContentInfo>> {
        match ContentClient::new(self.channel())
            .info(self.request(InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().info.map(Into::into)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.rpc_error(format!("Content.Info {digest}"), s)),
        }
    }

    /// A whole blob (small ones: manifests, configs).
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = ContentClient::new(self.channel())
            .read(self.request(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Content.Read {digest}"), s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream
            .message()
            .await
            .map_err(|s| self.rpc_error(format!("Content.Read {digest}"), s))?
        {
            out.extend_from_slice(&m.data);
        }
        Ok(out)
    }

    /// Set labels on a blob (only the given keys change).
    pub async fn update_content_labels(
        &self,
        digest: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        ContentClient::new(self.channel())
            .update(self.request(UpdateRequest {
                info: Some(Info {
                    digest: digest.to_string(),
                    labels: labels.clone().into_iter().collect(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: labels.keys().map(|k| format!("labels.{k}")).collect(),
                }),
            }))
            .await
            .map_err(|s| self.rpc_error(format!("Content.Update {digest}"), s))?;
        Ok(())
    }

    /// Every blob in this namespace.
    pub async fn list_content(&self) -> Result<Vec<ContentInfo>> {
        let mut stream = ContentClient::new(self.channel())
            .list(self.request(ListContentRequest { filters: vec![] }))
            .await
            .map_err(|s| self.rpc_error("Content.List", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream
            .message()
            .await
            .map_err(|s| self.rpc_error("Content.List", s))?
        {
            out.extend(m.info.into_iter().map(ContentInfo::from));
        }
        Ok(out)
    }

    /// Delete a blob from this namespace; true if it was there.
    pub async fn delete_content(&self, digest: &str) -> Result<bool> {
        match ContentClient::new(self.channel())
            .delete(self.request(DeleteContentRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(self.rpc_error(format!("Content.Delete {digest}"), s)),
        }
    }
}
