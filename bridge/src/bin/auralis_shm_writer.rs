//! `auralis-shm-writer`: plays the engine into a shared-memory stream the way the
//! plugin does inside a DAW (the same stream thread, writer and remote control),
//! at real-time pace in blocks of `--block` frames. It lets `auralis-bridge
//! --source shm:<stream>` be tried, and tested, without a DAW.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use auralis::degrade::monitor::MonitorConfig;
use auralis::engine::{Engine, EngineConfig};
use auralis::render::RenderMode;
use auralis::stream::layout::validate_name;
use auralis::stream::remote::RemoteControl;
use auralis::stream::service::{StreamService, StreamWish, POLL};
use clap::Parser;

/// Streams the Auralis engine into `/dev/shm/auralis-<stream>`.
#[derive(Debug, Parser)]
#[command(name = "auralis-shm-writer", version)]
struct Args {
    /// The stream name (`auralis-bridge --source shm:<stream>` plays it).
    #[arg(long)]
    stream: String,
    /// Sample rate in hertz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// Frames per block (what a DAW's buffer size is).
    #[arg(long, default_value_t = 256)]
    block: usize,
    /// Seed of the piece.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Accept remote control from the bridge.
    #[arg(long)]
    remote_control: bool,
    /// Render as a DAW's offline bounce does: every phrase and texture waited
    /// for, and the stream's header says `offline` (still paced in real time).
    #[arg(long)]
    offline: bool,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    seconds: Option<f64>,
}

/// The engine at `args`' rate and seed. Only the audio thread's own load counts
/// towards the degradation level, as the bridge's tests configure the embedded
/// engine: the load of a shared machine does not change the music.
fn engine(args: &Args) -> anyhow::Result<Engine> {
    Engine::with_monitor(
        EngineConfig {
            sample_rate: args.sample_rate as f32,
            seed: args.seed,
            mode: if args.offline {
                RenderMode::Offline
            } else {
                RenderMode::RealTime
            },
            ..EngineConfig::default()
        },
        MonitorConfig {
            sample_cpu: false,
            ..MonitorConfig::default()
        },
    )
    .context("cannot start the engine")
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    validate_name(&args.stream)?;
    ensure!(
        (1..=16_384).contains(&args.block),
        "--block must be between 1 and 16384 frames"
    );
    let sample_rate = args.sample_rate as f32;
    let mut engine = engine(&args)?;
    let remote = Arc::new(RemoteControl::default());
    let wish = StreamWish {
        stream: Some(args.stream.clone()),
        remote_control: args.remote_control,
    };
    let (mut output, _service) =
        StreamService::spawn(sample_rate, move || wish.clone(), Arc::clone(&remote))
            .context("cannot start the stream thread")?;
    // Give the stream thread time to create the file before the first block.
    std::thread::sleep(POLL * 3);
    let host = *engine.compose_params();
    let mut seen = None;
    let (mut left, mut right) = (vec![0.0f32; args.block], vec![0.0f32; args.block]);
    let block = Duration::from_secs_f64(args.block as f64 / f64::from(args.sample_rate));
    let start = Instant::now();
    let mut blocks: u32 = 0;
    while args
        .seconds
        .is_none_or(|s| start.elapsed().as_secs_f64() < s)
    {
        let compose = remote.overlay(&host, &mut seen);
        if compose != *engine.compose_params() {
            engine
                .set_compose_params(compose)
                .context("remote values are validated")?;
        }
        engine.process(&mut left, &mut right);
        output.write(
            &left,
            &right,
            engine.level(),
            engine.run_mode(),
            engine.compose_params(),
        );
        blocks += 1;
        // Real-time pace from the start instant: no drift.
        let due = start + block * blocks;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}
