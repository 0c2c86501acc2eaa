//! Degradation end to end in the engine: a simulated audio-thread load (the real
//! measurement path, inflated) drives the engine up through every level and back
//! down one level per hold time, and the audio stays continuous: finite, never
//! silent, no sample-to-sample jump beyond what the undisturbed music makes.

use std::time::{Duration, Instant};

use auralis::compose::phrase::ComposeParams;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::{DegradeConfig, Level};
use auralis::engine::{Engine, EngineConfig, TextureSetting};
use auralis::pacing::RunMode;
use auralis::prerender::gpu::RendererChoice;
use auralis::prerender::PrerenderConfig;
use auralis::render::mix::MixLevels;
use auralis::render::RenderMode;
use auralis_tests::signal::max_step;

const SAMPLE_RATE: f32 = 48_000.0;
const BLOCK: usize = 4_800;
const HOLD_S: f64 = 0.6;

fn config() -> EngineConfig {
    EngineConfig {
        sample_rate: SAMPLE_RATE,
        seed: 5,
        // One bar of 4/4 at 240 BPM: a phrase a second, so loops show quickly.
        compose: ComposeParams {
            bpm: 240.0,
            bars: 1,
            intensity: 0.8,
            ..ComposeParams::default()
        },
        levels: MixLevels::default(),
        mode: RenderMode::RealTime,
    }
}

/// An engine with the texture rendered on the CPU, fast enough here for phrases of
/// a second (a software GPU sharing two cores with the test may not be).
fn engine() -> Engine {
    let prerender = PrerenderConfig {
        renderer: RendererChoice::Cpu,
        ..PrerenderConfig::new(0, 0.0)
    };
    Engine::build(config(), monitor(), TextureSetting::With(prerender)).expect("engine")
}

fn monitor() -> MonitorConfig {
    MonitorConfig {
        interval: Duration::from_millis(50),
        cpu_interval: Duration::from_secs(1),
        machine: DegradeConfig {
            hold_s: HOLD_S,
            ..DegradeConfig::default()
        },
        // Only the simulated audio load drives the level, whatever else runs.
        sample_cpu: false,
    }
}

/// Renders 100 ms blocks for `wall` of wall time (faster than real time, so a
/// preempted block cannot look like overload), appending the
/// left channel to `out` and the level after each block to `levels`.
fn run(
    engine: &mut Engine,
    wall: Duration,
    out: &mut Vec<f32>,
    levels: &mut Vec<(Instant, Level)>,
) {
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    let end = Instant::now() + wall;
    while Instant::now() < end {
        engine.process(&mut l, &mut r);
        out.extend_from_slice(&l);
        levels.push((Instant::now(), engine.level()));
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for(
    engine: &mut Engine,
    level: Level,
    out: &mut Vec<f32>,
    levels: &mut Vec<(Instant, Level)>,
) -> Duration {
    let start = Instant::now();
    while engine.level() != level {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "level {} never reached (at {}): {:?}",
            level,
            engine.level(),
            engine.status()
        );
        run(engine, Duration::from_millis(20), out, levels);
    }
    // The level may have changed after the last recorded block: record it too.
    levels.push((Instant::now(), level));
    start.elapsed()
}

#[test]
fn load_steps_through_every_level_and_back_without_a_glitch() {
    // The undisturbed music first, for its own largest sample-to-sample step.
    let mut calm = engine();
    let (mut calm_out, mut calm_levels) = (Vec::new(), Vec::new());
    run(
        &mut calm,
        Duration::from_secs(3),
        &mut calm_out,
        &mut calm_levels,
    );
    assert!(calm_levels.iter().all(|(_, l)| *l == Level::Normal));
    let music_jump = max_step(&calm_out[48_000..]);

    let mut engine = engine();
    let (mut out, mut levels) = (Vec::new(), Vec::new());
    run(
        &mut engine,
        Duration::from_millis(500),
        &mut out,
        &mut levels,
    );
    assert_eq!(engine.level(), Level::Normal);

    // Up: each bound crossed shows within a couple of monitor periods.
    for (ratio, level) in [
        (0.7, Level::HighLoad),
        (0.9, Level::Critical),
        (1.2, Level::Overload),
    ] {
        engine.simulate_audio_load(ratio);
        let took = wait_for(&mut engine, level, &mut out, &mut levels);
        assert!(took < Duration::from_millis(500), "{level} took {took:?}");
        run(
            &mut engine,
            Duration::from_millis(300),
            &mut out,
            &mut levels,
        );
    }
    let status = engine.status();
    assert!(status.load.danger_pct > 95.0, "{:?}", status.load);

    // Overload loops the phrase in hand: the index stays put over several phrases.
    let looped = engine.phrase_index();
    run(
        &mut engine,
        Duration::from_millis(2500),
        &mut out,
        &mut levels,
    );
    assert_eq!(engine.phrase_index(), looped, "the last good phrase loops");
    let (_, melody, percussion) = engine.active_voices();
    assert_eq!((melody, percussion), (0, 0), "chords only from critical on");

    // Down: one level per hold, never faster.
    assert_eq!(engine.level(), Level::Overload);
    engine.simulate_audio_load(0.0);
    let calm_from = Instant::now();
    wait_for(&mut engine, Level::Normal, &mut out, &mut levels);
    let descent: Vec<(Instant, Level)> = std::iter::once((calm_from, Level::Overload))
        .chain(levels.iter().copied().filter(|(t, _)| *t >= calm_from))
        .collect();
    let mut changes = descent
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[1].0, w[1].1));
    let mut last = calm_from;
    for expected in [Level::Critical, Level::HighLoad, Level::Normal] {
        let (at, level) = changes.next().unwrap_or_else(|| {
            panic!(
                "one step down per level: {:?}",
                descent
                    .windows(2)
                    .filter(|w| w[0].1 != w[1].1)
                    .map(|w| (w[1].0.duration_since(calm_from).as_millis(), w[1].1))
                    .collect::<Vec<_>>()
            )
        });
        assert_eq!(level, expected);
        assert!(
            (at - last).as_secs_f64() >= HOLD_S * 0.9,
            "stepped down to {level} after {:?}",
            at - last
        );
        last = at;
    }
    run(
        &mut engine,
        Duration::from_millis(300),
        &mut out,
        &mut levels,
    );
    assert!(engine.phrase_index() > looped, "the music moves on again");

    // Continuity over the whole run.
    assert!(out.iter().all(|x| x.is_finite()));
    let jump = max_step(&out[48_000..]);
    assert!(
        jump <= music_jump * 1.25 + 1e-3,
        "a jump of {jump} against the music's own {music_jump}"
    );
    for (i, window) in out[24_000..].chunks(4_800).enumerate() {
        let rms = (window.iter().map(|x| x * x).sum::<f32>() / window.len() as f32).sqrt();
        assert!(rms > 1e-4, "silent 100 ms window {i}");
    }
}

#[test]
fn a_pinned_level_applies_offline_too() {
    let mut engine = Engine::new(EngineConfig {
        mode: RenderMode::Offline,
        ..config()
    })
    .expect("engine");
    engine.set_level_pin(Some(Level::Critical));
    let (mut l, mut r) = (vec![0.0; 4_800], vec![0.0; 4_800]);
    let mut melody_voices = 0;
    for block in 0..40 {
        engine.process(&mut l, &mut r);
        if block >= 10 {
            melody_voices = melody_voices.max(engine.active_voices().1);
        }
    }
    assert_eq!(engine.level(), Level::Critical);
    assert_eq!(melody_voices, 0, "critical composes chords only");
    engine.set_level_pin(None);
    assert_eq!(
        engine.level(),
        Level::Normal,
        "offline, nothing else degrades"
    );
}

/// A bounce (a freewheeling host) does not degrade, however loaded the audio
/// thread looks; back in real time the machine starts afresh at normal rather
/// than stepping down from where it was, one hold time per level.
#[test]
fn a_bounce_does_not_degrade_and_real_time_starts_afresh() {
    let mut engine = engine();
    let (mut out, mut levels) = (Vec::new(), Vec::new());
    engine.simulate_audio_load(5.0);
    let start = Instant::now();
    while engine.level() < Level::Critical {
        assert!(start.elapsed() < Duration::from_secs(5), "never degraded");
        run(
            &mut engine,
            Duration::from_millis(20),
            &mut out,
            &mut levels,
        );
    }
    engine.set_run_mode(RunMode::Freewheel);
    assert_eq!(engine.level(), Level::Normal);
    levels.clear();
    run(
        &mut engine,
        Duration::from_millis(300),
        &mut out,
        &mut levels,
    );
    assert!(
        levels.iter().all(|(_, l)| *l == Level::Normal),
        "{levels:?}"
    );
    assert_eq!(engine.status().run_mode, RunMode::Freewheel);
    engine.simulate_audio_load(0.0);
    engine.set_run_mode(RunMode::RealTime);
    levels.clear();
    // Less than one hold time: stepping down from critical would still be there.
    run(
        &mut engine,
        Duration::from_millis(200),
        &mut out,
        &mut levels,
    );
    assert!(
        levels.iter().all(|(_, l)| *l == Level::Normal),
        "{levels:?}"
    );
    assert_eq!(engine.status().run_mode, RunMode::RealTime);
}

#[test]
fn before_the_hosts_pace_is_known_nothing_degrades_and_nothing_is_waited_for() {
    let mut engine = engine();
    engine.set_run_mode(RunMode::Starting);
    engine.simulate_audio_load(5.0);
    // A host whose playhead starts in the middle of phrase 3 (phrases of 4
    // beats): neither that phrase nor its texture can be ready yet.
    engine.seek_beats(3.0 * 4.0 + 1.5);
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    engine.process(&mut l, &mut r);
    let audible = |e: &Engine| e.renderer_status().is_some_and(|s| s.texture_audible);
    // A bounce would have waited for the texture and started with it.
    assert!(!audible(&engine), "the first block waited for the texture");
    // Played on, the pad carries until the texture comes, then it is heard.
    let (mut out, mut levels) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while !audible(&engine) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the texture never came: {:?}",
            engine.status()
        );
        run(
            &mut engine,
            Duration::from_millis(20),
            &mut out,
            &mut levels,
        );
    }
    assert!(out.iter().all(|x| x.is_finite()));
    assert!(out.iter().any(|x| x.abs() > 1e-3), "silent");
    // A load of five times the deadline changed nothing while starting.
    assert!(
        levels.iter().all(|(_, l)| *l == Level::Normal),
        "{levels:?}"
    );
    assert_eq!(engine.status().run_mode, RunMode::Starting);
}
