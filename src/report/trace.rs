//! The human form of `advisor trace analyze` and `trace record`: the phase
//! table and path lists of an analysis, the summary row of a recording.
//! Rendering only: the reports arrive computed, nothing here prints.
use super::table;
use crate::recorder::record::RecordReport;
use crate::trace::analyze::{AnalyzeReport, PathList, PhaseStats};
use crate::units::{Bytes, Seconds};

/// The human form of an analysis: a header, one table of phases, then the
/// path lists and the counts of what the join could not use.
pub fn render(r: &AnalyzeReport) -> String {
    let mut s = header(r);
    s.push_str(&phase_table(r));
    s.push('\n');
    path_list(&mut s, "missing from the image", &r.missing);
    path_list(
        &mut s,
        "outside the image (/proc, /sys, /dev)",
        &r.outside_image,
    );
    unusable_counts(&mut s, r);
    s
}

/// The image and trace lines above the table.
fn header(r: &AnalyzeReport) -> String {
    format!(
        "image {} ({} layers, {} lazy; {} compressed, {} in {} files)\ntrace {} ({} events, {})\n",
        if r.image.reference.is_empty() {
            "?"
        } else {
            &r.image.reference
        },
        r.image.layers,
        r.image.lazy_layers,
        r.image.compressed_size,
        r.image.uncompressed_size,
        r.image.files,
        r.trace.file,
        r.trace.events,
        match r.trace.ready_at_ns {
            Some(t) => format!("ready at {}", Seconds(t as f64 / 1e9)),
            None => "no ready marker".into(),
        }
    )
}

/// One column per phase, one row per counter.
fn phase_table(r: &AnalyzeReport) -> String {
    let phases: [(&str, &PhaseStats); 5] = [
        ("mount", &r.mount),
        ("prefetch", &r.prefetch),
        ("before ready", &r.before_ready),
        ("after ready", &r.after_ready),
        ("total", &r.total),
    ];
    let mut t = table(std::iter::once("").chain(phases.iter().map(|(n, _)| *n)));
    type Row = (&'static str, fn(&PhaseStats) -> String);
    let rows: [Row; 13] = [
        ("reads", |p| p.reads.to_string()),
        ("files touched", |p| p.files_touched.to_string()),
        ("bytes read", |p| p.bytes_read.to_string()),
        ("unique bytes read", |p| p.unique_bytes_read.to_string()),
        ("chunks touched", |p| p.chunks_touched.to_string()),
        ("chunks decompressed", |p| p.chunks_missed.to_string()),
        ("bytes decompressed", |p| p.decompressed_bytes.to_string()),
        ("compressed fetched", |p| p.compressed_fetched.to_string()),
        ("range requests", |p| p.requests.to_string()),
        ("ranges", |p| p.ranges.to_string()),
        ("read from eager layers", |p| {
            p.bytes_read_locally.to_string()
        }),
        ("share of image read", |p| {
            format!("{:.2}%", p.fraction_read * 100.0)
        }),
        ("share of image fetched", |p| {
            format!("{:.2}%", p.fraction_fetched * 100.0)
        }),
    ];
    for (name, f) in rows {
        t.add_row(std::iter::once(name.to_string()).chain(phases.iter().map(|(_, p)| f(p))));
    }
    t.to_string()
}

/// A titled list of the first paths; nothing when it is empty.
fn path_list(s: &mut String, title: &str, l: &PathList) {
    if l.count == 0 {
        return;
    }
    s.push_str(&format!(
        "{title}: {} path(s), {} event(s)\n",
        l.count, l.events
    ));
    for p in &l.first {
        s.push_str(&format!("  {p}\n"));
    }
    if l.count > l.first.len() as u64 {
        s.push_str(&format!(
            "  … and {} more\n",
            l.count - l.first.len() as u64
        ));
    }
}

/// Failed operations, copy-ups and reads of non-files, when there are any.
fn unusable_counts(s: &mut String, r: &AnalyzeReport) {
    if r.failed_ops > 0 {
        s.push_str(&format!(
            "failed operations in the trace: {}\n",
            r.failed_ops
        ));
    }
    if r.copy_ups > 0 {
        s.push_str(&format!(
            "opens for writing (copy-up, read whole): {}\n",
            r.copy_ups
        ));
    }
    if r.reads_of_non_files > 0 {
        s.push_str(&format!(
            "reads of non-regular files: {}\n",
            r.reads_of_non_files
        ));
    }
}

/// The one-row table of a recording.
pub fn render_record(report: &RecordReport) -> String {
    let mut t = table([
        "trace",
        "events",
        "reads",
        "bytes read",
        "files opened",
        "lookups (absent)",
        "ready",
        "exit",
    ]);
    let s = |v: Option<Seconds>| v.map(|x| x.to_string()).unwrap_or_else(|| "–".into());
    t.add_row([
        report.output.clone(),
        report.events.to_string(),
        report.reads.to_string(),
        Bytes(report.bytes_read).to_string(),
        report.files_opened.to_string(),
        format!("{} ({})", report.lookups, report.absent_lookups),
        s(report.ready_s),
        format!(
            "{} (code {})",
            s(report.exit_s),
            report
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "–".into())
        ),
    ]);
    t.to_string()
}

/// What the reference runs measured and how the trace uses it (None when
/// there were none): the median, and each run's times when there were more.
pub fn reference_note(report: &RecordReport) -> Option<String> {
    let r = report.reference_run?;
    let secs = |ns: u64| Seconds(ns as f64 * 1e-9).to_string();
    let ready =
        |r: &crate::trace::format::ReferenceRun| r.ready_ns.map(secs).unwrap_or_else(|| "–".into());
    let head = match report.reference_runs.len() {
        0 | 1 => "without the recorder the workload took".to_string(),
        n => format!("without the recorder the workload took, in the median of {n} runs,"),
    };
    let mut note = format!(
        "{head} {} to ready and {} to exit (code {}): the trace's compute gaps are scaled to match",
        ready(&r),
        secs(r.exit_ns),
        r.exit_code
    );
    if report.reference_runs.len() > 1 {
        let each: Vec<String> = report
            .reference_runs
            .iter()
            .map(|x| format!("{}/{}", ready(x), secs(x.exit_ns)))
            .collect();
        note.push_str(&format!(" (ready/exit of each: {})", each.join(", ")));
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::{Seconds, reference_note, render, render_record};
    use crate::recorder::record::RecordReport;
    use crate::report::fixtures::{example_image, example_trace};
    use crate::trace::analyze::{AnalyzeOptions, AnalyzeReport, PathList, analyze};

    /// `trace analyze --files models/examples/llm-serving.files.json
    /// --trace traces/llm-serving.jsonl`.
    fn example_analysis() -> AnalyzeReport {
        analyze(
            &example_image(),
            &mut example_trace(),
            &AnalyzeOptions::default(),
        )
        .expect("the bundled example joins")
    }

    #[test]
    fn analysis_of_the_bundled_example() {
        insta::assert_snapshot!(render(&example_analysis()));
    }

    /// The parts the bundled example does not have: no ready marker, path
    /// lists longer than shown, failed operations, copy-ups, non-files.
    #[test]
    fn analysis_with_path_lists_and_unusable_events() {
        let mut r = example_analysis();
        r.image.reference = String::new();
        r.trace.ready_at_ns = None;
        r.missing = PathList {
            count: 3,
            events: 7,
            first: vec!["/etc/missing.conf".into(), "/usr/lib/libgone.so".into()],
        };
        r.outside_image = PathList {
            count: 1,
            events: 2,
            first: vec!["/proc/self/maps".into()],
        };
        r.failed_ops = 4;
        r.copy_ups = 1;
        r.reads_of_non_files = 2;
        insta::assert_snapshot!(render(&r));
    }

    fn recording() -> RecordReport {
        RecordReport {
            image: "127.0.0.1:5123/examples/small:v1".into(),
            manifest_digest: "sha256:0123".into(),
            output: "traces/small.jsonl".into(),
            events: 812,
            reads: 640,
            bytes_read: 3 * 1024 * 1024 + 17,
            files_opened: 52,
            lookups: 80,
            absent_lookups: 12,
            ready_s: Some(Seconds(0.2259)),
            exit_s: Some(Seconds(1.5)),
            exit_code: Some(0),
            timed_out: false,
            foreign_events: 0,
            recorder_overhead: None,
            reference_run: None,
            reference_runs: Vec::new(),
        }
    }

    #[test]
    fn the_reference_note_gives_the_median_and_each_run() {
        use crate::trace::format::ReferenceRun;
        assert_eq!(reference_note(&recording()), None);
        let run = |ready: Option<u64>, exit: u64| ReferenceRun {
            ready_ns: ready,
            exit_ns: exit,
            exit_code: 0,
            runs: None,
        };
        let runs = vec![
            run(Some(2_000_000_000), 3_000_000_000),
            run(Some(3_200_000_000), 4_900_000_000),
            run(None, 3_500_000_000),
        ];
        let r = RecordReport {
            reference_run: ReferenceRun::median_of(&runs),
            reference_runs: runs,
            ..recording()
        };
        let note = reference_note(&r).expect("a note");
        assert!(note.contains("median of 3 runs"), "{note}");
        // Two of three got to ready: their median; the exits' median.
        assert!(
            note.contains("2.60 s to ready and 3.50 s to exit"),
            "{note}"
        );
        assert!(
            note.contains("2.00 s/3.00 s, 3.20 s/4.90 s, –/3.50 s"),
            "{note}"
        );
        let one = RecordReport {
            reference_run: Some(run(Some(1_000_000_000), 2_000_000_000)),
            reference_runs: vec![run(Some(1_000_000_000), 2_000_000_000)],
            ..recording()
        };
        let note = reference_note(&one).expect("a note");
        assert!(
            note.starts_with("without the recorder the workload took 1.00 s to ready"),
            "{note}"
        );
    }

    #[test]
    fn record_table() {
        insta::assert_snapshot!(render_record(&recording()));
    }

    /// Stopped before ready, no exit code: dashes.
    #[test]
    fn record_table_without_ready_or_exit() {
        let r = RecordReport {
            ready_s: None,
            exit_s: None,
            exit_code: None,
            timed_out: true,
            ..recording()
        };
        insta::assert_snapshot!(render_record(&r));
    }
}
