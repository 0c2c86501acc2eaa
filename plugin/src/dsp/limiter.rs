//! Stereo-linked soft limiter: a peak leveller followed by a soft clipper.
//!
//! 1. Leveller: the linked peak `max(|l|, |r|)` drives an envelope with instant
//!    attack and exponential release (a peak-hold "branching" detector; Giannoulis,
//!    Massberg & Reiss, "Digital Dynamic Range Compressor Design — A Tutorial and
//!    Analysis", JAES 60(6), 2012). Above the threshold it applies a 4:1 gain
//!    reduction, `g = (threshold / env)^(3/4)`, computed with two square roots.
//! 2. Soft clipper: each sample above the threshold is bent onto
//!    `t + (c - t)·u / (1 + u)`, `u = (|y| - t) / (c - t)`, which has slope 1 at the
//!    threshold `t` and approaches the ceiling `c` without reaching it; a final clamp
//!    makes the ceiling hold against rounding too.
//!
//! Below the threshold both stages are exactly the identity. No look-ahead, so no
//! latency. Non-finite input samples become 0 and do not touch the envelope.

use super::{db_to_gain, finite_or, gain_to_db, sanitize, sanitize_sample_rate, stereo_block};

/// Lowest accepted threshold, in dBFS.
const MIN_THRESHOLD_DB: f32 = -60.0;
/// Lowest accepted ceiling, in dBFS.
const MIN_CEILING_DB: f32 = -40.0;
/// Smallest gap between threshold and ceiling, in dB.
const MIN_KNEE_DB: f32 = 0.1;
/// Accepted release range, in milliseconds.
const MIN_RELEASE_MS: f32 = 1.0;
/// Accepted release range, in milliseconds.
const MAX_RELEASE_MS: f32 = 10_000.0;

/// Limiter settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterParams {
    /// Level where limiting starts, in dBFS (clamped to `[-60, ceiling - 0.1]`).
    pub threshold_db: f32,
    /// Output peaks never exceed this, in dBFS (clamped to `[-40, 0]`).
    pub ceiling_db: f32,
    /// Envelope release time constant (the gain recovers by 1/e, about 8.7 dB of the
    /// envelope, every `release_ms`), in milliseconds (1..=10000).
    pub release_ms: f32,
}

impl Default for LimiterParams {
    /// Threshold -6 dBFS, ceiling -1.5 dBFS, release 250 ms.
    fn default() -> Self {
        Self {
            threshold_db: -6.0,
            ceiling_db: -1.5,
            release_ms: 250.0,
        }
    }
}

/// Per-sample constants for one parameter set and sample rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterCoefs {
    threshold: f32,
    ceiling: f32,
    /// `c - t`.
    knee: f32,
    /// `1 / (c - t)`.
    inv_knee: f32,
    /// Envelope multiplier per sample during release.
    release: f64,
}

impl LimiterCoefs {
    /// Constants for `params` at `sample_rate` hertz (out-of-range or non-finite
    /// parameters are clamped or replaced by the defaults).
    #[must_use]
    pub fn new(sample_rate: f32, params: LimiterParams) -> Self {
        let d = LimiterParams::default();
        let ceiling_db = finite_or(params.ceiling_db, d.ceiling_db).clamp(MIN_CEILING_DB, 0.0);
        let threshold_db = finite_or(params.threshold_db, d.threshold_db)
            .max(MIN_THRESHOLD_DB)
            .min(ceiling_db - MIN_KNEE_DB);
        let release_ms =
            finite_or(params.release_ms, d.release_ms).clamp(MIN_RELEASE_MS, MAX_RELEASE_MS);
        let threshold = db_to_gain(threshold_db);
        let ceiling = db_to_gain(ceiling_db);
        let knee = ceiling - threshold;
        let samples = f64::from(release_ms) * 1e-3 * f64::from(sanitize_sample_rate(sample_rate));
        Self {
            threshold,
            ceiling,
            knee,
            inv_knee: 1.0 / knee,
            release: (-1.0 / samples).exp(),
        }
    }
}

/// A stereo-linked soft limiter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limiter {
    sample_rate: f32,
    params: LimiterParams,
    coefs: LimiterCoefs,
    /// Peak envelope (linear).
    env: f64,
    /// Leveller gain applied to the last sample.
    gain: f32,
}

impl Limiter {
    /// A limiter with default parameters at `sample_rate` hertz.
    #[must_use]
    pub fn new(sample_rate: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let params = LimiterParams::default();
        Self {
            sample_rate,
            params,
            coefs: LimiterCoefs::new(sample_rate, params),
            env: 0.0,
            gain: 1.0,
        }
    }

    /// Changes the sample rate (hertz), keeping the release time in milliseconds.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sanitize_sample_rate(sample_rate);
        self.coefs = LimiterCoefs::new(self.sample_rate, self.params);
    }

    /// Sets threshold, ceiling and release.
    pub fn set_params(&mut self, params: LimiterParams) {
        self.params = params;
        self.coefs = LimiterCoefs::new(self.sample_rate, params);
    }

    /// Clears the envelope (no gain reduction).
    pub fn reset(&mut self) {
        self.env = 0.0;
        self.gain = 1.0;
    }

    /// The leveller's current gain reduction in dB (≥ 0; the soft clipper's
    /// sample-by-sample bending is not included).
    #[must_use]
    pub fn gain_reduction_db(&self) -> f32 {
        (-gain_to_db(self.gain)).max(0.0)
    }

    /// Limits one stereo sample.
    #[inline]
    pub fn process(&mut self, l: f32, r: f32) -> (f32, f32) {
        // Non-finite → 0 (leaving the envelope alone); huge values → ±1e6.
        let l = sanitize(l);
        let r = sanitize(r);
        let c = &self.coefs;
        let peak = f64::from(l.abs().max(r.abs()));
        self.env = peak.max(self.env * c.release);
        let threshold = f64::from(c.threshold);
        self.gain = if self.env > threshold {
            // (t / env)^(3/4): a 4:1 reduction of the envelope above the threshold.
            let q = threshold / self.env;
            let s = q.sqrt();
            (s * s.sqrt()) as f32
        } else {
            if self.env < 1e-30 {
                self.env = 0.0;
            }
            1.0
        };
        (self.shape(l * self.gain), self.shape(r * self.gain))
    }

    /// The soft clipper: identity up to the threshold, then a smooth bend that
    /// approaches the ceiling.
    #[inline]
    fn shape(&self, y: f32) -> f32 {
        let c = &self.coefs;
        let a = y.abs();
        if a <= c.threshold {
            y
        } else {
            let u = (a - c.threshold) * c.inv_knee;
            let bent = (c.threshold + c.knee * (u / (1.0 + u))).min(c.ceiling);
            bent.copysign(y)
        }
    }

    /// Limits `left`/`right` in place (pairs up to the shorter length).
    pub fn process_block(&mut self, left: &mut [f32], right: &mut [f32]) {
        stereo_block(left, right, |l, r| self.process(l, r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_util::{sine, white};
    use crate::rng::Rng;

    #[test]
    fn ceiling_is_never_exceeded() {
        let mut lim = Limiter::new(48_000.0);
        let ceiling = db_to_gain(-1.5);
        let mut rng = Rng::new(99);
        for i in 0..200_000 {
            let scale = match i % 4 {
                0 => 1.0,
                1 => 10.0,
                2 => 1e6,
                _ => 1e30,
            };
            let l = rng.next_bipolar() * scale;
            let r = rng.next_bipolar() * scale * 0.3;
            let (a, b) = lim.process(l, r);
            assert!(
                a.abs() <= ceiling && b.abs() <= ceiling,
                "{l} {r} -> {a} {b}"
            );
        }
        for x in [f32::MAX, -f32::MAX, 1e30, 3.0, 0.9] {
            let (a, b) = lim.process(x, -x);
            assert!(a.abs() <= ceiling && b.abs() <= ceiling);
        }
        // A different ceiling holds too.
        lim.set_params(LimiterParams {
            threshold_db: -20.0,
            ceiling_db: -12.0,
            release_ms: 5.0,
        });
        let c = db_to_gain(-12.0);
        for x in white(4, 10_000) {
            let (a, b) = lim.process(x * 100.0, x);
            assert!(a.abs() <= c && b.abs() <= c);
        }
    }

    #[test]
    fn transparent_below_threshold() {
        let mut lim = Limiter::new(44_100.0);
        let t = db_to_gain(-6.0);
        let x = sine(44_100.0, 440.0, 44_100);
        for &v in &x {
            let (a, b) = lim.process(v * t * 0.999, -v * 0.5);
            assert_eq!(a, v * t * 0.999);
            assert_eq!(b, -v * 0.5);
        }
        assert_eq!(lim.gain_reduction_db(), 0.0);
    }

    #[test]
    fn reduces_gain_above_threshold_then_releases() {
        let sr = 48_000.0;
        let mut lim = Limiter::new(sr);
        let x = sine(sr, 200.0, 24_000);
        for &v in &x {
            lim.process(v * 2.0, v * 2.0);
        }
        // Envelope 2.0 (+6 dBFS), 12 dB over a -6 dB threshold: 9 dB at 4:1.
        let gr = lim.gain_reduction_db();
        assert!((gr - 9.0).abs() < 0.3, "gain reduction {gr}");
        // After 2 s of silence it has recovered.
        for _ in 0..96_000 {
            lim.process(0.0, 0.0);
        }
        assert_eq!(lim.gain_reduction_db(), 0.0);
        let (a, _) = lim.process(0.25, 0.0);
        assert_eq!(a, 0.25);
    }

    #[test]
    fn non_finite_input_gives_zero_and_recovers() {
        let mut lim = Limiter::new(48_000.0);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(lim.process(bad, bad), (0.0, 0.0));
            let (a, b) = lim.process(bad, 0.1);
            assert_eq!(a, 0.0);
            assert_eq!(b, 0.1);
            assert_eq!(lim.gain_reduction_db(), 0.0);
            assert_eq!(lim.process(0.3, -0.3), (0.3, -0.3));
        }
    }

    #[test]
    fn degenerate_params_are_clamped() {
        let mut lim = Limiter::new(f32::NAN);
        lim.set_params(LimiterParams {
            threshold_db: 10.0,
            ceiling_db: 6.0,
            release_ms: f32::NAN,
        });
        for x in white(8, 1000) {
            let (a, b) = lim.process(x * 50.0, x);
            assert!(a.abs() <= 1.0 && b.abs() <= 1.0);
        }
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let input_l: Vec<f32> = white(1, 4_000).iter().map(|v| v * 3.0).collect();
        let input_r = white(2, 4_000);
        let mut a = Limiter::new(48_000.0);
        let mut b = a;
        let (mut l, mut r) = (input_l.clone(), input_r.clone());
        a.process_block(&mut l, &mut r);
        for i in 0..input_l.len() {
            assert_eq!(b.process(input_l[i], input_r[i]), (l[i], r[i]));
        }
        a.reset();
        let (mut l2, mut r2) = (input_l, input_r);
        a.process_block(&mut l2, &mut r2);
        assert_eq!((l, r), (l2, r2));
    }
}
