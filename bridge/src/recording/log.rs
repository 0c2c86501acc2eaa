//! The event log: everything that changed the embedded engine's output, in
//! frame order, with the checkpoints a replay may start from, bounded to the
//! recording window.
//!
//! **Bound.** Events older than the newest checkpoint at or before the start
//! of the window are dropped with the checkpoints before it, so the log holds
//! the window plus at most one checkpoint interval: `window ÷ interval + 2`
//! checkpoints and the events of that stretch, capped at [`MAX_EVENTS`]
//! (a flood of mix changes drops the oldest and moves the start of what can
//! be replayed past them).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use auralis::engine::replay::{Checkpoint, ReplayConfig};
use auralis::render::journal::JournalEvent;

/// Most events the log keeps (about 100 bytes each: 20 MB). An hour of
/// ordinary playing records a few hundred (a phrase and its texture every
/// 10–40 s, the level and mix changes); the cap only matters under a flood of
/// control changes.
pub const MAX_EVENTS: usize = 200_000;

/// Where a replay of a stretch starts: a checkpoint, or the engine's start.
#[derive(Debug, Clone)]
pub enum Base {
    /// Frame 0, as the engine was built.
    Start,
    /// A checkpoint a follower took.
    Checkpoint(Arc<Checkpoint>),
}

impl Base {
    /// The frame the base is at.
    #[must_use]
    pub fn position(&self) -> u64 {
        match self {
            Self::Start => 0,
            Self::Checkpoint(c) => c.position(),
        }
    }
}

/// What a render of a stretch needs: where to start and the events from there.
#[derive(Debug, Clone)]
pub struct Script {
    /// The state to start from.
    pub base: Base,
    /// Every event from the base's position to the end of the stretch.
    pub events: Vec<JournalEvent>,
}

/// Why part of the engine's output cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Nothing from this frame on can be replayed.
    pub from_frame: u64,
    /// Why.
    pub reason: String,
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<JournalEvent>,
    /// Frames the engine has rendered (every event before it is in the log).
    end: u64,
    /// Unix time of frame 0 (set at the first append).
    origin_unix_s: Option<f64>,
    /// Checkpoints, oldest first (shared with the renders starting from them).
    checkpoints: VecDeque<Arc<Checkpoint>>,
    /// Nothing dropped yet: a replay may start at frame 0.
    from_start: bool,
    /// The first frame that cannot be replayed, and why.
    broken: Option<Broken>,
}

/// The log, shared by the source (which appends), the follower (which adds
/// checkpoints) and the renders (which read). Each takes the lock briefly.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<Inner>,
    /// What a replay starts from.
    config: ReplayConfig,
    /// Frames the log must cover.
    window_frames: u64,
}

impl EventLog {
    /// A log for an engine `config` describes, covering `window_frames`.
    #[must_use]
    pub fn new(config: ReplayConfig, window_frames: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                end: 0,
                origin_unix_s: None,
                checkpoints: VecDeque::new(),
                from_start: true,
                broken: None,
            }),
            config,
            window_frames,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the log whole, so a poisoned lock still holds one.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a replay starts from.
    #[must_use]
    pub const fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Seconds the log must cover.
    #[must_use]
    pub fn window_s(&self) -> f64 {
        self.window_frames as f64 / f64::from(self.config.sample_rate)
    }

    /// The sample rate in hertz.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate as u32
    }

    /// Appends `events` (in frame order) and moves the end to `end` frames.
    /// `lost`: the journal dropped records before `end` (the log is broken
    /// from there).
    pub fn append(&self, events: &mut Vec<JournalEvent>, end: u64, lost: bool) {
        let mut inner = self.lock();
        if inner.origin_unix_s.is_none() {
            let rate = f64::from(self.config.sample_rate);
            inner.origin_unix_s = Some(crate::unix_now_s() - end as f64 / rate);
        }
        for event in events.drain(..) {
            if matches!(event, JournalEvent::UnkeyedTexture { .. }) {
                mark_broken(
                    &mut inner,
                    event.frame(),
                    "a texture was taken that cannot be made again",
                );
            }
            inner.events.push_back(event);
        }
        if lost {
            let at = inner.end;
            mark_broken(&mut inner, at, "the event journal overflowed");
        }
        while inner.events.len() > MAX_EVENTS {
            inner.events.pop_front();
            // What those events changed is lost: only a later checkpoint helps.
            inner.from_start = false;
            let first = inner.events.front().map_or(inner.end, JournalEvent::frame);
            inner.checkpoints.retain(|c| c.position() >= first);
        }
        inner.end = end;
    }

    /// Marks everything from `from_frame` on as not replayable.
    pub fn mark_broken(&self, from_frame: u64, reason: &str) {
        mark_broken(&mut self.lock(), from_frame, reason);
    }

    /// Frames rendered so far.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.lock().end
    }

    /// Unix time of frame 0, once known.
    #[must_use]
    pub fn origin_unix_s(&self) -> Option<f64> {
        self.lock().origin_unix_s
    }

    /// The stretch that can be rendered, `[from, to)` in frames.
    #[must_use]
    pub fn available(&self) -> (u64, u64) {
        let inner = self.lock();
        available(&inner)
    }

    /// Why (and from where) the output cannot be replayed, if so.
    #[must_use]
    pub fn broken(&self) -> Option<Broken> {
        self.lock().broken.clone()
    }

    /// Events with frames in `[from, to)`, for a follower.
    #[must_use]
    pub fn events_between(&self, from: u64, to: u64) -> Vec<JournalEvent> {
        let inner = self.lock();
        inner
            .events
            .iter()
            .filter(|e| (from..to).contains(&e.frame()))
            .copied()
            .collect()
    }

    /// Keeps `checkpoint` and drops what the window no longer needs.
    pub fn add_checkpoint(&self, checkpoint: Checkpoint) {
        let mut inner = self.lock();
        inner.checkpoints.push_back(Arc::new(checkpoint));
        let window_start = inner.end.saturating_sub(self.window_frames);
        // The newest checkpoint at or before the window's start: what came
        // before it is never needed again.
        let keep_from = inner
            .checkpoints
            .iter()
            .rposition(|c| c.position() <= window_start);
        if let Some(i) = keep_from {
            let base = inner.checkpoints[i].position();
            inner.checkpoints.drain(..i);
            while inner.events.front().is_some_and(|e| e.frame() < base) {
                inner.events.pop_front();
            }
            inner.from_start = false;
        }
    }

    /// Checkpoints kept and events kept (for the size bound).
    #[must_use]
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.checkpoints.len(), inner.events.len())
    }

    /// What a render of `[from, to)` needs, or `None` when that stretch is
    /// not (or no longer, or not yet) in the log.
    #[must_use]
    pub fn script(&self, from: u64, to: u64) -> Option<Script> {
        let inner = self.lock();
        let (first, last) = available(&inner);
        if from < first || to > last || from >= to {
            return None;
        }
        let base = inner
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.position() <= from)
            .cloned()
            .map_or(Base::Start, Base::Checkpoint);
        if matches!(base, Base::Start) && !inner.from_start {
            return None;
        }
        let start = base.position();
        let events = inner
            .events
            .iter()
            .filter(|e| (start..to).contains(&e.frame()))
            .copied()
            .collect();
        Some(Script { base, events })
    }
}

fn mark_broken(inner: &mut Inner, from_frame: u64, reason: &str) {
    if inner
        .broken
        .as_ref()
        .is_none_or(|b| from_frame < b.from_frame)
    {
        tracing::warn!(
            from_frame,
            reason,
            "recordings cannot reach past this frame"
        );
        inner.broken = Some(Broken {
            from_frame,
            reason: reason.to_owned(),
        });
    }
}

fn available(inner: &Inner) -> (u64, u64) {
    let from = if inner.from_start {
        0
    } else {
        inner
            .checkpoints
            .front()
            .map_or(inner.end, |c| c.position())
    };
    let to = inner
        .broken
        .as_ref()
        .map_or(inner.end, |b| b.from_frame.min(inner.end));
    (from.min(to), to)
}

#[cfg(test)]
mod tests {
    use auralis::compose::mix::MixLevels;
    use auralis::compose::phrase::ComposeParams;
    use auralis::engine::replay::Replayer;
    use auralis::prerender::PoolConfig;

    use super::*;

    fn config(sample_rate: f32) -> ReplayConfig {
        ReplayConfig {
            sample_rate,
            seed: 1,
            levels: MixLevels::default(),
            texture: None,
            pool: PoolConfig::for_params(&ComposeParams::default(), sample_rate),
        }
    }

    /// The bound: the log of an engine that has run for 90 windows' worth of
    /// checkpoint intervals keeps the window and at most one interval more,
    /// in `window ÷ interval + 2` checkpoints, and can always render the
    /// whole window. (Time is scaled: an interval of 100 frames plays the part
    /// of a minute, a window of 60 of them the part of an hour.)
    #[test]
    fn the_log_keeps_the_window_and_one_interval_more() {
        let every = 100;
        let window = 60 * every;
        let log = EventLog::new(config(8_000.0), window);
        let mut replayer = Replayer::new(log.config());
        let mut levels = MixLevels::default();
        for k in 1..=90 * 60 / 10 {
            // Ten intervals at a time, a mix change in each.
            let mut events = Vec::new();
            for i in 0..10 {
                levels.reverb = if levels.reverb > 0.3 { 0.2 } else { 0.6 };
                events.push(JournalEvent::Mix {
                    frame: (k - 1) * 10 * every + i * every + 7,
                    levels,
                });
            }
            let end = k * 10 * every;
            log.append(&mut events, end, false);
            while replayer.position() + every <= end {
                let to = replayer.position() + every;
                let events = log.events_between(replayer.position(), to);
                replayer
                    .render_to(&mut events.iter().peekable(), to, |_, _, _| true)
                    .expect("replay");
                log.add_checkpoint(replayer.checkpoint().expect("checkpoint"));
            }
            let (checkpoints, kept) = log.sizes();
            assert!(
                checkpoints as u64 <= window / every + 2,
                "{checkpoints} checkpoints"
            );
            assert!(
                kept as u64 <= (window + every) / every + 10,
                "{kept} events"
            );
            let (from, to) = log.available();
            assert_eq!(to, end);
            assert!(from <= end.saturating_sub(window), "{from}..{to}");
            assert!(log.script(end.saturating_sub(window), end).is_some());
        }
        assert!(log.script(0, 10).is_none(), "the start is gone");
    }

    /// What a checkpoint and an event cost (48 kHz): the figures the
    /// documentation gives.
    #[test]
    fn a_checkpoint_at_48_khz_is_under_two_megabytes() {
        let replayer = Replayer::new(&config(48_000.0));
        let bytes = replayer.checkpoint().expect("checkpoint").heap_bytes();
        let event = size_of::<JournalEvent>();
        eprintln!("checkpoint at 48 kHz: {bytes} bytes; an event: {event} bytes");
        assert!(bytes < 2 << 20, "{bytes} bytes");
        assert!(event <= 128, "{event} bytes");
    }
}
