//! Form: the sections above the phrase.
//!
//! A piece is a chain of sections of [`SECTION_PHRASES_RANGE`] phrases (two to five
//! minutes at the presets' tempos). Each has its own density and intensity arc,
//! melody register, layer set ([`LayerSet`]: layers enter and leave, sometimes only
//! the texture plays), pad level and harmonic rhythm ([`HarmonicRhythm`]: chords of
//! one to eight bars, pedal points, chords held across phrase boundaries).
//!
//! Everything is hashed, never accumulated, so the form of phrase `k` costs O(1):
//! the piece is cut into epochs of [`EPOCH_PHRASES`] phrases, each epoch's section
//! lengths are drawn from `Rng::derive(seed, epoch, ..)`, and each section's
//! character from `Rng::derive(seed, section, ..)`. A change of section is a
//! transition, not a cut: layer gains move from the previous phrase's to this
//! phrase's over the first half of the phrase ([`PhraseForm::fade_beats`]), and the
//! renderer follows them sample by sample.
//!
//! Each section also has its own slow drifts ([`Drift`]): how bright the mix
//! is, how long the reverb rings and how wide the texture spreads. A new
//! section's drifts are drawn from `Rng::derive(seed, section, ..)` like its
//! character, and the values move there from the previous section's over its
//! first [`DRIFT_PHRASES`] phrases (a minute or so), linearly and phrase by
//! phrase, so nothing ever steps.

use super::phrase::{ComposeParams, Phrase};
use super::theory::{Key, Mode};
use crate::rng::Rng;

/// Phrases per epoch: the unit the section lengths are drawn in.
pub const EPOCH_PHRASES: u64 = 64;
/// Fewest and most phrases a section has.
pub const SECTION_PHRASES_RANGE: (u64, u64) = (4, 10);
/// Most sections an epoch can hold; section numbers are `epoch × this + i`.
const SECTIONS_PER_EPOCH: u64 = EPOCH_PHRASES / SECTION_PHRASES_RANGE.0;

/// Stream of an epoch's section lengths.
const STREAM_LENGTHS: u64 = 0x5EC7_1075;
/// Stream of a section's character.
const STREAM_CHARACTER: u64 = 0x5EC7_C4A2;
/// Stream of the decision to hold a chord across a phrase boundary.
const STREAM_CARRY: u64 = 0x5EC7_CA22;
/// Stream of a section's key move.
const STREAM_KEY_MOVE: u64 = 0x5EC7_4E11;
/// Stream of a section's slow drifts.
const STREAM_DRIFT: u64 = 0x5EC7_D21F;

/// Phrases over which the drifts move from the previous section's values to a
/// new section's: its first ones (sections have at least
/// [`SECTION_PHRASES_RANGE`]`.0`).
pub const DRIFT_PHRASES: u64 = 2;
/// Cutoffs of the master bus's low-pass that sections drift between, in hertz
/// (drawn evenly in octaves): from a veiled mix (the pad, whose own filters
/// stop below 3.4 kHz, barely changes; the melody's and the percussion's upper
/// partials soften) to one barely touched.
pub const BRIGHTNESS_HZ_RANGE: (f32, f32) = (1_500.0, 10_000.0);
/// The cutoff at and above which the brightness filter is open (it passes the
/// signal unchanged).
pub const BRIGHTNESS_OPEN_HZ: f32 = 20_000.0;
/// Factors of the reverb's decay time that sections drift between (drawn
/// evenly on a log scale, so the room is on average the one it was).
pub const REVERB_SCALE_RANGE: (f32, f32) = (0.7, 1.4);
/// Mid/side widths of the texture that sections drift between (1 leaves it as
/// rendered).
pub const WIDTH_RANGE: (f32, f32) = (0.6, 1.2);

/// The chance that a section at an odd place in its epoch moves to a related key.
/// Sections at even places (the piece's first among them) stay home, so every
/// move returns home at the next section.
const KEY_MOVE_CHANCE: f32 = 0.4;

/// A move from the home key and mode to a closely related one: the tonic
/// `semitones` up, in `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyMove {
    /// How far the tonic moves up, 0..12.
    pub semitones: u8,
    /// The mode moved to.
    pub mode: Mode,
}

/// The moves a section may make from a piece in `home`: the same mode a fifth up
/// and a fifth down (one sharp or flat away), and the ionian (for ionian: the
/// aeolian) on the same notes, the scale's relative major or minor.
#[must_use]
pub const fn key_moves(home: Mode) -> [KeyMove; 3] {
    let relative = match home {
        Mode::Aeolian => KeyMove {
            semitones: 3,
            mode: Mode::Ionian,
        },
        Mode::Dorian => KeyMove {
            semitones: 10,
            mode: Mode::Ionian,
        },
        Mode::Phrygian => KeyMove {
            semitones: 8,
            mode: Mode::Ionian,
        },
        Mode::Lydian => KeyMove {
            semitones: 7,
            mode: Mode::Ionian,
        },
        Mode::Mixolydian => KeyMove {
            semitones: 5,
            mode: Mode::Ionian,
        },
        Mode::Ionian => KeyMove {
            semitones: 9,
            mode: Mode::Aeolian,
        },
    };
    [
        KeyMove {
            semitones: 7,
            mode: home,
        },
        KeyMove {
            semitones: 5,
            mode: home,
        },
        relative,
    ]
}

/// `home` moved by move number `key_move` of [`key_moves`] (unchanged for `None`).
#[must_use]
pub fn key_params(key_move: Option<u8>, home: &ComposeParams) -> ComposeParams {
    let Some(m) = key_move.and_then(|i| key_moves(home.mode).get(usize::from(i)).copied()) else {
        return *home;
    };
    ComposeParams {
        key: Key::new((home.key.pitch_class() + m.semitones) % 12),
        mode: m.mode,
        ..*home
    }
}

/// Pad level of the quietest section, in dB (the loudest is at 0 dB).
pub const PAD_DB_RANGE: (f32, f32) = (-5.0, 0.0);
/// How far the intensity arc lowers the pad at the arc's low point, in dB.
const ARC_PAD_DB: f32 = 2.5;

/// Which layers a section lets sound. The pad (and the texture that replaces it)
/// always plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerSet {
    /// Pad, melody and percussion.
    Full,
    /// Pad and melody.
    NoPercussion,
    /// Pad and percussion.
    NoMelody,
    /// The pad (texture) alone.
    TextureOnly,
}

impl LayerSet {
    /// Every layer set, in the order of [`LayerSet::WEIGHTS`].
    pub const ALL: [Self; 4] = [
        Self::Full,
        Self::NoPercussion,
        Self::NoMelody,
        Self::TextureOnly,
    ];
    /// How often each of [`LayerSet::ALL`] is drawn.
    const WEIGHTS: [f32; 4] = [0.4, 0.25, 0.15, 0.2];

    /// Whether the melody sounds.
    #[must_use]
    pub const fn melody(self) -> bool {
        matches!(self, Self::Full | Self::NoPercussion)
    }

    /// Whether the percussion sounds.
    #[must_use]
    pub const fn percussion(self) -> bool {
        matches!(self, Self::Full | Self::NoMelody)
    }

    /// A short name: `full`, `no-percussion`, `no-melody`, `texture-only`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::NoPercussion => "no-percussion",
            Self::NoMelody => "no-melody",
            Self::TextureOnly => "texture-only",
        }
    }
}

/// Chord lengths a harmonic rhythm draws from, in bars (cut short at the phrase
/// end).
pub const SPAN_BARS: [u32; 4] = [1, 2, 4, 8];

/// How fast the chords change in a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HarmonicRhythm {
    /// Mostly one- and two-bar chords.
    Flowing,
    /// Mostly two- and four-bar chords.
    Broad,
    /// Four- and eight-bar chords, often held across phrases.
    Still,
    /// Two-bar chords over a tonic pedal in the bass.
    Pedal,
}

impl HarmonicRhythm {
    /// Every harmonic rhythm, in the order of [`HarmonicRhythm::WEIGHTS`].
    pub const ALL: [Self; 4] = [Self::Flowing, Self::Broad, Self::Still, Self::Pedal];
    /// How often each of [`HarmonicRhythm::ALL`] is drawn.
    const WEIGHTS: [f32; 4] = [0.35, 0.3, 0.15, 0.2];

    /// The weights of each of [`SPAN_BARS`].
    #[must_use]
    pub const fn span_weights(self) -> [f32; 4] {
        match self {
            Self::Flowing => [0.55, 0.35, 0.1, 0.0],
            Self::Broad => [0.1, 0.5, 0.4, 0.0],
            Self::Still => [0.0, 0.15, 0.55, 0.3],
            Self::Pedal => [0.25, 0.55, 0.2, 0.0],
        }
    }

    /// Whether the bass holds the tonic under every chord.
    #[must_use]
    pub const fn pedal(self) -> bool {
        matches!(self, Self::Pedal)
    }

    /// The chance that a phrase of the section begins on the chord that ended the
    /// phrase before, held through the boundary.
    #[must_use]
    pub const fn carry_chance(self) -> f32 {
        match self {
            Self::Flowing => 0.15,
            Self::Broad => 0.3,
            Self::Still => 0.6,
            Self::Pedal => 0.35,
        }
    }

    /// A short name: `flowing`, `broad`, `still`, `pedal`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Flowing => "flowing",
            Self::Broad => "broad",
            Self::Still => "still",
            Self::Pedal => "pedal",
        }
    }
}

/// The shape of a section's intensity over its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contour {
    /// Rises to the middle and falls away.
    Swell,
    /// Grows from start to end.
    Rise,
    /// Fades from start to end.
    Fall,
    /// Stays level.
    Plateau,
}

impl Contour {
    /// Every arc.
    pub const ALL: [Self; 4] = [Self::Swell, Self::Rise, Self::Fall, Self::Plateau];

    /// The arc's height, 0..=1, at `pos` (0 at the section's start, 1 at its end).
    #[must_use]
    pub fn level(self, pos: f32) -> f32 {
        let pos = pos.clamp(0.0, 1.0);
        match self {
            Self::Swell => (std::f32::consts::PI * pos).sin().max(0.0),
            Self::Rise => pos,
            Self::Fall => 1.0 - pos,
            Self::Plateau => 0.6,
        }
    }
}

/// One section: where it lies and its character.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Section {
    /// Its number in the piece (`epoch × 16 + i`: increasing, not contiguous).
    pub index: u64,
    /// Its first phrase.
    pub first_phrase: u64,
    /// Its length in phrases, within [`SECTION_PHRASES_RANGE`].
    pub phrases: u64,
    /// Multiplies the intensity at the arc's middle height, 0.6..=1.2.
    pub density: f32,
    /// The intensity's shape.
    pub contour: Contour,
    /// Semitones the melody's register is moved by, -4..=5.
    pub register: i8,
    /// Which layers sound.
    pub layers: LayerSet,
    /// How fast the chords change.
    pub harmony: HarmonicRhythm,
    /// The pad's level in dB, within [`PAD_DB_RANGE`].
    pub pad_db: f32,
    /// Which of [`key_moves`] of the home mode the section moves to; `None` stays
    /// home.
    pub key_move: Option<u8>,
    /// The drifts the section moves to over its first [`DRIFT_PHRASES`].
    pub drift: Drift,
}

impl Section {
    /// The section that phrase `index` of the piece `seed` belongs to. O(1): at
    /// most [`EPOCH_PHRASES`] / 4 length draws.
    #[must_use]
    pub fn of_phrase(seed: u64, index: u64) -> Self {
        let epoch = index / EPOCH_PHRASES;
        let mut lengths = Rng::derive(seed, epoch, STREAM_LENGTHS);
        let (min, max) = SECTION_PHRASES_RANGE;
        let mut first = epoch * EPOCH_PHRASES;
        let mut remaining = EPOCH_PHRASES;
        let mut i = 0;
        loop {
            let len = if remaining <= max {
                remaining
            } else {
                let drawn = min + u64::from(lengths.below((max - min + 1) as u32));
                // Never leave a remainder too short to be a section.
                drawn.min(remaining - min)
            };
            if index - first < len {
                return Self::character(seed, epoch * SECTIONS_PER_EPOCH + i, first, len);
            }
            first += len;
            remaining -= len;
            i += 1;
        }
    }

    /// Section `index` lying at `first_phrase` for `phrases`, with its character
    /// drawn from `(seed, index)`. The piece's first section has every layer.
    fn character(seed: u64, index: u64, first_phrase: u64, phrases: u64) -> Self {
        let mut rng = Rng::derive(seed, index, STREAM_CHARACTER);
        let density = rng.range_f32(0.6, 1.2);
        let contour = Contour::ALL[rng.below(4) as usize];
        let register = rng.below(10) as i8 - 4;
        let drawn = LayerSet::ALL[rng.weighted(&LayerSet::WEIGHTS)];
        let layers = if index == 0 { LayerSet::Full } else { drawn };
        // Without a melody, a still harmony would leave phrases with nothing
        // that tells them apart.
        let mut weights = HarmonicRhythm::WEIGHTS;
        if !layers.melody() {
            weights[2] = 0.0;
        }
        let harmony = HarmonicRhythm::ALL[rng.weighted(&weights)];
        let pad_db = rng.range_f32(PAD_DB_RANGE.0, PAD_DB_RANGE.1);
        let mut moves = Rng::derive(seed, index, STREAM_KEY_MOVE);
        let odd = index % SECTIONS_PER_EPOCH % 2 == 1;
        let key_move = (odd && moves.chance(KEY_MOVE_CHANCE)).then(|| moves.below(3) as u8);
        Self {
            key_move,
            index,
            first_phrase,
            phrases,
            density,
            contour,
            register,
            layers,
            harmony,
            pad_db,
            drift: Drift::of_section(seed, index),
        }
    }

    /// Whether `index` is this section's first phrase.
    #[must_use]
    pub const fn starts_at(&self, index: u64) -> bool {
        index == self.first_phrase
    }

    /// Whether phrase `index` (of this section) of the piece `seed` begins on the
    /// previous phrase's last chord, held. Never on the section's first phrase:
    /// sections begin afresh, on the tonic.
    #[must_use]
    pub fn holds_chord_into(&self, seed: u64, index: u64) -> bool {
        !self.starts_at(index)
            && Rng::derive(seed, index, STREAM_CARRY).chance(self.harmony.carry_chance())
    }

    /// The arc's height, 0..=1, in the middle of phrase `index` of the section.
    #[must_use]
    pub fn arc_level(&self, index: u64) -> f32 {
        let into = index.saturating_sub(self.first_phrase) as f32 + 0.5;
        self.contour.level(into / self.phrases as f32)
    }

    /// What multiplies the user's intensity in phrase `index`: the density,
    /// ±30 % along the arc.
    #[must_use]
    pub fn intensity_scale(&self, index: u64) -> f32 {
        self.density * 0.6f32.mul_add(self.arc_level(index), 0.7)
    }

    /// The layer gains phrase `index` moves to.
    #[must_use]
    pub fn gains(&self, index: u64) -> LayerGains {
        let pad_db = ARC_PAD_DB.mul_add(self.arc_level(index) - 1.0, self.pad_db);
        LayerGains {
            pad: 10f32.powf(pad_db / 20.0),
            melody: f32::from(u8::from(self.layers.melody())),
            percussion: f32::from(u8::from(self.layers.percussion())),
        }
    }
}

/// The slow drifts of the sound at one moment: what the renderer applies on top
/// of the mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    /// Cutoff of the low-pass on the master bus, in hertz, within
    /// [`BRIGHTNESS_HZ_RANGE`] ([`BRIGHTNESS_OPEN_HZ`]: open).
    pub brightness_hz: f32,
    /// What multiplies the reverb's decay time, within [`REVERB_SCALE_RANGE`].
    pub reverb_scale: f32,
    /// Mid/side width of the texture, within [`WIDTH_RANGE`] (1: as rendered).
    pub width: f32,
}

impl Drift {
    /// No drift: the filter open, the reverb and the texture as they are.
    pub const NEUTRAL: Self = Self {
        brightness_hz: BRIGHTNESS_OPEN_HZ,
        reverb_scale: 1.0,
        width: 1.0,
    };

    /// The drifts section `index` of the piece `seed` moves to.
    #[must_use]
    pub fn of_section(seed: u64, index: u64) -> Self {
        let mut rng = Rng::derive(seed, index, STREAM_DRIFT);
        let mut log_range = |(lo, hi): (f32, f32)| lo * (hi / lo).powf(rng.next_f32());
        let brightness_hz = log_range(BRIGHTNESS_HZ_RANGE);
        let reverb_scale = log_range(REVERB_SCALE_RANGE);
        let width = rng.range_f32(WIDTH_RANGE.0, WIDTH_RANGE.1);
        Self {
            brightness_hz,
            reverb_scale,
            width,
        }
    }

    /// The drifts `t` (0..=1) of the way from `self` to `to`: the brightness in
    /// octaves, the others linearly; exactly `self` at 0 and `to` at 1.
    #[must_use]
    pub fn lerp(&self, to: &Self, t: f32) -> Self {
        if t <= 0.0 {
            return *self;
        }
        if t >= 1.0 {
            return *to;
        }
        let at = |a: f32, b: f32| (b - a).mul_add(t, a);
        Self {
            brightness_hz: self.brightness_hz * (to.brightness_hz / self.brightness_hz).powf(t),
            reverb_scale: at(self.reverb_scale, to.reverb_scale),
            width: at(self.width, to.width),
        }
    }
}

/// Gains of the three layers, each 0..=1, multiplying the mix levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerGains {
    /// The pad and the texture.
    pub pad: f32,
    /// The melody.
    pub melody: f32,
    /// The percussion.
    pub percussion: f32,
}

impl LayerGains {
    /// Every layer at full gain.
    pub const UNITY: Self = Self {
        pad: 1.0,
        melody: 1.0,
        percussion: 1.0,
    };

    /// The gains `t` (0..=1) of the way from `self` to `to`.
    #[must_use]
    pub fn lerp(&self, to: &Self, t: f32) -> Self {
        let at = |a: f32, b: f32| (b - a).mul_add(t, a);
        Self {
            pad: at(self.pad, to.pad),
            melody: at(self.melody, to.melody),
            percussion: at(self.percussion, to.percussion),
        }
    }
}

/// What the form asks of one phrase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhraseForm {
    /// The section's number ([`Section::index`]).
    pub section: u64,
    /// Which layers the section lets sound.
    pub layers: LayerSet,
    /// How fast the chords change.
    pub harmony: HarmonicRhythm,
    /// Multiplies the user's intensity (the result is capped at 1).
    pub intensity_scale: f32,
    /// Semitones the melody's register is moved by.
    pub register: i8,
    /// Which of [`key_moves`] of the home mode the section moves to.
    pub key_move: Option<u8>,
    /// Layer gains at the phrase's start (where the phrase before ended).
    pub gains_from: LayerGains,
    /// Layer gains from [`PhraseForm::fade_beats`] on.
    pub gains: LayerGains,
    /// Beats over which the gains move from `gains_from` to `gains`.
    pub fade_beats: f64,
    /// Whether the first chord is the chord that ended the phrase before, held.
    pub carry_in: bool,
    /// Whether the last chord is held into the next phrase.
    pub carry_out: bool,
    /// The drifts at the phrase's start (where the phrase before ended).
    pub drift_from: Drift,
    /// The drifts at [`PhraseForm::drift_beats`] (the phrase's end).
    pub drift: Drift,
    /// Beats over which the drifts move from `drift_from` to `drift`.
    pub drift_beats: f64,
}

impl PhraseForm {
    /// A form that changes nothing: every layer at unity, the user's intensity,
    /// one- and two-bar chords, no held chords, no drift. For phrases built by
    /// hand.
    pub const STEADY: Self = Self {
        section: 0,
        layers: LayerSet::Full,
        harmony: HarmonicRhythm::Flowing,
        intensity_scale: 1.0,
        register: 0,
        key_move: None,
        gains_from: LayerGains::UNITY,
        gains: LayerGains::UNITY,
        fade_beats: 0.0,
        carry_in: false,
        carry_out: false,
        drift_from: Drift::NEUTRAL,
        drift: Drift::NEUTRAL,
        drift_beats: 0.0,
    };

    /// The form of phrase `index` of the piece `seed`, whose phrases last
    /// `phrase_beats` beats. O(1).
    #[must_use]
    pub fn of_phrase(seed: u64, index: u64, phrase_beats: f64) -> Self {
        let section = Section::of_phrase(seed, index);
        let before = section
            .first_phrase
            .checked_sub(1)
            .map(|last| (last, Section::of_phrase(seed, last)));
        let gains_from = match (index.checked_sub(1), before) {
            (Some(_), Some((last, prev))) if section.starts_at(index) => prev.gains(last),
            (Some(prev), _) => section.gains(prev),
            (None, _) => section.gains(index),
        };
        let into = index - section.first_phrase;
        let next_in_section = into + 1 < section.phrases;
        // The drifts head from the previous section's values to this one's over
        // its first phrases; the piece's first section starts at its own.
        let drift_start = before.map_or(section.drift, |(_, prev)| prev.drift);
        let drift_after =
            |phrases: u64| drift_start.lerp(&section.drift, phrases as f32 / DRIFT_PHRASES as f32);
        Self {
            section: section.index,
            layers: section.layers,
            harmony: section.harmony,
            intensity_scale: section.intensity_scale(index),
            register: section.register,
            key_move: section.key_move,
            gains_from,
            gains: section.gains(index),
            fade_beats: phrase_beats / 2.0,
            carry_in: section.holds_chord_into(seed, index),
            carry_out: next_in_section && section.holds_chord_into(seed, index + 1),
            drift_from: drift_after(into),
            drift: drift_after(into + 1),
            drift_beats: phrase_beats,
        }
    }

    /// The gains `beat` beats into the phrase.
    #[must_use]
    pub fn gains_at(&self, beat: f64) -> LayerGains {
        if beat >= self.fade_beats {
            return self.gains;
        }
        self.gains_from
            .lerp(&self.gains, (beat.max(0.0) / self.fade_beats) as f32)
    }

    /// The drifts `beat` beats into the phrase.
    #[must_use]
    pub fn drift_at(&self, beat: f64) -> Drift {
        if beat >= self.drift_beats {
            return self.drift;
        }
        self.drift_from
            .lerp(&self.drift, (beat.max(0.0) / self.drift_beats) as f32)
    }
}

impl Default for PhraseForm {
    fn default() -> Self {
        Self::STEADY
    }
}

/// The length in bars of every chord of consecutive `phrases`, in order; a chord
/// held across a phrase boundary ([`PhraseForm::carry_in`]) counts once, with its
/// whole length.
#[must_use]
pub fn chord_lengths(phrases: &[Phrase]) -> Vec<u32> {
    let mut lengths: Vec<u32> = Vec::new();
    for p in phrases {
        let bar = f64::from(p.params.beats_per_bar);
        for (i, c) in p.chords.iter().enumerate() {
            let bars = (c.beats / bar).round() as u32;
            match lengths.last_mut() {
                Some(last) if i == 0 && p.form.carry_in => *last += bars,
                _ => lengths.push(bars),
            }
        }
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_tile_every_epoch_within_the_length_range() {
        for seed in [0, 1, 77, u64::MAX] {
            for epoch in [0, 1, 5, 1 << 40] {
                let start = epoch * EPOCH_PHRASES;
                let mut k = start;
                let mut last_index = None;
                while k < start + EPOCH_PHRASES {
                    let s = Section::of_phrase(seed, k);
                    assert_eq!(s.first_phrase, k, "seed {seed} phrase {k}");
                    assert!(
                        (SECTION_PHRASES_RANGE.0..=SECTION_PHRASES_RANGE.1).contains(&s.phrases),
                        "{s:?}"
                    );
                    assert!(last_index.is_none_or(|i| i < s.index), "{s:?}");
                    for inside in k..k + s.phrases {
                        assert_eq!(Section::of_phrase(seed, inside), s);
                    }
                    last_index = Some(s.index);
                    k += s.phrases;
                }
                assert_eq!(k, start + EPOCH_PHRASES, "sections end with the epoch");
            }
        }
    }

    #[test]
    fn sections_differ_in_character_and_the_piece_opens_with_every_layer() {
        let seed = 5;
        assert_eq!(Section::of_phrase(seed, 0).layers, LayerSet::Full);
        let mut layers = std::collections::HashSet::new();
        let mut harmonies = std::collections::HashSet::new();
        let mut k = 0;
        while k < 20 * EPOCH_PHRASES {
            let s = Section::of_phrase(seed, k);
            layers.insert(s.layers);
            harmonies.insert(s.harmony);
            assert!((0.6..=1.2).contains(&s.density));
            assert!((-4..=5).contains(&s.register));
            assert!((PAD_DB_RANGE.0..=PAD_DB_RANGE.1).contains(&s.pad_db));
            k += s.phrases;
        }
        assert_eq!(layers.len(), LayerSet::ALL.len());
        assert_eq!(harmonies.len(), HarmonicRhythm::ALL.len());
    }

    #[test]
    fn gains_fade_from_where_the_phrase_before_ended() {
        let seed = 3;
        let beats = 32.0;
        for k in 1..300 {
            let prev = PhraseForm::of_phrase(seed, k - 1, beats);
            let form = PhraseForm::of_phrase(seed, k, beats);
            assert_eq!(form.gains_from, prev.gains, "phrase {k}");
            assert_eq!(form.gains_at(0.0), prev.gains);
            assert_eq!(form.gains_at(form.fade_beats), form.gains);
            let mid = form.gains_at(form.fade_beats / 2.0);
            for (a, m, b) in [
                (prev.gains.pad, mid.pad, form.gains.pad),
                (prev.gains.melody, mid.melody, form.gains.melody),
            ] {
                assert!(m >= a.min(b) - 1e-6 && m <= a.max(b) + 1e-6);
            }
            assert_eq!(prev.carry_out, form.carry_in, "phrase {k}");
            if form.section != prev.section {
                assert!(!form.carry_in, "sections begin afresh");
            }
        }
    }

    /// Whether every drift of `d` lies in its range.
    fn in_range(d: &Drift) -> bool {
        let within = |v: f32, (lo, hi): (f32, f32)| (lo * 0.9999..=hi * 1.0001).contains(&v);
        within(d.brightness_hz, BRIGHTNESS_HZ_RANGE)
            && within(d.reverb_scale, REVERB_SCALE_RANGE)
            && within(d.width, WIDTH_RANGE)
    }

    #[test]
    fn drifts_are_pure_seekable_continuous_and_in_range() {
        let beats = 32.0;
        for seed in [3, 77, u64::MAX] {
            // In sequence…
            let forms: Vec<PhraseForm> = (0..400)
                .map(|k| PhraseForm::of_phrase(seed, k, beats))
                .collect();
            // …equals cold, in any order (nothing is accumulated).
            for k in (0..400).rev().step_by(7) {
                assert_eq!(PhraseForm::of_phrase(seed, k, beats), forms[k as usize]);
            }
            let far = 1 << 40;
            let cold = PhraseForm::of_phrase(seed, far, beats);
            assert!(
                in_range(&cold.drift_from) && in_range(&cold.drift),
                "{cold:?}"
            );
            assert_eq!(
                cold.drift_from,
                PhraseForm::of_phrase(seed, far - 1, beats).drift
            );
            for (k, form) in forms.iter().enumerate() {
                assert!(in_range(&form.drift_from), "phrase {k}: {form:?}");
                assert!(in_range(&form.drift), "phrase {k}: {form:?}");
                assert_eq!(form.drift_beats, beats);
                assert_eq!(form.drift_at(0.0), form.drift_from);
                assert_eq!(form.drift_at(beats), form.drift);
                if k > 0 {
                    // Each phrase starts where the one before ended: no step.
                    assert_eq!(form.drift_from, forms[k - 1].drift, "phrase {k}");
                }
            }
            // The first section holds its own drifts from the start.
            assert_eq!(forms[0].drift_from, forms[0].drift);
        }
    }

    #[test]
    fn drifts_differ_between_sections_and_move_in_small_steps() {
        let seed = 5;
        let beats = 32.0;
        let octaves = |hz: f32| hz.log2();
        let (lo, hi) = BRIGHTNESS_HZ_RANGE;
        // A phrase moves a drift by at most a DRIFT_PHRASES-th of its range.
        let share = 1.0 / DRIFT_PHRASES as f32 + 1e-4;
        let max_steps = [
            (octaves(hi) - octaves(lo)) * share,
            (REVERB_SCALE_RANGE.1 - REVERB_SCALE_RANGE.0) * share,
            (WIDTH_RANGE.1 - WIDTH_RANGE.0) * share,
        ];
        let mut sections = Vec::new();
        let (mut moving, mut steady) = (0, 0);
        for k in 0..400 {
            let form = PhraseForm::of_phrase(seed, k, beats);
            let section = Section::of_phrase(seed, k);
            let (a, b) = (form.drift_from, form.drift);
            let steps = [
                (octaves(b.brightness_hz) - octaves(a.brightness_hz)).abs(),
                (b.reverb_scale - a.reverb_scale).abs(),
                (b.width - a.width).abs(),
            ];
            for (step, max) in steps.iter().zip(max_steps) {
                assert!(*step <= max, "phrase {k}: {steps:?} over {max_steps:?}");
            }
            // Only a section's first phrases move; from then on it holds.
            let into = k - section.first_phrase;
            if into >= DRIFT_PHRASES {
                assert_eq!((a, b), (section.drift, section.drift), "phrase {k}");
                steady += 1;
            } else if a != b {
                moving += 1;
            }
            if section.starts_at(k) {
                sections.push(section.drift);
            }
        }
        assert!(sections.len() >= 40, "{} sections", sections.len());
        assert!(
            moving >= 40 && steady >= 100,
            "{moving} moving, {steady} steady"
        );
        let spread = |f: fn(&Drift) -> f32| {
            let values: Vec<f32> = sections.iter().map(f).collect();
            let min = values.iter().copied().fold(f32::INFINITY, f32::min);
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (min, max)
        };
        let (b_min, b_max) = spread(|d| d.brightness_hz);
        assert!(b_min < lo * 1.3 && b_max > hi / 1.3, "{b_min}..{b_max} Hz");
        let (r_min, r_max) = spread(|d| d.reverb_scale);
        assert!(r_min < 0.8 && r_max > 1.25, "reverb ×{r_min}..×{r_max}");
        let (w_min, w_max) = spread(|d| d.width);
        assert!(w_min < 0.7 && w_max > 1.1, "width {w_min}..{w_max}");
        // Neighbouring sections differ: a new section is a new colour.
        let differing = sections
            .windows(2)
            .filter(|w| (w[0].brightness_hz / w[1].brightness_hz).log2().abs() > 0.25)
            .count();
        assert!(
            differing * 2 > sections.len(),
            "{differing} of {}",
            sections.len()
        );
    }

    #[test]
    fn the_steady_form_has_no_drift() {
        let form = PhraseForm::STEADY;
        for beat in [0.0, 3.0, 1e6] {
            assert_eq!(form.drift_at(beat), Drift::NEUTRAL);
        }
    }

    #[test]
    fn arcs_stay_in_range() {
        for arc in Contour::ALL {
            for i in 0..=10 {
                let l = arc.level(i as f32 / 10.0);
                assert!((0.0..=1.0).contains(&l), "{arc:?} {l}");
            }
        }
        assert!(Contour::Rise.level(0.9) > Contour::Rise.level(0.1));
        assert!(Contour::Fall.level(0.9) < Contour::Fall.level(0.1));
        assert!(Contour::Swell.level(0.5) > Contour::Swell.level(0.05));
    }
}
