//! `recording_rtf`: how fast `/api/recording` renders a long recording while
//! listeners stream, and whether any of them saw a gap meanwhile.
//!
//! The embedded source is first run ahead, as fast as it goes, for
//! `AURALIS_RECORDING_BENCH_MIN` minutes (default 10) so the log holds that
//! much; then the bridge serves it to `AURALIS_RECORDING_BENCH_LISTENERS`
//! (default 50) WebSocket listeners and one client asks for the whole
//! stretch as WAV. Prints `name value unit` lines, as `cargo xtask bench`
//! does.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auralis::compose::code::PieceCode;
use auralis::compose::presets::preset;
use auralis_bridge::protocol::FrameHeader;
use auralis_bridge::source::{EmbeddedSource, Source as _};
use auralis_bridge::Config;
use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;

const RATE: u32 = 48_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One listener: counts the chunks it got and the gaps in their sequence.
async fn listen(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    gaps: Arc<AtomicU64>,
    chunks: Arc<AtomicU64>,
) {
    let url = format!("ws://{addr}/ws/stream");
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
        gaps.fetch_add(1_000_000, Ordering::Relaxed);
        return;
    };
    let mut last: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                if let Ok((h, _)) = FrameHeader::parse(&b) {
                    if last.is_some_and(|l| h.seq != l + 1) {
                        gaps.fetch_add(1, Ordering::Relaxed);
                    }
                    last = Some(h.seq);
                    chunks.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(Ok(_))) => {}
            // A dropped connection or a two-second silence is a gap too.
            _ => {
                gaps.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// `GET path` over HTTP/1.0: the status and the body's length.
fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<(u16, usize)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let status = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, response.len().saturating_sub(split + 4)))
}

fn main() -> anyhow::Result<()> {
    let minutes = env_or("AURALIS_RECORDING_BENCH_MIN", 10);
    let listeners = env_or("AURALIS_RECORDING_BENCH_LISTENERS", 50);
    let preset = preset("focus").map_err(|e| anyhow::anyhow!("{e}"))?;
    let piece = PieceCode::new(1, preset, preset.compose);
    let frames = RATE as usize / 10;
    let mut source = EmbeddedSource::new(RATE, piece, frames, None, Duration::from_secs(3600))?;
    let ahead = Instant::now();
    let mut chunk = vec![0.0f32; frames * 2];
    for _ in 0..minutes * 600 {
        source.fill(&mut chunk);
    }
    let ahead = ahead.elapsed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = Config {
            port: 0,
            sample_rate: RATE,
            degrade_on_cpu: false,
            max_clients: 1000,
            ..Config::default()
        };
        let bridge = auralis_bridge::start_with_source(config, Box::new(source)).await?;
        let addr = bridge.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let gaps = Arc::new(AtomicU64::new(0));
        let chunks = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..listeners)
            .map(|_| {
                tokio::spawn(listen(
                    addr,
                    Arc::clone(&stop),
                    Arc::clone(&gaps),
                    Arc::clone(&chunks),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let seconds = minutes * 60;
        let started = Instant::now();
        let (status, bytes) = tokio::task::spawn_blocking(move || {
            fetch(
                addr,
                &format!("/api/recording?seconds={seconds}&format=wav"),
            )
        })
        .await??;
        let wall = started.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        anyhow::ensure!(status == 200, "the recording answered {status}");
        let expected = 44 + seconds as usize * RATE as usize * 6;
        anyhow::ensure!(bytes == expected, "{bytes} bytes, expected {expected}");
        let rss = auralis_bridge::procstat::resident_bytes().unwrap_or(0);
        let log = bridge.state().recording.as_ref().map(|r| r.log.sizes());
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "recording_rtf {:.0} x_realtime_{minutes}min",
            seconds as f64 / wall.as_secs_f64()
        )?;
        writeln!(out, "recording_wall_s {:.2} s", wall.as_secs_f64())?;
        writeln!(
            out,
            "recording_listener_gaps {} gaps_{listeners}_listeners",
            gaps.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "recording_run_ahead_rtf {:.0} x_realtime",
            seconds as f64 / ahead.as_secs_f64()
        )?;
        writeln!(
            out,
            "recording_listener_chunks {} chunks",
            chunks.load(Ordering::Relaxed)
        )?;
        if let Some((checkpoints, events)) = log {
            writeln!(out, "recording_log_checkpoints {checkpoints} checkpoints")?;
            writeln!(out, "recording_log_events {events} events")?;
        }
        writeln!(
            out,
            "recording_bridge_rss {:.1} MiB",
            rss as f64 / (1024.0 * 1024.0)
        )?;
        drop(out);
        bridge.shutdown().await;
        anyhow::Ok(())
    })
}
