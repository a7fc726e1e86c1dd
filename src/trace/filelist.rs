//! Import of a plain list of paths (one per line), for users who only know
//! which files their workload touches: each file is opened and read whole, in
//! order, with no timing (every `t` is 0).
//!
//! Owns the list syntax: blank lines and `#` comments are skipped, a line
//! `# ready` marks the cold-start point. Must not look at any image.
use super::Error;
use super::format::{Event, Op};
use serde::Serialize;
use std::io::BufRead;

/// Options of the file-list import.
#[derive(Debug, Clone, Default)]
pub struct FileListOptions {
    /// Emit `ready` after this many files (if no `# ready` line came first).
    pub ready_after: Option<u64>,
}

/// What an import produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileListSummary {
    pub lines: u64,
    pub files: u64,
    pub events: u64,
    /// Whether a `ready` marker was written, and after how many files.
    pub ready_after_files: Option<u64>,
}

/// Whether a comment line is the ready marker (`# ready`, any case/spacing).
fn is_ready_marker(line: &str) -> bool {
    line.strip_prefix('#')
        .is_some_and(|r| r.trim().eq_ignore_ascii_case("ready"))
}

/// Read the list from `input` (`name` in messages) and pass each event to `sink`.
pub fn import<R: BufRead>(
    input: R,
    name: &str,
    opts: &FileListOptions,
    mut sink: impl FnMut(&Event<'_>) -> Result<(), Error>,
) -> Result<FileListSummary, Error> {
    let mut s = FileListSummary::default();
    let mut emit = |e: Event<'_>, s: &mut FileListSummary| -> Result<(), Error> {
        s.events += 1;
        sink(&e)
    };
    let mut input = input;
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        n += 1;
        if super::read_import_line(&mut input, &mut buf, name, n, "cannot read the file list")? == 0
        {
            break;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            return Err(Error::parse(name, n, None, "is not valid UTF-8"));
        };
        s.lines = n;
        let path = line.trim_end_matches(['\r', '\n']);
        if path.trim().is_empty() {
            continue;
        }
        if path.trim_start().starts_with('#') {
            if is_ready_marker(path.trim()) && s.ready_after_files.is_none() {
                s.ready_after_files = Some(s.files);
                emit(Event::new(0, 0, Op::Ready), &mut s)?;
            }
            continue;
        }
        if !path.starts_with('/') {
            return Err(Error::parse(
                name,
                n,
                None,
                format!(
                    "`{path}` is not an absolute path; write paths as the container sees them, \
                     starting with / (one per line)"
                ),
            ));
        }
        if path.contains('\0') {
            return Err(Error::parse(name, n, None, "the path contains a NUL byte"));
        }
        emit(Event::on_path(0, 1, Op::Open, path), &mut s)?;
        emit(Event::read(0, 1, path, 0, None), &mut s)?;
        s.files += 1;
        if opts.ready_after == Some(s.files) && s.ready_after_files.is_none() {
            s.ready_after_files = Some(s.files);
            emit(Event::new(0, 0, Op::Ready), &mut s)?;
        }
    }
    if let Some(n) = opts.ready_after
        && n > s.files
    {
        return Err(Error::Invalid {
            file: name.to_string(),
            message: format!(
                "--ready-after {n} is more than the {} file(s) listed; give a count up to {}",
                s.files, s.files
            ),
        });
    }
    emit(Event::new(0, 1, Op::Exit), &mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        text: &str,
        opts: FileListOptions,
    ) -> Result<(Vec<Event<'static>>, FileListSummary), Error> {
        let mut out = Vec::new();
        let s = import(text.as_bytes(), "files.txt", &opts, |e| {
            out.push(e.clone().into_owned());
            Ok(())
        })?;
        Ok((out, s))
    }

    #[test]
    fn each_path_is_opened_and_read_whole_in_order() {
        let (ev, s) = run(
            "/bin/sh\n\n# a comment\n/etc/passwd\r\n",
            FileListOptions::default(),
        )
        .unwrap();
        let ops: Vec<(Op, Option<&str>)> = ev.iter().map(|e| (e.op, e.path.as_deref())).collect();
        assert_eq!(
            ops,
            vec![
                (Op::Open, Some("/bin/sh")),
                (Op::Read, Some("/bin/sh")),
                (Op::Open, Some("/etc/passwd")),
                (Op::Read, Some("/etc/passwd")),
                (Op::Exit, None),
            ]
        );
        assert!(ev.iter().all(|e| e.t == 0));
        assert_eq!((ev[1].offset, ev[1].len), (Some(0), None), "whole file");
        assert_eq!((s.files, s.events, s.ready_after_files), (2, 5, None));
    }

    #[test]
    fn ready_marker_line_or_option() {
        let (ev, s) = run("/a\n# Ready\n/b\n", FileListOptions::default()).unwrap();
        assert_eq!(ev[2].op, Op::Ready);
        assert_eq!(s.ready_after_files, Some(1));
        let (ev, s) = run(
            "/a\n/b\n/c\n",
            FileListOptions {
                ready_after: Some(2),
            },
        )
        .unwrap();
        assert_eq!(ev[4].op, Op::Ready);
        assert_eq!(s.ready_after_files, Some(2));
        let e = run(
            "/a\n",
            FileListOptions {
                ready_after: Some(3),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--ready-after 3 is more than the 1 file(s)"),
            "{e}"
        );
    }

    #[test]
    fn relative_path_names_the_line() {
        let e = run("/a\netc/passwd\n", FileListOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "files.txt line 2: `etc/passwd` is not an absolute path; write paths as the container \
             sees them, starting with / (one per line)"
        );
    }
}
