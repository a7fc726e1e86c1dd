//! Replaying a workload under one strategy: the equations of docs/model.md.
//!
//! Produces, per phase (before and after `ready`) and per part of the time
//! (resolve, fetch, unpack, mount, …), a [`Cost`] vector; `predict` turns
//! them into estimates with intervals. The lazy replay drives the fetch
//! simulator, which carries the snapshotter's cache state from one access to
//! the next, and advances background fetch through idle gaps on a clock of
//! point estimates.
use super::cost::Cost;
use super::workload::{Access, AccessKind, Workload};
use crate::estargz::table::{FileKind, FileRef, ImageFiles, LayerFiles};
use crate::profile::{Param, Profile};
use crate::simulate::network::{Link, NetUse};
use crate::simulate::snapshotter::{BackgroundCursor, FetchConfig, ReadOutcome, Simulator};
use crate::units::{Bytes, Seconds};
use serde::{Deserialize, Serialize};

/// The snapshotter starts background fetch once no prioritized task ran for
/// this long (fs/layer: `NewBackgroundTaskManager(maxConcurrency, 5*time.Second)`).
pub const BACKGROUND_IDLE_S: f64 = 5.0;
/// Background blob reads in flight daemon-wide (`max_concurrency` default 2).
pub const BACKGROUND_CONCURRENCY: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// gzip layers unpacked by overlayfs.
    Eager,
    /// eStargz through the stargz snapshotter, as the image is.
    Lazy,
    /// eStargz rebuilt with the trace's startup files prioritized.
    LazyPrefetch,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Eager, Strategy::Lazy, Strategy::LazyPrefetch];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Eager => "eager",
            Strategy::Lazy => "lazy",
            Strategy::LazyPrefetch => "lazy+prefetch",
        }
    }
}

/// Parts of the predicted time, for the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Manifest and config.
    Resolve,
    /// Downloading layers (eager), with the pull's fixed cost.
    Pull,
    /// Unpacking layers (eager).
    Unpack,
    /// Mounting layers remotely: footer, TOC, FUSE (lazy).
    Mount,
    /// Container create, task start, process start.
    Start,
    /// Prefetching prioritized files (lazy).
    Prefetch,
    /// Fetching, decompressing and verifying chunks on demand (lazy).
    OnDemandFetch,
    /// Reading: local disk (eager) or FUSE (lazy).
    Io,
    /// The workload's own time between file accesses, from the trace.
    Compute,
}

impl Part {
    pub const ALL: [Part; 9] = [
        Part::Resolve,
        Part::Pull,
        Part::Unpack,
        Part::Mount,
        Part::Start,
        Part::Prefetch,
        Part::OnDemandFetch,
        Part::Io,
        Part::Compute,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Resolve => "resolve",
            Part::Pull => "pull",
            Part::Unpack => "unpack",
            Part::Mount => "mount",
            Part::Start => "start",
            Part::Prefetch => "prefetch",
            Part::OnDemandFetch => "on-demand fetch",
            Part::Io => "local/FUSE I/O",
            Part::Compute => "compute",
        }
    }
}

const NPARTS: usize = Part::ALL.len();

/// Counts behind a replay, beside its costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayCounts {
    /// Compressed bytes from the registry (manifest/config excluded).
    pub network_bytes: Bytes,
    /// Of which fetched by background fetch during idle gaps.
    pub background_bytes: Bytes,
    /// Range requests (lazy) or blob downloads (eager).
    pub requests: u64,
    /// eStargz chunks decompressed on demand or by prefetch.
    pub chunks: u64,
    /// Bytes the workload read.
    pub bytes_read: u64,
    /// Bytes on the node's disk afterwards (content + snapshots, or caches).
    pub disk_bytes: Bytes,
}

/// One strategy's replay.
#[derive(Debug, Clone)]
pub struct Replay {
    pub strategy: Strategy,
    pub before_ready: [Cost; NPARTS],
    pub after_ready: [Cost; NPARTS],
    /// Network work on the critical path of each part, priced by a [`Link`]
    /// when the prediction is for a path other than the calibration's.
    pub net_before_ready: [NetUse; NPARTS],
    pub net_after_ready: [NetUse; NPARTS],
    pub counts: ReplayCounts,
    /// Lazy, with background fetch on: what it downloads after the
    /// workload's last access ([`Rest`]).
    pub rest: Option<Rest>,
}

/// The rest of the lazy layers, which the snapshotter's background fetch
/// downloads once no prioritized task ran for [`BACKGROUND_IDLE_S`] after
/// the workload's last access: blob reads of ≤ 2 MiB, two in flight
/// daemon-wide, whether or not the container is still there.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rest {
    /// The node's work: the per-read prices divided among the reads in
    /// flight, receiving the bytes not.
    pub node: Cost,
    pub requests: u64,
    pub bytes: Bytes,
    /// The workload's time after its last access (s): background fetch
    /// starts [`BACKGROUND_IDLE_S`] after that access.
    pub after_last_access_s: f64,
}

impl Rest {
    /// The path's work: half the requests' round trips, the bytes on two
    /// streams.
    pub fn net(&self) -> NetUse {
        let b = self.bytes.as_f64();
        NetUse {
            round_trips: self.requests as f64 / BACKGROUND_CONCURRENCY,
            parallel_bytes: b,
            largest_stream_bytes: b / BACKGROUND_CONCURRENCY,
            ..Default::default()
        }
    }
}

impl Replay {
    fn new(strategy: Strategy) -> Self {
        Replay {
            strategy,
            before_ready: [Cost::zero(); NPARTS],
            after_ready: [Cost::zero(); NPARTS],
            net_before_ready: [NetUse::default(); NPARTS],
            net_after_ready: [NetUse::default(); NPARTS],
            counts: ReplayCounts::default(),
            rest: None,
        }
    }

    pub fn net(&mut self, after: bool, p: Part) -> &mut NetUse {
        let i = p as usize;
        if after {
            &mut self.net_after_ready[i]
        } else {
            &mut self.net_before_ready[i]
        }
    }

    /// Seconds `link` adds to part `p` (before or after ready) beyond what
    /// the calibration's own link ([`Profile::calibration_link`]) already put
    /// in the prices: a path's cost is its round trips and set-ups, and the
    /// transfer beyond the node's own per-byte receive work (the per-byte
    /// download prices `eager_fetch_s_per_byte`, `range_s_per_byte`,
    /// `prefetch_s_per_byte` are the node hashing and writing what arrives,
    /// which overlaps the arrival). The calibration's own path adds 0; a
    /// faster one can take time away, never more than the part costs.
    pub fn network_s(&self, after: bool, p: Part, profile: &Profile, link: &Link) -> f64 {
        let (net, cost) = if after {
            (
                &self.net_after_ready[p as usize],
                &self.after_ready[p as usize],
            )
        } else {
            (
                &self.net_before_ready[p as usize],
                &self.before_ready[p as usize],
            )
        };
        let d = path_delta_s(net, cost, profile, link);
        // The part's own cost (25 parameter lookups) only when the path is
        // nearer than the calibration's: the sweep calls this per step.
        if d >= 0.0 {
            d
        } else {
            d.max(-cost.value(profile))
        }
    }

    /// What phase `after` (false: to ready, true: ready to exit) asks of
    /// `link`, summed over its parts: payload bytes, round trips waited and
    /// the seconds it moves its bytes — the transfer or the node's receiving
    /// them, whichever is slower ([`moving_s`]).
    pub fn phase_use(&self, after: bool, profile: &Profile, link: &Link) -> PhaseUse {
        let (nets, costs) = if after {
            (&self.net_after_ready, &self.after_ready)
        } else {
            (&self.net_before_ready, &self.before_ready)
        };
        nets.iter()
            .zip(costs.iter())
            .fold(PhaseUse::default(), |mut u, (n, c)| {
                u.bytes += n.serial_bytes + n.parallel_bytes + n.lane_bytes;
                u.round_trips += n.round_trips + n.lane_round_trips;
                u.moving_s += moving_s(n, c, profile, link);
                u
            })
    }

    /// Seconds `link` adds before ready (`after` false) or in all (true).
    pub fn network_total_s(&self, through_exit: bool, profile: &Profile, link: &Link) -> f64 {
        let phase = |after| {
            Part::ALL
                .iter()
                .map(|&p| self.network_s(after, p, profile, link))
                .sum::<f64>()
        };
        phase(false) + if through_exit { phase(true) } else { 0.0 }
    }

    pub fn part(&mut self, after: bool, p: Part) -> &mut Cost {
        let i = p as usize;
        if after {
            &mut self.after_ready[i]
        } else {
            &mut self.before_ready[i]
        }
    }

    pub fn cold_start(&self) -> Cost {
        self.before_ready.iter().copied().sum()
    }

    pub fn completion(&self) -> Cost {
        self.cold_start() + self.after_ready.iter().copied().sum()
    }
}

/// Image quantities the equations use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageCounts {
    pub layers: u64,
    /// Compressed bytes of the eager (gzip) form.
    pub gzip_bytes: Bytes,
    /// Compressed bytes of the lazy (eStargz) form.
    pub estargz_bytes: Bytes,
    /// Uncompressed bytes of regular files.
    pub uncompressed_bytes: Bytes,
    /// Entries unpacked: files, directories, links.
    pub entries: u64,
    /// TOC entries of lazy layers (one per file plus one per further chunk).
    pub toc_entries: u64,
    /// Compressed bytes of barely compressible, Huffman-coded chunks
    /// ([`Chunk::coded_len`](crate::estargz::table::Chunk::coded_len)) in the
    /// lazy layers: what unpacking decodes symbol by symbol. The eStargz form's
    /// members stand for the gzip form's blocks (same data, same coder choice);
    /// 0 for layers without chunk offsets (a scanned gzip table).
    #[serde(default)]
    pub coded_bytes: Bytes,
}

impl ImageCounts {
    /// Bytes the gzip form expands by when unpacked.
    pub fn inflated_bytes(&self) -> Bytes {
        self.uncompressed_bytes.saturating_sub(self.gzip_bytes)
    }

    /// From the file table; `gzip_bytes` overrides the estimate of the gzip
    /// form's size (see [`gzip_estimate`]).
    pub fn of(image: &ImageFiles, gzip_bytes: Option<Bytes>) -> Self {
        let mut c = ImageCounts {
            layers: image.layers.len() as u64,
            ..Default::default()
        };
        for l in &image.layers {
            c.estargz_bytes += Bytes(l.blob_size);
            c.uncompressed_bytes += Bytes(l.uncompressed_size);
            c.entries += l.files.len() as u64;
            if l.format.is_lazy() {
                c.toc_entries += l.files.len() as u64
                    + l.files
                        .iter()
                        .map(|f| f.chunks.len().saturating_sub(1) as u64)
                        .sum::<u64>();
            }
            c.coded_bytes += Bytes(
                l.files
                    .iter()
                    .flat_map(|f| &f.chunks)
                    .map(|ch| ch.coded_len())
                    .sum::<u64>(),
            );
        }
        c.gzip_bytes = gzip_bytes.unwrap_or_else(|| Bytes(gzip_estimate(image)));
        c
    }
}

/// Size of the gzip form when only the eStargz form is known: each eStargz
/// blob up to its TOC member, i.e. without TOC and footer (the per-member
/// gzip headers that remain are a few tens of bytes per file).
pub fn gzip_estimate(image: &ImageFiles) -> u64 {
    image
        .layers
        .iter()
        .map(|l| l.toc_offset.unwrap_or(l.blob_size).min(l.blob_size))
        .sum()
}

/// Eager: pull (download) and unpack the whole image, then start on overlayfs.
/// Layers download concurrently (containerd's default: all at once), each
/// the share of the gzip form its eStargz layer has.
fn eager_setup(r: &mut Replay, image: &ImageFiles, counts: &ImageCounts) {
    let estimate = gzip_estimate(image).max(1) as f64;
    let scale = counts.gzip_bytes.as_f64() / estimate;
    *r.net(false, Part::Pull) = NetUse::concurrent(image.layers.iter().map(|l| {
        Bytes((l.toc_offset.unwrap_or(l.blob_size).min(l.blob_size) as f64 * scale) as u64)
    }));
    let pull = r.part(false, Part::Pull);
    pull.add(Param::EagerPullFixedS, 1.0);
    pull.add(Param::EagerFetchSPerByte, counts.gzip_bytes.as_f64());
    let unpack = r.part(false, Part::Unpack);
    unpack.add(Param::UnpackPerLayerS, counts.layers as f64);
    unpack.add(Param::UnpackSPerByte, counts.uncompressed_bytes.as_f64());
    unpack.add(
        Param::UnpackSPerInflatedByte,
        counts.inflated_bytes().as_f64(),
    );
    unpack.add(Param::UnpackSPerFile, counts.entries as f64);
    unpack.add(Param::UnpackSPerCodedByte, counts.coded_bytes.as_f64());
    let start = r.part(false, Part::Start);
    start.add(Param::StartOverlayS, 1.0);
    start.add(Param::ProcessStartS, 1.0);
    r.counts.network_bytes = counts.gzip_bytes;
    r.counts.requests = counts.layers;
    r.counts.disk_bytes = counts.gzip_bytes + counts.uncompressed_bytes;
}

/// Lazy and lazy+prefetch: mount every layer (downloading the ones that are
/// not eStargz), prefetch (the startup set for lazy+prefetch, each layer's
/// landmark range otherwise), start on stargz. Returns the simulator, with
/// the mounts and prefetch in its cache.
fn lazy_setup<'a>(
    r: &mut Replay,
    image: &'a ImageFiles,
    counts: &ImageCounts,
    startup: &[FileRef],
    fetch: &FetchConfig,
) -> Simulator<'a> {
    let mut sim = Simulator::new(image, fetch.clone());
    r.part(false, Part::Mount).add(Param::LazyPullFixedS, 1.0);
    // The snapshotter's own connection, `GET bytes=0-1` and `HEAD`, then the
    // first layer's footer and TOC on the critical path; the other layers
    // resolve in parallel (stargz-internals.md §3, §6).
    let mut first = true;
    let mut others = Vec::new();
    let mut downloads = Vec::new();
    for (li, l) in image.layers.iter().enumerate() {
        let o = sim.mount(li);
        r.counts.network_bytes += o.network_bytes;
        if l.format.is_lazy() {
            r.part(false, Part::Mount).add(Param::MountPerLayerS, 1.0);
            r.counts.requests += o.requests;
            if std::mem::take(&mut first) {
                *r.net(false, Part::Mount) =
                    NetUse::handshake(2) + NetUse::serial(o.requests, o.network_bytes);
            } else {
                others.push(o.network_bytes);
            }
        } else {
            downloads.push(o.network_bytes);
            unmountable_layer(r, l);
        }
    }
    let mut rest = NetUse::concurrent(others);
    rest.round_trips = 0.0;
    *r.net(false, Part::Mount) += rest;
    *r.net(false, Part::Pull) = NetUse::concurrent(downloads);
    r.part(false, Part::Mount)
        .add(Param::MountPerEntryS, counts.toc_entries as f64);
    // Prefetch: one GET per layer, layers in parallel.
    let (pre, streams) = if r.strategy == Strategy::LazyPrefetch {
        let o = sim.prefetch_files(startup);
        let streams = vec![o.network_bytes];
        (o, streams)
    } else {
        let mut o = ReadOutcome::default();
        let mut streams = Vec::new();
        for li in 0..image.layers.len() {
            let l = sim.prefetch(li);
            streams.push(l.network_bytes);
            o += l;
        }
        (o, streams)
    };
    if pre.requests > 0 {
        *r.net(false, Part::Prefetch) = NetUse::concurrent(streams);
    }
    add_fetch(r, false, Part::Prefetch, &pre);
    let start = r.part(false, Part::Start);
    start.add(Param::StartStargzS, 1.0);
    start.add(Param::ProcessStartS, 1.0);
    sim
}

/// A layer the snapshotter cannot mount: containerd downloads and unpacks it.
fn unmountable_layer(r: &mut Replay, l: &LayerFiles) {
    r.part(false, Part::Pull)
        .add(Param::EagerFetchSPerByte, l.blob_size as f64);
    let unpack = r.part(false, Part::Unpack);
    unpack.add(Param::UnpackPerLayerS, 1.0);
    unpack.add(Param::UnpackSPerByte, l.uncompressed_size as f64);
    unpack.add(
        Param::UnpackSPerInflatedByte,
        l.uncompressed_size.saturating_sub(l.blob_size) as f64,
    );
    unpack.add(Param::UnpackSPerFile, l.files.len() as f64);
    r.counts.requests += 1;
    r.counts.disk_bytes += Bytes(l.uncompressed_size);
}

/// Replays accesses one at a time under one strategy; [`eager`], [`lazy`]
/// and the working-set sweep all drive it.
pub struct Replayer<'a> {
    image: &'a ImageFiles,
    profile: &'a Profile,
    sim: Option<Simulator<'a>>,
    /// Eager: per layer, file sizes (a dense table for the read path; the
    /// lazy simulator keeps its own).
    sizes: Vec<Vec<u64>>,
    background: bool,
    cursor: BackgroundCursor,
    background_done: bool,
    /// While readers run at once: each one's on-demand network work.
    lanes: Option<rustc_hash::FxHashMap<u32, NetUse>>,
    pub replay: Replay,
}

impl<'a> Replayer<'a> {
    /// Set up a strategy: everything before the workload's first access
    /// (resolve, pull or mount, prefetch, start). `startup` is the prioritized
    /// set for lazy+prefetch.
    pub fn new(
        image: &'a ImageFiles,
        counts: &ImageCounts,
        strategy: Strategy,
        startup: &[FileRef],
        fetch: &FetchConfig,
        profile: &'a Profile,
        background: bool,
    ) -> Self {
        let mut r = Replay::new(strategy);
        r.part(false, Part::Resolve).add(Param::ResolveS, 1.0);
        // A connection, then HEAD and GET of the manifest and the config.
        *r.net(false, Part::Resolve) = NetUse::handshake(3);
        let sim = match strategy {
            Strategy::Eager => {
                eager_setup(&mut r, image, counts);
                None
            }
            Strategy::Lazy | Strategy::LazyPrefetch => {
                Some(lazy_setup(&mut r, image, counts, startup, fetch))
            }
        };
        let sizes = if sim.is_none() {
            image
                .layers
                .iter()
                .map(|l| l.files.iter().map(|f| f.size).collect())
                .collect()
        } else {
            Vec::new()
        };
        Replayer {
            image,
            profile,
            sim,
            sizes,
            background,
            cursor: BackgroundCursor::default(),
            background_done: false,
            lanes: None,
            replay: r,
        }
    }

    /// Readers start running at once: their on-demand requests overlap
    /// until [`Replayer::end_concurrent`]. The node's own work (FUSE,
    /// decompression, the per-request price) stays serial: dividing its
    /// per-operation part among the node's cores measured worse
    /// (docs/model.md § "Readers at once").
    pub fn begin_concurrent(&mut self) {
        self.lanes.get_or_insert_with(Default::default).clear();
    }

    /// The concurrent readers are done: their network work joins the part's
    /// critical path as overlapped lanes ([`NetUse::overlapped`]).
    pub fn end_concurrent(&mut self, after: bool) {
        if let Some(lanes) = self.lanes.take() {
            *self.replay.net(after, Part::OnDemandFetch) += NetUse::overlapped(lanes.into_values());
        }
    }

    /// Compute time (s) before the next access; long enough idle lets
    /// background fetch run.
    pub fn idle(&mut self, after: bool, gap: f64) {
        self.replay.part(after, Part::Compute).constant_s += Seconds(gap);
        if self.background
            && !self.background_done
            && gap > BACKGROUND_IDLE_S
            && let Some(sim) = self.sim.as_mut()
        {
            self.background_done = run_background(
                sim,
                &mut self.cursor,
                gap - BACKGROUND_IDLE_S,
                self.profile,
                &mut self.replay.counts,
            );
        }
    }

    /// One file access.
    pub fn access(&mut self, a: &Access, after: bool) {
        let r = &mut self.replay;
        let lazy_layer = self.sim.is_some() && self.image.layers[a.file.layer].format.is_lazy();
        match (a.kind, self.sim.as_mut()) {
            (AccessKind::Open, _) => {
                let p = if lazy_layer {
                    Param::FuseOpenS
                } else {
                    Param::LocalOpenS
                };
                r.part(after, Part::Io).add(p, 1.0);
            }
            (AccessKind::Read, None) => {
                let n = served(self.sizes[a.file.layer][a.file.file], a.offset, a.len_opt());
                r.counts.bytes_read += n;
                r.part(after, Part::Io)
                    .add(Param::LocalReadSPerByte, n as f64);
            }
            (AccessKind::Read, Some(sim)) => {
                let o = sim.read(a.file, a.offset, a.len_opt());
                r.counts.bytes_read += o.bytes_served.0;
                add_fetch(r, after, Part::OnDemandFetch, &o);
                let net = NetUse::serial(o.requests, o.network_bytes);
                match self.lanes.as_mut() {
                    Some(lanes) => *lanes.entry(a.lane).or_default() += net,
                    None => *r.net(after, Part::OnDemandFetch) += net,
                }
                let io = r.part(after, Part::Io);
                io.add(
                    Param::FuseSPerByte,
                    (o.bytes_served - o.bytes_served_locally).as_f64(),
                );
                io.add(Param::LocalReadSPerByte, o.bytes_served_locally.as_f64());
            }
        }
    }

    /// `n` lookups that are not an open's own ([`Workload::lookups`]): on a
    /// lazy rootfs each is a round trip to the snapshotter, priced as the
    /// FUSE part of an open (lookup, getattr, open); overlayfs answers them
    /// in the kernel.
    pub fn lookups(&mut self, after: bool, n: u64) {
        if self.sim.is_some() {
            self.replay
                .part(after, Part::Io)
                .add(Param::FuseOpenS, n as f64);
        }
    }

    /// The replay, with disk use of the lazy caches.
    pub fn finish(mut self) -> Replay {
        self.count_cache_disk();
        self.replay
    }

    /// [`Replayer::finish`], and with background fetch on, what it
    /// downloads after the workload's last access (`after_last_access_s`
    /// before its exit). Disk stays what the run leaves.
    pub fn finish_with_rest(mut self, after_last_access_s: f64) -> Replay {
        self.count_cache_disk();
        if self.background
            && let Some(sim) = self.sim.as_mut()
        {
            let mut rest = background_rest(sim, &mut self.cursor);
            rest.after_last_access_s = after_last_access_s;
            self.replay.rest = Some(rest);
        }
        self.replay
    }

    fn count_cache_disk(&mut self) {
        if let Some(sim) = &self.sim {
            // Caches hold the compressed blocks and the decompressed chunks.
            self.replay.counts.disk_bytes +=
                self.replay.counts.network_bytes + Bytes(decompressed_total(sim, self.image));
        }
    }
}

/// Replay a workload under a strategy.
pub fn run(
    image: &ImageFiles,
    counts: &ImageCounts,
    w: &Workload,
    strategy: Strategy,
    fetch: &FetchConfig,
    profile: &Profile,
    background: bool,
) -> Replay {
    let mut rp = Replayer::new(
        image,
        counts,
        strategy,
        &w.startup_files,
        fetch,
        profile,
        background,
    );
    let mut spans = w.concurrent.iter().peekable();
    for (i, a) in w.accesses.iter().enumerate() {
        let after = i >= w.ready_index;
        if spans.peek().is_some_and(|s| s.accesses.end == i) {
            rp.end_concurrent(i > w.ready_index);
            spans.next();
        }
        if spans.peek().is_some_and(|s| s.accesses.start == i) {
            rp.begin_concurrent();
        }
        let mut gap = w.gap_before(i);
        if i == w.ready_index && i > 0 {
            // Split the gap at the ready marker: up to it counts before ready.
            let to_ready = w.gap_to_ready().min(gap);
            rp.replay.part(false, Part::Compute).constant_s += Seconds(to_ready);
            gap -= to_ready;
        }
        rp.idle(after, gap);
        rp.access(a, after);
    }
    rp.end_concurrent(w.ready_index < w.accesses.len());
    if w.ready_index == w.accesses.len() {
        // No access after ready: compute up to ready, then to exit.
        rp.replay.part(false, Part::Compute).constant_s += Seconds(w.gap_to_ready());
    }
    rp.replay.part(true, Part::Compute).constant_s += Seconds(w.gap_to_exit());
    rp.lookups(false, w.lookups[0]);
    rp.lookups(true, w.lookups[1]);
    rp.finish_with_rest(w.gap_to_exit())
}

/// Bytes a read returns.
fn served(size: u64, offset: u64, len: Option<u64>) -> u64 {
    if offset >= size {
        return 0;
    }
    match len {
        Some(l) => l.min(size - offset),
        None => size - offset,
    }
}

/// Price fetched chunks: on demand (one read at a time, through FUSE) or by
/// a layer's prefetch (one GET, files decompressed in parallel), which the
/// calibration measures separately.
fn add_fetch(r: &mut Replay, after: bool, part: Part, o: &ReadOutcome) {
    let c = r.part(after, part);
    c.add(Param::RequestS, o.requests as f64);
    if part == Part::Prefetch {
        c.add(Param::PrefetchSPerByte, o.network_bytes.as_f64());
        c.add(Param::PrefetchChunkS, o.chunks_missed as f64);
        c.add(Param::PrefetchVerifySPerByte, o.decompressed_bytes.as_f64());
    } else {
        c.add(Param::RangeSPerByte, o.network_bytes.as_f64());
        c.add(Param::ChunkS, o.chunks_missed as f64);
        c.add(Param::VerifySPerByte, o.decompressed_bytes.as_f64());
        c.add(
            Param::InflateSPerByte,
            o.decompressed_bytes
                .saturating_sub(o.decompressed_from)
                .as_f64(),
        );
    }
    // Literal-by-literal decoding is the same work either way.
    c.add(Param::InflateSPerCodedByte, o.decompressed_coded.as_f64());
    r.counts.network_bytes += o.network_bytes;
    r.counts.requests += o.requests;
    r.counts.chunks += o.chunks_missed;
}

/// Let background fetch work for `window` seconds (point estimates, two
/// blob reads in flight). Returns true when nothing is left to fetch.
fn run_background(
    sim: &mut Simulator,
    cursor: &mut BackgroundCursor,
    window: f64,
    p: &Profile,
    counts: &mut ReplayCounts,
) -> bool {
    let mut left = window;
    loop {
        let mut probe = *cursor;
        let Some(job) = sim.next_background_job(&mut probe) else {
            return true;
        };
        let t = background_cost(&sim.background_job_cost(job)).value(p);
        if t > left {
            return false;
        }
        left -= t;
        *cursor = probe;
        let o = sim.run_background_job(job);
        counts.network_bytes += o.network_bytes;
        counts.background_bytes += o.network_bytes;
        counts.requests += o.requests;
    }
}

/// Seconds `link` adds to work `net` (whose node prices are `cost`) beyond
/// what the calibration's own link put in the prices ([`Replay::network_s`]);
/// negative on a nearer path.
pub fn path_delta_s(net: &NetUse, cost: &Cost, profile: &Profile, link: &Link) -> f64 {
    let receive = receive_s(cost, profile);
    let path_s = |l: &Link| l.wait_s(net) + (l.transfer_s(net) - receive).max(0.0);
    path_s(link) - path_s(&profile.calibration_link())
}

/// What a phase of a replay asks of the path ([`Replay::phase_use`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseUse {
    pub bytes: f64,
    pub round_trips: f64,
    pub moving_s: f64,
}

/// Seconds `net` moves its bytes on `link`: the transfer, or the node's
/// receive work on them (hashing, writing: `cost`'s per-byte download
/// prices) when that is slower — the two overlap ([`path_delta_s`]).
pub fn moving_s(net: &NetUse, cost: &Cost, profile: &Profile, link: &Link) -> f64 {
    link.transfer_s(net).max(receive_s(cost, profile))
}

/// The node's per-byte download work in `cost`: hashing and writing what
/// arrives (`eager_fetch_s_per_byte`, `range_s_per_byte`,
/// `prefetch_s_per_byte`).
fn receive_s(cost: &Cost, profile: &Profile) -> f64 {
    [
        Param::EagerFetchSPerByte,
        Param::RangeSPerByte,
        Param::PrefetchSPerByte,
    ]
    .iter()
    .map(|&q| cost.count(q) * profile.value(q))
    .sum()
}

/// The node's work of one background blob read: the per-read prices shared
/// by the reads in flight; the bytes not (concurrency does not multiply
/// the node's receive rate).
fn background_cost(o: &ReadOutcome) -> Cost {
    let mut c = Cost::zero();
    let per_read = [
        (Param::RequestS, o.requests as f64),
        (Param::ChunkS, o.chunks_missed as f64),
        (Param::VerifySPerByte, o.decompressed_bytes.as_f64()),
        (
            Param::InflateSPerByte,
            o.decompressed_bytes
                .saturating_sub(o.decompressed_from)
                .as_f64(),
        ),
        (Param::InflateSPerCodedByte, o.decompressed_coded.as_f64()),
    ];
    for (q, n) in per_read {
        c.add(q, n / BACKGROUND_CONCURRENCY);
    }
    c.add(Param::RangeSPerByte, o.network_bytes.as_f64());
    c
}

/// Everything background fetch has left to download, job by job.
fn background_rest(sim: &mut Simulator, cursor: &mut BackgroundCursor) -> Rest {
    let mut rest = Rest::default();
    while let Some(job) = sim.next_background_job(cursor) {
        let o = sim.run_background_job(job);
        rest.node.add_cost(&background_cost(&o));
        rest.requests += o.requests;
        rest.bytes += o.network_bytes;
    }
    rest
}

/// Uncompressed bytes of every chunk the simulator holds in its fs cache.
fn decompressed_total(sim: &Simulator, image: &ImageFiles) -> u64 {
    let mut total = 0;
    for (li, l) in image.layers.iter().enumerate() {
        if !l.format.is_lazy() {
            continue;
        }
        for (fi, f) in l.files.iter().enumerate() {
            if f.kind != FileKind::Reg {
                continue;
            }
            let fr = FileRef {
                layer: li,
                file: fi,
            };
            for (ci, c) in f.chunks.iter().enumerate() {
                if sim.chunk_cached(fr, ci) {
                    total += c.size;
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod calibration_link_tests {
    //! `network_s` against the calibration's own link (issue 15 §3: the
    //! node's parameters do not depend on the link they were measured over).
    use super::*;
    use crate::commands::advise::example;
    use crate::predict::{PredictOptions, predict};
    use crate::trace::format::TraceReader;

    /// The bundled example's image and workload.
    fn example_inputs() -> (ImageFiles, Workload) {
        let image: ImageFiles = serde_json::from_str(example::FILES).unwrap();
        let mut trace = TraceReader::new(
            std::io::Cursor::new(example::TRACE.as_bytes()),
            example::TRACE_NAME,
        )
        .unwrap();
        let w = Workload::from_trace(&image, &mut trace).unwrap();
        (image, w)
    }

    /// A path 5 ms from its registry.
    fn five_ms() -> Link {
        Link {
            rtt_s: 0.005,
            stream_bytes_per_s: 100e6,
            total_bytes_per_s: 250e6,
            setup_s: 0.008,
        }
    }

    /// The bundled profile's prices, as if calibrated over `link`.
    fn calibrated_over(link: Option<Link>) -> Profile {
        let mut p = Profile::default_profile().unwrap();
        p.node.link = link;
        p
    }

    fn predict_on(profile: &Profile, link: Option<Link>) -> crate::predict::Prediction {
        let (image, w) = example_inputs();
        let opts = PredictOptions {
            gzip_bytes: Some(example::GZIP_BYTES),
            fetch: profile.fetch_config(),
            link,
            ..Default::default()
        };
        predict(&image, &w, profile, &opts)
    }

    /// Every strategy's cold start and completion (point values).
    fn times(p: &crate::predict::Prediction) -> Vec<(f64, f64)> {
        p.strategies
            .iter()
            .map(|s| (s.cold_start.value, s.completion.value))
            .collect()
    }

    fn assert_same(a: &[(f64, f64)], b: &[(f64, f64)]) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x.0 - y.0).abs() < 1e-9 && (x.1 - y.1).abs() < 1e-9,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn advising_for_the_calibrations_own_path_predicts_what_the_plain_profile_does() {
        for profile in [
            calibrated_over(Some(five_ms())),
            // An old profile: loopback at its registry round trip.
            calibrated_over(None),
        ] {
            let own = profile.calibration_link();
            let plain = predict_on(&profile, None);
            let same = predict_on(&profile, Some(own));
            assert_same(&times(&plain), &times(&same));
            for s in &same.strategies {
                let n = s.network.unwrap();
                assert!(n.completion_s.0.abs() < 1e-9, "{n:?}");
            }
        }
    }

    #[test]
    fn a_farther_path_adds_the_difference_of_round_trips_only() {
        let profile = calibrated_over(Some(five_ms()));
        let far = Link {
            rtt_s: 0.020,
            ..five_ms()
        };
        let (image, w) = example_inputs();
        let counts = ImageCounts::of(&image, Some(example::GZIP_BYTES));
        for s in Strategy::ALL {
            let r = run(
                &image,
                &counts,
                &w,
                s,
                &profile.fetch_config(),
                &profile,
                true,
            );
            let trips: f64 = r
                .net_before_ready
                .iter()
                .chain(&r.net_after_ready)
                .map(|u| u.round_trips + u.lane_round_trips)
                .sum();
            assert!(trips >= 4.0, "{s:?}: {trips}");
            // 15 ms more per round trip; the same set-ups and bandwidth add nothing.
            let grew = r.network_total_s(true, &profile, &far);
            assert!(
                (grew - 0.015 * trips).abs() < 1e-9,
                "{s:?}: {grew} for {trips}"
            );
        }
    }

    #[test]
    fn a_nearer_path_takes_the_calibrations_round_trips_away_but_never_below_zero() {
        let profile = calibrated_over(Some(five_ms()));
        let near = Link {
            rtt_s: 0.0001,
            setup_s: 0.0001,
            ..five_ms()
        };
        let plain = predict_on(&profile, None);
        let nearer = predict_on(&profile, Some(near));
        for (p, n) in plain.strategies.iter().zip(&nearer.strategies) {
            assert!(n.completion.value < p.completion.value, "{:?}", p.strategy);
            assert!(n.network.unwrap().completion_s.0 < 0.0);
            assert!(
                n.breakdown
                    .iter()
                    .all(|t| t.before_ready_s.0 >= 0.0 && t.after_ready_s.0 >= 0.0)
            );
        }
    }
}

#[cfg(test)]
mod concurrent_tests {
    //! Readers at once (issue 15 §3): their requests' round trips overlap,
    //! their bytes share the link, the node's work stays serial.
    use super::*;
    use crate::predict::tests::{image, profile, read_all};
    use crate::predict::workload::concurrent_spans;

    /// 20 files of one request each, read by two readers taking turns
    /// (`lanes` 2) or by one reader (`lanes` 1).
    fn replay(lanes: u32) -> Replay {
        let image = image(20, 1000, 200_000);
        let mut w = read_all(0..20, 20, 1000);
        for (i, a) in w.accesses.iter_mut().enumerate() {
            a.lane = 1 + (i as u32 / 2) % lanes;
        }
        w.concurrent = concurrent_spans(&w.accesses, w.ready_index);
        let p = profile();
        let counts = ImageCounts::of(&image, None);
        run(
            &image,
            &counts,
            &w,
            Strategy::Lazy,
            &p.fetch_config(),
            &p,
            false,
        )
    }

    fn on_demand(r: &Replay) -> (NetUse, f64, f64) {
        let i = Part::OnDemandFetch as usize;
        (
            r.net_before_ready[i],
            r.before_ready[i].count(Param::RequestS),
            r.before_ready[Part::Io as usize].count(Param::FuseOpenS),
        )
    }

    #[test]
    fn two_readers_at_once_wait_half_the_round_trips_and_share_the_bytes() {
        let (one, one_req, one_open) = on_demand(&replay(1));
        let (two, two_req, two_open) = on_demand(&replay(2));
        assert_eq!(one.round_trips, 20.0, "{one:?}");
        assert_eq!(
            (two.round_trips, two.lane_round_trips),
            (0.0, 10.0),
            "{two:?}"
        );
        // The same bytes, now on two streams sharing the link.
        assert_eq!(one.serial_bytes, two.lane_bytes, "{one:?} {two:?}");
        assert_eq!(two.serial_bytes, 0.0);
        // The busiest reader's own stream: about half (50,000-byte blocks split unevenly).
        let share = two.lane_largest_bytes / two.lane_bytes;
        assert!((0.45..0.55).contains(&share), "{two:?}");
        // The node's work per request and per open stays serial.
        assert_eq!((one_req, one_open), (20.0, 20.0));
        assert_eq!((two_req, two_open), (20.0, 20.0));
    }
}
