//! `degrade_reaction_ms`: from the load crossing a bound to the change being
//! audible, with the engine's default monitor (one sample a second). The engine
//! runs paced at real time in 10 ms blocks; at a random phase of the monitor's
//! period the audio thread's measured load is raised past the `critical` bound,
//! and the time until the renderer applies the level is measured, plus the 40 ms
//! fade that makes it audible. Prints one `name value unit` line (the median of
//! five trials) for `cargo xtask bench`.

use std::time::{Duration, Instant};

use auralis::compose::presets::preset;
use auralis::degrade::monitor::MonitorConfig;
use auralis::degrade::Level;
use auralis::engine::{Engine, EngineConfig};
use auralis::render::RenderMode;

/// The melody and percussion fade once the renderer applies `critical`.
const FADE_MS: f64 = 40.0;
const BLOCK: usize = 480;
const TRIALS: usize = 5;

fn trial(offset: Duration) -> f64 {
    let p = preset("focus").expect("the focus preset exists");
    let mut engine = Engine::with_monitor(
        EngineConfig {
            sample_rate: 48_000.0,
            seed: 3,
            compose: p.compose,
            levels: p.levels,
            mode: RenderMode::RealTime,
        },
        MonitorConfig {
            sample_cpu: false,
            ..MonitorConfig::default()
        },
    )
    .expect("engine");
    let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
    let block = Duration::from_secs_f64(BLOCK as f64 / 48_000.0);
    let start = Instant::now();
    let mut next = start;
    let mut crossed: Option<Instant> = None;
    loop {
        engine.process(&mut l, &mut r);
        let now = Instant::now();
        if crossed.is_none() && now - start >= Duration::from_secs(2) + offset {
            engine.simulate_audio_load(0.9);
            crossed = Some(now);
        }
        if let Some(at) = crossed {
            if engine.level() >= Level::Critical {
                // Applied at the start of the next block, audible after the fade.
                return (now - at).as_secs_f64() * 1e3 + block.as_secs_f64() * 1e3 + FADE_MS;
            }
            assert!(
                now - at < Duration::from_secs(10),
                "the level never changed"
            );
        }
        next += block;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn main() {
    let mut ms: Vec<f64> = (0..TRIALS)
        .map(|i| trial(Duration::from_millis(200 * i as u64)))
        .collect();
    ms.sort_by(f64::total_cmp);
    eprintln!("degrade_reaction trials (ms): {ms:.0?}");
    let mut out = std::io::stdout().lock();
    std::io::Write::write_fmt(
        &mut out,
        format_args!("degrade_reaction_ms {:.0} ms\n", ms[TRIALS / 2]),
    )
    .expect("stdout");
}
