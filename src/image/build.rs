//! Turning a plan into the two forms of an image: gzip and eStargz layer blobs
//! in temporary files, their OCI configs and manifests.
//!
//! Owns the layer files (written through `estargz::writer`, so compression
//! runs on [`BuildSettings::jobs`] threads in bounded batches), the config (diff_ids, entrypoint,
//! cmd, env, workdir, history) and the manifest (eStargz layers annotated with
//! `containerd.io/snapshot/stargz/toc.digest` and
//! `io.containers.estargz.uncompressed-size`). Byte-for-byte deterministic:
//! no timestamps, sorted JSON keys. Does not push (see `push`) and does not
//! print: progress goes to the `indicatif` bars it is handed.
use super::plan::{Plan, PlannedLayer, Source};
use crate::estargz::writer::{
    EntryHeader, EstargzWriter, GzipWriter, Workers, WriterOptions, WrittenLayer,
};
use crate::registry::{MEDIA_TYPE_OCI_MANIFEST, Platform};
use crate::units::Bytes;
use anyhow::Context;
use indicatif::ProgressBar;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// OCI media type of a gzip layer (eStargz layers use it too: they are gzip).
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of an image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Output buffer of a layer file.
const FILE_BUF: usize = 1 << 20;

/// The two forms of every built image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Plain gzip layers, pulled eagerly and unpacked by overlayfs.
    Gzip,
    /// eStargz layers, lazily mounted by the stargz snapshotter.
    Estargz,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Gzip => "gzip",
            Form::Estargz => "estargz",
        }
    }
}

/// How layers are compressed (from the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    pub chunk_size: u64,
    pub gzip_level: u32,
    /// Where the temporary layer files go (default: the system temp dir, `$TMPDIR`).
    pub work_dir: Option<PathBuf>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// Platform of the config (the host's: the base layer is the host's busybox).
    pub platform: Platform,
    /// Compression threads, shared by both forms (`--jobs`; default: the
    /// cores). The layers are the same bytes whatever the number.
    pub jobs: NonZeroUsize,
}

/// The default of [`BuildSettings::jobs`] (and of `--jobs`): the cores
/// this process may use.
pub fn default_jobs() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

impl BuildSettings {
    /// The settings a spec asks for, on this host's platform.
    pub fn from_spec(spec: &super::spec::Spec, work_dir: Option<PathBuf>) -> Self {
        BuildSettings {
            chunk_size: spec.chunk_size.0,
            gzip_level: spec.gzip_level,
            work_dir,
            entrypoint: spec.entrypoint(),
            cmd: spec.cmd(),
            env: spec.env(),
            workdir: spec.workdir.clone(),
            platform: Platform::host(),
            jobs: default_jobs(),
        }
    }
}

/// Progress bars, one per form, counting payload bytes. Hidden bars cost nothing.
#[derive(Debug, Clone)]
pub struct Progress {
    pub gzip: ProgressBar,
    pub estargz: ProgressBar,
}

impl Progress {
    pub fn hidden() -> Self {
        Progress {
            gzip: ProgressBar::hidden(),
            estargz: ProgressBar::hidden(),
        }
    }

    fn bar(&self, form: Form) -> &ProgressBar {
        match form {
            Form::Gzip => &self.gzip,
            Form::Estargz => &self.estargz,
        }
    }
}

/// One written layer blob.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    pub name: String,
    /// The blob, in the build's temporary directory.
    pub path: PathBuf,
    /// Digest, size, diff_id, uncompressed size and (eStargz) the TOC's
    /// digest and offset (its entries are dropped: read them from the blob).
    pub written: WrittenLayer,
    /// Regular files in the layer (generated ones; landmarks not counted).
    pub files: usize,
}

/// One form of the image, ready to push.
#[derive(Debug, Clone)]
pub struct BuiltForm {
    pub form: Form,
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// Both forms; the layer files live as long as this value (the directory is
/// removed on drop).
#[derive(Debug)]
pub struct BuiltImage {
    pub dir: tempfile::TempDir,
    pub gzip: BuiltForm,
    pub estargz: BuiltForm,
    /// Payload bytes of every file, per form.
    pub payload_bytes: Bytes,
}

impl BuiltImage {
    pub fn forms(&self) -> [&BuiltForm; 2] {
        [&self.gzip, &self.estargz]
    }
}

/// Build both forms of the planned image: the two forms are written at once
/// (one thread each framing tars; both share one pool of
/// [`BuildSettings::jobs`] threads for compression). Blocking and CPU-bound:
/// call from a blocking thread.
pub fn build(
    plan: &Plan,
    settings: &BuildSettings,
    progress: &Progress,
) -> anyhow::Result<BuiltImage> {
    let dir = match &settings.work_dir {
        Some(d) => tempfile::Builder::new()
            .prefix("advisor-image-")
            .tempdir_in(d),
        None => tempfile::Builder::new().prefix("advisor-image-").tempdir(),
    }
    .context(
        "cannot create a temporary directory for the layer files (set TMPDIR to a disk with space)",
    )?;
    let payload = plan.payload_bytes();
    progress.gzip.set_length(payload);
    progress.estargz.set_length(payload);
    let workers = workers(settings.jobs)?;
    let (gzip, estargz) = std::thread::scope(|s| {
        let w = &workers;
        let g = s.spawn(|| build_form_on(plan, settings, Form::Gzip, dir.path(), progress, w));
        let e = build_form_on(plan, settings, Form::Estargz, dir.path(), progress, w);
        let g = g
            .join()
            .map_err(|_| anyhow::anyhow!("the gzip layer writer thread panicked (a bug)"));
        (g, e)
    });
    let gzip = gzip??;
    let estargz = estargz?;
    Ok(BuiltImage {
        dir,
        gzip,
        estargz,
        payload_bytes: Bytes(payload),
    })
}

/// The compression pool of `jobs` threads.
fn workers(jobs: NonZeroUsize) -> anyhow::Result<Workers> {
    Workers::new(jobs).context("starting the compression threads (--jobs)")
}

/// Build one form into `dir` (what [`build`] does for each; benchmarks time
/// the forms apart with it), on [`BuildSettings::jobs`] threads.
pub fn build_form(
    plan: &Plan,
    settings: &BuildSettings,
    form: Form,
    dir: &Path,
    progress: &Progress,
) -> anyhow::Result<BuiltForm> {
    build_form_on(
        plan,
        settings,
        form,
        dir,
        progress,
        &workers(settings.jobs)?,
    )
}

fn build_form_on(
    plan: &Plan,
    settings: &BuildSettings,
    form: Form,
    dir: &Path,
    progress: &Progress,
    workers: &Workers,
) -> anyhow::Result<BuiltForm> {
    let bar = progress.bar(form);
    let mut layers = Vec::with_capacity(plan.layers.len());
    for (i, layer) in plan.layers.iter().enumerate() {
        bar.set_message(format!("{} {}", form.name(), layer.name));
        let path = dir.join(format!("{}-{i}.tar.gz", form.name()));
        let label = format!("{} (layer {i}, {} form)", layer.name, form.name());
        let mut written = write_layer(layer, form, settings, &path, label, bar, workers)?;
        // The TOC is in the blob; keeping its entries for every layer would
        // double the plan's memory on layers of millions of files. Digest and
        // offset stay.
        if let Some(t) = written.toc.as_mut() {
            t.toc.entries = Vec::new();
        }
        layers.push(BuiltLayer {
            name: layer.name.clone(),
            path,
            written,
            files: layer.file_count(),
        });
    }
    let config = config_bytes(plan, settings, &layers)?;
    let config_digest = crate::estargz::sha256_digest(&config);
    let manifest = manifest_bytes(&config, &config_digest, &layers)?;
    let manifest_digest = crate::estargz::sha256_digest(&manifest);
    Ok(BuiltForm {
        form,
        layers,
        config,
        config_digest,
        manifest,
        manifest_digest,
    })
}

/// What both writers offer.
trait Sink {
    fn add(
        &mut self,
        h: &EntryHeader,
        r: &mut dyn Read,
        prioritized: bool,
    ) -> Result<(), crate::estargz::Error>;
}

impl<W: io::Write> Sink for EstargzWriter<W> {
    fn add(
        &mut self,
        h: &EntryHeader,
        r: &mut dyn Read,
        prioritized: bool,
    ) -> Result<(), crate::estargz::Error> {
        if prioritized {
            self.append_prioritized(h, r)
        } else {
            self.append(h, r)
        }
    }
}

impl<W: io::Write> Sink for GzipWriter<W> {
    fn add(
        &mut self,
        h: &EntryHeader,
        r: &mut dyn Read,
        _prioritized: bool,
    ) -> Result<(), crate::estargz::Error> {
        self.append(h, r)
    }
}

/// A reader that advances a progress bar.
struct Counting<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn write_layer(
    layer: &PlannedLayer,
    form: Form,
    settings: &BuildSettings,
    path: &Path,
    label: String,
    bar: &ProgressBar,
    workers: &Workers,
) -> anyhow::Result<WrittenLayer> {
    let file = File::create(path)
        .with_context(|| format!("cannot create the layer file {}", path.display()))?;
    let out = BufWriter::with_capacity(FILE_BUF, file);
    let opts = WriterOptions {
        chunk_size: settings.chunk_size,
        level: settings.gzip_level,
        label,
    };
    let (written, out) = match form {
        Form::Gzip => {
            let mut w = GzipWriter::with_workers(out, opts, workers.clone())?;
            feed(&mut w, layer, bar)?;
            w.finish()?
        }
        Form::Estargz => {
            let mut w = EstargzWriter::with_workers(out, opts, workers.clone())?;
            feed(&mut w, layer, bar)?;
            w.finish()?
        }
    };
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write the layer file {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write the layer file {}", path.display()))?;
    Ok(written)
}

fn feed(sink: &mut dyn Sink, layer: &PlannedLayer, bar: &ProgressBar) -> anyhow::Result<()> {
    for (i, e) in layer.entries.iter().enumerate() {
        let prioritized = i < layer.prioritized;
        let h = &e.header;
        match &e.source {
            Source::Empty => sink.add(h, &mut io::empty(), prioritized)?,
            Source::Bytes(b) => sink.add(h, &mut &b[..], prioritized)?,
            Source::Generated { key, content } => {
                let mut r = Counting {
                    inner: key.reader(*content, h.size),
                    bar,
                };
                sink.add(h, &mut r, prioritized)?
            }
            Source::HostFile(p) => {
                let f = File::open(p)
                    .with_context(|| format!("cannot open {} for /{}", p.display(), h.path))?;
                // `take`: a file that grew since it was planned adds nothing;
                // one that shrank fails in the writer, naming the entry.
                let mut r = Counting {
                    inner: f.take(h.size),
                    bar,
                };
                sink.add(h, &mut r, prioritized)?
            }
        }
    }
    Ok(())
}

/// JSON with sorted keys: serde_json's `Value` map is a BTreeMap (no
/// `preserve_order`), and oci-spec keeps annotations in HashMaps whose order
/// would otherwise change the digest from run to run.
fn canonical_json<T: Serialize>(v: &T) -> anyhow::Result<Vec<u8>> {
    let value = serde_json::to_value(v).context("serializing an OCI document")?;
    serde_json::to_vec(&value).context("serializing an OCI document")
}

fn config_bytes(plan: &Plan, s: &BuildSettings, layers: &[BuiltLayer]) -> anyhow::Result<Vec<u8>> {
    let mut c = ConfigBuilder::default().env(s.env.clone());
    if let Some(e) = &s.entrypoint {
        c = c.entrypoint(e.clone());
    }
    if let Some(cmd) = &s.cmd {
        c = c.cmd(cmd.clone());
    }
    if let Some(w) = &s.workdir {
        c = c.working_dir(w.clone());
    }
    let history = plan
        .layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created_by(format!("advisor image build: {}", l.name))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.written.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .build()?;
    let mut b = ImageConfigurationBuilder::default()
        .architecture(Arch::from(s.platform.architecture.as_str()))
        .os(Os::from(s.platform.os.as_str()))
        .config(c.build()?)
        .rootfs(rootfs)
        .history(history);
    if let Some(v) = &s.platform.variant {
        b = b.variant(v.clone());
    }
    canonical_json(&b.build()?)
}

fn manifest_bytes(
    config: &[u8],
    config_digest: &str,
    layers: &[BuiltLayer],
) -> anyhow::Result<Vec<u8>> {
    let digest = |d: &str| {
        oci_spec::image::Digest::from_str(d).with_context(|| format!("digest {d} (a bug)"))
    };
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config.len() as u64,
        digest(config_digest)?,
    );
    let mut descs = Vec::with_capacity(layers.len());
    for l in layers {
        let mut d = Descriptor::new(
            MediaType::from(MEDIA_TYPE_LAYER_GZIP),
            l.written.size,
            digest(&l.written.digest)?,
        );
        let ann = l.written.annotations();
        if !ann.is_empty() {
            d.set_annotations(Some(ann.into_iter().collect::<HashMap<_, _>>()));
        }
        descs.push(d);
    }
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(MEDIA_TYPE_OCI_MANIFEST))
        .config(config_desc)
        .layers(descs)
        .build()?;
    canonical_json(&m)
}

/// What `image build` did, per form: the typed result the command reports
/// (it fills in the push fields when it pushed).
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub spec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub seed: u64,
    /// Regular files over all layers (both forms hold the same).
    pub files: usize,
    /// Bytes of file content over all layers.
    pub content_bytes: Bytes,
    pub build_seconds: crate::units::Seconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_seconds: Option<crate::units::Seconds>,
    /// Request body bytes sent to the registry (blobs already there are skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_pushed: Option<u64>,
    pub forms: Vec<FormReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormReport {
    pub form: Form,
    /// Where it was pushed (absent with --dry-run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Sum of the layer blobs.
    pub compressed_size: u64,
    pub layers: Vec<LayerReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    pub files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toc_digest: Option<String>,
}
