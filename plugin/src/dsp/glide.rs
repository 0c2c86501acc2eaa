//! Linear glide: a ramp to a target over a fixed time (portamento and parameter
//! smoothing).
//!
//! A new target starts a straight-line ramp from the current value that lands on
//! the target exactly `round(time_ms · sr / 1000)` samples later (the last sample of
//! the ramp *is* the target, not an approximation of it), like the linear smoothers
//! of nih-plug's `Smoother` and JUCE's `LinearSmoothedValue`. The state is `f64`, so
//! a ramp of MIDI note numbers at 768 kHz still lands within a tiny fraction of a
//! cent before snapping exactly.

use super::{finite_or, sanitize_sample_rate};

/// Longest accepted glide time, in milliseconds.
const MAX_TIME_MS: f32 = 60_000.0;

/// A linear ramp to a target over a set time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glide {
    sample_rate: f32,
    time_ms: f32,
    /// The value [`Glide::reset`] returns to.
    initial: f64,
    value: f64,
    target: f64,
    step: f64,
    /// Samples left in the current ramp (0 when settled).
    remaining: u32,
}

impl Glide {
    /// A settled glide at `initial` (non-finite → 0), ramping over `time_ms`
    /// milliseconds at `sample_rate` hertz (which may be a control rate).
    #[must_use]
    pub fn new(sample_rate: f32, time_ms: f32, initial: f32) -> Self {
        let v = f64::from(finite_or(initial, 0.0));
        Self {
            sample_rate: sanitize_sample_rate(sample_rate),
            time_ms: sanitize_time_ms(time_ms),
            initial: v,
            value: v,
            target: v,
            step: 0.0,
            remaining: 0,
        }
    }

    /// Changes the rate at which `process` is called (hertz). A running ramp keeps
    /// its remaining time in milliseconds.
    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        let sr = sanitize_sample_rate(sample_rate);
        if self.remaining > 0 {
            let scaled = f64::from(self.remaining) * f64::from(sr) / f64::from(self.sample_rate);
            self.remaining = (scaled.round() as u32).max(1);
            self.step = (self.target - self.value) / f64::from(self.remaining);
        }
        self.sample_rate = sr;
    }

    /// Sets the ramp time in milliseconds (0..=60000; non-finite → 0). Takes effect at
    /// the next [`set_target`](Self::set_target); a running ramp keeps its timing.
    pub fn set_time_ms(&mut self, ms: f32) {
        self.time_ms = sanitize_time_ms(ms);
    }

    /// The ramp time in milliseconds.
    #[must_use]
    pub fn time_ms(&self) -> f32 {
        self.time_ms
    }

    /// Ramps from the current value to `target`, arriving exactly after the ramp
    /// time (on the `n`-th following `process` call, `n = round(time_ms·sr/1000)`;
    /// immediately when `n` is 0). Setting the target already being approached (or
    /// already reached) changes nothing, so it is safe to call every block; a
    /// non-finite target is ignored.
    pub fn set_target(&mut self, target: f32) {
        if !target.is_finite() {
            return;
        }
        let target = f64::from(target);
        if target == self.target {
            return;
        }
        self.target = target;
        let samples = (f64::from(self.time_ms) * f64::from(self.sample_rate) / 1000.0).round();
        if samples < 1.0 {
            self.value = target;
            self.remaining = 0;
            self.step = 0.0;
        } else {
            // At most 60 s · 768 kHz, far below u32::MAX.
            self.remaining = samples as u32;
            self.step = (target - self.value) / samples;
        }
    }

    /// Jumps back to the construction value, settled.
    pub fn reset(&mut self) {
        self.value = self.initial;
        self.target = self.initial;
        self.step = 0.0;
        self.remaining = 0;
    }

    /// Jumps to `value` with no ramp (non-finite values are ignored).
    pub fn jump(&mut self, value: f32) {
        if value.is_finite() {
            self.value = f64::from(value);
            self.target = self.value;
            self.step = 0.0;
            self.remaining = 0;
        }
    }

    /// The current value.
    #[must_use]
    pub fn value(&self) -> f32 {
        self.value as f32
    }

    /// The target being approached (or reached).
    #[must_use]
    pub fn target(&self) -> f32 {
        self.target as f32
    }

    /// Whether a ramp is under way.
    #[must_use]
    pub fn is_gliding(&self) -> bool {
        self.remaining > 0
    }

    /// Advances one sample and returns the new value.
    #[inline]
    pub fn process(&mut self) -> f32 {
        self.process_f64() as f32
    }

    /// Advances one sample and returns the new value at full precision (for
    /// delay times in samples and other values that need more than 24 bits).
    #[inline]
    pub fn process_f64(&mut self) -> f64 {
        if self.remaining > 0 {
            self.remaining -= 1;
            if self.remaining == 0 {
                self.value = self.target;
            } else {
                self.value += self.step;
            }
        }
        self.value
    }

    /// Overwrites `out` with the next `out.len()` values.
    pub fn process_block(&mut self, out: &mut [f32]) {
        if self.remaining == 0 {
            out.fill(self.value as f32);
            return;
        }
        for o in out {
            *o = self.process();
        }
    }
}

/// A usable ramp time in milliseconds.
fn sanitize_time_ms(ms: f32) -> f32 {
    finite_or(ms, 0.0).clamp(0.0, MAX_TIME_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_target_at_exactly_the_configured_time() {
        for (sr, ms) in [
            (48_000.0, 5.0),
            (48_000.0, 50.0),
            (768_000.0, 35.0),
            (1_500.0, 40.0),
        ] {
            let mut g = Glide::new(sr, ms, 60.0);
            g.set_target(67.0);
            let n = (ms * sr / 1000.0).round() as usize;
            let mut prev = 60.0;
            for i in 1..n {
                let v = g.process();
                assert!(v > prev - 1e-6 && v < 67.0, "sample {i}: {v}");
                assert!(g.is_gliding());
                prev = v;
            }
            assert_eq!(g.process(), 67.0, "{sr} {ms}");
            assert!(!g.is_gliding());
            assert_eq!(g.process(), 67.0);
        }
    }

    #[test]
    fn ramp_is_linear_and_restarts_from_current_value() {
        let mut g = Glide::new(1_000.0, 10.0, 0.0);
        g.set_target(1.0);
        let v: Vec<f32> = (0..4).map(|_| g.process()).collect();
        for (i, x) in v.iter().enumerate() {
            assert!((x - 0.1 * (i + 1) as f32).abs() < 1e-6);
        }
        // Re-setting the same target does not restart the ramp.
        g.set_target(1.0);
        assert!((g.process() - 0.5).abs() < 1e-6);
        // A new target ramps from where it is, again over the full time.
        g.set_target(-0.5);
        for _ in 0..9 {
            g.process();
        }
        assert!(g.is_gliding());
        assert_eq!(g.process(), -0.5);
    }

    #[test]
    fn jump_and_zero_time_are_immediate() {
        let mut g = Glide::new(48_000.0, 20.0, 1.0);
        g.set_target(2.0);
        g.process();
        g.jump(5.0);
        assert!(!g.is_gliding());
        assert_eq!(g.value(), 5.0);
        assert_eq!(g.target(), 5.0);
        g.set_time_ms(0.0);
        g.set_target(3.0);
        assert_eq!(g.value(), 3.0);
        g.set_target(f32::NAN);
        g.jump(f32::INFINITY);
        assert_eq!(g.process(), 3.0);
    }

    #[test]
    fn sample_rate_change_keeps_remaining_time() {
        let mut g = Glide::new(1_000.0, 10.0, 0.0);
        g.set_target(10.0);
        for _ in 0..5 {
            g.process();
        }
        g.set_sample_rate(2_000.0);
        for _ in 0..9 {
            g.process();
        }
        assert!(g.is_gliding());
        assert_eq!(g.process(), 10.0);
    }

    #[test]
    fn block_matches_per_sample_and_reset_reproduces() {
        let mut a = Glide::new(48_000.0, 7.0, -3.0);
        let mut b = a;
        let run = |g: &mut Glide, block: bool| -> Vec<f32> {
            let mut out = vec![0.0; 1_000];
            g.set_target(12.5);
            for (i, chunk) in out.chunks_mut(100).enumerate() {
                if i == 4 {
                    g.set_target(0.25);
                }
                if block {
                    g.process_block(chunk);
                } else {
                    for o in chunk {
                        *o = g.process();
                    }
                }
            }
            out
        };
        let block = run(&mut a, true);
        assert_eq!(block, run(&mut b, false));
        a.reset();
        assert_eq!(a.value(), -3.0);
        assert_eq!(run(&mut a, true), block);
    }
}
