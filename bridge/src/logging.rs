//! Logging (seed §6): human-readable lines on the console, JSON lines in a daily
//! rotated file with retention, and a separate JSON error log. A log directory that
//! cannot be written is reported on the console and skipped: it never stops the
//! stream (the file writers run on their own thread and drop lines they cannot
//! write).

use std::io::IsTerminal;
use std::path::Path;

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Rotated main log files kept (one per day).
pub const MAIN_LOG_FILES: usize = 30;
/// Rotated error log files kept (one per day).
pub const ERROR_LOG_FILES: usize = 90;

/// Keeps the file writers alive; dropping it flushes them.
#[derive(Debug)]
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
}

fn appender(dir: &Path, prefix: &str, keep: usize) -> Result<RollingFileAppender, String> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(keep)
        .build(dir)
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber: console at `RUST_LOG` (default `info`), and with
/// `log_dir` the JSON logs `auralis-bridge.*.log` and `errors.*.log`.
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
    let mut problem = None;
    let mut files = None;
    if let Some(dir) = log_dir {
        match (
            appender(dir, "auralis-bridge", MAIN_LOG_FILES),
            appender(dir, "errors", ERROR_LOG_FILES),
        ) {
            (Ok(main), Ok(errors)) => {
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
                // Spans of every level pass, so that an error keeps its context
                // (the client, the stream); only ERROR events are written.
                let error_layer = tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(errors)
                    .with_filter(filter_fn(|meta| {
                        meta.is_span() || *meta.level() == Level::ERROR
                    }));
                files = Some(main_layer.and_then(error_layer));
            }
            (Err(e), _) | (_, Err(e)) => problem = Some((dir.to_owned(), e)),
        }
    }
    let installed = tracing_subscriber::registry()
        .with(console)
        .with(files)
        .try_init();
    if let Err(e) = installed {
        tracing::warn!(error = %e, "a global logger was already installed");
    }
    if let Some((dir, e)) = problem {
        tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "cannot write logs to the log directory; logging to the console only"
        );
    }
    LogGuards { _guards: guards }
}
