//! The original Auralis browser client against the bridge, in a real headless
//! Chromium, with `--default-format json` and `--client-dir`: the client connects to
//! plain `/ws/stream`, plays at 44.1 kHz, and steers the music with its presets.
//!
//! The page is `tests/fixtures/legacy_client/`, a stand-in written to behave as the
//! original client does (see its `index.html`); `AURALIS_ORIGINAL_CLIENT=<dir>`
//! serves that directory instead, such as the original's own `client/`, unmodified.
//! Beside the browser, a plain WebSocket listener measures the stream's samples
//! per wall-clock second.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use auralis_bridge::protocol::Dialect;
use auralis_bridge::Config;
use common::chromium::Browser;
use common::{connect, next, next_json, send_text};
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// How long the client plays.
const PLAY: Duration = Duration::from_secs(60);
/// The original client's presets (its `server/presets.py`): name, key, mode, bpm,
/// intensity.
const PRESETS: [(&str, &str, &str, f64, f64); 4] = [
    ("meditation", "C", "aeolian", 60.0, 0.3),
    ("sleep", "E", "phrygian", 60.0, 0.2),
    ("bright", "G", "lydian", 70.0, 0.6),
    ("focus", "D", "dorian", 60.0, 0.5),
];

fn client_dir() -> (PathBuf, &'static str) {
    match std::env::var_os("AURALIS_ORIGINAL_CLIENT") {
        Some(dir) => (PathBuf::from(dir), "the original client"),
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_client"),
            "the stand-in for the original client",
        ),
    }
}

fn config(client_dir: Option<PathBuf>) -> Config {
    Config {
        // The embedded engine at 48 kHz: the compatibility stream is resampled.
        sample_rate: 48_000,
        default_format: Dialect::Compat,
        client_dir,
        ..common::config()
    }
}

/// Arrival times and sizes of every `audio_chunk` a plain listener gets.
async fn listen(addr: std::net::SocketAddr, for_: Duration) -> Vec<(Instant, u64)> {
    let mut ws = connect(addr, "").await;
    let welcome = next_json(&mut ws, "welcome", Duration::from_secs(5)).await;
    assert_eq!(welcome["sample_rate"], 44_100, "{welcome}");
    let end = Instant::now() + for_;
    let mut arrivals = Vec::new();
    while Instant::now() < end {
        match next(&mut ws, Duration::from_secs(2)).await {
            Some(Message::Text(text)) => {
                let chunk: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if chunk["type"] == "audio_chunk" {
                    arrivals.push((Instant::now(), chunk["num_samples"].as_u64().expect("n")));
                }
            }
            Some(Message::Binary(_)) => panic!("a binary frame on plain /ws/stream"),
            Some(_) => {}
            None => panic!("the stream stopped"),
        }
    }
    arrivals
}

/// Frames per second: the least-squares slope of frames received against arrival
/// time, over the arrivals after the first `skip` (the burst at connect).
fn frames_per_second(arrivals: &[(Instant, u64)], skip: Duration) -> f64 {
    let t0 = arrivals[0].0;
    let mut total = 0u64;
    let points: Vec<(f64, f64)> = arrivals
        .iter()
        .map(|&(at, n)| {
            total += n;
            ((at - t0).as_secs_f64(), total as f64)
        })
        .filter(|&(t, _)| t >= skip.as_secs_f64())
        .collect();
    let n = points.len() as f64;
    let (mt, mf) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mf)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mt) * (p.0 - mt)).sum();
    cov / var
}

async fn eval(browser: &mut Browser, expr: &str) -> Value {
    browser.eval(expr).await.expect("script runs")
}

/// Seconds until `/api/status` shows the preset's values, at most `within`.
async fn preset_applied(
    addr: std::net::SocketAddr,
    (name, key, mode, bpm, intensity): (&str, &str, &str, f64, f64),
    within: Duration,
) -> f64 {
    let asked = Instant::now();
    loop {
        let (_, status) = common::get_json(addr, "/api/status");
        let p = &status["params"];
        if p["key"] == key && p["mode"] == mode && p["bpm"] == bpm && p["intensity"] == intensity {
            return asked.elapsed().as_secs_f64();
        }
        assert!(
            asked.elapsed() < within,
            "{name}: the bridge's params are still {p} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_client_plays_and_steers_the_stream_at_44100_hz() {
    let (dir, which) = client_dir();
    eprintln!("serving {which} from {}", dir.display());
    let bridge = common::start(config(Some(dir))).await;
    let addr = bridge.local_addr();
    let rate = tokio::spawn(listen(addr, PLAY + Duration::from_secs(5)));

    let mut browser = Browser::launch().await.expect("headless Chromium");
    browser
        .open(&format!("http://{addr}/"))
        .await
        .expect("page loads");
    eval(
        &mut browser,
        "document.getElementById('playButton').click()",
    )
    .await;
    browser
        .wait_for(
            "window.auralisClient.chunksReceived >= 10",
            Duration::from_secs(5),
        )
        .await
        .expect("the client receives chunks");
    let rate_hz = eval(&mut browser, "window.auralisClient.audioContext.sampleRate").await;
    assert_eq!(rate_hz, json!(44_100), "the client's AudioContext");

    let started = Instant::now();
    let mut depths = Vec::new();
    let mut presets = PRESETS.iter();
    let mut applied = Vec::new();
    while started.elapsed() < PLAY {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = eval(
            &mut browser,
            "({depth: window.auralisClient.bufferDepth, underruns: window.auralisClient.underruns, \
              audio: window.auralisClient.audioContext.currentTime, wall: performance.now() / 1000})",
        )
        .await;
        assert_eq!(s["underruns"], json!(0), "at {:?}: {s}", started.elapsed());
        let at = |k: &str| s[k].as_f64().expect(k);
        depths.push((s["depth"].as_i64().expect("depth"), at("audio"), at("wall")));
        // A preset every 12 s from 10 s on, each within one phrase (8 bars of 4
        // beats at its tempo).
        if depths.len() % 12 == 10 {
            if let Some(&preset) = presets.next() {
                eval(
                    &mut browser,
                    &format!(
                        "document.querySelector('.preset-button[data-preset=\"{}\"]').click()",
                        preset.0
                    ),
                )
                .await;
                let phrase = Duration::from_secs_f64(32.0 * 60.0 / preset.3);
                applied.push((preset.0, preset_applied(addr, preset, phrase).await));
            }
        }
    }
    assert_eq!(applied.len(), PRESETS.len(), "every preset was tried");
    let errors = common::evidence::get_metric(addr, "auralis_bridge_control_errors_total");
    assert_eq!(errors, 0.0, "the bridge refused a message of the client");
    let arrivals = rate.await.expect("listener");
    let measured = frames_per_second(&arrivals, Duration::from_secs(3));
    eprintln!(
        "compat stream: {measured:.1} frames per wall-clock second over {:.0} s",
        (arrivals[arrivals.len() - 1].0 - arrivals[0].0).as_secs_f64()
    );
    assert!(
        (measured / 44_100.0 - 1.0).abs() < 0.001,
        "{measured:.1} frames/s, not 44,100 ± 0.1 %"
    );
    // The buffer against the stream: the chunks it holds, less those that piled
    // up while the browser's own audio clock stood still (a headless Chromium on
    // a loaded machine loses render time; a sound card does not), which are not
    // the stream's doing. A stream at the wrong rate moves it by 0.8 chunks a
    // second (48 kHz) whatever the clock.
    let (_, audio0, wall0) = depths[0];
    let lost_s = |audio: f64, wall: f64| (wall - wall0) - (audio - audio0);
    let held: Vec<i64> = depths
        .iter()
        .map(|&(depth, audio, wall)| depth - (lost_s(audio, wall) * 10.0).round() as i64)
        .collect();
    let mut sorted = held.clone();
    sorted.sort_unstable();
    let settled = sorted[sorted.len() / 2];
    let worst = held.iter().map(|d| (d - settled).abs()).max().unwrap_or(0);
    let (_, audio, wall) = depths[depths.len() - 1];
    let raw: Vec<i64> = depths.iter().map(|d| d.0).collect();
    eprintln!(
        "{which}: buffer settled at {settled} chunks (worst step away {worst}); the audio clock lost {:.2} s of {:.0} s; raw depths {raw:?}; presets applied after {applied:?} s",
        lost_s(audio, wall),
        wall - wall0
    );
    assert!(
        worst <= 2,
        "the buffer left its settled {settled} chunks by {worst}: {held:?} (raw {raw:?})"
    );
    bridge.shutdown().await;
}

/// Every bad compatibility message gets the original's error shape (`type`
/// `error` with a `message`), changes nothing, and leaves the client connected and
/// listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compat_input_is_answered_and_changes_nothing() {
    let bridge = common::start(config(None)).await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "welcome", Duration::from_secs(5)).await;
    let (_, before) = common::get_json(addr, "/api/status");
    for bad in [
        r#"{"type":"control","key":"62"}x"#,
        r#"{"type":"control","key":128}"#,
        r#"{"type":"control","key":61.5}"#,
        r#"{"type":"control","key":true}"#,
        r#"{"type":"control","mode":"blues"}"#,
        r#"{"type":"control","mode":5}"#,
        r#"{"type":"control","bpm":"fast"}"#,
        r#"{"type":"control","bpm":70,"intensity":1.5}"#,
        r#"{"type":"control","bpm":1000}"#,
        r#"{"type":"parameter_change","parameter":"tempo","value":70}"#,
        r#"{"type":"parameter_change","parameter":"bpm"}"#,
        r#"{"type":"dance"}"#,
        r#"{"key":62}"#,
        r#"[1,2,3]"#,
    ] {
        send_text(&mut ws, bad).await;
        let error = next_json(&mut ws, "error", Duration::from_secs(3)).await;
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{bad}: {error}");
    }
    let (_, after) = common::get_json(addr, "/api/status");
    assert_eq!(before["params"], after["params"], "nothing changed");
    // Still connected and listening: audio keeps coming, and a good message works.
    let mut audio = 0;
    while audio < 3 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"audio_chunk\"") => audio += 1,
            Some(Ok(_)) => {}
            other => panic!("the client was dropped: {other:?}"),
        }
    }
    send_text(&mut ws, r#"{"type":"control","key":64,"mode":"phrygian"}"#).await;
    assert!(
        common::eventually(Duration::from_secs(3), || {
            common::get_json(addr, "/api/status").1["params"]["key"] == "E"
        })
        .await,
        "a good message still applies"
    );
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    let pong = next_json(&mut ws, "pong", Duration::from_secs(3)).await;
    assert!(pong["timestamp"].is_f64(), "{pong}");
    bridge.shutdown().await;
}
