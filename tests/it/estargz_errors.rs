//! Bad layers give clear errors naming the layer and what is wrong, and they
//! are the user's to fix (exit code 1), never a panic.
use advisor::estargz::footer::footer_bytes;
use advisor::estargz::reader::read_index;
use advisor::estargz::toc::{TOC_TAR_NAME, Toc};
use advisor::estargz::writer::{EntryHeader, EstargzWriter, WriterOptions};
use advisor::estargz::{Error, sha256_digest};
use advisor::exit::exit_code;
use std::io::{Cursor, Write};

const LAYER: &str = "sha256:ab12cd34";

fn blob() -> (Vec<u8>, u64, Toc) {
    let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    w.append(&EntryHeader::dir("etc"), std::io::empty())
        .unwrap();
    w.append(&EntryHeader::file("etc/passwd", 5), &b"root\n"[..])
        .unwrap();
    let (layer, blob) = w.finish().unwrap();
    let toc = layer.toc.unwrap();
    (blob, toc.offset, toc.toc)
}

/// Replace a blob's TOC with `toc` (a new TOC member and footer at the same offset).
fn with_toc(blob: &[u8], offset: u64, toc: &Toc) -> (Vec<u8>, String) {
    let json = serde_json::to_vec(toc).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(json.len() as u64);
    b.append_data(&mut h, TOC_TAR_NAME, &json[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    let mut out = blob[..offset as usize].to_vec();
    out.extend_from_slice(&gz.finish().unwrap());
    out.extend_from_slice(&footer_bytes(offset));
    (out, sha256_digest(&json))
}

/// The error reading `blob` gives, after checking that the CLI would exit 1
/// with it (the user's to fix).
fn read_err(blob: &[u8], expected: Option<&str>) -> Error {
    let e = read_index(LAYER, Cursor::new(blob), expected).unwrap_err();
    let any = anyhow::Error::new(e).context("inspecting the image");
    assert_eq!(exit_code(&any), 1, "{any:#}");
    any.downcast::<Error>().unwrap()
}

#[test]
fn corrupt_footer() {
    let (mut b, ..) = blob();
    let n = b.len();
    b[n - 20] ^= 0xff; // inside "STARGZ"
    let e = read_err(&b, None);
    let msg = e.to_string();
    assert!(
        msg.starts_with("layer sha256:ab12cd34: no eStargz footer at the end of the blob ("),
        "{msg}"
    );
    assert!(msg.contains("truncated, corrupt or not eStargz"), "{msg}");
}

#[test]
fn truncated_blob() {
    let (b, ..) = blob();
    let e = read_err(&b[..b.len() - 100], None);
    assert!(e.to_string().contains("no eStargz footer"), "{e}");
    let e = read_err(&b[..30], None);
    assert_eq!(
        e.to_string(),
        "layer sha256:ab12cd34: the blob is 30 bytes, smaller than an eStargz footer (47 bytes): it is truncated or not eStargz"
    );
}

#[test]
fn blob_missing_its_middle() {
    // The footer survives but points past what is left.
    let (b, off, _) = blob();
    let mut cut = b[..(off as usize) / 2].to_vec();
    cut.extend_from_slice(&b[b.len() - 51..]);
    let e = read_err(&cut, None);
    assert!(
        e.to_string()
            .contains(&format!("puts the TOC at offset {off}")),
        "{e}"
    );
}

#[test]
fn corrupt_toc_member() {
    let (mut b, off, _) = blob();
    let n = b.len();
    b[n - 51 - 9] ^= 0x55; // the TOC member's CRC
    let e = read_err(&b, None);
    assert!(
        e.to_string().contains(&format!(
            "the TOC gzip member at offset {off} is unreadable"
        )),
        "{e}"
    );
}

#[test]
fn wrong_toc_digest() {
    let (b, ..) = blob();
    let want = sha256_digest(b"something else");
    let e = read_err(&b, Some(&want));
    let msg = e.to_string();
    assert!(msg.contains(&format!("but {want} was expected")), "{msg}");
    assert!(
        msg.contains("containerd.io/snapshot/stargz/toc.digest"),
        "{msg}"
    );
}

#[test]
fn toc_names_that_escape_or_are_absolute() {
    let (b, off, toc) = blob();
    for (name, want) in [
        (
            "../etc/passwd",
            "TOC entry 2 `../etc/passwd` escapes the layer root",
        ),
        (
            "etc/../../passwd",
            "TOC entry 2 `etc/../../passwd` escapes the layer root",
        ),
        (
            "/etc/passwd",
            "TOC entry 2 `/etc/passwd` is an absolute path",
        ),
    ] {
        let mut bad = toc.clone();
        bad.entries[2].name = name.into();
        let (blob, digest) = with_toc(&b, off, &bad);
        let e = read_err(&blob, Some(&digest));
        assert!(
            e.to_string().starts_with(&format!("layer {LAYER}: {want}")),
            "{e}"
        );
    }
}

#[test]
fn toc_offsets_beyond_the_toc() {
    let (b, off, toc) = blob();
    let mut bad = toc.clone();
    bad.entries[2].offset = off + 10;
    let (blob, digest) = with_toc(&b, off, &bad);
    let e = read_err(&blob, Some(&digest));
    assert!(
        e.to_string().contains("at or after the TOC's offset"),
        "{e}"
    );
}

#[test]
fn internal_errors_are_bugs() {
    let e = Error::new(LAYER, advisor::estargz::ErrorKind::Internal("x".into()));
    assert!(!e.is_user_facing());
    assert_eq!(exit_code(&anyhow::Error::new(e)), 2);
}
