//! Control-rate values made smooth at audio rate: a [`Ramp`] moves linearly from its
//! value to a target over the frames up to the next control tick.
//!
//! The renderer computes envelopes, glides, filter sweeps and mix levels once per
//! control tick ([`CONTROL_FRAMES`] frames, aligned to the absolute sample position
//! so the output does not depend on how a host splits its blocks) and ramps between
//! them per sample, which costs one add per sample instead of a transcendental.

/// Frames between control ticks. Ticks fall on absolute positions that are
/// multiples of this, so host block sizes never change the result.
pub const CONTROL_FRAMES: usize = 32;

/// A linear per-sample ramp towards a control-rate target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ramp {
    value: f32,
    step: f32,
}

impl Ramp {
    /// A ramp resting at `value`.
    #[must_use]
    pub const fn new(value: f32) -> Self {
        Self { value, step: 0.0 }
    }

    /// Heads for `target`, arriving after `frames` calls to [`Ramp::tick`]
    /// (`frames == 0` jumps).
    #[inline]
    pub fn set_target(&mut self, target: f32, frames: usize) {
        if frames == 0 {
            self.jump(target);
        } else {
            self.step = (target - self.value) / frames as f32;
        }
    }

    /// Jumps to `value` and stops.
    #[inline]
    pub fn jump(&mut self, value: f32) {
        self.value = value;
        self.step = 0.0;
    }

    /// The current value, then advances one frame.
    #[inline]
    pub fn tick(&mut self) -> f32 {
        let v = self.value;
        self.value += self.step;
        v
    }

    /// The current value.
    #[inline]
    #[must_use]
    pub const fn value(&self) -> f32 {
        self.value
    }

    /// The per-frame increment.
    #[inline]
    #[must_use]
    pub const fn step(&self) -> f32 {
        self.step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_target_in_frames() {
        let mut r = Ramp::new(0.0);
        r.set_target(1.0, 4);
        let v: Vec<f32> = (0..5).map(|_| r.tick()).collect();
        assert_eq!(v, [0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn zero_frames_jumps() {
        let mut r = Ramp::new(0.3);
        r.set_target(0.7, 0);
        assert!((r.tick() - 0.7).abs() < f32::EPSILON);
        assert!((r.tick() - 0.7).abs() < f32::EPSILON);
    }
}
