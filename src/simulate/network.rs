//! The network path between a node and its registry: what a pull's requests
//! cost on a link with round-trip time, per-stream and total bandwidth, and
//! connection set-up (docs/model.md § "The network path").
//!
//! A calibration on loopback prices the node: hashing, inflating, FUSE,
//! snapshots — and a registry 0.05 ms away whose bandwidth is whatever the CPU
//! can copy. On a real path every request also waits a round trip and every
//! byte its share of the link. [`NetUse`] counts that work per part of a
//! replay (the snapshotter's requests, containerd's parallel layer
//! downloads, resolution); [`Link::seconds`] prices it. The model follows
//! stargz-internals.md §6: a read miss is one round trip plus its bytes on
//! one stream, then decompression (serial); mounts resolve the first layer
//! on the critical path and the others in parallel; eager layers download
//! concurrently, bounded by the slower of one stream per layer and the
//! link's total.
use crate::units::Bytes;
use serde::{Deserialize, Serialize};

/// A network path, as a probe measures it or a what-if asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Round-trip time of a request on a kept-alive connection (s).
    pub rtt_s: f64,
    /// Throughput of one stream (bytes/s).
    pub stream_bytes_per_s: f64,
    /// Throughput of all streams together (bytes/s).
    pub total_bytes_per_s: f64,
    /// Opening a connection: TCP handshake, TLS, auth (s).
    pub setup_s: f64,
}

impl Link {
    /// A path of this RTT and bandwidth (one stream can fill it); opening a
    /// connection costs one round trip (the TCP handshake, no TLS).
    pub fn new(rtt_s: f64, bytes_per_s: f64) -> Self {
        Link {
            rtt_s,
            stream_bytes_per_s: bytes_per_s,
            total_bytes_per_s: bytes_per_s,
            setup_s: rtt_s,
        }
    }

    /// Every number finite, times ≥ 0, bandwidths > 0; the message names
    /// the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("rtt_s", self.rtt_s), ("setup_s", self.setup_s)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a time ≥ 0 s, not {v}"));
            }
        }
        for (name, v) in [
            ("stream_bytes_per_s", self.stream_bytes_per_s),
            ("total_bytes_per_s", self.total_bytes_per_s),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(format!("{name} must be a bandwidth > 0 bytes/s, not {v}"));
            }
        }
        Ok(())
    }

    /// Seconds the path takes for `u`: waiting plus transfer.
    pub fn seconds(&self, u: &NetUse) -> f64 {
        self.wait_s(u) + self.transfer_s(u)
    }

    /// Round trips and connection set-ups: time no payload moves (for
    /// readers at once, the busiest reader's round trips).
    pub fn wait_s(&self, u: &NetUse) -> f64 {
        (u.round_trips + u.lane_round_trips) * self.rtt_s + u.connections * self.setup_s
    }

    /// Moving the payload: serial bytes on one stream, then the concurrent
    /// round bound by the link's total or its largest stream. Readers at
    /// once: the busiest reader's bytes on its stream, or — when the link is
    /// the bound — all readers' bytes at the link's total less what moved
    /// while that reader waited its round trips.
    pub fn transfer_s(&self, u: &NetUse) -> f64 {
        let stream = self.stream_bytes_per_s.min(self.total_bytes_per_s);
        let parallel =
            (u.parallel_bytes / self.total_bytes_per_s).max(u.largest_stream_bytes / stream);
        let lanes = (u.lane_largest_bytes / stream)
            .max(u.lane_bytes / self.total_bytes_per_s - u.lane_round_trips * self.rtt_s);
        u.serial_bytes / stream + parallel + lanes
    }
}

/// Network work on the critical path of one part of a replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetUse {
    /// Round trips waited one after another.
    pub round_trips: f64,
    /// Connections opened one after another.
    pub connections: f64,
    /// Bytes received on one stream, one request after another.
    pub serial_bytes: f64,
    /// Bytes received by concurrent streams (eager layers, other layers' mounts).
    pub parallel_bytes: f64,
    /// The largest of those streams.
    pub largest_stream_bytes: f64,
    /// Readers at once ([`NetUse::overlapped`]), summed over the spans: the
    /// busiest reader's round trips, its bytes, and all readers' bytes.
    pub lane_round_trips: f64,
    pub lane_largest_bytes: f64,
    pub lane_bytes: f64,
}

impl NetUse {
    /// Requests made one after another, `bytes` in all.
    pub fn serial(requests: u64, bytes: Bytes) -> Self {
        NetUse {
            round_trips: requests as f64,
            serial_bytes: bytes.as_f64(),
            ..Default::default()
        }
    }

    /// One round of concurrent downloads of `streams` (bytes each).
    pub fn concurrent(streams: impl IntoIterator<Item = Bytes>) -> Self {
        let mut u = NetUse::default();
        for b in streams {
            u.parallel_bytes += b.as_f64();
            u.largest_stream_bytes = u.largest_stream_bytes.max(b.as_f64());
        }
        if u.parallel_bytes > 0.0 {
            u.round_trips = 1.0;
        }
        u
    }

    /// The work of readers that ran at once, each one's requests one after
    /// another on its own stream: a reader's bytes move while the others
    /// wait their round trips, so the span takes the busiest reader's time
    /// (its round trips and its bytes) or, when the link is the bound, all
    /// bytes at the link's total ([`Link::transfer_s`]). The busiest reader
    /// is the one with the most round trips (ties: the most bytes).
    pub fn overlapped(lanes: impl IntoIterator<Item = NetUse>) -> Self {
        let mut u = NetUse::default();
        for l in lanes {
            let trips = l.round_trips + l.lane_round_trips;
            let bytes = l.serial_bytes + l.parallel_bytes + l.lane_bytes;
            u.connections = u.connections.max(l.connections);
            if (trips, bytes) > (u.lane_round_trips, u.lane_largest_bytes) {
                u.lane_round_trips = trips;
                u.lane_largest_bytes = bytes;
            }
            u.lane_bytes += bytes;
        }
        u
    }

    /// Opening a connection and `round_trips` requests before any payload
    /// (resolving a manifest, probing a blob).
    pub fn handshake(round_trips: u64) -> Self {
        NetUse {
            round_trips: round_trips as f64,
            connections: 1.0,
            ..Default::default()
        }
    }
}

impl std::ops::AddAssign for NetUse {
    /// Two pieces of work done one after the other; concurrent rounds add
    /// their bytes and keep the larger stream (they share the link).
    fn add_assign(&mut self, o: NetUse) {
        self.round_trips += o.round_trips;
        self.connections += o.connections;
        self.serial_bytes += o.serial_bytes;
        self.parallel_bytes += o.parallel_bytes;
        self.largest_stream_bytes = self.largest_stream_bytes.max(o.largest_stream_bytes);
        // Spans of readers at once follow one another.
        self.lane_round_trips += o.lane_round_trips;
        self.lane_largest_bytes += o.lane_largest_bytes;
        self.lane_bytes += o.lane_bytes;
    }
}

impl std::ops::Add for NetUse {
    type Output = NetUse;
    fn add(mut self, o: NetUse) -> NetUse {
        self += o;
        self
    }
}

/// Parse a bandwidth as `tc` writes it: `500mbit`, `1gbit`, `100kbit`,
/// `2.5gbit`, `800bit` (bits per second, decimal prefixes), or bytes per
/// second with `bps`/`B/s` suffixes: `125MB/s`, `10MiB/s`, `1000bps`.
/// Returns bytes per second.
pub fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 500mbit or 125MB/s"))?;
    let unit = unit.trim();
    let bits = |m: f64| Ok(v * m / 8.0);
    let bytes = |m: f64| Ok(v * m);
    let r: Result<f64, String> = match unit {
        "bit" => bits(1.0),
        "kbit" => bits(1e3),
        "mbit" => bits(1e6),
        "gbit" => bits(1e9),
        "tbit" => bits(1e12),
        "bps" | "B/s" => bytes(1.0),
        "kB/s" | "KB/s" => bytes(1e3),
        "MB/s" => bytes(1e6),
        "GB/s" => bytes(1e9),
        "KiB/s" => bytes(1024.0),
        "MiB/s" => bytes(1024.0 * 1024.0),
        "GiB/s" => bytes(1024.0 * 1024.0 * 1024.0),
        "" => Err(format!(
            "{s:?}: a bandwidth needs a unit: bit, kbit, mbit, gbit (per second) or B/s, MB/s, MiB/s, GB/s"
        )),
        u => Err(format!(
            "{s:?}: unknown unit {u:?}; use bit, kbit, mbit, gbit (per second) or B/s, MB/s, MiB/s, GB/s"
        )),
    };
    let r = r?;
    if !r.is_finite() || r <= 0.0 {
        return Err(format!("{s:?}: a bandwidth must be more than 0"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            rtt_s: 0.020,
            stream_bytes_per_s: 50e6,
            total_bytes_per_s: 100e6,
            setup_s: 0.040,
        }
    }

    #[test]
    fn serial_requests_pay_a_round_trip_each_and_their_bytes_on_one_stream() {
        let s = link().seconds(&NetUse::serial(100, Bytes(50_000_000)));
        // 100 × 20 ms + 50 MB at 50 MB/s
        assert!((s - (2.0 + 1.0)).abs() < 1e-9, "{s}");
    }

    #[test]
    fn concurrent_downloads_are_bound_by_the_total_or_the_largest_stream() {
        let l = link();
        // Three 60 MB layers: 180 MB at 100 MB/s = 1.8 s > 60 MB at 50 MB/s.
        let even = l.seconds(&NetUse::concurrent([Bytes(60_000_000); 3]));
        assert!((even - (0.020 + 1.8)).abs() < 1e-9, "{even}");
        // One 150 MB layer dominates: 3 s on its own stream.
        let skew = l.seconds(&NetUse::concurrent([Bytes(150_000_000), Bytes(1_000_000)]));
        assert!((skew - (0.020 + 3.0)).abs() < 1e-9, "{skew}");
        // Nothing to download: nothing to wait for.
        assert_eq!(l.seconds(&NetUse::concurrent(Vec::<Bytes>::new())), 0.0);
    }

    #[test]
    fn readers_at_once_take_the_busiest_readers_time_or_the_links() {
        let l = link();
        // Four readers of 20 requests and 10 MB each: 20 × 20 ms + 10 MB at
        // 50 MB/s = 0.6 s; the link's 40 MB at 100 MB/s (0.4 s) is no bound.
        let four = NetUse::overlapped([NetUse::serial(20, Bytes(10_000_000)); 4]);
        assert!((l.seconds(&four) - 0.6).abs() < 1e-9, "{four:?}");
        // Twenty of them: 200 MB at 100 MB/s = 2 s, 0.4 s of it while waiting.
        let twenty = NetUse::overlapped([NetUse::serial(20, Bytes(10_000_000)); 20]);
        assert!((l.seconds(&twenty) - 2.0).abs() < 1e-9, "{twenty:?}");
        // One reader alone is priced as serial requests.
        let one = NetUse::overlapped([NetUse::serial(20, Bytes(10_000_000))]);
        let serial = l.seconds(&NetUse::serial(20, Bytes(10_000_000)));
        assert!((l.seconds(&one) - serial).abs() < 1e-9);
        // Two spans one after the other add up.
        let mut both = four;
        both += four;
        assert!((l.seconds(&both) - 1.2).abs() < 1e-9, "{both:?}");
    }

    #[test]
    fn a_handshake_opens_a_connection_then_waits_its_round_trips() {
        let s = link().seconds(&NetUse::handshake(3));
        assert!((s - (0.040 + 0.060)).abs() < 1e-9, "{s}");
    }

    #[test]
    fn work_adds_up_in_sequence() {
        let mut u = NetUse::handshake(2);
        u += NetUse::serial(3, Bytes(1000));
        u += NetUse::concurrent([Bytes(10), Bytes(30)]);
        assert_eq!(u.round_trips, 6.0);
        assert_eq!(u.connections, 1.0);
        assert_eq!(u.serial_bytes, 1000.0);
        assert_eq!(u.parallel_bytes, 40.0);
        assert_eq!(u.largest_stream_bytes, 30.0);
    }

    #[test]
    fn bandwidths_parse_in_tc_units_and_bytes_per_second() {
        assert_eq!(parse_bandwidth("500mbit").unwrap(), 62.5e6);
        assert_eq!(parse_bandwidth("1gbit").unwrap(), 125e6);
        assert_eq!(parse_bandwidth("2.5gbit").unwrap(), 312.5e6);
        assert_eq!(parse_bandwidth("125MB/s").unwrap(), 125e6);
        assert_eq!(parse_bandwidth("1MiB/s").unwrap(), 1048576.0);
        for bad in [
            "",
            "fast",
            "100",
            "100mb",
            "-5mbit",
            "0mbit",
            "1e999gbit",
            "mbit",
        ] {
            let e = parse_bandwidth(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn nonsense_links_are_refused_by_name() {
        let mut l = link();
        l.rtt_s = -0.001;
        assert!(l.validate().unwrap_err().contains("rtt_s"));
        let mut l = link();
        l.total_bytes_per_s = 0.0;
        assert!(l.validate().unwrap_err().contains("total_bytes_per_s"));
        let mut l = link();
        l.stream_bytes_per_s = f64::NAN;
        assert!(l.validate().unwrap_err().contains("stream_bytes_per_s"));
        assert!(link().validate().is_ok());
    }
}
