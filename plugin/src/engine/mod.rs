//! The headless engine: a composer thread feeding a [`Renderer`] through lock-free
//! rings. The plugin, the offline renderer and the bridge all drive this.
//!
//! ```text
//! set_compose_params ─► ParamsCell (seqlock) ─► composer thread ──Phrase──► Renderer
//!                                                     ▲                      │
//!                                                     └──── used phrases ◄───┘
//! ```
//!
//! The composer keeps the phrase after the playing one ready (composition takes
//! microseconds, phrases last seconds) and re-composes it when the parameters
//! change, so a change is heard from the next phrase boundary.
//!
//! [`Engine::seek_beats`] jumps to a song position: phrase `k` covers beats
//! `[k·P, (k+1)·P)` (`P` = bars × beats per bar), and the composer derives it as
//! [`Composer::seek`](crate::compose::Composer::seek) does, so a jump plays what
//! sequential playback would have.
//!
//! **Texture.** Unless switched off ([`TextureSetting::Off`]) the engine owns a
//! pre-renderer thread ([`PrerenderWorker`]); the composer thread asks it for the
//! texture of every phrase it sends (at the quality of the degradation level;
//! none in real time where the level's profile turns the texture off), and the renderer
//! plays each texture in place of the pad ([`crate::render::texture`]). Offline
//! the renderer waits for every texture, which is rendered on the CPU unless
//! `AURALIS_RENDERER=gpu` asks for the GPU, so a bounce does not depend on the
//! machine's GPU.
//!
//! **Run mode.** [`Engine::set_run_mode`] switches between real time and a
//! bounce at any block ([`RunMode`]): a bounce waits for every phrase and
//! texture and applies no degradation but a pinned level, exactly as an engine
//! built offline does, so a freewheeling host's export equals `auralis-render`.
//! The texture's renderer (CPU or GPU) is chosen when the engine is built.

mod composer;
mod params_cell;
pub mod replay;
mod status;
mod texture;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::composer::{ComposerThread, Shared, TextureClient};
use self::replay::ReplayConfig;
use self::texture::TextureSetup;
use crate::compose::mix::MixLevels;
use crate::compose::phrase::{ComposeParams, ParamError};
use crate::degrade::monitor::{Monitor, MonitorConfig};
use crate::degrade::Level;
use crate::pacing::RunMode;
use crate::prerender::{ConfigError, PoolConfig, PrerenderWorker};
use crate::render::feed::phrase_channel;
use crate::render::journal::JournalReader;
use crate::render::notes::NoteOut;
use crate::render::{RenderMode, Renderer, SeekTarget, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

pub use self::status::{EngineStatus, RendererProbe, RendererStatus};
pub use self::texture::TextureSetting;

/// How often the composer thread looks for work in real-time mode.
const COMPOSER_POLL_REALTIME: Duration = Duration::from_millis(5);
/// How often it looks in a bounce, where the renderer may be waiting on it.
/// Even at 300x real time a phrase lasts tens of milliseconds of wall time, and the
/// next one is composed as soon as the current one starts, so this rarely matters.
const COMPOSER_POLL_OFFLINE: Duration = Duration::from_millis(1);

/// Everything an engine is built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Output sample rate in hertz, 8 000 to 768 000.
    pub sample_rate: f32,
    /// The seed: same seed and parameters, same music.
    pub seed: u64,
    /// Musical parameters (applied from the next phrase when changed).
    pub compose: ComposeParams,
    /// Layer and effect levels (smoothed when changed).
    pub levels: MixLevels,
    /// Real-time (never waits) or offline (waits for every phrase); see
    /// [`Engine::set_run_mode`] to change it later.
    pub mode: RenderMode,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            sample_rate: 48_000.0,
            seed: 1,
            compose: ComposeParams::default(),
            levels: MixLevels::default(),
            mode: RenderMode::RealTime,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The sample rate is outside 8 kHz..=768 kHz.
    #[error("sample rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {0}")]
    SampleRate(f32),
    /// A musical or mix parameter is out of range.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The composer or pre-renderer thread could not be started.
    #[error("could not start the engine's threads: {0}")]
    Spawn(#[source] std::io::Error),
    /// A pre-renderer setting in the environment is malformed.
    #[error(transparent)]
    Prerender(#[from] ConfigError),
}

/// The engine. Build it off the audio thread; call [`Engine::process`] from one.
#[derive(Debug)]
pub struct Engine {
    renderer: Renderer,
    shared: Arc<Shared>,
    compose: ComposeParams,
    /// The run mode in force (the audio thread's copy of [`Shared::run_mode`]).
    run_mode: RunMode,
    /// Duration of one frame, for the audio thread's load measurement.
    frame_s: f64,
    /// No jump and no parameter change yet, so the phrase composed at
    /// construction is the right first one.
    pristine: bool,
    /// Where the first block starts, in beats (the last jump made before it).
    start_beat: f64,
    composer: Option<JoinHandle<()>>,
    /// The texture pre-renderer and a reader of its state.
    prerender: Option<(PrerenderWorker, RendererProbe)>,
    /// What a replay of this engine starts from.
    replay: ReplayConfig,
}

impl Engine {
    /// Builds the renderer, composes the first phrase and starts the composer
    /// thread; the load monitor's CPU ceiling comes from `AURALIS_CPU_CEILING_PCT`
    /// ([`MonitorConfig::from_env`]).
    ///
    /// # Errors
    /// [`EngineError`] for a sample rate or parameter out of range, or when the
    /// thread cannot be spawned.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_monitor(config, MonitorConfig::from_env())
    }

    /// [`Engine::new`] with explicit settings for the load monitor (sampling
    /// interval, hold time, whether CPU use counts). In real time the composer
    /// thread samples the load and steps the degradation machine; in a bounce
    /// there is no deadline, so only a pinned level applies.
    ///
    /// # Errors
    /// As [`Engine::new`].
    pub fn with_monitor(config: EngineConfig, monitor: MonitorConfig) -> Result<Self, EngineError> {
        Self::build(config, monitor, TextureSetting::FromEnv)
    }

    /// [`Engine::with_monitor`] with the texture layer set explicitly (on from
    /// the environment, on with a given configuration, or off).
    ///
    /// # Errors
    /// As [`Engine::new`], and [`EngineError::Prerender`] for a malformed
    /// `AURALIS_*` pre-renderer variable.
    pub fn build(
        config: EngineConfig,
        monitor: MonitorConfig,
        texture: TextureSetting,
    ) -> Result<Self, EngineError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&config.sample_rate) {
            return Err(EngineError::SampleRate(config.sample_rate));
        }
        config.compose.validate()?;
        config.levels.validate()?;
        let run_mode = RunMode::from_render_mode(config.mode);
        let shared = Arc::new(Shared {
            run_mode: (run_mode as u8).into(),
            ..Shared::default()
        });
        shared.params.write(&config.compose);
        let replay = ReplayConfig {
            sample_rate: config.sample_rate,
            seed: config.seed,
            levels: config.levels,
            texture: texture.clone().prerender_config(&config)?,
            pool: PoolConfig::for_params(&config.compose, config.sample_rate),
        };
        let textures = TextureSetup::start(texture, &config, &shared.degrade)?;
        let (prerender, client, layer) = match textures {
            Some(t) => {
                let client = TextureClient {
                    requester: t.requester,
                    probe: t.probe.clone(),
                };
                (Some((t.worker, t.probe)), Some(client), Some(t.layer))
            }
            None => (None, None, None),
        };
        let (sender, feed) = phrase_channel();
        let monitor = Monitor::new(monitor, Arc::clone(&shared.degrade));
        let worker = ComposerThread::new(config.seed, Arc::clone(&shared), sender, monitor, client);
        let composer = Self::start_composer(worker)?;
        let mut renderer = Renderer::new(
            config.sample_rate,
            config.seed,
            config.levels,
            config.mode,
            feed,
        );
        renderer.set_want_signal(Arc::clone(&shared.wanted));
        if let Some(layer) = layer {
            renderer.set_texture_layer(layer);
        }
        Ok(Self {
            renderer,
            shared,
            compose: config.compose,
            run_mode,
            frame_s: 1.0 / f64::from(config.sample_rate),
            pristine: true,
            start_beat: 0.0,
            composer: Some(composer),
            prerender,
            replay,
        })
    }

    /// Starts recording what the renderer takes, so that a [`replay::Replayer`]
    /// can render the output again exactly ([`crate::render::journal`]): rings
    /// of `capacity` records, allocated here. Call before the first block,
    /// and drain the reader often enough that they never fill.
    pub fn enable_journal(&mut self, capacity: usize) -> JournalReader {
        self.renderer.enable_journal(capacity)
    }

    /// What a replay of this engine starts from.
    #[must_use]
    pub const fn replay_config(&self) -> &ReplayConfig {
        &self.replay
    }

    /// Composes phrase 0 (and asks for its texture) so real time starts with
    /// music, then starts the composer thread.
    fn start_composer(mut worker: ComposerThread) -> Result<JoinHandle<()>, EngineError> {
        worker.step();
        std::thread::Builder::new()
            .name("auralis-composer".into())
            .spawn(move || worker.run(COMPOSER_POLL_REALTIME, COMPOSER_POLL_OFFLINE))
            .map_err(EngineError::Spawn)
    }

    /// Renders `left.len()` frames into `left`/`right` (overwritten). Any length,
    /// no allocation, no locks; in a bounce it waits for the composer and the
    /// pre-renderer.
    ///
    /// The degradation level is applied at the start of the block; in real time
    /// the time spent here is measured (a clock read and three atomic operations)
    /// for the load monitor.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.renderer.set_quality(self.shared.level());
        if !self.run_mode.degrades() {
            self.renderer.process(left, right);
            return;
        }
        let started = Instant::now();
        self.renderer.process(left, right);
        let frames = left.len().min(right.len());
        let block = Duration::from_secs_f64(frames as f64 * self.frame_s);
        self.shared.degrade.stall(started, block);
        self.shared.degrade.record_block(started.elapsed(), block);
    }

    /// Jumps to the song position `beat` (beats since the start of the piece;
    /// negative or non-finite values mean 0): phrase `k = ⌊beat / P⌋` with `P`
    /// beats per phrase of the current parameters, `beat − k·P` beats into it, as
    /// sequential playback from phrase 0 with the current parameters would have
    /// it ([`Composer::seek`](crate::compose::Composer::seek)). In real time the pad keeps sounding until that
    /// phrase is composed (microseconds later); offline, the next block waits for
    /// it. No allocation, no locks.
    pub fn seek_beats(&mut self, beat: f64) {
        let beat = if beat.is_finite() { beat.max(0.0) } else { 0.0 };
        if self.renderer.position() == 0 {
            if self.pristine && beat == 0.0 {
                // Already there, with the right phrase in hand.
                return;
            }
            self.start_beat = beat;
        }
        self.pristine = false;
        let phrase_beats = self.compose.phrase_beats();
        let index = (beat / phrase_beats).floor();
        let target = SeekTarget {
            index: index as u64,
            offset_beats: (beat - index * phrase_beats).clamp(0.0, phrase_beats),
            phrase_beats,
            bpm: self.compose.bpm,
        };
        if self.renderer.jump(target) {
            self.shared.seek_gen.fetch_add(1, Ordering::Release);
        }
    }

    /// The song position in beats (see [`Engine::seek_beats`]), once a phrase
    /// plays or a jump waits for its phrase.
    #[must_use]
    pub fn beat_position(&self) -> Option<f64> {
        self.renderer.beat_position()
    }

    /// Renders in real time or as a bounce from the next block on ([`RunMode`]:
    /// also why, for the status). A bounce waits for every phrase and texture
    /// and applies only a pinned level; back in real time the load monitor
    /// starts afresh at normal. The composer thread logs each change. Never
    /// allocates; a few atomic stores when the mode changes, nothing otherwise.
    pub fn set_run_mode(&mut self, mode: RunMode) {
        if mode == self.run_mode {
            return;
        }
        if !mode.degrades() {
            self.shared.degrade.reset_level();
        }
        self.run_mode = mode;
        self.shared.run_mode.store(mode as u8, Ordering::Release);
        self.renderer
            .set_modes(mode.phrase_mode(), mode.render_mode());
    }

    /// The run mode in force.
    #[must_use]
    pub const fn run_mode(&self) -> RunMode {
        self.run_mode
    }

    /// Waits up to `timeout` (off the audio thread, before the first block)
    /// until the first phrase to play is composed, so real time has music
    /// from its first block without ever waiting; returns whether it came.
    pub fn wait_for_first_phrase(&mut self, timeout: Duration) -> bool {
        self.wait_until(timeout, Renderer::next_phrase_ready)
    }

    /// Waits up to `timeout` (off the audio thread, before the first block)
    /// until the texture of the first phrase to play (after a
    /// [`Engine::seek_beats`], that place's) is here, so real time starts with
    /// the music a bounce starts with; returns at once with the texture off.
    /// Returns whether it came (one that failed every retry comes as silence:
    /// the pad carries that phrase).
    pub fn wait_for_first_texture(&mut self, timeout: Duration) -> bool {
        self.wait_until(timeout, Renderer::next_texture_ready)
    }

    /// Polls `ready` on the renderer every millisecond for up to `timeout`
    /// (off the audio thread); returns whether it held.
    fn wait_until(&mut self, timeout: Duration, ready: fn(&mut Renderer) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !ready(&mut self.renderer) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Pins the degradation level (`None`: automatic): the machine keeps
    /// measuring and reporting, but the pinned level is the one applied. Never
    /// allocates.
    pub fn set_level_pin(&mut self, pin: Option<Level>) {
        self.shared.degrade.set_pin(pin);
    }

    /// Records the notes the renderer plays from now on, for MIDI out
    /// ([`crate::render::notes`]), or stops recording and forgets them. Never
    /// allocates.
    pub fn set_note_log(&mut self, enabled: bool) {
        self.renderer.set_note_log(enabled);
    }

    /// Hands the notes played since the last call to `f` in order, each at its
    /// frame (counted as [`Engine::position`] counts). Never allocates.
    pub fn drain_notes(&mut self, f: impl FnMut(NoteOut)) {
        self.renderer.drain_notes(f);
    }

    /// The degradation level in force (the pinned one if any; in a bounce,
    /// normal unless pinned).
    #[must_use]
    pub fn level(&self) -> Level {
        self.shared.level()
    }

    /// Makes every audio block measure `ratio` of its deadline busier than it
    /// really was, so the degradation machine can be watched at work: a hook for
    /// tests, benchmarks and demonstrations (0 turns it off).
    pub fn simulate_audio_load(&self, ratio: f32) {
        self.shared.degrade.simulate_audio_load(ratio);
    }

    /// Makes every real-time block really take `ratio` of its deadline: an
    /// injected slow audio thread, the engine's own danger (0 turns it off;
    /// see [`DegradeShared::inject_slow_process`](crate::degrade::monitor::DegradeShared::inject_slow_process)).
    pub fn inject_slow_process(&self, ratio: f32) {
        self.shared.degrade.inject_slow_process(ratio);
    }

    /// New musical parameters, heard from the next phrase boundary (from the
    /// first phrase when nothing has been rendered yet). Never allocates.
    ///
    /// # Errors
    /// [`ParamError`] naming the first field out of range; nothing changes then.
    pub fn set_compose_params(&mut self, params: ComposeParams) -> Result<(), ParamError> {
        params.validate()?;
        if params != self.compose {
            self.compose = params;
            self.shared.params.write(&params);
            if self.renderer.position() == 0 {
                // Nothing played yet: the first phrase is composed again with these.
                self.pristine = false;
                self.seek_beats(self.start_beat);
            }
        }
        Ok(())
    }

    /// New mix levels, smoothed over 40 ms.
    ///
    /// # Errors
    /// [`ParamError`] naming the first field out of range; nothing changes then.
    pub fn set_levels(&mut self, levels: MixLevels) -> Result<(), ParamError> {
        levels.validate()?;
        self.renderer.set_levels(levels);
        Ok(())
    }

    /// The musical parameters last set.
    #[must_use]
    pub const fn compose_params(&self) -> &ComposeParams {
        &self.compose
    }

    /// The mix levels last set.
    #[must_use]
    pub const fn levels(&self) -> &MixLevels {
        self.renderer.levels()
    }

    /// The sample rate.
    #[must_use]
    pub const fn sample_rate(&self) -> f32 {
        self.renderer.sample_rate()
    }

    /// Frames rendered since the start.
    #[must_use]
    pub const fn position(&self) -> u64 {
        self.renderer.position()
    }

    /// The index of the phrase playing, once one has started.
    #[must_use]
    pub fn phrase_index(&self) -> Option<u64> {
        self.renderer.phrase_index()
    }

    /// Voices sounding: pad, melody, percussion.
    #[must_use]
    pub fn active_voices(&self) -> (usize, usize, usize) {
        self.renderer.active_voices()
    }

    /// What the engine is doing now.
    #[must_use]
    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            sample_rate: self.sample_rate(),
            position_frames: self.position(),
            phrase_index: self.phrase_index(),
            compose: self.compose,
            levels: *self.levels(),
            level: self.level(),
            run_mode: self.run_mode,
            level_pin: self.shared.degrade.pin(),
            load: self.shared.degrade.report(),
            active_voices: self.active_voices(),
            renderer: self.renderer_status(),
        }
    }

    /// The texture pre-renderer's state (`None` with the texture off).
    #[must_use]
    pub fn renderer_status(&self) -> Option<RendererStatus> {
        self.prerender.as_ref().map(|(_, probe)| probe.status())
    }

    /// A reader of the pre-renderer's state for other threads (`None` with the
    /// texture off).
    #[must_use]
    pub fn renderer_probe(&self) -> Option<RendererProbe> {
        self.prerender.as_ref().map(|(_, probe)| probe.clone())
    }

    /// Whether the pad plays its cheap voice (as the level's profile says).
    #[must_use]
    pub fn pad_is_cheap(&self) -> bool {
        self.renderer.pad_is_cheap()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(handle) = self.composer.take() {
            if handle.join().is_err() {
                tracing::error!("the composer thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config() {
        let bad_rate = EngineConfig {
            sample_rate: 4_000.0,
            ..EngineConfig::default()
        };
        assert!(matches!(
            Engine::new(bad_rate),
            Err(EngineError::SampleRate(_))
        ));
        let mut bad_bpm = EngineConfig::default();
        bad_bpm.compose.bpm = f32::NAN;
        assert!(matches!(Engine::new(bad_bpm), Err(EngineError::Param(_))));
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        let levels = MixLevels {
            pad: 2.0,
            ..MixLevels::default()
        };
        assert!(engine.set_levels(levels).is_err());
        assert_eq!(engine.levels(), &MixLevels::default());
    }

    fn run(engine: &mut Engine, frames: usize) -> f32 {
        let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
        let mut peak = 0.0f32;
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(256);
            engine.process(&mut l[..n], &mut r[..n]);
            peak = l[..n]
                .iter()
                .chain(&r[..n])
                .fold(peak, |p, x| p.max(x.abs()));
            done += n;
        }
        peak
    }

    #[test]
    fn seek_plays_the_phrase_at_the_song_position() {
        let config = EngineConfig {
            sample_rate: 8_000.0,
            mode: RenderMode::Offline,
            ..EngineConfig::default()
        };
        // Default: 8 bars of 4 beats at 60 BPM, so phrase k covers beats 32k..32k+32.
        let mut engine = Engine::new(config).unwrap();
        run(&mut engine, 8_000);
        assert_eq!(engine.phrase_index(), Some(0));
        engine.seek_beats(32.0 * 5.0 + 10.0);
        run(&mut engine, 8_000);
        assert_eq!(engine.phrase_index(), Some(5));
        let beat = engine.beat_position().unwrap();
        assert!((beat - 171.0).abs() < 1e-6, "at beat {beat}");
        // Backwards, into the middle of phrase 2, then on past its end.
        engine.seek_beats(32.0 * 2.0 + 31.0);
        run(&mut engine, 2 * 8_000);
        assert_eq!(engine.phrase_index(), Some(3));
        let beat = engine.beat_position().unwrap();
        assert!((beat - 97.0).abs() < 1e-6, "at beat {beat}");
        engine.seek_beats(f64::NAN);
        run(&mut engine, 800);
        assert_eq!(engine.phrase_index(), Some(0));
    }

    #[test]
    fn seek_in_real_time_keeps_sounding_and_reaches_the_phrase() {
        let mut engine = Engine::new(EngineConfig {
            sample_rate: 8_000.0,
            ..EngineConfig::default()
        })
        .unwrap();
        assert!(run(&mut engine, 16_000) > 0.01);
        // Jump around faster than the composer can follow, then settle.
        for beat in [300.0, 20.0, 301.0, 64.5] {
            engine.seek_beats(beat);
            run(&mut engine, 64);
        }
        engine.seek_beats(1_000.0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.phrase_index() != Some(31) {
            assert!(Instant::now() < deadline, "phrase 31 never came");
            assert!(run(&mut engine, 64) > 0.0, "silent while waiting");
            std::thread::sleep(Duration::from_millis(1));
        }
        let beat = engine.beat_position().unwrap();
        assert!(beat > 1_000.0 && beat < 1_010.0, "at beat {beat}");
    }
}
