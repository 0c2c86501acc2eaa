//! The wire layout of a shared-memory stream, `/dev/shm/auralis-<stream>`, and its
//! pure, panic-free header parser.
//!
//! The file is a sequence of little-endian 64-bit words (32-bit for samples), all
//! accessed as atomics by the processes sharing it:
//!
//! ```text
//! byte 0     header page   (HEADER_BYTES): the words of `word::*`
//! byte 4096  control page  (CONTROL_BYTES): control write position, then
//!                          CONTROL_SLOTS records of CONTROL_RECORD_WORDS words
//! byte 8192  audio ring    capacity_frames × channels f32 samples, interleaved;
//!                          frame n lives at index n mod capacity_frames
//! ```
//!
//! The writer (the plugin) fills in the static words (magic … session) in a
//! private temporary file, then renames it into place, so a reader never sees a
//! half-written header; a new writer always makes a new file (a new inode and
//! session), which tells readers that the stream restarted. Only the writer
//! writes the header and the ring; only the reader (the bridge) writes the control
//! page's write position and records.

use std::path::PathBuf;

use crate::compose::phrase::ComposeParams;
use crate::degrade::Level;
use crate::pacing::RunMode;

/// The directory streams live in (a tmpfs on Linux).
pub const SHM_DIR: &str = "/dev/shm";
/// Every stream file's name starts with this.
pub const FILE_PREFIX: &str = "auralis-";
/// First word of a stream file: `"AURSHM"`, then two zero bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"AURSHM\0\0");
/// The layout version this crate reads and writes.
pub const VERSION: u64 = 1;
/// Size of the header page in bytes.
pub const HEADER_BYTES: usize = 4096;
/// Byte offset of the control page.
pub const CONTROL_OFFSET: usize = HEADER_BYTES;
/// Size of the control page in bytes.
pub const CONTROL_BYTES: usize = 4096;
/// Byte offset of the audio ring.
pub const RING_OFFSET: usize = CONTROL_OFFSET + CONTROL_BYTES;
/// Control records the control ring holds.
pub const CONTROL_SLOTS: u64 = 64;
/// Words per control record.
pub const CONTROL_RECORD_WORDS: usize = 4;
/// Word index (in the control page) of the first record; word 0 is the control
/// write position.
pub const CONTROL_FIRST_SLOT_WORD: usize = 8;
/// Most interleaved channels a stream may have.
pub const MAX_CHANNELS: u64 = 8;
/// Smallest and largest ring, in frames.
pub const CAPACITY_RANGE: (u64, u64) = (1024, 1 << 22);
/// Lowest and highest sample rate, in hertz.
pub const SAMPLE_RATE_RANGE: (u64, u64) = (8_000, 768_000);
/// Longest stream name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

// The control records must fit their page.
const _: () = assert!(
    (CONTROL_FIRST_SLOT_WORD + CONTROL_SLOTS as usize * CONTROL_RECORD_WORDS) * 8 <= CONTROL_BYTES
);

/// Word indices of the header page.
pub mod word {
    /// [`super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// [`super::VERSION`].
    pub const VERSION: usize = 1;
    /// Sample rate in hertz.
    pub const SAMPLE_RATE: usize = 2;
    /// Interleaved channels.
    pub const CHANNELS: usize = 3;
    /// Ring capacity in frames.
    pub const CAPACITY: usize = 4;
    /// [`super::CONTROL_SLOTS`].
    pub const CONTROL_SLOTS: usize = 5;
    /// [`super::RING_OFFSET`].
    pub const RING_OFFSET: usize = 6;
    /// Process id of the writer.
    pub const WRITER_PID: usize = 7;
    /// Random per-file id: a new one means a new writer.
    pub const SESSION: usize = 8;
    /// Frames written since the file was made (published with release ordering).
    pub const WRITE_POS: usize = 9;
    /// Bumped by every `process()` call of the writer.
    pub const HEARTBEAT: usize = 10;
    /// The writer's degradation level (0–3).
    pub const LEVEL: usize = 11;
    /// [`super::FLAG_CLOSED`] | [`super::FLAG_REMOTE_CONTROL`].
    pub const FLAGS: usize = 12;
    /// Key and mode the writer composes with ([`super::encode_compose`]).
    pub const COMPOSE_A: usize = 13;
    /// Tempo and intensity the writer composes with.
    pub const COMPOSE_B: usize = 14;
    /// Control records the writer has taken (its read position).
    pub const CONTROL_READ: usize = 15;
    /// Control records the writer refused (invalid, or remote control off).
    pub const CONTROL_REFUSED: usize = 16;
    /// The writer's [`RunMode`](crate::pacing::RunMode) (0–3; 0, real time,
    /// from a writer that predates it).
    pub const RUN_MODE: usize = 17;
    /// Words in use; the rest of the page is zero.
    pub const COUNT: usize = 18;
}

/// Flag: the writer stopped (deactivated or removed); no more audio comes.
pub const FLAG_CLOSED: u64 = 1;
/// Flag: the plugin's Remote control parameter is on.
pub const FLAG_REMOTE_CONTROL: u64 = 2;
/// Marks [`word::COMPOSE_A`] as filled in.
const COMPOSE_VALID: u64 = 1 << 63;
/// The bits of [`word::COMPOSE_A`] that hold the key and mode.
const KEY_MODE_BITS: u64 = 0xFFFF;

/// A stream's header, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Sample rate in hertz, within [`SAMPLE_RATE_RANGE`].
    pub sample_rate: u32,
    /// Interleaved channels, 1 to [`MAX_CHANNELS`].
    pub channels: u16,
    /// Ring capacity in frames, within [`CAPACITY_RANGE`].
    pub capacity_frames: u32,
    /// Process id of the writer.
    pub writer_pid: u32,
    /// The writer's per-file id.
    pub session: u64,
    /// Frames written so far.
    pub write_pos: u64,
    /// The writer's `process()` counter.
    pub heartbeat: u64,
    /// The writer's degradation level.
    pub level: Level,
    /// How the writer renders (real time or a bounce, and why).
    pub run_mode: RunMode,
    /// The writer closed the stream.
    pub closed: bool,
    /// The plugin accepts remote control.
    pub remote_control: bool,
    /// The musical parameters the plugin plays with, once it has published them.
    pub compose: Option<ComposeParams>,
    /// Control records the plugin has taken.
    pub control_read: u64,
    /// Control records the plugin refused.
    pub control_refused: u64,
}

impl Header {
    /// Bytes a file with this header must have at least.
    #[must_use]
    pub fn file_len(&self) -> u64 {
        ring_end(u64::from(self.capacity_frames), u64::from(self.channels)).unwrap_or(u64::MAX)
    }
}

/// Why bytes are not a valid stream header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than the header page.
    #[error("{len} bytes is too short for a stream header ({HEADER_BYTES} needed)")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// Not an Auralis stream.
    #[error("not an Auralis stream (wrong magic number {0:#018x})")]
    Magic(u64),
    /// A layout version this build does not read.
    #[error("stream layout version {0} is not supported (this build reads version {VERSION})")]
    Version(u64),
    /// A field out of its range.
    #[error("header field `{field}` is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Lowest valid value.
        min: u64,
        /// Highest valid value.
        max: u64,
    },
    /// The file is shorter than its header says the ring needs.
    #[error("the file has {len} bytes but its header needs {need}")]
    Truncated {
        /// The file's length.
        len: u64,
        /// The length the header implies.
        need: u64,
    },
    /// The published musical parameters are not valid.
    #[error("header field `compose` is invalid: {0}")]
    Compose(String),
}

fn word_at(bytes: &[u8], index: usize) -> u64 {
    let start = index * 8;
    bytes
        .get(start..start + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, HeaderError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(HeaderError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// Bytes a file needs for a ring of `capacity` frames of `channels`, if that fits
/// in a `u64`.
fn ring_end(capacity: u64, channels: u64) -> Option<u64> {
    capacity
        .checked_mul(channels)?
        .checked_mul(4)?
        .checked_add(RING_OFFSET as u64)
}

/// Parses a whole stream file's bytes: `bytes.len()` is taken as the file's
/// length. Never panics, whatever the input.
///
/// # Errors
/// [`HeaderError`] naming the first thing that is wrong.
pub fn parse_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    parse_header_prefix(bytes, bytes.len() as u64)
}

/// Parses the first bytes of a stream file (at least [`HEADER_BYTES`]) whose
/// total length is `file_len`. Never panics, whatever the input.
///
/// # Errors
/// [`HeaderError`] naming the first thing that is wrong.
pub fn parse_header_prefix(prefix: &[u8], file_len: u64) -> Result<Header, HeaderError> {
    if prefix.len() < HEADER_BYTES {
        return Err(HeaderError::TooShort { len: prefix.len() });
    }
    let w = |i| word_at(prefix, i);
    if w(word::MAGIC) != MAGIC {
        return Err(HeaderError::Magic(w(word::MAGIC)));
    }
    if w(word::VERSION) != VERSION {
        return Err(HeaderError::Version(w(word::VERSION)));
    }
    let sample_rate = in_range(
        "sample_rate",
        w(word::SAMPLE_RATE),
        SAMPLE_RATE_RANGE.0,
        SAMPLE_RATE_RANGE.1,
    )?;
    let channels = in_range("channels", w(word::CHANNELS), 1, MAX_CHANNELS)?;
    let capacity = in_range(
        "capacity_frames",
        w(word::CAPACITY),
        CAPACITY_RANGE.0,
        CAPACITY_RANGE.1,
    )?;
    in_range(
        "control_slots",
        w(word::CONTROL_SLOTS),
        CONTROL_SLOTS,
        CONTROL_SLOTS,
    )?;
    in_range(
        "ring_offset",
        w(word::RING_OFFSET),
        RING_OFFSET as u64,
        RING_OFFSET as u64,
    )?;
    let writer_pid = in_range("writer_pid", w(word::WRITER_PID), 1, u64::from(u32::MAX))?;
    let level = in_range("level", w(word::LEVEL), 0, 3)?;
    let run_mode = in_range("run_mode", w(word::RUN_MODE), 0, 3)?;
    let flags = in_range(
        "flags",
        w(word::FLAGS),
        0,
        FLAG_CLOSED | FLAG_REMOTE_CONTROL,
    )?;
    // The ranges above keep this product far below u64::MAX.
    let need = ring_end(capacity, channels).unwrap_or(u64::MAX);
    if file_len < need {
        return Err(HeaderError::Truncated {
            len: file_len,
            need,
        });
    }
    let compose = decode_compose(w(word::COMPOSE_A), w(word::COMPOSE_B))?;
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(Header {
        sample_rate: narrow(sample_rate),
        channels: u16::try_from(channels).unwrap_or(u16::MAX),
        capacity_frames: narrow(capacity),
        writer_pid: narrow(writer_pid),
        session: w(word::SESSION),
        write_pos: w(word::WRITE_POS),
        heartbeat: w(word::HEARTBEAT),
        level: Level::from_u8(u8::try_from(level).unwrap_or(3)).unwrap_or(Level::Overload),
        run_mode: RunMode::from_u8(u8::try_from(run_mode).unwrap_or(0)),
        closed: flags & FLAG_CLOSED != 0,
        remote_control: flags & FLAG_REMOTE_CONTROL != 0,
        compose,
        control_read: w(word::CONTROL_READ),
        control_refused: w(word::CONTROL_REFUSED),
    })
}

/// The two header words that publish key, mode, tempo and intensity: the
/// key and mode of [`ComposeParams::to_words`] marked valid, and its tempo and
/// intensity word.
#[must_use]
pub fn encode_compose(p: &ComposeParams) -> [u64; 2] {
    let [small, floats] = p.to_words();
    [COMPOSE_VALID | (small & KEY_MODE_BITS), floats]
}

/// The inverse of [`encode_compose`] (bars and beats per bar are the defaults);
/// `None` when the words were never filled in.
///
/// # Errors
/// [`HeaderError::Compose`] when a value is out of range.
pub fn decode_compose(a: u64, b: u64) -> Result<Option<ComposeParams>, HeaderError> {
    if a & COMPOSE_VALID == 0 {
        return Ok(None);
    }
    let bad = |what: String| Err(HeaderError::Compose(what));
    let key_mode = a & !COMPOSE_VALID;
    let decoded = (key_mode & !KEY_MODE_BITS == 0)
        .then(|| ComposeParams::from_words([key_mode, b]))
        .flatten();
    let Some(decoded) = decoded else {
        return bad(format!(
            "key and mode word {key_mode:#x} names no key and mode"
        ));
    };
    let default = ComposeParams::default();
    let params = ComposeParams {
        bars: default.bars,
        beats_per_bar: default.beats_per_bar,
        ..decoded
    };
    match params.validate() {
        Ok(()) => Ok(Some(params)),
        Err(e) => bad(e.to_string()),
    }
}

/// Why a stream name is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream name {name:?} is invalid: use 1 to {MAX_NAME_LEN} letters, digits, `-` or `_`")]
pub struct NameError {
    /// The name given.
    pub name: String,
}

/// Checks a stream name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_`.
///
/// # Errors
/// [`NameError`] otherwise.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NameError {
            name: name.to_owned(),
        })
    }
}

/// The file of stream `name` (not validated).
#[must_use]
pub fn stream_path(name: &str) -> PathBuf {
    PathBuf::from(SHM_DIR).join(format!("{FILE_PREFIX}{name}"))
}

/// The ring capacity used for a sample rate: about two seconds.
#[must_use]
pub fn capacity_for(sample_rate: u32) -> u32 {
    let two_s = u64::from(sample_rate).saturating_mul(2);
    u32::try_from(two_s.clamp(CAPACITY_RANGE.0, CAPACITY_RANGE.1)).unwrap_or(u32::MAX)
}

/// A valid header's bytes, for tests of readers and parsers (a whole file: header,
/// zeroed control page and ring).
#[must_use]
pub fn example_file(sample_rate: u32, channels: u16, capacity_frames: u32) -> Vec<u8> {
    let len = ring_end(u64::from(capacity_frames), u64::from(channels)).unwrap_or(0);
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0).max(HEADER_BYTES)];
    let words = [
        (word::MAGIC, MAGIC),
        (word::VERSION, VERSION),
        (word::SAMPLE_RATE, u64::from(sample_rate)),
        (word::CHANNELS, u64::from(channels)),
        (word::CAPACITY, u64::from(capacity_frames)),
        (word::CONTROL_SLOTS, CONTROL_SLOTS),
        (word::RING_OFFSET, RING_OFFSET as u64),
        (word::WRITER_PID, 1),
    ];
    for (i, v) in words {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(bytes: &mut [u8], i: usize, v: u64) {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn a_valid_file_parses() {
        let mut bytes = example_file(48_000, 2, 4096);
        set(&mut bytes, word::FLAGS, FLAG_REMOTE_CONTROL);
        let [a, b] = encode_compose(&ComposeParams::default());
        set(&mut bytes, word::COMPOSE_A, a);
        set(&mut bytes, word::COMPOSE_B, b);
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.sample_rate, 48_000);
        assert_eq!(h.channels, 2);
        assert_eq!(h.capacity_frames, 4096);
        assert!(h.remote_control && !h.closed);
        assert_eq!(h.compose, Some(ComposeParams::default()));
        assert_eq!(h.file_len(), bytes.len() as u64);
    }

    #[test]
    fn every_bad_field_is_named() {
        let good = example_file(48_000, 2, 4096);
        let cases: [(usize, u64, &str); 10] = [
            (word::MAGIC, 7, "magic"),
            (word::VERSION, 2, "version"),
            (word::SAMPLE_RATE, 4_000, "sample_rate"),
            (word::CHANNELS, 0, "channels"),
            (word::CAPACITY, 1 << 40, "capacity_frames"),
            (word::CONTROL_SLOTS, 3, "control_slots"),
            (word::RING_OFFSET, 0, "ring_offset"),
            (word::LEVEL, 9, "level"),
            (word::RUN_MODE, 4, "run_mode"),
            (word::FLAGS, 8, "flags"),
        ];
        for (i, v, name) in cases {
            let mut bytes = good.clone();
            set(&mut bytes, i, v);
            let e = parse_header(&bytes).unwrap_err().to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
        let e = parse_header(&good[..good.len() - 1]).unwrap_err();
        assert!(matches!(e, HeaderError::Truncated { .. }), "{e}");
        assert!(matches!(
            parse_header(&good[..100]),
            Err(HeaderError::TooShort { len: 100 })
        ));
        let mut bytes = good;
        set(&mut bytes, word::COMPOSE_A, COMPOSE_VALID | 2);
        set(&mut bytes, word::COMPOSE_B, u64::from(f32::NAN.to_bits()));
        assert!(matches!(parse_header(&bytes), Err(HeaderError::Compose(_))));
    }

    #[test]
    fn names_are_checked() {
        for ok in ["1", "16", "studio-a", "Mix_2"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "a/b", "..", "a b", "ü", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(stream_path("3").to_str(), Some("/dev/shm/auralis-3"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
            let _ = parse_header(&bytes);
        }

        #[test]
        fn parsing_a_mutated_header_never_panics(
            i in 0usize..word::COUNT,
            v in any::<u64>(),
            len in 0usize..20_000,
        ) {
            let mut bytes = example_file(8_000, 2, 1024);
            set(&mut bytes, i, v);
            bytes.truncate(len);
            if let Ok(h) = parse_header(&bytes) {
                prop_assert!(h.file_len() <= bytes.len() as u64);
            }
        }
    }
}
