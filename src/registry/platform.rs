//! Platforms (os/architecture/variant) and index resolution, as containerd 1.6
//! does it (`platforms.Only` + `platforms.Normalize`, platforms/compare.go and
//! database.go): an amd64 host also accepts 386, arm64 also accepts arm/v8..v5,
//! arm/vN accepts lower arm variants; among matches the host's exact platform
//! wins, then index order.
use oci_spec::image::ImageIndex;
use serde::Serialize;
use std::fmt;

/// An OCI platform: `os/architecture[/variant]` with Go's GOOS/GOARCH names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// This host's platform, from `std::env::consts` mapped to OCI (GOARCH) names.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            // Rust's `arm` target family is ARMv6/v7 hard-float on Linux: containerd's
            // default for a bare "arm" is v7.
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        Platform::new(os, arch, variant)
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Some(Platform::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Some(Platform::new(os, arch, Some(variant)))
            }
            _ => None,
        }
    }

    /// containerd's `platforms.Normalize` for os/arch/variant.
    fn normalized(&self) -> (String, String, String) {
        let os = self.os.to_lowercase();
        let arch = self.architecture.to_lowercase();
        let variant = self.variant.clone().unwrap_or_default().to_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64".to_string(),
                if variant == "v1" {
                    String::new()
                } else {
                    variant
                },
            ),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                if variant == "8" || variant == "v8" {
                    String::new()
                } else {
                    variant
                },
            ),
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => (
                "arm".to_string(),
                match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                },
            ),
            _ => (arch, variant),
        };
        (os, arch, variant)
    }

    /// containerd's `platformVector`: the platforms this one accepts, best first.
    fn vector(&self) -> Vec<(String, String, String)> {
        let (os, arch, variant) = self.normalized();
        let mut v = vec![(os.clone(), arch.clone(), variant.clone())];
        let version = |s: &str| s.trim_start_matches('v').parse::<u32>().ok();
        match arch.as_str() {
            "amd64" => {
                if let Some(n) = version(&variant).filter(|n| *n > 1) {
                    for k in (1..n).rev() {
                        let var = if k == 1 {
                            String::new()
                        } else {
                            format!("v{k}")
                        };
                        v.push((os.clone(), arch.clone(), var));
                    }
                }
                v.push((os, "386".into(), String::new()));
            }
            "arm" => {
                if let Some(n) = version(&variant).filter(|n| *n > 5) {
                    for k in (5..n).rev() {
                        v.push((os.clone(), arch.clone(), format!("v{k}")));
                    }
                }
            }
            "arm64" => {
                let var = if variant.is_empty() {
                    "v8".into()
                } else {
                    variant
                };
                v.extend(Platform::new(&os, "arm", Some(&var)).vector());
            }
            _ => {}
        }
        v
    }

    /// Rank of `other` among the platforms this one accepts (0 = exact), or None.
    pub fn rank(&self, other: &Platform) -> Option<usize> {
        let n = other.normalized();
        self.vector().iter().position(|p| *p == n)
    }
}

impl Default for Platform {
    fn default() -> Self {
        Platform::host()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `--platform`: `os/arch[/variant]`, or one part as containerd's
/// `platforms.Parse` takes it — an OS (`linux`) on this host's architecture,
/// else an architecture (`arm64`) on this host's OS.
impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if !s.is_empty() && !s.contains('/') {
            let host = Platform::host();
            return Ok(if KNOWN_OS.contains(&s.to_lowercase().as_str()) {
                Platform {
                    os: s.into(),
                    ..host
                }
            } else {
                Platform::new(&host.os, s, None)
            });
        }
        Platform::parse(s).ok_or_else(|| {
            format!("`{s}` is not a platform: expected OS/ARCH[/VARIANT], e.g. linux/amd64, linux/arm64 or linux/arm/v7")
        })
    }
}

/// Operating systems a one-part `--platform` is taken as (Go's GOOS names
/// containerd knows; anything else is an architecture).
const KNOWN_OS: [&str; 8] = [
    "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
];

impl From<&oci_spec::image::Platform> for Platform {
    fn from(p: &oci_spec::image::Platform) -> Self {
        Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    }
}

/// The index entry for `want`: the best-ranked match, the first in index order
/// among equals. Entries without a platform are never chosen (containerd would
/// open their configs; registries put attestations and such there).
pub fn select(index: &ImageIndex, want: &Platform) -> Option<usize> {
    index
        .manifests()
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let p = Platform::from(d.platform().as_ref()?);
            want.rank(&p).map(|r| (r, i))
        })
        .min()
        .map(|(_, i)| i)
}

/// The platforms an index offers, for error messages.
pub fn available(index: &ImageIndex) -> String {
    let v: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref().map(|p| Platform::from(p).to_string()))
        .collect();
    if v.is_empty() {
        "no platform-labelled manifests".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn platform_flag_values_parse_as_containerd_s() {
        let host = Platform::host();
        let f = |s: &str| s.parse::<Platform>();
        assert_eq!(
            f("linux/arm/v7").unwrap(),
            Platform::new("linux", "arm", Some("v7"))
        );
        assert_eq!(f("linux/arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(f("arm64").unwrap(), Platform::new(&host.os, "arm64", None));
        assert_eq!(
            f("linux").unwrap(),
            Platform {
                os: "linux".into(),
                ..host
            }
        );
        for bad in ["", "linux/", "/amd64", "a/b/c/d"] {
            let e = f(bad).unwrap_err();
            assert!(
                e.contains("OS/ARCH[/VARIANT]") && e.contains("linux/arm64"),
                "{e}"
            );
        }
    }

    #[test]
    fn host_platform_uses_oci_names() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(
            !["x86_64", "aarch64"].contains(&h.architecture.as_str()),
            "Rust arch name leaked: {h}"
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn ranks_follow_containerd_only() {
        let amd = p("linux/amd64");
        assert_eq!(amd.rank(&p("linux/amd64")), Some(0));
        assert_eq!(amd.rank(&p("linux/x86_64")), Some(0));
        assert_eq!(amd.rank(&p("linux/386")), Some(1));
        assert_eq!(amd.rank(&p("linux/arm64")), None);
        assert_eq!(amd.rank(&p("windows/amd64")), None);

        let arm64 = p("linux/arm64");
        assert_eq!(arm64.rank(&p("linux/arm64/v8")), Some(0));
        assert_eq!(arm64.rank(&p("linux/aarch64")), Some(0));
        assert_eq!(arm64.rank(&p("linux/arm/v8")), Some(1));
        assert_eq!(arm64.rank(&p("linux/arm/v7")), Some(2));
        assert_eq!(arm64.rank(&p("linux/amd64")), None);

        let armv6 = p("linux/arm/v6");
        assert_eq!(armv6.rank(&p("linux/arm/v7")), None);
        assert_eq!(armv6.rank(&p("linux/arm/v5")), Some(1));
        assert_eq!(p("linux/arm").rank(&p("linux/arm/v7")), Some(0));
    }

    #[test]
    fn select_prefers_exact_then_index_order() {
        let index: ImageIndex = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000001",
               "platform":{"os":"linux","architecture":"386"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000002"},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000003",
               "platform":{"os":"linux","architecture":"amd64"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000004",
               "platform":{"os":"linux","architecture":"amd64"}}]}"#,
        )
        .unwrap();
        assert_eq!(select(&index, &p("linux/amd64")), Some(2));
        assert_eq!(select(&index, &p("linux/s390x")), None);
        assert_eq!(available(&index), "linux/386, linux/amd64, linux/amd64");
    }
}
