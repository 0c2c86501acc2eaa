//! The bridge as an Icecast source (DESIGN.md §11): each `--icecast` mount gets
//! the stream's Ogg/Opus, the same pages `/stream.opus` serves, made once per
//! stream (or, for a mount with its own `?kbps=`, made once per such bitrate by
//! a [`feed`] thread), over an HTTP PUT as Icecast 2.4 expects
//! (`Authorization: Basic`, `Content-Type: audio/ogg`, `Expect: 100-continue`,
//! `ice-*` headers), with hyper's HTTP/1 client and a streaming body.
//!
//! Resilience, per the seed's network rules (§3): a mount that cannot be reached,
//! refuses the source or drops it is retried with exponential backoff (1 s
//! doubling to 60 s, each delay ±25 % at random so many bridges do not knock in
//! step). A wrong password (401) goes straight to the longest delay: it needs the
//! operator, not a retry storm. The connection is fed through a small bounded
//! outbox over a socket with a small send buffer ([`SEND_BUFFER`]), so a server
//! that stops reading shows within seconds: a mount whose pages keep waiting in
//! the outbox for the send timeout (`--send-timeout-ms`, 5 s by default) is
//! stalled, logged at warn and dropped, and the music goes on for everyone else;
//! the source and the WebSocket listeners never wait for Icecast. Each mount's
//! state, last error and counters are in `/health`, `/api/status` and
//! `/metrics`.

pub mod feed;
pub mod target;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use base64::Engine as _;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use self::feed::Feed;
pub use self::target::IcecastTarget;
use crate::metrics::MountSample;
use crate::AppState;

/// First retry delay.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay, and the delay after a wrong password.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A session that stayed connected this long starts the backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Longest wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for Icecast's answer (`100 Continue`) to the source request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pages queued for the connection: three seconds of 100 ms chunks.
const OUTBOX_PAGES: usize = 32;
/// The source socket's send buffer (the kernel doubles it for its bookkeeping):
/// about two seconds of a 128 kbit/s stream. The kernel's default grows to
/// megabytes, which a stalled server would fill for minutes before the outbox
/// noticed.
pub const SEND_BUFFER: u32 = 16 * 1024;
/// Most bytes of a refusal's body kept as the server's reason.
const REASON_BYTES: usize = 4096;

/// Where a mount stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountState {
    /// The first attempt is under way.
    Connecting,
    /// Icecast accepted the source; pages flow.
    Connected,
    /// The last attempt failed; another follows after the backoff.
    Retrying,
    /// Icecast refused the credentials: retried only at the longest delay.
    Refused,
}

impl MountState {
    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Retrying => "retrying",
            Self::Refused => "refused",
        }
    }
}

/// What changes together, under one lock that only this mount's task and the
/// HTTP handlers take, briefly.
#[derive(Debug)]
struct Status {
    state: MountState,
    last_error: Option<String>,
    since: Instant,
    next_attempt: Option<Instant>,
}

/// One mount: its target, state and counters.
#[derive(Debug)]
pub struct Mount {
    target: IcecastTarget,
    status: Mutex<Status>,
    attempts: AtomicU64,
    connects: AtomicU64,
    bytes_sent: AtomicU64,
    pages_dropped: AtomicU64,
}

/// A mount's state at one moment, as `/health` and `/api/status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct MountSnapshot {
    /// The target without its password.
    pub url: String,
    /// The mount.
    pub mount: String,
    /// Where it stands.
    pub state: MountState,
    /// Seconds in this state.
    pub state_for_s: f64,
    /// The last failure, with the server's reason when it gave one.
    pub last_error: Option<String>,
    /// Seconds to the next attempt, while retrying.
    pub retry_in_s: Option<f64>,
    /// Connection attempts made.
    pub attempts: u64,
    /// Attempts Icecast accepted.
    pub connects: u64,
    /// Bytes handed to the connection.
    pub bytes_sent: u64,
    /// Pages lost because the connection did not keep up.
    pub pages_dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update replaces whole fields, so a poisoned lock still holds a whole value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Mount {
    fn new(target: IcecastTarget) -> Self {
        Self {
            target,
            status: Mutex::new(Status {
                state: MountState::Connecting,
                last_error: None,
                since: Instant::now(),
                next_attempt: None,
            }),
            attempts: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            pages_dropped: AtomicU64::new(0),
        }
    }

    fn set(&self, state: MountState, error: Option<String>, next_attempt: Option<Instant>) {
        let mut s = lock(&self.status);
        if s.state != state {
            s.since = Instant::now();
        }
        s.state = state;
        if error.is_some() {
            s.last_error = error;
        }
        s.next_attempt = next_attempt;
    }

    /// Its state now.
    #[must_use]
    pub fn snapshot(&self) -> MountSnapshot {
        let s = lock(&self.status);
        let now = Instant::now();
        MountSnapshot {
            url: self.target.to_string(),
            mount: self.target.mount.clone(),
            state: s.state,
            state_for_s: now.saturating_duration_since(s.since).as_secs_f64(),
            last_error: s.last_error.clone(),
            retry_in_s: s
                .next_attempt
                .map(|t| t.saturating_duration_since(now).as_secs_f64()),
            attempts: self.attempts.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            pages_dropped: self.pages_dropped.load(Ordering::Relaxed),
        }
    }
}

/// Every configured mount.
#[derive(Debug, Default)]
pub struct Icecast {
    mounts: Vec<Arc<Mount>>,
}

impl Icecast {
    /// The mounts of `targets`, not yet started.
    #[must_use]
    pub fn new(targets: &[IcecastTarget]) -> Self {
        Self {
            mounts: targets
                .iter()
                .map(|t| Arc::new(Mount::new(t.clone())))
                .collect(),
        }
    }

    /// Starts one feed per distinct bitrate and one source task per mount; each
    /// ends when the bridge shuts down.
    pub fn spawn(&self, state: &AppState) {
        let kbps = |m: &Mount| m.target.kbps.unwrap_or(state.config.opus_kbps);
        let feeds = match feed::start(state, self.mounts.iter().map(|m| kbps(m))) {
            Ok(feeds) => feeds,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the Icecast mounts' bitrates");
                return;
            }
        };
        for mount in &self.mounts {
            let Some(feed) = feeds.get(&kbps(mount)) else {
                continue;
            };
            let span = tracing::info_span!("icecast", mount = %mount.target);
            tokio::spawn(run(Arc::clone(mount), Arc::clone(feed), state.clone()).instrument(span));
        }
    }

    /// Every mount's state.
    #[must_use]
    pub fn snapshot(&self) -> Vec<MountSnapshot> {
        self.mounts.iter().map(|m| m.snapshot()).collect()
    }

    /// Whether every configured mount is connected (true with none).
    #[must_use]
    pub fn all_connected(&self) -> bool {
        self.mounts
            .iter()
            .all(|m| lock(&m.status).state == MountState::Connected)
    }

    /// The plain numbers `/metrics` exports per mount.
    #[must_use]
    pub fn samples(&self) -> Vec<MountSample> {
        self.snapshot()
            .into_iter()
            .map(|s| MountSample {
                mount: s.mount,
                connected: s.state == MountState::Connected,
                refused: s.state == MountState::Refused,
                attempts: s.attempts,
                connects: s.connects,
                bytes_sent: s.bytes_sent,
                pages_dropped: s.pages_dropped,
            })
            .collect()
    }
}

/// Exponential backoff with jitter.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const fn new() -> Self {
        Self { next: BACKOFF_MIN }
    }

    /// The delay before the next attempt: the current step ±25 %, then the step
    /// doubles up to [`BACKOFF_MAX`].
    fn delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(BACKOFF_MAX);
        step.mul_f64(0.75 + 0.5 * fastrand::f64())
    }

    /// After a wrong password: the longest step from now on.
    const fn give_up_fast_retries(&mut self) {
        self.next = BACKOFF_MAX;
    }

    const fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Why a session ended.
#[derive(Debug)]
enum Failure {
    /// The TCP connection could not be made.
    Unreachable(String),
    /// Icecast answered the source request with an error status.
    Refused { status: StatusCode, reason: String },
    /// No answer to the source request in time.
    NoAnswer,
    /// The connection failed or was closed by the server.
    Lost(String),
    /// The connection stopped taking pages for the send timeout.
    Stalled(Duration),
    /// The bridge is shutting down.
    Shutdown,
}

impl Failure {
    /// The message for `/health` and the logs, with the server's reason.
    fn message(&self) -> String {
        match self {
            Self::Unreachable(e) => format!("cannot reach the server: {e}"),
            Self::Refused { status, reason } if *status == StatusCode::UNAUTHORIZED => {
                format!("wrong source user or password ({status}: {reason})")
            }
            Self::Refused { status, reason } => format!("refused the source: {status}: {reason}"),
            Self::NoAnswer => format!(
                "no answer to the source request in {} s",
                ANSWER_TIMEOUT.as_secs()
            ),
            Self::Lost(e) => format!("connection lost: {e}"),
            Self::Stalled(d) => format!(
                "the server took no data for {:.1} s; dropped the connection",
                d.as_secs_f64()
            ),
            Self::Shutdown => "shutting down".to_owned(),
        }
    }

    const fn wrong_password(&self) -> bool {
        matches!(self, Self::Refused { status, .. } if status.as_u16() == 401)
    }

    /// Logs the failure at its level: an operator must act on a wrong password or
    /// a refused request; the rest heal themselves.
    fn log(&self, retry_in: Duration) {
        let message = self.message();
        let retry_in_s = retry_in.as_secs_f64();
        match self {
            Self::Refused { status, .. }
                if status.is_client_error() && *status != StatusCode::FORBIDDEN =>
            {
                tracing::error!(retry_in_s, "Icecast {message}");
            }
            _ => tracing::warn!(retry_in_s, "Icecast {message}"),
        }
    }
}

/// A mount's task: sessions separated by the backoff, until shutdown.
async fn run(mount: Arc<Mount>, feed: Arc<Feed>, state: AppState) {
    let mut backoff = Backoff::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        mount.attempts.fetch_add(1, Ordering::Relaxed);
        let (failure, connected_for) = Session::new(&mount, &feed, &state).run().await;
        if matches!(failure, Failure::Shutdown) {
            return;
        }
        if connected_for.is_some_and(|d| d >= STABLE_AFTER) {
            backoff.reset();
        }
        let refused = failure.wrong_password();
        if refused {
            backoff.give_up_fast_retries();
        }
        let delay = backoff.delay();
        failure.log(delay);
        let next = if refused {
            MountState::Refused
        } else {
            MountState::Retrying
        };
        mount.set(next, Some(failure.message()), Some(Instant::now() + delay));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One connection to the mount.
struct Session<'a> {
    mount: &'a Mount,
    feed: &'a Feed,
    state: &'a AppState,
    outbox: Option<mpsc::Sender<Bytes>>,
    /// When Icecast accepted the source.
    connected_at: Option<Instant>,
    /// Since when pages have been waiting in the outbox.
    waiting_since: Option<Instant>,
    /// The body of Icecast's `200 OK` (it sends one after `100 Continue`), kept
    /// open: dropping it would end the connection.
    answer: Option<Incoming>,
}

/// The outcome of a session: why it ended, and how long it was connected.
type Ended = (Failure, Option<Duration>);

impl<'a> Session<'a> {
    const fn new(mount: &'a Mount, feed: &'a Feed, state: &'a AppState) -> Self {
        Self {
            mount,
            feed,
            state,
            outbox: None,
            connected_at: None,
            waiting_since: None,
            answer: None,
        }
    }

    async fn run(mut self) -> Ended {
        let failure = match self.stream().await {
            Err(failure) => failure,
            Ok(never) => match never {},
        };
        (failure, self.connected_at.map(|t| t.elapsed()))
    }

    /// Connects, sends the request and feeds pages until something fails.
    async fn stream(&mut self) -> Result<Infallible, Failure> {
        let target = &self.mount.target;
        tracing::debug!("connecting");
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connect(&target.host, target.port))
            .await
            .map_err(|_| {
                Failure::Unreachable(format!("no connection in {} s", CONNECT_TIMEOUT.as_secs()))
            })?
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| Failure::Lost(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Bytes>(OUTBOX_PAGES);
        let (accepted_tx, mut accepted) = watch::channel(false);
        let mut request = source_request(self.state, target, self.feed.kbps, body(rx));
        hyper::ext::on_informational(&mut request, move |res| {
            if res.status() == StatusCode::CONTINUE {
                accepted_tx.send_replace(true);
            }
        });
        self.outbox = Some(tx);
        let mut response = std::pin::pin!(sender.send_request(request));
        let mut conn = std::pin::pin!(conn);
        let mut pages = self.feed.subscribe();
        let mut shutdown = self.state.shutdown.clone();
        let asked_at = Instant::now();
        let mut answered = false;
        let mut informing = true;
        loop {
            tokio::select! {
                biased;
                r = &mut response, if !answered => {
                    answered = true;
                    self.on_response(r).await?;
                }
                r = &mut conn => return Err(Failure::Lost(r.map_or_else(
                    |e| e.to_string(),
                    |()| "the server closed the connection".to_owned(),
                ))),
                r = accepted.changed(), if informing => match r {
                    Ok(()) => self.on_accepted(),
                    // hyper drops the callback once the final answer arrives.
                    Err(_) => informing = false,
                },
                page = pages.recv() => self.on_page(page, asked_at)?,
                _ = shutdown.changed() => return Err(Failure::Shutdown),
            }
        }
    }

    /// Icecast's final answer: an error status ends the session with the server's
    /// reason; a success (from a server that skips `100 Continue`) accepts it.
    async fn on_response(&mut self, r: hyper::Result<Response<Incoming>>) -> Result<(), Failure> {
        let response = r.map_err(|e| Failure::Lost(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            self.on_accepted();
            self.answer = Some(response.into_body());
            return Ok(());
        }
        let body = tokio::time::timeout(
            Duration::from_secs(2),
            axum::body::to_bytes(Body::new(response.into_body()), REASON_BYTES),
        )
        .await;
        let text = match body {
            Ok(Ok(b)) => String::from_utf8_lossy(&b).trim().to_owned(),
            _ => String::new(),
        };
        let reason = if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        } else {
            text
        };
        Err(Failure::Refused { status, reason })
    }

    /// The source is accepted: the header pages go first, then the live pages.
    fn on_accepted(&mut self) {
        if self.connected_at.is_some() {
            return;
        }
        self.connected_at = Some(Instant::now());
        self.mount.connects.fetch_add(1, Ordering::Relaxed);
        self.mount.set(MountState::Connected, None, None);
        tracing::info!("connected to the Icecast mount");
        let preamble = self
            .feed
            .headers
            .preamble(&crate::stream_opus::tags(self.state));
        // The outbox is empty at this point: the header pages always fit.
        self.queue(preamble);
    }

    fn on_page(
        &mut self,
        page: Result<Bytes, RecvError>,
        asked_at: Instant,
    ) -> Result<(), Failure> {
        let page = match page {
            Ok(p) => p,
            Err(RecvError::Lagged(n)) => {
                self.mount.pages_dropped.fetch_add(n, Ordering::Relaxed);
                return Ok(());
            }
            Err(RecvError::Closed) => return Err(Failure::Shutdown),
        };
        if self.connected_at.is_none() {
            return if asked_at.elapsed() > ANSWER_TIMEOUT {
                Err(Failure::NoAnswer)
            } else {
                Ok(())
            };
        }
        // Chunks come every 100 ms; a connection that keeps up has taken the
        // previous page long before the next one.
        if self
            .outbox
            .as_ref()
            .is_some_and(|tx| tx.capacity() == tx.max_capacity())
        {
            self.waiting_since = None;
        }
        self.queue(page);
        let waiting_for = self
            .waiting_since
            .get_or_insert_with(Instant::now)
            .elapsed();
        if waiting_for > self.state.config.send_timeout {
            return Err(Failure::Stalled(waiting_for));
        }
        Ok(())
    }

    /// Queues `page` without waiting; `false` (and counted) when the outbox is full.
    fn queue(&self, page: Bytes) -> bool {
        let len = page.len() as u64;
        let Some(tx) = &self.outbox else {
            return false;
        };
        if tx.try_send(page).is_ok() {
            self.mount.bytes_sent.fetch_add(len, Ordering::Relaxed);
            true
        } else {
            self.mount.pages_dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// A TCP connection to `host:port` (the first address that answers) whose send
/// buffer is [`SEND_BUFFER`].
async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        socket.set_send_buffer_size(SEND_BUFFER)?;
        match socket.connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
    }))
}

/// The request body: the outbox's pages as they come, ending when the session
/// drops the outbox.
fn body(rx: mpsc::Receiver<Bytes>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|page| (Ok::<_, Infallible>(page), rx))
    }))
}

/// A header value from free text: control characters dropped (UTF-8 passes as
/// the opaque bytes HTTP allows).
fn header_text(text: &str) -> HeaderValue {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_bytes(clean.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The source request Icecast 2.4 expects: a PUT of `audio/ogg` to the mount with
/// Basic credentials, `Expect: 100-continue` and the `ice-*` headers, which name
/// the piece unless the URL said otherwise.
fn source_request(
    state: &AppState,
    target: &IcecastTarget,
    kbps: u32,
    body: Body,
) -> Request<Body> {
    let p = state.pump.params();
    let preset = p.preset.unwrap_or("custom");
    let name = target
        .name
        .clone()
        .unwrap_or_else(|| format!("Auralis: {preset}"));
    let description = target.description.clone().unwrap_or_else(|| {
        format!(
            "Generative ambient music: {} {}, {:.0} BPM",
            p.compose.key,
            p.compose.mode.name(),
            p.compose.bpm
        )
    });
    let audio_info = format!(
        "ice-samplerate={};ice-bitrate={};ice-channels={}",
        crate::codec::opus::OPUS_RATE_HZ,
        kbps,
        state.pump.info().channels
    );
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", target.user, target.password));
    let mut request = Request::new(body);
    *request.method_mut() = axum::http::Method::PUT;
    // The mount was checked when parsed: no spaces, no control characters.
    *request.uri_mut() = target.mount.parse().unwrap_or_default();
    let headers = request.headers_mut();
    for (name, value) in [
        (header::HOST, header_text(&target.authority())),
        (
            header::AUTHORIZATION,
            header_text(&format!("Basic {credentials}")),
        ),
        (header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg")),
        (header::EXPECT, HeaderValue::from_static("100-continue")),
        (
            header::USER_AGENT,
            HeaderValue::from_static(concat!("auralis-bridge/", env!("CARGO_PKG_VERSION"))),
        ),
    ] {
        headers.insert(name, value);
    }
    for (name, value) in [
        ("ice-name", name),
        ("ice-description", description),
        (
            "ice-genre",
            target.genre.clone().unwrap_or_else(|| "Ambient".to_owned()),
        ),
        (
            "ice-url",
            target
                .url
                .clone()
                .unwrap_or_else(|| env!("CARGO_PKG_REPOSITORY").to_owned()),
        ),
        ("ice-audio-info", audio_info),
        ("ice-public", u8::from(target.public).to_string()),
    ] {
        headers.insert(name, header_text(&value));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_a_minute_with_jitter() {
        let mut b = Backoff::new();
        let delays: Vec<f64> = (0..10).map(|_| b.delay().as_secs_f64()).collect();
        for (i, d) in delays.iter().enumerate() {
            let step = (1_u64 << i).min(60) as f64;
            assert!(
                (0.75 * step..=1.25 * step).contains(d),
                "{i}: {d} for step {step}"
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(1250));
        b.give_up_fast_retries();
        assert!(b.delay() >= Duration::from_secs(45));
    }
}
