//! Control rules shared by the WebSocket and `POST /api/control`: who may control
//! (the controller role: a token, or a loopback-only bridge with no token), how often
//! (a token bucket per client), and applying a validated change, which is then
//! announced to every client with a `params` message. A source's refusal
//! ([`SourceError`]) becomes the protocol's error here, where the client is answered.

use std::time::{Duration, Instant};

use auralis::compose::phrase::ParamError;

use crate::hub::Role;
use crate::protocol::{params_message, ClientMessage, ErrorCode, ProtocolError};
use crate::source::{ParamsSnapshot, SourceCommand, SourceError};
use crate::AppState;

/// How long a control change may wait for the source thread.
const APPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A token bucket: `burst` messages at once, refilled at `rate_per_s`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket allowing `rate_per_s` on average and bursts of twice that
    /// (at least 2).
    #[must_use]
    pub fn new(rate_per_s: f64) -> Self {
        let burst = (rate_per_s * 2.0).max(2.0);
        Self {
            rate_per_s,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from
/// response times.
#[must_use]
pub fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        diff |= usize::from(x ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The role a connection gets from the token it presented, and a warning to send
/// it when the token was given but is wrong.
#[must_use]
pub fn role_for(state: &AppState, token: Option<&str>) -> (Role, Option<ProtocolError>) {
    match (&state.config.control_token, token) {
        (Some(expected), Some(given)) if token_matches(given, expected) => (Role::Controller, None),
        (Some(_), Some(_)) => (
            Role::Listener,
            Some(ProtocolError::field(
                ErrorCode::Forbidden,
                "token",
                "the token does not match: connected as a listener",
            )),
        ),
        (None, _) if state.config.control_open() => (Role::Controller, None),
        // A token is required but none was given, or control is closed.
        _ => (Role::Listener, None),
    }
}

/// Why a listener may not control, for its error message.
fn forbidden(state: &AppState) -> ProtocolError {
    let message = if state.config.control_token.is_some() {
        "control needs the controller role: connect with ?token=<control token> \
         (HTTP: Authorization: Bearer <control token>)"
    } else {
        "control is disabled: the bridge listens on a non-loopback address and no \
         --control-token is configured"
    };
    ProtocolError::field(ErrorCode::Forbidden, "token", message)
}

/// Applies a validated control message for a client with `role`, after the rate
/// limit, and announces the new parameters to every client.
///
/// # Errors
/// [`ProtocolError`] when the role may not control, the rate limit is exceeded, the
/// message is not a control message, or the source refuses the change. Nothing
/// changes then.
pub async fn apply(
    state: &AppState,
    role: Role,
    limiter: &mut RateLimiter,
    message: &ClientMessage,
) -> Result<ParamsSnapshot, ProtocolError> {
    let result = apply_inner(state, role, limiter, message).await;
    let metrics = &state.hub.metrics;
    match &result {
        Ok(params) => {
            metrics.count_control_applied();
            state
                .hub
                .announce(params_message(&params.to_json(), "next_phrase"));
        }
        Err(_) => metrics.count_control_error(),
    }
    result
}

async fn apply_inner(
    state: &AppState,
    role: Role,
    limiter: &mut RateLimiter,
    message: &ClientMessage,
) -> Result<ParamsSnapshot, ProtocolError> {
    let command = match message {
        ClientMessage::UpdateParams(u) => SourceCommand::Update(*u),
        ClientMessage::SelectPreset(p) => SourceCommand::Preset(p),
        ClientMessage::SelectPiece(code) => SourceCommand::Piece(*code),
        _ => {
            return Err(ProtocolError::field(
                ErrorCode::UnknownType,
                "type",
                "not a control message: expected update_params, select_preset or select_piece",
            ))
        }
    };
    if role != Role::Controller {
        return Err(forbidden(state));
    }
    if !limiter.try_take(Instant::now()) {
        return Err(ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "too many control messages: at most {} per second",
                state.config.control_rate_per_s
            ),
        ));
    }
    state
        .pump
        .apply(command, APPLY_TIMEOUT)
        .await
        .map_err(|e| refused(&e))
}

/// The error a client gets when the source refuses its change.
fn refused(e: &SourceError) -> ProtocolError {
    match e {
        SourceError::Param(ParamError::OutOfRange { name, .. }) => {
            ProtocolError::field(ErrorCode::OutOfRange, name, e.to_string())
        }
        SourceError::Unavailable(why) => ProtocolError::new(ErrorCode::Unavailable, why.clone()),
        SourceError::RemoteControlOff => {
            ProtocolError::field(ErrorCode::Forbidden, "remote_control", e.to_string())
        }
        SourceError::OtherSeed { .. } | SourceError::NoPieces => {
            ProtocolError::field(ErrorCode::Unavailable, "code", e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_bursts_then_the_rate() {
        let mut r = RateLimiter::new(2.0);
        let t = Instant::now();
        assert!((0..4).all(|_| r.try_take(t)));
        assert!(!r.try_take(t));
        assert!(r.try_take(t + Duration::from_millis(600)));
        assert!(!r.try_take(t + Duration::from_millis(600)));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("secret-token", "secret-token"));
        assert!(!token_matches("secret-toke", "secret-token"));
        assert!(!token_matches("secret-tokenx", "secret-token"));
        assert!(!token_matches("", "secret-token"));
    }
}
