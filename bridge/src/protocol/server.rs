//! Server → client: the JSON messages of the native protocol.

use auralis::compose::phrase::ComposeParams;
use auralis::render::mix::MixLevels;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Codec, ProtocolError};

/// The protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

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

/// `info` as a `status` object.
fn status_object(info: &StatusInfo) -> Map<String, Value> {
    let mut m = match json!(info) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("type".into(), Value::from("status"));
    m
}

/// The periodic `status` message.
#[must_use]
pub fn status_message(info: &StatusInfo) -> String {
    Value::Object(status_object(info)).to_string()
}

/// The `status` message sent to every client at once when the source turns idle
/// or live again, with the reason it gives (`null` when it gives none).
#[must_use]
pub fn source_status_message(info: &StatusInfo, reason: Option<&str>) -> String {
    let mut m = status_object(info);
    m.insert("reason".into(), reason.map_or(Value::Null, Value::from));
    Value::Object(m).to_string()
}
