//! Running the calibration matrix on a node: build and push the calibration
//! images (once per spec), run each cold, eagerly and lazily, with its
//! segmented workload, and append every run to a JSON Lines file as soon as
//! it is measured, so an interrupted calibration resumes where it stopped.
//!
//! The matrix and the image specs are embedded (models/calibration/), so
//! `advisor calibrate` works from any directory.
use super::model::{CalImage, CalRun};
use super::workload::CalWorkload;
use crate::bench::real::{RealEngine, RealSettings};
use crate::bench::{BenchSettings, Mode, Observer, ReadySpec, RunRecord, run_bench};
use crate::containerd::Connection;
use crate::containerd::pull::{DEFAULT_PREFETCH_SIZE, Method};
use crate::containerd::run::Readiness;
use crate::predict::replay::Strategy;
use crate::registry::{RegistryClient, RegistryOptions};
use crate::units::Bytes;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The embedded matrix.
pub const MATRIX_JSON: &str = include_str!("../../models/calibration/matrix.json");

/// The embedded calibration image specs, by file name.
pub const SPECS: [(&str, &str); 6] = [
    (
        "few-large.json",
        include_str!("../../models/calibration/few-large.json"),
    ),
    (
        "many-small.json",
        include_str!("../../models/calibration/many-small.json"),
    ),
    (
        "layered.json",
        include_str!("../../models/calibration/layered.json"),
    ),
    (
        "text-large.json",
        include_str!("../../models/calibration/text-large.json"),
    ),
    (
        "mixed.json",
        include_str!("../../models/calibration/mixed.json"),
    ),
    (
        "weights-large.json",
        include_str!("../../models/calibration/weights-large.json"),
    ),
];

/// Repository the calibration images are pushed to, under the registry.
pub const REPOSITORY: &str = "advisor-calibration";

#[derive(Debug, Clone, Deserialize)]
pub struct Repeats {
    pub eager: usize,
    pub lazy: usize,
    /// Lazy runs of the prioritized form, for images whose workload names
    /// prefetch directories.
    #[serde(default)]
    pub prefetch: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MatrixImage {
    pub name: String,
    pub spec: String,
    pub workload: CalWorkload,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Matrix {
    pub version: u32,
    pub repeats: Repeats,
    pub quick_repeats: Repeats,
    pub images: Vec<MatrixImage>,
}

impl Matrix {
    pub fn embedded() -> anyhow::Result<Matrix> {
        serde_json::from_str(MATRIX_JSON)
            .context("the embedded calibration matrix is invalid (a bug)")
    }

    /// The runs to make, in order: every image at repeat 0 (eager, lazy), then
    /// repeat 1, …, so a budget that stops early still covers every image.
    pub fn plan(&self, quick: bool) -> Vec<(String, Strategy, usize)> {
        let r = if quick {
            &self.quick_repeats
        } else {
            &self.repeats
        };
        let mut out = Vec::new();
        for k in 0..r.eager.max(r.lazy).max(r.prefetch) {
            for img in &self.images {
                if k < r.eager {
                    out.push((img.name.clone(), Strategy::Eager, k));
                }
                if k < r.lazy {
                    out.push((img.name.clone(), Strategy::Lazy, k));
                }
                if k < r.prefetch && !img.workload.prefetch.is_empty() {
                    out.push((img.name.clone(), Strategy::LazyPrefetch, k));
                }
            }
        }
        out
    }

    /// `calibrate --check`'s runs: one of each strategy the matrix measures
    /// for these images (eager, lazy, and lazy+prefetch where the workload
    /// names prefetch directories), so every stage's fit is checked.
    pub fn check_plan(&self, names: &[&str]) -> Vec<(String, Strategy, usize)> {
        let mut out = Vec::new();
        for img in self
            .images
            .iter()
            .filter(|i| names.contains(&i.name.as_str()))
        {
            out.push((img.name.clone(), Strategy::Eager, 0));
            out.push((img.name.clone(), Strategy::Lazy, 0));
            if !img.workload.prefetch.is_empty() {
                out.push((img.name.clone(), Strategy::LazyPrefetch, 0));
            }
        }
        out
    }
}

/// The key a run is stored and resumed under.
pub fn run_key(image: &str, s: Strategy, repeat: usize) -> String {
    format!("{image}/{}/{repeat}", s.name())
}

/// One line of the runs file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// Facts of the node, written when a measurement session starts.
    Node(Box<crate::profile::NodeFacts>),
    Image(Box<CalImage>),
    Run(Box<CalRun>),
}

/// What a runs file holds.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// The node facts of the last session.
    pub node: Option<crate::profile::NodeFacts>,
    pub images: Vec<CalImage>,
    pub runs: Vec<CalRun>,
}

impl Stored {
    pub fn as_model(&self) -> super::model::Stored {
        super::model::Stored {
            images: self.images.clone(),
            runs: self.runs.clone(),
        }
    }
}

/// Read a runs file (missing = empty). A truncated last line (a crash while
/// writing) is ignored with a note; any other bad line is an error.
pub fn load_runs(path: &Path) -> anyhow::Result<(Stored, Vec<String>)> {
    let mut st = Stored::default();
    let mut notes = Vec::new();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((st, notes)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let lines = read_lines_bounded(std::io::BufReader::new(f), path)?;
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(Record::Node(n)) => st.node = Some(*n),
            Ok(Record::Image(img)) => {
                st.images.retain(|x| x.name != img.name);
                st.images.push(*img);
            }
            Ok(Record::Run(r)) => {
                st.runs.retain(|x| x.key != r.key);
                st.runs.push(*r);
            }
            Err(e) if i + 1 == lines.len() => notes.push(format!(
                "{} line {}: ignored a truncated last line ({e})",
                path.display(),
                i + 1
            )),
            Err(e) => crate::bail_user!(
                "{} line {}: not a calibration record: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok((st, notes))
}

/// The lines of a runs file, each at most [`crate::input::MAX_INPUT_TEXT`]
/// (an image record lists every file: the bundled one's longest is 0.9 MB):
/// a device or a binary file is an error naming the file and line, not an
/// allocation without end; invalid UTF-8 names them too.
fn read_lines_bounded(mut r: impl BufRead, path: &Path) -> anyhow::Result<Vec<String>> {
    let limit = crate::input::MAX_INPUT_TEXT;
    let mut lines = Vec::new();
    loop {
        let mut buf = Vec::new();
        let read = crate::input::read_line_bounded(&mut r, &mut buf, limit)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let at = lines.len() + 1;
        match read {
            Some(0) => return Ok(lines),
            Some(_) => {}
            None => crate::bail_user!(
                "{} line {at}: longer than {}: not a calibration runs file",
                path.display(),
                crate::units::Bytes(limit)
            ),
        }
        let Ok(mut line) = String::from_utf8(buf) else {
            crate::bail_user!(
                "{} line {at}: not valid UTF-8: not a calibration runs file",
                path.display()
            );
        };
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        lines.push(line);
    }
}

/// Append one record and flush it to disk.
pub fn append(path: &Path, r: &Record) -> anyhow::Result<()> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))?;
    let mut line = serde_json::to_string(r)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()?;
    Ok(())
}

/// Everything a calibration needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub address: PathBuf,
    pub namespace: String,
    /// Where `namespace` came from (ctr's variable: advisor's only if labelled).
    pub namespace_origin: crate::containerd::owner::NamespaceOrigin,
    pub registry: String,
    pub registry_options: RegistryOptions,
    pub lazy_reset: Option<String>,
    pub stargz_metrics: Option<String>,
    pub runs_file: PathBuf,
    pub budget: Duration,
    pub quick: bool,
    pub timeout: Duration,
    /// Only these matrix points (for `--check`); None = the whole plan.
    pub only: Option<Vec<(String, Strategy, usize)>>,
    /// Build images even when the registry has them.
    pub rebuild: bool,
    /// Clean calibration images in namespaces that are not advisor's too (`--force`).
    pub force: bool,
    /// Compression threads of the image builds (`--jobs`).
    pub jobs: std::num::NonZeroUsize,
}

/// Progress of the matrix, for the command's progress bar.
pub trait Progress {
    fn stage(&self, _msg: &str) {}
    fn planned(&self, _total: usize, _done: usize) {}
    fn run_done(&self, _key: &str, _run: &RunRecord) {}
}

/// A tag that changes when the spec changes: the first 12 hex digits of the
/// spec's sha256 (same spec, same digests: a build is skipped when the
/// registry already has it).
pub fn spec_tag(spec_text: &str) -> String {
    crate::estargz::sha256_digest(spec_text.as_bytes()).trim_start_matches("sha256:")[..12]
        .to_string()
}

/// The tag of an image's prioritized form: the spec and the prioritized
/// directories (the files in them follow from the spec).
pub fn prefetch_tag(spec_text: &str, dirs: &[String]) -> String {
    format!(
        "{}-prefetch",
        spec_tag(&format!("{spec_text}\n{}", dirs.join("\n")))
    )
}

/// Build and push a calibration image unless the registry already has it;
/// return its file table and gzip size.
async fn ensure_image(
    s: &RunnerSettings,
    m: &MatrixImage,
    progress: &dyn Progress,
) -> anyhow::Result<CalImage> {
    let Some((_, text)) = SPECS.iter().find(|(f, _)| *f == m.spec) else {
        anyhow::bail!(
            "calibration matrix names spec {} which is not embedded (a bug)",
            m.spec
        );
    };
    let tag = spec_tag(text);
    let target = format!("{}/{REPOSITORY}/{}:{tag}", s.registry, m.name);
    let targets =
        crate::image::push::Targets::from_reference(&target, s.registry_options.plain_http)?;
    let client = RegistryClient::new(s.registry_options.clone())?;
    let present = !s.rebuild
        && client.resolve(&targets.gzip).await.is_ok()
        && client.resolve(&targets.estargz).await.is_ok();
    if !present {
        progress.stage(&format!(
            "building and pushing calibration image {} ({target})",
            m.name
        ));
        crate::image::build_and_push_spec_with_jobs(text, &m.spec, &target, &[], &client, s.jobs)
            .await?;
    }
    let insp =
        crate::filetable::inspect::inspect(&client, &targets.estargz, Default::default()).await?;
    let files = insp.image_files().map_err(|_| {
        anyhow::anyhow!(
            "calibration image {} has layers that are not eStargz (a bug)",
            targets.estargz
        )
    })?;
    let gz = client.resolve(&targets.gzip).await?;
    let gzip_bytes = gz.manifest.layers().iter().map(|l| Bytes(l.size())).sum();
    let mut img = CalImage {
        name: m.name.clone(),
        gzip_reference: targets.gzip.clone(),
        estargz_reference: targets.estargz.clone(),
        gzip_bytes,
        files,
        workload: m.workload.clone(),
        prefetch_reference: None,
    };
    if !m.workload.prefetch.is_empty() {
        // The same spec with the prefetch directories' files prioritized,
        // in the order the workload lists them.
        let target = format!(
            "{}/{REPOSITORY}/{}:{}",
            s.registry,
            m.name,
            prefetch_tag(text, &m.workload.prefetch)
        );
        let prio =
            crate::image::push::Targets::from_reference(&target, s.registry_options.plain_http)?;
        if s.rebuild || client.resolve(&prio.estargz).await.is_err() {
            let paths: Vec<String> = img
                .prefetch_files()
                .iter()
                .map(|f| format!("/{}", img.files.file(*f).path))
                .collect();
            progress.stage(&format!(
                "building and pushing the prioritized form of {} ({} files, {target})",
                m.name,
                paths.len()
            ));
            crate::image::build_and_push_spec_with_jobs(
                text, &m.spec, &target, &paths, &client, s.jobs,
            )
            .await?;
        }
        img.prefetch_reference = Some(prio.estargz);
    }
    Ok(img)
}

struct Quiet;
impl Observer for Quiet {}

/// One cold run through the bench loop.
async fn one_run(
    s: &RunnerSettings,
    img: &CalImage,
    strategy: Strategy,
    interrupt: tokio::sync::watch::Receiver<bool>,
) -> (RunRecord, Option<anyhow::Error>) {
    let (method, snapshotter, image) = match (strategy, &img.prefetch_reference) {
        (Strategy::Eager, _) => (
            Method::Eager,
            crate::containerd::OVERLAYFS,
            &img.gzip_reference,
        ),
        (Strategy::Lazy, _) => (
            Method::Lazy,
            crate::containerd::STARGZ,
            &img.estargz_reference,
        ),
        (Strategy::LazyPrefetch, Some(prio)) => (Method::Lazy, crate::containerd::STARGZ, prio),
        (Strategy::LazyPrefetch, None) => {
            return (
                failed_record(),
                Some(anyhow::anyhow!(
                    "calibration image {} has no prioritized form (a bug)",
                    img.name
                )),
            );
        }
    };
    let command = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        img.workload.script(&img.files),
    ];
    let bench = BenchSettings {
        image: image.clone(),
        method,
        snapshotter: snapshotter.into(),
        mode: Mode::Cold,
        runs: 1,
        warmup: 0,
        ready: ReadySpec::Exit,
        timeout: s.timeout,
        command: command.clone(),
        keep_image: false,
    };
    let real = RealSettings {
        image: image.clone(),
        method,
        snapshotter: snapshotter.into(),
        stargz_metrics: s.stargz_metrics.clone(),
        lazy_reset: s.lazy_reset.clone(),
        drop_caches: true,
        prefetch_size: DEFAULT_PREFETCH_SIZE,
        max_concurrent_downloads: 0,
        ready: Readiness::Exit,
        command,
        force: s.force,
    };
    let conn = match Connection::connect_own(&s.address, &s.namespace, s.namespace_origin).await {
        Ok(c) => c,
        Err(e) => return (failed_record(), Some(e.into())),
    };
    let mut engine = match RealEngine::new(conn, real, s.registry_options.clone()) {
        Ok(e) => e,
        Err(e) => return (failed_record(), Some(e)),
    };
    let (report, err) = run_bench(&mut engine, &bench, &Quiet, interrupt).await;
    let rec = report.runs.into_iter().last().unwrap_or_else(failed_record);
    (rec, err)
}

fn failed_record() -> RunRecord {
    RunRecord::new(0, crate::bench::Role::Measured)
}

/// Run the matrix (what is not in the runs file yet), appending as it goes.
/// Returns what the runs file holds at the end and notes for the user.
pub async fn run_matrix(
    s: &RunnerSettings,
    progress: &dyn Progress,
    interrupt: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Stored, Vec<String>)> {
    let matrix = Matrix::embedded()?;
    let (mut stored, mut notes) = load_runs(&s.runs_file)?;
    let started = Instant::now();
    for m in &matrix.images {
        if *interrupt.borrow() {
            return Ok((stored, notes));
        }
        let have = stored.images.iter().any(|i| {
            i.name == m.name
                && SPECS.iter().any(|(f, t)| {
                    *f == m.spec && i.gzip_reference.ends_with(&format!(":{}", spec_tag(t)))
                })
                && i.workload == m.workload
        });
        if !have || s.rebuild {
            // Building and pushing can take minutes: a signal stops it (a
            // partial push leaves only unreferenced blobs in the registry).
            let mut signalled = interrupt.clone();
            let img = tokio::select! {
                r = ensure_image(s, m, progress) => r?,
                Ok(_) = signalled.wait_for(|v| *v) => return Ok((stored, notes)),
            };
            append(&s.runs_file, &Record::Image(Box::new(img.clone())))?;
            stored.images.retain(|i| i.name != img.name);
            // Runs of an older version of this image (another spec) no longer count.
            stored.runs.retain(|r| r.image != img.name);
            stored.images.push(img);
        }
    }
    let plan = s.only.clone().unwrap_or_else(|| matrix.plan(s.quick));
    let done = |st: &Stored, k: &str| st.runs.iter().any(|r| r.key == k);
    let todo: Vec<_> = plan
        .iter()
        .filter(|(i, st, r)| !done(&stored, &run_key(i, *st, *r)))
        .cloned()
        .collect();
    progress.planned(plan.len(), plan.len() - todo.len());
    if !todo.is_empty() {
        notes.extend(crate::bench::debug_build_note());
    }
    for (name, strategy, repeat) in todo {
        if *interrupt.borrow() {
            notes.push(
                "interrupted: the runs so far are kept; run the same command again to resume"
                    .into(),
            );
            break;
        }
        if started.elapsed() > s.budget {
            notes.push(format!(
                "budget of {} spent: stopped before {}",
                humantime::format_duration(s.budget),
                run_key(&name, strategy, repeat)
            ));
            break;
        }
        let Some(img) = stored.images.iter().find(|i| i.name == name).cloned() else {
            continue;
        };
        let key = run_key(&name, strategy, repeat);
        progress.stage(&key);
        let (run, err) = one_run(s, &img, strategy, interrupt.clone()).await;
        let cal = CalRun {
            key: key.clone(),
            image: name.clone(),
            strategy,
            repeat,
            run,
        };
        // Keep failed runs out of the file (they would be skipped on resume).
        if err.is_none() && cal.run.error.is_none() {
            append(&s.runs_file, &Record::Run(Box::new(cal.clone())))?;
            progress.run_done(&key, &cal.run);
            stored.runs.retain(|r| r.key != key);
            stored.runs.push(cal);
        }
        if let Some(e) = err {
            if *interrupt.borrow() {
                notes.push(
                    "interrupted: the runs so far are kept; run the same command again to resume"
                        .into(),
                );
                break;
            }
            return Err(e.context(format!(
                "calibration run {key} failed; the runs before it are kept in {}",
                s.runs_file.display()
            )));
        }
        let _ = interrupt.has_changed();
    }
    Ok((stored, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_plan_covers_every_strategy_of_its_images() {
        let m = Matrix::embedded().unwrap();
        let with = m
            .images
            .iter()
            .find(|i| !i.workload.prefetch.is_empty())
            .unwrap();
        let plan = m.check_plan(&[with.name.as_str(), "no-such-image"]);
        let strategies: Vec<Strategy> = plan.iter().map(|(_, s, _)| *s).collect();
        assert_eq!(strategies, Strategy::ALL);
        assert!(plan.iter().all(|(n, _, r)| *n == with.name && *r == 0));
        if let Some(without) = m.images.iter().find(|i| i.workload.prefetch.is_empty()) {
            let plan = m.check_plan(&[without.name.as_str()]);
            assert!(plan.iter().all(|(_, s, _)| *s != Strategy::LazyPrefetch));
            assert_eq!(plan.len(), 2);
        }
    }

    #[test]
    fn the_plan_runs_prioritized_forms_of_the_images_with_prefetch_directories() {
        let m = Matrix::embedded().unwrap();
        let with: Vec<&str> = m
            .images
            .iter()
            .filter(|i| !i.workload.prefetch.is_empty())
            .map(|i| i.name.as_str())
            .collect();
        assert!(with.len() >= 3, "{with:?}");
        for (quick, r) in [(false, &m.repeats), (true, &m.quick_repeats)] {
            let plan = m.plan(quick);
            let pre: Vec<_> = plan
                .iter()
                .filter(|(_, s, _)| *s == Strategy::LazyPrefetch)
                .collect();
            assert_eq!(pre.len(), with.len() * r.prefetch, "quick {quick}");
            assert!(pre.iter().all(|(n, _, _)| with.contains(&n.as_str())));
            // Every round covers every point before the next begins.
            let first_round = plan.iter().take_while(|(_, _, k)| *k == 0).count();
            assert_eq!(first_round, m.images.len() * 2 + with.len());
            let keys: std::collections::BTreeSet<_> =
                plan.iter().map(|(n, s, k)| run_key(n, *s, *k)).collect();
            assert_eq!(keys.len(), plan.len());
        }
        // The prioritized form's tag follows the spec and the directories.
        let t = prefetch_tag("spec", &["/a".into()]);
        assert!(t.ends_with("-prefetch"));
        assert_ne!(t, prefetch_tag("spec", &["/b".into()]));
        assert_ne!(t, prefetch_tag("spec2", &["/a".into()]));
    }
}
