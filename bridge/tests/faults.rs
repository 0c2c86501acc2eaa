//! Fault injection through custom sources: invalid audio is replaced by silence and
//! counted; a source that dies makes the bridge unhealthy and closes clients 1011.

mod common;

use std::time::Duration;

use auralis_bridge::source::FillReport;
use common::source::TestSource;
use common::{connect, get_json, next_audio, next_close, next_json, rms};

const T: Duration = Duration::from_secs(3);

/// Every `bad_every`-th chunk is NaN (or out of range); after `panic_after` chunks
/// the source panics.
fn faulty(bad_every: u64, panic_after: Option<u64>) -> TestSource {
    TestSource::new("faulty", 8000, move |k, interleaved| {
        let n = k + 1;
        if panic_after.is_some_and(|p| n > p) {
            panic!("injected source failure");
        }
        let value = match n % bad_every {
            0 if n.is_multiple_of(2) => f32::NAN,
            0 => 3.0,
            _ => 0.25,
        };
        interleaved.fill(value);
        FillReport::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_audio_is_replaced_by_silence_and_counted() {
    let source = faulty(3, None);
    let bridge = auralis_bridge::start_with_source(common::config(), Box::new(source))
        .await
        .expect("start");
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "?codec=f32").await;
    next_json(&mut ws, "hello", T).await;
    let mut silent = 0;
    for _ in 0..9 {
        let (_, samples) = next_audio(&mut ws, T).await;
        assert!(samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        if rms(&samples) == 0.0 {
            silent += 1;
        } else {
            assert!((rms(&samples) - 0.25).abs() < 1e-6);
        }
    }
    assert_eq!(silent, 3, "every third chunk was bad");
    let (_, metrics) = common::http(addr, "GET", "/metrics", &[], "");
    let bad: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("auralis_bridge_bad_chunks_replaced_total "))
        .and_then(|v| v.parse().ok())
        .expect("bad chunk counter");
    assert!(bad >= 3, "{bad}");
    // A third of the chunks bad: well over the 10 % error rate.
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded", "{health}");
    // Control is refused by this source, with its reason.
    common::send_text(&mut ws, r#"{"type":"update_params","bpm":70}"#).await;
    let err = next_json(&mut ws, "error", T).await;
    assert_eq!(err["code"], "unavailable");
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_source_closes_clients_with_1011_and_fails_health() {
    let source = faulty(1000, Some(15));
    let bridge = auralis_bridge::start_with_source(common::config(), Box::new(source))
        .await
        .expect("start");
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    let (code, reason) = next_close(&mut ws, T).await.expect("close frame");
    assert_eq!(code, 1011);
    assert!(reason.contains("source"), "{reason}");
    let (code, health) = get_json(addr, "/health");
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["checks"]["source_thread_alive"], false);
    bridge.shutdown().await;
}
