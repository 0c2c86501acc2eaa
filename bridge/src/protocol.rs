//! The wire protocol of `/ws/stream` (DESIGN.md §8), as pure functions: the 44-byte
//! audio frame header, payload encoding, the JSON control messages a client may send
//! (validated as a whole: one bad field rejects the message), the JSON messages the
//! server sends, and the compatibility dialect of the original Python server.
//!
//! Nothing here touches a socket, so every parser is property-tested against
//! arbitrary input.

use std::fmt;

use auralis::compose::phrase::{ComposeParams, BPM_RANGE};
use auralis::compose::presets::{preset, preset_names, Preset};
use auralis::compose::theory::{Key, Mode};
use auralis::render::mix::MixLevels;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// First four bytes of every audio frame.
pub const MAGIC: [u8; 4] = *b"AUR1";
/// The header version this server writes.
pub const HEADER_VERSION: u8 = 1;
/// Length of the audio frame header in bytes.
pub const HEADER_LEN: usize = 44;
/// The protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest client message accepted, in bytes; larger ones get a `too_large` error.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;
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
}

impl Codec {
    /// The number written in the header.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::S16 => 0,
            Self::F32 => 1,
        }
    }

    /// The codec with header number `id`.
    #[must_use]
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::S16),
            1 => Some(Self::F32),
            _ => None,
        }
    }

    /// The codec named `s16` or `f32` (as in `?codec=`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "s16" | "s16le" => Some(Self::S16),
            "f32" | "f32le" => Some(Self::F32),
            _ => None,
        }
    }

    /// The name used in `?codec=` and in `hello`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::S16 => "s16",
            Self::F32 => "f32",
        }
    }

    /// Bytes per sample.
    #[must_use]
    pub const fn sample_bytes(self) -> usize {
        match self {
            Self::S16 => 2,
            Self::F32 => 4,
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
}

impl FrameHeader {
    /// Payload bytes this header announces.
    #[must_use]
    pub fn payload_len(&self) -> u64 {
        u64::from(self.frames) * u64::from(self.channels) * self.codec.sample_bytes() as u64
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
        if header.payload_len() != payload.len() as u64 {
            return Err(HeaderError::PayloadLength {
                expected: header.payload_len(),
                got: payload.len(),
            });
        }
        Ok((header, payload))
    }
}

/// Converts a sample in [-1, 1] to s16 (clamped; NaN gives 0).
#[must_use]
pub fn to_s16(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Encodes a whole binary frame: `header` (its `codec` decides the payload) then the
/// interleaved samples.
#[must_use]
pub fn encode_frame(header: &FrameHeader, interleaved: &[f32]) -> Bytes {
    let mut out =
        BytesMut::with_capacity(HEADER_LEN + interleaved.len() * header.codec.sample_bytes());
    header.write_to(&mut out);
    match header.codec {
        Codec::S16 => interleaved.iter().for_each(|&x| out.put_i16_le(to_s16(x))),
        Codec::F32 => interleaved.iter().for_each(|&x| out.put_f32_le(x)),
    }
    out.freeze()
}

/// Decodes the payload of a parsed frame back to interleaved floats (s16 scaled by
/// 1/32768). The length was checked by [`FrameHeader::parse`].
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
    }
}

/// Interleaved samples as s16le bytes (the compatibility mode's payload).
#[must_use]
pub fn s16le_bytes(interleaved: &[f32]) -> Vec<u8> {
    interleaved
        .iter()
        .flat_map(|&x| to_s16(x).to_le_bytes())
        .collect()
}

// ---------------------------------------------------------------------------------
// Client → server

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The native protocol: binary audio frames and the DESIGN.md §8 messages.
    #[default]
    Native,
    /// The original Python server's JSON protocol (`?format=json`).
    Compat,
}

/// A partial change of the musical parameters; `None` keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ParamUpdate {
    /// New tonic.
    pub key: Option<Key>,
    /// New mode.
    pub mode: Option<Mode>,
    /// New tempo, within [`BPM_RANGE`].
    pub bpm: Option<f32>,
    /// New intensity, 0 to 1.
    pub intensity: Option<f32>,
}

impl ParamUpdate {
    /// Whether no field is set.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.key.is_none() && self.mode.is_none() && self.bpm.is_none() && self.intensity.is_none()
    }

    /// `base` with this update applied.
    #[must_use]
    pub fn apply_to(&self, base: ComposeParams) -> ComposeParams {
        ComposeParams {
            key: self.key.unwrap_or(base.key),
            mode: self.mode.unwrap_or(base.mode),
            bpm: self.bpm.unwrap_or(base.bpm),
            intensity: self.intensity.unwrap_or(base.intensity),
            ..base
        }
    }
}

/// A validated message from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Change some musical parameters (from the next phrase).
    UpdateParams(ParamUpdate),
    /// Switch to a named preset (from the next phrase).
    SelectPreset(&'static Preset),
    /// Answer to a server `ping`.
    Pong,
    /// The client's playback health.
    ClientStats {
        /// Buffer underruns since connecting.
        underruns: Option<u64>,
        /// Audio buffered in the client, in milliseconds.
        buffered_ms: Option<f64>,
    },
    /// A compatibility-mode `ping`, answered with `pong`.
    Ping,
}

impl ClientMessage {
    /// Whether this message asks to change what is played (needs the controller role).
    #[must_use]
    pub const fn is_control(&self) -> bool {
        matches!(self, Self::UpdateParams(_) | Self::SelectPreset(_))
    }
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Message over [`MAX_CLIENT_MESSAGE_BYTES`].
    TooLarge,
    /// A binary message that is not UTF-8 text.
    InvalidUtf8,
    /// Not JSON.
    InvalidJson,
    /// JSON but not an object, or no string `type`.
    InvalidMessage,
    /// A `type` the server does not know.
    UnknownType,
    /// A field the message type does not have.
    UnknownField,
    /// A field of the wrong JSON type.
    WrongType,
    /// A value outside its range or not one of the accepted names.
    OutOfRange,
    /// A required field is missing, or an update changes nothing.
    MissingField,
    /// A preset name that does not exist.
    UnknownPreset,
    /// The connection may not control the stream.
    Forbidden,
    /// Too many control messages.
    RateLimited,
    /// The source did not take the change (busy, stopped, or not remotely controllable).
    Unavailable,
}

impl ErrorCode {
    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::UnknownField => "unknown_field",
            Self::WrongType => "wrong_type",
            Self::OutOfRange => "out_of_range",
            Self::MissingField => "missing_field",
            Self::UnknownPreset => "unknown_preset",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A rejected client message: what is wrong and with which field. Nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProtocolError {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Human-readable explanation (names the field too).
    pub message: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl ProtocolError {
    /// An error about no particular field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// An error about `field`.
    pub fn field(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

/// Parses a client message received as raw bytes (a binary frame or an HTTP body).
///
/// # Errors
/// [`ProtocolError`] for an oversized message, invalid UTF-8, or anything
/// [`parse_client_text`] rejects.
pub fn parse_client_bytes(bytes: &[u8], dialect: Dialect) -> Result<ClientMessage, ProtocolError> {
    check_size(bytes.len())?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ProtocolError::new(
            ErrorCode::InvalidUtf8,
            format!(
                "message is not valid UTF-8 (first bad byte at {})",
                e.valid_up_to()
            ),
        )
    })?;
    parse_client_text(text, dialect)
}

fn check_size(len: usize) -> Result<(), ProtocolError> {
    if len > MAX_CLIENT_MESSAGE_BYTES {
        Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!("message is {len} bytes, the limit is {MAX_CLIENT_MESSAGE_BYTES}"),
        ))
    } else {
        Ok(())
    }
}

/// Parses and validates a client's JSON text message as a whole.
///
/// # Errors
/// [`ProtocolError`] naming the first problem: size, JSON syntax, `type`, an unknown
/// field, a field of the wrong type or out of range, an unknown preset.
pub fn parse_client_text(text: &str, dialect: Dialect) -> Result<ClientMessage, ProtocolError> {
    check_size(text.len())?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(ErrorCode::InvalidJson, format!("message is not JSON: {e}"))
    })?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            "message must be a JSON object with a string `type`",
        ));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ProtocolError::field(
                ErrorCode::WrongType,
                "type",
                "field `type` must be a string",
            ))
        }
        None => {
            return Err(ProtocolError::field(
                ErrorCode::MissingField,
                "type",
                "field `type` is missing",
            ))
        }
    };
    match (kind, dialect) {
        ("update_params", _) => {
            only_fields(&obj, &["type", "key", "mode", "bpm", "intensity"])?;
            let update = param_update(&obj)?;
            if update.is_empty() {
                return Err(ProtocolError::field(
                    ErrorCode::MissingField,
                    "key",
                    "update_params needs at least one of `key`, `mode`, `bpm`, `intensity`",
                ));
            }
            Ok(ClientMessage::UpdateParams(update))
        }
        ("select_preset", _) => {
            only_fields(&obj, &["type", "preset"])?;
            let name = required_str(&obj, "preset")?;
            Ok(ClientMessage::SelectPreset(lookup_preset(name, "preset")?))
        }
        ("pong", _) => {
            only_fields(&obj, &["type", "t", "timestamp"])?;
            optional_number(&obj, "t")?;
            optional_number(&obj, "timestamp")?;
            Ok(ClientMessage::Pong)
        }
        ("client_stats", _) => {
            only_fields(&obj, &["type", "underruns", "buffered_ms"])?;
            let underruns = match obj.get("underruns") {
                None => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    ProtocolError::field(
                        ErrorCode::WrongType,
                        "underruns",
                        "field `underruns` must be a non-negative integer",
                    )
                })?),
            };
            let buffered_ms = optional_number(&obj, "buffered_ms")?;
            if let Some(ms) = buffered_ms {
                if !(0.0..=3_600_000.0).contains(&ms) {
                    return Err(ProtocolError::field(
                        ErrorCode::OutOfRange,
                        "buffered_ms",
                        format!("field `buffered_ms` must be between 0 and 3600000, got {ms}"),
                    ));
                }
            }
            Ok(ClientMessage::ClientStats {
                underruns,
                buffered_ms,
            })
        }
        ("ping", Dialect::Compat) => {
            only_fields(&obj, &["type", "timestamp", "t"])?;
            Ok(ClientMessage::Ping)
        }
        ("control" | "parameter_change", Dialect::Compat) => compat_control(&obj),
        _ => Err(ProtocolError::field(
            ErrorCode::UnknownType,
            "type",
            format!(
                "unknown message type {kind:?}: expected {}",
                match dialect {
                    Dialect::Native => "update_params, select_preset, pong or client_stats",
                    Dialect::Compat =>
                        "control, parameter_change, ping, update_params, select_preset or pong",
                }
            ),
        )),
    }
}

/// The original server's control messages: the fields flat (`{"type":"control",
/// "bpm":70}`), nested in `params`/`parameters`, or one `parameter` + `value` pair;
/// `preset` selects a preset.
fn compat_control(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    only_fields(
        obj,
        &[
            "type",
            "key",
            "mode",
            "bpm",
            "intensity",
            "preset",
            "params",
            "parameters",
            "parameter",
            "value",
            "timestamp",
        ],
    )?;
    optional_number(obj, "timestamp")?;
    let mut fields = Map::new();
    for (k, v) in obj {
        if matches!(k.as_str(), "key" | "mode" | "bpm" | "intensity" | "preset") {
            fields.insert(k.clone(), v.clone());
        }
    }
    for nest in ["params", "parameters"] {
        match obj.get(nest) {
            None => {}
            Some(Value::Object(inner)) => {
                only_fields(inner, &["key", "mode", "bpm", "intensity", "preset"])?;
                fields.extend(inner.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Some(_) => {
                return Err(ProtocolError::field(
                    ErrorCode::WrongType,
                    nest,
                    format!("field `{nest}` must be an object"),
                ))
            }
        }
    }
    match (obj.get("parameter"), obj.get("value")) {
        (None, None) => {}
        (Some(Value::String(name)), Some(value)) => {
            if !matches!(
                name.as_str(),
                "key" | "mode" | "bpm" | "intensity" | "preset"
            ) {
                return Err(ProtocolError::field(
                    ErrorCode::OutOfRange,
                    "parameter",
                    format!(
                        "unknown parameter {name:?}: expected key, mode, bpm, intensity or preset"
                    ),
                ));
            }
            fields.insert(name.clone(), value.clone());
        }
        (Some(Value::String(_)), None) => {
            return Err(ProtocolError::field(
                ErrorCode::MissingField,
                "value",
                "field `parameter` needs a `value`",
            ))
        }
        (Some(_), _) => {
            return Err(ProtocolError::field(
                ErrorCode::WrongType,
                "parameter",
                "field `parameter` must be a string",
            ))
        }
        (None, Some(_)) => {
            return Err(ProtocolError::field(
                ErrorCode::MissingField,
                "parameter",
                "field `value` needs a `parameter`",
            ))
        }
    }
    let update = param_update(&fields)?;
    match fields.get("preset") {
        Some(_) if !update.is_empty() => Err(ProtocolError::field(
            ErrorCode::InvalidMessage,
            "preset",
            "`preset` cannot be combined with other parameters",
        )),
        Some(_) => Ok(ClientMessage::SelectPreset(lookup_preset(
            required_str(&fields, "preset")?,
            "preset",
        )?)),
        None if update.is_empty() => Err(ProtocolError::field(
            ErrorCode::MissingField,
            "params",
            "no parameter to change: give key, mode, bpm, intensity or preset",
        )),
        None => Ok(ClientMessage::UpdateParams(update)),
    }
}

fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ProtocolError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ProtocolError::field(
            ErrorCode::UnknownField,
            k,
            format!(
                "unknown field {k:?}: expected one of {}",
                allowed.join(", ")
            ),
        )),
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, ProtocolError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ProtocolError::field(
            ErrorCode::WrongType,
            field,
            format!("field `{field}` must be a string"),
        )),
        None => Err(ProtocolError::field(
            ErrorCode::MissingField,
            field,
            format!("field `{field}` is missing"),
        )),
    }
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    obj.get(field).map(|_| required_str(obj, field)).transpose()
}

fn optional_number(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, ProtocolError> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            ProtocolError::field(
                ErrorCode::WrongType,
                field,
                format!("field `{field}` must be a number"),
            )
        }),
    }
}

fn ranged(
    obj: &Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<Option<f32>, ProtocolError> {
    match optional_number(obj, field)? {
        None => Ok(None),
        Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Some(v as f32)),
        Some(v) => Err(ProtocolError::field(
            ErrorCode::OutOfRange,
            field,
            format!("field `{field}` must be between {min} and {max}, got {v}"),
        )),
    }
}

fn param_update(obj: &Map<String, Value>) -> Result<ParamUpdate, ProtocolError> {
    let key = optional_str(obj, "key")?
        .map(|s| {
            s.parse::<Key>().map_err(|e| {
                ProtocolError::field(ErrorCode::OutOfRange, "key", format!("field `key`: {e}"))
            })
        })
        .transpose()?;
    let mode = optional_str(obj, "mode")?
        .map(|s| {
            s.parse::<Mode>().map_err(|e| {
                ProtocolError::field(ErrorCode::OutOfRange, "mode", format!("field `mode`: {e}"))
            })
        })
        .transpose()?;
    let bpm = ranged(obj, "bpm", f64::from(BPM_RANGE.0), f64::from(BPM_RANGE.1))?;
    let intensity = ranged(obj, "intensity", 0.0, 1.0)?;
    Ok(ParamUpdate {
        key,
        mode,
        bpm,
        intensity,
    })
}

fn lookup_preset(name: &str, field: &str) -> Result<&'static Preset, ProtocolError> {
    preset(name).map_err(|_| {
        ProtocolError::field(
            ErrorCode::UnknownPreset,
            field,
            format!(
                "field `{field}`: unknown preset {name:?}, expected one of {}",
                preset_names()
            ),
        )
    })
}

// ---------------------------------------------------------------------------------
// Server → client

/// An `f32` as the `f64` with the same shortest decimal form, so 0.9 is sent as 0.9
/// and not as 0.8999999761581421.
#[must_use]
pub fn json_f32(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The musical parameters as sent in `hello` and `params`.
#[must_use]
pub fn params_json(compose: &ComposeParams, levels: &MixLevels, preset: Option<&str>) -> Value {
    json!({
        "key": compose.key.to_string(),
        "mode": compose.mode.name(),
        "bpm": json_f32(compose.bpm),
        "intensity": json_f32(compose.intensity),
        "bars": compose.bars,
        "beats_per_bar": compose.beats_per_bar,
        "preset": preset,
        "levels": {
            "pad": json_f32(levels.pad),
            "melody": json_f32(levels.melody),
            "percussion": json_f32(levels.percussion),
            "reverb": json_f32(levels.reverb),
            "delay": json_f32(levels.delay),
            "master_gain_db": json_f32(levels.master_gain_db),
        },
    })
}

/// The stream format announced in `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamFormat {
    /// Payload encoding chosen with `?codec=`.
    pub codec: Codec,
    /// Sample rate in hertz.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Frames per chunk.
    pub frames_per_chunk: u32,
    /// Chunk duration in milliseconds.
    pub chunk_ms: f64,
    /// Header length in bytes.
    pub header_bytes: usize,
}

/// The `hello` message sent first on every native connection.
#[must_use]
pub fn hello_message(
    client_id: u64,
    stream: &str,
    format: &StreamFormat,
    params: &Value,
    role: &str,
) -> String {
    json!({
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "client_id": client_id,
        "stream": stream,
        "format": format,
        "params": params,
        "role": role,
    })
    .to_string()
}

/// The `params` message broadcast after a change; it takes effect at `applies_at`.
#[must_use]
pub fn params_message(params: &Value, applies_at: &str) -> String {
    json!({"type": "params", "params": params, "applies_at": applies_at}).to_string()
}

/// The `error` message for a rejected client message.
#[must_use]
pub fn error_message(err: &ProtocolError, recoverable: bool) -> String {
    json!({
        "type": "error",
        "code": err.code,
        "field": err.field,
        "message": err.message,
        "recoverable": recoverable,
    })
    .to_string()
}

/// The heartbeat `ping`, carrying the server time (seconds since the Unix epoch).
#[must_use]
pub fn ping_message(server_time_s: f64) -> String {
    json!({"type": "ping", "t": server_time_s}).to_string()
}

/// What a periodic `status` message reports.
#[derive(Debug, Clone, Serialize)]
pub struct StatusInfo {
    /// `streaming` or `idle`.
    pub state: &'static str,
    /// Degradation level name.
    pub level: &'static str,
    /// Chunks waiting in this client's queue.
    pub buffer_depth: usize,
    /// Chunks this client lost because it fell behind.
    pub dropped: u64,
    /// Listeners connected.
    pub clients: usize,
    /// Newest chunk sequence number.
    pub seq: u64,
    /// Phrase playing, if known.
    pub phrase_index: Option<u64>,
}

/// The periodic `status` message.
#[must_use]
pub fn status_message(info: &StatusInfo) -> String {
    let mut v = json!(info);
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), Value::from("status"));
    }
    v.to_string()
}

/// The compatibility mode's `welcome`, sent on connect.
#[must_use]
pub fn compat_welcome(client_id: u64, format: &StreamFormat, params: &Value) -> String {
    json!({
        "type": "welcome",
        "message": "Connected to Auralis",
        "client_id": client_id,
        "sample_rate": format.sample_rate,
        "channels": format.channels,
        "chunk_ms": format.chunk_ms,
        "format": "s16le",
        "params": params,
    })
    .to_string()
}

/// The compatibility mode's `audio_chunk`: base64 of interleaved s16le PCM.
/// `num_samples` counts frames (samples per channel).
#[must_use]
pub fn compat_audio_chunk(header: &FrameHeader, interleaved: &[f32]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(s16le_bytes(interleaved));
    json!({
        "type": "audio_chunk",
        "seq": header.seq,
        "timestamp": header.server_time_s,
        "sample_rate": header.sample_rate,
        "duration_ms": f64::from(header.frames) * 1000.0 / f64::from(header.sample_rate.max(1)),
        "channels": header.channels,
        "num_samples": header.frames,
        "data": data,
    })
    .to_string()
}

/// The compatibility mode's answer to `ping`.
#[must_use]
pub fn compat_pong(server_time_s: f64) -> String {
    json!({"type": "pong", "timestamp": server_time_s}).to_string()
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

    fn err(text: &str) -> ProtocolError {
        parse_client_text(text, Dialect::Native).expect_err(text)
    }

    #[test]
    fn valid_messages_parse() {
        let m = parse_client_text(
            r#"{"type":"update_params","key":"F#","mode":"lydian","bpm":72,"intensity":0.25}"#,
            Dialect::Native,
        );
        let Ok(ClientMessage::UpdateParams(u)) = m else {
            panic!("{m:?}")
        };
        assert_eq!(u.key, Some(Key::new(6)));
        assert_eq!(u.mode, Some(Mode::Lydian));
        assert_eq!(u.bpm, Some(72.0));
        assert_eq!(u.intensity, Some(0.25));
        assert!(matches!(
            parse_client_text(r#"{"type":"select_preset","preset":"sleep"}"#, Dialect::Native),
            Ok(ClientMessage::SelectPreset(p)) if p.name == "sleep"
        ));
        assert_eq!(
            parse_client_text(r#"{"type":"pong"}"#, Dialect::Native),
            Ok(ClientMessage::Pong)
        );
        assert!(matches!(
            parse_client_text(
                r#"{"type":"client_stats","underruns":3,"buffered_ms":420.5}"#,
                Dialect::Native
            ),
            Ok(ClientMessage::ClientStats {
                underruns: Some(3),
                ..
            })
        ));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (
                r#"{"type":"update_params","bpm":900}"#,
                ErrorCode::OutOfRange,
                "bpm",
            ),
            (
                r#"{"type":"update_params","bpm":"fast"}"#,
                ErrorCode::WrongType,
                "bpm",
            ),
            (
                r#"{"type":"update_params","intensity":-0.1}"#,
                ErrorCode::OutOfRange,
                "intensity",
            ),
            (
                r#"{"type":"update_params","key":"H"}"#,
                ErrorCode::OutOfRange,
                "key",
            ),
            (
                r#"{"type":"update_params","key":3}"#,
                ErrorCode::WrongType,
                "key",
            ),
            (
                r#"{"type":"update_params","mode":"blues"}"#,
                ErrorCode::OutOfRange,
                "mode",
            ),
            (
                r#"{"type":"update_params","bpm":70,"volume":1}"#,
                ErrorCode::UnknownField,
                "volume",
            ),
            (
                r#"{"type":"update_params"}"#,
                ErrorCode::MissingField,
                "key",
            ),
            (
                r#"{"type":"select_preset","preset":"jazz"}"#,
                ErrorCode::UnknownPreset,
                "preset",
            ),
            (
                r#"{"type":"select_preset"}"#,
                ErrorCode::MissingField,
                "preset",
            ),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType, "type"),
            (r#"{"type":7}"#, ErrorCode::WrongType, "type"),
            (r#"{"bpm":70}"#, ErrorCode::MissingField, "type"),
            (r#"{"type":"ping"}"#, ErrorCode::UnknownType, "type"),
        ];
        for (text, code, field) in cases {
            let e = err(text);
            assert_eq!(e.code, code, "{text}");
            assert_eq!(e.field.as_deref(), Some(field), "{text}");
            assert!(e.message.contains(field), "{text}: {}", e.message);
        }
        assert_eq!(err("{not json").code, ErrorCode::InvalidJson);
        assert_eq!(err("[1,2]").code, ErrorCode::InvalidMessage);
        let big = format!(
            r#"{{"type":"pong","t":1{}}}"#,
            "0".repeat(MAX_CLIENT_MESSAGE_BYTES)
        );
        assert_eq!(err(&big).code, ErrorCode::TooLarge);
        assert_eq!(
            parse_client_bytes(&[b'{', 0xFF, b'}'], Dialect::Native)
                .expect_err("bad utf8")
                .code,
            ErrorCode::InvalidUtf8
        );
    }

    #[test]
    fn compat_control_shapes() {
        let parse = |t: &str| parse_client_text(t, Dialect::Compat);
        assert!(matches!(
            parse(r#"{"type":"control","bpm":70}"#),
            Ok(ClientMessage::UpdateParams(ParamUpdate { bpm: Some(b), .. })) if (b - 70.0).abs() < 1e-6
        ));
        assert!(matches!(
            parse(r#"{"type":"parameter_change","parameter":"mode","value":"aeolian"}"#),
            Ok(ClientMessage::UpdateParams(ParamUpdate {
                mode: Some(Mode::Aeolian),
                ..
            }))
        ));
        assert!(matches!(
            parse(r#"{"type":"control","params":{"intensity":0.9}}"#),
            Ok(ClientMessage::UpdateParams(ParamUpdate {
                intensity: Some(_),
                ..
            }))
        ));
        assert!(matches!(
            parse(r#"{"type":"control","preset":"bright"}"#),
            Ok(ClientMessage::SelectPreset(p)) if p.name == "bright"
        ));
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        let e = parse(r#"{"type":"parameter_change","parameter":"bpm","value":5}"#)
            .expect_err("out of range");
        assert_eq!(e.field.as_deref(), Some("bpm"));
    }

    #[test]
    fn update_applies_only_given_fields() {
        let base = ComposeParams::default();
        let u = ParamUpdate {
            bpm: Some(90.0),
            ..ParamUpdate::default()
        };
        let new = u.apply_to(base);
        assert_eq!(new.bpm, 90.0);
        assert_eq!(new.key, base.key);
        assert_eq!(new.intensity, base.intensity);
    }

    proptest! {
        #[test]
        fn frame_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FrameHeader::parse(&bytes);
        }

        #[test]
        fn client_parsing_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_client_bytes(&bytes, Dialect::Native);
            let _ = parse_client_bytes(&bytes, Dialect::Compat);
        }

        #[test]
        fn client_parsing_never_panics_on_strings(text in ".{0,200}") {
            let _ = parse_client_text(&text, Dialect::Native);
            let _ = parse_client_text(&text, Dialect::Compat);
        }

        #[test]
        fn client_parsing_never_panics_on_json_like(
            kind in prop::sample::select(vec!["update_params", "select_preset", "pong", "client_stats", "control", "parameter_change", "ping", "x"]),
            field in prop::sample::select(vec!["key", "mode", "bpm", "intensity", "preset", "params", "parameter", "value", "underruns", "buffered_ms", "t", "zzz"]),
            value in prop::sample::select(vec!["1", "-1", "1e400", "\"C\"", "\"dorian\"", "null", "[]", "{}", "{\"bpm\":2}", "0.5", "\"focus\"", "18446744073709551616"]),
        ) {
            let text = format!(r#"{{"type":"{kind}","{field}":{value}}}"#);
            let _ = parse_client_text(&text, Dialect::Native);
            let _ = parse_client_text(&text, Dialect::Compat);
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
            prop_assert_eq!(payload.len() as u64, h.payload_len());
        }
    }
}
