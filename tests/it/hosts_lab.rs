//! containerd's registry host configuration end to end (issue 19 §1): a real
//! registry (Debian's docker-registry, the lab's storage) served over TLS with
//! a private CA that requires a client certificate, as the mirror of a
//! registry that does not exist, named by a hosts.toml under `--hosts-dir`.
//! advisor must resolve, read TOCs, probe and report through the mirror with
//! the file's CA and client certificate, and refuse clearly without them.
use crate::common::{self, advisor, fails_with, run_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry name nothing listens on: only the mirror can answer for it.
const ORIGIN: &str = "127.0.0.1:9";

/// The TLS registry, stopped when dropped.
struct TlsRegistry {
    child: Child,
    port: u16,
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client
/// certificate, all signed by the CA (openssl, a lab package).
fn certificates(dir: &Path) {
    sh(
        dir,
        "set -e
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=advisor-test-ca 2>/dev/null
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
         printf 'extendedKeyUsage=clientAuth\\n' > client.ext
         openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=advisor-test-client 2>/dev/null
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null",
    );
}

/// docker-registry on the lab's storage (read-only), TLS with `dir`'s
/// certificates, client certificates from the CA required.
fn start_tls_registry(lab: &common::Lab, dir: &Path) -> TlsRegistry {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  maintenance:\n    readonly:\n      enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n    clientcas:\n      - {d}/ca.pem\n",
        data = lab.dir.join("registry/data").display(),
        d = dir.display()
    );
    std::fs::write(dir.join("registry.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("registry.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
        .spawn()
        .expect("start docker-registry (a lab package)");
    let reg = TlsRegistry { child, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the TLS registry did not listen: {}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    reg
}

/// `<hosts>/127.0.0.1:9/hosts.toml` naming the mirror, with `extra` lines in
/// its table; the CA and client files copied beside it (relative paths).
fn hosts_dir(certs: &Path, port: u16, extra: &str) -> tempfile::TempDir {
    let hosts = tempfile::tempdir().unwrap();
    let sub = hosts.path().join(ORIGIN);
    std::fs::create_dir_all(&sub).unwrap();
    for f in ["ca.pem", "client.pem", "client.key"] {
        std::fs::copy(certs.join(f), sub.join(f)).unwrap();
    }
    std::fs::write(
        sub.join("hosts.toml"),
        format!(
            "server = \"http://{ORIGIN}\"\n\n[host.\"https://localhost:{port}\"]\n  capabilities = [\"pull\", \"resolve\"]\n{extra}"
        ),
    )
    .unwrap();
    hosts
}

fn with_hosts(dir: &Path) -> assert_cmd::Command {
    let mut c = advisor();
    c.arg("--hosts-dir").arg(dir).args(["--format", "json"]);
    c
}

fn check<'a>(doctor: &'a Value, name: &str) -> &'a Value {
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {doctor}"))
}

#[test]
fn a_tls_mirror_with_a_private_ca_and_client_certificate_serves_through_hosts_toml() {
    let Some(lab) = common::lab() else { return };
    common::faults::fixture(&lab, "hosts-mirror", 1_000_000);
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let tls = start_tls_registry(&lab, certs.path());
    let image = format!("{ORIGIN}/hosts-mirror:esgz");
    let full = "  ca = \"ca.pem\"\n  client = [[\"client.pem\", \"client.key\"]]\n";

    // The mirror with its CA and client certificate: the TOC is read through it.
    let hosts = hosts_dir(certs.path(), tls.port, full);
    let direct: Value = run_json(advisor().args([
        "--format",
        "json",
        "image",
        "inspect",
        &format!("{}/hosts-mirror:esgz", lab.registry),
    ]));
    let via: Value = run_json(with_hosts(hosts.path()).args(["image", "inspect", &image]));
    assert_eq!(via["manifest_digest"], direct["manifest_digest"]);
    assert_eq!(
        via["layers"], direct["layers"],
        "the same TOCs through the mirror"
    );

    // doctor names the hosts in order and checks each one's /v2/.
    let out = with_hosts(hosts.path())
        .args(["doctor", "--registry", ORIGIN])
        .output()
        .unwrap();
    let doctor: Value = common::parse_json(&out.stdout);
    let hosts_check = check(&doctor, "registry hosts")["detail"].as_str().unwrap();
    let mirror_url = format!("https://localhost:{}/v2", tls.port);
    assert!(hosts_check.contains(&mirror_url), "{hosts_check}");
    assert!(hosts_check.contains("hosts.toml"), "{hosts_check}");
    assert!(
        hosts_check.find(&mirror_url) < hosts_check.find(&format!("http://{ORIGIN}/v2")),
        "mirror first: {hosts_check}"
    );
    assert_eq!(check(&doctor, "registry mirror")["ok"], true, "{doctor}");
    assert_eq!(check(&doctor, "registry")["ok"], false, "{doctor}");

    // probe measures the mirror a pull uses, over TLS.
    let profile: Value = run_json(with_hosts(hosts.path()).args([
        "probe",
        "--registry",
        ORIGIN,
        "--image",
        "hosts-mirror:esgz",
        "--rtt-samples",
        "5",
        "--max-bytes",
        "200KB",
    ]));
    assert_eq!(profile["scheme"], "https", "{profile}");
    assert!(
        profile.to_string().contains("measured the mirror"),
        "{profile}"
    );

    // The CA from --ca-cert instead of the file works as well.
    let no_ca = hosts_dir(
        certs.path(),
        tls.port,
        "  client = [[\"client.pem\", \"client.key\"]]\n",
    );
    let ca: PathBuf = certs.path().join("ca.pem");
    run_json::<Value>(
        with_hosts(no_ca.path())
            .arg("--ca-cert")
            .arg(&ca)
            .args(["image", "inspect", &image]),
    );
    // Without the CA, and without the client certificate: refused, naming the mirror.
    let host = format!("localhost:{}", tls.port);
    let e = fails_with(
        with_hosts(no_ca.path()).args(["image", "inspect", &image]),
        1,
        &[&host],
    );
    assert!(
        e.contains("UnknownIssuer") && e.contains("--ca-cert"),
        "{e}"
    );
    let no_client = hosts_dir(certs.path(), tls.port, "  ca = \"ca.pem\"\n");
    fails_with(
        with_hosts(no_client.path()).args(["image", "inspect", &image]),
        1,
        &[&host, "client certificate"],
    );
}
