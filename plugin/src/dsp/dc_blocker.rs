//! A stereo DC blocker: the one-pole, one-zero high-pass
//! `y[n] = x[n] - x[n-1] + R·y[n-1]` (J. O. Smith, "Introduction to Digital
//! Filters", DC blocker), with `R = exp(-2π·fc/fs)`.
//!
//! It costs one multiply-add per channel, against about four for a second-order
//! state-variable high-pass, which is all the master bus needs to keep DC and
//! sub-sonic drift out.

use super::{flush_tiny, sanitize, sanitize_sample_rate, stereo_block};

/// Default corner frequency in hertz.
pub const DEFAULT_CUTOFF_HZ: f32 = 15.0;

/// The stereo DC blocker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DcBlocker {
    pole: f32,
    cutoff_hz: f32,
    x1: [f32; 2],
    y1: [f32; 2],
}

impl DcBlocker {
    /// A DC blocker with its corner at `cutoff_hz` (clamped to 0.1 Hz..0.1·fs).
    #[must_use]
    pub fn new(sample_rate: f32, cutoff_hz: f32) -> Self {
        let mut d = Self {
            pole: 0.0,
            cutoff_hz,
            x1: [0.0; 2],
            y1: [0.0; 2],
        };
        d.set_sample_rate(sample_rate);
        d
    }

    /// Recomputes the pole for `sample_rate`; keeps the state.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        let sr = sanitize_sample_rate(sample_rate);
        let fc = self.cutoff_hz.max(0.1).min(0.1 * sr);
        self.pole = (-std::f32::consts::TAU * fc / sr).exp();
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.x1 = [0.0; 2];
        self.y1 = [0.0; 2];
    }

    /// One stereo sample.
    #[inline]
    pub fn process(&mut self, l: f32, r: f32) -> (f32, f32) {
        let x = [sanitize(l), sanitize(r)];
        let mut y = [0.0; 2];
        for c in 0..2 {
            y[c] = flush_tiny(x[c] - self.x1[c] + self.pole * self.y1[c]);
            self.x1[c] = x[c];
            self.y1[c] = y[c];
        }
        (y[0], y[1])
    }

    /// Filters `left`/`right` in place (pairs up to the shorter length).
    pub fn process_block(&mut self, left: &mut [f32], right: &mut [f32]) {
        stereo_block(left, right, |l, r| self.process(l, r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_util::{rms, sine};

    #[test]
    fn removes_dc_and_passes_audio() {
        let mut d = DcBlocker::new(48_000.0, DEFAULT_CUTOFF_HZ);
        let n = 48_000 * 2;
        let tone = sine(48_000.0, 200.0, n);
        let (mut l, mut r): (Vec<f32>, Vec<f32>) =
            tone.iter().map(|&x| (x * 0.5 + 0.3, x * 0.5 - 0.2)).unzip();
        d.process_block(&mut l, &mut r);
        let tail = n / 2..;
        for ch in [&l[tail.clone()], &r[tail.clone()]] {
            let mean = ch.iter().sum::<f32>() / ch.len() as f32;
            assert!(mean.abs() < 1e-3, "DC left: {mean}");
            let level = rms(ch) / (0.5 / std::f64::consts::SQRT_2);
            assert!((0.99..1.01).contains(&level), "200 Hz gain {level}");
        }
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let input: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut a = DcBlocker::new(44_100.0, 20.0);
        let per_sample: Vec<(f32, f32)> = input.iter().map(|&x| a.process(x, -x)).collect();
        a.reset();
        let (mut l, mut r) = (input.clone(), input.iter().map(|x| -x).collect::<Vec<_>>());
        a.process_block(&mut l, &mut r);
        let block: Vec<(f32, f32)> = l.into_iter().zip(r).collect();
        assert_eq!(per_sample, block);
    }

    #[test]
    fn bad_input_does_not_poison() {
        let mut d = DcBlocker::new(48_000.0, DEFAULT_CUTOFF_HZ);
        let (l, r) = d.process(f32::NAN, f32::INFINITY);
        assert!(l.is_finite() && r.is_finite());
        let (l, _) = d.process(0.5, 0.5);
        assert!(l.is_finite());
    }
}
