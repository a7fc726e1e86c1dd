//! A layer's worth of files for the eStargz tests: directories, small and
//! empty files, files larger than the chunk size (and exact multiples of it),
//! symlinks, a hardlink, a long name, an xattr; plus helpers to write them
//! with advisor's writer or into a plain tar, and to build the Go fixture.
#![allow(dead_code)]
use advisor::estargz::writer::{
    EntryHeader, EntryKind, EstargzWriter, WriterOptions, WrittenLayer,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct FileSpec {
    pub header: EntryHeader,
    pub data: Vec<u8>,
}

/// Deterministic bytes, about half compressible (text runs between random words).
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            out.extend_from_slice(b"the quick brown fox ");
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

fn file(path: &str, data: Vec<u8>) -> FileSpec {
    let mut header = EntryHeader::file(path, data.len() as u64);
    header.mtime = 1_600_000_000;
    header.uid = 1000;
    header.gid = 1000;
    FileSpec { header, data }
}

fn special(header: EntryHeader) -> FileSpec {
    let mut header = header;
    header.mtime = 1_600_000_000;
    FileSpec {
        header,
        data: Vec::new(),
    }
}

/// The fixture, in tar order, every parent directory before its children.
pub fn fixture(chunk: u64) -> Vec<FileSpec> {
    let c = chunk as usize;
    let mut v = vec![
        special(EntryHeader::dir("etc")),
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n".to_vec()),
        file("etc/empty", Vec::new()),
        special(EntryHeader::symlink(
            "etc/localtime",
            "/usr/share/zoneinfo/UTC",
        )),
        special(EntryHeader::dir("usr")),
        special(EntryHeader::dir("usr/bin")),
        file("usr/bin/busybox", data(1, 2 * c + 777)),
        special(EntryHeader::symlink("usr/bin/sh", "busybox")),
        special(EntryHeader::hardlink("usr/bin/ls", "usr/bin/busybox")),
        special(EntryHeader::dir("data")),
        file("data/exact", data(2, 2 * c)),
        file("data/one-chunk", data(3, c)),
        file("data/big", data(4, 3 * c + c / 2 + 123)),
    ];
    for i in 0..40u64 {
        let len = if i % 7 == 0 {
            0
        } else {
            (i as usize * 997) % 5000
        };
        v.push(file(&format!("data/small/{i:02}"), data(100 + i, len)));
    }
    v.insert(v.len() - 40, special(EntryHeader::dir("data/small")));
    let long = format!("data/{}/{}", "d".repeat(90), "long-file-name-".repeat(8));
    v.push(file(&long, data(5, 1000)));
    let mut x = file("data/xattr", b"with an xattr".to_vec());
    x.header
        .xattrs
        .insert("user.note".into(), b"hello".to_vec());
    v.push(x);
    v
}

/// Paths the fixture's workload reads first (for `append_prioritized`, with
/// their parents; `convert_tar` and Go's Build add parents themselves).
pub const PRIORITIZED: [&str; 2] = ["usr/bin/busybox", "etc/passwd"];

/// Write the fixture with advisor's streaming writer, PRIORITIZED (and their
/// parents) first when `prioritize`.
pub fn write_estargz(
    files: &[FileSpec],
    opts: WriterOptions,
    prioritize: bool,
) -> (WrittenLayer, Vec<u8>) {
    let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
    let prio: Vec<&str> = if prioritize {
        vec!["usr", "usr/bin", "usr/bin/busybox", "etc", "etc/passwd"]
    } else {
        vec![]
    };
    let name = |f: &FileSpec| f.header.path.trim_end_matches('/').to_string();
    for p in &prio {
        let f = files.iter().find(|f| name(f) == *p).unwrap();
        w.append_prioritized(&f.header, &f.data[..]).unwrap();
    }
    for f in files {
        if !prio.contains(&name(f).as_str()) {
            w.append(&f.header, &f.data[..]).unwrap();
        }
    }
    let (layer, blob) = w.finish().unwrap();
    (layer, blob)
}

/// The fixture as a plain tar (GNU headers and long names, PAX xattrs), as
/// the tar crate writes it.
pub fn to_tar(files: &[FileSpec]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let e = &f.header;
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(f.data.len() as u64);
        h.set_entry_type(match e.kind {
            EntryKind::Reg => tar::EntryType::Regular,
            EntryKind::Dir => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::Hardlink => tar::EntryType::Link,
            EntryKind::Char => tar::EntryType::Char,
            EntryKind::Block => tar::EntryType::Block,
            EntryKind::Fifo => tar::EntryType::Fifo,
        });
        if !e.xattrs.is_empty() {
            let recs: Vec<(String, Vec<u8>)> = e
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
                .collect();
            b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        if matches!(e.kind, EntryKind::Symlink | EntryKind::Hardlink) {
            b.append_link(&mut h, &e.path, &e.link_name).unwrap();
        } else {
            b.append_data(&mut h, &e.path, &f.data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// The Go fixture binary (tests/fixtures/estargz-go), built once per test
/// binary; None (skip) when Go or Debian's stargz sources are missing, unless
/// ADVISOR_REQUIRE_LAB=1 (CI), where that fails.
pub fn go_fixture() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let gopath = Path::new("/usr/share/gocode");
        let have_src = gopath
            .join("src/github.com/containerd/stargz-snapshotter/estargz")
            .is_dir();
        let have_go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
        if !(have_src && have_go) {
            if std::env::var("ADVISOR_REQUIRE_LAB").as_deref() == Ok("1") {
                panic!(
                    "the Go cross-check needs golang-go and golang-github-containerd-stargz-snapshotter-dev (lab/lab up installs them)"
                );
            }
            eprintln!("skipped: Go or Debian's stargz-snapshotter sources are missing");
            return None;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp.join("estargz-go");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estargz-go");
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOCACHE", tmp.join("gocache"))
            .env("GOFLAGS", "")
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "building the Go fixture failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(bin)
    })
    .as_deref()
}
