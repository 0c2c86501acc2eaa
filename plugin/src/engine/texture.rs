//! The engine's texture layer: whether it is on ([`TextureSetting`]) and the
//! parts an engine builds for it ([`TextureSetup`]).

use std::sync::Arc;

use super::status::RendererProbe;
use super::{EngineConfig, EngineError};
use crate::degrade::monitor::DegradeShared;
use crate::prerender::gpu::RendererChoice;
use crate::prerender::{
    ConfigError, PoolConfig, PrerenderConfig, PrerenderWorker, TextureRequester, WorkerConfig,
};
use crate::render::texture::{TextureLayer, TextureTelemetry};
use crate::render::RenderMode;

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

/// The texture layer's parts: the pre-renderer thread, where the composer thread
/// asks it for textures, the layer the renderer plays them through, and a reader
/// of their state.
#[derive(Debug)]
pub(super) struct TextureSetup {
    /// The pre-renderer thread (the engine keeps it, so it lives as long).
    pub(super) worker: PrerenderWorker,
    /// Where the composer thread sends phrases to have their texture rendered.
    pub(super) requester: TextureRequester,
    /// What the renderer plays the textures through.
    pub(super) layer: TextureLayer,
    /// Reads the pre-renderer's and the layer's state.
    pub(super) probe: RendererProbe,
}

impl TextureSetup {
    /// Starts the pre-renderer for an engine of `config` whose degradation state
    /// is `degrade`; `None` with the texture off.
    ///
    /// # Errors
    /// [`EngineError::Prerender`] for a malformed `AURALIS_*` variable,
    /// [`EngineError::Spawn`] when the thread cannot be started.
    pub(super) fn start(
        setting: TextureSetting,
        config: &EngineConfig,
        degrade: &Arc<DegradeShared>,
    ) -> Result<Option<Self>, EngineError> {
        let Some(prerender) = setting.prerender_config(config)? else {
            return Ok(None);
        };
        let pool = PoolConfig::for_params(&config.compose, config.sample_rate);
        let (worker, requester, texture_feed) =
            PrerenderWorker::spawn(WorkerConfig { prerender, pool }).map_err(EngineError::Spawn)?;
        let telemetry = Arc::new(TextureTelemetry::default());
        let layer = TextureLayer::new(
            texture_feed,
            config.mode,
            config.sample_rate,
            Arc::clone(&telemetry),
        );
        let probe = RendererProbe {
            stats: worker.stats(),
            telemetry,
            quality: worker.quality_cell(),
            degrade: Arc::clone(degrade),
        };
        Ok(Some(Self {
            worker,
            requester,
            layer,
            probe,
        }))
    }
}
