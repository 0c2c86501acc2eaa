//! Music theory: pitch classes, keys, the six diatonic modes and scale arithmetic.
//!
//! Pitches are MIDI note numbers (60 = middle C); scale degrees are 0-based
//! (0 = tonic) and may run past the octave (7 = the tonic an octave up).

use std::fmt;
use std::str::FromStr;

/// A key: the root pitch class, 0 = C … 11 = B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key(u8);

impl Key {
    /// Every key, C to B.
    pub const ALL: [Self; 12] = [
        Self(0),
        Self(1),
        Self(2),
        Self(3),
        Self(4),
        Self(5),
        Self(6),
        Self(7),
        Self(8),
        Self(9),
        Self(10),
        Self(11),
    ];

    const NAMES: [&'static str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];

    /// The key whose root is `pitch_class` (taken modulo 12).
    #[must_use]
    pub const fn new(pitch_class: u8) -> Self {
        Self(pitch_class % 12)
    }

    /// The key of a MIDI note number 0–127: its pitch class, whatever the
    /// octave (60 and 0 are both C). `None` above 127.
    #[must_use]
    pub const fn from_midi(note: u64) -> Option<Self> {
        if note <= 127 {
            Some(Self((note % 12) as u8))
        } else {
            None
        }
    }

    /// The root pitch class, 0..12.
    #[must_use]
    pub const fn pitch_class(self) -> u8 {
        self.0
    }

    /// The root's name with sharps (`"F#"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        Self::NAMES[self.0 as usize]
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key or mode name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TheoryParseError {
    /// Not a note name such as `C`, `F#`, `Bb` or a MIDI note number 0–127.
    #[error(
        "unknown key {0:?}: expected a note name such as C, F#, Bb, or a number 0-127 (a MIDI note: any octave gives its pitch class, so 62 and 2 are both D)"
    )]
    Key(String),
    /// Not one of the six modes.
    #[error(
        "unknown mode {0:?}: expected one of aeolian, dorian, phrygian, lydian, mixolydian, ionian"
    )]
    Mode(String),
}

impl FromStr for Key {
    type Err = TheoryParseError;

    /// Accepts `C`, `c#`, `Db`, `F♯`, `B♭` and the MIDI note numbers `0`–`127`
    /// ([`Key::from_midi`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TheoryParseError::Key(s.to_owned());
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Self::from_midi(n).ok_or_else(err);
        }
        let mut chars = t.chars();
        let letter = chars.next().ok_or_else(err)?.to_ascii_uppercase();
        let natural: i8 = match letter {
            'C' => 0,
            'D' => 2,
            'E' => 4,
            'F' => 5,
            'G' => 7,
            'A' => 9,
            'B' => 11,
            _ => return Err(err()),
        };
        let accidental: i8 = match chars.as_str() {
            "" => 0,
            "#" | "♯" | "s" | "sharp" => 1,
            "b" | "♭" | "flat" => -1,
            _ => return Err(err()),
        };
        Ok(Self((natural + accidental).rem_euclid(12) as u8))
    }
}

/// The six diatonic modes Auralis composes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Natural minor.
    #[default]
    Aeolian,
    /// Minor with a raised sixth.
    Dorian,
    /// Minor with a lowered second.
    Phrygian,
    /// Major with a raised fourth.
    Lydian,
    /// Major with a lowered seventh.
    Mixolydian,
    /// Major.
    Ionian,
}

impl Mode {
    /// Every mode, in a stable order (also their numeric parameter values).
    pub const ALL: [Self; 6] = [
        Self::Aeolian,
        Self::Dorian,
        Self::Phrygian,
        Self::Lydian,
        Self::Mixolydian,
        Self::Ionian,
    ];

    /// The mode's place in [`Mode::ALL`] (0–5): its number on the wire, in the
    /// engine's parameter words and in host parameters.
    #[must_use]
    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The mode numbered `index` (see [`Mode::index`]), if there is one.
    #[must_use]
    pub const fn from_index(index: u64) -> Option<Self> {
        if index < Self::ALL.len() as u64 {
            Some(Self::ALL[index as usize])
        } else {
            None
        }
    }

    /// Semitones above the root of the seven scale degrees.
    #[must_use]
    pub const fn intervals(self) -> [u8; 7] {
        match self {
            Self::Aeolian => [0, 2, 3, 5, 7, 8, 10],
            Self::Dorian => [0, 2, 3, 5, 7, 9, 10],
            Self::Phrygian => [0, 1, 3, 5, 7, 8, 10],
            Self::Lydian => [0, 2, 4, 6, 7, 9, 11],
            Self::Mixolydian => [0, 2, 4, 5, 7, 9, 10],
            Self::Ionian => [0, 2, 4, 5, 7, 9, 11],
        }
    }

    /// The lower-case name used in presets, the CLI and the protocol.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aeolian => "aeolian",
            Self::Dorian => "dorian",
            Self::Phrygian => "phrygian",
            Self::Lydian => "lydian",
            Self::Mixolydian => "mixolydian",
            Self::Ionian => "ionian",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = TheoryParseError;

    /// Accepts the names case-insensitively, plus `minor` and `major`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|m| m.name() == t)
            .or(match t.as_str() {
                "minor" => Some(Self::Aeolian),
                "major" => Some(Self::Ionian),
                _ => None,
            })
            .ok_or_else(|| TheoryParseError::Mode(s.to_owned()))
    }
}

/// A key and a mode: maps scale degrees to pitches and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scale {
    /// The tonic.
    pub key: Key,
    /// The mode.
    pub mode: Mode,
}

impl Scale {
    /// The scale of `mode` on `key`.
    #[must_use]
    pub const fn new(key: Key, mode: Mode) -> Self {
        Self { key, mode }
    }

    /// The MIDI pitch of scale `degree` (any integer; 7 is the tonic an octave up)
    /// counted from the tonic at MIDI note `tonic_midi`'s octave.
    ///
    /// `tonic_octave_midi` is the MIDI note of the C that starts the reference
    /// octave (for example 48 for C3); the key's root is added to it.
    #[must_use]
    pub fn pitch(self, degree: i32, tonic_octave_midi: i32) -> i32 {
        let octave = degree.div_euclid(7);
        let step = degree.rem_euclid(7) as usize;
        tonic_octave_midi
            + i32::from(self.key.pitch_class())
            + 12 * octave
            + i32::from(self.mode.intervals()[step])
    }

    /// Whether `pitch_class` (0..12) belongs to the scale.
    #[must_use]
    pub fn contains(self, pitch_class: u8) -> bool {
        let rel = (pitch_class + 12 - self.key.pitch_class()) % 12;
        self.mode.intervals().contains(&rel)
    }

    /// The scale degree (0..7) of `pitch_class`, if it is in the scale.
    #[must_use]
    pub fn degree_of(self, pitch_class: u8) -> Option<u8> {
        let rel = (pitch_class % 12 + 12 - self.key.pitch_class()) % 12;
        self.mode
            .intervals()
            .iter()
            .position(|&i| i == rel)
            .map(|d| d as u8)
    }
}

/// The frequency in hertz of a (possibly fractional) MIDI note, A4 = 69 = 440 Hz.
#[inline]
#[must_use]
pub fn midi_to_hz(note: f32) -> f32 {
    440.0 * ((note - 69.0) / 12.0).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert_eq!("C".parse::<Key>().unwrap(), Key::new(0));
        assert_eq!("f#".parse::<Key>().unwrap(), Key::new(6));
        assert_eq!("Bb".parse::<Key>().unwrap(), Key::new(10));
        assert_eq!("Cb".parse::<Key>().unwrap(), Key::new(11));
        assert_eq!("11".parse::<Key>().unwrap(), Key::new(11));
        assert!("H".parse::<Key>().is_err());
        // MIDI note numbers: any octave gives the pitch class.
        assert_eq!("62".parse::<Key>().unwrap(), Key::new(2));
        assert_eq!("127".parse::<Key>().unwrap(), Key::new(7));
        assert_eq!(Key::from_midi(60), Some(Key::new(0)));
        assert!("128".parse::<Key>().is_err());
        assert_eq!(Key::from_midi(128), None);
        assert!("".parse::<Key>().is_err());
        for k in Key::ALL {
            assert_eq!(k.name().parse::<Key>().unwrap(), k);
        }
    }

    #[test]
    fn modes_parse_and_have_seven_ascending_steps() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            let iv = m.intervals();
            assert!(iv.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= 2));
            assert_eq!(iv[0], 0);
        }
        assert_eq!("MAJOR".parse::<Mode>().unwrap(), Mode::Ionian);
        assert!("locrian".parse::<Mode>().is_err());
    }

    #[test]
    fn mode_numbers_are_their_places_in_all() {
        for (i, m) in Mode::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(m.index()), i);
            assert_eq!(Mode::from_index(i as u64), Some(m));
        }
        assert_eq!(Mode::from_index(6), None);
        assert_eq!(Mode::from_index(u64::MAX), None);
    }

    #[test]
    fn scale_pitches_and_membership() {
        let s = Scale::new(Key::new(2), Mode::Dorian); // D dorian = white keys
        assert_eq!(s.pitch(0, 60), 62);
        assert_eq!(s.pitch(7, 60), 74);
        assert_eq!(s.pitch(-1, 60), 60); // C below D
        for pc in [0, 2, 4, 5, 7, 9, 11] {
            assert!(s.contains(pc));
        }
        for pc in [1, 3, 6, 8, 10] {
            assert!(!s.contains(pc));
        }
        assert_eq!(s.degree_of(9), Some(4));
        assert_eq!(s.degree_of(1), None);
    }

    #[test]
    fn a440() {
        assert!((midi_to_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((midi_to_hz(57.0) - 220.0).abs() < 1e-3);
    }
}
