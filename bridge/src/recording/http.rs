//! `GET /api/recording` and `GET /api/recording/available`.
//!
//! `?seconds=N` (1–3600: the last `N` seconds) or `?from=POS&to=POS` (frames,
//! `to` excluded, at most an hour), `&format=wav|opus` (default `wav`). The
//! answer streams as it is rendered: a WAV announces its exact length, so a
//! client sees its progress and a render that fails breaks the transfer off
//! short of it; Opus is chunked and says its expected size in
//! `X-Auralis-Expected-Bytes`. Every refusal is JSON:
//! `{"error": code, "message": text}`, with `available` (`from`, `to` in
//! frames, `seconds`) where the stretch is not in the log.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::render::{self, Format, Job};
use super::Recording;
use crate::calendar::{civil_from_days, DAY_S};
use crate::AppState;

/// The longest recording, in seconds.
pub const MAX_SECONDS: u64 = 3600;
/// What a client over the render limit is told to wait, in seconds.
const RETRY_AFTER_S: u64 = 5;

/// A refused request: its status and JSON body.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    body: Value,
    retry_after_s: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": code, "message": message.into()}),
            retry_after_s: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The status code.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch {
    /// The last this many seconds.
    Last(u64),
    /// Frames `[from, to)`.
    Frames(u64, u64),
}

/// A valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Which stretch.
    pub stretch: Stretch,
    /// Which file format.
    pub format: Format,
}

fn whole(name: &str, text: &str) -> Result<u64, Refusal> {
    text.trim().parse().map_err(|_| {
        Refusal::bad(format!(
            "{name} must be a whole number, got {text:?}{}",
            if name == "seconds" {
                " (1–3600)"
            } else {
                " (a sample position in frames)"
            }
        ))
    })
}

/// Parses and checks the query.
///
/// # Errors
/// A 400 [`Refusal`] naming what is wrong.
pub fn parse(query: &HashMap<String, String>) -> Result<Request, Refusal> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "seconds" | "from" | "to" | "format"))
    {
        return Err(Refusal::bad(format!(
            "unknown parameter {unknown:?}: give seconds=N (1–3600) or from=POS&to=POS, and format=wav|opus"
        )));
    }
    let format = match query.get("format").map(String::as_str) {
        None | Some("wav") => Format::Wav,
        Some("opus") => Format::Opus,
        Some(other) => {
            return Err(Refusal::bad(format!(
                "format must be wav or opus, got {other:?}"
            )))
        }
    };
    let stretch = match (query.get("seconds"), query.get("from"), query.get("to")) {
        (Some(s), None, None) => {
            let seconds = whole("seconds", s)?;
            if !(1..=MAX_SECONDS).contains(&seconds) {
                return Err(Refusal::bad(format!(
                    "seconds must be from 1 to {MAX_SECONDS}, got {seconds}"
                )));
            }
            Stretch::Last(seconds)
        }
        (None, Some(f), Some(t)) => {
            let (from, to) = (whole("from", f)?, whole("to", t)?);
            if from >= to {
                return Err(Refusal::bad(format!(
                    "from ({from}) must be before to ({to})"
                )));
            }
            Stretch::Frames(from, to)
        }
        _ => {
            return Err(Refusal::bad(
                "give either seconds=N (1–3600) or both from=POS and to=POS (sample frames)",
            ))
        }
    };
    Ok(Request { stretch, format })
}

fn recording(state: &AppState) -> Result<&Recording, Refusal> {
    state.recording.as_deref().ok_or_else(|| {
        Refusal::new(
            StatusCode::CONFLICT,
            "not_replayable",
            format!(
                "recordings render the embedded engine again; this bridge plays {} \
                 ({}), whose audio comes from a plugin in a DAW and cannot be replayed",
                state.pump.info().name,
                state.pump.info().kind
            ),
        )
    })
}

fn available_json(rec: &Recording) -> Value {
    let (from, to) = rec.log.available();
    let rate = f64::from(rec.log.sample_rate());
    json!({
        "from": from,
        "to": to,
        "seconds": (to - from) as f64 / rate,
        "sample_rate": rec.log.sample_rate(),
        "unit": "frames",
        "window_s": rec.log.window_s(),
    })
}

/// `GET /api/recording/available`: what can be recorded, and the renders.
pub async fn available_handler(State(state): State<AppState>) -> Response {
    match recording(&state) {
        Ok(rec) => {
            let mut body = available_json(rec);
            body["renders"] = json!({"active": rec.renders.active(), "max": rec.renders.limit()});
            body["broken"] = rec.log.broken().map_or(
                Value::Null,
                |b| json!({"from": b.from_frame, "reason": b.reason}),
            );
            Json(body).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `GET /api/recording`.
pub async fn recording_handler(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match respond(&state, &query) {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

fn respond(state: &AppState, query: &HashMap<String, String>) -> Result<Response, Refusal> {
    let request = parse(query)?;
    let rec = recording(state)?;
    let rate = u64::from(rec.log.sample_rate());
    let (first, last) = rec.log.available();
    let (from, to) = match request.stretch {
        Stretch::Last(s) => (last.saturating_sub(s * rate), last),
        Stretch::Frames(f, t) => (f, t),
    };
    if to - from > MAX_SECONDS * rate {
        return Err(Refusal::bad(format!(
            "at most {MAX_SECONDS} s ({} frames) at once, asked for {} frames",
            MAX_SECONDS * rate,
            to - from
        )));
    }
    let too_early = matches!(request.stretch, Stretch::Last(s) if s * rate > last - first);
    let script = if too_early {
        None
    } else {
        rec.log.script(from, to)
    };
    let Some(script) = script else {
        let mut refusal = Refusal::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "not_in_log",
            format!(
                "frames {from}..{to} are not (or no longer, or not yet) in the log; \
                 available: frames {first}..{last} ({:.1} s)",
                (last - first) as f64 / rate as f64
            ),
        );
        refusal.body["available"] = available_json(rec);
        if let Some(b) = rec.log.broken() {
            refusal.body["broken"] = json!({"from": b.from_frame, "reason": b.reason});
        }
        return Err(refusal);
    };
    let Some(slot) = rec.renders.try_acquire() else {
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!(
                "{} recordings are being rendered, the most at once; try again shortly",
                rec.renders.limit()
            ),
        );
        refusal.retry_after_s = Some(RETRY_AFTER_S);
        return Err(refusal);
    };
    let job = Job {
        script,
        config: rec.log.config().clone(),
        from,
        to,
        format: request.format,
        opus_kbps: state.config.opus_kbps,
        tags: crate::stream_opus::tags(state),
    };
    let rx = render::spawn(job, slot).map_err(|e| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_thread",
            format!("could not start the render: {e}"),
        )
    })?;
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(request.format.content_type()),
    );
    if let Some(len) = request.format.exact_len(to - from) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    } else {
        let seconds = (to - from) as f64 / rate as f64;
        let expected = (seconds * f64::from(state.config.opus_kbps) * 1000.0 / 8.0) as u64;
        headers.insert("x-auralis-expected-bytes", HeaderValue::from(expected));
    }
    headers.insert("x-auralis-from", HeaderValue::from(from));
    headers.insert("x-auralis-to", HeaderValue::from(to));
    let name = file_name(state, rec, from, request.format);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `auralis-<UTC start time>-<piece code>.<ext>`, so the file says which music
/// it holds; a source without a piece code (a plugin in a DAW) gives its
/// preset's name, or `custom`.
fn file_name(state: &AppState, rec: &Recording, from: u64, format: Format) -> String {
    let origin = rec.log.origin_unix_s().unwrap_or_else(crate::unix_now_s);
    let start = origin + from as f64 / f64::from(rec.log.sample_rate());
    let params = state.pump.params();
    let piece = params.code.map_or_else(
        || params.preset.unwrap_or("custom").to_owned(),
        |code| code.to_string(),
    );
    format!(
        "auralis-{}-{piece}.{}",
        utc_stamp(start as i64),
        format.extension()
    )
}

/// `YYYYMMDD-HHMMSS` (UTC) of a Unix time.
#[must_use]
pub fn utc_stamp(unix_s: i64) -> String {
    let unix_s = u64::try_from(unix_s).unwrap_or(0);
    let (days, secs) = (unix_s / DAY_S, unix_s % DAY_S);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        for (query, says) in [
            (q(&[("seconds", "0")]), "from 1 to 3600"),
            (q(&[("seconds", "99999")]), "from 1 to 3600"),
            (q(&[("seconds", "ten")]), "whole number"),
            (q(&[("seconds", "-5")]), "whole number"),
            (q(&[("from", "500"), ("to", "100")]), "before to"),
            (q(&[("from", "100")]), "both from"),
            (q(&[]), "either seconds"),
            (
                q(&[("seconds", "5"), ("from", "1"), ("to", "2")]),
                "either seconds",
            ),
            (q(&[("seconds", "5"), ("format", "mp3")]), "wav or opus"),
            (q(&[("secs", "5")]), "unknown parameter"),
        ] {
            let refusal = parse(&query).expect_err("refused");
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
            let message = refusal.body["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{query:?}: {message}");
        }
        let ok = parse(&q(&[("seconds", "60"), ("format", "opus")])).expect("valid");
        assert_eq!(ok.stretch, Stretch::Last(60));
        assert_eq!(ok.format, Format::Opus);
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_796_287_397), "20261203-084317");
    }
}
