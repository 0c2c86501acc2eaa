//! A TCP proxy that behaves like a lossy link (retransmits on bad Wi-Fi, a mobile
//! handover): what the server sends is held for 200–600 ms at random, about every
//! 5 s, and then delivered in order; what the client sends passes at once. Every
//! connection through it shares one schedule of stalls, as they would share a link.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auralis::rng::Rng;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The stalls, as (start, end) from the link's start, made for an hour.
struct Schedule {
    origin: Instant,
    stalls: Vec<(Duration, Duration)>,
}

impl Schedule {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut stalls = Vec::new();
        let mut at = Duration::ZERO;
        while at < Duration::from_secs(3600) {
            at += Duration::from_secs_f32(rng.range_f32(4.0, 6.0));
            let hold = Duration::from_secs_f32(rng.range_f32(0.2, 0.6));
            stalls.push((at, at + hold));
            at += hold;
        }
        Self {
            origin: Instant::now(),
            stalls,
        }
    }

    /// Waits out the stall the link is in now, if any.
    async fn hold(&self) {
        let now = self.origin.elapsed();
        if let Some(&(_, end)) = self.stalls.iter().find(|(s, e)| *s <= now && now < *e) {
            tokio::time::sleep_until(self.origin + end).await;
        }
    }

    /// The stalls that have begun so far, and the longest of them.
    fn so_far(&self) -> (usize, Duration) {
        let now = self.origin.elapsed();
        let begun = self.stalls.iter().filter(|(s, _)| *s <= now);
        let longest = begun.clone().map(|(s, e)| *e - *s).max();
        (begun.count(), longest.unwrap_or_default())
    }
}

/// A running proxy.
pub struct LossyLink {
    addr: SocketAddr,
    schedule: Arc<Schedule>,
}

impl LossyLink {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let schedule = Arc::new(Schedule::new(seed));
        let shared = Arc::clone(&schedule);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(forward(client, server, Arc::clone(&shared)));
            }
        });
        Self { addr, schedule }
    }

    /// Where clients connect.
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many stalls have begun so far, and the longest of them.
    pub fn stalls(&self) -> (usize, Duration) {
        self.schedule.so_far()
    }
}

async fn forward(client: TcpStream, server: TcpStream, schedule: Arc<Schedule>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
        let _ = server_tx.shutdown().await;
    });
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = match server_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        schedule.hold().await;
        if client_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = client_tx.shutdown().await;
}
