//! Chord progressions and voicings: a first-order Markov chain over scale degrees
//! with ambient-leaning, mode-aware transition weights, and open diatonic voicings
//! built by stacking scale thirds.
//!
//! The transition weights come from a small rule rather than a hand-filled 7×7
//! table, so every mode gets a coherent row set:
//!
//! - motion by fourth, fifth and third is favoured over stepwise motion (the
//!   root-motion tendencies described in Schoenberg's *Structural Functions of
//!   Harmony*: "strong" progressions by fourth/fifth, "descending" ones by third);
//! - the tonic is a strong attractor, so the music keeps coming home;
//! - repeating the current chord is allowed (ambient music lingers);
//! - the dominant (degree 4) is damped: tension is rare;
//! - each mode's characteristic chord (dorian IV, lydian II, mixolydian ♭VII, …) is
//!   nudged up so the mode's colour is audible;
//! - the degree whose diatonic triad is diminished gets weight 0, and the row is
//!   renormalised to sum to 1.

use super::form::{HarmonicRhythm, SPAN_BARS};
use super::phrase::Chord;
use super::theory::{Mode, Scale};
use crate::rng::Rng;

/// Relative weight of moving the chord root up by `i` scale steps (index `i`, 0..7).
const MOTION_WEIGHT: [f32; 7] = [
    0.55, // repeat the chord
    0.45, // step up (i → ii)
    1.0,  // third up (i → III)
    1.5,  // fourth up (i → IV): the plagal, most "ambient" motion
    1.1,  // fifth up / fourth down (IV → i, i → v)
    1.3,  // third down (i → VI)
    0.6,  // step down (i → VII)
];

/// Multiplies the weight of every move to the tonic.
const TONIC_PULL: f32 = 2.2;
/// Multiplies the weight of every move to the dominant (degree 4): rare tension.
const DOMINANT_DAMP: f32 = 0.35;
/// Multiplies the weight of every move to the mode's characteristic chord.
const COLOUR_BOOST: f32 = 1.4;

/// Lowest MIDI note of the bass (the chord root); the bass lies in `BASS_LOW..BASS_LOW + 12`.
pub const BASS_LOW: u8 = 36;
/// Lowest MIDI note of the upper voices.
pub const UPPER_LOW: u8 = 48;
/// Highest MIDI note of the upper voices.
pub const UPPER_HIGH: u8 = 76;

/// The degree (0..7) whose diatonic triad is diminished in `mode` (aeolian ii,
/// dorian vi, phrygian v, lydian ♯iv, mixolydian iii, ionian vii).
#[must_use]
pub fn diminished_degree(mode: Mode) -> u8 {
    let iv = mode.intervals();
    (0..7u8)
        .find(|&d| {
            let root = iv[usize::from(d)];
            let fifth = iv[usize::from((d + 4) % 7)];
            (fifth + 12 - root) % 12 == 6
        })
        // Every diatonic mode has exactly one diminished triad; 6 is ionian's.
        .unwrap_or(6)
}

/// The degree of the chord that carries the mode's colour: the triad holding the
/// note that distinguishes the mode from its nearest major or minor.
#[must_use]
pub const fn colour_degree(mode: Mode) -> u8 {
    match mode {
        // ♭VI: the natural-minor sound.
        Mode::Aeolian => 5,
        // Major IV: the raised sixth.
        Mode::Dorian | Mode::Ionian => 3,
        // ♭II and lydian's major II: the characteristic second degree.
        Mode::Phrygian | Mode::Lydian => 1,
        // ♭VII: the lowered seventh.
        Mode::Mixolydian => 6,
    }
}

/// The probabilities of moving from chord degree `from` (taken modulo 7) to each
/// degree 0..7 in `mode`. The row sums to 1 and the diminished degree has
/// probability 0.
#[must_use]
pub fn transition_row(mode: Mode, from: u8) -> [f32; 7] {
    let from = from % 7;
    let dim = diminished_degree(mode);
    let colour = colour_degree(mode);
    let mut row = [0.0f32; 7];
    for (to, w) in (0u8..).zip(row.iter_mut()) {
        if to == dim {
            continue;
        }
        let mut weight = MOTION_WEIGHT[usize::from((to + 7 - from) % 7)];
        if to == 0 {
            weight *= TONIC_PULL;
        }
        if to == 4 {
            weight *= DOMINANT_DAMP;
        }
        if to == colour {
            weight *= COLOUR_BOOST;
        }
        *w = weight;
    }
    let total: f32 = row.iter().sum();
    for w in &mut row {
        *w /= total;
    }
    row
}

/// Draws the degree that follows `from` in `mode`. Never returns the diminished
/// degree.
pub fn next_degree(mode: Mode, from: u8, rng: &mut Rng) -> u8 {
    let row = transition_row(mode, from);
    let to = rng.weighted(&row);
    // `weighted` falls through to the last index on rounding at the very top of
    // the range; never let that land on a zero-weight (diminished) degree.
    if row[to] > 0.0 {
        to as u8
    } else {
        0
    }
}

/// Colours a voicing may take, as stacks of scale steps above the chord root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    /// Root, third, fifth.
    Triad,
    /// Root, third, fifth, seventh.
    Seventh,
    /// Root, third, fifth, ninth.
    AddNine,
    /// Root, third, fifth, seventh, ninth.
    Ninth,
    /// Root, second, fifth.
    SusTwo,
}

impl Colour {
    /// Scale steps above the root of the upper voices, in voicing order (the fifth
    /// first for an open spread).
    const fn upper_steps(self) -> &'static [i32] {
        match self {
            Self::Triad => &[4, 2],
            Self::Seventh => &[4, 2, 6],
            Self::AddNine => &[4, 2, 8],
            Self::Ninth => &[4, 2, 6, 8],
            Self::SusTwo => &[4, 8],
        }
    }
}

/// Voices the diatonic chord on `degree` (taken modulo 7) of `scale`: the root in
/// the bass (MIDI 36–47), then two to four upper voices spread openly between MIDI
/// 48 and 76 — a triad, a seventh, an add9, a ninth or a sus2 chord. Every note
/// belongs to the scale; a ninth that would be a minor ninth above the root (and
/// so a sus2 on it) is avoided.
pub fn voice_chord(scale: Scale, degree: u8, rng: &mut Rng) -> Chord {
    let degree = degree % 7;
    let d = i32::from(degree);
    let root_pc = scale.pitch(d, 0).rem_euclid(12);
    let ninth_pc = scale.pitch(d + 1, 0).rem_euclid(12);
    let soft_ninth = (ninth_pc - root_pc).rem_euclid(12) == 2;

    let colour = match rng.weighted(&[3.0, 2.5, 1.5, 1.0, 1.2]) {
        1 => Colour::Seventh,
        2 if soft_ninth => Colour::AddNine,
        3 if soft_ninth => Colour::Ninth,
        4 if soft_ninth => Colour::SusTwo,
        _ => Colour::Triad,
    };

    let bass = i32::from(BASS_LOW) + root_pc;
    let mut notes = [0u8; 5];
    notes[0] = bass as u8;
    let mut len = 1;

    // Open spread: each upper voice at least a minor third (sometimes a fourth)
    // above the previous one, the first at least a fourth above the bass.
    let mut floor = (bass + 5).max(i32::from(UPPER_LOW)) + rng.below(3) as i32;
    let steps = colour.upper_steps();
    for &step in steps {
        let pc = scale.pitch(d + step, 0).rem_euclid(12);
        let note = floor + (pc - floor).rem_euclid(12);
        if note > i32::from(UPPER_HIGH) {
            continue;
        }
        notes[len] = note as u8;
        len += 1;
        floor = note + 3 + rng.below(3) as i32;
    }
    // Sometimes crown a sparse voicing with the root.
    if len < 4 && rng.chance(0.4) {
        let note = floor + (root_pc - floor).rem_euclid(12);
        if note <= i32::from(UPPER_HIGH) {
            notes[len] = note as u8;
            len += 1;
        }
    }
    Chord::new(degree, &notes[..len])
}

/// Puts a tonic pedal under `chord`: the bass (its lowest note, MIDI 36–47)
/// becomes the tonic of `scale` in the same octave range; the upper voices stay.
#[must_use]
pub fn with_pedal(chord: &Chord, scale: Scale) -> Chord {
    let mut notes = [0u8; super::phrase::MAX_CHORD_NOTES];
    let voicing = chord.notes();
    notes[..voicing.len()].copy_from_slice(voicing);
    notes[0] = BASS_LOW + scale.pitch(0, 0).rem_euclid(12) as u8;
    Chord::new(chord.degree, &notes[..voicing.len()])
}

/// How one phrase's chord chain begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStart {
    /// The degree of the chord that ended the phrase before; `None` starts on the
    /// tonic.
    pub prev_degree: Option<u8>,
    /// Whether that chord is held into this phrase (its first chord is the same).
    pub carry_in: bool,
}

/// Walks the chord chain of one phrase of `bars` bars: the first chord follows
/// `start` (the tonic without a previous degree, the previous chord again when it
/// is carried in), then each chord follows the last, held for a length drawn from
/// `rhythm`'s [`HarmonicRhythm::span_weights`] (cut short at the phrase end).
/// Calls `visit(first_bar, bar_count, degree)` for each chord, in order, and
/// returns the last degree. Draws only from `rng`, so the walk is cheap to repeat.
pub fn walk_progression(
    mode: Mode,
    bars: u32,
    rhythm: HarmonicRhythm,
    start: ChainStart,
    rng: &mut Rng,
    mut visit: impl FnMut(u32, u32, u8),
) -> u8 {
    let weights = rhythm.span_weights();
    let mut degree = match start.prev_degree {
        None => 0,
        // (A diminished degree is never held: it never ends a phrase of the chain.)
        Some(prev) if start.carry_in && prev % 7 != diminished_degree(mode) => prev % 7,
        Some(prev) => next_degree(mode, prev, rng),
    };
    let mut bar = 0;
    while bar < bars {
        if bar > 0 {
            degree = next_degree(mode, degree, rng);
        }
        let span = SPAN_BARS[rng.weighted(&weights)].min(bars - bar);
        visit(bar, span, degree);
        bar += span;
    }
    degree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::theory::Key;

    #[test]
    fn rows_sum_to_one_for_every_mode() {
        for mode in Mode::ALL {
            for from in 0..7 {
                let row = transition_row(mode, from);
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-6, "{mode} {from}: {sum}");
                assert!(row.iter().all(|&p| (0.0..=1.0).contains(&p)));
            }
        }
    }

    #[test]
    fn diminished_degrees_are_the_textbook_ones_and_never_chosen() {
        let expected = [
            (Mode::Aeolian, 1),
            (Mode::Dorian, 5),
            (Mode::Phrygian, 4),
            (Mode::Lydian, 3),
            (Mode::Mixolydian, 2),
            (Mode::Ionian, 6),
        ];
        let mut rng = Rng::new(5);
        for (mode, dim) in expected {
            assert_eq!(diminished_degree(mode), dim, "{mode}");
            for from in 0..7 {
                assert!(transition_row(mode, from)[usize::from(dim)] <= 0.0);
                for _ in 0..500 {
                    assert_ne!(next_degree(mode, from, &mut rng), dim, "{mode}");
                }
            }
        }
    }

    #[test]
    fn ambient_tendencies_hold() {
        for mode in Mode::ALL {
            let dim = usize::from(diminished_degree(mode));
            for from in 0..7u8 {
                let row = transition_row(mode, from);
                // The dominant is never the most likely move.
                let max = row.iter().copied().fold(0.0, f32::max);
                assert!(row[4] < max, "{mode} {from}: {row:?}");
                // Going home is at least as likely as any stepwise move.
                if from != 0 {
                    let up = usize::from((from + 1) % 7);
                    let down = usize::from((from + 6) % 7);
                    if up != 0 && up != dim {
                        assert!(row[0] >= row[up], "{mode} {from}: {row:?}");
                    }
                    if down != 0 && down != dim {
                        assert!(row[0] >= row[down], "{mode} {from}: {row:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn chain_visits_stationary_distribution_with_frequent_tonic() {
        for mode in Mode::ALL {
            let mut rng = Rng::new(9);
            let mut counts = [0u32; 7];
            let mut d = 0;
            for _ in 0..20_000 {
                d = next_degree(mode, d, &mut rng);
                counts[usize::from(d)] += 1;
            }
            let tonic = counts[0];
            assert!(counts.iter().all(|&c| c <= tonic), "{mode}: {counts:?}");
            assert!(counts[4] < 20_000 / 10, "{mode}: {counts:?}");
        }
    }

    #[test]
    fn voicings_are_diatonic_open_and_in_range() {
        let mut rng = Rng::new(1);
        for mode in Mode::ALL {
            for key in Key::ALL {
                let scale = Scale::new(key, mode);
                for degree in 0..7 {
                    for _ in 0..40 {
                        let chord = voice_chord(scale, degree, &mut rng);
                        let notes = chord.notes();
                        assert!((3..=5).contains(&notes.len()), "{notes:?}");
                        assert_eq!(chord.degree, degree);
                        let root_pc = scale.pitch(i32::from(degree), 0).rem_euclid(12) as u8;
                        assert_eq!(notes[0] % 12, root_pc, "root in the bass");
                        assert!((BASS_LOW..BASS_LOW + 12).contains(&notes[0]));
                        for &n in &notes[1..] {
                            assert!((UPPER_LOW..=UPPER_HIGH).contains(&n), "{notes:?}");
                        }
                        for &n in notes {
                            assert!(scale.contains(n % 12), "{scale:?} {notes:?}");
                        }
                        for w in notes[1..].windows(2) {
                            assert!(w[1] - w[0] >= 3, "open voicing: {notes:?}");
                        }
                        // The third or (for sus2) the second is present with the fifth.
                        let fifth_pc = scale.pitch(i32::from(degree) + 4, 0).rem_euclid(12) as u8;
                        assert!(chord.has_pitch_class(fifth_pc), "{notes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn walk_covers_every_bar_and_starts_on_tonic_or_the_held_chord() {
        let mut rng = Rng::new(3);
        for rhythm in HarmonicRhythm::ALL {
            for bars in 1..20 {
                for (prev_degree, carry_in, first_degree) in
                    [(None, false, 0), (None, true, 0), (Some(3), true, 3)]
                {
                    let start = ChainStart {
                        prev_degree,
                        carry_in,
                    };
                    let mut next_bar = 0;
                    let mut first = None;
                    let last =
                        walk_progression(Mode::Dorian, bars, rhythm, start, &mut rng, |b, n, d| {
                            assert_eq!(b, next_bar);
                            assert!(SPAN_BARS.contains(&n) || b + n == bars, "{rhythm:?} {n}");
                            first.get_or_insert(d);
                            next_bar += n;
                        });
                    assert_eq!(next_bar, bars);
                    assert_eq!(first, Some(first_degree));
                    assert!(last < 7);
                }
            }
        }
    }

    #[test]
    fn a_pedal_puts_the_tonic_in_the_bass_and_keeps_the_upper_voices() {
        let mut rng = Rng::new(8);
        for mode in Mode::ALL {
            let scale = Scale::new(Key::new(9), mode);
            for degree in 0..7 {
                let chord = voice_chord(scale, degree, &mut rng);
                let pedal = with_pedal(&chord, scale);
                assert_eq!(pedal.notes()[0] % 12, 9, "{pedal:?}");
                assert!((BASS_LOW..BASS_LOW + 12).contains(&pedal.notes()[0]));
                assert_eq!(pedal.notes()[1..], chord.notes()[1..]);
                assert_eq!(pedal.degree, chord.degree);
            }
        }
    }
}
