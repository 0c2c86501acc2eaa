//! Integer-factor decimation: an anti-aliasing lowpass (8th-order Butterworth,
//! four [`Svf`] sections at the Butterworth Qs) at the input rate, then every
//! `factor`-th sample. The cutoff is [`CUTOFF_RATIO`] of the output rate, so
//! what would fold back into the output band is attenuated by 48 dB or more
//! once it is an octave above the cutoff.

use super::svf::{Svf, SvfCoefs};

/// The lowpass cutoff as a fraction of the output rate.
pub const CUTOFF_RATIO: f32 = 0.4;

/// The Qs of an 8th-order Butterworth lowpass as four 2nd-order sections:
/// `1 / (2 sin((2k − 1)π / 16))`, k = 1..4.
const BUTTERWORTH_8_Q: [f32; 4] = [2.562_915_5, 0.899_976_2, 0.601_344_9, 0.509_795_6];

/// One channel's decimator.
#[derive(Debug, Clone)]
pub struct Decimator {
    factor: usize,
    coefs: [SvfCoefs; 4],
    sections: [Svf; 4],
}

impl Decimator {
    /// Takes `input_rate` down by `factor` (at least 1; 1 passes samples through).
    #[must_use]
    pub fn new(input_rate: f32, factor: usize) -> Self {
        let factor = factor.max(1);
        let cutoff_hz = CUTOFF_RATIO * input_rate / factor as f32;
        Self {
            factor,
            coefs: BUTTERWORTH_8_Q.map(|q| SvfCoefs::lowpass(input_rate, cutoff_hz, q)),
            sections: [Svf::new(); 4],
        }
    }

    /// The decimation factor.
    #[must_use]
    pub const fn factor(&self) -> usize {
        self.factor
    }

    /// Clears the filter state.
    pub fn reset(&mut self) {
        self.sections = [Svf::new(); 4];
    }

    /// Filters `input` and writes every `factor`-th sample (the last of each
    /// group) to `output`: `output.len()` samples from the first
    /// `output.len() × factor` of `input` (fewer if `input` is shorter).
    pub fn process_block(&mut self, input: &[f32], output: &mut [f32]) {
        for (group, out) in input.chunks_exact(self.factor).zip(output.iter_mut()) {
            let mut last = 0.0;
            for &x in group {
                last = self
                    .sections
                    .iter_mut()
                    .zip(&self.coefs)
                    .fold(x, |v, (s, c)| s.process(c, v));
            }
            *out = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::gain_to_db;

    /// The output's RMS level in dB for a sine of `hz` at `input_rate`, taken
    /// down by `factor`, after the filter settles.
    fn level_db(input_rate: f32, factor: usize, hz: f32) -> f32 {
        let n = 40_000 * factor;
        let input: Vec<f32> = (0..n)
            .map(|i| (std::f32::consts::TAU * hz * i as f32 / input_rate).sin())
            .collect();
        let mut out = vec![0.0; n / factor];
        let mut d = Decimator::new(input_rate, factor);
        d.process_block(&input, &mut out);
        let tail = &out[out.len() / 2..];
        let rms = (tail.iter().map(|x| x * x).sum::<f32>() / tail.len() as f32).sqrt();
        gain_to_db(rms * std::f32::consts::SQRT_2)
    }

    #[test]
    fn passes_the_band_and_stops_what_would_alias() {
        // 1 234.5678 Hz out of 7 × 1 234.5678 Hz, as a host at that rate gets.
        let out_rate = 1_234.567_8;
        let input_rate = out_rate * 7.0;
        for hz in [50.0, 200.0, 0.3 * out_rate] {
            let db = level_db(input_rate, 7, hz);
            assert!(db.abs() < 1.0, "{hz} Hz in the band: {db} dB");
        }
        // Above the output's Nyquist frequency, these would fold into the band.
        for hz in [0.8 * out_rate, 1.3 * out_rate, 3.1 * out_rate] {
            let db = level_db(input_rate, 7, hz);
            assert!(db < -40.0, "{hz} Hz would alias at {db} dB");
        }
    }

    #[test]
    fn factor_one_is_the_lowpass_alone_and_reset_reproduces() {
        let mut d = Decimator::new(8_000.0, 0);
        assert_eq!(d.factor(), 1);
        let input: Vec<f32> = (0..512)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let mut a = vec![0.0; 512];
        d.process_block(&input, &mut a);
        d.reset();
        let mut b = vec![0.0; 512];
        d.process_block(&input, &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|x| x.is_finite()));
    }
}
