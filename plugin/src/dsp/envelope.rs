//! ADSR envelope with exponential segments that reach their end in finite time.
//!
//! Each segment is a one-pole recurrence `level ← level·k + target·(1 - k)` aimed
//! past its end point ("target overshoot", the technique of analog envelope
//! generators and of Nigel Redmon's EarLevel `ADSR`, 2013). Aiming at
//! `end + r·(end - start)` makes the curve hit `end` after exactly the segment time
//! (from the nominal start), where it switches to the next segment:
//!
//! `k = (r / (1 + r))^(1 / samples)`.
//!
//! Attack aims 30 % past 1 (a gently convex rise); decay and release aim 0.1 %
//! past their end (close to linear-in-decibels, the natural sound of a decay).
//! The state is `f64` so that segments of many seconds at 768 kHz keep their timing.
//! Every segment starts from the current level, so retriggering and releasing never
//! click.

use super::{finite_or, sanitize_sample_rate};

/// Attack overshoot ratio `r` (aim 30 % past full level).
const ATTACK_OVERSHOOT: f64 = 0.3;
/// Decay and release overshoot ratio `r` (aim 0.1 % of the drop past the end).
const FALL_OVERSHOOT: f64 = 0.001;
/// Below this level a release ends: the envelope snaps to 0 and goes idle.
const IDLE_LEVEL: f64 = 1.0e-4;
/// Rounding slack when testing whether a segment has reached its end.
const END_SLACK: f64 = 1.0e-9;
/// Longest accepted segment time, in seconds.
const MAX_SEGMENT_S: f32 = 120.0;

/// Envelope times and sustain level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdsrParams {
    /// Time from 0 to full level, in seconds (0..=120; typical 0.001..10).
    pub attack_s: f32,
    /// Time from full level down to the sustain level, in seconds (0..=120).
    pub decay_s: f32,
    /// Sustain level, 0..=1.
    pub sustain: f32,
    /// Time from full level down to silence, in seconds (0..=120; typical ≤ 20);
    /// shorter when released from a lower level.
    pub release_s: f32,
}

impl Default for AdsrParams {
    /// 10 ms attack, 300 ms decay, sustain 0.7, 500 ms release.
    fn default() -> Self {
        Self {
            attack_s: 0.01,
            decay_s: 0.3,
            sustain: 0.7,
            release_s: 0.5,
        }
    }
}

/// One exponential segment: `level ← level·coef + base`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    coef: f64,
    base: f64,
}

impl Segment {
    /// A segment from `start` to `end` over `seconds`, aimed `overshoot` past `end`.
    fn new(sample_rate: f32, seconds: f32, start: f64, end: f64, overshoot: f64) -> Self {
        let samples = (f64::from(seconds) * f64::from(sample_rate)).max(1.0);
        let coef = (overshoot / (1.0 + overshoot)).powf(1.0 / samples);
        let target = end + overshoot * (end - start);
        Self {
            coef,
            base: target * (1.0 - coef),
        }
    }
}

/// Per-sample coefficients of an [`Adsr`] for one sample rate and parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdsrCoefs {
    attack: Segment,
    decay: Segment,
    release: Segment,
    sustain: f64,
}

impl AdsrCoefs {
    /// Coefficients for `params` at `sample_rate` hertz. Out-of-range or non-finite
    /// parameters are clamped or replaced by the defaults.
    #[must_use]
    pub fn new(sample_rate: f32, params: AdsrParams) -> Self {
        let sr = sanitize_sample_rate(sample_rate);
        let d = AdsrParams::default();
        let time = |t: f32, fallback: f32| finite_or(t, fallback).clamp(0.0, MAX_SEGMENT_S);
        let sustain = f64::from(finite_or(params.sustain, d.sustain).clamp(0.0, 1.0));
        Self {
            attack: Segment::new(
                sr,
                time(params.attack_s, d.attack_s),
                0.0,
                1.0,
                ATTACK_OVERSHOOT,
            ),
            decay: Segment::new(
                sr,
                time(params.decay_s, d.decay_s),
                1.0,
                sustain,
                FALL_OVERSHOOT,
            ),
            release: Segment::new(
                sr,
                time(params.release_s, d.release_s),
                1.0,
                0.0,
                FALL_OVERSHOOT,
            ),
            sustain,
        }
    }
}

/// Where the envelope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Sustain,
    Release,
}

/// An ADSR envelope generator, output in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adsr {
    sample_rate: f32,
    params: AdsrParams,
    coefs: AdsrCoefs,
    stage: Stage,
    level: f64,
}

impl Adsr {
    /// An idle envelope with default parameters at `sample_rate` hertz (may be a
    /// control rate).
    #[must_use]
    pub fn new(sample_rate: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let params = AdsrParams::default();
        Self {
            sample_rate,
            params,
            coefs: AdsrCoefs::new(sample_rate, params),
            stage: Stage::Idle,
            level: 0.0,
        }
    }

    /// Changes the rate at which `process` is called (hertz), keeping times in seconds.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sanitize_sample_rate(sample_rate);
        self.coefs = AdsrCoefs::new(self.sample_rate, self.params);
    }

    /// Sets times and sustain level; takes effect on the next sample (a running
    /// segment continues from its current level with the new rate).
    pub fn set_params(&mut self, params: AdsrParams) {
        self.params = params;
        self.coefs = AdsrCoefs::new(self.sample_rate, params);
    }

    /// The parameters last set.
    #[must_use]
    pub fn params(&self) -> AdsrParams {
        self.params
    }

    /// Starts (or restarts) the attack from the current level.
    pub fn note_on(&mut self) {
        self.stage = Stage::Attack;
    }

    /// Starts the release from the current level (no effect when idle).
    pub fn note_off(&mut self) {
        if self.stage != Stage::Idle {
            self.stage = Stage::Release;
        }
    }

    /// Idle at level 0.
    pub fn reset(&mut self) {
        self.stage = Stage::Idle;
        self.level = 0.0;
    }

    /// Whether the envelope is sounding (false once a release has finished).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.stage != Stage::Idle
    }

    /// Whether the envelope is in its release segment.
    #[must_use]
    pub fn is_releasing(&self) -> bool {
        self.stage == Stage::Release
    }

    /// The current level, `[0, 1]`.
    #[must_use]
    pub fn level(&self) -> f32 {
        self.level as f32
    }

    /// Advances one sample and returns the new level, `[0, 1]`.
    #[inline]
    pub fn process(&mut self) -> f32 {
        let c = &self.coefs;
        match self.stage {
            Stage::Idle => {}
            Stage::Attack => {
                self.level = self.level * c.attack.coef + c.attack.base;
                if self.level >= 1.0 - END_SLACK {
                    self.level = 1.0;
                    self.stage = Stage::Decay;
                }
            }
            Stage::Decay => {
                self.level = self.level * c.decay.coef + c.decay.base;
                if self.level <= c.sustain + END_SLACK {
                    self.level = c.sustain;
                    self.stage = Stage::Sustain;
                }
            }
            Stage::Sustain => {
                // Exact while the sustain level is unchanged; glides at the decay
                // rate when it moves.
                self.level = c.sustain + (self.level - c.sustain) * c.decay.coef;
            }
            Stage::Release => {
                self.level = self.level * c.release.coef + c.release.base;
                if self.level < IDLE_LEVEL {
                    self.level = 0.0;
                    self.stage = Stage::Idle;
                }
            }
        }
        self.level as f32
    }

    /// Overwrites `out` with the next `out.len()` levels.
    pub fn process_block(&mut self, out: &mut [f32]) {
        for o in out {
            *o = self.process();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;

    fn env(p: AdsrParams) -> Adsr {
        let mut e = Adsr::new(SR);
        e.set_params(p);
        e
    }

    #[test]
    fn attack_reaches_full_level_within_attack_time() {
        for attack_s in [0.001, 0.05, 1.0, 10.0] {
            let mut e = env(AdsrParams {
                attack_s,
                ..AdsrParams::default()
            });
            e.note_on();
            let mut n = 0usize;
            while e.process() < 0.99 {
                n += 1;
                assert!(n < 2_000_000, "never reached");
            }
            let limit = (attack_s * SR) as usize + 2;
            assert!(n <= limit, "attack {attack_s}: {n} > {limit}");
            // And not much earlier than the 0.99 point of the curve.
            assert!(
                n as f32 >= 0.85 * attack_s * SR - 2.0,
                "attack {attack_s}: {n}"
            );
        }
    }

    #[test]
    fn attack_time_holds_at_high_sample_rates() {
        let mut e = Adsr::new(768_000.0);
        e.set_params(AdsrParams {
            attack_s: 10.0,
            ..AdsrParams::default()
        });
        e.note_on();
        let mut n = 0usize;
        while e.process() < 1.0 {
            n += 1;
        }
        let expected = 7_680_000.0;
        assert!((n as f64 / expected - 1.0).abs() < 1e-3, "{n}");
    }

    #[test]
    fn decays_to_sustain_and_releases_to_idle() {
        let p = AdsrParams {
            attack_s: 0.01,
            decay_s: 0.1,
            sustain: 0.5,
            release_s: 0.2,
        };
        let mut e = env(p);
        e.note_on();
        for _ in 0..(0.12 * SR) as usize {
            e.process();
        }
        assert_eq!(e.level(), 0.5);
        assert!(e.is_active());
        e.note_off();
        assert!(e.is_releasing());
        let mut n = 0usize;
        while e.is_active() {
            let v = e.process();
            assert!((0.0..=0.5).contains(&v));
            n += 1;
            assert!(n < (p.release_s * SR) as usize + 2, "release too long");
        }
        assert_eq!(e.level(), 0.0);
        // Released from 0.5, it takes most of the nominal time (exponential curve).
        assert!(n as f32 > 0.8 * p.release_s * SR, "release too short: {n}");
        assert_eq!(e.process(), 0.0);
    }

    #[test]
    fn retrigger_and_release_are_continuous() {
        let p = AdsrParams {
            attack_s: 0.05,
            decay_s: 0.2,
            sustain: 0.6,
            release_s: 1.0,
        };
        let mut e = env(p);
        e.note_on();
        let mut prev = 0.0;
        let mut max_step = 0.0_f32;
        for i in 0..(2.0 * SR) as usize {
            if i == 3_000 || i == 30_000 {
                e.note_off();
            }
            if i == 20_000 || i == 40_000 {
                e.note_on();
            }
            let v = e.process();
            max_step = max_step.max((v - prev).abs());
            prev = v;
        }
        // The steepest step is the attack's first one, 1.3·(1 - k) ≈ 9e-4.
        assert!(max_step < 2e-3, "max step {max_step}");
    }

    #[test]
    fn sustain_change_glides() {
        let mut e = env(AdsrParams {
            attack_s: 0.0,
            decay_s: 0.05,
            sustain: 0.8,
            release_s: 0.1,
        });
        e.note_on();
        for _ in 0..5_000 {
            e.process();
        }
        assert_eq!(e.level(), 0.8);
        e.set_params(AdsrParams {
            attack_s: 0.0,
            decay_s: 0.05,
            sustain: 0.2,
            release_s: 0.1,
        });
        let first = e.process();
        assert!(first > 0.7, "jumped to {first}");
        for _ in 0..48_000 {
            e.process();
        }
        assert!((e.level() - 0.2).abs() < 1e-4);
    }

    #[test]
    fn degenerate_params_do_not_panic() {
        let mut e = env(AdsrParams {
            attack_s: f32::NAN,
            decay_s: -1.0,
            sustain: f32::INFINITY,
            release_s: 1e30,
        });
        e.note_on();
        for _ in 0..100 {
            let v = e.process();
            assert!((0.0..=1.0).contains(&v));
        }
        e.note_off();
        assert!(e.process().is_finite());
        let mut z = Adsr::new(0.0);
        z.set_params(AdsrParams {
            attack_s: 0.0,
            decay_s: 0.0,
            sustain: 0.0,
            release_s: 0.0,
        });
        z.note_on();
        assert_eq!(z.process(), 1.0);
        assert_eq!(z.process(), 0.0);
        z.note_off();
        z.process();
        assert!(!z.is_active());
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let mut a = env(AdsrParams {
            attack_s: 0.01,
            decay_s: 0.02,
            sustain: 0.4,
            release_s: 0.03,
        });
        let run = |e: &mut Adsr, block: bool| -> Vec<f32> {
            let mut out = vec![0.0; 4_000];
            e.note_on();
            if block {
                e.process_block(&mut out[..1_500]);
            } else {
                for o in &mut out[..1_500] {
                    *o = e.process();
                }
            }
            e.note_off();
            if block {
                e.process_block(&mut out[1_500..]);
            } else {
                for o in &mut out[1_500..] {
                    *o = e.process();
                }
            }
            out
        };
        let mut b = a;
        let block = run(&mut a, true);
        let single = run(&mut b, false);
        assert_eq!(block, single);
        a.reset();
        assert!(!a.is_active());
        assert_eq!(run(&mut a, true), block);
    }
}
