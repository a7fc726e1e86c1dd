//! The image spec: what `advisor image build` generates, as JSON or TOML.
//!
//! Owns the spec's schema (docs/images.md documents every field), parsing with
//! errors that name the file and the field (`layers[1].groups[0].size`), and
//! the checks that need no expansion (ranges, patterns, modes). Checks over the
//! expanded files (duplicate paths, prioritized paths) live in `plan`.
use super::error::Error;
use crate::containerd::run::DEFAULT_PATH_ENV;
use crate::estargz::writer::DEFAULT_CHUNK_SIZE;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Default gzip level of both forms: what containerd compresses layers with
/// (archive/compression `gzip.NewWriter`: Go's default, 6). ctr-remote's
/// eStargz uses 9 (`gzip.BestCompression`); on generated text 6 is within 2 % of its
/// ratio at about 1.5× its speed (docs/images.md, `benches/image.rs`).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Default entrypoint with the busybox base: the spec's (or `ctr run`'s)
/// arguments are one shell command line.
pub const DEFAULT_ENTRYPOINT: [&str; 2] = ["/bin/sh", "-c"];
/// Default command: prints a ready line and exits.
pub const DEFAULT_CMD: [&str; 1] = ["echo ready"];
/// Largest number of files one group may generate: a bound against typos
/// (`1e9`) that would plan for hours; about 200 MiB of planned paths.
pub const MAX_GROUP_FILES: u64 = 2_000_000;

/// A parsed spec (not yet expanded). Field docs are the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Free text, shown in the report.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text, ignored.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of every size and content draw. Same spec and seed, same digests.
    #[serde(default)]
    pub seed: u64,
    /// The bottom layer: `busybox` (Debian's static busybox, applets, /etc) or `none`.
    #[serde(default)]
    pub base: Base,
    /// Modification time of every entry: seconds since the epoch or RFC 3339. Default 0.
    #[serde(default)]
    pub mtime: Mtime,
    /// Uncompressed bytes per eStargz chunk.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: Size,
    /// gzip level 0-9 of both forms.
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// Layers above the base, bottom first.
    pub layers: Vec<LayerSpec>,
    /// Image entrypoint (default `["/bin/sh", "-c"]` with the busybox base).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Image command (default `["echo ready"]` with the busybox base).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Environment, `KEY=value` (default a standard PATH).
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Working directory (default `/`).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Absolute paths written first in their layer's eStargz form, before
    /// `.prefetch.landmark` (what `advise --prefetch-list` writes).
    #[serde(default)]
    pub prioritize: Vec<String>,
}

/// The base layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    #[default]
    Busybox,
    None,
}

/// One layer: groups of generated files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Free text, in the report and the config's history.
    #[serde(default)]
    pub name: Option<String>,
    pub groups: Vec<GroupSpec>,
}

/// A group of generated files in one directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Directory the files go in (absolute, or relative to `/`).
    #[serde(default = "default_dir")]
    pub dir: String,
    /// Name pattern: `{i}` is the file index, `{i:05}` zero-pads it to 5
    /// digits, `{i/100}` and `{i%100}` divide it (subdirectories: `d{i/100}/f{i}`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Number of files.
    pub count: u64,
    /// Size of each file.
    pub size: SizeSpec,
    /// What the files hold.
    #[serde(default)]
    pub content: Content,
    /// Permission bits as an octal string (default `"0644"`).
    #[serde(default)]
    pub mode: Option<String>,
    /// Write every file of the group first in the eStargz form (prefetched).
    #[serde(default)]
    pub prioritize: bool,
}

fn default_dir() -> String {
    "/".into()
}

fn default_name() -> String {
    "f{i:06}".into()
}

fn default_chunk_size() -> Size {
    Size(DEFAULT_CHUNK_SIZE)
}

fn default_gzip_level() -> u32 {
    DEFAULT_GZIP_LEVEL
}

/// File content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// Seeded ChaCha8 bytes: incompressible (gzip ratio 1.0).
    #[default]
    Random,
    /// Lines of words from a fixed list: about 3:1 with gzip, like source code.
    Text,
    /// Zero bytes: compress about 1000:1.
    Zeros,
    /// Bytes like bf16 tensor weights: each pair a random low byte and a high
    /// byte from eight values (sign and a narrow exponent range). Barely
    /// compressible (gzip about 1.2:1), but every byte Huffman-coded — unlike
    /// `random`, which compressors store — so it decompresses slowly, as real
    /// model weights and NumPy arrays do.
    Weights,
}

/// A byte count: an integer, or a string with a unit (`"16KiB"`, `"1.5MiB"`,
/// `"2GB"`; K/M/G = KiB/MiB/GiB, KB/MB/GB = powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: bytes as an integer, or a string like \"16KiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Size, E> {
                Err(E::custom(format!(
                    "size {v} is not a whole number of bytes; write a string such as \"1.5MiB\""
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                crate::trace::synth::parse_size(v).map(Size).map_err(|e| {
                    E::custom(format!("{e}; expected e.g. \"16KiB\", \"4MiB\", \"1GB\""))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// How file sizes are drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Every file has this size: `"16KiB"` or `16384`.
    Fixed(Size),
    /// Uniform in `[min, max]`: `{"min": "1KiB", "max": "64KiB"}`.
    Range { min: Size, max: Size },
    /// Log-normal: `{"lognormal": {"median": "8KiB", "sigma": 1.0, "min": 1, "max": "1MiB"}}`.
    Lognormal { lognormal: LognormalSpec },
}

/// A log-normal size distribution: `median · e^(sigma · N(0,1))`, clamped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LognormalSpec {
    pub median: Size,
    pub sigma: f64,
    #[serde(default)]
    pub min: Option<Size>,
    #[serde(default)]
    pub max: Option<Size>,
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Map {
            min: Option<Size>,
            max: Option<Size>,
            lognormal: Option<LognormalSpec>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a size (\"16KiB\"), a range ({\"min\": …, \"max\": …}) or a distribution ({\"lognormal\": {\"median\": …, \"sigma\": …}})",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Fixed(Size(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeSpec, E> {
                Size::deserialize(de::value::I64Deserializer::new(v)).map(SizeSpec::Fixed)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SizeSpec, E> {
                Size::deserialize(de::value::F64Deserializer::new(v)).map(SizeSpec::Fixed)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeSpec, E> {
                Size::deserialize(de::value::StrDeserializer::new(v)).map(SizeSpec::Fixed)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SizeSpec, A::Error> {
                let m = Map::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match m {
                    Map {
                        min: Some(min),
                        max: Some(max),
                        lognormal: None,
                    } => Ok(SizeSpec::Range { min, max }),
                    Map {
                        min: None,
                        max: None,
                        lognormal: Some(lognormal),
                    } => Ok(SizeSpec::Lognormal { lognormal }),
                    _ => Err(de::Error::custom(
                        "a size range needs both `min` and `max`; a distribution is {\"lognormal\": {\"median\": …, \"sigma\": …}} alone",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Modification time: seconds since the epoch, or an RFC 3339 string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Mtime(pub u64);

impl<'de> Deserialize<'de> for Mtime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Mtime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "seconds since the epoch, or an RFC 3339 time like \"2024-01-01T00:00:00Z\"",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mtime, E> {
                Ok(Mtime(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mtime, E> {
                u64::try_from(v)
                    .map(Mtime)
                    .map_err(|_| E::custom(format!("mtime {v} is before 1970")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mtime, E> {
                let t = humantime::parse_rfc3339(v).map_err(|e| {
                    E::custom(format!(
                        "`{v}` is not an RFC 3339 time ({e}); e.g. \"2024-01-01T00:00:00Z\""
                    ))
                })?;
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|_| E::custom(format!("`{v}` is before 1970")))?;
                Ok(Mtime(secs.as_secs()))
            }
            /// A TOML datetime (`mtime = 2024-01-01T00:00:00Z`, unquoted) reaches
            /// serde as a one-entry map holding its text.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Mtime, A::Error> {
                match map.next_entry::<String, String>()? {
                    Some((_, text)) => self.visit_str(&text),
                    None => Err(de::Error::custom("an empty table is not a time")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The spec's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Json,
    Toml,
}

impl SpecFormat {
    /// From the extension; otherwise JSON when the text starts with `{`.
    pub fn detect(path: &Path, text: &str) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => SpecFormat::Toml,
            Some(e) if e.eq_ignore_ascii_case("json") => SpecFormat::Json,
            _ if text.trim_start().starts_with('{') => SpecFormat::Json,
            _ => SpecFormat::Toml,
        }
    }
}

/// Read, parse and check a spec file.
pub fn load(path: &Path) -> Result<Spec, Error> {
    let text = crate::input::read_text(path, crate::input::MAX_INPUT_TEXT).map_err(|source| {
        Error::SpecRead {
            path: path.to_path_buf(),
            source,
        }
    })?;
    parse(path, &text)
}

/// Parse and check spec text; `path` names it in errors and picks the format.
pub fn parse(path: &Path, text: &str) -> Result<Spec, Error> {
    let spec: Spec = match SpecFormat::detect(path, text) {
        SpecFormat::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = field_path(e.path());
                let inner = e.into_inner();
                let msg = inner.to_string();
                // serde_json appends " at line L column C": keep it, it finds the spot.
                spec_error(path, &field, msg)
            })?;
            de.end()
                .map_err(|e| spec_error(path, "", format!("trailing text after the spec: {e}")))?;
            spec
        }
        SpecFormat::Toml => {
            let de = toml::Deserializer::parse(text)
                .map_err(|e| spec_error(path, "", toml_message(&e, text)))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = field_path(e.path());
                let inner = e.into_inner();
                spec_error(path, &field, toml_message(&inner, text))
            })?
        }
    };
    spec.check(path)?;
    Ok(spec)
}

/// `a.b[0].c` from serde_path_to_error's path (`.` for the root).
fn field_path(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." { String::new() } else { s }
}

/// toml's message and where: `… at line L column C` (1-based).
pub(crate) fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{msg} at line {line} column {column}")
        }
        None => msg,
    }
}

fn spec_error(path: &Path, field: &str, problem: String) -> Error {
    Error::Spec {
        path: path.to_path_buf(),
        field: field.to_string(),
        problem,
    }
}

impl Spec {
    /// Checks that need no expansion. Errors name the field.
    fn check(&self, path: &Path) -> Result<(), Error> {
        let bad = |field: String, problem: String| Err(spec_error(path, &field, problem));
        if self.gzip_level > 9 {
            return bad(
                "gzip_level".into(),
                format!("{} is out of range 0-9", self.gzip_level),
            );
        }
        let max_chunk = crate::estargz::writer::MAX_CHUNK_SIZE;
        if self.chunk_size.0 == 0 || self.chunk_size.0 > max_chunk {
            return bad(
                "chunk_size".into(),
                format!(
                    "{} bytes is out of range 1 B - {}",
                    self.chunk_size.0,
                    crate::units::Bytes(max_chunk)
                ),
            );
        }
        if self.layers.is_empty() && self.base == Base::None {
            return bad(
                "layers".into(),
                "the image has no layer: add a layer or keep the busybox base".into(),
            );
        }
        if let Some(w) = &self.workdir
            && !w.starts_with('/')
        {
            return bad("workdir".into(), format!("`{w}` is not an absolute path"));
        }
        for (i, e) in self.env.iter().flatten().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return bad(format!("env[{i}]"), format!("`{e}` is not KEY=value"));
            }
        }
        for (li, layer) in self.layers.iter().enumerate() {
            if layer.groups.is_empty() {
                return bad(
                    format!("layers[{li}].groups"),
                    "a layer needs at least one group of files".into(),
                );
            }
            for (gi, g) in layer.groups.iter().enumerate() {
                let field = |f: &str| format!("layers[{li}].groups[{gi}].{f}");
                if g.count > MAX_GROUP_FILES {
                    return bad(
                        field("count"),
                        format!(
                            "{} files is more than the limit of {MAX_GROUP_FILES} per group; split the group",
                            g.count
                        ),
                    );
                }
                if let Err(p) = clean_dir(&g.dir) {
                    return bad(field("dir"), p);
                }
                if let Err(p) = NamePattern::parse(&g.name) {
                    return bad(field("name"), p);
                }
                if let Some(m) = &g.mode
                    && let Err(p) = parse_mode(m)
                {
                    return bad(field("mode"), p);
                }
                if let Err(p) = g.size.check() {
                    return bad(field("size"), p);
                }
            }
        }
        Ok(())
    }

    /// The entrypoint the image gets.
    pub fn entrypoint(&self) -> Option<Vec<String>> {
        match (&self.entrypoint, self.base) {
            (Some(e), _) => Some(e.clone()),
            (None, Base::Busybox) => {
                Some(DEFAULT_ENTRYPOINT.iter().map(|s| s.to_string()).collect())
            }
            (None, Base::None) => None,
        }
    }

    /// The command the image gets.
    pub fn cmd(&self) -> Option<Vec<String>> {
        match (&self.cmd, self.base) {
            (Some(c), _) => Some(c.clone()),
            (None, Base::Busybox) if self.entrypoint.is_none() => {
                Some(DEFAULT_CMD.iter().map(|s| s.to_string()).collect())
            }
            _ => None,
        }
    }

    /// The environment the image gets; by default the PATH containerd gives
    /// an image that sets none, so the image runs the same either way.
    pub fn env(&self) -> Vec<String> {
        self.env
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_PATH_ENV.to_string()])
    }
}

impl SizeSpec {
    fn check(&self) -> Result<(), String> {
        match self {
            SizeSpec::Fixed(_) => Ok(()),
            SizeSpec::Range { min, max } => {
                if min > max {
                    Err(format!(
                        "min ({} bytes) is larger than max ({} bytes)",
                        min.0, max.0
                    ))
                } else {
                    Ok(())
                }
            }
            SizeSpec::Lognormal { lognormal: l } => {
                if l.median.0 == 0 {
                    return Err("lognormal median must be at least 1 byte".into());
                }
                if !l.sigma.is_finite() || l.sigma < 0.0 || l.sigma > 10.0 {
                    return Err(format!(
                        "lognormal sigma {} is out of range 0-10 (1.0 spreads sizes over about 7× either side of the median)",
                        l.sigma
                    ));
                }
                if let (Some(a), Some(b)) = (l.min, l.max)
                    && a > b
                {
                    return Err(format!(
                        "lognormal min ({} bytes) is larger than max ({} bytes)",
                        a.0, b.0
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A directory of the spec as a clean relative path (`""` for the root).
pub fn clean_dir(dir: &str) -> Result<String, String> {
    crate::estargz::table::normalize_path(dir)
        .ok_or_else(|| format!("`{dir}` escapes the image root (a `..` component)"))
}

/// Permission bits from an octal string (`"0755"`, `"755"`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "`{s}` is not an octal permission mode; write e.g. \"0644\" or \"0755\""
        )),
    }
}

/// A compiled name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Index {
        div: u64,
        modulo: Option<u64>,
        width: usize,
    },
}

impl NamePattern {
    /// Parse `f{i:05}.bin`, `d{i/100}/f{i%100:02}`; `{{` and `}}` are braces.
    pub fn parse(p: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = p.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => {
                    return Err(format!(
                        "`{p}` has an unmatched `}}` (write `}}}}` for a brace)"
                    ));
                }
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => inner.push(c),
                            None => {
                                return Err(format!("`{p}` has an unclosed `{{`"));
                            }
                        }
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(parse_placeholder(p, &inner)?);
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if p.starts_with('/') {
            return Err(format!(
                "`{p}` starts with `/`; names are relative to the group's `dir`"
            ));
        }
        let pat = NamePattern { parts };
        let sample = pat.render(0);
        if sample.is_empty()
            || sample
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "`{p}` gives `{sample}` for file 0; each path component must be a non-empty name (no `.`, `..` or `//`)"
            ));
        }
        Ok(pat)
    }

    /// The name of file `i`.
    pub fn render(&self, i: u64) -> String {
        let mut s = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => s.push_str(t),
                Part::Index { div, modulo, width } => {
                    let mut v = i / div;
                    if let Some(m) = modulo {
                        v %= m;
                    }
                    s.push_str(&format!("{v:0width$}"));
                }
            }
        }
        s
    }

    /// Whether the pattern mentions the index at all.
    pub fn has_index(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Index { .. }))
    }
}

fn parse_placeholder(pattern: &str, inner: &str) -> Result<Part, String> {
    let bad = || {
        format!(
            "`{pattern}`: `{{{inner}}}` is not a placeholder; use {{i}}, {{i:05}}, {{i/100}} or {{i%100:02}}"
        )
    };
    let (expr, fmt) = match inner.split_once(':') {
        Some((e, f)) => (e.trim(), Some(f.trim())),
        None => (inner.trim(), None),
    };
    let rest = expr.strip_prefix('i').ok_or_else(bad)?.trim();
    let mut div = 1;
    let mut modulo = None;
    // At most one `/N` then one `%N`, in that order: `{i/100%10}`.
    let mut r = rest;
    if let Some(x) = r.strip_prefix('/') {
        let end = x.find('%').unwrap_or(x.len());
        div = x[..end].trim().parse::<u64>().map_err(|_| bad())?;
        if div == 0 {
            return Err(format!("`{pattern}`: division by zero in `{{{inner}}}`"));
        }
        r = &x[end..];
    }
    if let Some(x) = r.strip_prefix('%') {
        let m = x.trim().parse::<u64>().map_err(|_| bad())?;
        if m == 0 {
            return Err(format!("`{pattern}`: modulo zero in `{{{inner}}}`"));
        }
        modulo = Some(m);
        r = "";
    }
    if !r.trim().is_empty() {
        return Err(bad());
    }
    let width = match fmt {
        None => 0,
        Some(f) => {
            let digits = f.strip_prefix('0').unwrap_or(f);
            let w: usize = digits.parse().map_err(|_| bad())?;
            if w > 20 {
                return Err(format!("`{pattern}`: width {w} is more than 20 digits"));
            }
            w
        }
    };
    Ok(Part::Index { div, modulo, width })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Spec, Error> {
        parse(Path::new("spec.json"), text)
    }

    #[test]
    fn a_minimal_spec_parses_with_defaults() {
        let s = p(r#"{"layers": [{"groups": [{"count": 3, "size": "4KiB"}]}]}"#).unwrap();
        assert_eq!(s.seed, 0);
        assert_eq!(s.base, Base::Busybox);
        assert_eq!(s.chunk_size, Size(DEFAULT_CHUNK_SIZE));
        assert_eq!(s.gzip_level, DEFAULT_GZIP_LEVEL);
        let g = &s.layers[0].groups[0];
        assert_eq!(g.size, SizeSpec::Fixed(Size(4096)));
        assert_eq!(g.content, Content::Random);
        assert_eq!(g.dir, "/");
        assert_eq!(s.entrypoint().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(s.cmd().unwrap(), ["echo ready"]);
    }

    #[test]
    fn sizes_ranges_and_distributions_parse() {
        let s = p(r#"{"layers": [{"groups": [
            {"count": 1, "size": 100},
            {"count": 1, "size": {"min": "1KiB", "max": "2KiB"}},
            {"count": 1, "size": {"lognormal": {"median": "8KiB", "sigma": 1.5, "max": "1MiB"}}}
        ]}]}"#)
        .unwrap();
        let g = &s.layers[0].groups;
        assert_eq!(g[0].size, SizeSpec::Fixed(Size(100)));
        assert_eq!(
            g[1].size,
            SizeSpec::Range {
                min: Size(1024),
                max: Size(2048)
            }
        );
        match &g[2].size {
            SizeSpec::Lognormal { lognormal } => {
                assert_eq!(lognormal.median, Size(8192));
                assert_eq!(lognormal.max, Some(Size(1 << 20)));
                assert_eq!(lognormal.min, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let e = p(r#"{"layers": [{"groups": [{"count": 1, "size": "12 parsecs"}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("image spec spec.json: `layers[0].groups[0].size`: "),
            "{e}"
        );
        assert!(e.contains("unknown unit `parsecs`"), "{e}");
        let e = p(r#"{"layers": [{"groups": [{"count": 1, "size": 1, "colour": "red"}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("line 1 column"), "{e}");
        let e = p(r#"{"layers": [{"groups": [{"count": 1, "size": {"min": 5, "max": 2}}]}]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "image spec spec.json: `layers[0].groups[0].size`: min (5 bytes) is larger than max (2 bytes)"
        );
        let e = p(r#"{"layers": [{"groups": [{"count": 1, "size": {"min": 5}}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs both `min` and `max`"), "{e}");
        let e = p(r#"{"gzip_level": 11, "layers": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`gzip_level`: 11 is out of range 0-9"), "{e}");
        let e = p(r#"{"base": "none", "layers": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`layers`: the image has no layer"), "{e}");
        let e = p(r#"{"layers": [{"groups": [{"dir": "/a/../../etc", "count": 1, "size": 1}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`layers[0].groups[0].dir`"), "{e}");
        assert!(e.contains("escapes"), "{e}");
        let e = p(r#"{"layers": [{"groups": [{"mode": "rwx", "count": 1, "size": 1}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`layers[0].groups[0].mode`"), "{e}");
        let e = p(r#"{"layers": [{"groups": [{"count": 1, "size": 1.5}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a whole number"), "{e}");
        let e = p("{\"layers\": [").unwrap_err().to_string();
        assert!(e.starts_with("image spec spec.json"), "{e}");
    }

    #[test]
    fn toml_specs_parse_and_errors_give_the_line() {
        let text = "seed = 7\nmtime = \"2024-01-01T00:00:00Z\"\n\n[[layers]]\nname = \"app\"\n\n[[layers.groups]]\ndir = \"/app\"\ncount = 2\nsize = \"1KiB\"\ncontent = \"text\"\n";
        let s = parse(Path::new("s.toml"), text).unwrap();
        assert_eq!(s.seed, 7);
        assert_eq!(s.mtime, Mtime(1_704_067_200));
        assert_eq!(s.layers[0].groups[0].content, Content::Text);
        let unquoted = text.replace("\"2024-01-01T00:00:00Z\"", "2024-01-01T00:00:00Z");
        let s2 = parse(Path::new("s.toml"), &unquoted).unwrap();
        assert_eq!(s2.mtime, Mtime(1_704_067_200), "TOML datetime");
        let bad = text.replace("content = \"text\"", "content = \"binary\"");
        let e = parse(Path::new("s.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with("image spec s.toml: `layers[0].groups[0].content`: "),
            "{e}"
        );
        assert!(e.contains("line 11"), "{e}");
    }

    #[test]
    fn name_patterns_render_and_reject_bad_forms() {
        let n = NamePattern::parse("f{i:05}.bin").unwrap();
        assert_eq!(n.render(42), "f00042.bin");
        let n = NamePattern::parse("d{i/100:02}/m{i%100}.py").unwrap();
        assert_eq!(n.render(1234), "d12/m34.py");
        let n = NamePattern::parse("{{x}}-{i}").unwrap();
        assert_eq!(n.render(3), "{x}-3");
        assert!(!NamePattern::parse("config.yaml").unwrap().has_index());
        for bad in [
            "f{j}", "f{i", "f}", "../f{i}", "/abs{i}", "a//{i}", "f{i/0}", "{i:x}",
        ] {
            assert!(NamePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_are_octal_strings() {
        assert_eq!(parse_mode("0755").unwrap(), 0o755);
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("077777").is_err());
    }
}
