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
//! [`Composer::seek`] does, so a jump plays what sequential playback would have.
//!
//! **Texture.** Unless switched off ([`TextureSetting::Off`]) the engine owns a
//! pre-renderer thread ([`PrerenderWorker`]); the composer thread asks it for the
//! texture of every phrase it sends (at the quality of the degradation level;
//! none in real time at `critical`, where the texture is off), and the renderer
//! plays each texture in place of the pad ([`crate::render::texture`]). Offline
//! the renderer waits for every texture, which is rendered on the CPU unless
//! `AURALIS_RENDERER=gpu` asks for the GPU, so a bounce does not depend on the
//! machine's GPU.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::compose::phrase::{ComposeParams, ParamError, Phrase};
use crate::compose::theory::{Key, Mode};
use crate::compose::Composer;
use crate::degrade::monitor::{DegradeShared, LoadReport, Monitor, MonitorConfig};
use crate::degrade::{shape_params, thin_phrase, Level};
use crate::prerender::gpu::RendererChoice;
use crate::prerender::worker::SharedQuality;
use crate::prerender::{
    Backend, ConfigError, PoolConfig, PrerenderConfig, PrerenderStats, PrerenderWorker, Quality,
    TextureRequester, WorkerConfig,
};
use crate::render::feed::{phrase_channel, PhraseSender};
use crate::render::mix::MixLevels;
use crate::render::texture::{TextureLayer, TextureTelemetry};
use crate::render::{RenderMode, Renderer, SeekTarget, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// How often the composer thread looks for work in real-time mode.
const COMPOSER_POLL_REALTIME: Duration = Duration::from_millis(5);
/// How often it looks in offline mode, where the renderer may be waiting on it.
/// Even at 300x real time a phrase lasts tens of milliseconds of wall time, and the
/// next one is composed as soon as the current one starts, so this rarely matters.
const COMPOSER_POLL_OFFLINE: Duration = Duration::from_millis(1);

/// The texture pre-renderer's state, for status pages, metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct RendererStatus {
    /// The path that renders textures now.
    pub backend: Backend,
    /// The GPU adapter in use or last used ("" if none).
    pub adapter: String,
    /// Times a GPU failure sent the pre-renderer to the CPU.
    pub gpu_fallbacks: u64,
    /// Render attempts (first tries and retries).
    pub attempts: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Failures ÷ attempts over the recent window, 0–1.
    pub failure_rate: f32,
    /// Phrases given silence after every retry failed.
    pub silenced: u64,
    /// Seconds of texture ready ahead of the playhead (`None`: none expected).
    pub margin_s: Option<f32>,
    /// Whether a texture is heard now (else the pad carries).
    pub texture_audible: bool,
    /// Whether the degradation level lets the texture be heard.
    pub texture_enabled: bool,
    /// The quality textures are asked for at now (partials and grains).
    pub quality: Quality,
}

/// A handle on the texture pre-renderer's state that any thread may keep and
/// read (atomics, and a short lock for the adapter name).
#[derive(Debug, Clone)]
pub struct RendererProbe {
    stats: Arc<PrerenderStats>,
    telemetry: Arc<TextureTelemetry>,
    quality: Arc<SharedQuality>,
    degrade: Arc<DegradeShared>,
}

impl RendererProbe {
    /// The pre-renderer's state now.
    #[must_use]
    pub fn status(&self) -> RendererStatus {
        let stats = self.stats.snapshot();
        RendererStatus {
            backend: stats.backend,
            adapter: stats.adapter,
            gpu_fallbacks: stats.gpu_failures,
            attempts: stats.attempts,
            failures: stats.failures,
            failure_rate: stats.failure_rate,
            silenced: stats.silenced,
            margin_s: self.telemetry.margin_s(),
            texture_audible: self.telemetry.audible(),
            texture_enabled: self.degrade.level() != Level::Critical,
            quality: self.quality.get(),
        }
    }
}

/// A snapshot of what the engine is doing, for status pages and meters.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    /// Output sample rate in hertz.
    pub sample_rate: f32,
    /// Frames rendered since the start.
    pub position_frames: u64,
    /// The phrase playing, once one has started.
    pub phrase_index: Option<u64>,
    /// The musical parameters in force (or taking effect at the next phrase).
    pub compose: ComposeParams,
    /// The mix levels.
    pub levels: MixLevels,
    /// The degradation level (the pinned one when the user pins one).
    pub level: Level,
    /// The level the user pinned, if any.
    pub level_pin: Option<Level>,
    /// The load monitor's last reading (zeros offline or before the first).
    pub load: LoadReport,
    /// Voices sounding: pad, melody, percussion.
    pub active_voices: (usize, usize, usize),
    /// The texture pre-renderer, when the texture layer is on.
    pub renderer: Option<RendererStatus>,
}

/// Whether and how an engine plays the pre-rendered texture layer.
#[derive(Debug, Clone, Default)]
pub enum TextureSetting {
    /// On, set up from `AURALIS_RENDERER`, `AURALIS_FAULTS` and
    /// `AURALIS_GPU_COOLDOWN_S` ([`PrerenderConfig::from_env`]); offline engines
    /// use the CPU unless `AURALIS_RENDERER=gpu`.
    #[default]
    FromEnv,
    /// On, with this configuration (its seed and sample rate are replaced by the
    /// engine's).
    With(PrerenderConfig),
    /// Off: the real-time pad plays alone.
    Off,
}

impl TextureSetting {
    /// The pre-renderer configuration for an engine of `config`, if the texture
    /// is on.
    pub(crate) fn prerender_config(
        self,
        config: &EngineConfig,
    ) -> Result<Option<PrerenderConfig>, ConfigError> {
        let (seed, sample_rate) = (config.seed, config.sample_rate);
        Ok(match self {
            Self::Off => None,
            Self::With(c) => Some(PrerenderConfig {
                seed,
                sample_rate,
                ..c
            }),
            Self::FromEnv => {
                let mut c = PrerenderConfig::from_env(seed, sample_rate)?;
                if config.mode == RenderMode::Offline && c.renderer == RendererChoice::Auto {
                    // Offline bytes must not depend on the machine's GPU.
                    tracing::info!(
                        "offline render: textures on the CPU (AURALIS_RENDERER=gpu for the GPU)"
                    );
                    c.renderer = RendererChoice::Cpu;
                }
                Some(c)
            }
        })
    }
}

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
    /// Real-time (never waits) or offline (waits for every phrase).
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

/// Compose parameters shared with the composer thread without locks: a sequence
/// lock over two atomic words. One writer (the engine, through `&mut`), any reader.
#[derive(Debug, Default)]
struct ParamsCell {
    seq: AtomicU64,
    words: [AtomicU64; 2],
}

impl ParamsCell {
    fn encode(p: &ComposeParams) -> [u64; 2] {
        let small = u64::from(p.key.pitch_class())
            | (Mode::ALL.iter().position(|m| *m == p.mode).unwrap_or(0) as u64) << 8
            | u64::from(p.bars) << 16
            | u64::from(p.beats_per_bar) << 32;
        let floats = u64::from(p.bpm.to_bits()) | u64::from(p.intensity.to_bits()) << 32;
        [small, floats]
    }

    fn decode(w: [u64; 2]) -> ComposeParams {
        ComposeParams {
            key: Key::new((w[0] & 0xFF) as u8),
            mode: Mode::ALL[((w[0] >> 8) & 0xFF) as usize % Mode::ALL.len()],
            bars: ((w[0] >> 16) & 0xFFFF) as u32,
            beats_per_bar: ((w[0] >> 32) & 0xFFFF) as u32,
            bpm: f32::from_bits((w[1] & 0xFFFF_FFFF) as u32),
            intensity: f32::from_bits((w[1] >> 32) as u32),
        }
    }

    fn write(&self, p: &ComposeParams) {
        let w = Self::encode(p);
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.words[0].store(w[0], Ordering::Relaxed);
        self.words[1].store(w[1], Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The parameters and their version (even; bumps by 2 per write).
    fn read(&self) -> (u64, ComposeParams) {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let w = [
                self.words[0].load(Ordering::Relaxed),
                self.words[1].load(Ordering::Relaxed),
            ];
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return (s1, Self::decode(w));
            }
        }
    }
}

/// State shared by the engine and its composer thread.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// Index of the phrase the renderer needs next (published by the renderer).
    wanted: Arc<AtomicU64>,
    /// Bumped by every jump of the song position: the composer forgets what it
    /// sent and derives the wanted phrase's history afresh.
    seek_gen: AtomicU64,
    params: ParamsCell,
    /// Load meter, degradation level and pin.
    degrade: Arc<DegradeShared>,
}

/// The engine. Build it off the audio thread; call [`Engine::process`] from one.
#[derive(Debug)]
pub struct Engine {
    renderer: Renderer,
    shared: Arc<Shared>,
    compose: ComposeParams,
    mode: RenderMode,
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
}

impl Engine {
    /// Builds the renderer, composes the first phrase and starts the composer thread.
    ///
    /// # Errors
    /// [`EngineError`] for a sample rate or parameter out of range, or when the
    /// thread cannot be spawned.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_monitor(config, MonitorConfig::default())
    }

    /// [`Engine::new`] with explicit settings for the load monitor (sampling
    /// interval, hold time, whether CPU use counts). In real time the composer
    /// thread samples the load and steps the degradation machine; offline there is
    /// no deadline, so only a pinned level applies.
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
        let prerender_config = texture.prerender_config(&config)?;
        let (sender, feed) = phrase_channel();
        let shared = Arc::new(Shared::default());
        shared.params.write(&config.compose);
        let poll = match config.mode {
            RenderMode::RealTime => COMPOSER_POLL_REALTIME,
            RenderMode::Offline => COMPOSER_POLL_OFFLINE,
        };
        let textures = match prerender_config {
            Some(prerender) => {
                let pool = PoolConfig::for_params(&config.compose, config.sample_rate);
                let (worker, requester, texture_feed) =
                    PrerenderWorker::spawn(WorkerConfig { prerender, pool })
                        .map_err(EngineError::Spawn)?;
                let telemetry = Arc::new(TextureTelemetry::default());
                let layer = TextureLayer::new(
                    texture_feed,
                    config.mode,
                    config.sample_rate,
                    Arc::clone(&telemetry),
                );
                Some((worker, requester, layer, telemetry))
            }
            None => None,
        };
        let mut monitor = (config.mode == RenderMode::RealTime)
            .then(|| Monitor::new(monitor, Arc::clone(&shared.degrade)));
        if let (Some(monitor), Some((worker, _, _, telemetry))) = (monitor.as_mut(), &textures) {
            monitor.watch_texture(Arc::clone(telemetry), worker.stats());
        }
        let (prerender, requester, layer) = match textures {
            Some((worker, requester, layer, telemetry)) => {
                let probe = RendererProbe {
                    stats: worker.stats(),
                    telemetry,
                    quality: worker.quality_cell(),
                    degrade: Arc::clone(&shared.degrade),
                };
                (Some((worker, probe)), Some(requester), Some(layer))
            }
            None => (None, None, None),
        };
        let mut worker = ComposerThread::new(
            config.seed,
            Arc::clone(&shared),
            sender,
            monitor,
            requester,
            config.mode,
        );
        // Phrase 0 (and the request for its texture) is ready before the first
        // block, so real time starts with music.
        worker.step();
        let composer = std::thread::Builder::new()
            .name("auralis-composer".into())
            .spawn(move || worker.run(poll))
            .map_err(EngineError::Spawn)?;
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
            mode: config.mode,
            frame_s: 1.0 / f64::from(config.sample_rate),
            pristine: true,
            start_beat: 0.0,
            composer: Some(composer),
            prerender,
        })
    }

    /// Renders `left.len()` frames into `left`/`right` (overwritten). Any length,
    /// no allocation, no locks; in offline mode it waits for the composer.
    ///
    /// The degradation level is applied at the start of the block; in real time
    /// the time spent here is measured (a clock read and three atomic operations)
    /// for the load monitor.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.renderer.set_quality(self.shared.degrade.level());
        if self.mode == RenderMode::Offline {
            self.renderer.process(left, right);
            return;
        }
        let started = Instant::now();
        self.renderer.process(left, right);
        let frames = left.len().min(right.len());
        self.shared.degrade.record_block(
            started.elapsed(),
            Duration::from_secs_f64(frames as f64 * self.frame_s),
        );
    }

    /// Jumps to the song position `beat` (beats since the start of the piece;
    /// negative or non-finite values mean 0): phrase `k = ⌊beat / P⌋` with `P`
    /// beats per phrase of the current parameters, `beat − k·P` beats into it, as
    /// sequential playback from phrase 0 with the current parameters would have
    /// it ([`Composer::seek`]). In real time the pad keeps sounding until that
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
        self.renderer.seek(SeekTarget {
            index: index as u64,
            offset_beats: (beat - index * phrase_beats).clamp(0.0, phrase_beats),
            phrase_beats,
            bpm: self.compose.bpm,
        });
        self.shared.seek_gen.fetch_add(1, Ordering::Release);
    }

    /// The song position in beats (see [`Engine::seek_beats`]), once a phrase
    /// plays or a jump waits for its phrase.
    #[must_use]
    pub fn beat_position(&self) -> Option<f64> {
        self.renderer.beat_position()
    }

    /// Pins the degradation level (`None`: automatic): the machine keeps
    /// measuring and reporting, but the pinned level is the one applied. Never
    /// allocates.
    pub fn set_level_pin(&mut self, pin: Option<Level>) {
        self.shared.degrade.set_pin(pin);
    }

    /// The degradation level in force (the pinned one if any).
    #[must_use]
    pub fn level(&self) -> Level {
        self.shared.degrade.level()
    }

    /// Makes every audio block measure `ratio` of its deadline busier than it
    /// really was, so the degradation machine can be watched at work: a hook for
    /// tests, benchmarks and demonstrations (0 turns it off).
    pub fn simulate_audio_load(&self, ratio: f32) {
        self.shared.degrade.simulate_audio_load(ratio);
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

    /// Whether the pad plays its cheap voice (at `critical` and above).
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

/// The composer thread's state.
struct ComposerThread {
    composer: Composer,
    /// The parameters as set, before the degradation level shapes them.
    base_params: ComposeParams,
    /// The degradation level phrases are composed for.
    level: Level,
    /// Samples the load and steps the degradation machine (real time only).
    monitor: Option<Monitor>,
    shared: Arc<Shared>,
    sender: PhraseSender,
    params_version: u64,
    /// The last jump seen ([`Shared::seek_gen`]).
    seek_gen: u64,
    /// The newest phrase sent: its index and the degree of its last chord.
    sent: Option<(u64, u8)>,
    /// The degree that ends the phrase before `sent` (what `sent` continued from).
    sent_prev: Option<u8>,
    /// Where phrases go to have their texture rendered (texture on).
    textures: Option<TextureRequester>,
    /// A texture request the full request ring refused, to send again.
    unrequested: Option<Phrase>,
    mode: RenderMode,
}

impl ComposerThread {
    fn new(
        seed: u64,
        shared: Arc<Shared>,
        sender: PhraseSender,
        monitor: Option<Monitor>,
        textures: Option<TextureRequester>,
        mode: RenderMode,
    ) -> Self {
        let (params_version, params) = shared.params.read();
        let seek_gen = shared.seek_gen.load(Ordering::Acquire);
        let level = shared.degrade.level();
        if let Some(t) = textures.as_ref() {
            t.set_quality(Quality::for_level(level));
        }
        Self {
            composer: Composer::new(seed, shape_params(level, params)),
            base_params: params,
            level,
            monitor,
            shared,
            sender,
            params_version,
            seek_gen,
            sent: None,
            sent_prev: None,
            textures,
            unrequested: None,
            mode,
        }
    }

    /// Asks for the texture of `phrase` (kept to ask again if the ring is full).
    fn request_texture(&mut self, phrase: Phrase) {
        if let Some(textures) = self.textures.as_mut() {
            self.unrequested = textures.request(phrase).err();
        }
    }

    fn run(mut self, poll: Duration) {
        while !self.shared.stop.load(Ordering::Acquire) {
            self.step();
            std::thread::sleep(poll);
        }
    }

    /// One look for work: free returned phrases, pick up new parameters and
    /// jumps, and make sure the phrase the renderer wants next is composed with the
    /// newest parameters.
    fn step(&mut self) {
        while let Ok(done) = self.sender.returned.pop() {
            drop(done);
        }
        if let Some(phrase) = self.unrequested.take() {
            self.request_texture(phrase);
        }
        let seek_gen = self.shared.seek_gen.load(Ordering::Acquire);
        if seek_gen != self.seek_gen {
            // A jump: whatever was sent may be the wrong phrase now.
            self.seek_gen = seek_gen;
            self.sent = None;
            self.sent_prev = None;
        }
        if let Some(monitor) = self.monitor.as_mut() {
            monitor.poll();
        }
        let (version, params) = self.shared.params.read();
        let level = self.shared.degrade.level();
        // A new level changes what is composed, just like new parameters.
        let changed = version != self.params_version || level != self.level;
        if changed {
            self.params_version = version;
            self.base_params = params;
            self.level = level;
            self.composer.set_params(shape_params(level, params));
            if let Some(t) = self.textures.as_ref() {
                t.set_quality(Quality::for_level(level));
            }
            tracing::debug!(?params, %level, "composer picked up new parameters");
        }
        let want = self.shared.wanted.load(Ordering::Acquire);
        let (index, prev) = match self.sent {
            // Not sent yet: continue from the phrase before it.
            Some((i, last)) if i + 1 == want => (want, Some(last)),
            // Sent but not started, and the parameters changed: compose it again.
            Some((i, _)) if i == want && changed => (want, self.sent_prev),
            Some((i, _)) if i >= want => return,
            // Anything else (the first phrase, a jump): derive the history.
            _ => (want, self.composer.prev_degree_at(want)),
        };
        if self.sender.outgoing.slots() == 0 {
            return;
        }
        let mut phrase = self.composer.compose(index, prev);
        thin_phrase(self.level, &mut phrase);
        let last = phrase.last_degree();
        // Real time at critical: the texture is off, so none is rendered. Offline
        // every phrase has one (the renderer waits for it).
        let texture = self.textures.is_some()
            && (self.mode == RenderMode::Offline || self.level != Level::Critical);
        let copy = texture.then(|| phrase.clone());
        if self.sender.outgoing.push(phrase).is_ok() {
            self.sent = Some((index, last));
            self.sent_prev = prev;
            if let Some(copy) = copy {
                self.request_texture(copy);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_cell_round_trips() {
        let cell = ParamsCell::default();
        let p = ComposeParams {
            key: Key::new(7),
            mode: Mode::Lydian,
            bpm: 73.5,
            intensity: 0.25,
            bars: 12,
            beats_per_bar: 3,
        };
        cell.write(&p);
        let (v1, got) = cell.read();
        assert_eq!(got, p);
        cell.write(&ComposeParams::default());
        let (v2, got) = cell.read();
        assert_eq!(got, ComposeParams::default());
        assert!(v2 > v1);
    }

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
