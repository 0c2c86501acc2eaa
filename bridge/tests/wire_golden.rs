//! Golden wire bytes: every frame kind and every server message, built by the
//! bridge's own encoders from fixed inputs, compared with literal bytes and strings.
//! A change to the wire format, however small (a field's order, a float's digits),
//! fails here first.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auralis::compose::phrase::ComposeParams;
use auralis::render::mix::MixLevels;
use auralis_bridge::codec::opus::DEFAULT_KBPS;
use auralis_bridge::hub::Hub;
use auralis_bridge::protocol::{
    compat_audio_chunk, compat_error, compat_pong, compat_welcome, encode_frame, error_message,
    hello_message, params_json, params_message, ping_message, status_message, Codec, CompatChunk,
    ErrorCode, FrameHeader, ProtocolError, StatusInfo, StreamFormat, FLAG_FALLBACK, FLAG_IDLE,
    HEADER_LEN,
};
use auralis_bridge::source::{FillReport, Pump};
use auralis_bridge::Config;
use common::source::TestSource;
use common::{connect, next};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SAMPLES: [f32; 6] = [0.0, 0.5, -0.5, 1.0, -1.0, 0.25];

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn format() -> StreamFormat {
    StreamFormat {
        codec: Codec::F32,
        sample_rate: 48_000,
        channels: 2,
        frames_per_chunk: 4800,
        chunk_ms: 100.0,
        header_bytes: HEADER_LEN,
    }
}

fn params() -> Value {
    params_json(
        &ComposeParams::default(),
        &MixLevels::default(),
        Some("focus"),
    )
}

/// The `params` object of [`params`], as every message below carries it.
const PARAMS: &str = r#"{"bars":8,"beats_per_bar":4,"bpm":60.0,"intensity":0.5,"key":"D","levels":{"delay":0.35,"master_gain_db":0.0,"melody":0.7,"pad":0.8,"percussion":0.6,"reverb":0.5},"mode":"dorian","preset":"focus"}"#;

/// The 44 header bytes of [`header`] in hex, fields apart: magic, version, codec,
/// channels, sample rate, seq, position, server time, frames, level, flags,
/// reserved.
fn header_hex(codec: &str) -> String {
    format!(
        "41555231 01 {codec} 0200 80bb0000 0807060504030201 4083000000000000 \
         00001040fc54d941 03000000 02 03 0000"
    )
}

#[test]
fn binary_frames() {
    let s16 = encode_frame(&header(Codec::S16), &SAMPLES);
    let expected = format!("{} 0000 0040 00c0 ff7f 0180 0020", header_hex("00"));
    assert_eq!(hex(&s16), expected.replace(' ', ""), "s16");
    let f32 = encode_frame(&header(Codec::F32), &SAMPLES);
    let expected = format!(
        "{} 00000000 0000003f 000000bf 0000803f 000080bf 0000803e",
        header_hex("01")
    );
    assert_eq!(hex(&f32), expected.replace(' ', ""), "f32");
}

#[test]
fn native_messages() {
    assert_eq!(params().to_string(), PARAMS, "params json");
    assert_eq!(
        hello_message(7, "embedded", &format(), &params(), "controller"),
        format!(
            r#"{{"client_id":7,"format":{{"channels":2,"chunk_ms":100.0,"codec":"f32","frames_per_chunk":4800,"header_bytes":44,"sample_rate":48000}},"params":{PARAMS},"protocol":1,"role":"controller","stream":"embedded","type":"hello"}}"#
        ),
        "hello"
    );
    assert_eq!(
        params_message(&params(), "next_phrase"),
        format!(r#"{{"applies_at":"next_phrase","params":{PARAMS},"type":"params"}}"#),
        "params"
    );
    let status = StatusInfo {
        state: "streaming",
        level: "high_load",
        buffer_depth: 3,
        dropped: 2,
        clients: 5,
        seq: 41,
        phrase_index: Some(9),
    };
    assert_eq!(
        status_message(&status),
        r#"{"buffer_depth":3,"clients":5,"dropped":2,"level":"high_load","phrase_index":9,"seq":41,"state":"streaming","type":"status"}"#,
        "status"
    );
    let unknown = StatusInfo {
        phrase_index: None,
        state: "idle",
        ..status
    };
    assert_eq!(
        status_message(&unknown),
        r#"{"buffer_depth":3,"clients":5,"dropped":2,"level":"high_load","phrase_index":null,"seq":41,"state":"idle","type":"status"}"#,
        "status, phrase unknown"
    );
    let field = ProtocolError::field(ErrorCode::OutOfRange, "bpm", "field `bpm` is too fast");
    assert_eq!(
        error_message(&field, true),
        r#"{"code":"out_of_range","field":"bpm","message":"field `bpm` is too fast","recoverable":true,"type":"error"}"#,
        "error with a field"
    );
    let general = ProtocolError::new(ErrorCode::RateLimited, "slow down");
    assert_eq!(
        error_message(&general, false),
        r#"{"code":"rate_limited","field":null,"message":"slow down","recoverable":false,"type":"error"}"#,
        "error without a field"
    );
    assert_eq!(
        ping_message(1_700_000_000.5),
        r#"{"t":1700000000.5,"type":"ping"}"#,
        "ping"
    );
}

#[test]
fn compat_messages() {
    assert_eq!(
        compat_welcome(7, &format(), &params()),
        format!(
            r#"{{"channels":2,"chunk_ms":100.0,"client_id":"client_7","format":"s16le","message":"Connected to Auralis streaming server","params":{PARAMS},"sample_rate":48000,"type":"welcome"}}"#
        ),
        "welcome"
    );
    assert_eq!(
        compat_audio_chunk(
            &CompatChunk {
                seq: 12,
                timestamp: 1_700_000_000.25,
                sample_rate: 44_100,
                channels: 2,
            },
            &SAMPLES
        ),
        r#"{"channels":2,"data":"AAAAQADA/38BgAAg","duration_ms":0.06802721088435375,"num_samples":3,"sample_rate":44100,"seq":12,"timestamp":1700000000.25,"timestamp_iso":"2023-11-14T22:13:20.250000","type":"audio_chunk"}"#,
        "audio_chunk"
    );
    assert_eq!(
        compat_error(&ProtocolError::field(
            ErrorCode::OutOfRange,
            "bpm",
            "field `bpm` must be between 20 and 300, got 1000"
        )),
        r#"{"code":"out_of_range","field":"bpm","message":"field `bpm` must be between 20 and 300, got 1000","type":"error"}"#,
        "error"
    );
    assert_eq!(
        compat_pong(1_700_000_000.5),
        r#"{"timestamp":1700000000.5,"type":"pong"}"#,
        "pong"
    );
}

/// Idle from its first chunk, with no reason to give.
fn idle() -> TestSource {
    TestSource::new("idle", 8000, |_, interleaved| {
        interleaved.fill(0.0);
        FillReport {
            idle: true,
            phrase_index: Some(4),
            ..FillReport::default()
        }
    })
}

#[tokio::test]
async fn the_source_announces_idle_with_its_reason() {
    let hub = Arc::new(Hub::new(8, 4));
    let mut events = hub.subscribe_events();
    let pump = Pump::spawn(idle().boxed(), 160, DEFAULT_KBPS, Arc::clone(&hub)).expect("spawn");
    let text = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("an announcement in time")
        .expect("the hub is open");
    pump.stop();
    assert_eq!(
        text.as_str(),
        r#"{"buffer_depth":0,"clients":0,"dropped":0,"level":"normal","phrase_index":4,"reason":null,"seq":0,"state":"idle","type":"status"}"#,
        "source status"
    );
}

/// The compatibility heartbeat is the transport's ping, which browsers answer by
/// themselves: the original client knows no JSON `ping` and gets none.
#[tokio::test]
async fn compat_heartbeat_is_a_transport_ping() {
    let config = Config {
        heartbeat: Duration::from_millis(100),
        ..common::config()
    };
    let bridge = common::start(config).await;
    let mut ws = connect(bridge.local_addr(), "?format=json").await;
    let mut pings = 0;
    while pings < 3 {
        match next(&mut ws, Duration::from_secs(3)).await {
            Some(Message::Ping(_)) => pings += 1,
            Some(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                assert!(
                    ["welcome", "audio_chunk"].contains(&v["type"].as_str().unwrap_or("")),
                    "only the original's messages: {}",
                    v["type"]
                );
            }
            Some(_) => {}
            None => panic!("no transport ping"),
        }
    }
    bridge.shutdown().await;
}
