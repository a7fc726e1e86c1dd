//! Bookkeeping of what advisor created in containerd and has not deleted yet.
//!
//! Every creating call records its object *before* the call is sent (a call
//! cancelled by Ctrl-C may still have happened on the server), and the matching
//! delete forgets it. After a failure or an interrupt, [`Tracker::take`] lists
//! what is left so the caller can delete it, newest first (a task before its
//! container, a container before its snapshot, a snapshot before the lease).
//! Owns the list only; it makes no calls.
use std::sync::{Arc, Mutex};

/// An object that must not outlive an advisor run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// A lease (in a namespace).
    Lease { namespace: String, id: String },
    /// A snapshot key (active or committed) in a snapshotter.
    Snapshot {
        namespace: String,
        snapshotter: String,
        key: String,
    },
    /// A container record.
    Container { namespace: String, id: String },
    /// A task of a container.
    Task {
        namespace: String,
        container: String,
    },
    /// A directory advisor made for stdio FIFOs.
    FifoDir { path: std::path::PathBuf },
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    inner: Arc<Mutex<Vec<Tracked>>>,
}

impl Tracker {
    /// Remember an object about to be created.
    pub fn add(&self, t: Tracked) {
        if let Ok(mut v) = self.inner.lock()
            && !v.contains(&t)
        {
            v.push(t);
        }
    }

    /// Forget an object that was deleted (or never created).
    pub fn remove(&self, t: &Tracked) {
        if let Ok(mut v) = self.inner.lock() {
            v.retain(|x| x != t);
        }
    }

    /// Whether anything is still recorded.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().map(|v| v.is_empty()).unwrap_or(true)
    }

    /// What is still recorded, oldest first.
    pub fn snapshot(&self) -> Vec<Tracked> {
        self.inner.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Take everything recorded, newest first: the order to delete in.
    pub fn take(&self) -> Vec<Tracked> {
        let mut v = self
            .inner
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        v.reverse();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_newest_first_and_empties() {
        let t = Tracker::default();
        let lease = Tracked::Lease {
            namespace: "n".into(),
            id: "l".into(),
        };
        let ctr = Tracked::Container {
            namespace: "n".into(),
            id: "c".into(),
        };
        t.add(lease.clone());
        t.add(ctr.clone());
        t.add(ctr.clone());
        assert_eq!(t.snapshot().len(), 2, "duplicates are recorded once");
        assert_eq!(t.take(), vec![ctr, lease]);
        assert!(t.is_empty());
    }

    #[test]
    fn remove_forgets_only_that_object() {
        let t = Tracker::default();
        let a = Tracked::Task {
            namespace: "n".into(),
            container: "a".into(),
        };
        let b = Tracked::Task {
            namespace: "n".into(),
            container: "b".into(),
        };
        t.add(a.clone());
        t.add(b.clone());
        t.remove(&a);
        assert_eq!(t.snapshot(), vec![b]);
    }
}
