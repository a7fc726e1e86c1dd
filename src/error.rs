//! Error classification for exit codes.
//!
//! Owns the split between "the user's input or environment is wrong" (exit 1)
//! and "a bug or unexpected failure" (exit 2). Modules raise typed errors at
//! their boundary; anything that is the user's to fix is wrapped in (or has in
//! its chain) a [`UserError`], or one of the adapter error types listed in
//! [`is_user_error`].
use std::fmt;

/// An error the user can fix: bad input, a missing service, a wrong flag.
/// The message names the input and the fix.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Build an `anyhow::Error` that exits with code 1.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// Return early with a [`UserError`].
#[macro_export]
macro_rules! bail_user {
    ($($arg:tt)*) => {
        return Err($crate::error::user(format!($($arg)*)))
    };
}

/// Whether any cause in the chain is the user's to fix.
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UserError>()
            || e.downcast_ref::<crate::containerd::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::registry::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::trace::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::estargz::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::image::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::calibrate::fit::FitError>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::calibrate::model::ModelError>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<crate::profile::Error>()
                .is_some_and(|e| e.is_user_facing())
            || e.downcast_ref::<std::io::Error>().is_some_and(|e| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                )
            })
    })
}

/// Exit code for a failed run: 1 when the user can fix it, 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if is_user_error(err) { 1 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn user_error_anywhere_in_chain_exits_1() {
        let e: anyhow::Error = Err::<(), _>(user("bad trace"))
            .context("while reading")
            .unwrap_err();
        assert_eq!(exit_code(&e), 1);
    }

    #[test]
    fn plain_error_exits_2() {
        let e = anyhow::anyhow!("unexpected state");
        assert_eq!(exit_code(&e), 2);
    }

    #[test]
    fn too_few_calibration_runs_exit_1_a_flawed_matrix_2() {
        use crate::calibrate::fit::FitError;
        use crate::calibrate::model::ModelError;
        let few = ModelError::Fit(FitError::TooFewRuns {
            fit: "eager-fetch".into(),
            n: 2,
            p: 2,
            need: 4,
        });
        let e = anyhow::Error::new(few).context("fitting the profile from runs.jsonl");
        assert_eq!(exit_code(&e), 1);
        let flawed = ModelError::Fit(FitError::Collinear {
            fit: "lazy-io".into(),
        });
        assert_eq!(exit_code(&anyhow::Error::new(flawed)), 2);
    }

    #[test]
    fn missing_file_exits_1() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("reading trace.jsonl");
        assert_eq!(exit_code(&e), 1);
    }
}
