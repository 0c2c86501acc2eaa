//! Textures made again from their [`TextureKey`]s, for a replay: the same
//! hand-off as the pre-renderer's ([`super::pool`]), fed on demand by the thread
//! that drives the replaying renderer instead of by a worker thread.

use super::gpu::RendererChoice;
use super::pool::{texture_channel, PoolConfig, PoolSide, Texture, TextureFeed, TextureKey};
use super::recovery::{PrerenderConfig, Prerenderer, TextureKind};
use super::stats::Backend;
use super::RenderError;
use crate::compose::Composer;

/// Textures in a replay's pool: the three a texture layer holds, one being
/// delivered and a spare.
const REPLAY_TEXTURES: usize = 5;

/// Renders textures from their keys and hands them to a renderer's layer.
#[derive(Debug)]
pub struct KeyedTextures {
    side: PoolSide,
    config: PrerenderConfig,
    /// The CPU path (always).
    cpu: Prerenderer,
    /// The GPU path, acquired at the first key rendered on the GPU.
    gpu: Option<Prerenderer>,
}

impl KeyedTextures {
    /// A pool for textures of up to `pool.max_frames` frames (longer ones grow
    /// their buffer here), made as `config` says (its faults are ignored, its
    /// renderer choice is used for keys rendered on the GPU), and the feed a
    /// texture layer takes them from.
    #[must_use]
    pub fn new(config: &PrerenderConfig, pool: PoolConfig) -> (Self, TextureFeed) {
        let (side, feed) = texture_channel(PoolConfig {
            textures: REPLAY_TEXTURES,
            ..pool
        });
        // One thread per replay: a recording must not take the machine's cores
        // from the live stream.
        let config = PrerenderConfig {
            faults: super::faults::FaultPlan::default(),
            cpu_threads: 1,
            ..config.clone()
        };
        let cpu = Prerenderer::new(PrerenderConfig {
            renderer: RendererChoice::Cpu,
            ..config.clone()
        });
        (
            Self {
                side,
                config,
                cpu,
                gpu: None,
            },
            feed,
        )
    }

    /// Renders the texture `key` describes into a texture of the pool, for a
    /// layer being restored (it goes back to this pool when the layer is done
    /// with it).
    ///
    /// # Errors
    /// As [`KeyedTextures::deliver`].
    pub fn make(&mut self, key: &TextureKey) -> Result<Texture, RenderError> {
        let Some(mut texture) = self.side.take_free() else {
            return Err(RenderError::PoolExhausted);
        };
        let phrase = Composer::compose_key(self.config.seed, &key.phrase);
        let frames = super::texture::texture_frames(&phrase, self.config.sample_rate);
        texture.ensure_capacity(frames);
        let renderer = match key.kind {
            TextureKind::Rendered(Backend::Gpu) if self.config.renderer != RendererChoice::Cpu => {
                let config = self.config.clone();
                self.gpu.get_or_insert_with(|| Prerenderer::new(config))
            }
            _ => &mut self.cpu,
        };
        let result = {
            let (left, right) = texture.buffers_mut();
            renderer.render_key(key, left, right)
        };
        match result {
            Ok(frames) => {
                texture.set_content(&phrase, frames, key.kind, Some(*key));
                Ok(texture)
            }
            Err(e) => {
                self.side.release(texture);
                Err(e)
            }
        }
    }

    /// Renders the texture `key` describes and sends it to the feed, where the
    /// layer takes it at its next look.
    ///
    /// # Errors
    /// [`RenderError`] when the render fails, [`RenderError::PoolExhausted`]
    /// when no texture is free.
    pub fn deliver(&mut self, key: &TextureKey) -> Result<(), RenderError> {
        let texture = self.make(key)?;
        self.side.send(texture);
        Ok(())
    }
}
