//! Band-limited oscillators: sine, saw, square and triangle.
//!
//! The phase is a 32-bit fixed-point accumulator (one cycle = 2^32), so it wraps
//! exactly, never drifts, and gives a frequency resolution of `sr / 2^32`.
//!
//! - Sine: a degree-9 odd polynomial on a quarter-wave folded phase (Taylor series of
//!   `sin(πx/2)`, |error| < 4e-6), no `f32::sin` per sample.
//! - Saw and square: naive waveforms corrected with two-sample polynomial band-limited
//!   steps (polyBLEP; Välimäki & Huovilainen, "Antialiasing oscillators in subtractive
//!   synthesis", IEEE Signal Processing Magazine 24(2), 2007).
//! - Triangle: naive triangle corrected at its corners with the integrated residual,
//!   the polynomial band-limited ramp (polyBLAMP; Esqueda, Välimäki & Bilbao,
//!   "Rounding corners with BLAMP", DAFx 2016).
//!
//! The residuals are derived from a triangular (linear B-spline) kernel two samples
//! wide: for a unit step at offset `x` samples, `(1 + x)²/2` before it and
//! `-(1 - x)²/2` after; their integrals `(1 + x)³/6` and `(1 - x)³/6` correct a unit
//! change of slope per sample.

use wide::f32x4;

use super::{clamp_safe, sanitize_sample_rate};

/// One cycle in phase units.
const CYCLE: f64 = 4_294_967_296.0;
/// Phase units to turns (cycles) in `f32`.
const PHASE_TO_TURNS: f32 = 1.0 / 4_294_967_296.0;
/// 2^-24: the top 24 phase bits to turns.
const TOP24_TO_TURNS: f32 = 1.0 / 16_777_216.0;
/// Highest oscillator frequency as a fraction of the sample rate.
const MAX_FREQ_RATIO: f32 = 0.45;

/// Coefficients of `sin(πx/2) ≈ x(C1 + x²(C3 + x²(C5 + x²(C7 + x²C9))))`, |x| ≤ 1.
const C1: f32 = std::f32::consts::FRAC_PI_2;
const C3: f32 = -0.645_964_1;
const C5: f32 = 0.079_692_63;
const C7: f32 = -0.004_681_754;
const C9: f32 = 0.000_160_441_2;

/// The oscillator's waveform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Waveform {
    /// A pure sine.
    #[default]
    Sine,
    /// A rising sawtooth, -1 → 1 over each cycle (polyBLEP).
    Saw,
    /// A square, +1 for the first half-cycle (polyBLEP).
    Square,
    /// A triangle rising through 0 at phase 0, peak at 1/4 (polyBLAMP).
    Triangle,
}

/// `sin(2π·turns)` by polynomial, |error| < 4e-6. Non-finite input gives 0.
#[inline]
#[must_use]
pub fn sin_turns(turns: f32) -> f32 {
    if turns.is_finite() {
        sin_unit(turns - turns.floor())
    } else {
        0.0
    }
}

/// `sin(2πt)` for `t` in `[0, 1]`.
#[inline]
fn sin_unit(t: f32) -> f32 {
    // sin(2πt) = -sin(2πu) with u = t - 1/2 in [-1/2, 1/2]; fold u into [-1/4, 1/4]
    // using sin(2π(±1/2 - u)) = sin(2πu); then x = 4u in [-1, 1].
    let u = t - 0.5;
    let v = if u > 0.25 {
        0.5 - u
    } else if u < -0.25 {
        -0.5 - u
    } else {
        u
    };
    let x = 4.0 * v;
    let x2 = x * x;
    -x * (C1 + x2 * (C3 + x2 * (C5 + x2 * (C7 + x2 * C9))))
}

/// [`sin_unit`] four lanes at a time: `sin(2πt)` for each `t` in `[0, 1)`, with
/// the same fold and polynomial, for voice banks rendered in SIMD lanes.
#[inline]
#[must_use]
pub fn sin_unit_x4(t: f32x4) -> f32x4 {
    let u = t - f32x4::HALF;
    let quarter = f32x4::splat(0.25);
    let v = u.simd_gt(quarter).bitselect(
        f32x4::HALF - u,
        u.simd_lt(-quarter).bitselect(-f32x4::HALF - u, u),
    );
    let x = v * 4.0;
    let x2 = x * x;
    let poly = f32x4::splat(C9)
        .mul_add(x2, f32x4::splat(C7))
        .mul_add(x2, f32x4::splat(C5))
        .mul_add(x2, f32x4::splat(C3))
        .mul_add(x2, f32x4::splat(C1));
    -x * poly
}

/// Residual of a unit upward step at phase 0 (two-sample polyBLEP), scaled by 2:
/// add it for a step of +2, subtract it for a step of -2.
#[inline]
fn poly_blep(t: f32, dt: f32) -> f32 {
    if t < dt {
        let x = t / dt;
        let y = 1.0 - x;
        -y * y
    } else if t > 1.0 - dt {
        let x = (t - 1.0) / dt;
        let y = 1.0 + x;
        y * y
    } else {
        0.0
    }
}

/// Residual of a unit change of slope per sample at phase 0 (two-sample polyBLAMP).
#[inline]
fn poly_blamp(t: f32, dt: f32) -> f32 {
    if t < dt {
        let y = 1.0 - t / dt;
        y * y * y * (1.0 / 6.0)
    } else if t > 1.0 - dt {
        let y = 1.0 + (t - 1.0) / dt;
        y * y * y * (1.0 / 6.0)
    } else {
        0.0
    }
}

/// A fixed-point phase as turns in `[0, 1)`, exactly (its top 24 bits), so that it
/// never rounds up to 1 and `turns(p) < 0.5` exactly when `p < 2^31`.
#[inline]
fn turns(phase: u32) -> f32 {
    (phase >> 8) as f32 * TOP24_TO_TURNS
}

/// A band-limited oscillator with a fixed-point phase accumulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Oscillator {
    waveform: Waveform,
    sample_rate: f32,
    /// Phase units per hertz: `2^32 / sample_rate`.
    inc_per_hz: f64,
    frequency_hz: f32,
    /// Current phase, one cycle = 2^32.
    phase: u32,
    /// Phase that `reset` returns to.
    start_phase: u32,
    /// Phase increment per sample.
    inc: u32,
    /// Phase increment in cycles per sample (`inc / 2^32`).
    dt: f32,
}

impl Oscillator {
    /// A silent (0 Hz) oscillator of `waveform` at `sample_rate` hertz, phase 0.
    #[must_use]
    pub fn new(waveform: Waveform, sample_rate: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        Self {
            waveform,
            sample_rate,
            inc_per_hz: CYCLE / f64::from(sample_rate),
            frequency_hz: 0.0,
            phase: 0,
            start_phase: 0,
            inc: 0,
            dt: 0.0,
        }
    }

    /// Changes the sample rate (hertz), keeping the frequency in hertz and the phase.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sanitize_sample_rate(sample_rate);
        self.inc_per_hz = CYCLE / f64::from(self.sample_rate);
        self.set_frequency(self.frequency_hz);
    }

    /// Changes the waveform, keeping the phase.
    pub fn set_waveform(&mut self, waveform: Waveform) {
        self.waveform = waveform;
    }

    /// The waveform.
    #[must_use]
    pub fn waveform(&self) -> Waveform {
        self.waveform
    }

    /// Sets the frequency in hertz, clamped to `[0, 0.45·sample_rate]` (NaN → 0).
    /// Cheap enough to call every sample.
    #[inline]
    pub fn set_frequency(&mut self, hz: f32) {
        let hz = clamp_safe(hz, 0.0, MAX_FREQ_RATIO * self.sample_rate);
        self.frequency_hz = hz;
        // hz / sr < 0.45, so the product stays below 2^32 and the cast is exact.
        let inc = (f64::from(hz) * self.inc_per_hz) as u32;
        self.inc = inc;
        self.dt = inc as f32 * PHASE_TO_TURNS;
    }

    /// The frequency in hertz after clamping.
    #[must_use]
    pub fn frequency_hz(&self) -> f32 {
        self.frequency_hz
    }

    /// Sets the phase in cycles (taken modulo 1; non-finite → 0) now, and as the
    /// phase [`reset`](Self::reset) returns to.
    pub fn set_phase(&mut self, phase: f32) {
        let p = if phase.is_finite() {
            f64::from(phase).rem_euclid(1.0)
        } else {
            0.0
        };
        let fixed = (p * CYCLE) as u32;
        self.start_phase = fixed;
        self.phase = fixed;
    }

    /// The current phase in cycles, `[0, 1)`.
    #[must_use]
    pub fn phase(&self) -> f32 {
        turns(self.phase)
    }

    /// Returns to the start phase set by [`set_phase`](Self::set_phase) (0 by default).
    pub fn reset(&mut self) {
        self.phase = self.start_phase;
    }

    /// The next sample, about `[-1, 1]`.
    #[inline]
    pub fn process(&mut self) -> f32 {
        let phase = self.phase;
        self.phase = phase.wrapping_add(self.inc);
        let dt = self.dt;
        let t = turns(phase);
        match self.waveform {
            Waveform::Sine => sin_unit(t),
            Waveform::Saw => 2.0 * t - 1.0 - poly_blep(t, dt),
            Waveform::Square => {
                let t_fall = turns(phase.wrapping_add(1 << 31));
                let naive = if t < 0.5 { 1.0 } else { -1.0 };
                naive + poly_blep(t, dt) - poly_blep(t_fall, dt)
            }
            Waveform::Triangle => {
                // Phase relative to the peak (t = 1/4) and to the trough (t = 3/4).
                let t_peak = turns(phase.wrapping_sub(1 << 30));
                let t_trough = turns(phase.wrapping_add(1 << 30));
                let naive = 4.0 * (t_peak - 0.5).abs() - 1.0;
                let slope_change = 8.0 * dt;
                naive - slope_change * poly_blamp(t_peak, dt)
                    + slope_change * poly_blamp(t_trough, dt)
            }
        }
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn process_block(&mut self, out: &mut [f32]) {
        for o in out {
            *o = self.process();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_util::zero_crossing_hz;

    const ALL: [Waveform; 4] = [
        Waveform::Sine,
        Waveform::Saw,
        Waveform::Square,
        Waveform::Triangle,
    ];

    fn render(w: Waveform, sr: f32, hz: f32, n: usize) -> Vec<f32> {
        let mut o = Oscillator::new(w, sr);
        o.set_frequency(hz);
        let mut out = vec![0.0; n];
        o.process_block(&mut out);
        out
    }

    #[test]
    fn simd_sine_matches_scalar() {
        for i in 0..4000 {
            let t = i as f32 / 4000.0;
            let lanes = sin_unit_x4(f32x4::from([t, (t + 0.3).fract(), 0.999_9, 0.0])).to_array();
            assert!((lanes[0] - sin_unit(t)).abs() < 1e-6, "{t}");
            assert!((lanes[1] - sin_unit((t + 0.3).fract())).abs() < 1e-6, "{t}");
            assert!((lanes[2] - sin_unit(0.999_9)).abs() < 1e-6);
        }
    }

    #[test]
    fn sine_polynomial_error_bound() {
        let mut worst = 0.0_f64;
        for i in 0..=200_000 {
            let t = i as f32 / 200_000.0;
            let exact = (std::f64::consts::TAU * f64::from(t)).sin();
            worst = worst.max((f64::from(sin_unit(t)) - exact).abs());
        }
        assert!(worst < 1e-5, "worst error {worst}");
        // Range reduction for arbitrary turns.
        for t in [-3.3_f32, -0.25, 0.0, 0.125, 7.75, 1234.4] {
            let exact = (std::f64::consts::TAU * f64::from(t)).sin();
            assert!((f64::from(sin_turns(t)) - exact).abs() < 1e-3, "{t}");
        }
        assert_eq!(sin_turns(f32::NAN), 0.0);
    }

    #[test]
    fn frequency_from_zero_crossings() {
        let cases: [(f32, &[f32]); 3] = [
            (8_000.0, &[55.0, 440.0, 1_234.5, 3_000.0]),
            (48_000.0, &[31.0, 440.0, 5_000.0, 15_000.0]),
            (768_000.0, &[20.0, 440.0, 12_345.0, 100_000.0]),
        ];
        for (sr, freqs) in cases {
            for &hz in freqs {
                for w in ALL {
                    // About 40 cycles.
                    let n = (40.0 * sr / hz) as usize;
                    let x = render(w, sr, hz, n);
                    let measured = zero_crossing_hz(&x, sr);
                    let err = (measured / f64::from(hz) - 1.0).abs();
                    assert!(err < 0.005, "{w:?} {hz} Hz @ {sr}: measured {measured}");
                }
            }
        }
    }

    #[test]
    fn frequency_is_clamped_below_nyquist() {
        let mut o = Oscillator::new(Waveform::Saw, 8_000.0);
        o.set_frequency(1e9);
        assert_eq!(o.frequency_hz(), 3_600.0);
        o.set_frequency(-5.0);
        assert_eq!(o.frequency_hz(), 0.0);
        o.set_frequency(f32::NAN);
        assert_eq!(o.frequency_hz(), 0.0);
        o.set_frequency(3_600.0);
        for _ in 0..1000 {
            assert!(o.process().is_finite());
        }
    }

    #[test]
    fn output_stays_in_range() {
        for w in ALL {
            for hz in [0.0, 1.0, 100.0, 3_000.0, 10_000.0, 21_000.0] {
                let x = render(w, 48_000.0, hz, 4_800);
                let peak = x.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
                assert!(peak <= 1.2, "{w:?} {hz}: peak {peak}");
            }
        }
    }

    /// Alias-to-harmonic energy ratio of one exactly periodic frame of `x` whose
    /// fundamental sits on DFT bin `bin`.
    fn alias_ratio(x: &[f32], bin: usize) -> f64 {
        let n = x.len();
        let tw: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / n as f64;
                (a.cos(), a.sin())
            })
            .collect();
        let (mut harmonic, mut alias) = (0.0, 0.0);
        for k in 1..n / 2 {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in x.iter().enumerate() {
                let (c, s) = tw[(k * i) % n];
                re += f64::from(v) * c;
                im -= f64::from(v) * s;
            }
            let p = re * re + im * im;
            if k % bin == 0 {
                harmonic += p;
            } else {
                alias += p;
            }
        }
        alias / harmonic
    }

    #[test]
    fn polyblep_saw_aliases_less_than_naive() {
        // 97 cycles in 4096 samples at 48 kHz (≈ 1137 Hz): the increment is exactly
        // 97·2^20, harmonics fall on multiples of bin 97 and aliases between them.
        const N: usize = 4096;
        const BIN: usize = 97;
        let sr = 48_000.0;
        let hz = sr * BIN as f32 / N as f32;
        let mut o = Oscillator::new(Waveform::Saw, sr);
        o.set_frequency(hz);
        assert_eq!(o.inc, (BIN as u32) << 20);
        let mut blep = vec![0.0; N];
        o.process_block(&mut blep);
        let naive: Vec<f32> = (0..N)
            .map(|i| {
                let t = ((i * BIN) % N) as f32 / N as f32;
                2.0 * t - 1.0
            })
            .collect();
        let r_blep = alias_ratio(&blep, BIN);
        let r_naive = alias_ratio(&naive, BIN);
        // PolyBLEP removes most of the aliasing: at least 10 dB less.
        assert!(
            r_blep < r_naive * 0.1,
            "blep {r_blep:e} vs naive {r_naive:e}"
        );

        let mut o = Oscillator::new(Waveform::Square, sr);
        o.set_frequency(hz);
        o.process_block(&mut blep);
        let naive: Vec<f32> = (0..N)
            .map(|i| if (i * BIN) % N < N / 2 { 1.0 } else { -1.0 })
            .collect();
        let (r_blep, r_naive) = (alias_ratio(&blep, BIN), alias_ratio(&naive, BIN));
        assert!(
            r_blep < r_naive * 0.1,
            "square: blep {r_blep:e} vs naive {r_naive:e}"
        );
    }

    #[test]
    fn triangle_is_band_limited_and_shaped() {
        const N: usize = 4096;
        const BIN: usize = 97;
        let sr = 48_000.0;
        let mut o = Oscillator::new(Waveform::Triangle, sr);
        o.set_frequency(sr * BIN as f32 / N as f32);
        let mut tri = vec![0.0; N];
        o.process_block(&mut tri);
        let naive: Vec<f32> = (0..N)
            .map(|i| {
                let t = ((i * BIN) % N) as f32 / N as f32;
                let tp = (t - 0.25).rem_euclid(1.0);
                4.0 * (tp - 0.5).abs() - 1.0
            })
            .collect();
        assert!(alias_ratio(&tri, BIN) < 0.5 * alias_ratio(&naive, BIN));
        // Low frequency: practically the naive triangle.
        let mut o = Oscillator::new(Waveform::Triangle, sr);
        o.set_frequency(100.0);
        let x: Vec<f32> = (0..480).map(|_| o.process()).collect();
        assert!(x[0].abs() < 1e-6);
        assert!((x[120] - 1.0).abs() < 0.01, "peak {}", x[120]);
        assert!((x[360] + 1.0).abs() < 0.01, "trough {}", x[360]);
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        for w in ALL {
            let mut a = Oscillator::new(w, 44_100.0);
            a.set_frequency(987.6);
            a.set_phase(0.3);
            let mut b = a;
            let mut block = vec![0.0; 1000];
            a.process_block(&mut block);
            let single: Vec<f32> = (0..1000).map(|_| b.process()).collect();
            assert_eq!(block, single, "{w:?}");
            a.reset();
            let mut again = vec![0.0; 1000];
            a.process_block(&mut again);
            assert_eq!(block, again, "{w:?}");
        }
    }

    #[test]
    fn phase_is_settable() {
        let mut o = Oscillator::new(Waveform::Sine, 48_000.0);
        o.set_phase(0.25);
        assert!((o.process() - 1.0).abs() < 1e-5);
        o.set_phase(-0.25);
        assert!((o.phase() - 0.75).abs() < 1e-6);
        o.set_phase(f32::INFINITY);
        assert_eq!(o.phase(), 0.0);
    }
}
