//! `auralis-render`: renders Auralis offline to a WAV file.
//!
//! The same arguments always give a byte-identical file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use auralis::compose::code::{CodeError, PieceCode};
use auralis::compose::phrase::ComposeParams;
use auralis::compose::presets::{preset, Preset};
use auralis::compose::theory::{Key, Mode};
use auralis::engine::{EngineConfig, TextureSetting};
use auralis::offline::{default_threads, OfflineRenderer, BLOCK_FRAMES};
use auralis::render::RenderMode;
use clap::{Parser, ValueEnum};

/// Longest render accepted, in seconds (24 hours).
const MAX_SECONDS: f64 = 86_400.0;
/// How often progress is reported on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Render Auralis offline to a WAV file.
#[derive(Debug, Parser)]
#[command(name = "auralis-render", version, about, long_about = None)]
struct Args {
    /// Seed: the same seed and settings always give the same music.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Preset to start from: focus, meditation, sleep or bright.
    #[arg(long, default_value = "focus", value_parser = parse_preset)]
    preset: &'static Preset,
    /// Length in seconds (up to 86400).
    #[arg(long, default_value_t = 60.0, value_parser = parse_seconds, allow_negative_numbers = true)]
    seconds: f64,
    /// Sample rate in hertz (8000 to 768000).
    #[arg(long, default_value_t = 48_000, value_parser = clap::value_parser!(u32).range(8_000..=768_000))]
    sample_rate: u32,
    /// The WAV file to write (replaced only once the render has succeeded).
    #[arg(long, short)]
    out: PathBuf,
    /// Key, overriding the preset's: C, C#, Db, … B.
    #[arg(long)]
    key: Option<Key>,
    /// Mode, overriding the preset's: aeolian, dorian, phrygian, lydian, mixolydian, ionian.
    #[arg(long)]
    mode: Option<Mode>,
    /// Tempo in BPM (20 to 300), overriding the preset's.
    #[arg(long, allow_negative_numbers = true)]
    bpm: Option<f32>,
    /// Intensity from 0 to 1, overriding the preset's.
    #[arg(long, allow_negative_numbers = true)]
    intensity: Option<f32>,
    /// A piece code (`au1-…`, as the player and the bridge show it): seed,
    /// preset, key, mode, tempo and intensity in one.
    #[arg(long, value_parser = parse_code, conflicts_with_all = ["seed", "preset", "key", "mode", "bpm", "intensity"])]
    code: Option<PieceCode>,
    /// Song position to start at, in beats (quarter notes): what a host's bounce
    /// starting there plays.
    #[arg(long, default_value_t = 0.0, value_parser = parse_beats, allow_negative_numbers = true)]
    start_beats: f64,
    /// Sample format of the file.
    #[arg(long, value_enum, default_value_t = Format::S24)]
    format: Format,
    /// The pre-rendered texture layer: on (rendered on the CPU unless
    /// AURALIS_RENDERER=gpu) or off (the real-time pad alone).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    texture: Switch,
    /// Threads for the texture layer (default: every core). The file is the same
    /// for any number.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// No progress lines, only the final summary.
    #[arg(long, short)]
    quiet: bool,
}

/// An on/off setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// WAV sample formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// 16-bit integer PCM.
    S16,
    /// 24-bit integer PCM.
    S24,
    /// 32-bit float.
    F32,
}

impl Format {
    fn spec(self, sample_rate: u32) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            Self::S16 => (16, hound::SampleFormat::Int),
            Self::S24 => (24, hound::SampleFormat::Int),
            Self::F32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec {
            channels: 2,
            sample_rate,
            bits_per_sample,
            sample_format,
        }
    }
}

fn parse_preset(name: &str) -> Result<&'static Preset, String> {
    preset(name).map_err(|e| e.to_string())
}

fn parse_code(code: &str) -> Result<PieceCode, String> {
    code.parse().map_err(|e: CodeError| e.to_string())
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= MAX_SECONDS {
        Ok(v)
    } else {
        Err(format!("must be more than 0 and at most {MAX_SECONDS}"))
    }
}

fn parse_beats(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("must be a song position of 0 beats or more".into())
    }
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("auralis-render: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let partial = partial_path(&args.out)?;
    let result = render(args, &partial);
    if result.is_err() {
        // Leave nothing half-written behind; the target itself was never touched.
        let _ignored_if_never_created = std::fs::remove_file(&partial);
    }
    result
}

/// The piece to render: the code's, or the seed and preset with their overrides.
fn piece(args: &Args) -> PieceCode {
    args.code.unwrap_or(PieceCode {
        seed: args.seed,
        preset: args.preset,
        compose: ComposeParams {
            key: args.key.unwrap_or(args.preset.compose.key),
            mode: args.mode.unwrap_or(args.preset.compose.mode),
            bpm: args.bpm.unwrap_or(args.preset.compose.bpm),
            intensity: args.intensity.unwrap_or(args.preset.compose.intensity),
            ..args.preset.compose
        },
    })
}

fn render(args: &Args, partial: &Path) -> Result<()> {
    let piece = piece(args);
    let compose = piece.compose;
    compose.validate().context("invalid settings")?;
    let frames = (args.seconds * f64::from(args.sample_rate)).round() as u64;
    let spec = args.format.spec(args.sample_rate);
    let bytes = frames * u64::from(spec.channels) * u64::from(spec.bits_per_sample / 8);
    if bytes > u64::from(u32::MAX) - 1024 {
        bail!(
            "{} s at {} Hz in {:?} needs {:.1} GiB, more than a WAV file can hold (4 GiB); \
             render less, at a lower rate, or in s16",
            args.seconds,
            args.sample_rate,
            args.format,
            bytes as f64 / f64::from(1u32 << 30)
        );
    }
    let texture = match args.texture {
        Switch::On => TextureSetting::FromEnv,
        Switch::Off => TextureSetting::Off,
    };
    let threads = args.threads.map_or_else(default_threads, |n| n as usize);
    let mut renderer = OfflineRenderer::with_threads(
        EngineConfig {
            sample_rate: args.sample_rate as f32,
            seed: piece.seed,
            compose,
            levels: piece.levels(),
            mode: RenderMode::Offline,
        },
        texture,
        threads,
    )?;
    renderer.start_at_beat(args.start_beats);

    // Write beside the target and rename at the end: a failed render never
    // destroys a good file that was there.
    let mut writer = hound::WavWriter::create(partial, spec)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let started = Instant::now();
    let mut last_report = started;
    let show_progress = !args.quiet && (std::io::stderr().is_terminal() || args.seconds >= 60.0);
    let mut done = 0u64;
    let write = |writer: &mut hound::WavWriter<_>, l: &[f32], r: &[f32]| -> Result<()> {
        for (&a, &b) in l.iter().zip(r) {
            for s in [a, b] {
                match args.format {
                    Format::S16 => writer.write_sample((s * 32_767.0).round() as i16)?,
                    Format::S24 => writer.write_sample((s * 8_388_607.0).round() as i32)?,
                    Format::F32 => writer.write_sample(s)?,
                }
            }
        }
        Ok(())
    };
    while done < frames {
        let n = (frames - done).min(BLOCK_FRAMES as u64) as usize;
        let (l, r) = renderer.next_block(n);
        write(&mut writer, l, r).with_context(|| format!("cannot write {}", partial.display()))?;
        done += n as u64;
        if show_progress && last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            eprintln!(
                "auralis-render: {:.1} of {:.1} s ({:.0} %)",
                done as f64 / f64::from(args.sample_rate),
                args.seconds,
                100.0 * done as f64 / frames as f64
            );
        }
    }
    writer
        .finalize()
        .with_context(|| format!("cannot finish {}", partial.display()))?;
    std::fs::rename(partial, &args.out).with_context(|| {
        format!(
            "cannot move {} to {}",
            partial.display(),
            args.out.display()
        )
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "auralis-render: wrote {} ({:.1} s at {} Hz, {:?}, code {}) in {:.2} s, {:.1}x real time",
        args.out.display(),
        args.seconds,
        args.sample_rate,
        args.format,
        PieceCode::new(piece.seed, piece.preset, piece.compose),
        elapsed,
        args.seconds / elapsed.max(1e-9)
    );
    Ok(())
}

/// `dir/.name.partial` beside `out`.
fn partial_path(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("{} is not a file path", out.display()))?;
    if out.is_dir() {
        bail!("{} is a directory", out.display());
    }
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    Ok(out.with_file_name(partial))
}
