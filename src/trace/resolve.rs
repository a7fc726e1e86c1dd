//! Resolving container paths against an image's merged (overlay) view, the
//! way the kernel would inside the container: symlinks followed component by
//! component (absolute targets restart at the image root), `..` clamped at
//! the root, implicit parent directories (a TOC need not list them), and
//! hardlinks mapped to the entry holding the payload (estargz `Lookup`
//! resolves a hardlink to its source, so the FUSE node and its chunk cache
//! are the source's).
//!
//! Owns path resolution and its per-path cache. Must not read trace files or
//! simulate fetching.
use crate::estargz::table::{FileKind, FileRef, ImageFiles, normalize_path};
use rustc_hash::{FxHashMap, FxHashSet};

/// Linux's limit on symlinks followed in one lookup (ELOOP after 40).
pub const MAX_SYMLINKS: u32 = 40;

/// Path prefixes that are kernel or runtime mounts, never image content.
pub const VIRTUAL_PREFIXES: [&str; 3] = ["/proc", "/sys", "/dev"];

/// What a path is in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A regular file (after following symlinks and hardlinks).
    File(FileRef),
    /// A directory (listed or implicit), including the root.
    Dir,
    /// Something else in the image: a device, fifo, or a hardlink whose
    /// target is missing.
    Other,
    /// Not in the image (or a dangling symlink, or a file used as a directory).
    Missing,
    /// Under /proc, /sys or /dev: mounted by the runtime, not image content.
    Virtual,
    /// More than [`MAX_SYMLINKS`] symlinks (ELOOP).
    Loop,
}

/// Resolves paths of one image; results are cached per distinct path.
pub struct Resolver<'a> {
    image: &'a ImageFiles,
    merged: FxHashMap<&'a str, FileRef>,
    /// Every proper prefix of a merged path: directories that exist even
    /// when the TOC has no entry for them (the stargz reader creates them).
    implicit_dirs: FxHashSet<&'a str>,
    /// Per layer, path → file index, built on the first hardlink in it.
    layer_index: Vec<Option<FxHashMap<&'a str, usize>>>,
    /// Per distinct path (Fx hashing: trace paths are trusted-size keys and
    /// this lookup runs once per event).
    cache: FxHashMap<Box<str>, Resolution>,
}

impl<'a> Resolver<'a> {
    pub fn new(image: &'a ImageFiles) -> Self {
        let merged = image.merged();
        let mut implicit_dirs = FxHashSet::default();
        for p in merged.keys() {
            let mut rest: &str = p;
            while let Some((parent, _)) = rest.rsplit_once('/') {
                if !implicit_dirs.insert(parent) {
                    break;
                }
                rest = parent;
            }
        }
        Resolver {
            image,
            merged,
            implicit_dirs,
            layer_index: vec![None; image.layers.len()],
            cache: FxHashMap::default(),
        }
    }

    /// The merged view (path without leading `/` → entry).
    pub fn merged(&self) -> &FxHashMap<&'a str, FileRef> {
        &self.merged
    }

    /// Resolve an absolute container path, following a final symlink.
    pub fn resolve(&mut self, path: &str) -> Resolution {
        if let Some(&r) = self.cache.get(path) {
            return r;
        }
        let r = self.resolve_uncached(path);
        self.cache.insert(path.into(), r);
        r
    }

    /// Distinct paths resolved so far.
    pub fn cached_paths(&self) -> usize {
        self.cache.len()
    }

    fn resolve_uncached(&mut self, path: &str) -> Resolution {
        if is_virtual(path) {
            return Resolution::Virtual;
        }
        let image = self.image;
        // Components still to walk, last first; `cur` is the resolved prefix.
        let mut todo: Vec<&str> = path.split('/').rev().filter(|c| !c.is_empty()).collect();
        let mut cur = String::new();
        let mut links = 0u32;
        while let Some(comp) = todo.pop() {
            match comp {
                "." => continue,
                ".." => {
                    match cur.rfind('/') {
                        Some(i) => cur.truncate(i),
                        None => cur.clear(),
                    }
                    continue;
                }
                _ => {}
            }
            let len_before = cur.len();
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(comp);
            match self.merged.get(cur.as_str()).copied() {
                Some(r) => {
                    let e = image.file(r);
                    match e.kind {
                        FileKind::Symlink => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Resolution::Loop;
                            }
                            let target: &'a str = e.link.as_deref().unwrap_or("");
                            cur.truncate(len_before);
                            if target.starts_with('/') {
                                cur.clear();
                            }
                            todo.extend(target.split('/').rev().filter(|c| !c.is_empty()));
                        }
                        FileKind::Dir => {}
                        // A file used as a directory: ENOTDIR.
                        _ if !todo.is_empty() && !self.implicit_dirs.contains(cur.as_str()) => {
                            return Resolution::Missing;
                        }
                        _ => {}
                    }
                }
                None => {
                    if !self.implicit_dirs.contains(cur.as_str()) {
                        return Resolution::Missing;
                    }
                }
            }
        }
        if cur.is_empty() {
            return Resolution::Dir;
        }
        match self.merged.get(cur.as_str()).copied() {
            Some(r) => match image.file(r).kind {
                FileKind::Reg => Resolution::File(r),
                FileKind::Dir => Resolution::Dir,
                FileKind::Hardlink => self.hardlink_target(r),
                FileKind::Symlink | FileKind::Other => Resolution::Other,
            },
            None if self.implicit_dirs.contains(cur.as_str()) => Resolution::Dir,
            None => Resolution::Missing,
        }
    }

    /// A hardlink's payload is its target's, in the same layer (tar hardlinks
    /// name an earlier entry of the same archive).
    fn hardlink_target(&mut self, r: FileRef) -> Resolution {
        let image = self.image;
        let layer = &image.layers[r.layer];
        let Some(target) = layer.files[r.file].link.as_deref().and_then(normalize_path) else {
            return Resolution::Other;
        };
        let index = self.layer_index[r.layer].get_or_insert_with(|| {
            layer
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.path.as_str(), i))
                .collect()
        });
        match index.get(target.as_str()) {
            Some(&fi) if layer.files[fi].kind == FileKind::Reg => Resolution::File(FileRef {
                layer: r.layer,
                file: fi,
            }),
            _ => Resolution::Other,
        }
    }
}

/// Whether a path is under /proc, /sys or /dev.
pub fn is_virtual(path: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::table::testing;
    use crate::estargz::table::{FileEntry, LayerFiles};

    /// A regular file is 10 bytes, anything else 0.
    fn entry(path: &str, kind: FileKind, link: Option<&str>) -> FileEntry {
        let size = if kind == FileKind::Reg { 10 } else { 0 };
        testing::entry(path, kind, size, link)
    }

    fn layer(files: Vec<FileEntry>) -> LayerFiles {
        LayerFiles {
            digest: "sha256:x".into(),
            ..testing::layer(files)
        }
    }

    fn image() -> ImageFiles {
        use FileKind::*;
        testing::image(vec![
            layer(vec![
                entry("usr", Dir, None),
                entry("usr/lib", Dir, None),
                entry("usr/lib/libc.so.6", Reg, None),
                entry("usr/bin/busybox", Reg, None), // usr/bin implicit
                entry("lib", Symlink, Some("usr/lib")),
                entry("bin", Symlink, Some("/usr/bin")),
                entry("usr/bin/sh", Symlink, Some("busybox")),
                entry("usr/bin/up", Symlink, Some("../lib/libc.so.6")),
                entry("loop1", Symlink, Some("loop2")),
                entry("loop2", Symlink, Some("loop1")),
                entry("dangling", Symlink, Some("/nowhere")),
                entry("usr/bin/ln", Hardlink, Some("./usr/bin/busybox")),
                entry("dev-null", Other, None),
            ]),
            layer(vec![entry("etc/passwd", Reg, None)]),
        ])
    }

    #[test]
    fn resolves_files_through_symlinks_and_implicit_dirs() {
        let img = image();
        let mut r = Resolver::new(&img);
        let libc = Resolution::File(FileRef { layer: 0, file: 2 });
        let busybox = Resolution::File(FileRef { layer: 0, file: 3 });
        assert_eq!(r.resolve("/usr/lib/libc.so.6"), libc);
        assert_eq!(r.resolve("/lib/libc.so.6"), libc, "relative dir symlink");
        assert_eq!(r.resolve("/bin/busybox"), busybox, "absolute dir symlink");
        assert_eq!(r.resolve("/bin/sh"), busybox, "chained symlinks");
        assert_eq!(r.resolve("/bin/up"), libc, "`..` in a symlink target");
        assert_eq!(r.resolve("//usr/./bin/../lib/libc.so.6"), libc);
        assert_eq!(
            r.resolve("/../../usr/lib/libc.so.6"),
            libc,
            "`..` clamps at the root"
        );
        assert_eq!(
            r.resolve("/etc/passwd"),
            Resolution::File(FileRef { layer: 1, file: 0 })
        );
        assert_eq!(r.resolve("/usr/bin/ln"), busybox, "hardlink → its source");
    }

    #[test]
    fn classifies_dirs_missing_loops_and_virtual_paths() {
        let img = image();
        let mut r = Resolver::new(&img);
        assert_eq!(r.resolve("/"), Resolution::Dir);
        assert_eq!(r.resolve("/usr/bin"), Resolution::Dir, "implicit");
        assert_eq!(
            r.resolve("/etc"),
            Resolution::Dir,
            "implicit in an upper layer"
        );
        assert_eq!(r.resolve("/lib"), Resolution::Dir);
        assert_eq!(r.resolve("/nope"), Resolution::Missing);
        assert_eq!(
            r.resolve("/usr/lib/libc.so.6/x"),
            Resolution::Missing,
            "ENOTDIR"
        );
        assert_eq!(r.resolve("/dangling"), Resolution::Missing);
        assert_eq!(r.resolve("/loop1"), Resolution::Loop);
        assert_eq!(r.resolve("/dev-null"), Resolution::Other);
        assert_eq!(r.resolve("/proc/self/maps"), Resolution::Virtual);
        assert_eq!(r.resolve("/dev"), Resolution::Virtual);
        assert_eq!(
            r.resolve("/devices"),
            Resolution::Missing,
            "only whole components"
        );
        assert_eq!(r.cached_paths(), 12);
    }
}
