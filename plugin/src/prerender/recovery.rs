//! The pre-renderer's rendering core: backend choice, GPU failure handling and the
//! synthesis-recovery chain (seed §2.1, §2.2).
//!
//! - **Backend**: chosen once at start ([`RendererChoice`]); the GPU when it can be
//!   had, else the CPU.
//! - **GPU failure** (out-of-memory, device lost, shader/validation or internal
//!   errors): the GPU resources are dropped, one ERROR is logged with the phrase,
//!   adapter and error, the phrase in flight is rendered again on the CPU (it is not
//!   lost and costs no retry), and the GPU is tried again after a cool-down.
//! - **Recovery chain**: every texture is validated; an error or a rejected texture
//!   is retried up to [`MAX_RETRIES`] times, each with a simpler phrase (half the
//!   melody, no percussion) and a simpler texture (half the partials and grains),
//!   after a short pause; then the phrase gets silence (the real-time pad covers).
//!   Attempts and failures are counted; the failure rate is failures ÷ attempts
//!   over a sliding window.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cpu::{check_buffers, CpuRenderer};
use super::faults::{FaultKind, FaultParseError, FaultPlan};
use super::gpu::{GpuContext, GpuError, GpuRenderer, RendererChoice, RendererChoiceError};
use super::pool::TextureKey;
use super::stats::{Backend, PrerenderStats};
use super::texture::{Quality, TextureDesc};
use super::validate::{simplify, validate, FailureWindow};
use super::RenderError;
use crate::compose::phrase::Phrase;
use crate::compose::Composer;

/// Retries after a failed first attempt (seed §2.1).
pub const MAX_RETRIES: u32 = 3;
/// Default pause before a retry.
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Default wait before the GPU is tried again after a failure.
pub const DEFAULT_GPU_COOLDOWN: Duration = Duration::from_secs(60);

/// How the pre-renderer renders.
#[derive(Debug, Clone)]
pub struct PrerenderConfig {
    /// The piece's seed (textures are a pure function of seed, phrase and rate).
    pub seed: u64,
    /// Output sample rate in hertz.
    pub sample_rate: f32,
    /// GPU, CPU or whichever is available.
    pub renderer: RendererChoice,
    /// Wait before the GPU is tried again after a failure.
    pub gpu_cooldown: Duration,
    /// Pause before each retry.
    pub retry_pause: Duration,
    /// Texture quality at the first attempt (the degradation machine lowers it).
    pub quality: Quality,
    /// Faults to inject (tests and demos).
    pub faults: FaultPlan,
    /// Threads the CPU path renders each phrase on, at least 1 (the output is the
    /// same for any number; see [`CpuRenderer::with_threads`]).
    pub cpu_threads: usize,
}

/// A bad pre-renderer setting in the environment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `AURALIS_RENDERER` is not auto, gpu or cpu.
    #[error(transparent)]
    Renderer(#[from] RendererChoiceError),
    /// `AURALIS_FAULTS` is malformed.
    #[error(transparent)]
    Faults(#[from] FaultParseError),
    /// `AURALIS_GPU_COOLDOWN_S` is not a non-negative number of seconds.
    #[error("AURALIS_GPU_COOLDOWN_S must be a non-negative number of seconds, got {0:?}")]
    Cooldown(String),
}

impl PrerenderConfig {
    /// Defaults: auto renderer, 60 s GPU cool-down, 100 ms retry pause, full
    /// quality, no faults, the CPU path on one thread.
    #[must_use]
    pub fn new(seed: u64, sample_rate: f32) -> Self {
        Self {
            seed,
            sample_rate,
            renderer: RendererChoice::Auto,
            gpu_cooldown: DEFAULT_GPU_COOLDOWN,
            retry_pause: DEFAULT_RETRY_PAUSE,
            quality: Quality::FULL,
            faults: FaultPlan::none(),
            cpu_threads: 1,
        }
    }

    /// [`PrerenderConfig::new`] with `AURALIS_RENDERER`, `AURALIS_FAULTS` and
    /// `AURALIS_GPU_COOLDOWN_S` applied.
    ///
    /// # Errors
    /// [`ConfigError`] naming the malformed variable.
    pub fn from_env(seed: u64, sample_rate: f32) -> Result<Self, ConfigError> {
        let mut config = Self::new(seed, sample_rate);
        config.renderer = RendererChoice::from_env()?;
        config.faults = FaultPlan::from_env()?;
        if let Ok(v) = std::env::var("AURALIS_GPU_COOLDOWN_S") {
            let secs: f64 = v
                .trim()
                .parse()
                .map_err(|_| ConfigError::Cooldown(v.clone()))?;
            config.gpu_cooldown =
                Duration::try_from_secs_f64(secs).map_err(|_| ConfigError::Cooldown(v.clone()))?;
        }
        Ok(config)
    }
}

/// What a phrase's buffers hold after [`Prerenderer::render_phrase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextureKind {
    /// A validated texture, rendered on this path.
    Rendered(Backend),
    /// Silence: every attempt failed (the real-time pad covers the phrase).
    Silence,
}

/// Whether `kind` fires now in `faults`, counted in `stats` if so (a free function
/// so it can borrow these two fields while the GPU renderer is borrowed too).
fn inject(faults: &mut FaultPlan, stats: &PrerenderStats, kind: FaultKind) -> bool {
    let fired = faults.fire(kind);
    if fired {
        stats.fault_injected(kind);
    }
    fired
}

/// The rendering core the worker thread drives (usable directly, e.g. offline).
#[derive(Debug)]
pub struct Prerenderer {
    config: PrerenderConfig,
    cpu: CpuRenderer,
    gpu: Option<GpuRenderer>,
    /// When the GPU may be tried again; `None`: never (CPU chosen, or no adapter).
    gpu_retry_at: Option<Instant>,
    window: FailureWindow,
    stats: Arc<PrerenderStats>,
    /// Failed attempts before the last phrase's delivered one.
    last_simplifications: u8,
}

impl Prerenderer {
    /// Builds the CPU path and, unless the CPU is chosen, acquires the GPU once.
    #[must_use]
    pub fn new(config: PrerenderConfig) -> Self {
        Self::with_stats(config, Arc::default())
    }

    /// [`Prerenderer::new`] reporting into `stats`.
    #[must_use]
    pub fn with_stats(mut config: PrerenderConfig, stats: Arc<PrerenderStats>) -> Self {
        config.faults.restart_clock();
        let mut this = Self {
            cpu: CpuRenderer::with_threads(config.cpu_threads),
            config,
            gpu: None,
            gpu_retry_at: None,
            window: FailureWindow::default(),
            stats,
            last_simplifications: 0,
        };
        if this.config.renderer != RendererChoice::Cpu {
            this.acquire_gpu(true);
        } else {
            tracing::info!("texture pre-renderer on the CPU (renderer set to cpu)");
        }
        this
    }

    /// The shared counters.
    #[must_use]
    pub fn stats(&self) -> Arc<PrerenderStats> {
        Arc::clone(&self.stats)
    }

    /// The path that renders now.
    #[must_use]
    pub fn backend(&self) -> Backend {
        if self.gpu.is_some() {
            Backend::Gpu
        } else {
            Backend::Cpu
        }
    }

    /// Sets the first-attempt quality (the degradation machine's "fewer partials").
    pub fn set_quality(&mut self, quality: Quality) {
        self.config.quality = quality;
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PrerenderConfig {
        &self.config
    }

    /// Whether the injected fault `kind` fires now, counted in the stats if so.
    fn inject(&mut self, kind: FaultKind) -> bool {
        inject(&mut self.config.faults, &self.stats, kind)
    }

    /// Tries to (re)acquire the GPU and build its kernels.
    fn acquire_gpu(&mut self, first: bool) {
        let result = if self.inject(FaultKind::GpuOom) {
            Err(GpuError::OutOfMemory(
                "injected fault gpu_oom at device set-up".into(),
            ))
        } else {
            let broken = self.inject(FaultKind::ShaderError);
            GpuContext::open(self.config.renderer == RendererChoice::Gpu)
                .and_then(|ctx| GpuRenderer::build(ctx, broken))
        };
        match result {
            Ok(gpu) => {
                tracing::info!(
                    adapter = gpu.adapter_name(),
                    "texture pre-renderer on the GPU"
                );
                self.stats.gpu_acquired(gpu.adapter_name());
                self.gpu = Some(gpu);
                self.gpu_retry_at = None;
            }
            Err(GpuError::NoAdapter(why))
                if first && self.config.renderer == RendererChoice::Auto =>
            {
                tracing::info!(reason = %why, "no GPU adapter: texture pre-renderer on the CPU");
                self.stats.set_backend(Backend::Cpu);
            }
            Err(e) => {
                let cooldown_s = self.config.gpu_cooldown.as_secs_f64();
                if first {
                    tracing::error!(error = %e, cooldown_s, "GPU texture renderer unavailable: using the CPU");
                } else {
                    tracing::warn!(error = %e, cooldown_s, "GPU still unavailable: staying on the CPU");
                }
                self.stats.set_backend(Backend::Cpu);
                self.gpu_retry_at = Some(Instant::now() + self.config.gpu_cooldown);
            }
        }
    }

    /// Drops the GPU after a failure: one ERROR with context, then the cool-down.
    fn gpu_failed(&mut self, error: &GpuError, phrase_index: u64) {
        let adapter = self
            .gpu
            .as_ref()
            .map_or_else(String::new, |g| g.adapter_name().to_owned());
        // Dropping the renderer releases every buffer, pipeline and the device.
        self.gpu = None;
        self.stats.gpu_failed();
        self.gpu_retry_at = Some(Instant::now() + self.config.gpu_cooldown);
        tracing::error!(
            phrase = phrase_index,
            adapter,
            error = %error,
            cooldown_s = self.config.gpu_cooldown.as_secs_f64(),
            "GPU texture render failed: released the GPU, re-rendering on the CPU"
        );
    }

    /// One render of `desc` on the best available path; a GPU failure falls back on
    /// the CPU for this very description.
    fn render_once(
        &mut self,
        desc: &TextureDesc,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<Backend, RenderError> {
        // A short buffer is the caller's error, not the GPU's: check before either path.
        check_buffers(desc, left, right)?;
        if self.gpu.is_none() && self.gpu_retry_at.is_some_and(|t| Instant::now() >= t) {
            self.acquire_gpu(false);
        }
        if let Some(gpu) = self.gpu.as_mut() {
            let result = if inject(&mut self.config.faults, &self.stats, FaultKind::GpuOom) {
                Err(GpuError::OutOfMemory(
                    "injected fault gpu_oom while rendering".into(),
                ))
            } else {
                if inject(&mut self.config.faults, &self.stats, FaultKind::DeviceLost) {
                    gpu.context().destroy_device();
                }
                gpu.render(desc, left, right)
            };
            match result {
                Ok(()) => return Ok(Backend::Gpu),
                Err(e) => self.gpu_failed(&e, desc.phrase_index),
            }
        }
        self.cpu.render(desc, left, right)?;
        Ok(Backend::Cpu)
    }

    /// One attempt: fault injection, render, validation.
    fn attempt(
        &mut self,
        phrase: &Phrase,
        quality: Quality,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<Backend, RenderError> {
        if self.inject(FaultKind::RenderError) {
            return Err(RenderError::Injected("render_error"));
        }
        let mut desc =
            TextureDesc::build(self.config.seed, phrase, self.config.sample_rate, quality);
        if self.inject(FaultKind::RenderNan) {
            plant_nan(&mut desc);
        }
        let backend = self.render_once(&desc, left, right)?;
        let frames = desc.frames as usize;
        let (l, r) = (
            &left[..frames.min(left.len())],
            &right[..frames.min(right.len())],
        );
        validate(l, r, frames)?;
        Ok(backend)
    }

    /// Renders the texture of `phrase` into the first frames of `left`/`right`
    /// (which must hold at least [`super::texture::texture_frames`] frames), with
    /// the whole recovery chain. Blocks for retry pauses.
    pub fn render_phrase(
        &mut self,
        phrase: &Phrase,
        left: &mut [f32],
        right: &mut [f32],
    ) -> TextureKind {
        let mut current: Cow<'_, Phrase> = Cow::Borrowed(phrase);
        let mut quality = self.config.quality;
        for attempt in 0..=MAX_RETRIES {
            if attempt > 0 {
                current = Cow::Owned(simplify(&current));
                quality = quality.simplified();
                std::thread::sleep(self.config.retry_pause);
            }
            self.last_simplifications = attempt as u8;
            let result = self.attempt(&current, quality, left, right);
            self.window.record(result.is_err());
            self.stats.attempt(result.is_err(), self.window.rate());
            match result {
                Ok(backend) => {
                    self.stats.delivered(phrase.index, false);
                    return TextureKind::Rendered(backend);
                }
                Err(e) => tracing::warn!(
                    phrase = phrase.index,
                    attempt = attempt + 1,
                    of = MAX_RETRIES + 1,
                    error = %e,
                    "texture render failed; retrying with a simpler phrase"
                ),
            }
        }
        let frames = super::texture::texture_frames(phrase, self.config.sample_rate);
        let (nl, nr) = (frames.min(left.len()), frames.min(right.len()));
        left[..nl].fill(0.0);
        right[..nr].fill(0.0);
        tracing::error!(
            phrase = phrase.index,
            attempts = MAX_RETRIES + 1,
            failure_rate = self.window.rate(),
            "texture render failed after every retry: silence for this phrase"
        );
        self.stats.delivered(phrase.index, true);
        TextureKind::Silence
    }
}

impl Prerenderer {
    /// Failed attempts before the delivered one in the last
    /// [`Prerenderer::render_phrase`] (the retries that simplified it).
    #[must_use]
    pub fn last_simplifications(&self) -> u8 {
        self.last_simplifications
    }

    /// Renders again the texture `key` describes (seed and sample rate from
    /// this renderer's configuration) into the first frames of `left`/`right`:
    /// the phrase composed again, simplified and at the quality of the attempt
    /// that was delivered, on the path it was delivered from (the GPU when it
    /// was and one is here, else the CPU), validated; silence for a silent key.
    /// No fault is injected and nothing is retried. Returns the frames written.
    ///
    /// # Errors
    /// [`RenderError`] when the render fails or does not validate.
    pub fn render_key(
        &mut self,
        key: &TextureKey,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<usize, RenderError> {
        let mut phrase = Composer::compose_key(self.config.seed, &key.phrase);
        let frames = super::texture::texture_frames(&phrase, self.config.sample_rate);
        let mut quality = key.quality;
        for _ in 0..key.simplifications {
            phrase = simplify(&phrase);
            quality = quality.simplified();
        }
        let backend = match key.kind {
            TextureKind::Silence => {
                let (nl, nr) = (frames.min(left.len()), frames.min(right.len()));
                left[..nl].fill(0.0);
                right[..nr].fill(0.0);
                return Ok(frames);
            }
            TextureKind::Rendered(backend) => backend,
        };
        let desc = TextureDesc::build(self.config.seed, &phrase, self.config.sample_rate, quality);
        check_buffers(&desc, left, right)?;
        match (backend, self.gpu.as_mut()) {
            (Backend::Gpu, Some(gpu)) => {
                if let Err(e) = gpu.render(&desc, left, right) {
                    self.gpu_failed(&e, desc.phrase_index);
                    self.cpu.render(&desc, left, right)?;
                }
            }
            _ => self.cpu.render(&desc, left, right)?,
        }
        let n = desc.frames as usize;
        validate(&left[..n.min(left.len())], &right[..n.min(right.len())], n)?;
        Ok(frames)
    }
}

/// Makes a description render NaN for real (fault injection): a NaN gain on the
/// first partial, else on the first grain, else on a short grain added for it.
fn plant_nan(desc: &mut TextureDesc) {
    if let Some(p) = desc.partials.first_mut() {
        p.gain_l = f32::NAN;
    } else if let Some(g) = desc.grains.first_mut() {
        g.gain_l = f32::NAN;
    } else if desc.frames > 1 {
        desc.grains.push(super::texture::Grain {
            start: 0,
            frames: 2,
            inc: 0,
            phase0: 1 << 30,
            half_inv_frames: 0.25,
            gain_l: f32::NAN,
            gain_r: f32::NAN,
            pad: 0,
        });
        desc.max_grain_frames = desc.max_grain_frames.max(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{ComposeParams, Composer};
    use crate::prerender::gpu::test_context;
    use crate::prerender::texture::texture_frames;

    const SR: f32 = 8_000.0;
    const SEED: u64 = 21;
    /// Long enough that a loaded machine renders a phrase or two inside it.
    const COOLDOWN: Duration = Duration::from_secs(1);

    fn phrase(index: u64) -> Phrase {
        let params = ComposeParams {
            bars: 1,
            bpm: 120.0,
            intensity: 0.8,
            ..ComposeParams::default()
        };
        Composer::new(SEED, params).seek(index)
    }

    fn config(renderer: RendererChoice, faults: &str) -> PrerenderConfig {
        PrerenderConfig {
            renderer,
            gpu_cooldown: COOLDOWN,
            retry_pause: Duration::from_millis(1),
            faults: faults.parse().expect("valid fault spec"),
            ..PrerenderConfig::new(SEED, SR)
        }
    }

    fn buffers(p: &Phrase) -> (Vec<f32>, Vec<f32>) {
        let n = texture_frames(p, SR);
        (vec![7.0; n], vec![7.0; n])
    }

    /// The CPU render of `p` at `quality`: what a recovered texture must equal.
    fn cpu_texture(p: &Phrase, quality: Quality) -> (Vec<f32>, Vec<f32>) {
        let (mut l, mut r) = buffers(p);
        let desc = TextureDesc::build(SEED, p, SR, quality);
        CpuRenderer::new()
            .render(&desc, &mut l, &mut r)
            .expect("fits");
        (l, r)
    }

    fn assert_finite(l: &[f32], r: &[f32]) {
        assert!(l.iter().chain(r).all(|v| v.is_finite() && v.abs() <= 2.0));
    }

    #[test]
    fn clean_render_counts_one_attempt() {
        let mut pre = Prerenderer::new(config(RendererChoice::Cpu, ""));
        let p = phrase(0);
        let (mut l, mut r) = buffers(&p);
        assert_eq!(
            pre.render_phrase(&p, &mut l, &mut r),
            TextureKind::Rendered(Backend::Cpu)
        );
        assert_eq!((l.clone(), r.clone()), cpu_texture(&p, Quality::FULL));
        let s = pre.stats().snapshot();
        assert_eq!(
            (s.attempts, s.failures, s.rendered, s.silenced),
            (1, 0, 1, 0)
        );
        assert_eq!(s.failure_rate, 0.0);
    }

    #[test]
    fn render_error_every_time_gives_silence_after_three_retries() {
        let mut pre = Prerenderer::new(config(RendererChoice::Cpu, "render_error"));
        let p = phrase(1);
        let (mut l, mut r) = buffers(&p);
        assert_eq!(pre.render_phrase(&p, &mut l, &mut r), TextureKind::Silence);
        assert!(l.iter().chain(&r).all(|v| *v == 0.0), "silence");
        let s = pre.stats().snapshot();
        assert_eq!(s.attempts, u64::from(MAX_RETRIES) + 1);
        assert_eq!(s.failures, s.attempts);
        assert_eq!((s.rendered, s.silenced), (0, 1));
        assert_eq!(s.failure_rate, 1.0);
        let mut injected = [0; FaultKind::ALL.len()];
        injected[FaultKind::RenderError.index()] = s.attempts;
        assert_eq!(s.faults_injected, injected, "each injection counted");
    }

    #[test]
    fn render_nan_once_is_retried_with_a_simpler_texture() {
        let mut pre = Prerenderer::new(config(RendererChoice::Cpu, "render_nan@0s"));
        let p = phrase(2);
        let (mut l, mut r) = buffers(&p);
        assert_eq!(
            pre.render_phrase(&p, &mut l, &mut r),
            TextureKind::Rendered(Backend::Cpu)
        );
        // The retry rendered the simplified phrase at the simplified quality.
        let want = cpu_texture(&simplify(&p), Quality::FULL.simplified());
        assert_eq!((l, r), want);
        let s = pre.stats().snapshot();
        assert_eq!((s.attempts, s.failures), (2, 1));
        assert_eq!(s.failure_rate, 0.5);
    }

    #[test]
    fn random_faults_keep_every_texture_finite_and_counted() {
        let mut pre = Prerenderer::new(config(
            RendererChoice::Cpu,
            "render_nan:0.3,render_error:0.5",
        ));
        let mut silent = 0;
        for index in 0..12 {
            let p = phrase(index);
            let (mut l, mut r) = buffers(&p);
            if pre.render_phrase(&p, &mut l, &mut r) == TextureKind::Silence {
                silent += 1;
            }
            assert_finite(&l, &r);
        }
        let s = pre.stats().snapshot();
        assert!(s.failures > 0 && s.attempts > 12, "{s:?}");
        assert_eq!(s.rendered + s.silenced, 12);
        assert_eq!(s.silenced, silent);
        let expect = s.failures as f32 / s.attempts as f32;
        assert!(
            s.attempts > 50 || (s.failure_rate - expect).abs() < 1e-6,
            "failures ÷ attempts: {s:?}"
        );
    }

    /// A GPU prerenderer, or `None` (skip) outside CI when there is no adapter.
    fn gpu_prerenderer(faults: &str) -> Option<Prerenderer> {
        drop(test_context()?);
        Some(Prerenderer::new(config(RendererChoice::Gpu, faults)))
    }

    /// Renders `p`, expecting `want`, and checks the phrase was not lost.
    fn render_expect(pre: &mut Prerenderer, p: &Phrase, want: Backend) {
        let (mut l, mut r) = buffers(p);
        assert_eq!(
            pre.render_phrase(p, &mut l, &mut r),
            TextureKind::Rendered(want)
        );
        assert_finite(&l, &r);
        let (cl, cr) = cpu_texture(p, Quality::FULL);
        let db = crate::prerender::validate::error_db(&l, &cl)
            .max(crate::prerender::validate::error_db(&r, &cr));
        assert!(db < -60.0, "the full phrase was rendered ({db:.1} dBFS)");
    }

    #[test]
    fn gpu_oom_at_setup_falls_back_then_gpu_is_retried_after_cooldown() {
        let Some(mut pre) = gpu_prerenderer("gpu_oom@0s") else {
            return;
        };
        assert_eq!(pre.backend(), Backend::Cpu);
        render_expect(&mut pre, &phrase(0), Backend::Cpu);
        std::thread::sleep(COOLDOWN + Duration::from_millis(100));
        render_expect(&mut pre, &phrase(1), Backend::Gpu);
        let s = pre.stats().snapshot();
        assert_eq!((s.gpu_acquisitions, s.failures), (1, 0));
        assert_eq!(s.backend, Backend::Gpu);
    }

    /// A GPU fault while rendering: CPU re-render of the same phrase, no retry used,
    /// GPU back after the cool-down.
    fn fault_while_rendering(fault: &str) {
        let Some(mut pre) = gpu_prerenderer("") else {
            return;
        };
        assert_eq!(pre.backend(), Backend::Gpu);
        pre.config.faults = fault.parse().expect("valid");
        render_expect(&mut pre, &phrase(3), Backend::Cpu);
        let s = pre.stats().snapshot();
        assert_eq!(
            (s.gpu_failures, s.attempts, s.failures),
            (1, 1, 0),
            "{fault}"
        );
        assert_eq!(s.backend, Backend::Cpu);
        // Still cooling down: the CPU renders.
        render_expect(&mut pre, &phrase(4), Backend::Cpu);
        std::thread::sleep(COOLDOWN + Duration::from_millis(100));
        render_expect(&mut pre, &phrase(5), Backend::Gpu);
        assert_eq!(pre.stats().snapshot().gpu_acquisitions, 2);
    }

    #[test]
    fn gpu_oom_while_rendering_rerenders_on_cpu() {
        fault_while_rendering("gpu_oom@0s");
    }

    #[test]
    fn device_lost_rerenders_on_cpu_and_gets_a_new_device() {
        fault_while_rendering("device_lost@0s");
    }

    #[test]
    fn shader_error_falls_back_to_cpu() {
        let Some(mut pre) = gpu_prerenderer("shader_error@0s") else {
            return;
        };
        assert_eq!(
            pre.backend(),
            Backend::Cpu,
            "the broken kernel was rejected"
        );
        render_expect(&mut pre, &phrase(6), Backend::Cpu);
        std::thread::sleep(COOLDOWN + Duration::from_millis(100));
        render_expect(&mut pre, &phrase(7), Backend::Gpu);
    }
}
