//! End-to-end on the lab: eStargz layers between advisor's format code and the
//! real registry, containerd and stargz snapshotter.
//! - A layer advisor wrote, pushed as an image, is lazily pulled by the stargz
//!   snapshotter (FUSE mount, TOC digest verified against the annotation) and
//!   every file reads back byte-identical through it (chunk digests verified
//!   by the snapshotter on each read).
//! - A layer Debian's ctr-remote converted is read by advisor from the
//!   registry with ranged GETs of the tail only, as `image inspect` will.
use crate::common;
use crate::estargz_fixtures;

use advisor::estargz::footer::parse_footer;
use advisor::estargz::reader::{detect_format, parse_index, scan_layer, toc_member_in_tail};
use advisor::estargz::sha256_digest;
use advisor::estargz::table::{FileKind, LayerFormat};
use advisor::estargz::toc::{
    PREFETCH_LANDMARK, TOC_DIGEST_ANNOTATION, TOC_TAR_NAME, UNCOMPRESSED_SIZE_ANNOTATION,
};
use advisor::estargz::writer::{EntryHeader, EstargzWriter, WriterOptions};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const NAMESPACE: &str = "advisor-estargz-e2e";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Monolithic blob upload (OCI distribution spec: POST then PUT ?digest=).
async fn push_blob(c: &reqwest::Client, registry: &str, repo: &str, bytes: Vec<u8>) -> String {
    let digest = sha256_digest(&bytes);
    let r = c
        .post(format!("http://{registry}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "start upload");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{registry}{loc}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{url}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "finish upload: {}",
        r.text().await.unwrap_or_default()
    );
    digest
}

async fn get(c: &reqwest::Client, url: &str, range: Option<(u64, u64)>, accept: &str) -> Vec<u8> {
    let mut req = c.get(url).header("accept", accept);
    if let Some((a, b)) = range {
        req = req.header("range", format!("bytes={a}-{b}"));
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    if range.is_some() {
        assert_eq!(r.status().as_u16(), 206, "the registry honours ranges");
    }
    r.bytes().await.unwrap().to_vec()
}

/// The stargz FUSE mount serving a layer: the snapshotter exposes
/// `.stargz-snapshotter/<digest>.json` at the root of each layer mount.
fn stargz_mount_of(lab: &common::Lab, digest: &str) -> Option<PathBuf> {
    common::mounts_under(&lab.dir)
        .into_iter()
        .map(PathBuf::from)
        .find(|m| {
            m.join(".stargz-snapshotter")
                .join(format!("{digest}.json"))
                .exists()
        })
}

struct Cleanup<'a> {
    lab: &'a common::Lab,
    reference: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Command::new("ctr")
            .arg("-a")
            .arg(&self.lab.containerd)
            .args(["-n", NAMESPACE, "images", "rm", "--sync", &self.reference])
            .output();
    }
}

#[test]
fn stargz_snapshotter_lazily_mounts_and_serves_an_advisor_layer() {
    let Some(lab) = common::lab() else { return };
    // Files: several 256 KiB chunks, small and empty files, a symlink, a
    // prioritized file (so a prefetch landmark).
    let chunk = 256 << 10;
    let mut files: Vec<(EntryHeader, Vec<u8>)> = vec![
        (EntryHeader::dir("app"), vec![]),
        (EntryHeader::file("app/config", 0), b"mode=lazy\n".to_vec()),
        (EntryHeader::dir("data"), vec![]),
        (
            EntryHeader::file("data/big", 0),
            estargz_fixtures::data(11, 1_300_000),
        ),
        (EntryHeader::file("data/empty", 0), vec![]),
        (EntryHeader::symlink("data/link", "big"), vec![]),
    ];
    for i in 0..20u64 {
        files.push((
            EntryHeader::file(format!("data/f{i:02}"), 0),
            estargz_fixtures::data(i, 700 * i as usize),
        ));
    }
    for (h, d) in files.iter_mut() {
        h.size = d.len() as u64;
        h.mtime = 1_650_000_000;
    }
    let opts = WriterOptions {
        chunk_size: chunk,
        level: 1,
        label: "e2e".into(),
    };
    let mut w = EstargzWriter::new(Vec::new(), opts).unwrap();
    w.append_prioritized(&files[0].0, &files[0].1[..]).unwrap();
    w.append_prioritized(&files[1].0, &files[1].1[..]).unwrap();
    for (h, d) in &files[2..] {
        w.append(h, &d[..]).unwrap();
    }
    let (layer, blob) = w.finish().unwrap();
    let annotations = layer.annotations();

    let repo = unique("estargz-e2e/advisor");
    let reference = format!("{}/{repo}:esgz", lab.registry);
    common::rt().block_on(async {
        let c = reqwest::Client::new();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        }))
        .unwrap();
        let config_size = config.len();
        let config_digest = push_blob(&c, &lab.registry, &repo, config).await;
        let layer_digest = push_blob(&c, &lab.registry, &repo, blob.clone()).await;
        assert_eq!(layer_digest, layer.digest);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer.digest, "size": layer.size, "annotations": annotations}],
        });
        let r = c
            .put(format!("http://{}/v2/{repo}/manifests/esgz", lab.registry))
            .header("content-type", MANIFEST_MEDIA_TYPE)
            .body(serde_json::to_vec(&manifest).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "push manifest: {}", r.text().await.unwrap_or_default());
    });

    let _cleanup = Cleanup {
        lab: &lab,
        reference: reference.clone(),
    };
    common::ctr(
        &lab,
        NAMESPACE,
        "ctr-remote",
        &["image", "rpull", "--plain-http", &reference],
    );
    let mount = stargz_mount_of(&lab, &layer.digest).unwrap_or_else(|| {
        panic!(
            "no stargz mount serves {}: the snapshotter fell back to a full pull (see {}/logs/stargz.log)",
            layer.digest,
            lab.dir.display()
        )
    });
    let status: Value = serde_json::from_slice(
        &std::fs::read(
            mount
                .join(".stargz-snapshotter")
                .join(format!("{}.json", layer.digest)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(status["size"], layer.size, "{status}");
    let fetched_before = status["fetchedSize"].as_u64().unwrap();
    // Lazy: at mount only the footer block, the TOC and the prefetch range
    // are fetched (background fetch waits 5 s after the last read).
    assert!(fetched_before < layer.size, "not lazy: {status}");

    // Every file reads back byte-identical through the FUSE mount (each read
    // decompresses a chunk and checks its chunkDigest, else EIO).
    for (h, d) in &files {
        let p = mount.join(&h.path);
        match h.kind {
            advisor::estargz::writer::EntryKind::Reg => {
                let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(got == *d, "{} differs through stargz", h.path);
            }
            advisor::estargz::writer::EntryKind::Dir => assert!(p.is_dir(), "{}", h.path),
            advisor::estargz::writer::EntryKind::Symlink => {
                assert_eq!(std::fs::read_link(&p).unwrap(), Path::new(&h.link_name))
            }
            _ => {}
        }
    }
    // The snapshotter hides the root landmarks and the TOC entry from the
    // mount (fs/layer/node.go, fs/reader/reader.go); the root lists our
    // directories only.
    assert!(!mount.join(PREFETCH_LANDMARK).exists());
    assert!(!mount.join(TOC_TAR_NAME).exists());
    let mut root: Vec<String> = std::fs::read_dir(&mount)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    root.sort();
    assert_eq!(root, ["app", "data"]);
    let status: Value = serde_json::from_slice(
        &std::fs::read(
            mount
                .join(".stargz-snapshotter")
                .join(format!("{}.json", layer.digest)),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(status["fetchedSize"].as_u64().unwrap() >= fetched_before);
    eprintln!(
        "stargz fetched {fetched_before} of {} bytes at mount, {} after reading every file",
        layer.size, status["fetchedSize"]
    );
    assert_eq!(
        annotations[UNCOMPRESSED_SIZE_ANNOTATION],
        layer.uncompressed_size.to_string()
    );
}

#[test]
fn ctr_remote_layers_read_from_the_registry_with_ranged_gets() {
    let Some(lab) = common::lab() else { return };
    let repo = unique("estargz-e2e/smoke");
    let script = common::repo().join("tests/fixtures/smoke-image.sh");
    let out = Command::new(script)
        .arg(&lab.containerd)
        .arg(&lab.registry)
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smoke-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let busybox_size = std::fs::metadata("/bin/busybox").unwrap().len();

    common::rt().block_on(async {
        let c = reqwest::Client::new();
        let base = format!("http://{}/v2/{repo}", lab.registry);
        let accept = format!("{MANIFEST_MEDIA_TYPE}, application/vnd.oci.image.index.v1+json");
        let manifest = |tag: &'static str| {
            let (c, base, accept) = (c.clone(), base.clone(), accept.clone());
            async move {
                let mut m: Value = serde_json::from_slice(
                    &get(&c, &format!("{base}/manifests/{tag}"), None, &accept).await,
                )
                .unwrap();
                if let Some(first) = m["manifests"].as_array().and_then(|a| a.first()) {
                    let d = first["digest"].as_str().unwrap().to_string();
                    m = serde_json::from_slice(
                        &get(&c, &format!("{base}/manifests/{d}"), None, &accept).await,
                    )
                    .unwrap();
                }
                m
            }
        };

        // eStargz (ctr-remote, i.e. the Go writer): footer and TOC from the tail only.
        let esgz = manifest("esgz").await;
        let l = &esgz["layers"][0];
        let digest = l["digest"].as_str().unwrap();
        let size = l["size"].as_u64().unwrap();
        let want_toc = l["annotations"][TOC_DIGEST_ANNOTATION].as_str().unwrap();
        let blob_url = format!("{base}/blobs/{digest}");
        let tail_len = size.min(4096);
        let tail = get(&c, &blob_url, Some((size - tail_len, size - 1)), "*/*").await;
        let head = get(&c, &blob_url, Some((0, 511)), "*/*").await;
        assert_eq!(detect_format(&head, &tail, size), LayerFormat::Estargz);
        let footer = parse_footer(digest, &tail, size).unwrap();
        let member = match toc_member_in_tail(&footer, &tail, size) {
            Some(m) => m.to_vec(),
            None => {
                let r = footer.toc_range(size);
                get(&c, &blob_url, Some((r.start, r.end - 1)), "*/*").await
            }
        };
        let idx = parse_index(digest, footer, &member, Some(want_toc)).unwrap();
        let table = idx.layer_files(digest, LAYER_MEDIA_TYPE, size);
        let file = |p: &str| {
            table
                .files
                .iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("{p} missing"))
        };
        assert_eq!(file("bin/busybox").size, busybox_size);
        assert_eq!(file("bin/sh").kind, FileKind::Symlink);
        assert_eq!(file("data/small.txt").size, 6);
        let big = file("data/big.bin");
        assert_eq!(big.size, 3_000_000);
        assert!(
            table.no_prefetch,
            "--no-optimize writes .no.prefetch.landmark"
        );
        // Each chunk of a file, fetched by its compressed extent, decompresses
        // to bytes with the TOC's chunkDigest.
        for f in [file("data/small.txt"), big] {
            for ch in &f.chunks {
                let bytes = get(
                    &c,
                    &blob_url,
                    Some((ch.compressed_offset, ch.compressed_end - 1)),
                    "*/*",
                )
                .await;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut out)
                    .unwrap();
                let e = idx
                    .toc
                    .entries
                    .iter()
                    .find(|e| e.offset == ch.compressed_offset)
                    .unwrap();
                assert_eq!(
                    sha256_digest(&out[..ch.size as usize]),
                    e.chunk_digest,
                    "{}",
                    f.path
                );
            }
        }
        let small = file("data/small.txt").chunks[0];
        let bytes = get(
            &c,
            &blob_url,
            Some((small.compressed_offset, small.compressed_end - 1)),
            "*/*",
        )
        .await;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(&out[..6], b"hello\n");

        // gzip: one streamed scan gives the digest, the diffID and the files.
        let gz = manifest("gzip").await;
        let l = &gz["layers"][0];
        let digest = l["digest"].as_str().unwrap();
        let config: Value = serde_json::from_slice(
            &get(
                &c,
                &format!("{base}/blobs/{}", gz["config"]["digest"].as_str().unwrap()),
                None,
                "*/*",
            )
            .await,
        )
        .unwrap();
        let blob = get(&c, &format!("{base}/blobs/{digest}"), None, "*/*").await;
        assert_eq!(
            detect_format(&blob[..512], &blob[blob.len() - 64..], blob.len() as u64),
            LayerFormat::Gzip
        );
        let scanned = scan_layer(digest, LAYER_MEDIA_TYPE, &blob[..]).unwrap();
        assert_eq!(scanned.blob_digest, digest);
        assert_eq!(
            scanned.diff_id,
            config["rootfs"]["diff_ids"][0].as_str().unwrap()
        );
        let paths: Vec<&str> = scanned
            .files
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        for p in ["bin/busybox", "bin/sh", "data/big.bin", "data/small.txt"] {
            assert!(paths.contains(&p), "{p} in {paths:?}");
        }
        // The eStargz table holds the same files (plus its landmark).
        for f in &scanned.files.files {
            if f.path.is_empty() {
                continue;
            }
            let t = file(&f.path);
            assert_eq!((t.kind, t.size), (f.kind, f.size), "{}", f.path);
        }
    });
}
