//! The error type of the `image` module: what is wrong with a spec, a
//! prioritized-files list or the base layer's busybox, named so a user can fix
//! it. Registry and eStargz failures keep their own types (they already name
//! the registry URL or the layer) and get context from the caller.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file cannot be read.
    #[error("cannot read the image spec {}: {source}", path.display())]
    SpecRead {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The spec does not parse or a field is invalid. `field` is a path such as
    /// `layers[1].groups[0].size` (empty for the whole document).
    #[error("image spec {}{}: {problem}", path.display(), field_part(field))]
    Spec {
        path: PathBuf,
        field: String,
        problem: String,
    },

    /// A prioritized path (from `--prioritize FILE` or the spec's `prioritize`)
    /// is wrong. `origin` names the file and line or the spec field.
    #[error("prioritized file `{path}` ({origin}): {problem}")]
    Prioritized {
        origin: String,
        path: String,
        problem: String,
    },

    /// The `--prioritize` list cannot be read.
    #[error("cannot read the prioritized-files list {}: {source}", path.display())]
    PrioritizedRead {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The base layer needs a static busybox.
    #[error("{}: {problem}; install it with `apt-get install busybox-static` (Debian's static busybox), or set `\"base\": \"none\"` in the spec", path.display())]
    Busybox { path: PathBuf, problem: String },

    /// `--push` names something the tag scheme cannot use.
    #[error("--push {reference}: {problem}")]
    PushReference { reference: String, problem: String },
}

fn field_part(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(": `{field}`")
    }
}

impl Error {
    /// Every variant is about the user's input or machine.
    pub fn is_user_facing(&self) -> bool {
        true
    }
}
