//! Audio sources and the pump thread that drives them.
//!
//! A [`Source`] fills chunks of interleaved audio on request and takes control
//! changes; a change it cannot take comes back as a [`SourceError`]. The [`Pump`]
//! (in `pump.rs`) runs a source on its own OS thread at real-time pace and publishes
//! every checked chunk to the hub.
//!
//! Two sources: the [`EmbeddedSource`] (the engine inside the bridge) and the
//! [`ShmSource`] (a plugin in a DAW, through shared memory: it reports `idle` and
//! fills silence when its writer goes quiet, and refuses control when the plugin's
//! remote control is off). When a source turns idle or live again, every client
//! gets a `status` message at once, with the reason.

mod embedded;
mod pump;
pub mod shm;

use std::sync::Arc;

use auralis::compose::code::PieceCode;
use auralis::compose::phrase::{ComposeParams, ParamError};
use auralis::compose::presets::Preset;
use auralis::degrade::Level;
use auralis::engine::RendererProbe;
use auralis::pacing::RunMode;
use auralis::render::mix::MixLevels;
use serde_json::Value;

pub use self::embedded::{BeforeFill, EmbeddedSource};
pub use self::pump::{Pump, PumpError};
pub use self::shm::{ReaderStats, ShmSource};
use crate::protocol::{params_json, ParamUpdate};
use crate::recording::EventLog;

/// What a source produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Stream name (`embedded`, or the shared-memory stream's name).
    pub name: String,
    /// `embedded` or `shm`.
    pub kind: &'static str,
    /// Sample rate in hertz.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
}

/// What a source says about the chunk it just filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillReport {
    /// No live audio: the chunk is silence.
    pub idle: bool,
    /// The chunk is fallback audio.
    pub fallback: bool,
    /// The source's degradation level.
    pub level: Level,
    /// The phrase playing, when known.
    pub phrase_index: Option<u64>,
    /// How the engine renders: in real time, or as a DAW's bounce (the
    /// plugin behind a shared-memory stream says which).
    pub run_mode: RunMode,
}

/// The parameters a source plays with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamsSnapshot {
    /// Musical parameters.
    pub compose: ComposeParams,
    /// Mix levels.
    pub levels: MixLevels,
    /// The preset last selected, if the parameters still are that preset's.
    pub preset: Option<&'static str>,
    /// The piece playing, as a piece code (`None` for a source that does not
    /// know its seed, such as a plugin streaming through shared memory).
    pub code: Option<PieceCode>,
}

impl ParamsSnapshot {
    /// The JSON form used by `hello`, `params` and `/api/status`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut json = params_json(&self.compose, &self.levels, self.preset);
        json["code"] = self.code.map(|c| c.to_string()).into();
        json
    }
}

/// A control change for a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceCommand {
    /// Change some musical parameters.
    Update(ParamUpdate),
    /// Switch to a preset (musical parameters and levels).
    Preset(&'static Preset),
    /// Play the piece a code names: its preset's levels and its parameters
    /// (the seed must be the one playing).
    Piece(PieceCode),
}

/// Something that produces audio chunks for the pump.
pub trait Source: Send + 'static {
    /// What it produces.
    fn info(&self) -> SourceInfo;
    /// Fills `interleaved` (frames × channels) with the next audio. Must not block
    /// for long: the pump calls it on its real-time schedule.
    fn fill(&mut self, interleaved: &mut [f32]) -> FillReport;
    /// Applies a control change (from the next phrase).
    ///
    /// # Errors
    /// [`SourceError`] naming the parameter that is out of range, or saying why the
    /// source cannot be controlled. Nothing changes then.
    fn apply(&mut self, command: SourceCommand) -> Result<ParamsSnapshot, SourceError>;
    /// The parameters in force.
    fn params(&self) -> ParamsSnapshot;
    /// Why the source is idle, when it is and knows why.
    fn idle_reason(&self) -> Option<String> {
        None
    }
    /// The shared-memory reader's counters, for a source that has them.
    fn reader_stats(&self) -> Option<Arc<ReaderStats>> {
        None
    }
    /// A reader of the texture pre-renderer's state, for a source that has one.
    fn renderer(&self) -> Option<RendererProbe> {
        None
    }
    /// The log of what it played, for a source that can render it again
    /// (`/api/recording`).
    fn recording(&self) -> Option<Arc<EventLog>> {
        None
    }
}

/// Why a source did not take a control change. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// A parameter outside its range.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The source cannot take the change now (busy, stopped, no plugin attached,
    /// or not controllable at all); the message says why.
    #[error("{0}")]
    Unavailable(String),
    /// The plugin's Remote control parameter is off.
    #[error(
        "the plugin's Remote control parameter is off: turn it on in the DAW to \
         control this stream from here"
    )]
    RemoteControlOff,
    /// A piece code of another seed: the seed is fixed while the source runs.
    #[error(
        "this stream plays seed {playing}; a piece of seed {asked} needs the bridge \
         started with --code {code}"
    )]
    OtherSeed {
        /// The seed playing.
        playing: u64,
        /// The code's seed.
        asked: u64,
        /// The code asked for.
        code: String,
    },
    /// The source's seed is not the bridge's to set (a plugin in a DAW).
    #[error(
        "a plugin's piece is set in the DAW (its Seed, Preset, Key, Mode, Tempo and \
         Intensity parameters), not by a piece code here"
    )]
    NoPieces,
}

/// Whether every sample is finite and within [-1, 1].
#[must_use]
pub fn chunk_is_valid(samples: &[f32]) -> bool {
    samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0)
}
