//! The configuration loader: a TOML file's text and command-line flags. The input
//! is split at its first NUL byte: the text before it is the file, each line after
//! it one argument. Nothing panics, and a configuration that loads holds every
//! setting within its documented range.
#![no_main]

use auralis_bridge::config::{Cli, Config, FileConfig, CHUNK_MS_RANGE, SAMPLE_RATE_RANGE};
use clap::Parser as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file_text, args) = text.split_once('\0').unwrap_or((&text, ""));
    let file = FileConfig::from_toml(file_text).unwrap_or_default();
    let argv = std::iter::once("auralis-bridge").chain(args.lines().filter(|a| !a.is_empty()));
    let Ok(mut cli) = Cli::try_parse_from(argv) else {
        return;
    };
    // The loader's file step reads from disk; the file's text was given above.
    cli.config = None;
    let Ok(config) = Config::merge(&cli, &file) else {
        return;
    };
    assert!((SAMPLE_RATE_RANGE.0..=SAMPLE_RATE_RANGE.1).contains(&config.sample_rate));
    assert!((CHUNK_MS_RANGE.0..=CHUNK_MS_RANGE.1).contains(&config.chunk_ms));
    assert!(config.frames_per_chunk() > 0);
    assert!(config.max_clients >= 1);
    assert!(config.client_queue >= 2);
    assert!(config.missed_pongs >= 1);
    assert!(config.control_rate_per_s.is_finite() && config.control_rate_per_s > 0.0);
    assert!(!config.heartbeat.is_zero() && !config.max_lag.is_zero());
    assert!(!config.status_interval.is_zero() && !config.send_timeout.is_zero());
});
