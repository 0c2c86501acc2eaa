//! Engine benchmarks. `cargo xtask bench` turns the times into ratios:
//! `render_rtf` (offline real-time factor on one core, texture layer included),
//! `render_rtf_all_cores` (the same with every core: `auralis-render`'s default),
//! `render_rtf_no_texture` (one core, the real-time pad alone) and
//! `engine_block_ratio` (time per 64-frame block ÷ the block's duration at 48 kHz).
//!
//! "One core": on Linux the bench thread, and so every thread the engine starts
//! from it, is pinned to a single CPU while it runs, and the texture renders on
//! one thread.

use std::hint::black_box;
use std::time::Duration;

use auralis::compose::presets::preset;
use auralis::engine::{Engine, EngineConfig, TextureSetting};
use auralis::offline::{default_threads, OfflineRenderer, BLOCK_FRAMES};
use auralis::render::RenderMode;
use criterion::{criterion_group, criterion_main, Criterion};

fn focus(mode: RenderMode) -> EngineConfig {
    let p = preset("focus").expect("the focus preset exists");
    EngineConfig {
        sample_rate: 48_000.0,
        seed: 7,
        compose: p.compose,
        levels: p.levels,
        mode,
    }
}

/// The calling thread's CPU set, and a set of its first CPU alone.
#[cfg(target_os = "linux")]
fn cpu_sets() -> (libc::cpu_set_t, libc::cpu_set_t) {
    // SAFETY: `cpu_set_t` is plain bits, valid all zero.
    let (mut all, mut one): (libc::cpu_set_t, libc::cpu_set_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: pid 0 is this thread; the size is the set's own.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut all) };
    assert_eq!(rc, 0, "sched_getaffinity");
    let first = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, inside the set.
        .find(|&c| unsafe { libc::CPU_ISSET(c, &all) })
        .unwrap_or(0);
    // SAFETY: as above.
    unsafe { libc::CPU_SET(first, &mut one) };
    (all, one)
}

/// Runs `f` with this thread (and every thread started meanwhile) on one CPU.
#[cfg(target_os = "linux")]
fn on_one_core(f: impl FnOnce()) {
    let set = |s: &libc::cpu_set_t| {
        // SAFETY: pid 0 is this thread; the set is initialised and sized.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), s) };
        assert_eq!(rc, 0, "sched_setaffinity");
    };
    let (all, one) = cpu_sets();
    set(&one);
    f();
    set(&all);
}

/// Elsewhere the figure is taken unpinned (the texture still on one thread).
#[cfg(not(target_os = "linux"))]
fn on_one_core(f: impl FnOnce()) {
    f();
}

/// 60 s of the focus preset rendered offline, composition included: with the
/// texture layer (rendered on the CPU, as offline renders are) on one core and on
/// every core, and without it on one core.
fn render_60s(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (id, texture, one_core) in [
        ("render_60s_focus", TextureSetting::FromEnv, true),
        ("render_60s_focus_all_cores", TextureSetting::FromEnv, false),
        ("render_60s_focus_no_texture", TextureSetting::Off, true),
    ] {
        let threads = if one_core { 1 } else { default_threads() };
        let mut bench = || {
            group.bench_function(id, |b| {
                b.iter(|| {
                    let mut r = OfflineRenderer::with_threads(
                        focus(RenderMode::Offline),
                        texture.clone(),
                        threads,
                    )
                    .expect("engine");
                    let mut left = 48_000 * 60;
                    while left > 0 {
                        let n = left.min(BLOCK_FRAMES);
                        black_box(r.next_block(n));
                        left -= n;
                    }
                });
            });
        };
        if one_core {
            on_one_core(bench);
        } else {
            bench();
        }
    }
    group.finish();
}

/// One 64-frame block of a warmed-up real-time engine at 48 kHz.
fn engine_block(c: &mut Criterion) {
    let mut engine = Engine::new(focus(RenderMode::RealTime)).expect("engine");
    let (mut l, mut r) = (vec![0.0f32; 64], vec![0.0f32; 64]);
    // Past the first swell so every layer is sounding.
    for _ in 0..48_000 * 20 / 64 {
        engine.process(&mut l, &mut r);
    }
    c.bench_function("engine_block_64_at_48k", |b| {
        b.iter(|| {
            engine.process(black_box(&mut l), black_box(&mut r));
        });
    });
}

criterion_group!(benches, render_60s, engine_block);
criterion_main!(benches);
