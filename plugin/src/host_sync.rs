//! Following a host: the key from held MIDI notes and the song position from the
//! host's transport. Pure and allocation-free, so the plugin wrapper stays thin
//! and this can be tested without a host.

/// Largest difference, in beats, between where the host's playhead is and where
/// it would be had it simply kept playing, before it counts as a jump.
pub const JUMP_TOLERANCE_BEATS: f64 = 1e-3;
/// Largest difference, in beats, between the engine's song position and the
/// host's before the engine is re-aligned (tempo changes apply at phrase
/// boundaries, so the two drift apart while a phrase plays at the old tempo).
pub const DRIFT_TOLERANCE_BEATS: f64 = 0.5;

/// The MIDI notes held down; the most recent one sets the key.
#[derive(Debug, Clone)]
pub struct HeldNotes {
    /// Press order of each held note (0: not held).
    pressed_at: [u64; 128],
    presses: u64,
}

impl Default for HeldNotes {
    fn default() -> Self {
        Self {
            pressed_at: [0; 128],
            presses: 0,
        }
    }
}

impl HeldNotes {
    /// A note went down (notes above 127 are ignored).
    pub fn note_on(&mut self, note: u8) {
        if let Some(slot) = self.pressed_at.get_mut(usize::from(note)) {
            self.presses += 1;
            *slot = self.presses;
        }
    }

    /// A note went up.
    pub fn note_off(&mut self, note: u8) {
        if let Some(slot) = self.pressed_at.get_mut(usize::from(note)) {
            *slot = 0;
        }
    }

    /// Every note up.
    pub fn clear(&mut self) {
        self.pressed_at = [0; 128];
    }

    /// The pitch class (0 = C … 11 = B) of the most recently pressed note still
    /// held, if any.
    #[must_use]
    pub fn key(&self) -> Option<u8> {
        let (note, &at) = self
            .pressed_at
            .iter()
            .enumerate()
            .max_by_key(|(_, at)| **at)?;
        (at > 0).then_some((note % 12) as u8)
    }
}

/// Where the host's transport is at the start of a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostPosition {
    /// Song position in beats (quarter notes).
    pub beat: f64,
    /// Tempo in BPM.
    pub bpm: f64,
}

/// Decides when the engine must jump to follow the host's song position.
#[derive(Debug, Clone, Default)]
pub struct TransportFollower {
    /// Where the host's playhead should be at the next block if it keeps playing.
    expected_beat: Option<f64>,
}

impl TransportFollower {
    /// Looks at the host's position at the start of a block of `frames` frames
    /// (`None`: the transport is stopped or the host gives no position) and the
    /// engine's song position; returns the beat to seek the engine to, if any.
    /// The engine jumps when the transport starts, when the playhead jumps, and
    /// when the engine has drifted more than [`DRIFT_TOLERANCE_BEATS`] away.
    pub fn update(
        &mut self,
        host: Option<HostPosition>,
        engine_beat: Option<f64>,
        frames: usize,
        sample_rate: f32,
    ) -> Option<f64> {
        let Some(host) = host.filter(|h| h.beat.is_finite() && h.bpm.is_finite() && h.bpm > 0.0)
        else {
            self.expected_beat = None;
            return None;
        };
        let jumped = self
            .expected_beat
            .is_none_or(|e| (host.beat - e).abs() > JUMP_TOLERANCE_BEATS);
        let drifted = engine_beat.is_none_or(|b| (b - host.beat).abs() > DRIFT_TOLERANCE_BEATS);
        self.expected_beat =
            Some(host.beat + frames as f64 * host.bpm / 60.0 / f64::from(sample_rate));
        (jumped || drifted).then_some(host.beat.max(0.0))
    }

    /// Forgets the host's last position (after a reset or re-activation).
    pub fn reset(&mut self) {
        self.expected_beat = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_held_note_sets_the_key() {
        let mut held = HeldNotes::default();
        assert_eq!(held.key(), None);
        held.note_on(62);
        assert_eq!(held.key(), Some(2));
        held.note_on(69);
        assert_eq!(held.key(), Some(9));
        held.note_off(69);
        assert_eq!(held.key(), Some(2));
        held.note_on(200);
        held.note_off(62);
        assert_eq!(held.key(), None);
        held.note_on(0);
        held.clear();
        assert_eq!(held.key(), None);
    }

    #[test]
    fn follows_starts_jumps_and_drift_only() {
        let mut f = TransportFollower::default();
        let at = |beat| Some(HostPosition { beat, bpm: 120.0 });
        // Stopped: nothing.
        assert_eq!(f.update(None, Some(3.0), 480, 48_000.0), None);
        // Starts playing: align, even if the engine is close.
        assert_eq!(f.update(at(8.0), Some(8.0), 480, 48_000.0), Some(8.0));
        // 480 frames at 120 BPM and 48 kHz are 0.02 beats: no jump.
        assert_eq!(f.update(at(8.02), Some(8.02), 480, 48_000.0), None);
        // Small drift is tolerated, large is not.
        assert_eq!(f.update(at(8.04), Some(8.3), 480, 48_000.0), None);
        assert_eq!(f.update(at(8.06), Some(9.0), 480, 48_000.0), Some(8.06));
        // A jump of the playhead, backwards or forwards.
        assert_eq!(f.update(at(2.0), Some(8.08), 480, 48_000.0), Some(2.0));
        assert_eq!(f.update(at(2.03), Some(2.02), 480, 48_000.0), Some(2.03));
        // No engine position yet: align.
        assert_eq!(f.update(at(2.05), None, 480, 48_000.0), Some(2.05));
        // Nonsense from the host is ignored.
        let nan = Some(HostPosition {
            beat: f64::NAN,
            bpm: 120.0,
        });
        assert_eq!(f.update(nan, Some(1.0), 480, 48_000.0), None);
    }
}
