//! Helpers shared by the end-to-end tests: a bridge on a free loopback port, real
//! WebSocket clients, a tiny HTTP client, and the real binary. Every wait is bounded.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

pub mod chromium;
pub mod evidence;
pub mod icecast_server;
pub mod lossy;
pub mod source;
pub mod stall;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use auralis_bridge::protocol::{decode_payload, FrameHeader};
use auralis_bridge::{Config, Running};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A test configuration: loopback, free port, light audio. Only the engine's own
/// audio thread counts towards its degradation level, so the load of a shared test
/// machine cannot change what the tests see.
pub fn config() -> Config {
    Config {
        port: 0,
        sample_rate: 16_000,
        degrade_on_cpu: false,
        ..Config::default()
    }
}

/// Starts a bridge in this process.
pub async fn start(config: Config) -> Running {
    auralis_bridge::start(config).await.expect("bridge starts")
}

/// Connects to `/ws/stream` with a query string (`""` or `"?codec=f32"`...).
pub async fn connect(addr: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/ws/stream{query}");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    ws
}

/// A client that completes the handshake on a socket with a tiny receive buffer
/// and then never reads: to the bridge it looks like a stalled or vanished peer.
pub async fn stalled_client(addr: SocketAddr, query: &str) -> WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(addr).await.expect("connect");
    let url = format!("ws://{addr}/ws/stream{query}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake");
    ws
}

/// The next message, or `None` on timeout or end of stream.
pub async fn next(ws: &mut Ws, within: Duration) -> Option<Message> {
    match tokio::time::timeout(within, ws.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        _ => None,
    }
}

/// Reads until a JSON text message of `kind` arrives (skipping audio and others).
pub async fn next_json(ws: &mut Ws, kind: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Some(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                if v["type"] == kind {
                    return v;
                }
            }
            Some(Message::Close(frame)) => panic!("closed while waiting for {kind}: {frame:?}"),
            Some(_) => {}
            None => panic!("no {kind} message within {within:?}"),
        }
    }
}

/// Reads until a binary audio frame arrives; returns its header and samples.
pub async fn next_audio(ws: &mut Ws, within: Duration) -> (FrameHeader, Vec<f32>) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Some(Message::Binary(b)) => {
                let (h, payload) = FrameHeader::parse(&b).expect("valid frame");
                return (h, decode_payload(h.codec, payload));
            }
            Some(Message::Close(frame)) => panic!("closed while waiting for audio: {frame:?}"),
            Some(_) => {}
            None => panic!("no audio within {within:?}"),
        }
    }
}

/// Reads until the close frame; returns its code and reason (`None`: no close frame
/// within the time).
pub async fn next_close(ws: &mut Ws, within: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Some(Message::Close(Some(frame))) => {
                return Some((u16::from(frame.code), frame.reason.to_string()))
            }
            Some(Message::Close(None)) | None => return None,
            Some(_) => {}
        }
    }
}

/// Sends a text message.
pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// A bare HTTP/1.1 request over a real socket; returns the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` over HTTP/1.0 (so the body ends with the connection, with no chunked
/// framing) for `wall` of wall-clock time: the response head and the body read
/// meanwhile. A read that waits 3 s for data panics: the stream stalled.
pub fn read_for(addr: SocketAddr, path: &str, wall: Duration) -> (String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("request");
    let deadline = Instant::now() + wall;
    let mut response = Vec::new();
    let mut buf = [0_u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{path} stalled: {e}"),
        }
    }
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    (head, body)
}

/// `GET path` as JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http(addr, "GET", path, &[], "");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls `cond` every 50 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Root-mean-square of samples.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|x| x * x).sum::<f32>() / samples.len() as f32).sqrt()
}

/// The real binary, started with `args`; its stdout and stderr lines arrive on the
/// returned channels.
pub struct Binary {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

fn forward(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Binary {
    /// Starts `auralis-bridge` with `args` and `env`. Its texture pre-renderer
    /// runs on the CPU unless `env` sets `AURALIS_RENDERER` (starting a software
    /// GPU in every bridge would only slow the tests; the GPU path has its own).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auralis-bridge"));
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env("AURALIS_RENDERER", "cpu")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the binary");
        let stdout = forward(child.stdout.take().expect("stdout"));
        let stderr = forward(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the "listening" line and returns the address it names.
    pub fn addr(&self) -> SocketAddr {
        let line = self
            .stdout
            .recv_timeout(Duration::from_secs(20))
            .expect("the binary prints its URL");
        let start = line.find("http://").expect("a URL") + "http://".len();
        let rest = &line[start..];
        let end = rest.find('/').expect("URL ends with /");
        rest[..end].parse().expect("an address")
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Sends SIGTERM; whether the process then exits cleanly within 10 s.
    pub fn terminate(&mut self) -> bool {
        self.signal("TERM");
        self.wait(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    }

    /// All stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Best effort cleanup of a test that failed half-way.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
