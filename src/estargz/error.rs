//! The one error type of the `estargz` module.
//!
//! Every error names the layer it is about (its digest, or the label the
//! writer was given) and what is wrong, in words a user can act on. Corrupt or
//! unsupported input is the user's to fix ([`Error::is_user_facing`]); only a
//! broken invariant inside advisor is not.
use std::io;

/// An eStargz read, scan or write failure, naming the layer.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}: {kind}")]
pub struct Error {
    /// The layer digest (reads, scans) or the writer's label (writes).
    pub layer: String,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(layer: impl Into<String>, kind: ErrorKind) -> Self {
        Error {
            layer: layer.into(),
            kind,
        }
    }

    /// Whether the user can fix it (corrupt or unsupported input, an I/O
    /// failure of their files or disk) rather than it being a bug in advisor.
    pub fn is_user_facing(&self) -> bool {
        !matches!(self.kind, ErrorKind::Internal(_))
    }
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error(
        "the blob is {size} bytes, smaller than an eStargz footer ({min} bytes): it is truncated or not eStargz"
    )]
    TooSmall { size: u64, min: u64 },

    #[error(
        "no eStargz footer at the end of the blob ({detail}): the blob is truncated, corrupt or not eStargz"
    )]
    NoFooter { detail: String },

    #[error(
        "the footer puts the TOC at offset {offset}, but the blob is {blob_size} bytes: the blob is truncated or its footer is corrupt"
    )]
    TocOffsetOutOfRange { offset: u64, blob_size: u64 },

    #[error("the TOC gzip member at offset {offset} is unreadable: {detail}")]
    TocMember { offset: u64, detail: String },

    #[error(
        "the TOC JSON is {size} bytes, more than advisor's limit of {limit} bytes; the TOC is corrupt or the layer is too large to inspect"
    )]
    TocTooLarge { size: u64, limit: u64 },

    #[error(
        "the TOC JSON has digest {actual} but {expected} was expected (the layer's `containerd.io/snapshot/stargz/toc.digest` annotation): the TOC or the manifest was altered"
    )]
    TocDigestMismatch { expected: String, actual: String },

    #[error(
        "the expected TOC digest `{0}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)"
    )]
    BadExpectedDigest(String),

    #[error("the TOC JSON is invalid at line {line} column {column}: {message}")]
    TocJson {
        line: usize,
        column: usize,
        message: String,
    },

    #[error("the TOC has version {0}; advisor reads version 1 (stargz-snapshotter v0.12 writes 1)")]
    TocVersion(u32),

    #[error("TOC entry {index} `{name}` {problem}")]
    Entry {
        index: usize,
        name: String,
        problem: EntryProblem,
    },

    #[error("tar entry {index} `{name}` {problem}")]
    TarEntry {
        index: usize,
        name: String,
        problem: EntryProblem,
    },

    #[error("the blob is not a valid gzip or tar stream: {0}")]
    Stream(String),

    #[error("{what} layers are not supported here: {hint}")]
    Unsupported { what: String, hint: String },

    #[error("input tar entry `{path}`: {problem}")]
    Input { path: String, problem: String },

    #[error(
        "prioritized file `{0}` is not in the input tar: prioritized paths must name files of the layer"
    )]
    PrioritizedMissing(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error("internal error (a bug in advisor): {0}")]
    Internal(String),
}

/// What is wrong with one TOC entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    #[error("escapes the layer root (a `..` component)")]
    EscapesRoot,
    #[error("is an absolute path; TOC names are relative to the layer root")]
    Absolute,
    #[error("has an empty name")]
    EmptyName,
    #[error("is a hardlink whose target `{0}` is absolute or escapes the layer root")]
    HardlinkEscapes(String),
    #[error("is a hardlink to `{0}`, which is not in the TOC")]
    HardlinkTargetMissing(String),
    #[error(
        "has offset {offset}, at or after the TOC's offset {toc_offset}: payloads must precede the TOC"
    )]
    OffsetBeyondToc { offset: u64, toc_offset: u64 },
    #[error("has a payload ({size} bytes) but no offset")]
    MissingOffset { size: u64 },
    #[error(
        "has offset {0} but no payload; only payloads (non-empty `reg` and `chunk` entries) have offsets"
    )]
    UnexpectedOffset(u64),
    #[error(
        "has offset {offset}, not after the previous payload's offset {previous}: payload offsets must increase"
    )]
    OffsetNotIncreasing { offset: u64, previous: u64 },
    #[error("is a chunk without a preceding `reg` entry of the same file")]
    ChunkWithoutReg,
    #[error("is a chunk of `{expected}` but is named differently")]
    ChunkNameMismatch { expected: String },
    #[error(
        "does not tile its file: it starts at byte {chunk_offset} but the previous chunk ends at byte {expected}"
    )]
    ChunkGap { chunk_offset: u64, expected: u64 },
    #[error(
        "leaves its {size}-byte file covered only up to byte {covered}: chunks do not tile the file"
    )]
    ChunksIncomplete { size: u64, covered: u64 },
    #[error("has a chunk ending at byte {end}, beyond its file's size {size}")]
    ChunkBeyondFile { end: u64, size: u64 },
    #[error("has a size or offset that overflows 63 bits")]
    SizeOverflow,
    #[error("has a malformed {field} `{value}` (expected `sha256:` and 64 lowercase hex digits)")]
    BadDigest { field: &'static str, value: String },
    #[error(
        "uses `innerOffset` (eStargz newer than stargz-snapshotter v0.12), which advisor does not read"
    )]
    InnerOffset,
}

/// Build an `Err` of an [`Error`] for a layer.
pub(crate) fn err<T>(layer: &str, kind: ErrorKind) -> Result<T, Error> {
    Err(Error::new(layer, kind))
}

/// An I/O error with what advisor was doing, for a layer.
pub(crate) fn io_err(layer: &str, context: impl Into<String>, source: io::Error) -> Error {
    Error::new(
        layer,
        ErrorKind::Io {
            context: context.into(),
            source,
        },
    )
}
