//! Engine benchmarks. `cargo xtask bench` turns the times into ratios:
//! `render_rtf` (offline real-time factor, texture layer included, as shipped),
//! `render_rtf_no_texture` (the same with the real-time pad alone) and
//! `engine_block_ratio` (time per 64-frame block ÷ the block's duration at 48 kHz).

use std::hint::black_box;
use std::time::Duration;

use auralis::compose::presets::preset;
use auralis::engine::{Engine, EngineConfig, TextureSetting};
use auralis::offline::{OfflineRenderer, BLOCK_FRAMES};
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

/// 60 s of the focus preset rendered offline, composition included, with the
/// texture layer (rendered on the CPU, as offline renders are) and without.
fn render_60s(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (id, texture) in [
        ("render_60s_focus", TextureSetting::FromEnv),
        ("render_60s_focus_no_texture", TextureSetting::Off),
    ] {
        group.bench_function(id, |b| {
            b.iter(|| {
                let mut r =
                    OfflineRenderer::with_texture(focus(RenderMode::Offline), texture.clone())
                        .expect("engine");
                let mut left = 48_000 * 60;
                while left > 0 {
                    let n = left.min(BLOCK_FRAMES);
                    black_box(r.next_block(n));
                    left -= n;
                }
            });
        });
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
