//! The Auralis bridge: streams the engine live to any number of WebSocket listeners
//! (DESIGN.md §8), with the original server's network resilience (seed §3, §5–§7).
//!
//! ```text
//! Source (own thread, real-time pace) ─► Hub (encode once, bounded ring per client)
//!                                          ├─► ws client task ─► socket   (× N)
//!   control (ws / POST /api/control) ◄────┘    heartbeat, send timeout, lag limit
//! ```
//!
//! [`start`] binds the listener and returns a [`Running`] bridge; [`app`] builds the
//! router alone, so HTTP handlers can be tested without a socket.

pub mod calendar;
pub mod client_dir;
pub mod codec;
pub mod config;
pub mod control;
pub mod http;
pub mod hub;
pub mod icecast;
pub mod logging;
pub mod metrics;
pub mod procstat;
pub mod protocol;
pub mod recording;
pub mod source;
pub mod stream_opus;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auralis::engine::EngineError;
use axum::serve::ListenerExt as _;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

pub use crate::config::Config;
use crate::config::SourceSpec;
pub use crate::http::app;
use crate::hub::Hub;
use crate::source::{EmbeddedSource, Pump, PumpError, ShmSource, Source};

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The fan-out hub and its counters.
    pub hub: Arc<Hub>,
    /// The source thread.
    pub pump: Arc<Pump>,
    /// Turns `true` when the bridge shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Rate limit of `POST /api/control` (one bucket for all HTTP callers).
    pub http_limiter: Arc<tokio::sync::Mutex<control::RateLimiter>>,
    /// The Icecast mounts this bridge feeds.
    pub icecast: Arc<icecast::Icecast>,
    /// Recordings of what the source played (`None`: a source that cannot be
    /// replayed, such as `shm:`).
    pub recording: Option<Arc<recording::Recording>>,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The embedded engine could not be built.
    #[error("could not start the embedded engine: {0}")]
    Engine(#[from] EngineError),
    /// The source thread could not be spawned.
    #[error(transparent)]
    Pump(#[from] PumpError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Builds the shared state around a source (without a listener).
///
/// # Errors
/// [`StartError`] when the source or its thread cannot start.
pub fn build_state(config: Config) -> Result<(AppState, watch::Sender<bool>), StartError> {
    let source = open_source(&config)?;
    build_state_with(config, source)
}

/// Opens the source the configuration names.
///
/// # Errors
/// [`StartError::Engine`] when the embedded engine cannot be built.
pub fn open_source(config: &Config) -> Result<Box<dyn Source>, StartError> {
    Ok(match &config.source {
        SourceSpec::Embedded => Box::new(EmbeddedSource::new(
            config.sample_rate,
            config.piece,
            config.frames_per_chunk() as usize,
            config.degrade_on_cpu.then_some(config.cpu_ceiling_pct),
            config.recording_window,
        )?),
        SourceSpec::Shm(name) => Box::new(ShmSource::new(name, config.sample_rate)),
    })
}

/// Builds the shared state around a given source; chunks are `config.chunk_ms` long
/// at the source's own sample rate.
///
/// # Errors
/// [`StartError`] when the source thread cannot start.
pub fn build_state_with(
    config: Config,
    source: Box<dyn Source>,
) -> Result<(AppState, watch::Sender<bool>), StartError> {
    let frames = source.info().sample_rate * config.chunk_ms / 1000;
    let hub = Arc::new(
        Hub::new(config.client_queue, config.max_clients).with_burst(config.burst_chunks()),
    );
    let pump = Arc::new(Pump::spawn(
        source,
        frames,
        config.opus_kbps,
        Arc::clone(&hub),
    )?);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let http_limiter = Arc::new(tokio::sync::Mutex::new(control::RateLimiter::new(
        config.control_rate_per_s,
    )));
    let icecast = Arc::new(icecast::Icecast::new(&config.icecast));
    let recording = pump
        .recording()
        .map(|log| {
            recording::Recording::start(log, config.recording_renders, config.recording_checkpoint)
        })
        .transpose()
        .map_err(PumpError::Thread)?
        .map(Arc::new);
    let state = AppState {
        config: Arc::new(config),
        hub,
        pump,
        shutdown,
        http_limiter,
        icecast,
        recording,
    };
    Ok((state, shutdown_tx))
}

/// Binds a listener whose accepted sockets inherit a send buffer of `send_buffer_kb`,
/// so a client that stops reading blocks its writes (and is dropped) after a bounded
/// amount of audio instead of several megabytes.
fn listen(addr: SocketAddr, send_buffer_kb: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(send_buffer_kb.saturating_mul(1024))?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A bridge that is serving.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    state: AppState,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the source and serves HTTP and WebSocket clients on the configured address.
///
/// # Errors
/// [`StartError`] when the source cannot start or the address cannot be bound.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let source = open_source(&config)?;
    start_with_source(config, source).await
}

/// Like [`start`], with a source of the caller's (for other sources and for fault
/// injection in tests).
///
/// # Errors
/// [`StartError`] when the source thread cannot start or the address cannot be bound.
pub async fn start_with_source(
    config: Config,
    source: Box<dyn Source>,
) -> Result<Running, StartError> {
    let bind = config.bind_addr();
    let listener = listen(bind, config.send_buffer_kb)
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let (state, shutdown) = build_state_with(config, source)?;
    let router = app(state.clone());
    let mut stopping = state.shutdown.clone();
    let server = tokio::spawn(async move {
        let listener = listener.tap_io(|tcp| {
            // Audio chunks should leave at once rather than wait for more data.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // An error means the sender is gone: shut down then too.
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, source = %state.pump.info().name, "bridge listening");
    state.icecast.spawn(&state);
    Ok(Running {
        addr,
        state,
        shutdown,
        server,
    })
}

impl Running {
    /// The address actually bound (useful with port 0).
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state.
    #[must_use]
    pub const fn state(&self) -> &AppState {
        &self.state
    }

    /// Shuts down: every client gets close 1001, the server stops accepting, the
    /// source thread stops. Each step is bounded in time.
    pub async fn shutdown(self) {
        tracing::info!(clients = self.state.hub.client_count(), "shutting down");
        self.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.state.hub.client_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let abort = self.server.abort_handle();
        match tokio::time::timeout(Duration::from_secs(3), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!("server did not stop in time; aborting it");
                abort.abort();
            }
        }
        let pump = Arc::clone(&self.state.pump);
        // Joining the source thread blocks briefly (it finishes one chunk at most).
        if tokio::task::spawn_blocking(move || pump.stop())
            .await
            .is_err()
        {
            tracing::error!("could not stop the source thread");
        }
        tracing::info!("stopped");
    }
}
