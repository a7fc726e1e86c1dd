//! Cross-check with stargz-snapshotter's own Go library (v0.12, Debian), built
//! from tests/fixtures/estargz-go:
//! (i) a layer advisor wrote passes Go's `estargz.Open` + `VerifyTOC`, every
//!     chunk passes Go's verifier and every file reads back byte-identical;
//! (ii) a layer Go's `estargz.Build` wrote is read by advisor's reader with
//!     the same files, sizes and chunk offsets as Go's reader sees, and the
//!     same TOC (order, chunking, digests) as advisor's own conversion.
use crate::estargz_fixtures;

use advisor::estargz::reader::{read_index, scan_layer};
use advisor::estargz::sha256_digest;
use advisor::estargz::table::{FileKind, LayerFiles};
use advisor::estargz::toc::{PREFETCH_LANDMARK, Toc};
use advisor::estargz::writer::{WriterOptions, convert_tar};
use estargz_fixtures::{FileSpec, PRIORITIZED, fixture, go_fixture, to_tar, write_estargz};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Command;

const CHUNK: u64 = 64 << 10;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoChunk {
    offset: u64,
    next_offset: u64,
    chunk_offset: u64,
    chunk_size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    link_name: String,
    #[serde(default)]
    chunks: Vec<GoChunk>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoBuilt {
    toc_digest: String,
    #[serde(rename = "diffID")]
    diff_id: String,
}

fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "estargz-go {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn go_check(bin: &Path, blob: &Path, toc_digest: &str) -> Vec<GoFile> {
    serde_json::from_str(&run(
        bin,
        &["check", blob.to_str().unwrap(), toc_digest],
        &[],
    ))
    .unwrap()
}

fn clean(p: &str) -> String {
    p.trim_start_matches("./").trim_end_matches('/').to_string()
}

/// Go's view and advisor's table agree on files, kinds, sizes and chunks.
fn assert_same_view(go: &[GoFile], table: &LayerFiles) {
    let ours: HashMap<&str, _> = table.files.iter().map(|f| (f.path.as_str(), f)).collect();
    assert_eq!(go.len(), table.files.len(), "same number of entries");
    for g in go {
        let name = clean(&g.name);
        let f = ours
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from advisor's table"));
        let kind = match f.kind {
            FileKind::Reg => "reg",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Hardlink => "hardlink",
            FileKind::Other => "other",
        };
        assert_eq!(g.kind, kind, "{name}");
        assert_eq!(g.size, f.size, "{name}");
        assert_eq!(g.link_name, f.link.clone().unwrap_or_default(), "{name}");
        let go_chunks: Vec<(u64, u64, u64, u64)> = g
            .chunks
            .iter()
            .map(|c| (c.chunk_offset, c.chunk_size, c.offset, c.next_offset))
            .collect();
        let our_chunks: Vec<(u64, u64, u64, u64)> = f
            .chunks
            .iter()
            .map(|c| (c.offset, c.size, c.compressed_offset, c.compressed_end))
            .collect();
        assert_eq!(
            go_chunks, our_chunks,
            "{name}: chunks (chunkOffset, size, offset, nextOffset)"
        );
    }
}

fn input_digests(files: &[FileSpec]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = files
        .iter()
        .filter(|f| f.header.kind == advisor::estargz::writer::EntryKind::Reg)
        .map(|f| (clean(&f.header.path), sha256_digest(&f.data)))
        .collect();
    for l in [
        PREFETCH_LANDMARK,
        advisor::estargz::toc::NO_PREFETCH_LANDMARK,
    ] {
        m.insert(l.to_string(), sha256_digest(&[0x0f]));
    }
    m
}

#[test]
fn go_library_accepts_and_reads_advisors_layers() {
    let Some(bin) = go_fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = fixture(CHUNK);
    let want = input_digests(&files);
    for (prioritize, level) in [(true, 6), (false, 1)] {
        let opts = WriterOptions {
            chunk_size: CHUNK,
            level,
            label: "go-check".into(),
        };
        let (layer, blob) = write_estargz(&files, opts, prioritize);
        let path = dir.path().join(format!("advisor-{prioritize}.blob"));
        std::fs::write(&path, &blob).unwrap();
        let toc = layer.toc.as_ref().unwrap();
        let go = go_check(bin, &path, &toc.digest);
        for g in go.iter().filter(|g| g.kind == "reg") {
            assert_eq!(
                g.sha256,
                want[&clean(&g.name)],
                "{} reads back byte-identical through Go",
                g.name
            );
        }
        assert_same_view(&go, &layer.layer_files("m").unwrap());
        // A wrong TOC digest makes Go's VerifyTOC fail: the check is real.
        let out = Command::new(bin)
            .args(["check", path.to_str().unwrap(), &sha256_digest(b"other")])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("VerifyTOC"));
    }
}

/// Equal TOC shapes; on a difference, report the first differing entry only.
fn assert_same_shape(ours: &[String], go: &[String]) {
    if let Some((i, (a, b))) = ours.iter().zip(go).enumerate().find(|(_, (a, b))| a != b) {
        panic!("TOC entry {i} differs:\n advisor: {a}\n      Go: {b}");
    }
    assert_eq!(ours.len(), go.len(), "TOC entry counts");
}

/// Everything of a TOC but compressed offsets (compression bytes differ).
fn toc_shape(t: &Toc) -> Vec<String> {
    t.entries
        .iter()
        .map(|e| {
            format!(
                "{} {:?} size={} chunk={}+{} digest={} chunkDigest={} link={} mode={:o} uid={} gid={} time={:?} xattrs={:?}",
                clean(&e.name),
                e.kind,
                e.size,
                e.chunk_offset,
                e.chunk_size,
                e.digest,
                e.chunk_digest,
                e.link_name,
                e.mode,
                e.uid,
                e.gid,
                e.mod_time,
                e.xattrs
            )
        })
        .collect()
}

#[test]
fn advisors_reader_reads_go_built_layers() {
    let Some(bin) = go_fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = fixture(CHUNK);
    let tar_bytes = to_tar(&files);
    let tar_path = dir.path().join("in.tar");
    std::fs::write(&tar_path, &tar_bytes).unwrap();
    let want = input_digests(&files);
    for prio in [PRIORITIZED.join(","), String::new()] {
        let blob_path = dir.path().join("go.blob");
        // One part (GOMAXPROCS=1) so Go's Build lays members out as its Writer.
        let built: GoBuilt = serde_json::from_str(&run(
            bin,
            &[
                "build",
                tar_path.to_str().unwrap(),
                blob_path.to_str().unwrap(),
                &CHUNK.to_string(),
                &prio,
            ],
            &[("GOMAXPROCS", "1")],
        ))
        .unwrap();
        let blob = std::fs::read(&blob_path).unwrap();
        let digest = sha256_digest(&blob);

        let idx = read_index(&digest, Cursor::new(&blob), Some(&built.toc_digest)).unwrap();
        let table = idx.layer_files(&digest, "m", blob.len() as u64);
        let go = go_check(bin, &blob_path, &built.toc_digest);
        assert_same_view(&go, &table);
        for g in go.iter().filter(|g| g.kind == "reg") {
            assert_eq!(g.sha256, want[&clean(&g.name)], "{}", g.name);
        }
        assert_eq!(table.prefetch_end.is_some(), !prio.is_empty());
        assert_eq!(table.no_prefetch, prio.is_empty());

        // The scanner agrees with Go's diffID.
        let scanned = scan_layer(&digest, "m", &blob[..]).unwrap();
        assert_eq!(scanned.diff_id, built.diff_id);

        // Layout: advisor's conversion of the same tar gives the same TOC
        // (entry order, landmark, chunking, digests, metadata) ...
        let prio_list: Vec<String> = prio
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let opts = WriterOptions {
            chunk_size: CHUNK,
            level: 9,
            label: "x".into(),
        };
        let (ours, our_blob) = convert_tar(&tar_bytes[..], Vec::new(), opts, &prio_list).unwrap();
        assert_same_shape(
            &toc_shape(&ours.toc.as_ref().unwrap().toc),
            &toc_shape(&idx.toc),
        );
        // ... and the same gzip members: one per payload chunk, plus the
        // leading header member, the TOC member and the footer.
        assert_eq!(member_count(&our_blob), member_count(&blob));
        let payloads = idx.toc.entries.iter().filter(|e| e.offset != 0).count();
        assert_eq!(member_count(&blob), payloads + 3);
    }
}

/// Number of gzip members in a blob.
fn member_count(mut blob: &[u8]) -> usize {
    let mut n = 0;
    while !blob.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(blob);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        blob = d.into_inner();
        n += 1;
    }
    n
}

#[test]
fn go_reads_a_layer_converted_from_a_gzip_tar() {
    // advisor's gzip form, converted by advisor to eStargz, checked by Go.
    let Some(bin) = go_fixture() else { return };
    let files = fixture(CHUNK);
    let mut gz =
        advisor::estargz::writer::GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    for f in &files {
        gz.append(&f.header, &f.data[..]).unwrap();
    }
    let (gz_layer, gz_blob) = gz.finish().unwrap();
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz_blob[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(sha256_digest(&raw), gz_layer.diff_id);
    let opts = WriterOptions {
        chunk_size: CHUNK,
        ..Default::default()
    };
    let (layer, blob) = convert_tar(&gz_blob[..], Vec::new(), opts, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conv.blob");
    std::fs::write(&path, &blob).unwrap();
    let go = go_check(bin, &path, &layer.toc.as_ref().unwrap().digest);
    assert_same_view(&go, &layer.layer_files("m").unwrap());
}
