//! Client → server: the JSON messages a client may send, parsed and validated as a
//! whole (one bad field rejects the message), and the error that names what is wrong.

use std::fmt;

use auralis::compose::code::{CodeError, PieceCode};
use auralis::compose::phrase::BPM_RANGE;
use auralis::compose::presets::{preset, preset_names, Preset};
use auralis::compose::theory::{Key, Mode, TheoryParseError};
pub use auralis::compose::ParamUpdate;
use serde::Serialize;
use serde_json::{Map, Value};

use super::compat;

/// The largest client message accepted, in bytes; larger ones get a `too_large` error.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// The most characters of a client's input an error message repeats; longer
/// input is cut there and marked with `…`.
pub const ECHO_MAX_CHARS: usize = 32;

/// `text` as an error message repeats it: at most [`ECHO_MAX_CHARS`], then `…`.
#[must_use]
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// A number as an error message writes it: as Rust's shortest form when that is
/// short (`72`, `0.25`), else in scientific notation (`1e308`, not 309 digits).
#[must_use]
pub fn compact(v: f64) -> String {
    let plain = v.to_string();
    if plain.len() <= 16 {
        plain
    } else {
        format!("{v:e}")
    }
}

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The native protocol: binary audio frames and the DESIGN.md §8 messages.
    #[default]
    Native,
    /// The original Python server's JSON protocol (`?format=json`).
    Compat,
}

impl Dialect {
    /// The dialect a `format` name asks for: `binary` (native) or `json`
    /// (the original's), as `?format=` and `--default-format` take them.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "binary" => Some(Self::Native),
            "json" => Some(Self::Compat),
            _ => None,
        }
    }

    /// Its `format` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Native => "binary",
            Self::Compat => "json",
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
    /// Play the piece a piece code names (from the next phrase).
    SelectPiece(PieceCode),
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
        matches!(
            self,
            Self::UpdateParams(_) | Self::SelectPreset(_) | Self::SelectPiece(_)
        )
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
        ("select_piece", _) => {
            only_fields(&obj, &["type", "code"])?;
            let code = required_str(&obj, "code")?;
            code.parse()
                .map(ClientMessage::SelectPiece)
                .map_err(|e: CodeError| {
                    ProtocolError::field(ErrorCode::OutOfRange, "code", e.to_string())
                })
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
                "unknown message type {:?}: expected {}",
                clip(kind),
                match dialect {
                    Dialect::Native =>
                        "update_params, select_preset, select_piece, pong or client_stats",
                    Dialect::Compat =>
                        "control, parameter_change, ping, update_params, select_preset, \
                         select_piece or pong",
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
                format!(
                    "field `buffered_ms` must be between 0 and 3600000, got {}",
                    compact(ms)
                ),
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
        Some(k) => {
            let shown = clip(k);
            Err(ProtocolError::field(
                ErrorCode::UnknownField,
                &shown,
                format!(
                    "unknown field {shown:?}: expected one of {}",
                    allowed.join(", ")
                ),
            ))
        }
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
            format!(
                "field `{field}` must be between {min} and {max}, got {}",
                compact(v)
            ),
        )),
    }
}

pub(super) fn param_update(obj: &Map<String, Value>) -> Result<ParamUpdate, ProtocolError> {
    let key = key_field(obj)?;
    let mode = optional_str(obj, "mode")?
        .map(|s| {
            s.parse::<Mode>()
                .map_err(|_| theory_error("mode", &TheoryParseError::Mode(clip(s))))
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

/// `key`: a note name (`"F#"`, or a number as text, `"66"`) or a MIDI note number
/// 0–127, whose pitch class it takes (the original client sends 60–71), as the
/// error text says.
fn key_field(obj: &Map<String, Value>) -> Result<Option<Key>, ProtocolError> {
    let out_of_range = |shown: String| theory_error("key", &TheoryParseError::Key(shown));
    match obj.get("key") {
        None => Ok(None),
        Some(Value::String(s)) => s
            .parse::<Key>()
            .map(Some)
            .map_err(|_| out_of_range(clip(s))),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(Key::from_midi)
            .map(Some)
            .ok_or_else(|| out_of_range(n.as_f64().map_or_else(|| n.to_string(), compact))),
        Some(_) => Err(ProtocolError::field(
            ErrorCode::WrongType,
            "key",
            "field `key` must be a note name (a string) or a number 0-127",
        )),
    }
}

fn theory_error(field: &str, e: &TheoryParseError) -> ProtocolError {
    ProtocolError::field(
        ErrorCode::OutOfRange,
        field,
        format!("field `{field}`: {e}"),
    )
}

pub(super) fn lookup_preset(name: &str, field: &str) -> Result<&'static Preset, ProtocolError> {
    preset(name).map_err(|_| {
        ProtocolError::field(
            ErrorCode::UnknownPreset,
            field,
            format!(
                "field `{field}`: unknown preset {:?}, expected one of {}",
                clip(name),
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

    fn accepted(message: &Value) -> bool {
        parse_client_text(&message.to_string(), Dialect::Native).is_ok()
    }

    fn update(field: &str, v: impl Into<Value>) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "update_params".into());
        m.insert(field.into(), v.into());
        Value::Object(m)
    }

    /// The list after `marker` in `message`, up to its end or the next `stop`.
    fn listed<'a>(message: &'a str, marker: &str) -> Vec<&'a str> {
        let (_, rest) = message.split_once(marker).expect(message);
        rest.split([',', ' '])
            .filter(|w| !w.is_empty() && *w != "or")
            .collect()
    }

    /// The range `A and B` after "between" in `message`.
    fn stated_range(message: &str) -> (f64, f64) {
        let (_, rest) = message.split_once("between ").expect(message);
        let (lo, rest) = rest.split_once(" and ").expect(message);
        let hi = rest.split(',').next().expect(message);
        (lo.parse().expect(message), hi.parse().expect(message))
    }

    /// Every error message states what the field accepts: that is accepted, and
    /// values just outside it are refused.
    #[test]
    fn every_error_message_claims_only_what_is_accepted() {
        let ranged_fields = [
            ("bpm", update("bpm", 1e308)),
            ("intensity", update("intensity", -2.5)),
            (
                "buffered_ms",
                serde_json::json!({"type": "client_stats", "buffered_ms": -1}),
            ),
        ];
        for (field, bad) in ranged_fields {
            let message = err(&bad.to_string()).message;
            let (lo, hi) = stated_range(&message);
            let with = |v: f64| {
                let mut m = bad.clone();
                m[field] = v.into();
                m
            };
            for inside in [lo, hi, (lo + hi) / 2.0] {
                assert!(accepted(&with(inside)), "{message}: {inside}");
            }
            for outside in [lo - 1e-3, hi + 1e-3] {
                assert!(!accepted(&with(outside)), "{message}: {outside}");
            }
        }
        // "a note name such as C, F#, Bb, or a number 0-127 (a MIDI note: …)"
        let message = err(r#"{"type":"update_params","key":"H"}"#).message;
        let (names, numbers) = message
            .split_once("such as ")
            .and_then(|(_, rest)| rest.split_once(", or a number "))
            .expect(&message);
        for name in names.split(", ") {
            assert!(accepted(&update("key", name)), "{message}: {name}");
        }
        let numbers = numbers.split_whitespace().next().expect(&message);
        let (lo, hi) = numbers.split_once('-').expect(&message);
        let (lo, hi): (i64, i64) = (lo.parse().expect(lo), hi.parse().expect(hi));
        for n in lo..=hi {
            assert!(accepted(&update("key", n)), "{message}: {n}");
            assert!(accepted(&update("key", n.to_string())), "{message}: {n:?}");
        }
        for n in [lo - 1, hi + 1] {
            assert!(!accepted(&update("key", n)), "{message}: {n}");
        }
        assert!(!accepted(&update("key", 1.5)), "not a pitch class");
        let message = err(r#"{"type":"update_params","mode":"blues"}"#).message;
        for mode in listed(&message, "one of ") {
            assert!(accepted(&update("mode", mode)), "{message}: {mode}");
        }
        let message = err(r#"{"type":"select_preset","preset":"jazz"}"#).message;
        for name in listed(&message, "one of ") {
            let m = serde_json::json!({"type": "select_preset", "preset": name});
            assert!(accepted(&m), "{message}: {name}");
        }
        let message = err(r#"{"type":"update_params","volume":1}"#).message;
        let valid: [(&str, Value); 4] = [
            ("key", "C".into()),
            ("mode", "dorian".into()),
            ("bpm", 70.into()),
            ("intensity", 0.5.into()),
        ];
        for field in listed(&message, "one of ")
            .into_iter()
            .filter(|f| *f != "type")
        {
            let (_, v) = valid.iter().find(|(f, _)| *f == field).expect(field);
            assert!(accepted(&update(field, v.clone())), "{message}: {field}");
        }
    }

    #[test]
    fn error_text_is_short_whatever_the_input() {
        let message = err(r#"{"type":"update_params","bpm":1e308}"#).message;
        assert!(message.ends_with("got 1e308"), "{message}");
        assert_eq!(compact(72.0), "72");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(-1e300), "-1e300");
        let long = "z".repeat(10_000);
        for text in [
            serde_json::json!({"type": "update_params", "key": long}),
            serde_json::json!({"type": "update_params", "mode": long}),
            serde_json::json!({"type": "select_preset", "preset": long}),
            serde_json::json!({"type": long}),
            serde_json::json!({"type": "pong", long.as_str(): 1}),
        ] {
            let e = err(&text.to_string());
            assert!(e.message.len() < 400, "{}", &e.message[..200]);
            assert!(
                e.message
                    .contains(&format!("{}…", "z".repeat(ECHO_MAX_CHARS))),
                "{}",
                e.message
            );
            assert!(e.field.unwrap_or_default().len() <= ECHO_MAX_CHARS + 3);
        }
        assert_eq!(clip("ünïcödé"), "ünïcödé");
        assert_eq!(
            clip(&"é".repeat(40)),
            format!("{}…", "é".repeat(ECHO_MAX_CHARS))
        );
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
        let piece = parse_client_text(
            r#"{"type":"select_piece","code":"au1-7-sleep-fs-lydian-54.5-30"}"#,
            Dialect::Native,
        );
        let Ok(ClientMessage::SelectPiece(code)) = piece else {
            panic!("{piece:?}")
        };
        assert_eq!((code.seed, code.preset.name), (7, "sleep"));
        assert_eq!((code.compose.key, code.compose.bpm), (Key::new(6), 54.5));
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
            (r#"{"type":"update_params","key":true}"#, WrongType, "key"),
            (r#"{"type":"update_params","key":128}"#, OutOfRange, "key"),
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
            (r#"{"type":"select_piece"}"#, MissingField, "code"),
            (r#"{"type":"select_piece","code":7}"#, WrongType, "code"),
            (
                r#"{"type":"select_piece","code":"au1-7-jazz-d-dorian-60-50"}"#,
                OutOfRange,
                "code",
            ),
            (
                r#"{"type":"select_piece","code":"au1-7-focus-d-dorian-999-50"}"#,
                OutOfRange,
                "code",
            ),
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
