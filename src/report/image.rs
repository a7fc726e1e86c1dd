//! The human form of `advisor image build` and `image inspect`: the forms and
//! layers of a build, the layers, formats and fetched bytes of an inspection.
//! Rendering only: the reports arrive computed, nothing here prints.
use super::table;
use crate::filetable::inspect::{Fetched, FileCounts, Inspection, Landmark, LayerInspection};
use crate::image::build::BuildReport;
use crate::units::Bytes;

/// A digest shortened to its first 12 hex digits.
fn short(d: &str) -> String {
    match d.strip_prefix("sha256:") {
        Some(h) => format!("sha256:{}", &h[..h.len().min(12)]),
        None => d.to_string(),
    }
}

/// The human form of a build report: a summary line, the forms, the layers
/// of both forms side by side.
pub fn render_build(r: &BuildReport) -> String {
    let mut s = format!(
        "built {}(seed {}): {} files, {} of content, in {}",
        r.name.as_ref().map(|n| format!("{n} ")).unwrap_or_default(),
        r.seed,
        r.files,
        r.content_bytes,
        r.build_seconds
    );
    if let (Some(t), Some(b)) = (r.push_seconds, r.bytes_pushed) {
        s.push_str(&format!("; pushed {} in {t}", Bytes(b)));
    }
    s.push('\n');
    let mut t = table(["form", "reference", "manifest", "compressed"]);
    for f in &r.forms {
        t.add_row([
            f.form.name().to_string(),
            f.reference.clone().unwrap_or_else(|| "(not pushed)".into()),
            f.manifest_digest.clone(),
            Bytes(f.compressed_size).to_string(),
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    s.push_str(&build_layer_table(r));
    s
}

/// One row per layer: its gzip and eStargz sizes and the TOC digest.
fn build_layer_table(r: &BuildReport) -> String {
    let mut t = table([
        "layer",
        "files",
        "uncompressed",
        "gzip",
        "eStargz",
        "TOC digest",
    ]);
    if let [g, e] = &r.forms[..] {
        for (lg, le) in g.layers.iter().zip(&e.layers) {
            t.add_row([
                lg.name.clone(),
                lg.files.to_string(),
                Bytes(lg.uncompressed_size).to_string(),
                Bytes(lg.size).to_string(),
                Bytes(le.size).to_string(),
                le.toc_digest.as_deref().map(short).unwrap_or_default(),
            ]);
        }
    }
    t.to_string()
}

/// The human form of an inspection: the manifest, one row per layer, each
/// layer's largest files and notes, then what the inspection fetched.
pub fn render_inspect(i: &Inspection) -> String {
    let mut s = format!(
        "{} ({}/{})\nmanifest {} ({}), config {}, platform {}\n",
        i.reference,
        i.registry,
        i.repository,
        i.manifest_digest,
        i.manifest_media_type,
        short(&i.config_digest),
        i.platform
    );
    if let Some(d) = &i.index_digest {
        s.push_str(&format!("index {d}\n"));
    }
    s.push_str(&inspect_layer_table(&i.layers));
    s.push('\n');
    for l in &i.layers {
        if let Some(c) = counts(l)
            && !c.largest.is_empty()
        {
            let list: Vec<String> = c
                .largest
                .iter()
                .map(|f| format!("/{} ({})", f.path, Bytes(f.size)))
                .collect();
            s.push_str(&format!("layer {} largest: {}\n", l.index, list.join(", ")));
        }
        if let Some(n) = &l.note {
            s.push_str(&format!("layer {}: {n}\n", l.index));
        }
    }
    s.push_str(&fetched_line(&i.fetched));
    s.push('\n');
    s
}

/// The file counts of a layer: from its TOC, else from a scan.
fn counts(l: &LayerInspection) -> Option<&FileCounts> {
    l.toc
        .as_ref()
        .map(|t| &t.counts)
        .or(l.scan.as_ref().map(|s| &s.counts))
}

fn inspect_layer_table(layers: &[LayerInspection]) -> String {
    let mut t = table([
        "#",
        "digest",
        "format",
        "compressed",
        "uncompressed",
        "files",
        "dirs",
        "links",
        "chunks",
        "file bytes",
        "TOC",
        "prefetch",
    ]);
    for l in layers {
        t.add_row(inspect_layer_row(l));
    }
    t.to_string()
}

fn inspect_layer_row(l: &LayerInspection) -> [String; 12] {
    let c = |f: fn(&FileCounts) -> String| counts(l).map(f).unwrap_or_else(|| "-".into());
    let toc = match &l.toc {
        Some(t) => format!(
            "{} {}",
            Bytes(t.compressed_size),
            if t.verified { "verified" } else { "unverified" }
        ),
        None => "-".into(),
    };
    let prefetch = match &l.toc {
        Some(t) => match t.landmark {
            Landmark::Prefetch => format!(
                "{} files, {}",
                t.prioritized_files,
                t.prefetch_compressed_bytes.unwrap_or(Bytes::ZERO)
            ),
            Landmark::NoPrefetch => "none (landmark)".into(),
            Landmark::None => "no landmark".into(),
        },
        None => "-".into(),
    };
    [
        l.index.to_string(),
        short(&l.digest),
        l.format.name().to_string(),
        Bytes(l.compressed_size).to_string(),
        l.uncompressed_size
            .map(|u| Bytes(u).to_string())
            .unwrap_or_else(|| "-".into()),
        c(|c| c.files.to_string()),
        c(|c| c.dirs.to_string()),
        c(|c| (c.symlinks + c.hardlinks).to_string()),
        c(|c| c.chunks.to_string()),
        c(|c| c.file_bytes.to_string()),
        toc,
        prefetch,
    ]
}

/// What the inspection fetched, against its budget (no trailing newline).
fn fetched_line(f: &Fetched) -> String {
    let mut s = format!(
        "fetched {} in {} requests: manifest and config {}, layer footers and TOCs {} (ranged GETs; budget {}: {})",
        f.total_bytes,
        f.total_requests,
        f.metadata_bytes,
        f.ranged_bytes,
        f.budget_bytes,
        if f.within_budget {
            "within"
        } else {
            "EXCEEDED"
        }
    );
    if f.scan_bytes > Bytes::ZERO {
        s.push_str(&format!(", scans {}", f.scan_bytes));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{Bytes, render_build, render_inspect};
    use crate::estargz::table::LayerFormat;
    use crate::filetable::inspect::{
        Fetched, FileCounts, Inspection, Landmark, LayerInspection, ScanSummary, SizedPath,
        TocSummary,
    };
    use crate::image::build::{BuildReport, Form, FormReport, LayerReport};
    use crate::units::Seconds;

    const MIB: u64 = 1024 * 1024;

    fn layer(
        name: &str,
        files: usize,
        uncompressed: u64,
        size: u64,
        toc: Option<&str>,
    ) -> LayerReport {
        LayerReport {
            name: name.into(),
            digest: format!("sha256:{name}"),
            diff_id: format!("sha256:diff-{name}"),
            size,
            uncompressed_size: uncompressed,
            files,
            toc_digest: toc.map(String::from),
        }
    }

    fn form(
        form: Form,
        reference: Option<&str>,
        manifest: &str,
        layers: Vec<LayerReport>,
    ) -> FormReport {
        FormReport {
            form,
            reference: reference.map(String::from),
            manifest_digest: manifest.into(),
            config_digest: "sha256:c0ffee".into(),
            compressed_size: layers.iter().map(|l| l.size).sum(),
            layers,
        }
    }

    /// The shape of `image build --dry-run --spec models/examples/small.json`
    /// (its build time varies, so the report is built by hand).
    fn small_build(pushed: bool) -> BuildReport {
        let reference = |tag: &str| pushed.then(|| format!("127.0.0.1:5123/examples/small:{tag}"));
        let gzip = form(
            Form::Gzip,
            reference("v1").as_deref(),
            "sha256:df8eb443092a427795bbe1d1a1850d2d4d84b3f142d97b0717bcfe69987e8c7e",
            vec![
                layer("base", 3, 2 * MIB - 70_000, MIB + 10_000, None),
                layer("app", 42, 487_000, 354_000, None),
                layer("data", 7, 1_730_000, 1_195_000, None),
            ],
        );
        let toc = "sha256:ad60f54610e6a1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081920";
        let estargz = form(
            Form::Estargz,
            reference("v1-esgz").as_deref(),
            "sha256:65a75edbb616134765b664c1b9e0254e01f9b5f0b48a5cd5d20c13207395385c",
            vec![
                layer("base", 3, 2 * MIB - 70_000, MIB + 20_000, Some(toc)),
                layer("app", 42, 487_000, 366_000, Some("sha256:f2d14d01707a")),
                layer("data", 7, 1_730_000, 1_205_000, Some("not-a-sha256-digest")),
            ],
        );
        BuildReport {
            spec: "models/examples/small.json".into(),
            name: Some("small".into()),
            seed: 1,
            files: 52,
            content_bytes: Bytes(4_150_000),
            build_seconds: Seconds(0.9112),
            push_seconds: pushed.then_some(Seconds(2.5)),
            bytes_pushed: pushed.then_some(5 * MIB),
            forms: vec![gzip, estargz],
        }
    }

    #[test]
    fn build_dry_run() {
        insta::assert_snapshot!(render_build(&small_build(false)));
    }

    #[test]
    fn build_pushed() {
        insta::assert_snapshot!(render_build(&small_build(true)));
    }

    fn counts(files: u64, largest: &[(&str, u64)]) -> FileCounts {
        FileCounts {
            files,
            dirs: 4,
            symlinks: 2,
            hardlinks: 1,
            other: 0,
            chunks: files + 3,
            file_bytes: Bytes(3 * MIB),
            largest: largest
                .iter()
                .map(|(p, s)| SizedPath {
                    path: p.to_string(),
                    size: *s,
                })
                .collect(),
        }
    }

    fn toc(landmark: Landmark, verified: bool, largest: &[(&str, u64)]) -> TocSummary {
        TocSummary {
            digest: "sha256:70c".into(),
            verified,
            offset: 2 * MIB,
            compressed_size: 41_000,
            entries: 60,
            counts: counts(42, largest),
            landmark,
            prioritized_files: 5,
            prioritized_bytes: Bytes(300_000),
            prefetch_compressed_bytes: Some(Bytes(120_000)),
        }
    }

    fn layer_inspection(index: usize, format: LayerFormat) -> LayerInspection {
        LayerInspection {
            index,
            digest: format!("sha256:{index}bcdef0123456789abcdef0123456789"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compressed_size: 2 * MIB + index as u64,
            uncompressed_size: None,
            format,
            toc: None,
            scan: None,
            ranged_bytes: Bytes::ZERO,
            ranged_requests: 0,
            note: None,
            files: None,
        }
    }

    /// One layer of each kind: eStargz with a prefetch landmark, eStargz
    /// without one and unverified, legacy stargz with the no-prefetch
    /// landmark, a scanned gzip layer, a zstd layer with a note.
    fn inspection(index_digest: Option<&str>, scan_bytes: u64, within_budget: bool) -> Inspection {
        let largest = [("usr/lib/model.bin", 2 * MIB), ("app/main.py", 12_000)];
        let mut layers = vec![
            LayerInspection {
                uncompressed_size: Some(4 * MIB),
                toc: Some(toc(Landmark::Prefetch, true, &largest)),
                ..layer_inspection(0, LayerFormat::Estargz)
            },
            LayerInspection {
                uncompressed_size: Some(MIB),
                toc: Some(toc(Landmark::None, false, &[])),
                ..layer_inspection(1, LayerFormat::Estargz)
            },
            LayerInspection {
                toc: Some(toc(Landmark::NoPrefetch, true, &[])),
                ..layer_inspection(2, LayerFormat::LegacyStargz)
            },
            LayerInspection {
                uncompressed_size: Some(5 * MIB),
                scan: Some(ScanSummary {
                    counts: counts(9, &[("etc/big.conf", 700)]),
                    diff_id: "sha256:d1ff".into(),
                    bytes_streamed: 2 * MIB,
                }),
                ..layer_inspection(3, LayerFormat::Gzip)
            },
            layer_inspection(4, LayerFormat::Zstd),
        ];
        layers[4].note = Some("zstd: no file table without --scan".into());
        Inspection {
            reference: "127.0.0.1:5123/examples/small:v1-esgz".into(),
            registry: "127.0.0.1:5123".into(),
            repository: "examples/small".into(),
            platform: "linux/amd64".into(),
            index_digest: index_digest.map(String::from),
            manifest_digest:
                "sha256:65a75edbb616134765b664c1b9e0254e01f9b5f0b48a5cd5d20c13207395385c".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: "sha256:c0ffee0123456789abcdef".into(),
            layers,
            fetched: Fetched {
                metadata_bytes: Bytes(3_000),
                metadata_requests: 2,
                ranged_bytes: Bytes(250_000),
                ranged_requests: 6,
                scan_bytes: Bytes(scan_bytes),
                scan_requests: u64::from(scan_bytes > 0),
                total_bytes: Bytes(253_000 + scan_bytes),
                total_requests: 8 + u64::from(scan_bytes > 0),
                budget_bytes: Bytes(600_000),
                within_budget,
            },
        }
    }

    #[test]
    fn inspect_every_layer_kind() {
        insta::assert_snapshot!(render_inspect(&inspection(None, 0, true)));
    }

    /// Through an index, with a scan, over the budget.
    #[test]
    fn inspect_index_scan_over_budget() {
        insta::assert_snapshot!(render_inspect(&inspection(
            Some("sha256:1nd3x"),
            2 * MIB,
            false
        )));
    }
}
