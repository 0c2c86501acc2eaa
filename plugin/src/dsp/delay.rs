//! Stereo feedback delay with ping-pong, a second tap, damping and gliding time.
//!
//! Two circular delay lines (interleaved left/right, power-of-two length with a mask)
//! read with linear interpolation at a fractional delay. The delay time moves along a
//! linear [`Glide`] of [`TIME_GLIDE_MS`] when changed, so a new time bends the
//! pitch of the repeats like a tape delay instead of clicking. A one-pole lowpass
//! on what is written into the lines (the classic "analog delay" placement) makes
//! every repeat darker than the one before.
//!
//! - Straight: each side feeds back into itself.
//! - Ping-pong: the input is summed to mono, `(l + r)/2`, and enters the left line;
//!   each line feeds the other, so repeats alternate left, right, left…
//! - Second tap (`taps: 2`): each output also reads the *other* side's line at 1.5×
//!   the time, at [`TAP2_GAIN`] (a dotted-rhythm answer).
//!
//! Output is wet only; the first repeat of a straight delay has unity gain.
//!
//! Memory: `next_pow2(1.5 · max_delay_s · max_sample_rate) × 8` bytes (1 MB for 1 s
//! at 48 kHz, 16 MB at 768 kHz); only the portion needed at the current rate is
//! touched. Cost per stereo sample: 4 interpolated reads, 1 write, ~30 flops.

use std::fmt;

use super::glide::Glide;
use super::{clamp_safe, finite_or, flush_tiny, sanitize, sanitize_sample_rate};

/// How long a change of delay time takes to glide, in milliseconds.
pub const TIME_GLIDE_MS: f32 = 250.0;
/// Gain of the second tap.
pub const TAP2_GAIN: f32 = 0.7;
/// Delay of the second tap relative to the main one.
const TAP2_RATIO: f64 = 1.5;
/// Accepted delay time range, in milliseconds.
const MIN_TIME_MS: f32 = 1.0;
/// Accepted delay time range, in milliseconds.
const MAX_TIME_MS: f32 = 1_000.0;
/// Highest feedback.
const MAX_FEEDBACK: f32 = 0.95;
/// Accepted `max_delay_s` range for [`StereoDelay::new`], in seconds.
const MAX_DELAY_LIMIT_S: f32 = 10.0;
/// Damping at or above this fraction of the sample rate is off.
const DAMPING_OFF_RATIO: f32 = 0.45;

/// Delay settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayParams {
    /// Delay time in milliseconds (1..=1000, and at most the `max_delay_s` given to
    /// [`StereoDelay::new`]; typical 250..500).
    pub time_ms: f32,
    /// Feedback gain, 0..=0.95.
    pub feedback: f32,
    /// 1: one tap; 2: also a tap at 1.5× the time on the opposite side (other values
    /// are clamped to 1..=2).
    pub taps: u8,
    /// Repeats alternate sides (mono-summed input) instead of staying where they are.
    pub ping_pong: bool,
    /// Cutoff of the one-pole lowpass on the line inputs, in hertz (20 Hz up;
    /// 0.45·sr or above turns damping off).
    pub damping_hz: f32,
}

impl Default for DelayParams {
    /// 375 ms, feedback 0.35, two taps, ping-pong, damping at 5 kHz.
    fn default() -> Self {
        Self {
            time_ms: 375.0,
            feedback: 0.35,
            taps: 2,
            ping_pong: true,
            damping_hz: 5_000.0,
        }
    }
}

/// A stereo feedback delay. See the module documentation.
#[derive(Clone)]
pub struct StereoDelay {
    max_sample_rate: f32,
    max_delay_s: f32,
    sample_rate: f32,
    params: DelayParams,
    /// Interleaved left/right lines.
    buf: Vec<[f32; 2]>,
    /// Active length minus 1 (a power of two minus 1) at the current rate.
    mask: usize,
    /// Index the current sample is written to.
    pos: usize,
    /// Delay time in samples.
    time: Glide,
    feedback: f32,
    tap2_gain: f32,
    ping_pong: bool,
    /// One-pole lowpass pole (0 = no damping).
    damp_pole: f32,
    damp_state: [f32; 2],
}

impl fmt::Debug for StereoDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StereoDelay")
            .field("sample_rate", &self.sample_rate)
            .field("max_sample_rate", &self.max_sample_rate)
            .field("max_delay_s", &self.max_delay_s)
            .field("params", &self.params)
            .field("line_frames", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl StereoDelay {
    /// Bytes its delay line takes on the heap.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        size_of_val(self.buf.as_slice())
    }

    /// A delay with default parameters, allocating lines for delays up to
    /// `max_delay_s` seconds (0.001..=10; the second tap reaches 1.5× that) at sample
    /// rates up to `max_sample_rate` hertz (≤ 768 kHz). Runs at `max_sample_rate`
    /// until [`set_sample_rate`](Self::set_sample_rate).
    #[must_use]
    pub fn new(max_sample_rate: f32, max_delay_s: f32) -> Self {
        let max_sample_rate = sanitize_sample_rate(max_sample_rate);
        let max_delay_s = clamp_safe(max_delay_s, MIN_TIME_MS * 1e-3, MAX_DELAY_LIMIT_S);
        let frames = Self::frames_for(max_sample_rate, max_delay_s);
        let params = DelayParams::default();
        let mut d = Self {
            max_sample_rate,
            max_delay_s,
            sample_rate: max_sample_rate,
            params,
            buf: vec![[0.0; 2]; frames],
            mask: frames - 1,
            pos: 0,
            time: Glide::new(max_sample_rate, TIME_GLIDE_MS, 1.0),
            feedback: 0.0,
            tap2_gain: 0.0,
            ping_pong: false,
            damp_pole: 0.0,
            damp_state: [0.0; 2],
        };
        d.set_params(params);
        d.time.jump(d.time.target());
        d
    }

    /// Power-of-two line length for the longest read at `sample_rate`.
    fn frames_for(sample_rate: f32, max_delay_s: f32) -> usize {
        let longest = TAP2_RATIO * f64::from(max_delay_s) * f64::from(sample_rate);
        (longest.ceil() as usize + 4).next_power_of_two()
    }

    /// Longest main delay in samples at the current rate.
    fn max_delay_samples(&self) -> f64 {
        f64::from(self.max_delay_s) * f64::from(self.sample_rate)
    }

    /// Changes the sample rate (clamped to the constructor's maximum) and clears the
    /// lines (an O(line length) fill, no allocation). The delay time in milliseconds
    /// is kept and set without a glide.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sanitize_sample_rate(sample_rate).min(self.max_sample_rate);
        let frames = Self::frames_for(self.sample_rate, self.max_delay_s).min(self.buf.len());
        self.mask = frames - 1;
        self.buf.fill([0.0; 2]);
        self.time = Glide::new(self.sample_rate, TIME_GLIDE_MS, 1.0);
        self.set_params(self.params);
        self.time.jump(self.time.target());
        self.reset();
    }

    /// Sets the parameters (clamped to their ranges; non-finite values → defaults).
    /// A new time glides over [`TIME_GLIDE_MS`]; the rest take effect at once.
    pub fn set_params(&mut self, params: DelayParams) {
        let d = DelayParams::default();
        self.params = params;
        let time_ms = clamp_safe(
            finite_or(params.time_ms, d.time_ms),
            MIN_TIME_MS,
            MAX_TIME_MS,
        );
        let samples = (f64::from(time_ms) * 1e-3 * f64::from(self.sample_rate))
            .max(1.0)
            .min(self.max_delay_samples());
        self.time.set_target(samples as f32);
        self.feedback = clamp_safe(finite_or(params.feedback, d.feedback), 0.0, MAX_FEEDBACK);
        self.tap2_gain = if params.taps >= 2 { TAP2_GAIN } else { 0.0 };
        self.ping_pong = params.ping_pong;
        let damping_hz = finite_or(params.damping_hz, d.damping_hz).max(20.0);
        self.damp_pole = if damping_hz >= DAMPING_OFF_RATIO * self.sample_rate {
            0.0
        } else {
            (-std::f64::consts::TAU * f64::from(damping_hz) / f64::from(self.sample_rate)).exp()
                as f32
        };
    }

    /// Clears the lines' active portion and the damping state; the delay time jumps
    /// to its target.
    pub fn reset(&mut self) {
        self.buf[..=self.mask].fill([0.0; 2]);
        self.pos = 0;
        self.damp_state = [0.0; 2];
        self.time.jump(self.time.target());
    }

    /// The current delay time in samples (mid-glide after a change).
    #[must_use]
    pub fn delay_samples(&self) -> f32 {
        self.time.value()
    }

    /// One stereo sample in, wet stereo sample out.
    #[inline]
    pub fn process(&mut self, l: f32, r: f32) -> (f32, f32) {
        let (mut left, mut right) = ([l], [r]);
        self.process_block(&mut left, &mut right);
        (left[0], right[0])
    }

    /// Replaces `left`/`right` (the input) by the wet output, in place (pairs up to
    /// the shorter length).
    ///
    /// While the time is not gliding the read offsets are computed once per block;
    /// the line is re-sliced to its mask so masked indexing needs no bounds checks.
    pub fn process_block(&mut self, left: &mut [f32], right: &mut [f32]) {
        let mask = self.mask;
        let buf = &mut self.buf[..=mask];
        let (fb, tap2_gain, ping_pong, pole) = (
            self.feedback,
            self.tap2_gain,
            self.ping_pong,
            self.damp_pole,
        );
        let mut pos = self.pos;
        let [mut zl, mut zr] = self.damp_state;
        let steady = !self.time.is_gliding();
        // A glide that has arrived returns its value without moving, so this reads
        // the steady time; while gliding every sample advances it instead.
        let mut taps = Taps::at(if steady { self.time.process_f64() } else { 1.0 });
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            if !steady {
                taps = Taps::at(self.time.process_f64());
            }
            let (l_in, r_in) = (sanitize(*l), sanitize(*r));
            let read = |(whole, frac): (usize, f32), ch: usize| {
                let i = pos.wrapping_sub(whole) & mask;
                let a = buf[i][ch];
                let b = buf[i.wrapping_sub(1) & mask][ch];
                a + frac * (b - a)
            };
            let (main_l, main_r) = (read(taps.main, 0), read(taps.main, 1));
            let (tap_l, tap_r) = if tap2_gain > 0.0 {
                (
                    tap2_gain * read(taps.second, 1),
                    tap2_gain * read(taps.second, 0),
                )
            } else {
                (0.0, 0.0)
            };
            let (in_l, in_r) = if ping_pong {
                (0.5 * (l_in + r_in) + fb * main_r, fb * main_l)
            } else {
                (l_in + fb * main_l, r_in + fb * main_r)
            };
            zl = flush_tiny(in_l + pole * (zl - in_l));
            zr = flush_tiny(in_r + pole * (zr - in_r));
            buf[pos] = [zl, zr];
            pos = (pos + 1) & mask;
            *l = main_l + tap_l;
            *r = main_r + tap_r;
        }
        self.pos = pos;
        self.damp_state = [zl, zr];
    }
}

/// Whole-sample offsets and fractions of the two read taps for one delay time.
#[derive(Debug, Clone, Copy)]
struct Taps {
    main: (usize, f32),
    second: (usize, f32),
}

impl Taps {
    fn at(delay: f64) -> Self {
        let split = |d: f64| {
            let whole = d as usize;
            (whole, (d - whole as f64) as f32)
        };
        Self {
            main: split(delay),
            second: split(delay * TAP2_RATIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_util::{argmax_abs, first_above, rms, white};

    fn impulse_response(d: &mut StereoDelay, n: usize, into_left: bool) -> (Vec<f32>, Vec<f32>) {
        let mut l = vec![0.0; n];
        let mut r = vec![0.0; n];
        if into_left {
            l[0] = 1.0;
        } else {
            r[0] = 1.0;
        }
        d.process_block(&mut l, &mut r);
        (l, r)
    }

    #[test]
    fn impulse_returns_at_time_and_second_tap_at_one_and_a_half() {
        for (sr, ms) in [
            (48_000.0, 375.0),
            (44_100.0, 250.0),
            (8_000.0, 333.3),
            (768_000.0, 500.0),
        ] {
            let mut d = StereoDelay::new(sr, 1.0);
            d.set_params(DelayParams {
                time_ms: ms,
                feedback: 0.0,
                taps: 2,
                ping_pong: false,
                damping_hz: 5_000.0,
            });
            d.reset();
            let t = f64::from(ms) * 1e-3 * f64::from(sr);
            let n = (2.0 * t) as usize;
            let (l, r) = impulse_response(&mut d, n, true);
            let first = first_above(&l, 1e-6).expect("echo");
            assert!(
                (first as f64 - t).abs() <= 1.0,
                "{sr}: first at {first}, want {t}"
            );
            assert!((argmax_abs(&l) as f64 - t).abs() <= 1.0);
            let tap = argmax_abs(&r) as f64;
            assert!(
                (tap - 1.5 * t).abs() <= 1.0,
                "{sr}: tap at {tap}, want {}",
                1.5 * t
            );
            assert!(first_above(&r, 1e-6).expect("tap") as f64 >= 1.5 * t - 1.0);
        }
    }

    #[test]
    fn integer_delay_without_damping_is_exact() {
        let mut d = StereoDelay::new(48_000.0, 1.0);
        d.set_params(DelayParams {
            time_ms: 250.0,
            feedback: 0.5,
            taps: 1,
            ping_pong: false,
            damping_hz: 1e9,
        });
        d.reset();
        let (l, r) = impulse_response(&mut d, 40_000, true);
        assert_eq!(l[12_000], 1.0);
        assert_eq!(l[24_000], 0.5);
        assert_eq!(l[36_000], 0.25);
        assert_eq!(rms(&r), 0.0);
        assert_eq!(l.iter().filter(|v| **v != 0.0).count(), 3);
    }

    #[test]
    fn ping_pong_alternates_sides() {
        let mut d = StereoDelay::new(48_000.0, 1.0);
        d.set_params(DelayParams {
            time_ms: 100.0,
            feedback: 0.5,
            taps: 1,
            ping_pong: true,
            damping_hz: 1e9,
        });
        d.reset();
        let (l, r) = impulse_response(&mut d, 20_000, false);
        assert_eq!(l[4_800], 0.5);
        assert_eq!(r[4_800], 0.0);
        assert_eq!(r[9_600], 0.25);
        assert_eq!(l[9_600], 0.0);
        assert_eq!(l[14_400], 0.125);
    }

    #[test]
    fn feedback_decays_and_damping_darkens() {
        let mut d = StereoDelay::new(48_000.0, 1.0);
        d.set_params(DelayParams {
            feedback: 0.95,
            ..DelayParams::default()
        });
        d.reset();
        let (l, r) = impulse_response(&mut d, 48_000 * 20, true);
        let tail = rms(&l[48_000 * 19..]) + rms(&r[48_000 * 19..]);
        let early = rms(&l[..48_000]) + rms(&r[..48_000]);
        assert!(tail < early * 0.1, "tail {tail} early {early}");
        // Each repeat is smeared further by the lowpass: peaks fall faster than 0.95^n.
        assert!(l.iter().all(|v| v.is_finite() && v.abs() < 1.0));
    }

    #[test]
    fn time_change_glides_without_clicks() {
        let sr = 48_000.0;
        let mut d = StereoDelay::new(sr, 1.0);
        d.set_params(DelayParams {
            time_ms: 300.0,
            feedback: 0.3,
            taps: 2,
            ping_pong: true,
            damping_hz: 5_000.0,
        });
        d.reset();
        // A slow sine: any jump in the read position would show as a large step.
        let w = std::f32::consts::TAU * 110.0 / sr;
        let mut max_step = 0.0_f32;
        let mut prev = 0.0;
        for i in 0..(sr as usize * 2) {
            if i == 30_000 {
                d.set_params(DelayParams {
                    time_ms: 450.0,
                    ..DelayParams::default()
                });
            }
            let x = (w * i as f32).sin() * 0.5;
            let (l, _) = d.process(x, x);
            if i > 20_000 {
                max_step = max_step.max((l - prev).abs());
            }
            prev = l;
        }
        // A 110 Hz sine of amplitude ≤ 1.3 moves ≤ 0.019 per sample; pitch bend adds a
        // little. A click would be of the order of the amplitude.
        assert!(max_step < 0.05, "max step {max_step}");
        assert!((d.delay_samples() - 0.45 * sr).abs() < 1e-3);
    }

    #[test]
    fn sample_rate_change_and_bad_input() {
        let mut d = StereoDelay::new(96_000.0, 0.5);
        d.set_sample_rate(1e9);
        d.set_sample_rate(16_000.0);
        d.set_params(DelayParams {
            time_ms: 900.0,
            feedback: f32::NAN,
            taps: 9,
            ping_pong: false,
            damping_hz: f32::NAN,
        });
        d.reset();
        // Clamped to max_delay_s = 0.5 s.
        assert_eq!(d.delay_samples(), 8_000.0);
        for x in [f32::NAN, f32::INFINITY, 1e30] {
            let (a, b) = d.process(x, x);
            assert!(a.is_finite() && b.is_finite());
        }
        for _ in 0..40_000 {
            let (a, b) = d.process(0.0, 0.0);
            assert!(a.is_finite() && b.is_finite());
        }
    }

    #[test]
    fn configuration_does_not_reallocate() {
        let mut d = StereoDelay::new(96_000.0, 1.0);
        let before = (d.buf.as_ptr(), d.buf.capacity());
        d.set_sample_rate(8_000.0);
        d.set_params(DelayParams {
            time_ms: 1_000.0,
            ..DelayParams::default()
        });
        d.set_sample_rate(96_000.0);
        d.reset();
        d.process(1.0, 1.0);
        assert_eq!(before, (d.buf.as_ptr(), d.buf.capacity()));
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let mut a = StereoDelay::new(48_000.0, 0.2);
        a.set_params(DelayParams {
            time_ms: 30.0,
            feedback: 0.6,
            taps: 2,
            ping_pong: true,
            damping_hz: 3_000.0,
        });
        a.reset();
        let mut b = a.clone();
        let input_l = white(1, 10_000);
        let input_r = white(2, 10_000);
        let (mut l, mut r) = (input_l.clone(), input_r.clone());
        a.process_block(&mut l[..5_000], &mut r[..5_000]);
        a.set_params(DelayParams {
            time_ms: 20.0,
            ..DelayParams::default()
        });
        a.process_block(&mut l[5_000..], &mut r[5_000..]);
        for i in 0..10_000 {
            if i == 5_000 {
                b.set_params(DelayParams {
                    time_ms: 20.0,
                    ..DelayParams::default()
                });
            }
            assert_eq!(b.process(input_l[i], input_r[i]), (l[i], r[i]), "{i}");
        }
        a.set_params(DelayParams {
            time_ms: 30.0,
            feedback: 0.6,
            taps: 2,
            ping_pong: true,
            damping_hz: 3_000.0,
        });
        a.reset();
        let (mut l2, mut r2) = (input_l, input_r);
        a.process_block(&mut l2[..5_000], &mut r2[..5_000]);
        a.set_params(DelayParams {
            time_ms: 20.0,
            ..DelayParams::default()
        });
        a.process_block(&mut l2[5_000..], &mut r2[5_000..]);
        assert_eq!((l, r), (l2, r2));
    }
}
