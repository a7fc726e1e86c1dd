//! Calibration: fitting the node's cost-model parameters from measured runs.
//!
//! Owns the regressions (`fit`) and, later, the calibration matrix and the
//! profile it writes. Does not run containers itself: it drives `bench`.
pub mod fit;
pub mod model;
pub mod workload;
