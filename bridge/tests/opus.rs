//! The Opus stream against real decoders: ffmpeg (libopus inside) decodes
//! `/stream.opus` with no warning, to as much audio as the wall clock let pass
//! plus the burst a new listener gets at once, matching the PCM the same bridge sent; headless Chromium plays it in a plain
//! `<audio>` element. A missing ffmpeg or browser fails these tests.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auralis_bridge::protocol::Codec;
use auralis_bridge::Config;
use common::chromium::Browser;
use common::evidence::fresh_dir;
use common::{connect, next_audio, next_json};

/// A new listener's burst of recent audio in these tests.
const BURST: Duration = Duration::from_secs(1);

/// The stream runs at Opus's own rate, so decoded and sent samples line up.
fn config() -> Config {
    Config {
        sample_rate: 48_000,
        burst: BURST,
        ..common::config()
    }
}

/// Reads `GET /stream.opus` for `wall` of wall-clock time; returns the headers and
/// the body.
fn read_stream(addr: SocketAddr, wall: Duration) -> (String, Vec<u8>) {
    common::read_for(addr, "/stream.opus", wall)
}

fn ffmpeg(args: &[&str]) -> (String, Vec<u8>) {
    // Its audio-device libraries complain on stderr without a runtime directory.
    let runtime = fresh_dir("opus-runtime");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
        .expect("a private runtime directory");
    let out = Command::new("ffmpeg")
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["-hide_banner", "-nostdin", "-v", "warning"])
        .args(args)
        .output()
        .expect("ffmpeg runs (Debian's `ffmpeg`; CI installs it)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout,
    )
}

/// Decodes an Ogg/Opus file to interleaved stereo f32 at 48 kHz.
fn decode(path: &Path) -> (String, Vec<f32>) {
    let path = path.to_str().expect("utf-8 path");
    let (warnings, raw) = ffmpeg(&["-i", path, "-f", "f32le", "-ac", "2", "-ar", "48000", "-"]);
    let samples = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (warnings, samples)
}

/// Per-band signal-to-noise ratio of `decoded` against `reference` (left
/// channel), in dB, over third-octave-ish bands from 100 Hz to 16 kHz: energy in
/// the band of the reference over energy in the band of the difference. A
/// band-limited measure, since a perceptual codec spends its bits where they are
/// heard: a broadband SNR would be dominated by the loudest band alone.
fn band_snr_db(reference: &[f32], decoded: &[f32]) -> f64 {
    const N: usize = 4096;
    let window: Vec<f64> = (0..N)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / N as f64).cos())
        .collect();
    let bands: Vec<(usize, usize)> = (0..22)
        .map(|b| {
            let lo = 100.0 * 2f64.powf(f64::from(b) / 3.0);
            let hi = lo * 2f64.powf(1.0 / 3.0);
            let bin = |hz: f64| (hz * N as f64 / 48_000.0).round() as usize;
            (bin(lo), bin(hi).max(bin(lo) + 1))
        })
        .collect();
    let mut signal = vec![0.0; bands.len()];
    let mut noise = vec![0.0; bands.len()];
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(N);
    let spectrum = |mut x: Vec<f64>| -> Vec<f64> {
        let mut out = fft.make_output_vec();
        fft.process(&mut x, &mut out).expect("sizes match");
        out.iter().map(|c| c.norm_sqr()).collect()
    };
    for start in (0..reference.len().min(decoded.len()) / 2 - N).step_by(N) {
        let r: Vec<f64> = (0..N)
            .map(|i| f64::from(reference[2 * (start + i)]) * window[i])
            .collect();
        let e: Vec<f64> = (0..N)
            .map(|i| f64::from(decoded[2 * (start + i)] - reference[2 * (start + i)]) * window[i])
            .collect();
        let (rs, es) = (spectrum(r), spectrum(e));
        for (b, (lo, hi)) in bands.iter().enumerate() {
            signal[b] += rs[*lo..*hi].iter().sum::<f64>();
            noise[b] += es[*lo..*hi].iter().sum::<f64>();
        }
    }
    // The mean over the bands that carry music (within 60 dB of the loudest).
    let loudest = signal.iter().copied().fold(0.0, f64::max);
    let snrs: Vec<f64> = signal
        .iter()
        .zip(&noise)
        .filter(|(s, _)| **s > loudest * 1e-6)
        .map(|(s, n)| 10.0 * (s / n.max(1e-30)).log10())
        .collect();
    snrs.iter().sum::<f64>() / snrs.len() as f64
}

/// The largest step between neighbouring samples of the left channel.
fn max_step(x: &[f32]) -> f32 {
    x.iter()
        .step_by(2)
        .zip(x.iter().skip(2).step_by(2))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn scratch(name: &str) -> PathBuf {
    fresh_dir("opus").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_twenty_seconds_of_the_ogg_stream_as_sent() {
    let bridge = common::start(config()).await;
    let addr = bridge.local_addr();
    // Long enough for a whole burst to be there when the listeners come.
    tokio::time::sleep(BURST + Duration::from_millis(500)).await;
    // The PCM the bridge sends, captured alongside the Opus stream.
    let mut ws = connect(addr, "?codec=f32").await;
    next_json(&mut ws, "hello", Duration::from_secs(3)).await;
    let capture = tokio::spawn(async move {
        let mut pcm: Vec<(u64, Vec<f32>)> = Vec::new();
        let until = Instant::now() + Duration::from_secs(23);
        while Instant::now() < until {
            let (h, samples) = next_audio(&mut ws, Duration::from_secs(3)).await;
            assert_eq!(h.codec, Codec::F32);
            pcm.push((h.position_frames, samples));
        }
        pcm
    });
    let (head, body) =
        tokio::task::spawn_blocking(move || read_stream(addr, Duration::from_secs(20)))
            .await
            .expect("reader");
    let head = head.to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"),
        "{head}"
    );
    assert!(head.contains("content-type: audio/ogg"), "{head}");
    let file = scratch("live.opus");
    std::fs::write(&file, &body).expect("write the stream");

    let (warnings, decoded) = decode(&file);
    assert!(warnings.trim().is_empty(), "ffmpeg warned: {warnings}");
    // The burst of recent audio came at once, then 20 s of the live stream.
    let seconds = decoded.len() as f64 / 2.0 / 48_000.0;
    let expected = 20.0 + BURST.as_secs_f64();
    assert!(
        (seconds - expected).abs() <= 0.2,
        "{seconds:.3} s decoded from 20 s of stream and a {BURST:?} burst"
    );

    // Line the decoded audio up with the PCM: the first page's granule position
    // says where the listener joined.
    let first_granule = first_audio_granule(&body);
    let pcm = capture.await.expect("capture");
    let start = pcm.first().map_or(0, |c| c.0);
    let sent: Vec<f32> = pcm.into_iter().flat_map(|c| c.1).collect();
    // The first page holds five packets. The encoder's 312 samples of delay and
    // the pre-skip that ffmpeg drops cancel out: decoded sample 0 is the first
    // packet's first input sample.
    let joined_at = first_granule - 4800;
    let offset = usize::try_from(joined_at - start).expect("the capture starts first") * 2;
    let reference = &sent[offset..(offset + decoded.len()).min(sent.len())];
    let ours = band_snr_db(reference, &decoded);

    // libopus, through ffmpeg, on the same PCM at the same bitrate.
    let pcm_file = scratch("sent.f32");
    let bytes: Vec<u8> = reference.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&pcm_file, bytes).expect("write pcm");
    let libopus_file = scratch("libopus.opus");
    let (pcm_path, libopus_path) = (
        pcm_file.to_str().expect("utf-8"),
        libopus_file.to_str().expect("utf-8"),
    );
    ffmpeg(&[
        "-y",
        "-f",
        "f32le",
        "-ar",
        "48000",
        "-ac",
        "2",
        "-i",
        pcm_path,
        "-c:a",
        "libopus",
        "-b:a",
        "128k",
        "-frame_duration",
        "20",
        libopus_path,
    ]);
    let (_, libopus) = decode(&libopus_file);
    let theirs = band_snr_db(reference, &libopus);
    eprintln!("band SNR at 128 kbit/s: opus-rs {ours:.1} dB, libopus {theirs:.1} dB");
    assert!(
        ours > 12.0,
        "opus-rs band SNR {ours:.1} dB (libopus {theirs:.1} dB)"
    );
    assert!(
        ours > theirs - 6.0,
        "opus-rs {ours:.1} dB far below libopus {theirs:.1} dB"
    );

    // No clicks at packet or chunk boundaries: nothing steeper than the music.
    let (steepest_sent, steepest_decoded) = (max_step(reference), max_step(&decoded));
    assert!(
        steepest_decoded <= steepest_sent * 1.5 + 0.01,
        "a click: step {steepest_decoded} decoded against {steepest_sent} sent"
    );
}

/// The granule position of the first page after the two header pages.
fn first_audio_granule(ogg: &[u8]) -> u64 {
    let mut at = 0;
    let mut page = 0;
    while at + 27 <= ogg.len() {
        assert_eq!(&ogg[at..at + 4], b"OggS", "page {page} at byte {at}");
        let granule = u64::from_le_bytes(ogg[at + 6..at + 14].try_into().expect("8 bytes"));
        let segments = usize::from(ogg[at + 26]);
        let body: usize = ogg[at + 27..at + 27 + segments]
            .iter()
            .map(|&s| usize::from(s))
            .sum();
        if page == 2 {
            return granule;
        }
        at += 27 + segments + body;
        page += 1;
    }
    panic!("fewer than three pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_audio_element_plays_the_ogg_stream() {
    let bridge = common::start(config()).await;
    let addr = bridge.local_addr();
    let mut browser = Browser::launch().await.expect("headless Chromium");
    browser
        .open(&format!("http://{addr}/health"))
        .await
        .expect("a page of the bridge");
    browser
        .eval(&format!(
            "window.au = new Audio('http://{addr}/stream.opus'); window.au.play(); true"
        ))
        .await
        .expect("an <audio> element");
    browser
        .wait_for("window.au.currentTime > 3", Duration::from_secs(15))
        .await
        .expect("the <audio> element plays the stream");
    let error = browser
        .eval("window.au.error ? window.au.error.message : null")
        .await;
    assert_eq!(error.expect("script runs"), serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opus_listener_over_the_limit_gets_503() {
    let bridge = common::start(Config {
        max_clients: 1,
        ..config()
    })
    .await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr, "?codec=opus").await;
    let hello = next_json(&mut ws, "hello", Duration::from_secs(3)).await;
    assert_eq!(hello["format"]["codec"], "opus");
    assert_eq!(hello["format"]["sample_rate"], 48_000);
    let (code, body) =
        tokio::task::spawn_blocking(move || common::http(addr, "GET", "/stream.opus", &[], ""))
            .await
            .expect("request");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("max_clients = 1"), "{body}");
    // The listener in place keeps its Opus frames, in sequence.
    let mut last = None;
    for _ in 0..5 {
        let (h, _) = next_audio(&mut ws, Duration::from_secs(3)).await;
        assert_eq!(h.codec, Codec::Opus);
        assert_eq!(h.frames, 4800);
        if let Some(prev) = last {
            assert_eq!(h.seq, prev + 1);
        }
        last = Some(h.seq);
    }
}
