//! A change of some musical parameters: the one type the bridge's protocol, the
//! shared-memory control records and the plugin's remote control all carry.

use super::phrase::ComposeParams;
use super::theory::{Key, Mode};

/// A partial change of the musical parameters, heard from the next phrase;
/// `None` keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ParamUpdate {
    /// New tonic.
    pub key: Option<Key>,
    /// New mode.
    pub mode: Option<Mode>,
    /// New tempo in BPM, within [`super::phrase::BPM_RANGE`].
    pub bpm: Option<f32>,
    /// New intensity, 0 to 1.
    pub intensity: Option<f32>,
}

impl ParamUpdate {
    /// The change that makes `base` into `to` (only the fields that differ).
    #[must_use]
    pub fn between(base: &ComposeParams, to: &ComposeParams) -> Self {
        Self {
            key: (base.key != to.key).then_some(to.key),
            mode: (base.mode != to.mode).then_some(to.mode),
            bpm: (base.bpm.to_bits() != to.bpm.to_bits()).then_some(to.bpm),
            intensity: (base.intensity.to_bits() != to.intensity.to_bits()).then_some(to.intensity),
        }
    }

    /// Whether no field is set.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.key.is_none() && self.mode.is_none() && self.bpm.is_none() && self.intensity.is_none()
    }

    /// `base` with this change applied.
    #[must_use]
    pub fn apply_to(&self, base: ComposeParams) -> ComposeParams {
        ComposeParams {
            key: self.key.unwrap_or(base.key),
            mode: self.mode.unwrap_or(base.mode),
            bpm: self.bpm.unwrap_or(base.bpm),
            intensity: self.intensity.unwrap_or(base.intensity),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_and_apply_to_are_inverse() {
        assert!(ParamUpdate::default().is_empty());
        let base = ComposeParams::default();
        let set = ParamUpdate {
            key: Some(Key::new(7)),
            bpm: Some(90.0),
            ..ParamUpdate::default()
        };
        let to = set.apply_to(base);
        assert_eq!((to.key, to.bpm, to.mode), (Key::new(7), 90.0, base.mode));
        let update = ParamUpdate::between(&base, &to);
        assert_eq!(update, set);
        assert_eq!(update.apply_to(base), to);
        assert!(ParamUpdate::between(&base, &base).is_empty());
        assert!(!update.is_empty());
    }
}
