//! The `shm:<stream>` source: a plugin in a DAW, read through the shared-memory
//! stream of DESIGN.md §6 (`auralis::stream`).
//!
//! - **Attach**: the stream file is opened (mapped read-only, its control page
//!   read-write) and its header validated; a missing, foreign or corrupt file is
//!   refused with the reason, and tried again at every chunk. A file replaced by a
//!   new writer (new inode) is reopened.
//! - **Follow**: after a (re)sync the reader stays one chunk plus [`MARGIN_MS`]
//!   behind the write position and takes one chunk per pump tick. A chunk not
//!   fully written yet is waited for (at most half a chunk), then counted as an
//!   underrun; a chunk the writer overwrote is counted as a lap; a backlog that
//!   grows past [`MAX_BACKLOG_MS`] (the DAW's clock runs faster than ours) is cut.
//!   All three resynchronise.
//! - **Idle**: when the writer closes the stream, or its heartbeat (bumped by each
//!   `process()` call) does not move for [`STALE_AFTER`] — the DAW stopped
//!   processing, the plugin was removed, the process died — the source sends
//!   silence flagged idle, and picks the stream up again when the heartbeat moves
//!   or a new writer makes a new file.
//! - **Sample rate**: the stream's format is fixed when the bridge starts (the
//!   writer's rate if a stream is there then, else `--sample-rate`). A writer at
//!   another rate is refused (idle, with the reason in the status messages and in
//!   `/api/streams`) until the bridge is restarted, which adopts the new rate.
//! - **Control** reaches the plugin only while its Remote control parameter is on
//!   (published in the header); otherwise the change is refused with that reason.
//!   A preset sets its key, mode, tempo and intensity; the plugin's mix levels stay
//!   the host's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use auralis::compose::phrase::ComposeParams;
use auralis::compose::ParamUpdate;
use auralis::degrade::Level;
use auralis::pacing::RunMode;
use auralis::render::mix::MixLevels;
use auralis::stream::control::SendError;
use auralis::stream::reader::{OpenError, ReadError, ShmReader};

use super::{FillReport, ParamsSnapshot, Source, SourceCommand, SourceError, SourceInfo};

/// A heartbeat that has not moved for this long means the writer stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(1);
/// How far behind the write position, beyond one chunk, a resync puts the reader.
pub const MARGIN_MS: u64 = 50;
/// Largest backlog, beyond one chunk, before the reader skips ahead.
pub const MAX_BACKLOG_MS: u64 = 500;
/// Channels the bridge streams.
const CHANNELS: u16 = 2;

/// Counters and state of the reader, shared with the HTTP handlers, which read
/// them through [`ReaderStats::snapshot`].
#[derive(Debug, Default)]
pub struct ReaderStats {
    laps: AtomicU64,
    underruns: AtomicU64,
    resyncs: AtomicU64,
    attaches: AtomicU64,
    /// 0: none.
    writer_pid: AtomicU64,
    idle_reason: Mutex<Option<String>>,
}

/// The reader's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSnapshot {
    /// Times the writer overwrote frames before they were read.
    pub laps: u64,
    /// Chunks that were not written in time.
    pub underruns: u64,
    /// Resynchronisations (after a lap, an underrun, a long backlog, a new writer).
    pub resyncs: u64,
    /// Writers (stream files) attached so far.
    pub attaches: u64,
    /// Process id of the writer attached now, if one is.
    pub writer_pid: Option<u64>,
    /// Why the stream is idle (`None` while it streams).
    pub idle_reason: Option<String>,
}

impl ReaderStats {
    /// Every counter, read once.
    #[must_use]
    pub fn snapshot(&self) -> ReaderSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReaderSnapshot {
            laps: load(&self.laps),
            underruns: load(&self.underruns),
            resyncs: load(&self.resyncs),
            attaches: load(&self.attaches),
            writer_pid: Some(load(&self.writer_pid)).filter(|pid| *pid != 0),
            idle_reason: self.idle_reason(),
        }
    }

    /// Why the stream is idle, if it is.
    #[must_use]
    pub fn idle_reason(&self) -> Option<String> {
        self.idle_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_idle_reason(&self, reason: Option<String>) {
        *self
            .idle_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = reason;
    }
}

/// Reads a plugin's stream.
#[derive(Debug)]
pub struct ShmSource {
    name: String,
    sample_rate: u32,
    reader: Option<ShmReader>,
    /// Why the attached file cannot be played (wrong rate or channels).
    incompatible: Option<String>,
    /// The next frame to read, once synchronised.
    read_pos: Option<u64>,
    heartbeat: u64,
    heartbeat_at: Instant,
    level: Level,
    /// The plugin's run mode (a DAW's bounce shows `freewheel` or `offline`).
    run_mode: RunMode,
    /// The parameters in force (as the plugin publishes them, or as last set).
    compose: ComposeParams,
    /// The parameters the plugin published last.
    published: Option<ComposeParams>,
    /// The last refusal to open that was logged (to log each reason once).
    logged: Option<String>,
    stats: Arc<ReaderStats>,
}

fn open_reason(name: &str, e: &OpenError) -> String {
    match e {
        OpenError::Missing(_) => format!("no plugin is streaming on shm:{name}"),
        other => other.to_string(),
    }
}

impl ShmSource {
    /// A reader of stream `name`. Its format is the stream's when one is there
    /// now, else `sample_rate`.
    #[must_use]
    pub fn new(name: &str, sample_rate: u32) -> Self {
        let sample_rate = match ShmReader::open(name) {
            Ok(r) => r.header().sample_rate,
            Err(_) => sample_rate,
        };
        Self {
            name: name.to_owned(),
            sample_rate,
            reader: None,
            incompatible: None,
            read_pos: None,
            heartbeat: 0,
            heartbeat_at: Instant::now(),
            level: Level::Normal,
            run_mode: RunMode::RealTime,
            compose: ComposeParams::default(),
            published: None,
            logged: None,
            stats: Arc::new(ReaderStats::default()),
        }
    }

    /// Opens the stream when none is attached or the file was replaced.
    fn attach(&mut self) {
        if self.reader.as_ref().is_some_and(|r| !r.replaced()) {
            return;
        }
        if self.reader.take().is_some() {
            tracing::info!(stream = %self.name, "the stream file was replaced or removed");
            self.stats.writer_pid.store(0, Ordering::Relaxed);
        }
        self.read_pos = None;
        match ShmReader::open(&self.name) {
            Ok(reader) => {
                let h = *reader.header();
                self.incompatible = if h.sample_rate != self.sample_rate {
                    Some(format!(
                        "the plugin streams at {} Hz but this stream is {} Hz; restart the \
                         bridge to follow the new rate",
                        h.sample_rate, self.sample_rate
                    ))
                } else if h.channels != CHANNELS {
                    Some(format!(
                        "the stream has {} channels; the bridge streams {CHANNELS}",
                        h.channels
                    ))
                } else {
                    None
                };
                match &self.incompatible {
                    Some(why) => tracing::warn!(stream = %self.name, "{why}"),
                    None => tracing::info!(
                        stream = %self.name,
                        writer_pid = h.writer_pid,
                        sample_rate = h.sample_rate,
                        "attached to the plugin's stream"
                    ),
                }
                self.stats.attaches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .writer_pid
                    .store(u64::from(h.writer_pid), Ordering::Relaxed);
                // Stale until the heartbeat moves: the file may be a dead writer's.
                self.heartbeat = reader.heartbeat();
                self.heartbeat_at = Instant::now()
                    .checked_sub(STALE_AFTER)
                    .unwrap_or_else(Instant::now);
                self.logged = None;
                self.reader = Some(reader);
            }
            Err(e) => {
                let reason = open_reason(&self.name, &e);
                if self.logged.as_ref() != Some(&reason) {
                    if matches!(e, OpenError::Missing(_)) {
                        tracing::info!(stream = %self.name, "{reason}");
                    } else {
                        tracing::warn!(stream = %self.name, "refusing the stream: {reason}");
                    }
                    self.logged = Some(reason.clone());
                }
                self.stats.set_idle_reason(Some(reason));
            }
        }
    }

    /// Why no live audio comes now, `None` when the writer is live.
    fn check_live(&mut self) -> Option<String> {
        let Some(reader) = &self.reader else {
            return Some(
                self.stats
                    .idle_reason()
                    .unwrap_or_else(|| format!("no plugin is streaming on shm:{}", self.name)),
            );
        };
        if let Some(why) = &self.incompatible {
            return Some(why.clone());
        }
        if reader.closed() {
            return Some(
                "the plugin stopped streaming (deactivated, or Stream switched off)".into(),
            );
        }
        let beat = reader.heartbeat();
        if beat != self.heartbeat {
            self.heartbeat = beat;
            self.heartbeat_at = Instant::now();
        }
        (self.heartbeat_at.elapsed() >= STALE_AFTER).then(|| {
            "the plugin's heartbeat stopped (the DAW is not processing, or the plugin is gone)"
                .to_owned()
        })
    }

    fn frames_of_ms(&self, ms: u64) -> u64 {
        u64::from(self.sample_rate) * ms / 1000
    }

    /// Reads the next chunk; `false` when it could not (silence then).
    fn read_chunk(&mut self, interleaved: &mut [f32], wait: Duration) -> bool {
        let Some(reader) = &self.reader else {
            return false;
        };
        let frames = (interleaved.len() / usize::from(CHANNELS)) as u64;
        let margin = self.frames_of_ms(MARGIN_MS);
        let written = reader.write_pos();
        let sync = written.saturating_sub(frames + margin);
        let pos = match self.read_pos {
            None => sync,
            Some(p) => {
                let behind = written.saturating_sub(p);
                if behind > u64::from(reader.header().capacity_frames) {
                    // The reader stalled for longer than the ring lasts.
                    self.stats.laps.fetch_add(1, Ordering::Relaxed);
                    self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
                    sync
                } else if behind > frames + self.frames_of_ms(MAX_BACKLOG_MS) {
                    self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
                    sync
                } else {
                    p
                }
            }
        };
        let deadline = Instant::now() + wait;
        loop {
            match reader.read(pos, interleaved) {
                Ok(()) => {
                    self.read_pos = Some(pos + frames);
                    return true;
                }
                Err(ReadError::NotYet) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    let counter = match e {
                        ReadError::NotYet => &self.stats.underruns,
                        ReadError::Lapped => &self.stats.laps,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(stream = %self.name, error = %e, "resynchronising");
                    self.read_pos = None;
                    return false;
                }
            }
        }
    }

    fn require_remote(&self) -> Result<&ShmReader, SourceError> {
        let reader = match (&self.reader, self.stats.idle_reason()) {
            (Some(r), None) => r,
            (_, reason) => {
                return Err(SourceError::Unavailable(format!(
                    "the stream cannot be controlled now: {}",
                    reason.unwrap_or_else(|| "no plugin is attached".into())
                )))
            }
        };
        if !reader.remote_control() {
            return Err(SourceError::RemoteControlOff);
        }
        Ok(reader)
    }
}

impl Source for ShmSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            kind: "shm",
            sample_rate: self.sample_rate,
            channels: CHANNELS,
        }
    }

    fn fill(&mut self, interleaved: &mut [f32]) -> FillReport {
        self.attach();
        let reason = self.check_live();
        let live = reason.is_none();
        if let (true, Some(reader)) = (live, &self.reader) {
            self.level = reader.level();
            self.run_mode = reader.run_mode();
            // A change the plugin publishes (the host moved a parameter, or it
            // took a remote change) replaces what was last set from here.
            let published = reader.compose();
            if published.is_some() && published != self.published {
                self.published = published;
                self.compose = published.unwrap_or(self.compose);
            }
        }
        let chunk = Duration::from_secs_f64(
            interleaved.len() as f64 / f64::from(CHANNELS) / f64::from(self.sample_rate),
        );
        let read = live && self.read_chunk(interleaved, chunk / 2);
        if !live {
            self.read_pos = None;
        }
        if !read {
            interleaved.fill(0.0);
        }
        self.stats.set_idle_reason(reason);
        FillReport {
            idle: !live,
            fallback: false,
            level: self.level,
            phrase_index: None,
            run_mode: self.run_mode,
        }
    }

    fn apply(&mut self, command: SourceCommand) -> Result<ParamsSnapshot, SourceError> {
        let reader = self.require_remote()?;
        let base = reader.compose().unwrap_or(self.compose);
        let (next, preset) = match command {
            SourceCommand::Update(update) => (update.apply_to(base), None),
            SourceCommand::Preset(p) => (
                ComposeParams {
                    key: p.compose.key,
                    mode: p.compose.mode,
                    bpm: p.compose.bpm,
                    intensity: p.compose.intensity,
                    ..base
                },
                Some(p.name),
            ),
            SourceCommand::Piece(_) => return Err(SourceError::NoPieces),
        };
        next.validate()?;
        let change = ParamUpdate::between(&base, &next);
        if !change.is_empty() {
            reader.send_control(&change).map_err(|SendError::Full| {
                SourceError::Unavailable(
                    "the plugin has not taken the earlier changes yet; try again".into(),
                )
            })?;
        }
        self.compose = next;
        Ok(ParamsSnapshot {
            compose: next,
            levels: MixLevels::default(),
            preset,
            code: None,
        })
    }

    fn params(&self) -> ParamsSnapshot {
        ParamsSnapshot {
            compose: self.compose,
            levels: MixLevels::default(),
            preset: None,
            code: None,
        }
    }

    fn idle_reason(&self) -> Option<String> {
        self.stats.idle_reason()
    }

    fn reader_stats(&self) -> Option<Arc<ReaderStats>> {
        Some(Arc::clone(&self.stats))
    }
}
