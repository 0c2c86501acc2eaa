//! Offline rendering: the engine in offline mode (it waits for every phrase and
//! every phrase's texture, so the result is complete and the same on every run),
//! block by block. The pre-renderer thread renders the next phrase's texture
//! while the real-time layer renders the current phrase.

use crate::degrade::monitor::MonitorConfig;
use crate::engine::{Engine, EngineConfig, EngineError, TextureSetting};
use crate::render::RenderMode;

/// Frames rendered per block.
pub const BLOCK_FRAMES: usize = 4096;

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

    /// [`OfflineRenderer::new`] with the texture layer set explicitly.
    ///
    /// # Errors
    /// As [`Engine::build`].
    pub fn with_texture(
        config: EngineConfig,
        texture: TextureSetting,
    ) -> Result<Self, EngineError> {
        let offline = EngineConfig {
            mode: RenderMode::Offline,
            ..config
        };
        let engine = Engine::build(offline, MonitorConfig::default(), texture)?;
        Ok(Self {
            engine,
            left: vec![0.0; BLOCK_FRAMES],
            right: vec![0.0; BLOCK_FRAMES],
        })
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
