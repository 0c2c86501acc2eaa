//! Evidence that a recovery lost nothing: a listener that records every frame it
//! receives while a fault is injected elsewhere, checks on what it recorded
//! (contiguous sequence, finite and continuous audio), the Prometheus counters,
//! and the JSON log files of a `--log-dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auralis_bridge::protocol::{decode_payload, FrameHeader};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{connect, next_json};

/// Longest a healthy listener may wait for its next message.
const STARVED_AFTER: Duration = Duration::from_secs(5);
/// Quietest 100 ms of music still counted as sound (RMS).
const SILENCE_RMS: f32 = 1e-4;

/// What a listener received.
#[derive(Debug, Default)]
pub struct Recording {
    /// Audio frames in arrival order: header and interleaved samples.
    pub chunks: Vec<(FrameHeader, Vec<f32>)>,
    /// `status` messages in arrival order.
    pub statuses: Vec<Value>,
    /// Heartbeat pings received (each answered with a `pong`).
    pub pings: usize,
}

impl Recording {
    /// Every chunk follows the one before it: nothing was lost.
    pub fn assert_contiguous(&self) {
        assert!(!self.chunks.is_empty(), "no audio recorded");
        for pair in self.chunks.windows(2) {
            let (a, b) = (&pair[0].0, &pair[1].0);
            assert_eq!(b.seq, a.seq + 1, "sequence gap after chunk {}", a.seq);
            assert_eq!(
                b.position_frames,
                a.position_frames + u64::from(a.frames),
                "stream position jumps after chunk {}",
                a.seq
            );
        }
    }

    /// The audio is sound music: every sample finite; after the first `settle`
    /// chunks no chunk is silent unless `silent_ok(seq)` documents it; and no seam
    /// between two chunks steps further than the music itself steps inside a chunk
    /// (a lost, repeated or corrupted chunk shows as such a step).
    pub fn assert_continuous(&self, settle: usize, silent_ok: impl Fn(u64) -> bool) {
        assert!(
            self.chunks.len() > settle + 2,
            "only {} chunks recorded",
            self.chunks.len()
        );
        for (h, samples) in &self.chunks {
            assert!(
                samples.iter().all(|x| x.is_finite()),
                "chunk {} is not finite",
                h.seq
            );
        }
        let sound = &self.chunks[settle..];
        let channels = usize::from(sound[0].0.channels.max(1));
        let mut inner_step = 0.0f32;
        for (h, samples) in sound.iter().filter(|(h, _)| !silent_ok(h.seq)) {
            assert!(
                super::rms(samples) > SILENCE_RMS,
                "chunk {} is silent (level {}, flags {})",
                h.seq,
                h.level,
                h.flags
            );
            inner_step = inner_step.max(max_step(samples, channels));
        }
        for pair in sound.windows(2) {
            let ((a, xa), (b, xb)) = (&pair[0], &pair[1]);
            if silent_ok(a.seq) || silent_ok(b.seq) {
                continue;
            }
            for c in 0..channels {
                let (last, first) = (xa[xa.len() - channels + c], xb[c]);
                let seam = (first - last).abs();
                assert!(
                    seam <= inner_step * 1.5 + 1e-3,
                    "a step of {seam} between chunks {} and {} (channel {c}); the music's \
                     own largest step is {inner_step}",
                    a.seq,
                    b.seq
                );
            }
        }
    }

    /// The degradation level of every chunk, in order.
    pub fn levels(&self) -> Vec<u8> {
        self.chunks.iter().map(|(h, _)| h.level).collect()
    }
}

/// Largest sample-to-sample step of one channel of interleaved audio.
fn max_step(interleaved: &[f32], channels: usize) -> f32 {
    (0..channels)
        .map(|c| {
            let channel: Vec<f32> = interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .copied()
                .collect();
            channel
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

/// A healthy client that keeps listening in the background, answering pings,
/// until [`Listener::finish`].
pub struct Listener {
    /// Its id, from `hello`.
    pub client_id: u64,
    /// The number of chunks to stop at, once set.
    stop: watch::Sender<Option<usize>>,
    task: JoinHandle<Recording>,
}

impl Listener {
    /// Connects to `/ws/stream{query}` (the native protocol), reads `hello` and
    /// starts recording.
    pub async fn start(addr: SocketAddr, query: &str) -> Self {
        let mut ws = connect(addr, query).await;
        let hello = next_json(&mut ws, "hello", STARVED_AFTER).await;
        let client_id = hello["client_id"].as_u64().expect("hello names the client");
        let (stop, mut stopped) = watch::channel(None::<usize>);
        let task = tokio::spawn(async move {
            let mut recording = Recording::default();
            loop {
                if stopped
                    .borrow_and_update()
                    .is_some_and(|at| recording.chunks.len() >= at)
                {
                    break;
                }
                let message = tokio::select! {
                    Ok(()) = stopped.changed() => continue,
                    m = tokio::time::timeout(STARVED_AFTER, ws.next()) => m,
                };
                match message {
                    Ok(Some(Ok(Message::Binary(b)))) => {
                        let (h, payload) = FrameHeader::parse(&b).expect("a valid audio frame");
                        recording.chunks.push((h, decode_payload(h.codec, payload)));
                    }
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                        match v["type"].as_str() {
                            Some("ping") => {
                                recording.pings += 1;
                                ws.send(Message::text(r#"{"type":"pong"}"#))
                                    .await
                                    .expect("answer the ping");
                            }
                            Some("status") => recording.statuses.push(v),
                            _ => {}
                        }
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        panic!("client {client_id}: a healthy listener was closed: {frame:?}")
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => panic!("client {client_id}: read failed: {e}"),
                    Ok(None) => panic!("client {client_id}: the stream ended"),
                    Err(_) => panic!("client {client_id}: starved for {STARVED_AFTER:?}"),
                }
            }
            // Leave politely; the bridge may be gone already.
            let _ = ws.close(None).await;
            recording
        });
        Self {
            client_id,
            stop,
            task,
        }
    }

    /// Stops listening once it has at least `at_least` chunks and returns what
    /// was received (panics with the listener's own complaint if it was closed,
    /// starved or sent garbage).
    pub async fn finish(self, at_least: usize) -> Recording {
        self.stop.send_replace(Some(at_least));
        self.task.await.expect("the listener ran to the end")
    }
}

/// The value of the Prometheus sample `series` (a name with its labels, if any).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("/metrics has no {series}:\n{text}"))
}

/// `GET /metrics` and the value of `series`.
pub fn get_metric(addr: SocketAddr, series: &str) -> f64 {
    let (code, text) = super::http(addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200, "{text}");
    metric(&text, series)
}

/// An empty directory of its own under the system's temporary directory.
pub fn fresh_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "auralis-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover of an earlier run with the same process id.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// The JSON lines of a log directory: the main log and the error log.
#[derive(Debug, Default)]
pub struct Logs {
    /// Every line of `auralis-bridge.*.log`.
    pub main: Vec<Value>,
    /// Every line of `errors.*.log`.
    pub errors: Vec<Value>,
}

impl Logs {
    /// Reads every log file in `dir`; each line must be one JSON object.
    pub fn read(dir: &Path) -> Self {
        let mut logs = Self::default();
        let entries = std::fs::read_dir(dir).expect("the log directory exists");
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let into = if name.starts_with("auralis-bridge") {
                &mut logs.main
            } else if name.starts_with("errors") {
                &mut logs.errors
            } else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("read a log file");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}: a line that is not JSON ({e}): {line}"));
                assert!(value.is_object(), "{name}: {line}");
                into.push(value);
            }
        }
        logs
    }

    /// The lines of `lines` whose message contains `text`.
    pub fn with_message<'a>(lines: &'a [Value], text: &str) -> Vec<&'a Value> {
        lines
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(text))
            })
            .collect()
    }
}

/// The client id a log line was written for (its `client` span).
pub fn span_client(line: &Value) -> Option<u64> {
    line["span"]["id"].as_u64()
}
