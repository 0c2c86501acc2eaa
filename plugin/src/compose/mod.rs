//! Composition: turns a seed, a phrase index and [`ComposeParams`] into a
//! [`Phrase`] of chords, melody and percussion.
//!
//! Every phrase is a pure function of `(seed, index, params, prev_degree)`. Each
//! part draws from its own stream, `Rng::derive(seed, index, STREAM)`, so changing
//! how one part is composed never shifts the others. Above the phrase lies the form
//! ([`form`]): sections of minutes, each hashed from the seed, that set the
//! phrase's intensity, register, layers and harmonic rhythm. The only state carried
//! from phrase to phrase is the degree of the last chord, which the next phrase's
//! chord chain continues from; every section starts again on the tonic, so it is
//! cheap to recompute ([`Composer::prev_degree_at`]) and any phrase of a piece can
//! be reached directly ([`Composer::seek`]).

pub mod chords;
pub mod code;
pub mod form;
pub mod melody;
pub mod mix;
pub mod motif;
pub mod params;
pub mod percussion;
pub mod phrase;
pub mod presets;
pub mod theory;

pub use chords::{next_degree, transition_row, voice_chord};
pub use code::{CodeError, PieceCode};
pub use form::{HarmonicRhythm, LayerGains, LayerSet, PhraseForm, Section};
pub use melody::{compose_melody, ToneCounts};
pub use mix::MixLevels;
pub use params::ParamUpdate;
pub use percussion::compose_percussion;
pub use phrase::{
    Chord, ChordEvent, ComposeParams, NoteEvent, ParamError, PercEvent, PercKind, Phrase,
    PhraseKey, ToneKind,
};
pub use presets::{preset, Preset, PresetError, PRESETS};
pub use theory::{midi_to_hz, Key, Mode, Scale};

use self::chords::ChainStart;
use crate::rng::Rng;

/// Stream of the chord chain (degrees and holds).
const STREAM_CHORDS: u64 = 1;
/// Stream of the chord voicings.
const STREAM_VOICING: u64 = 2;
/// Stream of the melody.
const STREAM_MELODY: u64 = 3;
/// Stream of the percussion.
const STREAM_PERCUSSION: u64 = 4;
/// Stream of the voicing of a chord held across a phrase boundary, keyed by
/// section and degree so both phrases voice it alike.
const STREAM_HELD: u64 = 5;

/// Composes the phrases of one piece: a seed and the current parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Composer {
    seed: u64,
    params: ComposeParams,
}

impl Composer {
    /// A composer for the piece `seed` with `params`.
    #[must_use]
    pub const fn new(seed: u64, params: ComposeParams) -> Self {
        Self { seed, params }
    }

    /// The piece's seed.
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The parameters the next phrases are composed with.
    #[must_use]
    pub const fn params(&self) -> &ComposeParams {
        &self.params
    }

    /// Replaces the parameters; they apply to phrases composed from now on.
    pub fn set_params(&mut self, params: ComposeParams) {
        self.params = params;
    }

    /// The section phrase `index` belongs to, its harmonic rhythm and how its
    /// chord chain begins after a phrase that ended on `prev_degree`.
    fn chain(&self, index: u64, prev_degree: Option<u8>) -> (Section, ChainStart) {
        let section = Section::of_phrase(self.seed, index);
        let start = ChainStart {
            prev_degree: prev_degree.filter(|_| !section.starts_at(index)),
            carry_in: section.holds_chord_into(self.seed, index),
        };
        (section, start)
    }

    /// Composes phrase `index`. `prev_degree` is the degree of the last chord of
    /// phrase `index - 1` ([`Phrase::last_degree`]); `None` starts the piece on the
    /// tonic, and so does the first phrase of every [`Section`], whatever
    /// `prev_degree` says. A section that moves key ([`form::key_moves`]) is
    /// composed in the key moved to ([`Phrase::sounding_params`]); the phrase's
    /// `params` stay the piece's, so composing its [`Phrase::key`] again gives
    /// it back. Pure: equal arguments give equal phrases.
    #[must_use]
    pub fn compose(&self, index: u64, prev_degree: Option<u8>) -> Phrase {
        let (section, start) = self.chain(index, prev_degree);
        let params = &form::key_params(section.key_move, &self.params);
        let form = PhraseForm::of_phrase(self.seed, index, params.phrase_beats());
        let scale = params.scale();
        let bar_beats = f64::from(params.beats_per_bar);
        let shaped = ComposeParams {
            intensity: (params.intensity * form.intensity_scale).clamp(0.0, 1.0),
            ..*params
        };

        let mut chord_rng = Rng::derive(self.seed, index, STREAM_CHORDS);
        let mut voicing_rng = Rng::derive(self.seed, index, STREAM_VOICING);
        let mut chords = Vec::with_capacity(params.bars as usize);
        chords::walk_progression(
            params.mode,
            params.bars,
            section.harmony,
            start,
            &mut chord_rng,
            |bar, span, degree| {
                let held =
                    (bar == 0 && start.carry_in) || (bar + span == params.bars && form.carry_out);
                let chord = if held {
                    let key = section.index.wrapping_mul(8) | u64::from(degree);
                    voice_chord(scale, degree, &mut Rng::derive(self.seed, key, STREAM_HELD))
                } else {
                    voice_chord(scale, degree, &mut voicing_rng)
                };
                chords.push(ChordEvent {
                    start_beat: f64::from(bar) * bar_beats,
                    beats: f64::from(span) * bar_beats,
                    chord: if section.harmony.pedal() {
                        chords::with_pedal(&chord, scale)
                    } else {
                        chord
                    },
                });
            },
        );

        let mut melody = compose_melody(
            &shaped,
            form.register,
            &chords,
            &motif::Motif::of_section(self.seed, section.index),
            &mut Rng::derive(self.seed, index, STREAM_MELODY),
        );
        keep_audible(
            &mut melody,
            (form.gains_from.melody, form.gains.melody),
            form.fade_beats,
            |n| n.start_beat,
        );
        // A passing tone whose resolution was cut resolves nowhere: drop it too.
        while melody.last().is_some_and(|n| n.kind == ToneKind::Passing) {
            melody.pop();
        }
        let mut percussion = compose_percussion(
            &shaped,
            &mut Rng::derive(self.seed, index, STREAM_PERCUSSION),
        );
        keep_audible(
            &mut percussion,
            (form.gains_from.percussion, form.gains.percussion),
            form.fade_beats,
            |e| e.start_beat,
        );

        Phrase {
            index,
            params: self.params,
            prev_degree: start.prev_degree,
            chords,
            melody,
            percussion,
            form,
        }
    }

    /// Phrases `0..count`, each continuing from the one before: the piece as it
    /// plays from its start.
    #[must_use]
    pub fn sequence(&self, count: u64) -> Vec<Phrase> {
        let mut prev = None;
        (0..count)
            .map(|i| {
                let p = self.compose(i, prev);
                prev = Some(p.last_degree());
                p
            })
            .collect()
    }

    /// The phrase `key` describes, composed again with this composer's seed (its
    /// parameters are the key's): equal to the phrase the key was taken from.
    /// A melody or percussion the key says was thinned away is cleared, which
    /// gives the same phrase whether or not composing left it empty.
    #[must_use]
    pub fn compose_key(seed: u64, key: &PhraseKey) -> Phrase {
        let mut phrase = Self::new(seed, key.params).compose(key.index, key.prev_degree);
        if !key.melody {
            phrase.melody.clear();
        }
        if !key.percussion {
            phrase.percussion.clear();
        }
        phrase
    }

    /// The degree of the chord that ends phrase `index` given `prev_degree`, from
    /// the chord chain alone; always equals `compose(index, prev_degree).last_degree()`.
    #[must_use]
    pub fn last_degree(&self, index: u64, prev_degree: Option<u8>) -> u8 {
        let (section, start) = self.chain(index, prev_degree);
        chords::walk_progression(
            form::key_params(section.key_move, &self.params).mode,
            self.params.bars,
            section.harmony,
            start,
            &mut Rng::derive(self.seed, index, STREAM_CHORDS),
            |_, _, _| {},
        )
    }

    /// The degree phrase `index` continues from when the piece is generated
    /// sequentially from phrase 0 with the current parameters (`None` at the start
    /// of a section). Walks the chord chain from the start of `index`'s section
    /// only, so any position, however far, costs fewer than
    /// [`form::SECTION_PHRASES_RANGE`]`.1` walks.
    #[must_use]
    pub fn prev_degree_at(&self, index: u64) -> Option<u8> {
        let mut prev = None;
        for i in Section::of_phrase(self.seed, index).first_phrase..index {
            prev = Some(self.last_degree(i, prev));
        }
        prev
    }

    /// Phrase `index` exactly as sequential generation from phrase 0 with the
    /// current parameters produces it. Costs one chord-chain walk per earlier
    /// phrase of its section.
    #[must_use]
    pub fn seek(&self, index: u64) -> Phrase {
        self.compose(index, self.prev_degree_at(index))
    }
}

/// Drops the events of a layer that is silent where they start: all of them when
/// its gain is 0 at both ends of the phrase (`gains` = from, to), those after the
/// fade when it fades out.
fn keep_audible<T>(
    events: &mut Vec<T>,
    gains: (f32, f32),
    fade_beats: f64,
    start: impl Fn(&T) -> f64,
) {
    let (from, to) = gains;
    if to > 0.0 {
        return;
    }
    if from > 0.0 {
        events.retain(|e| start(e) < fade_beats);
    } else {
        events.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::chords::diminished_degree;
    use super::melody::{mean_notes_per_bar, MELODY_HIGH, MELODY_LOW};
    use super::*;

    /// Checks every invariant a phrase promises; panics with a description.
    fn check_phrase(p: &Phrase) {
        let params = p.sounding_params();
        let scale = params.scale();
        let end = p.beats();
        let dim = diminished_degree(params.mode);

        // Chords: contiguous, covering the phrase, diatonic, never diminished.
        assert!(!p.chords.is_empty());
        let mut at = 0.0;
        for c in &p.chords {
            assert!((c.start_beat - at).abs() < 1e-9, "gap before {c:?}");
            assert!(c.beats > 0.0);
            at = c.start_beat + c.beats;
            assert_ne!(c.chord.degree, dim, "diminished chord in {}", params.mode);
            assert!((3..=5).contains(&c.chord.notes().len()));
            for &n in c.chord.notes() {
                assert!(scale.contains(n % 12), "{n} not in {scale:?}");
            }
        }
        assert!(
            (at - end).abs() < 1e-9,
            "chords end at {at}, phrase at {end}"
        );

        // Melody: sorted, inside the phrase, in range, rests, truthful kinds.
        for w in p.melody.windows(2) {
            assert!(w[0].start_beat < w[1].start_beat);
            assert!(w[0].start_beat + w[0].beats <= w[1].start_beat + 1e-9);
        }
        for (i, n) in p.melody.iter().enumerate() {
            assert!(
                n.start_beat >= 0.0 && n.start_beat + n.beats <= end + 1e-9,
                "{n:?}"
            );
            assert!(n.beats > 0.0);
            assert!(
                ((n.start_beat * 2.0).fract()).abs() < 1e-9,
                "half-beat grid"
            );
            assert!((MELODY_LOW..=MELODY_HIGH).contains(&n.note));
            assert!((0.4..=0.9).contains(&n.velocity), "{n:?}");
            let pc = n.note % 12;
            let chord = p.chord_at(n.start_beat).expect("a chord sounds");
            match n.kind {
                ToneKind::ChordTone => assert!(chord.has_pitch_class(pc), "{n:?}"),
                ToneKind::ScaleTone => {
                    assert!(scale.contains(pc) && !chord.has_pitch_class(pc), "{n:?}");
                }
                ToneKind::Passing => {
                    assert!(!scale.contains(pc), "{n:?}");
                    let next = p.melody.get(i + 1).expect("passing tone is not last");
                    let step = (i32::from(next.note) - i32::from(n.note)).abs();
                    assert!((1..=2).contains(&step), "{n:?} -> {next:?}");
                    assert!(scale.contains(next.note % 12), "{next:?}");
                    assert_ne!(next.kind, ToneKind::Passing);
                }
            }
        }

        // Percussion: sorted, inside the phrase.
        for w in p.percussion.windows(2) {
            assert!(w[0].start_beat <= w[1].start_beat);
        }
        for e in &p.percussion {
            assert!(e.start_beat >= 0.0 && e.start_beat < end, "{e:?}");
            assert!(e.start_beat + e.beats <= end + 1e-9, "{e:?}");
            assert!((0.0..=1.0).contains(&e.velocity));
        }
    }

    fn params(key: u8, mode: Mode, intensity: f32) -> ComposeParams {
        ComposeParams {
            key: Key::new(key),
            mode,
            intensity,
            ..ComposeParams::default()
        }
    }

    /// Composes `count` consecutive phrases from phrase 0.

    #[test]
    fn tone_kind_proportions_and_truthfulness_over_many_phrases() {
        let mut counts = ToneCounts::default();
        let mut phrases = 0;
        for (m, mode) in Mode::ALL.into_iter().enumerate() {
            for key in [0, 2, 5, 9] {
                for intensity in [0.1, 0.4, 0.7, 1.0] {
                    let seed = 1000 * m as u64 + u64::from(key) * 10 + (intensity * 10.0) as u64;
                    let composer = Composer::new(seed, params(key, mode, intensity));
                    for p in composer.sequence(12) {
                        check_phrase(&p);
                        counts.add_phrase(&p);
                        phrases += 1;
                    }
                }
            }
        }
        assert!(phrases >= 1000);
        let [chord, scale, passing] = counts.shares();
        println!(
            "{phrases} phrases, {} notes: chord {chord:.4}, scale {scale:.4}, passing {passing:.4}",
            counts.total()
        );
        assert!((chord - 0.70).abs() <= 0.05, "chord share {chord}");
        assert!((scale - 0.25).abs() <= 0.05, "scale share {scale}");
        assert!(
            (passing - 0.05).abs() <= 0.05 && passing > 0.0,
            "passing share {passing}"
        );
    }

    #[test]
    fn proportions_hold_within_each_mode_and_intensity() {
        for mode in Mode::ALL {
            for intensity in [0.2, 0.6, 1.0] {
                let mut counts = ToneCounts::default();
                let composer = Composer::new(77, params(4, mode, intensity));
                for p in composer.sequence(300) {
                    counts.add_phrase(&p);
                }
                let [chord, scale, passing] = counts.shares();
                assert!((chord - 0.70).abs() <= 0.05, "{mode} {intensity}: {chord}");
                assert!((scale - 0.25).abs() <= 0.05, "{mode} {intensity}: {scale}");
                assert!(
                    (passing - 0.05).abs() <= 0.03,
                    "{mode} {intensity}: {passing}"
                );
            }
        }
    }

    #[test]
    fn no_two_phrases_of_a_seed_are_equal() {
        for (seed, intensity) in [(1, 0.5), (2, 0.0)] {
            let composer = Composer::new(seed, params(2, Mode::Dorian, intensity));
            let phrases = composer.sequence(1000);
            for (i, a) in phrases.iter().enumerate() {
                for b in &phrases[i + 1..] {
                    // Compare content only: the index alone would make them differ.
                    assert!(
                        a.chords != b.chords
                            || a.melody != b.melody
                            || a.percussion != b.percussion,
                        "phrases {} and {} are identical",
                        a.index,
                        b.index
                    );
                }
            }
        }
    }

    #[test]
    fn compose_is_deterministic() {
        for seed in [0, 1, u64::MAX] {
            let a = Composer::new(seed, ComposeParams::default());
            let b = Composer::new(seed, ComposeParams::default());
            for index in [0, 1, 17, 1 << 40] {
                for prev in [None, Some(0), Some(3), Some(6)] {
                    assert_eq!(a.compose(index, prev), b.compose(index, prev));
                }
            }
        }
        let a = Composer::new(5, ComposeParams::default()).compose(3, Some(2));
        let b = Composer::new(6, ComposeParams::default()).compose(3, Some(2));
        assert_ne!(a, b, "seeds matter");
    }

    #[test]
    fn parts_draw_from_independent_streams() {
        let base = Composer::new(9, params(0, Mode::Ionian, 0.5));
        let busier = Composer::new(9, params(0, Mode::Ionian, 0.9));
        let p = base.compose(4, Some(0));
        let q = busier.compose(4, Some(0));
        // Intensity changes melody and percussion, but voicings of equal degrees
        // come from the voicing stream alone.
        let degrees = |ph: &Phrase| ph.chords.iter().map(|c| c.chord.degree).collect::<Vec<_>>();
        if degrees(&p) == degrees(&q) {
            assert_eq!(p.chords, q.chords);
        }
        let other_key = Composer::new(9, params(7, Mode::Ionian, 0.5)).compose(4, Some(0));
        assert_eq!(
            degrees(&p),
            degrees(&other_key),
            "key does not move the chain"
        );
        assert_eq!(
            p.percussion, other_key.percussion,
            "key does not move percussion"
        );
    }

    #[test]
    fn first_phrase_starts_on_tonic_and_chain_continues() {
        for seed in 0..50 {
            let composer = Composer::new(seed, ComposeParams::default());
            assert_eq!(composer.compose(0, None).chords[0].chord.degree, 0);
        }
    }

    #[test]
    fn last_degree_agrees_with_compose() {
        for seed in 0..20 {
            for mode in Mode::ALL {
                let composer = Composer::new(seed, params(3, mode, 0.3));
                for index in 0..30 {
                    for prev in [None, Some(0), Some(1), Some(4), Some(6)] {
                        assert_eq!(
                            composer.last_degree(index, prev),
                            composer.compose(index, prev).last_degree()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn seek_equals_sequential_generation() {
        for seed in [3, 1234] {
            let composer = Composer::new(seed, params(10, Mode::Mixolydian, 0.6));
            let phrases = composer.sequence(120);
            for k in (0..120).step_by(7).chain([1, 2, 119]) {
                assert_eq!(composer.seek(k), phrases[k as usize], "phrase {k}");
            }
        }
    }

    #[test]
    fn sections_start_on_the_tonic_so_any_position_seeks_at_once() {
        let composer = Composer::new(9, params(4, Mode::Dorian, 0.5));
        let first = Section::of_phrase(9, 0);
        for start in [first.phrases, 5 * form::EPOCH_PHRASES] {
            assert!(Section::of_phrase(9, start).starts_at(start));
            assert_eq!(composer.prev_degree_at(start), None);
            for prev in 0..7 {
                assert_eq!(
                    composer.compose(start, Some(prev)),
                    composer.compose(start, None)
                );
            }
        }
        // A playhead billions of beats ahead: one section's walk, the same phrase
        // as generating that section sequentially.
        let far = Section::of_phrase(9, u64::MAX / 3).first_phrase;
        let mut prev = None;
        for k in far..far + 12 {
            let phrase = composer.compose(k, prev);
            assert_eq!(composer.seek(k), phrase, "phrase {k}");
            prev = Some(phrase.last_degree());
        }
    }

    #[test]
    fn seek_equals_sequential_generation_across_section_boundaries() {
        for (seed, preset) in [(11, &PRESETS[0]), (12, &PRESETS[2]), (13, &PRESETS[3])] {
            let composer = Composer::new(seed, preset.compose);
            let phrases = composer.sequence(200);
            let mut boundaries = 0;
            for k in 1..200u64 {
                let (a, b) = (&phrases[k as usize - 1], &phrases[k as usize]);
                if a.form.section != b.form.section {
                    boundaries += 1;
                    for j in [k - 1, k, (k + 1).min(199)] {
                        assert_eq!(composer.seek(j), phrases[j as usize], "phrase {j}");
                    }
                }
                if b.form.carry_in {
                    assert_eq!(
                        a.chords.last().map(|c| c.chord),
                        b.chords.first().map(|c| c.chord)
                    );
                    assert_eq!(composer.seek(k), *b, "held chord into phrase {k}");
                }
            }
            assert!(boundaries >= 15, "{boundaries} section boundaries");
        }
    }

    #[test]
    fn sections_change_layers_register_and_harmonic_rhythm() {
        let composer = Composer::new(31, ComposeParams::default());
        let phrases = composer.sequence(400);
        let mut layer_sets = std::collections::HashSet::new();
        for p in &phrases {
            layer_sets.insert(p.form.layers);
            check_phrase(p);
            if !p.form.layers.melody() && p.form.gains_from.melody == 0.0 {
                assert!(
                    p.melody.is_empty(),
                    "phrase {} has no melody layer",
                    p.index
                );
            }
            if !p.form.layers.percussion() {
                assert!(
                    p.percussion
                        .iter()
                        .all(|e| e.start_beat < p.form.fade_beats),
                    "phrase {}: percussion after its fade-out",
                    p.index
                );
            }
            if p.form.harmony.pedal() {
                let tonic = p.sounding_params().key.pitch_class();
                assert!(p.chords.iter().all(|c| c.chord.notes()[0] % 12 == tonic));
            }
        }
        assert_eq!(layer_sets.len(), LayerSet::ALL.len(), "{layer_sets:?}");
    }

    #[test]
    fn chords_last_one_to_many_bars_and_no_length_dominates() {
        for preset in &PRESETS {
            let composer = Composer::new(2, preset.compose);
            let lengths = form::chord_lengths(&composer.sequence(300));
            let mut histogram = std::collections::BTreeMap::new();
            for l in &lengths {
                *histogram.entry(*l).or_insert(0usize) += 1;
            }
            let most = histogram.values().copied().max().unwrap_or(0);
            assert!(histogram.len() >= 3, "{}: {histogram:?}", preset.name);
            assert!(
                most * 10 <= lengths.len() * 7,
                "{}: {histogram:?}",
                preset.name
            );
            assert!(
                histogram.keys().any(|l| !form::SPAN_BARS.contains(l)),
                "{}: held chords {histogram:?}",
                preset.name
            );
        }
    }

    #[test]
    fn every_section_keeps_the_70_25_5_mix() {
        let mut checked = 0;
        for (seed, preset) in [
            (1, &PRESETS[0]),
            (2, &PRESETS[1]),
            (3, &PRESETS[2]),
            (4, &PRESETS[3]),
        ] {
            let composer = Composer::new(seed, preset.compose);
            let mut by_section = std::collections::BTreeMap::new();
            for p in composer.sequence(320) {
                by_section
                    .entry(p.form.section)
                    .or_insert_with(ToneCounts::default)
                    .add_phrase(&p);
            }
            for (section, counts) in by_section {
                if counts.total() < 30 {
                    // A section without melody (only its fade-out notes).
                    continue;
                }
                checked += 1;
                let [chord, scale, passing] = counts.shares();
                let at = format!(
                    "{} section {section}, {} notes",
                    preset.name,
                    counts.total()
                );
                assert!((chord - 0.70).abs() <= 0.05, "{at}: chord {chord}");
                assert!((scale - 0.25).abs() <= 0.05, "{at}: scale {scale}");
                assert!((passing - 0.05).abs() <= 0.05, "{at}: passing {passing}");
            }
        }
        assert!(checked >= 40, "{checked} sections checked");
    }

    #[test]
    fn a_phrases_key_composes_it_again_across_sections_and_key_moves() {
        let composer = Composer::new(17, params(2, Mode::Dorian, 0.5));
        let phrases = composer.sequence(300);
        assert!(phrases.iter().any(|p| p.form.key_move.is_some()));
        assert!(phrases.iter().any(|p| p.form.carry_in));
        for p in &phrases {
            assert_eq!(
                Composer::compose_key(17, &p.key()),
                *p,
                "phrase {}",
                p.index
            );
        }
    }

    #[test]
    fn sections_move_to_related_keys_and_return_home() {
        let home = params(2, Mode::Dorian, 0.5);
        let composer = Composer::new(17, home);
        let phrases = composer.sequence(640);
        let allowed = form::key_moves(Mode::Dorian);
        let mut moved_sections = std::collections::BTreeSet::new();
        for w in phrases.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let away = |p: &Phrase| {
                let s = p.sounding_params();
                (s.key, s.mode) != (home.key, home.mode)
            };
            if away(b) {
                moved_sections.insert(b.form.section);
                let m = allowed
                    .iter()
                    .find(|m| {
                        let s = b.sounding_params();
                        s.mode == m.mode && s.key.pitch_class() == (2 + m.semitones) % 12
                    })
                    .unwrap_or_else(|| panic!("phrase {}: {:?}", b.index, b.form));
                assert_eq!(b.form.key_move.map(|i| allowed[usize::from(i)]), Some(*m));
                check_phrase(b);
            }
            if a.form.section != b.form.section && away(a) {
                assert!(!away(b), "phrase {}: two moved sections in a row", b.index);
            }
            if a.form.section == b.form.section {
                assert_eq!(
                    a.sounding_params(),
                    b.sounding_params(),
                    "a section keeps its key"
                );
            }
        }
        assert!(moved_sections.len() >= 5, "{moved_sections:?}");
        assert_eq!(
            phrases[0].sounding_params(),
            home,
            "the piece opens at home"
        );
        assert!(
            phrases.iter().all(|p| p.params == home),
            "params stay the piece's"
        );
    }

    #[test]
    fn melody_density_grows_with_intensity() {
        let notes_per_bar = |intensity: f32| {
            let composer = Composer::new(21, params(2, Mode::Dorian, intensity));
            // Phrases whose melody plays throughout, at the intensity the form
            // gave them.
            let full: Vec<Phrase> = composer
                .sequence(400)
                .into_iter()
                .filter(|p| p.form.gains_from.melody > 0.0 && p.form.gains.melody > 0.0)
                .collect();
            let notes: usize = full.iter().map(|p| p.melody.len()).sum();
            let expected: f32 = full.iter().map(|p| mean_notes_per_bar(p.intensity())).sum();
            let bars = full.len() as f32 * 8.0;
            (notes as f32 / bars, expected / full.len() as f32)
        };
        let levels = [0.0, 0.25, 0.5, 0.75, 1.0].map(notes_per_bar);
        assert!(levels.windows(2).all(|w| w[0].0 < w[1].0), "{levels:?}");
        assert!(levels[0].0 <= 1.0, "{levels:?}");
        assert!((4.0..=6.5).contains(&levels[4].0), "{levels:?}");
        for (measured, expected) in levels {
            assert!((measured - expected).abs() < 0.25, "{levels:?}");
        }
    }

    #[test]
    fn melody_moves_mostly_by_step() {
        let composer = Composer::new(8, params(0, Mode::Aeolian, 0.8));
        let (mut small, mut total) = (0, 0);
        for p in composer.sequence(100) {
            for w in p.melody.windows(2) {
                total += 1;
                if (i32::from(w[1].note) - i32::from(w[0].note)).abs() <= 4 {
                    small += 1;
                }
            }
        }
        assert!(
            small * 10 >= total * 6,
            "{small}/{total} moves of a third or less"
        );
    }

    #[test]
    fn kicks_are_spaced_two_to_four_bars() {
        let composer = Composer::new(4, ComposeParams::default());
        let with_percussion = composer
            .sequence(200)
            .into_iter()
            .filter(|p| p.form.gains_from.percussion > 0.0 && p.form.gains.percussion > 0.0);
        for p in with_percussion {
            let kicks: Vec<f64> = p
                .percussion
                .iter()
                .filter(|e| e.kind == PercKind::Kick)
                .map(|e| e.start_beat / 4.0)
                .collect();
            assert!(!kicks.is_empty());
            for w in kicks.windows(2) {
                assert!((2.0..=4.0).contains(&(w[1] - w[0])), "{kicks:?}");
            }
        }
    }

    #[test]
    fn params_apply_from_the_next_phrase() {
        let mut composer = Composer::new(12, ComposeParams::default());
        let before = composer.compose(5, Some(0));
        composer.set_params(params(9, Mode::Lydian, 0.9));
        assert_eq!(composer.params().mode, Mode::Lydian);
        assert_eq!(composer.seed(), 12);
        let after = composer.compose(0, None);
        assert_eq!(after.params.mode, Mode::Lydian);
        check_phrase(&before);
        check_phrase(&after);
    }

    fn arb_params() -> impl Strategy<Value = ComposeParams> {
        (
            0u8..12,
            0usize..6,
            20.0f32..=300.0,
            0.0f32..=1.0,
            1u32..=64,
            2u32..=12,
        )
            .prop_map(
                |(key, mode, bpm, intensity, bars, beats_per_bar)| ComposeParams {
                    key: Key::new(key),
                    mode: Mode::ALL[mode],
                    bpm,
                    intensity,
                    bars,
                    beats_per_bar,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn compose_never_panics_and_phrases_are_valid(
            params in arb_params(),
            seed in any::<u64>(),
            index in any::<u64>(),
            prev in proptest::option::of(any::<u8>()),
        ) {
            prop_assume!(params.validate().is_ok());
            let composer = Composer::new(seed, params);
            let phrase = composer.compose(index, prev);
            check_phrase(&phrase);
            prop_assert_eq!(phrase.index, index);
            prop_assert_eq!(phrase.last_degree(), composer.last_degree(index, prev));
        }
    }
}
