//! HTTP routes: the page, health (seed §7), status, presets, streams, control and
//! Prometheus metrics, plus the WebSocket endpoint. [`app`] builds the router.

use std::time::Duration;

use auralis::compose::presets::PRESETS;
use auralis::degrade::Level;
use auralis::engine::RendererStatus;
use auralis::prerender::Backend;
use auralis::stream::reader::Listing;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::client_dir::{client_file, client_index};
use crate::control::{self, token_matches};
use crate::hub::Role;
use crate::metrics::{prometheus_text, Sample};
use crate::protocol::{
    error_message, params_message, parse_client_bytes, Dialect, ErrorCode, ProtocolError,
};
use crate::recording::http::{available_handler, recording_handler};
use crate::stream_opus::stream_opus_handler;
use crate::ws::ws_handler;
use crate::AppState;

/// Largest body `POST /api/control` reads; bodies over the protocol's 64 KiB but
/// under this get a JSON `too_large` error, larger ones a bare 413.
const CONTROL_BODY_LIMIT: usize = 1024 * 1024;
/// Error rate (bad chunks over the recent window) above which the bridge is degraded.
const MAX_HEALTHY_ERROR_RATE: f64 = 0.1;

/// The router of the bridge. With `--client-dir`, that client is the page at `/`
/// and its files are under `/client/`; the built-in player is always at
/// `/player/`.
pub fn app(state: AppState) -> Router {
    let page = if state.config.client_dir.is_some() {
        get(client_index)
    } else {
        get(index)
    };
    Router::new()
        .route("/", page)
        .route("/player/", get(index))
        .route("/client/{*path}", get(client_file))
        .route("/player.js", get(player_js))
        .route("/worklet.js", get(worklet_js))
        .route("/player.css", get(player_css))
        .route("/health", get(health_handler))
        .route("/api/status", get(status_handler))
        .route("/api/presets", get(presets_handler))
        .route("/api/streams", get(streams_handler))
        .route(
            "/api/control",
            post(control_handler).layer(DefaultBodyLimit::max(CONTROL_BODY_LIMIT)),
        )
        .route("/metrics", get(metrics_handler))
        .route("/api/recording", get(recording_handler))
        .route("/api/recording/available", get(available_handler))
        .route("/ws/stream", get(ws_handler))
        .route("/stream.opus", get(stream_opus_handler))
        .with_state(state)
}

/// The browser player: plain HTML, CSS and JavaScript compiled into the binary, no
/// build step and no external URL, so it works offline.
async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

/// A static asset of the player with its content type.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn player_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/player.js"),
    )
}

async fn worklet_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/worklet.js"),
    )
}

async fn player_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("../web/player.css"))
}

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Everything works.
    Healthy,
    /// Serving, but something is off.
    Degraded,
    /// Not producing audio.
    Unhealthy,
}

impl Health {
    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// Evaluates the health checks (seed §7): synthesis — whether listeners get music:
/// the source thread produced a chunk recently and under 10 % of the last 100
/// chunks failed the check every chunk gets (that check is the periodic self-test,
/// no render happens per request); the texture's failure rate is reported beside
/// it (`texture_error_rate`) but does not fail it, since the pad carries the music
/// while the texture falls back — composition (a phrase is playing), buffer (the source keeps up
/// with real time), the degradation level, the client load, the Icecast mounts and
/// the log files. Unhealthy when no audio is produced; degraded when any other
/// check fails.
#[must_use]
pub fn health(state: &AppState) -> (Health, Value) {
    let checks = HealthChecks::of(state);
    let status = checks.status();
    (status, checks.to_json(status))
}

/// What the health checks found.
struct HealthChecks {
    alive: bool,
    producing: bool,
    age: Option<Duration>,
    chunk_error_rate: f64,
    texture_failure_rate: f64,
    level: Level,
    idle: bool,
    clients: usize,
    max_clients: usize,
    synthesis_ok: bool,
    composition_ok: bool,
    buffer_ok: bool,
    /// Every configured Icecast mount is connected.
    icecast_ok: bool,
    icecast: Vec<crate::icecast::MountSnapshot>,
    logging: crate::logging::LogStatus,
}

impl HealthChecks {
    fn of(state: &AppState) -> Self {
        let hub = &state.hub;
        let stats = hub.metrics.snapshot();
        let chunk = state.pump.chunk_duration();
        let stale_after = (chunk * 5).max(Duration::from_secs(1));
        let age = hub.last_chunk_age();
        let starting = hub.uptime() <= Duration::from_secs(2);
        // Without a chunk yet: still starting up.
        let producing = age.map_or(starting, |a| a <= stale_after);
        let chunk_error_rate = stats.recent_error_rate();
        // Texture renders that failed: the pad covers them and no bad chunk reaches
        // the check above, so they are reported apart and page no one; the
        // degradation level they drive shows in `status`.
        let texture_failure_rate = state
            .pump
            .renderer()
            .map_or(0.0, |r| f64::from(r.stats.failure_rate));
        Self {
            alive: state.pump.is_alive(),
            producing,
            age,
            chunk_error_rate,
            texture_failure_rate,
            level: stats.level,
            idle: stats.idle(),
            clients: hub.client_count(),
            max_clients: hub.max_clients(),
            synthesis_ok: producing && chunk_error_rate < MAX_HEALTHY_ERROR_RATE,
            composition_ok: stats.phrase_index.is_some() || starting,
            // The source renders a chunk ahead: the newest chunk is never more than
            // about one chunk old unless the source is falling behind real time.
            buffer_ok: age.map_or(starting, |a| a <= chunk * 3 + Duration::from_millis(50)),
            icecast_ok: state.icecast.all_connected(),
            icecast: state.icecast.snapshot(),
            logging: crate::logging::status(),
        }
    }

    const fn at_capacity(&self) -> bool {
        self.clients >= self.max_clients
    }

    fn status(&self) -> Health {
        if !self.alive || !self.producing {
            Health::Unhealthy
        } else if !self.synthesis_ok
            || !self.composition_ok
            || !self.buffer_ok
            || self.level >= Level::Critical
            || self.at_capacity()
            || self.idle
            || !self.icecast_ok
            || self.logging.state == crate::logging::LogState::Failing
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    fn to_json(&self, status: Health) -> Value {
        // The first five fields are the original server's health model.
        json!({
            "status": status.name(),
            "synthesis_functional": self.synthesis_ok,
            "composition_functional": self.composition_ok,
            "buffer_healthy": self.buffer_ok,
            "error_rate": self.chunk_error_rate,
            "texture_error_rate": self.texture_failure_rate,
            "checks": {
                "source_thread_alive": self.alive,
                "chunk_error_rate": self.chunk_error_rate,
                "source_producing": self.producing,
                "last_chunk_age_ms": self.age.map(|a| a.as_millis() as u64),
                "source_idle": self.idle,
                "degradation_level": self.level.name(),
                "clients": self.clients,
                "max_clients": self.max_clients,
                "at_capacity": self.at_capacity(),
                "icecast_connected": self.icecast_ok,
                "logging": self.logging.state.name(),
            },
            "icecast": self.icecast,
            "logging": {
                "state": self.logging.state.name(),
                "dir": self.logging.dir.as_ref().map(|d| d.display().to_string()),
                "write_failures": self.logging.write_failures,
                "errors": self.logging.errors,
            },
        })
    }
}

async fn health_handler(State(state): State<AppState>) -> Response {
    let (status, body) = health(&state);
    let code = match status {
        Health::Healthy | Health::Degraded => StatusCode::OK,
        Health::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(body)).into_response()
}

async fn status_handler(State(state): State<AppState>) -> Json<Value> {
    let hub = &state.hub;
    let s = hub.metrics.snapshot();
    let info = state.pump.info();
    let (health, _) = health(&state);
    let level = s.level;
    Json(json!({
        "status": health.name(),
        "uptime_s": hub.uptime().as_secs_f64(),
        "renderer": renderer_json(state.pump.renderer()),
        "source": {
            "name": info.name,
            "kind": info.kind,
            "state": s.source.name(),
            "alive": state.pump.is_alive(),
            "sample_rate": info.sample_rate,
            "channels": info.channels,
            "frames_per_chunk": state.pump.frames_per_chunk(),
            "chunk_ms": state.pump.chunk_duration().as_secs_f64() * 1000.0,
            "seq": s.last_seq,
            "phrase_index": s.phrase_index,
            "run_mode": s.run_mode.name(),
            "render_rtf": s.render_rtf(),
            "schedule_resets": s.schedule_resets,
        },
        "degradation": {"level": level.name(), "value": level as u8},
        "params": state.pump.params().to_json(),
        "clients": {
            "connected": hub.client_count(),
            "max": hub.max_clients(),
            "list": hub.clients(),
        },
        "chunks": {
            "produced": s.chunks_produced,
            "sent": s.chunks_sent,
            "dropped": s.chunks_dropped,
            "bad_replaced": s.bad_chunks,
        },
        "bytes_out": s.bytes_out,
        "icecast": state.icecast.snapshot(),
        "process": {
            "cpu_seconds": crate::procstat::cpu_seconds(),
            "resident_bytes": crate::procstat::resident_bytes(),
        },
        "control": {
            "applied": s.control_applied,
            "errors": s.control_errors,
            "open_without_token": state.config.control_open(),
            "token_required": state.config.control_token.is_some(),
        },
    }))
}

/// The texture pre-renderer's state for `/api/status` (`null` for a source
/// without one).
fn renderer_json(status: Option<RendererStatus>) -> Value {
    let Some(r) = status else {
        return Value::Null;
    };
    json!({
        "backend": match r.stats.backend {
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        },
        "adapter": (!r.stats.adapter.is_empty()).then_some(r.stats.adapter),
        "gpu_fallbacks": r.stats.gpu_failures,
        "attempts": r.stats.attempts,
        "failures": r.stats.failures,
        "failure_rate": r.stats.failure_rate,
        "silenced": r.stats.silenced,
        "margin_s": r.margin_s,
        "texture_audible": r.texture_audible,
        "texture_enabled": r.texture_enabled,
        "partials": r.quality.partials,
        "grains_per_second": r.quality.grains_per_second,
    })
}

async fn presets_handler() -> Json<Value> {
    let list: Vec<Value> = PRESETS
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "params": crate::protocol::params_json(&p.compose, &p.levels, Some(p.name)),
            })
        })
        .collect();
    Json(Value::Array(list))
}

/// `/api/streams`: the stream this bridge plays first (with the shared-memory
/// reader's counters for an `shm` source), then every other `auralis-*` stream in
/// `/dev/shm` with its header's state: `invalid` (and why), `closed`, `live` (its
/// writer process exists) or `idle` (its writer is gone). Each names the
/// `--source` that plays it.
async fn streams_handler(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Array(streams_json(&state)))
}

/// The entries of `/api/streams`.
#[must_use]
pub fn streams_json(state: &AppState) -> Vec<Value> {
    let info = state.pump.info();
    let stream_state = state.hub.metrics.snapshot().source.name();
    let mut active = json!({
        "name": info.name,
        "kind": info.kind,
        "source": if info.kind == "shm" { format!("shm:{}", info.name) } else { info.name.clone() },
        "active": true,
        "state": stream_state,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "url": "/ws/stream",
    });
    if let (Some(reader), Value::Object(m)) = (state.pump.reader_stats(), &mut active) {
        let r = reader.snapshot();
        m.insert("reason".into(), r.idle_reason.into());
        m.insert("writer_pid".into(), r.writer_pid.into());
        m.insert(
            "reader".into(),
            json!({
                "laps": r.laps,
                "underruns": r.underruns,
                "resyncs": r.resyncs,
                "attaches": r.attaches,
            }),
        );
    }
    let mut out = vec![active];
    let listing = match auralis::stream::reader::list() {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list the shared-memory streams");
            Vec::new()
        }
    };
    for stream in listing {
        if info.kind == "shm" && stream.name == info.name {
            continue;
        }
        out.push(other_stream_json(stream));
    }
    out
}

/// The `/api/streams` entry of a stream the bridge does not play.
fn other_stream_json(stream: Listing) -> Value {
    let mut m = Map::new();
    for (k, v) in [
        ("name", json!(stream.name)),
        ("kind", json!("shm")),
        ("source", json!(format!("shm:{}", stream.name))),
        ("active", json!(false)),
    ] {
        m.insert(k.into(), v);
    }
    match stream.header {
        Ok(h) => {
            let alive = std::path::Path::new(&format!("/proc/{}", h.writer_pid)).exists();
            let state = match (h.closed, alive) {
                (true, _) => "closed",
                (false, true) => "live",
                (false, false) => "idle",
            };
            for (k, v) in [
                ("valid", json!(true)),
                ("state", json!(state)),
                ("sample_rate", json!(h.sample_rate)),
                ("channels", json!(h.channels)),
                ("writer_pid", json!(h.writer_pid)),
                ("remote_control", json!(h.remote_control)),
                ("control_refused", json!(h.control_refused)),
                ("degradation_level", json!(h.level.name())),
            ] {
                m.insert(k.into(), v);
            }
        }
        Err(e) => {
            m.insert("valid".into(), json!(false));
            m.insert("state".into(), json!("invalid"));
            m.insert("error".into(), json!(e.to_string()));
        }
    }
    Value::Object(m)
}

fn error_response(err: &ProtocolError, unauthenticated: bool) -> Response {
    let code = match err.code {
        ErrorCode::Forbidden if unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        error_message(err, true),
    )
        .into_response()
}

async fn control_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (role, unauthenticated) = match (&state.config.control_token, bearer) {
        (Some(expected), Some(given)) if token_matches(given, expected) => {
            (Role::Controller, false)
        }
        (Some(_), _) => (Role::Listener, true),
        (None, _) if state.config.control_open() => (Role::Controller, false),
        (None, _) => (Role::Listener, false),
    };
    let message = match parse_client_bytes(&body, Dialect::Native) {
        Ok(m) => m,
        Err(e) => {
            state.hub.metrics.count_control_error();
            return error_response(&e, false);
        }
    };
    let mut limiter = state.http_limiter.lock().await;
    match control::apply(&state, role, &mut limiter, &message).await {
        Ok(params) => {
            tracing::info!("control change applied over HTTP");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                params_message(&params.to_json(), "next_phrase"),
            )
                .into_response()
        }
        Err(e) => error_response(&e, unauthenticated),
    }
}

/// The Prometheus text exposition of the counters.
#[must_use]
pub fn metrics_text(state: &AppState) -> String {
    prometheus_text(&Sample {
        metrics: state.hub.metrics.snapshot(),
        clients: state.hub.client_count(),
        renderer: state.pump.renderer(),
        source_up: state.pump.is_alive(),
        cpu_seconds: crate::procstat::cpu_seconds(),
        resident_bytes: crate::procstat::resident_bytes(),
        mounts: state.icecast.samples(),
        logging: crate::logging::status(),
    })
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_text(&state),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::metrics::LATENCY_BUCKETS_S;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn test_state() -> AppState {
        let config = Config {
            port: 0,
            sample_rate: 8000,
            chunk_ms: 50,
            ..Config::default()
        };
        crate::build_state(config).expect("state").0
    }

    async fn get_json(app: Router, uri: &str) -> (StatusCode, Value) {
        let response = app
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn presets_and_streams_are_listed() {
        let state = test_state();
        let (code, presets) = get_json(app(state.clone()), "/api/presets").await;
        assert_eq!(code, StatusCode::OK);
        let names: Vec<&str> = presets
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["focus", "meditation", "sleep", "bright"]);
        let (_, streams) = get_json(app(state.clone()), "/api/streams").await;
        assert_eq!(streams[0]["name"], "embedded");
        assert_eq!(streams[0]["url"], "/ws/stream");
        state.pump.stop();
    }

    #[tokio::test]
    async fn status_and_metrics_show_the_texture_renderer() {
        let state = test_state();
        // The embedded engine asks for its first texture before the first chunk.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (code, status) = get_json(app(state.clone()), "/api/status").await;
            assert_eq!(code, StatusCode::OK);
            let r = &status["renderer"];
            assert!(
                matches!(r["backend"].as_str(), Some("cpu" | "gpu")),
                "{status}"
            );
            // Both follow the degradation level, which the machine's load sets.
            assert!(r["texture_enabled"].is_boolean(), "{r}");
            assert!(r["partials"].as_u64() >= Some(1), "{r}");
            assert!(r["failure_rate"].as_f64().is_some(), "{r}");
            if r["attempts"].as_u64() > Some(0) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no texture rendered: {r}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let metrics = metrics_text(&state);
        for name in [
            "auralis_bridge_texture_backend_gpu",
            "auralis_bridge_texture_gpu_fallbacks_total",
            "auralis_bridge_texture_failure_rate",
            "auralis_bridge_texture_margin_seconds",
            "auralis_bridge_texture_audible",
        ] {
            assert!(metrics.contains(&format!("\n{name} ")), "{name} missing");
        }
        state.pump.stop();
    }

    #[tokio::test]
    async fn control_over_http_validates_and_applies() {
        let state = test_state();
        let post = |body: &'static str| {
            Request::post("/api/control")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request")
        };
        let response = app(state.clone())
            .oneshot(post(r#"{"type":"update_params","bpm":1000}"#))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let err: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(err["field"], "bpm");
        assert_eq!(state.pump.params().compose.bpm, 60.0);
        let response = app(state.clone())
            .oneshot(post(r#"{"type":"update_params","bpm":90}"#))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(state.pump.params().compose.bpm, 90.0);
        state.pump.stop();
    }

    #[tokio::test]
    async fn the_latency_histogram_is_cumulative_and_complete() {
        let state = test_state();
        for us in [300, 4_000, 4_500, 60_000, 5_000_000] {
            state.hub.metrics.record_send(us);
        }
        let text = metrics_text(&state);
        let buckets: Vec<(String, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("auralis_bridge_send_latency_seconds_bucket{le=\""))
            .filter_map(|l| {
                let (le, count) = l.split_once("\"} ")?;
                Some((le.to_owned(), count.parse().ok()?))
            })
            .collect();
        assert_eq!(buckets.len(), LATENCY_BUCKETS_S.len() + 1, "{text}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        let at = |le: &str| buckets.iter().find(|(b, _)| b == le).map(|(_, c)| *c);
        assert_eq!(at("0.0005"), Some(1));
        assert_eq!(at("0.005"), Some(3));
        assert_eq!(at("0.075"), Some(4));
        assert_eq!(at("2.5"), Some(4));
        assert_eq!(at("+Inf"), Some(5));
        assert!(text.contains("auralis_bridge_send_latency_seconds_count 5\n"));
        state.pump.stop();
    }

    #[tokio::test]
    async fn health_turns_unhealthy_when_the_source_stops() {
        let state = test_state();
        // Let the source produce.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (code, body) = get_json(app(state.clone()), "/health").await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "healthy");
        state.pump.stop();
        let (code, body) = get_json(app(state.clone()), "/health").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["checks"]["source_thread_alive"], false);
    }
}
