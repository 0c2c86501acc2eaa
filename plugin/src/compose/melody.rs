//! Melody: a sparse, mostly stepwise line over the chords.
//!
//! Onsets are drawn per bar on a half-beat grid (more with intensity), then each
//! pitch is drawn in two stages: first its harmonic category — chord tone, other
//! scale tone or chromatic passing tone — then a pitch of that category weighted
//! towards small steps from the previous note and towards a gentle arch contour
//! over the phrase (the "melodic arch" of Huron, *Sweet Anticipation*, ch. 5).
//!
//! A passing tone forces the next note to resolve by a semitone or whole tone onto
//! a chord or scale tone. Those forced notes would push the measured proportions
//! off the 70/25/5 targets, so the free draw uses compensated probabilities: with
//! `P` the passing share and `r` the share of resolutions that land on chord tones,
//! free notes are `(1 - P)` of all notes and
//!
//! ```text
//! p_passing = P / (1 - P)
//! p_chord   = (0.70 - r·P) / (1 - P)
//! p_scale   = (0.25 - (1 - r)·P) / (1 - P)
//! ```
//!
//! Left to chance, a few minutes of notes stray several points from those shares,
//! so each free draw is also pulled towards them: a category's weight is
//! multiplied by `exp(STEER · deficit)`, its deficit being how many notes of it the
//! phrase lacks so far against the target (negative when it has too many). Every
//! phrase, and so every section, keeps close to 70/25/5.
//!
//! Once or twice a phrase the line states its section's motif ([`motif`]): its
//! onsets replace those drawn where it falls, and as many drawn onsets elsewhere
//! are dropped (or added) so the density stays what the intensity asks. The
//! statements are pitched first: each starts on a chord tone near the arch, its
//! other notes follow the motif's scale steps, and the free note before it heads
//! for its first note. Stated notes count towards the phrase's mix like any
//! others, and the steering counts those still to come, so the free notes make up
//! for them wherever they fall.

use std::f32::consts::PI;

use super::motif::{self, Motif, Statement, MOTIF_NOTES_RANGE};
use super::phrase::{Chord, ChordEvent, ComposeParams, NoteEvent, Phrase, ToneKind};
use super::theory::Scale;
use crate::rng::Rng;

/// Lowest melody note (MIDI).
pub const MELODY_LOW: u8 = 60;
/// Highest melody note (MIDI).
pub const MELODY_HIGH: u8 = 84;

/// Target share of chord tones among melody notes.
pub const TARGET_CHORD: f32 = 0.70;
/// Target share of non-chord scale tones among melody notes.
pub const TARGET_SCALE: f32 = 0.25;
/// Target share of chromatic passing tones among melody notes.
pub const TARGET_PASSING: f32 = 0.05;

/// Share of passing-tone resolutions that land on a chord tone. The resolution
/// takes a chord tone whenever one lies a step away, which with 3–5 note chords is
/// nearly always (measured 99.8 % over 2,500 resolutions in all modes and keys).
const RESOLVES_TO_CHORD: f32 = 1.0;

/// Probability weights of the free (not forced) category draw: chord, scale,
/// passing. See the module documentation for the derivation.
const FREE_WEIGHTS: [f32; 3] = [
    (TARGET_CHORD - RESOLVES_TO_CHORD * TARGET_PASSING) / (1.0 - TARGET_PASSING),
    (TARGET_SCALE - (1.0 - RESOLVES_TO_CHORD) * TARGET_PASSING) / (1.0 - TARGET_PASSING),
    TARGET_PASSING / (1.0 - TARGET_PASSING),
];

/// How strongly the free draw is pulled back towards the target shares (per note
/// of deficit, see the module documentation).
const STEER: f32 = 4.0;

/// How much likelier a start of a motif statement is for each of its notes that
/// falls on a chord tone. A motif keeps to a triad ([`motif`]), but a chord that
/// changes under it or lacks the triad's notes can leave several of them on scale
/// tones, more than the few free notes of a sparse phrase can make up for.
const STATEMENT_CHORD_PULL: f32 = 6.0;

/// Most half-beat slots in a bar (12 beats).
const MAX_SLOTS: usize = 24;

/// Mean melody notes per bar at `intensity` (0..=1): 0.5 at 0, 6 at 1.
#[must_use]
pub fn mean_notes_per_bar(intensity: f32) -> f32 {
    5.5f32.mul_add(intensity.clamp(0.0, 1.0), 0.5)
}

/// Counts of melody notes by [`ToneKind`], for statistics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToneCounts {
    /// Chord tones.
    pub chord: u64,
    /// Non-chord scale tones.
    pub scale: u64,
    /// Chromatic passing tones.
    pub passing: u64,
}

impl ToneCounts {
    /// Adds every melody note of `phrase`.
    pub fn add_phrase(&mut self, phrase: &Phrase) {
        for note in &phrase.melody {
            self.add(note.kind);
        }
    }

    /// Adds one note of `kind`.
    pub fn add(&mut self, kind: ToneKind) {
        *self.count_of(kind) += 1;
    }

    /// Takes away one note of `kind` (none when there is none).
    pub fn take(&mut self, kind: ToneKind) {
        let n = self.count_of(kind);
        *n = n.saturating_sub(1);
    }

    /// The count of `kind`.
    fn count_of(&mut self, kind: ToneKind) -> &mut u64 {
        match kind {
            ToneKind::ChordTone => &mut self.chord,
            ToneKind::ScaleTone => &mut self.scale,
            ToneKind::Passing => &mut self.passing,
        }
    }

    /// All notes counted.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.chord + self.scale + self.passing
    }

    /// The shares `[chord, scale, passing]`, each 0..=1 (all 0 when empty).
    #[must_use]
    pub fn shares(&self) -> [f64; 3] {
        let total = self.total().max(1) as f64;
        [
            self.chord as f64 / total,
            self.scale as f64 / total,
            self.passing as f64 / total,
        ]
    }
}

/// Composes the melody of one phrase over `chords` (sorted, covering the phrase),
/// its register moved by `register` semitones (-4..=5), stating `motif` once or
/// twice ([`motif::plan`]). Notes are sorted by onset, start on the half-beat
/// grid, end before the next note starts (leaving rests) and before the phrase
/// ends, lie within [`MELODY_LOW`]..=[`MELODY_HIGH`], and carry their true
/// [`ToneKind`] with respect to the chord sounding at their onset.
pub fn compose_melody(
    params: &ComposeParams,
    register: i8,
    chords: &[ChordEvent],
    motif: &Motif,
    rng: &mut Rng,
) -> Vec<NoteEvent> {
    let mut notes = place_onsets(params, rng);
    let statements = motif::plan(motif, params, notes.len(), rng);
    make_room(&mut notes, motif, &statements, params, rng);
    let scale = params.scale();
    let phrase_beats = params.phrase_beats();
    let beats_per_bar = f64::from(params.beats_per_bar);
    let intensity = params.intensity.clamp(0.0, 1.0);
    // The arch's height and the line's register vary per phrase.
    let centre = rng.range_f32(65.0, 70.0) + f32::from(register.clamp(-4, 5));
    let arch = rng.range_f32(3.0, 8.0);
    // Where in its cycle the steering starts (see `steered_weights`).
    let phase = rng.next_f32();
    let target_at = |beat: f64| arch.mul_add((PI * (beat / phrase_beats) as f32).sin(), centre);
    let chord_at = |beat: f64| {
        chords
            .iter()
            .rev()
            .find(|c| c.start_beat <= beat)
            .map(|c| &c.chord)
    };

    // The statements' pitches come first, so the free notes can be steered
    // around them: the mix of the phrase's notes, stated ones included, is what
    // must keep to the targets.
    let mut lines = Vec::with_capacity(statements.len());
    let mut ahead = ToneCounts::default();
    for st in &statements {
        let Some(from) = notes
            .iter()
            .position(|n| half_beats(n.start_beat) == st.start)
        else {
            continue;
        };
        let beat = notes[from].start_beat;
        let mut under = [None; MOTIF_NOTES_RANGE.1];
        for (j, u) in under.iter_mut().enumerate().take(motif.notes()) {
            *u = chord_at(0.5 * f64::from(st.onset(motif, j)));
        }
        let target = target_at(beat);
        let ctx = Context {
            scale,
            chord: chord_at(beat),
            prev: target.round() as i32,
            target,
            phase,
        };
        if let Some(pitches) = ctx.state(motif, st, &under, rng) {
            for (&p, &c) in pitches.iter().zip(&under).take(motif.notes()) {
                ahead.add(kind_in(scale, c, i32::from(p)));
            }
            lines.push((from, pitches));
        }
    }

    let mut prev = centre.round() as i32;
    let mut after_passing = false;
    let mut counts = ToneCounts::default();
    let mut chord_ix = 0;
    let count = notes.len();

    for i in 0..count {
        let start = notes[i].start_beat;
        let next_start = notes.get(i + 1).map_or(phrase_beats, |n| n.start_beat);
        while chord_ix + 1 < chords.len() && chords[chord_ix + 1].start_beat <= start {
            chord_ix += 1;
        }
        let chord = chords
            .get(chord_ix)
            .filter(|c| c.start_beat <= start)
            .map(|c| &c.chord);
        let pos = (start / phrase_beats) as f32;
        // A note that leads into a statement heads for its first note.
        let leads_into = lines.iter().find(|&&(from, _)| from == i + 1);
        let target = leads_into.map_or_else(|| target_at(start), |(_, p)| f32::from(p[0]));
        let ctx = Context {
            scale,
            chord,
            prev,
            target,
            phase,
        };

        let stated = lines
            .iter()
            .find(|&&(from, _)| (from..from + motif.notes()).contains(&i));
        let (note, kind) = if let Some(&(from, pitches)) = stated {
            let n = pitches[i - from];
            let kind = ctx.kind_of(i32::from(n));
            ahead.take(kind);
            (n, kind)
        } else if after_passing {
            ctx.resolve(rng)
        } else {
            // Nor may a passing tone lead into a statement, which cannot resolve it.
            let no_passing = i + 1 == count || leads_into.is_some();
            ctx.free_note(&counts, &ahead, no_passing, rng)
        };
        counts.add(kind);
        after_passing = kind == ToneKind::Passing;
        prev = i32::from(note);

        let gap = next_start - start;
        let mut beats = gap.min(beats_per_bar) * f64::from(rng.range_f32(0.55, 0.92));
        if kind == ToneKind::Passing {
            beats = beats.min(1.0);
        }
        let on_downbeat = (start % beats_per_bar).abs() < 1e-9;
        let on_beat = start.fract().abs() < 1e-9;
        let accent = if on_downbeat {
            0.06
        } else if on_beat {
            0.02
        } else {
            -0.02
        };
        let lightness = if kind == ToneKind::Passing { 0.06 } else { 0.0 };
        let velocity = 0.5 + 0.15 * intensity + 0.12 * (PI * pos).sin() + accent - lightness
            + rng.range_f32(-0.04, 0.04);

        let n = &mut notes[i];
        n.note = note;
        n.kind = kind;
        n.beats = beats;
        n.velocity = velocity.clamp(0.4, 0.9);
    }
    notes
}

/// The half-beat position of `beat` (a point of the half-beat grid).
fn half_beats(beat: f64) -> u32 {
    (beat * 2.0).round() as u32
}

/// A note with only its onset, `half` half beats into the phrase.
fn onset(half: u32) -> NoteEvent {
    NoteEvent {
        start_beat: 0.5 * f64::from(half),
        beats: 0.0,
        note: 0,
        velocity: 0.0,
        kind: ToneKind::ChordTone,
    }
}

/// Puts the onsets of `statements` of `motif` in place of the drawn onsets they
/// cover, then drops drawn onsets elsewhere (or draws more, on free half beats)
/// until there are as many as before, and sorts them. [`motif::plan`] makes no
/// more statement notes than there were onsets, so the count is always restored
/// when dropping.
fn make_room(
    notes: &mut Vec<NoteEvent>,
    motif: &Motif,
    statements: &[Statement],
    params: &ComposeParams,
    rng: &mut Rng,
) {
    if statements.is_empty() {
        return;
    }
    let wanted = notes.len();
    let covered = |half: u32| statements.iter().any(|st| st.covers(motif, half));
    notes.retain(|n| !covered(half_beats(n.start_beat)));
    let free = notes.len();
    for st in statements {
        notes.extend((0..motif.notes()).map(|j| onset(st.onset(motif, j))));
    }
    // The drawn onsets are the first `free` notes.
    let mut free = free;
    while notes.len() > wanted && free > 0 {
        notes.remove(rng.below(free as u32) as usize);
        free -= 1;
    }
    if notes.len() < wanted {
        let slots = params.bars * params.beats_per_bar * 2;
        let mut taken = vec![false; slots as usize];
        for n in notes.iter() {
            if let Some(t) = taken.get_mut(half_beats(n.start_beat) as usize) {
                *t = true;
            }
        }
        let mut open: Vec<u32> = (0..slots)
            .filter(|&h| !taken[h as usize] && !covered(h))
            .collect();
        while notes.len() < wanted && !open.is_empty() {
            let k = rng.below(open.len() as u32) as usize;
            notes.push(onset(open.swap_remove(k)));
        }
    }
    notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat));
}

/// Draws the onsets of every bar: `mean_notes_per_bar` on average, on a half-beat
/// grid, downbeats and beats preferred. Returns notes with only `start_beat` set.
fn place_onsets(params: &ComposeParams, rng: &mut Rng) -> Vec<NoteEvent> {
    let slots = (params.beats_per_bar as usize * 2).min(MAX_SLOTS);
    let mean = mean_notes_per_bar(params.intensity);
    let whole = mean.floor();
    let frac = mean - whole;
    let capacity = params.bars as usize * (whole as usize + 1).min(slots);
    let mut notes = Vec::with_capacity(capacity);

    for bar in 0..params.bars {
        let wanted = whole as usize + usize::from(rng.chance(frac));
        let wanted = wanted.min(slots);
        let mut weights = [0.0f32; MAX_SLOTS];
        for (s, w) in weights[..slots].iter_mut().enumerate() {
            *w = match s {
                0 => 1.4,
                s if s % 2 == 0 => 1.0,
                _ => 0.6,
            };
        }
        let mut chosen = 0u32;
        for _ in 0..wanted {
            let s = rng.weighted(&weights[..slots]);
            weights[s] = 0.0;
            chosen |= 1 << s;
        }
        let bar_start = bar * params.beats_per_bar * 2;
        for s in 0..slots {
            if chosen & (1 << s) != 0 {
                notes.push(onset(bar_start + s as u32));
            }
        }
    }
    notes
}

/// What a pitch choice depends on.
struct Context<'a> {
    scale: Scale,
    chord: Option<&'a Chord>,
    prev: i32,
    target: f32,
    /// The steering's phase, 0..1.
    phase: f32,
}

impl Context<'_> {
    /// The true category of `note` at this onset.
    fn kind_of(&self, note: i32) -> ToneKind {
        kind_in(self.scale, self.chord, note)
    }

    /// A freely drawn note: category first (steered by the phrase's `counts` so
    /// far and the stated notes still `ahead`), then pitch. A passing tone is
    /// never drawn where `no_passing` (the phrase's last note, the note before a
    /// statement), and a category without candidates (a chord tone with no chord)
    /// falls back to a scale tone.
    fn free_note(
        &self,
        counts: &ToneCounts,
        ahead: &ToneCounts,
        no_passing: bool,
        rng: &mut Rng,
    ) -> (u8, ToneKind) {
        let mut weights = steered_weights(counts, ahead, self.phase);
        if no_passing {
            weights[2] = 0.0;
        }
        let kind = match rng.weighted(&weights) {
            0 => ToneKind::ChordTone,
            1 => ToneKind::ScaleTone,
            _ => ToneKind::Passing,
        };
        self.pick(kind, rng)
            .or_else(|| self.pick(ToneKind::ScaleTone, rng))
            .map_or((MELODY_LOW, self.kind_of(i32::from(MELODY_LOW))), |n| {
                (n, self.kind_of(i32::from(n)))
            })
    }

    /// A note of category `kind`, weighted towards small steps from the previous
    /// note and towards the contour target. Passing tones keep a step of room at
    /// both ends of the range so they can always resolve.
    fn pick(&self, kind: ToneKind, rng: &mut Rng) -> Option<u8> {
        let (low, high) = match kind {
            ToneKind::Passing => (MELODY_LOW + 1, MELODY_HIGH - 1),
            ToneKind::ChordTone | ToneKind::ScaleTone => (MELODY_LOW, MELODY_HIGH),
        };
        let mut weights = [0.0f32; (MELODY_HIGH - MELODY_LOW + 1) as usize];
        let mut any = false;
        for (note, w) in (MELODY_LOW..=MELODY_HIGH).zip(weights.iter_mut()) {
            if note < low || note > high || self.kind_of(i32::from(note)) != kind {
                continue;
            }
            let n = i32::from(note);
            *w = step_weight(n - self.prev) / (1.0 + (n as f32 - self.target).abs() / 5.0);
            any = true;
        }
        any.then(|| MELODY_LOW + rng.weighted(&weights) as u8)
    }

    /// The pitches of `statement` of `motif`, its first note here: a chord tone
    /// (a scale tone with no chord) from which every note of the statement lies
    /// in range, weighted like [`Context::pick`]'s towards `prev` and the target
    /// and, by [`STATEMENT_CHORD_PULL`] for each, towards starts that put more of
    /// its notes on tones of the chords `under` them; the others follow the
    /// statement's scale steps. `None` when no start keeps it in range.
    fn state(
        &self,
        motif: &Motif,
        statement: &Statement,
        under: &[Option<&Chord>],
        rng: &mut Rng,
    ) -> Option<[u8; MOTIF_NOTES_RANGE.1]> {
        let range = i32::from(MELODY_LOW)..=i32::from(MELODY_HIGH);
        let statement_from = |first: u8| {
            let d = self.scale.degree_of(first % 12)?;
            let octave = (i32::from(first) - self.scale.pitch(i32::from(d), 0)).div_euclid(12);
            let mut degree = 7 * octave + i32::from(d);
            let mut pitches = [first; MOTIF_NOTES_RANGE.1];
            for (j, p) in pitches.iter_mut().enumerate().take(motif.notes()).skip(1) {
                degree += i32::from(statement.step(motif, j - 1));
                let n = self.scale.pitch(degree, 0);
                *p = u8::try_from(n).ok().filter(|_| range.contains(&n))?;
            }
            Some(pitches)
        };
        let kind = if self.chord.is_some() {
            ToneKind::ChordTone
        } else {
            ToneKind::ScaleTone
        };
        let mut weights = [0.0f32; (MELODY_HIGH - MELODY_LOW + 1) as usize];
        let mut any = false;
        for (note, w) in (MELODY_LOW..=MELODY_HIGH).zip(weights.iter_mut()) {
            let n = i32::from(note);
            if self.kind_of(n) != kind {
                continue;
            }
            let Some(pitches) = statement_from(note) else {
                continue;
            };
            let on_chords = pitches[..motif.notes()]
                .iter()
                .zip(under)
                .filter(|&(&p, &c)| kind_in(self.scale, c, i32::from(p)) == ToneKind::ChordTone)
                .count();
            *w = step_weight(n - self.prev) / (1.0 + (n as f32 - self.target).abs() / 5.0)
                * STATEMENT_CHORD_PULL.powi(on_chords as i32);
            any = true;
        }
        if !any {
            return None;
        }
        statement_from(MELODY_LOW + rng.weighted(&weights) as u8)
    }

    /// The note after a passing tone (`self.prev`): a semitone or whole tone away,
    /// in the scale, a chord tone when one lies that close, a semitone preferred.
    fn resolve(&self, rng: &mut Rng) -> (u8, ToneKind) {
        const OFFSETS: [i32; 4] = [-2, -1, 1, 2];
        let range = i32::from(MELODY_LOW)..=i32::from(MELODY_HIGH);
        let kind_at = |off: i32| {
            let n = self.prev + off;
            range.contains(&n).then(|| self.kind_of(n))
        };
        let want = if OFFSETS
            .iter()
            .any(|&off| kind_at(off) == Some(ToneKind::ChordTone))
        {
            ToneKind::ChordTone
        } else {
            ToneKind::ScaleTone
        };
        let mut weights = [0.0f32; 4];
        for (&off, w) in OFFSETS.iter().zip(weights.iter_mut()) {
            if kind_at(off) == Some(want) {
                *w = if off.abs() == 1 { 2.0 } else { 1.0 };
            }
        }
        let n = (self.prev + OFFSETS[rng.weighted(&weights)])
            .clamp(i32::from(MELODY_LOW), i32::from(MELODY_HIGH));
        (n as u8, self.kind_of(n))
    }
}

/// The true category of `note` in `scale` over `chord`.
fn kind_in(scale: Scale, chord: Option<&Chord>, note: i32) -> ToneKind {
    let pc = note.rem_euclid(12) as u8;
    if chord.is_some_and(|c| c.has_pitch_class(pc)) {
        ToneKind::ChordTone
    } else if scale.contains(pc) {
        ToneKind::ScaleTone
    } else {
        ToneKind::Passing
    }
}

/// [`FREE_WEIGHTS`], each multiplied by `exp(STEER · deficit)` of its category
/// after the notes in `counts` and the stated notes the phrase will play later,
/// `ahead` (see the module documentation). The deficit is measured against the
/// targets times `notes + ahead + phase`: a phase drawn per phrase spreads where
/// each phrase's rounding falls, so it favours no category over a section (a
/// phase of 1 would make every phrase open on a chord tone). Counting the notes
/// ahead lets the free notes before a statement make up for its mix already.
fn steered_weights(counts: &ToneCounts, ahead: &ToneCounts, phase: f32) -> [f32; 3] {
    let next = (counts.total() + ahead.total()) as f32 + phase;
    let got = [
        counts.chord + ahead.chord,
        counts.scale + ahead.scale,
        counts.passing + ahead.passing,
    ];
    let targets = [TARGET_CHORD, TARGET_SCALE, TARGET_PASSING];
    let mut weights = FREE_WEIGHTS;
    for ((w, target), got) in weights.iter_mut().zip(targets).zip(got) {
        *w *= (STEER * target.mul_add(next, -(got as f32))).exp();
    }
    weights
}

/// Relative weight of a melodic interval of `semitones` (signed): steps most,
/// thirds and fourths often, wide leaps rarely, repeats now and then.
fn step_weight(semitones: i32) -> f32 {
    match semitones.unsigned_abs() {
        0 => 0.6,
        1 | 2 => 3.0,
        3 | 4 => 1.8,
        5 => 1.0,
        6 | 7 => 0.5,
        8..=12 => 0.15,
        _ => 0.03,
    }
}
