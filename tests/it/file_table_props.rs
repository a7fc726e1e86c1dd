//! Property tests for the file-table checks (`ImageFiles::check`, which
//! `--files` and `--image` both go through; issue 17 §3 and §5): arbitrary
//! tables — sizes anywhere in `u64`, chunks out of order, paths that escape —
//! never panic; whatever is accepted has totals equal to the sums computed
//! without overflow (`u128`), within the documented bounds, and the fetch
//! simulator runs on it. Bounded by proptest's default of 256 cases per
//! property (`PROPTEST_CASES` overrides).
use advisor::estargz::table::{
    Chunk, FileEntry, FileKind, FileRef, ImageFiles, LayerFiles, LayerFormat, MAX_BLOB_SIZE,
    MAX_IMAGE_UNCOMPRESSED,
};
use advisor::filetable::parse_file_table;
use advisor::simulate::snapshotter::{FetchConfig, Simulator};
use proptest::prelude::*;

/// Sizes and offsets: mostly small (so tables are often valid), with the
/// edges where sums wrap or bounds bite.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..5_000,
        1 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => (u64::MAX - 8)..=u64::MAX,
        1 => (MAX_BLOB_SIZE - 2)..=(MAX_BLOB_SIZE + 2),
        1 => (MAX_IMAGE_UNCOMPRESSED - 2)..=(MAX_IMAGE_UNCOMPRESSED + 2),
        1 => Just(1u64 << 56),
    ]
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (size(), size(), size(), size()).prop_map(|(offset, size, compressed_offset, len)| Chunk {
        offset,
        size,
        compressed_offset,
        compressed_end: compressed_offset.saturating_add(len % 10_000),
    })
}

fn kind() -> impl Strategy<Value = FileKind> {
    prop_oneof![
        4 => Just(FileKind::Reg),
        1 => Just(FileKind::Dir),
        1 => Just(FileKind::Symlink),
        1 => Just(FileKind::Hardlink),
        1 => Just(FileKind::Other),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-c]{1,3}(/[a-c]{1,3}){0,2}",
        1 => Just(String::new()),
        1 => Just("../etc/passwd".to_string()),
        1 => Just("./a".to_string()),
        1 => Just("a//b".to_string()),
    ]
}

fn file() -> impl Strategy<Value = FileEntry> {
    (
        path(),
        kind(),
        size(),
        prop::collection::vec(chunk(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(path, kind, size, mut chunks, tile)| {
            if tile {
                // Chunks that tile the file, as a real TOC gives: often valid.
                let n = chunks.len() as u64;
                let step = size.checked_div(n).unwrap_or(0);
                for (i, c) in chunks.iter_mut().enumerate() {
                    c.offset = step * i as u64;
                    c.size = if i as u64 + 1 == n {
                        size - c.offset
                    } else {
                        step
                    };
                }
            }
            FileEntry {
                path,
                kind,
                size,
                link: None,
                chunks,
            }
        })
}

fn layer() -> impl Strategy<Value = LayerFiles> {
    (
        size(),
        prop::collection::vec(file(), 0..5),
        prop::option::of(size()),
        prop::option::of(size()),
        any::<bool>(),
        size(),
    )
        .prop_map(
            |(blob_size, files, toc_offset, prefetch_end, consistent, other)| {
                let reg: u64 = files
                    .iter()
                    .filter(|f| f.kind == FileKind::Reg)
                    .map(|f| f.size)
                    .fold(0, u64::wrapping_add);
                LayerFiles {
                    digest: "sha256:prop".into(),
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    // Compressed extents drawn from the same values as the blob
                    // size would rarely fit: make the blob cover them, usually.
                    blob_size: if consistent {
                        files
                            .iter()
                            .flat_map(|f| &f.chunks)
                            .map(|c| c.compressed_end)
                            .fold(blob_size % 100_000, u64::max)
                    } else {
                        blob_size
                    },
                    uncompressed_size: if consistent { reg } else { other },
                    format: LayerFormat::Estargz,
                    toc_digest: None,
                    toc_offset,
                    prefetch_end,
                    no_prefetch: false,
                    files,
                }
            },
        )
}

fn table() -> impl Strategy<Value = ImageFiles> {
    prop::collection::vec(layer(), 0..4).prop_map(|layers| ImageFiles {
        version: 1,
        reference: "prop".into(),
        manifest_digest: "sha256:prop".into(),
        layers,
    })
}

proptest! {
    #[test]
    fn accepted_tables_have_checked_totals_within_bounds(t in table()) {
        let Ok(totals) = t.check() else { return Ok(()) };
        let blobs: u128 = t.layers.iter().map(|l| l.blob_size as u128).sum();
        let reg: u128 = t
            .layers
            .iter()
            .flat_map(|l| &l.files)
            .filter(|f| f.kind == FileKind::Reg)
            .map(|f| f.size as u128)
            .sum();
        prop_assert_eq!(totals.compressed as u128, blobs);
        prop_assert_eq!(totals.uncompressed as u128, reg);
        prop_assert!(totals.uncompressed <= MAX_IMAGE_UNCOMPRESSED);
        prop_assert_eq!(t.compressed_size(), totals.compressed);
        prop_assert_eq!(t.uncompressed_size(), totals.uncompressed);
        for l in &t.layers {
            prop_assert!(l.blob_size <= MAX_BLOB_SIZE);
            let layer_reg: u128 = l
                .files
                .iter()
                .filter(|f| f.kind == FileKind::Reg)
                .map(|f| f.size as u128)
                .sum();
            prop_assert_eq!(l.uncompressed_size as u128, layer_reg);
            for f in &l.files {
                let mut prev = 0u128;
                for c in &f.chunks {
                    let end = c.offset as u128 + c.size as u128;
                    prop_assert!(c.offset as u128 >= prev && end <= MAX_IMAGE_UNCOMPRESSED as u128);
                    prop_assert!(f.kind != FileKind::Reg || end <= f.size as u128);
                    prop_assert!(c.compressed_offset <= c.compressed_end);
                    prop_assert!(c.compressed_end <= l.blob_size);
                    prev = end;
                }
            }
        }
    }

    #[test]
    fn a_saved_table_is_accepted_exactly_when_check_accepts_it(t in table()) {
        let json = serde_json::to_vec(&t).unwrap();
        let loaded = parse_file_table(&json[..], "t.json");
        prop_assert_eq!(loaded.is_ok(), t.check().is_ok());
        if let Err(e) = loaded {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("t.json: "), "{}", msg);
            prop_assert!(advisor::exit::exit_code(&e) == 1, "{}", msg);
        }
    }

    #[test]
    fn accepted_tables_simulate_without_panic(t in table()) {
        if t.check().is_err() {
            return Ok(());
        }
        let mut sim = Simulator::new(&t, FetchConfig::default());
        for (li, l) in t.layers.iter().enumerate() {
            sim.mount(li);
            sim.prefetch(li);
            for fi in 0..l.files.len() {
                sim.read(FileRef { layer: li, file: fi }, 0, None);
            }
        }
    }
}

#[test]
fn the_properties_see_accepted_and_refused_tables() {
    // The strategy must produce both kinds, or the properties above are vacuous.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..256 {
        let t = table().new_tree(&mut runner).unwrap().current();
        if t.check().is_ok() { ok += 1 } else { bad += 1 }
    }
    assert!(ok >= 25 && bad >= 25, "accepted {ok}, refused {bad}");
}
