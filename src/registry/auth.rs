//! Where registry credentials come from, and keeping them secret.
//!
//! Order, first hit wins (documented in docs/registry.md):
//! 0. `ADVISOR_REGISTRY_TOKEN`: a bearer token sent as it is (any registry);
//! 1. `ADVISOR_REGISTRY_USER` + `ADVISOR_REGISTRY_PASSWORD` (any registry);
//! 2. the docker config `config.json` in `$DOCKER_CONFIG`, else `~/.docker`:
//!    `credHelpers`, `auths` (`auth` base64 or `username`/`password`),
//!    `credsStore`, read with the `docker_credential` crate;
//! 3. anonymous.
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `<redacted>`;
//! a credential is described in messages by its origin only.
use super::error::{Error, Result};
use oci_client::secrets::RegistryAuth;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variables for credentials that apply to every registry.
pub const ENV_USER: &str = "ADVISOR_REGISTRY_USER";
pub const ENV_PASSWORD: &str = "ADVISOR_REGISTRY_PASSWORD";
/// A bearer token for every registry, sent as `Authorization: Bearer` without
/// a token exchange (a registry's access token, as its docs give one).
pub const ENV_TOKEN: &str = "ADVISOR_REGISTRY_TOKEN";

/// `ADVISOR_REGISTRY_TOKEN`, when set and non-empty.
pub fn token_from_env() -> Option<Secret> {
    std::env::var(ENV_TOKEN)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| Secret::new(s.trim()))
}

/// The docker config key for Docker Hub, as `docker login` writes it.
const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A password or token that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password (or token used as a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: Secret,
}

impl BasicCredentials {
    /// `ADVISOR_REGISTRY_USER`/`ADVISOR_REGISTRY_PASSWORD`, when both are set and non-empty.
    pub fn from_env() -> Option<Self> {
        let user = std::env::var(ENV_USER).ok().filter(|s| !s.is_empty())?;
        let password = std::env::var(ENV_PASSWORD).ok().filter(|s| !s.is_empty())?;
        Some(BasicCredentials {
            username: user,
            password: Secret::new(password),
        })
    }
}

/// The directory holding docker's `config.json`: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir(docker_config: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    docker_config
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|s| !s.is_empty())
                .map(|h| Path::new(h).join(".docker"))
        })
}

/// The credentials for one registry, and where they came from.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub basic: Option<BasicCredentials>,
    /// A bearer token sent as it is ([`ENV_TOKEN`]).
    pub token: Option<Secret>,
    /// For messages: "anonymous", "environment (ADVISOR_REGISTRY_USER=alice)", "docker config /root/.docker/config.json (user alice)".
    pub origin: String,
}

impl Credentials {
    pub fn anonymous(note: &str) -> Self {
        Credentials {
            basic: None,
            token: None,
            origin: format!("anonymous{note}"),
        }
    }

    /// As oci-client takes them.
    pub fn registry_auth(&self) -> RegistryAuth {
        match (&self.token, &self.basic) {
            (Some(t), _) => RegistryAuth::Bearer(t.expose().to_string()),
            (None, Some(b)) => {
                RegistryAuth::Basic(b.username.clone(), b.password.expose().to_string())
            }
            (None, None) => RegistryAuth::Anonymous,
        }
    }

    /// Look up the credentials for `registry` (as normalised: `docker.io`, `host:port`).
    pub fn lookup(
        registry: &str,
        token: Option<&Secret>,
        env: Option<&BasicCredentials>,
        docker_config_dir: Option<&Path>,
    ) -> Result<Self> {
        if let Some(t) = token {
            if !t.expose().bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(Error::Credentials {
                    registry: registry.into(),
                    origin: ENV_TOKEN.into(),
                    detail: "it holds characters an HTTP header cannot carry (spaces, control \
                             characters, non-ASCII): give the token alone"
                        .into(),
                });
            }
            return Ok(Credentials {
                basic: None,
                token: Some(t.clone()),
                origin: format!("environment ({ENV_TOKEN}, a bearer token)"),
            });
        }
        if let Some(b) = env {
            return Ok(Credentials {
                token: None,
                basic: Some(b.clone()),
                origin: format!("environment ({ENV_USER}={})", b.username),
            });
        }
        let Some(dir) = docker_config_dir else {
            return Ok(Credentials::anonymous(" (no docker config directory)"));
        };
        let path = dir.join("config.json");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Credentials::anonymous(&format!(" (no {})", path.display())));
            }
            Err(e) => {
                return Err(Error::Credentials {
                    registry: registry.into(),
                    origin: path.display().to_string(),
                    detail: format!("cannot read it: {e}"),
                });
            }
        };
        let key = if registry == "docker.io" {
            DOCKER_HUB_CONFIG_KEY
        } else {
            registry
        };
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let origin = format!("docker config {}", path.display());
        match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => Ok(Credentials {
                token: None,
                origin: format!("{origin} (user {username})"),
                basic: Some(BasicCredentials {
                    username,
                    password: Secret::new(password),
                }),
            }),
            Ok(DockerCredential::IdentityToken(_)) => {
                // An identity token is an OAuth2 refresh token; oci-client's token
                // flow only does the GET (Basic) variant. Say so and go on anonymously.
                tracing::warn!(
                    "{origin} has an identity token for {registry}; advisor cannot use identity tokens, trying anonymously (set {ENV_USER}/{ENV_PASSWORD})"
                );
                Ok(Credentials::anonymous(&format!(
                    " ({origin} has an identity token for {registry}, which advisor cannot use)"
                )))
            }
            Err(E::NoCredentialConfigured) => Ok(Credentials::anonymous(&format!(
                " ({origin} has no entry for {registry})"
            ))),
            Err(E::HelperFailure { helper, stderr, .. }) => Err(Error::Credentials {
                registry: registry.into(),
                origin,
                // stdout is left out: a helper may print secrets there.
                detail: format!(
                    "credential helper docker-credential-{helper} failed: {}",
                    stderr.trim()
                ),
            }),
            Err(e) => Err(Error::Credentials {
                registry: registry.into(),
                origin,
                detail: format!("{e}; fix or remove the file"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = BasicCredentials {
            username: "alice".into(),
            password: Secret::new("hunter2-very-secret"),
        };
        let creds = Credentials::lookup("r.example.com", None, Some(&c), None).unwrap();
        for s in [
            format!("{c:?}"),
            format!("{creds:?}"),
            format!("{:?}", creds.registry_auth()),
            creds.origin.clone(),
        ] {
            assert!(!s.contains("hunter2"), "{s}");
        }
        assert!(creds.origin.contains("alice"));
    }

    #[test]
    fn docker_config_dir_prefers_docker_config() {
        assert_eq!(
            docker_config_dir(Some("/etc/dc"), Some("/root")),
            Some(PathBuf::from("/etc/dc"))
        );
        assert_eq!(
            docker_config_dir(None, Some("/root")),
            Some(PathBuf::from("/root/.docker"))
        );
        assert_eq!(
            docker_config_dir(Some(""), Some("/home/a")),
            Some(PathBuf::from("/home/a/.docker"))
        );
        assert_eq!(docker_config_dir(None, None), None);
    }

    #[test]
    fn docker_config_auths_are_read() {
        let dir = tempfile::tempdir().unwrap();
        // "bob:pa:ss" base64: a password may contain ':'.
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"reg.example.com:5000":{"auth":"Ym9iOnBhOnNz"},
                         "https://index.docker.io/v1/":{"username":"hub","password":"hubpw"}}}"#,
        )
        .unwrap();
        let c = Credentials::lookup("reg.example.com:5000", None, None, Some(dir.path())).unwrap();
        let b = c.basic.unwrap();
        assert_eq!((b.username.as_str(), b.password.expose()), ("bob", "pa:ss"));
        assert!(c.origin.contains("config.json") && c.origin.contains("bob"));

        let c = Credentials::lookup("docker.io", None, None, Some(dir.path())).unwrap();
        assert_eq!(c.basic.unwrap().username, "hub");

        let c = Credentials::lookup("other:1", None, None, Some(dir.path())).unwrap();
        assert!(c.basic.is_none());
        assert!(c.origin.starts_with("anonymous"), "{}", c.origin);

        let none = tempfile::tempdir().unwrap();
        let c = Credentials::lookup("other:1", None, None, Some(none.path())).unwrap();
        assert!(
            c.basic.is_none() && c.origin.contains("no "),
            "{}",
            c.origin
        );
    }

    #[test]
    fn corrupt_docker_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = Credentials::lookup("r:1", None, None, Some(dir.path())).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("config.json") && s.contains("r:1"), "{s}");
        assert!(e.is_user_facing());
    }
}
