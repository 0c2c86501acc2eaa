//! Composition: turns a seed, a phrase index and [`ComposeParams`] into a
//! [`Phrase`] of chords, melody and percussion.
//!
//! Every phrase is a pure function of `(seed, index, params, prev_degree)`. Each
//! part draws from its own stream, `Rng::derive(seed, index, STREAM)`, so changing
//! how one part is composed never shifts the others. The only state carried from
//! phrase to phrase is the degree of the last chord, which the next phrase's chord
//! chain continues from; it is cheap to recompute ([`Composer::last_degree`]), so
//! any phrase of a piece can be reached directly ([`Composer::seek`]).

pub mod chords;
pub mod melody;
pub mod mix;
pub mod params;
pub mod percussion;
pub mod phrase;
pub mod presets;
pub mod theory;

pub use chords::{next_degree, transition_row, voice_chord};
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

use crate::rng::Rng;

/// Stream of the chord chain (degrees and holds).
const STREAM_CHORDS: u64 = 1;
/// Stream of the chord voicings.
const STREAM_VOICING: u64 = 2;
/// Stream of the melody.
const STREAM_MELODY: u64 = 3;
/// Stream of the percussion.
const STREAM_PERCUSSION: u64 = 4;

/// Phrases per section: the chord chain starts again on the tonic every this many
/// phrases (about half an hour of music at the default tempo), which bounds the work
/// of seeking to any position — a host playhead can jump billions of beats ahead.
pub const SECTION_PHRASES: u64 = 64;

/// The previous degree phrase `index` continues from: none at a section start.
const fn section_prev(index: u64, prev_degree: Option<u8>) -> Option<u8> {
    if index.is_multiple_of(SECTION_PHRASES) {
        None
    } else {
        prev_degree
    }
}

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

    /// Composes phrase `index`. `prev_degree` is the degree of the last chord of
    /// phrase `index - 1` ([`Phrase::last_degree`]); `None` starts the piece on the
    /// tonic, and so does every [`SECTION_PHRASES`]-th phrase, whatever
    /// `prev_degree` says. Pure: equal arguments give equal phrases.
    #[must_use]
    pub fn compose(&self, index: u64, prev_degree: Option<u8>) -> Phrase {
        let prev_degree = section_prev(index, prev_degree);
        let params = &self.params;
        let scale = params.scale();
        let bar_beats = f64::from(params.beats_per_bar);

        let mut chord_rng = Rng::derive(self.seed, index, STREAM_CHORDS);
        let mut voicing_rng = Rng::derive(self.seed, index, STREAM_VOICING);
        let mut chords = Vec::with_capacity(params.bars as usize);
        chords::walk_progression(
            params.mode,
            params.bars,
            params.intensity,
            prev_degree,
            &mut chord_rng,
            |bar, span, degree| {
                chords.push(ChordEvent {
                    start_beat: f64::from(bar) * bar_beats,
                    beats: f64::from(span) * bar_beats,
                    chord: voice_chord(scale, degree, &mut voicing_rng),
                });
            },
        );

        let melody = compose_melody(
            params,
            &chords,
            &mut Rng::derive(self.seed, index, STREAM_MELODY),
        );
        let percussion = compose_percussion(
            params,
            &mut Rng::derive(self.seed, index, STREAM_PERCUSSION),
        );

        Phrase {
            index,
            params: *params,
            prev_degree,
            chords,
            melody,
            percussion,
        }
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
        chords::walk_progression(
            self.params.mode,
            self.params.bars,
            self.params.intensity,
            section_prev(index, prev_degree),
            &mut Rng::derive(self.seed, index, STREAM_CHORDS),
            |_, _, _| {},
        )
    }

    /// The degree phrase `index` continues from when the piece is generated
    /// sequentially from phrase 0 with the current parameters (`None` at the start
    /// of a section). Walks the chord chain from the start of `index`'s section
    /// only, so any position, however far, costs fewer than [`SECTION_PHRASES`]
    /// walks.
    #[must_use]
    pub fn prev_degree_at(&self, index: u64) -> Option<u8> {
        let mut prev = None;
        for i in index - index % SECTION_PHRASES..index {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::chords::diminished_degree;
    use super::melody::{mean_notes_per_bar, MELODY_HIGH, MELODY_LOW};
    use super::*;

    /// Checks every invariant a phrase promises; panics with a description.
    fn check_phrase(p: &Phrase) {
        let params = p.params;
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
    fn piece(composer: &Composer, count: u64) -> Vec<Phrase> {
        let mut prev = None;
        (0..count)
            .map(|i| {
                let p = composer.compose(i, prev);
                prev = Some(p.last_degree());
                p
            })
            .collect()
    }

    #[test]
    fn tone_kind_proportions_and_truthfulness_over_many_phrases() {
        let mut counts = ToneCounts::default();
        let mut phrases = 0;
        for (m, mode) in Mode::ALL.into_iter().enumerate() {
            for key in [0, 2, 5, 9] {
                for intensity in [0.1, 0.4, 0.7, 1.0] {
                    let seed = 1000 * m as u64 + u64::from(key) * 10 + (intensity * 10.0) as u64;
                    let composer = Composer::new(seed, params(key, mode, intensity));
                    for p in piece(&composer, 12) {
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
                for p in piece(&composer, 300) {
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
            let phrases = piece(&composer, 1000);
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
            let phrases = piece(&composer, 120);
            for k in (0..120).step_by(7).chain([1, 2, 119]) {
                assert_eq!(composer.seek(k), phrases[k as usize], "phrase {k}");
            }
        }
    }

    #[test]
    fn sections_start_on_the_tonic_so_any_position_seeks_at_once() {
        let composer = Composer::new(9, params(4, Mode::Dorian, 0.5));
        for start in [SECTION_PHRASES, 5 * SECTION_PHRASES] {
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
        let far = (u64::MAX / 3) - (u64::MAX / 3) % SECTION_PHRASES;
        let mut prev = None;
        for k in far..far + 5 {
            let phrase = composer.compose(k, prev);
            assert_eq!(composer.seek(k), phrase, "phrase {k}");
            prev = Some(phrase.last_degree());
        }
    }

    #[test]
    fn melody_density_grows_with_intensity() {
        let notes_per_bar = |intensity: f32| {
            let composer = Composer::new(21, params(2, Mode::Dorian, intensity));
            let phrases = piece(&composer, 200);
            let notes: usize = phrases.iter().map(|p| p.melody.len()).sum();
            notes as f32 / (200.0 * 8.0)
        };
        let levels = [0.0, 0.25, 0.5, 0.75, 1.0].map(notes_per_bar);
        assert!(levels.windows(2).all(|w| w[0] < w[1]), "{levels:?}");
        assert!(levels[0] <= 1.0, "{levels:?}");
        assert!((5.0..=6.5).contains(&levels[4]), "{levels:?}");
        for (i, l) in levels.iter().enumerate() {
            let expected = mean_notes_per_bar(i as f32 / 4.0);
            assert!((l - expected).abs() < 0.25, "{levels:?}");
        }
    }

    #[test]
    fn melody_moves_mostly_by_step() {
        let composer = Composer::new(8, params(0, Mode::Aeolian, 0.8));
        let (mut small, mut total) = (0, 0);
        for p in piece(&composer, 100) {
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
        for p in piece(&composer, 200) {
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
        let after = composer.compose(5, Some(0));
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
