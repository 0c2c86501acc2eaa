//! A TCP proxy that, on command, stops forwarding in both directions without
//! closing anything: to both ends the link looks stalled (a dead route, a
//! frozen middlebox). Its sockets have small buffers, so a stall fills them in
//! moments instead of the megabytes loopback would hold.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// The proxies' socket buffers.
const BUFFER: u32 = 4096;

/// A running proxy; it forwards until [`StallLink::stall`].
pub struct StallLink {
    addr: SocketAddr,
    stalled: watch::Sender<bool>,
}

impl StallLink {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(BUFFER).expect("rcvbuf");
        socket.set_send_buffer_size(BUFFER).expect("sndbuf");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let listener = socket.listen(16).expect("listen");
        let addr = listener.local_addr().expect("address");
        let (stalled, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                tokio::spawn(pipe(client_rx, server_tx, watching.clone()));
                tokio::spawn(pipe(server_rx, client_tx, watching.clone()));
            }
        });
        Self { addr, stalled }
    }

    /// Where clients connect.
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding (`true`) or forwards again (`false`).
    pub fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }
}

/// Copies `from` to `to`, reading nothing while the link is stalled.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0_u8; BUFFER as usize];
    loop {
        if stalled.wait_for(|s| !s).await.is_err() {
            break;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
