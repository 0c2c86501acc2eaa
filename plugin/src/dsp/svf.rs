//! State-variable filter, linear trapezoidal (Andrew Simper, Cytomic, "Linear
//! Trapezoidal Integrated State Variable Filter With Low Noise Optimisation", 2013).
//!
//! Two trapezoidal integrators solved implicitly (zero-delay feedback): the cutoff is
//! exact through the bilinear pre-warp `g = tan(π·fc/sr)`, the filter stays stable
//! and well behaved when its coefficients change every block, and one state update
//! gives lowpass, bandpass and highpass at once; the coefficients choose the mix
//! `m0·x + m1·band + m2·low`.
//!
//! Per sample: `v3 = x - ic2; v1 = a1·ic1 + a2·v3; v2 = ic2 + a2·ic1 + a3·v3;
//! ic1 = 2v1 - ic1; ic2 = 2v2 - ic2`, with `a1 = 1/(1 + g(g + k))`, `a2 = g·a1`,
//! `a3 = g·a2`, `k = 1/Q`.

use super::{flush_tiny, sanitize, sanitize_sample_rate};

/// Lowest cutoff, in hertz.
const MIN_CUTOFF_HZ: f32 = 1.0;
/// Highest cutoff as a fraction of the sample rate.
const MAX_CUTOFF_RATIO: f32 = 0.49;
/// Accepted resonance range.
const MIN_Q: f32 = 0.1;
/// Accepted resonance range.
const MAX_Q: f32 = 50.0;

/// Filter coefficients for one response, cutoff, resonance and sample rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvfCoefs {
    a1: f32,
    a2: f32,
    a3: f32,
    m0: f32,
    m1: f32,
    m2: f32,
}

impl SvfCoefs {
    /// `(a1, a2, a3, k)` for a cutoff (clamped to `[1 Hz, 0.49·sr]`) and a Q
    /// (clamped to `[0.1, 50]`, non-finite → 1/√2).
    fn core(sample_rate: f32, cutoff_hz: f32, q: f32) -> (f32, f32, f32, f32) {
        let sr = sanitize_sample_rate(sample_rate);
        let fc = cutoff_hz.max(MIN_CUTOFF_HZ).min(MAX_CUTOFF_RATIO * sr);
        let q = if q.is_finite() {
            q.clamp(MIN_Q, MAX_Q)
        } else {
            std::f32::consts::FRAC_1_SQRT_2
        };
        let g = (std::f64::consts::PI * f64::from(fc) / f64::from(sr)).tan();
        let k = 1.0 / f64::from(q);
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        (a1 as f32, a2 as f32, a3 as f32, k as f32)
    }

    /// Lowpass, 12 dB/octave; `q = 1/√2` is Butterworth (-3 dB at the cutoff).
    #[must_use]
    pub fn lowpass(sample_rate: f32, cutoff_hz: f32, q: f32) -> Self {
        let (a1, a2, a3, _) = Self::core(sample_rate, cutoff_hz, q);
        Self {
            a1,
            a2,
            a3,
            m0: 0.0,
            m1: 0.0,
            m2: 1.0,
        }
    }

    /// Highpass, 12 dB/octave; `q = 1/√2` is Butterworth (-3 dB at the cutoff).
    #[must_use]
    pub fn highpass(sample_rate: f32, cutoff_hz: f32, q: f32) -> Self {
        let (a1, a2, a3, k) = Self::core(sample_rate, cutoff_hz, q);
        Self {
            a1,
            a2,
            a3,
            m0: 1.0,
            m1: -k,
            m2: -1.0,
        }
    }

    /// Bandpass normalised to 0 dB at the centre frequency `cutoff_hz`; the
    /// bandwidth is `cutoff_hz / q` (-3 dB points), so a higher `q` passes less
    /// energy.
    #[must_use]
    pub fn bandpass(sample_rate: f32, cutoff_hz: f32, q: f32) -> Self {
        let (a1, a2, a3, k) = Self::core(sample_rate, cutoff_hz, q);
        Self {
            a1,
            a2,
            a3,
            m0: 0.0,
            m1: k,
            m2: 0.0,
        }
    }

    /// No filtering: the output equals the input (the state still runs).
    #[must_use]
    pub fn passthrough() -> Self {
        let mut c = Self::lowpass(48_000.0, 1_000.0, std::f32::consts::FRAC_1_SQRT_2);
        c.m0 = 1.0;
        c.m2 = 0.0;
        c
    }
}

impl Default for SvfCoefs {
    /// [`SvfCoefs::passthrough`].
    fn default() -> Self {
        Self::passthrough()
    }
}

/// Filter state (the two integrator memories). The coefficients are passed to
/// each call so one set can drive many filters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Svf {
    ic1eq: f32,
    ic2eq: f32,
}

impl Svf {
    /// A filter at rest.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Filters one sample. Non-finite input is treated as 0 and magnitudes above
    /// 1e6 are clamped, so the state always stays finite.
    #[inline]
    pub fn process(&mut self, c: &SvfCoefs, x: f32) -> f32 {
        let v0 = sanitize(x);
        let v3 = v0 - self.ic2eq;
        let v1 = c.a1 * self.ic1eq + c.a2 * v3;
        let v2 = self.ic2eq + c.a2 * self.ic1eq + c.a3 * v3;
        self.ic1eq = flush_tiny(2.0 * v1 - self.ic1eq);
        self.ic2eq = flush_tiny(2.0 * v2 - self.ic2eq);
        c.m0 * v0 + c.m1 * v1 + c.m2 * v2
    }

    /// Filters `buf` in place.
    pub fn process_block(&mut self, c: &SvfCoefs, buf: &mut [f32]) {
        for x in buf {
            *x = self.process(c, *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::gain_to_db;
    use crate::dsp::test_util::{rms, sine, white};
    use std::f32::consts::FRAC_1_SQRT_2;

    /// Steady-state gain in dB of `c` for a sine at `hz`.
    fn gain_db(c: &SvfCoefs, sr: f32, hz: f32) -> f32 {
        let n = (sr * 0.5) as usize;
        let mut x = sine(sr, hz, n);
        let input = rms(&x[n / 2..]);
        let mut f = Svf::new();
        f.process_block(c, &mut x);
        gain_to_db((rms(&x[n / 2..]) / input) as f32)
    }

    #[test]
    fn lowpass_magnitude_response() {
        for (sr, fc) in [(48_000.0, 1_000.0), (44_100.0, 5_000.0), (8_000.0, 500.0)] {
            let c = SvfCoefs::lowpass(sr, fc, FRAC_1_SQRT_2);
            let at = gain_db(&c, sr, fc);
            assert!((at + 3.01).abs() < 0.2, "{sr}/{fc}: {at} dB at cutoff");
            let below = gain_db(&c, sr, fc / 2.5);
            assert!(below.abs() < 0.3, "{sr}/{fc}: {below} dB below");
            let above = gain_db(&c, sr, fc * 4.0);
            assert!(above < -20.0, "{sr}/{fc}: {above} dB above");
        }
    }

    #[test]
    fn highpass_magnitude_response() {
        for (sr, fc) in [(48_000.0, 1_000.0), (768_000.0, 200.0)] {
            let c = SvfCoefs::highpass(sr, fc, FRAC_1_SQRT_2);
            let at = gain_db(&c, sr, fc);
            assert!((at + 3.01).abs() < 0.2, "{sr}/{fc}: {at} dB at cutoff");
            let above = gain_db(&c, sr, fc * 2.5);
            assert!(above.abs() < 0.3, "{sr}/{fc}: {above} dB above");
            let below = gain_db(&c, sr, fc / 4.0);
            assert!(below < -20.0, "{sr}/{fc}: {below} dB below");
        }
    }

    #[test]
    fn bandpass_peaks_at_zero_db() {
        let sr = 48_000.0;
        let c = SvfCoefs::bandpass(sr, 2_000.0, 4.0);
        assert!(gain_db(&c, sr, 2_000.0).abs() < 0.1);
        assert!(gain_db(&c, sr, 500.0) < -20.0);
        assert!(gain_db(&c, sr, 8_000.0) < -20.0);
    }

    #[test]
    fn passthrough_is_identity() {
        let c = SvfCoefs::default();
        let mut f = Svf::new();
        for x in white(3, 1000) {
            assert_eq!(f.process(&c, x), x);
        }
    }

    #[test]
    fn cutoff_and_q_are_clamped() {
        let a = SvfCoefs::lowpass(48_000.0, 1e9, 0.7);
        assert_eq!(a, SvfCoefs::lowpass(48_000.0, 0.49 * 48_000.0, 0.7));
        assert_eq!(
            SvfCoefs::lowpass(48_000.0, -5.0, 0.7),
            SvfCoefs::lowpass(48_000.0, 1.0, 0.7)
        );
        assert_eq!(
            SvfCoefs::lowpass(48_000.0, f32::NAN, 0.7),
            SvfCoefs::lowpass(48_000.0, 1.0, 0.7)
        );
        for c in [
            a,
            SvfCoefs::highpass(8_000.0, 1e9, 1e9),
            SvfCoefs::bandpass(0.0, f32::NAN, f32::NAN),
            SvfCoefs::lowpass(f32::INFINITY, 100.0, -1.0),
        ] {
            let mut f = Svf::new();
            for x in white(9, 2000) {
                assert!(f.process(&c, x).is_finite());
            }
        }
    }

    #[test]
    fn non_finite_input_does_not_poison_state() {
        let c = SvfCoefs::lowpass(48_000.0, 2_000.0, 10.0);
        let mut f = Svf::new();
        for x in [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e30, f32::MAX] {
            f.process(&c, x);
            for _ in 0..48_000 {
                assert!(f.process(&c, 0.0).is_finite());
            }
            // Rings down to silence again.
            assert!(f.process(&c, 0.0).abs() < 1e-3);
        }
        assert!(f.process(&c, 0.5).is_finite());
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let c = SvfCoefs::highpass(48_000.0, 300.0, 2.0);
        let input = white(5, 2000);
        let mut a = Svf::new();
        let mut b = Svf::new();
        let mut block = input.clone();
        a.process_block(&c, &mut block);
        let single: Vec<f32> = input.iter().map(|&x| b.process(&c, x)).collect();
        assert_eq!(block, single);
        a.reset();
        let mut again = input;
        a.process_block(&c, &mut again);
        assert_eq!(block, again);
    }
}
