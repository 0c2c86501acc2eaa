//! Exports through a real CLAP host, with the built `Auralis.clap` (debug,
//! `assert_process_allocs`). A freewheeling export: the plugin is activated in
//! real time, the host never says it renders offline, and `process()` is called
//! back to back, far faster than real time. An offline export: the host says
//! so. Played at the host's tempo with the same seed, the bounce must equal
//! what `auralis-render` writes for the same settings ([`OfflineRenderer`],
//! which the CLI drives), sample for sample: from the start of the song, and
//! from a song position in the middle of a phrase (`auralis-render
//! --start-beats`).

use auralis::compose::phrase::ComposeParams;
use auralis::compose::presets::PRESETS;
use auralis::engine::EngineConfig;
use auralis::offline::{OfflineRenderer, BLOCK_FRAMES};
use auralis::pacing::RunMode;
use auralis::stream::reader::ShmReader;
use auralis_tests::clap_host::{max_diff, peak, Ev, Plugin, Transport};

const SAMPLE_RATE: f64 = 16_000.0;
/// The host's tempo: a phrase (8 bars of 4/4) lasts 16 s.
const BPM: f64 = 120.0;
/// A phrase boundary from either start, with its texture to wait for.
const SECONDS: f64 = 24.0;
/// The host's block: not a divisor of the renderer's control period nor of
/// `auralis-render`'s blocks.
const BLOCK: usize = 1000;
/// The first of the stream channels these tests use (one each; no other test
/// uses them).
const CHANNEL: i32 = 13;

/// What `auralis-render --preset focus --seed 1 --bpm 120 --sample-rate 16000
/// --start-beats <start_beat>` renders, as floats.
fn auralis_render(start_beat: f64, frames: usize) -> [Vec<f32>; 2] {
    let preset = &PRESETS[0];
    let mut renderer = OfflineRenderer::new(EngineConfig {
        sample_rate: SAMPLE_RATE as f32,
        seed: 1,
        compose: ComposeParams {
            bpm: BPM as f32,
            ..preset.compose
        },
        levels: preset.levels,
        ..EngineConfig::default()
    })
    .expect("reference renderer");
    renderer.start_at_beat(start_beat);
    let mut out = [Vec::with_capacity(frames), Vec::with_capacity(frames)];
    while out[0].len() < frames {
        let (l, r) = renderer.next_block((frames - out[0].len()).min(BLOCK_FRAMES));
        out[0].extend_from_slice(l);
        out[1].extend_from_slice(r);
    }
    out
}

/// Peak of the difference in dBFS (−∞ when identical).
fn diff_dbfs(a: &[Vec<f32>; 2], b: &[Vec<f32>; 2]) -> f32 {
    let d = max_diff(&a[0], &b[0]).max(max_diff(&a[1], &b[1]));
    20.0 * d.log10()
}

/// The plugin plays [`SECONDS`] from `start_beat` with `process()` unpaced,
/// streaming on `channel`, activated offline or in real time; returns the
/// output and the run mode the plugin's stream reported at the end.
///
/// As a DAW that restarts its plugins for an export does, the host has played
/// the plugin before at its tempo, so the new engine starts at that tempo.
fn bounce(start_beat: f64, channel: i32, offline: bool) -> ([Vec<f32>; 2], RunMode) {
    let frames = (SECONDS * SAMPLE_RATE) as usize;
    // `auralis-render` renders textures on the CPU; real time would take a
    // hardware GPU if the machine had one. Set before the plugin's threads exist.
    std::env::set_var("AURALIS_RENDERER", "cpu");
    let mut plugin = Plugin::new();
    let stream = [
        Ev::Param(plugin.param("Stream channel").id, f64::from(channel - 1), 0),
        Ev::Param(plugin.param("Stream").id, 1.0, 0),
    ];
    let transport = Transport {
        playing: true,
        beat: start_beat,
        bpm: BPM,
    };
    plugin.activate(SAMPLE_RATE, BLOCK as u32, false);
    plugin.render(BLOCK, BLOCK, &[], Some(transport));
    plugin.activate(SAMPLE_RATE, BLOCK as u32, offline);
    let out = plugin.render(frames, BLOCK, &stream, Some(transport));
    let reader = ShmReader::open(&channel.to_string()).expect("the plugin streams");
    (out, reader.run_mode())
}

fn assert_bounce_equals_auralis_render(start_beat: f64, channel: i32, mode: RunMode) {
    let (got, seen) = bounce(start_beat, channel, mode == RunMode::Offline);
    let expected = auralis_render(start_beat, got[0].len());
    let db = diff_dbfs(&got, &expected);
    assert_eq!(
        max_diff(&got[0], &expected[0]),
        0.0,
        "left differs by {db:.1} dBFS"
    );
    assert_eq!(
        max_diff(&got[1], &expected[1]),
        0.0,
        "right differs by {db:.1} dBFS"
    );
    assert!(peak(&got[0]) > 0.01, "silent");
    assert_eq!(seen, mode, "the status shows the run mode");
}

#[test]
fn a_freewheeling_real_time_host_bounces_exactly_what_auralis_render_writes() {
    assert_bounce_equals_auralis_render(0.0, CHANNEL, RunMode::Freewheel);
}

/// Phrase 3, 5.5 beats in.
const MID_PHRASE: f64 = 32.0 * 3.0 + 5.5;

#[test]
fn a_freewheeling_bounce_from_mid_phrase_equals_auralis_render_from_there() {
    // Primed at activation where the host's playhead was, since the first
    // blocks must not wait (the host might be a real-time one).
    assert_bounce_equals_auralis_render(MID_PHRASE, CHANNEL + 1, RunMode::Freewheel);
}

#[test]
fn an_offline_bounce_from_mid_phrase_equals_auralis_render_from_there() {
    assert_bounce_equals_auralis_render(MID_PHRASE, CHANNEL + 2, RunMode::Offline);
}
