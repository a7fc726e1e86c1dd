//! Simulation of the lazy-pulling node: what the stargz snapshotter fetches
//! for a sequence of file reads, as a pure, deterministic model.
//!
//! Owns the models of the machinery between a container's reads and the
//! registry, one file each: [`snapshotter`] (the stargz snapshotter's caches
//! and the HTTP range requests a read causes), [`network`] (what those
//! requests and containerd's downloads cost on a path with round-trip time
//! and bandwidth) and [`fleet`] (many nodes' runs sharing one registry).
//!
//! Must not: know about traces or container paths (callers pass
//! [`FileRef`](crate::estargz::table::FileRef)s resolved by `trace`), turn
//! outcomes into seconds with a calibrated profile (that is `predict`), talk
//! to a registry or containerd, time anything, or print.
pub mod fleet;
pub mod network;
pub mod snapshotter;
