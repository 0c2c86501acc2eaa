//! `GET /api/recording`: a recording equals what a listener heard, sample for
//! sample, through parameter and preset changes, level changes and a late
//! texture; bad requests get clear 4xx answers and leave the stream alone.

mod common;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auralis::compose::code::PieceCode;
use auralis::compose::phrase::ComposeParams;
use auralis::compose::presets::preset;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::Level;
use auralis::engine::{Engine, EngineConfig, TextureSetting};
use auralis::prerender::gpu::RendererChoice;
use auralis::prerender::PrerenderConfig;
use auralis::render::journal::JournalEvent;
use auralis::render::RenderMode;
use auralis_bridge::recording::render::i24;
use auralis_bridge::source::{EmbeddedSource, FillReport};
use auralis_bridge::Config;
use common::source::TestSource;
use common::{connect, get_json, http, next_audio, next_json};

const RATE: u32 = 16_000;
const T: Duration = Duration::from_secs(5);

/// Seconds of stream the exactness test captures: `AURALIS_RECORDING_TEST_S`
/// (120 for the full check), else 40.
fn capture_s() -> u64 {
    std::env::var("AURALIS_RECORDING_TEST_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// `GET path` over HTTP/1.0: the status, the headers (lower-case names) and the
/// whole body, however long the render takes (up to `within`).
fn fetch(
    addr: SocketAddr,
    path: &str,
    within: Duration,
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(within)).expect("timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

/// The samples of a stereo 24-bit WAV, interleaved, as integers.
fn wav_samples(bytes: &[u8]) -> Vec<i32> {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 24, "24-bit");
    assert_eq!(
        u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]),
        RATE
    );
    bytes[44..]
        .chunks_exact(3)
        .map(|b| i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8)
        .collect()
}

/// The engine under test: 4-second phrases, textures on the CPU whose first
/// render after 1 s (phrase 2's, asked for at 4 s) fails and is retried 6 s
/// later: phrase 2's texture comes after its phrase (the pad carries all of
/// it) and phrase 3's, queued behind it, comes about 2 s into its phrase
/// (the pad carries until it does).
/// What the source says it plays: seed 11 of `focus` (with the engine's
/// shorter phrases, which a piece code cannot say, until a preset is chosen).
fn piece() -> PieceCode {
    let focus = preset("focus").expect("focus");
    PieceCode::new(11, focus, focus.compose)
}

fn engine() -> Engine {
    let compose = ComposeParams {
        bars: 2,
        bpm: 120.0,
        ..ComposeParams::default()
    };
    let prerender = PrerenderConfig {
        renderer: RendererChoice::Cpu,
        retry_pause: Duration::from_secs(6),
        faults: "render_error@1s".parse().expect("fault spec"),
        ..PrerenderConfig::new(0, RATE as f32)
    };
    Engine::build(
        EngineConfig {
            sample_rate: RATE as f32,
            seed: 11,
            compose,
            mode: RenderMode::RealTime,
            ..EngineConfig::default()
        },
        MonitorConfig {
            sample_cpu: false,
            ..MonitorConfig::default()
        },
        TextureSetting::With(prerender),
    )
    .expect("engine")
}

/// A sample as the recording's 24-bit WAV holds it.
fn quantized(x: f32) -> i32 {
    let b = i24(x);
    i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8
}

/// Waits until the follower has taken at least `n` checkpoints; returns how
/// many the log keeps.
async fn eventually_checkpoints(log: &auralis_bridge::recording::EventLog, n: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (kept, _) = log.sizes();
        if kept as u64 >= n || Instant::now() > deadline {
            assert!(kept as u64 >= n, "only {kept} checkpoints");
            return kept;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The level pinned at second `s` of the stream: thinner, then looping, then
/// free again.
fn pin_at(s: f64) -> Option<Level> {
    match s {
        s if (18.0..22.0).contains(&s) => Some(Level::HighLoad),
        s if (22.0..26.0).contains(&s) => Some(Level::Critical),
        s if (26.0..30.0).contains(&s) => Some(Level::Overload),
        _ => None,
    }
}

fn control(addr: SocketAddr, body: &str) {
    let (code, answer) = http(addr, "POST", "/api/control", &[], body);
    assert_eq!(code, 200, "{body}: {answer}");
}

/// The exactness check: a listener captures the f32 stream while the
/// parameters and the preset change, the level is pinned up and down and a
/// texture comes late; the recording of that stretch equals the capture
/// quantized to 24 bits, sample for sample (so it is within 2⁻²⁴ of it,
/// −144 dBFS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_equals_what_a_listener_heard() {
    let seconds = capture_s();
    let source = EmbeddedSource::with_engine(engine(), piece(), 4800, Duration::from_secs(3600))
        .before_fill(|engine| {
            let s = engine.position() as f64 / f64::from(RATE);
            engine.set_level_pin(pin_at(s));
        });
    let config = Config {
        burst: Duration::ZERO,
        recording_checkpoint: Duration::from_secs(7),
        ..common::config()
    };
    let bridge = auralis_bridge::start_with_source(config, Box::new(source))
        .await
        .expect("start");
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "?codec=f32").await;
    next_json(&mut ws, "hello", T).await;
    let mut captured: Vec<f32> = Vec::new();
    let start = {
        let (h, samples) = next_audio(&mut ws, T).await;
        captured.extend_from_slice(&samples);
        h.position_frames
    };
    let mut next_pos = start + captured.len() as u64 / 2;
    let mut changes = [
        (12.0, r#"{"type":"update_params","bpm":100}"#),
        (
            16.0,
            r#"{"type":"update_params","intensity":0.9,"key":"F#","mode":"lydian"}"#,
        ),
        (31.0, r#"{"type":"select_preset","preset":"sleep"}"#),
        (
            34.0,
            r#"{"type":"update_params","bpm":140,"intensity":0.3}"#,
        ),
        (37.0, r#"{"type":"select_preset","preset":"bright"}"#),
    ]
    .into_iter()
    .peekable();
    while next_pos < start + seconds * u64::from(RATE) {
        let (h, samples) = next_audio(&mut ws, T).await;
        assert_eq!(h.position_frames, next_pos, "the capture is contiguous");
        captured.extend_from_slice(&samples);
        next_pos += samples.len() as u64 / 2;
        let at_s = next_pos as f64 / f64::from(RATE);
        if let Some((_, body)) = changes.next_if(|(s, _)| *s <= at_s) {
            control(addr, body);
        }
    }
    drop(ws);
    let log = Arc::clone(&bridge.state().recording.as_ref().expect("recording").log);
    let events = log.events_between(0, next_pos);
    let has_level = events.iter().any(|e| {
        matches!(
            e,
            JournalEvent::Level {
                level: Level::Overload,
                ..
            }
        )
    });
    assert!(has_level, "the level changed");
    let phrase_starts: HashMap<u64, u64> = events
        .iter()
        .filter_map(|e| match e {
            JournalEvent::Phrase { frame, key } => Some((key.index, *frame)),
            _ => None,
        })
        .collect();
    let late = events.iter().filter_map(|e| match e {
        JournalEvent::Texture { frame, key } => phrase_starts
            .get(&key.phrase.index)
            .filter(|start| *frame > **start)
            .map(|start| (key.phrase.index, frame - start)),
        _ => None,
    });
    let late: Vec<(u64, u64)> = late.collect();
    // Not the first phrase's (nothing is ready at the very start): one that the
    // failed render held up, taken half a second or more into its phrase.
    assert!(
        late.iter()
            .any(|&(index, by)| index > 0 && by >= u64::from(RATE) / 2),
        "a texture came late: {late:?}"
    );

    // The follower has checkpoints by now: the whole stretch replays from the
    // start, its second half from a checkpoint.
    let checkpoints = eventually_checkpoints(&log, seconds / 7 - 1).await;
    let middle = start + (next_pos - start) / 2;
    for from in [start, middle] {
        let started = Instant::now();
        let (code, headers, body) = fetch(
            addr,
            &format!("/api/recording?from={from}&to={next_pos}&format=wav"),
            Duration::from_secs(120),
        );
        let wall = started.elapsed();
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        assert!(
            headers["content-disposition"].contains("auralis-"),
            "{headers:?}"
        );
        let recorded = wav_samples(&body);
        let heard = &captured[(from - start) as usize * 2..];
        assert_eq!(recorded.len(), heard.len(), "as long as the capture");
        let mismatches = recorded
            .iter()
            .zip(heard)
            .filter(|(r, c)| **r != quantized(**c))
            .count();
        let worst = recorded
            .iter()
            .zip(heard)
            .map(|(r, c)| (f64::from(*r) / 8_388_607.0 - f64::from(*c)).abs())
            .fold(0.0f64, f64::max);
        let worst_db = 20.0 * worst.max(1e-30).log10();
        eprintln!(
            "recording of frames {from}..{next_pos} ({:.1} s, {checkpoints} checkpoints kept): \
             {mismatches} of {} samples differ from the 24-bit capture; worst difference \
             from the f32 capture {worst_db:.1} dBFS; late textures {late:?}; rendered in {wall:?}",
            (next_pos - from) as f64 / f64::from(RATE),
            recorded.len()
        );
        assert_eq!(mismatches, 0, "bit-exact at 24 bits");
        assert!(worst_db < -100.0, "{worst_db} dBFS");
    }
    bridge.shutdown().await;
}

/// Bad requests: each gets a 400, 416, 409 or 429 with a message naming the
/// problem (and what is available), and the stream goes on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_the_stream_goes_on() {
    let bridge = common::start(Config {
        recording_renders: 1,
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "?codec=f32").await;
    next_json(&mut ws, "hello", T).await;
    let (h0, _) = next_audio(&mut ws, T).await;
    for (query, code, says) in [
        ("seconds=0", 400, "from 1 to 3600"),
        ("seconds=99999", 400, "from 1 to 3600"),
        ("seconds=abc", 400, "whole number"),
        ("from=9000&to=100", 400, "before to"),
        ("seconds=5&format=flac", 400, "wav or opus"),
        ("seconds=3600", 416, "available"),
        ("from=100000000&to=100000100", 416, "available"),
    ] {
        let (got, body) = get_json(addr, &format!("/api/recording?{query}"));
        assert_eq!(got, code, "{query}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {body}");
        if code == 416 {
            assert!(body["available"]["to"].as_u64().is_some(), "{body}");
        }
    }
    // A flood: one render at a time, the rest are told to come back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flood: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let (code, headers, _) =
                    fetch(addr, "/api/recording?seconds=1", Duration::from_secs(60));
                (code, headers.get("retry-after").cloned())
            })
        })
        .collect();
    let answers: Vec<(u16, Option<String>)> = flood
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    assert!(answers.iter().any(|(c, _)| *c == 200), "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(c, r)| *c == 200 || (*c == 429 && r.is_some())),
        "{answers:?}"
    );
    // The stream went on, without a gap, through all of it.
    let mut next = h0.position_frames + u64::from(h0.frames);
    for _ in 0..10 {
        let (h, _) = next_audio(&mut ws, T).await;
        if h.position_frames > next {
            panic!("gap in the stream at {next}");
        }
        next = h.position_frames + u64::from(h.frames);
    }
    bridge.shutdown().await;
}

/// A `shm:` source cannot be replayed: 409 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_stream_cannot_be_recorded() {
    let source = TestSource::new("daw", RATE, |_, interleaved| {
        interleaved.fill(0.0);
        FillReport::default()
    })
    .kind("shm");
    let bridge = auralis_bridge::start_with_source(common::config(), Box::new(source))
        .await
        .expect("start");
    let (code, body) = get_json(bridge.local_addr(), "/api/recording?seconds=5");
    assert_eq!(code, 409, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("cannot be replayed"));
    bridge.shutdown().await;
}
