//! Configuration: command-line flags, `AURALIS_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence, over built-in
//! defaults. Every value is range-checked at start; an error names the setting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auralis::compose::code::PieceCode;
use auralis::compose::presets::{preset, Preset, PRESETS};
use auralis::stream::layout::validate_name;
use clap::Parser;
use serde::Deserialize;

use crate::codec::opus::KBPS_RANGE;
use crate::icecast::IcecastTarget;
use crate::protocol::{clip, Dialect};

/// Lowest and highest sample rate of the embedded source, in hertz.
pub const SAMPLE_RATE_RANGE: (u32, u32) = (8_000, 192_000);
/// Lowest and highest CPU ceiling, in percent.
pub const CPU_CEILING_RANGE: (f32, f32) = (10.0, 100.0);
/// Shortest and longest chunk, in milliseconds.
pub const CHUNK_MS_RANGE: (u32, u32) = (20, 200);

/// Every setting, each optional, from whichever place gives it: command-line flags
/// (each also read from its `AURALIS_*` environment variable) and the TOML file
/// (snake_case keys; unknown keys are refused). Unset ones come from the next
/// layer down, and finally from [`Config::default`], the one table of defaults.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(
    name = "auralis-bridge",
    version,
    about = "Streams the Auralis engine live to WebSocket listeners"
)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of the settings below (snake_case names).
    #[arg(long, env = "AURALIS_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "AURALIS_HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8000].
    #[arg(long, env = "AURALIS_PORT")]
    pub port: Option<u16>,
    /// Audio source: `embedded`, or `shm:<stream>` for a plugin in a DAW streaming
    /// on that stream (the plugin's Stream channel `n` is `shm:n`) [default: embedded].
    #[arg(long, env = "AURALIS_SOURCE")]
    pub source: Option<String>,
    /// Sample rate of the embedded source in Hz, 8000–192000; an `shm` source takes
    /// the plugin's rate, and this one only when no plugin streams at start
    /// [default: 48000].
    #[arg(long, env = "AURALIS_SAMPLE_RATE")]
    pub sample_rate: Option<u32>,
    /// Chunk length in milliseconds, 20–200 [default: 100].
    #[arg(long, env = "AURALIS_CHUNK_MS")]
    pub chunk_ms: Option<u32>,
    /// Opus bitrate of `?codec=opus` and `/stream.opus`, in kbit/s, 32–256
    /// [default: 128].
    #[arg(long, env = "AURALIS_OPUS_KBPS")]
    pub opus_kbps: Option<u32>,
    /// Most concurrent WebSocket clients [default: 100].
    #[arg(long, env = "AURALIS_MAX_CLIENTS")]
    pub max_clients: Option<usize>,
    /// Token that grants the controller role (`?token=` or `Authorization: Bearer`).
    #[arg(long, env = "AURALIS_CONTROL_TOKEN")]
    pub control_token: Option<String>,
    /// Seconds between heartbeat pings [default: 30].
    #[arg(long, env = "AURALIS_HEARTBEAT_S")]
    pub heartbeat_s: Option<f64>,
    /// Heartbeats without an answer before a client is dropped [default: 2].
    #[arg(long, env = "AURALIS_MISSED_PONGS")]
    pub missed_pongs: Option<u32>,
    /// Longest a single write to a client may take, in milliseconds [default: 5000].
    #[arg(long, env = "AURALIS_SEND_TIMEOUT_MS")]
    pub send_timeout_ms: Option<u64>,
    /// Seconds a client may stay behind before it is dropped [default: 5].
    #[arg(long, env = "AURALIS_MAX_LAG_S")]
    pub max_lag_s: Option<f64>,
    /// Chunks queued per client before the oldest are dropped [default: 16].
    #[arg(long, env = "AURALIS_CLIENT_QUEUE")]
    pub client_queue: Option<usize>,
    /// Seconds of the most recent audio a new listener gets at once, so that its
    /// player starts with a cushion against network stalls; 0 starts it at the live
    /// edge [default: 2.5].
    #[arg(long, env = "AURALIS_BURST_S")]
    pub burst_s: Option<f64>,
    /// Minutes of the embedded engine's output `/api/recording` can render again
    /// (1–1440) [default: 60].
    #[arg(long, env = "AURALIS_RECORDING_MINUTES")]
    pub recording_minutes: Option<u32>,
    /// Recordings rendered at once; more get 429 with Retry-After (1–16)
    /// [default: 2].
    #[arg(long, env = "AURALIS_RECORDING_RENDERS")]
    pub recording_renders: Option<usize>,
    /// Seconds of audio between the recording checkpoints a render may start
    /// from (1–600): shorter renders sooner, longer keeps less memory
    /// [default: 60].
    #[arg(long, env = "AURALIS_RECORDING_CHECKPOINT_S")]
    pub recording_checkpoint_s: Option<f64>,
    /// Control messages per second allowed per client (burst: twice that) [default: 5].
    #[arg(long, env = "AURALIS_CONTROL_RATE")]
    pub control_rate: Option<f64>,
    /// Kernel send buffer per client socket in KiB; bounds how much audio a stalled
    /// client can absorb before its writes block [default: 256].
    #[arg(long, env = "AURALIS_SEND_BUFFER_KB")]
    pub send_buffer_kb: Option<u32>,
    /// Seconds between `status` messages [default: 5].
    #[arg(long, env = "AURALIS_STATUS_INTERVAL_S")]
    pub status_interval_s: Option<f64>,
    /// Directory for JSON log files (rotated daily) and the error log.
    #[arg(long, env = "AURALIS_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seed of the embedded engine [default: 1].
    #[arg(long, env = "AURALIS_SEED")]
    pub seed: Option<u64>,
    /// Preset the embedded engine starts with [default: focus].
    #[arg(long, env = "AURALIS_PRESET")]
    pub preset: Option<String>,
    /// The piece the embedded engine starts with, as a piece code (`au1-…`):
    /// seed, preset, key, mode, tempo and intensity in one; not with `seed` or
    /// `preset`.
    #[arg(long, env = "AURALIS_CODE")]
    pub code: Option<String>,
    /// Whether machine and process CPU use count towards the embedded engine's
    /// degradation level, besides its own audio thread's load [default: true].
    #[arg(long, env = "AURALIS_DEGRADE_ON_CPU")]
    pub degrade_on_cpu: Option<bool>,
    /// An Icecast mount to feed as a source:
    /// `icecast://source:PASSWORD@HOST:PORT/MOUNT`, optionally with `?kbps=`
    /// (must equal `--opus-kbps`), `public=1`, `name=`, `description=`, `genre=`,
    /// `url=`. Repeat for several mounts; in `AURALIS_ICECAST`, separate them with
    /// commas.
    #[arg(long = "icecast", env = "AURALIS_ICECAST", value_delimiter = ',')]
    pub icecast: Option<Vec<String>>,
    /// Machine or process CPU in percent, 10–100, at or above which (for the
    /// 10 s hold) the embedded engine thins its music to `high_load`; CPU never
    /// raises the level further, only the engine's own danger does [default: 80].
    #[arg(long, env = "AURALIS_CPU_CEILING_PCT")]
    pub cpu_ceiling_pct: Option<f32>,
    /// What plain `/ws/stream` (no `?format=`) speaks: `binary`, the native
    /// protocol, or `json`, the original Auralis server's, for deployments that
    /// serve its unmodified browser client. `?format=` still picks either one
    /// [default: binary].
    #[arg(long, env = "AURALIS_DEFAULT_FORMAT")]
    pub default_format: Option<String>,
    /// A directory of a web client to serve instead of the built-in player: its
    /// files under `/client/` and its `index.html` at `/`, as the original Auralis
    /// server served its `client/` directory. The built-in player stays at
    /// `/player/`.
    #[arg(long, env = "AURALIS_CLIENT_DIR")]
    pub client_dir: Option<PathBuf>,
}

/// The settings as flags and environment variables.
pub type Cli = Settings;
/// The settings as a TOML file (its `config` is always `None`).
pub type FileConfig = Settings;

/// Where the audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The engine inside the bridge.
    Embedded,
    /// A plugin's shared-memory stream (the name is valid).
    Shm(String),
}

impl SourceSpec {
    /// The stream name listeners see.
    #[must_use]
    pub fn stream_name(&self) -> &str {
        match self {
            Self::Embedded => "embedded",
            Self::Shm(name) => name,
        }
    }
}

/// A setting that cannot be used, or a config file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value out of range or not understood.
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name (as in the TOML file; the flag is `--` + dashes).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or mistyped setting.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the setting).
        message: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The validated configuration of a bridge.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// The audio source.
    pub source: SourceSpec,
    /// Sample rate of the embedded source in hertz.
    pub sample_rate: u32,
    /// Chunk length in milliseconds.
    pub chunk_ms: u32,
    /// Opus bitrate in kbit/s.
    pub opus_kbps: u32,
    /// Most concurrent WebSocket clients.
    pub max_clients: usize,
    /// Token granting the controller role, if any.
    pub control_token: Option<String>,
    /// Time between heartbeat pings.
    pub heartbeat: Duration,
    /// Unanswered heartbeats before a client is dropped.
    pub missed_pongs: u32,
    /// Longest a single write may take.
    pub send_timeout: Duration,
    /// How long a client may stay behind before it is dropped.
    pub max_lag: Duration,
    /// Chunks queued per client.
    pub client_queue: usize,
    /// Recent audio a new listener gets at once.
    pub burst: Duration,
    /// How far back `/api/recording` reaches.
    pub recording_window: Duration,
    /// Recordings rendered at once.
    pub recording_renders: usize,
    /// Audio between two recording checkpoints.
    pub recording_checkpoint: Duration,
    /// Control messages per second per client.
    pub control_rate_per_s: f64,
    /// Kernel send buffer per client socket, in KiB.
    pub send_buffer_kb: u32,
    /// Time between `status` messages.
    pub status_interval: Duration,
    /// Directory for log files.
    pub log_dir: Option<PathBuf>,
    /// The piece the embedded engine starts with: a piece code's, else `seed`
    /// and `preset` with the preset's parameters.
    pub piece: PieceCode,
    /// Whether machine and process CPU count towards the degradation level.
    pub degrade_on_cpu: bool,
    /// Icecast mounts the bridge feeds.
    pub icecast: Vec<IcecastTarget>,
    /// CPU percent at which machine or process CPU thins the music (to
    /// `high_load` at most).
    pub cpu_ceiling_pct: f32,
    /// The protocol of `/ws/stream` without `?format=`.
    pub default_format: Dialect,
    /// A web client served at `/` and `/client/` instead of the built-in player.
    pub client_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8000,
            source: SourceSpec::Embedded,
            sample_rate: 48_000,
            chunk_ms: 100,
            opus_kbps: crate::codec::opus::DEFAULT_KBPS,
            max_clients: 100,
            control_token: None,
            heartbeat: Duration::from_secs(30),
            missed_pongs: 2,
            send_timeout: Duration::from_secs(5),
            max_lag: Duration::from_secs(5),
            client_queue: 16,
            burst: Duration::from_millis(2500),
            recording_window: Duration::from_secs(3600),
            recording_renders: 2,
            recording_checkpoint: Duration::from_secs(60),
            control_rate_per_s: 5.0,
            send_buffer_kb: 256,
            status_interval: Duration::from_secs(5),
            log_dir: None,
            piece: PieceCode {
                seed: 1,
                preset: &PRESETS[0],
                compose: PRESETS[0].compose,
            },
            degrade_on_cpu: true,
            icecast: Vec::new(),
            default_format: Dialect::Native,
            client_dir: None,
            cpu_ceiling_pct: auralis::degrade::DEFAULT_CPU_CEILING_PCT,
        }
    }
}

/// A duration given in seconds, when it is given, else `default`.
fn seconds(
    setting: &'static str,
    v: Option<f64>,
    default: Duration,
    (min, max): (f64, f64),
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Duration::from_secs_f64(v)),
        Some(v) => Err(invalid(
            setting,
            format!("must be between {min} and {max} seconds, got {v}"),
        )),
    }
}

fn within<T: PartialOrd + std::fmt::Display + Copy>(
    setting: &'static str,
    v: T,
    (min, max): (T, T),
) -> Result<T, ConfigError> {
    if v >= min && v <= max {
        Ok(v)
    } else {
        Err(invalid(
            setting,
            format!("must be between {min} and {max}, got {v}"),
        ))
    }
}

fn check_token(token: String) -> Result<String, ConfigError> {
    if token.len() < 8 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "control_token",
            "must be at least 8 characters, without spaces",
        ));
    }
    Ok(token)
}

fn check_control_rate(rate: f64) -> Result<f64, ConfigError> {
    if rate.is_finite() && (0.01..=10_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(invalid(
            "control_rate",
            format!("must be between 0.01 and 10000 per second, got {rate}"),
        ))
    }
}

/// Parses a `--host` value: an IP address or `localhost`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `host`.
pub fn parse_host(s: &str) -> Result<IpAddr, ConfigError> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    s.parse().map_err(|_| {
        invalid(
            "host",
            format!("{s:?} is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or ::1)"),
        )
    })
}

/// Parses a `--source` value.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `source`.
pub fn parse_source(s: &str) -> Result<SourceSpec, ConfigError> {
    if s == "embedded" {
        return Ok(SourceSpec::Embedded);
    }
    let Some(name) = s.strip_prefix("shm:") else {
        return Err(invalid(
            "source",
            format!("{s:?} is not a source: expected `embedded` or `shm:<stream>`"),
        ));
    };
    validate_name(name)
        .map(|()| SourceSpec::Shm(name.to_owned()))
        .map_err(|e| invalid("source", format!("{s:?}: {e}")))
}

/// Parses an `--icecast` URL. A `?kbps=` must be in the range `--opus-kbps`
/// takes; a mount at another bitrate than the stream's gets its own encoding.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `icecast`.
pub fn parse_icecast(url: &str) -> Result<IcecastTarget, ConfigError> {
    let target = IcecastTarget::parse(url).map_err(|e| invalid("icecast", e))?;
    match target.kbps {
        Some(kbps) if !KBPS_RANGE.contains(&kbps) => Err(invalid(
            "icecast",
            format!(
                "{target}: ?kbps={kbps} is outside {}..={} kbit/s",
                KBPS_RANGE.start(),
                KBPS_RANGE.end()
            ),
        )),
        _ => Ok(target),
    }
}

fn parse_format(name: &str) -> Result<Dialect, ConfigError> {
    Dialect::from_name(name).ok_or_else(|| {
        invalid(
            "default_format",
            format!("expected binary or json, got {:?}", clip(name)),
        )
    })
}

/// A client directory must hold the page it serves at `/`.
fn check_client_dir(dir: PathBuf) -> Result<PathBuf, ConfigError> {
    if dir.join("index.html").is_file() {
        Ok(dir)
    } else {
        Err(invalid(
            "client_dir",
            format!("{} has no index.html", dir.display()),
        ))
    }
}

/// The starting piece of `s`: its `code`, else its `seed` and `preset`.
fn piece(s: &Settings) -> Result<PieceCode, ConfigError> {
    let d = Config::default().piece;
    match &s.code {
        Some(_) if s.seed.is_some() || s.preset.is_some() => Err(invalid(
            "code",
            "a piece code sets the seed and the preset: give either `code` or `seed`/`preset`",
        )),
        Some(code) => code
            .parse::<PieceCode>()
            .map_err(|e| invalid("code", e.to_string())),
        None => {
            let preset = s.preset.as_deref().map_or(Ok(d.preset), parse_preset)?;
            Ok(PieceCode {
                seed: s.seed.unwrap_or(d.seed),
                preset,
                compose: preset.compose,
            })
        }
    }
}

fn parse_preset(name: &str) -> Result<&'static Preset, ConfigError> {
    preset(name).map_err(|e| invalid("preset", e.to_string()))
}

/// Reads and parses a TOML config file.
///
/// # Errors
/// [`ConfigError::Read`] or [`ConfigError::Parse`].
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    FileConfig::from_toml(&text).map_err(|message| ConfigError::Parse {
        path: path.to_owned(),
        message,
    })
}

impl Settings {
    /// Parses the text of a TOML config file: [`read_file`] once the file is read,
    /// and the fuzz target, which gives it any text.
    ///
    /// # Errors
    /// The parser's message, naming the unknown or mistyped setting.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// These settings, with each one unset here taken from `lower`.
    #[must_use]
    pub fn or(self, lower: Self) -> Self {
        Self {
            config: self.config.or(lower.config),
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            source: self.source.or(lower.source),
            sample_rate: self.sample_rate.or(lower.sample_rate),
            chunk_ms: self.chunk_ms.or(lower.chunk_ms),
            opus_kbps: self.opus_kbps.or(lower.opus_kbps),
            max_clients: self.max_clients.or(lower.max_clients),
            control_token: self.control_token.or(lower.control_token),
            heartbeat_s: self.heartbeat_s.or(lower.heartbeat_s),
            missed_pongs: self.missed_pongs.or(lower.missed_pongs),
            send_timeout_ms: self.send_timeout_ms.or(lower.send_timeout_ms),
            max_lag_s: self.max_lag_s.or(lower.max_lag_s),
            client_queue: self.client_queue.or(lower.client_queue),
            burst_s: self.burst_s.or(lower.burst_s),
            recording_minutes: self.recording_minutes.or(lower.recording_minutes),
            recording_renders: self.recording_renders.or(lower.recording_renders),
            recording_checkpoint_s: self.recording_checkpoint_s.or(lower.recording_checkpoint_s),
            control_rate: self.control_rate.or(lower.control_rate),
            send_buffer_kb: self.send_buffer_kb.or(lower.send_buffer_kb),
            status_interval_s: self.status_interval_s.or(lower.status_interval_s),
            log_dir: self.log_dir.or(lower.log_dir),
            seed: self.seed.or(lower.seed),
            preset: self.preset.or(lower.preset),
            code: self.code.or(lower.code),
            degrade_on_cpu: self.degrade_on_cpu.or(lower.degrade_on_cpu),
            icecast: self.icecast.or(lower.icecast),
            cpu_ceiling_pct: self.cpu_ceiling_pct.or(lower.cpu_ceiling_pct),
            default_format: self.default_format.or(lower.default_format),
            client_dir: self.client_dir.or(lower.client_dir),
        }
    }
}

impl Config {
    /// Builds the configuration from flags/environment, then the file named by
    /// `--config`, then the defaults, and validates it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first setting that is wrong.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::merge(cli, &file)
    }

    /// Merges flags over a file's settings over the defaults, and validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first setting that is wrong.
    pub fn merge(cli: &Cli, file: &FileConfig) -> Result<Self, ConfigError> {
        Self::from_settings(cli.clone().or(file.clone()))
    }

    /// Validates `s`, taking every setting it leaves unset from the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first setting that is wrong.
    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let d = Self::default();
        let send_timeout_ms = u64::try_from(d.send_timeout.as_millis()).unwrap_or(u64::MAX);
        let opus_kbps = within(
            "opus_kbps",
            s.opus_kbps.unwrap_or(d.opus_kbps),
            (*KBPS_RANGE.start(), *KBPS_RANGE.end()),
        )?;
        let piece = piece(&s)?;
        // Checked in this order: the first bad setting is the one reported.
        Ok(Self {
            piece,
            host: s.host.as_deref().map_or(Ok(d.host), parse_host)?,
            source: s.source.as_deref().map_or(Ok(d.source), parse_source)?,
            sample_rate: within(
                "sample_rate",
                s.sample_rate.unwrap_or(d.sample_rate),
                SAMPLE_RATE_RANGE,
            )?,
            chunk_ms: within("chunk_ms", s.chunk_ms.unwrap_or(d.chunk_ms), CHUNK_MS_RANGE)?,
            opus_kbps,
            max_clients: within(
                "max_clients",
                s.max_clients.unwrap_or(d.max_clients),
                (1, 100_000),
            )?,
            control_token: s.control_token.map(check_token).transpose()?,
            heartbeat: seconds("heartbeat_s", s.heartbeat_s, d.heartbeat, (0.1, 3600.0))?,
            missed_pongs: within(
                "missed_pongs",
                s.missed_pongs.unwrap_or(d.missed_pongs),
                (1, 100),
            )?,
            send_timeout: Duration::from_millis(within(
                "send_timeout_ms",
                s.send_timeout_ms.unwrap_or(send_timeout_ms),
                (10, 600_000),
            )?),
            max_lag: seconds("max_lag_s", s.max_lag_s, d.max_lag, (0.1, 3600.0))?,
            client_queue: within(
                "client_queue",
                s.client_queue.unwrap_or(d.client_queue),
                (2, 4096),
            )?,
            burst: seconds("burst_s", s.burst_s, d.burst, (0.0, 30.0))?,
            recording_window: Duration::from_secs(
                60 * u64::from(within(
                    "recording_minutes",
                    s.recording_minutes
                        .unwrap_or((d.recording_window.as_secs() / 60) as u32),
                    (1, 1440),
                )?),
            ),
            recording_renders: within(
                "recording_renders",
                s.recording_renders.unwrap_or(d.recording_renders),
                (1, 16),
            )?,
            recording_checkpoint: seconds(
                "recording_checkpoint_s",
                s.recording_checkpoint_s,
                d.recording_checkpoint,
                (1.0, 600.0),
            )?,
            control_rate_per_s: check_control_rate(s.control_rate.unwrap_or(d.control_rate_per_s))?,
            send_buffer_kb: within(
                "send_buffer_kb",
                s.send_buffer_kb.unwrap_or(d.send_buffer_kb),
                (8, 65_536),
            )?,
            status_interval: seconds(
                "status_interval_s",
                s.status_interval_s,
                d.status_interval,
                (0.1, 3600.0),
            )?,
            cpu_ceiling_pct: within(
                "cpu_ceiling_pct",
                s.cpu_ceiling_pct.unwrap_or(d.cpu_ceiling_pct),
                CPU_CEILING_RANGE,
            )?,
            default_format: s
                .default_format
                .as_deref()
                .map_or(Ok(d.default_format), parse_format)?,
            client_dir: s.client_dir.map(check_client_dir).transpose()?,
            port: s.port.unwrap_or(d.port),
            log_dir: s.log_dir.or(d.log_dir),
            degrade_on_cpu: s.degrade_on_cpu.unwrap_or(d.degrade_on_cpu),
            icecast: s
                .icecast
                .unwrap_or_default()
                .iter()
                .map(|url| parse_icecast(url))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The address to bind.
    #[must_use]
    pub const fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Frames per chunk at the configured sample rate.
    #[must_use]
    pub const fn frames_per_chunk(&self) -> u32 {
        // Both ranges are small: no overflow (192 000 × 200 < 2³²).
        self.sample_rate * self.chunk_ms / 1000
    }

    /// Chunks in a new listener's burst: [`Self::burst`] rounded up to whole chunks.
    #[must_use]
    pub fn burst_chunks(&self) -> usize {
        (self.burst.as_secs_f64() * 1000.0 / f64::from(self.chunk_ms)).ceil() as usize
    }

    /// Whether control is open without a token: only on a loopback-only listener
    /// with no token configured.
    #[must_use]
    pub fn control_open(&self) -> bool {
        self.control_token.is_none() && self.host.is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["auralis-bridge"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("flags parse")
    }

    fn setting_of(e: &ConfigError) -> &'static str {
        match e {
            ConfigError::Invalid { setting, .. } => setting,
            other => panic!("not an invalid setting: {other}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::merge(&cli(&[]), &FileConfig::default()).expect("defaults are valid");
        assert_eq!(c.bind_addr().to_string(), "127.0.0.1:8000");
        assert_eq!(c.sample_rate, 48_000);
        assert_eq!(c.chunk_ms, 100);
        assert_eq!(c.frames_per_chunk(), 4800);
        assert_eq!(c.max_clients, 100);
        assert_eq!(c.heartbeat, Duration::from_secs(30));
        assert_eq!(c.piece.preset.name, "focus");
        assert_eq!(c.default_format, Dialect::Native);
        assert!(c.control_open());
    }

    #[test]
    fn the_default_format_comes_from_a_flag_or_the_file() {
        let file: FileConfig = toml::from_str("default_format = \"json\"").expect("toml");
        let c = Config::merge(&cli(&[]), &file).expect("valid");
        assert_eq!(c.default_format, Dialect::Compat);
        let c = Config::merge(&cli(&["--default-format", "binary"]), &file).expect("valid");
        assert_eq!(c.default_format, Dialect::Native, "the flag wins");
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases: [(&[&str], &str); 11] = [
            (&["--sample-rate", "4000"], "sample_rate"),
            (&["--sample-rate", "200000"], "sample_rate"),
            (&["--chunk-ms", "10"], "chunk_ms"),
            (&["--chunk-ms", "500"], "chunk_ms"),
            (&["--max-clients", "0"], "max_clients"),
            (&["--host", "example.com"], "host"),
            (&["--source", "shm:a/b"], "source"),
            (&["--preset", "jazz"], "preset"),
            (&["--heartbeat-s", "0"], "heartbeat_s"),
            (&["--default-format", "xml"], "default_format"),
            (&["--client-dir", "/nonexistent-client"], "client_dir"),
        ];
        for (args, setting) in cases {
            let e = Config::merge(&cli(args), &FileConfig::default()).expect_err(setting);
            assert_eq!(setting_of(&e), setting, "{args:?}");
            assert!(e.to_string().contains(setting), "{e}");
        }
    }

    #[test]
    fn a_piece_code_sets_the_starting_piece_and_a_bad_one_is_named() {
        let c = Config::merge(
            &cli(&["--code", "au1-7-bright-fs-lydian-72-40"]),
            &FileConfig::default(),
        )
        .expect("valid");
        assert_eq!(c.piece.seed, 7);
        assert_eq!(c.piece.preset.name, "bright");
        assert_eq!(c.piece.compose.key.pitch_class(), 6);
        assert_eq!(
            (c.piece.compose.bpm, c.piece.compose.intensity),
            (72.0, 0.4)
        );
        assert_eq!(c.piece.to_string(), "au1-7-bright-fs-lydian-72-40");
        let file: FileConfig =
            toml::from_str("code = \"au1-z-sleep-e-phrygian-60-20\"").expect("toml");
        let c = Config::merge(&cli(&[]), &file).expect("valid");
        assert_eq!((c.piece.seed, c.piece.preset.name), (35, "sleep"));

        for (args, says) in [
            (
                &["--code", "au1-7-bright-fs-lydian-999-40"][..],
                "bpm must be between",
            ),
            (&["--code", "hello"], "not a piece code"),
            (
                &["--code", "au1-7-focus-d-dorian-60-50", "--seed", "3"],
                "either `code`",
            ),
            (
                &["--code", "au1-7-focus-d-dorian-60-50", "--preset", "sleep"],
                "either `code`",
            ),
        ] {
            let e = Config::merge(&cli(args), &FileConfig::default()).expect_err(says);
            assert_eq!(setting_of(&e), "code", "{args:?}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig =
            toml::from_str("port = 9000\nchunk_ms = 50\nhost = \"0.0.0.0\"").expect("toml");
        let c = Config::merge(&cli(&["--port", "9100"]), &file).expect("valid");
        assert_eq!(c.port, 9100);
        assert_eq!(c.chunk_ms, 50);
        assert!(!c.control_open(), "non-loopback without token is closed");
        let shm = Config::merge(&cli(&["--source", "shm:3"]), &file).expect("valid");
        assert_eq!(shm.source, SourceSpec::Shm("3".into()));
        let e = parse_source("shm:").expect_err("empty name");
        assert!(e.to_string().contains("stream name"), "{e}");
        assert!(toml::from_str::<FileConfig>("prot = 1").is_err());
    }

    #[test]
    fn icecast_mounts_come_from_flags_the_environment_or_the_file() {
        let file: FileConfig =
            toml::from_str("icecast = [\"icecast://source:pw@h:8001/a.opus\"]").expect("toml");
        let c = Config::merge(&cli(&[]), &file).expect("valid");
        assert_eq!(c.icecast.len(), 1);
        assert_eq!(c.icecast[0].mount, "/a.opus");
        let flags = cli(&[
            "--icecast",
            "icecast://source:pw@h:8001/b.opus",
            "--icecast",
            "icecast://source:pw@h:8001/c.opus?kbps=128,icecast://source:pw@h/d.opus",
        ]);
        let c = Config::merge(&flags, &file).expect("valid");
        let mounts: Vec<&str> = c.icecast.iter().map(|t| t.mount.as_str()).collect();
        assert_eq!(
            mounts,
            ["/b.opus", "/c.opus", "/d.opus"],
            "flags replace the file"
        );
        let c = Config::merge(
            &cli(&["--icecast", "icecast://source:pw@h/x?kbps=96"]),
            &file,
        )
        .expect("a mount at its own bitrate");
        assert_eq!((c.opus_kbps, c.icecast[0].kbps), (128, Some(96)));
        for kbps in [31, 257] {
            let url = format!("icecast://source:pw@h/x?kbps={kbps}");
            let e = Config::merge(&cli(&["--icecast", &url]), &file).expect_err("out of range");
            assert_eq!(setting_of(&e), "icecast");
            assert!(e.to_string().contains("outside 32..=256"), "{e}");
        }
        let e = Config::merge(&cli(&["--icecast", "icecast://source:secret@h"]), &file)
            .expect_err("no mount");
        assert!(e.to_string().contains("names no mount"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
