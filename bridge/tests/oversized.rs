//! Oversized client messages: whatever their size and kind, the client that sent
//! one gets close 1009 with a reason naming the limit (not a dropped socket), and
//! the other listeners keep streaming.

mod common;

use std::time::Duration;

use auralis_bridge::protocol::MAX_CLIENT_MESSAGE_BYTES;
use common::{connect, next_audio, next_json, start, Ws};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);
const KIB: usize = 1024;

/// Sends `messages` while reading, as a browser does; returns the close frame's
/// code and reason (`None`: the connection ended without one).
async fn close_after(ws: Ws, messages: Vec<Message>) -> Option<(u16, String)> {
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for m in messages {
            // The server stops reading at the limit and drops the socket a while
            // after its close frame: the rest of a large message may not go out.
            if tx.send(m).await.is_err() {
                break;
            }
        }
        tx
    });
    let deadline = tokio::time::Instant::now() + T;
    let close = loop {
        match tokio::time::timeout_at(deadline, rx.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                break frame.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => break None,
        }
    };
    sender.abort();
    close
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_oversized_message_gets_1009_naming_the_limit() {
    let bridge = start(common::config()).await;
    let addr = bridge.local_addr();
    let mut good = connect(addr, "").await;
    next_json(&mut good, "hello", T).await;
    let mut cases = Vec::new();
    for size in [65 * KIB, KIB * KIB, 16 * KIB * KIB] {
        assert!(size > MAX_CLIENT_MESSAGE_BYTES);
        cases.push((
            format!("text of {size} bytes"),
            vec![Message::text("x".repeat(size))],
        ));
        cases.push((
            format!("binary of {size} bytes"),
            vec![Message::binary(vec![b' '; size])],
        ));
    }
    // One byte over the limit, and a message over it only once its fragments add up.
    cases.push((
        "text one byte over".into(),
        vec![Message::text("x".repeat(MAX_CLIENT_MESSAGE_BYTES + 1))],
    ));
    let half = MAX_CLIENT_MESSAGE_BYTES / 2 + 1;
    cases.push((
        "two fragments over the limit together".into(),
        vec![
            Message::Frame(Frame::message(
                vec![b'x'; half],
                OpCode::Data(Data::Text),
                false,
            )),
            Message::Frame(Frame::message(
                vec![b'x'; half],
                OpCode::Data(Data::Continue),
                true,
            )),
        ],
    ));
    let mut runs = Vec::new();
    for (what, messages) in cases {
        let mut ws = connect(addr, "").await;
        next_json(&mut ws, "hello", T).await;
        runs.push(async move { (what, close_after(ws, messages).await) });
    }
    let limit = MAX_CLIENT_MESSAGE_BYTES.to_string();
    for (what, close) in futures_util::future::join_all(runs).await {
        let (code, reason) = close.unwrap_or_else(|| panic!("{what}: no close frame"));
        assert_eq!(code, 1009, "{what}: {reason}");
        assert!(reason.contains(&limit), "{what}: reason {reason:?}");
    }
    // The listener beside them lost nothing.
    next_audio(&mut good, T).await;
    next_audio(&mut good, T).await;
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_at_the_limit_is_read_and_answered() {
    let bridge = start(common::config()).await;
    let mut ws = connect(bridge.local_addr(), "").await;
    next_json(&mut ws, "hello", T).await;
    let pad = MAX_CLIENT_MESSAGE_BYTES - r#"{"type":"pong","t":}"#.len();
    let text = format!(r#"{{"type":"pong","t":{}}}"#, "1".repeat(pad));
    assert_eq!(text.len(), MAX_CLIENT_MESSAGE_BYTES);
    ws.send(Message::text(text)).await.expect("send");
    // A pong needs no answer: the connection goes on streaming.
    next_audio(&mut ws, T).await;
    next_audio(&mut ws, T).await;
    bridge.shutdown().await;
}
