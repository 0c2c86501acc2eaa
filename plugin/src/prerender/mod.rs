//! The texture pre-renderer (DESIGN §2, §5): renders each phrase's heavy texture
//! layer (additive pads, granular swells) a phrase ahead of playback, on the GPU
//! (`wgpu`, kernels in `shaders/`) or on the CPU with the same math.
//!
//! | file | concern |
//! |---|---|
//! | [`texture`] | the shared, flat description of what to render (pure function of seed, phrase, rate, quality) |
//! | [`cpu`] | the CPU path (SIMD rotation recurrence; an exact per-frame reference) |
//! | [`gpu`] | the GPU path (device acquisition, pipelines, error scopes, device loss) |
//! | [`validate`] | output checks, phrase simplification, sliding-window failure rate |
//! | [`recovery`] | backend choice, GPU fallback and cool-down, the retry/simplify/silence chain |
//! | [`faults`] | `AURALIS_FAULTS` fault injection |
//! | [`stats`] | lock-free counters for status, logs and the degradation monitor |
//! | [`pool`] | texture buffers allocated up front and their SPSC hand-off |
//! | [`worker`] | the pre-renderer thread |
//!
//! # Integration
//!
//! ```no_run
//! use std::time::Duration;
//! use auralis::compose::{ComposeParams, Composer};
//! use auralis::prerender::{PoolConfig, PrerenderConfig, PrerenderWorker, TextureKind, WorkerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (seed, sample_rate, params) = (7, 48_000.0, ComposeParams::default());
//! // Engine construction (not the audio thread): reads AURALIS_RENDERER,
//! // AURALIS_FAULTS, AURALIS_GPU_COOLDOWN_S; starts the `auralis-prerender` thread.
//! let config = WorkerConfig {
//!     prerender: PrerenderConfig::from_env(seed, sample_rate)?,
//!     pool: PoolConfig::for_params(&params, sample_rate),
//! };
//! let (worker, mut requester, mut feed) = PrerenderWorker::spawn(config)?;
//!
//! // Composer thread: send a clone of every phrase it sends to the renderer.
//! let phrase = Composer::new(seed, params).seek(0);
//! if let Err(_full) = requester.request(phrase.clone()) { /* 8 queued: try later */ }
//!
//! // Audio thread, at (or before) the start of phrase 0: never blocks or allocates.
//! if let Some(texture) = feed.take(0) {
//!     match texture.kind() {
//!         TextureKind::Rendered(_) => { /* mix texture.left()[pos], texture.right()[pos] */ }
//!         TextureKind::Silence => { /* keep the fallback pad */ }
//!     }
//!     // When the phrase (and its crossfade) is over:
//!     feed.give_back(texture);
//! }
//! // Offline bounce: wait for it instead.
//! let _texture = feed.take_blocking(0, Duration::from_secs(60));
//!
//! // Status: backend, adapter, attempts, failures, failure rate, GPU fallbacks.
//! let status = worker.stats().snapshot();
//! # let _ = status;
//! # Ok(())
//! # }
//! ```

pub mod cpu;
pub mod faults;
pub mod gpu;
pub mod keyed;
pub mod pool;
pub mod recovery;
pub mod stats;
pub mod texture;
pub mod validate;
pub mod worker;

pub use keyed::KeyedTextures;
pub use pool::{PoolConfig, Texture, TextureFeed, TextureKey};
pub use recovery::{ConfigError, PrerenderConfig, Prerenderer, TextureKind};
pub use stats::{Backend, PrerenderStats, StatsSnapshot};
pub use texture::{phrase_frames, texture_frames, Quality, TextureDesc};
pub use worker::{PrerenderWorker, TextureRequester, WorkerConfig};

/// Why a texture could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The destination buffers are shorter than the phrase.
    #[error("phrase {phrase_index} needs {frames} frames, the buffers hold {capacity}")]
    BufferTooSmall {
        /// Which phrase.
        phrase_index: u64,
        /// Frames it needs.
        frames: usize,
        /// Frames the buffers hold.
        capacity: usize,
    },
    /// The texture failed validation.
    #[error("invalid texture: {0}")]
    Invalid(#[from] validate::ValidationError),
    /// An injected fault (`AURALIS_FAULTS`).
    #[error("injected fault {0}")]
    Injected(&'static str),
    /// A replay's texture pool had no free texture (its layer holds more than
    /// a layer can).
    #[error("no free texture in the replay's pool")]
    PoolExhausted,
    /// The GPU path failed (the pre-renderer falls back on the CPU).
    #[error(transparent)]
    Gpu(#[from] gpu::GpuError),
}
