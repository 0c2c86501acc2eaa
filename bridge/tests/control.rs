//! End-to-end control: validation as a whole, roles and tokens, rate limit, HTTP.

mod common;

use std::time::Duration;

use auralis::compose::code::PieceCode;
use auralis::compose::phrase::ComposeParams;
use auralis::compose::presets::preset;
use auralis_bridge::protocol::params_json;
use auralis_bridge::Config;
use common::{connect, get_json, http, next_audio, next_json, send_text, start};
use futures_util::SinkExt as _;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(3);

fn with_rate(rate: f64) -> Config {
    Config {
        control_rate_per_s: rate,
        ..common::config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_an_error_naming_the_field_and_changes_nothing() {
    let bridge = start(with_rate(1000.0)).await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    let hello = next_json(&mut ws, "hello", T).await;
    let before = hello["params"].clone();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            r#"{"type":"update_params","bpm":1000}"#.into(),
            "out_of_range",
            "bpm",
        ),
        (
            r#"{"type":"update_params","bpm":19.9}"#.into(),
            "out_of_range",
            "bpm",
        ),
        (
            r#"{"type":"update_params","intensity":1.5}"#.into(),
            "out_of_range",
            "intensity",
        ),
        (
            r#"{"type":"update_params","key":"X#"}"#.into(),
            "out_of_range",
            "key",
        ),
        (
            r#"{"type":"update_params","mode":"blues"}"#.into(),
            "out_of_range",
            "mode",
        ),
        (
            r#"{"type":"update_params","bpm":"fast"}"#.into(),
            "wrong_type",
            "bpm",
        ),
        (
            r#"{"type":"update_params","key":128}"#.into(),
            "out_of_range",
            "key",
        ),
        // One bad field rejects the whole message: bpm 90 must not be applied.
        (
            r#"{"type":"update_params","bpm":90,"intensity":7}"#.into(),
            "out_of_range",
            "intensity",
        ),
        (
            r#"{"type":"update_params","bpm":90,"colour":"blue"}"#.into(),
            "unknown_field",
            "colour",
        ),
        (
            r#"{"type":"select_preset","preset":"polka"}"#.into(),
            "unknown_preset",
            "preset",
        ),
        (
            r#"{"type":"select_preset","preset":3}"#.into(),
            "wrong_type",
            "preset",
        ),
        (
            r#"{"type":"select_piece","code":"au2-1-focus-d-dorian-60-50"}"#.into(),
            "out_of_range",
            "code",
        ),
        (
            r#"{"type":"select_piece","code":"au1-1-focus-d-dorian-60"}"#.into(),
            "out_of_range",
            "code",
        ),
        // Another seed: the stream's seed is fixed while it runs.
        (
            r#"{"type":"select_piece","code":"au1-z-focus-d-dorian-60-50"}"#.into(),
            "unavailable",
            "code",
        ),
        (r#"{"type":"launch"}"#.into(), "unknown_type", "type"),
        (r#"{"bpm":90}"#.into(), "missing_field", "type"),
        ("not json".into(), "invalid_json", ""),
    ];
    for (text, code, field) in &cases {
        send_text(&mut ws, text).await;
        let err = next_json(&mut ws, "error", T).await;
        assert_eq!(err["code"], *code, "{}", &text[..text.len().min(80)]);
        assert_eq!(err["recoverable"], true);
        if !field.is_empty() {
            assert_eq!(err["field"], *field, "{text}");
            assert!(
                err["message"].as_str().unwrap_or("").contains(field),
                "{err}"
            );
        }
    }
    // Invalid UTF-8 in a binary frame.
    ws.send(Message::binary(vec![b'{', 0xC3, 0x28, b'}']))
        .await
        .expect("send");
    let err = next_json(&mut ws, "error", T).await;
    assert_eq!(err["code"], "invalid_utf8");
    // Still connected and streaming, nothing applied.
    next_audio(&mut ws, T).await;
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["params"], before, "nothing changed");
    assert_eq!(
        status["control"]["errors"].as_u64(),
        Some(cases.len() as u64 + 1)
    );
    // A valid message is applied and announced to every client.
    let mut other = connect(addr, "").await;
    next_json(&mut other, "hello", T).await;
    send_text(&mut ws, r#"{"type":"update_params","key":"Bb","bpm":84.5}"#).await;
    for client in [&mut ws, &mut other] {
        let p = next_json(client, "params", T).await;
        assert_eq!(p["params"]["key"], "A#");
        assert_eq!(p["params"]["bpm"], 84.5);
        assert_eq!(p["params"]["mode"], "dorian", "unchanged fields kept");
        assert_eq!(p["applies_at"], "next_phrase");
    }
    send_text(&mut ws, r#"{"type":"select_preset","preset":"sleep"}"#).await;
    let p = next_json(&mut other, "params", T).await;
    assert_eq!(p["params"]["preset"], "sleep");
    assert_eq!(p["params"]["mode"], "phrygian");
    // A piece code of the seed playing: its preset's levels, its parameters.
    let focus = preset("focus").expect("focus");
    let code = PieceCode::new(
        1,
        focus,
        ComposeParams {
            bpm: 66.5,
            ..focus.compose
        },
    )
    .to_string();
    send_text(
        &mut ws,
        &format!(r#"{{"type":"select_piece","code":"{code}"}}"#),
    )
    .await;
    let p = next_json(&mut other, "params", T).await;
    assert_eq!(p["params"]["code"], code.as_str());
    assert_eq!(p["params"]["bpm"], 66.5);
    assert_eq!(p["params"]["mode"], focus.compose.mode.name());
    assert_eq!(
        p["params"]["levels"],
        params_json(&focus.compose, &focus.levels, None)["levels"],
        "the code's preset's levels play"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_needs_the_token_when_one_is_configured() {
    let bridge = start(Config {
        control_token: Some("s3cret-token".into()),
        ..with_rate(1000.0)
    })
    .await;
    let addr = bridge.local_addr();
    // No token: a listener; it hears but cannot control.
    let mut listener = connect(addr, "").await;
    let hello = next_json(&mut listener, "hello", T).await;
    assert_eq!(hello["role"], "listener");
    send_text(&mut listener, r#"{"type":"update_params","bpm":99}"#).await;
    let err = next_json(&mut listener, "error", T).await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["field"], "token");
    next_audio(&mut listener, T).await;
    // A wrong token: a listener, told so.
    let mut wrong = connect(addr, "?token=guess").await;
    let hello = next_json(&mut wrong, "hello", T).await;
    assert_eq!(hello["role"], "listener");
    let err = next_json(&mut wrong, "error", T).await;
    assert_eq!(err["code"], "forbidden");
    // The right token: a controller.
    let mut controller = connect(addr, "?token=s3cret-token").await;
    let hello = next_json(&mut controller, "hello", T).await;
    assert_eq!(hello["role"], "controller");
    send_text(&mut controller, r#"{"type":"update_params","bpm":99}"#).await;
    let p = next_json(&mut listener, "params", T).await;
    assert_eq!(p["params"]["bpm"], 99.0);
    // HTTP: bearer token.
    let body = r#"{"type":"update_params","intensity":0.9}"#;
    let (code, _) = http(addr, "POST", "/api/control", &[], body);
    assert_eq!(code, 401);
    let (code, _) = http(
        addr,
        "POST",
        "/api/control",
        &[("Authorization", "Bearer nope-nope")],
        body,
    );
    assert_eq!(code, 401);
    let (code, reply) = http(
        addr,
        "POST",
        "/api/control",
        &[("Authorization", "Bearer s3cret-token")],
        body,
    );
    assert_eq!(code, 200, "{reply}");
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["params"]["intensity"], 0.9);
    assert_eq!(status["params"]["bpm"], 99.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_is_closed_on_a_public_address_without_a_token() {
    // Listen on all interfaces (the test still connects over loopback).
    let bridge = start(Config {
        host: "0.0.0.0".parse().expect("address"),
        ..common::config()
    })
    .await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], bridge.local_addr().port()));
    let mut ws = connect(addr, "").await;
    let hello = next_json(&mut ws, "hello", T).await;
    assert_eq!(hello["role"], "listener");
    send_text(&mut ws, r#"{"type":"select_preset","preset":"bright"}"#).await;
    let err = next_json(&mut ws, "error", T).await;
    assert_eq!(err["code"], "forbidden");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("--control-token"),
        "{err}"
    );
    let (code, _) = http(
        addr,
        "POST",
        "/api/control",
        &[],
        r#"{"type":"select_preset","preset":"bright"}"#,
    );
    assert_eq!(code, 403);
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["params"]["preset"], "focus");
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_messages_are_rate_limited_per_client() {
    let bridge = start(with_rate(1.0)).await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    // Burst of 2 allowed, then limited.
    for bpm in [61, 62] {
        send_text(
            &mut ws,
            &format!(r#"{{"type":"update_params","bpm":{bpm}}}"#),
        )
        .await;
        next_json(&mut ws, "params", T).await;
    }
    send_text(&mut ws, r#"{"type":"update_params","bpm":63}"#).await;
    let err = next_json(&mut ws, "error", T).await;
    assert_eq!(err["code"], "rate_limited");
    // Another client has its own bucket.
    let mut other = connect(addr, "").await;
    next_json(&mut other, "hello", T).await;
    send_text(&mut other, r#"{"type":"update_params","bpm":64}"#).await;
    let p = next_json(&mut other, "params", T).await;
    assert_eq!(p["params"]["bpm"], 64.0);
    // The limited one is still connected.
    next_audio(&mut ws, T).await;
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_control_validates_like_the_websocket() {
    let bridge = start(with_rate(1000.0)).await;
    let addr = bridge.local_addr();
    let (code, body) = http(
        addr,
        "POST",
        "/api/control",
        &[],
        r#"{"type":"update_params","mode":"blues","bpm":70}"#,
    );
    assert_eq!(code, 400);
    let err: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(err["field"], "mode");
    let (code, body) = http(
        addr,
        "POST",
        "/api/control",
        &[],
        &format!(r#"{{"type":"pong","t":{}}}"#, "1".repeat(70_000)),
    );
    assert_eq!(code, 413, "{body}");
    let (code, _) = http(
        addr,
        "POST",
        "/api/control",
        &[],
        r#"{"type":"client_stats","underruns":1}"#,
    );
    assert_eq!(code, 400, "not a control message");
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["params"]["bpm"], 60.0);
    let (code, body) = http(
        addr,
        "POST",
        "/api/control",
        &[],
        r#"{"type":"select_preset","preset":"meditation"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["params"]["preset"], "meditation");
    assert_eq!(status["params"]["key"], "C");
    assert_eq!(status["params"]["mode"], "aeolian");
    bridge.shutdown().await;
}
