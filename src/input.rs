//! Reading a user's input file whole, with a bound: a path naming a device
//! (`/dev/zero`), a FIFO or a wrong, huge file is an error saying so, not an
//! allocation that grows until the process aborts (issue 17).
//!
//! Owns the bound only; callers wrap the `io::Error` in their own typed error
//! naming the file and the flag (its kind is `InvalidData`: the user's to fix).
use std::io::Read;
use std::path::Path;

/// Largest profile, image spec or prioritized-files list advisor reads:
/// 64 MiB, far above any it writes (a profile is a few KiB).
pub const MAX_INPUT_TEXT: u64 = 64 << 20;

/// The file's text, at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} (not the file it should be?)",
                crate::units::Bytes(limit)
            ),
        ));
    }
    Ok(text)
}

/// Read one line (through `\n`) into `buf`, at most `limit` bytes: the bytes
/// read (0 at end of input), or `None` when the line is longer than `limit`
/// (an input without line ends). Callers name the file and line.
pub fn read_line_bounded<R: std::io::BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    limit: u64,
) -> std::io::Result<Option<usize>> {
    use std::io::BufRead;
    buf.clear();
    let n = input.by_ref().take(limit + 1).read_until(b'\n', buf)?;
    Ok((n as u64 <= limit).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_the_limit_is_invalid_data_not_read_whole() {
        let e = read_text(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 1.00 MiB"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ok.txt");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text(&p, 5).unwrap(), "hello");
        assert!(read_text(&p, 4).is_err());
    }

    #[test]
    fn a_line_longer_than_the_bound_is_none_not_a_growing_buffer() {
        let mut buf = Vec::new();
        let mut r = std::io::Cursor::new(b"abc\ndefghij\n".to_vec());
        assert_eq!(
            super::read_line_bounded(&mut r, &mut buf, 5).unwrap(),
            Some(4)
        );
        assert_eq!(buf, b"abc\n");
        assert_eq!(super::read_line_bounded(&mut r, &mut buf, 5).unwrap(), None);
        assert_eq!(buf.len(), 6, "reads stop at the bound");
        let mut end = std::io::Cursor::new(Vec::new());
        assert_eq!(
            super::read_line_bounded(&mut end, &mut buf, 5).unwrap(),
            Some(0)
        );
    }
}
