//! `GET /stream.opus`: the stream as endless Ogg/Opus (`audio/ogg`, RFC 7845), the
//! standard URL that VLC, mpv, ffplay, smart speakers and a browser's `<audio>`
//! open.
//!
//! A listener is a client like a WebSocket one: it counts against the client
//! limit, is listed in `/api/status` (format `ogg-opus`) and its bytes and sends
//! go into `/metrics`. It gets its own two header pages (OpusHead and OpusTags
//! naming the piece), then the pages the pump made once for everyone, from the
//! live edge. The slow-client rules are the WebSocket's: a listener that falls
//! behind loses its oldest pages, and one that stays behind for the lag limit or
//! whose write stalls past the send timeout is dropped, never slowing the others.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument as _;

use crate::hub::{Chunk, ClientGuard, DisconnectReason, Role};
use crate::AppState;

/// Pages queued between the feeding task and the socket.
const OUTBOX_PAGES: usize = 4;

/// `GET /stream.opus`.
pub async fn stream_opus_handler(State(state): State<AppState>) -> Response {
    let guard = match state.hub.register(Role::Listener, "ogg-opus") {
        Ok(g) => g,
        Err(limit) => {
            tracing::warn!(
                max_clients = limit.max,
                "refused a /stream.opus listener: {limit}"
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                limit.to_string(),
            )
                .into_response();
        }
    };
    let span = tracing::info_span!("ogg_listener", id = guard.id());
    let (tx, rx) = mpsc::channel::<Bytes>(OUTBOX_PAGES);
    let preamble = state.pump.ogg_headers().preamble(&tags(&state));
    let (burst, audio) = state.hub.subscribe_audio_with_burst();
    tokio::spawn(
        async move {
            tracing::info!("listener connected");
            let reason = Feed {
                state: &state,
                guard: &guard,
                tx,
            }
            .run(preamble, burst, audio)
            .await;
            tracing::info!(reason = reason.name(), "listener left");
            state.hub.metrics.count_disconnect(reason);
        }
        .instrument(span),
    );
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|page| (Ok::<_, Infallible>(page), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "audio/ogg"),
            (header::CACHE_CONTROL, "no-cache, no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The OpusTags comments: what is playing (the preset, key and mode); the
/// Icecast mounts' streams carry the same.
pub(crate) fn tags(state: &AppState) -> Vec<(&'static str, String)> {
    let p = state.pump.params();
    let preset = p.preset.unwrap_or("custom");
    vec![
        ("TITLE", format!("Auralis: {preset}")),
        ("ARTIST", "Auralis".to_owned()),
        (
            "COMMENT",
            format!(
                "{} {}, {:.0} BPM, intensity {:.2}, seed {}",
                p.compose.key,
                p.compose.mode.name(),
                p.compose.bpm,
                p.compose.intensity,
                state.config.piece.seed
            ),
        ),
        (
            "ENCODER",
            format!("auralis-bridge {}", env!("CARGO_PKG_VERSION")),
        ),
    ]
}

/// One listener's task: moves the shared pages into its outbox.
struct Feed<'a> {
    state: &'a AppState,
    guard: &'a ClientGuard,
    tx: mpsc::Sender<Bytes>,
}

impl Feed<'_> {
    async fn run(
        &self,
        preamble: Bytes,
        burst: Vec<Arc<Chunk>>,
        mut audio: broadcast::Receiver<Arc<Chunk>>,
    ) -> DisconnectReason {
        let mut shutdown = self.state.shutdown.clone();
        if let Err(reason) = self.send(preamble).await {
            return reason;
        }
        for page in burst.iter().filter_map(|c| c.ogg_page()) {
            if let Err(reason) = self.send(page.clone()).await {
                return reason;
            }
        }
        let mut behind_since = None;
        loop {
            let step = tokio::select! {
                chunk = audio.recv() => self.on_chunk(chunk, audio.len(), &mut behind_since).await,
                _ = shutdown.changed() => Err(DisconnectReason::Shutdown),
                () = self.tx.closed() => Err(DisconnectReason::Closed),
            };
            if let Err(reason) = step {
                return reason;
            }
        }
    }

    async fn on_chunk(
        &self,
        chunk: Result<Arc<Chunk>, RecvError>,
        queued: usize,
        behind_since: &mut Option<Instant>,
    ) -> Result<(), DisconnectReason> {
        let chunk = match chunk {
            Ok(c) => c,
            Err(RecvError::Lagged(n)) => {
                self.guard.add_dropped(n);
                behind_since.get_or_insert_with(Instant::now);
                return Ok(());
            }
            Err(RecvError::Closed) => return Err(DisconnectReason::Error),
        };
        let config = &self.state.config;
        if queued * 2 < config.client_queue {
            *behind_since = None;
        } else if behind_since.get_or_insert_with(Instant::now).elapsed() > config.max_lag {
            tracing::warn!("listener too slow; dropping it");
            return Err(DisconnectReason::Lag);
        }
        let Some(page) = chunk.ogg_page() else {
            return Ok(());
        };
        self.send(page.clone()).await?;
        let latency_us = chunk.produced_at.elapsed().as_micros() as u64;
        self.state.hub.metrics.record_send(latency_us);
        Ok(())
    }

    /// Queues `bytes` for the socket, waiting at most the send timeout for room.
    async fn send(&self, bytes: Bytes) -> Result<(), DisconnectReason> {
        let len = bytes.len() as u64;
        match self
            .tx
            .send_timeout(bytes, self.state.config.send_timeout)
            .await
        {
            Ok(()) => {
                self.state.hub.metrics.add_bytes_out(len);
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!("write timed out; dropping the listener");
                Err(DisconnectReason::SendTimeout)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(DisconnectReason::Closed),
        }
    }
}
