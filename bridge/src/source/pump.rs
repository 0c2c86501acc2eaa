//! The pump: runs a [`Source`] on its own OS thread at real-time pace, one chunk
//! ahead of a monotonic clock: chunk *k* is due at `start + k·d − d`, computed from
//! the start instant and never by adding up sleeps, so the stream does not drift.
//! Each chunk goes through three steps: waiting for its time (serving control
//! requests meanwhile), filling and checking it (finite, |x| ≤ 1; otherwise
//! silence, counted), and publishing it to the [`Hub`] without ever waiting for a
//! client.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auralis::engine::{RendererProbe, RendererStatus};
use tokio::sync::{oneshot, watch};

use super::{
    chunk_is_valid, FillReport, ParamsSnapshot, ReaderStats, Source, SourceCommand, SourceError,
    SourceInfo,
};
use crate::codec::ogg::OggHeaders;
use crate::codec::{CodecError, Encodings, StreamEncoder};
use crate::hub::{Chunk, Hub};
use crate::metrics::SourceState;
use crate::protocol::{
    params_message, source_status_message, Codec, FrameHeader, StatusInfo, FLAG_FALLBACK, FLAG_IDLE,
};
use crate::recording::EventLog;

/// A request to the pump thread.
#[derive(Debug)]
enum PumpRequest {
    Apply(
        SourceCommand,
        oneshot::Sender<Result<ParamsSnapshot, SourceError>>,
    ),
}

/// Handle to the running pump thread.
#[derive(Debug)]
pub struct Pump {
    requests: SyncSender<PumpRequest>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    info: SourceInfo,
    frames_per_chunk: u32,
    ogg: OggHeaders,
    params: Arc<Mutex<ParamsSnapshot>>,
    alive: Arc<watch::Sender<bool>>,
    reader_stats: Option<Arc<ReaderStats>>,
    renderer: Option<RendererProbe>,
    recording: Option<Arc<EventLog>>,
}

/// Marks the source dead when the pump thread ends, however it ends (a panic too).
struct AliveGuard(Arc<watch::Sender<bool>>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// The pump could not start.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The thread could not be spawned.
    #[error("could not start the source thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The stream's Opus encoder refused the source's format.
    #[error("could not set up the stream's Opus encoding: {0}")]
    Codec(#[from] CodecError),
}

/// How far ahead of real time chunks are produced, in chunks.
const LEAD_CHUNKS: u64 = 1;
/// Chunks over which the recent error rate is measured.
const RECENT_WINDOW: usize = 100;
/// Falling this far behind resets the schedule instead of bursting to catch up.
const MAX_BEHIND: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a single store, so a poisoned lock still holds a whole value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pump {
    /// Starts the thread that runs `source` in chunks of `frames_per_chunk` frames,
    /// encodes them in Opus at `opus_kbps` too, and publishes them to `hub`.
    ///
    /// # Errors
    /// [`PumpError`] when the thread cannot be spawned or the Opus encoder refuses
    /// the source's format.
    pub fn spawn(
        mut source: Box<dyn Source>,
        frames_per_chunk: u32,
        opus_kbps: u32,
        hub: Arc<Hub>,
    ) -> Result<Self, PumpError> {
        let (requests, inbox) = mpsc::sync_channel::<PumpRequest>(32);
        let stop = Arc::new(AtomicBool::new(false));
        let info = source.info();
        // Opus and the Ogg pages take at most two channels (mapping family 0).
        let ogg = OggHeaders::new(u8::try_from(info.channels).unwrap_or(u8::MAX));
        let encoder = StreamEncoder::new(info.sample_rate, info.channels, opus_kbps, ogg)?;
        let reader_stats = source.reader_stats();
        let renderer = source.renderer();
        let recording = source.recording();
        let params = Arc::new(Mutex::new(source.params()));
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
                    Runner::new(
                        source.as_mut(),
                        &hub,
                        &info,
                        frames_per_chunk,
                        &params,
                        encoder,
                    )
                    .run(&inbox, &stop);
                })
                .map_err(PumpError::Thread)?
        };
        Ok(Self {
            requests,
            stop,
            thread: Mutex::new(Some(thread)),
            info,
            frames_per_chunk,
            ogg,
            params,
            alive,
            reader_stats,
            renderer,
            recording,
        })
    }

    /// The log of what the source played, when it can be rendered again.
    #[must_use]
    pub fn recording(&self) -> Option<Arc<EventLog>> {
        self.recording.clone()
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

    /// What a new `/stream.opus` listener's header pages say.
    #[must_use]
    pub const fn ogg_headers(&self) -> OggHeaders {
        self.ogg
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
        *lock(&self.params)
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
    /// The source's [`SourceError`], or [`SourceError::Unavailable`] when the thread
    /// is busy, stopped or does not answer in time.
    pub async fn apply(
        &self,
        command: SourceCommand,
        timeout: Duration,
    ) -> Result<ParamsSnapshot, SourceError> {
        let (tx, rx) = oneshot::channel();
        let unavailable = |why: &str| {
            SourceError::Unavailable(format!("the source cannot take the change now: {why}"))
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
        let thread = lock(&self.thread).take();
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
    params: &'a Mutex<ParamsSnapshot>,
    /// Duration of one chunk.
    chunk: Duration,
    /// When chunk 0 was due (moved forward when the schedule is reset).
    start: Instant,
    bad_logged: u64,
    /// Validity of the last [`RECENT_WINDOW`] chunks (true: bad).
    recent: VecDeque<bool>,
    /// Whether the last chunk was idle (`None` before the first).
    idle: Option<bool>,
    /// The stream's Opus encoding and Ogg pages.
    encoder: StreamEncoder,
}

impl<'a> Runner<'a> {
    fn new(
        source: &'a mut dyn Source,
        hub: &'a Hub,
        info: &'a SourceInfo,
        frames: u32,
        params: &'a Mutex<ParamsSnapshot>,
        encoder: StreamEncoder,
    ) -> Self {
        let mut runner = Self {
            source,
            hub,
            info,
            frames,
            params,
            chunk: Duration::ZERO,
            start: Instant::now(),
            bad_logged: 0,
            recent: VecDeque::with_capacity(RECENT_WINDOW),
            idle: None,
            encoder,
        };
        runner.chunk = runner.offset(1);
        runner
    }

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
                    *lock(self.params) = *p;
                }
                // The asker may have given up waiting; the change stands either way.
                let _ = reply.send(result);
            }
        }
    }

    fn run(&mut self, inbox: &mpsc::Receiver<PumpRequest>, stop: &AtomicBool) {
        tracing::info!(
            source = %self.info.name,
            sample_rate = self.info.sample_rate,
            frames_per_chunk = self.frames,
            "source started"
        );
        self.start = Instant::now();
        let mut k: u64 = 0;
        while !stop.load(Ordering::Acquire) {
            if !self.wait_for(k, inbox, stop) {
                return;
            }
            let (samples, report) = self.fill_checked(k);
            self.publish(k, samples, &report);
            self.announce_changes(k, &report);
            k += 1;
        }
        tracing::info!(chunks = k, "source stopped");
    }

    /// Waits for chunk `k`'s time, serving control requests meanwhile, and resets
    /// the schedule when the source has fallen far behind. `false`: the pump's
    /// handle is gone, stop.
    fn wait_for(&mut self, k: u64, inbox: &mpsc::Receiver<PumpRequest>, stop: &AtomicBool) -> bool {
        let lead = self.offset(k.saturating_sub(LEAD_CHUNKS));
        let due = self.start + lead;
        loop {
            let now = Instant::now();
            if now >= due || stop.load(Ordering::Acquire) {
                break;
            }
            match inbox.recv_timeout((due - now).min(Duration::from_millis(50))) {
                Ok(request) => self.handle(request),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        while let Ok(request) = inbox.try_recv() {
            self.handle(request);
        }
        let late = Instant::now().saturating_duration_since(due);
        if late > MAX_BEHIND.max(self.chunk * 4) {
            tracing::warn!(
                late_ms = late.as_millis() as u64,
                "source fell behind real time; resetting its schedule"
            );
            self.hub.metrics.count_schedule_reset();
            self.start = Instant::now() - lead;
        }
        true
    }

    /// Has the source fill chunk `k`, timing it, and replaces it with silence when
    /// it fails the check.
    fn fill_checked(&mut self, k: u64) -> (Vec<f32>, FillReport) {
        let mut samples = vec![0.0f32; self.frames as usize * usize::from(self.info.channels)];
        let t0 = Instant::now();
        let report = self.source.fill(&mut samples);
        let metrics = &self.hub.metrics;
        metrics.record_render(t0.elapsed(), self.chunk);
        if let Some(p) = report.phrase_index {
            metrics.set_phrase_index(p);
        }
        metrics.set_run_mode(report.run_mode);
        if !self.check(k, &samples) {
            samples.fill(0.0);
        }
        (samples, report)
    }

    /// Whether chunk `k` is valid; counts it in the recent window, and counts and
    /// logs it when it is not.
    fn check(&mut self, k: u64, samples: &[f32]) -> bool {
        let valid = chunk_is_valid(samples);
        if self.recent.len() == RECENT_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(!valid);
        let recent_bad = self.recent.iter().filter(|b| **b).count();
        let metrics = &self.hub.metrics;
        metrics.set_recent(recent_bad as u64, self.recent.len() as u64);
        if !valid {
            metrics.count_bad_chunk();
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
        }
        valid
    }

    /// Publishes chunk `k` to every client, with its default encoding, its Opus
    /// and its compatibility texts made here.
    fn publish(&mut self, k: u64, samples: Vec<f32>, report: &FillReport) {
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
            server_time_s: crate::unix_now_s(),
            frames: self.frames,
            level: report.level as u8,
            flags,
        };
        let encoding = Instant::now();
        let opus = self.encoder.encode_opus(&header, &samples);
        self.hub.metrics.record_opus_encode(encoding.elapsed());
        if opus.failed {
            self.hub.metrics.count_opus_failure();
        }
        let encodings = Encodings {
            opus,
            compat: self.encoder.encode_compat(&header, &samples),
        };
        let chunk = Chunk::new(header, samples).with_encodings(encodings);
        // Most listeners use the default codec: encode it here, off the clients'
        // tasks.
        let _ = chunk.frame(Codec::S16);
        self.hub.publish(Arc::new(chunk));
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
                state: SourceState::from_idle(report.idle).name(),
                level: report.level.name(),
                buffer_depth: 0,
                dropped: 0,
                clients: self.hub.client_count(),
                seq,
                phrase_index: report.phrase_index,
            };
            self.hub
                .announce(source_status_message(&info, reason.as_deref()));
        }
        let params = self.source.params();
        let mut cached = lock(self.params);
        if *cached != params {
            *cached = params;
            drop(cached);
            self.hub
                .announce(params_message(&params.to_json(), "next_phrase"));
        }
    }
}
