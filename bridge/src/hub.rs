//! Fan-out: the source publishes each chunk once as an `Arc<Chunk>` whose encodings
//! (binary s16, binary f32) are each made once, on first use, and then shared by
//! reference with every client. Its Opus frame, Ogg page and compatibility texts
//! are made by the source's pump before publishing, since those are stateful.
//!
//! Each client reads the chunks through its own cursor into a bounded broadcast ring
//! (`tokio::sync::broadcast`): publishing never waits, and a client that falls more
//! than the ring's capacity behind loses its *oldest* chunks, which it sees as a
//! sequence gap and which are counted. The registry of connected clients enforces
//! the client limit and removes a client when its guard drops, whatever the reason.
//!
//! The hub also keeps the last few chunks (the burst, as Icecast's burst-on-connect
//! does): a new listener gets them at once, then the live stream with no gap or
//! repeat between the two, so its player starts with a cushion of audio.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::codec::{Encodings, OpusPart};
use crate::metrics::Metrics;
pub use crate::metrics::{DisconnectReason, LATENCY_BUCKETS_S};
use crate::protocol::{encode_frame, Codec, FrameHeader, FLAG_IDLE};

/// One chunk of interleaved audio and its lazily made, shared encodings.
#[derive(Debug)]
pub struct Chunk {
    /// Header fields (its `codec` is ignored; each encoding sets its own).
    pub header: FrameHeader,
    /// Interleaved samples, all finite and within [-1, 1].
    pub samples: Vec<f32>,
    /// When the source finished it (for latency figures).
    pub produced_at: Instant,
    s16: OnceLock<Bytes>,
    f32: OnceLock<Bytes>,
    opus: Option<OpusPart>,
    compat: Vec<Utf8Bytes>,
}

impl Chunk {
    /// A chunk of `samples` described by `header`.
    #[must_use]
    pub fn new(header: FrameHeader, samples: Vec<f32>) -> Self {
        Self {
            header,
            samples,
            produced_at: Instant::now(),
            s16: OnceLock::new(),
            f32: OnceLock::new(),
            opus: None,
            compat: Vec::new(),
        }
    }

    /// This chunk with its stateful encodings.
    #[must_use]
    pub fn with_encodings(self, encodings: Encodings) -> Self {
        Self {
            opus: Some(encodings.opus),
            compat: encodings.compat,
            ..self
        }
    }

    /// The binary frame in `codec`, encoded on first use and shared afterwards.
    /// A chunk published without Opus (only tests make one) has an empty Opus
    /// frame.
    pub fn frame(&self, codec: Codec) -> Bytes {
        let cell = match codec {
            Codec::S16 => &self.s16,
            Codec::F32 => &self.f32,
            Codec::Opus => {
                return self
                    .opus
                    .as_ref()
                    .map_or_else(Bytes::new, |o| o.frame.clone())
            }
        };
        cell.get_or_init(|| {
            encode_frame(
                &FrameHeader {
                    codec,
                    ..self.header
                },
                &self.samples,
            )
        })
        .clone()
    }

    /// The compatibility `audio_chunk` texts this chunk completes, oldest first
    /// (none for a chunk published without its stateful encodings, which only
    /// tests make).
    #[must_use]
    pub fn compat_texts(&self) -> &[Utf8Bytes] {
        &self.compat
    }

    /// The Ogg page of `/stream.opus` that this chunk completes (`None`: no Opus,
    /// or its packets all went into the next page).
    #[must_use]
    pub fn ogg_page(&self) -> Option<&Bytes> {
        self.opus
            .as_ref()
            .map(|o| &o.page)
            .filter(|p| !p.is_empty())
    }

    /// Whether the source was idle for this chunk.
    #[must_use]
    pub const fn idle(&self) -> bool {
        self.header.flags & FLAG_IDLE != 0
    }
}

/// The role a connection has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May listen and control.
    Controller,
    /// May only listen.
    Listener,
}

impl Role {
    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Controller => "controller",
            Self::Listener => "listener",
        }
    }
}

/// What the registry knows about a connected client (for `/api/status`).
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// Connection id (also in every log line about it).
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// `binary-s16`, `binary-f32` or `json`.
    pub format: String,
    /// Seconds since it connected.
    pub connected_s: f64,
    /// Chunks it lost by falling behind.
    pub dropped: u64,
    /// Underruns it reported with `client_stats`.
    pub underruns: Option<u64>,
    /// Buffer it reported with `client_stats`, in milliseconds.
    pub buffered_ms: Option<f64>,
    #[serde(skip)]
    connected_at: Option<Instant>,
}

/// Over the client limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server at capacity (max_clients = {max})")]
pub struct ClientLimit {
    /// The limit.
    pub max: usize,
}

/// Locks one of the hub's maps or queues. A panic while holding the lock leaves it
/// consistent (every update is a single insert, remove, push or field store), so a
/// poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fan-out hub.
#[derive(Debug)]
pub struct Hub {
    audio: broadcast::Sender<Arc<Chunk>>,
    /// The newest chunks, oldest first, at most `burst` of them. Publishing and
    /// subscribing hold its lock, so a subscriber's burst ends just before the
    /// first chunk its live cursor sees.
    recent: Mutex<VecDeque<Arc<Chunk>>>,
    burst: usize,
    events: broadcast::Sender<Utf8Bytes>,
    clients: Mutex<BTreeMap<u64, ClientInfo>>,
    count: AtomicUsize,
    next_id: AtomicU64,
    max_clients: usize,
    started: Instant,
    /// Shared counters.
    pub metrics: Metrics,
}

impl Hub {
    /// A hub holding at most `queue` chunks per client and `max_clients` clients.
    #[must_use]
    pub fn new(queue: usize, max_clients: usize) -> Self {
        let (audio, _) = broadcast::channel(queue.max(1));
        let (events, _) = broadcast::channel(64);
        Self {
            audio,
            recent: Mutex::new(VecDeque::new()),
            burst: 0,
            events,
            clients: Mutex::new(BTreeMap::new()),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            max_clients,
            started: Instant::now(),
            metrics: Metrics::default(),
        }
    }

    /// The same hub, keeping the newest `chunks` chunks for new listeners.
    #[must_use]
    pub fn with_burst(mut self, chunks: usize) -> Self {
        self.burst = chunks;
        self.recent = Mutex::new(VecDeque::with_capacity(chunks + 1));
        self
    }

    /// Publishes a chunk to every client. Never waits for a client (the lock is
    /// only ever held for a queue push or a copy of a few pointers).
    pub fn publish(&self, chunk: Arc<Chunk>) {
        self.metrics.record_chunk(
            chunk.header.seq,
            chunk.header.level,
            chunk.idle(),
            self.uptime(),
        );
        let mut recent = lock(&self.recent);
        if self.burst > 0 {
            recent.push_back(Arc::clone(&chunk));
            if recent.len() > self.burst {
                recent.pop_front();
            }
        }
        // An error only means that no client is connected right now.
        let _ = self.audio.send(chunk);
    }

    /// Sends a text message (e.g. `params`) to every client. Never waits.
    pub fn announce(&self, text: String) {
        // An error only means that no client is connected right now.
        let _ = self.events.send(Utf8Bytes::from(text));
    }

    /// A new cursor into the audio ring, starting at the next chunk.
    #[must_use]
    pub fn subscribe_audio(&self) -> broadcast::Receiver<Arc<Chunk>> {
        self.audio.subscribe()
    }

    /// A new listener's view: the burst of recent chunks (oldest first), and a
    /// cursor whose first chunk is the one after the burst's last.
    #[must_use]
    pub fn subscribe_audio_with_burst(&self) -> (Vec<Arc<Chunk>>, broadcast::Receiver<Arc<Chunk>>) {
        let recent = lock(&self.recent);
        (recent.iter().cloned().collect(), self.audio.subscribe())
    }

    /// A new cursor into the announcements.
    #[must_use]
    pub fn subscribe_events(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.events.subscribe()
    }

    /// Time since the hub was made.
    #[must_use]
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Age of the newest chunk, if any was published.
    #[must_use]
    pub fn last_chunk_age(&self) -> Option<std::time::Duration> {
        let at = self.metrics.snapshot().last_chunk_at?;
        Some(self.uptime().saturating_sub(at))
    }

    /// Clients connected.
    #[must_use]
    pub fn client_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The client limit.
    #[must_use]
    pub const fn max_clients(&self) -> usize {
        self.max_clients
    }

    fn registry(&self) -> MutexGuard<'_, BTreeMap<u64, ClientInfo>> {
        lock(&self.clients)
    }

    /// Registers a client, unless the limit is reached. The client stays registered
    /// until the returned guard drops.
    ///
    /// # Errors
    /// [`ClientLimit`] when `max_clients` are connected.
    pub fn register(
        self: &Arc<Self>,
        role: Role,
        format: &str,
    ) -> Result<ClientGuard, ClientLimit> {
        let mut clients = self.registry();
        if clients.len() >= self.max_clients {
            self.metrics.count_client_rejected();
            return Err(ClientLimit {
                max: self.max_clients,
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        clients.insert(
            id,
            ClientInfo {
                id,
                role,
                format: format.to_owned(),
                connected_s: 0.0,
                dropped: 0,
                underruns: None,
                buffered_ms: None,
                connected_at: Some(Instant::now()),
            },
        );
        self.count.store(clients.len(), Ordering::Release);
        Ok(ClientGuard {
            hub: Arc::clone(self),
            id,
        })
    }

    /// The connected clients.
    #[must_use]
    pub fn clients(&self) -> Vec<ClientInfo> {
        self.registry()
            .values()
            .map(|c| ClientInfo {
                connected_s: c.connected_at.map_or(0.0, |t| t.elapsed().as_secs_f64()),
                ..c.clone()
            })
            .collect()
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut ClientInfo)) {
        if let Some(c) = self.registry().get_mut(&id) {
            f(c);
        }
    }
}

/// A registered client; dropping it removes the client from the hub.
#[derive(Debug)]
pub struct ClientGuard {
    hub: Arc<Hub>,
    id: u64,
}

impl ClientGuard {
    /// The client's id.
    #[must_use]
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// Counts chunks this client lost.
    pub fn add_dropped(&self, n: u64) {
        self.hub.metrics.add_dropped(n);
        self.hub.update(self.id, |c| c.dropped += n);
    }

    /// Records what the client reported with `client_stats`.
    pub fn set_client_stats(&self, underruns: Option<u64>, buffered_ms: Option<f64>) {
        self.hub.update(self.id, |c| {
            c.underruns = underruns.or(c.underruns);
            c.buffered_ms = buffered_ms.or(c.buffered_ms);
        });
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut clients = self.hub.registry();
        clients.remove(&self.id);
        self.hub.count.store(clients.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u64) -> Arc<Chunk> {
        Arc::new(Chunk::new(
            FrameHeader {
                codec: Codec::S16,
                channels: 2,
                sample_rate: 8000,
                seq,
                position_frames: seq * 4,
                server_time_s: 0.0,
                frames: 4,
                level: 0,
                flags: 0,
            },
            vec![0.1; 8],
        ))
    }

    #[test]
    fn encodings_are_made_once_and_shared() {
        let c = chunk(0);
        let a = c.frame(Codec::S16);
        let b = c.frame(Codec::S16);
        assert_eq!(a.as_ptr(), b.as_ptr(), "same buffer, not a copy");
        assert_ne!(c.frame(Codec::F32).len(), a.len());
    }

    #[test]
    fn a_slow_reader_loses_the_oldest_chunks() {
        let hub = Hub::new(4, 10);
        let mut rx = hub.subscribe_audio();
        for seq in 0..10 {
            hub.publish(chunk(seq));
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("expected a lag, got {other:?}"),
        }
        let next = rx.try_recv().expect("the newest chunks remain");
        assert_eq!(next.header.seq, 6);
    }

    #[test]
    fn a_new_listener_gets_the_burst_then_the_live_stream_without_gap_or_repeat() {
        let hub = Hub::new(16, 10).with_burst(3);
        assert!(hub.subscribe_audio_with_burst().0.is_empty(), "nothing yet");
        for seq in 0..5 {
            hub.publish(chunk(seq));
        }
        let (burst, mut live) = hub.subscribe_audio_with_burst();
        let seqs: Vec<u64> = burst.iter().map(|c| c.header.seq).collect();
        assert_eq!(seqs, [2, 3, 4], "the newest three, oldest first");
        hub.publish(chunk(5));
        assert_eq!(live.try_recv().expect("live").header.seq, 5);
        let none = Hub::new(16, 10);
        none.publish(chunk(0));
        assert!(
            none.subscribe_audio_with_burst().0.is_empty(),
            "no burst by default"
        );
    }

    #[test]
    fn the_limit_holds_and_guards_unregister() {
        let hub = Arc::new(Hub::new(4, 2));
        let a = hub.register(Role::Listener, "json").expect("first");
        let _b = hub.register(Role::Listener, "json").expect("second");
        assert_eq!(
            hub.register(Role::Listener, "json").expect_err("third"),
            ClientLimit { max: 2 }
        );
        assert_eq!(hub.client_count(), 2);
        drop(a);
        assert_eq!(hub.client_count(), 1);
        assert!(hub.register(Role::Listener, "json").is_ok());
    }
}
