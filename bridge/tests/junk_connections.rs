//! Connections that are not WebSocket clients at all: random bytes on a raw TCP
//! socket, a request cut off mid-header, a plain HTTP request to the stream
//! endpoint, a handshake with a bad WebSocket version, an unknown path. Each is
//! answered or dropped on its own; a listener connected meanwhile keeps a
//! contiguous stream, and the bridge stays healthy with room for new clients.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use auralis::rng::Rng;
use common::evidence::Listener;
use common::{connect, get_json, http, next_audio, next_json, start};

const T: Duration = Duration::from_secs(5);

/// Writes `bytes` on a fresh socket, half-closes it and reads whatever comes back
/// until the bridge closes (or 5 s pass).
fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(T)).expect("timeout");
    // The bridge may close first: a reset here is one of the accepted outcomes.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_and_non_websocket_requests_disturb_no_listener() {
    let bridge = start(common::config()).await;
    let addr = bridge.local_addr();
    let listener = Listener::start(addr, "").await;

    let junk = tokio::task::spawn_blocking(move || {
        let mut rng = Rng::new(7);
        for len in [1, 17, 512, 8192, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let answer = send_raw(addr, &bytes);
            // Either dropped, or refused as a bad request: never a success.
            if let Some(code) = status_of(&answer) {
                assert!((400..500).contains(&code), "{len} random bytes: {code}");
            }
        }
        // A request cut off in the middle of its headers.
        send_raw(addr, b"GET /ws/stream HTTP/1.1\r\nHost: x\r\nUpgr");
        // The stream endpoint without an upgrade, and a bad WebSocket version.
        let (code, _) = http(addr, "GET", "/ws/stream", &[], "");
        assert!((400..500).contains(&code), "plain GET /ws/stream: {code}");
        let (code, _) = http(
            addr,
            "GET",
            "/ws/stream",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "7"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "",
        );
        assert!((400..500).contains(&code), "bad WebSocket version: {code}");
        let (code, _) = http(addr, "GET", "/no/such/page", &[], "");
        assert_eq!(code, 404);
        let (code, _) = http(addr, "DELETE", "/api/control", &[], "");
        assert_eq!(code, 405);
    });
    junk.await.expect("the junk connections ran");

    // The listener lost nothing, the bridge is healthy and still takes clients.
    let recording = listener.finish(10).await;
    recording.assert_contiguous();
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 200, "{health}");
    let mut newcomer = connect(addr, "").await;
    next_json(&mut newcomer, "hello", T).await;
    next_audio(&mut newcomer, T).await;
    bridge.shutdown().await;
}
