//! Counters around a measured run: the stargz snapshotter's Prometheus
//! metrics, scraped before and after and diffed per layer, and the host's
//! network receive counters from procfs as the fallback when no metrics
//! endpoint is known.
//!
//! Metric names and meanings: shared/docs/stargz-internals.md §4 (fs/metrics
//! in stargz-snapshotter v0.12). `stargz_fs_layer_fetched_size_bytes` is the
//! compressed bytes a layer downloaded for any reason (mount, prefetch,
//! on-demand, background); `remote_registry_get` counts every GET until its
//! headers; `on_demand_*` count FUSE reads that missed the caches. Gauges that
//! only grow (`bytes_served`, `layer_*`) are diffed like counters. A daemon
//! restarted between the two scrapes (a lazy reset) starts from zero, so a
//! negative difference is clamped to the value after.
//!
//! Reusable: `calibrate` scrapes and diffs the same way. Owns parsing and
//! arithmetic only; the HTTP GET is [`scrape`].
use crate::units::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metric: compressed bytes a layer downloaded (gauge, per digest and mountpoint).
pub const LAYER_FETCHED: &str = "stargz_fs_layer_fetched_size_bytes";
/// Metric: prefetched bytes (gauge).
pub const LAYER_PREFETCH: &str = "stargz_fs_layer_prefetch_size_bytes";
/// Metric: operation counters (`operation_type` label).
pub const OP_COUNT: &str = "stargz_fs_operation_count";
/// Metric: bytes served / fetched on demand (`operation_type` label).
pub const BYTES_SERVED: &str = "stargz_fs_bytes_served";
/// Histogram in milliseconds (`operation_type`: mount, remote_registry_get, …).
pub const OP_MS: &str = "stargz_fs_operation_duration_milliseconds";
/// Histogram in microseconds (`operation_type`: read_on_demand, node_readdir).
pub const OP_US: &str = "stargz_fs_operation_duration_microseconds";

/// One scrape, keyed by layer digest then by `metric[/operation_type][:sum|:count]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StargzScrape {
    pub layers: BTreeMap<String, BTreeMap<String, f64>>,
}

impl StargzScrape {
    /// Parse Prometheus text exposition.
    pub fn parse(text: &str) -> std::io::Result<StargzScrape> {
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))?;
        let mut out = StargzScrape::default();
        for s in scrape.samples {
            if !s.metric.starts_with("stargz_fs_") {
                continue;
            }
            let Some(layer) = s.labels.get("layer").or_else(|| s.labels.get("digest")) else {
                continue;
            };
            // Histogram `_sum`/`_count` lines have no TYPE of their own and parse
            // as untyped; a counter named `…_count` (stargz_fs_operation_count) does not.
            let (value, untyped) = match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => {
                    (v, false)
                }
                prometheus_parse::Value::Untyped(v) => (v, true),
                _ => continue,
            };
            let (base, suffix) = match (
                untyped,
                s.metric.strip_suffix("_sum"),
                s.metric.strip_suffix("_count"),
            ) {
                (true, Some(b), _) => (b, ":sum"),
                (true, _, Some(b)) => (b, ":count"),
                _ => (s.metric.as_str(), ""),
            };
            let key = match s.labels.get("operation_type") {
                Some(op) => format!("{base}/{op}{suffix}"),
                None => format!("{base}{suffix}"),
            };
            // Several mountpoints of one layer add up.
            *out.layers
                .entry(layer.to_string())
                .or_default()
                .entry(key)
                .or_insert(0.0) += value;
        }
        Ok(out)
    }

    /// `after − before` per layer and key; a key that went down (the daemon
    /// restarted) counts from zero.
    pub fn delta(before: &StargzScrape, after: &StargzScrape) -> StargzScrape {
        let mut out = StargzScrape::default();
        for (layer, keys) in &after.layers {
            let prev = before.layers.get(layer);
            let mut d = BTreeMap::new();
            for (k, v) in keys {
                let p = prev.and_then(|m| m.get(k)).copied().unwrap_or(0.0);
                let x = if *v >= p { v - p } else { *v };
                if x != 0.0 {
                    d.insert(k.clone(), x);
                }
            }
            if !d.is_empty() {
                out.layers.insert(layer.clone(), d);
            }
        }
        out
    }

    fn get(&self, layer: &str, key: &str) -> f64 {
        self.layers
            .get(layer)
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(0.0)
    }

    fn total(&self, key: &str) -> f64 {
        self.layers.values().filter_map(|m| m.get(key)).sum()
    }

    /// The typed counters of a delta, for the layers given (all when empty).
    pub fn lazy_counters(&self, layers: &[String]) -> LazyCounters {
        let pick: Vec<&String> = if layers.is_empty() {
            self.layers.keys().collect()
        } else {
            layers.iter().collect()
        };
        let fetched: BTreeMap<String, Bytes> = pick
            .iter()
            .map(|l| (l.to_string(), Bytes(self.get(l, LAYER_FETCHED) as u64)))
            .collect();
        let sum = |k: &str| pick.iter().map(|l| self.get(l, k)).sum::<f64>();
        LazyCounters {
            // The endpoint's numbers are not ours: saturate, never wrap.
            fetched: Bytes(fetched.values().map(|b| b.0).fold(0, u64::saturating_add)),
            prefetched: Bytes(sum(LAYER_PREFETCH) as u64),
            fetched_per_layer: fetched,
            registry_gets: sum(&format!("{OP_MS}/remote_registry_get:count")) as u64,
            registry_get_ms: sum(&format!("{OP_MS}/remote_registry_get:sum")),
            on_demand_reads: sum(&format!("{OP_COUNT}/on_demand_read_access_count")) as u64,
            on_demand_fetches: sum(&format!("{OP_COUNT}/on_demand_remote_registry_fetch_count"))
                as u64,
            on_demand_bytes_served: Bytes(
                sum(&format!("{BYTES_SERVED}/on_demand_bytes_served")) as u64
            ),
            on_demand_bytes_fetched: Bytes(
                sum(&format!("{BYTES_SERVED}/on_demand_bytes_fetched")) as u64
            ),
            mounts: sum(&format!("{OP_MS}/mount:count")) as u64,
            mount_ms: sum(&format!("{OP_MS}/mount:sum")),
            // `all_prefetches_completed` is recorded under an empty-digest layer label.
            prefetch_wait_ms: self.total(&format!("{OP_MS}/all_prefetches_completed:sum")),
        }
    }
}

/// What the stargz snapshotter did during a run (a delta of two scrapes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LazyCounters {
    /// Compressed bytes downloaded, all causes (mount, prefetch, on demand, background).
    pub fetched: Bytes,
    pub fetched_per_layer: BTreeMap<String, Bytes>,
    pub prefetched: Bytes,
    /// HTTP GETs to the registry (`remote_registry_get` count) and their summed time to headers.
    pub registry_gets: u64,
    pub registry_get_ms: f64,
    /// FUSE reads served on demand, and how many missed the fs cache.
    pub on_demand_reads: u64,
    pub on_demand_fetches: u64,
    pub on_demand_bytes_served: Bytes,
    pub on_demand_bytes_fetched: Bytes,
    pub mounts: u64,
    pub mount_ms: f64,
    pub prefetch_wait_ms: f64,
}

/// GET the metrics endpoint and parse it.
pub async fn scrape(url: &str) -> anyhow::Result<StargzScrape> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    // The URL may carry credentials: messages show it redacted.
    let shown = crate::redact::redact(url);
    let r = client.get(url).send().await.map_err(|e| {
        crate::error::user(format!(
            "stargz metrics at {shown} unreachable: {}; check ADVISOR_STARGZ_METRICS / --stargz-metrics",
            crate::error::error_chain(&e)
        ))
    })?;
    if !r.status().is_success() {
        crate::bail_user!("stargz metrics at {shown} answered {}", r.status());
    }
    let text = r.text().await?;
    Ok(StargzScrape::parse(&text)?)
}

/// Bytes received on every network interface of this network namespace
/// (`/proc/net/dev`), loopback included: a lab registry is on loopback.
pub fn net_rx_bytes() -> Option<u64> {
    let dev = procfs::net::dev_status().ok()?;
    Some(dev.values().map(|d| d.recv_bytes).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "sha256:f3e2";
    fn text(fetched: f64, gets: u64, reads: u64) -> String {
        format!(
            r#"# HELP stargz_fs_layer_fetched_size_bytes Total fetched size of the layer
# TYPE stargz_fs_layer_fetched_size_bytes gauge
stargz_fs_layer_fetched_size_bytes{{digest="{L}",mountpoint="/a/2/fs"}} {fetched}
stargz_fs_layer_fetched_size_bytes{{digest="{L}",mountpoint="/a/3/fs"}} 5
# TYPE stargz_fs_operation_count counter
stargz_fs_operation_count{{layer="{L}",operation_type="on_demand_read_access_count"}} {reads}
# TYPE stargz_fs_operation_duration_milliseconds histogram
stargz_fs_operation_duration_milliseconds_bucket{{layer="{L}",operation_type="remote_registry_get",le="1"}} 0
stargz_fs_operation_duration_milliseconds_bucket{{layer="{L}",operation_type="remote_registry_get",le="+Inf"}} {gets}
stargz_fs_operation_duration_milliseconds_sum{{layer="{L}",operation_type="remote_registry_get"}} 10.5
stargz_fs_operation_duration_milliseconds_count{{layer="{L}",operation_type="remote_registry_get"}} {gets}
stargz_fs_operation_duration_milliseconds_sum{{layer="sha256:e3b0",operation_type="all_prefetches_completed"}} 0.25
go_goroutines 12
"#
        )
    }

    #[test]
    fn parses_per_layer_and_sums_mountpoints() {
        let s = StargzScrape::parse(&text(1.115643e+06, 2, 24)).unwrap();
        let c = s.lazy_counters(&[L.to_string()]);
        assert_eq!(c.fetched, Bytes(1_115_648));
        assert_eq!(c.registry_gets, 2);
        assert_eq!(c.registry_get_ms, 10.5);
        assert_eq!(c.on_demand_reads, 24);
        assert_eq!(c.prefetch_wait_ms, 0.25);
        assert!(!s.layers.contains_key("go_goroutines"));
    }

    #[test]
    fn delta_subtracts_and_survives_a_restart() {
        let a = StargzScrape::parse(&text(1000.0, 2, 24)).unwrap();
        let b = StargzScrape::parse(&text(3000.0, 5, 30)).unwrap();
        let d = StargzScrape::delta(&a, &b).lazy_counters(&[]);
        assert_eq!(d.fetched, Bytes(2000));
        assert_eq!(d.registry_gets, 3);
        assert_eq!(d.on_demand_reads, 6);
        // A restarted daemon reports less than before: count from zero.
        let r = StargzScrape::delta(&b, &a).lazy_counters(&[]);
        assert_eq!(r.fetched, Bytes(1005));
        assert_eq!(r.registry_gets, 2);
    }

    #[test]
    fn layer_absent_from_a_scrape_counts_zero() {
        let a = StargzScrape::default();
        let b = StargzScrape::parse(&text(10.0, 1, 1)).unwrap();
        let c = StargzScrape::delta(&a, &b).lazy_counters(&["sha256:other".into()]);
        assert_eq!(c.fetched, Bytes(0));
        assert_eq!(c.fetched_per_layer["sha256:other"], Bytes(0));
    }

    #[test]
    fn huge_counters_from_the_endpoint_saturate_not_wrap() {
        let mut s = StargzScrape::parse(&text(1.8e19, 1, 1)).unwrap();
        let other = s.layers[L].clone();
        s.layers.insert("sha256:second".into(), other);
        let c = s.lazy_counters(&[]);
        assert_eq!(c.fetched, Bytes(u64::MAX));
    }

    #[test]
    fn procfs_counters_are_readable() {
        assert!(net_rx_bytes().is_some());
    }
}
