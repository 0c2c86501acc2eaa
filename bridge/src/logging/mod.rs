//! Logging (seed §6): human-readable lines on the console, JSON lines in a daily
//! rotated file with retention, and a separate JSON error log.
//!
//! The file writers run on their own threads and never hold up the stream. A log
//! file that cannot be written (a full disk, a directory removed and not makeable
//! again, no permission) drops its lines, counts them, says so once on the console,
//! and is tried again with every line (`logging/file.rs`); [`status`] tells
//! `/health` and `/metrics`.

mod file;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use self::file::{DailyFile, FileHealth};

/// Rotated main log files kept (one per day).
pub const MAIN_LOG_FILES: usize = 30;
/// Rotated error log files kept (one per day).
pub const ERROR_LOG_FILES: usize = 90;

/// Keeps the file writers alive; dropping it flushes them.
#[derive(Debug)]
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
}

/// The log files of this process, once [`init`] installed them.
static FILES: OnceLock<Files> = OnceLock::new();

#[derive(Debug)]
struct Files {
    dir: PathBuf,
    main: Arc<FileHealth>,
    errors: Arc<FileHealth>,
}

/// Whether the JSON log files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    /// No `--log-dir`: the console only.
    Off,
    /// The last line of each file was written.
    Ok,
    /// The last line of a file could not be written.
    Failing,
}

impl LogState {
    /// The wire name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Ok => "ok",
            Self::Failing => "failing",
        }
    }
}

/// The log files' state, for `/health` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStatus {
    /// Whether they are written.
    pub state: LogState,
    /// The log directory, if any.
    pub dir: Option<PathBuf>,
    /// Lines that could not be written since start, both files together.
    pub write_failures: u64,
    /// Why each failing file fails (its path and the system's error).
    pub errors: Vec<String>,
}

/// The state of this process's log files.
#[must_use]
pub fn status() -> LogStatus {
    let Some(files) = FILES.get() else {
        return LogStatus {
            state: LogState::Off,
            dir: None,
            write_failures: 0,
            errors: Vec::new(),
        };
    };
    let both = [&files.main, &files.errors];
    let failing = both.iter().any(|f| f.failing());
    LogStatus {
        state: if failing {
            LogState::Failing
        } else {
            LogState::Ok
        },
        dir: Some(files.dir.clone()),
        write_failures: both.iter().map(|f| f.failures()).sum(),
        errors: both.iter().filter_map(|f| f.error()).collect(),
    }
}

/// Installs the global subscriber: console at `RUST_LOG` (default `info`), and with
/// `log_dir` the JSON logs `auralis-bridge.*.log` and `errors.*.log`. Today's files
/// are opened (and old ones pruned) at once; one that cannot be is reported on the
/// console and tried again with each line.
#[must_use]
pub fn init(log_dir: Option<&Path>) -> LogGuards {
    let console_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a console redirected to a file or a pipe gets
    // plain text.
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(console_filter);
    let mut guards = Vec::new();
    let mut problems = Vec::new();
    let mut files = None;
    let mut layers = None;
    if let Some(dir) = log_dir {
        let (main, main_problem) = DailyFile::open(dir, "auralis-bridge", MAIN_LOG_FILES);
        let (errors, errors_problem) = DailyFile::open(dir, "errors", ERROR_LOG_FILES);
        problems.extend(main_problem);
        problems.extend(errors_problem);
        files = Some(Files {
            dir: dir.to_owned(),
            main: main.health(),
            errors: errors.health(),
        });
        let (main, g1) = tracing_appender::non_blocking(main);
        let (errors, g2) = tracing_appender::non_blocking(errors);
        guards.push(g1);
        guards.push(g2);
        let main_layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(main)
            .with_filter(LevelFilter::INFO);
        // Spans of every level pass, so that an error keeps its context (the
        // client, the stream); only ERROR events are written.
        let error_layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(errors)
            .with_filter(filter_fn(|meta| {
                meta.is_span() || *meta.level() == Level::ERROR
            }));
        layers = Some(main_layer.and_then(error_layer));
    }
    let installed = tracing_subscriber::registry()
        .with(console)
        .with(layers)
        .try_init();
    match installed {
        Ok(()) => {
            if let Some(files) = files {
                // Only `init` sets it, and only with the subscriber it installed.
                let _ = FILES.set(files);
            }
        }
        Err(e) => tracing::warn!(error = %e, "a global logger was already installed"),
    }
    for problem in &problems {
        file::report_failing(problem);
    }
    LogGuards { _guards: guards }
}
