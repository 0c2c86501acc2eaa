//! Stereo reverb: a modulated eight-line feedback delay network (FDN).
//!
//! Structure (Jot & Chaigne, "Digital delay networks for designing artificial
//! reverberators", AES 90th Convention, 1991; Smith, *Physical Audio Signal
//! Processing*, "Feedback Delay Networks"):
//!
//! 1. Pre-delay (stereo, integer samples), then two Schroeder allpass diffusers per
//!    channel that smear the onset.
//! 2. Eight delay lines of mutually prime lengths (29.9..58.1 ms, each rounded up to
//!    a distinct prime number of samples at the current rate). Four of them are
//!    modulated by two slow quadrature LFOs (0.31 and 0.47 Hz, up to ±0.5 ms) and
//!    read with linear interpolation; this breaks up the fixed modal pattern that
//!    makes plain FDNs ring metallically.
//! 3. Each line output passes a one-pole lowpass (damping) and a gain
//!    `g = 10^(-3·len/(rt60·sr))`, so every round trip loses exactly the share of
//!    60 dB its length implies and all lines decay at the same rate.
//! 4. The left input is added to line 0 and the right to line 7, and the eight
//!    values are mixed by an orthonormal 8×8 Hadamard matrix (a fast Walsh–Hadamard
//!    transform: 24 additions and one scale) before they are written back.
//! 5. The outputs are two orthogonal ±1 combinations of the line outputs (nearly
//!    uncorrelated left and right) plus a small "early" copy of each diffused input,
//!    which makes the wet signal start exactly at the pre-delay.
//!
//! Damping is specified per line so that the reverberation time at `damping_hz` is
//! half of `decay_s` (the pole `p` solves `|H(e^{jω})| = g` for a DC-normalised
//! one-pole `H = (1 - p)/(1 - p·z⁻¹)`), rising towards `decay_s` below and falling
//! further above, the same for every line.
//!
//! **Gain.** The output is scaled from an energy model of the diffuse tail (energy
//! is lost at `6·ln10/(rt60·sr)` per sample and spread over the total delay `M`), so
//! that uncorrelated stereo white noise comes out at about its input RMS whatever
//! the decay time, without damping (measured: 0.83× at 0.8 s, 0.93× at 2.6 s, 0.96×
//! at 8 s). Damping removes high-frequency energy: at the defaults (6 kHz damping,
//! 48 kHz) white noise comes out about 5.5 dB lower, while noise lowpassed at 2 kHz
//! (like pads and melodies) comes out about 1 dB lower.
//!
//! **Cost.** Per stereo sample: 12 reads and 4 writes of delay memory, about 110
//! floating-point operations, no transcendental functions (the LFOs are "magic
//! circle" recurrences in `f64`). Memory: about 3.1 MB for a 768 kHz maximum rate,
//! 200 kB for 48 kHz; only the portion needed at the current rate is touched.

use std::fmt;

use wide::f32x4;

use super::{clamp_safe, finite_or, flush_tiny, sanitize, sanitize_sample_rate, TINY};

/// Number of delay lines.
const LINES: usize = 8;
/// Line lengths in milliseconds; the first [`MOD_LINES`] are modulated.
const LINE_MS: [f32; LINES] = [33.7, 45.7, 53.3, 29.9, 37.1, 41.3, 49.9, 58.1];
/// How many lines (from index 0) are modulated.
const MOD_LINES: usize = 4;
/// Samples between updates of the modulated read taps.
const MOD_UPDATE_FRAMES: usize = 16;
/// LFO rates in hertz (each drives two lines, in quadrature).
const LFO_HZ: [f64; 2] = [0.31, 0.47];
/// Largest modulation excursion, in milliseconds; the delay of a modulated line
/// swings over `[len, len + 2·depth]`.
const MAX_MOD_MS: f32 = 0.5;
/// Output combinations of the line outputs: orthogonal ±1 vectors, chosen (by
/// exhaustive search over the measured steady-state covariance of the line outputs
/// for decays of 0.8..8 s) so that left and right stay uncorrelated (|ρ| < 0.05).
const OUT_L: [f32; LINES] = [1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
/// See [`OUT_L`].
const OUT_R: [f32; LINES] = [1.0, -1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
/// Line that the left input enters.
const IN_L_LINE: usize = 0;
/// Line that the right input enters.
const IN_R_LINE: usize = 7;
/// Level of the diffused input in the output, relative to the tail sum.
const EARLY_GAIN: f32 = 0.5;
/// Diffuser lengths in milliseconds: left pair, right pair.
const DIFFUSER_MS: [f32; 4] = [4.77, 1.71, 5.31, 2.13];
/// Diffuser allpass coefficient.
const DIFFUSER_GAIN: f32 = 0.55;
/// `1/√8`: makes the Hadamard transform orthonormal.
const HADAMARD_SCALE: f32 = 0.353_553_38;
/// Accepted ranges.
const MIN_DECAY_S: f32 = 0.3;
/// Accepted ranges.
const MAX_DECAY_S: f32 = 10.0;
/// Longest pre-delay, in milliseconds.
const MAX_PREDELAY_MS: f32 = 100.0;
/// Lowest damping frequency, in hertz.
const MIN_DAMPING_HZ: f32 = 200.0;
/// Damping at or above this fraction of the sample rate is off.
const DAMPING_OFF_RATIO: f32 = 0.45;

/// Reverb settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverbParams {
    /// Reverberation time (RT60: time to fall by 60 dB) at low and middle
    /// frequencies, in seconds (0.3..=10).
    pub decay_s: f32,
    /// Time before the wet signal starts, in milliseconds (0..=100). Changing it
    /// while the pre-delay holds sound jumps (a click in the wet signal).
    pub predelay_ms: f32,
    /// Frequency at which the reverberation time is half of `decay_s`, in hertz
    /// (200 Hz up; 0.45·sr or above turns damping off).
    pub damping_hz: f32,
    /// Delay-line modulation depth, 0..=1 (1 = ±0.5 ms, a few cents of chorus).
    pub mod_depth: f32,
}

impl Default for ReverbParams {
    /// 2.6 s, 30 ms pre-delay, damping at 6 kHz, modulation 0.5.
    fn default() -> Self {
        Self {
            decay_s: 2.6,
            predelay_ms: 30.0,
            damping_hz: 6_000.0,
            mod_depth: 0.5,
        }
    }
}

/// A "magic circle" quadrature oscillator (the modified coupled form: its
/// determinant is exactly 1, so the amplitude neither grows nor decays).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lfo {
    sin: f64,
    cos: f64,
    eps: f64,
}

impl Lfo {
    /// An oscillator at `hz` starting at phase `turns`.
    fn new(sample_rate: f32, hz: f64, turns: f64) -> Self {
        let a = std::f64::consts::TAU * turns;
        Self {
            sin: a.sin(),
            cos: a.cos(),
            eps: 2.0 * (std::f64::consts::PI * hz / f64::from(sample_rate)).sin(),
        }
    }

    #[inline]
    fn step(&mut self) {
        self.cos -= self.eps * self.sin;
        self.sin += self.eps * self.cos;
    }
}

/// Smallest prime `≥ n` (trial division; `n` stays below a million).
fn next_prime(n: usize) -> usize {
    let is_prime = |k: usize| {
        if k < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= k {
            if k.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    };
    let mut k = n.max(2);
    while !is_prime(k) {
        k += 1;
    }
    k
}

/// Line lengths in samples at `sample_rate`: distinct primes, hence mutually prime.
fn line_lengths(sample_rate: f32) -> [usize; LINES] {
    let mut out = [0; LINES];
    for (i, ms) in LINE_MS.iter().enumerate() {
        let mut len = next_prime((ms * 1e-3 * sample_rate).round() as usize);
        while out[..i].contains(&len) {
            len = next_prime(len + 1);
        }
        out[i] = len;
    }
    out
}

/// Power-of-two frame counts for (lines, pre-delay, diffusers) at `sample_rate`.
fn buffer_frames(sample_rate: f32) -> (usize, usize, usize) {
    let longest = line_lengths(sample_rate).into_iter().max().unwrap_or(1);
    let excursion = (2.0 * MAX_MOD_MS * 1e-3 * sample_rate).ceil() as usize;
    let lines = (longest + excursion + 4).next_power_of_two();
    let predelay = ((MAX_PREDELAY_MS * 1e-3 * sample_rate).ceil() as usize + 2).next_power_of_two();
    let diffusers = DIFFUSER_MS
        .iter()
        .map(|ms| (ms * 1e-3 * sample_rate).ceil() as usize + 2)
        .max()
        .unwrap_or(2)
        .next_power_of_two();
    (lines, predelay, diffusers)
}

/// One Schroeder allpass step: `tap` is the delayed state; returns `(output,
/// value to store)`.
#[inline]
fn allpass(x: f32, tap: f32) -> (f32, f32) {
    let v = x + DIFFUSER_GAIN * tap;
    (tap - DIFFUSER_GAIN * v, flush_tiny(v))
}

/// In-place orthonormal 8-point Walsh–Hadamard transform (the three butterfly
/// stages written out, so the compiler keeps everything in registers).
#[inline]
fn hadamard8(w: &mut [f32; LINES]) {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *w;
    let (b0, b1, b2, b3) = (a0 + a1, a0 - a1, a2 + a3, a2 - a3);
    let (b4, b5, b6, b7) = (a4 + a5, a4 - a5, a6 + a7, a6 - a7);
    let (c0, c1, c2, c3) = (b0 + b2, b1 + b3, b0 - b2, b1 - b3);
    let (c4, c5, c6, c7) = (b4 + b6, b5 + b7, b4 - b6, b5 - b7);
    *w = [
        c0 + c4,
        c1 + c5,
        c2 + c6,
        c3 + c7,
        c0 - c4,
        c1 - c5,
        c2 - c6,
        c3 - c7,
    ]
    .map(|v| v * HADAMARD_SCALE);
}

/// A stereo FDN reverb. See the module documentation.
#[derive(Clone)]
pub struct Reverb {
    max_sample_rate: f32,
    sample_rate: f32,
    params: ReverbParams,
    /// Interleaved delay lines.
    lines: Vec<[f32; LINES]>,
    line_mask: usize,
    line_pos: usize,
    /// Line lengths in samples (the shortest delay of modulated lines).
    len: [usize; LINES],
    /// Modulation excursion in samples (delay swings over `[len, len + 2·depth]`).
    mod_depth_samples: f32,
    /// LFOs stepped once per [`MOD_UPDATE_FRAMES`] samples.
    lfo: [Lfo; 2],
    /// Samples until the modulated taps are next recomputed.
    mod_countdown: usize,
    /// Whole-sample offset and fraction of each modulated line's read tap.
    mod_taps: [(usize, f32); MOD_LINES],
    /// One-pole damping poles.
    damp_pole: [f32; LINES],
    damp_state: [f32; LINES],
    /// Per-line decay gains.
    gain: [f32; LINES],
    out_gain: f32,
    /// Interleaved stereo pre-delay.
    predelay: Vec<[f32; 2]>,
    predelay_mask: usize,
    predelay_pos: usize,
    predelay_len: usize,
    /// Interleaved diffuser allpass lines (L1, L2, R1, R2).
    diffuser: Vec<[f32; 4]>,
    diffuser_mask: usize,
    diffuser_pos: usize,
    diffuser_len: [usize; 4],
}

impl fmt::Debug for Reverb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reverb")
            .field("sample_rate", &self.sample_rate)
            .field("max_sample_rate", &self.max_sample_rate)
            .field("params", &self.params)
            .field("len", &self.len)
            .field("out_gain", &self.out_gain)
            .finish_non_exhaustive()
    }
}

impl Reverb {
    /// Bytes its delay lines take on the heap.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        size_of_val(self.lines.as_slice())
            + size_of_val(self.predelay.as_slice())
            + size_of_val(self.diffuser.as_slice())
    }

    /// A reverb with default parameters, allocating every line for sample rates up to
    /// `max_sample_rate` hertz (at most 768 kHz). Runs at `max_sample_rate` until
    /// [`set_sample_rate`](Self::set_sample_rate).
    #[must_use]
    pub fn new(max_sample_rate: f32) -> Self {
        let max_sample_rate = sanitize_sample_rate(max_sample_rate);
        let (lines, predelay, diffusers) = buffer_frames(max_sample_rate);
        let mut r = Self {
            max_sample_rate,
            sample_rate: max_sample_rate,
            params: ReverbParams::default(),
            lines: vec![[0.0; LINES]; lines],
            line_mask: lines - 1,
            line_pos: 0,
            len: [1; LINES],
            mod_depth_samples: 0.0,
            lfo: [Lfo::new(max_sample_rate, LFO_HZ[0], 0.0); 2],
            mod_countdown: 0,
            mod_taps: [(1, 0.0); MOD_LINES],
            damp_pole: [0.0; LINES],
            damp_state: [0.0; LINES],
            gain: [0.0; LINES],
            out_gain: 0.0,
            predelay: vec![[0.0; 2]; predelay],
            predelay_mask: predelay - 1,
            predelay_pos: 0,
            predelay_len: 0,
            diffuser: vec![[0.0; 4]; diffusers],
            diffuser_mask: diffusers - 1,
            diffuser_pos: 0,
            diffuser_len: [1; 4],
        };
        r.set_sample_rate(max_sample_rate);
        r
    }

    /// Changes the sample rate (clamped to the constructor's maximum): recomputes
    /// line lengths and coefficients and clears every line (an O(memory) fill, no
    /// allocation).
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        let sr = sanitize_sample_rate(sample_rate).min(self.max_sample_rate);
        self.sample_rate = sr;
        let (lines, predelay, diffusers) = buffer_frames(sr);
        self.line_mask = lines.min(self.lines.len()) - 1;
        self.predelay_mask = predelay.min(self.predelay.len()) - 1;
        self.diffuser_mask = diffusers.min(self.diffuser.len()) - 1;
        self.len = line_lengths(sr);
        for (len, ms) in self.diffuser_len.iter_mut().zip(DIFFUSER_MS) {
            *len = ((ms * 1e-3 * sr).round() as usize).max(1);
        }
        self.lines.fill([0.0; LINES]);
        self.predelay.fill([0.0; 2]);
        self.diffuser.fill([0.0; 4]);
        self.set_params(self.params);
        self.reset();
    }

    /// Sets decay, pre-delay, damping and modulation (clamped to their ranges;
    /// non-finite values → defaults). Takes effect on the next sample.
    pub fn set_params(&mut self, params: ReverbParams) {
        let d = ReverbParams::default();
        self.params = params;
        let sr = self.sample_rate;
        let decay_s = clamp_safe(
            finite_or(params.decay_s, d.decay_s),
            MIN_DECAY_S,
            MAX_DECAY_S,
        );
        let predelay_ms = clamp_safe(
            finite_or(params.predelay_ms, d.predelay_ms),
            0.0,
            MAX_PREDELAY_MS,
        );
        let mod_depth = clamp_safe(finite_or(params.mod_depth, d.mod_depth), 0.0, 1.0);
        let damping_hz = finite_or(params.damping_hz, d.damping_hz).max(MIN_DAMPING_HZ);

        self.predelay_len = ((predelay_ms * 1e-3 * sr).round() as usize).min(self.predelay_mask);
        self.mod_depth_samples = mod_depth * MAX_MOD_MS * 1e-3 * sr;

        let rt60_samples = f64::from(decay_s) * f64::from(sr);
        let damping_on = damping_hz < DAMPING_OFF_RATIO * sr;
        let cos_w = (std::f64::consts::TAU * f64::from(damping_hz) / f64::from(sr)).cos();
        let mut total_delay = 0.0;
        for i in 0..LINES {
            let mean_delay = self.len[i] as f64
                + if i < MOD_LINES {
                    f64::from(self.mod_depth_samples)
                } else {
                    0.0
                };
            total_delay += mean_delay;
            let g = 10f64.powf(-3.0 * mean_delay / rt60_samples);
            self.gain[i] = g as f32;
            // Pole p with (1-p)²/(1 - 2p·cos ω + p²) = g²: the smaller root of
            // (1-g²)p² - 2(1-g²cos ω)p + (1-g²) = 0.
            self.damp_pole[i] = if damping_on {
                let a = 1.0 - g * g;
                let b = 1.0 - g * g * cos_w;
                ((b - (b * b - a * a).max(0.0).sqrt()) / a) as f32
            } else {
                0.0
            };
        }
        // Diffuse-tail energy per unit of input energy, for each input channel:
        // |c|²·|b|²·rt60_samples / (6·ln10·M), with |c|² = 8 and |b|² = 1.
        let tail = LINES as f64 * rt60_samples / (6.0 * std::f64::consts::LN_10 * total_delay);
        let energy = 2.0 * tail + f64::from(EARLY_GAIN * EARLY_GAIN);
        self.out_gain = (1.0 / energy.sqrt()) as f32;
    }

    /// The parameters last set.
    #[must_use]
    pub fn params(&self) -> ReverbParams {
        self.params
    }

    /// Clears the active portion of every line and restarts the LFOs.
    pub fn reset(&mut self) {
        self.lines[..=self.line_mask].fill([0.0; LINES]);
        self.predelay[..=self.predelay_mask].fill([0.0; 2]);
        self.diffuser[..=self.diffuser_mask].fill([0.0; 4]);
        self.line_pos = 0;
        self.predelay_pos = 0;
        self.diffuser_pos = 0;
        self.damp_state = [0.0; LINES];
        self.mod_countdown = 0;
        let update_rate = self.sample_rate / MOD_UPDATE_FRAMES as f32;
        self.lfo = [
            Lfo::new(update_rate, LFO_HZ[0], 0.0),
            Lfo::new(update_rate, LFO_HZ[1], 0.3),
        ];
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
    /// Buffers are re-sliced to their masks once per block, so every masked index
    /// below is provably in bounds and the per-sample loop carries no checks.
    pub fn process_block(&mut self, left: &mut [f32], right: &mut [f32]) {
        let lines = &mut self.lines[..=self.line_mask];
        let predelay = &mut self.predelay[..=self.predelay_mask];
        let diffuser = &mut self.diffuser[..=self.diffuser_mask];
        let (line_mask, pre_mask, dif_mask) =
            (self.line_mask, self.predelay_mask, self.diffuser_mask);
        let (mut line_pos, mut pre_pos, mut dif_pos) =
            (self.line_pos, self.predelay_pos, self.diffuser_pos);
        let v = |a: &[f32; LINES], k: usize| f32x4::from([a[k], a[k + 1], a[k + 2], a[k + 3]]);
        let (pole, gain) = (
            [v(&self.damp_pole, 0), v(&self.damp_pole, 4)],
            [v(&self.gain, 0), v(&self.gain, 4)],
        );
        let (out_l_taps, out_r_taps) = ([v(&OUT_L, 0), v(&OUT_L, 4)], [v(&OUT_R, 0), v(&OUT_R, 4)]);
        let mut state = [v(&self.damp_state, 0), v(&self.damp_state, 4)];
        let tiny = f32x4::splat(TINY);
        let mod_base: [f32; MOD_LINES] =
            std::array::from_fn(|i| self.len[i] as f32 + self.mod_depth_samples);

        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            // Pre-delay, then two allpass diffusers per side.
            predelay[pre_pos] = [sanitize(*l), sanitize(*r)];
            let [pl, pr] = predelay[pre_pos.wrapping_sub(self.predelay_len) & pre_mask];
            pre_pos = (pre_pos + 1) & pre_mask;
            let tap = |k: usize| diffuser[dif_pos.wrapping_sub(self.diffuser_len[k]) & dif_mask][k];
            let (t0, t1, t2, t3) = (tap(0), tap(1), tap(2), tap(3));
            let (y0, s0) = allpass(pl, t0);
            let (ul, s1) = allpass(y0, t1);
            let (y2, s2) = allpass(pr, t2);
            let (ur, s3) = allpass(y2, t3);
            diffuser[dif_pos] = [s0, s1, s2, s3];
            dif_pos = (dif_pos + 1) & dif_mask;

            // Line outputs: the first MOD_LINES at modulated, interpolated delays.
            // The modulation moves a few thousandths of a sample per sample, so
            // its taps are recomputed every MOD_UPDATE_FRAMES samples, counted by
            // the reverb itself so block sizes never change the result.
            if self.mod_countdown == 0 {
                self.mod_countdown = MOD_UPDATE_FRAMES;
                self.lfo[0].step();
                self.lfo[1].step();
                let m = [
                    self.lfo[0].sin,
                    self.lfo[0].cos,
                    self.lfo[1].sin,
                    self.lfo[1].cos,
                ];
                for (tap, (base, m)) in self.mod_taps.iter_mut().zip(mod_base.iter().zip(m)) {
                    let delay = base + self.mod_depth_samples * m as f32;
                    let whole = delay as usize;
                    *tap = (whole, delay - whole as f32);
                }
            }
            self.mod_countdown -= 1;
            let mut y = [0.0; LINES];
            for (i, &(whole, frac)) in self.mod_taps.iter().enumerate() {
                let idx = line_pos.wrapping_sub(whole) & line_mask;
                let a = lines[idx][i];
                let b = lines[idx.wrapping_sub(1) & line_mask][i];
                y[i] = a + frac * (b - a);
            }
            for (i, out) in y.iter_mut().enumerate().skip(MOD_LINES) {
                *out = lines[line_pos.wrapping_sub(self.len[i]) & line_mask][i];
            }

            // Damping, decay gain and the output taps, four lines per vector.
            let mut w = [0.0; LINES];
            let (mut out_l, mut out_r) = (f32x4::ZERO, f32x4::ZERO);
            for half in 0..2 {
                let yv = v(&y, 4 * half);
                let z = yv + pole[half] * (state[half] - yv);
                // Flush decaying state to zero before it turns subnormal.
                let z = z.abs().simd_lt(tiny).bitselect(f32x4::ZERO, z);
                state[half] = z;
                let wv = gain[half] * z;
                out_l += out_l_taps[half] * wv;
                out_r += out_r_taps[half] * wv;
                w[4 * half..4 * half + 4].copy_from_slice(&wv.to_array());
            }
            w[IN_L_LINE] += ul;
            w[IN_R_LINE] += ur;
            // Sums of flushed state and sanitized input cannot be subnormal.
            hadamard8(&mut w);
            lines[line_pos] = w;
            line_pos = (line_pos + 1) & line_mask;

            *l = self.out_gain * (out_l.reduce_add() + EARLY_GAIN * ul);
            *r = self.out_gain * (out_r.reduce_add() + EARLY_GAIN * ur);
        }
        (self.line_pos, self.predelay_pos, self.diffuser_pos) = (line_pos, pre_pos, dif_pos);
        self.damp_state[..4].copy_from_slice(&state[0].to_array());
        self.damp_state[4..].copy_from_slice(&state[1].to_array());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::svf::{Svf, SvfCoefs};
    use crate::dsp::test_util::{first_above, rms, white};

    /// Impulse response of `rev` (impulse on the left, or both sides).
    fn impulse_response(rev: &mut Reverb, n: usize, both: bool) -> (Vec<f32>, Vec<f32>) {
        let mut l = vec![0.0; n];
        let mut r = vec![0.0; n];
        l[0] = 1.0;
        if both {
            r[0] = 1.0;
        }
        rev.process_block(&mut l, &mut r);
        (l, r)
    }

    /// RT60 in seconds by Schroeder backward integration of `h²`, fitting a line to
    /// the -5..-25 dB part of the decay curve and extrapolating to -60 dB.
    fn schroeder_rt60(energy: &[f64], sample_rate: f32) -> f64 {
        let mut edc = vec![0.0; energy.len()];
        let mut acc = 0.0;
        for i in (0..energy.len()).rev() {
            acc += energy[i];
            edc[i] = acc;
        }
        let total = edc[0];
        let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, e) in edc.iter().enumerate() {
            let db = 10.0 * (e / total).log10();
            if (-25.0..=-5.0).contains(&db) {
                let t = i as f64 / f64::from(sample_rate);
                n += 1.0;
                sx += t;
                sy += db;
                sxx += t * t;
                sxy += t * db;
            }
        }
        let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
        -60.0 / slope
    }

    fn stereo_energy(l: &[f32], r: &[f32]) -> Vec<f64> {
        l.iter()
            .zip(r)
            .map(|(a, b)| f64::from(a * a) + f64::from(b * b))
            .collect()
    }

    #[test]
    fn line_lengths_are_distinct_primes() {
        for sr in [8_000.0, 44_100.0, 48_000.0, 768_000.0] {
            let len = line_lengths(sr);
            for (i, &a) in len.iter().enumerate() {
                assert_eq!(next_prime(a), a);
                for &b in &len[i + 1..] {
                    assert_ne!(a, b);
                }
            }
            let (frames, _, _) = buffer_frames(sr);
            assert!(len
                .iter()
                .all(|&l| l + 2 * (MAX_MOD_MS * 1e-3 * sr) as usize + 2 < frames));
        }
    }

    #[test]
    fn rt60_matches_decay_time() {
        for (sr, decay_s) in [(48_000.0, 2.0), (48_000.0, 3.0), (22_050.0, 3.0)] {
            let mut rev = Reverb::new(sr);
            rev.set_params(ReverbParams {
                decay_s,
                predelay_ms: 0.0,
                damping_hz: 1e9,
                mod_depth: 0.0,
            });
            let n = (1.2 * decay_s * sr) as usize;
            let (l, r) = impulse_response(&mut rev, n, false);
            let rt = schroeder_rt60(&stereo_energy(&l, &r), sr);
            let err = rt / f64::from(decay_s) - 1.0;
            assert!(err.abs() < 0.15, "{sr}/{decay_s}: measured {rt}");
        }
    }

    #[test]
    fn rt60_holds_below_the_damping_with_modulation() {
        // Default damping and modulation: the 1 kHz band still decays in decay_s.
        let sr = 48_000.0;
        for decay_s in [2.0, 3.0] {
            let mut rev = Reverb::new(sr);
            rev.set_params(ReverbParams {
                decay_s,
                ..ReverbParams::default()
            });
            let n = (1.2 * decay_s * sr) as usize;
            let (mut l, mut r) = impulse_response(&mut rev, n, true);
            let band = SvfCoefs::bandpass(sr, 1_000.0, 1.4);
            Svf::new().process_block(&band, &mut l);
            Svf::new().process_block(&band, &mut r);
            let rt = schroeder_rt60(&stereo_energy(&l, &r), sr);
            let err = rt / f64::from(decay_s) - 1.0;
            assert!(err.abs() < 0.15, "{decay_s}: measured {rt}");
        }
    }

    #[test]
    fn damping_shortens_the_high_frequency_decay() {
        let sr = 48_000.0;
        let mut rev = Reverb::new(sr);
        rev.set_params(ReverbParams {
            decay_s: 3.0,
            damping_hz: 4_000.0,
            ..ReverbParams::default()
        });
        let (mut l, mut r) = impulse_response(&mut rev, (1.2 * 3.0 * sr) as usize, true);
        let band = SvfCoefs::bandpass(sr, 8_000.0, 1.4);
        Svf::new().process_block(&band, &mut l);
        Svf::new().process_block(&band, &mut r);
        let rt = schroeder_rt60(&stereo_energy(&l, &r), sr);
        // Half the decay time (1.5 s) at 4 kHz, shorter still an octave above.
        assert!(rt < 1.5, "8 kHz RT60 {rt}");
    }

    #[test]
    fn output_starts_at_the_predelay() {
        for (sr, ms) in [
            (48_000.0, 30.0),
            (44_100.0, 0.0),
            (96_000.0, 100.0),
            (8_000.0, 12.5),
        ] {
            let mut rev = Reverb::new(sr);
            rev.set_params(ReverbParams {
                predelay_ms: ms,
                ..ReverbParams::default()
            });
            let (l, r) = impulse_response(&mut rev, (0.2 * sr) as usize, true);
            let want = f64::from(ms) * 1e-3 * f64::from(sr);
            let tolerance = 2e-3 * f64::from(sr);
            for (name, x) in [("left", &l), ("right", &r)] {
                let first = first_above(x, 0.0).expect("output") as f64;
                assert!(
                    (first - want).abs() <= tolerance,
                    "{sr}/{ms} {name}: {first} vs {want}"
                );
            }
        }
    }

    #[test]
    fn wet_level_is_about_unity_for_white_noise() {
        let sr = 48_000.0;
        for decay_s in [0.8, 2.6, 8.0] {
            let mut rev = Reverb::new(sr);
            rev.set_params(ReverbParams {
                decay_s,
                damping_hz: 1e9,
                mod_depth: 0.0,
                ..ReverbParams::default()
            });
            let n = (decay_s * sr) as usize + 96_000;
            let mut l = white(1, n);
            let mut r = white(2, n);
            let input = rms(&l);
            rev.process_block(&mut l, &mut r);
            let skip = n - 96_000;
            let ratio_l = rms(&l[skip..]) / input;
            let ratio_r = rms(&r[skip..]) / input;
            for ratio in [ratio_l, ratio_r] {
                assert!(
                    (0.7..1.4).contains(&ratio),
                    "decay {decay_s}: wet/dry {ratio}"
                );
            }
            // Left and right are decorrelated.
            let corr: f64 = l[skip..]
                .iter()
                .zip(&r[skip..])
                .map(|(a, b)| f64::from(a * b))
                .sum::<f64>()
                / (rms(&l[skip..]) * rms(&r[skip..]) * 96_000.0);
            assert!(corr.abs() < 0.1, "correlation {corr}");
        }
    }

    #[test]
    fn sample_rate_is_clamped_to_the_allocation() {
        let mut rev = Reverb::new(48_000.0);
        rev.set_sample_rate(768_000.0);
        assert_eq!(rev.sample_rate, 48_000.0);
        rev.set_sample_rate(8_000.0);
        let (l, _) = impulse_response(&mut rev, 16_000, false);
        assert!(l.iter().all(|v| v.is_finite()));
        assert!(rms(&l) > 0.0);
        let big = Reverb::new(1e9);
        assert_eq!(big.max_sample_rate, 768_000.0);
    }

    #[test]
    fn bad_input_and_params_do_not_poison() {
        let mut rev = Reverb::new(48_000.0);
        rev.set_params(ReverbParams {
            decay_s: f32::NAN,
            predelay_ms: 1e9,
            damping_hz: -4.0,
            mod_depth: f32::INFINITY,
        });
        for x in [f32::NAN, f32::INFINITY, -f32::INFINITY, f32::MAX, 1e30] {
            let (a, b) = rev.process(x, -x);
            assert!(a.is_finite() && b.is_finite());
        }
        let mut l = vec![0.0; 480_000];
        let mut r = vec![0.0; 480_000];
        rev.process_block(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|v| v.is_finite()));
        // The huge (clamped) inputs have decayed away after 10 s (RT60 2.6 s).
        assert!(rms(&l[470_000..]) < 1e-2, "{}", rms(&l[470_000..]));
    }

    #[test]
    fn configuration_does_not_reallocate() {
        let mut rev = Reverb::new(96_000.0);
        let ptrs = |r: &Reverb| {
            (
                r.lines.as_ptr(),
                r.lines.capacity(),
                r.predelay.as_ptr(),
                r.predelay.capacity(),
                r.diffuser.as_ptr(),
                r.diffuser.capacity(),
            )
        };
        let before = ptrs(&rev);
        rev.set_sample_rate(44_100.0);
        rev.set_params(ReverbParams {
            decay_s: 9.0,
            predelay_ms: 100.0,
            damping_hz: 300.0,
            mod_depth: 1.0,
        });
        rev.set_sample_rate(96_000.0);
        rev.reset();
        rev.process(1.0, 1.0);
        assert_eq!(before, ptrs(&rev));
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let mut a = Reverb::new(48_000.0);
        a.set_params(ReverbParams {
            decay_s: 1.5,
            predelay_ms: 10.0,
            damping_hz: 5_000.0,
            mod_depth: 1.0,
        });
        let mut b = a.clone();
        let input_l = white(3, 20_000);
        let input_r = white(4, 20_000);
        let (mut l, mut r) = (input_l.clone(), input_r.clone());
        a.process_block(&mut l, &mut r);
        for i in 0..input_l.len() {
            assert_eq!(b.process(input_l[i], input_r[i]), (l[i], r[i]), "{i}");
        }
        a.reset();
        let (mut l2, mut r2) = (input_l, input_r);
        a.process_block(&mut l2, &mut r2);
        assert_eq!((l, r), (l2, r2));
    }
}
