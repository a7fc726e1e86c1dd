#![no_main]
// The harness lives in the library (advisor::fuzzing::toc) so that the stable
// smoke test runs the same code: tests/it/fuzz_smoke.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| advisor::fuzzing::toc(data));
