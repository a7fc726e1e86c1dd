//! The integration tests: one test binary (`cargo test --test it`) instead of
//! one per file, so the crate is linked once. Each file is a module named for
//! what it tests; `cargo test --test it bad_input::` runs one of them.
//!
//! Tests run as threads of one process, in parallel: a test must not change
//! the process's working directory or environment, and writes only below its
//! own directory. End-to-end tests hold the lab through [`common::lab`], which
//! keeps the tests of one file from overlapping those of another (as when each
//! file was its own binary, run one after another).
mod common;
mod estargz_fixtures;

mod bad_input;
mod bench_interrupt;
mod calibrate_lab;
mod cli;
mod config_cli;
mod e2e_containerd;
mod e2e_estargz;
mod e2e_foundation;
mod estargz_errors;
mod estargz_go;
mod estargz_props;
mod estargz_roundtrip;
mod fault_matrix;
mod file_table_props;
mod fleet_lab;
mod fleet_plan;
mod fuzz_smoke;
mod hosts_lab;
mod image_cli;
mod image_lab;
mod jobs_progress;
mod lab_lifecycle;
mod lab_shape;
mod network_flip;
mod outputs;
mod plan_cli;
mod plots_cli;
mod probe;
mod recorder;
mod registry_lab;
mod registry_scripted;
mod trace_cli;
mod trace_lab;
mod trace_record;
mod units_cli;
mod validate_lab;
