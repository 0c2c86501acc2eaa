//! How the engine renders, and why: in real time, or as a bounce because the
//! host said it renders offline or because it calls `process()` faster than
//! real time (a freewheeling export that does not say so).
//!
//! [`PacingDetector`] compares the audio a host asks for with the wall time it
//! takes to ask, over windows of [`WINDOW_S`] seconds of audio: a window
//! delivered in less than [`FREEWHEEL_RATIO`] of its duration is a freewheel, one
//! delivered in at least [`REALTIME_RATIO`] of it is real time; in between
//! nothing changes. A clock read and a few additions per block: no allocation,
//! no lock, no system call but the clock.

use std::fmt;
use std::time::Instant;

use crate::render::RenderMode;

/// Seconds of audio in one pacing window.
pub const WINDOW_S: f64 = 1.0;
/// A window delivered in less than this share of its duration is a freewheel.
pub const FREEWHEEL_RATIO: f64 = 0.5;
/// A window delivered in at least this share of its duration is real time.
pub const REALTIME_RATIO: f64 = 0.8;

/// The environment variable that turns freewheel detection off (`off`) or on
/// (`auto`, the default): off, a fast host is played in real time (what a
/// benchmark of the real-time path, or a user who wants the export to sound as
/// the live playback did, asks for); the host's own offline mode still applies.
pub const FREEWHEEL_ENV: &str = "AURALIS_FREEWHEEL";

/// Whether freewheel detection is on for a value of [`FREEWHEEL_ENV`] (`None`:
/// unset).
///
/// # Errors
/// The value, for anything but `auto` or `off` (any case, spaces ignored).
pub fn parse_freewheel_setting(value: Option<&str>) -> Result<bool, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("auto") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(other.to_owned()),
    }
}

/// How the engine renders and why (what the status shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum RunMode {
    /// In real time: never waits, degrades under load.
    #[default]
    RealTime = 0,
    /// Activated in real time, but the host's pace is not known yet (less than
    /// a window of audio since activation): nothing degrades (a slow first
    /// block says nothing about the host), and no texture is waited for,
    /// since the host may be a real-time one (phrases are: the composer makes
    /// one in microseconds). Once the host has played the plugin, activation
    /// primes the first phrase's texture where it last played.
    Starting = 1,
    /// The host calls `process()` faster than real time without saying it
    /// renders offline (a freewheeling export): rendered as a bounce.
    Freewheel = 2,
    /// The host said it renders offline (VST3 `kOffline`, CLAP `render`).
    Offline = 3,
}

impl RunMode {
    /// Every mode, by its number.
    pub const ALL: [Self; 4] = [
        Self::RealTime,
        Self::Starting,
        Self::Freewheel,
        Self::Offline,
    ];

    /// Whether the renderer may wait for phrases and textures (a bounce) or
    /// never does (real time, and while the host's pace is not known).
    #[must_use]
    pub const fn render_mode(self) -> RenderMode {
        match self {
            Self::RealTime | Self::Starting => RenderMode::RealTime,
            Self::Freewheel | Self::Offline => RenderMode::Offline,
        }
    }

    /// Whether the renderer may wait for phrases: as for textures
    /// ([`RunMode::render_mode`]), except that the first blocks after
    /// activation wait for their phrase (the composer makes one in
    /// microseconds), never for a texture (the pre-renderer takes far longer).
    #[must_use]
    pub const fn phrase_mode(self) -> RenderMode {
        match self {
            Self::RealTime => RenderMode::RealTime,
            Self::Starting | Self::Freewheel | Self::Offline => RenderMode::Offline,
        }
    }

    /// Whether the load monitor's level applies (real time alone): a bounce
    /// has no deadline, and the first blocks after activation say nothing
    /// about the host, so only a pinned level applies then.
    #[must_use]
    pub const fn degrades(self) -> bool {
        matches!(self, Self::RealTime)
    }

    /// The mode an engine built for `mode` starts in.
    #[must_use]
    pub const fn from_render_mode(mode: RenderMode) -> Self {
        match mode {
            RenderMode::RealTime => Self::RealTime,
            RenderMode::Offline => Self::Offline,
        }
    }

    /// The mode numbered `n` ([`RunMode::RealTime`] for an unknown number).
    #[must_use]
    pub fn from_u8(n: u8) -> Self {
        Self::ALL.get(usize::from(n)).copied().unwrap_or_default()
    }

    /// Its name in status pages and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RealTime => "realtime",
            Self::Starting => "starting",
            Self::Freewheel => "freewheel",
            Self::Offline => "offline",
        }
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The host's pace, once a window has been judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// About as fast as the audio plays.
    RealTime,
    /// Much faster than the audio plays.
    Freewheel,
}

/// Judges the host's pace from the blocks it asks for (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PacingDetector {
    /// When the window's first block began.
    window_start: Option<Instant>,
    /// Seconds of audio asked for in the window so far.
    window_audio_s: f64,
    /// The last judgment.
    pace: Option<Pace>,
}

impl PacingDetector {
    /// A block of `frames` frames at `sample_rate` begins at `now`; returns the
    /// host's pace as judged so far (`None` before the first full window). The
    /// first window decides either way; later ones change the pace only past
    /// [`FREEWHEEL_RATIO`] or [`REALTIME_RATIO`].
    pub fn observe(&mut self, now: Instant, frames: usize, sample_rate: f32) -> Option<Pace> {
        let start = *self.window_start.get_or_insert(now);
        if self.window_audio_s >= WINDOW_S {
            let ratio = now.saturating_duration_since(start).as_secs_f64() / self.window_audio_s;
            self.pace = match self.pace {
                _ if ratio < FREEWHEEL_RATIO => Some(Pace::Freewheel),
                None => Some(Pace::RealTime),
                Some(_) if ratio >= REALTIME_RATIO => Some(Pace::RealTime),
                kept => kept,
            };
            self.window_start = Some(now);
            self.window_audio_s = 0.0;
        }
        if sample_rate > 0.0 {
            self.window_audio_s += frames as f64 / f64::from(sample_rate);
        }
        self.pace
    }

    /// Forgets everything (after an activation or a reset).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Feeds `seconds` of audio in 10 ms blocks at `speed` times real time from
    /// `*now` on; returns the pace after each block.
    fn feed(
        d: &mut PacingDetector,
        now: &mut Instant,
        seconds: f64,
        speed: f64,
    ) -> Vec<Option<Pace>> {
        let blocks = (seconds * 100.0).round() as usize;
        (0..blocks)
            .map(|_| {
                let pace = d.observe(*now, 480, 48_000.0);
                *now += Duration::from_secs_f64(0.01 / speed);
                pace
            })
            .collect()
    }

    #[test]
    fn a_freewheel_is_told_within_a_window_and_real_time_comes_back() {
        let mut d = PacingDetector::default();
        let mut now = Instant::now();
        let paces = feed(&mut d, &mut now, 2.0, 20.0);
        assert_eq!(paces[..100], [None; 100], "judged before a window was full");
        assert!(paces[101..].iter().all(|p| *p == Some(Pace::Freewheel)));
        // 1.5x real time is in the dead band: still a freewheel.
        let paces = feed(&mut d, &mut now, 3.0, 1.5);
        assert!(paces.iter().all(|p| *p == Some(Pace::Freewheel)));
        // Real time again: back within two windows (the first may straddle).
        let paces = feed(&mut d, &mut now, 3.0, 1.0);
        assert_eq!(paces.last(), Some(&Some(Pace::RealTime)));
        assert!(paces[..100].contains(&Some(Pace::Freewheel)));
    }

    #[test]
    fn a_real_time_host_with_a_burst_stays_real_time() {
        let mut d = PacingDetector::default();
        let mut now = Instant::now();
        // A device priming three buffers at once, then real time.
        feed(&mut d, &mut now, 0.03, 1_000.0);
        let paces = feed(&mut d, &mut now, 3.0, 1.0);
        assert!(paces.iter().flatten().all(|p| *p == Pace::RealTime));
        assert_eq!(paces.last(), Some(&Some(Pace::RealTime)));
        // A stall, then catching up back to back: still real time over the window.
        now += Duration::from_millis(200);
        feed(&mut d, &mut now, 0.2, 1_000.0);
        let paces = feed(&mut d, &mut now, 2.0, 1.0);
        assert!(paces.iter().all(|p| *p == Some(Pace::RealTime)));
        d.reset();
        assert_eq!(d.observe(now, 480, 48_000.0), None);
    }

    #[test]
    fn the_freewheel_setting_parses_strictly() {
        assert_eq!(parse_freewheel_setting(None), Ok(true));
        assert_eq!(parse_freewheel_setting(Some(" Auto ")), Ok(true));
        assert_eq!(parse_freewheel_setting(Some("OFF")), Ok(false));
        assert_eq!(
            parse_freewheel_setting(Some("never")),
            Err("never".to_owned())
        );
    }

    #[test]
    fn modes_map_to_render_modes_and_names() {
        for (i, mode) in RunMode::ALL.into_iter().enumerate() {
            assert_eq!(RunMode::from_u8(i as u8), mode);
            // Only a host known to be slow enough for a bounce is waited for;
            // only a host known to run in real time degrades the music.
            assert_eq!(
                mode.render_mode() == RenderMode::Offline,
                matches!(mode, RunMode::Freewheel | RunMode::Offline)
            );
            assert_eq!(mode.degrades(), mode == RunMode::RealTime);
            assert_eq!(
                mode.phrase_mode() == RenderMode::RealTime,
                mode == RunMode::RealTime
            );
        }
        assert_eq!(RunMode::from_u8(200), RunMode::RealTime);
        assert_eq!(RunMode::Freewheel.to_string(), "freewheel");
        assert_eq!(
            RunMode::from_render_mode(RenderMode::Offline),
            RunMode::Offline
        );
    }
}
