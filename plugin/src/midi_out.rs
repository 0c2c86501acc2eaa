//! MIDI out: the notes the engine plays ([`NoteOut`]) as note events for the
//! host, one channel per part ([`MidiChannels`]). It remembers which keys the
//! host has been sent on which channel, so that every note-on gets its
//! note-off whatever happens between them: [`MidiOut::end_all`] ends them all
//! (the plugin calls it on a stop, a preset change, a deactivation), a start of
//! a key already sounding on its channel is sent as a note-off and a new
//! note-on, and the engine's later stop of a note already ended is dropped.
//! Fixed size, no allocation.

use crate::render::notes::{NoteOut, Part};

/// The MIDI channel (0-based, 0..=15) of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiChannels {
    /// The chords' channel.
    pub chord: u8,
    /// The melody's channel.
    pub melody: u8,
    /// The percussion's channel.
    pub percussion: u8,
}

impl Default for MidiChannels {
    /// Chords on channel 1, melody on 2, percussion on 10 (General MIDI's drums).
    fn default() -> Self {
        Self {
            chord: 0,
            melody: 1,
            percussion: 9,
        }
    }
}

impl MidiChannels {
    /// The channel of `part` (clamped to 0..=15).
    #[must_use]
    pub fn of(&self, part: Part) -> u8 {
        match part {
            Part::Chord => self.chord,
            Part::Melody => self.melody,
            Part::Percussion => self.percussion,
        }
        .min(15)
    }
}

/// One note event for the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostNote {
    /// Frame within the host's block.
    pub timing: u32,
    /// MIDI channel, 0..=15.
    pub channel: u8,
    /// MIDI key, 0..=127.
    pub key: u8,
    /// The note-on's velocity, 0..=1; `None` for a note-off.
    pub velocity: Option<f32>,
}

/// What the host has been sent (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct MidiOut {
    /// One bit per key, per channel: sounding on the host.
    sounding: [u128; 16],
}

impl MidiOut {
    /// Sends `note` at `timing` on its part's channel through `emit`.
    pub fn send(
        &mut self,
        note: &NoteOut,
        timing: u32,
        channels: MidiChannels,
        mut emit: impl FnMut(HostNote),
    ) {
        if note.key > 127 {
            return;
        }
        let channel = channels.of(note.part);
        let bit = 1u128 << note.key;
        let sounding = &mut self.sounding[usize::from(channel)];
        let off = HostNote {
            timing,
            channel,
            key: note.key,
            velocity: None,
        };
        if *sounding & bit != 0 {
            emit(off);
            *sounding &= !bit;
        }
        if let Some(velocity) = note.velocity {
            emit(HostNote {
                velocity: Some(velocity),
                ..off
            });
            *sounding |= bit;
        }
    }

    /// Sends a note-off at `timing` for every note sounding on the host.
    pub fn end_all(&mut self, timing: u32, mut emit: impl FnMut(HostNote)) {
        for (channel, sounding) in (0u8..).zip(self.sounding.iter_mut()) {
            let mut keys = std::mem::take(sounding);
            while keys != 0 {
                let key = keys.trailing_zeros() as u8;
                keys &= keys - 1;
                emit(HostNote {
                    timing,
                    channel,
                    key,
                    velocity: None,
                });
            }
        }
    }

    /// Whether no note sounds on the host.
    #[must_use]
    pub fn is_silent(&self) -> bool {
        self.sounding.iter().all(|&k| k == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(part: Part, key: u8, on: bool) -> NoteOut {
        NoteOut {
            frame: 0,
            part,
            key,
            velocity: on.then_some(0.5),
        }
    }

    fn sent(out: &mut MidiOut, n: NoteOut, channels: MidiChannels) -> Vec<HostNote> {
        let mut got = Vec::new();
        out.send(&n, 3, channels, |h| got.push(h));
        got
    }

    #[test]
    fn parts_go_to_their_channels_and_every_on_gets_its_off() {
        let mut out = MidiOut::default();
        let ch = MidiChannels::default();
        let on = sent(&mut out, note(Part::Percussion, 36, true), ch);
        assert_eq!(
            on,
            [HostNote {
                timing: 3,
                channel: 9,
                key: 36,
                velocity: Some(0.5)
            }]
        );
        assert_eq!(
            sent(&mut out, note(Part::Chord, 60, true), ch)[0].channel,
            0
        );
        // The same key again on its channel: off, then on.
        let again = sent(&mut out, note(Part::Chord, 60, true), ch);
        assert_eq!(
            again
                .iter()
                .map(|h| h.velocity.is_some())
                .collect::<Vec<_>>(),
            [false, true]
        );
        // The channels change while notes sound: their offs still go where the ons went.
        let moved = MidiChannels { chord: 4, ..ch };
        sent(&mut out, note(Part::Melody, 72, true), moved);
        let mut ended = Vec::new();
        out.end_all(7, |h| ended.push((h.channel, h.key, h.velocity, h.timing)));
        assert_eq!(
            ended,
            [(0, 60, None, 7), (1, 72, None, 7), (9, 36, None, 7)]
        );
        assert!(out.is_silent());
        // The engine's own stop of a note already ended is dropped.
        assert!(sent(&mut out, note(Part::Chord, 60, false), moved).is_empty());
        assert!(sent(&mut out, note(Part::Chord, 200, true), ch).is_empty());
    }
}
