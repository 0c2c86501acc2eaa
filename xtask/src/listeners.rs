//! WebSocket listeners of `/ws/stream` for the load test, the bridge benchmark and
//! the soak: many concurrent connections in one tokio process, each decoding the
//! binary frame header with the bridge's own decoder and recording its chunks,
//! chunk rate, longest wait between chunks, sequence gaps and how it was closed.
//! `/stream.opus` listeners ([`OggListener`]) count Ogg pages the same way, by
//! their page sequence numbers.
//!
//! Per chunk a listener only parses the 44-byte header (or the Ogg page header)
//! and updates a few counters, so hundreds of them fit beside the bridge on a
//! small machine.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use auralis_bridge::protocol::FrameHeader;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The longest wait between two chunks that still counts as an unbroken stream
/// (the benchmark's criterion and the load test's default).
pub const MAX_HEALTHY_GAP: Duration = Duration::from_millis(250);
/// Connections opened at once while a crowd connects.
const CONNECT_CONCURRENCY: usize = 32;
/// Longest a connection (TCP and WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the stream is: `ws://host:port/path?query`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The socket address of `host:port`.
    pub addr: SocketAddr,
    /// The URL without its query.
    pub url: String,
}

impl Target {
    /// Parses a `ws://host:port/path` URL (no query; `wss://` is not supported).
    ///
    /// # Errors
    /// When the URL is not of that form or its host does not resolve.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .with_context(|| format!("--url {url:?}: expected ws://host:port/ws/stream"))?;
        if rest.contains('?') {
            bail!("--url {url:?}: give the URL without a query string");
        }
        let (authority, _path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .with_context(|| format!("--url {url:?}: cannot resolve {authority:?}"))?
            .next()
            .with_context(|| format!("--url {url:?}: {authority:?} has no address"))?;
        Ok(Self {
            addr,
            url: url.to_owned(),
        })
    }

    /// The stream of a bridge listening at `addr`.
    #[must_use]
    pub fn local(addr: SocketAddr) -> Self {
        Self {
            addr,
            url: format!("ws://{addr}/ws/stream"),
        }
    }

    /// The HTTP base URL's address (for `/metrics`).
    #[must_use]
    pub const fn http_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// What one listener saw.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// Audio chunks received in the measured window.
    pub chunks: u64,
    /// Chunks missing from the sequence in the window (the stream skipped them).
    pub missing: u64,
    /// Longest wait between two chunks in the window (including the wait from the
    /// last chunk to the end of the run).
    pub max_gap: Duration,
    /// The longest interval between the server timestamps of two consecutive
    /// chunks in the window: when it is as long as `max_gap`, the source paused,
    /// not the delivery.
    pub max_source_gap: Duration,
    /// Time from the first to the last chunk in the window.
    pub span: Duration,
    /// Stream bytes received in the window (counted by [`OggListener`]s).
    pub bytes: u64,
    /// Binary frames the header decoder rejected.
    pub bad_frames: u64,
    /// `error` messages received, by code.
    pub errors: Vec<String>,
    /// `params` announcements received.
    pub params: u64,
    /// The server's close frame (code and reason), if it closed the connection.
    pub close: Option<(u16, String)>,
    /// The transport error that ended the connection, if any.
    pub failure: Option<String>,
}

impl ClientReport {
    /// Chunks per second over the window.
    #[must_use]
    pub fn rate(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if self.chunks < 2 || secs <= 0.0 {
            0.0
        } else {
            (self.chunks - 1) as f64 / secs
        }
    }

    /// Whether the listener got every chunk of the window, never waited
    /// `gap_limit` or more for one, and stayed connected to the end.
    #[must_use]
    pub fn healthy(&self, gap_limit: Duration) -> bool {
        self.chunks > 0
            && self.missing == 0
            && self.max_gap < gap_limit
            && self.bad_frames == 0
            && self.close.is_none()
            && self.failure.is_none()
    }
}

/// Counts the chunks (or pages) of one listener as they arrive.
#[derive(Debug, Default)]
struct Tally {
    /// Sequence number, arrival and server time (when known) of the newest one.
    last: Option<(u64, Instant, Option<f64>)>,
    first_counted: Option<Instant>,
}

impl Tally {
    /// Records a chunk with sequence number `seq` arriving `now`; counted only
    /// from `measure_from` on (but checked against the ones before).
    fn note(
        &mut self,
        report: &mut ClientReport,
        measure_from: Instant,
        now: Instant,
        seq: u64,
        server_time_s: Option<f64>,
    ) {
        if now >= measure_from {
            report.chunks += 1;
            let first = *self.first_counted.get_or_insert(now);
            report.span = now - first;
            if let Some((last_seq, at, server_at)) = self.last {
                report.max_gap = report.max_gap.max(now - at);
                report.missing += seq.saturating_sub(last_seq + 1);
                if let (Some(a), Some(b)) = (server_at, server_time_s) {
                    let source_gap = b - a;
                    if source_gap.is_finite() && source_gap > 0.0 {
                        report.max_source_gap = report
                            .max_source_gap
                            .max(Duration::from_secs_f64(source_gap));
                    }
                }
            }
        }
        self.last = Some((seq, now, server_time_s));
    }

    /// Ends the run: the wait since the last chunk counts as a gap too.
    fn finish(&self, report: &mut ClientReport) {
        if let Some((_, at, _)) = self.last.filter(|_| report.chunks > 0) {
            report.max_gap = report.max_gap.max(Instant::now() - at);
        }
    }
}

/// How a listener leaves at the end of its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// A WebSocket close handshake (code 1000).
    Close,
    /// The TCP connection is reset without a close frame, as when a client crashes.
    Abort,
}

/// One connected listener.
#[derive(Debug)]
pub struct Listener {
    ws: WebSocketStream<TcpStream>,
}

/// Opens `/ws/stream` at `target` with `query` (`""` or `"?token=..."`).
///
/// # Errors
/// When the TCP connection or the WebSocket handshake fails or takes too long.
pub async fn connect(target: &Target, query: &str) -> Result<Listener> {
    connect_with_receive_buffer(target, query, None).await
}

/// [`connect`] with the socket's kernel receive buffer set to `receive_buffer`
/// bytes (a small one makes a client that stops reading block the server's writes
/// soon).
///
/// # Errors
/// As [`connect`].
pub async fn connect_with_receive_buffer(
    target: &Target,
    query: &str,
    receive_buffer: Option<u32>,
) -> Result<Listener> {
    let url = format!("{}{query}", target.url);
    let handshake = async {
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes)?;
        }
        let tcp = socket.connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        // Frames are a few tens of KiB: a small buffer per connection keeps a crowd
        // of listeners light.
        let config = WebSocketConfig::default()
            .read_buffer_size(32 * 1024)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config)).await?;
        anyhow::Ok(ws)
    };
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .with_context(|| format!("connecting to {url} took over {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("cannot connect to {url}"))?;
    Ok(Listener { ws })
}

/// The next message of `outbox`, or never when there is none (or it closed).
async fn next_out(outbox: &mut Option<mpsc::UnboundedReceiver<Message>>) -> Message {
    if let Some(rx) = outbox {
        if let Some(message) = rx.recv().await {
            return message;
        }
        *outbox = None;
    }
    std::future::pending().await
}

impl Listener {
    /// Reads the stream until `stop` resolves (then leaves as it says), the server
    /// closes the connection or it fails. Chunks before `measure_from` are not
    /// counted (but the first counted one is checked against them). Messages from
    /// `outbox` are sent to the server as they come.
    pub async fn run(
        mut self,
        measure_from: Instant,
        stop: impl Future<Output = Leave>,
        mut outbox: Option<mpsc::UnboundedReceiver<Message>>,
    ) -> ClientReport {
        let mut report = ClientReport::default();
        let mut tally = Tally::default();
        tokio::pin!(stop);
        let leave = loop {
            tokio::select! {
                leave = &mut stop => break Some(leave),
                message = next_out(&mut outbox) => {
                    if let Err(e) = self.ws.send(message).await {
                        report.failure = Some(format!("send failed: {e}"));
                        break None;
                    }
                }
                message = self.ws.next() => {
                    let now = Instant::now();
                    match message {
                        Some(Ok(Message::Binary(frame))) => {
                            let Ok((header, _)) = FrameHeader::parse(&frame) else {
                                report.bad_frames += 1;
                                continue;
                            };
                            tally.note(
                                &mut report,
                                measure_from,
                                now,
                                header.seq,
                                Some(header.server_time_s),
                            );
                        }
                        Some(Ok(Message::Text(text))) => {
                            on_text(&mut self.ws, &text, &mut report).await;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            report.close = Some(frame.map_or((1005, String::new()), |f| {
                                (u16::from(f.code), f.reason.to_string())
                            }));
                            break None;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            report.failure = Some(e.to_string());
                            break None;
                        }
                        None => {
                            report.failure = Some("connection ended without a close frame".into());
                            break None;
                        }
                    }
                }
            }
        };
        tally.finish(&mut report);
        match leave {
            Some(Leave::Close) => {
                // The server may already be gone; the report is complete either way.
                let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
            }
            Some(Leave::Abort) => {
                // SO_LINGER 0: dropping the socket sends a reset, not a FIN.
                let _ = self.ws.get_ref().set_zero_linger();
            }
            None => {}
        }
        report
    }
}

/// Handles a JSON text message: answers `ping`, counts `error` and `params`.
async fn on_text(ws: &mut WebSocketStream<TcpStream>, text: &str, report: &mut ClientReport) {
    // Cheap checks first: most text messages are `status` and `ping`.
    if text.contains(r#""type":"ping""#) {
        // Any frame counts as an answer; a failed write shows up on the next read.
        let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
    } else if text.contains(r#""type":"params""#) {
        report.params += 1;
    } else if text.contains(r#""type":"error""#) {
        let code = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        report.errors.push(code);
    }
}

/// Connects `clients` listeners, a few at a time, each with `connect`.
///
/// # Errors
/// When one cannot connect.
pub async fn connect_many<L, F, Fut>(clients: usize, connect: F) -> Result<Vec<L>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<L>>,
{
    futures_util::stream::iter(0..clients)
        .map(|_| connect())
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A listener that a crowd runs to a common end.
pub trait CrowdMember: Send + 'static {
    /// Listens until `end`, counting from `measure_from`; then leaves cleanly.
    fn listen(
        self,
        measure_from: Instant,
        end: Instant,
    ) -> impl Future<Output = ClientReport> + Send;
}

impl CrowdMember for Listener {
    async fn listen(self, measure_from: Instant, end: Instant) -> ClientReport {
        self.run(
            measure_from,
            async move {
                tokio::time::sleep_until(end).await;
                Leave::Close
            },
            None,
        )
        .await
    }
}

/// A listener of `/stream.opus` (HTTP/1.0, so the body is the bare Ogg stream).
#[derive(Debug)]
pub struct OggListener {
    stream: TcpStream,
}

/// Opens `/stream.opus` at `target`.
///
/// # Errors
/// When the connection or the request fails or takes too long.
pub async fn connect_ogg(target: &Target) -> Result<OggListener> {
    connect_ogg_at(target.addr, "/stream.opus").await
}

/// Opens the Ogg stream at `path` on `addr` (the bridge's, or an Icecast mount).
///
/// # Errors
/// When the connection or the request fails or takes too long.
pub async fn connect_ogg_at(addr: SocketAddr, path: &str) -> Result<OggListener> {
    let open = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        anyhow::Ok(stream)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .with_context(|| format!("connecting to {addr} took over {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("cannot open http://{addr}{path}"))?;
    Ok(OggListener { stream })
}

/// The length and page sequence number of the Ogg page at the start of `bytes`,
/// once it is all there; `Err` when `bytes` does not start with a page.
fn ogg_page(bytes: &[u8]) -> Result<Option<(usize, u64)>, ()> {
    const HEADER: usize = 27;
    if bytes.len() < HEADER {
        return if b"OggS".starts_with(&bytes[..bytes.len().min(4)]) {
            Ok(None)
        } else {
            Err(())
        };
    }
    if &bytes[..4] != b"OggS" {
        return Err(());
    }
    let segments = usize::from(bytes[26]);
    let Some(table) = bytes.get(HEADER..HEADER + segments) else {
        return Ok(None);
    };
    let len = HEADER + segments + table.iter().map(|&l| usize::from(l)).sum::<usize>();
    let seq = u32::from_le_bytes([bytes[18], bytes[19], bytes[20], bytes[21]]);
    Ok((bytes.len() >= len).then_some((len, u64::from(seq))))
}

impl CrowdMember for OggListener {
    async fn listen(mut self, measure_from: Instant, end: Instant) -> ClientReport {
        let mut report = ClientReport::default();
        let mut tally = Tally::default();
        let mut pending: Vec<u8> = Vec::with_capacity(16 * 1024);
        let mut in_body = false;
        let mut buf = [0_u8; 8 * 1024];
        loop {
            let read = tokio::select! {
                () = tokio::time::sleep_until(end) => break,
                read = self.stream.read(&mut buf) => read,
            };
            let now = Instant::now();
            match read {
                Ok(0) => {
                    report.failure = Some("the server ended the stream".into());
                    break;
                }
                Ok(n) => {
                    if now >= measure_from {
                        report.bytes += n as u64;
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
                Err(e) => {
                    report.failure = Some(e.to_string());
                    break;
                }
            }
            if !in_body {
                let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&pending[..at]).into_owned();
                if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
                    report.failure = Some(head.lines().next().unwrap_or("").to_owned());
                    break;
                }
                pending.drain(..at + 4);
                in_body = true;
            }
            let mut used = 0;
            while let Ok(Some((len, seq))) = ogg_page(&pending[used..]) {
                used += len;
                // Pages 0 and 1 are the listener's own OpusHead and OpusTags; the
                // shared audio pages carry the stream's numbering.
                if seq >= 2 {
                    tally.note(&mut report, measure_from, now, seq, None);
                }
            }
            if ogg_page(&pending[used..]).is_err() {
                report.bad_frames += 1;
                report.failure = Some("not an Ogg page".into());
                break;
            }
            pending.drain(..used);
        }
        tally.finish(&mut report);
        report
    }
}

/// Runs every listener from now to `end` (counting from `measure_from`), then
/// closes them; returns their reports.
///
/// # Errors
/// When a listener's task panicked.
pub async fn run_all<L: CrowdMember>(
    listeners: Vec<L>,
    measure_from: Instant,
    end: Instant,
) -> Result<Vec<ClientReport>> {
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(l.listen(measure_from, end)))
        .collect();
    let mut reports = Vec::with_capacity(tasks.len());
    for t in tasks {
        reports.push(t.await.context("a listener task failed")?);
    }
    Ok(reports)
}

/// Per-crowd figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Listeners.
    pub clients: usize,
    /// The wait between chunks that makes a listener unhealthy.
    pub gap_limit: Duration,
    /// Listeners that got every chunk on time ([`ClientReport::healthy`]).
    pub healthy: usize,
    /// Slowest, median and fastest chunk rate, in chunks per second.
    pub rate: (f64, f64, f64),
    /// The longest wait between chunks of any listener.
    pub max_gap: Duration,
    /// The longest pause of the source itself (from the chunks' server timestamps).
    pub max_source_gap: Duration,
    /// Chunks missing, summed over listeners.
    pub missing: u64,
    /// Listeners with at least one missing chunk.
    pub clients_with_gaps: usize,
    /// Listeners the server closed or that failed.
    pub ended_early: usize,
}

impl Summary {
    /// Summarises `reports`, counting as healthy the listeners that never waited
    /// `gap_limit` for a chunk.
    #[must_use]
    pub fn of(reports: &[ClientReport], gap_limit: Duration) -> Self {
        let mut rates: Vec<f64> = reports.iter().map(ClientReport::rate).collect();
        rates.sort_by(f64::total_cmp);
        let at = |i: usize| rates.get(i).copied().unwrap_or(0.0);
        Self {
            clients: reports.len(),
            gap_limit,
            healthy: reports.iter().filter(|r| r.healthy(gap_limit)).count(),
            rate: (
                at(0),
                at(rates.len() / 2),
                at(rates.len().saturating_sub(1)),
            ),
            max_gap: reports.iter().map(|r| r.max_gap).max().unwrap_or_default(),
            max_source_gap: reports
                .iter()
                .map(|r| r.max_source_gap)
                .max()
                .unwrap_or_default(),
            missing: reports.iter().map(|r| r.missing).sum(),
            clients_with_gaps: reports.iter().filter(|r| r.missing > 0).count(),
            ended_early: reports
                .iter()
                .filter(|r| r.close.is_some() || r.failure.is_some())
                .count(),
        }
    }

    /// Whether every listener was healthy.
    #[must_use]
    pub const fn all_healthy(&self) -> bool {
        self.healthy == self.clients
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (min, median, max) = self.rate;
        write!(
            f,
            "{} listeners, {} healthy; chunk rate min {min:.2} / median {median:.2} / max {max:.2} per s; \
             max inter-chunk gap {} ms (the source's own longest pause {} ms); {} chunks missing \
             ({} listeners with gaps); {} ended early",
            self.clients,
            self.healthy,
            self.max_gap.as_millis(),
            self.max_source_gap.as_millis(),
            self.missing,
            self.clients_with_gaps,
            self.ended_early,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ogg page with page sequence number `seq` and one 5-byte packet.
    fn page(seq: u32) -> Vec<u8> {
        let mut p = b"OggS\0\0".to_vec();
        p.extend_from_slice(&[0; 8]); // granule position
        p.extend_from_slice(&[1, 0, 0, 0]); // serial
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(&[0; 4]); // CRC (not checked here)
        p.extend_from_slice(&[1, 5]); // one segment of 5 bytes
        p.extend_from_slice(b"abcde");
        p
    }

    #[test]
    fn ogg_pages_are_found_whole_and_numbered() {
        let mut bytes = page(7);
        bytes.extend_from_slice(&page(8));
        assert_eq!(ogg_page(&bytes), Ok(Some((33, 7))));
        assert_eq!(ogg_page(&bytes[33..]), Ok(Some((33, 8))));
        assert_eq!(ogg_page(&bytes[..30]), Ok(None), "incomplete");
        assert_eq!(
            ogg_page(&bytes[..3]),
            Ok(None),
            "a prefix of the capture pattern"
        );
        assert_eq!(ogg_page(b"HTTP/1.0 200 OK\r\n\r\n--------"), Err(()));
        assert_eq!(ogg_page(b"Og!"), Err(()));
    }

    fn report(chunks: u64, missing: u64, gap_ms: u64, span_s: f64) -> ClientReport {
        ClientReport {
            chunks,
            missing,
            max_gap: Duration::from_millis(gap_ms),
            span: Duration::from_secs_f64(span_s),
            ..ClientReport::default()
        }
    }

    #[test]
    fn health_needs_every_chunk_on_time() {
        assert!(report(101, 0, 120, 10.0).healthy(MAX_HEALTHY_GAP));
        assert!(
            !report(101, 1, 120, 10.0).healthy(MAX_HEALTHY_GAP),
            "a sequence gap"
        );
        assert!(
            !report(101, 0, 250, 10.0).healthy(MAX_HEALTHY_GAP),
            "a long wait"
        );
        assert!(
            !report(0, 0, 0, 0.0).healthy(MAX_HEALTHY_GAP),
            "no audio at all"
        );
        let closed = ClientReport {
            close: Some((1008, "too slow".into())),
            ..report(101, 0, 120, 10.0)
        };
        assert!(!closed.healthy(MAX_HEALTHY_GAP));
    }

    #[test]
    fn the_summary_orders_rates_and_sums_gaps() {
        let reports = [
            report(101, 0, 110, 10.0),
            report(51, 3, 400, 10.0),
            report(91, 0, 130, 9.0),
        ];
        assert!(
            !reports[1].healthy(Duration::from_secs(1)),
            "still a sequence gap"
        );
        let s = Summary::of(&reports, MAX_HEALTHY_GAP);
        assert_eq!(s.clients, 3);
        assert_eq!(s.healthy, 2);
        assert_eq!(s.missing, 3);
        assert_eq!(s.clients_with_gaps, 1);
        assert_eq!(s.max_gap, Duration::from_millis(400));
        assert!((s.rate.0 - 5.0).abs() < 1e-9);
        assert!((s.rate.1 - 10.0).abs() < 1e-9);
        assert!((s.rate.2 - 10.0).abs() < 1e-9);
        assert!(!s.all_healthy());
    }

    #[test]
    fn urls_are_checked() {
        assert!(Target::parse("ws://127.0.0.1:8000/ws/stream").is_ok());
        let e = Target::parse("http://127.0.0.1:8000/").expect_err("not ws");
        assert!(e.to_string().contains("ws://"), "{e}");
        assert!(Target::parse("ws://127.0.0.1:8000/ws/stream?token=x").is_err());
        assert!(Target::parse("ws://127.0.0.1:port/ws/stream").is_err());
        assert!(
            Target::parse("ws://127.0.0.1/ws/stream").is_err(),
            "no port"
        );
    }
}
