//! White and filtered noise from the crate's deterministic SplitMix64 generator
//! ([`crate::rng`]), so a seed always gives the same noise.
//!
//! White noise is uniform in `[-1, 1)` (RMS `1/√3`, flat spectrum); filtered noise
//! runs it through a Cytomic state-variable filter ([`super::svf`]).

use super::svf::{Svf, SvfCoefs};
use crate::rng::Rng;

/// Uniform white noise in `[-1, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhiteNoise {
    seed: u64,
    rng: Rng,
}

impl WhiteNoise {
    /// Noise seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rng: Rng::new(seed),
        }
    }

    /// Reseeds with the construction seed: the same samples follow again.
    pub fn reset(&mut self) {
        self.rng = Rng::new(self.seed);
    }

    /// The next sample, uniform in `[-1, 1)`.
    #[inline]
    pub fn process(&mut self) -> f32 {
        self.rng.next_bipolar()
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn process_block(&mut self, out: &mut [f32]) {
        for o in out {
            *o = self.process();
        }
    }
}

/// White noise through a state-variable filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilteredNoise {
    noise: WhiteNoise,
    filter: Svf,
    coefs: SvfCoefs,
}

impl FilteredNoise {
    /// Noise seeded with `seed`, unfiltered until [`set_coefs`](Self::set_coefs).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            noise: WhiteNoise::new(seed),
            filter: Svf::new(),
            coefs: SvfCoefs::passthrough(),
        }
    }

    /// Sets the filter (e.g. [`SvfCoefs::bandpass`]); the filter state carries over,
    /// so sweeping the coefficients every block is smooth.
    pub fn set_coefs(&mut self, coefs: SvfCoefs) {
        self.coefs = coefs;
    }

    /// Reseeds the noise and clears the filter: the same output follows again.
    pub fn reset(&mut self) {
        self.noise.reset();
        self.filter.reset();
    }

    /// The next sample.
    #[inline]
    pub fn process(&mut self) -> f32 {
        let x = self.noise.process();
        self.filter.process(&self.coefs, x)
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
    use crate::dsp::test_util::rms;

    #[test]
    fn white_noise_is_bounded_zero_mean_and_reproducible() {
        let mut n = WhiteNoise::new(42);
        let mut x = vec![0.0; 100_000];
        n.process_block(&mut x);
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean: f64 = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((rms(&x) - 1.0 / 3f64.sqrt()).abs() < 0.01);
        n.reset();
        let again: Vec<f32> = (0..1000).map(|_| n.process()).collect();
        assert_eq!(&x[..1000], &again[..]);
        assert_ne!(WhiteNoise::new(43).process(), x[0]);
    }

    #[test]
    fn filtered_noise_follows_the_filter() {
        let sr = 48_000.0;
        let mut lp = FilteredNoise::new(1);
        lp.set_coefs(SvfCoefs::lowpass(sr, 500.0, 0.707));
        let mut x = vec![0.0; 48_000];
        lp.process_block(&mut x);
        // A 500 Hz lowpass keeps about sqrt(500·(π/2)/24000) of white noise's RMS.
        let ratio = rms(&x) * 3f64.sqrt();
        assert!((0.12..0.24).contains(&ratio), "ratio {ratio}");
        // Neighbouring samples are strongly correlated, unlike white noise.
        let corr: f64 = x.windows(2).map(|w| f64::from(w[0] * w[1])).sum::<f64>()
            / x.iter().map(|&v| f64::from(v * v)).sum::<f64>();
        assert!(corr > 0.9, "lag-1 correlation {corr}");
    }

    #[test]
    fn white_block_matches_per_sample_and_reset_reproduces() {
        let mut a = WhiteNoise::new(11);
        let mut b = a;
        let mut block = vec![0.0; 500];
        a.process_block(&mut block);
        let single: Vec<f32> = (0..500).map(|_| b.process()).collect();
        assert_eq!(block, single);
        a.reset();
        let mut again = vec![0.0; 500];
        a.process_block(&mut again);
        assert_eq!(block, again);
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let mut a = FilteredNoise::new(7);
        a.set_coefs(SvfCoefs::bandpass(44_100.0, 3_000.0, 2.0));
        let mut b = a;
        let mut block = vec![0.0; 2_000];
        a.process_block(&mut block);
        let single: Vec<f32> = (0..2_000).map(|_| b.process()).collect();
        assert_eq!(block, single);
        a.reset();
        let mut again = vec![0.0; 2_000];
        a.process_block(&mut again);
        assert_eq!(block, again);
    }
}
