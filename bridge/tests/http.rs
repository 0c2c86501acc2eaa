//! End-to-end HTTP: health, status, metrics, the page, over a real socket.

mod common;

use std::time::Duration;

use common::{connect, get_json, http, next_audio, next_json, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics_report_the_stream() {
    let piece = "au1-7-focus-d-dorian-60-50";
    let bridge = start(auralis_bridge::Config {
        piece: piece.parse().expect("a piece code"),
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", Duration::from_secs(3)).await;
    for _ in 0..5 {
        next_audio(&mut ws, Duration::from_secs(3)).await;
    }

    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["checks"]["source_thread_alive"], true);
    assert_eq!(health["checks"]["source_producing"], true);
    assert_eq!(health["checks"]["degradation_level"], "normal");
    assert_eq!(health["error_rate"], 0.0);
    assert_eq!(health["synthesis_functional"], true);
    assert_eq!(health["texture_error_rate"], 0.0);
    assert_eq!(health["composition_functional"], true);
    assert_eq!(health["buffer_healthy"], true);
    assert_eq!(health["checks"]["clients"], 1);

    // The counters follow the writes: wait (bounded) until they have caught up.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let (code, status) = loop {
        let (code, status) = get_json(addr, "/api/status");
        if status["chunks"]["sent"].as_u64().unwrap_or(0) >= 5
            || std::time::Instant::now() > deadline
        {
            break (code, status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 200);
    assert_eq!(status["degradation"]["level"], "normal");
    assert_eq!(status["source"]["name"], "embedded");
    assert_eq!(status["source"]["state"], "streaming");
    assert_eq!(status["clients"]["connected"], 1);
    assert_eq!(status["clients"]["max"], 100);
    assert_eq!(status["clients"]["list"][0]["format"], "binary-s16");
    assert_eq!(status["params"]["key"], "D");
    assert_eq!(status["params"]["code"], piece, "the piece playing");
    assert!(status["chunks"]["produced"].as_u64().unwrap_or(0) >= 5);
    assert!(status["chunks"]["sent"].as_u64().unwrap_or(0) >= 5);
    assert_eq!(status["chunks"]["bad_replaced"], 0);
    let rtf = status["source"]["render_rtf"].as_f64().expect("rtf");
    assert!(rtf > 0.0 && rtf < 0.5, "render real-time factor {rtf}");

    let (code, metrics) = http(addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    for name in [
        "auralis_bridge_chunks_sent_total",
        "auralis_bridge_chunks_dropped_total 0",
        "auralis_bridge_bad_chunks_replaced_total 0",
        "auralis_bridge_clients 1",
        "auralis_bridge_bytes_out_total",
        "auralis_bridge_control_errors_total 0",
        "auralis_bridge_degradation_level 0",
        "auralis_bridge_render_rtf",
        "auralis_bridge_opus_encode_rtf",
        "# TYPE auralis_bridge_chunks_sent_total counter",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("auralis_bridge_chunks_sent_total "))
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(sent >= 5);
    // Every stream is encoded to Opus once, whoever listens.
    let opus_rtf: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("auralis_bridge_opus_encode_rtf "))
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(
        opus_rtf > 0.0 && opus_rtf < 0.5,
        "Opus encode cost {opus_rtf}"
    );

    let (code, page) = http(addr, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(page.contains("/player.js") && page.contains("/player.css"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external URL"
    );
    let (code, script) = http(addr, "GET", "/player.js", &[], "");
    assert_eq!(code, 200);
    assert!(script.contains("/ws/stream"));
    let (code, worklet) = http(addr, "GET", "/worklet.js", &[], "");
    assert_eq!(code, 200);
    assert!(worklet.contains("registerProcessor('auralis-player'"));
    let (code, _) = http(addr, "GET", "/nope", &[], "");
    assert_eq!(code, 404);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_degraded_at_capacity_and_unhealthy_without_a_source() {
    let bridge = start(auralis_bridge::Config {
        max_clients: 1,
        ..common::config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", Duration::from_secs(3)).await;
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["checks"]["at_capacity"], true);
    // The source thread stops: the bridge is unhealthy.
    bridge.state().pump.stop();
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "unhealthy");
    bridge.shutdown().await;
}
