//! End-to-end streaming: many clients, codecs, the compatibility mode.

mod common;

use std::time::{Duration, Instant};

use auralis_bridge::protocol::{Codec, HEADER_LEN};
use base64::Engine as _;
use common::{connect, next, next_audio, next_json, rms, start};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_receive_contiguous_non_silent_audio_at_ten_chunks_per_second() {
    const CLIENTS: usize = 20;
    const SECONDS: f64 = 3.0;
    let bridge = start(common::config()).await;
    let addr = bridge.local_addr();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let query = if i % 2 == 0 { "" } else { "?codec=f32" };
            let mut ws = connect(addr, query).await;
            let hello = next_json(&mut ws, "hello", Duration::from_secs(5)).await;
            assert_eq!(hello["protocol"], 1);
            assert_eq!(hello["format"]["sample_rate"], 16_000);
            assert_eq!(hello["format"]["channels"], 2);
            assert_eq!(hello["format"]["header_bytes"], HEADER_LEN);
            assert_eq!(hello["role"], "controller", "loopback without token");
            assert_eq!(hello["params"]["mode"], "dorian");
            let (first, _) = next_audio(&mut ws, Duration::from_secs(5)).await;
            let started = Instant::now();
            let mut last = first.seq;
            let mut count = 0u32;
            let mut energy = Vec::new();
            let mut max_gap = Duration::ZERO;
            let mut prev = Instant::now();
            while started.elapsed().as_secs_f64() < SECONDS {
                let (h, samples) = next_audio(&mut ws, Duration::from_secs(2)).await;
                let now = Instant::now();
                max_gap = max_gap.max(now - prev);
                prev = now;
                assert_eq!(h.seq, last + 1, "client {i}: contiguous sequence");
                assert_eq!(h.codec, if i % 2 == 0 { Codec::S16 } else { Codec::F32 });
                assert_eq!(h.frames, 1600);
                assert_eq!(h.position_frames, h.seq * 1600);
                assert_eq!(samples.len(), 3200);
                last = h.seq;
                count += 1;
                energy.push(rms(&samples));
            }
            (count, energy, max_gap)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let (count, energy, max_gap) = t.await.expect("client task");
        let rate = f64::from(count) / SECONDS;
        assert!((7.0..=13.0).contains(&rate), "client {i}: {rate} chunks/s");
        let loud = energy.iter().filter(|e| **e > 1e-4).count();
        assert!(
            loud * 2 > energy.len(),
            "client {i}: mostly silent {energy:?}"
        );
        assert!(
            max_gap < Duration::from_millis(600),
            "client {i}: gap {max_gap:?}"
        );
    }
    bridge.shutdown().await;
}

/// A browser's script cannot read an HTTP refusal of a WebSocket upgrade, so a bad
/// query is answered on the socket: an `error` naming the parameter, then 1008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_codec_or_format_gets_an_error_frame_naming_the_parameter() {
    let bridge = start(common::config()).await;
    let long = "x".repeat(5000);
    for (query, field) in [
        ("?codec=mp3".to_owned(), "codec"),
        ("?format=xml".to_owned(), "format"),
        (format!("?codec={long}"), "codec"),
    ] {
        let mut ws = connect(bridge.local_addr(), &query).await;
        let error = next_json(&mut ws, "error", Duration::from_secs(5)).await;
        assert_eq!(error["code"], "out_of_range", "{query}: {error}");
        assert_eq!(error["field"], field, "{error}");
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains(field), "{message}");
        assert!(
            message.len() < 200,
            "the input is not echoed whole: {message}"
        );
        let (code, reason) = common::next_close(&mut ws, Duration::from_secs(5))
            .await
            .expect("a close frame");
        assert_eq!(code, 1008, "{query}");
        assert!(reason.contains(field), "{reason}");
    }
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_mode_speaks_the_original_protocol() {
    let bridge = start(common::config()).await;
    let mut ws = connect(bridge.local_addr(), "?format=json").await;
    let welcome = next_json(&mut ws, "welcome", Duration::from_secs(5)).await;
    // The source runs at 16 kHz; the original client plays 44.1 kHz.
    assert_eq!(welcome["sample_rate"], 44_100);
    assert_eq!(welcome["channels"], 2);
    assert_eq!(
        welcome["client_id"]
            .as_str()
            .map(|id| id.starts_with("client_")),
        Some(true)
    );
    let mut last_seq = None;
    let mut loud = 0;
    for _ in 0..5 {
        let chunk = next_json(&mut ws, "audio_chunk", Duration::from_secs(3)).await;
        for field in [
            "seq",
            "timestamp",
            "timestamp_iso",
            "sample_rate",
            "duration_ms",
            "channels",
            "num_samples",
            "data",
        ] {
            assert!(
                chunk.get(field).is_some(),
                "audio_chunk lacks {field}: {chunk}"
            );
        }
        let seq = chunk["seq"].as_u64().expect("seq");
        if let Some(prev) = last_seq {
            assert_eq!(seq, prev + 1);
        }
        last_seq = Some(seq);
        assert_eq!(chunk["sample_rate"], 44_100);
        assert_eq!(chunk["num_samples"], 4410);
        assert_eq!(chunk["duration_ms"], 100.0);
        let pcm = base64::engine::general_purpose::STANDARD
            .decode(chunk["data"].as_str().expect("data"))
            .expect("valid base64");
        assert_eq!(pcm.len(), 4410 * 2 * 2, "interleaved s16le stereo");
        let samples: Vec<f32> = pcm
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        if rms(&samples) > 1e-4 {
            loud += 1;
        }
    }
    assert!(loud >= 3, "compat audio is mostly silent");
    // ping → pong
    common::send_text(&mut ws, r#"{"type":"ping"}"#).await;
    next_json(&mut ws, "pong", Duration::from_secs(3)).await;
    // Parameter updates in the original shapes; the original client knows no
    // `params` announcement, so the change shows in the status.
    let addr = bridge.local_addr();
    let params = || common::get_json(addr, "/api/status").1["params"].clone();
    common::send_text(
        &mut ws,
        r#"{"type":"parameter_change","parameter":"bpm","value":72}"#,
    )
    .await;
    assert!(common::eventually(Duration::from_secs(3), || params()["bpm"] == 72.0).await);
    common::send_text(
        &mut ws,
        r#"{"type":"control","params":{"mode":"lydian","intensity":0.2}}"#,
    )
    .await;
    assert!(common::eventually(Duration::from_secs(3), || params()["mode"] == "lydian").await);
    assert_eq!(params()["bpm"], 72.0, "other fields kept");
    // The original's own message: a MIDI key number among the others.
    common::send_text(
        &mut ws,
        r#"{"type":"control","key":67,"mode":"lydian","bpm":70,"intensity":0.6}"#,
    )
    .await;
    assert!(common::eventually(Duration::from_secs(3), || params()["key"] == "G").await);
    // Only the original's messages, and no binary frames, in compat mode.
    for _ in 0..3 {
        match next(&mut ws, Duration::from_millis(300)).await {
            Some(Message::Binary(_)) => panic!("binary frame in compat mode"),
            Some(Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
                assert_eq!(v["type"], "audio_chunk", "{t}");
            }
            _ => {}
        }
    }
    bridge.shutdown().await;
}
