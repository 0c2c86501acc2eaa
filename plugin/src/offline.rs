//! Offline rendering: the engine in offline mode (it waits for every phrase, so
//! the result is complete and the same on every run), block by block.

use crate::engine::{Engine, EngineConfig, EngineError};
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
    /// An offline renderer for `config` (its mode is set to offline).
    ///
    /// # Errors
    /// As [`Engine::new`].
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let engine = Engine::new(EngineConfig {
            mode: RenderMode::Offline,
            ..config
        })?;
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
