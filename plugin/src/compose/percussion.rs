//! Percussion: sparse soft kicks on bar downbeats and occasional noise swells.
//!
//! The kick interval (2, 3 or 4 bars) is drawn once per phrase, leaning shorter as
//! intensity rises. Swells are Bernoulli trials, a few per phrase, whose
//! probability grows with intensity; each rises over 2–8 beats into a bar line at
//! or before the phrase end, so it crests on a downbeat.

use super::phrase::{ComposeParams, PercEvent, PercKind};
use crate::rng::Rng;

/// Fewest and most bars between kicks.
pub const KICK_INTERVAL_BARS: (u32, u32) = (2, 4);
/// Softest and loudest kick velocity.
pub const KICK_VELOCITY: (f32, f32) = (0.3, 0.7);
/// Shortest and longest swell rise, in beats.
pub const SWELL_BEATS: (u32, u32) = (2, 8);

/// Composes the percussion of one phrase, sorted by `start_beat`.
pub fn compose_percussion(params: &ComposeParams, rng: &mut Rng) -> Vec<PercEvent> {
    let intensity = params.intensity.clamp(0.0, 1.0);
    let bars = params.bars;
    // Valid parameters have at least two beats a bar; never divide by zero.
    let beats_per_bar = params.beats_per_bar.max(1);
    let phrase_beats = bars * beats_per_bar;

    // Interval 2, 3 or 4 bars: mostly 4 when calm, mostly 2 when busy.
    let interval = KICK_INTERVAL_BARS.0
        + rng.weighted(&[
            1.6f32.mul_add(intensity, 0.2),
            0.8,
            1.6f32.mul_add(-intensity, 1.8),
        ]) as u32;
    let swell_trials = 1 + bars / 4;
    let mut events = Vec::with_capacity((bars / interval + 1 + swell_trials) as usize);

    let loudest = (0.2 * intensity + 0.45).min(KICK_VELOCITY.1);
    let mut bar = 0;
    while bar < bars {
        let lift = if bar == 0 { 0.05 } else { 0.0 };
        let velocity = (rng.range_f32(KICK_VELOCITY.0, loudest) + lift)
            .clamp(KICK_VELOCITY.0, KICK_VELOCITY.1);
        events.push(PercEvent {
            start_beat: f64::from(bar * beats_per_bar),
            beats: 0.0,
            kind: PercKind::Kick,
            velocity,
        });
        bar += interval;
    }

    let swell_chance = 0.6f32.mul_add(intensity, 0.12);
    for _ in 0..swell_trials {
        if !rng.chance(swell_chance) {
            continue;
        }
        // A bar line to crest on, far enough in for a two-beat rise.
        let first_end_bar = SWELL_BEATS.0.div_ceil(beats_per_bar).max(1);
        if first_end_bar > bars {
            break;
        }
        let end_bar = first_end_bar + rng.below(bars - first_end_bar + 1);
        let end_beat = end_bar * beats_per_bar;
        let longest = SWELL_BEATS.1.min(end_beat);
        let rise = SWELL_BEATS.0 + rng.below(longest - SWELL_BEATS.0 + 1);
        let velocity = rng.range_f32(0.2, 0.3f32.mul_add(intensity, 0.3));
        events.push(PercEvent {
            start_beat: f64::from(end_beat - rise),
            beats: f64::from(rise),
            kind: PercKind::Swell,
            velocity,
        });
    }
    debug_assert!(events
        .iter()
        .all(|e| e.start_beat + e.beats <= f64::from(phrase_beats)));

    events.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(intensity: f32, bars: u32, beats_per_bar: u32) -> ComposeParams {
        ComposeParams {
            intensity,
            bars,
            beats_per_bar,
            ..ComposeParams::default()
        }
    }

    #[test]
    fn kicks_on_downbeats_spaced_two_to_four_bars() {
        for seed in 0..500 {
            let p = params((seed % 11) as f32 / 10.0, 8, 4);
            let events = compose_percussion(&p, &mut Rng::new(seed));
            let kicks: Vec<f64> = events
                .iter()
                .filter(|e| e.kind == PercKind::Kick)
                .map(|e| e.start_beat)
                .collect();
            assert_eq!(kicks.first().copied(), Some(0.0));
            for k in &kicks {
                assert!((k % 4.0).abs() < 1e-9, "downbeat: {kicks:?}");
            }
            let gaps: Vec<f64> = kicks.windows(2).map(|w| (w[1] - w[0]) / 4.0).collect();
            for g in &gaps {
                assert!((2.0..=4.0).contains(g), "{kicks:?}");
            }
            // One interval per phrase.
            assert!(gaps.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-9));
            for e in &events {
                if e.kind == PercKind::Kick {
                    assert!((0.3..=0.7).contains(&e.velocity), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn intensity_shortens_kick_interval_and_adds_swells() {
        let stats = |intensity: f32| {
            let (mut kicks, mut swells) = (0usize, 0usize);
            for seed in 0..2000 {
                let events = compose_percussion(&params(intensity, 8, 4), &mut Rng::new(seed));
                kicks += events.iter().filter(|e| e.kind == PercKind::Kick).count();
                swells += events.iter().filter(|e| e.kind == PercKind::Swell).count();
            }
            (kicks, swells)
        };
        let (calm_kicks, calm_swells) = stats(0.0);
        let (busy_kicks, busy_swells) = stats(1.0);
        assert!(busy_kicks > calm_kicks * 5 / 4, "{calm_kicks} {busy_kicks}");
        assert!(busy_swells > calm_swells * 3, "{calm_swells} {busy_swells}");
    }

    #[test]
    fn swells_fit_inside_the_phrase_and_events_are_sorted() {
        for seed in 0..2000 {
            let bars = 1 + (seed % 9) as u32;
            let bpb = 2 + (seed % 11) as u32;
            let p = params(1.0, bars, bpb);
            let events = compose_percussion(&p, &mut Rng::new(seed));
            let end = p.phrase_beats();
            assert!(events
                .windows(2)
                .all(|w| w[0].start_beat <= w[1].start_beat));
            for e in &events {
                assert!(e.start_beat >= 0.0 && e.start_beat < end, "{e:?}");
                if e.kind == PercKind::Swell {
                    assert!((2.0..=8.0).contains(&e.beats), "{e:?}");
                    assert!(e.start_beat + e.beats <= end, "{e:?} {end}");
                }
                assert!((0.0..=1.0).contains(&e.velocity));
            }
        }
    }
}
