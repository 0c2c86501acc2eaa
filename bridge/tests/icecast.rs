//! The bridge as an Icecast source against Debian's real `icecast2` (2.4.4), each
//! started on a free loopback port with a generated config and stopped on drop:
//! ffmpeg reads the mount and a second Icecast's relay of it; the primary is
//! killed and restarted mid-stream; a wrong password; a full mount. A missing
//! `icecast2` or `ffmpeg` fails these tests (CI installs both).

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use auralis_bridge::config::parse_icecast;
use auralis_bridge::{Config, Running};
use common::evidence::{fresh_dir, Listener, Logs};
use common::icecast_server::{Icecast, PASSWORD};
use serde_json::Value;

/// An Icecast for the test `tag` whose config also holds `extra`.
fn icecast(tag: &str, extra: &str) -> Icecast {
    Icecast::start(fresh_dir(&format!("icecast-{tag}")), extra, 200)
}

/// A bridge in this process feeding `urls`.
async fn bridge(urls: &[String]) -> Running {
    let config = Config {
        sample_rate: 48_000,
        ..common::config()
    };
    let icecast = urls
        .iter()
        .map(|u| parse_icecast(u).expect("a valid URL"))
        .collect();
    common::start(Config { icecast, ..config }).await
}

/// The mounts of `/health`.
fn mounts(addr: SocketAddr) -> Vec<Value> {
    let (_, health) = common::get_json(addr, "/health");
    health["icecast"].as_array().cloned().unwrap_or_default()
}

/// Waits until mount `i` of the bridge is in `state`; returns its entry.
async fn mount_reaches(addr: SocketAddr, i: usize, state: &str, within: Duration) -> Value {
    let mut last = Value::Null;
    let ok = common::eventually(within, || {
        last = mounts(addr).get(i).cloned().unwrap_or(Value::Null);
        last["state"] == state
    })
    .await;
    assert!(ok, "mount {i} never {state} in {within:?}: {last}");
    last
}

/// `GET path` on Icecast for `wall` of wall-clock time: the response head (lower
/// case) and body.
fn listen(addr: SocketAddr, path: &str, wall: Duration) -> (String, Vec<u8>) {
    let (head, body) = common::read_for(addr, path, wall);
    (head.to_ascii_lowercase(), body)
}

/// Waits until `relay` serves `/relay.opus`.
async fn relay_serves(relay: &Icecast, within: Duration) {
    let addr = relay.addr();
    let ok = common::eventually(within, || {
        listen(addr, "/relay.opus", Duration::from_millis(300))
            .0
            .starts_with("http/1.0 200")
    })
    .await;
    assert!(ok, "the relay does not serve: {}", relay.error_log());
}

/// Seconds of audio ffmpeg decodes from an Ogg/Opus file, and what it warned.
fn decoded_seconds(path: &Path) -> (f64, String) {
    let runtime = fresh_dir("icecast-runtime");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
        .expect("a private runtime directory");
    let out = Command::new("ffmpeg")
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["-hide_banner", "-nostdin", "-v", "warning", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .expect("ffmpeg runs (Debian's `ffmpeg`; CI installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    (out.stdout.len() as f64 / 4.0 / 48_000.0, stderr)
}

/// Reads `path` for `wall` and decodes it: the response head and the seconds.
fn listen_and_decode(addr: SocketAddr, path: &str, wall: Duration) -> (String, Vec<u8>, f64) {
    let (head, body) = listen(addr, path, wall);
    assert!(head.starts_with("http/1.0 200"), "{path}: {head}");
    let file = fresh_dir("icecast-capture").join("capture.opus");
    std::fs::write(&file, &body).expect("write the capture");
    let (seconds, warnings) = decoded_seconds(&file);
    assert!(
        warnings.trim().is_empty(),
        "{path}: ffmpeg warned: {warnings}"
    );
    (head, body, seconds)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_twenty_seconds_from_the_mount_and_from_a_relay() {
    let primary = icecast("primary", "");
    let relay = icecast("relay", &primary.relay_xml("/live.opus", "/relay.opus"));
    let bridge = bridge(&[primary.url(PASSWORD, "/live.opus")]).await;
    let addr = bridge.local_addr();
    mount_reaches(addr, 0, "connected", Duration::from_secs(10)).await;
    let (_, health) = common::get_json(addr, "/health");
    assert_eq!(health["checks"]["icecast_connected"], true, "{health}");
    // The relay pulls the mount once it exists.
    relay_serves(&relay, Duration::from_secs(15)).await;
    let relay_addr = relay.addr();

    let primary_addr = primary.addr();
    let wall = Duration::from_secs(20);
    let direct = blocking(move || listen_and_decode(primary_addr, "/live.opus", wall));
    let relayed = blocking(move || listen_and_decode(relay_addr, "/relay.opus", wall));
    let ((head, body, direct_s), (_, _, relayed_s)) = tokio::join!(direct, relayed);
    for (what, seconds) in [("mount", direct_s), ("relay", relayed_s)] {
        assert!(
            (seconds - 20.0).abs() <= 0.3,
            "{what}: {seconds:.3} s decoded from 20 s of listening"
        );
    }
    // Icecast passes the source's ice-* headers on, and the stream's tags name
    // the piece.
    assert!(head.contains("icy-name:auralis: focus"), "{head}");
    assert!(head.contains("icy-genre:ambient"), "{head}");
    assert!(head.contains("ice-audio-info:"), "{head}");
    assert!(head.contains("icy-pub:0"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("TITLE=Auralis: focus"), "no title tag");
    assert!(text.contains("dorian"), "the tags name the mode");
    let (_, status) = common::get_json(addr, "/api/status");
    assert_eq!(status["icecast"][0]["state"], "connected", "{status}");
    assert_eq!(status["icecast"][0]["pages_dropped"], 0, "{status}");
    let metrics = common::evidence::get_metric(
        addr,
        "auralis_bridge_icecast_connected{mount=\"/live.opus\"}",
    );
    assert_eq!(metrics, 1.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_primary_is_fed_again_and_the_relay_recovers() {
    let mut primary = icecast("restart", "");
    let relay = icecast(
        "restart-relay",
        &primary.relay_xml("/live.opus", "/relay.opus"),
    );
    let bridge = bridge(&[primary.url(PASSWORD, "/live.opus")]).await;
    let addr = bridge.local_addr();
    let listener = Listener::start(addr, "").await;
    mount_reaches(addr, 0, "connected", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    primary.kill();
    let down = mount_reaches(addr, 0, "retrying", Duration::from_secs(5)).await;
    assert!(
        down["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connection")),
        "{down}"
    );
    let (_, health) = common::get_json(addr, "/health");
    assert_eq!(health["status"], "degraded", "a mount is down: {health}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    primary.spawn();
    // Backoff steps of 1, 2 and 4 s (each at most 25 % longer) have passed or are
    // under way: the next attempt comes within 10 s.
    let back = mount_reaches(addr, 0, "connected", Duration::from_secs(12)).await;
    let reconnect_s = restarted.elapsed().as_secs_f64();
    assert!(back["connects"].as_u64() >= Some(2), "{back}");
    relay_serves(&relay, Duration::from_secs(20)).await;
    let relay_addr = relay.addr();
    let (_, _, seconds) =
        blocking(move || listen_and_decode(relay_addr, "/relay.opus", Duration::from_secs(5)))
            .await;
    assert!(
        (seconds - 5.0).abs() <= 0.3,
        "{seconds:.3} s from the recovered relay"
    );
    // The local listener heard every chunk throughout.
    let recording = listener.finish(10).await;
    recording.assert_contiguous();
    assert!(
        reconnect_s < 12.0,
        "reconnected {reconnect_s:.1} s after the restart"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_once_and_shown_in_health_and_logs() {
    let primary = icecast("password", "");
    let logs = fresh_dir("icecast-logs");
    let url = primary.url("not-the-password", "/live.opus");
    let log_dir = logs.to_str().expect("utf-8 path").to_owned();
    let bin = common::Binary::spawn(
        &["--port", "0", "--icecast", &url, "--log-dir", &log_dir],
        &[
            ("AURALIS_SAMPLE_RATE", "16000"),
            ("AURALIS_DEGRADE_ON_CPU", "false"),
        ],
    );
    let addr = bin.addr();
    let refused = mount_reaches(addr, 0, "refused", Duration::from_secs(10)).await;
    let error = refused["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("wrong source user or password"), "{refused}");
    assert!(error.contains("401"), "{refused}");
    assert!(
        !error.contains("not-the-password"),
        "the password is never shown"
    );
    let (_, health) = common::get_json(addr, "/health");
    assert_eq!(health["status"], "degraded", "{health}");
    // No retry storm: in eight more seconds, no second attempt.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = mounts(addr)[0].clone();
    assert_eq!(after["attempts"], 1, "{after}");
    assert!(after["retry_in_s"].as_f64() > Some(30.0), "{after}");
    let tried = primary
        .error_log()
        .matches("attempted to login with invalid or missing password")
        .count();
    assert_eq!(tried, 1, "icecast saw {tried} logins");
    drop(bin);
    let logged = Logs::read(&logs);
    let lines = Logs::with_message(&logged.errors, "wrong source user or password");
    assert_eq!(lines.len(), 1, "one error logged: {:?}", logged.errors);
    assert_eq!(lines[0]["level"], "ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mount_refuses_listeners_and_a_taken_mount_is_retried() {
    let primary = icecast(
        "limit",
        "<mount><mount-name>/live.opus</mount-name><max-listeners>1</max-listeners></mount>",
    );
    let url = primary.url(PASSWORD, "/live.opus");
    let bridge = bridge(std::slice::from_ref(&url)).await;
    let addr = bridge.local_addr();
    mount_reaches(addr, 0, "connected", Duration::from_secs(10)).await;
    let icecast = primary.addr();
    // Spawned now, so it holds the mount's one place while the second knocks.
    let first =
        tokio::task::spawn_blocking(move || listen(icecast, "/live.opus", Duration::from_secs(6)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (refused, _) =
        blocking(move || listen(icecast, "/live.opus", Duration::from_secs(1))).await;
    assert!(refused.starts_with("http/1.0 403"), "{refused}");
    // A second source for the same mount is told it is taken, and retries.
    let second = self::bridge(&[url]).await;
    let taken = mount_reaches(second.local_addr(), 0, "retrying", Duration::from_secs(10)).await;
    assert!(
        taken["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("403")),
        "{taken}"
    );
    let (head, body) = first.await.expect("the first listener");
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(
        body.len() > 50_000,
        "the first listener got {} bytes",
        body.len()
    );
    let source = mounts(addr)[0].clone();
    assert_eq!(source["state"], "connected", "{source}");
    assert_eq!(source["attempts"], 1, "{source}");
    second.shutdown().await;
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_is_dropped_and_the_music_goes_on_locally() {
    let primary = icecast("stall", "");
    let link = common::stall::StallLink::start(primary.addr()).await;
    let logs = fresh_dir("icecast-stall-logs");
    let url = format!(
        "icecast://source:{PASSWORD}@127.0.0.1:{}/live.opus",
        link.addr().port()
    );
    let log_dir = logs.to_str().expect("utf-8 path").to_owned();
    let bin = common::Binary::spawn(
        &["--port", "0", "--icecast", &url, "--log-dir", &log_dir],
        &[
            ("AURALIS_SAMPLE_RATE", "16000"),
            ("AURALIS_DEGRADE_ON_CPU", "false"),
            ("AURALIS_SEND_TIMEOUT_MS", "1000"),
        ],
    );
    let addr = bin.addr();
    let listener = Listener::start(addr, "").await;
    mount_reaches(addr, 0, "connected", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    link.stall(true);
    let stalled_at = Instant::now();
    let dropped = mount_reaches(addr, 0, "retrying", Duration::from_secs(8)).await;
    let noticed_s = stalled_at.elapsed().as_secs_f64();
    assert!(
        dropped["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("took no data")),
        "{dropped}"
    );
    let (_, health) = common::get_json(addr, "/health");
    assert_eq!(health["status"], "degraded", "a mount is down: {health}");

    link.stall(false);
    let back = mount_reaches(addr, 0, "connected", Duration::from_secs(10)).await;
    assert!(back["connects"].as_u64() >= Some(2), "{back}");
    let icecast = primary.addr();
    let (head, body) =
        blocking(move || listen(icecast, "/live.opus", Duration::from_secs(1))).await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(
        body.len() > 4_000,
        "{} bytes after the reconnect",
        body.len()
    );
    // The local listener heard every chunk throughout.
    listener.finish(10).await.assert_contiguous();
    drop(bin);
    let logged = Logs::read(&logs);
    let lines = Logs::with_message(&logged.main, "took no data");
    assert_eq!(lines.len(), 1, "one stall logged: {:?}", logged.main.len());
    assert_eq!(lines[0]["level"], "WARN", "{}", lines[0]);
    // The socket buffers (about 2.5 s of the stream) fill, then pages wait in
    // the outbox for the 1 s send timeout.
    assert!(
        noticed_s < 6.0,
        "the stall was noticed {noticed_s:.1} s after it began"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_at_two_bitrates_each_get_their_own_stream() {
    let primary = icecast("kbps", "");
    let low = format!("{}?kbps=64", primary.url(PASSWORD, "/low.opus"));
    // The stream's own 128 kbit/s: the pump's pages, shared with /stream.opus.
    let high = format!("{}?kbps=128", primary.url(PASSWORD, "/high.opus"));
    let bridge = bridge(&[low, high]).await;
    let addr = bridge.local_addr();
    for i in 0..2 {
        mount_reaches(addr, i, "connected", Duration::from_secs(10)).await;
    }
    let icecast = primary.addr();
    let wall = Duration::from_secs(6);
    let low = blocking(move || listen_and_decode(icecast, "/low.opus", wall));
    let high = blocking(move || listen_and_decode(icecast, "/high.opus", wall));
    let ((low_head, low_body, low_s), (_, high_body, high_s)) = tokio::join!(low, high);
    assert!(low_head.contains("bitrate=64"), "{low_head}");
    for (what, kbps, body, seconds) in [
        ("64 kbit/s", 64.0, &low_body, low_s),
        ("128 kbit/s", 128.0, &high_body, high_s),
    ] {
        assert!(
            (seconds - 6.0).abs() <= 0.3,
            "{what}: {seconds:.3} s decoded"
        );
        let rate = body.len() as f64 * 8.0 / 1000.0 / wall.as_secs_f64();
        assert!(
            (rate / kbps - 1.0).abs() <= 0.25,
            "{what}: {rate:.1} kbit/s through Icecast"
        );
    }
    bridge.shutdown().await;
}
