//! Property tests: footer and TOC parsing on arbitrary and mutated bytes never
//! panic, and whatever they accept is well-formed. Bounded by proptest's
//! default of 256 cases per property (`PROPTEST_CASES` overrides), a few
//! seconds in a debug build.
use advisor::estargz::footer::{FOOTER_SIZE, footer_bytes, legacy_footer_bytes, parse_footer};
use advisor::estargz::reader::{parse_toc, read_index, scan_layer, validate_toc};
use advisor::estargz::table::{FileKind, LayerFiles, LayerFormat};
use advisor::estargz::toc::{EntryType, TOC_TAR_NAME, Toc, TocEntry};
use advisor::estargz::writer::{EntryHeader, EstargzWriter, WriterOptions};
use proptest::prelude::*;
use std::io::{Cursor, Write};
use std::sync::OnceLock;

/// A small valid eStargz blob: chunked and small files, a dir, links.
fn sample() -> &'static Vec<u8> {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let opts = WriterOptions {
            chunk_size: 1000,
            level: 1,
            label: "prop".into(),
        };
        let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
        w.append(&EntryHeader::dir("d"), std::io::empty()).unwrap();
        let big: Vec<u8> = (0..3500u32).map(|i| (i * 7 % 256) as u8).collect();
        w.append(&EntryHeader::file("d/big", big.len() as u64), &big[..])
            .unwrap();
        w.append(&EntryHeader::file("d/small", 5), &b"small"[..])
            .unwrap();
        w.append(&EntryHeader::symlink("d/s", "small"), std::io::empty())
            .unwrap();
        w.append(&EntryHeader::hardlink("d/h", "d/small"), std::io::empty())
            .unwrap();
        w.finish().unwrap().1
    })
}

/// What an accepted TOC must give: chunks that tile every regular file and
/// compressed extents inside the blob, in order.
fn assert_well_formed(t: &LayerFiles) {
    for f in &t.files {
        if f.kind != FileKind::Reg || f.size == 0 {
            continue;
        }
        let mut at = 0;
        for c in &f.chunks {
            assert_eq!(c.offset, at, "{}", f.path);
            assert!(c.size > 0);
            assert!(c.compressed_offset < c.compressed_end, "{}", f.path);
            assert!(c.compressed_end <= t.blob_size);
            at += c.size;
        }
        assert_eq!(at, f.size, "{}", f.path);
    }
}

fn toc_member(json: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(json.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, TOC_TAR_NAME, json).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn entry_strategy() -> impl Strategy<Value = TocEntry> {
    let names = prop::sample::select(vec![
        "a",
        "a/b",
        "b",
        "./c",
        "../x",
        "/abs",
        "",
        "d/../e",
        "a/../../f",
        "g/",
    ]);
    let kinds = prop::sample::select(vec![
        EntryType::Reg,
        EntryType::Reg,
        EntryType::Chunk,
        EntryType::Chunk,
        EntryType::Dir,
        EntryType::Symlink,
        EntryType::Hardlink,
        EntryType::Fifo,
    ]);
    (
        names,
        kinds,
        prop::sample::select(vec![0u64, 1, 5, 10, 4000, u64::MAX, 1 << 63]),
        prop::sample::select(vec![0u64, 3, 10, 200, 900, 5000, u64::MAX]),
        prop::sample::select(vec![0u64, 2, 5, 10, u64::MAX]),
        prop::sample::select(vec![0u64, 3, 5, 10, u64::MAX - 1]),
        prop::sample::select(vec!["", "a", "../x", "/a", "b"]),
    )
        .prop_map(
            |(name, kind, size, offset, chunk_offset, chunk_size, link)| {
                let mut e = TocEntry::new(name, kind);
                e.size = size;
                e.offset = offset;
                e.chunk_offset = chunk_offset;
                e.chunk_size = chunk_size;
                e.link_name = link.to_string();
                e
            },
        )
}

proptest! {
    #[test]
    fn footer_parse_never_panics_on_arbitrary_tails(
        tail in prop::collection::vec(any::<u8>(), 0..120),
        extra in 0u64..1_000_000,
    ) {
        let size = tail.len() as u64 + extra;
        if let Ok(f) = parse_footer("sha256:p", &tail, size) {
            prop_assert!(f.toc_offset < size - f.kind.size());
        }
    }

    #[test]
    fn footers_round_trip_and_survive_byte_flips(
        offset in 0u64..(i64::MAX as u64 - 100),
        flips in prop::collection::vec((0usize..51, any::<u8>()), 0..4),
        legacy in any::<bool>(),
    ) {
        let size = offset + 100;
        let bytes: Vec<u8> = if legacy {
            legacy_footer_bytes(offset).to_vec()
        } else {
            footer_bytes(offset).to_vec()
        };
        let f = parse_footer("l", &bytes, size).unwrap();
        prop_assert_eq!(f.toc_offset, offset);
        prop_assert_eq!(f.kind.size(), bytes.len() as u64);
        let mut m = bytes.clone();
        for (i, b) in flips {
            let i = i % m.len();
            m[i] ^= b;
        }
        if let Ok(g) = parse_footer("l", &m, size) {
            prop_assert!(g.toc_offset < size - g.kind.size());
        }
    }

    #[test]
    fn toc_member_parse_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        gzip_head in any::<bool>(),
    ) {
        let mut b = bytes;
        if gzip_head && b.len() > 3 {
            b[..3].copy_from_slice(&[0x1f, 0x8b, 8]);
        }
        let _ = parse_toc("l", &b, 0, None);
    }

    #[test]
    fn mutated_or_truncated_blobs_give_errors_or_well_formed_tables(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
        cut in 0usize..200,
    ) {
        let mut blob = sample().clone();
        for (i, b) in flips {
            let i = i.index(blob.len());
            blob[i] ^= b;
        }
        blob.truncate(blob.len().saturating_sub(cut));
        match read_index("sha256:m", Cursor::new(&blob), None) {
            Ok(idx) => {
                let t = idx.layer_files("sha256:m", "m", blob.len() as u64);
                assert_well_formed(&t);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("layer sha256:m: ")),
        }
        let _ = scan_layer("sha256:m", "m", &blob[..]);
    }

    #[test]
    fn mutated_toc_json_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let blob = sample();
        let idx = read_index("s", Cursor::new(blob), None).unwrap();
        let mut json = serde_json::to_vec_pretty(&idx.toc).unwrap();
        for (i, b) in flips {
            let i = i.index(json.len());
            json[i] = b;
        }
        if let Ok((toc, _)) = parse_toc("s", &toc_member(&json), idx.footer.toc_offset, None)
            && validate_toc("s", &toc, idx.footer.toc_offset).is_ok()
        {
            let t = LayerFiles::from_toc("s", "m", blob.len() as u64, LayerFormat::Estargz, &toc, None, Some(idx.footer.toc_offset));
            assert_well_formed(&t);
        }
    }

    #[test]
    fn validated_tocs_give_well_formed_tables(
        entries in prop::collection::vec(entry_strategy(), 0..8),
        toc_offset in prop::sample::select(vec![1u64, 100, 1000, 10_000]),
    ) {
        let toc = Toc { version: 1, entries };
        if validate_toc("v", &toc, toc_offset).is_ok() {
            let blob_size = toc_offset + FOOTER_SIZE + 30;
            let t = LayerFiles::from_toc("v", "m", blob_size, LayerFormat::Estargz, &toc, None, Some(toc_offset));
            assert_well_formed(&t);
            for f in &t.files {
                prop_assert!(!f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".."));
            }
        }
    }
}
