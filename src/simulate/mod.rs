//! Simulation of the lazy-pulling node: what the stargz snapshotter fetches
//! for a sequence of file reads, as a pure, deterministic model.
//!
//! Owns the models of the machinery between a container's reads and the
//! registry, one file each: [`snapshotter`] (the stargz snapshotter's caches
//! and the HTTP range requests a read causes). A model of the network those
//! requests cross (round-trip time, bandwidth, concurrent requests) belongs
//! here too, as a sibling file that consumes the snapshotter's requests.
//!
//! Must not: know about traces or container paths (callers pass
//! [`FileRef`](crate::estargz::table::FileRef)s resolved by `trace`), turn
//! outcomes into seconds with a calibrated profile (that is `predict`), talk
//! to a registry or containerd, time anything, or print.
pub mod snapshotter;
