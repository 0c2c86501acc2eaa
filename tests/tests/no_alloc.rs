//! The rendering path never allocates: the engine runs under `assert_no_alloc`
//! (which aborts the process on any allocation or free on the checked thread) for
//! more than ten minutes of audio across block sizes and sample rates, in real-time
//! mode with its composer thread running alongside, and while a freewheeling host
//! switches it between real time and a bounce, and with MIDI out's notes
//! logged and sent, at a host rate the engine meets by decimation. Every sample
//! must be finite and at most 0 dBFS.

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use auralis::compose::phrase::ComposeParams;
use auralis::compose::presets::PRESETS;
use std::time::{Duration, Instant};

use auralis::engine::{Engine, EngineConfig};
use auralis::host_rate::HostRate;
use auralis::midi_out::{MidiChannels, MidiOut};
use auralis::pacing::{Pace, PacingDetector, RunMode};
use auralis::render::RenderMode;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// (sample rate, block size, seconds of audio).
const RUNS: &[(f32, usize, f64)] = &[
    (48_000.0, 64, 150.0),
    (44_100.0, 1, 20.0),
    (48_000.0, 17, 90.0),
    (96_000.0, 512, 90.0),
    (8_000.0, 4096, 120.0),
    (768_000.0, 16_384, 30.0),
    (48_000.0, 16_384, 120.0),
];

#[test]
fn engine_renders_ten_minutes_without_allocating() {
    let mut total_s = 0.0;
    for (i, &(sample_rate, block, seconds)) in RUNS.iter().enumerate() {
        let preset = &PRESETS[i % PRESETS.len()];
        let mut engine = Engine::new(EngineConfig {
            sample_rate,
            seed: i as u64,
            compose: preset.compose,
            levels: preset.levels,
            mode: RenderMode::RealTime,
        })
        .expect("engine");
        let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
        let blocks = (seconds * f64::from(sample_rate) / block as f64).ceil() as usize;
        let mut peak = 0.0f32;
        let mut changed_params = false;
        for b in 0..blocks {
            if !changed_params && b == blocks / 2 {
                // A parameter change mid-run (off the audio thread's checked region).
                engine
                    .set_compose_params(ComposeParams {
                        intensity: 0.9,
                        ..preset.compose
                    })
                    .expect("valid params");
                changed_params = true;
            }
            assert_no_alloc(|| engine.process(&mut left, &mut right));
            for &x in left.iter().chain(&right) {
                assert!(
                    x.is_finite(),
                    "non-finite sample at {sample_rate} Hz, block {block}"
                );
                peak = peak.max(x.abs());
            }
        }
        assert!(peak <= 1.0, "peak {peak} above 0 dBFS at {sample_rate} Hz");
        assert!(peak > 0.01, "silent at {sample_rate} Hz, block {block}");
        total_s += seconds;
    }
    assert!(total_s >= 600.0, "only {total_s} s rendered");
}

/// The plugin's freewheel path: a pacing detector fed a host that alternates
/// between real time and a freewheel (its clock advanced by hand), the engine
/// switched to match at every block, all in the checked region.
#[test]
fn switching_between_real_time_and_a_bounce_never_allocates() {
    let sample_rate = 48_000.0;
    let block = 480;
    let mut engine = Engine::new(EngineConfig {
        sample_rate,
        seed: 3,
        compose: PRESETS[1].compose,
        levels: PRESETS[1].levels,
        mode: RenderMode::RealTime,
    })
    .expect("engine");
    let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
    let mut pacing = PacingDetector::default();
    let mut clock = Instant::now();
    let mut seen = Vec::with_capacity(8);
    let mut peak = 0.0f32;
    // 30 s of audio: 5 s at a time, real time and 50x real time by turns.
    for b in 0..3_000 {
        let speed = if (b / 500) % 2 == 0 { 1.0 } else { 50.0 };
        let mode = assert_no_alloc(|| {
            let mode = match pacing.observe(clock, block, sample_rate) {
                None => RunMode::Starting,
                Some(Pace::RealTime) => RunMode::RealTime,
                Some(Pace::Freewheel) => RunMode::Freewheel,
            };
            engine.set_run_mode(mode);
            engine.process(&mut left, &mut right);
            mode
        });
        clock += Duration::from_secs_f64(0.01 / speed);
        if seen.last() != Some(&mode) {
            seen.push(mode);
        }
        for &x in left.iter().chain(&right) {
            assert!(x.is_finite(), "non-finite sample in block {b}");
            peak = peak.max(x.abs());
        }
    }
    assert_eq!(
        seen,
        [
            RunMode::Starting,
            RunMode::RealTime,
            RunMode::Freewheel,
            RunMode::RealTime,
            RunMode::Freewheel,
            RunMode::RealTime,
            RunMode::Freewheel,
        ]
    );
    assert!(peak <= 1.0 && peak > 0.01, "peak {peak}");
}

/// The plugin's MIDI out path: the renderer's note log drained after every
/// chunk into the MIDI out tracker, with seeks and ends of every note between,
/// at 48 kHz and at 1 234.5678 Hz (the engine at 7× that, decimated), all in
/// the checked region.
#[test]
fn notes_and_a_decimated_low_rate_never_allocate() {
    for host_rate in [48_000.0, 1_234.567_8] {
        let mut plan = HostRate::new(host_rate).expect("a supported rate");
        let mut engine = Engine::new(EngineConfig {
            sample_rate: plan.engine_rate(),
            seed: 5,
            compose: ComposeParams {
                bpm: 150.0,
                ..PRESETS[0].compose
            },
            levels: PRESETS[0].levels,
            mode: RenderMode::RealTime,
        })
        .expect("engine");
        engine.set_note_log(true);
        let mut midi = MidiOut::default();
        let block = 256;
        let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
        let (mut ons, mut offs) = (0u64, 0u64);
        let blocks = (40.0 * host_rate / block as f32) as usize;
        let mut peak = 0.0f32;
        for b in 0..blocks {
            assert_no_alloc(|| {
                if b % 700 == 699 {
                    engine.seek_beats(b as f64 / 3.0);
                }
                if b % 1_100 == 0 {
                    midi.end_all(0, |_| offs += 1);
                }
                plan.process(&mut engine, &mut left, &mut right, |engine, _, _, _| {
                    engine.drain_notes(|note| {
                        midi.send(&note, 0, MidiChannels::default(), |n| {
                            if n.velocity.is_some() {
                                ons += 1;
                            } else {
                                offs += 1;
                            }
                        });
                    });
                });
            });
            for &x in left.iter().chain(&right) {
                assert!(x.is_finite(), "non-finite sample at {host_rate} Hz");
                peak = peak.max(x.abs());
            }
        }
        assert!(peak <= 1.0 && peak > 0.01, "peak {peak} at {host_rate} Hz");
        assert!(
            ons > 20 && offs > 20,
            "{ons} ons, {offs} offs at {host_rate} Hz"
        );
    }
}

/// With the journal on (what `/api/recording` replays from), the engine still
/// never allocates: recording a phrase, a texture, a level or a mix change is
/// a push of a fixed-size record onto a ring made up front. The level is
/// pinned up and down and the mix changed inside the checked region; the
/// journal is drained outside it, as the bridge's source does.
#[test]
fn the_journal_records_without_allocating() {
    use auralis::degrade::Level;
    use auralis::render::journal::JournalEvent;

    let preset = &PRESETS[0];
    let mut engine = Engine::new(EngineConfig {
        sample_rate: 16_000.0,
        seed: 9,
        compose: ComposeParams {
            bars: 1,
            bpm: 180.0,
            ..preset.compose
        },
        levels: preset.levels,
        mode: RenderMode::RealTime,
    })
    .expect("engine");
    let mut journal = engine.enable_journal(4096);
    let (mut left, mut right) = (vec![0.0f32; 320], vec![0.0f32; 320]);
    let mut events: Vec<JournalEvent> = Vec::with_capacity(8192);
    let mut levels = preset.levels;
    for b in 0..3000 {
        let pin = match b % 600 {
            200..=299 => Some(Level::HighLoad),
            300..=399 => Some(Level::Overload),
            _ => None,
        };
        if b % 150 == 75 {
            levels.reverb = if levels.reverb > 0.3 { 0.2 } else { 0.6 };
        }
        assert_no_alloc(|| {
            engine.set_level_pin(pin);
            engine.set_levels(levels).expect("levels");
            engine.process(&mut left, &mut right);
        });
        journal.drain_into(&mut events);
        std::thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(journal.lost(), 0);
    for kind in ["phrase", "level", "mix"] {
        assert!(
            events.iter().any(|e| match e {
                JournalEvent::Phrase { .. } => kind == "phrase",
                JournalEvent::Level { .. } => kind == "level",
                JournalEvent::Mix { .. } => kind == "mix",
                _ => false,
            }),
            "no {kind} recorded"
        );
    }
}
