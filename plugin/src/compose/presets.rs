//! Named presets: a key, mode, tempo and intensity plus the layer levels that suit
//! them. The four are the original system's, by its names and with its key, mode,
//! tempo and intensity (its `server/presets.py`); `focus` is its default. The mix
//! levels are ours.

use super::mix::MixLevels;
use super::phrase::ComposeParams;
use super::theory::{Key, Mode};

/// A named set of composition parameters and mix levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Lower-case name used by the CLI, the protocol and the plugin.
    pub name: &'static str,
    /// One line for humans.
    pub description: &'static str,
    /// What to compose.
    pub compose: ComposeParams,
    /// How loud each layer and effect is.
    pub levels: MixLevels,
}

/// Every preset; the first is the default.
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "focus",
        description: "D dorian at 60 BPM, medium activity: the original default",
        compose: ComposeParams::DEFAULT,
        levels: MixLevels::DEFAULT,
    },
    Preset {
        name: "meditation",
        description: "C aeolian at 60 BPM, sparse and spacious, more reverb",
        compose: ComposeParams {
            key: Key::new(0),
            mode: Mode::Aeolian,
            bpm: 60.0,
            intensity: 0.3,
            bars: 8,
            beats_per_bar: 4,
        },
        levels: MixLevels {
            pad: 0.85,
            melody: 0.55,
            percussion: 0.35,
            reverb: 0.7,
            delay: 0.4,
            master_gain_db: 0.0,
        },
    },
    Preset {
        name: "sleep",
        description: "E phrygian at 60 BPM, barely moving, very soft melody and percussion",
        compose: ComposeParams {
            key: Key::new(4),
            mode: Mode::Phrygian,
            bpm: 60.0,
            intensity: 0.2,
            bars: 8,
            beats_per_bar: 4,
        },
        levels: MixLevels {
            pad: 0.8,
            melody: 0.35,
            percussion: 0.15,
            reverb: 0.75,
            delay: 0.3,
            master_gain_db: 0.0,
        },
    },
    Preset {
        name: "bright",
        description: "G lydian at 70 BPM, busier melody and pulse, drier mix",
        compose: ComposeParams {
            key: Key::new(7),
            mode: Mode::Lydian,
            bpm: 70.0,
            intensity: 0.6,
            bars: 8,
            beats_per_bar: 4,
        },
        levels: MixLevels {
            pad: 0.7,
            melody: 0.8,
            percussion: 0.65,
            reverb: 0.4,
            delay: 0.35,
            master_gain_db: 0.0,
        },
    },
];

/// A preset name that is not one of [`PRESETS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset {name:?}: expected one of {valid}", valid = preset_names())]
pub struct PresetError {
    /// The name asked for.
    pub name: String,
}

/// The valid preset names, comma-separated.
#[must_use]
pub fn preset_names() -> String {
    let mut names = String::new();
    for (i, p) in PRESETS.iter().enumerate() {
        if i > 0 {
            names.push_str(", ");
        }
        names.push_str(p.name);
    }
    names
}

/// The preset called `name` (case-insensitive, surrounding spaces ignored).
///
/// # Errors
/// [`PresetError`], whose message lists the valid names, when there is none.
pub fn preset(name: &str) -> Result<&'static Preset, PresetError> {
    let wanted = name.trim();
    PRESETS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| PresetError {
            name: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_found_by_name() {
        for p in &PRESETS {
            p.compose.validate().unwrap();
            p.levels.validate().unwrap();
            assert_eq!(p.compose.bars, 8);
            assert_eq!(p.compose.beats_per_bar, 4);
            assert!(!p.description.is_empty());
            assert_eq!(preset(p.name).unwrap(), p);
            assert_eq!(preset(&p.name.to_ascii_uppercase()).unwrap(), p);
        }
        let focus = preset(" Focus ").unwrap();
        assert_eq!(focus.compose, ComposeParams::default());
        assert_eq!(focus.levels, MixLevels::default());
        assert_eq!(PRESETS[0].name, "focus");
    }

    #[test]
    fn presets_are_the_originals_and_ordered_by_energy() {
        let [focus, meditation, sleep, bright] =
            ["focus", "meditation", "sleep", "bright"].map(|n| preset(n).unwrap().compose);
        // The original's `server/presets.py`: key (MIDI 62, 60, 64, 67), mode,
        // tempo and intensity.
        for (p, key, mode, bpm, intensity) in [
            (focus, 2, Mode::Dorian, 60.0, 0.5),
            (meditation, 0, Mode::Aeolian, 60.0, 0.3),
            (sleep, 4, Mode::Phrygian, 60.0, 0.2),
            (bright, 7, Mode::Lydian, 70.0, 0.6),
        ] {
            assert_eq!(
                (p.key, p.mode, p.bpm, p.intensity),
                (Key::new(key), mode, bpm, intensity)
            );
        }
        assert!(sleep.intensity < meditation.intensity);
        assert!(meditation.intensity < focus.intensity);
        assert!(focus.intensity < bright.intensity);
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = preset("party").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("party"), "{msg}");
        for p in &PRESETS {
            assert!(msg.contains(p.name), "{msg}");
        }
        assert!(preset("").is_err());
    }
}
