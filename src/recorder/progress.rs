//! What `trace record` shows while it works: the phase (pull, reference run,
//! recorded run, clean-up), the time spent in it, and what is known so far
//! (files opened and bytes read by the recorded run, when the workload was
//! ready, the timeout that stops it).
//!
//! Owns the text of that line only. It is drawn on the `indicatif` bar the
//! command hands over (hidden when stderr is not a terminal or with -q, so
//! nothing reaches stdout or a JSON report); the recording updates it from
//! its threads.
use crate::units::{Bytes, Seconds};
use indicatif::ProgressBar;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The steps of a recording, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving and pulling the image (eager, overlayfs).
    Pull,
    /// The workload without the recorder, timed.
    ReferenceRun,
    /// The workload with the recorder under its rootfs.
    RecordedRun,
    /// Containers, mounts and the image removed.
    CleanUp,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pull => "pull",
            Phase::ReferenceRun => "reference run",
            Phase::RecordedRun => "recorded run",
            Phase::CleanUp => "clean-up",
        }
    }
}

/// What is known in the current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub phase: Phase,
    /// The workload's timeout (both runs stop there).
    pub timeout: Duration,
    /// When the workload was ready, from its start (this phase's run).
    pub ready: Option<Duration>,
    /// Which reference run of how many (reference runs only).
    pub run: Option<(u32, u32)>,
    /// Files opened and bytes read so far (recorded run).
    pub files_opened: u64,
    pub bytes_read: u64,
    pub events: u64,
}

impl Known {
    fn new(timeout: Duration) -> Self {
        Known {
            phase: Phase::Pull,
            timeout,
            ready: None,
            run: None,
            files_opened: 0,
            bytes_read: 0,
            events: 0,
        }
    }

    /// The line's message (the bar draws the phase and elapsed time before it).
    pub fn message(&self) -> String {
        let secs = |d: Duration| Seconds(d.as_secs_f64());
        let ready = match self.ready {
            Some(r) => format!("ready at {}", secs(r)),
            None => "not ready yet".to_string(),
        };
        match self.phase {
            Phase::Pull => "resolving and pulling the image (overlayfs)".to_string(),
            Phase::ReferenceRun => format!(
                "{}without the recorder; {ready}; stopped at {} (--timeout)",
                match self.run {
                    Some((i, n)) if n > 1 => format!("{i} of {n}, "),
                    _ => String::new(),
                },
                secs(self.timeout)
            ),
            Phase::RecordedRun => format!(
                "{} files opened, {} read ({} events); {ready}; stopped at {} (--timeout)",
                self.files_opened,
                Bytes(self.bytes_read),
                self.events,
                secs(self.timeout)
            ),
            Phase::CleanUp => "removing the containers, mounts and the pulled image".to_string(),
        }
    }
}

/// The recording's progress line; clones update the same line.
#[derive(Debug, Clone)]
pub struct RecordProgress {
    bar: ProgressBar,
    known: Arc<Mutex<Known>>,
}

impl RecordProgress {
    /// Nothing drawn.
    pub fn hidden() -> Self {
        Self::new(ProgressBar::hidden(), Duration::ZERO)
    }

    /// Draw on `bar` (a spinner: its template shows `{prefix}`, the phase,
    /// `{elapsed}` in it, and `{wide_msg}`, [`Known::message`]).
    pub fn new(bar: ProgressBar, timeout: Duration) -> Self {
        let p = RecordProgress {
            bar,
            known: Arc::new(Mutex::new(Known::new(timeout))),
        };
        p.phase(Phase::Pull);
        p
    }

    /// What the line says now.
    pub fn known(&self) -> Known {
        *self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Known)) {
        let msg = {
            let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut k);
            k.message()
        };
        self.bar.set_message(msg);
    }

    /// A new phase: its elapsed time starts at zero, nothing is known yet.
    pub fn phase(&self, phase: Phase) {
        self.bar.set_prefix(phase.name());
        self.bar.reset_elapsed();
        self.update(|k| {
            *k = Known {
                phase,
                ..Known::new(k.timeout)
            }
        });
    }

    /// Reference run `i` of `n` starts (a new phase for each).
    pub fn reference_run(&self, i: u32, n: u32) {
        self.phase(Phase::ReferenceRun);
        self.update(|k| k.run = Some((i, n)));
    }

    /// The workload of this phase was ready `at` after its start.
    pub fn ready(&self, at: Duration) {
        self.update(|k| k.ready = Some(at));
    }

    /// Counts of the recorded run so far.
    pub fn seen(&self, events: u64, files_opened: u64, bytes_read: u64) {
        self.update(|k| {
            k.events = events;
            k.files_opened = files_opened;
            k.bytes_read = bytes_read;
        });
    }

    /// Remove the line (before the report is printed).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_phase_and_what_is_known() {
        let p = RecordProgress::new(ProgressBar::hidden(), Duration::from_secs(300));
        assert_eq!(p.known().phase, Phase::Pull);
        p.phase(Phase::ReferenceRun);
        let m = p.known().message();
        assert!(m.starts_with("without the recorder; not ready yet"), "{m}");
        p.reference_run(2, 3);
        let m = p.known().message();
        assert!(
            m.starts_with("2 of 3, without the recorder; not ready yet"),
            "{m}"
        );
        assert!(m.contains("stopped at 5m 00s (--timeout)"), "{m}");
        p.ready(Duration::from_millis(2500));
        assert!(
            p.known().message().contains("ready at 2.5"),
            "{}",
            p.known().message()
        );

        // A new phase forgets the last one's readiness but keeps the timeout.
        p.phase(Phase::RecordedRun);
        p.seen(10, 3, 5 << 20);
        let k = p.known();
        assert_eq!(k.ready, None);
        assert_eq!(k.timeout, Duration::from_secs(300));
        let m = k.message();
        assert!(
            m.starts_with("3 files opened, 5.00 MiB read (10 events); not ready yet"),
            "{m}"
        );
        assert_eq!(Phase::RecordedRun.name(), "recorded run");
    }
}
