//! Audio sources and the pump thread that drives them.
//!
//! A [`Source`] fills chunks of interleaved audio on request and takes control
//! changes. The pump runs a source on its own OS thread at real-time pace, one chunk
//! ahead of a monotonic clock: chunk *k* is due at `start + k·d − d`, computed from
//! the start instant and never by adding up sleeps, so the stream does not drift. It
//! checks every chunk (finite, |x| ≤ 1; otherwise silence, counted) and publishes it
//! to the [`Hub`] without ever waiting for a client.
//!
//! Two sources: the [`EmbeddedSource`] (the engine inside the bridge) and the
//! [`ShmSource`] (a plugin in a DAW, through shared memory: it reports `idle` and
//! fills silence when its writer goes quiet, and refuses control when the plugin's
//! remote control is off). When a source turns idle or live again, every client
//! gets a `status` message at once, with the reason.

mod embedded;
pub mod shm;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auralis::compose::phrase::{ComposeParams, ParamError};
use auralis::compose::presets::Preset;
use auralis::degrade::Level;
use auralis::engine::{RendererProbe, RendererStatus};
use auralis::render::mix::MixLevels;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

pub use self::embedded::EmbeddedSource;
pub use self::shm::{ReaderStats, ShmSource};
use crate::hub::{Chunk, Hub};
use crate::protocol::{
    params_json, params_message, Codec, ErrorCode, FrameHeader, ParamUpdate, ProtocolError,
    StatusInfo, FLAG_FALLBACK, FLAG_IDLE,
};

/// What a source produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Stream name (`embedded`, or the shared-memory stream's name).
    pub name: String,
    /// `embedded` or `shm`.
    pub kind: &'static str,
    /// Sample rate in hertz.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
}

/// What a source says about the chunk it just filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillReport {
    /// No live audio: the chunk is silence.
    pub idle: bool,
    /// The chunk is fallback audio.
    pub fallback: bool,
    /// The source's degradation level.
    pub level: Level,
    /// The phrase playing, when known.
    pub phrase_index: Option<u64>,
}

/// The parameters a source plays with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamsSnapshot {
    /// Musical parameters.
    pub compose: ComposeParams,
    /// Mix levels.
    pub levels: MixLevels,
    /// The preset last selected, if the parameters still are that preset's.
    pub preset: Option<&'static str>,
}

impl ParamsSnapshot {
    /// The JSON form used by `hello`, `params` and `/api/status`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        params_json(&self.compose, &self.levels, self.preset)
    }
}

/// A control change for a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceCommand {
    /// Change some musical parameters.
    Update(ParamUpdate),
    /// Switch to a preset (musical parameters and levels).
    Preset(&'static Preset),
}

/// Something that produces audio chunks for the pump.
pub trait Source: Send + 'static {
    /// What it produces.
    fn info(&self) -> SourceInfo;
    /// Fills `interleaved` (frames × channels) with the next audio. Must not block
    /// for long: the pump calls it on its real-time schedule.
    fn fill(&mut self, interleaved: &mut [f32]) -> FillReport;
    /// Applies a control change (from the next phrase).
    ///
    /// # Errors
    /// [`ProtocolError`] naming the field that is out of range, or saying why the
    /// source cannot be controlled. Nothing changes then.
    fn apply(&mut self, command: SourceCommand) -> Result<ParamsSnapshot, ProtocolError>;
    /// The parameters in force.
    fn params(&self) -> ParamsSnapshot;
    /// Why the source is idle, when it is and knows why.
    fn idle_reason(&self) -> Option<String> {
        None
    }
    /// The shared-memory reader's counters, for a source that has them.
    fn reader_stats(&self) -> Option<Arc<ReaderStats>> {
        None
    }
    /// A reader of the texture pre-renderer's state, for a source that has one.
    fn renderer(&self) -> Option<RendererProbe> {
        None
    }
}

/// The protocol error for a parameter out of range.
fn param_error(e: &ParamError) -> ProtocolError {
    let ParamError::OutOfRange { name, .. } = e;
    ProtocolError::field(ErrorCode::OutOfRange, name, e.to_string())
}

/// A request to the pump thread.
#[derive(Debug)]
enum PumpRequest {
    Apply(
        SourceCommand,
        oneshot::Sender<Result<ParamsSnapshot, ProtocolError>>,
    ),
}

/// Handle to the running pump thread.
#[derive(Debug)]
pub struct Pump {
    requests: SyncSender<PumpRequest>,
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    info: SourceInfo,
    frames_per_chunk: u32,
    params: Arc<std::sync::Mutex<ParamsSnapshot>>,
    alive: Arc<watch::Sender<bool>>,
    reader_stats: Option<Arc<ReaderStats>>,
    renderer: Option<RendererProbe>,
}

/// Marks the source dead when the pump thread ends, however it ends (a panic too).
struct AliveGuard(Arc<watch::Sender<bool>>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// The pump thread could not start.
#[derive(Debug, thiserror::Error)]
#[error("could not start the source thread: {0}")]
pub struct PumpError(#[source] pub std::io::Error);

/// How far ahead of real time chunks are produced, in chunks.
const LEAD_CHUNKS: u64 = 1;
/// Chunks over which the recent error rate is measured.
const RECENT_WINDOW: usize = 100;
/// Falling this far behind resets the schedule instead of bursting to catch up.
const MAX_BEHIND: Duration = Duration::from_secs(1);

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether every sample is finite and within [-1, 1].
#[must_use]
pub fn chunk_is_valid(samples: &[f32]) -> bool {
    samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0)
}

impl Pump {
    /// Starts the thread that runs `source` in chunks of `frames_per_chunk` frames
    /// and publishes them to `hub`.
    ///
    /// # Errors
    /// [`PumpError`] when the thread cannot be spawned.
    pub fn spawn(
        mut source: Box<dyn Source>,
        frames_per_chunk: u32,
        hub: Arc<Hub>,
    ) -> Result<Self, PumpError> {
        let (requests, inbox) = mpsc::sync_channel::<PumpRequest>(32);
        let stop = Arc::new(AtomicBool::new(false));
        let info = source.info();
        let reader_stats = source.reader_stats();
        let renderer = source.renderer();
        let params = Arc::new(std::sync::Mutex::new(source.params()));
        let alive = Arc::new(watch::Sender::new(true));
        let thread = {
            let guard = AliveGuard(Arc::clone(&alive));
            let stop = Arc::clone(&stop);
            let info = info.clone();
            let params = Arc::clone(&params);
            std::thread::Builder::new()
                .name("auralis-source".into())
                .spawn(move || {
                    let _guard = guard;
                    let mut runner = Runner {
                        source: source.as_mut(),
                        hub: &hub,
                        info: &info,
                        frames: frames_per_chunk,
                        params: &params,
                        bad_logged: 0,
                        recent: std::collections::VecDeque::with_capacity(RECENT_WINDOW),
                        idle: None,
                    };
                    runner.run(&inbox, &stop);
                })
                .map_err(PumpError)?
        };
        Ok(Self {
            requests,
            stop,
            thread: std::sync::Mutex::new(Some(thread)),
            info,
            frames_per_chunk,
            params,
            alive,
            reader_stats,
            renderer,
        })
    }

    /// The texture pre-renderer's state (embedded sources with the texture on).
    #[must_use]
    pub fn renderer(&self) -> Option<RendererStatus> {
        self.renderer.as_ref().map(RendererProbe::status)
    }

    /// The shared-memory reader's counters (`shm` sources only).
    #[must_use]
    pub fn reader_stats(&self) -> Option<&ReaderStats> {
        self.reader_stats.as_deref()
    }

    /// Watches whether the source thread runs: turns `false` when it ends.
    #[must_use]
    pub fn watch_alive(&self) -> watch::Receiver<bool> {
        self.alive.subscribe()
    }

    /// What the source produces.
    #[must_use]
    pub const fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Frames per chunk.
    #[must_use]
    pub const fn frames_per_chunk(&self) -> u32 {
        self.frames_per_chunk
    }

    /// Duration of one chunk.
    #[must_use]
    pub fn chunk_duration(&self) -> Duration {
        Duration::from_secs_f64(
            f64::from(self.frames_per_chunk) / f64::from(self.info.sample_rate.max(1)),
        )
    }

    /// The parameters in force.
    #[must_use]
    pub fn params(&self) -> ParamsSnapshot {
        *self
            .params
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the thread is still running: false from the moment the source gives
    /// up (the same flag that closes clients with 1011), not only once the thread
    /// has finished unwinding.
    #[must_use]
    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    /// Asks the source to apply `command` and waits (up to `timeout`) for its answer.
    ///
    /// # Errors
    /// The source's [`ProtocolError`], or `unavailable` when the thread is busy,
    /// stopped or does not answer in time.
    pub async fn apply(
        &self,
        command: SourceCommand,
        timeout: Duration,
    ) -> Result<ParamsSnapshot, ProtocolError> {
        let (tx, rx) = oneshot::channel();
        let unavailable = |why: &str| {
            ProtocolError::new(
                ErrorCode::Unavailable,
                format!("the source cannot take the change now: {why}"),
            )
        };
        match self.requests.try_send(PumpRequest::Apply(command, tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(unavailable("too many pending changes")),
            Err(TrySendError::Disconnected(_)) => return Err(unavailable("it has stopped")),
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("it has stopped")),
            Err(_) => Err(unavailable("no answer in time")),
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("the source thread panicked");
            }
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pump thread's state.
struct Runner<'a> {
    source: &'a mut dyn Source,
    hub: &'a Hub,
    info: &'a SourceInfo,
    frames: u32,
    params: &'a std::sync::Mutex<ParamsSnapshot>,
    bad_logged: u64,
    /// Validity of the last [`RECENT_WINDOW`] chunks (true: bad).
    recent: std::collections::VecDeque<bool>,
    /// Whether the last chunk was idle (`None` before the first).
    idle: Option<bool>,
}

impl Runner<'_> {
    /// Stream time of the start of chunk `k`, exact (no accumulated rounding).
    fn offset(&self, k: u64) -> Duration {
        let ns = u128::from(k) * u128::from(self.frames) * 1_000_000_000
            / u128::from(self.info.sample_rate.max(1));
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn handle(&mut self, request: PumpRequest) {
        match request {
            PumpRequest::Apply(command, reply) => {
                let result = self.source.apply(command);
                if let Ok(p) = &result {
                    *self
                        .params
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = *p;
                }
                // The asker may have given up waiting; the change stands either way.
                let _ = reply.send(result);
            }
        }
    }

    fn run(&mut self, inbox: &mpsc::Receiver<PumpRequest>, stop: &AtomicBool) {
        let channels = usize::from(self.info.channels);
        let frames = self.frames as usize;
        let chunk = self.offset(1);
        let mut start = Instant::now();
        let mut k: u64 = 0;
        tracing::info!(
            source = %self.info.name,
            sample_rate = self.info.sample_rate,
            frames_per_chunk = frames,
            "source started"
        );
        while !stop.load(Ordering::Acquire) {
            let due = start + self.offset(k.saturating_sub(LEAD_CHUNKS));
            // Wait for the chunk's time, serving control requests meanwhile.
            loop {
                let now = Instant::now();
                if now >= due || stop.load(Ordering::Acquire) {
                    break;
                }
                match inbox.recv_timeout((due - now).min(Duration::from_millis(50))) {
                    Ok(request) => self.handle(request),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            while let Ok(request) = inbox.try_recv() {
                self.handle(request);
            }
            let late = Instant::now().saturating_duration_since(due);
            if late > MAX_BEHIND.max(chunk * 4) {
                tracing::warn!(
                    late_ms = late.as_millis() as u64,
                    "source fell behind real time; resetting its schedule"
                );
                self.hub
                    .stats
                    .schedule_resets
                    .fetch_add(1, Ordering::Relaxed);
                start = Instant::now() - self.offset(k.saturating_sub(LEAD_CHUNKS));
            }
            let mut samples = vec![0.0f32; frames * channels];
            let t0 = Instant::now();
            let report = self.source.fill(&mut samples);
            let render = t0.elapsed();
            let stats = &self.hub.stats;
            stats
                .render_ns_last
                .store(render.as_nanos() as u64, Ordering::Relaxed);
            stats
                .render_ns_total
                .fetch_add(render.as_nanos() as u64, Ordering::Relaxed);
            stats
                .audio_ns_total
                .fetch_add(chunk.as_nanos() as u64, Ordering::Relaxed);
            if let Some(p) = report.phrase_index {
                stats.phrase_index.store(p, Ordering::Relaxed);
            }
            let valid = chunk_is_valid(&samples);
            if self.recent.len() == RECENT_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(!valid);
            let recent_bad = self.recent.iter().filter(|b| **b).count();
            stats.recent_bad.store(recent_bad as u64, Ordering::Relaxed);
            stats
                .recent_total
                .store(self.recent.len() as u64, Ordering::Relaxed);
            if !valid {
                stats.bad_chunks.fetch_add(1, Ordering::Relaxed);
                self.bad_logged += 1;
                // Log the first few, then every hundredth, so a broken source cannot
                // flood the logs.
                if self.bad_logged <= 5 || self.bad_logged.is_multiple_of(100) {
                    tracing::error!(
                        seq = k,
                        count = self.bad_logged,
                        "source produced a non-finite or out-of-range chunk; sent silence instead"
                    );
                }
                samples.fill(0.0);
            }
            let mut flags = 0;
            if report.idle {
                flags |= FLAG_IDLE;
            }
            if report.fallback {
                flags |= FLAG_FALLBACK;
            }
            let header = FrameHeader {
                codec: Codec::S16,
                channels: self.info.channels,
                sample_rate: self.info.sample_rate,
                seq: k,
                position_frames: k * u64::from(self.frames),
                server_time_s: unix_now_s(),
                frames: self.frames,
                level: report.level as u8,
                flags,
            };
            let chunk = Chunk::new(header, samples);
            // Most listeners use the default codec: encode it here, off the clients'
            // tasks.
            let _ = chunk.frame(Codec::S16);
            self.hub.publish(Arc::new(chunk));
            self.announce_changes(k, &report);
            k += 1;
        }
        tracing::info!(chunks = k, "source stopped");
    }

    /// Tells every client at once (a `status` message with the reason) when the
    /// source turns idle or live again, and announces parameters that a source
    /// changed by itself (a plugin's host moving them).
    fn announce_changes(&mut self, seq: u64, report: &FillReport) {
        let was_idle = self.idle.replace(report.idle);
        if was_idle != Some(report.idle) && (was_idle.is_some() || report.idle) {
            let reason = self.source.idle_reason();
            if report.idle {
                tracing::warn!(reason = reason.as_deref(), "source idle");
            } else {
                tracing::info!("source streaming again");
            }
            let info = StatusInfo {
                state: if report.idle { "idle" } else { "streaming" },
                level: report.level.name(),
                buffer_depth: 0,
                dropped: 0,
                clients: self.hub.client_count(),
                seq,
                phrase_index: report.phrase_index,
            };
            let mut message = serde_json::to_value(&info).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut message {
                m.insert("type".into(), Value::from("status"));
                m.insert("reason".into(), reason.map_or(Value::Null, Value::from));
            }
            self.hub.announce(message.to_string());
        }
        let params = self.source.params();
        let mut cached = self
            .params
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *cached != params {
            *cached = params;
            drop(cached);
            self.hub
                .announce(params_message(&params.to_json(), "next_phrase"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that counts and can be told to produce garbage.
    struct Test {
        poison: bool,
        n: u64,
    }

    impl Source for Test {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                name: "test".into(),
                kind: "test",
                sample_rate: 8000,
                channels: 2,
            }
        }
        fn fill(&mut self, interleaved: &mut [f32]) -> FillReport {
            self.n += 1;
            interleaved.fill(if self.poison && self.n.is_multiple_of(2) {
                f32::NAN
            } else {
                0.5
            });
            FillReport::default()
        }
        fn apply(&mut self, _: SourceCommand) -> Result<ParamsSnapshot, ProtocolError> {
            Err(ProtocolError::new(ErrorCode::Unavailable, "test source"))
        }
        fn params(&self) -> ParamsSnapshot {
            ParamsSnapshot {
                compose: ComposeParams::default(),
                levels: MixLevels::default(),
                preset: None,
            }
        }
    }

    #[test]
    fn bad_chunks_become_silence_and_are_counted() {
        let hub = Arc::new(Hub::new(64, 4));
        let mut rx = hub.subscribe_audio();
        // 160 frames at 8 kHz: 20 ms chunks.
        let pump = Pump::spawn(Box::new(Test { poison: true, n: 0 }), 160, Arc::clone(&hub))
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 6 && Instant::now() < deadline {
            match rx.try_recv() {
                Ok(c) => got.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        pump.stop();
        assert!(got.len() >= 6, "only {} chunks", got.len());
        for (i, c) in got.iter().enumerate() {
            assert_eq!(c.header.seq, i as u64, "contiguous");
            assert!(chunk_is_valid(&c.samples));
            let silent = c.samples.iter().all(|&x| x == 0.0);
            assert_eq!(silent, i % 2 == 1, "chunk {i}");
        }
        assert!(hub.stats.bad_chunks.load(Ordering::Relaxed) >= 3);
    }

    #[test]
    fn pacing_follows_the_clock() {
        let hub = Arc::new(Hub::new(64, 4));
        let mut rx = hub.subscribe_audio();
        let t0 = Instant::now();
        let pump = Pump::spawn(
            Box::new(Test {
                poison: false,
                n: 0,
            }),
            160,
            Arc::clone(&hub),
        )
        .expect("spawn");
        let mut last = 0;
        while last < 25 && t0.elapsed() < Duration::from_secs(5) {
            match rx.try_recv() {
                Ok(c) => last = c.header.seq,
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        let elapsed = t0.elapsed();
        pump.stop();
        // Chunk 25 is due at 24 × 20 ms = 480 ms (one chunk of lead).
        assert!(
            elapsed >= Duration::from_millis(470) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
    }
}
