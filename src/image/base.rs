//! The base layer: Debian's static busybox with the applets workloads use,
//! `/etc/passwd` and `/etc/group` with root, and the usual top-level
//! directories, so a generated image can run shell commands.
//!
//! Owns the list of applets and the static-binary check. Reads the host's
//! busybox; does not write layers.
use super::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX_PATH: &str = "/bin/busybox";

/// Applets linked in `/bin` (all in Debian's busybox-static 1.35): what
/// workloads, ready checks and the tests use to read, hash and time files.
pub const APPLETS: &[&str] = &[
    "[",
    "awk",
    "basename",
    "cat",
    "chmod",
    "cmp",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "grep",
    "gzip",
    "head",
    "hostname",
    "id",
    "kill",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mv",
    "nproc",
    "od",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "rm",
    "sed",
    "seq",
    "sh",
    "sha1sum",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "sync",
    "tail",
    "tar",
    "tee",
    "test",
    "time",
    "timeout",
    "touch",
    "tr",
    "true",
    "uname",
    "uniq",
    "usleep",
    "wc",
    "xargs",
    "yes",
];

/// Directories of the base layer and their modes.
pub const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/local", 0o755),
    ("usr/local/bin", 0o755),
    ("var", 0o755),
];

/// `/etc/passwd` of the base layer.
pub const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
/// `/etc/group` of the base layer.
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The host's busybox, checked: a regular file, an ELF executable without a
/// program interpreter (statically linked, so it runs in an image with no libc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busybox {
    pub path: PathBuf,
    pub size: u64,
}

impl Busybox {
    /// Find and check the busybox at `path`.
    pub fn locate(path: &Path) -> Result<Self, Error> {
        let fail = |problem: String| Error::Busybox {
            path: path.to_path_buf(),
            problem,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("not usable ({e})")))?;
        if !meta.is_file() {
            return Err(fail("is not a regular file".into()));
        }
        let mut f = std::fs::File::open(path).map_err(|e| fail(format!("cannot open it ({e})")))?;
        // The ELF header and program headers sit in the first pages.
        let mut head = vec![0u8; 64 << 10];
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(fail(format!("cannot read it ({e})"))),
            }
        }
        head.truncate(n);
        match elf_interpreter(&head) {
            Err(p) => Err(fail(p)),
            Ok(true) => Err(fail(
                "is dynamically linked (it needs a loader and libc the image does not have)".into(),
            )),
            Ok(false) => Ok(Busybox {
                path: path.to_path_buf(),
                size: meta.len(),
            }),
        }
    }
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header
/// (it is dynamically linked). Hand-parsed: three fields of the ELF header and
/// one of each program header (System V gABI, "Program Header"); a crate for
/// that would be the only ELF use in advisor.
fn elf_interpreter(head: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if head[4] != 2 || head[5] != 1 {
        return Err("is not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let phoff = usize::try_from(u64_at(0x20)).map_err(|_| "has a corrupt ELF header")?;
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    if phentsize < 4 {
        return Err("has a corrupt ELF header".into());
    }
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let Some(t) = head.get(o..o + 4) else {
            return Err("has program headers past its first 64 KiB".into());
        };
        if u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_static_busybox_passes_and_dynamic_binaries_do_not() {
        if Path::new(BUSYBOX_PATH).exists() {
            let b = Busybox::locate(Path::new(BUSYBOX_PATH)).unwrap();
            assert!(b.size > 100_000);
        }
        // Any dynamically linked system binary has an interpreter.
        let ls = Path::new("/bin/ls");
        if ls.exists() {
            let e = Busybox::locate(ls).unwrap_err().to_string();
            assert!(e.contains("dynamically linked"), "{e}");
            assert!(e.contains("apt-get install busybox-static"), "{e}");
        }
        let e = Busybox::locate(Path::new("/nonexistent/busybox"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/busybox: not usable"), "{e}");
        let e = elf_interpreter(b"#!/bin/sh\n").unwrap_err();
        assert!(e.contains("not an ELF"), "{e}");
    }
}
