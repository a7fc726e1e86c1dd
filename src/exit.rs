//! Exit codes: which failures are the user's to fix.
//!
//! Owns the split between "the user's input or environment is wrong" (exit 1)
//! and "a bug or unexpected failure" (exit 2), for [`crate::main_entry`]. It
//! is the one module that knows every stage's error type: it asks each one
//! (`is_user_facing`) and never the other way round — stages raise their own
//! typed errors or a [`UserError`], and must not call into this module.
use crate::error::UserError;

/// Exit code of a run that failed because the user's input or environment is wrong.
pub const USER: u8 = 1;
/// Exit code of a bug or an unexpected failure.
pub const INTERNAL: u8 = 2;

/// Exit code for a failed run: [`USER`] when the user can fix it, [`INTERNAL`] otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if is_user_error(err) { USER } else { INTERNAL }
}

/// Whether any cause in the chain is the user's to fix.
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(is_user_cause)
}

/// One cause: a [`UserError`], a stage error that says it is user-facing, or
/// an I/O error about a file the user named (missing, unreadable, malformed).
fn is_user_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<UserError>()
        || user_facing::<crate::containerd::Error>(e, |e| e.is_user_facing())
        || user_facing::<crate::registry::Error>(e, |e| e.is_user_facing())
        || user_facing::<crate::trace::Error>(e, |e| e.is_user_facing())
        || user_facing::<crate::estargz::Error>(e, |e| e.is_user_facing())
        || user_facing::<crate::image::Error>(e, |e| e.is_user_facing())
        || user_facing::<crate::calibrate::fit::FitError>(e, |e| e.is_user_facing())
        || user_facing::<crate::calibrate::model::ModelError>(e, |e| e.is_user_facing())
        || user_facing::<crate::profile::Error>(e, |e| e.is_user_facing())
        || user_facing::<std::io::Error>(e, |e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
            )
        })
}

/// Whether `e` is a `T` and `T` says it is the user's to fix.
fn user_facing<T: std::error::Error + 'static>(
    e: &(dyn std::error::Error + 'static),
    is_user: impl Fn(&T) -> bool,
) -> bool {
    e.downcast_ref::<T>().is_some_and(is_user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::user;
    use anyhow::Context;
    use std::path::PathBuf;

    fn code(e: impl std::error::Error + Send + Sync + 'static) -> u8 {
        exit_code(&anyhow::Error::new(e).context("while doing the command's work"))
    }

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
        // A bare fit error is classified by its own type too.
        assert_eq!(
            code(FitError::Collinear {
                fit: "lazy-io".into()
            }),
            2
        );
    }

    #[test]
    fn missing_file_exits_1() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("reading trace.jsonl");
        assert_eq!(exit_code(&e), 1);
        assert_eq!(code(std::io::Error::other("broken pipe")), 2);
    }

    #[test]
    fn containerd_socket_missing_exits_1_a_diff_id_mismatch_2() {
        use crate::containerd::Error;
        let missing = Error::SocketMissing {
            address: PathBuf::from("/run/containerd/containerd.sock"),
        };
        assert_eq!(code(missing), 1);
        let mismatch = Error::DiffIdMismatch {
            reference: "r".into(),
            layer: "sha256:a".into(),
            expected: "sha256:b".into(),
            got: "sha256:c".into(),
        };
        assert_eq!(code(mismatch), 2);
    }

    #[test]
    fn registry_bad_reference_exits_1_client_setup_2() {
        use crate::registry::Error;
        let bad = Error::InvalidReference {
            reference: "UPPER".into(),
            reason: "uppercase".into(),
        };
        assert_eq!(code(bad), 1);
        let setup = Error::Internal {
            detail: "no TLS backend".into(),
        };
        assert_eq!(code(setup), 2);
    }

    #[test]
    fn trace_parse_error_exits_1_an_interrupted_read_2() {
        use crate::trace::Error;
        let parse = Error::Parse {
            file: "trace.jsonl".into(),
            line: 3,
            field: Some("offset"),
            message: "negative".into(),
        };
        assert_eq!(code(parse), 1);
        let interrupted = Error::Io {
            file: "trace.jsonl".into(),
            action: "reading",
            source: std::io::ErrorKind::Interrupted.into(),
        };
        assert_eq!(code(interrupted), 2);
    }

    #[test]
    fn estargz_corrupt_layer_exits_1_a_broken_invariant_2() {
        use crate::estargz::{Error, ErrorKind};
        let truncated = Error::new("sha256:a", ErrorKind::TooSmall { size: 10, min: 51 });
        assert_eq!(code(truncated), 1);
        let bug = Error::new("sha256:a", ErrorKind::Internal("chunk out of order".into()));
        assert_eq!(code(bug), 2);
    }

    #[test]
    fn image_spec_and_profile_errors_exit_1() {
        let spec = crate::image::Error::Spec {
            path: PathBuf::from("spec.json"),
            field: "layers[0]".into(),
            problem: "missing".into(),
        };
        assert_eq!(code(spec), 1);
        let profile = crate::profile::Error::Schema {
            path: "profile.json".into(),
            found: "v0".into(),
        };
        assert_eq!(code(profile), 1);
    }
}
