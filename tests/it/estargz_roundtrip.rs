//! Round trip of advisor's eStargz writer through its reader and through
//! plain gzip + tar readers (no lab needed: the format is pure bytes).
use crate::estargz_fixtures;

use advisor::estargz::reader::{self, read_index};
use advisor::estargz::sha256_digest;
use advisor::estargz::table::{FileKind, LayerFormat};
use advisor::estargz::toc::{
    NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION, TOC_TAR_NAME,
    UNCOMPRESSED_SIZE_ANNOTATION,
};
use advisor::estargz::writer::{EntryKind, WriterOptions, convert_tar};
use estargz_fixtures::{FileSpec, fixture, to_tar, write_estargz};
use flate2::read::{GzDecoder, MultiGzDecoder};
use std::collections::HashMap;
use std::io::{Cursor, Read};

const CHUNK: u64 = 64 << 10;

fn opts() -> WriterOptions {
    WriterOptions {
        chunk_size: CHUNK,
        level: 6,
        label: "roundtrip".into(),
    }
}

fn clean(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

/// Every check of a written layer against the files it was written from.
fn check_layer(files: &[FileSpec], layer: &advisor::estargz::writer::WrittenLayer, blob: &[u8]) {
    let toc = layer.toc.as_ref().expect("eStargz has a TOC");
    assert_eq!(layer.size, blob.len() as u64);
    assert_eq!(layer.digest, sha256_digest(blob));

    // The reader finds the same TOC, verified against the TOC digest.
    let idx = read_index(&layer.digest, Cursor::new(blob), Some(&toc.digest)).unwrap();
    assert_eq!(idx.toc, toc.toc);
    assert_eq!(idx.footer.toc_offset, toc.offset);
    let table = idx.layer_files(
        &layer.digest,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        blob.len() as u64,
    );
    assert_eq!(table.format, LayerFormat::Estargz);
    assert_eq!(
        Some(table.clone()),
        layer.layer_files("application/vnd.oci.image.layer.v1.tar+gzip")
    );

    // Every chunk's compressed extent decompresses on its own (it starts a
    // gzip member) to the file's bytes, whose sha256 is the chunkDigest.
    let by_path: HashMap<String, &FileSpec> =
        files.iter().map(|f| (clean(&f.header.path), f)).collect();
    let digests: HashMap<u64, &str> = toc
        .toc
        .entries
        .iter()
        .filter(|e| e.offset != 0)
        .map(|e| (e.offset, e.chunk_digest.as_str()))
        .collect();
    let mut chunks_seen = 0;
    for f in &table.files {
        if f.kind != FileKind::Reg {
            continue;
        }
        let want: &[u8] = match f.path.as_str() {
            PREFETCH_LANDMARK | NO_PREFETCH_LANDMARK => &[0x0f],
            p => &by_path[p].data,
        };
        assert_eq!(f.size, want.len() as u64, "{}", f.path);
        let mut covered = 0;
        for c in &f.chunks {
            assert_eq!(c.offset, covered, "{}: chunks tile the file", f.path);
            let extent = &blob[c.compressed_offset as usize..c.compressed_end as usize];
            let mut out = Vec::new();
            GzDecoder::new(extent).read_to_end(&mut out).unwrap();
            let got = &out[..c.size as usize];
            assert_eq!(
                got,
                &want[c.offset as usize..(c.offset + c.size) as usize],
                "{} chunk at {}",
                f.path,
                c.offset
            );
            assert_eq!(digests[&c.compressed_offset], sha256_digest(got));
            assert!(c.size <= CHUNK);
            covered += c.size;
            chunks_seen += 1;
        }
        assert_eq!(covered, f.size, "{}", f.path);
        let e = toc
            .toc
            .entries
            .iter()
            .find(|e| clean(&e.name) == f.path)
            .unwrap();
        assert_eq!(e.digest, sha256_digest(want), "{}: file digest", f.path);
    }
    assert!(chunks_seen > files.len() / 2);

    // The whole blob is an ordinary tar.gz of the inputs, the landmark and the TOC.
    let mut raw = Vec::new();
    MultiGzDecoder::new(blob).read_to_end(&mut raw).unwrap();
    assert_eq!(layer.diff_id, sha256_digest(&raw));
    assert_eq!(layer.uncompressed_size, raw.len() as u64);
    let mut archive = tar::Archive::new(&raw[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = clean(std::str::from_utf8(&entry.path_bytes()).unwrap());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == TOC_TAR_NAME {
            assert_eq!(sha256_digest(&data), toc.digest);
        } else if path == PREFETCH_LANDMARK || path == NO_PREFETCH_LANDMARK {
            assert_eq!(data, [0x0f]);
        } else {
            let f = by_path[&path];
            assert_eq!(data, f.data, "{path}");
            let kind = entry.header().entry_type();
            let want = match f.header.kind {
                EntryKind::Reg => tar::EntryType::Regular,
                EntryKind::Dir => tar::EntryType::Directory,
                EntryKind::Symlink => tar::EntryType::Symlink,
                EntryKind::Hardlink => tar::EntryType::Link,
                _ => kind,
            };
            assert_eq!(kind, want, "{path}");
            if !f.header.link_name.is_empty() {
                assert_eq!(
                    entry.link_name_bytes().unwrap().as_ref(),
                    f.header.link_name.as_bytes()
                );
            }
            assert_eq!(entry.header().mtime().unwrap(), f.header.mtime, "{path}");
        }
        seen.push(path);
    }
    assert_eq!(seen.last().map(String::as_str), Some(TOC_TAR_NAME));
    assert_eq!(seen.len(), files.len() + 2, "inputs + landmark + TOC");

    // Annotations.
    let a = layer.annotations();
    assert_eq!(a[TOC_DIGEST_ANNOTATION], toc.digest);
    assert_eq!(a[UNCOMPRESSED_SIZE_ANNOTATION], raw.len().to_string());
}

#[test]
fn streaming_writer_round_trips_with_prioritized_files() {
    let files = fixture(CHUNK);
    let (layer, blob) = write_estargz(&files, opts(), true);
    check_layer(&files, &layer, &blob);
    let toc = &layer.toc.as_ref().unwrap().toc;
    let names: Vec<&str> = toc
        .entries
        .iter()
        .take(6)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "usr/",
            "usr/bin/",
            "usr/bin/busybox",
            "usr/bin/busybox",
            "usr/bin/busybox",
            "etc/"
        ]
    );
    let table = layer.layer_files("m").unwrap();
    let landmark = toc
        .entries
        .iter()
        .find(|e| e.name == PREFETCH_LANDMARK)
        .unwrap();
    assert_eq!(table.prefetch_end, Some(landmark.offset));
    // Everything prioritized lies before the landmark's payload.
    let passwd = table.files.iter().find(|f| f.path == "etc/passwd").unwrap();
    assert!(passwd.chunks[0].compressed_end <= landmark.offset);
    assert!(!table.no_prefetch);
}

#[test]
fn streaming_writer_round_trips_without_prioritized_files() {
    let files = fixture(CHUNK);
    let (layer, blob) = write_estargz(&files, opts(), false);
    check_layer(&files, &layer, &blob);
    let table = layer.layer_files("m").unwrap();
    assert!(table.no_prefetch);
    assert_eq!(table.files[0].path, NO_PREFETCH_LANDMARK);
}

#[test]
fn tar_conversion_round_trips_and_matches_the_streaming_layout() {
    let files = fixture(CHUNK);
    let tar_bytes = to_tar(&files);
    let prio: Vec<String> = estargz_fixtures::PRIORITIZED
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (layer, blob) = convert_tar(&tar_bytes[..], Vec::new(), opts(), &prio).unwrap();
    check_layer(&files, &layer, &blob);
    // The same entries and chunks as the streaming writer, save the order
    // moveRec gives (parents, then the file) — both put PRIORITIZED first.
    let (streamed, _) = write_estargz(&files, opts(), true);
    let key = |t: &advisor::estargz::toc::Toc| {
        let mut v: Vec<_> = t
            .entries
            .iter()
            .map(|e| {
                (
                    clean(&e.name),
                    e.kind,
                    e.size,
                    e.chunk_offset,
                    e.chunk_size,
                    e.chunk_digest.clone(),
                    e.digest.clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    };
    assert_eq!(
        key(&layer.toc.unwrap().toc),
        key(&streamed.toc.unwrap().toc)
    );
}

#[test]
fn default_chunk_size_and_level_round_trip() {
    // The defaults (4 MiB chunks, level 9) on a file of 2.5 chunks.
    let files = vec![estargz_fixtures_file("big", 10 << 20)];
    let (layer, blob) = write_estargz(&files, WriterOptions::default(), false);
    let toc = &layer.toc.as_ref().unwrap().toc;
    let sizes: Vec<u64> = toc.entries.iter().skip(1).map(|e| e.chunk_size).collect();
    assert_eq!(sizes, [4 << 20, 4 << 20, 0]);
    let idx = read_index("d", Cursor::new(&blob), None).unwrap();
    assert_eq!(&idx.toc, toc);
}

fn estargz_fixtures_file(path: &str, len: usize) -> FileSpec {
    FileSpec {
        header: advisor::estargz::writer::EntryHeader::file(path, len as u64),
        data: estargz_fixtures::data(9, len),
    }
}

#[test]
fn scanner_sees_the_same_files_as_the_toc() {
    let files = fixture(CHUNK);
    let (layer, blob) = write_estargz(&files, opts(), false);
    let scanned = reader::scan_layer(&layer.digest, "m", &blob[..]).unwrap();
    assert_eq!(scanned.blob_digest, layer.digest);
    assert_eq!(scanned.diff_id, layer.diff_id);
    assert_eq!(scanned.uncompressed_size, layer.uncompressed_size);
    let from_toc = layer.layer_files("m").unwrap();
    let strip = |fs: &[advisor::estargz::table::FileEntry]| -> Vec<(String, FileKind, u64)> {
        fs.iter()
            .filter(|f| f.path != TOC_TAR_NAME)
            .map(|f| (f.path.clone(), f.kind, f.size))
            .collect()
    };
    assert_eq!(strip(&scanned.files.files), strip(&from_toc.files));
}
