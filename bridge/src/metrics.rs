//! The bridge's counters: written by the source thread, the client tasks and the
//! HTTP handlers through named methods, read through one typed [`MetricsSnapshot`],
//! and exported to Prometheus from one table of rows ([`prometheus_text`]).
//!
//! Every counter is a relaxed atomic: a reader may see one counter a little ahead
//! of another, never a torn value, and no writer ever waits.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use auralis::degrade::Level;
use auralis::engine::RendererStatus;
use auralis::pacing::RunMode;
use auralis::prerender::faults::FaultKind;
use auralis::prerender::Backend;

use crate::logging::{LogState, LogStatus};

/// Why a client was disconnected, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed the connection or it dropped.
    Closed,
    /// No answer to the heartbeat.
    Heartbeat,
    /// A write took longer than the send timeout.
    SendTimeout,
    /// The client stayed behind the stream for too long.
    Lag,
    /// The server is shutting down.
    Shutdown,
    /// A protocol or server error.
    Error,
    /// A message over the size limit (closed with 1009).
    TooBig,
}

impl DisconnectReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 7] = [
        Self::Closed,
        Self::Heartbeat,
        Self::SendTimeout,
        Self::Lag,
        Self::Shutdown,
        Self::Error,
        Self::TooBig,
    ];

    /// The metric label.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Heartbeat => "heartbeat",
            Self::SendTimeout => "send_timeout",
            Self::Lag => "lag",
            Self::Shutdown => "shutdown",
            Self::Error => "error",
            Self::TooBig => "too_big",
        }
    }

    /// Position in [`Self::ALL`].
    const fn index(self) -> usize {
        self as usize
    }
}

/// Whether the source plays live audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceState {
    /// Live audio.
    #[default]
    Streaming,
    /// No live audio: the chunks are silence.
    Idle,
}

impl SourceState {
    /// The state of a chunk whose source was `idle`.
    #[must_use]
    pub const fn from_idle(idle: bool) -> Self {
        if idle {
            Self::Idle
        } else {
            Self::Streaming
        }
    }

    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Streaming => "streaming",
            Self::Idle => "idle",
        }
    }
}

/// Upper bounds of the send-latency histogram buckets, in seconds: fine enough
/// around the few milliseconds a write takes and the tens a crowd of listeners
/// adds for quantiles to be read from `/metrics` to within a few percent.
pub const LATENCY_BUCKETS_S: [f64; 20] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
];

/// Stored for "none yet" in the counters that hold an optional value.
const NONE: u64 = u64::MAX;

/// Counters shared by the source thread, the clients and the HTTP handlers.
#[derive(Debug)]
pub struct Metrics {
    chunks_produced: AtomicU64,
    chunks_sent: AtomicU64,
    chunks_dropped: AtomicU64,
    bad_chunks: AtomicU64,
    opus_failures: AtomicU64,
    recent_bad: AtomicU64,
    recent_total: AtomicU64,
    bytes_out: AtomicU64,
    control_errors: AtomicU64,
    control_applied: AtomicU64,
    clients_rejected: AtomicU64,
    disconnects: [AtomicU64; DisconnectReason::ALL.len()],
    render_ns_last: AtomicU64,
    render_ns_total: AtomicU64,
    opus_ns_total: AtomicU64,
    audio_ns_total: AtomicU64,
    schedule_resets: AtomicU64,
    send_latency_us_total: AtomicU64,
    send_latency_us_max: AtomicU64,
    /// Not cumulative: each send counts in its own bucket only.
    send_latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    last_seq: AtomicU64,
    /// Milliseconds since the hub started, or [`NONE`].
    last_chunk_ms: AtomicU64,
    level: AtomicU8,
    /// [`NONE`] while unknown.
    phrase_index: AtomicU64,
    /// The source's [`RunMode`], by its number.
    run_mode: AtomicU8,
    idle: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            chunks_produced: AtomicU64::new(0),
            chunks_sent: AtomicU64::new(0),
            chunks_dropped: AtomicU64::new(0),
            bad_chunks: AtomicU64::new(0),
            opus_failures: AtomicU64::new(0),
            recent_bad: AtomicU64::new(0),
            recent_total: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            control_errors: AtomicU64::new(0),
            control_applied: AtomicU64::new(0),
            clients_rejected: AtomicU64::new(0),
            disconnects: Default::default(),
            render_ns_last: AtomicU64::new(0),
            render_ns_total: AtomicU64::new(0),
            opus_ns_total: AtomicU64::new(0),
            audio_ns_total: AtomicU64::new(0),
            schedule_resets: AtomicU64::new(0),
            send_latency_us_total: AtomicU64::new(0),
            send_latency_us_max: AtomicU64::new(0),
            send_latency_buckets: Default::default(),
            last_seq: AtomicU64::new(0),
            last_chunk_ms: AtomicU64::new(NONE),
            level: AtomicU8::new(0),
            phrase_index: AtomicU64::new(NONE),
            run_mode: AtomicU8::new(RunMode::RealTime as u8),
            idle: AtomicBool::new(false),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn optional(counter: &AtomicU64) -> Option<u64> {
    Some(load(counter)).filter(|v| *v != NONE)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Records a chunk published: its sequence number, level and idleness, and when
    /// (time since the hub started).
    pub fn record_chunk(&self, seq: u64, level: u8, idle: bool, at: Duration) {
        add(&self.chunks_produced, 1);
        self.last_seq.store(seq, Ordering::Relaxed);
        self.level.store(level, Ordering::Relaxed);
        self.idle.store(idle, Ordering::Relaxed);
        let ms = u64::try_from(at.as_millis()).unwrap_or(NONE - 1);
        self.last_chunk_ms.store(ms, Ordering::Relaxed);
    }

    /// Records how long the source took to render `audio` worth of sound.
    pub fn record_render(&self, render: Duration, audio: Duration) {
        self.render_ns_last.store(nanos(render), Ordering::Relaxed);
        add(&self.render_ns_total, nanos(render));
        add(&self.audio_ns_total, nanos(audio));
    }

    /// Records how long the Opus encoding of one chunk took.
    pub fn record_opus_encode(&self, took: Duration) {
        add(&self.opus_ns_total, nanos(took));
    }

    /// Records the phrase playing.
    pub fn set_phrase_index(&self, phrase: u64) {
        self.phrase_index.store(phrase, Ordering::Relaxed);
    }

    /// Records how the source's engine renders.
    pub fn set_run_mode(&self, mode: RunMode) {
        self.run_mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Records the bad chunks among the `total` most recent ones.
    pub fn set_recent(&self, bad: u64, total: u64) {
        self.recent_bad.store(bad, Ordering::Relaxed);
        self.recent_total.store(total, Ordering::Relaxed);
    }

    /// Counts a chunk that failed the check and was replaced by silence.
    pub fn count_bad_chunk(&self) {
        add(&self.bad_chunks, 1);
    }

    /// Counts a chunk with an Opus packet that failed to encode (sent as silence,
    /// flagged as fallback audio).
    pub fn count_opus_failure(&self) {
        add(&self.opus_failures, 1);
    }

    /// Counts a reset of the source's schedule (it fell far behind real time).
    pub fn count_schedule_reset(&self) {
        add(&self.schedule_resets, 1);
    }

    /// Records one chunk written to a client `latency_us` after it was produced.
    pub fn record_send(&self, latency_us: u64) {
        add(&self.chunks_sent, 1);
        add(&self.send_latency_us_total, latency_us);
        self.send_latency_us_max
            .fetch_max(latency_us, Ordering::Relaxed);
        let s = latency_us as f64 * 1e-6;
        // Beyond the last bound a send counts only in the total (the `+Inf` bucket).
        if let Some(bucket) = self
            .send_latency_buckets
            .get(LATENCY_BUCKETS_S.partition_point(|b| *b < s))
        {
            add(bucket, 1);
        }
    }

    /// Counts WebSocket payload bytes written.
    pub fn add_bytes_out(&self, bytes: u64) {
        add(&self.bytes_out, bytes);
    }

    /// Counts chunks a client lost by falling behind.
    pub fn add_dropped(&self, chunks: u64) {
        add(&self.chunks_dropped, chunks);
    }

    /// Counts a rejected client message.
    pub fn count_control_error(&self) {
        add(&self.control_errors, 1);
    }

    /// Counts an applied control change.
    pub fn count_control_applied(&self) {
        add(&self.control_applied, 1);
    }

    /// Counts a connection refused at the client limit.
    pub fn count_client_rejected(&self) {
        add(&self.clients_rejected, 1);
    }

    /// Counts one disconnection.
    pub fn count_disconnect(&self, reason: DisconnectReason) {
        add(&self.disconnects[reason.index()], 1);
    }

    /// Every counter, read once.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            chunks_produced: load(&self.chunks_produced),
            chunks_sent: load(&self.chunks_sent),
            chunks_dropped: load(&self.chunks_dropped),
            bad_chunks: load(&self.bad_chunks),
            opus_failures: load(&self.opus_failures),
            recent_bad: load(&self.recent_bad),
            recent_total: load(&self.recent_total),
            bytes_out: load(&self.bytes_out),
            control_errors: load(&self.control_errors),
            control_applied: load(&self.control_applied),
            clients_rejected: load(&self.clients_rejected),
            disconnects: self.disconnects.each_ref().map(load),
            render_last: Duration::from_nanos(load(&self.render_ns_last)),
            render_ns_total: load(&self.render_ns_total),
            opus_ns_total: load(&self.opus_ns_total),
            audio_ns_total: load(&self.audio_ns_total),
            schedule_resets: load(&self.schedule_resets),
            send_latency_us_total: load(&self.send_latency_us_total),
            send_latency_us_max: load(&self.send_latency_us_max),
            send_latency_buckets: self.send_latency_buckets.each_ref().map(load),
            last_seq: load(&self.last_seq),
            last_chunk_at: optional(&self.last_chunk_ms).map(Duration::from_millis),
            level: Level::from_u8(self.level.load(Ordering::Relaxed)).unwrap_or(Level::Overload),
            phrase_index: optional(&self.phrase_index),
            run_mode: RunMode::from_u8(self.run_mode.load(Ordering::Relaxed)),
            source: SourceState::from_idle(self.idle.load(Ordering::Relaxed)),
        }
    }
}

/// The counters at one moment, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// Chunks the source produced.
    pub chunks_produced: u64,
    /// Chunk deliveries written to client sockets (one per client per chunk).
    pub chunks_sent: u64,
    /// Chunks clients lost by falling behind.
    pub chunks_dropped: u64,
    /// Chunks that failed the check (non-finite or out of range) and were replaced
    /// by silence.
    pub bad_chunks: u64,
    /// Chunks whose Opus had a packet that failed to encode.
    pub opus_failures: u64,
    /// Bad chunks among the last `recent_total` chunks.
    pub recent_bad: u64,
    /// Chunks in the recent window (up to 100).
    pub recent_total: u64,
    /// Bytes of WebSocket payload written to clients.
    pub bytes_out: u64,
    /// Control messages rejected.
    pub control_errors: u64,
    /// Control messages applied.
    pub control_applied: u64,
    /// Connections refused at the client limit.
    pub clients_rejected: u64,
    /// Disconnections, in the order of [`DisconnectReason::ALL`].
    pub disconnects: [u64; DisconnectReason::ALL.len()],
    /// Time the source spent rendering the last chunk.
    pub render_last: Duration,
    /// Total render time, in nanoseconds.
    pub render_ns_total: u64,
    /// Total Opus encoding time (resampling included), in nanoseconds.
    pub opus_ns_total: u64,
    /// Audio rendered, in nanoseconds of stream time.
    pub audio_ns_total: u64,
    /// Times the source fell so far behind that its schedule was reset.
    pub schedule_resets: u64,
    /// Microseconds from a chunk's production to its write, summed over sends.
    pub send_latency_us_total: u64,
    /// The largest such latency seen, in microseconds.
    pub send_latency_us_max: u64,
    /// Sends whose latency fell in each of [`LATENCY_BUCKETS_S`] (not cumulative).
    pub send_latency_buckets: [u64; LATENCY_BUCKETS_S.len()],
    /// Newest chunk's sequence number.
    pub last_seq: u64,
    /// When the newest chunk was published (time since the hub started), if any was.
    pub last_chunk_at: Option<Duration>,
    /// Degradation level of the newest chunk.
    pub level: Level,
    /// Phrase playing, when known.
    pub phrase_index: Option<u64>,
    /// How the source's engine renders.
    pub run_mode: RunMode,
    /// Whether the newest chunk was live or idle.
    pub source: SourceState,
}

impl MetricsSnapshot {
    /// Render time ÷ audio time over the whole run (below 1: faster than real time).
    #[must_use]
    pub fn render_rtf(&self) -> f64 {
        ratio(self.render_ns_total, self.audio_ns_total)
    }

    /// Opus encoding time ÷ audio time over the whole run: the fraction of one core
    /// the stream's single encoding costs.
    #[must_use]
    pub fn opus_encode_rtf(&self) -> f64 {
        ratio(self.opus_ns_total, self.audio_ns_total)
    }

    /// Fraction of bad chunks over the recent window.
    #[must_use]
    pub fn recent_error_rate(&self) -> f64 {
        ratio(self.recent_bad, self.recent_total)
    }

    /// Whether the newest chunk was idle.
    #[must_use]
    pub fn idle(&self) -> bool {
        self.source == SourceState::Idle
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

// ---------------------------------------------------------------------------------
// Prometheus text exposition

/// Everything `/metrics` reports: the counters and the state read beside them.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The counters.
    pub metrics: MetricsSnapshot,
    /// Clients connected.
    pub clients: usize,
    /// The texture pre-renderer's state, for a source that has one.
    pub renderer: Option<RendererStatus>,
    /// Whether the source thread runs.
    pub source_up: bool,
    /// CPU time of the process, in seconds, when known.
    pub cpu_seconds: Option<f64>,
    /// Resident memory of the process, in bytes, when known.
    pub resident_bytes: Option<u64>,
    /// Each Icecast mount's state and counters.
    pub mounts: Vec<MountSample>,
    /// The log files' state.
    pub logging: LogStatus,
}

/// One Icecast mount, as plain numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSample {
    /// The mount (its `mount` label).
    pub mount: String,
    /// Whether Icecast has accepted the source now.
    pub connected: bool,
    /// Whether Icecast refused the credentials.
    pub refused: bool,
    /// Connection attempts made.
    pub attempts: u64,
    /// Attempts Icecast accepted.
    pub connects: u64,
    /// Bytes handed to the connection.
    pub bytes_sent: u64,
    /// Pages lost because the connection did not keep up.
    pub pages_dropped: u64,
}

/// A value as Prometheus text.
#[derive(Debug, Clone, Copy)]
enum Num {
    /// An integer.
    Int(i128),
    /// A float with this many decimals.
    Fixed(f64, usize),
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Fixed(v, decimals) => write!(f, "{v:.decimals$}"),
        }
    }
}

/// The Prometheus metric type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// One series: its name, type, help line and value (`None`: not reported).
struct Row {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&Sample) -> Option<Num>,
}

const fn row(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&Sample) -> Option<Num>,
) -> Row {
    Row {
        name,
        kind,
        help,
        value,
    }
}

fn int(v: impl Into<i128>) -> Option<Num> {
    Some(Num::Int(v.into()))
}

fn int_usize(v: usize) -> Option<Num> {
    int(v as u64)
}

fn fixed(v: f64, decimals: usize) -> Option<Num> {
    Some(Num::Fixed(v, decimals))
}

/// A row of the log files, reported only with a log directory.
fn log_files(s: &Sample, value: fn(&LogStatus) -> Num) -> Option<Num> {
    (s.logging.state != LogState::Off).then(|| value(&s.logging))
}

/// A row of the texture pre-renderer, reported only for a source that has one.
fn texture(s: &Sample, value: fn(&RendererStatus) -> Num) -> Option<Num> {
    s.renderer.as_ref().map(value)
}

use Kind::{Counter, Gauge};

/// The single series of `/metrics`, in their order.
const ROWS: &[Row] = &[
    row(
        "auralis_bridge_chunks_produced_total",
        Counter,
        "Chunks produced by the source.",
        |s| int(s.metrics.chunks_produced),
    ),
    row(
        "auralis_bridge_chunks_sent_total",
        Counter,
        "Chunks written to client sockets (one per client per chunk).",
        |s| int(s.metrics.chunks_sent),
    ),
    row(
        "auralis_bridge_chunks_dropped_total",
        Counter,
        "Chunks clients lost by falling behind.",
        |s| int(s.metrics.chunks_dropped),
    ),
    row(
        "auralis_bridge_bad_chunks_replaced_total",
        Counter,
        "Chunks that were not finite or out of range, replaced by silence.",
        |s| int(s.metrics.bad_chunks),
    ),
    row(
        "auralis_bridge_opus_encode_failures_total",
        Counter,
        "Chunks with an Opus packet that failed to encode, sent as silence.",
        |s| int(s.metrics.opus_failures),
    ),
    row(
        "auralis_bridge_clients",
        Gauge,
        "WebSocket clients connected.",
        |s| int_usize(s.clients),
    ),
    row(
        "auralis_bridge_clients_rejected_total",
        Counter,
        "Connections refused at the client limit.",
        |s| int(s.metrics.clients_rejected),
    ),
    row(
        "auralis_bridge_bytes_out_total",
        Counter,
        "WebSocket payload bytes written.",
        |s| int(s.metrics.bytes_out),
    ),
    row(
        "auralis_bridge_control_errors_total",
        Counter,
        "Client messages rejected.",
        |s| int(s.metrics.control_errors),
    ),
    row(
        "auralis_bridge_control_applied_total",
        Counter,
        "Control changes applied.",
        |s| int(s.metrics.control_applied),
    ),
    row(
        "auralis_bridge_degradation_level",
        Gauge,
        "Degradation level: 0 normal, 1 high_load, 2 critical, 3 overload.",
        |s| int(s.metrics.level as u8),
    ),
    row(
        "auralis_bridge_texture_backend_gpu",
        Gauge,
        "1 while textures render on the GPU, 0 on the CPU.",
        |s| texture(s, |r| Num::Int(i128::from(r.stats.backend == Backend::Gpu))),
    ),
    row(
        "auralis_bridge_texture_gpu_fallbacks_total",
        Counter,
        "GPU failures that sent the texture pre-renderer to the CPU.",
        |s| texture(s, |r| Num::Int(r.stats.gpu_failures.into())),
    ),
    row(
        "auralis_bridge_texture_attempts_total",
        Counter,
        "Texture render attempts (first tries and retries).",
        |s| texture(s, |r| Num::Int(r.stats.attempts.into())),
    ),
    row(
        "auralis_bridge_texture_failures_total",
        Counter,
        "Texture render attempts that failed.",
        |s| texture(s, |r| Num::Int(r.stats.failures.into())),
    ),
    row(
        "auralis_bridge_texture_failure_rate",
        Gauge,
        "Recent texture render failures divided by attempts.",
        |s| texture(s, |r| Num::Fixed(f64::from(r.stats.failure_rate), 6)),
    ),
    row(
        "auralis_bridge_texture_margin_seconds",
        Gauge,
        "Seconds of texture ready ahead of the playhead (-1: none expected).",
        |s| texture(s, |r| Num::Fixed(f64::from(r.margin_s.unwrap_or(-1.0)), 3)),
    ),
    row(
        "auralis_bridge_texture_audible",
        Gauge,
        "1 while the pre-rendered texture is heard, 0 while the pad carries.",
        |s| texture(s, |r| Num::Int(i128::from(r.texture_audible))),
    ),
    row(
        "auralis_bridge_render_rtf",
        Gauge,
        "Source render time divided by audio time (below 1: faster than real time).",
        |s| fixed(s.metrics.render_rtf(), 6),
    ),
    row(
        "auralis_bridge_opus_encode_rtf",
        Gauge,
        "Opus encoding time divided by audio time (the share of one core it costs).",
        |s| fixed(s.metrics.opus_encode_rtf(), 6),
    ),
    row(
        "auralis_bridge_render_last_seconds",
        Gauge,
        "Time the source took to render the last chunk.",
        |s| fixed(s.metrics.render_last.as_secs_f64(), 6),
    ),
    row(
        "auralis_bridge_phrase_index",
        Gauge,
        "Phrase playing (-1 before the first).",
        |s| int(s.metrics.phrase_index.map_or(-1, i128::from)),
    ),
    row(
        "auralis_bridge_send_latency_max_seconds",
        Gauge,
        "Longest time from a chunk's production to its write to a socket.",
        |s| fixed(s.metrics.send_latency_us_max as f64 * 1e-6, 6),
    ),
    row(
        "auralis_bridge_source_schedule_resets_total",
        Counter,
        "Times the source fell more than a second behind real time.",
        |s| int(s.metrics.schedule_resets),
    ),
    row(
        "auralis_bridge_source_up",
        Gauge,
        "1 while the source thread runs.",
        |s| int(u8::from(s.source_up)),
    ),
    row(
        "auralis_bridge_logging_failing",
        Gauge,
        "1 while a log file of --log-dir cannot be written (its lines are dropped).",
        |s| log_files(s, |l| Num::Int(i128::from(l.state == LogState::Failing))),
    ),
    row(
        "auralis_bridge_log_write_failures_total",
        Counter,
        "Log lines that could not be written to the log files (and were dropped).",
        |s| log_files(s, |l| Num::Int(l.write_failures.into())),
    ),
    row(
        "process_cpu_seconds_total",
        Counter,
        "User and system CPU time of the bridge process.",
        |s| s.cpu_seconds.and_then(|v| fixed(v, 2)),
    ),
    row(
        "process_resident_memory_bytes",
        Gauge,
        "Resident memory of the bridge process.",
        |s| s.resident_bytes.and_then(int),
    ),
];

/// The Prometheus text exposition of `sample`: the table's series, then the
/// send-latency histogram and the disconnections by reason.
#[must_use]
pub fn prometheus_text(sample: &Sample) -> String {
    let mut out = String::with_capacity(4096);
    for r in ROWS {
        if let Some(value) = (r.value)(sample) {
            let (name, kind, help) = (r.name, r.kind.name(), r.help);
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
    latency_histogram(&mut out, &sample.metrics);
    disconnects(&mut out, &sample.metrics);
    icecast_mounts(&mut out, &sample.mounts);
    if let Some(r) = &sample.renderer {
        faults_injected(&mut out, &r.stats.faults_injected);
    }
    out
}

fn faults_injected(out: &mut String, counts: &[u64; FaultKind::ALL.len()]) {
    const NAME: &str = "auralis_bridge_texture_faults_injected_total";
    let _ = writeln!(
        out,
        "# HELP {NAME} Injected pre-renderer faults (AURALIS_FAULTS) that fired, by \
         fault.\n# TYPE {NAME} counter"
    );
    for ((_, name), count) in FaultKind::ALL.iter().zip(counts) {
        let _ = writeln!(out, "{NAME}{{fault=\"{name}\"}} {count}");
    }
}

/// One per-mount series: its name, type, help line and value.
type MountRow = (&'static str, Kind, &'static str, fn(&MountSample) -> u64);

/// The per-mount series, labelled `mount`.
const MOUNT_ROWS: &[MountRow] = &[
    (
        "auralis_bridge_icecast_connected",
        Gauge,
        "1 while the Icecast mount has accepted the source.",
        |m| u64::from(m.connected),
    ),
    (
        "auralis_bridge_icecast_refused",
        Gauge,
        "1 while the Icecast mount refuses the source's credentials.",
        |m| u64::from(m.refused),
    ),
    (
        "auralis_bridge_icecast_attempts_total",
        Counter,
        "Connection attempts to the Icecast mount.",
        |m| m.attempts,
    ),
    (
        "auralis_bridge_icecast_connects_total",
        Counter,
        "Attempts the Icecast mount accepted.",
        |m| m.connects,
    ),
    (
        "auralis_bridge_icecast_bytes_sent_total",
        Counter,
        "Ogg/Opus bytes sent to the Icecast mount.",
        |m| m.bytes_sent,
    ),
    (
        "auralis_bridge_icecast_pages_dropped_total",
        Counter,
        "Pages the Icecast connection lost by not keeping up.",
        |m| m.pages_dropped,
    ),
];

fn icecast_mounts(out: &mut String, mounts: &[MountSample]) {
    if mounts.is_empty() {
        return;
    }
    for (name, kind, help, value) in MOUNT_ROWS {
        let kind = kind.name();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for m in mounts {
            // The mount was checked when parsed: no quotes or control characters
            // need escaping beyond these.
            let label = m.mount.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{mount=\"{label}\"}} {}", value(m));
        }
    }
}

fn latency_histogram(out: &mut String, m: &MetricsSnapshot) {
    const NAME: &str = "auralis_bridge_send_latency_seconds";
    // Writing to a String cannot fail (here and below).
    let _ = writeln!(
        out,
        "# HELP {NAME} Time from a chunk leaving the source to its write to a client \
         socket, one observation per client and chunk.\n# TYPE {NAME} histogram"
    );
    let mut cumulative = 0;
    for (bound, count) in LATENCY_BUCKETS_S.iter().zip(&m.send_latency_buckets) {
        cumulative += count;
        let _ = writeln!(out, "{NAME}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let sent = m.chunks_sent;
    let sum = m.send_latency_us_total as f64 * 1e-6;
    let _ = writeln!(out, "{NAME}_bucket{{le=\"+Inf\"}} {sent}");
    let _ = writeln!(out, "{NAME}_sum {sum:.6}\n{NAME}_count {sent}");
}

fn disconnects(out: &mut String, m: &MetricsSnapshot) {
    const NAME: &str = "auralis_bridge_disconnects_total";
    let _ = writeln!(
        out,
        "# HELP {NAME} Client disconnections by reason.\n# TYPE {NAME} counter"
    );
    for (reason, count) in DisconnectReason::ALL.iter().zip(&m.disconnects) {
        let _ = writeln!(out, "{NAME}{{reason=\"{}\"}} {count}", reason.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_land_in_their_latency_bucket() {
        let stats = Metrics::default();
        for us in [400, 500, 501, 12_000, 3_000_000] {
            stats.record_send(us);
        }
        let snapshot = stats.snapshot();
        let count = |bound: f64| {
            let i = LATENCY_BUCKETS_S
                .iter()
                .position(|b| *b == bound)
                .expect("a bucket bound");
            snapshot.send_latency_buckets[i]
        };
        assert_eq!(count(0.0005), 2, "a bound is inclusive");
        assert_eq!(count(0.001), 1);
        assert_eq!(count(0.015), 1);
        let bucketed: u64 = snapshot.send_latency_buckets.iter().sum();
        assert_eq!(bucketed, 4, "over the last bound: only in the total");
        assert_eq!(snapshot.chunks_sent, 5);
        assert_eq!(snapshot.send_latency_us_max, 3_000_000);
    }

    #[test]
    fn log_file_rows_appear_with_a_log_directory_only() {
        let sample = |state, write_failures| Sample {
            metrics: Metrics::default().snapshot(),
            clients: 0,
            renderer: None,
            source_up: true,
            cpu_seconds: None,
            resident_bytes: None,
            mounts: Vec::new(),
            logging: LogStatus {
                state,
                dir: (state != LogState::Off).then(|| "/var/log/auralis".into()),
                write_failures,
                errors: Vec::new(),
            },
        };
        let off = prometheus_text(&sample(LogState::Off, 0));
        assert!(!off.contains("auralis_bridge_log"), "{off}");
        let failing = prometheus_text(&sample(LogState::Failing, 7));
        assert!(
            failing.contains("\nauralis_bridge_logging_failing 1\n"),
            "{failing}"
        );
        assert!(
            failing.contains("\nauralis_bridge_log_write_failures_total 7\n"),
            "{failing}"
        );
        let ok = prometheus_text(&sample(LogState::Ok, 7));
        assert!(ok.contains("\nauralis_bridge_logging_failing 0\n"), "{ok}");
    }

    #[test]
    fn unknown_values_read_as_none() {
        let m = Metrics::default().snapshot();
        assert_eq!(m.last_chunk_at, None);
        assert_eq!(m.phrase_index, None);
        assert_eq!(m.source, SourceState::Streaming);
    }
}
