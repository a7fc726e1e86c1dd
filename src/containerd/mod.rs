//! The containerd adapter: gRPC over containerd-client (tonic) on a unix socket.
//!
//! Owns every call to containerd and the conversion of `tonic::Status` into
//! typed errors that name the socket, namespace and object. It must not print,
//! time phases or decide what a measurement means: that is `bench`'s job. It
//! never talks to a registry itself: blobs arrive as byte streams from a
//! [`pull::BlobSource`].
//!
//! Submodules follow the call sequences of shared/docs/containerd-grpc.md:
//! [`lease`] (GC protection), [`content`] (Content.Write/Read/Update/Delete),
//! [`pull`] (eager and lazy pulls), [`unpack`] (chain IDs, Prepare/Apply/Commit,
//! remote-snapshot labels), [`run`] (containers, tasks, stdio FIFOs, readiness),
//! [`clean`] (cold clean-up and its post-conditions), [`owner`] (which
//! namespaces are advisor's, what the others hold) and [`tracker`] (what was
//! created and not yet deleted, so an interrupted run can clean up).
pub mod clean;
pub mod content;
pub mod lease;
pub mod owner;
pub mod pull;
pub mod run;
pub mod tracker;
pub mod unpack;

use containerd_client::services::v1::{
    PluginsRequest,
    introspection_client::IntrospectionClient,
    snapshots::snapshots_client::SnapshotsClient,
    snapshots::{PrepareSnapshotRequest, RemoveSnapshotRequest},
    version_client::VersionClient,
};
use std::path::{Path, PathBuf};
use tonic::Request;
use tonic::transport::Channel;

/// The snapshotter eager pulls unpack into.
pub const OVERLAYFS: &str = "overlayfs";
/// The proxy snapshotter name lazy pulls use (containerd's `[proxy_plugins.stargz]`).
pub const STARGZ: &str = "stargz";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no containerd socket at {address}: is containerd running? try `lab/lab up` then `eval \"$(lab/lab env)\"`, or pass --address"
    )]
    SocketMissing { address: PathBuf },

    #[error("{address} exists but is not a socket: pass containerd's gRPC socket with --address")]
    NotASocket { address: PathBuf },

    #[error(
        "permission denied on {address}: talking to containerd needs root; run advisor with sudo"
    )]
    PermissionDenied { address: PathBuf },

    #[error(
        "cannot connect to containerd at {address}: {detail}; is containerd running? try `lab/lab up`"
    )]
    Connect { address: PathBuf, detail: String },

    #[error(
        "containerd at {address} has no `{name}` snapshotter plugin: declare it in containerd's config \
         ([proxy_plugins.{name}] type = \"snapshot\", address = the snapshotter's socket; see docs/real-node.md) and restart containerd"
    )]
    SnapshotterMissing { address: PathBuf, name: String },

    #[error("containerd at {address} reports the `{name}` snapshotter as failed to load: {detail}")]
    SnapshotterFailed {
        address: PathBuf,
        name: String,
        detail: String,
    },

    #[error(
        "the `{name}` snapshotter is configured in containerd at {address} but does not answer: {detail}; \
         is its daemon running? (lab: `lab/lab up`; a real node: `systemctl status stargz-snapshotter`)"
    )]
    SnapshotterNotAnswering {
        address: PathBuf,
        name: String,
        detail: String,
    },

    #[error(
        "containerd at {address} stopped answering during {op} (namespace {namespace}): the connection was lost ({detail}); check that containerd runs (after a restart, run the command again)"
    )]
    ConnectionLost {
        op: String,
        address: PathBuf,
        namespace: String,
        detail: String,
    },

    #[error("containerd {op} failed (socket {address}, namespace {namespace}): {status}")]
    Rpc {
        op: String,
        address: PathBuf,
        namespace: String,
        status: Box<tonic::Status>,
    },

    #[error(
        "cannot lazy-pull {reference}: layer {layer} is not eStargz (no `containerd.io/snapshot/stargz/toc.digest` \
         annotation in the manifest); build or convert the image to eStargz (e.g. `ctr-remote image optimize --oci`), \
         or pull it eagerly with --snapshotter overlayfs"
    )]
    NotEstargz { reference: String, layer: String },

    #[error(
        "{reference}: layer {layer} is already present from a{} pull in namespace {namespace}: {detail}; \
         mixing eager and lazy pulls of the same layers corrupts containerd's state \
         (\"target snapshot already exists\"); clean up first (a cold `advisor bench` does) or use another image reference",
        if *existing_lazy { " lazy" } else { "n eager" }
    )]
    Mixed {
        reference: String,
        namespace: String,
        layer: String,
        existing_lazy: bool,
        detail: String,
    },

    #[error("{reference}: fetching blob {digest} from the registry failed")]
    Fetch {
        reference: String,
        digest: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{reference}: invalid image: {detail}")]
    BadImage { reference: String, detail: String },

    #[error(
        "{reference}: layer {layer} unpacked to {got}, but the image config says its diff ID is {expected}"
    )]
    DiffIdMismatch {
        reference: String,
        layer: String,
        expected: String,
        got: String,
    },

    #[error("container {container}: {what}: {source}")]
    Io {
        container: String,
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("container {container}: invalid readiness pattern or spec: {detail}")]
    BadRunSpec { container: String, detail: String },

    #[error(
        "cold clean-up of {reference} left state behind: {}; remove it by hand (ctr) or restart the lab (`lab/lab down && lab/lab up`)",
        leftovers.join("; ")
    )]
    NotCold {
        reference: String,
        leftovers: Vec<String>,
    },

    #[error(
        "{reference}: namespace(s) {} hold this image's content or snapshots and are not advisor's: {}; \
         a cold clean-up deletes the image's blobs and snapshots in every namespace, which would break what \
         uses them there (on a Kubernetes node, the kubelet's containers in k8s.io). advisor deletes only what it \
         created: run on a dedicated node, or pass --force to delete them anyway",
        namespaces.join(", "),
        holdings.join("; ")
    )]
    ForeignNamespaces {
        reference: String,
        namespaces: Vec<String>,
        holdings: Vec<String>,
    },

    #[error(
        "namespace {namespace} came from ctr's CONTAINERD_NAMESPACE and is not advisor's (advisor did not create it: \
         it lacks the label {}={}); a clean-up there deletes image records, leases, blobs and snapshots that may be \
         another tool's (on a Kubernetes node, the kubelet's in k8s.io). advisor deletes only what it created: set \
         ADVISOR_NAMESPACE or pass -n (e.g. `-n advisor`) to work in a namespace of advisor's, or pass --force to \
         clean up in {namespace} anyway",
        owner::OWNER_LABEL,
        owner::OWNER_VALUE
    )]
    ForeignWorkingNamespace { namespace: String },

    #[error("lazy reset command `{command}` failed: {detail}")]
    LazyReset { command: String, detail: String },
}

impl Error {
    /// Whether the call may have taken effect without an answer reaching
    /// advisor (containerd went away or did not answer in time): what it
    /// was creating may exist and has to be looked for.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::ConnectionLost { .. } => true,
            Error::Rpc { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ),
            _ => false,
        }
    }

    /// Whether the user (or their environment) can fix this.
    pub fn is_user_facing(&self) -> bool {
        match self {
            Error::Rpc { op, status, .. } => {
                matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::NotFound
                        | tonic::Code::PermissionDenied
                ) || command_failed_to_start(op, status.message())
            }
            Error::DiffIdMismatch { .. } => false,
            Error::Io { source, .. } => !matches!(source.kind(), std::io::ErrorKind::Other),
            _ => true,
        }
    }

    /// The gRPC code of a failed call, if this is one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

/// Tasks.Create refused because runc could not start the command (not
/// found, not executable): the command is the user's (`-- CMD…` or the
/// image's entrypoint), not a fault of containerd or advisor.
fn command_failed_to_start(op: &str, message: &str) -> bool {
    op.starts_with("Tasks.Create") && message.contains("unable to start container process")
}

pub type Result<T> = std::result::Result<T, Error>;

/// A connection to one containerd, working in one namespace.
#[derive(Clone, Debug)]
pub struct Connection {
    channel: Channel,
    pub address: PathBuf,
    pub namespace: String,
    /// Where `namespace`'s name came from: whether it is advisor's without
    /// the owner label ([`owner::is_own`]).
    origin: owner::NamespaceOrigin,
    /// Lease every call joins (`containerd-lease` header), if any.
    lease: Option<String>,
    /// Objects created through this connection (and its clones) and not yet deleted.
    tracker: tracker::Tracker,
}

impl Connection {
    /// Connect to containerd's socket, turning the usual failures into errors a user can act on.
    pub async fn connect(address: &Path, namespace: &str) -> Result<Self> {
        let address = address.to_path_buf();
        match std::fs::metadata(&address) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::SocketMissing { address });
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::PermissionDenied { address });
            }
            Err(e) => {
                return Err(Error::Connect {
                    address,
                    detail: e.to_string(),
                });
            }
            Ok(m) => {
                use std::os::unix::fs::FileTypeExt;
                if !m.file_type().is_socket() {
                    return Err(Error::NotASocket { address });
                }
            }
        }
        // Probe with a plain connect first: tonic folds the io error kind into a string.
        if let Err(e) = tokio::net::UnixStream::connect(&address).await {
            return Err(match e.kind() {
                std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { address },
                std::io::ErrorKind::ConnectionRefused => Error::Connect {
                    address,
                    detail: "connection refused (a stale socket: containerd is not running)".into(),
                },
                _ => Error::Connect {
                    address,
                    detail: e.to_string(),
                },
            });
        }
        let channel = containerd_client::connect(&address)
            .await
            .map_err(|e| Error::Connect {
                address: address.clone(),
                detail: e.to_string(),
            })?;
        Ok(Connection {
            channel,
            address,
            namespace: namespace.to_string(),
            origin: owner::NamespaceOrigin::Advisor,
            lease: None,
            tracker: tracker::Tracker::default(),
        })
    }

    /// The same connection, its namespace's name having come from `origin`
    /// ([`connect`](Self::connect) takes it as advisor's choice).
    pub fn with_origin(self, origin: owner::NamespaceOrigin) -> Connection {
        Connection { origin, ..self }
    }

    /// Where this connection's namespace's name came from.
    pub fn origin(&self) -> owner::NamespaceOrigin {
        self.origin
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The same connection working in another namespace (shares the channel and tracker, no lease).
    /// Another namespace's name is the calling code's choice, not ctr's.
    pub fn in_namespace(&self, namespace: &str) -> Connection {
        Connection {
            namespace: namespace.to_string(),
            origin: if namespace == self.namespace {
                self.origin
            } else {
                owner::NamespaceOrigin::Advisor
            },
            lease: None,
            ..self.clone()
        }
    }

    /// The same connection with every call joining a lease (new content,
    /// ingests and snapshots become GC roots until the lease is deleted).
    pub fn with_lease(&self, lease: &str) -> Connection {
        Connection {
            lease: Some(lease.to_string()),
            ..self.clone()
        }
    }

    /// The lease calls join, if any.
    pub fn lease(&self) -> Option<&str> {
        self.lease.as_deref()
    }

    /// What this connection created and has not deleted yet.
    pub fn tracker(&self) -> &tracker::Tracker {
        &self.tracker
    }

    /// After a call on `t` failed with `e`: forget `t` unless the call may
    /// have taken effect unanswered ([`Error::is_connection_lost`]; a task's
    /// shim outlives containerd, which restores it on restart). Kept, the
    /// clean-up looks for it (NotFound is fine). Returns `e`.
    pub fn untrack_unless_lost(&self, t: &tracker::Tracked, e: Error) -> Error {
        if !e.is_connection_lost() {
            self.tracker.remove(t);
        }
        e
    }

    /// A request carrying this connection's namespace header (and lease header, if any).
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        if let Some(lease) = &self.lease
            && let Ok(v) = lease.parse()
        {
            req.metadata_mut().insert("containerd-lease", v);
        }
        req
    }

    /// Wrap a failed call with the operation, socket and namespace.
    pub fn rpc_error(&self, op: impl Into<String>, status: tonic::Status) -> Error {
        // A call cut by containerd going away (killed, restarted) fails with
        // a transport error (code Unknown), not an answer from containerd.
        // A streaming call re-wraps it: the inner status is only in the message.
        let mut chain = Vec::new();
        let mut cause = std::error::Error::source(&status);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        let transport = status.code() == tonic::Code::Unknown
            && (status.message().contains("transport error")
                || std::error::Error::source(&status)
                    .is_some_and(|e| e.is::<tonic::transport::Error>()));
        if transport {
            return Error::ConnectionLost {
                op: op.into(),
                address: self.address.clone(),
                namespace: self.namespace.clone(),
                detail: chain
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "transport error".into()),
            };
        }
        Error::Rpc {
            op: op.into(),
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            status: Box::new(status),
        }
    }

    /// containerd's version and revision.
    pub async fn version(&self) -> Result<ServerVersion> {
        let r = VersionClient::new(self.channel())
            .version(Request::new(()))
            .await
            .map_err(|s| self.rpc_error("Version", s))?
            .into_inner();
        Ok(ServerVersion {
            version: r.version,
            revision: r.revision,
        })
    }

    /// The snapshotter plugins containerd loaded, with their status.
    pub async fn snapshotters(&self) -> Result<Vec<PluginStatus>> {
        let r = IntrospectionClient::new(self.channel())
            .plugins(Request::new(PluginsRequest {
                filters: vec!["type==io.containerd.snapshotter.v1".into()],
            }))
            .await
            .map_err(|s| self.rpc_error("Introspection.Plugins", s))?
            .into_inner();
        Ok(r.plugins
            .into_iter()
            .map(|p| PluginStatus {
                id: p.id,
                ok: p.init_err.is_none(),
                error: p.init_err.map(|s| s.message),
            })
            .collect())
    }

    /// Check that a snapshotter is loaded and answers a call through containerd.
    pub async fn check_snapshotter(&self, name: &str) -> Result<()> {
        let plugins = self.snapshotters().await?;
        match plugins.iter().find(|p| p.id == name) {
            None => {
                return Err(Error::SnapshotterMissing {
                    address: self.address.clone(),
                    name: name.into(),
                });
            }
            Some(p) if !p.ok => {
                return Err(Error::SnapshotterFailed {
                    address: self.address.clone(),
                    name: name.into(),
                    detail: p.error.clone().unwrap_or_default(),
                });
            }
            Some(_) => {}
        }
        // A proxy plugin reports ok even when its daemon is down, and List or
        // Stat are answered from containerd's own metadata: only a call that
        // reaches the backend proves it answers. Prepare a throwaway snapshot
        // and remove it. The snapshot holds no lease, so a garbage collection
        // another client's removal sets off may take it first: NotFound on
        // the removal means it is gone, and the Prepare already answered.
        let key = format!("advisor-probe-{}-{}", std::process::id(), nanos());
        let mut client = SnapshotsClient::new(self.channel());
        client
            .prepare(self.request(PrepareSnapshotRequest {
                snapshotter: name.into(),
                key: key.clone(),
                parent: String::new(),
                labels: Default::default(),
            }))
            .await
            .map_err(|s| self.not_answering(name, s))?;
        match client
            .remove(self.request(RemoveSnapshotRequest {
                snapshotter: name.into(),
                key,
            }))
            .await
        {
            Err(s) if s.code() != tonic::Code::NotFound => Err(self.not_answering(name, s)),
            _ => Ok(()),
        }
    }

    /// [`check_snapshotter`](Self::check_snapshotter), retried while the
    /// snapshotter does not answer: after a proxy snapshotter restarts,
    /// containerd re-dials its socket with gRPC's backoff, so the first calls
    /// may still fail for a few seconds.
    pub async fn wait_for_snapshotter(
        &self,
        name: &str,
        patience: std::time::Duration,
    ) -> Result<()> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match self.check_snapshotter(name).await {
                Err(Error::SnapshotterNotAnswering { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                r => return r,
            }
        }
    }

    fn not_answering(&self, name: &str, s: tonic::Status) -> Error {
        Error::SnapshotterNotAnswering {
            address: self.address.clone(),
            name: name.into(),
            detail: s.message().to_string(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServerVersion {
    pub version: String,
    pub revision: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginStatus {
    pub id: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// Nanoseconds since the epoch, for unique keys.
pub fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(op: &str, message: &str) -> Error {
        Error::Rpc {
            op: op.into(),
            address: "/run/containerd/containerd.sock".into(),
            namespace: "advisor".into(),
            status: Box::new(tonic::Status::unknown(message)),
        }
    }

    /// `trace record -- /no/such/cmd`: runc cannot start the user's command,
    /// which is the user's to fix (exit 1), not an internal failure (exit 2).
    #[test]
    fn a_command_runc_cannot_start_is_the_users() {
        let e = rpc(
            "Tasks.Create record-1",
            "failed to create shim task: OCI runtime create failed: runc create failed: unable to \
             start container process: exec: \"/no/such/cmd\": stat /no/such/cmd: no such file or directory: unknown",
        );
        assert!(e.is_user_facing());
        assert!(!rpc("Tasks.Create record-1", "shim died").is_user_facing());
        assert!(
            !rpc("Diff.Apply layer x", "unable to start container process").is_user_facing(),
            "only Tasks.Create starts the command"
        );
    }
}
