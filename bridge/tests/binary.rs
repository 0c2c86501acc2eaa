//! The real `auralis-bridge` binary: start-up, configuration errors, logging,
//! SIGTERM.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::evidence::{fresh_dir, get_metric, Listener, Logs};
use common::{connect, eventually, get_json, next_audio, next_close, next_json, Binary};

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let mut bin = Binary::spawn(&["--port", "0", "--sample-rate", "16000"], &[]);
    let addr = bin.addr();
    let mut clients = Vec::new();
    for q in ["", "?codec=f32", "?format=json"] {
        let mut ws = connect(addr, q).await;
        if q.is_empty() {
            next_json(&mut ws, "hello", T).await;
            next_audio(&mut ws, T).await;
        }
        clients.push(ws);
    }
    bin.signal("TERM");
    for ws in &mut clients {
        let (code, reason) = next_close(ws, T).await.expect("a close frame");
        assert_eq!(code, 1001, "{reason}");
    }
    let status = bin.wait(Duration::from_secs(10)).expect("exits in time");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigint_exits_0() {
    let mut bin = Binary::spawn(&["--port", "0", "--sample-rate", "16000"], &[]);
    let _ = bin.addr();
    bin.signal("INT");
    let status = bin.wait(Duration::from_secs(10)).expect("exits in time");
    assert!(status.success(), "exit status {status}");
}

fn refused(args: &[&str], env: &[(&str, &str)], setting: &str) {
    let mut bin = Binary::spawn(args, env);
    let status = bin.wait(Duration::from_secs(10)).expect("exits at once");
    assert!(!status.success(), "{args:?} {env:?} was accepted");
    assert_eq!(status.code(), Some(2), "{args:?} {env:?}: a usage error");
    // Give the reader thread a moment to forward the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let stderr = bin.stderr_lines().join("\n");
    assert!(
        stderr.contains(setting),
        "{args:?} {env:?}: the error does not name {setting}:\n{stderr}"
    );
}

#[test]
fn invalid_configuration_is_refused_naming_the_setting() {
    refused(&["--sample-rate", "4000"], &[], "sample_rate");
    refused(&["--chunk-ms", "500"], &[], "chunk_ms");
    refused(&["--max-clients", "0"], &[], "max_clients");
    refused(&["--host", "not-an-address"], &[], "host");
    refused(&["--source", "shm:../daw"], &[], "source");
    refused(&["--preset", "polka"], &[], "preset");
    refused(&["--control-token", "short"], &[], "control_token");
    refused(&["--port", "99999"], &[], "--port");
    refused(&[], &[("AURALIS_CHUNK_MS", "5")], "chunk_ms");
    refused(&[], &[("AURALIS_PORT", "eighty")], "--port");
    let dir = std::env::temp_dir().join(format!("auralis-bridge-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bridge.toml");
    std::fs::write(&file, "port = 0\nheartbeat_seconds = 3\n").expect("write");
    refused(
        &["--config", file.to_str().expect("utf-8 path")],
        &[],
        "heartbeat_seconds",
    );
    std::fs::write(&file, "sample_rate = 1\n").expect("write");
    refused(
        &["--config", file.to_str().expect("utf-8 path")],
        &[],
        "sample_rate",
    );
    refused(
        &["--config", "/nonexistent/auralis.toml"],
        &[],
        "/nonexistent/auralis.toml",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_in_use_is_reported_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let mut bin = Binary::spawn(&["--port", &port], &[]);
    let status = bin.wait(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(100));
    let stderr = bin.stderr_lines().join("\n");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_environment_are_read() {
    let dir = std::env::temp_dir().join(format!("auralis-bridge-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bridge.toml");
    std::fs::write(
        &file,
        "port = 0\nsample_rate = 22050\npreset = \"sleep\"\nchunk_ms = 50\n",
    )
    .expect("write");
    let mut bin = Binary::spawn(
        &["--config", file.to_str().expect("utf-8 path")],
        &[("AURALIS_CHUNK_MS", "40")],
    );
    let addr = bin.addr();
    let mut ws = connect(addr, "").await;
    let hello = next_json(&mut ws, "hello", T).await;
    assert_eq!(hello["format"]["sample_rate"], 22_050);
    assert_eq!(hello["params"]["preset"], "sleep");
    let (h, _) = next_audio(&mut ws, T).await;
    assert_eq!(
        h.frames, 882,
        "40 ms from the environment beats 50 ms from the file"
    );
    assert!(bin.terminate());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary on a free port at a light sample rate, logging to `dir`, with `env`.
fn logging_to(dir: &Path, env: &[(&str, &str)]) -> Binary {
    let dir = dir.to_str().expect("utf-8");
    Binary::spawn(
        &["--port", "0", "--sample-rate", "16000", "--log-dir", dir],
        env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_to_json_files_and_an_unwritable_log_dir_does_not_stop_the_stream() {
    // Writable: JSON lines in the main log.
    let dir = std::env::temp_dir().join(format!("auralis-bridge-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut bin = logging_to(&dir, &[]);
    let addr = bin.addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    drop(ws);
    assert!(bin.terminate());
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("log dir created")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let main = files
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("auralis-bridge"))
        })
        .expect("a main log file");
    assert!(
        files.iter().any(|p| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("errors"))),
        "an error log file: {files:?}"
    );
    let text = std::fs::read_to_string(main).expect("read log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "client connected"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "client connected"
                && l["span"]["id"].as_u64().is_some()),
        "client lines carry the client id: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Unwritable: a path below a regular file can never be created.
    let blocker = std::env::temp_dir().join(format!("auralis-bridge-file-{}", std::process::id()));
    std::fs::write(&blocker, "not a directory").expect("write");
    let bad_dir = blocker.join("logs");
    let mut bin = logging_to(&bad_dir, &[]);
    let addr = bin.addr();
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
    for _ in 0..3 {
        next_audio(&mut ws, T).await;
    }
    assert!(health_is(addr, "degraded", "failing"));
    let stderr = bin.stderr_lines().join("\n");
    assert!(stderr.contains("cannot write logs"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "a console piped to a file must carry no colour codes: {stderr:?}"
    );
    assert!(bin.terminate());
    let _ = std::fs::remove_file(&blocker);
}

/// The path of today's (UTC) log file `prefix` in `dir`.
fn todays_log(dir: &Path, prefix: &str) -> PathBuf {
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .expect("date");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_owned();
    dir.join(format!("{prefix}.{today}.log"))
}

/// A listener comes and goes: two INFO lines ("client connected", "client
/// disconnected") for the main log.
async fn log_a_client(addr: SocketAddr) {
    let mut ws = connect(addr, "").await;
    next_json(&mut ws, "hello", T).await;
}

/// `/health`'s status and its `logging` check.
fn logging_health(addr: SocketAddr) -> (String, String) {
    let (_, h) = get_json(addr, "/health");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    (text(&h["status"]), text(&h["checks"]["logging"]))
}

/// Whether `/health` is `status` with `logging` as its logging check.
fn health_is(addr: SocketAddr, status: &str, logging: &str) -> bool {
    logging_health(addr) == (status.to_owned(), logging.to_owned())
}

/// Console lines containing `text`.
fn count(console: &[String], text: &str) -> usize {
    console.iter().filter(|l| l.contains(text)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_disk_degrades_health_and_logging_resumes_when_space_returns() {
    // Today's log files point at /dev/full: every write fails with ENOSPC.
    let dir = fresh_dir("full-log-disk");
    let (main, errors) = (
        todays_log(&dir, "auralis-bridge"),
        todays_log(&dir, "errors"),
    );
    for file in [&main, &errors] {
        std::os::unix::fs::symlink("/dev/full", file).expect("symlink");
    }
    let mut bin = logging_to(&dir, &[]);
    let addr = bin.addr();
    let listener = Listener::start(addr, "").await;
    assert!(
        eventually(T, || health_is(addr, "degraded", "failing")).await,
        "{:?}",
        logging_health(addr)
    );
    let (_, health) = get_json(addr, "/health");
    assert_eq!(health["synthesis_functional"], true, "{health}");
    let error = health["logging"]["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.contains("No space left on device") && error.contains("auralis-bridge."),
        "{health}"
    );
    const FAILURES: &str = "auralis_bridge_log_write_failures_total";
    assert_eq!(get_metric(addr, "auralis_bridge_logging_failing"), 1.0);
    let failed = get_metric(addr, FAILURES);
    assert!(failed >= 1.0, "{failed}");
    // Every line meanwhile is counted; the console says it once.
    for _ in 0..3 {
        log_a_client(addr).await;
    }
    assert!(eventually(T, || get_metric(addr, FAILURES) >= failed + 6.0).await);

    // Space again: the next line lands, with no restart.
    std::fs::remove_file(&main).expect("remove the link");
    log_a_client(addr).await;
    assert!(
        eventually(T, || health_is(addr, "healthy", "ok")).await,
        "{:?}",
        logging_health(addr)
    );
    assert_eq!(get_metric(addr, "auralis_bridge_logging_failing"), 0.0);
    let lost = get_metric(addr, FAILURES);
    let recording = listener.finish(10).await;
    recording.assert_contiguous();
    std::fs::remove_file(&errors).expect("remove the link");
    assert!(bin.terminate());
    let console = bin.stderr_lines();
    assert_eq!(count(&console, "cannot write logs"), 1, "{console:#?}");
    assert_eq!(count(&console, "can be written again"), 1, "{console:#?}");
    let logs = Logs::read(&dir);
    let back = Logs::with_message(&logs.main, "can be written again");
    assert_eq!(back.len(), 1, "{:?}", logs.main);
    assert_eq!(back[0]["fields"]["lost"].as_f64(), Some(lost), "{back:?}");
    assert!(!Logs::with_message(&logs.main, "client connected").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_log_directory_is_made_again_and_one_that_cannot_be_is_reported() {
    let dir = fresh_dir("removed-log-dir");
    let main = todays_log(&dir, "auralis-bridge");
    let mut bin = logging_to(&dir, &[]);
    let addr = bin.addr();
    let landed =
        || std::fs::read_to_string(&main).is_ok_and(|t| t.contains("\"client connected\""));
    log_a_client(addr).await;
    assert!(eventually(T, landed).await);
    // Removed: made again by the next line.
    std::fs::remove_dir_all(&dir).expect("remove the log directory");
    log_a_client(addr).await;
    assert!(
        eventually(T, landed).await,
        "the log directory is made again"
    );
    assert!(health_is(addr, "healthy", "ok"));
    // A file where the directory was: failing until it is gone.
    std::fs::remove_dir_all(&dir).expect("remove the log directory");
    std::fs::write(&dir, "in the way").expect("write");
    log_a_client(addr).await;
    assert!(eventually(T, || health_is(addr, "degraded", "failing")).await);
    std::fs::remove_file(&dir).expect("remove the file");
    log_a_client(addr).await;
    assert!(eventually(T, || health_is(addr, "healthy", "ok")).await);
    assert!(eventually(T, landed).await, "logging resumed");
    assert!(bin.terminate());
    let console = bin.stderr_lines();
    assert_eq!(count(&console, "removed or replaced"), 2, "{console:#?}");
    assert_eq!(count(&console, "cannot write logs"), 1, "{console:#?}");
    assert_eq!(count(&console, "can be written again"), 1, "{console:#?}");
    // Every line is whole JSON.
    let logs = Logs::read(&dir);
    assert!(!Logs::with_message(&logs.main, "can be written again").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `AURALIS_DEFAULT_FORMAT=json` makes plain `/ws/stream` speak the original
/// server's dialect, `?format=binary` still reaches the native protocol, and
/// `--client-dir` serves that client at `/` and `/client/`, the built-in player at
/// `/player/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_format_and_the_client_dir_serve_old_clients() {
    let dir = fresh_dir("client-dir");
    std::fs::write(dir.join("index.html"), "<title>old client</title>").expect("index");
    std::fs::write(dir.join("app.js"), "console.log(1)").expect("script");
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    let bin = Binary::spawn(
        &[
            "--port",
            "0",
            "--sample-rate",
            "16000",
            "--client-dir",
            dir_arg,
        ],
        &[("AURALIS_DEFAULT_FORMAT", "json")],
    );
    let addr = bin.addr();
    let mut plain = connect(addr, "").await;
    let welcome = next_json(&mut plain, "welcome", T).await;
    assert_eq!(welcome["sample_rate"], 44_100, "{welcome}");
    let mut native = connect(addr, "?format=binary").await;
    next_json(&mut native, "hello", T).await;
    next_audio(&mut native, T).await;
    let (page, _) = common::http(addr, "GET", "/", &[], "");
    assert_eq!(page, 200);
    let (script, body) = common::http(addr, "GET", "/client/app.js", &[], "");
    assert_eq!((script, body.as_str()), (200, "console.log(1)"));
    let (player, body) = common::http(addr, "GET", "/player/", &[], "");
    assert_eq!(player, 200);
    assert!(body.contains("/player.js"), "the built-in player");
    let (missing, _) = common::http(addr, "GET", "/client/../Cargo.toml", &[], "");
    assert_eq!(missing, 404);
}
