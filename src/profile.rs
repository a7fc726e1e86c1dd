//! The node profile: the calibrated cost-model parameters of one node, with
//! their intervals, fit quality, the facts of the node they were measured on,
//! and the raw runs they came from. Written by `calibrate`, read by `predict`.
//!
//! Owns the schema (versioned: `advisor.profile/v1`, documented in
//! docs/profile.md) and its validation on load. Does not fit anything.
use crate::simulate::network::Link;
use crate::units::{Bytes, Estimate, Seconds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Schema identifier written in every profile.
pub const PROFILE_SCHEMA: &str = "advisor.profile/v1";

/// Largest fixed cost (unit `s`) a profile may carry: one hour per step.
/// Anything above is a corrupt or hand-edited profile, not a calibration.
pub const MAX_FIXED_S: f64 = 3600.0;

/// Largest per-byte cost (unit `s/B`) a profile may carry: 1 ms per byte,
/// a rate under 1 kB/s.
pub const MAX_S_PER_BYTE: f64 = 1e-3;

/// The default profile: a real calibration of the lab (calibration/default.json,
/// raw runs in calibration/default.runs.jsonl), bundled into the binary.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../calibration/default.json");

/// Every parameter of the model, by name. See docs/model.md for the equations
/// and which calibration runs measure each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// Resolving a reference: manifest and config from the registry (s).
    ResolveS,
    /// Eager: fixed cost of a pull beyond resolve: lease, ingests, image record (s).
    EagerPullFixedS,
    /// Eager: time per compressed byte downloaded (s/B): the inverse of pull bandwidth.
    EagerFetchSPerByte,
    /// Eager: per-layer unpack cost: Prepare, Diff.Apply and Commit round trips (s).
    UnpackPerLayerS,
    /// Eager: unpack time per uncompressed byte (copy out of gzip, write) (s/B).
    UnpackSPerByte,
    /// Eager: unpack time per byte a layer expands by (uncompressed −
    /// compressed): Huffman decoding, which stored (incompressible) data skips (s/B).
    UnpackSPerInflatedByte,
    /// Eager: unpack time per file or directory created (s).
    UnpackSPerFile,
    /// Eager: container create + task start on overlayfs (s).
    StartOverlayS,
    /// Eager: reading one byte from the local, just-unpacked rootfs (s/B).
    LocalReadSPerByte,
    /// Eager: one file open on the local rootfs (s).
    LocalOpenS,
    /// Both: from task start to the workload's first file access (runtime, exec) (s).
    ProcessStartS,
    /// Lazy: fixed cost of a lazy pull beyond resolve: lease, labels, commits (s).
    LazyPullFixedS,
    /// Lazy: per-layer remote mount: probe, HEAD, footer, TOC fetch, FUSE mount (s).
    MountPerLayerS,
    /// Lazy: TOC parse and index time per TOC entry (s).
    MountPerEntryS,
    /// Lazy: container create + task start on stargz (s).
    StartStargzS,
    /// Lazy: one range request to the registry, excluding body bytes (s).
    RequestS,
    /// Lazy: time per compressed byte received in range requests (s/B).
    RangeSPerByte,
    /// Lazy: per eStargz chunk fetched on demand: verify set-up, cache write (s).
    ChunkS,
    /// Lazy: sha256 verification and cache write per uncompressed byte of a
    /// fetched chunk (s/B).
    VerifySPerByte,
    /// Lazy: decompression per byte a chunk expands by (uncompressed −
    /// compressed): Huffman decoding (s/B).
    InflateSPerByte,
    /// Lazy: FUSE cost per byte served to the workload (s/B).
    FuseSPerByte,
    /// Lazy: FUSE cost per file opened (lookup, getattr, open) (s).
    FuseOpenS,
    /// Prefetch: time per compressed byte of a layer's prefetch range (one
    /// GET at mount, waited for by the container's create) (s/B).
    PrefetchSPerByte,
    /// Prefetch: decompression, verification and cache write per uncompressed
    /// byte of the prefetched files (in parallel, unlike on-demand reads) (s/B).
    PrefetchVerifySPerByte,
    /// Prefetch: per eStargz chunk of the prefetched files (s).
    PrefetchChunkS,
    /// Eager: unpack time per compressed byte in Huffman-coded deflate blocks
    /// (symbol-by-symbol decoding, which stored blocks skip and which barely
    /// compressible coded data, like model weights, costs in full) (s/B).
    UnpackSPerCodedByte,
    /// Lazy: decompression per compressed byte of a fetched chunk's coded
    /// member ([`crate::estargz::table::Chunk::coded_len`]) (s/B).
    InflateSPerCodedByte,
}

/// The parameters a profile calibrated before advisor priced coded bytes
/// lacks: they load as 0 (the old model: coded incompressible data priced as
/// stored), marked with [`CODED_FALLBACK_FIT`].
pub const CODED_PARAMS: [Param; 2] = [Param::UnpackSPerCodedByte, Param::InflateSPerCodedByte];

/// The fit name a coded-byte parameter carries when its calibration had no
/// coded incompressible layer to measure it.
pub const CODED_FALLBACK_FIT: &str = "not measured (no coded incompressible layer calibrated)";

/// Give the coded-byte terms that are missing 0, marked with
/// [`CODED_FALLBACK_FIT`] (profiles and runs from before they existed).
pub fn fill_coded_fallback(parameters: &mut BTreeMap<Param, ParamEstimate>) {
    for param in CODED_PARAMS {
        parameters.entry(param).or_insert_with(|| ParamEstimate {
            estimate: Estimate::new(0.0, 0.0, 0.0, 0.95),
            std_error: 0.0,
            unit: param.unit().into(),
            fit: CODED_FALLBACK_FIT.into(),
        });
    }
}

/// Every fallback for terms an older profile or runs file lacks: the
/// prefetch terms ([`fill_prefetch_fallback`]) and the coded-byte terms
/// ([`fill_coded_fallback`]).
pub fn fill_fallbacks(parameters: &mut BTreeMap<Param, ParamEstimate>) {
    fill_prefetch_fallback(parameters);
    fill_coded_fallback(parameters);
}

/// The prefetch parameters and the on-demand parameters a profile without
/// prefetched calibration runs takes their values from.
pub const PREFETCH_FALLBACK: [(Param, Param); 3] = [
    (Param::PrefetchSPerByte, Param::RangeSPerByte),
    (Param::PrefetchVerifySPerByte, Param::VerifySPerByte),
    (Param::PrefetchChunkS, Param::ChunkS),
];

/// The fit name a fallback prefetch parameter carries.
pub const PREFETCH_FALLBACK_FIT: &str = "on-demand (no prefetched runs)";

/// Give the prefetch terms that are missing the on-demand values, marked
/// with [`PREFETCH_FALLBACK_FIT`] (a calibration without prefetched runs).
pub fn fill_prefetch_fallback(parameters: &mut BTreeMap<Param, ParamEstimate>) {
    for (param, from) in PREFETCH_FALLBACK {
        if !parameters.contains_key(&param)
            && let Some(e) = parameters.get(&from).cloned()
        {
            parameters.insert(
                param,
                ParamEstimate {
                    fit: PREFETCH_FALLBACK_FIT.into(),
                    ..e
                },
            );
        }
    }
}

impl Param {
    pub const ALL: [Param; 27] = [
        Param::ResolveS,
        Param::EagerPullFixedS,
        Param::EagerFetchSPerByte,
        Param::UnpackPerLayerS,
        Param::UnpackSPerByte,
        Param::UnpackSPerInflatedByte,
        Param::UnpackSPerFile,
        Param::StartOverlayS,
        Param::LocalReadSPerByte,
        Param::LocalOpenS,
        Param::ProcessStartS,
        Param::LazyPullFixedS,
        Param::MountPerLayerS,
        Param::MountPerEntryS,
        Param::StartStargzS,
        Param::RequestS,
        Param::RangeSPerByte,
        Param::ChunkS,
        Param::VerifySPerByte,
        Param::InflateSPerByte,
        Param::FuseSPerByte,
        Param::FuseOpenS,
        Param::PrefetchSPerByte,
        Param::PrefetchVerifySPerByte,
        Param::PrefetchChunkS,
        Param::UnpackSPerCodedByte,
        Param::InflateSPerCodedByte,
    ];

    /// Position in [`Param::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The serialized name (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Param::ResolveS => "resolve_s",
            Param::EagerPullFixedS => "eager_pull_fixed_s",
            Param::EagerFetchSPerByte => "eager_fetch_s_per_byte",
            Param::UnpackPerLayerS => "unpack_per_layer_s",
            Param::UnpackSPerByte => "unpack_s_per_byte",
            Param::UnpackSPerInflatedByte => "unpack_s_per_inflated_byte",
            Param::UnpackSPerFile => "unpack_s_per_file",
            Param::StartOverlayS => "start_overlay_s",
            Param::LocalReadSPerByte => "local_read_s_per_byte",
            Param::LocalOpenS => "local_open_s",
            Param::ProcessStartS => "process_start_s",
            Param::LazyPullFixedS => "lazy_pull_fixed_s",
            Param::MountPerLayerS => "mount_per_layer_s",
            Param::MountPerEntryS => "mount_per_entry_s",
            Param::StartStargzS => "start_stargz_s",
            Param::RequestS => "request_s",
            Param::RangeSPerByte => "range_s_per_byte",
            Param::ChunkS => "chunk_s",
            Param::VerifySPerByte => "verify_s_per_byte",
            Param::InflateSPerByte => "inflate_s_per_byte",
            Param::FuseSPerByte => "fuse_s_per_byte",
            Param::FuseOpenS => "fuse_open_s",
            Param::PrefetchSPerByte => "prefetch_s_per_byte",
            Param::PrefetchVerifySPerByte => "prefetch_verify_s_per_byte",
            Param::PrefetchChunkS => "prefetch_chunk_s",
            Param::UnpackSPerCodedByte => "unpack_s_per_coded_byte",
            Param::InflateSPerCodedByte => "inflate_s_per_coded_byte",
        }
    }

    /// Unit of the parameter, for reports.
    pub fn unit(self) -> &'static str {
        match self {
            Param::EagerFetchSPerByte
            | Param::UnpackSPerByte
            | Param::UnpackSPerInflatedByte
            | Param::VerifySPerByte
            | Param::LocalReadSPerByte
            | Param::RangeSPerByte
            | Param::InflateSPerByte
            | Param::FuseSPerByte
            | Param::PrefetchSPerByte
            | Param::PrefetchVerifySPerByte
            | Param::UnpackSPerCodedByte
            | Param::InflateSPerCodedByte => "s/B",
            _ => "s",
        }
    }
}

/// One calibrated parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamEstimate {
    #[serde(flatten)]
    pub estimate: Estimate,
    /// Standard error of the estimate (same unit).
    pub std_error: f64,
    pub unit: String,
    /// Which fit produced it (a key of `Profile::fits`).
    pub fit: String,
}

/// Quality of one regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitQuality {
    /// What was regressed on what.
    pub description: String,
    /// Number of runs used.
    pub n: usize,
    pub r2: f64,
    /// Residual standard deviation.
    pub residual_sd_s: Seconds,
    /// The parameters this fit estimated, in the order of `covariance`.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Covariance of those parameters (units: products of their units).
    #[serde(default)]
    pub covariance: Vec<Vec<f64>>,
}

/// Cross-validation of the whole model on the calibration's own matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub folds: usize,
    /// Median over runs of |predicted − measured| / measured, out-of-fold.
    pub median_abs_pct_error: f64,
    /// 90th percentile of the same.
    pub p90_abs_pct_error: f64,
    pub n: usize,
}

/// Facts of the node a profile was measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub hostname: String,
    pub kernel: String,
    pub cpus: usize,
    pub memory_bytes: Bytes,
    pub containerd_version: String,
    pub snapshotter: String,
    /// Relevant snapshotter settings (e.g. prefetch, background fetch, chunk size).
    #[serde(default)]
    pub snapshotter_config: BTreeMap<String, String>,
    pub registry: String,
    /// Registry round trip measured with small GETs (s).
    pub registry_rtt_s: Option<Estimate>,
    /// The path to the registry the calibration ran over, as `advisor probe`
    /// measures one (round trip, one and several streams, set-up): its costs
    /// are in the fitted prices, and `advise --network` replaces them by the
    /// asked path's. None in profiles from before it was recorded (see
    /// [`Profile::calibration_link`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
}

/// A calibrated node profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub schema: String,
    /// RFC 3339 time the calibration finished.
    pub created: String,
    pub advisor_version: String,
    pub node: NodeFacts,
    pub parameters: BTreeMap<Param, ParamEstimate>,
    pub fits: BTreeMap<String, FitQuality>,
    pub validation: Option<Validation>,
    /// The raw runs, as JSON Lines file path relative to the profile, if kept separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_file: Option<String>,
    /// Terms of the calibration workload itself (cost per segment and per
    /// process it starts), used by `calibrate --check` to predict calibration
    /// runs; `advise` does not use them (a recorded trace carries them as compute).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workload_terms: BTreeMap<String, f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("profile {path} is not valid JSON for {PROFILE_SCHEMA}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "profile {path} has schema `{found}`; this advisor reads `{PROFILE_SCHEMA}` (re-run `advisor calibrate`)"
    )]
    Schema { path: String, found: String },
    #[error("profile {path} lacks parameter `{param}` (re-run `advisor calibrate`)")]
    Missing { path: String, param: &'static str },
    #[error(
        "profile {path}: parameter `{param}` is {value:?}, which is not a finite non-negative number"
    )]
    Invalid {
        path: String,
        param: &'static str,
        value: f64,
    },
    /// Anything else a calibration cannot have written: a value beyond its
    /// bound, an interval that does not hold its value, a covariance whose
    /// shape does not match its fit, a snapshotter setting that is not a number.
    #[error("profile {path}: {message} (re-run `advisor calibrate`, or restore the file)")]
    Nonsense { path: String, message: String },
}

impl Error {
    /// Every profile error is the user's input or file to fix (exit 1); the
    /// bundled profile is covered by tests.
    pub fn is_user_facing(&self) -> bool {
        true
    }
}

impl Profile {
    /// The path the calibration ran over, whose round trips, set-ups and
    /// transfer its prices hold: the recorded `node.link`; for a profile
    /// without one (calibrated before it was recorded, always on loopback), a
    /// loopback path of the measured `registry_rtt_s` (round trip and set-up)
    /// and no bandwidth limit; without that either, a free one.
    pub fn calibration_link(&self) -> Link {
        self.node.link.unwrap_or_else(|| {
            let rtt = self.node.registry_rtt_s.map_or(0.0, |e| e.value.max(0.0));
            Link::new(rtt, f64::INFINITY)
        })
    }

    /// The fetch rules of the node the profile was measured on (its
    /// snapshotter's `prefetch_size` and `noprefetch`), for the simulator.
    pub fn fetch_config(&self) -> crate::simulate::snapshotter::FetchConfig {
        // `from_json` checked both settings parse.
        let mut f = crate::simulate::snapshotter::FetchConfig::default();
        let cfg = &self.node.snapshotter_config;
        if let Some(v) = cfg.get("prefetch_size").and_then(|v| v.parse().ok()) {
            f.prefetch_size = v;
        }
        if let Some(v) = cfg.get("noprefetch").and_then(|v| v.parse().ok()) {
            f.no_prefetch = v;
        }
        f
    }

    /// Parse and validate a profile; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Profile, Error> {
        // Check the schema first so an old profile gets the right message, not a field error.
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|source| Error::Parse {
            path: origin.into(),
            source,
        })?;
        let found = raw
            .get("schema")
            .and_then(|s| s.as_str())
            .unwrap_or("(none)");
        if found != PROFILE_SCHEMA {
            return Err(Error::Schema {
                path: origin.into(),
                found: found.into(),
            });
        }
        let mut p: Profile = serde_json::from_value(raw).map_err(|source| Error::Parse {
            path: origin.into(),
            source,
        })?;
        // A calibration without prefetched runs or from before coded bytes
        // were priced (older profiles).
        fill_fallbacks(&mut p.parameters);
        for param in Param::ALL {
            let Some(e) = p.parameters.get(&param) else {
                return Err(Error::Missing {
                    path: origin.into(),
                    param: param.name(),
                });
            };
            for v in [
                e.estimate.value,
                e.estimate.low,
                e.estimate.high,
                e.std_error,
            ] {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::Invalid {
                        path: origin.into(),
                        param: param.name(),
                        value: v,
                    });
                }
            }
        }
        p.check().map_err(|message| Error::Nonsense {
            path: origin.into(),
            message,
        })?;
        Ok(p)
    }

    /// What a calibration can have written, beyond presence and sign (those
    /// are checked with their own messages): values within [`MAX_FIXED_S`] /
    /// [`MAX_S_PER_BYTE`], intervals that hold their value, covariances of
    /// their fit's shape with finite entries, snapshotter settings that parse.
    fn check(&self) -> Result<(), String> {
        for (param, e) in &self.parameters {
            let max = if param.unit() == "s/B" {
                MAX_S_PER_BYTE
            } else {
                MAX_FIXED_S
            };
            let (name, unit, est) = (param.name(), param.unit(), &e.estimate);
            if est.high > max {
                return Err(format!(
                    "parameter `{name}` reaches {:?} {unit}, beyond the {max} {unit} a \
                     calibration can measure",
                    est.high
                ));
            }
            if !(est.low <= est.value && est.value <= est.high) {
                return Err(format!(
                    "parameter `{name}`: the interval [{:?}, {:?}] does not hold its value {:?}",
                    est.low, est.high, est.value
                ));
            }
            if !(est.confidence > 0.0 && est.confidence <= 1.0) {
                return Err(format!(
                    "parameter `{name}`: confidence {} is not in (0, 1]",
                    est.confidence
                ));
            }
        }
        for (name, fit) in &self.fits {
            let k = fit.params.len();
            if fit.covariance.len() != k || fit.covariance.iter().any(|row| row.len() != k) {
                let rows: Vec<usize> = fit.covariance.iter().map(Vec::len).collect();
                return Err(format!(
                    "fit `{name}`: the covariance has rows of lengths {rows:?}, not {k} rows of \
                     {k} for its {k} parameter(s)"
                ));
            }
            if let Some(v) = fit.covariance.iter().flatten().find(|v| !v.is_finite()) {
                return Err(format!("fit `{name}`: the covariance holds {v:?}"));
            }
            if let Some((i, v)) = (0..k)
                .map(|i| (i, fit.covariance[i][i]))
                .find(|(_, v)| *v < 0.0)
            {
                return Err(format!(
                    "fit `{name}`: the variance of `{}` is negative ({v:?})",
                    fit.params[i].name()
                ));
            }
        }
        for (term, v) in &self.workload_terms {
            if !(v.is_finite() && (0.0..=MAX_FIXED_S).contains(v)) {
                return Err(format!(
                    "workload term `{term}` is {v:?}, not a time in [0, {MAX_FIXED_S}] s"
                ));
            }
        }
        if let Some(l) = &self.node.link {
            l.validate().map_err(|e| format!("node.link.{e}"))?;
        }
        let cfg = &self.node.snapshotter_config;
        if let Some(v) = cfg.get("prefetch_size")
            && v.parse::<u64>().is_err()
        {
            return Err(format!(
                "node.snapshotter_config.prefetch_size is `{v}`, not a byte count (digits, e.g. \
                 10485760)"
            ));
        }
        if let Some(v) = cfg.get("noprefetch")
            && v.parse::<bool>().is_err()
        {
            return Err(format!(
                "node.snapshotter_config.noprefetch is `{v}`, not `true` or `false`"
            ));
        }
        Ok(())
    }

    /// The bundled default profile.
    pub fn default_profile() -> Result<Profile, Error> {
        Profile::from_json(DEFAULT_PROFILE_JSON, "calibration/default.json (bundled)")
    }

    pub fn load(path: &Path) -> Result<Profile, Error> {
        let origin = path.display().to_string();
        let text =
            crate::input::read_text(path, crate::input::MAX_INPUT_TEXT).map_err(|source| {
                Error::Read {
                    path: origin.clone(),
                    source,
                }
            })?;
        Profile::from_json(&text, &origin)
    }

    /// A parameter's point value. Every parameter is present after validation.
    pub fn value(&self, p: Param) -> f64 {
        self.parameters
            .get(&p)
            .map(|e| e.estimate.value)
            .unwrap_or(0.0)
    }

    pub fn get(&self, p: Param) -> Option<&ParamEstimate> {
        self.parameters.get(&p)
    }

    /// Covariance of two parameters: from their common fit when they share one,
    /// 0 across fits (fits are independent regressions on disjoint measurements),
    /// the squared standard error on the diagonal when no covariance was stored.
    pub fn covariance(&self, a: Param, b: Param) -> f64 {
        let (Some(ea), Some(eb)) = (self.parameters.get(&a), self.parameters.get(&b)) else {
            return 0.0;
        };
        if ea.fit == eb.fit
            && let Some(f) = self.fits.get(&ea.fit)
            && let (Some(i), Some(j)) = (
                f.params.iter().position(|p| *p == a),
                f.params.iter().position(|p| *p == b),
            )
            && let Some(v) = f.covariance.get(i).and_then(|r| r.get(j))
        {
            return *v;
        }
        if a == b {
            ea.std_error * ea.std_error
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_index_matches_all_order_and_names_round_trip() {
        for (i, p) in Param::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
        }
    }

    #[test]
    fn the_bundled_profile_is_valid_and_cross_validated() {
        let p = Profile::default_profile().unwrap();
        let v = p
            .validation
            .clone()
            .expect("the default profile carries its cross-validation");
        assert!(v.n >= 10 && v.median_abs_pct_error > 0.0);
        // Its prefetch terms were measured, and loading keeps them.
        for (param, _) in PREFETCH_FALLBACK {
            assert_eq!(p.get(param).unwrap().fit, "prefetch", "{param:?}");
        }
        for param in Param::ALL {
            let e = p.get(param).unwrap();
            assert!(
                e.estimate.low <= e.estimate.value && e.estimate.value <= e.estimate.high,
                "{param:?}"
            );
        }
    }

    #[test]
    fn wrong_schema_and_missing_parameters_are_clear_errors() {
        let e = Profile::from_json(r#"{"schema":"advisor.profile/v0"}"#, "p.json").unwrap_err();
        assert!(e.to_string().contains("schema `advisor.profile/v0`"), "{e}");
        let e = Profile::from_json("{nope", "p.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("profile p.json is not valid JSON"),
            "{e}"
        );
        let minimal = serde_json::json!({
            "schema": PROFILE_SCHEMA, "created": "x", "advisor_version": "0", "node": NodeFacts::default(),
            "parameters": {}, "fits": {}, "validation": null
        });
        let e = Profile::from_json(&minimal.to_string(), "p.json").unwrap_err();
        assert!(e.to_string().contains("lacks parameter `resolve_s`"), "{e}");
    }

    #[test]
    fn a_profile_without_prefetch_terms_takes_the_on_demand_ones() {
        let p = Profile::default_profile().unwrap();
        let mut raw: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE_JSON).unwrap();
        let params = raw["parameters"].as_object_mut().unwrap();
        for (param, _) in PREFETCH_FALLBACK {
            params.remove(param.name());
        }
        params.remove("fuse_open_s");
        // Only the prefetch and coded terms have a fallback.
        let e = Profile::from_json(&raw.to_string(), "old.json").unwrap_err();
        assert!(
            e.to_string().contains("lacks parameter `fuse_open_s`"),
            "{e}"
        );
        raw["parameters"]["fuse_open_s"] = serde_json::to_value(p.get(Param::FuseOpenS)).unwrap();
        let old = Profile::from_json(&raw.to_string(), "old.json").unwrap();
        for (param, from) in PREFETCH_FALLBACK {
            let e = old.get(param).unwrap();
            assert_eq!(e.estimate, old.get(from).unwrap().estimate, "{param:?}");
            assert_eq!(e.fit, PREFETCH_FALLBACK_FIT);
        }
    }

    #[test]
    fn a_profile_from_before_coded_bytes_were_priced_loads_them_as_zero_and_unmeasured() {
        let mut raw: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE_JSON).unwrap();
        let params = raw["parameters"].as_object_mut().unwrap();
        for param in CODED_PARAMS {
            params.remove(param.name());
        }
        let old = Profile::from_json(&raw.to_string(), "old.json").unwrap();
        for param in CODED_PARAMS {
            let e = old.get(param).unwrap();
            assert_eq!((e.estimate.value, e.estimate.high), (0.0, 0.0), "{param:?}");
            assert_eq!(e.fit, CODED_FALLBACK_FIT);
        }
        // A measured value is kept as written.
        let v = serde_json::json!({"value": 7e-9, "low": 5e-9, "high": 9e-9, "confidence": 0.95,
            "std_error": 1e-9, "unit": "s/B", "fit": "eager-unpack"});
        raw["parameters"]["unpack_s_per_coded_byte"] = v;
        let new = Profile::from_json(&raw.to_string(), "new.json").unwrap();
        assert_eq!(new.value(Param::UnpackSPerCodedByte), 7e-9);
        assert_eq!(
            new.get(Param::UnpackSPerCodedByte).unwrap().fit,
            "eager-unpack"
        );
    }

    /// The bundled profile with `edit` applied, loaded as `bad.json`.
    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut raw: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE_JSON).unwrap();
        edit(&mut raw);
        Profile::from_json(&raw.to_string(), "bad.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn nonsense_profiles_are_rejected_naming_file_and_field() {
        for (v, want) in [
            ("lots", "`lots`, not a byte count"),
            ("-1", "`-1`, not a byte count"),
        ] {
            let e = edited(|p| p["node"]["snapshotter_config"]["prefetch_size"] = v.into());
            assert!(
                e.starts_with("profile bad.json: node.snapshotter_config.prefetch_size is"),
                "{e}"
            );
            assert!(e.contains(want), "{e}");
        }
        let e = edited(|p| p["node"]["snapshotter_config"]["noprefetch"] = "maybe".into());
        assert!(e.contains("noprefetch is `maybe`"), "{e}");
        let e = edited(|p| p["fits"]["lazy-io"]["covariance"] = serde_json::json!([[1.0]]));
        assert!(
            e.contains("fit `lazy-io`: the covariance has rows of lengths [1], not 7 rows"),
            "{e}"
        );
        let e = edited(|p| {
            p["parameters"]["resolve_s"]["value"] = 1e308.into();
            p["parameters"]["resolve_s"]["high"] = 1e308.into();
        });
        assert!(
            e.contains("`resolve_s` reaches 1e308 s, beyond the 3600 s"),
            "{e}"
        );
        let e = edited(|p| p["parameters"]["range_s_per_byte"]["high"] = 0.5.into());
        assert!(e.contains("`range_s_per_byte` reaches 0.5 s/B"), "{e}");
        let e = edited(|p| p["parameters"]["resolve_s"]["value"] = 10.0.into());
        assert!(e.contains("does not hold its value 10"), "{e}");
        let e = edited(|p| p["workload_terms"]["lazy_segment_s"] = 1e300.into());
        assert!(e.contains("workload term `lazy_segment_s` is 1e300"), "{e}");
        let e = edited(|p| p["parameters"]["resolve_s"]["std_error"] = (-1.0).into());
        assert!(e.contains("`resolve_s` is -1"), "{e}");
    }

    #[test]
    fn a_profile_without_a_link_loads_and_takes_loopback_at_its_round_trip() {
        let p = Profile::default_profile().unwrap();
        assert_eq!(p.node.link, None);
        let rtt = p.node.registry_rtt_s.unwrap().value;
        let l = p.calibration_link();
        assert_eq!((l.rtt_s, l.setup_s), (rtt, rtt));
        assert!(l.stream_bytes_per_s.is_infinite() && l.total_bytes_per_s.is_infinite());
        // Without a round trip either: a free path (what `advise` took before).
        let mut q = p.clone();
        q.node.registry_rtt_s = None;
        assert_eq!(q.calibration_link().rtt_s, 0.0);
        assert_eq!(q.calibration_link().setup_s, 0.0);
        // Not written when absent, so old profiles and runs files stay as they are.
        assert!(!serde_json::to_string(&p.node).unwrap().contains("link"));
    }

    #[test]
    fn a_recorded_link_round_trips_and_is_the_calibration_link() {
        let mut p = Profile::default_profile().unwrap();
        let link = Link {
            rtt_s: 0.005,
            stream_bytes_per_s: 100e6,
            total_bytes_per_s: 250e6,
            setup_s: 0.008,
        };
        p.node.link = Some(link);
        let text = serde_json::to_string(&p).unwrap();
        let back = Profile::from_json(&text, "p.json").unwrap();
        assert_eq!(back.node.link, Some(link));
        assert_eq!(back.calibration_link(), link);
    }

    #[test]
    fn a_link_with_nonsense_numbers_is_refused_naming_file_and_field() {
        let link = serde_json::json!({"rtt_s": 0.005, "stream_bytes_per_s": 1e8,
            "total_bytes_per_s": 2.5e8, "setup_s": 0.008});
        for (field, v, want) in [
            (
                "rtt_s",
                -0.001,
                "node.link.rtt_s must be a time ≥ 0 s, not -0.001",
            ),
            (
                "setup_s",
                -1.0,
                "node.link.setup_s must be a time ≥ 0 s, not -1",
            ),
            (
                "stream_bytes_per_s",
                0.0,
                "node.link.stream_bytes_per_s must be a bandwidth > 0 bytes/s, not 0",
            ),
            (
                "total_bytes_per_s",
                -5.0,
                "node.link.total_bytes_per_s must be a bandwidth > 0 bytes/s, not -5",
            ),
        ] {
            let e = edited(|p| {
                p["node"]["link"] = link.clone();
                p["node"]["link"][field] = v.into();
            });
            assert!(e.starts_with("profile bad.json: "), "{e}");
            assert!(e.contains(want), "{e}");
        }
        let e = edited(|p| p["node"]["link"] = serde_json::json!({"rtt_s": 0.005}));
        assert!(
            e.contains("not valid JSON") && e.contains("stream_bytes_per_s"),
            "{e}"
        );
    }

    #[test]
    fn fetch_config_follows_the_profiled_snapshotter() {
        let p = Profile::default_profile().unwrap();
        assert_eq!(p.node.snapshotter_config["prefetch_size"], "10485760");
        assert_eq!(p.fetch_config().prefetch_size, 10_485_760);
        let mut q = p.clone();
        q.node
            .snapshotter_config
            .insert("noprefetch".into(), "true".into());
        assert!(q.fetch_config().no_prefetch);
        q.node.snapshotter_config.clear();
        let d = crate::simulate::snapshotter::FetchConfig::default();
        assert_eq!(
            (q.fetch_config().prefetch_size, q.fetch_config().no_prefetch),
            (d.prefetch_size, d.no_prefetch)
        );
    }
}
