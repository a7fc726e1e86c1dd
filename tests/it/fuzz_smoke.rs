//! Fuzz smoke (issue 17 §5), on stable, in every `cargo test`: each committed
//! seed and regression input of each fuzz target, then a fixed-seed batch of
//! random mutations of the seeds, through the same harness functions the
//! cargo-fuzz targets call (`advisor::fuzzing`). An error is a fine answer to
//! bad input; a panic fails the test and saves the input that caused it.
//! The long campaigns and their results: fuzz/README.md, docs/results.md.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Mutated inputs per target: a few seconds for all targets in a debug build.
/// `ADVISOR_FUZZ_SMOKE_MUTATIONS=N` runs N instead (a longer local hunt).
const MUTATIONS: usize = 2000;

/// Tokens the mutator splices in: numbers at the edges of the integer types,
/// JSON and strace syntax, path tricks.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "-4096",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "72057594037927936",
    "1e308",
    "-1e308",
    "0.5",
    "NaN",
    "null",
    "true",
    "\"\"",
    "\\u0000",
    "\\\"",
    "{}",
    "[]",
    ",",
    ":",
    "\n",
    "..",
    "../",
    "/",
    "\0",
    " <unfinished ...>",
    "<... openat resumed>",
    " = -1 ENOENT (No such file or directory)",
    "[pid 7] ",
    "+++ exited with 0 +++",
    "\"chunk\"",
    "\"reg\"",
    "\"hardlink\"",
    ".wh.",
    "STARGZ",
    "ffffffffffffffff",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Inputs and the files they came from.
type Inputs = Vec<(PathBuf, Vec<u8>)>;

/// The committed inputs of a target: seeds (`fuzz/corpus/T/seed-*`) and
/// regressions (`fuzz/regressions/T/*`), in name order.
fn committed(target: &str) -> (Inputs, Inputs) {
    let read = |dir: PathBuf, seeds_only: bool| {
        let mut v: Inputs = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    !seeds_only
                        || p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("seed-"))
                })
                .map(|p| {
                    let b = std::fs::read(&p).unwrap();
                    (p, b)
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        v.sort();
        v
    };
    (
        read(root().join("corpus").join(target), true),
        read(root().join("regressions").join(target), false),
    )
}

/// One random edit of `b`.
fn mutate_once(rng: &mut fastrand::Rng, b: &mut Vec<u8>) {
    let pos = |rng: &mut fastrand::Rng, b: &Vec<u8>| rng.usize(..=b.len());
    match rng.u8(..8) {
        0 if !b.is_empty() => {
            let i = rng.usize(..b.len());
            b[i] ^= 1 << rng.u8(..8);
        }
        1 if !b.is_empty() => {
            let i = rng.usize(..b.len());
            b[i] = rng.u8(..);
        }
        2 | 3 => {
            // Replace a run of digits (a JSON number, an offset) with a token.
            let tok = TOKENS[rng.usize(..TOKENS.len())].as_bytes();
            let start = pos(rng, b);
            match b[start..].iter().position(u8::is_ascii_digit) {
                Some(d) => {
                    let s = start + d;
                    let e = s + b[s..].iter().take_while(|c| c.is_ascii_digit()).count();
                    b.splice(s..e, tok.iter().copied());
                }
                None => {
                    let at = pos(rng, b);
                    b.splice(at..at, tok.iter().copied());
                }
            }
        }
        4 => {
            let tok = TOKENS[rng.usize(..TOKENS.len())].as_bytes();
            let at = pos(rng, b);
            b.splice(at..at, tok.iter().copied());
        }
        5 if !b.is_empty() => {
            let s = rng.usize(..b.len());
            let e = (s + rng.usize(1..=64)).min(b.len());
            b.drain(s..e);
        }
        6 if !b.is_empty() => {
            // Duplicate a slice somewhere else (repeated lines, entries).
            let s = rng.usize(..b.len());
            let e = (s + rng.usize(1..=256)).min(b.len());
            let piece = b[s..e].to_vec();
            let at = pos(rng, b);
            b.splice(at..at, piece);
        }
        _ => b.truncate(pos(rng, b)),
    }
}

/// Run `input` through `harness`; on a panic, save the input and fail naming it.
fn check(target: &str, what: &str, harness: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| harness(input))).is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
        std::fs::create_dir_all(&dir).unwrap();
        let saved = dir.join(format!("{target}-{what}"));
        std::fs::write(&saved, input).unwrap();
        panic!(
            "fuzz target {target} panicked on {what}; input saved as {} \
             (reproduce: cargo +nightly fuzz run {target} {}, from fuzz/)",
            saved.display(),
            saved.display()
        );
    }
}

fn smoke(target: &str, harness: fn(&[u8])) {
    let (seeds, regressions) = committed(target);
    assert!(
        !seeds.is_empty(),
        "fuzz/corpus/{target}/ has no seed-* input"
    );
    for (path, bytes) in seeds.iter().chain(&regressions) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        check(target, &name, harness, bytes);
    }
    // Seeded by the target's name: the same inputs on every run.
    let seed = target
        .bytes()
        .fold(17u64, |h, c| h.wrapping_mul(31) ^ u64::from(c));
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = std::env::var("ADVISOR_FUZZ_SMOKE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    for i in 0..n {
        let mut input = seeds[rng.usize(..seeds.len())].1.clone();
        for _ in 0..rng.usize(1..=4) {
            mutate_once(&mut rng, &mut input);
        }
        check(target, &format!("mutation-{i}"), harness, &input);
    }
}

#[test]
fn fuzz_smoke_footer() {
    smoke("footer", advisor::fuzzing::footer);
}

#[test]
fn fuzz_smoke_toc() {
    smoke("toc", advisor::fuzzing::toc);
}

#[test]
fn fuzz_smoke_trace() {
    smoke("trace", advisor::fuzzing::trace);
}

#[test]
fn fuzz_smoke_strace() {
    smoke("strace", advisor::fuzzing::strace);
}

#[test]
fn fuzz_smoke_filelist() {
    smoke("filelist", advisor::fuzzing::filelist);
}

#[test]
fn fuzz_smoke_file_table() {
    smoke("file_table", advisor::fuzzing::file_table);
}

#[test]
fn fuzz_smoke_profile() {
    smoke("profile", advisor::fuzzing::profile);
}

/// Re-make the seeds that are binary or derived from advisor's own writer
/// (footer and TOC targets): `cargo test --test it fuzz_smoke:: -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after a format change"]
fn write_estargz_seeds() {
    use advisor::estargz::footer::{FOOTER_SIZE, legacy_footer_bytes};
    use advisor::estargz::writer::{EntryHeader, EstargzWriter, WriterOptions};
    let opts = WriterOptions {
        chunk_size: 512,
        level: 9,
        ..WriterOptions::default()
    };
    let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
    let text = b"root:x:0:0:root:/root:/bin/sh\n".repeat(40);
    w.append_prioritized(&EntryHeader::dir("etc"), std::io::empty())
        .unwrap();
    w.append_prioritized(
        &EntryHeader::file("etc/passwd", text.len() as u64),
        &text[..],
    )
    .unwrap();
    w.append(&EntryHeader::dir("bin"), std::io::empty())
        .unwrap();
    let bin: Vec<u8> = (0..1500u32).map(|i| (i * 7 % 251) as u8).collect();
    w.append(
        &EntryHeader::file("bin/busybox", bin.len() as u64),
        &bin[..],
    )
    .unwrap();
    w.append(&EntryHeader::symlink("bin/sh", "busybox"), std::io::empty())
        .unwrap();
    w.append(
        &EntryHeader::hardlink("bin/ls", "bin/busybox"),
        std::io::empty(),
    )
    .unwrap();
    w.append(&EntryHeader::file("empty", 0), std::io::empty())
        .unwrap();
    let (layer, blob) = w.finish().unwrap();
    let written = layer.toc.unwrap();

    let dir = |t: &str| {
        let d = root().join("corpus").join(t);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let with_size = |size: u64, tail: &[u8]| {
        let mut v = size.to_le_bytes().to_vec();
        v.extend_from_slice(tail);
        v
    };
    let footer = dir("footer");
    std::fs::write(
        footer.join("seed-estargz-blob"),
        with_size(blob.len() as u64, &blob),
    )
    .unwrap();
    // A registry's blob: only the last bytes fetched, the size from the descriptor.
    let tail = &blob[blob.len() - 2 * FOOTER_SIZE as usize..];
    std::fs::write(
        footer.join("seed-estargz-tail"),
        with_size(blob.len() as u64, tail),
    )
    .unwrap();
    let mut legacy = vec![0u8; 16];
    legacy.extend_from_slice(&legacy_footer_bytes(3));
    std::fs::write(footer.join("seed-legacy-footer"), with_size(1000, &legacy)).unwrap();

    let toc = dir("toc");
    let json = serde_json::to_vec_pretty(&written.toc).unwrap();
    std::fs::write(toc.join("seed-writer-toc.json"), json).unwrap();
    let member = &blob[written.offset as usize..blob.len() - FOOTER_SIZE as usize];
    std::fs::write(toc.join("seed-writer-member.gz"), member).unwrap();
}
