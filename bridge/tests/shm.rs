//! The `shm:<stream>` source end to end, with real processes: `auralis-shm-writer`
//! (the plugin's stream thread and writer, driven by the engine) writes a stream,
//! the real `auralis-bridge` binary reads it and serves WebSocket clients.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auralis::stream::layout::{example_file, stream_path, word};
use auralis::stream::reader::ShmReader;
use auralis_bridge::protocol::{FrameHeader, FLAG_IDLE};
use common::{connect, eventually, get_json, http, next, next_json, rms, send_text, Binary, Ws};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);

/// A stream name no other test (or test process) uses.
fn stream_name(tag: &str) -> String {
    format!("test-{}-{tag}", std::process::id())
}

/// A writer process streaming the engine on `stream`.
struct Writer(Child);

impl Writer {
    fn spawn(stream: &str, remote_control: bool) -> Self {
        Self::spawn_at(stream, 16_000, remote_control)
    }

    fn spawn_at(stream: &str, sample_rate: u32, remote_control: bool) -> Self {
        let flags: &[&str] = if remote_control {
            &["--remote-control"]
        } else {
            &[]
        };
        Self::spawn_with(stream, sample_rate, flags)
    }

    fn spawn_with(stream: &str, sample_rate: u32, flags: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auralis-shm-writer"));
        let rate = sample_rate.to_string();
        cmd.args(["--stream", stream, "--sample-rate", &rate, "--block", "256"])
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let writer = Self(cmd.spawn().expect("spawn the writer"));
        let path = stream_path(stream);
        let deadline = Instant::now() + T;
        while ShmReader::open_path(&path).map_or(true, |r| r.header().writer_pid != writer.0.id()) {
            assert!(Instant::now() < deadline, "the writer made no stream");
            std::thread::sleep(Duration::from_millis(20));
        }
        writer
    }

    /// Kills it with SIGKILL: no chance to close or remove its stream.
    fn kill(mut self) {
        self.0.kill().expect("kill the writer");
        self.0.wait().expect("reap the writer");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // Best effort cleanup of a test that failed half-way.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Removes a stream file when the test ends (a killed writer leaves its file).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The file may be gone already.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bridge(stream: &str) -> Binary {
    Binary::spawn(
        &[
            "--port",
            "0",
            "--source",
            &format!("shm:{stream}"),
            "--degrade-on-cpu",
            "false",
        ],
        &[],
    )
}

/// Starts a writer on a stream named after `tag`, the bridge playing it, and one
/// client past its `hello`: the file's clean-up, the stream's name, the writer, the
/// bridge, its address and the client (in the order they were made, so that they
/// are dropped in the reverse one).
async fn playing(tag: &str) -> (Cleanup, String, Writer, Binary, SocketAddr, Ws) {
    let name = stream_name(tag);
    let cleanup = Cleanup(stream_path(&name));
    let writer = Writer::spawn(&name, false);
    let bin = bridge(&name);
    let addr = bin.addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    (cleanup, name, writer, bin, addr, ws)
}

/// What a client read: audio chunks (header, RMS) and JSON messages, in order.
#[derive(Default)]
struct Seen {
    audio: Vec<(FrameHeader, f32)>,
    json: Vec<Value>,
}

/// Reads for `within` (or until `until` holds), keeping audio and JSON messages.
async fn read(ws: &mut Ws, within: Duration, until: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !until(&seen) {
        match next(ws, deadline.saturating_duration_since(Instant::now())).await {
            Some(Message::Binary(b)) => {
                let (h, payload) = FrameHeader::parse(&b).expect("valid frame");
                let samples = auralis_bridge::protocol::decode_payload(h.codec, payload);
                seen.audio.push((h, rms(&samples)));
            }
            Some(Message::Text(t)) => seen.json.push(serde_json::from_str(&t).expect("JSON")),
            Some(Message::Close(f)) => panic!("closed: {f:?}"),
            Some(_) => {}
            None => break,
        }
    }
    seen
}

fn status_with_state(seen: &Seen, state: &str) -> Option<Value> {
    seen.json
        .iter()
        .find(|v| v["type"] == "status" && v["state"] == state)
        .cloned()
}

fn assert_contiguous(seen: &Seen, what: &str) {
    for pair in seen.audio.windows(2) {
        assert_eq!(pair[1].0.seq, pair[0].0.seq + 1, "{what}: contiguous");
    }
}

fn idle(h: &FrameHeader) -> bool {
    h.flags & FLAG_IDLE != 0
}

/// Chunks per second over the audio seen (by wall time of the whole read).
fn rate(seen: &Seen, seconds: f64) -> f64 {
    seen.audio.len() as f64 / seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_stream_plays_goes_idle_when_its_writer_is_killed_and_resumes_with_a_new_one() {
    let name = stream_name("life");
    let _cleanup = Cleanup(stream_path(&name));
    let writer = Writer::spawn(&name, false);
    let bin = bridge(&name);
    let addr = bin.addr();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(addr, "").await;
        let hello = next_json(&mut ws, "hello", T).await;
        assert_eq!(hello["format"]["sample_rate"], 16_000, "the writer's rate");
        clients.push(ws);
    }
    // Live: contiguous, non-silent, not idle (after the first chunk or two).
    for (i, ws) in clients.iter_mut().enumerate() {
        let seen = read(ws, T, |s| s.audio.len() >= 25).await;
        assert_eq!(seen.audio.len(), 25, "client {i}");
        assert_contiguous(&seen, "live");
        let live = &seen.audio[5..];
        assert!(
            live.iter().all(|(h, _)| !idle(h)),
            "client {i}: idle while live"
        );
        let loud = live.iter().filter(|(_, e)| *e > 1e-4).count();
        assert!(loud * 4 > live.len() * 3, "client {i}: mostly silent");
    }

    // SIGKILL: the stream stays in /dev/shm but its heartbeat stops.
    writer.kill();
    let killed = Instant::now();
    for (i, ws) in clients.iter_mut().enumerate() {
        let seen = read(ws, T, |s| status_with_state(s, "idle").is_some()).await;
        let status = status_with_state(&seen, "idle").expect("an idle status");
        assert!(
            status["reason"]
                .as_str()
                .is_some_and(|r| r.contains("heartbeat")),
            "client {i}: {status}"
        );
    }
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["checks"]["source_idle"], true, "{health}");
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["source"]["state"], "idle", "{status}");
    // Silence flagged idle keeps coming, contiguous, at the chunk rate.
    let seconds = 3.0;
    let started = Instant::now();
    let seen = read(&mut clients[0], Duration::from_secs_f64(seconds), |_| false).await;
    let took = started.elapsed().as_secs_f64();
    assert_contiguous(&seen, "idle");
    assert!(
        seen.audio.iter().all(|(h, e)| idle(h) && *e == 0.0),
        "silence flagged idle"
    );
    let r = rate(&seen, took);
    assert!((6.0..=14.0).contains(&r), "{r} chunks/s while idle");
    assert!(killed.elapsed() < Duration::from_secs(60));

    // A new writer process makes a new file: the stream resumes.
    let _writer = Writer::spawn(&name, false);
    for (i, ws) in clients.iter_mut().enumerate() {
        let seen = read(ws, T, |s| status_with_state(s, "streaming").is_some()).await;
        assert!(
            status_with_state(&seen, "streaming").is_some(),
            "client {i}"
        );
        let seen = read(ws, T, |s| s.audio.len() >= 15).await;
        assert_contiguous(&seen, "resumed");
        let live = &seen.audio[3..];
        assert!(live.iter().all(|(h, _)| !idle(h)), "client {i}: still idle");
        assert!(live.iter().filter(|(_, e)| *e > 1e-4).count() * 4 > live.len() * 3);
    }
    let (_, streams) = get_json(addr, "/api/streams");
    assert_eq!(streams[0]["source"], format!("shm:{name}"));
    assert_eq!(streams[0]["state"], "streaming", "{streams}");
    assert!(
        streams[0]["reader"]["attaches"].as_u64() >= Some(2),
        "{streams}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_lapped_counted_and_resynchronised() {
    let (_cleanup, _name, _writer, bin, addr, mut ws) = playing("lap").await;
    read(&mut ws, T, |s| s.audio.len() >= 5).await;
    // Freeze the bridge for longer than the ring lasts (2 s): the writer laps it.
    bin.signal("STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    bin.signal("CONT");
    let counted = eventually(T, || {
        let (_, streams) = get_json(addr, "/api/streams");
        streams[0]["reader"]["laps"].as_u64() >= Some(1)
    })
    .await;
    assert!(counted, "{}", get_json(addr, "/api/streams").1);
    // Then the stream plays on: contiguous, live audio.
    let seen = read(&mut ws, T, |s| s.audio.len() >= 40).await;
    let tail = &seen.audio[seen.audio.len() - 10..];
    assert!(
        tail.iter().all(|(h, e)| !idle(h) && *e > 1e-4),
        "not live after the lap"
    );
    let (_, status) = get_json(addr, "/api/status");
    assert_eq!(status["source"]["state"], "streaming", "{status}");
    assert_eq!(status["source"]["run_mode"], "realtime", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_rendering_a_bounce_shows_it_in_the_status() {
    let name = stream_name("bounce");
    let _cleanup = Cleanup(stream_path(&name));
    let _writer = Writer::spawn_with(&name, 16_000, &["--offline"]);
    let bin = bridge(&name);
    let addr = bin.addr();
    let shown = eventually(T, || {
        let (_, status) = get_json(addr, "/api/status");
        status["source"]["state"] == "streaming" && status["source"]["run_mode"] == "offline"
    })
    .await;
    assert!(shown, "{}", get_json(addr, "/api/status").1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_or_corrupt_stream_is_refused_with_the_reason() {
    let foreign = stream_name("foreign");
    let corrupt = stream_name("corrupt");
    let _c1 = Cleanup(stream_path(&foreign));
    let _c2 = Cleanup(stream_path(&corrupt));
    std::fs::write(stream_path(&foreign), "{\"not\": \"a stream\"}".repeat(400)).expect("write");
    let mut bytes = example_file(16_000, 2, 4096);
    bytes[word::CHANNELS * 8..word::CHANNELS * 8 + 8].copy_from_slice(&99u64.to_le_bytes());
    std::fs::write(stream_path(&corrupt), &bytes).expect("write");

    let bin = bridge(&foreign);
    let addr = bin.addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    let seen = read(&mut ws, T, |s| s.audio.len() >= 5).await;
    assert!(
        seen.audio.iter().all(|(h, e)| idle(h) && *e == 0.0),
        "silence while refused"
    );
    let (_, streams) = get_json(addr, "/api/streams");
    let active = &streams[0];
    assert_eq!(active["state"], "idle", "{streams}");
    assert!(
        active["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not an Auralis stream")),
        "{streams}"
    );
    let listed = streams
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == corrupt.as_str())
        .unwrap_or_else(|| panic!("{corrupt} not listed: {streams}"));
    assert_eq!(listed["valid"], false);
    assert!(
        listed["error"]
            .as_str()
            .is_some_and(|e| e.contains("channels")),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_at_another_sample_rate_is_refused_until_the_bridge_restarts() {
    let (_cleanup, name, writer, _bin, _addr, mut ws) = playing("rate").await;
    read(&mut ws, T, |s| s.audio.len() >= 3).await;
    writer.kill();
    let _writer = Writer::spawn_at(&name, 22_050, false);
    let seen = read(&mut ws, T, |s| {
        status_with_state(s, "idle").is_some_and(|v| v["reason"].to_string().contains("Hz"))
    })
    .await;
    let status = seen
        .json
        .iter()
        .rev()
        .find(|v| v["type"] == "status")
        .expect("a status");
    assert!(
        status["reason"]
            .as_str()
            .is_some_and(|r| r.contains("22050 Hz") && r.contains("restart the bridge")),
        "{status}"
    );
    let tail = read(&mut ws, Duration::from_secs(1), |_| false).await;
    assert!(tail
        .audio
        .iter()
        .all(|(h, e)| idle(h) && *e == 0.0 && h.sample_rate == 16_000));
    // A bridge started now adopts the writer's rate.
    let bin2 = bridge(&name);
    let mut ws2 = connect(bin2.addr(), "").await;
    let hello = next_json(&mut ws2, "hello", T).await;
    assert_eq!(hello["format"]["sample_rate"], 22_050, "{hello}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_reaches_the_plugin_only_while_its_remote_control_is_on() {
    let (_cleanup, name, writer, _bin, addr, mut ws) = playing("ctl").await;
    read(&mut ws, T, |s| s.audio.len() >= 3).await;
    send_text(&mut ws, r#"{"type":"update_params","bpm":90}"#).await;
    let err = next_json(&mut ws, "error", T).await;
    assert_eq!(err["field"], "remote_control", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("Remote control")),
        "{err}"
    );
    let (code, body) = http(
        addr,
        "POST",
        "/api/control",
        &[("Content-Type", "application/json")],
        r#"{"type":"update_params","bpm":90}"#,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("Remote control"), "{body}");
    let reader = ShmReader::open(&name).expect("open");
    assert_eq!(
        reader.compose().map(|c| c.bpm),
        Some(60.0),
        "nothing applied"
    );

    // A writer with remote control on takes the change.
    writer.kill();
    let writer = Writer::spawn(&name, true);
    let live = eventually(T, || {
        let (_, streams) = get_json(addr, "/api/streams");
        streams[0]["writer_pid"] == writer.0.id() && streams[0]["state"] == "streaming"
    })
    .await;
    assert!(live, "the new writer was not picked up");
    send_text(&mut ws, r#"{"type":"update_params","bpm":90,"key":"A"}"#).await;
    let seen = read(&mut ws, T, |s| {
        s.json
            .iter()
            .any(|v| v["type"] == "params" || v["type"] == "error")
    })
    .await;
    let params = seen
        .json
        .iter()
        .find(|v| v["type"] == "params" || v["type"] == "error")
        .expect("an answer");
    assert_eq!(params["type"], "params", "{params}");
    assert_eq!(params["params"]["bpm"], 90.0, "{params}");
    let reader = ShmReader::open(&name).expect("open");
    let applied = eventually(T, || {
        reader
            .compose()
            .is_some_and(|c| c.bpm == 90.0 && c.key.pitch_class() == 9)
    })
    .await;
    assert!(applied, "the plugin publishes {:?}", reader.compose());

    // A piece code names a seed, which is the plugin's to set, in the DAW.
    send_text(
        &mut ws,
        r#"{"type":"select_piece","code":"au1-1-focus-d-dorian-60-50"}"#,
    )
    .await;
    let seen = read(&mut ws, T, |s| s.json.iter().any(|v| v["type"] == "error")).await;
    let err = seen
        .json
        .iter()
        .find(|v| v["type"] == "error")
        .expect("an error");
    assert_eq!(err["code"], "unavailable", "{err}");
    assert_eq!(err["field"], "code", "{err}");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("DAW")),
        "{err}"
    );
}
