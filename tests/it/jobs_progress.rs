//! `--jobs` and progress, without containerd or a registry of the lab:
//! `image build --dry-run` and `image inspect --scan` (against a tiny
//! registry served from this test) give the same bytes whatever the number
//! of threads; a `--jobs` of 0 or beyond the limit is the user's error
//! (exit 1) naming the flag; with stderr not a terminal no progress bar is drawn
//! (no escape codes) and stdout stays parseable JSON.
use crate::common;

use advisor::estargz::writer::{EntryHeader, GzipWriter, WriterOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A spec without the busybox base (no host file needed), big enough that
/// a layer is several batches of gzip members.
fn spec(dir: &Path) -> PathBuf {
    let v = json!({
        "name": "jobs",
        "seed": 7,
        "base": "none",
        "chunk_size": "64KiB",
        "layers": [
            {"name": "app", "groups": [
                {"dir": "/app", "name": "f{i:03}", "count": 60,
                 "size": {"min": "1KiB", "max": "96KiB"}, "content": "text"}
            ]},
            {"name": "data", "groups": [
                {"dir": "/data", "name": "big{i}", "count": 2, "size": "3MiB", "content": "random"}
            ]}
        ],
        "cmd": ["echo ready"]
    });
    let p = dir.join("jobs.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    p
}

struct Run {
    stdout: Value,
    stderr: String,
}

/// Run advisor (stdout and stderr are pipes, not terminals) and require exit 0.
fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().expect("run advisor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "advisor failed ({}):\n{stderr}",
        out.status
    );
    Run {
        stdout: common::parse_json(&out.stdout),
        stderr,
    }
}

/// No terminal control sequences (a progress bar's) on stderr.
#[track_caller]
fn no_progress_drawn(stderr: &str) {
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "progress drawn on a stderr that is not a terminal:\n{stderr:?}"
    );
}

/// What a build made: per form, the manifest digest and every layer's digest
/// and diff_id (the timings differ from run to run).
fn built(r: &Value) -> Vec<Value> {
    r["forms"]
        .as_array()
        .expect("forms")
        .iter()
        .map(|f| {
            json!({
                "form": f["form"],
                "manifest": f["manifest_digest"],
                "size": f["compressed_size"],
                "layers": f["layers"].as_array().unwrap().iter()
                    .map(|l| json!([l["digest"], l["diff_id"], l["size"], l["toc_digest"]]))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[test]
fn image_build_gives_the_same_bytes_with_1_or_2_jobs_and_draws_no_progress_into_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let build = |jobs: Option<&str>, env: Option<&str>| {
        let mut c = common::advisor();
        c.args(["image", "build", "--dry-run", "--format", "json", "--spec"])
            .arg(&spec)
            .env_remove("ADVISOR_JOBS");
        if let Some(j) = jobs {
            c.args(["--jobs", j]);
        }
        if let Some(e) = env {
            c.env("ADVISOR_JOBS", e);
        }
        // Not -q: the bars are hidden because stderr is a pipe.
        let r = run(&mut c);
        no_progress_drawn(&r.stderr);
        r.stdout
    };
    let one = build(Some("1"), None);
    let two = build(Some("2"), None);
    let from_env = build(None, Some("3"));
    let default = build(None, None);
    assert_eq!(built(&one).len(), 2, "{one}");
    assert_eq!(built(&one), built(&two), "--jobs 1 and --jobs 2 differ");
    assert_eq!(built(&one), built(&from_env), "ADVISOR_JOBS=3 differs");
    assert_eq!(built(&one), built(&default), "the default differs");
    // The flag wins over the variable.
    let both = build(Some("1"), Some("2"));
    assert_eq!(built(&one), built(&both));
}

#[test]
fn a_jobs_of_0_or_too_many_is_the_user_s_error_naming_the_flag() {
    for bad in ["0", "1025", "many", "-3"] {
        let stderr = common::fails_with(
            common::advisor()
                .args(["image", "build", "--dry-run", "--spec", "x.json"])
                .arg(format!("--jobs={bad}"))
                .env_remove("ADVISOR_JOBS"),
            1,
            &["--jobs"],
        );
        assert!(stderr.contains("1-1024"), "{bad}: {stderr}");
    }
    // From the variable too, before any work.
    common::fails_with(
        common::advisor()
            .args(["image", "inspect", "localhost:1/x:y"])
            .env("ADVISOR_JOBS", "0"),
        1,
        &["--jobs", "0 threads"],
    );
    let help = common::advisor().args(["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--jobs <N>") && help.contains("ADVISOR_JOBS"),
        "{help}"
    );
}

// ------------------------------------------------ a registry for --scan

/// A gzip layer (not eStargz: `--scan` streams it) of `files` files.
fn gzip_layer(seed: u8, files: usize) -> (Vec<u8>, String) {
    let mut w = GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    for i in 0..files {
        let body: Vec<u8> = (0..(40_000 + i * 997))
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed ^ i as u8))
            .collect();
        w.append(
            &EntryHeader::file(format!("d{seed}/f{i}"), body.len() as u64),
            &body[..],
        )
        .unwrap();
    }
    let (layer, blob) = w.finish().unwrap();
    (blob, layer.diff_id)
}

fn sha(b: &[u8]) -> String {
    advisor::estargz::sha256_digest(b)
}

/// The blobs and the manifest of a two-layer gzip image.
struct Image {
    manifest: Vec<u8>,
    blobs: Vec<(String, Vec<u8>)>,
}

fn image() -> Image {
    let layers = [gzip_layer(1, 30), gzip_layer(2, 50)];
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.1).collect::<Vec<_>>()},
        "config": {}
    }))
    .unwrap();
    let desc =
        |media: &str, b: &[u8]| json!({"mediaType": media, "size": b.len(), "digest": sha(b)});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers.iter()
            .map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", &l.0))
            .collect::<Vec<_>>(),
    }))
    .unwrap();
    let mut blobs = vec![(sha(&config), config)];
    blobs.extend(layers.into_iter().map(|(b, _)| (sha(&b), b)));
    Image { manifest, blobs }
}

/// Serve `img` as `127.0.0.1:PORT/jobs/img:v1` (one request per connection,
/// ranges honoured) until the test process ends; returns the reference.
fn serve(img: Image) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let img = Arc::new(img);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let img = img.clone();
            std::thread::spawn(move || {
                let _ = answer(conn, &img);
            });
        }
    });
    format!("127.0.0.1:{port}/jobs/img:v1")
}

fn answer(mut conn: TcpStream, img: &Image) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or(("", ""));
        if k.eq_ignore_ascii_case("range") {
            let r = v.trim().trim_start_matches("bytes=");
            if let Some((a, b)) = r.split_once('-') {
                range = a.parse::<usize>().ok().zip(b.parse::<usize>().ok());
            }
        }
    }
    let manifest_digest = sha(&img.manifest);
    let (status, ctype, body): (&str, &str, &[u8]) = if path == "/v2/" {
        ("200 OK", "application/json", b"{}")
    } else if path == "/v2/jobs/img/manifests/v1"
        || path == format!("/v2/jobs/img/manifests/{manifest_digest}")
    {
        (
            "200 OK",
            "application/vnd.oci.image.manifest.v1+json",
            &img.manifest,
        )
    } else if let Some(b) = path
        .strip_prefix("/v2/jobs/img/blobs/")
        .and_then(|d| img.blobs.iter().find(|(k, _)| k == d))
    {
        ("200 OK", "application/octet-stream", &b.1)
    } else {
        ("404 Not Found", "application/json", b"{\"errors\":[]}")
    };
    let mut head = String::new();
    let body = match range {
        Some((a, b)) if status.starts_with("200") && path.contains("/blobs/") => {
            let b = b.min(body.len().saturating_sub(1));
            head.push_str(&format!("Content-Range: bytes {a}-{b}/{}\r\n", body.len()));
            return send(
                &mut conn,
                "206 Partial Content",
                ctype,
                &head,
                &body[a..=b],
                method,
            );
        }
        _ => body,
    };
    if path.contains("/manifests/") {
        head.push_str(&format!("Docker-Content-Digest: {manifest_digest}\r\n"));
    }
    send(&mut conn, status, ctype, &head, body, method)
}

fn send(
    conn: &mut TcpStream,
    status: &str,
    ctype: &str,
    head: &str,
    body: &[u8],
    method: &str,
) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{head}Connection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        conn.write_all(body)?;
    }
    conn.flush()?;
    // Drain what the client may still send, then close.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = conn.read(&mut [0u8; 64]);
    Ok(())
}

#[test]
fn inspect_scan_lists_the_same_files_with_1_or_2_jobs_and_draws_no_progress_into_a_pipe() {
    let reference = serve(image());
    let scan = |jobs: &str| {
        let r = run(common::advisor()
            .args([
                "image",
                "inspect",
                "--scan",
                "--plain-http",
                "--format",
                "json",
            ])
            .args(["--jobs", jobs])
            .arg(&reference));
        no_progress_drawn(&r.stderr);
        r.stdout
    };
    let one = scan("1");
    let two = scan("2");
    let layers = |v: &Value| -> Vec<Value> {
        v["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| json!([l["digest"], l["format"], l["uncompressed_size"], l["scan"]]))
            .collect()
    };
    assert_eq!(layers(&one).len(), 2, "{one}");
    for l in one["layers"].as_array().unwrap() {
        assert!(l["scan"]["files"].as_u64().unwrap() >= 30, "{l}");
    }
    assert_eq!(layers(&one), layers(&two));
}
