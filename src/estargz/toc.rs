//! The eStargz table of contents (`stargz.index.json`), as serde types.
//!
//! Field meanings: ../../docs/estargz.md and stargz-snapshotter's estargz/types.go.
//! Owns the JSON shape only; validation lives in `reader`, layout in `table`.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the TOC entry inside its tar.
pub const TOC_TAR_NAME: &str = "stargz.index.json";
/// Landmark ending the prioritized (prefetch) range.
pub const PREFETCH_LANDMARK: &str = ".prefetch.landmark";
/// Landmark saying nothing is prioritized.
pub const NO_PREFETCH_LANDMARK: &str = ".no.prefetch.landmark";
/// Content of a landmark file.
pub const LANDMARK_CONTENT: u8 = 0x0f;
/// Layer annotation: sha256 of the uncompressed TOC JSON.
pub const TOC_DIGEST_ANNOTATION: &str = "containerd.io/snapshot/stargz/toc.digest";
/// Layer annotation: uncompressed size of the layer (decimal).
pub const UNCOMPRESSED_SIZE_ANNOTATION: &str = "io.containers.estargz.uncompressed-size";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toc {
    pub version: u32,
    #[serde(default)]
    pub entries: Vec<TocEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    Dir,
    Reg,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Chunk,
}

/// One TOC entry. Optional fields are omitted when empty, as the Go writer does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TocEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(rename = "modtime", default, skip_serializing_if = "Option::is_none")]
    pub mod_time: Option<String>,
    #[serde(rename = "linkName", default, skip_serializing_if = "String::is_empty")]
    pub link_name: String,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub mode: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u64,
    #[serde(rename = "userName", default, skip_serializing_if = "String::is_empty")]
    pub user_name: String,
    #[serde(
        rename = "groupName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub group_name: String,
    #[serde(rename = "devMajor", default, skip_serializing_if = "is_zero")]
    pub dev_major: u64,
    #[serde(rename = "devMinor", default, skip_serializing_if = "is_zero")]
    pub dev_minor: u64,
    /// Base64 values, as Go encodes `map[string][]byte`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// sha256 of the whole file payload (`reg` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Compressed offset of the gzip member holding this payload (`reg`, `chunk`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Start of this chunk within the file.
    #[serde(rename = "chunkOffset", default, skip_serializing_if = "is_zero")]
    pub chunk_offset: u64,
    /// Uncompressed length of this chunk; 0 = to the end of the file.
    #[serde(rename = "chunkSize", default, skip_serializing_if = "is_zero")]
    pub chunk_size: u64,
    /// sha256 of the chunk's uncompressed bytes.
    #[serde(
        rename = "chunkDigest",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub chunk_digest: String,
    /// Later eStargz versions: offset inside a shared member. Absent in v0.12.0.
    #[serde(rename = "innerOffset", default, skip_serializing_if = "is_zero")]
    pub inner_offset: u64,
}

impl TocEntry {
    /// A bare entry of a kind with a name; other fields empty.
    pub fn new(name: impl Into<String>, kind: EntryType) -> Self {
        TocEntry {
            name: name.into(),
            kind,
            size: 0,
            mod_time: None,
            link_name: String::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            user_name: String::new(),
            group_name: String::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: BTreeMap::new(),
            digest: String::new(),
            offset: 0,
            chunk_offset: 0,
            chunk_size: 0,
            chunk_digest: String::new(),
            inner_offset: 0,
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
