//! The degradation levels and what each one allows: [`Level::profile`] is the one
//! table the composer thread, the renderer, the texture pre-renderer and the
//! engine's status all read, so a level's meaning is written once.
//!
//! | level | intensity | melody, percussion | pad | texture | phrase |
//! |---|---|---|---|---|---|
//! | normal | as set | yes | full | full detail | moves on |
//! | high_load | ≤ [`HIGH_LOAD_INTENSITY_CAP`] | yes | full | reduced | moves on |
//! | critical | ≤ cap | no | cheap | off (pad carries) | moves on |
//! | overload | ≤ cap | no | cheap | minimal | loops |

use std::fmt;

/// Highest intensity composed at [`Level::HighLoad`] and above.
pub const HIGH_LOAD_INTENSITY_CAP: f32 = 0.4;

/// Quality levels, in increasing order of degradation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Full quality.
    #[default]
    Normal = 0,
    /// Fewer melody notes and texture partials.
    HighLoad = 1,
    /// Chords only: no melody, no percussion, cheapest pad.
    Critical = 2,
    /// Loop the last good phrase (silence only if nothing was ever rendered).
    Overload = 3,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Self; 4] = [Self::Normal, Self::HighLoad, Self::Critical, Self::Overload];

    /// The lowest load (percent) that belongs to this level.
    #[must_use]
    pub const fn lower_bound(self) -> f32 {
        match self {
            Self::Normal => 0.0,
            Self::HighLoad => 60.0,
            Self::Critical => 80.0,
            Self::Overload => 95.0,
        }
    }

    /// The level a load (percent) belongs to: < 60 normal, 60–80 high load,
    /// 80–95 critical, above 95 overload. A non-finite load counts as overload.
    #[must_use]
    pub fn for_load(load: f32) -> Self {
        if !load.is_finite() || load > Self::Overload.lower_bound() {
            Self::Overload
        } else if load >= Self::Critical.lower_bound() {
            Self::Critical
        } else if load >= Self::HighLoad.lower_bound() {
            Self::HighLoad
        } else {
            Self::Normal
        }
    }

    /// One level better, if any.
    #[must_use]
    pub const fn below(self) -> Option<Self> {
        match self {
            Self::Normal => None,
            Self::HighLoad => Some(Self::Normal),
            Self::Critical => Some(Self::HighLoad),
            Self::Overload => Some(Self::Critical),
        }
    }

    /// The wire/metric name: `normal`, `high_load`, `critical`, `overload`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::HighLoad => "high_load",
            Self::Critical => "critical",
            Self::Overload => "overload",
        }
    }

    /// The level with numeric value `v` (0–3), for atomics and parameters.
    #[must_use]
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Normal),
            1 => Some(Self::HighLoad),
            2 => Some(Self::Critical),
            3 => Some(Self::Overload),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much detail the textures asked for at a level have (the pre-renderer
/// turns it into partials and grains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextureDetail {
    /// Every partial and grain.
    Full,
    /// About half the partials and grains.
    Reduced,
    /// A cheap pad: few partials, no grains.
    Minimal,
}

/// What one degradation level allows (see the table in the module header).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelProfile {
    /// Highest intensity phrases are composed with (`None`: as set); a cap means
    /// fewer melody notes and sparser percussion.
    pub intensity_cap: Option<f32>,
    /// Whether melody notes are composed and played.
    pub melody: bool,
    /// Whether percussion is composed and played.
    pub percussion: bool,
    /// Whether the pad plays its cheap voice.
    pub cheap_pad: bool,
    /// Whether the pre-rendered texture is heard (and, in real time, rendered);
    /// without it the pad carries.
    pub texture: bool,
    /// The detail of the textures asked for.
    pub texture_detail: TextureDetail,
    /// Whether the playing phrase loops instead of moving on.
    pub loop_phrase: bool,
}

impl Level {
    /// What this level allows.
    #[must_use]
    pub const fn profile(self) -> LevelProfile {
        const FULL: LevelProfile = LevelProfile {
            intensity_cap: None,
            melody: true,
            percussion: true,
            cheap_pad: false,
            texture: true,
            texture_detail: TextureDetail::Full,
            loop_phrase: false,
        };
        const CHORDS_ONLY: LevelProfile = LevelProfile {
            intensity_cap: Some(HIGH_LOAD_INTENSITY_CAP),
            melody: false,
            percussion: false,
            cheap_pad: true,
            texture: false,
            texture_detail: TextureDetail::Minimal,
            loop_phrase: false,
        };
        match self {
            Self::Normal => FULL,
            Self::HighLoad => LevelProfile {
                intensity_cap: Some(HIGH_LOAD_INTENSITY_CAP),
                texture_detail: TextureDetail::Reduced,
                ..FULL
            },
            Self::Critical => CHORDS_ONLY,
            Self::Overload => LevelProfile {
                texture: true,
                loop_phrase: true,
                ..CHORDS_ONLY
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_allows_no_more_than_the_one_below() {
        for pair in Level::ALL.windows(2) {
            let (better, worse) = (pair[0].profile(), pair[1].profile());
            assert!(worse.melody <= better.melody && worse.percussion <= better.percussion);
            assert!(worse.cheap_pad >= better.cheap_pad);
            assert!(worse.intensity_cap.unwrap_or(1.0) <= better.intensity_cap.unwrap_or(1.0));
        }
        // The texture is off at critical alone: overload loops the phrase with it.
        let texture: Vec<bool> = Level::ALL.iter().map(|l| l.profile().texture).collect();
        assert_eq!(texture, [true, true, false, true]);
        assert!(Level::Overload.profile().loop_phrase);
    }
}
