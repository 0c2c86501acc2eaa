//! The piece code: a short text that names a piece — seed, preset, key, mode, tempo
//! and intensity — so the same music can be heard, bounced and shared anywhere.
//!
//! `au1-<seed>-<preset>-<key>-<mode>-<bpm>-<intensity>`, for example
//! `au1-7-focus-d-dorian-60-50`: the seed in base 36, the preset's name (its mix
//! levels, bars and beats), the key in lower case with `s` for a sharp (`fs`, so
//! the code needs no escaping in a link), the mode's name, the tempo in BPM (at
//! most one decimal) and the intensity in percent. Same code, same music.

use std::fmt;
use std::str::FromStr;

use super::mix::MixLevels;
use super::phrase::{check_range, ComposeParams, ParamError, BPM_RANGE};
use super::presets::{preset, Preset, PresetError};
use super::theory::{Key, Mode, TheoryParseError};

/// What every piece code begins with: the format's name and version.
pub const PREFIX: &str = "au1";
/// The fields of a code, in order, for error messages.
const FIELDS: &str = "au1-seed-preset-key-mode-bpm-intensity";

/// A piece: a seed, a preset and the composition parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PieceCode {
    /// The seed.
    pub seed: u64,
    /// The preset whose mix levels, bars and beats the piece plays with.
    pub preset: &'static Preset,
    /// Key, mode, tempo and intensity (bars and beats per bar: the preset's).
    pub compose: ComposeParams,
}

/// Why a text is not a piece code; every variant names what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodeError {
    /// It does not start with `au<version>-`.
    #[error("not a piece code: {0:?} does not start with \"au1-\"")]
    Prefix(String),
    /// It is a piece code of another version.
    #[error("piece code version {0:?} is not understood (this build reads au1)")]
    Version(String),
    /// It has the wrong number of fields.
    #[error("a piece code has 7 fields ({FIELDS}), got {0}")]
    Fields(usize),
    /// The seed is not a base-36 number.
    #[error("piece code seed {0:?} is not a base-36 number (0-9, a-z)")]
    Seed(String),
    /// The preset is unknown.
    #[error("piece code preset: {0}")]
    Preset(#[from] PresetError),
    /// The key or the mode is unknown.
    #[error("piece code {0}")]
    Theory(#[from] TheoryParseError),
    /// The tempo or intensity is not a number.
    #[error("piece code {field} {value:?} is not a number")]
    Number {
        /// `bpm` or `intensity`.
        field: &'static str,
        /// What the code says.
        value: String,
    },
    /// The tempo or intensity is out of range.
    #[error("piece code {0}")]
    Range(#[from] ParamError),
}

impl PieceCode {
    /// The piece `seed` of `preset` with `compose`'s key, mode, tempo and
    /// intensity, the tempo rounded to 0.1 BPM and the intensity to 0.01 — what the
    /// code can say, so the piece plays exactly as its code.
    #[must_use]
    pub fn new(seed: u64, preset: &'static Preset, compose: ComposeParams) -> Self {
        Self {
            seed,
            preset,
            compose: ComposeParams {
                bpm: (compose.bpm * 10.0).round() / 10.0,
                intensity: (compose.intensity * 100.0).round() / 100.0,
                bars: preset.compose.bars,
                beats_per_bar: preset.compose.beats_per_bar,
                ..compose
            },
        }
    }

    /// The mix levels the piece plays with (its preset's).
    #[must_use]
    pub const fn levels(&self) -> MixLevels {
        self.preset.levels
    }
}

impl fmt::Display for PieceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.compose;
        let key = c.key.name().to_ascii_lowercase().replace('#', "s");
        write!(
            f,
            "{PREFIX}-{}-{}-{key}-{}-{}-{}",
            base36(self.seed),
            self.preset.name,
            c.mode,
            c.bpm,
            (c.intensity * 100.0).round()
        )
    }
}

impl FromStr for PieceCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        let Some((version, rest)) = lower.split_once('-') else {
            return Err(CodeError::Prefix(text.to_owned()));
        };
        if !version.starts_with("au") {
            return Err(CodeError::Prefix(text.to_owned()));
        }
        if version != PREFIX {
            return Err(CodeError::Version(version.to_owned()));
        }
        let fields: Vec<&str> = rest.split('-').collect();
        let [seed, name, key, mode, bpm, intensity] = fields[..] else {
            return Err(CodeError::Fields(fields.len() + 1));
        };
        let seed = u64::from_str_radix(seed, 36)
            .ok()
            .filter(|_| !seed.starts_with('+'))
            .ok_or_else(|| CodeError::Seed(seed.to_owned()))?;
        let preset = preset(name)?;
        let number = |field: &'static str, value: &str| {
            value
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| CodeError::Number {
                    field,
                    value: value.to_owned(),
                })
        };
        let bpm = number("bpm", bpm)?;
        check_range(
            "bpm",
            f64::from(bpm),
            f64::from(BPM_RANGE.0),
            f64::from(BPM_RANGE.1),
        )?;
        let percent = number("intensity", intensity)?;
        check_range("intensity", f64::from(percent), 0.0, 100.0)?;
        Ok(Self::new(
            seed,
            preset,
            ComposeParams {
                key: Key::from_str(key)?,
                mode: Mode::from_str(mode)?,
                bpm,
                intensity: percent / 100.0,
                ..preset.compose
            },
        ))
    }
}

/// `n` in base 36, lower case.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::compose::presets::PRESETS;

    #[test]
    fn the_default_piece_has_a_short_readable_code() {
        let code = PieceCode::new(7, &PRESETS[0], PRESETS[0].compose);
        assert_eq!(code.to_string(), "au1-7-focus-d-dorian-60-50");
        assert_eq!("au1-7-focus-d-dorian-60-50".parse::<PieceCode>(), Ok(code));
        let sharp = PieceCode::new(
            u64::MAX,
            &PRESETS[3],
            ComposeParams {
                key: Key::new(6),
                bpm: 73.5,
                intensity: 0.25,
                ..PRESETS[3].compose
            },
        );
        assert_eq!(
            sharp.to_string(),
            "au1-3w5e11264sgsf-bright-fs-lydian-73.5-25"
        );
        assert_eq!(sharp.to_string().parse::<PieceCode>(), Ok(sharp));
        // Upper case and spaces around are read too.
        assert_eq!(
            " AU1-7-FOCUS-D-DORIAN-60-50 ".parse::<PieceCode>(),
            Ok(code)
        );
    }

    #[test]
    fn bad_codes_say_what_is_wrong() {
        let cases = [
            ("", "does not start with"),
            ("hello", "does not start with"),
            ("xy1-7-focus-d-dorian-60-50", "does not start with"),
            ("au2-7-focus-d-dorian-60-50", "version \"au2\""),
            ("au1-7-focus-d-dorian-60", "7 fields"),
            ("au1-7-focus-d-dorian-60-50-1", "7 fields"),
            ("au1-7!-focus-d-dorian-60-50", "seed \"7!\""),
            ("au1-+7-focus-d-dorian-60-50", "seed \"+7\""),
            ("au1-zzzzzzzzzzzzzz-focus-d-dorian-60-50", "seed"),
            ("au1-7-loud-d-dorian-60-50", "unknown preset \"loud\""),
            ("au1-7-focus-h-dorian-60-50", "unknown key \"h\""),
            ("au1-7-focus-d-locrian-60-50", "unknown mode \"locrian\""),
            (
                "au1-7-focus-d-dorian-fast-50",
                "bpm \"fast\" is not a number",
            ),
            (
                "au1-7-focus-d-dorian-900-50",
                "bpm must be between 20 and 300",
            ),
            (
                "au1-7-focus-d-dorian-60-150",
                "intensity must be between 0 and 100",
            ),
            (
                "au1-7-focus-d-dorian-60-nan",
                "intensity \"nan\" is not a number",
            ),
        ];
        for (code, wanted) in cases {
            let err = code.parse::<PieceCode>().expect_err(code).to_string();
            assert!(err.contains(wanted), "{code:?}: {err:?} lacks {wanted:?}");
        }
    }

    proptest! {
        #[test]
        fn codes_round_trip(
            seed in any::<u64>(),
            preset in 0usize..4,
            key in 0u8..12,
            mode in 0usize..6,
            bpm in 20.0f32..=300.0,
            intensity in 0.0f32..=1.0,
        ) {
            let preset = &PRESETS[preset];
            let code = PieceCode::new(seed, preset, ComposeParams {
                key: Key::new(key),
                mode: Mode::ALL[mode],
                bpm,
                intensity,
                ..preset.compose
            });
            prop_assert!(code.compose.validate().is_ok());
            let text = code.to_string();
            prop_assert!(text.len() <= 56, "{}", text);
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            let parsed: PieceCode = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed, code);
            prop_assert_eq!(parsed.to_string(), text);
        }
    }
}
