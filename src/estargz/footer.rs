//! The eStargz footer: an empty gzip member at the end of the blob whose
//! Extra field carries the TOC's compressed offset.
//!
//! Owns building the 51-byte footer and parsing a blob's tail (51-byte eStargz
//! first, then the 47-byte legacy stargz footer, the order of stargz-snapshotter
//! v0.12 `estargz.Open`). Does not read the TOC (see `reader`).
//!
//! Layout (estargz/gzip.go `gzipFooterBytes`, `GzipDecompressor.ParseFooter`,
//! `LegacyGzipDecompressor.ParseFooter`):
//!
//! | bytes | eStargz (51) | legacy stargz (47) |
//! |---|---|---|
//! | 0-9 | gzip header, FLG = FEXTRA, MTIME 0, OS 255 | same |
//! | 10-11 | XLEN = 26 (LE) | XLEN = 22 |
//! | 12-15 | subfield `S` `G`, length 22 (LE) | - |
//! | next 22 | `%016x` TOC offset + `STARGZ` | same |
//! | last 13 | empty final stored deflate block, CRC32 0, ISIZE 0 | same |
use super::error::{Error, ErrorKind, err};
use super::table::LayerFormat;
use std::ops::Range;

/// Size of the eStargz footer (estargz/types.go `FooterSize`).
pub const FOOTER_SIZE: u64 = 51;
/// Size of the legacy stargz footer (estargz/types.go `legacyFooterSize`).
pub const LEGACY_FOOTER_SIZE: u64 = 47;

const MAGIC: &[u8; 6] = b"STARGZ";
/// gzip ID1, ID2, CM = deflate.
const GZIP_ID: [u8; 3] = [0x1f, 0x8b, 0x08];
const FEXTRA: u8 = 0x04;
/// An empty final stored deflate block, as Go's `gzip.NoCompression` writer
/// closes an empty member, then CRC32 = 0 and ISIZE = 0.
const EMPTY_BODY: [u8; 13] = [0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
/// The offset field: 16 hex digits then `STARGZ`.
const OFFSET_FIELD_LEN: usize = 16 + MAGIC.len();

/// Which footer a blob ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FooterKind {
    /// The 51-byte eStargz footer (`SG` subfield).
    Estargz,
    /// The 47-byte footer of the original stargz format.
    LegacyStargz,
}

impl FooterKind {
    /// Footer length in bytes.
    pub fn size(self) -> u64 {
        match self {
            FooterKind::Estargz => FOOTER_SIZE,
            FooterKind::LegacyStargz => LEGACY_FOOTER_SIZE,
        }
    }

    /// The file-table format this footer means.
    pub fn layer_format(self) -> LayerFormat {
        match self {
            FooterKind::Estargz => LayerFormat::Estargz,
            FooterKind::LegacyStargz => LayerFormat::LegacyStargz,
        }
    }
}

/// A parsed footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Compressed offset of the TOC's gzip member.
    pub toc_offset: u64,
    pub kind: FooterKind,
}

impl Footer {
    /// The compressed bytes of the TOC member: from its offset to the footer.
    pub fn toc_range(&self, blob_size: u64) -> Range<u64> {
        self.toc_offset..blob_size.saturating_sub(self.kind.size())
    }
}

/// The 51-byte eStargz footer for a TOC at `toc_offset`.
pub fn footer_bytes(toc_offset: u64) -> [u8; FOOTER_SIZE as usize] {
    let mut b = [0u8; FOOTER_SIZE as usize];
    write_header(&mut b, 26);
    b[12..16].copy_from_slice(&[b'S', b'G', OFFSET_FIELD_LEN as u8, 0]);
    write_offset_field(&mut b[16..38], toc_offset);
    b[38..].copy_from_slice(&EMPTY_BODY);
    b
}

/// The 47-byte legacy stargz footer for a TOC at `toc_offset` (advisor never
/// writes it into layers; tests and fixtures use it).
pub fn legacy_footer_bytes(toc_offset: u64) -> [u8; LEGACY_FOOTER_SIZE as usize] {
    let mut b = [0u8; LEGACY_FOOTER_SIZE as usize];
    write_header(&mut b, OFFSET_FIELD_LEN as u16);
    write_offset_field(&mut b[12..34], toc_offset);
    b[34..].copy_from_slice(&EMPTY_BODY);
    b
}

fn write_header(b: &mut [u8], xlen: u16) {
    b[..3].copy_from_slice(&GZIP_ID);
    b[3] = FEXTRA;
    // MTIME 0, XFL 0 (Go's NoCompression), OS 255 (unknown), as Go writes it.
    b[9] = 0xff;
    b[10..12].copy_from_slice(&xlen.to_le_bytes());
}

fn write_offset_field(b: &mut [u8], toc_offset: u64) {
    let field = format!("{toc_offset:016x}STARGZ");
    // An offset above 2^64 - 1 cannot happen; 16 hex digits hold any u64.
    b.copy_from_slice(&field.as_bytes()[field.len() - OFFSET_FIELD_LEN..]);
}

/// Parse the footer from the end of a blob.
///
/// `tail` is the last `tail.len()` bytes of a blob of `blob_size` bytes (at
/// least 51 bytes, or the whole blob when it is smaller). Tries the eStargz
/// footer, then the legacy one, and checks the TOC offset lies inside the blob.
/// Errors name `layer`.
pub fn parse_footer(layer: &str, tail: &[u8], blob_size: u64) -> Result<Footer, Error> {
    if (tail.len() as u64) > blob_size {
        return err(
            layer,
            ErrorKind::Internal(format!(
                "footer parse given {} tail bytes of a {blob_size}-byte blob",
                tail.len()
            )),
        );
    }
    if blob_size < LEGACY_FOOTER_SIZE {
        return err(
            layer,
            ErrorKind::TooSmall {
                size: blob_size,
                min: LEGACY_FOOTER_SIZE,
            },
        );
    }
    let mut problems = Vec::new();
    for kind in [FooterKind::Estargz, FooterKind::LegacyStargz] {
        let size = kind.size() as usize;
        if tail.len() < size {
            problems.push(format!(
                "{}: only {} tail bytes given",
                kind_name(kind),
                tail.len()
            ));
            continue;
        }
        let bytes = &tail[tail.len() - size..];
        match parse_exact(bytes, kind) {
            Ok(toc_offset) => {
                // The TOC member needs at least a gzip header before the footer.
                if toc_offset >= blob_size - kind.size() {
                    return err(
                        layer,
                        ErrorKind::TocOffsetOutOfRange {
                            offset: toc_offset,
                            blob_size,
                        },
                    );
                }
                return Ok(Footer { toc_offset, kind });
            }
            Err(p) => problems.push(format!("{}: {p}", kind_name(kind))),
        }
    }
    err(
        layer,
        ErrorKind::NoFooter {
            detail: problems.join("; "),
        },
    )
}

fn kind_name(kind: FooterKind) -> &'static str {
    match kind {
        FooterKind::Estargz => "51-byte eStargz footer",
        FooterKind::LegacyStargz => "47-byte legacy footer",
    }
}

/// Parse exactly one footer's bytes; the problem in words on failure.
fn parse_exact(b: &[u8], kind: FooterKind) -> Result<u64, String> {
    if b[..3] != GZIP_ID {
        return Err("no gzip header".into());
    }
    // Go's gzip reader would also parse FNAME/FCOMMENT/FHCRC out of the bytes
    // that follow; a footer written by any stargz writer has only FEXTRA.
    if b[3] & !0x01 != FEXTRA {
        return Err(format!("gzip flags {:#04x}, expected FEXTRA only", b[3]));
    }
    let xlen = u16::from_le_bytes([b[10], b[11]]) as usize;
    let field = match kind {
        FooterKind::Estargz => {
            if xlen != 4 + OFFSET_FIELD_LEN {
                return Err(format!("extra field is {xlen} bytes, expected 26"));
            }
            if b[12..14] != [b'S', b'G'] {
                return Err(format!(
                    "subfield id {:?}, expected \"SG\"",
                    String::from_utf8_lossy(&b[12..14])
                ));
            }
            let slen = u16::from_le_bytes([b[14], b[15]]) as usize;
            if slen != OFFSET_FIELD_LEN {
                return Err(format!("subfield is {slen} bytes, expected 22"));
            }
            &b[16..38]
        }
        FooterKind::LegacyStargz => {
            if xlen != OFFSET_FIELD_LEN {
                return Err(format!("extra field is {xlen} bytes, expected 22"));
            }
            &b[12..34]
        }
    };
    if &field[16..] != MAGIC {
        return Err("no STARGZ magic".into());
    }
    let hex = &field[..16];
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "TOC offset {:?} is not 16 hex digits",
            String::from_utf8_lossy(hex)
        ));
    }
    // All hex digits, so this is ASCII and parses; Go reads it as int64.
    let text = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
    let offset = u64::from_str_radix(text, 16).map_err(|e| e.to_string())?;
    if offset > i64::MAX as u64 {
        return Err(format!("TOC offset {offset} exceeds 2^63 - 1"));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn footer_is_51_bytes_and_an_empty_gzip_member() {
        let f = footer_bytes(0x1234);
        assert_eq!(f.len(), 51);
        assert_eq!(&f[16..38], b"0000000000001234STARGZ");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&f[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
        let l = legacy_footer_bytes(0x1234);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&l[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn parses_both_footers_from_a_longer_tail() {
        let mut tail = vec![7u8; 100];
        tail.extend_from_slice(&footer_bytes(42));
        let f = parse_footer("sha256:x", &tail, 1000).unwrap();
        assert_eq!(
            f,
            Footer {
                toc_offset: 42,
                kind: FooterKind::Estargz
            }
        );
        assert_eq!(f.toc_range(1000), 42..949);
        let mut tail = vec![7u8; 100];
        tail.extend_from_slice(&legacy_footer_bytes(42));
        let f = parse_footer("sha256:x", &tail, 1000).unwrap();
        assert_eq!(f.kind, FooterKind::LegacyStargz);
        assert_eq!(f.toc_range(1000), 42..953);
    }

    #[test]
    fn a_47_byte_blob_tail_parses_as_legacy() {
        let f = parse_footer("l", &legacy_footer_bytes(0), 60).unwrap();
        assert_eq!(f.kind, FooterKind::LegacyStargz);
    }

    #[test]
    fn corrupt_footer_names_the_layer_and_both_attempts() {
        let mut f = footer_bytes(42);
        f[33] = b'X'; // inside STARGZ
        let e = parse_footer("sha256:ab12", &f, 500).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("layer sha256:ab12: no eStargz footer"),
            "{msg}"
        );
        assert!(
            msg.contains("51-byte eStargz footer: no STARGZ magic"),
            "{msg}"
        );
        assert!(msg.contains("47-byte legacy footer"), "{msg}");
    }

    #[test]
    fn offset_beyond_the_blob_is_rejected() {
        let f = footer_bytes(1000);
        let e = parse_footer("l", &f, 500).unwrap_err();
        assert!(matches!(
            e.kind,
            ErrorKind::TocOffsetOutOfRange {
                offset: 1000,
                blob_size: 500
            }
        ));
    }

    #[test]
    fn non_hex_and_huge_offsets_are_rejected() {
        let mut f = footer_bytes(0);
        f[16] = b'-';
        assert!(parse_footer("l", &f, 500).is_err());
        let mut f = footer_bytes(0);
        f[16..32].copy_from_slice(b"ffffffffffffffff");
        let e = parse_footer("l", &f, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("exceeds 2^63 - 1"), "{e}");
    }

    #[test]
    fn tiny_blobs_are_too_small() {
        let e = parse_footer("l", &[0u8; 10], 10).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::TooSmall { size: 10, .. }));
    }
}
