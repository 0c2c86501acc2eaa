//! `process()` of the built `Auralis.clap` through the CLAP host, at 48 kHz in
//! 64-frame blocks, real-time mode, full quality, ten minutes of audio. Prints
//! `name value unit` lines:
//!
//! - `process_load_ratio`: time in `process()` ÷ audio duration (target ≤ 0.01);
//! - `process_worst_block_ratio`: the slowest block ÷ its deadline (target ≤ 0.25);
//! - `process_load_ratio_midi_paced`: the same load with MIDI out on, the blocks
//!   delivered as a DAW delivers them, one per block duration, for
//!   [`PACED_SECONDS`] (target ≤ 0.01).
//!
//! Run by `cargo xtask bench` after `cargo xtask bundle auralis --release`; the
//! library is `$AURALIS_CLAP`, else `target/bundled/Auralis.clap`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use auralis_tests::clap_host::{load_entry, root, Ev, Plugin, Transport};
use clack_host::prelude::PluginEntry;

const SAMPLE_RATE: f64 = 48_000.0;
const BLOCK: usize = 64;
const SECONDS: f64 = 600.0;
/// Audio (and wall time) of the paced run with MIDI out on.
const PACED_SECONDS: f64 = 60.0;

fn main() {
    let bundle = std::env::var_os("AURALIS_CLAP")
        .map_or_else(|| root().join("target/bundled/Auralis.clap"), PathBuf::from);
    let copy = std::env::temp_dir().join(format!("auralis-bench-{}.clap", std::process::id()));
    std::fs::copy(&bundle, &copy)
        .unwrap_or_else(|e| panic!("copy {}: {e} (bundle it first)", bundle.display()));
    // Blocks come back to back, which the plugin would take for a freewheeling
    // export and render as a bounce: this measures the real-time path.
    std::env::set_var("AURALIS_FREEWHEEL", "off");
    let entry: &'static _ = Box::leak(Box::new(load_entry(&copy)));
    let mut plugin = Plugin::with_entry(entry);
    plugin.activate(SAMPLE_RATE, BLOCK as u32, false);
    let blocks = (SECONDS * SAMPLE_RATE / BLOCK as f64) as usize;
    let transport = Transport {
        playing: true,
        beat: 0.0,
        bpm: 60.0,
    };
    let beats_per_block = BLOCK as f64 / SAMPLE_RATE;
    let (mut total, mut worst, mut worst_at) = (Duration::ZERO, Duration::ZERO, 0);
    let mut times = Vec::with_capacity(blocks);
    plugin.run_timed(
        (0..blocks).map(move |b| {
            let t = Transport {
                beat: b as f64 * beats_per_block,
                ..transport
            };
            (BLOCK, Vec::new(), Some(t))
        }),
        |_, _, took| {
            total += took;
            if took > worst {
                (worst, worst_at) = (took, times.len());
            }
            times.push(took);
        },
    );
    let audio_s = (blocks * BLOCK) as f64 / SAMPLE_RATE;
    let deadline_s = BLOCK as f64 / SAMPLE_RATE;
    // Where and how isolated the slowest block is: a stall at a random place
    // with a low 99.99th percentile is the machine (preemption, CPU quota).
    times.sort_unstable();
    let p9999 = times[times.len() * 9999 / 10_000];
    eprintln!(
        "plugin_process: slowest block #{worst_at} ({:.1} s in) {:.3} ms; \
         99.99th percentile {:.3} ms ({:.4} of the deadline)",
        worst_at as f64 * deadline_s,
        worst.as_secs_f64() * 1e3,
        p9999.as_secs_f64() * 1e3,
        p9999.as_secs_f64() / deadline_s
    );
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "process_load_ratio {:.4} of_real_time",
        total.as_secs_f64() / audio_s
    )
    .expect("stdout");
    writeln!(
        out,
        "process_worst_block_ratio {:.4} of_deadline",
        worst.as_secs_f64() / deadline_s
    )
    .expect("stdout");
    drop(out);
    let paced = paced_midi_load(entry);
    writeln!(
        std::io::stdout().lock(),
        "process_load_ratio_midi_paced {paced:.4} of_real_time"
    )
    .expect("stdout");
}

/// Time in `process()` ÷ audio duration with MIDI out on, each block handed
/// over at its time in real time, as a DAW's audio callback does.
fn paced_midi_load(entry: &'static PluginEntry) -> f64 {
    let mut plugin = Plugin::with_entry(entry);
    plugin.activate(SAMPLE_RATE, BLOCK as u32, false);
    let midi_on = Ev::Param(plugin.param("MIDI out").id, 1.0, 0);
    let blocks = (PACED_SECONDS * SAMPLE_RATE / BLOCK as f64) as usize;
    let block_s = BLOCK as f64 / SAMPLE_RATE;
    let start = Instant::now();
    let mut total = Duration::ZERO;
    plugin.run_timed(
        (0..blocks).map(move |b| {
            let due = start + Duration::from_secs_f64(b as f64 * block_s);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = Transport {
                playing: true,
                beat: b as f64 * block_s,
                bpm: 60.0,
            };
            let events = if b == 0 { vec![midi_on] } else { Vec::new() };
            (BLOCK, events, Some(t))
        }),
        |_, _, took| total += took,
    );
    let notes = plugin.take_out_notes();
    assert!(
        !notes.is_empty(),
        "MIDI out sent nothing in {PACED_SECONDS} s"
    );
    eprintln!(
        "plugin_process: paced with MIDI out, {} note events in {PACED_SECONDS} s, {:.1} s of wall time",
        notes.len(),
        start.elapsed().as_secs_f64()
    );
    total.as_secs_f64() / (blocks as f64 * block_s)
}
