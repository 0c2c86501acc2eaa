//! The pump thread on its own: every chunk is checked (bad ones become silence and
//! are counted) and chunks leave at the pace of the clock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use auralis_bridge::codec::opus::DEFAULT_KBPS;
use auralis_bridge::hub::Hub;
use auralis_bridge::source::{chunk_is_valid, FillReport, Pump};
use common::source::TestSource;

/// A source that counts its chunks, every second one NaN when `poison` is set.
fn counting(poison: bool) -> TestSource {
    TestSource::new("test", 8000, move |k, interleaved| {
        let n = k + 1;
        interleaved.fill(if poison && n.is_multiple_of(2) {
            f32::NAN
        } else {
            0.5
        });
        FillReport::default()
    })
}

#[test]
fn bad_chunks_become_silence_and_are_counted() {
    let hub = Arc::new(Hub::new(64, 4));
    let mut rx = hub.subscribe_audio();
    // 160 frames at 8 kHz: 20 ms chunks.
    let pump = Pump::spawn(
        Box::new(counting(true)),
        160,
        DEFAULT_KBPS,
        Arc::clone(&hub),
    )
    .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < 6 && Instant::now() < deadline {
        match rx.try_recv() {
            Ok(c) => got.push(c),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    pump.stop();
    assert!(got.len() >= 6, "only {} chunks", got.len());
    for (i, c) in got.iter().enumerate() {
        assert_eq!(c.header.seq, i as u64, "contiguous");
        assert!(chunk_is_valid(&c.samples));
        let silent = c.samples.iter().all(|&x| x == 0.0);
        assert_eq!(silent, i % 2 == 1, "chunk {i}");
    }
    assert!(hub.metrics.snapshot().bad_chunks >= 3);
}

#[test]
fn pacing_follows_the_clock() {
    let hub = Arc::new(Hub::new(64, 4));
    let mut rx = hub.subscribe_audio();
    let t0 = Instant::now();
    let pump = Pump::spawn(
        Box::new(counting(false)),
        160,
        DEFAULT_KBPS,
        Arc::clone(&hub),
    )
    .expect("spawn");
    let mut last = 0;
    while last < 25 && t0.elapsed() < Duration::from_secs(5) {
        match rx.try_recv() {
            Ok(c) => last = c.header.seq,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let elapsed = t0.elapsed();
    pump.stop();
    // Chunk 25 is due at 24 × 20 ms = 480 ms (one chunk of lead).
    assert!(
        elapsed >= Duration::from_millis(470) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}
