//! The compatibility dialect's audio (`?format=json`, or plain `/ws/stream` with
//! `--default-format json`): what the original Python server sent and its client
//! plays. That client opens a 44.1 kHz `AudioContext`, ignores the chunk's
//! `sample_rate` and plays the samples as they come, so the stream must be
//! 44,100 frames per second whatever the source's rate, in chunks of 100 ms
//! (4,410 frames), which its buffer is counted in.
//!
//! A source at another rate goes through [`StreamResampler`]; samples that do not
//! fill a whole chunk wait for the next source chunk. Each `audio_chunk` text is
//! made once here, in stream order, and shared by every compatibility listener.

use axum::extract::ws::Utf8Bytes;

use super::resample::StreamResampler;
use super::CodecError;
use crate::protocol::{compat_audio_chunk, CompatChunk, FrameHeader};

/// The original client's rate.
pub const COMPAT_RATE_HZ: u32 = 44_100;
/// Frames in one 100 ms chunk at [`COMPAT_RATE_HZ`].
pub const COMPAT_CHUNK_FRAMES: usize = 4_410;

/// The stream's compatibility chunks.
#[derive(Debug)]
pub struct CompatStream {
    channels: usize,
    resampler: StreamResampler,
    /// Interleaved samples at [`COMPAT_RATE_HZ`] waiting for a whole chunk.
    pending: Vec<f32>,
    /// The next chunk's sequence number (its own count, gap-free); every chunk
    /// before it was [`COMPAT_CHUNK_FRAMES`] long, so the first pending frame is
    /// frame `next_seq × COMPAT_CHUNK_FRAMES` of the stream.
    next_seq: u64,
}

impl CompatStream {
    /// The compatibility stream of a source of `channels` at `source_hz`.
    ///
    /// # Errors
    /// [`CodecError::Resampler`] when the resampler refuses the rates.
    pub fn new(source_hz: u32, channels: u16) -> Result<Self, CodecError> {
        let channels = usize::from(channels.max(1));
        let resampler = StreamResampler::new(source_hz, COMPAT_RATE_HZ, channels)?;
        Ok(Self {
            channels,
            resampler,
            pending: Vec::with_capacity(2 * COMPAT_CHUNK_FRAMES * channels),
            next_seq: 0,
        })
    }

    /// Takes the next source chunk, described by `header` and `samples`
    /// interleaved, and returns the `audio_chunk` texts it completes (none, one,
    /// or more when the source's chunks are long).
    ///
    /// A chunk's `timestamp` is the server time of its first frame: the stream
    /// time of that frame (the resampler's delay is dropped, so frame `n` is at
    /// `n / 44100` s) mapped through the source chunk's position and publishing
    /// time. The original client measures its jitter from those steps.
    pub fn encode(&mut self, header: &FrameHeader, samples: &[f32]) -> Vec<Utf8Bytes> {
        let epoch_s = header.server_time_s
            - header.position_frames as f64 / f64::from(header.sample_rate.max(1));
        self.resampler.process(samples, &mut self.pending);
        let chunk_len = COMPAT_CHUNK_FRAMES * self.channels;
        let whole = self.pending.len() / chunk_len;
        let mut texts = Vec::with_capacity(whole);
        for piece in self.pending.chunks_exact(chunk_len) {
            let start_frame = self.next_seq * COMPAT_CHUNK_FRAMES as u64;
            texts.push(Utf8Bytes::from(compat_audio_chunk(
                &CompatChunk {
                    seq: self.next_seq,
                    timestamp: epoch_s + start_frame as f64 / f64::from(COMPAT_RATE_HZ),
                    sample_rate: COMPAT_RATE_HZ,
                    channels: self.channels as u16,
                },
                piece,
            )));
            self.next_seq += 1;
        }
        self.pending.drain(..whole * chunk_len);
        texts
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::Value;

    use super::*;
    use crate::protocol::Codec;

    fn parse(text: &Utf8Bytes) -> Value {
        serde_json::from_str(text.as_str()).expect("JSON")
    }

    /// Feeds `seconds` of a 440 Hz tone at `rate` in chunks of `chunk` frames;
    /// returns every text made.
    fn feed(rate: u32, chunk: usize, seconds: usize) -> Vec<Value> {
        let mut stream = CompatStream::new(rate, 2).expect("rates");
        let total = rate as usize * seconds;
        let tone: Vec<f32> = (0..total)
            .flat_map(|i| {
                let x = (std::f32::consts::TAU * 440.0 * i as f32 / rate as f32).sin() * 0.5;
                [x, x]
            })
            .collect();
        let mut out = Vec::new();
        for (k, piece) in tone.chunks(2 * chunk).enumerate() {
            let position_frames = (k * chunk) as u64;
            let header = FrameHeader {
                codec: Codec::S16,
                channels: 2,
                sample_rate: rate,
                seq: k as u64,
                position_frames,
                server_time_s: 1_000.0 + position_frames as f64 / f64::from(rate),
                frames: chunk as u32,
                level: 0,
                flags: 0,
            };
            out.extend(stream.encode(&header, piece).iter().map(parse));
        }
        out
    }

    #[test]
    fn every_source_rate_becomes_44100_frames_a_second_in_100_ms_chunks() {
        for (rate, chunk) in [
            (48_000, 4_800),
            (16_000, 1_600),
            (44_100, 1_024),
            (96_000, 19_200),
        ] {
            let chunks = feed(rate, chunk, 10);
            // All but the last partial chunk (and the resampler's first block) of
            // 10 s come out.
            assert!(
                (98..=100).contains(&chunks.len()),
                "{rate} Hz: {} chunks from 10 s",
                chunks.len()
            );
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(c["seq"], i as u64, "{rate} Hz: gap-free sequence");
                assert_eq!(c["sample_rate"], 44_100);
                assert_eq!(c["num_samples"], 4_410);
                assert_eq!(c["duration_ms"], 100.0);
                let pcm = base64::engine::general_purpose::STANDARD
                    .decode(c["data"].as_str().expect("data"))
                    .expect("base64");
                assert_eq!(pcm.len(), 4_410 * 2 * 2, "{rate} Hz: stereo s16le");
            }
            // The timestamps step by the chunk's length: the client's jitter
            // figure sees none.
            let steps: Vec<f64> = chunks
                .windows(2)
                .map(|w| w[1]["timestamp"].as_f64().unwrap() - w[0]["timestamp"].as_f64().unwrap())
                .collect();
            let worst = steps.iter().map(|s| (s - 0.1).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-6, "{rate} Hz: timestamp step off by {worst} s");
        }
    }

    #[test]
    fn the_rate_is_exact_over_a_minute() {
        for (rate, chunk) in [(48_000, 4_800), (16_000, 1_600), (96_000, 9_600)] {
            let chunks = feed(rate, chunk, 60).len();
            // 600 chunks of 100 ms, less at most the resampler's first block.
            assert!(
                (599..=600).contains(&chunks),
                "{rate} Hz: {chunks} chunks from 60 s"
            );
        }
    }

    #[test]
    fn the_tone_keeps_its_pitch() {
        let chunks = feed(48_000, 4_800, 3);
        let left: Vec<f32> = chunks[5..25]
            .iter()
            .flat_map(|c| {
                let pcm = base64::engine::general_purpose::STANDARD
                    .decode(c["data"].as_str().expect("data"))
                    .expect("base64");
                pcm.chunks_exact(4)
                    .map(|f| f32::from(i16::from_le_bytes([f[0], f[1]])))
                    .collect::<Vec<_>>()
            })
            .collect();
        // 2 s at 44.1 kHz: 880 cycles of 440 Hz.
        let cycles = left
            .windows(2)
            .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
            .count();
        assert!((cycles as i64 - 880).abs() <= 2, "{cycles} cycles in 2 s");
    }
}
