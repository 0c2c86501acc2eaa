//! The compatibility dialect of the original Python server (`?format=json`): its
//! control messages in, and its `welcome`, `audio_chunk`, `ping` and `pong` out.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::client::{
    clip, lookup_preset, only_fields, optional_number, param_update, required_str,
};
use super::{to_s16, ClientMessage, ErrorCode, ProtocolError, StreamFormat};

use crate::calendar::civil_from_days;

/// Interleaved samples as s16le bytes (the compatibility mode's payload).
#[must_use]
pub fn s16le_bytes(interleaved: &[f32]) -> Vec<u8> {
    interleaved
        .iter()
        .flat_map(|&x| to_s16(x).to_le_bytes())
        .collect()
}

/// The musical fields a compatibility control message may set.
const CONTROL_FIELDS: [&str; 5] = ["key", "mode", "bpm", "intensity", "preset"];

/// The original server's `ping`.
pub(super) fn ping(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    only_fields(obj, &["type", "timestamp", "t"])?;
    Ok(ClientMessage::Ping)
}

/// The original server's control messages: the fields flat (`{"type":"control",
/// "bpm":70}`), nested in `params`/`parameters`, or one `parameter` + `value` pair;
/// `preset` selects a preset.
pub(super) fn control(obj: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
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
        if CONTROL_FIELDS.contains(&k.as_str()) {
            fields.insert(k.clone(), v.clone());
        }
    }
    for nest in ["params", "parameters"] {
        nested_fields(obj, nest, &mut fields)?;
    }
    parameter_pair(obj, &mut fields)?;
    control_message(&fields)
}

/// Adds the fields nested in the object `nest`, if there is one.
fn nested_fields(
    obj: &Map<String, Value>,
    nest: &str,
    fields: &mut Map<String, Value>,
) -> Result<(), ProtocolError> {
    match obj.get(nest) {
        None => Ok(()),
        Some(Value::Object(inner)) => {
            only_fields(inner, &CONTROL_FIELDS)?;
            fields.extend(inner.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        }
        Some(_) => Err(ProtocolError::field(
            ErrorCode::WrongType,
            nest,
            format!("field `{nest}` must be an object"),
        )),
    }
}

/// Adds the field a `parameter` + `value` pair sets, if there is one.
fn parameter_pair(
    obj: &Map<String, Value>,
    fields: &mut Map<String, Value>,
) -> Result<(), ProtocolError> {
    match (obj.get("parameter"), obj.get("value")) {
        (None, None) => Ok(()),
        (Some(Value::String(name)), Some(value)) => {
            if !CONTROL_FIELDS.contains(&name.as_str()) {
                return Err(ProtocolError::field(
                    ErrorCode::OutOfRange,
                    "parameter",
                    format!(
                        "unknown parameter {:?}: expected key, mode, bpm, intensity or preset",
                        clip(name)
                    ),
                ));
            }
            fields.insert(name.clone(), value.clone());
            Ok(())
        }
        (Some(Value::String(_)), None) => Err(ProtocolError::field(
            ErrorCode::MissingField,
            "value",
            "field `parameter` needs a `value`",
        )),
        (Some(_), _) => Err(ProtocolError::field(
            ErrorCode::WrongType,
            "parameter",
            "field `parameter` must be a string",
        )),
        (None, Some(_)) => Err(ProtocolError::field(
            ErrorCode::MissingField,
            "parameter",
            "field `value` needs a `parameter`",
        )),
    }
}

/// The update or preset selection the gathered fields ask for.
fn control_message(fields: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    let update = param_update(fields)?;
    match fields.get("preset") {
        Some(_) if !update.is_empty() => Err(ProtocolError::field(
            ErrorCode::InvalidMessage,
            "preset",
            "`preset` cannot be combined with other parameters",
        )),
        Some(_) => Ok(ClientMessage::SelectPreset(lookup_preset(
            required_str(fields, "preset")?,
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

// ---------------------------------------------------------------------------------
// Server → client

/// The compatibility mode's `welcome`, sent on connect: the original's
/// `client_id` (`"client_<n>"`) and `message`, plus the stream's format and the
/// current parameters, which the original client ignores.
#[must_use]
pub fn compat_welcome(client_id: u64, format: &StreamFormat, params: &Value) -> String {
    json!({
        "type": "welcome",
        "client_id": format!("client_{client_id}"),
        "message": "Connected to Auralis streaming server",
        "sample_rate": format.sample_rate,
        "channels": format.channels,
        "chunk_ms": format.chunk_ms,
        "format": "s16le",
        "params": params,
    })
    .to_string()
}

/// What an `audio_chunk` says besides its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompatChunk {
    /// The compatibility stream's own gap-free count.
    pub seq: u64,
    /// Server time of the chunk's first frame, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// Its rate (44,100 Hz: the original client plays every chunk at that rate).
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
}

/// The compatibility mode's `audio_chunk`, field for field the original's:
/// base64 of interleaved s16le PCM; `num_samples` counts frames (samples per
/// channel); `timestamp_iso` is the timestamp in ISO 8601 (UTC).
#[must_use]
pub fn compat_audio_chunk(chunk: &CompatChunk, interleaved: &[f32]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(s16le_bytes(interleaved));
    let frames = interleaved.len() / usize::from(chunk.channels.max(1));
    json!({
        "type": "audio_chunk",
        "seq": chunk.seq,
        "timestamp": chunk.timestamp,
        "timestamp_iso": iso_8601(chunk.timestamp),
        "sample_rate": chunk.sample_rate,
        "duration_ms": frames as f64 * 1000.0 / f64::from(chunk.sample_rate.max(1)),
        "channels": chunk.channels,
        "num_samples": frames,
        "data": data,
    })
    .to_string()
}

/// `unix_s` as Python's `datetime.isoformat()` writes it (here in UTC):
/// `2023-11-14T22:13:20.250000`, without the fraction when it is zero.
#[must_use]
pub fn iso_8601(unix_s: f64) -> String {
    let micros = (unix_s.max(0.0) * 1e6).round() as u64;
    let (secs, micro) = (micros / 1_000_000, micros % 1_000_000);
    let (days, day_s) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (day_s / 3600, day_s / 60 % 60, day_s % 60);
    let time = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if micro == 0 {
        time
    } else {
        format!("{time}.{micro:06}")
    }
}

/// The compatibility mode's answer to `ping`, as the original server gave it.
#[must_use]
pub fn compat_pong(server_time_s: f64) -> String {
    json!({"type": "pong", "timestamp": server_time_s}).to_string()
}

/// The compatibility mode's `error`: the original client reads `message`; the
/// code and field are there for anyone else.
#[must_use]
pub fn compat_error(err: &ProtocolError) -> String {
    json!({
        "type": "error",
        "message": err.message,
        "code": err.code,
        "field": err.field,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use auralis::compose::theory::Mode;

    use crate::protocol::{parse_client_text, ClientMessage, Dialect, ParamUpdate};

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
    fn timestamps_read_as_python_writes_them() {
        use super::iso_8601;
        assert_eq!(iso_8601(0.0), "1970-01-01T00:00:00");
        assert_eq!(iso_8601(1_700_000_000.25), "2023-11-14T22:13:20.250000");
        assert_eq!(iso_8601(951_782_400.5), "2000-02-29T00:00:00.500000");
        assert_eq!(iso_8601(1_798_761_599.0), "2026-12-31T23:59:59");
    }
}
