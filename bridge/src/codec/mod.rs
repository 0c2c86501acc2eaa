//! Stateful encodings of the stream, made once per stream in chunk order and
//! shared by every listener: Opus packets ([`opus`]), their Ogg pages ([`ogg`]),
//! and the sample-rate conversion both need when the source runs at another rate
//! ([`resample`]).
//!
//! The s16/f32/JSON encodings of a chunk depend on that chunk alone and are made
//! lazily in [`crate::hub::Chunk`]; these depend on every chunk before, so the
//! source's pump makes them as it publishes.

pub mod ogg;
pub mod opus;
pub mod resample;

/// Why a stream encoder could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The Opus encoder refused its settings.
    #[error("the Opus encoder refused its settings: {0}")]
    Opus(&'static str),
    /// The resampler refused the rates.
    #[error("cannot resample {from_hz} Hz to {to_hz} Hz: {reason}")]
    Resampler {
        /// Source rate.
        from_hz: u32,
        /// Target rate.
        to_hz: u32,
        /// What the resampler said.
        reason: String,
    },
    /// A channel count the encoder does not take.
    #[error("{0} channels: the Opus stream takes 1 or 2")]
    Channels(u16),
}
