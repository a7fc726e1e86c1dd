//! End-to-end on the lab: `advisor image build` and `advisor image inspect`
//! against the real registry, containerd and stargz snapshotter.
//! - build + push + inspect: TOCs verified, bytes fetched within the budget,
//!   the file table equal to the spec's files; `--scan` of the gzip form;
//! - same spec and seed push the same digests;
//! - (a) the eStargz form, pulled with advisor's containerd adapter, is
//!   mounted lazily by the stargz snapshotter (remote snapshot label on every
//!   layer, no layer blob in the content store) and a container reading every
//!   file gets the bytes the gzip form (pulled eagerly) gives, which are the
//!   bytes the generator makes; the image's own entrypoint and cmd run;
//! - (b) an image converted by `ctr-remote image optimize --oci` is read by
//!   `image inspect` with the file list and sizes of its tar;
//! - (c) corrupt footers, truncated blobs, wrong TOC digests, `..` and
//!   absolute TOC names fail with exit 1 and the layer named;
//! - `trace synth/analyze --image` and `advise --image` read the registry, and
//!   advise's prefetch list fed to `build --prioritize` becomes the landmark.
use crate::common::{self, ctr};

use advisor::bench::real::state_of;
use advisor::bench::source::RegistrySource;
use advisor::containerd::pull::{
    BlobSource, ImageToPull, LayerOutcome, Method, Pull, PullOptions, PullReport,
};
use advisor::containerd::run::{self, Container, ContainerSpec};
use advisor::containerd::{Connection, OVERLAYFS, STARGZ, clean};
use advisor::estargz::footer::{footer_bytes, parse_footer};
use advisor::estargz::table::{FileKind, ImageFiles};
use advisor::estargz::toc::{
    NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION, TOC_TAR_NAME, Toc,
    UNCOMPRESSED_SIZE_ANNOTATION,
};
use advisor::estargz::writer::{EntryHeader, EstargzWriter, WriterOptions};
use advisor::image::base::{BUSYBOX_PATH, Busybox};
use advisor::image::plan::{self, Source};
use advisor::image::spec;
use advisor::registry::{RegistryClient, RegistryOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SMALL: &str = "models/examples/small.json";

/// One entry of a listing: path, kind (`FileKind`'s name) and size.
type Row = (String, String, u64);

fn row(path: String, kind: FileKind, size: u64) -> Row {
    (path, format!("{kind:?}"), size)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A copy of the small example spec with its seed (and optionally mtime)
/// replaced, so every run makes new layers (a truly cold lazy pull).
fn small_spec(dir: &Path, seed: u64, mtime: Option<u64>) -> PathBuf {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(common::repo().join(SMALL)).unwrap()).unwrap();
    v["seed"] = json!(seed);
    if let Some(m) = mtime {
        v["mtime"] = json!(m);
    }
    let p = dir.join(format!("spec-{seed}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    p
}

/// Run advisor expecting exit 1; returns stderr.
fn run_user_error(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, got {:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn build(spec: &Path, reference: &str, extra: &[&str]) -> Value {
    common::run_json(
        common::advisor()
            .args(["image", "build", "--format", "json", "-q", "--spec"])
            .arg(spec)
            .args(["--push", reference])
            .args(extra),
    )
}

fn inspect(reference: &str, extra: &[&str]) -> Value {
    common::run_json(
        common::advisor()
            .args(["image", "inspect", "--format", "json", reference])
            .args(extra),
    )
}

/// The spec's files per layer: (path, kind, size), sorted.
fn planned(spec_path: &Path) -> Vec<BTreeSet<Row>> {
    let s = spec::load(spec_path).unwrap();
    let bb = Busybox::locate(Path::new(BUSYBOX_PATH)).unwrap();
    let p = plan::plan(&s, spec_path, Some(&bb), &[]).unwrap();
    p.layers
        .iter()
        .map(|l| {
            l.listing()
                .into_iter()
                .map(|(p, k, s)| row(p, k, s))
                .collect()
        })
        .collect()
}

/// A file table's layers as (path, kind, size) sets, landmarks left out.
fn table_sets(t: &ImageFiles) -> Vec<BTreeSet<Row>> {
    t.layers
        .iter()
        .map(|l| {
            l.files
                .iter()
                .filter(|f| f.path != PREFETCH_LANDMARK && f.path != NO_PREFETCH_LANDMARK)
                .map(|f| row(f.path.clone(), f.kind, f.size))
                .collect()
        })
        .collect()
}

fn read_table(p: &Path) -> ImageFiles {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn build_push_inspect_round_trip_within_the_byte_budget() {
    let Some(lab) = common::lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), 11, None);
    let reference = format!("{}/{}:v1", lab.registry, unique("image-lab/roundtrip"));
    let report = build(&spec, &reference, &[]);
    let forms = report["forms"].as_array().unwrap();
    assert_eq!(forms[0]["form"], "gzip");
    assert_eq!(forms[0]["reference"], reference.as_str());
    assert_eq!(forms[1]["form"], "estargz");
    assert_eq!(forms[1]["reference"], format!("{reference}-esgz"));
    let want = planned(&spec);

    // eStargz form: every layer's TOC read from the tail and verified.
    let toc_out = dir.path().join("esgz.json");
    let insp = inspect(
        &format!("{reference}-esgz"),
        &["--toc-out", toc_out.to_str().unwrap()],
    );
    assert_eq!(insp["manifest_digest"], forms[1]["manifest_digest"]);
    let layers = insp["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let budget_per_layer = 64 * 1024;
    for (i, l) in layers.iter().enumerate() {
        let built = &forms[1]["layers"][i];
        assert_eq!(l["format"], "estargz", "{l}");
        assert_eq!(l["digest"], built["digest"]);
        assert_eq!(l["compressed_size"], built["size"]);
        assert_eq!(l["uncompressed_size"], built["uncompressed_size"]);
        assert_eq!(l["toc"]["digest"], built["toc_digest"]);
        assert_eq!(l["toc"]["verified"], true);
        assert_eq!(l["toc"]["landmark"], "no-prefetch");
        assert_eq!(l["toc"]["files"], built["files"]);
        let toc_size = l["toc"]["compressed_size"].as_u64().unwrap();
        let ranged = l["ranged_bytes"].as_u64().unwrap();
        assert!(
            ranged <= toc_size + budget_per_layer,
            "layer {i}: {ranged} bytes fetched for a {toc_size}-byte TOC"
        );
        assert!(l["ranged_requests"].as_u64().unwrap() <= 2);
    }
    let f = &insp["fetched"];
    assert_eq!(f["within_budget"], true, "{f}");
    assert_eq!(
        f["total_bytes"].as_u64().unwrap(),
        f["metadata_bytes"].as_u64().unwrap() + f["ranged_bytes"].as_u64().unwrap(),
        "every byte is accounted for: {f}"
    );
    assert_eq!(f["scan_bytes"], 0);
    let table = read_table(&toc_out);
    assert_eq!(table_sets(&table), want, "file table = the spec's files");
    for l in &table.layers {
        for file in &l.files {
            let covered: u64 = file.chunks.iter().map(|c| c.size).sum();
            assert_eq!(
                covered,
                if file.kind == FileKind::Reg {
                    file.size
                } else {
                    0
                }
            );
        }
    }

    // gzip form: reported as such; --scan lists the same files and checks diff_ids.
    let insp = inspect(&reference, &[]);
    for l in insp["layers"].as_array().unwrap() {
        assert_eq!(l["format"], "gzip");
        assert!(l["toc"].is_null());
        assert!(l["note"].as_str().unwrap().contains("--scan"), "{l}");
        assert!(l["ranged_bytes"].as_u64().unwrap() <= budget_per_layer);
    }
    let scan_out = dir.path().join("gzip.json");
    let insp = inspect(
        &reference,
        &["--scan", "--toc-out", scan_out.to_str().unwrap()],
    );
    for (i, l) in insp["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(l["scan"]["diff_id"], forms[0]["layers"][i]["diff_id"]);
        assert_eq!(
            l["uncompressed_size"],
            forms[0]["layers"][i]["uncompressed_size"]
        );
    }
    assert_eq!(
        insp["fetched"]["scan_bytes"].as_u64().unwrap(),
        forms[0]["compressed_size"].as_u64().unwrap()
    );
    assert_eq!(table_sets(&read_table(&scan_out)), want);

    // Without --scan a gzip image has no table to save, and --image needs eStargz.
    let e = run_user_error(common::advisor().args([
        "image",
        "inspect",
        &reference,
        "--toc-out",
        dir.path().join("x.json").to_str().unwrap(),
    ]));
    assert!(e.contains("add --scan"), "{e}");
    assert!(!dir.path().join("x.json").exists());
    let e = run_user_error(common::advisor().args([
        "trace",
        "synth",
        "--image",
        &reference,
        "--working-set",
        "10%",
        "--pattern",
        "sequential",
        "-o",
        dir.path().join("t.jsonl").to_str().unwrap(),
    ]));
    assert!(e.contains("is gzip, not eStargz"), "{e}");
    assert!(e.contains("TAG-esgz"), "{e}");
}

#[test]
fn same_spec_and_seed_push_the_same_digests() {
    let Some(lab) = common::lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), 12, None);
    let a = build(
        &spec,
        &format!("{}/{}:a", lab.registry, unique("image-lab/det")),
        &[],
    );
    let b = build(
        &spec,
        &format!("{}/{}:b", lab.registry, unique("image-lab/det")),
        &[],
    );
    for (fa, fb) in a["forms"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["forms"].as_array().unwrap())
    {
        assert_eq!(fa["manifest_digest"], fb["manifest_digest"]);
        assert_eq!(fa["config_digest"], fb["config_digest"]);
        assert_eq!(fa["layers"], fb["layers"]);
    }
    // What the registry serves under each tag is what was built.
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    common::rt().block_on(async {
        for f in a["forms"].as_array().unwrap() {
            let r = client
                .resolve(f["reference"].as_str().unwrap())
                .await
                .unwrap();
            assert_eq!(r.manifest_digest, f["manifest_digest"].as_str().unwrap());
            assert_eq!(r.config.rootfs().diff_ids().len(), 3);
            for (i, l) in r.layers().iter().enumerate() {
                let want = &f["layers"][i];
                assert_eq!(l.digest().to_string(), want["digest"].as_str().unwrap());
                let ann = l.annotations().clone().unwrap_or_default();
                if f["form"] == "estargz" {
                    assert_eq!(
                        ann[TOC_DIGEST_ANNOTATION],
                        want["toc_digest"].as_str().unwrap()
                    );
                    assert_eq!(
                        ann[UNCOMPRESSED_SIZE_ANNOTATION],
                        want["uncompressed_size"].to_string()
                    );
                } else {
                    assert!(ann.is_empty());
                }
            }
        }
    });
}

// ---- (a) lazy mount through the real stargz snapshotter ----

const LAZY_NS: &str = "advisor-image-lazy";

/// Removes the test's images (synchronous GC: content and snapshots go too).
struct Cleanup<'a> {
    lab: &'a common::Lab,
    ns: &'static str,
    refs: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Command::new("ctr")
            .arg("-a")
            .arg(&self.lab.containerd)
            .args(["-n", self.ns, "images", "rm", "--sync"])
            .args(&self.refs)
            .output();
    }
}

/// sha256 of every regular file the spec makes, as the generator makes it
/// (upper layers win, as overlayfs shows them).
fn expected_hashes(spec_path: &Path) -> BTreeMap<String, String> {
    let s = spec::load(spec_path).unwrap();
    let bb = Busybox::locate(Path::new(BUSYBOX_PATH)).unwrap();
    let p = plan::plan(&s, spec_path, Some(&bb), &[]).unwrap();
    let mut out = BTreeMap::new();
    for l in &p.layers {
        for e in &l.entries {
            if e.header.kind != advisor::estargz::writer::EntryKind::Reg {
                continue;
            }
            let mut h = Sha256::new();
            match &e.source {
                Source::Empty => {}
                Source::Bytes(b) => h.update(b),
                Source::HostFile(p) => h.update(std::fs::read(p).unwrap()),
                Source::Generated { key, content } => {
                    let mut r = key.reader(*content, e.header.size);
                    let mut buf = vec![0u8; 1 << 16];
                    loop {
                        let n = r.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
            }
            out.insert(format!("/{}", e.header.path), hex::encode(h.finalize()));
        }
    }
    out
}

/// Pull `reference` with advisor's containerd adapter, run `script` in a
/// container on it, and return its stdout lines; checks how each layer arrived.
async fn pull_and_run(
    conn: &Connection,
    reference: &str,
    method: Method,
    script: &str,
) -> (ImageToPull, PullReport, Vec<String>) {
    let src = RegistrySource::new(reference, false).unwrap();
    let img = Arc::new(src.resolve().await.unwrap());
    let before = src.received();
    let source: Arc<dyn BlobSource> = Arc::new(src.clone());
    let mut p = Pull::begin(conn, img.clone(), source, PullOptions::new(method))
        .await
        .unwrap();
    p.fetch().await.unwrap();
    p.unpack().await.unwrap();
    let report = p.finish().await.unwrap();
    let layer_bytes = src.received() - before;
    match method {
        Method::Lazy => assert_eq!(layer_bytes, 0, "advisor downloaded no layer"),
        Method::Eager => assert!(layer_bytes >= img.layers_size()),
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&img.config.bytes).unwrap();
    let args: Vec<String> = ["sh", "-c", script].iter().map(|s| s.to_string()).collect();
    let id = unique(&format!("read-{:?}", method)).to_lowercase();
    let spec = run::runtime_spec(&conn.namespace, &id, &config, Some(&args)).unwrap();
    let c = Container::create(
        conn,
        &ContainerSpec {
            id: id.clone(),
            image: img.reference.clone(),
            snapshotter: method.snapshotter().into(),
            parent: report.top_chain_id.clone(),
            spec,
            labels: Default::default(),
        },
    )
    .await
    .unwrap();
    let mut t = c.create_task().await.unwrap();
    t.start().await.unwrap();
    let exit = t
        .wait(Instant::now() + Duration::from_secs(120))
        .await
        .unwrap()
        .expect("the container exits");
    let lines = t.output_tail();
    assert_eq!(exit.code, 0, "{lines:?}");
    t.delete().await.unwrap();
    c.delete().await.unwrap();
    let img = Arc::try_unwrap(img).unwrap_or_else(|a| (*a).clone());
    (img, report, lines)
}

#[test]
fn stargz_snapshotter_mounts_an_advisor_image_lazily_and_serves_identical_bytes() {
    let Some(lab) = common::lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A new seed and mtime per run: every layer, the base included, is new to
    // containerd and the snapshotter, so the pull is cold and lazy for sure.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let spec = small_spec(dir.path(), now.as_nanos() as u64, Some(now.as_secs()));
    let reference = format!("{}/{}:v1", lab.registry, unique("image-lab/lazy"));
    let esgz = format!("{reference}-esgz");
    build(&spec, &reference, &[]);

    // Every file of the image hashed in the container: one line per file
    // would overflow the adapter's output tail, so the container hashes the
    // sorted `sha256sum` listing and counts the files.
    let files = expected_hashes(&spec);
    let listing: String = files.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    let want = format!(
        "stdout: {}  - {}",
        hex::encode(Sha256::digest(listing.as_bytes())),
        files.len()
    );
    let script = "l=$(find /app /data /bin /etc -type f | sort | xargs sha256sum); \
                  echo \"$(echo \"$l\" | sha256sum) $(echo \"$l\" | wc -l)\"";
    common::rt().block_on(async {
        let conn = Connection::connect(&lab.containerd, LAZY_NS).await.unwrap();
        let (img, lazy, out) = pull_and_run(&conn, &esgz, Method::Lazy, script).await;
        for (l, chain) in lazy.layers.iter().zip(img.chain_ids()) {
            assert_eq!(
                l.outcome,
                LayerOutcome::Remote,
                "{l:?}: the snapshotter fell back to a full pull (see {}/logs/stargz.log)",
                lab.dir.display()
            );
            assert!(
                conn.content_info(&l.digest).await.unwrap().is_none(),
                "layer blob {} was downloaded",
                l.digest
            );
            let snap = conn.stat_snapshot(STARGZ, &chain).await.unwrap().unwrap();
            assert!(snap.is_remote(), "no remote-snapshot label: {snap:?}");
        }
        assert_eq!(out.last(), Some(&want), "lazy reads: {out:?}");
        clean::clean_image(
            &conn,
            &state_of(&img),
            &[OVERLAYFS, STARGZ],
            clean::Foreign::Refuse,
        )
        .await
        .unwrap();

        // The gzip form, pulled eagerly and unpacked by overlayfs.
        let (img, eager, out) = pull_and_run(&conn, &reference, Method::Eager, script).await;
        assert!(
            eager
                .layers
                .iter()
                .all(|l| l.outcome == LayerOutcome::Downloaded),
            "{eager:?}"
        );
        assert_eq!(out.last(), Some(&want), "eager reads: {out:?}");
        clean::clean_image(
            &conn,
            &state_of(&img),
            &[OVERLAYFS, STARGZ],
            clean::Foreign::Refuse,
        )
        .await
        .unwrap();
    });
    // The image's default command runs (entrypoint sh -c, cmd from the spec).
    let _cleanup = Cleanup {
        lab: &lab,
        ns: LAZY_NS,
        refs: vec![esgz.clone()],
    };
    ctr(
        &lab,
        LAZY_NS,
        "ctr-remote",
        &["image", "rpull", "--plain-http", &esgz],
    );
    let out = ctr(
        &lab,
        LAZY_NS,
        "ctr",
        &[
            "run",
            "--rm",
            "--snapshotter",
            "stargz",
            &esgz,
            &unique("cmd"),
        ],
    );
    assert_eq!(out.trim(), "ready");
}

// ---- (b) an image converted by ctr-remote ----

const OPT_NS: &str = "advisor-image-optimize";

/// A gzip layer's tar listing, read with the tar crate (not advisor's scanner).
fn tar_listing(blob: &[u8]) -> BTreeSet<Row> {
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(blob));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = advisor::estargz::table::normalize_path(
                std::str::from_utf8(&e.path_bytes()).unwrap(),
            )
            .unwrap();
            let kind = match e.header().entry_type() {
                tar::EntryType::Regular => FileKind::Reg,
                tar::EntryType::Directory => FileKind::Dir,
                tar::EntryType::Symlink => FileKind::Symlink,
                tar::EntryType::Link => FileKind::Hardlink,
                _ => FileKind::Other,
            };
            let size = if kind == FileKind::Reg { e.size() } else { 0 };
            row(path, kind, size)
        })
        .collect()
}

#[test]
fn ctr_remote_optimized_image_reads_with_the_same_files_as_its_tar() {
    let Some(lab) = common::lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), 13, None);
    let reference = format!("{}/{}:v1", lab.registry, unique("image-lab/opt"));
    let optimized = format!("{reference}-opt");
    build(&spec, &reference, &[]);
    let _cleanup = Cleanup {
        lab: &lab,
        ns: OPT_NS,
        refs: vec![reference.clone(), optimized.clone()],
    };
    ctr(
        &lab,
        OPT_NS,
        "ctr",
        &["image", "pull", "--plain-http", &reference],
    );
    // Optimize: run the workload, record what it reads, prioritize those files.
    ctr(
        &lab,
        OPT_NS,
        "ctr-remote",
        &[
            "image",
            "optimize",
            "--oci",
            "--period",
            "1",
            "--args",
            r#"["cat /app/config.yaml /data/blob1.bin >/dev/null; echo ready"]"#,
            &reference,
            &optimized,
        ],
    );
    ctr(
        &lab,
        OPT_NS,
        "ctr",
        &["image", "push", "--plain-http", &optimized],
    );

    let toc_out = dir.path().join("opt.json");
    let insp = inspect(&optimized, &["--toc-out", toc_out.to_str().unwrap()]);
    let table = read_table(&toc_out);
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    let gzip = common::rt().block_on(async {
        let img = client.resolve(&reference).await.unwrap();
        let mut blobs = Vec::new();
        for d in img.layers() {
            blobs.push(client.fetch_blob(&img, d, 64 << 20).await.unwrap());
        }
        blobs
    });
    assert_eq!(table.layers.len(), gzip.len());
    for (i, (l, blob)) in table_sets(&table).iter().zip(&gzip).enumerate() {
        assert_eq!(*l, tar_listing(blob), "layer {i}");
    }
    // ctr-remote recorded the reads: each file read is prioritized in its layer.
    let layers = insp["layers"].as_array().unwrap();
    for (i, want) in [(1, "app/config.yaml"), (2, "data/blob1.bin")] {
        let l = &layers[i];
        assert_eq!(l["format"], "estargz");
        assert_eq!(l["toc"]["verified"], true);
        assert_eq!(l["toc"]["landmark"], "prefetch", "{l}");
        assert_eq!(l["toc"]["prioritized_files"], 1, "{l}");
        let files = &table.layers[i].files;
        let landmark = files
            .iter()
            .position(|f| f.path == PREFETCH_LANDMARK)
            .unwrap();
        assert!(
            files[..landmark].iter().any(|f| f.path == want),
            "{want} before the landmark in layer {i}"
        );
    }
    assert_eq!(insp["fetched"]["within_budget"], true);
}

// ---- (c) corrupt layers ----

/// A small valid eStargz layer: blob, TOC offset, TOC.
fn sample_layer() -> (Vec<u8>, u64, Toc, String) {
    let mut w = EstargzWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    w.append(&EntryHeader::dir("etc"), std::io::empty())
        .unwrap();
    w.append(&EntryHeader::file("etc/passwd", 5), &b"root\n"[..])
        .unwrap();
    let (layer, blob) = w.finish().unwrap();
    let toc = layer.toc.unwrap();
    (blob, toc.offset, toc.toc, layer.diff_id)
}

/// The blob with its TOC replaced (payload kept, new TOC member and footer);
/// returns it and the new TOC's digest.
fn with_toc(blob: &[u8], offset: u64, toc: &Toc) -> (Vec<u8>, String) {
    let json = serde_json::to_vec_pretty(toc).unwrap();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&json)));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(json.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, TOC_TAR_NAME, &json[..]).unwrap();
    let t = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &t).unwrap();
    let mut out = blob[..offset as usize].to_vec();
    out.extend_from_slice(&gz.finish().unwrap());
    out.extend_from_slice(&footer_bytes(offset));
    (out, digest)
}

/// Push a one-layer image whose layer is `blob` with these annotations; the
/// manifest may claim another size.
async fn push_one(
    client: &RegistryClient,
    reference: &str,
    blob: Vec<u8>,
    claimed_size: Option<u64>,
    annotations: Value,
    diff_id: &str,
) -> String {
    let digest = advisor::estargz::sha256_digest(&blob);
    let size = blob.len() as u64;
    client
        .push_blob_bytes(reference, blob, &digest)
        .await
        .unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = advisor::estargz::sha256_digest(&config);
    let config_size = config.len();
    client
        .push_blob_bytes(reference, config, &config_digest)
        .await
        .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                    "size": claimed_size.unwrap_or(size), "annotations": annotations}],
    });
    client
        .push_manifest(
            reference,
            serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();
    digest
}

#[test]
fn corrupt_layers_fail_inspect_with_the_layer_named() {
    let Some(lab) = common::lab() else { return };
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    let repo = format!("{}/{}", lab.registry, unique("image-lab/corrupt"));
    let (blob, offset, toc, diff_id) = sample_layer();
    // The writer's TOC digest: what a correct annotation says.
    let real_toc_digest = {
        let footer = parse_footer("x", &blob[blob.len() - 51..], blob.len() as u64).unwrap();
        let r = footer.toc_range(blob.len() as u64);
        let member = &blob[r.start as usize..r.end as usize];
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(member));
        let mut e = t.entries().unwrap().next().unwrap().unwrap();
        let mut json = Vec::new();
        e.read_to_end(&mut json).unwrap();
        format!("sha256:{}", hex::encode(Sha256::digest(&json)))
    };

    /// Case name, blob, size the manifest claims, annotations, words the error must have.
    type Case<'a> = (&'a str, Vec<u8>, Option<u64>, Value, Vec<&'a str>);
    let mut cases: Vec<Case> = Vec::new();
    // A footer whose offset digits are garbage, on a layer annotated as eStargz.
    let mut corrupt_footer = blob.clone();
    let n = corrupt_footer.len();
    corrupt_footer[n - 35..n - 29].copy_from_slice(b"zzzzzz");
    cases.push((
        "corrupt-footer",
        corrupt_footer,
        None,
        json!({ TOC_DIGEST_ANNOTATION: real_toc_digest }),
        vec!["footer is unreadable", "no eStargz footer"],
    ));
    // The second half of the blob (TOC and footer) missing.
    let truncated = blob[..blob.len() / 2].to_vec();
    cases.push((
        "truncated",
        truncated,
        None,
        json!({ TOC_DIGEST_ANNOTATION: real_toc_digest }),
        vec!["footer is unreadable"],
    ));
    // The manifest claims more bytes than the registry has.
    cases.push((
        "short-blob",
        blob.clone(),
        Some(blob.len() as u64 + 5000),
        json!({ TOC_DIGEST_ANNOTATION: real_toc_digest }),
        vec![],
    ));
    // The annotation does not match the TOC.
    cases.push((
        "wrong-digest",
        blob.clone(),
        None,
        json!({ TOC_DIGEST_ANNOTATION: format!("sha256:{}", "0".repeat(64)) }),
        vec!["was expected", "toc.digest"],
    ));
    // TOC names that escape or are absolute (digest annotation matching, so
    // the entry check is what fails).
    for (case, name, want) in [
        ("dotdot", "../etc/passwd", "escapes the layer root"),
        ("absolute", "/etc/passwd", "is an absolute path"),
    ] {
        let mut t = toc.clone();
        let e = t
            .entries
            .iter_mut()
            .find(|e| e.name == "etc/passwd")
            .unwrap();
        e.name = name.into();
        let (b, d) = with_toc(&blob, offset, &t);
        cases.push((
            case,
            b,
            None,
            json!({ TOC_DIGEST_ANNOTATION: d }),
            vec![want],
        ));
    }

    let rt = common::rt();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    for (case, blob, claimed, annotations, wants) in cases {
        let reference = format!("{repo}:{case}");
        let digest = rt.block_on(push_one(
            &client,
            &reference,
            blob,
            claimed,
            annotations,
            &diff_id,
        ));
        let e = run_user_error(common::advisor().args(["image", "inspect", &reference]));
        assert!(
            e.contains(&format!("layer 0 ({digest})")),
            "{case}: the layer is not named: {e}"
        );
        for w in wants {
            assert!(e.contains(w), "{case}: `{w}` missing from: {e}");
        }
        // The same through --image (trace and advise read TOCs the same way).
        let e = run_user_error(common::advisor().args([
            "trace",
            "synth",
            "--image",
            &reference,
            "--working-set",
            "10%",
            "--pattern",
            "sequential",
            "-o",
            out.to_str().unwrap(),
        ]));
        assert!(e.contains(&digest), "{case}: {e}");
    }
}

// ---- trace and advise read the registry; advise's list drives build ----

fn profile_json() -> Value {
    use advisor::profile::Param;
    let value = |p: Param| -> f64 {
        match p {
            Param::ResolveS => 0.02,
            Param::EagerPullFixedS => 0.05,
            Param::EagerFetchSPerByte => 1.0 / 500e6,
            Param::UnpackPerLayerS => 0.02,
            Param::UnpackSPerByte => 1.0 / 300e6,
            Param::UnpackSPerInflatedByte => 1.0 / 100e6,
            Param::UnpackSPerFile => 20e-6,
            Param::StartOverlayS => 0.1,
            Param::LocalReadSPerByte => 1.0 / 2e9,
            Param::LocalOpenS => 5e-6,
            Param::ProcessStartS => 0.05,
            Param::LazyPullFixedS => 0.05,
            Param::MountPerLayerS => 0.03,
            Param::MountPerEntryS => 2e-6,
            Param::StartStargzS => 0.15,
            Param::RequestS => 0.002,
            Param::RangeSPerByte => 1.0 / 500e6,
            Param::ChunkS => 1e-4,
            Param::VerifySPerByte => 1.0 / 500e6,
            Param::InflateSPerByte => 1.0 / 200e6,
            Param::FuseSPerByte => 1.0 / 1e9,
            Param::FuseOpenS => 50e-6,
            Param::PrefetchSPerByte => 1.0 / 500e6,
            Param::PrefetchVerifySPerByte => 1.0 / 500e6,
            Param::PrefetchChunkS => 1e-4,
            Param::UnpackSPerCodedByte => 1.0 / 150e6,
            Param::InflateSPerCodedByte => 1.0 / 150e6,
        }
    };
    let params: serde_json::Map<String, Value> = Param::ALL
        .iter()
        .map(|p| {
            let v = value(*p);
            (
                p.name().to_string(),
                json!({"value": v, "low": v * 0.9, "high": v * 1.1, "confidence": 0.95,
                       "std_error": v * 0.05, "unit": p.unit(), "fit": "test"}),
            )
        })
        .collect();
    json!({
        "schema": advisor::profile::PROFILE_SCHEMA, "created": "2026-01-01T00:00:00Z",
        "advisor_version": "test", "node": {"hostname": "lab", "kernel": "", "cpus": 2,
        "memory_bytes": 0, "containerd_version": "1.6", "snapshotter": "stargz",
        "registry": "lab", "registry_rtt_s": null},
        "parameters": params, "fits": {}, "validation": null
    })
}

#[test]
fn trace_and_advise_read_the_image_from_the_registry_and_build_acts_on_the_list() {
    let Some(lab) = common::lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), 14, None);
    let reference = format!("{}/{}:v1", lab.registry, unique("image-lab/advise"));
    let esgz = format!("{reference}-esgz");
    build(&spec, &reference, &[]);
    let trace = dir.path().join("t.jsonl");
    let out = common::advisor()
        .args(["trace", "synth", "--image", &esgz, "--working-set", "20%"])
        .args(["--pattern", "many-small", "--ready-at", "0.5", "-o"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("read 3 layer TOC(s)"), "{note}");

    let analysis: Value = common::run_json(
        common::advisor()
            .args([
                "trace", "analyze", "--format", "json", "--image", &esgz, "--trace",
            ])
            .arg(&trace),
    );
    assert_eq!(analysis["image"]["layers"], 3, "{}", analysis["image"]);
    assert_eq!(analysis["image"]["lazy_layers"], 3);
    assert!(analysis["total"]["files_touched"].as_u64().unwrap() > 0);

    let profile = dir.path().join("profile.json");
    std::fs::write(&profile, serde_json::to_vec(&profile_json()).unwrap()).unwrap();
    let list = dir.path().join("prefetch.txt");
    let advice: Value = common::run_json(
        common::advisor()
            .args(["advise", "--format", "json", "--image", &esgz, "--trace"])
            .arg(&trace)
            .arg("--profile")
            .arg(&profile)
            .arg("--prefetch-list")
            .arg(&list),
    );
    assert_eq!(advice["image_name"], esgz.as_str());
    let p = &advice["prediction"];
    assert_eq!(p["image"]["layers"], 3, "{}", p["image"]);
    assert!(!p["recommendations"].as_array().unwrap().is_empty());
    let prioritized: Vec<String> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(!prioritized.is_empty());

    // Rebuild with advise's list: those files come first, before the landmark.
    let hot = format!("{}/{}:hot", lab.registry, unique("image-lab/advise"));
    build(&spec, &hot, &["--prioritize", list.to_str().unwrap()]);
    let toc_out = dir.path().join("hot.json");
    let insp = inspect(
        &format!("{hot}-esgz"),
        &["--toc-out", toc_out.to_str().unwrap()],
    );
    let table = read_table(&toc_out);
    let mut total = 0;
    for (i, l) in table.layers.iter().enumerate() {
        let Some(landmark) = l.files.iter().position(|f| f.path == PREFETCH_LANDMARK) else {
            continue;
        };
        let before: BTreeSet<&str> = l.files[..landmark]
            .iter()
            .filter(|f| f.kind == FileKind::Reg)
            .map(|f| f.path.as_str())
            .collect();
        total += before.len();
        assert_eq!(
            insp["layers"][i]["toc"]["prioritized_files"]
                .as_u64()
                .unwrap() as usize,
            before.len()
        );
        for p in &before {
            assert!(
                prioritized.iter().any(|q| q.trim_start_matches('/') == *p),
                "{p} prioritized but not listed"
            );
        }
    }
    let regular: usize = prioritized
        .iter()
        .filter(|p| {
            table.layers.iter().any(|l| {
                l.files
                    .iter()
                    .any(|f| f.kind == FileKind::Reg && f.path == p.trim_start_matches('/'))
            })
        })
        .count();
    assert!(total > 0, "nothing was prioritized");
    assert_eq!(total, regular, "every listed file is prioritized once");
}

#[test]
fn build_and_push_spec_pushes_both_forms_for_calibrate() {
    let Some(lab) = common::lab() else { return };
    let text = "seed = 9\nbase = \"none\"\n[[layers]]\n[[layers.groups]]\ndir = \"/d\"\nname = \"f{i}.txt\"\ncount = 3\nsize = \"20KiB\"\ncontent = \"text\"\n";
    let reference = format!("{}/{}:t", lab.registry, unique("image-lab/api"));
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    common::rt().block_on(async {
        let p = advisor::image::build_and_push_spec(text, "cal.toml", &reference, &[], &client)
            .await
            .unwrap();
        assert_eq!(p.targets.gzip, reference);
        assert_eq!(p.targets.estargz, format!("{reference}-esgz"));
        for (r, d) in [&p.targets.gzip, &p.targets.estargz]
            .iter()
            .zip(&p.manifest_digests)
        {
            assert_eq!(&client.resolve(r).await.unwrap().manifest_digest, d);
        }
        // A prioritized form: the file moves before the prefetch landmark.
        let prio = format!("{reference}-prio");
        let q = advisor::image::build_and_push_spec(
            text,
            "cal.toml",
            &prio,
            &["/d/f2.txt".to_string()],
            &client,
        )
        .await
        .unwrap();
        assert_ne!(q.manifest_digests[1], p.manifest_digests[1]);
        let insp =
            advisor::filetable::inspect::inspect(&client, &q.targets.estargz, Default::default())
                .await
                .unwrap();
        let files = insp.image_files().unwrap();
        let layer = &files.layers[0];
        let first = layer
            .files
            .iter()
            .find(|f| f.kind == advisor::estargz::table::FileKind::Reg)
            .unwrap();
        assert_eq!(first.path, "d/f2.txt", "the prioritized file comes first");
        let e = advisor::image::build_and_push_spec(
            text,
            "cal.toml",
            &prio,
            &["/d/nope".to_string()],
            &client,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("prioritized path 1 of cal.toml"),
            "{e}"
        );
        let e =
            advisor::image::build_and_push_spec("layers = 3", "bad.toml", &reference, &[], &client)
                .await
                .unwrap_err();
        assert!(
            e.to_string().starts_with("image spec bad.toml: `layers`"),
            "{e}"
        );
        assert_eq!(advisor::exit::exit_code(&e), 1);
    });
}
