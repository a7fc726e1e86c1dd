//! The eStargz layer format: TOC types, footer, writer and reader, and the
//! file table derived from a TOC.
//!
//! Owns format facts (docs/estargz.md) and their validation. Must not talk to
//! a registry or containerd: callers hand it bytes.
pub mod table;
pub mod toc;
