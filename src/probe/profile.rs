//! The network profile `advisor probe` writes (`advisor-network-profile`,
//! version 1), field by field in docs/network.md. Times are [`Seconds`], sizes
//! [`Bytes`], rates bytes per second: all plain JSON numbers. A number that
//! was not measured is `null`, with a note saying why.
use super::stats::Spread;
use crate::simulate::network::Link;
use crate::units::{Bytes, Seconds};
use serde::{Deserialize, Serialize};

/// The profile's `kind`.
pub const KIND: &str = "advisor-network-profile";
/// The profile's `version`.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkProfile {
    /// Always [`KIND`].
    pub kind: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The registry as given (`HOST[:PORT]`), credentials and secret query values hidden.
    pub registry: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The address connected to (first DNS answer), `IP:PORT`.
    pub address: String,
    /// When the probe started, RFC 3339 UTC.
    pub measured_at: String,
    /// The blob throughput was measured on (None: only RTT and set-up).
    pub blob: Option<BlobUsed>,
    /// Name resolution of the registry host.
    pub dns_s: Seconds,
    /// Round trip of small requests on one kept-alive connection.
    pub rtt_s: Spread,
    /// What the round trips were (`GET /v2/` or `HEAD blob`).
    pub rtt_request: String,
    /// TCP connect (SYN to established), median of a few.
    pub connect_s: Seconds,
    /// A fresh connection's first request minus a kept-alive request on it:
    /// DNS, TCP and (https) TLS set-up as the client pays them.
    pub setup_s: Seconds,
    /// TLS handshake, derived: `setup_s − dns_s − connect_s` (null over plain HTTP).
    pub tls_s: Option<Seconds>,
    /// The pull token exchange (null when the registry asks for none).
    pub auth_s: Option<Seconds>,
    pub single_stream: Option<SingleStream>,
    pub multi_stream: Option<MultiStream>,
    /// What was not measured and why, what was derived, what cut a phase short.
    pub notes: Vec<String>,
}

/// The blob whose bytes were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobUsed {
    /// `HOST/REPO@DIGEST`.
    pub reference: String,
    pub digest: String,
    pub size: Bytes,
}

/// One ranged GET on a warm connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SingleStream {
    /// Body bytes received.
    pub bytes: Bytes,
    /// Request sent to last byte.
    pub seconds: Seconds,
    /// Bytes after the first chunk over the time after it.
    pub bytes_per_s: f64,
    /// Request sent to first body byte.
    pub ttfb_s: Seconds,
    /// GETs made (up to 3; the median-rate one is reported).
    pub samples: usize,
    /// The whole blob was read and its digest checked.
    pub verified: bool,
}

/// Parallel ranged GETs of distinct parts, each on its own connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MultiStream {
    pub streams: usize,
    /// Body bytes received by all streams.
    pub bytes: Bytes,
    /// From the common start to the last stream's last byte.
    pub seconds: Seconds,
    /// `bytes / (seconds − ttfb_s)`: from the first byte of any stream to the last of all.
    pub bytes_per_s: f64,
    /// From the common start to the first body byte of any stream.
    pub ttfb_s: Seconds,
    /// Streams measured (= `streams`).
    pub samples: usize,
}

impl NetworkProfile {
    /// Parse a profile, refusing another kind or version.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let p: NetworkProfile = serde_json::from_str(text)?;
        if p.kind != KIND || p.version != VERSION {
            anyhow::bail!(
                "not an {KIND} version {VERSION} (kind `{}`, version {})",
                p.kind,
                p.version
            );
        }
        Ok(p)
    }

    /// The path as the model prices it (`advise --network`): the median
    /// round trip, one stream's and all streams' rates, and a connection's
    /// set-up with the token exchange. Refused when the probe read no blob
    /// (no throughput) or a number is nonsense.
    pub fn link(&self) -> Result<Link, String> {
        let Some(single) = self.single_stream else {
            return Err(
                "it has no throughput (probed without --blob or --image): probe again with --image REF"
                    .into(),
            );
        };
        let link = Link {
            rtt_s: self.rtt_s.median.0,
            stream_bytes_per_s: single.bytes_per_s,
            total_bytes_per_s: self
                .multi_stream
                .map_or(single.bytes_per_s, |m| m.bytes_per_s),
            setup_s: self.setup_s.0 + self.auth_s.map_or(0.0, |a| a.0),
        };
        link.validate()?;
        Ok(link)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A profile as the lab gives one (every field set).
    pub(crate) fn sample() -> NetworkProfile {
        NetworkProfile {
            kind: KIND.into(),
            version: VERSION,
            registry: "127.0.0.1:5123".into(),
            scheme: "http".into(),
            address: "127.0.0.1:5123".into(),
            measured_at: "2026-12-05T12:00:00Z".into(),
            blob: Some(BlobUsed {
                reference: "127.0.0.1:5123/app@sha256:aa".into(),
                digest: "sha256:aa".into(),
                size: Bytes(8 << 20),
            }),
            dns_s: Seconds(0.00002),
            rtt_s: Spread {
                median: Seconds(0.00031),
                p10: Seconds(0.00025),
                p90: Seconds(0.00052),
                samples: 100,
            },
            rtt_request: "HEAD blob".into(),
            connect_s: Seconds(0.00008),
            setup_s: Seconds(0.00041),
            tls_s: None,
            auth_s: None,
            single_stream: Some(SingleStream {
                bytes: Bytes(8 << 20),
                seconds: Seconds(0.021),
                bytes_per_s: 4.1e8,
                ttfb_s: Seconds(0.0009),
                samples: 1,
                verified: true,
            }),
            multi_stream: Some(MultiStream {
                streams: 4,
                bytes: Bytes(8 << 20),
                seconds: Seconds(0.012),
                bytes_per_s: 7.6e8,
                ttfb_s: Seconds(0.001),
                samples: 4,
            }),
            notes: vec!["plain HTTP: no TLS handshake (tls_s is null)".into()],
        }
    }

    #[test]
    fn a_probed_path_becomes_the_models_link() {
        let mut p = sample();
        p.auth_s = Some(Seconds(0.002));
        let l = p.link().unwrap();
        assert_eq!(l.rtt_s, 0.00031);
        assert_eq!(l.stream_bytes_per_s, 4.1e8);
        assert_eq!(l.total_bytes_per_s, 7.6e8);
        assert!((l.setup_s - 0.00241).abs() < 1e-12);
        // One stream only: it is the total too.
        p.multi_stream = None;
        assert_eq!(p.link().unwrap().total_bytes_per_s, 4.1e8);
        // No blob read: no throughput to price bytes with.
        p.single_stream = None;
        assert!(p.link().unwrap_err().contains("--image"));
        // A hand-edited nonsense rate is refused by name.
        let mut p = sample();
        p.single_stream.as_mut().unwrap().bytes_per_s = 0.0;
        assert!(p.link().unwrap_err().contains("stream_bytes_per_s"));
    }

    #[test]
    fn profile_round_trips_through_json() {
        let p = sample();
        let text = serde_json::to_string_pretty(&p).unwrap();
        assert_eq!(NetworkProfile::from_json(&text).unwrap(), p);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["kind"], KIND);
        assert_eq!(v["rtt_s"]["samples"], 100);
        assert!(v["rtt_s"]["median"].is_f64(), "plain numbers: {v}");
        assert!(v["tls_s"].is_null() && v["auth_s"].is_null());
        assert_eq!(v["single_stream"]["bytes"], 8 << 20);
    }

    #[test]
    fn profile_without_throughput_round_trips() {
        let p = NetworkProfile {
            blob: None,
            single_stream: None,
            multi_stream: None,
            ..sample()
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(NetworkProfile::from_json(&text).unwrap(), p);
    }

    #[test]
    fn another_kind_or_version_is_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["version"] = 2.into();
        let e = NetworkProfile::from_json(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
    }
}
