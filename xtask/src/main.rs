//! Project automation, run as `cargo xtask <command>`:
//!
//! - `bundle`: the plugin bundles (`target/bundled/Auralis.clap`, `Auralis.vst3`),
//!   through nice-plug-xtask;
//! - `test`: formatting, lints, every test of the workspace, a load test and a
//!   short soak of the bridge (what CI runs; the fuzz targets' properties run
//!   over their seeds and mutations among the tests);
//! - `bench`: the benchmarks, printed as `name value unit` lines;
//! - `form`: half an hour of each preset, measured for long-form shape
//!   (loudness range, chord lengths, sections, layers, a self-similarity image);
//! - `icecast-bench`: listeners of the bridge, of an `icecast2` it feeds and of
//!   a relay of that, side by side;
//! - `loadtest`: many WebSocket listeners on one bridge;
//! - `soak`: the bridge under listeners, control traffic, churn and faults for a
//!   while, with checks on what it lost and kept;
//! - `fuzz`: the cargo-fuzz targets in `fuzz/`, each for a bounded time.

mod bridge;
mod flags;
mod form;
mod fuzz;
mod icecast_bench;
#[path = "../../bridge/tests/common/icecast_server.rs"]
mod icecast_server;
mod listeners;
mod loadtest;
mod soak;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  bundle auralis [--release] [cargo build options]
           build the plugin and write target/bundled/Auralis.clap and Auralis.vst3
  test     check formatting, run clippy (-D warnings), every test, a load test
           and a two-minute soak (what CI runs)
  bench [--bridge-only] [--bridge-seconds S] [criterion options]
           run the benchmarks (the plugin's through a CLAP host, in release; the
           bridge's with listeners for S seconds per trial, default 60) and print
           one `name value unit` line per figure
  form [--minutes M] [--preset NAME]... [--seed N] [--out DIR]
           render M minutes (default 30) of each preset and print loudness
           range, integrated loudness, true peak, chord lengths, sections, layer
           sets and the spectral centroid's range; write self-similarity PNGs
  icecast-bench [--listeners N] [--seconds S] [--bin PATH]
           N Ogg listeners (default 200) for S seconds (default 30) on the
           bridge's /stream.opus, on an icecast2 mount it feeds and on a relay:
           health, gaps, bytes/s per listener, the bridge's CPU and RSS
  loadtest --clients N --seconds S [--url URL] [--bin PATH]
           N listeners on a bridge for S seconds: chunk rates, gaps, server CPU
           and memory
  soak --minutes M --clients N [--release | --bin PATH] [--seed N]
           the bridge under listeners, control messages, disconnects and faults;
           fails when a healthy listener lost audio or memory or files leaked
  fuzz [--seconds S] [--target T]...
           run each cargo-fuzz target (nightly) for S seconds (default 20); fails
           on any crash, hang or memory overrun";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bundle") => nice_plug_xtask::main_with_args("cargo xtask", args),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("form") => form::form(&args[1..]),
        Some("icecast-bench") => icecast_bench::icecast_bench(&args[1..]),
        Some("loadtest") => loadtest::loadtest(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("-h" | "--help" | "help") => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

/// The workspace root (the parent of this crate's folder).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Cargo's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Everything CI checks. Extra arguments go to the test runner.
fn test(extra: &[String]) -> Result<()> {
    ensure_system_packages()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    // Doc tests first, so the main runner's summary is the run's last word.
    let mut doc = cargo();
    doc.args(["test", "--workspace", "--doc"]);
    run(doc)?;
    let mut tests = cargo();
    if has_nextest() {
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--no-fail-fast"]);
    }
    tests.args(extra);
    run(tests)?;
    // The bridge under load and over time, on the debug binary the tests just built
    // (fault injection is compiled into it): 20 listeners must get every chunk, with
    // no sequence gap or disconnection (timing is the benchmark's business, so only
    // a stalled stream fails the wait bound here), and a two-minute soak must lose
    // nothing and leak nothing.
    let bridge = target_dir().join("debug/auralis-bridge");
    let bridge = bridge.to_string_lossy();
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    loadtest::loadtest(&owned(&[
        "--clients",
        "20",
        "--seconds",
        "5",
        "--max-gap-ms",
        "2000",
        "--bin",
        &bridge,
    ]))?;
    soak::soak(&owned(&[
        "--minutes",
        "2",
        "--clients",
        "50",
        "--bin",
        &bridge,
    ]))
}

/// Debian packages the tests need: a software Vulkan device (lavapipe) so the GPU
/// kernels run, Chromium for the browser player's tests, ffmpeg (libopus) as
/// the reference decoder of the Opus stream, and Icecast for the Icecast source's.
const TEST_PACKAGES: &[&str] = &["mesa-vulkan-drivers", "chromium", "ffmpeg", "icecast2"];

/// Installs the missing [`TEST_PACKAGES`] with apt when running as root (a fresh
/// CI machine); otherwise names the command to run. The tests that need them fail
/// rather than skip, so a missing package must be found here.
fn ensure_system_packages() -> Result<()> {
    let installed = |pkg: &str| {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
    };
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        bail!(
            "the tests need these Debian packages: {0}; install them with \
             `sudo apt-get update && sudo apt-get install -y {0}`",
            missing.join(" ")
        );
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    run(update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install)
}

/// A benchmark's figure: how to turn criterion's mean time into a ratio.
struct Figure {
    /// Printed name.
    name: &'static str,
    /// Criterion benchmark id (folder under `target/criterion`).
    id: &'static str,
    /// The value from the mean time of one iteration, in seconds.
    value: fn(f64) -> f64,
    unit: &'static str,
}

const FIGURES: &[Figure] = &[
    Figure {
        name: "render_rtf",
        id: "render/render_60s_focus",
        // One iteration renders 60 s of audio on one core, texture layer included.
        value: |secs| 60.0 / secs,
        unit: "x_real_time",
    },
    Figure {
        name: "render_rtf_all_cores",
        id: "render/render_60s_focus_all_cores",
        // The same on every core (`auralis-render`'s default).
        value: |secs| 60.0 / secs,
        unit: "x_real_time",
    },
    Figure {
        name: "render_rtf_no_texture",
        id: "render/render_60s_focus_no_texture",
        // One core, the real-time pad alone.
        value: |secs| 60.0 / secs,
        unit: "x_real_time",
    },
    Figure {
        name: "engine_block_ratio",
        id: "engine_block_64_at_48k",
        // One iteration renders 64 frames at 48 kHz.
        value: |secs| secs / (64.0 / 48_000.0),
        unit: "of_real_time",
    },
    Figure {
        name: "prerender_rtf_cpu",
        id: "prerender/rtf_cpu",
        // One iteration renders the texture of a 32 s phrase.
        value: |secs| 32.0 / secs,
        unit: "x_real_time",
    },
    Figure {
        name: "prerender_rtf_gpu",
        id: "prerender/rtf_gpu",
        value: |secs| 32.0 / secs,
        unit: "x_real_time",
    },
    Figure {
        name: "prerender_first_phrase_ms",
        id: "prerender/first_phrase",
        value: |secs| secs * 1e3,
        unit: "ms",
    },
];

/// Splits the bridge benchmark's options off the criterion ones: whether to run
/// only the bridge's, and its trial length.
fn bridge_bench_options(args: &[String]) -> Result<(bool, std::time::Duration, Vec<String>)> {
    let mut only = false;
    let mut seconds = 60.0;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bridge-only" => only = true,
            "--bridge-seconds" => {
                let v = it.next().context("--bridge-seconds needs a value")?;
                seconds = flags::parse_in(a, v, 1.0, 3600.0)?;
            }
            _ => rest.push(a.clone()),
        }
    }
    Ok((only, std::time::Duration::from_secs_f64(seconds), rest))
}

fn bench(args: &[String]) -> Result<()> {
    let (bridge_only, bridge_seconds, extra) = bridge_bench_options(args)?;
    if bridge_only {
        recording_bench()?;
        return loadtest::bench(bridge_seconds);
    }
    for bench in ["engine", "prerender"] {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "auralis", "--bench", bench, "--"]);
        cmd.args(&extra);
        run(cmd)?;
    }
    let mut stdout = std::io::stdout().lock();
    let criterion = target_dir().join("criterion");
    for f in FIGURES {
        let path = criterion.join(f.id).join("new").join("estimates.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("cannot parse {}", path.display()))?;
        let mean_ns = json["mean"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no mean estimate in {}", path.display()))?;
        writeln!(
            stdout,
            "{} {:.4} {}",
            f.name,
            (f.value)(mean_ns * 1e-9),
            f.unit
        )?;
    }
    drop(stdout);
    // Prints its own `degrade_reaction_ms` line: a wall-clock measurement, not a
    // criterion loop.
    let mut degrade = cargo();
    degrade.args(["bench", "-p", "auralis", "--bench", "degrade"]);
    run(degrade)?;
    plugin_bench()?;
    recording_bench()?;
    loadtest::bench(bridge_seconds)
}

/// `recording_rtf`: a 10-minute recording rendered while 50 listeners stream
/// (the bridge's `recording` bench, in release), which prints its own lines.
fn recording_bench() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "auralis-bridge", "--bench", "recording"]);
    run(cmd)
}

/// `process()` of the release plugin through the CLAP host: bundles it, then runs
/// the `plugin_process` bench of the tests crate, which prints its own lines.
fn plugin_bench() -> Result<()> {
    let args = ["bundle", "auralis", "--release"].map(String::from);
    nice_plug_xtask::main_with_args("cargo xtask", args).context("cannot bundle the plugin")?;
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "auralis-tests", "--bench", "plugin_process"]);
    run(cmd)
}
