//! Fuzz harnesses: one function per parser of outside input. Each runs
//! arbitrary bytes through the code the CLI runs on them and on through the
//! stages that consume what was parsed (the join with an image, the fetch
//! simulation, the prediction and its report), so a panic, an abort or an
//! integer overflow anywhere on that path shows up.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`, nightly) and the
//! stable smoke test (`tests/it/fuzz_smoke.rs`); not part of advisor's interface.
//! Every function must return for every input: an error is the right answer
//! to bad input. The few `assert!`s check that what one stage accepts the
//! next accepts too: an imported trace reads back, and a table built from a
//! valid TOC passes the checks of a saved table.
use crate::estargz::footer::{FOOTER_SIZE, Footer, FooterKind, parse_footer};
use crate::estargz::reader::{detect_format, parse_index, read_index, toc_member_in_tail};
use crate::estargz::table::{FILE_TABLE_VERSION, ImageFiles, MAX_IMAGE_UNCOMPRESSED};
use crate::estargz::toc::{EntryType, TOC_TAR_NAME};
use crate::filetable::parse_file_table;
use crate::predict::workload::Workload;
use crate::predict::{PredictOptions, predict};
use crate::profile::{Param, Profile};
use crate::trace::analyze::{AnalyzeOptions, analyze};
use crate::trace::format::{Clock, Event, Header, Op, TraceReader, TraceWriter};
use crate::trace::strace::StraceOptions;
use crate::trace::{Error as TraceError, filelist, strace};
use std::sync::OnceLock;

/// Layer digest and media type the harnesses give a layer under test.
const LAYER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
const MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where the `toc` harness puts the TOC member: past any offset a small
/// input names, below any that the format forbids (2^63).
const TOC_OFFSET: u64 = 1 << 32;

/// Sweep points of the harnesses' predictions: enough to run the sweep,
/// few enough to keep an execution short.
const SWEEP_POINTS: usize = 3;

/// Files a file-table harness reads in its trace: bounds an execution.
const TRACED_FILES: usize = 64;

/// A small two-layer image (eStargz with chunked files, then gzip) that the
/// trace and profile harnesses join their input with.
const SMALL_FILES: &str = r#"{"version":1,"reference":"fuzz/small:1","manifest_digest":"",
"layers":[
 {"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
  "media_type":"application/vnd.oci.image.layer.v1.tar+gzip","blob_size":300000,
  "uncompressed_size":551200,"format":"estargz","toc_offset":290000,
  "files":[
   {"path":"","kind":"dir"},{"path":"bin","kind":"dir"},
   {"path":"bin/sh","kind":"reg","size":150000,"chunks":[
     {"offset":0,"size":100000,"compressed_offset":100,"compressed_end":120000},
     {"offset":100000,"size":50000,"compressed_offset":120000,"compressed_end":160000}]},
   {"path":"bin/ls","kind":"symlink","link":"sh"},
   {"path":"etc","kind":"dir"},
   {"path":"etc/passwd","kind":"reg","size":1200,"chunks":[
     {"offset":0,"size":1200,"compressed_offset":160000,"compressed_end":161000}]},
   {"path":"lib","kind":"dir"},
   {"path":"lib/libc.so","kind":"reg","size":400000,"chunks":[
     {"offset":0,"size":262144,"compressed_offset":161000,"compressed_end":250000},
     {"offset":262144,"size":137856,"compressed_offset":250000,"compressed_end":290000}]}]},
 {"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
  "media_type":"application/vnd.oci.image.layer.v1.tar+gzip","blob_size":5000,
  "uncompressed_size":3000,"format":"gzip",
  "files":[{"path":"app","kind":"dir"},{"path":"app/main.py","kind":"reg","size":3000},
   {"path":"etc/.wh.motd","kind":"reg"}]}]}"#;

/// A workload on [`SMALL_FILES`]: startup reads, `ready`, then one more read.
const SMALL_TRACE: &str = r#"{"format":"advisor-trace","version":1,"recorder":"fuzz","clock":"monotonic"}
{"t":1000,"pid":1,"op":"open","path":"/bin/sh","dur":500}
{"t":2000,"pid":1,"op":"read","path":"/bin/sh","offset":0,"len":4096,"dur":800}
{"t":5000,"pid":1,"op":"open","path":"/lib/libc.so","dur":300}
{"t":6000,"pid":1,"op":"mmap_read","path":"/lib/libc.so","offset":0,"len":300000,"dur":9000}
{"t":20000,"pid":1,"op":"read","path":"/etc/passwd","offset":0,"dur":100}
{"t":30000,"pid":1,"op":"ready"}
{"t":40000,"pid":1,"op":"read","path":"/app/main.py","offset":0,"len":3000,"dur":100}
{"t":50000,"pid":1,"op":"exit","result":0}
"#;

fn small_image() -> &'static ImageFiles {
    static IMAGE: OnceLock<ImageFiles> = OnceLock::new();
    IMAGE.get_or_init(|| {
        parse_file_table(SMALL_FILES.as_bytes(), "fuzzing::SMALL_FILES")
            .expect("the harness's own file table is valid")
    })
}

fn default_profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| Profile::default_profile().expect("the bundled profile is valid"))
}

/// `advise` on an image, a trace and a profile: the workload, the prediction
/// and its report (errors from the trace are fine).
fn advise(image: &ImageFiles, trace: &[u8], profile: &Profile) {
    let Ok(mut reader) = TraceReader::new(trace, "fuzz.jsonl") else {
        return;
    };
    let Ok(w) = Workload::from_trace(image, &mut reader) else {
        return;
    };
    let opts = PredictOptions {
        fetch: profile.fetch_config(),
        sweep_points: SWEEP_POINTS,
        ..PredictOptions::default()
    };
    let p = predict(image, &w, profile, &opts);
    let _ = crate::report::advise::render(&p, "fuzz.files.json", "fuzz.jsonl");
    let _ = serde_json::to_vec(&p);
}

/// `trace analyze` on an image and a trace.
fn analyze_trace(image: &ImageFiles, trace: &[u8]) {
    if let Ok(mut reader) = TraceReader::new(trace, "fuzz.jsonl")
        && let Ok(report) = analyze(image, &mut reader, &AnalyzeOptions::default())
    {
        let _ = crate::report::trace::render(&report);
    }
}

/// The eStargz footer. Input: the blob size as 8 little-endian bytes (the
/// registry's word, independent of the bytes fetched), then the blob's tail.
/// The tail is also read as a whole blob from a file (footer, then TOC).
pub fn footer(data: &[u8]) {
    let Some((size, tail)) = data.split_first_chunk::<8>() else {
        return;
    };
    let blob_size = u64::from_le_bytes(*size);
    let _ = detect_format(tail, tail, blob_size);
    if let Ok(f) = parse_footer("fuzz", tail, blob_size) {
        let range = f.toc_range(blob_size);
        assert!(
            range.start < range.end,
            "an accepted footer's TOC range is empty"
        );
        let _ = toc_member_in_tail(&f, tail, blob_size);
    }
    if let Ok(index) = read_index("fuzz", std::io::Cursor::new(tail), None) {
        let _ = index.layer_files(LAYER, MEDIA_TYPE, tail.len() as u64);
    }
}

/// The eStargz TOC: parse, verify, validate, build the layer's file table.
/// Input: a TOC gzip member (starts with the gzip magic), or else the TOC JSON,
/// which the harness packs into a member as a writer would (tar, gzip). A table
/// built from an accepted TOC must pass the checks `--files` makes.
pub fn toc(data: &[u8]) {
    let packed;
    let member = if data.starts_with(&[0x1f, 0x8b]) {
        data
    } else {
        packed = toc_member(data);
        &packed[..]
    };
    let footer = Footer {
        toc_offset: TOC_OFFSET,
        kind: FooterKind::Estargz,
    };
    let Ok(index) = parse_index("fuzz", footer, member, None) else {
        return;
    };
    let blob_size = TOC_OFFSET + member.len() as u64 + FOOTER_SIZE;
    let image = ImageFiles {
        version: FILE_TABLE_VERSION,
        reference: "fuzz/toc:1".into(),
        manifest_digest: String::new(),
        layers: vec![index.layer_files(LAYER, MEDIA_TYPE, blob_size)],
    };
    // A TOC may name sizes beyond what advisor models (validate_toc allows
    // 2^63 - 1 bytes, the Go reader's limit); the table checks refuse those
    // with their own message. Within the bounds, the rules must agree.
    let regular = index
        .toc
        .entries
        .iter()
        .filter(|e| e.kind == EntryType::Reg)
        .try_fold(0u64, |sum, e| sum.checked_add(e.size));
    if regular.is_none_or(|total| total > MAX_IMAGE_UNCOMPRESSED) {
        return;
    }
    let json = serde_json::to_vec(&image).expect("a file table serializes");
    if let Err(e) = parse_file_table(&json[..], "toc-out.json") {
        panic!("the file table of a valid TOC fails the saved-table checks: {e:#}");
    }
}

/// A TOC member holding `json` as `stargz.index.json`, as a writer packs it.
fn toc_member(json: &[u8]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_ustar();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, TOC_TAR_NAME, json)
        .and_then(|()| tar.into_inner())
        .and_then(|gz| gz.finish())
        .expect("packing into memory cannot fail")
}

/// The trace reader (`--trace`): every event, then `trace analyze` and
/// `advise` of the trace on a small image with the bundled profile.
pub fn trace(data: &[u8]) {
    let Ok(mut reader) = TraceReader::new(data, "fuzz.jsonl") else {
        return;
    };
    while let Ok(Some(_)) = reader.next_event() {}
    analyze_trace(small_image(), data);
    advise(small_image(), data, default_profile());
}

/// `trace import --from strace`: the import, the trace it writes read back.
pub fn strace(data: &[u8]) {
    // The root the seeds' `-y` decorations name (tests/fixtures/trace).
    let opts = StraceOptions {
        root: Some("/tmp/tracefix".into()),
        ready_pattern: Some("ready".into()),
        ..StraceOptions::default()
    };
    import_and_read_back(Clock::Wall, |sink| {
        strace::import(data, "fuzz.strace", &opts, sink).map(drop)
    });
}

/// `trace import --from file-list`: the import, the trace it writes read back.
pub fn filelist(data: &[u8]) {
    let opts = filelist::FileListOptions::default();
    import_and_read_back(Clock::None, |sink| {
        filelist::import(data, "fuzz.files.txt", &opts, sink).map(drop)
    });
}

/// Run an import into an in-memory trace; when it succeeds, every event it
/// wrote must read back (an import must not accept what `--trace` refuses).
fn import_and_read_back(
    clock: Clock,
    import: impl FnOnce(&mut dyn FnMut(&Event<'_>) -> Result<(), TraceError>) -> Result<(), TraceError>,
) {
    let header = Header::new("fuzz-import", clock);
    let mut w = TraceWriter::new(Vec::new(), "fuzz.jsonl", &header).expect("writing to memory");
    if import(&mut |e| w.write(e)).is_err() {
        return;
    }
    let written = w.events();
    let out = w.finish().expect("writing to memory");
    let mut reader = TraceReader::new(&out[..], "imported.jsonl").expect("the header reads back");
    let mut read = 0u64;
    loop {
        match reader.next_event() {
            Ok(Some(_)) => read += 1,
            Ok(None) => break,
            Err(e) => panic!("an imported trace does not read back: {e}"),
        }
    }
    assert_eq!(read, written, "events written and read back");
}

/// A saved file table (`--files`): the checks, the image totals, then
/// `trace analyze` and `advise` of a trace that reads its first files whole.
pub fn file_table(data: &[u8]) {
    let Ok(image) = parse_file_table(data, "fuzz.files.json") else {
        return;
    };
    let _ = (image.compressed_size(), image.uncompressed_size());
    let trace = read_files_trace(&image);
    analyze_trace(&image, &trace);
    advise(&image, &trace, default_profile());
}

/// A trace that opens and reads whole the first [`TRACED_FILES`] files of
/// `image` (bottom layer first), ready half-way.
fn read_files_trace(image: &ImageFiles) -> Vec<u8> {
    let paths: Vec<String> = image
        .layers
        .iter()
        .flat_map(|l| &l.files)
        .take(TRACED_FILES)
        .map(|f| format!("/{}", f.path))
        .collect();
    let header = Header::new("fuzz", Clock::Monotonic);
    let mut w = TraceWriter::new(Vec::new(), "fuzz.jsonl", &header).expect("writing to memory");
    let mut t = 0u64;
    for (i, p) in paths.iter().enumerate() {
        if i == paths.len() / 2 {
            w.write(&Event::new(t, 1, Op::Ready))
                .expect("writing to memory");
        }
        for e in [
            Event::on_path(t, 1, Op::Open, p.as_str()),
            Event::read(t + 1000, 1, p.as_str(), 0, None),
        ] {
            w.write(&e).expect("writing to memory");
        }
        t += 10_000;
    }
    w.write(&Event::new(t, 1, Op::Exit))
        .expect("writing to memory");
    w.finish().expect("writing to memory")
}

/// A profile (`--profile`): parse and validate, then every value, the
/// node's fetch rules, and `advise` of a small image and trace with it.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Profile::from_json(text, "fuzz.profile.json") else {
        return;
    };
    for a in Param::ALL {
        let _ = p.value(a);
        for b in Param::ALL {
            let _ = p.covariance(a, b);
        }
    }
    advise(small_image(), SMALL_TRACE.as_bytes(), &p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_small_image_and_trace_are_valid_and_resolve() {
        let image = small_image();
        let mut r = TraceReader::new(SMALL_TRACE.as_bytes(), "t").unwrap();
        let w = Workload::from_trace(image, &mut r).unwrap();
        assert_eq!(w.events, 8);
        assert_eq!(w.missing_count, 0, "{:?}", w.missing_paths);
    }

    #[test]
    fn a_packed_toc_reads_back() {
        let json = br#"{"version":1,"entries":[{"name":"a","type":"reg","size":3,"offset":10}]}"#;
        let member = toc_member(json);
        let footer = Footer {
            toc_offset: TOC_OFFSET,
            kind: FooterKind::Estargz,
        };
        let index = parse_index("t", footer, &member, None).unwrap();
        assert_eq!(index.toc.entries.len(), 1);
    }
}
