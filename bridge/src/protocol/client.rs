//! Client → server: the JSON messages a client may send, parsed and validated as a
//! whole (one bad field rejects the message), and the error that names what is wrong.

use std::fmt;

use auralis::compose::phrase::BPM_RANGE;
use auralis::compose::presets::{preset, preset_names, Preset};
use auralis::compose::theory::{Key, Mode};
pub use auralis::compose::ParamUpdate;
use serde::Serialize;
use serde_json::{Map, Value};

use super::compat;

/// The largest client message accepted, in bytes; larger ones get a `too_large` error.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The native protocol: binary audio frames and the DESIGN.md §8 messages.
    #[default]
    Native,
    /// The original Python server's JSON protocol (`?format=json`).
    Compat,
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
    match (message_type(&obj)?, dialect) {
        ("update_params", _) => update_params(&obj),
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
        ("client_stats", _) => client_stats(&obj),
        ("ping", Dialect::Compat) => compat::ping(&obj),
        ("control" | "parameter_change", Dialect::Compat) => compat::control(&obj),
        (kind, _) => Err(ProtocolError::field(
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

/// The message's string `type`.
fn message_type(obj: &Map<String, Value>) -> Result<&str, ProtocolError> {
    match obj.get("type") {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(ProtocolError::field(
            ErrorCode::WrongType,
            "type",
            "field `type` must be a string",
        )),
        None => Err(ProtocolError::field(
            ErrorCode::MissingField,
            "type",
            "field `type` is missing",
        )),
    }
}

fn update_params(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    only_fields(obj, &["type", "key", "mode", "bpm", "intensity"])?;
    let update = param_update(obj)?;
    if update.is_empty() {
        return Err(ProtocolError::field(
            ErrorCode::MissingField,
            "key",
            "update_params needs at least one of `key`, `mode`, `bpm`, `intensity`",
        ));
    }
    Ok(ClientMessage::UpdateParams(update))
}

fn client_stats(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    only_fields(obj, &["type", "underruns", "buffered_ms"])?;
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
    let buffered_ms = optional_number(obj, "buffered_ms")?;
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

pub(super) fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ProtocolError> {
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

pub(super) fn required_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, ProtocolError> {
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

pub(super) fn optional_number(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<f64>, ProtocolError> {
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

pub(super) fn param_update(obj: &Map<String, Value>) -> Result<ParamUpdate, ProtocolError> {
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

pub(super) fn lookup_preset(name: &str, field: &str) -> Result<&'static Preset, ProtocolError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use auralis::compose::phrase::ComposeParams;
    use proptest::prelude::*;

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
        use ErrorCode::{
            MissingField, OutOfRange, UnknownField, UnknownPreset, UnknownType, WrongType,
        };
        let cases = [
            (r#"{"type":"update_params","bpm":900}"#, OutOfRange, "bpm"),
            (r#"{"type":"update_params","bpm":"fast"}"#, WrongType, "bpm"),
            (
                r#"{"type":"update_params","intensity":-0.1}"#,
                OutOfRange,
                "intensity",
            ),
            (r#"{"type":"update_params","key":"H"}"#, OutOfRange, "key"),
            (r#"{"type":"update_params","key":3}"#, WrongType, "key"),
            (
                r#"{"type":"update_params","mode":"blues"}"#,
                OutOfRange,
                "mode",
            ),
            (
                r#"{"type":"update_params","bpm":70,"volume":1}"#,
                UnknownField,
                "volume",
            ),
            (r#"{"type":"update_params"}"#, MissingField, "key"),
            (
                r#"{"type":"select_preset","preset":"jazz"}"#,
                UnknownPreset,
                "preset",
            ),
            (r#"{"type":"select_preset"}"#, MissingField, "preset"),
            (r#"{"type":"dance"}"#, UnknownType, "type"),
            (r#"{"type":7}"#, WrongType, "type"),
            (r#"{"bpm":70}"#, MissingField, "type"),
            (r#"{"type":"ping"}"#, UnknownType, "type"),
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
    }
}
