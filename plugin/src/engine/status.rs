//! What an engine reports about itself: [`EngineStatus`], and the texture
//! pre-renderer's [`RendererStatus`] read through a [`RendererProbe`].

use std::sync::Arc;

use crate::compose::mix::MixLevels;
use crate::compose::phrase::ComposeParams;
use crate::degrade::monitor::{DegradeShared, LoadReport, TextureLoad};
use crate::degrade::Level;
use crate::pacing::RunMode;
use crate::prerender::worker::SharedQuality;
use crate::prerender::{PrerenderStats, Quality, StatsSnapshot};
use crate::render::texture::TextureTelemetry;

/// The texture pre-renderer's state, for status pages, metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct RendererStatus {
    /// The pre-renderer's counters, backend and adapter.
    pub stats: StatsSnapshot,
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
    pub(super) stats: Arc<PrerenderStats>,
    pub(super) telemetry: Arc<TextureTelemetry>,
    pub(super) quality: Arc<SharedQuality>,
    pub(super) degrade: Arc<DegradeShared>,
}

impl RendererProbe {
    /// The pre-renderer's state now.
    #[must_use]
    pub fn status(&self) -> RendererStatus {
        RendererStatus {
            stats: self.stats.snapshot(),
            margin_s: self.telemetry.margin_s(),
            texture_audible: self.telemetry.audible(),
            texture_enabled: self.degrade.level().profile().texture,
            quality: self.quality.get(),
        }
    }

    /// The texture's part of the load, for the degradation monitor (atomics
    /// only).
    #[must_use]
    pub fn texture_load(&self) -> TextureLoad {
        TextureLoad {
            margin_s: self.telemetry.margin_s(),
            failure_rate: self.stats.failure_rate(),
            phrase_s: self.telemetry.phrase_s(),
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
    /// Real time or a bounce, and why.
    pub run_mode: RunMode,
    /// The level the user pinned, if any.
    pub level_pin: Option<Level>,
    /// The load monitor's last reading (zeros offline or before the first).
    pub load: LoadReport,
    /// Voices sounding: pad, melody, percussion.
    pub active_voices: (usize, usize, usize),
    /// The texture pre-renderer, when the texture layer is on.
    pub renderer: Option<RendererStatus>,
}
