//! The texture layer through the running engine: the pad carries a cold start and
//! a seek and the texture fades in without a jump, phrase boundaries join without
//! a click, offline renders are reproducible and include the texture, every
//! injected pre-renderer fault leaves the audio finite and continuous, and the
//! degradation levels switch the texture off and lower its quality.

pub mod common;

use std::time::{Duration, Instant};

use auralis::compose::phrase::ComposeParams;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::Level;
use auralis::engine::{Engine, EngineConfig, TextureSetting};
use auralis::offline::OfflineRenderer;
use auralis::prerender::gpu::RendererChoice;
use auralis::prerender::{Backend, PrerenderConfig, Quality};
use auralis::render::RenderMode;
use common::max_step;

const SR: f32 = 16_000.0;
const BLOCK: usize = 512;

/// One bar at 240 BPM: a phrase a second.
fn config(mode: RenderMode) -> EngineConfig {
    EngineConfig {
        sample_rate: SR,
        seed: 9,
        compose: ComposeParams {
            bpm: 240.0,
            bars: 1,
            intensity: 0.6,
            ..ComposeParams::default()
        },
        mode,
        ..EngineConfig::default()
    }
}

fn cpu(faults: &str) -> TextureSetting {
    TextureSetting::With(PrerenderConfig {
        renderer: RendererChoice::Cpu,
        retry_pause: Duration::from_millis(1),
        faults: faults.parse().expect("valid fault spec"),
        ..PrerenderConfig::new(0, 0.0)
    })
}

/// A real-time engine whose level only a pin changes.
fn engine(texture: TextureSetting) -> Engine {
    let monitor = MonitorConfig {
        sample_cpu: false,
        ..MonitorConfig::default()
    };
    Engine::build(config(RenderMode::RealTime), monitor, texture).expect("engine")
}

/// Renders `blocks` blocks (pausing a little after each, so the other threads
/// keep up as in real time) and appends the left channel.
fn play(engine: &mut Engine, blocks: usize, out: &mut Vec<f32>) {
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    for _ in 0..blocks {
        engine.process(&mut l, &mut r);
        assert!(
            l.iter().chain(&r).all(|x| x.is_finite()),
            "non-finite audio"
        );
        out.extend_from_slice(&l);
        std::thread::sleep(Duration::from_millis(8));
    }
}

/// Plays until `done` holds (at most 20 s of wall time).
#[track_caller]
fn play_until(engine: &mut Engine, out: &mut Vec<f32>, done: impl Fn(&Engine) -> bool) {
    let start = Instant::now();
    while !done(engine) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never happened: {:?}",
            engine.status()
        );
        play(engine, 1, out);
    }
}

fn audible(engine: &Engine) -> bool {
    engine.status().renderer.is_some_and(|r| r.texture_audible)
}

/// The largest sample-to-sample step the music makes by itself, with the pad
/// alone and with the texture.
fn music_jump() -> f32 {
    let mut pad = engine(TextureSetting::Off);
    let mut out = Vec::new();
    play(&mut pad, 120, &mut out);
    let mut texture = engine(cpu(""));
    play_until(&mut texture, &mut out, audible);
    play(&mut texture, 120, &mut out);
    max_step(&out)
}

fn assert_continuous(out: &[f32], reference: f32, what: &str) {
    let jump = max_step(out);
    assert!(
        jump <= reference * 1.25 + 1e-3,
        "{what}: a jump of {jump} against the music's own {reference}"
    );
    for (i, w) in out[BLOCK * 4..].chunks(1_600).enumerate() {
        let rms = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
        assert!(rms > 1e-4, "{what}: silent 100 ms window {i}");
    }
}

#[test]
fn cold_start_pad_then_texture_then_seek() {
    let reference = music_jump();
    let mut e = engine(cpu(""));
    let mut out = Vec::new();
    play(&mut e, 1, &mut out);
    assert!(!audible(&e), "the pad carries the cold start");
    play_until(&mut e, &mut out, audible);
    play(&mut e, 40, &mut out);
    let status = e.status().renderer.expect("texture on");
    assert_eq!(status.stats.backend, Backend::Cpu);
    assert!(
        status.stats.attempts >= 1 && status.stats.failures == 0,
        "{status:?}"
    );
    assert!(
        status.texture_enabled && status.margin_s.is_some(),
        "{status:?}"
    );

    // A seek: the texture fades out, the pad carries, the new phrase's fades in
    // (the texture of phrase 40 may come before the fade-out is over, so it is
    // not always heard as a gap in the texture).
    e.seek_beats(4.0 * 40.0 + 1.0);
    play(&mut e, 1, &mut out);
    play_until(&mut e, &mut out, |e| {
        audible(e) && e.phrase_index() == Some(40)
    });
    play(&mut e, 40, &mut out);
    assert_continuous(&out, reference, "cold start and seek");
}

#[test]
fn phrase_boundaries_join_without_a_click() {
    // Offline: the texture is there from the first frame; one-second phrases.
    let frames = 6 * SR as usize;
    let mut r =
        OfflineRenderer::with_texture(config(RenderMode::Offline), cpu("")).expect("engine");
    let mut out = Vec::with_capacity(frames);
    while out.len() < frames {
        out.extend_from_slice(r.next_block(frames - out.len()).0);
    }
    let phrase = SR as usize;
    let mut inside = 0.0f32;
    let mut at_boundary = 0.0f32;
    for (i, w) in out.windows(2).enumerate().skip(phrase / 2) {
        let jump = (w[1] - w[0]).abs();
        let near = (i % phrase).min(phrase - i % phrase) < 160;
        if near {
            at_boundary = at_boundary.max(jump);
        } else {
            inside = inside.max(jump);
        }
    }
    assert!(
        at_boundary <= inside * 1.1,
        "at the boundaries a jump of {at_boundary}, inside phrases {inside}"
    );
    assert!(r.engine().status().renderer.expect("on").texture_audible);
}

#[test]
fn offline_renders_with_texture_are_reproducible() {
    let render = |texture| {
        let mut r =
            OfflineRenderer::with_texture(config(RenderMode::Offline), texture).expect("engine");
        let mut out = Vec::new();
        while out.len() < 3 * SR as usize {
            out.extend_from_slice(r.next_block(4_096).0);
        }
        out
    };
    let a = render(cpu(""));
    let b = render(cpu(""));
    let off = render(TextureSetting::Off);
    assert!(a == b, "same arguments, different audio");
    assert!(a != off, "the texture is not in the offline render");
}

#[test]
fn every_fault_keeps_the_audio_finite_and_continuous() {
    let reference = music_jump();
    for faults in [
        "render_nan:0.5",
        "render_error:0.6",
        "render_nan:1,render_error:1",
    ] {
        let mut e = engine(cpu(faults));
        let mut out = Vec::new();
        play(&mut e, 200, &mut out);
        assert_continuous(&out, reference, faults);
        let s = e.status().renderer.expect("texture on");
        assert!(
            s.stats.failures > 0 && s.stats.failure_rate > 0.0,
            "{faults}: {s:?}"
        );
    }
    // The GPU faults (on lavapipe in CI): the CPU takes over, nothing is lost.
    for faults in ["gpu_oom", "device_lost@0s", "shader_error", "gpu_oom:0.5"] {
        let gpu = TextureSetting::With(PrerenderConfig {
            renderer: RendererChoice::Gpu,
            gpu_cooldown: Duration::from_millis(50),
            retry_pause: Duration::from_millis(1),
            faults: faults.parse().expect("valid fault spec"),
            ..PrerenderConfig::new(0, 0.0)
        });
        let mut e = engine(gpu);
        let mut out = Vec::new();
        play_until(&mut e, &mut out, audible);
        play(&mut e, 120, &mut out);
        assert_continuous(&out, reference, faults);
        let s = e.status().renderer.expect("texture on");
        assert_eq!(s.stats.silenced, 0, "{faults}: {s:?}");
    }
}

#[test]
fn critical_turns_the_texture_off_and_high_load_lowers_its_quality() {
    let reference = music_jump();
    let mut e = engine(cpu(""));
    let mut out = Vec::new();
    play_until(&mut e, &mut out, audible);
    assert_eq!(
        e.status().renderer.expect("on").quality,
        Quality::FULL,
        "normal: full quality"
    );
    e.set_level_pin(Some(Level::HighLoad));
    play(&mut e, 20, &mut out);
    let s = e.status().renderer.expect("on");
    assert_eq!(s.quality, Quality::for_level(Level::HighLoad));
    assert!(s.quality.partials < Quality::FULL.partials);
    assert!(s.texture_audible);

    e.set_level_pin(Some(Level::Critical));
    play_until(&mut e, &mut out, |e| !audible(e));
    let s = e.status().renderer.expect("on");
    assert!(!s.texture_enabled && s.margin_s.is_none(), "{s:?}");
    assert!(e.pad_is_cheap());
    play(&mut e, 40, &mut out);

    // Overload loops the phrase in hand with its texture (if it has one).
    e.set_level_pin(Some(Level::Overload));
    play(&mut e, 60, &mut out);
    e.set_level_pin(Some(Level::Normal));
    play_until(&mut e, &mut out, audible);
    assert!(!e.pad_is_cheap());
    play(&mut e, 40, &mut out);
    assert_continuous(&out, reference, "levels");
}

/// A parameter change before the first block (a plugin's host tempo, a bounce's
/// first automation point) renders as if the engine had been built with it: the
/// texture starts with the first sample either way.
#[test]
fn a_change_before_the_first_block_renders_as_if_built_with_it() {
    let render = |initial_bpm: f32| {
        let mut c = config(RenderMode::Offline);
        c.compose.bpm = initial_bpm;
        let mut e = Engine::build(c, MonitorConfig::default(), cpu("")).expect("engine");
        let mut p = *e.compose_params();
        p.bpm = 120.0;
        e.set_compose_params(p).expect("in range");
        let (mut l, mut r) = (vec![0.0; 512], vec![0.0; 512]);
        let mut out = Vec::new();
        for _ in 0..200 {
            e.process(&mut l, &mut r);
            out.extend_from_slice(&l);
        }
        out
    };
    let built_with_it = render(120.0);
    for initial in [60.0, 300.0] {
        let changed = render(initial);
        let first = built_with_it.iter().zip(&changed).position(|(x, y)| x != y);
        assert!(
            first.is_none(),
            "from {initial} BPM: differs from frame {first:?}"
        );
    }
}
