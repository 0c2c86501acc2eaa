//! Sound checks on a 60 s offline render of every preset: loudness (EBU R 128),
//! true peak, DC offset, and no NaN, infinity or subnormal sample.

use auralis::compose::presets::PRESETS;
use auralis::engine::EngineConfig;
use auralis::offline::render_to_vecs;
use auralis::render::RenderMode;
use ebur128::{EbuR128, Mode};

const SAMPLE_RATE: u32 = 48_000;
const SECONDS: usize = 60;

#[test]
fn every_preset_is_mastered() {
    let mut failures = Vec::new();
    for preset in &PRESETS {
        let [left, right] = render_to_vecs(
            EngineConfig {
                sample_rate: SAMPLE_RATE as f32,
                seed: 11,
                compose: preset.compose,
                levels: preset.levels,
                mode: RenderMode::Offline,
            },
            SAMPLE_RATE as usize * SECONDS,
        )
        .expect("engine");
        let name = preset.name;

        for (ch, samples) in [("left", &left), ("right", &right)] {
            assert!(
                samples.iter().all(|x| x.is_finite()),
                "{name}: non-finite sample on the {ch} channel"
            );
            assert!(
                !samples.iter().any(|x| x.is_subnormal()),
                "{name}: subnormal sample on the {ch} channel"
            );
            let dc = samples.iter().map(|&x| f64::from(x)).sum::<f64>() / samples.len() as f64;
            assert!(
                dc.abs() < 0.001,
                "{name}: DC offset {dc} on the {ch} channel"
            );
        }

        let mut meter = EbuR128::new(2, SAMPLE_RATE, Mode::I | Mode::TRUE_PEAK).expect("meter");
        meter
            .add_frames_planar_f32(&[&left, &right])
            .expect("frames");
        let lufs = meter.loudness_global().expect("loudness");
        let true_peak = (0..2)
            .map(|ch| meter.true_peak(ch).expect("true peak"))
            .fold(0.0f64, f64::max);
        let true_peak_db = 20.0 * true_peak.log10();
        eprintln!("{name}: {lufs:.1} LUFS, true peak {true_peak_db:.1} dBTP");
        if !(-21.0..=-15.0).contains(&lufs) {
            failures.push(format!(
                "{name}: integrated loudness {lufs:.1} LUFS, want -18 ± 3"
            ));
        }
        if true_peak_db > -1.0 {
            failures.push(format!(
                "{name}: true peak {true_peak_db:.2} dBTP, want at most -1"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
