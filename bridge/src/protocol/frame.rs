//! The binary audio frame (DESIGN.md §8): the 44-byte little-endian header and the
//! payload codecs.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::opus::{split_payload, PACKET_FRAMES};

/// First four bytes of every audio frame.
pub const MAGIC: [u8; 4] = *b"AUR1";
/// The header version this server writes.
pub const HEADER_VERSION: u8 = 1;
/// Length of the audio frame header in bytes.
pub const HEADER_LEN: usize = 44;
/// Header flag: the source is idle and the payload is silence.
pub const FLAG_IDLE: u8 = 1;
/// Header flag: the payload is fallback audio, not the source's own output.
pub const FLAG_FALLBACK: u8 = 2;

/// How the samples of an audio frame are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Signed 16-bit little-endian, interleaved.
    #[default]
    S16,
    /// 32-bit float little-endian, interleaved.
    F32,
    /// Opus at 48 kHz: the chunk's 20 ms packets, each prefixed by its length as
    /// a little-endian u16 (made once per stream by [`crate::codec::opus`]).
    Opus,
}

impl Codec {
    /// The number written in the header.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::S16 => 0,
            Self::F32 => 1,
            Self::Opus => 2,
        }
    }

    /// The codec with header number `id`.
    #[must_use]
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::S16),
            1 => Some(Self::F32),
            2 => Some(Self::Opus),
            _ => None,
        }
    }

    /// The codec named `s16`, `f32` or `opus` (as in `?codec=`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "s16" | "s16le" => Some(Self::S16),
            "f32" | "f32le" => Some(Self::F32),
            "opus" => Some(Self::Opus),
            _ => None,
        }
    }

    /// The name used in `?codec=` and in `hello`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::S16 => "s16",
            Self::F32 => "f32",
            Self::Opus => "opus",
        }
    }

    /// Bytes per sample of a PCM codec (`None` for Opus, whose packets vary).
    #[must_use]
    pub const fn sample_bytes(self) -> Option<usize> {
        match self {
            Self::S16 => Some(2),
            Self::F32 => Some(4),
            Self::Opus => None,
        }
    }
}

/// The fixed header in front of every binary audio frame (all little-endian).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameHeader {
    /// Sample encoding of the payload.
    pub codec: Codec,
    /// Interleaved channels.
    pub channels: u16,
    /// Sample rate in hertz.
    pub sample_rate: u32,
    /// Chunk sequence number, contiguous per stream (a gap means chunks were dropped).
    pub seq: u64,
    /// Stream position of the first frame, in frames since the stream started.
    pub position_frames: u64,
    /// Server wall-clock time when the chunk was produced, seconds since the Unix epoch.
    pub server_time_s: f64,
    /// Frames in the payload.
    pub frames: u32,
    /// Degradation level, 0 (normal) to 3 (overload).
    pub level: u8,
    /// [`FLAG_IDLE`], [`FLAG_FALLBACK`].
    pub flags: u8,
}

/// Why bytes are not a valid audio frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    #[error("frame is {0} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort(usize),
    /// The first four bytes are not `AUR1`.
    #[error("bad magic")]
    BadMagic,
    /// A header version this decoder does not know.
    #[error("unsupported header version {0}")]
    Version(u8),
    /// A codec number this decoder does not know.
    #[error("unknown codec {0}")]
    Codec(u8),
    /// Zero channels.
    #[error("zero channels")]
    Channels,
    /// The payload length does not match frames × channels × sample size.
    #[error("payload is {got} bytes, expected {expected}")]
    PayloadLength {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        got: usize,
    },
    /// An Opus payload whose length prefixes run past its end, or whose packets
    /// do not add up to the header's frames.
    #[error("malformed Opus payload: {0}")]
    OpusPayload(String),
}

impl FrameHeader {
    /// Payload bytes this header announces (`None` for Opus, whose packets vary).
    #[must_use]
    pub fn payload_len(&self) -> Option<u64> {
        self.codec
            .sample_bytes()
            .map(|b| u64::from(self.frames) * u64::from(self.channels) * b as u64)
    }

    /// Appends the 44 header bytes to `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        out.put_slice(&MAGIC);
        out.put_u8(HEADER_VERSION);
        out.put_u8(self.codec.id());
        out.put_u16_le(self.channels);
        out.put_u32_le(self.sample_rate);
        out.put_u64_le(self.seq);
        out.put_u64_le(self.position_frames);
        out.put_f64_le(self.server_time_s);
        out.put_u32_le(self.frames);
        out.put_u8(self.level);
        out.put_u8(self.flags);
        out.put_u16_le(0);
    }

    /// Parses a whole frame: its header and a payload of exactly the announced size.
    ///
    /// # Errors
    /// [`HeaderError`] for anything that is not a well-formed version-1 frame.
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), HeaderError> {
        let Some((head, payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
            return Err(HeaderError::TooShort(frame.len()));
        };
        if head[0..4] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if head[4] != HEADER_VERSION {
            return Err(HeaderError::Version(head[4]));
        }
        let codec = Codec::from_id(head[5]).ok_or(HeaderError::Codec(head[5]))?;
        let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&head[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let header = Self {
            codec,
            channels: u16_at(6),
            sample_rate: u32_at(8),
            seq: u64_at(12),
            position_frames: u64_at(20),
            server_time_s: f64::from_bits(u64_at(28)),
            frames: u32_at(36),
            level: head[40],
            flags: head[41],
        };
        if header.channels == 0 {
            return Err(HeaderError::Channels);
        }
        match header.payload_len() {
            Some(expected) if expected != payload.len() as u64 => {
                return Err(HeaderError::PayloadLength {
                    expected,
                    got: payload.len(),
                })
            }
            Some(_) => {}
            None => check_opus_payload(&header, payload)?,
        }
        Ok((header, payload))
    }
}

/// An Opus payload must split into whole packets of 20 ms that add up to the
/// header's frames.
fn check_opus_payload(header: &FrameHeader, payload: &[u8]) -> Result<(), HeaderError> {
    let packets = split_payload(payload)
        .map_err(|at| HeaderError::OpusPayload(format!("packet at byte {at} runs past the end")))?;
    let frames = packets.len() as u64 * PACKET_FRAMES as u64;
    if frames != u64::from(header.frames) {
        return Err(HeaderError::OpusPayload(format!(
            "{} packets of {PACKET_FRAMES} frames, but the header says {}",
            packets.len(),
            header.frames
        )));
    }
    Ok(())
}

/// Converts a sample in [-1, 1] to s16 (clamped; NaN gives 0).
#[must_use]
pub fn to_s16(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Encodes a whole binary frame: `header` (its `codec` decides the payload) then the
/// interleaved samples. Opus is stateful and made by the stream's encoder, so an
/// Opus header gets no payload here: frame its packets with [`opus_frame`].
#[must_use]
pub fn encode_frame(header: &FrameHeader, interleaved: &[f32]) -> Bytes {
    let sample_bytes = header.codec.sample_bytes().unwrap_or(0);
    let mut out = BytesMut::with_capacity(HEADER_LEN + interleaved.len() * sample_bytes);
    header.write_to(&mut out);
    match header.codec {
        Codec::S16 => interleaved.iter().for_each(|&x| out.put_i16_le(to_s16(x))),
        Codec::F32 => interleaved.iter().for_each(|&x| out.put_f32_le(x)),
        Codec::Opus => {}
    }
    out.freeze()
}

/// Frames an Opus chunk: `header` (codec, rate and frames of the Opus stream)
/// then `payload`, the length-prefixed packets of [`crate::codec::opus::OpusChunk`].
#[must_use]
pub fn opus_frame(header: &FrameHeader, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    header.write_to(&mut out);
    out.put_slice(payload);
    out.freeze()
}

/// Decodes the payload of a parsed frame back to interleaved floats (s16 scaled by
/// 1/32768). The length was checked by [`FrameHeader::parse`]. Opus needs the
/// stream's decoder state, so an Opus payload gives no samples here.
#[must_use]
pub fn decode_payload(codec: Codec, payload: &[u8]) -> Vec<f32> {
    match codec {
        Codec::S16 => payload
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect(),
        Codec::F32 => payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Codec::Opus => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(codec: Codec) -> FrameHeader {
        FrameHeader {
            codec,
            channels: 2,
            sample_rate: 48_000,
            seq: 0x0102_0304_0506_0708,
            position_frames: 4800 * 7,
            server_time_s: 1_700_000_000.25,
            frames: 3,
            level: 2,
            flags: FLAG_IDLE | FLAG_FALLBACK,
        }
    }

    #[test]
    fn header_layout_is_as_documented() {
        let h = header(Codec::F32);
        let frame = encode_frame(&h, &[0.5; 6]);
        assert_eq!(frame.len(), HEADER_LEN + 24);
        assert_eq!(&frame[0..4], b"AUR1");
        assert_eq!(frame[4], 1);
        assert_eq!(frame[5], 1);
        assert_eq!(&frame[6..8], &2u16.to_le_bytes());
        assert_eq!(&frame[8..12], &48_000u32.to_le_bytes());
        assert_eq!(&frame[12..20], &h.seq.to_le_bytes());
        assert_eq!(&frame[20..28], &h.position_frames.to_le_bytes());
        assert_eq!(&frame[28..36], &h.server_time_s.to_le_bytes());
        assert_eq!(&frame[36..40], &3u32.to_le_bytes());
        assert_eq!(frame[40], 2);
        assert_eq!(frame[41], 3);
        assert_eq!(&frame[42..44], &[0, 0]);
    }

    #[test]
    fn frames_round_trip() {
        let samples = [0.0, 0.5, -0.5, 1.0, -1.0, 0.25];
        for codec in [Codec::S16, Codec::F32] {
            let h = header(codec);
            let frame = encode_frame(&h, &samples);
            let (back, payload) = FrameHeader::parse(&frame).expect("valid frame");
            assert_eq!(back, h);
            let decoded = decode_payload(codec, payload);
            for (a, b) in samples.iter().zip(&decoded) {
                assert!((a - b).abs() < 1e-4, "{codec:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_frames_are_rejected() {
        let frame = encode_frame(&header(Codec::S16), &[0.0; 6]);
        assert_eq!(
            FrameHeader::parse(&frame[..10]),
            Err(HeaderError::TooShort(10))
        );
        assert!(matches!(
            FrameHeader::parse(&frame[..frame.len() - 1]),
            Err(HeaderError::PayloadLength { .. })
        ));
        let mut bad = frame.to_vec();
        bad[5] = 9;
        assert_eq!(FrameHeader::parse(&bad), Err(HeaderError::Codec(9)));
        bad[0] = b'X';
        assert_eq!(FrameHeader::parse(&bad), Err(HeaderError::BadMagic));
    }

    #[test]
    fn s16_conversion_clamps_and_maps_nan_to_zero() {
        assert_eq!(to_s16(2.0), 32767);
        assert_eq!(to_s16(-2.0), -32767);
        assert_eq!(to_s16(f32::NAN), 0);
    }
    proptest! {
        #[test]
        fn frame_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FrameHeader::parse(&bytes);
        }
        #[test]
        fn headers_round_trip(seq in any::<u64>(), pos in any::<u64>(), t in any::<f64>(), frames in 0u32..64, ch in 1u16..4, rate in any::<u32>(), level in any::<u8>(), flags in any::<u8>(), f32c in any::<bool>()) {
            let h = FrameHeader { codec: if f32c { Codec::F32 } else { Codec::S16 }, channels: ch, sample_rate: rate, seq, position_frames: pos, server_time_s: t, frames, level, flags };
            let samples = vec![0.25_f32; frames as usize * usize::from(ch)];
            let frame = encode_frame(&h, &samples);
            let (back, payload) = FrameHeader::parse(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.seq, seq);
            prop_assert_eq!(back.position_frames, pos);
            prop_assert_eq!(back.server_time_s.to_bits(), t.to_bits());
            prop_assert_eq!(back.frames, frames);
            prop_assert_eq!(back.level, level);
            prop_assert_eq!(back.flags, flags);
            prop_assert_eq!(payload.len() as u64, h.payload_len().unwrap_or(u64::MAX));
        }
    }
}
