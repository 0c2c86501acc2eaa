//! Texture pre-renderer benchmarks. One iteration of `prerender/rtf_cpu` or
//! `prerender/rtf_gpu` renders the texture of one 8-bar phrase at 60 BPM (32 s) of
//! five-note chords at 48 kHz, so the real-time factor is `32 s / mean time`
//! (`prerender_rtf_cpu`, `prerender_rtf_gpu`). `prerender/first_phrase` is one
//! request to a running pre-renderer thread until its texture is ready
//! (`prerender_first_phrase_ms` = mean time in ms).
//!
//! The GPU bench needs an adapter: under `CI=true` a missing one fails the bench;
//! elsewhere it is skipped with a message.

use std::hint::black_box;
use std::time::Duration;

use auralis::compose::phrase::{Chord, ComposeParams, Phrase};
use auralis::compose::Composer;
use auralis::prerender::cpu::CpuRenderer;
use auralis::prerender::gpu::{GpuContext, GpuRenderer};
use auralis::prerender::pool::PoolConfig;
use auralis::prerender::recovery::PrerenderConfig;
use auralis::prerender::texture::{Quality, TextureDesc};
use auralis::prerender::worker::{PrerenderWorker, WorkerConfig};
use criterion::{criterion_group, criterion_main, Criterion};

const SR: f32 = 48_000.0;
const SEED: u64 = 7;

/// Phrase 0 of the default parameters (8 bars of 4 at 60 BPM) with every chord
/// voiced as five notes.
fn phrase() -> Phrase {
    let mut p = Composer::new(SEED, ComposeParams::default()).seek(0);
    for event in &mut p.chords {
        let root = event.chord.notes().first().copied().unwrap_or(50);
        event.chord = Chord::new(
            event.chord.degree,
            &[root, root + 7, root + 12, root + 16, root + 19],
        );
    }
    p
}

fn rtf_cpu(c: &mut Criterion) {
    let desc = TextureDesc::build(SEED, &phrase(), SR, Quality::FULL);
    let n = desc.frames as usize;
    let (mut l, mut r) = (vec![0.0_f32; n], vec![0.0_f32; n]);
    let mut cpu = CpuRenderer::new();
    let mut group = c.benchmark_group("prerender");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("rtf_cpu", |b| {
        b.iter(|| {
            cpu.render(black_box(&desc), &mut l, &mut r).expect("fits");
        });
    });
    group.finish();
}

fn rtf_gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but no GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("skipping prerender/rtf_gpu: {e}");
            return;
        }
    };
    let mut gpu = GpuRenderer::new(ctx).expect("kernels build");
    eprintln!("prerender/rtf_gpu on {}", gpu.adapter_name());
    let desc = TextureDesc::build(SEED, &phrase(), SR, Quality::FULL);
    let n = desc.frames as usize;
    let (mut l, mut r) = (vec![0.0_f32; n], vec![0.0_f32; n]);
    let mut group = c.benchmark_group("prerender");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("rtf_gpu", |b| {
        b.iter(|| {
            gpu.render(black_box(&desc), &mut l, &mut r)
                .expect("GPU render");
        });
    });
    group.finish();
}

fn first_phrase(c: &mut Criterion) {
    let params = ComposeParams::default();
    let config = WorkerConfig {
        prerender: PrerenderConfig::from_env(SEED, SR).expect("valid environment"),
        pool: PoolConfig::for_params(&params, SR),
    };
    let (worker, mut requester, mut feed) = PrerenderWorker::spawn(config).expect("thread");
    let composer = Composer::new(SEED, params);
    let mut index = 0_u64;
    let mut group = c.benchmark_group("prerender");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("first_phrase", |b| {
        b.iter(|| {
            // A seek: a phrase the pre-renderer has not seen.
            index += 1;
            requester.request(composer.seek(index)).expect("room");
            let t = feed
                .take_blocking(index, Duration::from_secs(120))
                .expect("texture");
            feed.give_back(black_box(t));
        });
    });
    group.finish();
    drop(worker);
}

criterion_group!(benches, rtf_cpu, rtf_gpu, first_phrase);
criterion_main!(benches);
