//! `bench --export-json | --export-markdown | --export-csv`: the bench's
//! summary in hyperfine's export formats (hyperfine: src/export/), so what
//! reads hyperfine's files — its scripts (`plot_whisker.py` reads `command`
//! and `times`), a Markdown page, a spreadsheet — reads advisor's.
//!
//! Where hyperfine has one result per command, a bench has one per timed
//! phase (resolve, fetch, unpack, pull, create, start, ready, complete,
//! to_ready, to_complete), over the measured runs that count (warm-up and
//! excluded runs never do): `command` is the phase's name. Times are in
//! seconds; `stddev` is the sample standard deviation (n − 1, as
//! [`crate::bench::stats`]) and does not exist for one run (JSON `null`, CSV
//! empty). Bytes (received, lazy_fetched, disk_*) are not times: only the JSON
//! carries them, under `bytes`.
//!
//! One [`Exporter`] per format, each returning bytes; rendering only: nothing
//! here writes a file or prints (commands/bench.rs does, through
//! [`crate::output`]).
use crate::bench::{BenchReport, Mode, Samples, stats::Summary};
use serde::Serialize;

/// A format the bench's summary can be exported in.
pub trait Exporter {
    fn serialize(&self, report: &BenchReport) -> anyhow::Result<Vec<u8>>;
}

/// The formats, one per `--export-*` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Markdown,
    Csv,
}

impl ExportFormat {
    /// The flag that asks for it (for messages).
    pub fn flag(self) -> &'static str {
        match self {
            ExportFormat::Json => "--export-json",
            ExportFormat::Markdown => "--export-markdown",
            ExportFormat::Csv => "--export-csv",
        }
    }

    pub fn exporter(self) -> &'static dyn Exporter {
        match self {
            ExportFormat::Json => &JsonExporter,
            ExportFormat::Markdown => &MarkdownExporter,
            ExportFormat::Csv => &CsvExporter,
        }
    }
}

/// A time unit chosen by the value, as hyperfine's `format_duration_value`:
/// µs below a millisecond, ms below a second, else s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Second,
    MilliSecond,
    MicroSecond,
}

impl TimeUnit {
    pub fn of(seconds: f64) -> TimeUnit {
        if seconds.abs() < 1e-3 {
            TimeUnit::MicroSecond
        } else if seconds.abs() < 1.0 {
            TimeUnit::MilliSecond
        } else {
            TimeUnit::Second
        }
    }

    pub fn short_name(self) -> &'static str {
        match self {
            TimeUnit::Second => "s",
            TimeUnit::MilliSecond => "ms",
            TimeUnit::MicroSecond => "µs",
        }
    }

    /// The number alone, with hyperfine's precision (3 decimals in s, 1 in ms and µs).
    pub fn format(self, seconds: f64) -> String {
        match self {
            TimeUnit::Second => format!("{seconds:.3}"),
            TimeUnit::MilliSecond => format!("{:.1}", seconds * 1e3),
            TimeUnit::MicroSecond => format!("{:.1}", seconds * 1e6),
        }
    }

    /// The number and the unit: `1.250 s`.
    pub fn format_with_unit(self, seconds: f64) -> String {
        format!("{} {}", self.format(seconds), self.short_name())
    }
}

/// One timed phase with its statistics (what hyperfine calls a result).
struct Timed<'a> {
    samples: &'a Samples,
    summary: Summary,
}

/// The timed phases that have a summary, in report order.
fn timed(samples: &[Samples]) -> Vec<Timed<'_>> {
    samples
        .iter()
        .filter(|s| s.unit == "s")
        .filter_map(|s| {
            Some(Timed {
                samples: s,
                summary: Summary::of(&s.values)?,
            })
        })
        .collect()
}

/// hyperfine's JSON: `{"results": [...]}`, with what the bench was beside it.
pub struct JsonExporter;

#[derive(Serialize)]
struct JsonExport<'a> {
    results: Vec<JsonResult<'a>>,
    /// Byte quantities, in the same form (`values` in bytes).
    bytes: Vec<JsonBytes<'a>>,
    image: &'a str,
    snapshotter: &'a str,
    mode: Mode,
    /// Measured runs asked for.
    runs: usize,
    warmup: usize,
    /// Measured runs left out of the statistics.
    excluded: usize,
    interrupted: bool,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    /// hyperfine's name for what was timed: here the phase.
    command: &'a str,
    mean: f64,
    stddev: Option<f64>,
    median: f64,
    min: f64,
    max: f64,
    /// Every counted run's time, in run order.
    times: &'a [f64],
}

#[derive(Serialize)]
struct JsonBytes<'a> {
    quantity: &'a str,
    mean: f64,
    stddev: Option<f64>,
    median: f64,
    min: f64,
    max: f64,
    values: &'a [f64],
}

impl Exporter for JsonExporter {
    fn serialize(&self, report: &BenchReport) -> anyhow::Result<Vec<u8>> {
        let samples = report.samples();
        let results = timed(&samples)
            .into_iter()
            .map(|t| JsonResult {
                command: t.samples.name,
                mean: t.summary.mean,
                stddev: t.summary.stddev,
                median: t.summary.median,
                min: t.summary.min,
                max: t.summary.max,
                times: &t.samples.values,
            })
            .collect();
        let bytes = samples
            .iter()
            .filter(|s| s.unit == "bytes")
            .filter_map(|s| {
                let m = Summary::of(&s.values)?;
                Some(JsonBytes {
                    quantity: s.name,
                    mean: m.mean,
                    stddev: m.stddev,
                    median: m.median,
                    min: m.min,
                    max: m.max,
                    values: &s.values,
                })
            })
            .collect();
        let mut out = serde_json::to_vec_pretty(&JsonExport {
            results,
            bytes,
            image: &report.image,
            snapshotter: &report.snapshotter,
            mode: report.mode,
            runs: report.runs_requested,
            warmup: report.warmup,
            excluded: report.excluded,
            interrupted: report.interrupted,
        })?;
        out.push(b'\n');
        Ok(out)
    }
}

/// hyperfine's Markdown table: one unit for the table, that of the first
/// phase's mean (hyperfine: `determine_unit_from_results`). No `Relative`
/// column: phases of one run are not alternatives to compare.
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn serialize(&self, report: &BenchReport) -> anyhow::Result<Vec<u8>> {
        let samples = report.samples();
        let rows = timed(&samples);
        let unit = rows
            .first()
            .map_or(TimeUnit::Second, |t| TimeUnit::of(t.summary.mean));
        let u = unit.short_name();
        let mut out =
            format!("| Phase | Mean [{u}] | Min [{u}] | Max [{u}] |\n|:---|---:|---:|---:|\n");
        for t in &rows {
            let s = &t.summary;
            let stddev = s
                .stddev
                .map(|sd| format!(" ± {}", unit.format(sd)))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {}{stddev} | {} | {} |\n",
                t.samples.name,
                unit.format(s.mean),
                unit.format(s.min),
                unit.format(s.max)
            ));
        }
        Ok(out.into_bytes())
    }
}

/// hyperfine's CSV, less its `user` and `system` columns (a container's CPU
/// time is not the bench's to measure). Every field is a phase's fixed name
/// or a number, so none needs quoting: no CSV library for six columns.
pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn serialize(&self, report: &BenchReport) -> anyhow::Result<Vec<u8>> {
        let samples = report.samples();
        let mut out = String::from("command,mean,stddev,median,min,max\n");
        for t in timed(&samples) {
            let s = &t.summary;
            let stddev = s.stddev.map(|v| v.to_string()).unwrap_or_default();
            debug_assert!(!t.samples.name.contains([',', '"', '\n']));
            out.push_str(&format!(
                "{},{},{stddev},{},{},{}\n",
                t.samples.name, s.mean, s.median, s.min, s.max
            ));
        }
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Phases, ReadySpec, Role, RunRecord};
    use crate::containerd::pull::Method;
    use crate::units::{Bytes, Seconds};

    fn run(index: usize, role: Role, fetch: f64, included: bool) -> RunRecord {
        let mut r = RunRecord::new(index, role);
        r.phases = Phases {
            resolve: Some(Seconds(0.02)),
            fetch: Some(Seconds(fetch)),
            ..Phases::default()
        };
        r.network.received = Some(Bytes(1000 + index as u64));
        r.included = included;
        r
    }

    /// A warm-up (slow: it must not count), two counted runs and an excluded one.
    fn report(measured: &[f64]) -> BenchReport {
        let mut runs = vec![run(0, Role::Warmup, 99.0, false)];
        runs.extend(
            measured
                .iter()
                .enumerate()
                .map(|(i, f)| run(i, Role::Measured, *f, true)),
        );
        runs.push(run(measured.len(), Role::Measured, 50.0, false));
        let mut r = BenchReport {
            image: "127.0.0.1:5123/app:gzip".into(),
            snapshotter: "overlayfs".into(),
            method: Method::Eager,
            mode: Mode::Cold,
            runs_requested: measured.len() + 1,
            warmup: 1,
            ready: ReadySpec::Exit,
            command: vec![],
            setup: None,
            runs,
            summary: vec![],
            excluded: 0,
            interrupted: false,
            error: None,
            cleanup_problems: vec![],
        };
        r.summarize();
        r
    }

    fn text(format: ExportFormat, r: &BenchReport) -> String {
        String::from_utf8(format.exporter().serialize(r).unwrap()).unwrap()
    }

    #[test]
    fn json_is_hyperfine_s_with_every_counted_time() {
        let v: serde_json::Value =
            serde_json::from_str(&text(ExportFormat::Json, &report(&[1.0, 3.0]))).unwrap();
        let results = v["results"].as_array().unwrap();
        let names: Vec<&str> = results
            .iter()
            .map(|r| r["command"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["resolve", "fetch"]);
        let fetch = &results[1];
        assert_eq!(fetch["times"], serde_json::json!([1.0, 3.0]));
        assert_eq!(fetch["mean"], 2.0);
        assert_eq!(fetch["median"], 2.0);
        assert_eq!(
            (fetch["min"].as_f64(), fetch["max"].as_f64()),
            (Some(1.0), Some(3.0))
        );
        assert!((fetch["stddev"].as_f64().unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(v["bytes"][0]["quantity"], "received");
        assert_eq!(v["bytes"][0]["values"], serde_json::json!([1000.0, 1001.0]));
        assert_eq!(
            (v["warmup"].as_u64(), v["excluded"].as_u64()),
            (Some(1), Some(1))
        );
    }

    /// One run: a spread does not exist (null, empty, no ±), as in the report.
    #[test]
    fn one_run_has_no_stddev_in_any_format() {
        let r = report(&[1.5]);
        let v: serde_json::Value = serde_json::from_str(&text(ExportFormat::Json, &r)).unwrap();
        assert!(v["results"][1]["stddev"].is_null());
        assert_eq!(
            text(ExportFormat::Csv, &r),
            "command,mean,stddev,median,min,max\nresolve,0.02,,0.02,0.02,0.02\nfetch,1.5,,1.5,1.5,1.5\n"
        );
        assert!(!text(ExportFormat::Markdown, &r).contains('±'));
    }

    #[test]
    fn csv_has_hyperfine_s_columns_in_seconds() {
        let csv = text(ExportFormat::Csv, &report(&[1.0, 3.0]));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "command,mean,stddev,median,min,max");
        assert_eq!(lines[1], "resolve,0.02,0,0.02,0.02,0.02");
        let f: Vec<&str> = lines[2].split(',').collect();
        assert_eq!(
            (f[0], f[1], f[3], f[4], f[5]),
            ("fetch", "2", "2", "1", "3")
        );
        assert_eq!(lines.len(), 3);
    }

    /// One unit for the table, the first phase's (resolve: ms), as hyperfine.
    #[test]
    fn markdown_is_hyperfine_s_table() {
        let md = text(ExportFormat::Markdown, &report(&[1.0, 3.0]));
        insta::assert_snapshot!(md, @r"
        | Phase | Mean [ms] | Min [ms] | Max [ms] |
        |:---|---:|---:|---:|
        | `resolve` | 20.0 ± 0.0 | 20.0 | 20.0 |
        | `fetch` | 2000.0 ± 1414.2 | 1000.0 | 3000.0 |
        ");
    }

    /// Every run excluded: headers only, and JSON with empty results.
    #[test]
    fn nothing_counted_exports_headers_only() {
        let r = report(&[]);
        assert_eq!(
            text(ExportFormat::Csv, &r),
            "command,mean,stddev,median,min,max\n"
        );
        assert_eq!(text(ExportFormat::Markdown, &r).lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(&text(ExportFormat::Json, &r)).unwrap();
        assert_eq!(v["results"], serde_json::json!([]));
    }

    #[test]
    fn units_follow_hyperfine() {
        assert_eq!(TimeUnit::of(1.3).format_with_unit(1.3), "1.300 s");
        assert_eq!(TimeUnit::of(1.0).format_with_unit(1.0), "1.000 s");
        assert_eq!(TimeUnit::of(0.999).format_with_unit(0.999), "999.0 ms");
        assert_eq!(TimeUnit::of(0.0005).format_with_unit(0.0005), "500.0 µs");
        assert_eq!(TimeUnit::of(0.0).format_with_unit(0.0), "0.0 µs");
    }
}
