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
}
