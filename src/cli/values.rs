//! Flag values: one syntax for sizes, rates and durations on every flag
//! (issue 19 §4), each error with an example; clap names the flag.
//!
//! - size: `123` (bytes), `10KiB`, `64MiB`, `1.5GiB`, `2TiB` (binary; also
//!   `10k`, `64M`, `1G`), `10KB`, `1.5GB` (SI) — [`crate::units::parse_size`];
//! - rate: bits per second as tc writes them (`500mbit`, `10gbit`) or bytes
//!   per second (`25MB/s`, `1GiB/s`) — [`crate::simulate::network::parse_bandwidth`];
//! - duration: `250ms`, `10m`, `1h30m`, `1.5s`, or a bare number of seconds
//!   (`600`) — [`crate::units::parse_duration`].
//!
//! Each parser returns the type the flag's field already has (`u64` bytes,
//! `f64` bytes per second, `Duration`), so stages never see these.
use crate::units::{Bytes, Seconds};
use std::time::Duration;

/// Rates every rate error shows as examples.
pub const RATE_EXAMPLES: &str = "500mbit, 10gbit, 25MB/s, 1GiB/s";

/// A size in bytes.
pub fn size(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
}

/// A size in bytes, as [`Bytes`].
pub fn bytes(s: &str) -> Result<Bytes, String> {
    size(s).map(Bytes)
}

/// A duration (a bare number is seconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::units::parse_duration(s)
}

/// A network round-trip time (`--rtt`): a duration of at most
/// [`crate::predict::rtt_sweep::LIMIT_MAX_RTT`] (no registry client waits longer).
pub fn rtt(s: &str) -> Result<Duration, String> {
    let d = crate::units::parse_duration_like(s, "20ms, 200ms, 1s")?;
    let max = crate::predict::rtt_sweep::LIMIT_MAX_RTT;
    if Seconds::from_duration(d) > max {
        return Err(format!(
            "invalid duration {s:?}: a round trip takes at most {max}; write e.g. 20ms, 200ms, 1s"
        ));
    }
    Ok(d)
}

/// A rate in bytes per second: bits per second as tc writes them (`bit`,
/// `kbit`, `mbit`, `gbit`, `tbit`, any case, `/s` allowed) or bytes per second
/// (`bps`, `B/s`, `KB/s`, `MB/s`, `GB/s`, `KiB/s`, `MiB/s`, `GiB/s`, any case).
pub fn rate(s: &str) -> Result<f64, String> {
    let bad = |why: String| {
        format!("invalid rate {s:?}: {why}; write bits or bytes per second, e.g. {RATE_EXAMPLES}")
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if t.starts_with('-') {
        return Err(bad("a rate cannot be negative".into()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() || num.parse::<f64>().is_err() {
        return Err(bad("it does not start with a number".into()));
    }
    let lower = unit.to_ascii_lowercase();
    let (base, per_s) = match lower.strip_suffix("/s") {
        Some(b) => (b, true),
        None => (lower.as_str(), false),
    };
    // Bytes need `/s` (`100mb` could be megabits or a size).
    let canonical = match (base, per_s) {
        ("", false) => return Err(bad("a rate needs a unit".into())),
        (u @ ("bit" | "kbit" | "mbit" | "gbit" | "tbit"), _) => u,
        ("bps", false) => "bps",
        ("b", true) => "B/s",
        ("kb", true) => "KB/s",
        ("mb", true) => "MB/s",
        ("gb", true) => "GB/s",
        ("kib", true) => "KiB/s",
        ("mib", true) => "MiB/s",
        ("gib", true) => "GiB/s",
        _ => return Err(bad(format!("unknown unit `{unit}`"))),
    };
    crate::simulate::network::parse_bandwidth(&format!("{num}{canonical}"))
        .map_err(|_| bad("a rate must be more than 0".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_every_accepted_form() {
        for (s, want) in [
            ("500mbit", 62.5e6),
            ("500Mbit", 62.5e6),
            ("500mbit/s", 62.5e6),
            ("10gbit", 1.25e9),
            ("2.5gbit", 312.5e6),
            ("100kbit", 12.5e3),
            ("800bit", 100.0),
            ("1tbit", 125e9),
            ("25MB/s", 25e6),
            ("125mb/s", 125e6),
            ("1.25GB/s", 1.25e9),
            ("10KB/s", 10e3),
            ("1GiB/s", 1073741824.0),
            ("10MiB/s", 10485760.0),
            ("4KiB/s", 4096.0),
            ("1000bps", 1000.0),
            ("1000B/s", 1000.0),
            (" 1 gbit ", 125e6),
        ] {
            assert_eq!(rate(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_rates_are_refused_with_examples() {
        for (s, why) in [
            ("fast", "does not start with a number"),
            ("100mb", "unknown unit `mb`"),
            ("100mbps", "unknown unit `mbps`"),
            ("1000", "needs a unit"),
            ("1GiB", "unknown unit `GiB`"),
            ("0mbit", "more than 0"),
            ("-5mbit", "cannot be negative"),
            ("", "empty"),
            ("1.2.3mbit", "does not start with a number"),
        ] {
            let e = rate(s).unwrap_err();
            assert!(e.starts_with(&format!("invalid rate {s:?}: ")), "{e}");
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.ends_with("e.g. 500mbit, 10gbit, 25MB/s, 1GiB/s"), "{e}");
        }
    }

    #[test]
    fn timeouts_take_any_duration() {
        // `--timeout` of bench, trace record and calibrate: a fraction of a
        // second is kept, not refused or rounded (the stages use Duration).
        assert_eq!(duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        let e = duration("-1").unwrap_err();
        assert!(
            e.contains("cannot be negative") && e.contains("e.g. 250ms"),
            "{e}"
        );
    }

    #[test]
    fn round_trips_are_bounded() {
        assert_eq!(rtt("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(rtt("0.02"), Ok(Duration::from_millis(20)));
        assert_eq!(rtt("0"), Ok(Duration::ZERO));
        let e = rtt("20").unwrap_err();
        assert!(
            e.contains("at most 10.00 s") && e.contains("e.g. 20ms"),
            "{e}"
        );
        let e = rtt("soon").unwrap_err();
        assert!(e.contains("e.g. 20ms, 200ms, 1s"), "{e}");
    }

    #[test]
    fn every_default_value_parses_to_its_old_meaning() {
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("128KiB"), Ok(128 << 10));
        assert_eq!(size("0"), Ok(0));
        // bench --prefetch-size: ctr-remote's default, written 10MiB.
        assert_eq!(
            size("10MiB"),
            Ok(crate::containerd::pull::DEFAULT_PREFETCH_SIZE)
        );
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
    }
}
