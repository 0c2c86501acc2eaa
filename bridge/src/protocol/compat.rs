//! The compatibility dialect of the original Python server (`?format=json`): its
//! control messages in, and its `welcome`, `audio_chunk`, `ping` and `pong` out.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::client::{
    clip, lookup_preset, only_fields, optional_number, param_update, required_str,
};
use super::{to_s16, ClientMessage, ErrorCode, FrameHeader, ProtocolError, StreamFormat};

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

/// The compatibility mode's heartbeat `ping`, carrying the server time.
#[must_use]
pub fn compat_ping(server_time_s: f64) -> String {
    json!({"type": "ping", "timestamp": server_time_s}).to_string()
}

/// The compatibility mode's answer to `ping`.
#[must_use]
pub fn compat_pong(server_time_s: f64) -> String {
    json!({"type": "pong", "timestamp": server_time_s}).to_string()
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
}
