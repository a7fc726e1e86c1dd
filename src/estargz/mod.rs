//! The eStargz layer format: TOC types, footer, writer and reader, and the
//! file table derived from a TOC.
//!
//! Owns format facts (docs/estargz.md) and their validation. Must not talk to
//! a registry or containerd: callers hand it bytes, readers and writers.
//!
//! - [`footer`]: build and parse the 51-byte footer (47-byte legacy on read).
//! - [`writer`]: the streaming, parallel eStargz writer and the entry point
//!   of both forms; [`gzip`]: the plain gzip form; [`tar`]: tar framing and
//!   the one loop over an input tar's entries; [`convert`]: a tar with
//!   prioritized files first (`estargz.Build`).
//! - [`reader`]: TOC parsing and validation, format detection, and a scanner
//!   for non-eStargz layers; both produce a [`table::LayerFiles`].
//! - [`toc`], [`table`]: the TOC JSON types and the file table.
pub mod convert;
mod error;
pub mod footer;
pub mod gzip;
mod members;
pub mod reader;
pub mod table;
pub mod tar;
pub mod toc;
pub mod writer;

pub use error::{EntryProblem, Error, ErrorKind};

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of a finished hasher.
pub(crate) fn digest_string(hasher: Sha256) -> String {
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// `sha256:<hex>` of raw digest bytes.
pub(crate) fn digest_from_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(bytes))
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    digest_string(Sha256::new_with_prefix(bytes))
}

/// Whether `s` is an OCI digest advisor can check: `sha256:` (or `sha512:`)
/// and lowercase hex of the right length, as go-digest's `Parse` requires.
pub fn is_valid_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_digest() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_valid_digest(&sha256_digest(b"x")));
        assert!(!is_valid_digest("sha256:E3B0"));
        assert!(!is_valid_digest("md5:00"));
    }
}
