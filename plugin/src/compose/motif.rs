//! Motifs: the short melodic idea that gives a section its identity.
//!
//! Every section ([`Section`](super::Section)) has one motif of
//! [`MOTIF_NOTES_RANGE`] notes, a rhythm on the half-beat grid and a contour in
//! scale steps, hashed from `(seed, section)` alone so any phrase can find it in
//! O(1). Each phrase of the section states it once or twice, varied the way a
//! composer develops a figure: moved to start on a tone of the chord sounding
//! there, displaced by a beat or half a beat from the downbeat, sometimes inverted
//! (its steps upside down) and sometimes augmented (its rhythm twice as slow).
//! Which variations a phrase uses is drawn from the phrase's own melody stream
//! ([`plan`]), so the phrase stays a pure function of its index; the pitches are
//! chosen with the phrase's chords in view ([`compose_melody`]).
//!
//! [`compose_melody`]: super::compose_melody

use super::phrase::ComposeParams;
use crate::rng::Rng;

/// Stream of a section's motif, keyed by the section's number.
pub const STREAM_MOTIF: u64 = 0x307_1F00;

/// Fewest and most notes a motif has.
pub const MOTIF_NOTES_RANGE: (usize, usize) = (3, 6);
/// Most notes a motif has.
const MAX_NOTES: usize = MOTIF_NOTES_RANGE.1;
/// How often each length of [`MOTIF_NOTES_RANGE`] is drawn, shortest first.
const LENGTH_WEIGHTS: [f32; 4] = [0.2, 0.35, 0.3, 0.15];

/// Gaps between motif onsets, in half beats, and how often each is drawn.
const GAPS: [u8; 4] = [1, 2, 3, 4];
/// Weights of [`GAPS`].
const GAP_WEIGHTS: [f32; 4] = [0.3, 0.35, 0.2, 0.15];
/// The longest a motif's onsets spread, first to last, in half beats (3 bars of
/// 4 beats would be too long to recognise).
const MAX_ONSET_SPREAD: u8 = 12;
/// Half beats a statement keeps free after its last onset, for the last note to
/// sound before the line goes on.
const TAIL: u8 = 2;

/// Scale steps from one motif note to the next (-3..=3), and how often each is
/// drawn: steps and thirds most, fourths least. A motif's notes are stated over
/// chords and count towards the melody's 70/25/5 mix, so at most a third of them
/// (a motif of three to five notes: one) leave the triad on its first note; the
/// statement starts on a chord tone, which puts the rest on chord tones while the
/// chord lasts.
const STEPS: [i8; 7] = [-3, -2, -1, 0, 1, 2, 3];
/// Weights of [`STEPS`].
const STEP_WEIGHTS: [f32; 7] = [0.8, 2.0, 2.5, 0.8, 2.5, 2.0, 0.8];
/// The widest a motif ranges, lowest to highest note, in scale steps (an octave).
const MAX_EXTENT: i8 = 7;

/// The fewest notes of its own a phrase keeps beside a statement: the free
/// notes are what steer the mix back to its targets.
const MIN_FREE_NOTES: usize = 3;
/// The chance a phrase with room for two statements makes two.
const TWICE_CHANCE: f32 = 0.5;
/// The chance a statement is inverted.
const INVERT_CHANCE: f32 = 0.35;
/// The chance a statement is augmented (when it fits).
const AUGMENT_CHANCE: f32 = 0.25;
/// How far a statement starts after a downbeat, in half beats: on it, half a beat
/// or a beat later.
const SHIFTS: [u32; 3] = [0, 1, 2];
/// Weights of [`SHIFTS`].
const SHIFT_WEIGHTS: [f32; 3] = [0.4, 0.3, 0.3];

/// Whether a note `steps` scale steps from a motif's first note lies on the
/// triad built on that note.
const fn on_triad(steps: i8) -> bool {
    matches!(steps.rem_euclid(7), 0 | 2 | 4)
}

/// A section's motif: onsets and scale steps, unvaried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Motif {
    /// How many notes it has, within [`MOTIF_NOTES_RANGE`].
    notes: usize,
    /// Each note's onset in half beats from the first (the first is 0), rising.
    onsets: [u8; MAX_NOTES],
    /// Scale steps from each note to the next; `notes - 1` are used.
    steps: [i8; MAX_NOTES - 1],
}

impl Motif {
    /// The motif of section `section` (a [`Section::index`](super::Section::index))
    /// of the piece `seed`, drawn from `Rng::derive(seed, section, STREAM_MOTIF)`
    /// alone.
    #[must_use]
    pub fn of_section(seed: u64, section: u64) -> Self {
        let mut rng = Rng::derive(seed, section, STREAM_MOTIF);
        let notes = MOTIF_NOTES_RANGE.0 + rng.weighted(&LENGTH_WEIGHTS);
        let mut onsets = [0u8; MAX_NOTES];
        for i in 1..notes {
            let gap = GAPS[rng.weighted(&GAP_WEIGHTS)];
            // Leave every later gap at least a half beat within the spread.
            let room = MAX_ONSET_SPREAD - onsets[i - 1] - (notes - 1 - i) as u8;
            onsets[i] = onsets[i - 1] + gap.min(room);
        }
        let mut steps = [0i8; MAX_NOTES - 1];
        let (mut at, mut low, mut high) = (0i8, 0i8, 0i8);
        let mut off_left = notes / 3;
        for step in &mut steps[..notes - 1] {
            let mut weights = STEP_WEIGHTS;
            for (w, &s) in weights.iter_mut().zip(&STEPS) {
                let to = at + s;
                let too_wide = to.max(high) - to.min(low) > MAX_EXTENT;
                if too_wide || (!on_triad(to) && off_left == 0) {
                    *w = 0.0;
                }
            }
            // Step 0 stays in range, and on the triad when no note may leave it.
            let s = if weights.iter().any(|&w| w > 0.0) {
                STEPS[rng.weighted(&weights)]
            } else {
                0
            };
            at += s;
            low = low.min(at);
            high = high.max(at);
            if !on_triad(at) {
                off_left -= 1;
            }
            *step = s;
        }
        // A motif that only repeats one note has no contour to recognise: its
        // last note rises a third instead.
        if steps.iter().all(|&s| s == 0) {
            steps[notes - 2] = 2;
        }
        Self {
            notes,
            onsets,
            steps,
        }
    }

    /// How many notes it has.
    #[must_use]
    pub const fn notes(&self) -> usize {
        self.notes
    }

    /// Each note's onset in half beats from the first (the first is 0).
    #[must_use]
    pub fn onsets(&self) -> &[u8] {
        &self.onsets[..self.notes]
    }

    /// Scale steps from each note to the next (one fewer than its notes).
    #[must_use]
    pub fn steps(&self) -> &[i8] {
        &self.steps[..self.notes - 1]
    }

    /// Half beats a statement takes, unaugmented: its onsets and a tail for the
    /// last note.
    #[must_use]
    pub fn span(&self) -> u32 {
        u32::from(self.onsets[self.notes - 1] + TAIL)
    }
}

/// One statement of a motif in a phrase: where it starts and how it is varied.
/// Its pitches are chosen by [`compose_melody`](super::compose_melody).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// Onset of its first note, in half beats from the phrase start.
    pub start: u32,
    /// Whether its steps are negated.
    pub inverted: bool,
    /// Whether its rhythm is twice as slow.
    pub augmented: bool,
}

impl Statement {
    /// How much slower than the motif it goes: 1 or 2.
    const fn stretch(&self) -> u32 {
        if self.augmented {
            2
        } else {
            1
        }
    }

    /// Onset of note `i` of `motif`, in half beats from the phrase start.
    #[must_use]
    pub fn onset(&self, motif: &Motif, i: usize) -> u32 {
        self.start + u32::from(motif.onsets()[i]) * self.stretch()
    }

    /// The half beats it takes: from its first onset to where the line may go on.
    #[must_use]
    pub fn span(&self, motif: &Motif) -> u32 {
        motif.span() * self.stretch()
    }

    /// Scale steps from note `i` of `motif` to note `i + 1`, as stated.
    #[must_use]
    pub fn step(&self, motif: &Motif, i: usize) -> i8 {
        let s = motif.steps()[i];
        if self.inverted {
            -s
        } else {
            s
        }
    }

    /// Whether the half-beat position `at` lies within it.
    #[must_use]
    pub fn covers(&self, motif: &Motif, at: u32) -> bool {
        (self.start..self.start + self.span(motif)).contains(&at)
    }
}

/// Where and how a phrase of `params` with `notes` melody onsets states `motif`:
/// once, or twice (one in each half) when it has notes for three statements, each
/// starting on a downbeat or a half beat or a beat after one, never overlapping
/// and ending within the phrase. None when the phrase has fewer than
/// [`MIN_FREE_NOTES`] notes beside one statement, or no room for it. Draws from
/// the phrase's melody stream `rng`.
#[must_use]
pub fn plan(motif: &Motif, params: &ComposeParams, notes: usize, rng: &mut Rng) -> Vec<Statement> {
    let m = motif.notes();
    if notes < m + MIN_FREE_NOTES {
        return Vec::new();
    }
    let count: u32 = if notes >= 3 * m && rng.chance(TWICE_CHANCE) {
        2
    } else {
        1
    };
    let half_beats = params.bars * params.beats_per_bar * 2;
    let bar = params.beats_per_bar * 2;
    let mut statements = Vec::with_capacity(count as usize);
    for k in 0..count {
        let (from, to) = (half_beats * k / count, half_beats * (k + 1) / count);
        let inverted = rng.chance(INVERT_CHANCE);
        let augmented = rng.chance(AUGMENT_CHANCE);
        let shift = SHIFTS[rng.weighted(&SHIFT_WEIGHTS)];
        let pick = rng.next_f32();
        // The drawn variation, else unaugmented, else on the downbeat.
        let tries = [(augmented, shift), (false, shift), (false, 0)];
        let placed = tries.into_iter().find_map(|(augmented, shift)| {
            let st = Statement {
                start: 0,
                inverted,
                augmented,
            };
            let span = st.span(motif);
            // Bars `b` with `from <= b·bar + shift` and `b·bar + shift + span <= to`.
            let first = from.saturating_sub(shift).div_ceil(bar);
            let last = to.checked_sub(span + shift)? / bar;
            (first <= last).then(|| {
                let b = first + ((pick * (last - first + 1) as f32) as u32).min(last - first);
                Statement {
                    start: b * bar + shift,
                    ..st
                }
            })
        });
        statements.extend(placed);
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::super::phrase::{NoteEvent, Phrase};
    use super::super::presets::PRESETS;
    use super::super::theory::Scale;
    use super::super::Composer;
    use super::*;

    /// The absolute scale degree of `note` (7 per octave), if it is in `scale`.
    fn degree(scale: Scale, note: u8) -> Option<i32> {
        let d = scale.degree_of(note % 12)?;
        let octave = (i32::from(note) - scale.pitch(i32::from(d), 0)).div_euclid(12);
        Some(7 * octave + i32::from(d))
    }

    /// Every statement of `motif` in `melody`: consecutive notes whose scale steps
    /// are the motif's or their inversion, at any transposition, and whose onsets
    /// keep the motif's rhythm or twice it, anywhere. Returns each one's start
    /// beat and first pitch.
    fn statements_in(motif: &Motif, melody: &[NoteEvent], scale: Scale) -> Vec<(f64, u8)> {
        let m = motif.notes();
        let mut found = Vec::new();
        for w in melody.windows(m) {
            let Some(degrees) = w
                .iter()
                .map(|n| degree(scale, n.note))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let steps: Vec<i32> = degrees.windows(2).map(|d| d[1] - d[0]).collect();
            let want: Vec<i32> = motif.steps().iter().map(|&s| i32::from(s)).collect();
            let inverse: Vec<i32> = want.iter().map(|s| -s).collect();
            let contour = steps == want || steps == inverse;
            let rhythm = [1.0, 2.0].into_iter().any(|stretch| {
                w.iter().zip(motif.onsets()).all(|(n, &o)| {
                    let at = n.start_beat - w[0].start_beat;
                    (at - 0.5 * f64::from(o) * stretch).abs() < 1e-9
                })
            });
            if contour && rhythm {
                found.push((w[0].start_beat, w[0].note));
            }
        }
        found
    }

    /// The pieces the statistics are taken over: every preset, two seeds each.
    fn pieces() -> Vec<(u64, Vec<Phrase>)> {
        let mut out = Vec::new();
        for (i, preset) in PRESETS.iter().enumerate() {
            for seed in [3 + i as u64, 40 + i as u64] {
                out.push((seed, Composer::new(seed, preset.compose).sequence(400)));
            }
        }
        out
    }

    #[test]
    fn motifs_are_short_on_the_grid_and_a_function_of_the_section() {
        let mut lengths = std::collections::BTreeSet::new();
        for seed in [0, 1, 99, u64::MAX] {
            for section in [0, 1, 2, 17, 1 << 40] {
                let motif = Motif::of_section(seed, section);
                assert_eq!(motif, Motif::of_section(seed, section));
                let n = motif.notes();
                lengths.insert(n);
                assert!((MOTIF_NOTES_RANGE.0..=MOTIF_NOTES_RANGE.1).contains(&n));
                assert_eq!(motif.onsets().len(), n);
                assert_eq!(motif.steps().len(), n - 1);
                assert_eq!(motif.onsets()[0], 0);
                assert!(motif.onsets().windows(2).all(|w| w[0] < w[1]), "{motif:?}");
                assert!(*motif.onsets().last().unwrap_or(&0) <= MAX_ONSET_SPREAD);
                assert!(motif.steps().iter().any(|&s| s != 0), "{motif:?}");
                let mut at = 0i8;
                let (mut low, mut high) = (0i8, 0i8);
                for &s in motif.steps() {
                    assert!((-3..=3).contains(&s));
                    at += s;
                    low = low.min(at);
                    high = high.max(at);
                }
                assert!(high - low <= MAX_EXTENT, "{motif:?}");
                let off = motif
                    .steps()
                    .iter()
                    .scan(0i8, |at, &s| {
                        *at += s;
                        Some(*at)
                    })
                    .filter(|&at| !on_triad(at))
                    .count();
                assert!(off <= n / 3, "{motif:?}");
            }
        }
        assert!(lengths.len() >= 3, "{lengths:?}");
        assert_ne!(Motif::of_section(5, 3), Motif::of_section(5, 4));
    }

    #[test]
    fn phrases_state_their_sections_motif_and_not_others() {
        let (mut melodic, mut stating, mut foreign, mut foreign_stating) = (0, 0, 0, 0);
        for (seed, phrases) in pieces() {
            let (mut own_n, mut own_hit) = (0, 0);
            let sections: Vec<u64> = phrases.iter().map(|p| p.form.section).collect();
            for (i, p) in phrases.iter().enumerate() {
                if !p.form.layers.melody() {
                    continue;
                }
                let scale = p.params.scale();
                own_n += 1;
                let own = Motif::of_section(seed, p.form.section);
                if !statements_in(&own, &p.melody, scale).is_empty() {
                    own_hit += 1;
                }
                // The motif of the next section along, whatever its layers.
                if let Some(&other) = sections[i..].iter().find(|&&s| s != p.form.section) {
                    let other = Motif::of_section(seed, other);
                    if other != own {
                        foreign += 1;
                        if !statements_in(&other, &p.melody, scale).is_empty() {
                            foreign_stating += 1;
                        }
                    }
                }
            }
            assert!(own_n >= 100, "seed {seed}: {own_n} melodic phrases");
            assert!(
                own_hit * 100 >= own_n * 80,
                "seed {seed}: {own_hit}/{own_n} phrases state their motif"
            );
            melodic += own_n;
            stating += own_hit;
        }
        assert!(stating * 100 >= melodic * 90, "{stating}/{melodic}");
        assert!(
            foreign_stating * 100 <= foreign * 20,
            "{foreign_stating}/{foreign} phrases state another section's motif"
        );
    }

    #[test]
    fn statements_vary_within_a_section() {
        let (mut sections, mut inverted, mut augmented, mut displaced) = (0, 0, 0, 0);
        for (seed, phrases) in pieces() {
            let mut by_section = std::collections::BTreeMap::new();
            for p in phrases.iter().filter(|p| p.form.layers.melody()) {
                let motif = Motif::of_section(seed, p.form.section);
                let scale = p.params.scale();
                let found = statements_in(&motif, &p.melody, scale);
                for &(start, _) in &found {
                    if (start % f64::from(p.params.beats_per_bar)).abs() > 1e-9 {
                        displaced += 1;
                    }
                }
                // Count the variations by their signature in the notes.
                for w in p.melody.windows(motif.notes()) {
                    if !found
                        .iter()
                        .any(|&(s, _)| (s - w[0].start_beat).abs() < 1e-9)
                    {
                        continue;
                    }
                    let first_step = degree(scale, w[1].note).zip(degree(scale, w[0].note));
                    if first_step.is_some_and(|(b, a)| {
                        b - a == -i32::from(motif.steps()[0]) && motif.steps()[0] != 0
                    }) {
                        inverted += 1;
                    }
                    let gap = w[1].start_beat - w[0].start_beat;
                    if (gap - f64::from(motif.onsets()[1])).abs() < 1e-9 {
                        augmented += 1;
                    }
                }
                by_section
                    .entry(p.form.section)
                    .or_insert_with(Vec::new)
                    .extend(found.into_iter().map(|(s, n)| ((s * 2.0) as u32, n)));
            }
            for (section, statements) in by_section {
                if statements.len() < 3 {
                    continue;
                }
                sections += 1;
                let first = statements[0];
                assert!(
                    statements.iter().any(|&s| s != first),
                    "seed {seed} section {section}: every statement is {first:?}"
                );
                let starts: std::collections::BTreeSet<u32> =
                    statements.iter().map(|s| s.0).collect();
                let pitches: std::collections::BTreeSet<u8> =
                    statements.iter().map(|s| s.1).collect();
                assert!(
                    starts.len() >= 2 && pitches.len() >= 2,
                    "seed {seed} section {section}: {statements:?}"
                );
            }
        }
        assert!(sections >= 100, "{sections} sections");
        assert!(inverted >= 100, "{inverted} inverted statements");
        assert!(augmented >= 50, "{augmented} augmented statements");
        assert!(displaced >= 100, "{displaced} displaced statements");
    }

    #[test]
    fn seeking_states_the_motif_as_sequential_generation_does() {
        for (seed, preset) in [(11, &PRESETS[0]), (12, &PRESETS[2]), (13, &PRESETS[3])] {
            let composer = Composer::new(seed, preset.compose);
            let phrases = composer.sequence(200);
            let mut boundaries = 0;
            for k in 1..200 {
                if phrases[k - 1].form.section == phrases[k].form.section {
                    continue;
                }
                boundaries += 1;
                for j in [k - 1, k, (k + 1).min(199)] {
                    let sought = composer.seek(j as u64);
                    assert_eq!(sought.melody, phrases[j].melody, "phrase {j}");
                    assert_eq!(sought.chords, phrases[j].chords, "phrase {j}");
                }
            }
            assert!(boundaries >= 15, "{boundaries} section boundaries");
        }
    }
}
