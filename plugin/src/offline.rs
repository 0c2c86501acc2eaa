//! Offline rendering: the engine in offline mode (it waits for every phrase and
//! every phrase's texture, so the result is complete and the same on every run),
//! block by block. The pre-renderer thread renders the next phrase's texture
//! while the real-time layer renders the current phrase, and cuts each texture
//! into spans rendered on up to [`default_threads`] threads (or as many as asked
//! for): the bytes are the same for any number of threads.

use crate::degrade::monitor::MonitorConfig;
use crate::engine::{Engine, EngineConfig, EngineError, TextureSetting};
use crate::prerender::PrerenderConfig;
use crate::render::RenderMode;

/// Frames rendered per block.
pub const BLOCK_FRAMES: usize = 4096;

/// Threads an offline render uses by default: every core the OS gives it.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Renders an engine offline, one block at a time.
#[derive(Debug)]
pub struct OfflineRenderer {
    engine: Engine,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl OfflineRenderer {
    /// An offline renderer for `config` (its mode is set to offline), with the
    /// texture layer set up from the environment (on, on the CPU unless
    /// `AURALIS_RENDERER=gpu`).
    ///
    /// # Errors
    /// As [`Engine::build`].
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_texture(config, TextureSetting::FromEnv)
    }

    /// [`OfflineRenderer::new`] with the texture layer set explicitly, its CPU
    /// path on [`default_threads`] threads.
    ///
    /// # Errors
    /// As [`Engine::build`].
    pub fn with_texture(
        config: EngineConfig,
        texture: TextureSetting,
    ) -> Result<Self, EngineError> {
        Self::with_threads(config, texture, default_threads())
    }

    /// [`OfflineRenderer::with_texture`] with the texture's CPU path on `threads`
    /// threads (at least 1; the output does not depend on it).
    ///
    /// # Errors
    /// As [`Engine::build`].
    pub fn with_threads(
        config: EngineConfig,
        texture: TextureSetting,
        threads: usize,
    ) -> Result<Self, EngineError> {
        let offline = EngineConfig {
            mode: RenderMode::Offline,
            ..config
        };
        let texture = match texture.prerender_config(&offline)? {
            Some(c) => TextureSetting::With(PrerenderConfig {
                cpu_threads: threads.max(1),
                ..c
            }),
            None => TextureSetting::Off,
        };
        let engine = Engine::build(offline, MonitorConfig::default(), texture)?;
        Ok(Self {
            engine,
            left: vec![0.0; BLOCK_FRAMES],
            right: vec![0.0; BLOCK_FRAMES],
        })
    }

    /// Starts the render at the song position `beat` (beats since the start of
    /// the piece), as a host's playhead starting there does
    /// ([`Engine::seek_beats`]). Call before the first block.
    pub fn start_at_beat(&mut self, beat: f64) {
        self.engine.seek_beats(beat);
    }

    /// Renders the next `frames` frames (at most [`BLOCK_FRAMES`]) and returns them.
    pub fn next_block(&mut self, frames: usize) -> (&[f32], &[f32]) {
        let n = frames.min(BLOCK_FRAMES);
        self.engine
            .process(&mut self.left[..n], &mut self.right[..n]);
        (&self.left[..n], &self.right[..n])
    }

    /// The engine, for its status.
    #[must_use]
    pub const fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Renders `frames` frames of `config` offline into two channel buffers.
///
/// # Errors
/// As [`Engine::new`].
pub fn render_to_vecs(config: EngineConfig, frames: usize) -> Result<[Vec<f32>; 2], EngineError> {
    let mut renderer = OfflineRenderer::new(config)?;
    let mut out = [Vec::with_capacity(frames), Vec::with_capacity(frames)];
    while out[0].len() < frames {
        let (l, r) = renderer.next_block(frames - out[0].len());
        out[0].extend_from_slice(l);
        out[1].extend_from_slice(r);
    }
    Ok(out)
}
