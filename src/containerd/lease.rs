//! Leases: GC roots for content and snapshots that nothing references yet.
//!
//! containerd-grpc.md §1 step 1: until the image record exists, nothing points
//! at new blobs and snapshots, so a GC pass could delete them mid-pull. A lease
//! (with `containerd.io/gc.expire`, so a crashed advisor cannot pin content
//! forever) protects them; calls join it with the `containerd-lease` header
//! ([`Connection::with_lease`]). Owns Leases.Create/Delete/List only.
use super::tracker::Tracked;
use super::{Connection, Result};
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{CreateRequest, DeleteRequest, ListRequest};
use std::collections::HashMap;
use std::time::Duration;

/// Label containerd's GC reads to expire a lease (leases/lease.go `WithExpiration`).
pub const GC_EXPIRE_LABEL: &str = "containerd.io/gc.expire";
/// Label marking advisor's leases, so leftovers of a crashed run can be found.
pub const ADVISOR_LEASE_LABEL: &str = "advisor.lease";
/// Go's client default (`client.WithLease`): 24 h.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl Connection {
    /// Create a lease expiring after `expiry`, and record it in the tracker.
    pub async fn create_lease(&self, purpose: &str, expiry: Duration) -> Result<String> {
        let id = format!(
            "advisor-{purpose}-{}-{}",
            std::process::id(),
            super::nanos()
        );
        let expire = chrono::Utc::now()
            + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::hours(24));
        let labels = HashMap::from([
            (
                GC_EXPIRE_LABEL.to_string(),
                expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (ADVISOR_LEASE_LABEL.to_string(), purpose.to_string()),
        ]);
        let tracked = Tracked::Lease {
            namespace: self.namespace.clone(),
            id: id.clone(),
        };
        self.tracker().add(tracked.clone());
        let r = LeasesClient::new(self.channel())
            .create(self.request(CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await;
        if let Err(s) = r {
            let e = self.rpc_error(format!("Leases.Create {id}"), s);
            return Err(self.untrack_unless_lost(&tracked, e));
        }
        Ok(id)
    }

    /// Delete a lease; with `sync`, containerd collects garbage before replying.
    /// A lease that is already gone is not an error.
    pub async fn delete_lease(&self, id: &str, sync: bool) -> Result<()> {
        let r = LeasesClient::new(self.channel())
            .delete(self.request(DeleteRequest {
                id: id.to_string(),
                sync,
            }))
            .await;
        match r {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(self.rpc_error(format!("Leases.Delete {id}"), s)),
        }
        self.tracker().remove(&Tracked::Lease {
            namespace: self.namespace.clone(),
            id: id.to_string(),
        });
        Ok(())
    }

    /// IDs of the leases in this namespace.
    pub async fn list_leases(&self) -> Result<Vec<String>> {
        let r = LeasesClient::new(self.channel())
            .list(self.request(ListRequest { filters: vec![] }))
            .await
            .map_err(|s| self.rpc_error("Leases.List", s))?
            .into_inner();
        Ok(r.leases.into_iter().map(|l| l.id).collect())
    }
}
