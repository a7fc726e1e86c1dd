//! Units and estimates shared by every stage.
//!
//! Results carry explicit units (`Bytes`, `Seconds`) and every estimate carries
//! its interval (after criterion's `Estimate`). Serialized as plain numbers so
//! JSON output stays easy to consume.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A byte count.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Bytes(pub u64);

/// A duration in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

impl Seconds {
    pub fn from_duration(d: std::time::Duration) -> Self {
        Seconds(d.as_secs_f64())
    }
}

impl std::ops::Add for Seconds {
    type Output = Seconds;
    fn add(self, o: Seconds) -> Seconds {
        Seconds(self.0 + o.0)
    }
}

impl std::ops::Add for Bytes {
    type Output = Bytes;
    fn add(self, o: Bytes) -> Bytes {
        Bytes(self.0 + o.0)
    }
}

impl Seconds {
    pub const ZERO: Seconds = Seconds(0.0);

    /// The larger of two durations (`f64::max`: a NaN loses to a number).
    pub fn max(self, o: Seconds) -> Seconds {
        Seconds(self.0.max(o.0))
    }

    /// The smaller of two durations (`f64::min`: a NaN loses to a number).
    pub fn min(self, o: Seconds) -> Seconds {
        Seconds(self.0.min(o.0))
    }
}

impl std::ops::Sub for Seconds {
    type Output = Seconds;
    fn sub(self, o: Seconds) -> Seconds {
        Seconds(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Seconds {
    fn add_assign(&mut self, o: Seconds) {
        self.0 += o.0;
    }
}

impl std::ops::Mul<f64> for Seconds {
    type Output = Seconds;
    fn mul(self, k: f64) -> Seconds {
        Seconds(self.0 * k)
    }
}

impl std::ops::Div<f64> for Seconds {
    type Output = Seconds;
    fn div(self, k: f64) -> Seconds {
        Seconds(self.0 / k)
    }
}

/// The ratio of two durations, a plain number.
impl std::ops::Div for Seconds {
    type Output = f64;
    fn div(self, o: Seconds) -> f64 {
        self.0 / o.0
    }
}

impl Bytes {
    pub const ZERO: Bytes = Bytes(0);

    /// The count as a float, for rates and fractions.
    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    pub fn saturating_add(self, o: Bytes) -> Bytes {
        Bytes(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: Bytes) -> Bytes {
        Bytes(self.0.saturating_sub(o.0))
    }
}

impl std::ops::Sub for Bytes {
    type Output = Bytes;
    fn sub(self, o: Bytes) -> Bytes {
        Bytes(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Bytes {
    fn add_assign(&mut self, o: Bytes) {
        self.0 += o.0;
    }
}

impl std::iter::Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(it: I) -> Bytes {
        Bytes(it.map(|b| b.0).sum())
    }
}

impl std::iter::Sum for Seconds {
    fn sum<I: Iterator<Item = Seconds>>(it: I) -> Seconds {
        Seconds(it.map(|s| s.0).sum())
    }
}

impl fmt::Display for Bytes {
    /// Human form with binary prefixes: `512 B`, `4.0 KiB`, `1.93 GiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut v = self.0 as f64 / 1024.0;
        let mut i = 0;
        // Compare the value as it will print, so rounding carries into the
        // next unit and precision ("1.00 MiB", not "1024 KiB"; "10.0", not "10.00").
        while v.round() >= 1024.0 && i < UNITS.len() - 1 {
            v /= 1024.0;
            i += 1;
        }
        let prec = if v < 9.995 {
            2
        } else if v < 99.95 {
            1
        } else {
            0
        };
        write!(f, "{v:.prec$} {}", UNITS[i])
    }
}

impl fmt::Display for Seconds {
    /// Human form: `850 µs`, `12.3 ms`, `4.56 s`, `2m 05s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if !s.is_finite() {
            return write!(f, "{s}");
        }
        let a = s.abs();
        // Each unit is chosen by the value as it will print, so rounding
        // carries into the next unit (0.99996 s is "1.00 s", not "1000.0 ms").
        if (a * 1e6).round() < 1000.0 {
            write!(f, "{:.0} µs", s * 1e6)
        } else if (a * 1e4).round() < 10_000.0 {
            write!(f, "{:.1} ms", s * 1e3)
        } else if (a * 100.0).round() < 12_000.0 {
            write!(f, "{s:.2} s")
        } else {
            // Round to whole seconds first, so 179.7 s carries to "3m 00s"
            // rather than printing "2m 60s".
            let whole = a.round();
            let m = (whole / 60.0).floor();
            let sign = if s < 0.0 { "-" } else { "" };
            write!(f, "{sign}{m:.0}m {:02.0}s", whole - m * 60.0)
        }
    }
}

/// A point estimate with its confidence interval (after criterion's `Estimate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    /// Lower bound of the interval.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
    /// Confidence level of `[low, high]`, e.g. 0.95.
    pub confidence: f64,
}

impl Estimate {
    /// An estimate known exactly (zero-width interval).
    pub fn exact(value: f64) -> Self {
        Estimate {
            value,
            low: value,
            high: value,
            confidence: 1.0,
        }
    }

    pub fn new(value: f64, low: f64, high: f64, confidence: f64) -> Self {
        Estimate {
            value,
            low: low.min(value),
            high: high.max(value),
            confidence,
        }
    }

    /// Moved by `s` (a known shift: the interval keeps its width).
    pub fn shifted(self, s: f64) -> Self {
        Estimate::new(self.value + s, self.low + s, self.high + s, self.confidence)
    }

    /// Half-width of the interval relative to the value (0 when the value is 0).
    pub fn relative_half_width(&self) -> f64 {
        if self.value == 0.0 {
            0.0
        } else {
            (self.high - self.low) / 2.0 / self.value.abs()
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Median of samples (the mean of the middle two for an even count); NaN
/// for none.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------
// Parsing sizes and durations: one syntax for every flag and spec file.
// ---------------------------------------------------------------------------

/// Sizes every size error shows as examples.
pub const SIZE_EXAMPLES: &str = "10MiB, 512KiB, 1.5GB";
/// Durations every duration error shows as examples (unless a flag gives its own).
pub const DURATION_EXAMPLES: &str = "250ms, 10m, 1h30m";
/// The longest duration [`parse_duration`] accepts: a year (longer is a typo).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// Parse a size in bytes: `123` (bytes), binary `10KiB`, `10MiB`, `1.5GiB`,
/// `2TiB` (also `10k`, `10M`, `10G`, `10T`), SI `10KB`, `10MB`, `1.5GB`,
/// `2TB`; units in any case, a space before the unit allowed, decimals
/// rounded to the byte. Refuses negative sizes, non-numbers and sizes past
/// `u64`, with examples in the message.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: String| {
        format!("invalid size {s:?}: {why}; write bytes with a unit, e.g. {SIZE_EXAMPLES}")
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if t.starts_with('-') {
        return Err(bad("a size cannot be negative".into()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    const K: u64 = 1024;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => K,
        "kb" => 1_000,
        "m" | "mib" => K.pow(2),
        "mb" => 1_000_000,
        "g" | "gib" => K.pow(3),
        "gb" => 1_000_000_000,
        "t" | "tib" => K.pow(4),
        "tb" => 1_000_000_000_000,
        "p" | "pib" => K.pow(5),
        "pb" => 1_000u64.pow(5),
        "eib" => K.pow(6),
        "eb" => 1_000u64.pow(6),
        _ if num.is_empty() => return Err(bad("it does not start with a number".into())),
        _ => return Err(bad(format!("unknown unit `{unit}`"))),
    };
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(bad("it does not start with a number".into()));
    }
    let overflow = || bad("more than 16 EiB, the largest size".into());
    if !num.contains('.') {
        // Whole numbers exactly (a float would round past 2^53).
        let v: u64 = num.parse().map_err(|_| overflow())?;
        return v.checked_mul(mult).ok_or_else(overflow);
    }
    let v: f64 = num
        .parse()
        .map_err(|_| bad("it does not start with a number".into()))?;
    let b = (v * mult as f64).round();
    // 2^64 (u64::MAX as f64 rounds up to it) is already too large.
    if !b.is_finite() || b >= u64::MAX as f64 {
        return Err(overflow());
    }
    Ok(b as u64)
}

/// Parse a duration: humantime's forms (`250ms`, `10m`, `1h30m`, `1.5s`,
/// `2 days`), or a bare number of seconds (`600`, `0.5`) so that flags once
/// written in seconds keep working. Refuses negative durations and ones
/// longer than [`MAX_DURATION`]; errors show [`DURATION_EXAMPLES`].
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_like(s, DURATION_EXAMPLES)
}

/// [`parse_duration`] whose errors show `examples` (e.g. `20ms, 200ms` for an RTT).
pub fn parse_duration_like(s: &str, examples: &str) -> Result<std::time::Duration, String> {
    use humantime::DurationError as E;
    let bad = |why: String| {
        format!(
            "invalid duration {s:?}: {why}; write a number and a unit, e.g. {examples} (a bare number is seconds)"
        )
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if t.starts_with('-') {
        return Err(bad("a duration cannot be negative".into()));
    }
    let too_long = || bad("more than a year".into());
    let d = if t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let v: f64 = t.parse().map_err(|_| bad("not a number".into()))?;
        std::time::Duration::try_from_secs_f64(v).map_err(|_| too_long())?
    } else {
        humantime::parse_duration(t).map_err(|e| match e {
            E::UnknownUnit { unit, .. } => bad(format!("unknown unit `{unit}`")),
            E::NumberOverflow => too_long(),
            _ => bad("not a duration".into()),
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn bytes_display_uses_binary_prefixes() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(4096).to_string(), "4.00 KiB");
        assert_eq!(Bytes(2 * 1024 * 1024 * 1024).to_string(), "2.00 GiB");
        assert_eq!(Bytes(150 * 1024 * 1024).to_string(), "150 MiB");
        assert_eq!(Bytes(1024 * 1024 - 1).to_string(), "1.00 MiB");
        assert_eq!(Bytes(10 * 1024 - 1).to_string(), "10.0 KiB");
    }

    #[test]
    fn seconds_display_picks_a_readable_unit() {
        assert_eq!(Seconds(0.0005).to_string(), "500 µs");
        assert_eq!(Seconds(0.0123).to_string(), "12.3 ms");
        assert_eq!(Seconds(4.561).to_string(), "4.56 s");
        assert_eq!(Seconds(125.0).to_string(), "2m 05s");
    }

    #[test]
    fn seconds_display_carries_rounding_into_minutes() {
        assert_eq!(Seconds(179.7).to_string(), "3m 00s");
        assert_eq!(Seconds(179.4).to_string(), "2m 59s");
        assert_eq!(Seconds(3599.9).to_string(), "60m 00s");
        assert_eq!(Seconds(-179.7).to_string(), "-3m 00s");
        assert_eq!(Seconds(0.99996).to_string(), "1.00 s");
        assert_eq!(Seconds(0.0009996).to_string(), "1.0 ms");
        assert_eq!(Seconds(119.996).to_string(), "2m 00s");
    }

    #[test]
    fn seconds_arithmetic_is_plain_f64_arithmetic() {
        let (a, b) = (Seconds(3.0), Seconds(1.5));
        assert_eq!(a - b, Seconds(1.5));
        assert_eq!(a * 2.0, Seconds(6.0));
        assert_eq!(a / 2.0, Seconds(1.5));
        assert_eq!(a / b, 2.0);
        assert_eq!(a.max(b), a);
        assert_eq!(a.min(b), b);
        assert_eq!(Seconds(f64::NAN).max(b), b);
        let mut c = Seconds::ZERO;
        c += a;
        assert_eq!(c, a);
        assert_eq!([a, b].into_iter().sum::<Seconds>(), Seconds(4.5));
    }

    #[test]
    fn bytes_arithmetic_and_saturation() {
        assert_eq!(Bytes(5) - Bytes(3), Bytes(2));
        assert_eq!(Bytes(3).saturating_sub(Bytes(5)), Bytes::ZERO);
        assert_eq!(Bytes(u64::MAX).saturating_add(Bytes(1)), Bytes(u64::MAX));
        assert_eq!(Bytes(1024).as_f64(), 1024.0);
        let mut b = Bytes::ZERO;
        b += Bytes(7);
        assert_eq!(b, Bytes(7));
    }

    #[test]
    fn units_serialize_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&Seconds(1.25)).unwrap(), "1.25");
        assert_eq!(serde_json::to_string(&Bytes(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Seconds>("2").unwrap(), Seconds(2.0));
        assert_eq!(serde_json::from_str::<Bytes>("42").unwrap(), Bytes(42));
    }

    #[test]
    fn estimate_interval_always_contains_value() {
        let e = Estimate::new(10.0, 11.0, 12.0, 0.95);
        assert!(e.contains(10.0));
        assert_eq!(e.low, 10.0);
    }
    #[test]
    fn sizes_in_every_accepted_form() {
        for (s, want) in [
            ("0", 0),
            ("123", 123),
            ("123b", 123),
            ("10KiB", 10 << 10),
            ("10MiB", 10 << 20),
            ("1.5GiB", 3 << 29),
            ("2TiB", 2 << 40),
            ("1PiB", 1 << 50),
            ("1EiB", 1 << 60),
            ("10KB", 10_000),
            ("10MB", 10_000_000),
            ("1.5GB", 1_500_000_000),
            ("2TB", 2_000_000_000_000),
            ("128k", 128 << 10),
            ("1.5M", 1_572_864),
            ("10G", 10 << 30),
            ("1T", 1 << 40),
            ("64mib", 64 << 20),
            ("64 MiB", 64 << 20),
            (" 64MiB ", 64 << 20),
            ("1.5", 2),
            ("18446744073709551615", u64::MAX),
            ("15EiB", 15 << 60),
        ] {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_sizes_are_refused_with_examples() {
        for (s, why) in [
            ("10 parsecs", "unknown unit `parsecs`"),
            ("1.5xB", "unknown unit `xB`"),
            ("-5MiB", "cannot be negative"),
            ("", "empty"),
            ("MiB", "does not start with a number"),
            ("NaN", "does not start with a number"),
            ("inf", "does not start with a number"),
            ("1.2.3MiB", "does not start with a number"),
            (".", "does not start with a number"),
            ("18446744073709551616", "more than 16 EiB"),
            ("16EiB", "more than 16 EiB"),
            ("20000000000GiB", "more than 16 EiB"),
            ("16.5EiB", "more than 16 EiB"),
        ] {
            let e = parse_size(s).unwrap_err();
            assert!(e.starts_with(&format!("invalid size {s:?}: ")), "{e}");
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.ends_with("e.g. 10MiB, 512KiB, 1.5GB"), "{e}");
        }
    }

    #[test]
    fn durations_in_every_accepted_form() {
        use std::time::Duration as D;
        for (s, want) in [
            ("250ms", D::from_millis(250)),
            ("10m", D::from_secs(600)),
            ("1h30m", D::from_secs(5400)),
            ("1h 30m", D::from_secs(5400)),
            ("1.5s", D::from_millis(1500)),
            ("2days", D::from_secs(2 * 86400)),
            ("600", D::from_secs(600)),
            ("0.5", D::from_millis(500)),
            ("0", D::ZERO),
            ("0s", D::ZERO),
            (" 20ms ", D::from_millis(20)),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_examples() {
        for (s, why) in [
            ("-5ms", "cannot be negative"),
            ("soon", "not a duration"),
            ("10 parsecs", "unknown unit `parsecs`"),
            ("", "empty"),
            ("1.2.3", "not a number"),
            ("2y", "more than a year"),
            ("40000000", "more than a year"),
            ("99999999999999999999999h", "more than a year"),
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.starts_with(&format!("invalid duration {s:?}: ")), "{e}");
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains("e.g. 250ms, 10m, 1h30m"), "{e}");
        }
        let e = parse_duration_like("soon", "20ms, 200ms").unwrap_err();
        assert!(e.contains("e.g. 20ms, 200ms"), "{e}");
    }
}
