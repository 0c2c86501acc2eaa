//! The stream's Opus encoding: 20 ms packets at 48 kHz, made once per stream in
//! chunk order (Opus is stateful) with the pure-Rust `opus-rs` encoder, so the
//! default build needs no C library.
//!
//! A chunk's payload is its packets, each prefixed by its length as a
//! little-endian u16 (DESIGN.md §8, codec 2). A source at another rate goes
//! through [`StreamResampler`] first; samples that do not fill a whole packet wait
//! for the next chunk, so a chunk of any length works and no sample is lost.

use bytes::{BufMut, Bytes, BytesMut};
use opus_rs::{Application, OpusEncoder};

use super::resample::StreamResampler;
use super::CodecError;

/// Opus's own rate.
pub const OPUS_RATE_HZ: u32 = 48_000;
/// Frames in one 20 ms packet at [`OPUS_RATE_HZ`].
pub const PACKET_FRAMES: usize = 960;
/// Samples the decoder drops at the start of a stream: the encoder's look-ahead
/// (4 ms of delay compensation plus the 2.5 ms CELT overlap at 48 kHz), written as
/// OpusHead's pre-skip.
pub const PRE_SKIP: u16 = 312;
/// The bitrates `--opus-kbps` takes.
pub const KBPS_RANGE: std::ops::RangeInclusive<u32> = 32..=256;
/// The default bitrate.
pub const DEFAULT_KBPS: u32 = 128;
/// Largest packet (RFC 6716 §3.2.1 caps a frame at 1275 bytes, plus the TOC).
const MAX_PACKET: usize = 1276;

/// One chunk in Opus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusChunk {
    /// The packets, each prefixed by its u16 length.
    pub payload: Bytes,
    /// The packets themselves, as slices of `payload` (for the Ogg pages).
    pub packets: Vec<Bytes>,
    /// Granule position after the last packet: 48 kHz samples since the stream's
    /// first packet (pre-skip included), as Ogg/Opus counts them.
    pub granule_end: u64,
    /// Whether a packet failed to encode and was replaced by silence.
    pub failed: bool,
}

/// The stream's Opus encoder.
pub struct OpusStream {
    encoder: OpusEncoder,
    kbps: u32,
    channels: usize,
    resampler: StreamResampler,
    /// 48 kHz interleaved samples waiting for a whole packet.
    pending: Vec<f32>,
    /// One packet of output.
    packet: Vec<u8>,
    /// A packet of digital silence, sent in place of one that failed.
    silence: Vec<u8>,
    packets_total: u64,
    failures: u64,
    /// Packets still to fail on purpose (set by tests; 0 otherwise).
    fail_next: usize,
}

impl std::fmt::Debug for OpusStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusStream")
            .field("kbps", &self.kbps)
            .field("channels", &self.channels)
            .field("packets_total", &self.packets_total)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

fn encoder(channels: usize, kbps: u32) -> Result<OpusEncoder, CodecError> {
    let mut encoder = OpusEncoder::new(OPUS_RATE_HZ as i32, channels, Application::Audio)
        .map_err(CodecError::Opus)?;
    encoder.bitrate_bps = (kbps * 1000) as i32;
    encoder.use_cbr = false;
    encoder.complexity = 10;
    Ok(encoder)
}

impl OpusStream {
    /// An encoder for a source of `channels` channels at `source_hz`, at `kbps`
    /// (clamped to [`KBPS_RANGE`]; the configuration checks it first).
    ///
    /// # Errors
    /// [`CodecError`] for a channel count other than 1 or 2, or a rate the
    /// resampler refuses.
    pub fn new(source_hz: u32, channels: u16, kbps: u32) -> Result<Self, CodecError> {
        if !(1..=2).contains(&channels) {
            return Err(CodecError::Channels(channels));
        }
        let channels = usize::from(channels);
        let kbps = kbps.clamp(*KBPS_RANGE.start(), *KBPS_RANGE.end());
        let resampler = StreamResampler::new(source_hz, OPUS_RATE_HZ, channels)?;
        let mut silence = vec![0; MAX_PACKET];
        let len = encoder(channels, kbps)?
            .encode(
                &vec![0.0; PACKET_FRAMES * channels],
                PACKET_FRAMES,
                &mut silence,
            )
            .map_err(CodecError::Opus)?;
        silence.truncate(len);
        Ok(Self {
            encoder: encoder(channels, kbps)?,
            kbps,
            channels,
            resampler,
            pending: Vec::with_capacity(4 * PACKET_FRAMES * channels),
            packet: vec![0; MAX_PACKET],
            silence,
            packets_total: 0,
            failures: 0,
            fail_next: 0,
        })
    }

    /// The bitrate, in kbit/s.
    #[must_use]
    pub const fn kbps(&self) -> u32 {
        self.kbps
    }

    /// Packets that failed to encode since the start (each sent as silence).
    #[must_use]
    pub const fn failures(&self) -> u64 {
        self.failures
    }

    /// Encodes the next chunk of interleaved samples: every whole packet it
    /// completes (none, when the chunk is shorter than the 20 ms still missing).
    pub fn encode(&mut self, samples: &[f32]) -> OpusChunk {
        self.resampler.process(samples, &mut self.pending);
        let step = PACKET_FRAMES * self.channels;
        let whole = self.pending.len() / step;
        let mut payload = BytesMut::with_capacity(whole * (2 + self.kbps as usize * 20 / 8 + 64));
        let mut spans = Vec::with_capacity(whole);
        let mut failed = false;
        for i in 0..whole {
            let len = self.encode_packet(i * step);
            failed |= len.is_none();
            let bytes = len.map_or(&self.silence[..], |len| &self.packet[..len]);
            // A packet is at most MAX_PACKET bytes, which fits a u16.
            payload.put_u16_le(bytes.len() as u16);
            let start = payload.len();
            payload.extend_from_slice(bytes);
            spans.push(start..payload.len());
        }
        self.pending.drain(..whole * step);
        self.packets_total += whole as u64;
        let payload = payload.freeze();
        OpusChunk {
            packets: spans.into_iter().map(|s| payload.slice(s)).collect(),
            payload,
            granule_end: self.packets_total * PACKET_FRAMES as u64,
            failed,
        }
    }

    /// Encodes the packet that starts at `offset` of `pending`. On failure the
    /// encoder is rebuilt (its state may be broken) and `None` is returned.
    fn encode_packet(&mut self, offset: usize) -> Option<usize> {
        let result = if self.injected_failure() {
            Err("injected failure")
        } else {
            let input = &self.pending[offset..offset + PACKET_FRAMES * self.channels];
            self.encoder.encode(input, PACKET_FRAMES, &mut self.packet)
        };
        match result {
            Ok(len) => Some(len),
            Err(reason) => {
                self.failures += 1;
                tracing::error!(
                    reason,
                    failures = self.failures,
                    "an Opus packet failed to encode; sending silence"
                );
                if let Ok(fresh) = encoder(self.channels, self.kbps) {
                    self.encoder = fresh;
                }
                None
            }
        }
    }

    fn injected_failure(&mut self) -> bool {
        let fail = self.fail_next > 0;
        self.fail_next = self.fail_next.saturating_sub(1);
        fail
    }
}

/// Splits a codec-2 payload back into its packets.
///
/// # Errors
/// The byte offset where a length prefix or a packet runs past the end.
pub fn split_payload(payload: &[u8]) -> Result<Vec<&[u8]>, usize> {
    let mut packets = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let len_bytes = payload.get(at..at + 2).ok_or(at)?;
        let len = usize::from(u16::from_le_bytes([len_bytes[0], len_bytes[1]]));
        packets.push(payload.get(at + 2..at + 2 + len).ok_or(at)?);
        at += 2 + len;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let t = i as f32 / rate as f32;
                let x = (std::f32::consts::TAU * 220.0 * t).sin() * 0.3;
                [x, x * 0.5]
            })
            .collect()
    }

    #[test]
    fn a_100_ms_chunk_at_48_khz_is_five_packets() {
        let mut s = OpusStream::new(48_000, 2, DEFAULT_KBPS).expect("encoder");
        let c = s.encode(&tone(48_000, 4800));
        assert_eq!(c.packets.len(), 5);
        assert_eq!(c.granule_end, 4800);
        assert!(!c.failed);
        let split = split_payload(&c.payload).expect("well-formed payload");
        assert_eq!(split.len(), 5);
        for (a, b) in split.iter().zip(&c.packets) {
            assert_eq!(*a, &b[..]);
        }
    }

    #[test]
    fn odd_chunks_carry_their_remainder() {
        let mut s = OpusStream::new(48_000, 2, DEFAULT_KBPS).expect("encoder");
        // 30 ms chunks: 1, 2, 1, 2 … packets, never a lost sample.
        let counts: Vec<usize> = (0..4)
            .map(|_| s.encode(&tone(48_000, 1440)).packets.len())
            .collect();
        assert_eq!(counts, [1, 2, 1, 2]);
    }

    #[test]
    fn the_bitrate_is_what_was_asked() {
        for kbps in [32, 128, 256] {
            let mut s = OpusStream::new(48_000, 2, kbps).expect("encoder");
            let bytes: usize = (0..50)
                .map(|_| s.encode(&tone(48_000, 4800)).payload.len())
                .sum();
            let got = bytes as f64 * 8.0 / 5.0 / 1000.0;
            // VBR on a steady tone: within a third of the target, prefixes included.
            assert!(
                got < f64::from(kbps) * 1.34,
                "{kbps} kbit/s asked, {got:.1} sent"
            );
        }
    }

    #[test]
    fn another_source_rate_is_resampled_to_48_khz() {
        let mut s = OpusStream::new(44_100, 2, DEFAULT_KBPS).expect("encoder");
        let packets: usize = (0..30)
            .map(|_| s.encode(&tone(44_100, 4410)).packets.len())
            .sum();
        // 3 s at 48 kHz is 150 packets, less the resampler's first block.
        assert!((145..=150).contains(&packets), "{packets} packets");
    }

    #[test]
    fn a_failed_packet_is_silence_and_counted() {
        let mut s = OpusStream::new(48_000, 2, DEFAULT_KBPS).expect("encoder");
        s.fail_next = 2;
        let c = s.encode(&tone(48_000, 4800));
        assert!(c.failed);
        assert_eq!(s.failures(), 2);
        assert_eq!(&c.packets[0][..], &s.silence[..]);
        assert_eq!(c.packets.len(), 5, "the stream keeps its length");
        assert!(
            !s.encode(&tone(48_000, 4800)).failed,
            "the rebuilt encoder works"
        );
    }

    #[test]
    fn refuses_three_channels() {
        assert_eq!(
            OpusStream::new(48_000, 3, 128).err(),
            Some(CodecError::Channels(3))
        );
    }

    #[test]
    fn split_payload_finds_a_truncated_packet() {
        assert_eq!(split_payload(&[3, 0, 1, 2]), Err(0));
        assert_eq!(split_payload(&[1, 0, 9, 5]), Err(3));
        assert_eq!(split_payload(&[]).map(|p| p.len()), Ok(0));
    }
}
