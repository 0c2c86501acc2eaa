//! Recordings of the live stream, rendered again exactly as heard
//! (`GET /api/recording`).
//!
//! The embedded engine's output is a pure function of its seed and of what its
//! renderer took, and when: each phrase (and what it was composed from), each
//! texture (or none, where the pad carried), the degradation level, the mix
//! levels ([`auralis::render::journal`]). The source drains the renderer's
//! journal after every chunk into the [`EventLog`] (`log.rs`), bounded to the
//! recording window; a [`Follower`] (`follower.rs`) replays it in the
//! background and keeps a checkpoint of the replayer's state every
//! `--recording-checkpoint-s` of audio (a minute by default); a request (`http.rs`) renders its stretch from the nearest
//! checkpoint before it on a thread of its own (`render.rs`), streaming the
//! WAV or Ogg/Opus bytes as they are made.
//!
//! Positions are sample frames at the source's rate since the bridge started:
//! the `position_frames` of the stream's frame headers.

mod follower;
pub mod http;
pub mod log;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use auralis::engine::Engine;
use auralis::render::journal::{JournalEvent, JournalReader, DEFAULT_JOURNAL_CAPACITY};

pub use self::follower::Follower;
pub use self::log::EventLog;
pub use self::render::{Format, Renders};

/// The source's end: drains the engine's journal into the log after each
/// chunk.
#[derive(Debug)]
pub struct Recorder {
    journal: JournalReader,
    log: Arc<EventLog>,
    scratch: Vec<JournalEvent>,
    lost: u64,
}

impl Recorder {
    /// Starts recording what `engine` plays (call before its first block),
    /// into a log covering `window`.
    #[must_use]
    pub fn attach(engine: &mut Engine, window: Duration) -> Self {
        let config = engine.replay_config().clone();
        let window_frames = (window.as_secs_f64() * f64::from(config.sample_rate)) as u64;
        Self {
            journal: engine.enable_journal(DEFAULT_JOURNAL_CAPACITY),
            log: Arc::new(EventLog::new(config, window_frames)),
            scratch: Vec::with_capacity(64),
            lost: 0,
        }
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> Arc<EventLog> {
        Arc::clone(&self.log)
    }

    /// Moves what the engine recorded up to frame `end` into the log.
    pub fn drain(&mut self, end: u64) {
        self.journal.drain_into(&mut self.scratch);
        let lost = self.journal.lost();
        let overflowed = lost > self.lost;
        self.lost = lost;
        self.log.append(&mut self.scratch, end, overflowed);
    }
}

/// The recording service: the log, its follower and the render limit.
#[derive(Debug)]
pub struct Recording {
    /// The event log.
    pub log: Arc<EventLog>,
    /// Recordings rendered at once.
    pub renders: Arc<Renders>,
    _follower: Follower,
}

impl Recording {
    /// Starts following `log`, a checkpoint every `checkpoint` of audio, with
    /// at most `renders` recordings at once.
    ///
    /// # Errors
    /// The follower thread could not be spawned.
    pub fn start(
        log: Arc<EventLog>,
        renders: usize,
        checkpoint: Duration,
    ) -> std::io::Result<Self> {
        let follower = Follower::spawn(Arc::clone(&log), checkpoint)?;
        Ok(Self {
            log,
            renders: Renders::new(renders),
            _follower: follower,
        })
    }
}
