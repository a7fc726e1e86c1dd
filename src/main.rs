//! The `advisor` binary: parse, run, map the outcome to an exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    advisor::main_entry()
}
