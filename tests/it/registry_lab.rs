//! End-to-end: the registry client against the lab's real registry (Debian's
//! docker-registry 2.8) and images pushed by advisor itself or by ctr/ctr-remote.
use crate::common;

use advisor::registry::{
    self, Error, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, Platform, RegistryClient,
    RegistryOptions, sha256_digest,
};
use futures_util::StreamExt;
use std::time::Duration;

fn options() -> RegistryOptions {
    RegistryOptions {
        credentials: None,
        docker_config_dir: None,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..Default::default()
    }
}

fn client() -> RegistryClient {
    RegistryClient::new(options()).unwrap()
}

/// A repository name no other test uses.
fn unique_repo(lab: &common::Lab, name: &str) -> String {
    format!(
        "{}/advisor-test/{name}-{}",
        lab.registry,
        advisor::containerd::nanos()
    )
}

/// Deterministic incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

struct Pushed {
    layer: Vec<u8>,
    layer_digest: String,
    manifest_digest: String,
    manifest_len: usize,
}

fn config_json(platform: &Platform, diff_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap()
}

/// Push a one-layer OCI image for `platform` under `reference` (a tag), the layer from a file.
async fn push_image(
    c: &RegistryClient,
    reference: &str,
    platform: &Platform,
    layer_len: usize,
    seed: u64,
) -> Pushed {
    let dir = tempfile::tempdir().unwrap();
    let layer = noise(layer_len, seed);
    let layer_digest = sha256_digest(&layer);
    let path = dir.path().join("layer");
    std::fs::write(&path, &layer).unwrap();
    c.push_blob_file(reference, &path, &layer_digest, layer.len() as u64)
        .await
        .unwrap();
    let config = config_json(platform, &layer_digest);
    let config_digest = sha256_digest(&config);
    c.push_blob_bytes(reference, config.clone(), &config_digest)
        .await
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len(),
                    "annotations": {"org.example.seed": seed.to_string()}}],
    }))
    .unwrap();
    let manifest_len = manifest.len();
    let manifest_digest = c
        .push_manifest(reference, manifest.clone(), MEDIA_TYPE_OCI_MANIFEST)
        .await
        .unwrap();
    assert_eq!(manifest_digest, sha256_digest(&manifest));
    Pushed {
        layer,
        layer_digest,
        manifest_digest,
        manifest_len,
    }
}

#[test]
fn pushed_image_resolves_by_tag_and_by_digest() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "resolve");
        let tag = format!("{repo}:v1");
        let before = c.stats();
        let p = push_image(&c, &tag, &Platform::host(), 300_000, 1).await;
        let pushed = c.stats().since(&before);
        assert!(
            pushed.bytes_sent >= 300_000,
            "layer bytes counted as sent: {pushed:?}"
        );
        assert_eq!(pushed.upload_requests, 4, "POST+PUT for layer and config");

        let img = c.resolve(&tag).await.unwrap();
        assert_eq!(img.manifest_digest, p.manifest_digest);
        assert_eq!(img.manifest_bytes.len(), p.manifest_len);
        assert_eq!(img.manifest_media_type, MEDIA_TYPE_OCI_MANIFEST);
        assert!(img.index_digest.is_none());
        assert_eq!(img.registry, lab.registry);
        assert_eq!(img.layers().len(), 1);
        assert_eq!(img.layers()[0].digest().to_string(), p.layer_digest);
        assert_eq!(img.layers()[0].size(), p.layer.len() as u64);
        assert_eq!(
            img.layers()[0]
                .annotations()
                .as_ref()
                .and_then(|a| a.get("org.example.seed"))
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(
            img.config.architecture().to_string(),
            Platform::host().architecture
        );
        assert_eq!(
            sha256_digest(&img.config_bytes),
            img.config_descriptor.digest().to_string()
        );

        let by_digest = c
            .resolve(&format!("{repo}@{}", p.manifest_digest))
            .await
            .unwrap();
        assert_eq!(by_digest.manifest_bytes, img.manifest_bytes);
        assert_eq!(by_digest.config_bytes, img.config_bytes);

        // Pushing the same layer again is a HEAD and nothing else.
        let before = c.stats();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer");
        std::fs::write(&path, &p.layer).unwrap();
        c.push_blob_file(&tag, &path, &p.layer_digest, p.layer.len() as u64)
            .await
            .unwrap();
        let again = c.stats().since(&before);
        assert_eq!(
            (
                again.blob_head_requests,
                again.upload_requests,
                again.bytes_sent
            ),
            (1, 0, 0),
            "{again:?}"
        );
    });
}

#[test]
fn index_resolves_to_the_requested_platform() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "index");
        let host = Platform::host();
        let other = Platform::new(
            "linux",
            if host.architecture == "s390x" {
                "ppc64le"
            } else {
                "s390x"
            },
            None,
        );
        let a = push_image(&c, &format!("{repo}:host"), &host, 50_000, 2).await;
        let b = push_image(&c, &format!("{repo}:other"), &other, 40_000, 3).await;
        let entry = |p: &Pushed, plat: Option<&Platform>| {
            let mut e = serde_json::json!({"mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "digest": p.manifest_digest, "size": p.manifest_len});
            if let Some(plat) = plat {
                e["platform"] =
                    serde_json::json!({"os": plat.os, "architecture": plat.architecture});
            }
            e
        };
        // The other platform first, and an entry without a platform (as attestations are).
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
            "manifests": [entry(&b, Some(&other)), entry(&b, None), entry(&a, Some(&host))],
        }))
        .unwrap();
        let tag = format!("{repo}:multi");
        let index_digest = c
            .push_manifest(&tag, index.clone(), MEDIA_TYPE_OCI_INDEX)
            .await
            .unwrap();

        let img = c.resolve(&tag).await.unwrap();
        assert_eq!(img.index_digest.as_deref(), Some(index_digest.as_str()));
        assert_eq!(img.index_bytes.as_deref(), Some(index.as_slice()));
        assert_eq!(img.index_media_type.as_deref(), Some(MEDIA_TYPE_OCI_INDEX));
        assert_eq!(img.manifest_digest, a.manifest_digest);
        assert_eq!(img.top_digest(), index_digest);
        assert_eq!(img.layers()[0].digest().to_string(), a.layer_digest);

        let for_other = RegistryClient::new(RegistryOptions {
            platform: other.clone(),
            ..options()
        })
        .unwrap();
        let img = for_other
            .resolve(&format!("{repo}@{index_digest}"))
            .await
            .unwrap();
        assert_eq!(img.manifest_digest, b.manifest_digest);
        assert_eq!(img.platform, other);

        let riscv = RegistryClient::new(RegistryOptions {
            platform: Platform::new("linux", "riscv64", None),
            ..options()
        })
        .unwrap();
        let e = riscv.resolve(&tag).await.unwrap_err();
        assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("linux/riscv64") && msg.contains(&other.to_string()),
            "{msg}"
        );
        // A plain manifest for another platform is refused as containerd does.
        let e = riscv.resolve(&format!("{repo}:host")).await.unwrap_err();
        assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{e}");
    });
}

#[test]
fn ranged_reads_return_exact_bytes_and_count_them() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "range");
        let tag = format!("{repo}:v1");
        let p = push_image(&c, &tag, &Platform::host(), 1_100_000, 4).await;
        let img = c.resolve(&tag).await.unwrap();
        let size = p.layer.len() as u64;
        assert_eq!(c.blob_size(&img, &p.layer_digest).await.unwrap(), size);

        let ranges = [0..1, 1000..70_000, size - 51..size, 0..size, 5..5];
        let before = c.stats();
        let mut want_bytes = 0;
        for r in ranges.clone() {
            let got = c
                .fetch_range(&img, &p.layer_digest, r.clone())
                .await
                .unwrap();
            assert_eq!(
                got,
                p.layer[r.start as usize..r.end as usize],
                "range {r:?}"
            );
            want_bytes += r.end - r.start;
        }
        let d = c.stats().since(&before);
        assert_eq!(d.bytes_received, want_bytes, "{d:?}");
        assert_eq!(
            d.blob_get_requests, 4,
            "an empty range sends nothing: {d:?}"
        );
        assert_eq!(d.retries, 0);

        let e = c
            .fetch_range(&img, &p.layer_digest, size..size + 10)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RangeNotSatisfiable { .. }), "{e}");
    });
}

#[test]
fn blob_stream_delivers_and_checks_the_whole_blob() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "stream");
        let tag = format!("{repo}:v1");
        let p = push_image(&c, &tag, &Platform::host(), 700_000, 5).await;
        let img = c.resolve(&tag).await.unwrap();
        let desc = img.layers()[0].clone();
        let before = c.stats();
        let mut s = c.blob_stream(&img, &desc).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, p.layer);
        assert_eq!(
            c.stats().since(&before).bytes_received,
            p.layer.len() as u64
        );

        // A descriptor whose size is wrong is caught before the body is read.
        let mut wrong = desc.clone();
        wrong.set_size(desc.size() + 1);
        let e = c.blob_stream(&img, &wrong).await.err().unwrap();
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
    });
}

#[test]
fn missing_images_and_blobs_are_not_found_with_exit_code_1() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "missing");
        let e = c.resolve(&format!("{repo}:nope")).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&lab.registry) && msg.contains("nope"), "{msg}");
        assert_eq!(advisor::exit::exit_code(&anyhow::Error::new(e)), 1);

        let tag = format!("{repo}:v1");
        push_image(&c, &tag, &Platform::host(), 1000, 6).await;
        let img = c.resolve(&tag).await.unwrap();
        let absent = sha256_digest(b"never pushed");
        let e = c.fetch_range(&img, &absent, 0..10).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        assert!(e.to_string().contains(&absent), "{e}");
        assert_eq!(c.blob_exists(&img, &absent).await.unwrap(), None);
    });
}

#[test]
fn unreachable_registry_says_what_to_do() {
    // Needs no lab: a loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    common::rt().block_on(async {
        let c = RegistryClient::new(RegistryOptions {
            max_retries: 1,
            ..options()
        })
        .unwrap();
        let e = c
            .resolve(&format!("127.0.0.1:{port}/some/image:tag"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unreachable { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("cannot reach http://127.0.0.1:{port}/v2/"))
                && msg.contains("--plain-http")
                && msg.to_lowercase().contains("connection refused"),
            "{msg}"
        );
        assert_eq!(advisor::exit::exit_code(&anyhow::Error::new(e)), 1);
    });
}

#[test]
fn wrong_digests_are_refused_on_push() {
    let Some(lab) = common::lab() else { return };
    common::rt().block_on(async {
        let c = client();
        let repo = unique_repo(&lab, "tamper");
        let tag = format!("{repo}:v1");
        // Caught locally, before anything is sent.
        let before = c.stats();
        let e = c
            .push_blob_bytes(&tag, b"abc".to_vec(), &sha256_digest(b"abd"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert_eq!(c.stats().since(&before).requests, 0);
        let e = c
            .push_manifest(
                &format!("{repo}@{}", sha256_digest(b"x")),
                b"{}".to_vec(),
                MEDIA_TYPE_OCI_MANIFEST,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");

        // A file whose content is not its claimed digest: the real registry refuses it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"the real content").unwrap();
        let claimed = sha256_digest(b"other content");
        let e = c
            .push_blob_file(&tag, &path, &claimed, 16)
            .await
            .unwrap_err();
        match &e {
            Error::DigestMismatch {
                expected, actual, ..
            } => {
                assert_eq!(expected, &claimed);
                assert_eq!(actual, &sha256_digest(b"the real content"));
            }
            other => panic!("expected a digest mismatch, got {other}"),
        }
        let e = c
            .push_blob_file(&tag, &path, &claimed, 99)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
    });
}

/// The busybox fixture converted by ctr-remote: resolve it and read the eStargz
/// footer with one ranged GET (stargz-internals.md: 51 bytes, TOC offset in hex + `STARGZ`).
#[test]
fn estargz_fixture_footer_reads_with_one_range() {
    let Some(lab) = common::lab() else { return };
    let name = format!("advisor-test/smoke-{}", advisor::containerd::nanos());
    let out = std::process::Command::new(common::repo().join("tests/fixtures/smoke-image.sh"))
        .arg(&lab.containerd)
        .arg(&lab.registry)
        .arg(&name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::rt().block_on(async {
        let c = client();
        let gz = c
            .resolve(&format!("{}/{name}:gzip", lab.registry))
            .await
            .unwrap();
        assert_eq!(gz.layers().len(), 1);
        let esgz = c
            .resolve(&format!("{}/{name}:esgz", lab.registry))
            .await
            .unwrap();
        let layer = &esgz.layers()[0];
        let toc = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get("containerd.io/snapshot/stargz/toc.digest"));
        assert!(
            toc.is_some(),
            "ctr-remote annotates the TOC digest: {layer:?}"
        );
        let digest = layer.digest().to_string();
        let size = layer.size();
        assert_eq!(c.blob_size(&esgz, &digest).await.unwrap(), size);
        let before = c.stats();
        let footer = c
            .fetch_range(&esgz, &digest, size - 51..size)
            .await
            .unwrap();
        assert_eq!(c.stats().since(&before).bytes_received, 51);
        assert_eq!(&footer[32..38], b"STARGZ", "{footer:?}");
        let offset =
            u64::from_str_radix(std::str::from_utf8(&footer[16..32]).unwrap(), 16).unwrap();
        assert!(
            offset > 0 && offset < size - 51,
            "TOC offset {offset} in a {size}-byte blob"
        );
        // The TOC member is a gzip stream: its first bytes are the gzip magic.
        let head = c
            .fetch_range(&esgz, &digest, offset..offset + 2)
            .await
            .unwrap();
        assert_eq!(head, [0x1f, 0x8b]);
    });
}

#[test]
fn registry_errors_are_user_facing() {
    let e = registry::Error::Internal { detail: "x".into() };
    assert!(!e.is_user_facing());
    let e = registry::Error::NotFound {
        url: "u".into(),
        reference: "r".into(),
        what: "w".into(),
    };
    assert!(e.is_user_facing());
}
