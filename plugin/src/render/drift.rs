//! The form's slow drifts ([`Drift`]) made sound: a low-pass on the master bus,
//! the reverb's decay time and the texture's stereo width.
//!
//! The form moves the drifts linearly across whole phrases; the renderer takes
//! their value at every control tick and glides towards it over
//! [`DRIFT_SMOOTHING_MS`], so a jump of the song position to another section
//! sweeps in a few seconds rather than stepping. The first value it is given
//! (the first phrase's) it takes at once: the piece does not open with a sweep. The filter's coefficients and
//! the reverb's decay change at control ticks only while a drift moves (the
//! state-variable filter and the delay network take coefficient changes without
//! clicks); the width ramps per sample. With [`Drift::NEUTRAL`] every stage is
//! bypassed exactly, so a render without drifts is bit for bit what it was
//! before they existed.

use super::ramp::{Ramp, CONTROL_FRAMES};
use crate::compose::form::{Drift, BRIGHTNESS_OPEN_HZ};
use crate::dsp::glide::Glide;
use crate::dsp::reverb::{Reverb, ReverbParams};
use crate::dsp::svf::{Svf, SvfCoefs};

/// How long the renderer takes to reach a drift value that jumped (a seek).
pub const DRIFT_SMOOTHING_MS: f32 = 3_000.0;
/// The reverb's decay time at a reverb scale of 1, in seconds.
pub const REVERB_DECAY_S: f32 = 2.8;
/// Resonance of the brightness low-pass: Butterworth, no peak at the cutoff.
const BRIGHTNESS_Q: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// The drifts being followed, and the filter they drive.
#[derive(Debug, Clone)]
pub struct DriftStage {
    sample_rate: f32,
    /// The brightness in octaves (`log2` of the cutoff), the reverb scale and
    /// the width, gliding at control rate.
    glides: [Glide; 3],
    /// The brightness the filter's coefficients were made for, in octaves.
    brightness: f32,
    /// Whether the filter is open (bypassed).
    open: bool,
    coefs: SvfCoefs,
    filters: [Svf; 2],
    /// The reverb scale last given to the reverb.
    reverb_scale: f32,
    width: Ramp,
    /// Whether no target has been given yet (the next one is taken at once).
    fresh: bool,
}

impl DriftStage {
    const BRIGHTNESS: usize = 0;
    const REVERB: usize = 1;
    const WIDTH: usize = 2;

    /// At rest at [`Drift::NEUTRAL`], for a renderer at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: f32) -> Self {
        let control_rate = sample_rate / CONTROL_FRAMES as f32;
        let values = Self::values(&Drift::NEUTRAL);
        Self {
            sample_rate,
            glides: values.map(|v| Glide::new(control_rate, DRIFT_SMOOTHING_MS, v)),
            brightness: values[Self::BRIGHTNESS],
            open: true,
            coefs: SvfCoefs::passthrough(),
            filters: [Svf::new(); 2],
            reverb_scale: 1.0,
            width: Ramp::new(1.0),
            fresh: true,
        }
    }

    /// What the glides follow: the brightness in octaves, the reverb scale and
    /// the width.
    fn values(drift: &Drift) -> [f32; 3] {
        [
            drift.brightness_hz.max(1.0).log2(),
            drift.reverb_scale,
            drift.width,
        ]
    }

    /// Heads for `drift` (called at each control tick before
    /// [`DriftStage::control_tick`]); the first target is taken at once.
    pub fn set_target(&mut self, drift: &Drift) {
        let fresh = std::mem::take(&mut self.fresh);
        for (g, v) in self.glides.iter_mut().zip(Self::values(drift)) {
            if fresh {
                g.jump(v);
            } else {
                g.set_target(v);
            }
        }
        if fresh {
            self.width.jump(drift.width);
        }
    }

    /// Clears the filter and, given a `drift`, moves to it at once: filter,
    /// reverb and width (a reset of the renderer).
    pub fn reset(&mut self, drift: Option<&Drift>, reverb: &mut Reverb) {
        self.filters = [Svf::new(); 2];
        if let Some(drift) = drift {
            for (g, v) in self.glides.iter_mut().zip(Self::values(drift)) {
                g.jump(v);
            }
            self.width.jump(drift.width);
            self.apply(reverb);
        }
    }

    /// Advances the glides one control tick and applies their values.
    pub fn control_tick(&mut self, reverb: &mut Reverb) {
        let width = &mut self.glides[Self::WIDTH];
        if width.is_gliding() {
            self.width.set_target(width.process(), CONTROL_FRAMES);
        } else if self.width.step() != 0.0 {
            // The last ramp has arrived (up to rounding): settle exactly.
            self.width.jump(width.value());
        }
        self.glides[Self::BRIGHTNESS].process();
        self.glides[Self::REVERB].process();
        self.apply(reverb);
    }

    /// Remakes the filter's coefficients and the reverb's decay where their
    /// glides have moved.
    fn apply(&mut self, reverb: &mut Reverb) {
        let brightness = self.glides[Self::BRIGHTNESS].value();
        if brightness != self.brightness {
            self.brightness = brightness;
            let hz = brightness.exp2();
            // Within rounding of the open cutoff, the glide has arrived there.
            self.open = hz >= BRIGHTNESS_OPEN_HZ * 0.999;
            if self.open {
                self.filters = [Svf::new(); 2];
            } else {
                self.coefs = SvfCoefs::lowpass(self.sample_rate, hz, BRIGHTNESS_Q);
            }
        }
        let scale = self.glides[Self::REVERB].value();
        if scale != self.reverb_scale {
            self.reverb_scale = scale;
            reverb.set_params(ReverbParams {
                decay_s: REVERB_DECAY_S * scale,
                ..reverb.params()
            });
        }
    }

    /// The brightness low-pass over one span of the master bus; nothing while
    /// the filter is open.
    pub fn darken(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.open {
            return;
        }
        let [fl, fr] = &mut self.filters;
        fl.process_block(&self.coefs, left);
        fr.process_block(&self.coefs, right);
    }

    /// The width over one span of the texture: its side signal scaled, its mid
    /// kept; nothing at a width of exactly 1.
    pub fn widen(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.width.step() == 0.0 {
            let extra = self.width.value() - 1.0;
            if extra == 0.0 {
                return;
            }
            for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                let side = 0.5 * (*l - *r) * extra;
                *l += side;
                *r -= side;
            }
            return;
        }
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let side = 0.5 * (*l - *r) * (self.width.tick() - 1.0);
            *l += side;
            *r -= side;
        }
    }

    /// The current values: what the filter and the reverb are at, and what the
    /// width reaches by the next control tick.
    #[must_use]
    pub fn current(&self) -> Drift {
        Drift {
            brightness_hz: self.brightness.exp2(),
            reverb_scale: self.reverb_scale,
            width: self.glides[Self::WIDTH].value(),
        }
    }
}
