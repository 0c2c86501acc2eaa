//! `/ws/stream`: one task per client. It registers the client (or closes with 1008
//! at the limit), sends `hello` (or the compatibility `welcome`), then forwards
//! audio chunks and announcements while it reads the client's messages, pings on
//! a heartbeat, reports status, and drops the client when it stops answering, falls
//! behind for too long, or a write exceeds the send timeout. The client is removed
//! from the hub on every exit path (its guard drops).
//!
//! Liveness: any frame from the client since the previous heartbeat counts as an
//! answer — a JSON `pong`, a transport-level pong (browsers and most WebSocket
//! libraries answer the transport ping that goes with every JSON `ping` by
//! themselves, which keeps clients of the original protocol alive) or any message.
//!
//! The session is generic over the socket's `Sink`/`Stream` halves so it can be
//! driven without a network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior};
use tracing::Instrument;

use crate::codec::compat::{COMPAT_CHUNK_FRAMES, COMPAT_RATE_HZ};
use crate::codec::opus::OPUS_RATE_HZ;
use crate::config::Config;
use crate::control::{self, role_for, RateLimiter};
use crate::hub::{Chunk, ClientGuard, DisconnectReason, Role};
use crate::protocol::{
    clip, compat_error, compat_pong, compat_welcome, error_message, hello_message,
    parse_client_bytes, parse_client_text, ping_message, status_message, ClientMessage, Codec,
    Dialect, ErrorCode, ProtocolError, StatusInfo, StreamFormat, HEADER_LEN,
    MAX_CLIENT_MESSAGE_BYTES,
};
use crate::AppState;

/// Largest message (and frame) the WebSocket layer accepts: the protocol limit.
/// The layer refuses a larger frame from its header and a fragmented message as
/// soon as its pieces exceed this, so no connection ever buffers more than this
/// of a client's message; the session then closes with 1009
/// ([`CLOSE_TOO_BIG`]) naming the limit.
const TRANSPORT_MAX_MESSAGE: usize = MAX_CLIENT_MESSAGE_BYTES;
/// How long a connection stays open after the 1009 close frame of an oversized
/// message, unread, before the socket is dropped. The rest of the message is
/// never read: a client that reads while it writes (browsers, split sockets)
/// gets the close frame during this time even while it is still sending; the
/// unread bytes stay in the kernel's socket buffer, not in the bridge.
const TOO_BIG_LINGER: Duration = Duration::from_secs(2);
/// Read buffer of each connection. The WebSocket layer zero-fills the whole buffer
/// before every read attempt, and a client's task attempts one each time it wakes
/// for a chunk: the default 128 KiB cost a 128 KiB memset per client per chunk.
/// Clients send only small control messages, which a few KiB hold (larger ones are
/// read in several pieces).
const READ_BUFFER: usize = 4 * 1024;
/// Attempts for a control reply whose write timed out.
const REPLY_ATTEMPTS: u32 = 3;
/// Close code: going away (server shutdown).
const CLOSE_AWAY: u16 = 1001;
/// Close code: policy violation (client limit, too slow, no heartbeat).
const CLOSE_POLICY: u16 = 1008;
/// Close code: internal error.
const CLOSE_ERROR: u16 = 1011;
/// Close code: message too big.
const CLOSE_TOO_BIG: u16 = 1009;

/// The query string of `/ws/stream`.
#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    /// `s16` (default), `f32` or `opus`.
    pub codec: Option<String>,
    /// `json` for the compatibility protocol, `binary` for the native one
    /// [default: `--default-format`].
    pub format: Option<String>,
    /// The control token.
    pub token: Option<String>,
}

/// How a client asked to be served.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Payload encoding of binary frames.
    pub codec: Codec,
    /// Native or compatibility protocol.
    pub dialect: Dialect,
    /// The token it presented.
    pub token: Option<String>,
}

impl ClientOptions {
    /// Reads the query string; without `format=`, the client speaks `default`.
    ///
    /// # Errors
    /// An `out_of_range` error naming the query parameter that is not understood.
    pub fn from_query(q: WsQuery, default: Dialect) -> Result<Self, ProtocolError> {
        let refuse = |field: &str, expected: &str, got: &str| {
            let got = clip(got);
            ProtocolError::field(
                ErrorCode::OutOfRange,
                field,
                format!("query parameter `{field}`: expected {expected}, got {got:?}"),
            )
        };
        let codec = match q.codec.as_deref() {
            None => Codec::S16,
            Some(name) => {
                Codec::from_name(name).ok_or_else(|| refuse("codec", "s16, f32 or opus", name))?
            }
        };
        let dialect = match q.format.as_deref() {
            None => default,
            Some(name) => {
                Dialect::from_name(name).ok_or_else(|| refuse("format", "json or binary", name))?
            }
        };
        Ok(Self {
            codec,
            dialect,
            token: q.token,
        })
    }

    fn format_name(&self) -> &'static str {
        match (self.dialect, self.codec) {
            (Dialect::Compat, _) => "json",
            (Dialect::Native, Codec::S16) => "binary-s16",
            (Dialect::Native, Codec::F32) => "binary-f32",
            (Dialect::Native, Codec::Opus) => "binary-opus",
        }
    }
}

/// `GET /ws/stream`: upgrades to a WebSocket and serves the client. A query it
/// does not understand is answered on the socket, where a browser's script can
/// read it (an HTTP refusal of the upgrade is invisible to it): an `error`
/// message naming the parameter, then close 1008.
pub async fn ws_handler(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let options = ClientOptions::from_query(query, state.config.default_format);
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(TRANSPORT_MAX_MESSAGE)
        .max_frame_size(TRANSPORT_MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = socket.split();
            match options {
                Ok(options) => serve_client(state, options, sink, stream).await,
                Err(e) => {
                    tracing::info!(error = %e, "refused a client's query");
                    let text = match state.config.default_format {
                        Dialect::Native => error_message(&e, false),
                        Dialect::Compat => compat_error(&e),
                    };
                    let goodbye = [
                        Message::Text(Utf8Bytes::from(text)),
                        close(CLOSE_POLICY, &e.message),
                    ];
                    // The client may already be gone; it is refused either way.
                    let _ = tokio::time::timeout(state.config.send_timeout, async {
                        for message in goodbye {
                            sink.send(message).await?;
                        }
                        Ok::<_, axum::Error>(())
                    })
                    .await;
                }
            }
        })
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// Serves one client on an upgraded socket until it leaves or is dropped.
pub async fn serve_client<S, R>(state: AppState, options: ClientOptions, mut sink: S, stream: R)
where
    S: Sink<Message, Error = axum::Error> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let (role, warning) = role_for(&state, options.token.as_deref());
    let guard = match state.hub.register(role, options.format_name()) {
        Ok(g) => g,
        Err(limit) => {
            tracing::warn!(max_clients = limit.max, "refused a client: {limit}");
            let timeout = state.config.send_timeout;
            // The client may already be gone; it is refused either way.
            let _ =
                tokio::time::timeout(timeout, sink.send(close(CLOSE_POLICY, &limit.to_string())))
                    .await;
            return;
        }
    };
    let span = tracing::info_span!(
        "client",
        id = guard.id(),
        stream = %state.pump.info().name
    );
    let session = Session {
        state,
        options,
        role,
        guard,
        sink,
        stream,
        limiter: None,
        heard_since_ping: true,
        missed: 0,
        behind_since: None,
        dropped: 0,
    };
    session.run(warning).instrument(span).await;
}

/// What a step of the session decided: `Ok` to go on serving, `Err` to leave for
/// that reason.
type Step = Result<(), DisconnectReason>;

/// One client's connection and what the loop tracks about it.
struct Session<S, R> {
    state: AppState,
    options: ClientOptions,
    role: Role,
    guard: ClientGuard,
    sink: S,
    stream: R,
    limiter: Option<RateLimiter>,
    /// Whether the client sent anything since the last heartbeat.
    heard_since_ping: bool,
    /// Heartbeats in a row without an answer.
    missed: u32,
    /// Since when the client has been more than half a queue behind.
    behind_since: Option<Instant>,
    /// Chunks this client lost.
    dropped: u64,
}

/// What to do after a client's message.
enum Inbound {
    Continue,
    Reply(String),
    Leave(DisconnectReason),
}

impl<S, R> Session<S, R>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    /// Writes one message within the send timeout; a timed-out write is flushed
    /// again up to `attempts - 1` more times (the message stays buffered). Fails
    /// with [`DisconnectReason::SendTimeout`] or [`DisconnectReason::Closed`].
    async fn send(&mut self, message: Message, attempts: u32) -> Step {
        let timeout = self.state.config.send_timeout;
        let len = message_len(&message);
        match tokio::time::timeout(timeout, self.sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(DisconnectReason::Closed),
            Err(_) => self.retry_flush(attempts).await?,
        }
        self.state.hub.metrics.add_bytes_out(len as u64);
        Ok(())
    }

    /// Flushes a write that timed out, up to `attempts - 1` more times.
    async fn retry_flush(&mut self, attempts: u32) -> Step {
        let timeout = self.state.config.send_timeout;
        for attempt in 1..attempts {
            tracing::warn!(attempt, "write timed out; retrying");
            tokio::time::sleep(Duration::from_millis(100)).await;
            match tokio::time::timeout(timeout, self.sink.flush()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(DisconnectReason::Closed),
                Err(_) => {}
            }
        }
        Err(DisconnectReason::SendTimeout)
    }

    async fn send_text(&mut self, text: String, attempts: u32) -> Step {
        self.send(Message::Text(Utf8Bytes::from(text)), attempts)
            .await
    }

    async fn run(mut self, warning: Option<ProtocolError>) {
        let reason = self.serve(warning).await;
        let (code, text) = match reason {
            DisconnectReason::Shutdown => (Some(CLOSE_AWAY), "server shutting down".to_owned()),
            DisconnectReason::Heartbeat => (Some(CLOSE_POLICY), "heartbeat timeout".to_owned()),
            DisconnectReason::Lag => (
                Some(CLOSE_POLICY),
                format!(
                    "too slow: behind the stream for more than {:.1} s",
                    self.state.config.max_lag.as_secs_f64()
                ),
            ),
            DisconnectReason::Error => (
                Some(CLOSE_ERROR),
                "server error: the audio source stopped".to_owned(),
            ),
            DisconnectReason::TooBig => (
                Some(CLOSE_TOO_BIG),
                format!("message too big: the limit is {MAX_CLIENT_MESSAGE_BYTES} bytes"),
            ),
            DisconnectReason::Closed | DisconnectReason::SendTimeout => (None, String::new()),
        };
        let wait = self.state.config.send_timeout.min(Duration::from_secs(1));
        if let Some(code) = code {
            // Best effort: the client may be unable to read it (that may be why it
            // is being dropped).
            let _ = tokio::time::timeout(wait, self.sink.send(close(code, &text))).await;
            if reason == DisconnectReason::TooBig {
                // The rest of the message cannot be read (the layer stops at the
                // limit); dropping the socket at once would reset the connection and
                // could discard the close frame at the client.
                tokio::time::sleep(TOO_BIG_LINGER).await;
            }
        } else if reason == DisconnectReason::Closed {
            // Completes the closing handshake the client started (flushes the
            // automatic reply); it may already be gone, which is fine.
            let _ = tokio::time::timeout(wait, self.sink.close()).await;
        }
        self.state.hub.metrics.count_disconnect(reason);
        tracing::info!(reason = reason.name(), "client disconnected");
    }

    async fn serve(&mut self, warning: Option<ProtocolError>) -> DisconnectReason {
        let state = self.state.clone();
        let mut shutdown = state.shutdown.clone();
        if *shutdown.borrow_and_update() {
            return DisconnectReason::Shutdown;
        }
        let mut source_alive = state.pump.watch_alive();
        if !*source_alive.borrow_and_update() {
            return DisconnectReason::Error;
        }
        let (burst, mut audio) = state.hub.subscribe_audio_with_burst();
        let mut events = state.hub.subscribe_events();
        tracing::info!(
            role = self.role.name(),
            format = self.options.format_name(),
            clients = state.hub.client_count(),
            "client connected"
        );
        if let Err(reason) = self.greet(warning).await {
            return reason;
        }
        for chunk in burst {
            if let Err(reason) = self.send_chunk(&chunk).await {
                return reason;
            }
        }
        let (mut heartbeat, mut status) = timers(&state.config);
        let native = self.options.dialect == Dialect::Native;
        loop {
            let step = tokio::select! {
                _ = shutdown.changed() => Err(DisconnectReason::Shutdown),
                Ok(()) = source_alive.changed() => on_source_change(*source_alive.borrow_and_update()),
                inbound = self.stream.next() => self.on_inbound(inbound).await,
                chunk = audio.recv() => self.on_chunk(chunk, audio.len()).await,
                // The original client knows no announcements: it gets none.
                event = events.recv(), if native => self.on_event(event).await,
                _ = heartbeat.tick() => self.on_heartbeat().await,
                _ = status.tick(), if native => self.on_status(audio.len()).await,
            };
            if let Err(reason) = step {
                return reason;
            }
        }
    }

    /// Sends `hello` (or the compatibility `welcome`), then the warning about a
    /// wrong token, if there is one.
    async fn greet(&mut self, warning: Option<ProtocolError>) -> Step {
        let pump = &self.state.pump;
        let params = pump.params().to_json();
        if self.options.dialect == Dialect::Compat {
            let format = StreamFormat {
                codec: Codec::S16,
                sample_rate: COMPAT_RATE_HZ,
                channels: pump.info().channels,
                frames_per_chunk: COMPAT_CHUNK_FRAMES as u32,
                chunk_ms: COMPAT_CHUNK_FRAMES as f64 * 1000.0 / f64::from(COMPAT_RATE_HZ),
                header_bytes: 0,
            };
            self.send_text(
                compat_welcome(self.guard.id(), &format, &params),
                REPLY_ATTEMPTS,
            )
            .await?;
            if let Some(w) = warning {
                self.send_text(compat_error(&w), REPLY_ATTEMPTS).await?;
            }
            return Ok(());
        }
        let codec = self.options.codec;
        let format = StreamFormat {
            codec,
            // Opus runs at its own rate whatever the source's.
            sample_rate: if codec == Codec::Opus {
                OPUS_RATE_HZ
            } else {
                pump.info().sample_rate
            },
            channels: pump.info().channels,
            frames_per_chunk: if codec == Codec::Opus {
                (pump.chunk_duration().as_secs_f64() * f64::from(OPUS_RATE_HZ)).round() as u32
            } else {
                pump.frames_per_chunk()
            },
            chunk_ms: pump.chunk_duration().as_secs_f64() * 1000.0,
            header_bytes: HEADER_LEN,
        };
        let hello = hello_message(
            self.guard.id(),
            &pump.info().name,
            &format,
            &params,
            self.role.name(),
        );
        self.send_text(hello, REPLY_ATTEMPTS).await?;
        if let Some(w) = warning {
            self.send_text(error_message(&w, true), REPLY_ATTEMPTS)
                .await?;
        }
        Ok(())
    }

    /// A frame from the client, the end of its stream, or a read error.
    async fn on_inbound(&mut self, inbound: Option<Result<Message, axum::Error>>) -> Step {
        self.heard_since_ping = true;
        self.missed = 0;
        let action = match inbound {
            None => Inbound::Leave(DisconnectReason::Closed),
            Some(Err(e)) if is_too_big(&e) => {
                tracing::info!(error = %e, "client message over the limit");
                Inbound::Leave(DisconnectReason::TooBig)
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "read failed");
                Inbound::Leave(DisconnectReason::Closed)
            }
            Some(Ok(message)) => self.on_message(message).await,
        };
        match action {
            Inbound::Continue => Ok(()),
            Inbound::Reply(text) => self.send_text(text, REPLY_ATTEMPTS).await,
            Inbound::Leave(reason) => Err(reason),
        }
    }

    /// The next audio chunk (or news that this client lost some), with `queued`
    /// chunks still waiting behind it.
    async fn on_chunk(&mut self, chunk: Result<Arc<Chunk>, RecvError>, queued: usize) -> Step {
        let chunk = match chunk {
            Ok(c) => c,
            Err(RecvError::Lagged(n)) => {
                self.dropped += n;
                self.guard.add_dropped(n);
                self.behind_since.get_or_insert_with(Instant::now);
                tracing::debug!(lost = n, "client fell behind; dropped its oldest chunks");
                return Ok(());
            }
            Err(RecvError::Closed) => {
                tracing::error!("the source has stopped");
                return Err(DisconnectReason::Error);
            }
        };
        self.check_lag(queued)?;
        self.send_chunk(&chunk).await?;
        let latency_us = chunk.produced_at.elapsed().as_micros() as u64;
        self.state.hub.metrics.record_send(latency_us);
        Ok(())
    }

    /// Sends one chunk in the client's encoding: its binary frame, or the
    /// compatibility texts it completes.
    async fn send_chunk(&mut self, chunk: &Chunk) -> Step {
        match self.options.dialect {
            Dialect::Native => {
                self.send_audio(Message::Binary(chunk.frame(self.options.codec)))
                    .await
            }
            Dialect::Compat => {
                for text in chunk.compat_texts() {
                    self.send_audio(Message::Text(text.clone())).await?;
                }
                Ok(())
            }
        }
    }

    async fn send_audio(&mut self, message: Message) -> Step {
        if let Err(reason) = self.send(message, 1).await {
            if reason == DisconnectReason::SendTimeout {
                tracing::warn!("audio write timed out; dropping the client");
            }
            return Err(reason);
        }
        Ok(())
    }

    /// Drops the client once it has stayed more than half a queue behind for
    /// longer than the lag limit.
    fn check_lag(&mut self, queued: usize) -> Step {
        let config = &self.state.config;
        if queued * 2 < config.client_queue {
            self.behind_since = None;
            return Ok(());
        }
        let since = *self.behind_since.get_or_insert_with(Instant::now);
        if since.elapsed() > config.max_lag {
            tracing::warn!(dropped = self.dropped, "client too slow; dropping it");
            return Err(DisconnectReason::Lag);
        }
        Ok(())
    }

    /// An announcement for every client (`params`, a source's `status`).
    async fn on_event(&mut self, event: Result<Utf8Bytes, RecvError>) -> Step {
        match event {
            Ok(text) => self.send(Message::Text(text), REPLY_ATTEMPTS).await,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(lost = n, "client missed announcements");
                Ok(())
            }
            Err(RecvError::Closed) => Err(DisconnectReason::Error),
        }
    }

    /// Drops a client that missed too many heartbeats, else pings it: at the
    /// transport level, which browsers answer by themselves, and in the native
    /// protocol also with a JSON `ping` (the original client knows none).
    async fn on_heartbeat(&mut self) -> Step {
        if self.heard_since_ping {
            self.missed = 0;
        } else {
            self.missed += 1;
            if self.missed >= self.state.config.missed_pongs {
                tracing::warn!(
                    missed = self.missed,
                    "no answer to the heartbeat; dropping the client"
                );
                return Err(DisconnectReason::Heartbeat);
            }
        }
        self.heard_since_ping = false;
        if self.options.dialect == Dialect::Native {
            self.send_text(ping_message(crate::unix_now_s()), 1).await?;
        }
        self.send(Message::Ping(Bytes::from_static(b"hb")), 1).await
    }

    /// The periodic `status`, with `queued` chunks waiting for this client.
    async fn on_status(&mut self, queued: usize) -> Step {
        let hub = &self.state.hub;
        let m = hub.metrics.snapshot();
        let info = StatusInfo {
            state: m.source.name(),
            level: m.level.name(),
            buffer_depth: queued,
            dropped: self.dropped,
            clients: hub.client_count(),
            seq: m.last_seq,
            phrase_index: m.phrase_index,
        };
        self.send_text(status_message(&info), 1).await
    }

    async fn on_message(&mut self, message: Message) -> Inbound {
        let dialect = self.options.dialect;
        let parsed = match message {
            Message::Text(text) => parse_client_text(&text, dialect),
            Message::Binary(bytes) => parse_client_bytes(&bytes, dialect),
            Message::Ping(_) | Message::Pong(_) => return Inbound::Continue,
            Message::Close(_) => return Inbound::Leave(DisconnectReason::Closed),
        };
        let result = match parsed {
            Err(e) => {
                self.state.hub.metrics.count_control_error();
                Err(e)
            }
            Ok(ClientMessage::Pong) => return Inbound::Continue,
            Ok(ClientMessage::Ping) => return Inbound::Reply(compat_pong(crate::unix_now_s())),
            Ok(ClientMessage::ClientStats {
                underruns,
                buffered_ms,
            }) => {
                self.guard.set_client_stats(underruns, buffered_ms);
                tracing::debug!(?underruns, ?buffered_ms, "client stats");
                return Inbound::Continue;
            }
            Ok(control_message) => {
                let rate = self.state.config.control_rate_per_s;
                let limiter = self.limiter.get_or_insert_with(|| RateLimiter::new(rate));
                control::apply(&self.state, self.role, limiter, &control_message)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            // The `params` announcement reaches this client through the hub.
            Ok(()) => {
                tracing::info!("control change applied");
                Inbound::Continue
            }
            Err(e) => {
                tracing::info!(code = e.code.name(), field = ?e.field, "client message rejected");
                Inbound::Reply(match dialect {
                    Dialect::Native => error_message(&e, true),
                    Dialect::Compat => compat_error(&e),
                })
            }
        }
    }
}

/// The heartbeat and `status` timers, each first firing one period from now.
fn timers(config: &Config) -> (Interval, Interval) {
    let start = tokio::time::Instant::now();
    let timer = |period: Duration| {
        let mut t = tokio::time::interval_at(start + period, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    };
    (timer(config.heartbeat), timer(config.status_interval))
}

/// The source thread started or stopped running.
fn on_source_change(alive: bool) -> Step {
    if alive {
        Ok(())
    } else {
        tracing::error!("the audio source has stopped");
        Err(DisconnectReason::Error)
    }
}

/// Whether a read failed because the client's message is over
/// [`TRANSPORT_MAX_MESSAGE`].
fn is_too_big(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    std::error::Error::source(e)
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(|inner| matches!(inner, Error::Capacity(CapacityError::MessageTooLong { .. })))
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Close(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use futures_util::{sink, stream};
    use serde_json::Value;
    use tokio::sync::mpsc;

    /// A session over channels: what the server writes arrives on the returned
    /// receiver; what the test sends on the returned sender is what the server reads.
    fn channel_session(
        state: &AppState,
        options: ClientOptions,
    ) -> (
        mpsc::UnboundedSender<Message>,
        mpsc::UnboundedReceiver<Message>,
        tokio::task::JoinHandle<()>,
    ) {
        let (to_server, from_test) = mpsc::unbounded_channel::<Message>();
        let (to_test, from_server) = mpsc::unbounded_channel::<Message>();
        let sink = Box::pin(sink::unfold(to_test, |tx, m: Message| async move {
            tx.send(m).map_err(axum::Error::new)?;
            Ok::<_, axum::Error>(tx)
        }));
        let stream = Box::pin(stream::unfold(from_test, |mut rx| async move {
            rx.recv().await.map(|m| (Ok::<_, axum::Error>(m), rx))
        }));
        let task = tokio::spawn(serve_client(state.clone(), options, sink, stream));
        (to_server, from_server, task)
    }

    async fn next_text(rx: &mut mpsc::UnboundedReceiver<Message>) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(3), rx.recv())
                .await
                .expect("a message in time")
                .expect("the session is running");
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).expect("JSON");
            }
        }
    }

    #[tokio::test]
    async fn a_session_over_channels_greets_validates_and_cleans_up() {
        let config = Config {
            port: 0,
            sample_rate: 8000,
            ..Config::default()
        };
        let (state, _shutdown) = crate::build_state(config).expect("state");
        let (tx, mut rx, task) = channel_session(&state, ClientOptions::default());
        let hello = next_text(&mut rx).await;
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["format"]["codec"], "s16");
        assert_eq!(state.hub.client_count(), 1);
        tx.send(Message::text(r#"{"type":"update_params","intensity":2}"#))
            .expect("send");
        let err = loop {
            let v = next_text(&mut rx).await;
            if v["type"] == "error" {
                break v;
            }
        };
        assert_eq!(err["field"], "intensity");
        // Audio keeps coming.
        let frame = loop {
            match rx.recv().await {
                Some(Message::Binary(b)) => break b,
                Some(_) => {}
                None => panic!("session ended"),
            }
        };
        assert!(crate::protocol::FrameHeader::parse(&frame).is_ok());
        tx.send(Message::Close(None)).expect("send");
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .expect("ends in time")
            .expect("no panic");
        assert_eq!(state.hub.client_count(), 0);
        state.pump.stop();
    }
}
