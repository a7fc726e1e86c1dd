//! Output files that a failed run never destroys.
//!
//! Owns: creating every file advisor writes as a result (traces, file tables,
//! profiles, plots, prefetch lists). An [`Output`] is a hidden temporary file
//! beside its target (`.NAME.XXXXXX.tmp`, same directory, so the rename stays
//! on one file system); [`Output::commit`] syncs it and renames it over the
//! target, and dropping it uncommitted deletes it, so on any error the target
//! is exactly what it was. Also owns the check that an output is not one of
//! the command's inputs ([`refuse_overwriting`]).
//!
//! Not for append-only logs: `bench --output` and calibration's runs file
//! keep each run as it finishes so that a failure keeps what was measured;
//! they open in append mode (never truncating) and add whole lines.
//!
//! Must not: decide what to write, or print.
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Buffer of the writers below (traces are written one short line at a time).
const BUF: usize = 1 << 16;

/// An output being written; nothing reaches the target before [`commit`](Output::commit).
pub struct Output {
    sink: Sink,
}

enum Sink {
    /// `-`: written as it goes (nothing to protect).
    Stdout(BufWriter<io::Stdout>),
    /// A regular file (or none yet): a temporary file beside it.
    Staged {
        file: BufWriter<NamedTempFile>,
        dest: PathBuf,
    },
    /// A FIFO, a character device (`/dev/null`) or a socket: written in
    /// place; renaming over it would replace the device with a file.
    InPlace(BufWriter<File>),
}

impl Output {
    /// Start writing `path`: a temporary file beside it, with the existing
    /// file's permissions (else the usual 0666 less the umask). A symbolic
    /// link is followed: the file it names is replaced, the link stays.
    pub fn create(path: &Path) -> io::Result<Output> {
        let dest = follow_link(path);
        let existing = match fs::metadata(&dest) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let sink = match existing {
            Some(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a directory; give a file path",
                ));
            }
            Some(m) if !m.is_file() => Sink::InPlace(BufWriter::with_capacity(
                BUF,
                File::options().write(true).open(&dest)?,
            )),
            _ => {
                let dir = directory_of(&dest);
                if let Err(e) = fs::metadata(dir) {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("the directory {} cannot be used: {e}", dir.display()),
                    ));
                }
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".tmp")
                    .permissions(fs::Permissions::from_mode(0o666))
                    .tempfile_in(dir)?;
                if let Some(m) = &existing {
                    tmp.as_file()
                        .set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
                }
                Sink::Staged {
                    file: BufWriter::with_capacity(BUF, tmp),
                    dest,
                }
            }
        };
        Ok(Output { sink })
    }

    /// Like [`create`](Output::create), but `-` is standard output.
    pub fn create_or_stdout(path: &Path) -> io::Result<Output> {
        if is_stdio(path) {
            return Ok(Output {
                sink: Sink::Stdout(BufWriter::with_capacity(BUF, io::stdout())),
            });
        }
        Output::create(path)
    }

    /// Flush, sync and rename into place. On error the target is unchanged
    /// and the temporary file is removed.
    pub fn commit(self) -> io::Result<()> {
        match self.sink {
            Sink::Stdout(mut w) => w.flush().map_err(crate::printer::stdout_error),
            Sink::InPlace(mut w) => w.flush(),
            Sink::Staged { file, dest } => {
                let tmp = file.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all()?;
                tmp.persist(&dest).map_err(|e| e.error)?;
                // The rename itself reaches the disk with the directory.
                if let Ok(dir) = File::open(directory_of(&dest)) {
                    dir.sync_all()?;
                }
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write(buf).map_err(crate::printer::stdout_error),
            Sink::Staged { file, .. } => file.write(buf),
            Sink::InPlace(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.flush().map_err(crate::printer::stdout_error),
            Sink::Staged { file, .. } => file.flush(),
            Sink::InPlace(w) => w.flush(),
        }
    }
}

/// One file of a command's outputs: what it is (for messages), where, and its bytes.
pub struct Rendered<'a> {
    pub what: &'a str,
    pub path: &'a Path,
    pub bytes: &'a [u8],
}

/// Write several outputs all or none: every one is staged beside its target
/// first, and only when all are written are they renamed into place (a
/// failure in one, e.g. a directory that does not exist, writes none).
pub fn write_all_or_none(files: &[Rendered<'_>]) -> anyhow::Result<()> {
    let fail = |f: &Rendered<'_>, e: io::Error| {
        crate::error::user(format!(
            "cannot write the {} {}: {e}; no output was written",
            f.what,
            f.path.display()
        ))
    };
    let mut staged = Vec::with_capacity(files.len());
    for f in files {
        let mut out = Output::create(f.path).map_err(|e| fail(f, e))?;
        out.write_all(f.bytes)
            .and_then(|()| out.flush())
            .map_err(|e| fail(f, e))?;
        staged.push((f, out));
    }
    for (f, out) in staged {
        out.commit().map_err(|e| {
            crate::error::user(format!(
                "cannot write the {} {}: {e}",
                f.what,
                f.path.display()
            ))
        })?;
    }
    Ok(())
}

/// Check, before minutes of measuring, that the output `flag PATH` can be
/// written: a temporary file is made beside it and removed. A user error
/// naming the flag and the path otherwise.
pub fn check_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    Output::create(path).map(drop).map_err(|e| {
        crate::error::user(format!(
            "{flag} {}: cannot write there: {e}",
            path.display()
        ))
    })
}

/// An output or input named on the command line: its flag (`-o`, `--files`)
/// and its path.
pub type Named<'a> = (&'a str, &'a Path);

/// Refuse (a user error naming both paths) an output that is one of the
/// inputs — writing it would replace what is being read — or that is another
/// output. Same file: same device and inode, or for a path that does not
/// exist yet, the same absolute path. `-` (stdin / stdout) is never a file.
pub fn refuse_overwriting(outputs: &[Named<'_>], inputs: &[Named<'_>]) -> anyhow::Result<()> {
    for (i, (oflag, out)) in outputs.iter().enumerate() {
        if is_stdio(out) || is_special(out) {
            continue;
        }
        for (iflag, inp) in inputs {
            if !is_stdio(inp) && same_file(out, inp) {
                crate::bail_user!(
                    "{oflag} {} is the input {iflag} {}: writing it would replace what advisor reads; give {oflag} another path",
                    out.display(),
                    inp.display()
                );
            }
        }
        for (flag, other) in &outputs[i + 1..] {
            if !is_stdio(other) && same_file(out, other) {
                crate::bail_user!(
                    "{oflag} {} and {flag} {} are the same file; give each output its own path",
                    out.display(),
                    other.display()
                );
            }
        }
    }
    Ok(())
}

/// The directory a file is in (`.` for a bare name).
fn directory_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// An existing file that is not a regular file (`/dev/null`, a FIFO): written
/// in place, never replaced, so never refused.
fn is_special(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        (Err(_), Err(_)) => absolute(a) == absolute(b),
        _ => false,
    }
}

/// The path with its directory resolved (the file itself may not exist).
fn absolute(p: &Path) -> PathBuf {
    let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => fs::canonicalize(d).unwrap_or_else(|_| d.into()).join(n),
        _ => p,
    }
}

/// The file a symbolic link names (the link itself when it dangles).
fn follow_link(p: &Path) -> PathBuf {
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(p).unwrap_or_else(|_| p.into()),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_reaches_the_target_before_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.txt");
        fs::write(&p, "old").unwrap();
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"new").unwrap();
        o.flush().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(
            listing(d.path()).len(),
            2,
            "the temporary file is beside it"
        );
        o.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(listing(d.path()), ["out.txt"]);
    }

    #[test]
    fn a_dropped_output_leaves_the_target_and_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.txt");
        fs::write(&p, "old").unwrap();
        {
            let mut o = Output::create(&p).unwrap();
            o.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(listing(d.path()), ["out.txt"]);
    }

    #[test]
    fn a_new_file_is_created_on_commit_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.txt");
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"x").unwrap();
        assert!(!p.exists());
        o.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "x");
    }

    #[test]
    fn permissions_of_the_replaced_file_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.txt");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"new").unwrap();
        o.commit().unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    }

    #[test]
    fn a_new_file_is_not_private_like_a_temporary_file() {
        // tempfile's default is 0600; an output is 0666 less the umask.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.txt");
        let o = Output::create(&p).unwrap();
        o.commit().unwrap();
        // From /proc: setting the umask to read it would race other tests.
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().mode() & 0o777,
            0o666 & !umask & 0o777
        );
    }

    #[test]
    fn a_symbolic_link_is_followed_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.txt");
        let link = d.path().join("link.txt");
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut o = Output::create(&link).unwrap();
        o.write_all(b"new").unwrap();
        o.commit().unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn a_fifo_is_written_in_place_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let p = p.clone();
            std::thread::spawn(move || fs::read_to_string(p).unwrap())
        };
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"through").unwrap();
        o.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "through");
        assert!(!fs::symlink_metadata(&p).unwrap().is_file(), "still a FIFO");
        assert_eq!(listing(d.path()), ["fifo"]);
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let e = Output::create(d.path()).err().unwrap();
        assert!(e.to_string().contains("directory"), "{e}");
        let missing = d.path().join("no/such/out.txt");
        let e = Output::create(&missing).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no/such"), "{e}");
    }

    #[test]
    fn all_or_none_writes_none_when_one_fails() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("list.txt");
        fs::write(&good, "old").unwrap();
        let bad = d.path().join("missing/plot.svg");
        let e = write_all_or_none(&[
            Rendered {
                what: "prefetch list",
                path: &good,
                bytes: b"new",
            },
            Rendered {
                what: "plot",
                path: &bad,
                bytes: b"<svg/>",
            },
        ])
        .unwrap_err();
        assert!(crate::exit::is_user_error(&e));
        assert!(e.to_string().contains("plot"), "{e}");
        assert_eq!(fs::read_to_string(&good).unwrap(), "old");
        assert_eq!(listing(d.path()), ["list.txt"]);
    }

    #[test]
    fn an_output_naming_an_input_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("files.json");
        fs::write(&input, "{}").unwrap();
        let alias = d.path().join("alias.json");
        fs::hard_link(&input, &alias).unwrap();
        let dotted = d.path().join(".").join("files.json");
        for out in [&input, &alias, &dotted] {
            let e = refuse_overwriting(&[("--prefetch-list", out)], &[("--files", &input)])
                .unwrap_err();
            let msg = e.to_string();
            assert!(crate::exit::is_user_error(&e));
            assert!(
                msg.contains("--prefetch-list") && msg.contains("--files"),
                "{msg}"
            );
            assert!(msg.contains(&input.display().to_string()), "{msg}");
        }
        let other = d.path().join("other.txt");
        refuse_overwriting(&[("-o", &other)], &[("--files", &input)]).unwrap();
        refuse_overwriting(&[("-o", Path::new("-"))], &[("FILE", Path::new("-"))]).unwrap();
    }

    #[test]
    fn two_outputs_naming_one_new_file_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("x.svg");
        let b = d.path().join("sub/../x.svg");
        fs::create_dir(d.path().join("sub")).unwrap();
        let e = refuse_overwriting(&[("--plot", &a), ("--prefetch-list", &b)], &[]).unwrap_err();
        assert!(e.to_string().contains("same file"), "{e}");
    }

    #[test]
    fn dev_null_as_an_output_is_not_refused() {
        let n = Path::new("/dev/null");
        refuse_overwriting(&[("-o", n)], &[("FILE", n)]).unwrap();
    }
}
