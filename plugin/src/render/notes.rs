//! The notes the renderer plays, as note events at their sample positions: what
//! the plugin's MIDI out sends. The renderer starts and stops notes in fixed slots
//! (one per chord note, one for the melody, one per percussion kind); the log
//! records each start and stop with its absolute frame until its owner drains it.
//!
//! Fixed capacity, no allocation. A note is started only if the log keeps room
//! for the stop of every note then sounding, so a stop is never lost: every
//! logged start has its logged stop (when the note ends, is replaced, or
//! [`NoteLog::end_all`] ends it). Starts that do not fit are dropped, and so are
//! their stops.

use crate::compose::phrase::{PercKind, MAX_CHORD_NOTES};

/// Which part of the music a note belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// A note of the chord the pad plays.
    Chord,
    /// A melody note.
    Melody,
    /// A percussion hit ([`percussion_key`]).
    Percussion,
}

/// One note starting or stopping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteOut {
    /// The renderer's absolute frame at which it happens.
    pub frame: u64,
    /// What plays it.
    pub part: Part,
    /// MIDI note number.
    pub key: u8,
    /// The start's velocity, 0..=1; `None` for a stop.
    pub velocity: Option<f32>,
}

/// The MIDI key of a percussion kind: General MIDI's bass drum 1 for a kick,
/// crash cymbal 1 for a swell.
#[must_use]
pub const fn percussion_key(kind: PercKind) -> u8 {
    match kind {
        PercKind::Kick => 36,
        PercKind::Swell => 49,
    }
}

/// How many events a log holds between drains.
pub const NOTE_LOG_CAPACITY: usize = 256;

/// The slot of the melody note (chord notes use `0..MAX_CHORD_NOTES`).
pub const MELODY_SLOT: usize = MAX_CHORD_NOTES;

/// The slot of a percussion kind.
#[must_use]
pub const fn percussion_slot(kind: PercKind) -> usize {
    match kind {
        PercKind::Kick => MAX_CHORD_NOTES + 1,
        PercKind::Swell => MAX_CHORD_NOTES + 2,
    }
}

/// Slots: the chord's notes, the melody, the two percussion kinds.
const SLOTS: usize = MAX_CHORD_NOTES + 3;

/// A note sounding in a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sounding {
    part: Part,
    key: u8,
    /// When it stops by itself (`None`: when replaced or ended).
    stop_at: Option<u64>,
}

/// The log (see the module docs). Disabled, it records nothing and costs a
/// branch per note.
#[derive(Debug, Clone)]
pub struct NoteLog {
    enabled: bool,
    events: [NoteOut; NOTE_LOG_CAPACITY],
    len: usize,
    slots: [Option<Sounding>; SLOTS],
}

impl Default for NoteLog {
    fn default() -> Self {
        Self {
            enabled: false,
            events: [NoteOut {
                frame: 0,
                part: Part::Chord,
                key: 0,
                velocity: None,
            }; NOTE_LOG_CAPACITY],
            len: 0,
            slots: [None; SLOTS],
        }
    }
}

impl NoteLog {
    /// Starts or stops recording. Switched off, the log forgets its notes and
    /// events (the owner ends the notes it has sent).
    pub fn set_enabled(&mut self, enabled: bool) {
        if !enabled {
            self.len = 0;
            self.slots = [None; SLOTS];
        }
        self.enabled = enabled;
    }

    /// Whether it records.
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Starts `key` in `slot` at `frame` (stopping the slot's note first), to
    /// stop by itself at `stop_at` if given.
    pub fn start(
        &mut self,
        slot: usize,
        part: Part,
        frame: u64,
        key: u8,
        velocity: f32,
        stop_at: Option<u64>,
    ) {
        if !self.enabled || slot >= SLOTS {
            return;
        }
        self.stop(slot, frame);
        let sounding = self.slots.iter().flatten().count();
        // Room for this start, then for the stop of every note sounding after it.
        if self.len + 1 + sounding + 1 > NOTE_LOG_CAPACITY {
            return;
        }
        self.push(NoteOut {
            frame,
            part,
            key,
            velocity: Some(velocity.clamp(0.0, 1.0)),
        });
        self.slots[slot] = Some(Sounding { part, key, stop_at });
    }

    /// Stops the note in `slot` at `frame`, if one sounds.
    pub fn stop(&mut self, slot: usize, frame: u64) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            self.push(NoteOut {
                frame,
                part: s.part,
                key: s.key,
                velocity: None,
            });
        }
    }

    /// Plays `notes` as the chord from `frame`: the old chord's notes stop, the
    /// new ones start.
    pub fn chord(&mut self, frame: u64, notes: &[u8], velocity: f32) {
        if !self.enabled {
            return;
        }
        for slot in 0..MAX_CHORD_NOTES {
            self.stop(slot, frame);
        }
        for (slot, &key) in notes.iter().take(MAX_CHORD_NOTES).enumerate() {
            self.start(slot, Part::Chord, frame, key, velocity, None);
        }
    }

    /// Stops every sounding note at `frame`.
    pub fn end_all(&mut self, frame: u64) {
        for slot in 0..SLOTS {
            self.stop(slot, frame);
        }
    }

    /// The earliest frame at which a note stops by itself.
    #[must_use]
    pub fn next_stop(&self) -> Option<u64> {
        self.slots.iter().flatten().filter_map(|s| s.stop_at).min()
    }

    /// Stops the notes due to stop by `frame`, at their own frames.
    pub fn stop_due(&mut self, frame: u64) {
        for slot in 0..SLOTS {
            if let Some(at) = self.slots[slot].and_then(|s| s.stop_at) {
                if at <= frame {
                    self.stop(slot, at);
                }
            }
        }
    }

    /// Hands every event logged since the last drain to `f`, in order, and
    /// empties the log.
    pub fn drain(&mut self, mut f: impl FnMut(NoteOut)) {
        for &event in &self.events[..self.len] {
            f(event);
        }
        self.len = 0;
    }

    fn push(&mut self, event: NoteOut) {
        // The start's room check keeps a slot for every stop.
        if let Some(e) = self.events.get_mut(self.len) {
            *e = event;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(log: &mut NoteLog) -> Vec<NoteOut> {
        let mut out = Vec::new();
        log.drain(|e| out.push(e));
        out
    }

    #[test]
    fn disabled_records_nothing() {
        let mut log = NoteLog::default();
        log.chord(0, &[60, 64, 67], 1.0);
        log.start(MELODY_SLOT, Part::Melody, 3, 72, 0.5, Some(10));
        assert!(drained(&mut log).is_empty());
        assert_eq!(log.next_stop(), None);
    }

    #[test]
    fn a_new_chord_stops_the_old_one_and_notes_stop_when_due() {
        let mut log = NoteLog::default();
        log.set_enabled(true);
        log.chord(0, &[60, 64], 1.0);
        log.start(MELODY_SLOT, Part::Melody, 5, 72, 0.5, Some(20));
        assert_eq!(log.next_stop(), Some(20));
        log.stop_due(19);
        log.chord(16, &[62], 0.8);
        log.stop_due(25);
        let got: Vec<(u64, u8, bool)> = drained(&mut log)
            .iter()
            .map(|e| (e.frame, e.key, e.velocity.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 60, true),
                (0, 64, true),
                (5, 72, true),
                (16, 60, false),
                (16, 64, false),
                (16, 62, true),
                (20, 72, false),
            ]
        );
        log.end_all(30);
        let ended = drained(&mut log);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].key, ended[0].velocity), (62, None));
    }

    /// However many notes come between drains, every start logged has its stop.
    #[test]
    fn a_full_log_drops_starts_never_stops() {
        let mut log = NoteLog::default();
        log.set_enabled(true);
        for i in 0..(NOTE_LOG_CAPACITY as u64) {
            log.chord(i, &[40, 45, 50, 55, 60, 65], 1.0);
            log.start(MELODY_SLOT, Part::Melody, i, 70, 1.0, None);
            log.start(
                percussion_slot(PercKind::Kick),
                Part::Percussion,
                i,
                36,
                1.0,
                Some(i + 1),
            );
        }
        log.end_all(NOTE_LOG_CAPACITY as u64);
        let events = drained(&mut log);
        assert!(events.len() <= NOTE_LOG_CAPACITY);
        let mut sounding = std::collections::HashSet::new();
        for e in &events {
            if e.velocity.is_some() {
                assert!(sounding.insert(e.key), "{} started twice", e.key);
            } else {
                assert!(sounding.remove(&e.key), "{} stopped unstarted", e.key);
            }
        }
        assert!(sounding.is_empty(), "left sounding: {sounding:?}");
        assert!(events.iter().any(|e| e.velocity.is_some()));
    }
}
