//! The unit of composition: a [`Phrase`] of a few bars of chords, melody notes and
//! percussion events, with every time in beats so a tempo change applies at the next
//! phrase boundary.

use super::form::PhraseForm;
use super::theory::{Key, Mode, Scale};

/// Most notes a chord voicing may hold.
pub const MAX_CHORD_NOTES: usize = 6;

/// Lowest and highest accepted tempo, in beats per minute.
pub const BPM_RANGE: (f32, f32) = (20.0, 300.0);
/// Fewest and most bars a phrase may have.
pub const BARS_RANGE: (u32, u32) = (1, 64);
/// Fewest and most beats a bar may have.
pub const BEATS_PER_BAR_RANGE: (u32, u32) = (2, 12);

/// The musical parameters a phrase is composed with. They change only at phrase
/// boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComposeParams {
    /// The tonic.
    pub key: Key,
    /// The mode.
    pub mode: Mode,
    /// Tempo in beats per minute, within [`BPM_RANGE`].
    pub bpm: f32,
    /// Activity, 0 (sparse) to 1 (busy): melody density, percussion density.
    pub intensity: f32,
    /// Bars per phrase, within [`BARS_RANGE`] (default 8).
    pub bars: u32,
    /// Beats per bar, within [`BEATS_PER_BAR_RANGE`] (default 4).
    pub beats_per_bar: u32,
}

impl Default for ComposeParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A parameter outside its documented range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// A named value is outside `[min, max]` (or not a finite number).
    #[error("{name} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Which parameter.
        name: &'static str,
        /// What was given.
        value: f64,
        /// Lowest accepted value.
        min: f64,
        /// Highest accepted value.
        max: f64,
    },
}

/// Checks that `value` is finite and within `[min, max]`.
///
/// # Errors
/// [`ParamError::OutOfRange`] naming `name` otherwise.
pub fn check_range(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), ParamError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ParamError::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

impl ComposeParams {
    /// The default parameters (the `focus` preset's): D dorian at 60 BPM,
    /// intensity 0.5, phrases of 8 bars of 4 beats.
    pub const DEFAULT: Self = Self {
        key: Key::new(2),
        mode: Mode::Dorian,
        bpm: 60.0,
        intensity: 0.5,
        bars: 8,
        beats_per_bar: 4,
    };

    /// Checks every field against its documented range.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_range(
            "bpm",
            f64::from(self.bpm),
            f64::from(BPM_RANGE.0),
            f64::from(BPM_RANGE.1),
        )?;
        check_range("intensity", f64::from(self.intensity), 0.0, 1.0)?;
        check_range(
            "bars",
            f64::from(self.bars),
            f64::from(BARS_RANGE.0),
            f64::from(BARS_RANGE.1),
        )?;
        check_range(
            "beats_per_bar",
            f64::from(self.beats_per_bar),
            f64::from(BEATS_PER_BAR_RANGE.0),
            f64::from(BEATS_PER_BAR_RANGE.1),
        )
    }

    /// The scale of these parameters.
    #[must_use]
    pub const fn scale(&self) -> Scale {
        Scale::new(self.key, self.mode)
    }

    /// Length of one phrase in beats.
    #[must_use]
    pub fn phrase_beats(&self) -> f64 {
        f64::from(self.bars * self.beats_per_bar)
    }

    /// The parameters as two words, the one packing the engine's parameter cell
    /// and the shared-memory header use: `key | mode << 8 | bars << 16 |
    /// beats_per_bar << 32` ([`Mode::index`]) and the tempo's and intensity's
    /// `f32` bits, `bpm | intensity << 32`.
    #[must_use]
    pub fn to_words(&self) -> [u64; 2] {
        [
            u64::from(self.key.pitch_class())
                | u64::from(self.mode.index()) << 8
                | u64::from(self.bars) << 16
                | u64::from(self.beats_per_bar) << 32,
            u64::from(self.bpm.to_bits()) | u64::from(self.intensity.to_bits()) << 32,
        ]
    }

    /// The inverse of [`ComposeParams::to_words`]; `None` when the key or mode
    /// bits name no key or mode (the values are not range-checked: see
    /// [`ComposeParams::validate`]).
    #[must_use]
    pub fn from_words(words: [u64; 2]) -> Option<Self> {
        let [small, floats] = words;
        let key = small & 0xFF;
        if key >= 12 {
            return None;
        }
        Some(Self {
            key: Key::new(key as u8),
            mode: Mode::from_index((small >> 8) & 0xFF)?,
            bars: ((small >> 16) & 0xFFFF) as u32,
            beats_per_bar: ((small >> 32) & 0xFFFF) as u32,
            bpm: f32::from_bits((floats & 0xFFFF_FFFF) as u32),
            intensity: f32::from_bits((floats >> 32) as u32),
        })
    }
}

/// A chord: its scale degree and the MIDI notes of its voicing, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chord {
    /// The chord root's scale degree, 0..7.
    pub degree: u8,
    notes: [u8; MAX_CHORD_NOTES],
    len: u8,
}

impl Chord {
    /// A chord on `degree` voiced as `notes` (at most [`MAX_CHORD_NOTES`]; extra
    /// notes are dropped). The notes are stored sorted.
    #[must_use]
    pub fn new(degree: u8, notes: &[u8]) -> Self {
        let len = notes.len().min(MAX_CHORD_NOTES);
        let mut stored = [0u8; MAX_CHORD_NOTES];
        stored[..len].copy_from_slice(&notes[..len]);
        stored[..len].sort_unstable();
        Self {
            degree: degree % 7,
            notes: stored,
            len: len as u8,
        }
    }

    /// The voicing's MIDI notes, lowest first.
    #[must_use]
    pub fn notes(&self) -> &[u8] {
        &self.notes[..usize::from(self.len)]
    }

    /// Whether `pitch_class` (0..12) sounds in this chord.
    #[must_use]
    pub fn has_pitch_class(&self, pitch_class: u8) -> bool {
        self.notes().iter().any(|n| n % 12 == pitch_class % 12)
    }
}

/// A chord held from `start_beat` for `beats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChordEvent {
    /// Onset, in beats from the phrase start.
    pub start_beat: f64,
    /// Length in beats.
    pub beats: f64,
    /// What sounds.
    pub chord: Chord,
}

/// Why a melody note was chosen; used by the renderer for nothing, by tests and
/// statistics for everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToneKind {
    /// A note of the chord sounding at the note's onset.
    ChordTone,
    /// A scale note outside the chord.
    ScaleTone,
    /// A chromatic note outside the scale, resolved by step by the next note.
    Passing,
}

/// A melody note.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteEvent {
    /// Onset, in beats from the phrase start.
    pub start_beat: f64,
    /// Length in beats.
    pub beats: f64,
    /// MIDI note.
    pub note: u8,
    /// Loudness, 0..=1.
    pub velocity: f32,
    /// Harmonic role.
    pub kind: ToneKind,
}

/// Kinds of percussion event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PercKind {
    /// A soft, low, pitched-down sine thump.
    Kick,
    /// A filtered-noise swell that rises over `beats` and falls away.
    Swell,
}

/// A percussion event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercEvent {
    /// Onset, in beats from the phrase start.
    pub start_beat: f64,
    /// Length in beats (the rise of a swell; ignored by a kick).
    pub beats: f64,
    /// What sounds.
    pub kind: PercKind,
    /// Loudness, 0..=1.
    pub velocity: f32,
}

/// One phrase: everything the renderer needs to play `bars` bars.
///
/// Event lists are sorted by `start_beat`, and every event starts within the
/// phrase (`0 <= start_beat < phrase_beats`).
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    /// Position in the piece: phrase 0 starts at beat 0.
    pub index: u64,
    /// The parameters it was composed with.
    pub params: ComposeParams,
    /// The degree it continued from (`None`: the tonic, as at every section's
    /// start whatever [`Composer::compose`](super::Composer::compose) was
    /// given).
    pub prev_degree: Option<u8>,
    /// Chords, one per bar by default, covering the whole phrase.
    pub chords: Vec<ChordEvent>,
    /// Melody notes.
    pub melody: Vec<NoteEvent>,
    /// Percussion events.
    pub percussion: Vec<PercEvent>,
    /// Its place in the piece's form: section, layer gains, held chords.
    pub form: PhraseForm,
}

/// What a phrase was composed from: with the seed, enough to compose it again
/// exactly ([`Composer::compose_key`](super::Composer::compose_key)), so a
/// recording can replay what was played without keeping the phrase itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhraseKey {
    /// The phrase's index.
    pub index: u64,
    /// The parameters it was composed with (after the degradation level shaped
    /// them).
    pub params: ComposeParams,
    /// The degree it continued from.
    pub prev_degree: Option<u8>,
    /// Whether it kept its melody (the degradation level may have thinned it).
    pub melody: bool,
    /// Whether it kept its percussion.
    pub percussion: bool,
}

impl Phrase {
    /// What this phrase was composed from ([`PhraseKey`]).
    #[must_use]
    pub fn key(&self) -> PhraseKey {
        PhraseKey {
            index: self.index,
            params: self.params,
            prev_degree: self.prev_degree,
            melody: !self.melody.is_empty(),
            percussion: !self.percussion.is_empty(),
        }
    }

    /// The parameters it sounds in: the piece's, in the key its section moved
    /// to ([`super::form::key_params`]).
    #[must_use]
    pub fn sounding_params(&self) -> ComposeParams {
        super::form::key_params(self.form.key_move, &self.params)
    }

    /// Length in beats.
    #[must_use]
    pub fn beats(&self) -> f64 {
        self.params.phrase_beats()
    }

    /// The intensity it was composed with: the user's, scaled by the form and
    /// capped at 1.
    #[must_use]
    pub fn intensity(&self) -> f32 {
        (self.params.intensity * self.form.intensity_scale).clamp(0.0, 1.0)
    }

    /// The degree of the chord that ends the phrase (what phrase `index + 1`
    /// continues from).
    #[must_use]
    pub fn last_degree(&self) -> u8 {
        self.chords.last().map_or(0, |c| c.chord.degree)
    }

    /// The chord sounding at `beat`, if any.
    #[must_use]
    pub fn chord_at(&self, beat: f64) -> Option<&Chord> {
        self.chords
            .iter()
            .rev()
            .find(|c| c.start_beat <= beat)
            .map(|c| &c.chord)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_refuse_what_names_no_key_or_mode() {
        let p = ComposeParams {
            key: Key::new(11),
            mode: Mode::Ionian,
            bpm: 73.5,
            intensity: 0.25,
            bars: 12,
            beats_per_bar: 3,
        };
        assert_eq!(ComposeParams::from_words(p.to_words()), Some(p));
        let [small, floats] = p.to_words();
        assert_eq!(ComposeParams::from_words([small | 0xFF, floats]), None);
        assert_eq!(ComposeParams::from_words([small | 0xFF00, floats]), None);
    }
}
