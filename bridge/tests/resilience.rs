//! End-to-end resilience: client limit, slow clients, heartbeat, clean removal.

mod common;

use std::time::{Duration, Instant};

use auralis_bridge::Config;
use common::{connect, eventually, next_audio, next_close, next_json, stalled_client, start, Ws};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_a_client_is_closed_with_1008_naming_the_limit() {
    let bridge = start(Config {
        max_clients: 2,
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut a = connect(addr, "").await;
    let mut b = connect(addr, "").await;
    next_json(&mut a, "hello", T).await;
    next_json(&mut b, "hello", T).await;
    let mut c = connect(addr, "").await;
    let (code, reason) = next_close(&mut c, T).await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("max_clients = 2"), "{reason}");
    // The others are unaffected; when one leaves, a newcomer gets in.
    next_audio(&mut a, T).await;
    drop(b);
    let state = bridge.state().clone();
    assert!(
        eventually(T, || state.hub.client_count() == 1).await,
        "clean removal"
    );
    let mut d = connect(addr, "").await;
    next_json(&mut d, "hello", T).await;
    next_audio(&mut d, T).await;
    let (_, metrics) = common::http(addr, "GET", "/metrics", &[], "");
    assert!(
        metrics.contains("auralis_bridge_clients_rejected_total 1"),
        "{metrics}"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_while_others_keep_their_rate() {
    let bridge = start(Config {
        sample_rate: 48_000,
        send_timeout: Duration::from_millis(1500),
        max_lag: Duration::from_secs(1),
        client_queue: 4,
        send_buffer_kb: 32,
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let state = bridge.state().clone();
    let stalled = stalled_client(addr, "?codec=f32").await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(tokio::spawn(async move {
            let mut ws = connect(addr, "").await;
            let (first, _) = next_audio(&mut ws, T).await;
            let start = Instant::now();
            let mut last = first.seq;
            let mut count = 0u32;
            let mut max_gap = Duration::ZERO;
            let mut prev = Instant::now();
            while start.elapsed() < Duration::from_secs(8) {
                let (h, _) = next_audio(&mut ws, T).await;
                assert_eq!(h.seq, last + 1, "a reading client loses nothing");
                last = h.seq;
                count += 1;
                max_gap = max_gap.max(prev.elapsed());
                prev = Instant::now();
            }
            (count, max_gap)
        }));
    }
    let dropped = eventually(Duration::from_secs(20), || {
        let s = state.hub.metrics.snapshot();
        let lag = s.disconnects[3];
        let timeout = s.disconnects[2];
        lag + timeout >= 1
    })
    .await;
    assert!(dropped, "the stalled client was not dropped");
    assert_eq!(state.hub.client_count(), 3, "only the stalled client left");
    for r in readers {
        let (count, max_gap) = r.await.expect("reader");
        let rate = f64::from(count) / 8.0;
        assert!((8.0..=12.0).contains(&rate), "reader rate {rate}/s");
        // A reader held up by the stalled client would wait out its 1.5 s send
        // timeout; scheduling noise on a loaded machine stays well under 1 s.
        assert!(
            max_gap < Duration::from_millis(1000),
            "reader gap {max_gap:?}"
        );
    }
    drop(stalled);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_after_missed_heartbeats() {
    let bridge = start(Config {
        sample_rate: 8_000,
        heartbeat: Duration::from_millis(400),
        missed_pongs: 2,
        send_timeout: Duration::from_secs(60),
        max_lag: Duration::from_secs(600),
        client_queue: 4096,
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let state = bridge.state().clone();
    // Never reads, so never answers a ping.
    let silent = stalled_client(addr, "").await;
    // Reads all the time (so answers pings at the transport level) and answers
    // JSON pings with pongs.
    let live = tokio::spawn(async move {
        let mut ws = connect(addr, "").await;
        next_json(&mut ws, "hello", T).await;
        let start = Instant::now();
        let (mut pings, mut chunks) = (0, 0);
        while start.elapsed() < Duration::from_secs(4) {
            match common::next(&mut ws, T).await {
                Some(Message::Text(t)) if t.contains("\"ping\"") => {
                    pings += 1;
                    common::send_text(&mut ws, r#"{"type":"pong"}"#).await;
                }
                Some(Message::Binary(_)) => chunks += 1,
                Some(Message::Close(c)) => panic!("live client closed: {c:?}"),
                Some(_) => {}
                None => panic!("live client starved"),
            }
        }
        (pings, chunks)
    });
    assert!(eventually(T, || state.hub.client_count() == 2).await);
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || state.hub.client_count() == 1).await,
        "the silent client is still connected"
    );
    // Dropped after 2–3 heartbeats, not at once.
    let after = t0.elapsed();
    assert!(after < Duration::from_secs(3), "{after:?}");
    let (_, metrics) = common::http(addr, "GET", "/metrics", &[], "");
    assert!(
        metrics.contains("auralis_bridge_disconnects_total{reason=\"heartbeat\"} 1"),
        "{metrics}"
    );
    let (pings, chunks) = live.await.expect("live client");
    assert!(pings >= 5, "{pings} pings in 4 s at 0.4 s");
    assert!(chunks >= 30, "{chunks} chunks in 4 s");
    assert!(
        eventually(T, || state.hub.client_count() == 0).await,
        "the live client left cleanly"
    );
    drop(silent);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_status_and_their_stats_are_recorded() {
    let bridge = start(Config {
        status_interval: Duration::from_millis(300),
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    let status = next_json(&mut ws, "status", T).await;
    assert_eq!(status["state"], "streaming");
    assert_eq!(status["level"], "normal");
    assert_eq!(status["clients"], 1);
    assert!(status["buffer_depth"].as_u64().is_some());
    common::send_text(
        &mut ws,
        r#"{"type":"client_stats","underruns":2,"buffered_ms":350}"#,
    )
    .await;
    let state = bridge.state().clone();
    assert!(
        eventually(T, || state
            .hub
            .clients()
            .first()
            .is_some_and(|c| c.underruns == Some(2)))
        .await
    );
    drop(ws);
    assert!(
        eventually(T, || state.hub.client_count() == 0).await,
        "removed on disconnect"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_client_with_1001() {
    let bridge = start(common::config()).await;
    let addr = bridge.local_addr();
    let mut clients = Vec::new();
    for q in ["", "?codec=f32", "?format=json"] {
        let mut ws = connect(addr, q).await;
        next(&mut ws).await;
        clients.push(ws);
    }
    let shutdown = tokio::spawn(bridge.shutdown());
    for ws in &mut clients {
        let (code, reason) = next_close(ws, T).await.expect("close frame");
        assert_eq!(code, 1001);
        assert!(reason.contains("shutting down"), "{reason}");
    }
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown in time")
        .expect("shutdown task");
}

async fn next(ws: &mut Ws) {
    common::next(ws, T).await.expect("a first message");
}
