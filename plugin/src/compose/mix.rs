//! Layer levels and effect sends: the mix a preset or the user sets.

use super::phrase::{check_range, ParamError};

/// Lowest and highest master gain, in decibels.
pub const MASTER_GAIN_DB_RANGE: (f32, f32) = (-60.0, 6.0);

/// Levels of each layer and effect, all smoothed per sample by the renderer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixLevels {
    /// Pad (chord) layer gain, 0..=1.
    pub pad: f32,
    /// Melody layer gain, 0..=1.
    pub melody: f32,
    /// Percussion layer gain, 0..=1.
    pub percussion: f32,
    /// Reverb send amount, 0..=1.
    pub reverb: f32,
    /// Delay send amount, 0..=1.
    pub delay: f32,
    /// Master gain in dB, within [`MASTER_GAIN_DB_RANGE`].
    pub master_gain_db: f32,
}

impl Default for MixLevels {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl MixLevels {
    /// The default mix (the `focus` preset's).
    pub const DEFAULT: Self = Self {
        pad: 0.8,
        melody: 0.7,
        percussion: 0.6,
        reverb: 0.5,
        delay: 0.35,
        master_gain_db: 0.0,
    };

    /// Checks every field against its documented range.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ParamError> {
        for (name, v) in [
            ("pad_level", self.pad),
            ("melody_level", self.melody),
            ("percussion_level", self.percussion),
            ("reverb_mix", self.reverb),
            ("delay_mix", self.delay),
        ] {
            check_range(name, f64::from(v), 0.0, 1.0)?;
        }
        check_range(
            "master_gain_db",
            f64::from(self.master_gain_db),
            f64::from(MASTER_GAIN_DB_RANGE.0),
            f64::from(MASTER_GAIN_DB_RANGE.1),
        )
    }
}
