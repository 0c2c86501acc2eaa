//! Stateful encodings of the stream, made once per stream in chunk order and
//! shared by every listener: Opus packets ([`opus`]), their Ogg pages ([`ogg`]),
//! the compatibility dialect's 44.1 kHz `audio_chunk`s ([`compat`]), and the
//! sample-rate conversion they need when the source runs at another rate
//! ([`resample`]).
//!
//! The s16/f32 encodings of a chunk depend on that chunk alone and are made
//! lazily in [`crate::hub::Chunk`]; these depend on every chunk before, so the
//! source's pump makes them as it publishes.

pub mod compat;
pub mod ogg;
pub mod opus;
pub mod resample;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

use self::compat::CompatStream;
use self::ogg::{OggHeaders, OggOpusStream};
use self::opus::{OpusStream, OPUS_RATE_HZ, PACKET_FRAMES};
use crate::protocol::{opus_frame, Codec, FrameHeader, FLAG_FALLBACK};

/// A chunk in Opus: its binary frame (codec 2) and its Ogg page.
#[derive(Debug, Clone)]
pub struct OpusPart {
    /// The WebSocket frame: the Opus stream's header, then the packets.
    pub frame: Bytes,
    /// The Ogg page that carries the same packets (empty when there are none).
    pub page: Bytes,
    /// Whether a packet failed to encode and went out as silence.
    pub failed: bool,
}

/// What one source chunk adds to the stream's stateful encodings.
#[derive(Debug, Clone)]
pub struct Encodings {
    /// Its Opus frame and Ogg page.
    pub opus: OpusPart,
    /// The compatibility `audio_chunk` texts it completes, oldest first (their
    /// 100 ms at 44.1 kHz rarely line up with the source's chunks).
    pub compat: Vec<Utf8Bytes>,
}

/// The stream's stateful encodings, fed every chunk in order by the pump.
#[derive(Debug)]
pub struct StreamEncoder {
    opus: OpusStream,
    ogg: OggOpusStream,
    compat: CompatStream,
}

impl StreamEncoder {
    /// Encoders for a stream of `channels` at `sample_rate`, Opus at `opus_kbps`,
    /// whose Ogg pages carry the serial `ogg`.
    ///
    /// # Errors
    /// [`CodecError`] when the Opus encoder or a resampler refuses the format.
    pub fn new(
        sample_rate: u32,
        channels: u16,
        opus_kbps: u32,
        ogg: OggHeaders,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            opus: OpusStream::new(sample_rate, channels, opus_kbps)?,
            ogg: OggOpusStream::new(ogg),
            compat: CompatStream::new(sample_rate, channels)?,
        })
    }

    /// Encodes the chunk `header` describes: its Opus frame carries the same
    /// sequence number, level and flags (plus [`FLAG_FALLBACK`] when a packet
    /// failed), at 48 kHz, positioned by the Opus stream's own sample count.
    pub fn encode_opus(&mut self, header: &FrameHeader, samples: &[f32]) -> OpusPart {
        let chunk = self.opus.encode(samples);
        let frames = chunk.packets.len() * PACKET_FRAMES;
        let opus_header = FrameHeader {
            codec: Codec::Opus,
            sample_rate: OPUS_RATE_HZ,
            position_frames: chunk.granule_end - frames as u64,
            frames: frames as u32,
            flags: header.flags | if chunk.failed { FLAG_FALLBACK } else { 0 },
            ..*header
        };
        OpusPart {
            frame: opus_frame(&opus_header, &chunk.payload),
            page: self.ogg.page(&chunk),
            failed: chunk.failed,
        }
    }

    /// The compatibility `audio_chunk` texts the chunk `header` describes
    /// completes ([`CompatStream::encode`]).
    pub fn encode_compat(&mut self, header: &FrameHeader, samples: &[f32]) -> Vec<Utf8Bytes> {
        self.compat.encode(header, samples)
    }
}

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
