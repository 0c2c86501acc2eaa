//! DSP units: oscillators, envelopes, filters, noise, effects and smoothers.
//!
//! Every unit follows one small contract (after fundsp's `AudioNode` and nih-plug's
//! `Biquad`): `new(..)` is the only place that allocates; `set_sample_rate()`,
//! `set_params()` and `reset()` never allocate; the per-sample `process(..)` is
//! `#[inline]`, and `process_block(..)` produces exactly what repeated `process`
//! calls produce. Coefficients live in separate `Copy` structs with named
//! constructors (`SvfCoefs::lowpass(sr, hz, q)`).
//!
//! No unit panics on any input. Units with internal feedback pass their input
//! through [`sanitize`] (non-finite samples become 0, huge ones are clamped to
//! ±[`MAX_SAMPLE_MAGNITUDE`]) and flush decaying state below 1e-20 to zero, so a
//! stray NaN cannot poison them and silence never turns into slow subnormals.

pub mod dc_blocker;
pub mod decimator;
pub mod delay;
pub mod envelope;
pub mod glide;
pub mod limiter;
pub mod noise;
pub mod osc;
pub mod reverb;
pub mod svf;

/// Lowest sample rate the units accept, in hertz; lower (or non-positive) rates are
/// raised to it. Control-rate units (envelopes, glides) may run far below audio rate.
pub const MIN_UNIT_SAMPLE_RATE: f32 = 1.0;
/// Highest sample rate the units accept, in hertz; higher rates are clamped to it.
pub const MAX_UNIT_SAMPLE_RATE: f32 = 768_000.0;
/// Rate substituted for a non-finite or non-positive sample rate, in hertz.
pub const FALLBACK_SAMPLE_RATE: f32 = 48_000.0;
/// Largest input magnitude units with feedback accept (+120 dBFS); see [`sanitize`].
pub const MAX_SAMPLE_MAGNITUDE: f32 = 1.0e6;

/// Magnitudes below this are flushed to zero in recursive state.
pub(crate) const TINY: f32 = 1.0e-20;

/// Decibels to linear gain: `10^(db / 20)`. `-inf` gives 0; NaN gives NaN.
#[inline]
#[must_use]
pub fn db_to_gain(db: f32) -> f32 {
    10.0_f32.powf(db * 0.05)
}

/// Linear gain to decibels: `20 * log10(|gain|)`. A gain of 0 gives `-inf`.
#[inline]
#[must_use]
pub fn gain_to_db(gain: f32) -> f32 {
    20.0 * gain.abs().log10()
}

/// A sample made safe for a unit with feedback: non-finite values (NaN, ±inf)
/// become 0 and finite ones are clamped to ±[`MAX_SAMPLE_MAGNITUDE`].
#[inline]
#[must_use]
pub fn sanitize(x: f32) -> f32 {
    if x.abs() <= MAX_SAMPLE_MAGNITUDE {
        x
    } else if x.is_finite() {
        MAX_SAMPLE_MAGNITUDE.copysign(x)
    } else {
        0.0
    }
}

/// `x`, or 0 when `|x| < 1e-20` (keeps decaying feedback state out of subnormals).
#[inline]
#[must_use]
pub fn flush_tiny(x: f32) -> f32 {
    if x.abs() < TINY {
        0.0
    } else {
        x
    }
}

/// Runs a stereo per-sample `process` over `left`/`right` in place (pairs up to the
/// shorter length): the `process_block` of every stereo unit.
#[inline]
pub(crate) fn stereo_block(
    left: &mut [f32],
    right: &mut [f32],
    mut process: impl FnMut(f32, f32) -> (f32, f32),
) {
    for (l, r) in left.iter_mut().zip(right.iter_mut()) {
        (*l, *r) = process(*l, *r);
    }
}

/// A usable sample rate: non-finite or non-positive rates become
/// [`FALLBACK_SAMPLE_RATE`]; the rest are clamped to
/// [`MIN_UNIT_SAMPLE_RATE`]`..=`[`MAX_UNIT_SAMPLE_RATE`].
#[inline]
#[must_use]
pub fn sanitize_sample_rate(sample_rate: f32) -> f32 {
    if sample_rate.is_finite() && sample_rate > 0.0 {
        sample_rate.clamp(MIN_UNIT_SAMPLE_RATE, MAX_UNIT_SAMPLE_RATE)
    } else {
        FALLBACK_SAMPLE_RATE
    }
}

/// `value` if it is finite, else `fallback` (for parameters).
#[inline]
pub(crate) fn finite_or(value: f32, fallback: f32) -> f32 {
    if value.is_finite() {
        value
    } else {
        fallback
    }
}

/// Clamps `x` to `[lo, hi]` without panicking (unlike `f32::clamp`): NaN becomes
/// `lo`, and `hi` wins when `lo > hi`.
#[inline]
pub(crate) fn clamp_safe(x: f32, lo: f32, hi: f32) -> f32 {
    x.max(lo).min(hi)
}

/// Helpers shared by the unit tests of the DSP units.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::rng::Rng;

    /// Root-mean-square of `x`.
    pub(crate) fn rms(x: &[f32]) -> f64 {
        if x.is_empty() {
            return 0.0;
        }
        let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        (sum / x.len() as f64).sqrt()
    }

    /// `n` samples of a unit sine at `hz`.
    pub(crate) fn sine(sample_rate: f32, hz: f32, n: usize) -> Vec<f32> {
        let w = std::f64::consts::TAU * f64::from(hz) / f64::from(sample_rate);
        (0..n).map(|i| (w * i as f64).sin() as f32).collect()
    }

    /// `n` samples of uniform white noise in [-1, 1).
    pub(crate) fn white(seed: u64, n: usize) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| r.next_bipolar()).collect()
    }

    /// Index of the largest magnitude in `x`.
    pub(crate) fn argmax_abs(x: &[f32]) -> usize {
        let mut best = 0;
        for (i, v) in x.iter().enumerate() {
            if v.abs() > x[best].abs() {
                best = i;
            }
        }
        best
    }

    /// Index of the first sample with `|x| > eps`.
    pub(crate) fn first_above(x: &[f32], eps: f32) -> Option<usize> {
        x.iter().position(|v| v.abs() > eps)
    }

    /// Times (in samples, linearly interpolated) where `x` crosses zero upwards.
    pub(crate) fn rising_zero_crossings(x: &[f32]) -> Vec<f64> {
        let mut out = Vec::new();
        for i in 1..x.len() {
            let (a, b) = (f64::from(x[i - 1]), f64::from(x[i]));
            if a < 0.0 && b >= 0.0 {
                out.push((i - 1) as f64 + a / (a - b));
            }
        }
        out
    }

    /// Frequency in hertz from the upward zero crossings of `x`.
    pub(crate) fn zero_crossing_hz(x: &[f32], sample_rate: f32) -> f64 {
        let z = rising_zero_crossings(x);
        assert!(z.len() >= 3, "too few zero crossings: {}", z.len());
        let span = z[z.len() - 1] - z[0];
        (z.len() - 1) as f64 * f64::from(sample_rate) / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_gain_round_trip() {
        for db in [-60.0_f32, -6.0, 0.0, 3.0, 12.0] {
            assert!((gain_to_db(db_to_gain(db)) - db).abs() < 1e-4, "{db}");
        }
        assert!((db_to_gain(-6.0) - 0.501_187).abs() < 1e-5);
        assert_eq!(db_to_gain(0.0), 1.0);
        assert_eq!(gain_to_db(0.0), f32::NEG_INFINITY);
        assert_eq!(db_to_gain(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn sanitize_maps_bad_samples() {
        assert_eq!(sanitize(0.25), 0.25);
        assert_eq!(sanitize(f32::NAN), 0.0);
        assert_eq!(sanitize(f32::INFINITY), 0.0);
        assert_eq!(sanitize(f32::NEG_INFINITY), 0.0);
        assert_eq!(sanitize(1e30), MAX_SAMPLE_MAGNITUDE);
        assert_eq!(sanitize(-1e30), -MAX_SAMPLE_MAGNITUDE);
        assert_eq!(flush_tiny(1e-25), 0.0);
        assert_eq!(flush_tiny(-1e-3), -1e-3);
    }

    #[test]
    fn every_unit_survives_extreme_sample_rates() {
        use super::delay::StereoDelay;
        use super::envelope::Adsr;
        use super::glide::Glide;
        use super::limiter::Limiter;
        use super::osc::{Oscillator, Waveform};
        use super::reverb::Reverb;
        use super::svf::{Svf, SvfCoefs};

        for sr in [1.0, 100.0, 8_000.0, 768_000.0, 1e12, 0.0, -5.0, f32::NAN] {
            let mut osc = Oscillator::new(Waveform::Saw, sr);
            osc.set_frequency(1e9);
            let mut env = Adsr::new(sr);
            env.note_on();
            let mut glide = Glide::new(sr, 20.0, 0.0);
            glide.set_target(1.0);
            let coefs = SvfCoefs::lowpass(sr, 1e9, 0.7);
            let mut svf = Svf::new();
            let mut lim = Limiter::new(sr);
            // Keep the big allocations small: the maximum rate decides their size.
            let small = if sr.is_finite() && sr > 0.0 {
                sr.min(96_000.0)
            } else {
                sr
            };
            let mut delay = StereoDelay::new(small, 1.0);
            let mut reverb = Reverb::new(small);
            for i in 0..200 {
                let x = osc.process() * env.process() * glide.process();
                let y = svf.process(&coefs, x);
                let (dl, dr) = delay.process(y, -y);
                let (rl, rr) = reverb.process(dl, dr);
                let (a, b) = lim.process(rl + y, rr + y);
                assert!(a.is_finite() && b.is_finite(), "sr {sr}, sample {i}");
            }
        }
    }

    #[test]
    fn sample_rates_are_sanitized() {
        assert_eq!(sanitize_sample_rate(48_000.0), 48_000.0);
        assert_eq!(sanitize_sample_rate(1e9), MAX_UNIT_SAMPLE_RATE);
        assert_eq!(sanitize_sample_rate(0.0), FALLBACK_SAMPLE_RATE);
        assert_eq!(sanitize_sample_rate(f32::NAN), FALLBACK_SAMPLE_RATE);
        assert_eq!(sanitize_sample_rate(0.5), MIN_UNIT_SAMPLE_RATE);
        assert_eq!(clamp_safe(f32::NAN, 1.0, 2.0), 1.0);
        assert_eq!(clamp_safe(5.0, 1.0, 0.5), 0.5);
        assert_eq!(clamp_safe(1.5, 1.0, 2.0), 1.5);
    }
}
