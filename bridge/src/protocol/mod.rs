//! The wire protocol of `/ws/stream` (DESIGN.md §8), as pure functions, one part
//! per file:
//!
//! - [`frame`]: the 44-byte audio frame header and the payload codecs;
//! - [`client`]: the JSON control messages a client may send, validated as a whole
//!   (one bad field rejects the message), and the error naming what is wrong;
//! - [`server`]: the JSON messages the server sends;
//! - [`compat`]: the dialect of the original Python server and its client
//!   (`?format=json`, or plain `/ws/stream` with `--default-format json`).
//!
//! Nothing here touches a socket, so every parser is property-tested against
//! arbitrary input. Every item is re-exported here, so `protocol::X` names it
//! whichever file holds it.

pub mod client;
pub mod compat;
pub mod frame;
pub mod server;

pub use self::client::{
    clip, parse_client_bytes, parse_client_text, ClientMessage, Dialect, ErrorCode, ParamUpdate,
    ProtocolError, MAX_CLIENT_MESSAGE_BYTES,
};
pub use self::compat::{
    compat_audio_chunk, compat_error, compat_pong, compat_welcome, iso_8601, s16le_bytes,
    CompatChunk,
};
pub use self::frame::{
    decode_payload, encode_frame, opus_frame, to_s16, Codec, FrameHeader, HeaderError,
    FLAG_FALLBACK, FLAG_IDLE, HEADER_LEN, HEADER_VERSION, MAGIC,
};
pub use self::server::{
    error_message, hello_message, json_f32, params_json, params_message, ping_message,
    source_status_message, status_message, StatusInfo, StreamFormat, PROTOCOL_VERSION,
};
