//! Converting a tar stream into an eStargz layer with prioritized files
//! first, as stargz-snapshotter's `estargz.Build` (estargz/build.go) does:
//! spool the input, index its entries, order the prioritized ones with their
//! parents and hardlink targets, then write through the eStargz writer.
//!
//! Owns that order and Go's entry-name cleaning. Must not frame tar or lay
//! out members itself ([`super::tar`], [`super::writer`]).
use super::error::{Error, ErrorKind, err, io_err};
use super::tar::{EntryHeader, EntryKind, for_each_entry, tar_reader};
use super::writer::{EstargzWriter, WriterOptions, WrittenLayer};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Convert a tar stream (gzip-compressed or not) into an eStargz layer, as
/// stargz-snapshotter's `estargz.Build`: `prioritized` paths (each with its
/// parent directories and hardlink targets) first, in order, then
/// `.prefetch.landmark`, then the rest in input order; duplicates keep the
/// last occurrence. With prioritized paths the input is spooled to an
/// anonymous temporary file (disk, not memory); without, it streams.
///
/// Unlike Go, a prioritized path whose parent directories have no entries
/// is accepted (Go fails the build).
pub fn convert_tar<R: Read, W: Write>(
    input: R,
    out: W,
    opts: WriterOptions,
    prioritized: &[String],
) -> Result<(WrittenLayer, W), Error> {
    let label = opts.label.clone();
    let mut w = EstargzWriter::new(out, opts)?;
    if prioritized.is_empty() {
        w.append_tar(input)?;
        return w.finish();
    }
    let mut spool = spool(&label, input)?;
    let index = Index::of(&label, &spool)?;
    let (order, moved) = index.prioritized_first(&label, prioritized)?;
    let mut write = |i: usize, prioritized: bool| -> Result<(), Error> {
        let item = &index.items[i];
        spool
            .seek(SeekFrom::Start(item.data))
            .map_err(|e| io_err(&label, "reading the spooled tar", e))?;
        let payload = (&spool).take(item.header.size);
        if prioritized {
            w.append_prioritized(&item.header, payload)
        } else {
            w.append(&item.header, payload)
        }
    };
    for &i in &order {
        write(i, true)?;
    }
    for (i, item) in index.items.iter().enumerate() {
        if !moved[i] && !item.removed {
            write(i, false)?;
        }
    }
    w.finish()
}

/// The input tar, uncompressed, in an anonymous temporary file at its start.
fn spool(label: &str, input: impl Read) -> Result<File, Error> {
    let mut spool = tempfile::tempfile()
        .map_err(|e| io_err(label, "creating a temporary file to reorder the tar", e))?;
    io::copy(&mut tar_reader(label, input)?, &mut spool)
        .map_err(|e| io_err(label, "spooling the input tar", e))?;
    spool
        .seek(SeekFrom::Start(0))
        .map_err(|e| io_err(label, "rewinding the spooled tar", e))?;
    Ok(spool)
}

/// One entry of the spooled tar: its header and where its payload starts.
struct Indexed {
    header: EntryHeader,
    data: u64,
    /// A later entry of the same name replaces it.
    removed: bool,
}

/// The spooled tar's entries (the TOC and landmarks of an eStargz input
/// dropped) and the last entry of each cleaned name.
struct Index {
    items: Vec<Indexed>,
    by_name: HashMap<String, usize>,
}

impl Index {
    fn of(label: &str, spool: &File) -> Result<Self, Error> {
        let mut index = Index {
            items: Vec::new(),
            by_name: HashMap::new(),
        };
        let mut archive = tar::Archive::new(spool);
        for_each_entry(label, &mut archive, true, |header, entry| {
            let name = go_clean(&header.path);
            if let Some(&old) = index.by_name.get(&name) {
                index.items[old].removed = true;
            }
            index.by_name.insert(name, index.items.len());
            index.items.push(Indexed {
                header,
                data: entry.raw_file_position(),
                removed: false,
            });
            Ok(())
        })?;
        Ok(index)
    }

    /// The entries to write before the landmark, in order, and which entries
    /// that moves (estargz/build.go `sortEntries`).
    fn prioritized_first(
        &self,
        label: &str,
        prioritized: &[String],
    ) -> Result<(Vec<usize>, Vec<bool>), Error> {
        let mut order: Vec<usize> = Vec::new();
        let mut moved = vec![false; self.items.len()];
        let links = |i: usize| {
            let h = &self.items[i].header;
            (h.kind == EntryKind::Hardlink).then(|| h.link_name.clone())
        };
        for p in prioritized {
            let name = go_clean(p);
            if name.is_empty() || !self.by_name.contains_key(&name) {
                return err(label, ErrorKind::PrioritizedMissing(p.clone()));
            }
            move_rec(&name, &self.by_name, &links, &mut moved, &mut order, 0);
        }
        Ok((order, moved))
    }
}

/// estargz/build.go `moveRec`: parents first, then hardlink targets, then the file.
fn move_rec(
    name: &str,
    by_name: &HashMap<String, usize>,
    items_links: &dyn Fn(usize) -> Option<String>,
    moved: &mut [bool],
    order: &mut Vec<usize>,
    depth: usize,
) -> bool {
    let name = go_clean(name);
    if depth > 4096 {
        return false;
    }
    let found = by_name.get(&name).copied();
    if !name.is_empty() {
        let parent = match name.rsplit_once('/') {
            Some((p, _)) => p.to_string(),
            None => String::new(),
        };
        move_rec(&parent, by_name, items_links, moved, order, depth + 1);
    }
    let Some(i) = found else {
        return false;
    };
    if let Some(target) = items_links(i) {
        move_rec(&target, by_name, items_links, moved, order, depth + 1);
    }
    if !moved[i] {
        moved[i] = true;
        order.push(i);
    }
    true
}

/// Go's `cleanEntryName`: `path.Clean("/" + name)` without the leading `/`,
/// so `..` stops at the root.
fn go_clean(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::reader;
    use crate::estargz::tar::tests::untar;
    use crate::estargz::toc::{NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK};

    #[test]
    fn convert_tar_reorders_prioritized_files_with_parents_and_link_targets() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8], ty: tar::EntryType, link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(ty);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, data).unwrap();
        };
        add("a/", b"", tar::EntryType::Directory, None);
        add("a/one", b"1", tar::EntryType::Regular, None);
        add("b/", b"", tar::EntryType::Directory, None);
        add("b/two", b"22", tar::EntryType::Regular, None);
        add("b/link", b"", tar::EntryType::Link, Some("a/one"));
        add("a/one", b"one!", tar::EntryType::Regular, None); // duplicate: last wins
        let tar_bytes = b.into_inner().unwrap();
        let (layer, blob) = convert_tar(
            &tar_bytes[..],
            Vec::new(),
            WriterOptions::default(),
            &["/b/link".to_string()],
        )
        .unwrap();
        let names: Vec<_> = layer
            .toc
            .as_ref()
            .unwrap()
            .toc
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(
            names,
            ["b/", "a/", "a/one", "b/link", PREFETCH_LANDMARK, "b/two"]
        );
        let files = untar(&blob);
        assert_eq!(files[2], ("a/one".into(), b"one!".to_vec()));
        let e = convert_tar(
            &tar_bytes[..],
            Vec::new(),
            WriterOptions::default(),
            &["nope".to_string()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("prioritized file `nope`"), "{e}");
        // The result reads back.
        let idx = reader::read_index("t", std::io::Cursor::new(&blob), None).unwrap();
        assert_eq!(idx.toc_digest, layer.toc.unwrap().digest);
    }

    #[test]
    fn append_tar_drops_an_existing_toc_and_landmarks() {
        let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::file("x", 1), &b"x"[..]).unwrap();
        let (_, first) = w.finish().unwrap();
        // Convert the eStargz blob again: it is a tar.gz too.
        let (again, _) =
            convert_tar(&first[..], Vec::new(), WriterOptions::default(), &[]).unwrap();
        let names: Vec<_> = again
            .toc
            .unwrap()
            .toc
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(names, [NO_PREFETCH_LANDMARK, "x"]);
    }
}
