//! The renderer's journal: what the audio thread took, and when, so that a
//! recording can render it again sample for sample ([`crate::engine::replay`]).
//!
//! What a real-time renderer plays is a pure function of the seed and of four
//! kinds of input, each applied at a frame: the phrase started (and what it was
//! composed from), the texture taken for it (or none, where the pad carried), the
//! degradation level applied and the mix levels set. Timing decides all four in
//! real time (a phrase or texture that is late is taken later, or never), so the
//! renderer records each as it happens, into lock-free SPSC rings of `Copy`
//! records allocated up front: one for the renderer, one for its texture layer.
//! Writing is a push that never blocks or allocates; a full ring drops the record
//! and counts it (the reader then knows the journal has a hole).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::compose::mix::MixLevels;
use crate::compose::phrase::PhraseKey;
use crate::degrade::Level;
use crate::prerender::pool::TextureKey;
use crate::render::SeekTarget;

/// Records one ring holds by default: minutes of ordinary playing at the
/// bridge's tenth-of-a-second drains.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 1024;

/// One thing the renderer took, at the absolute frame it took effect (before the
/// frame `frame` was rendered).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum JournalEvent {
    /// A phrase started (from the feed; not the replays of the overload loop,
    /// which follow from the level).
    Phrase {
        /// Absolute frame.
        frame: u64,
        /// What it was composed from.
        key: PhraseKey,
    },
    /// The wanted phrase's texture was taken (a silent one too: the pad carries
    /// that phrase).
    Texture {
        /// Absolute frame.
        frame: u64,
        /// What it was rendered from.
        key: TextureKey,
    },
    /// A texture was taken that says nothing of how it was made (rendered
    /// outside the pre-renderer): the journal cannot replay past it.
    UnkeyedTexture {
        /// Absolute frame.
        frame: u64,
    },
    /// The degradation level applied changed.
    Level {
        /// Absolute frame.
        frame: u64,
        /// The level from this frame on.
        level: Level,
    },
    /// New mix levels (smoothed from this frame on).
    Mix {
        /// Absolute frame.
        frame: u64,
        /// The levels.
        levels: MixLevels,
    },
    /// The song position jumped (the bridge's engine does this only when its
    /// parameters change before the first block; a host's transport often).
    Seek {
        /// Absolute frame.
        frame: u64,
        /// Where to.
        target: SeekTarget,
    },
}

impl JournalEvent {
    /// The absolute frame it took effect at.
    #[must_use]
    pub const fn frame(&self) -> u64 {
        match *self {
            Self::Phrase { frame, .. }
            | Self::Texture { frame, .. }
            | Self::UnkeyedTexture { frame }
            | Self::Level { frame, .. }
            | Self::Mix { frame, .. }
            | Self::Seek { frame, .. } => frame,
        }
    }
}

/// The audio thread's end of one ring.
#[derive(Debug)]
pub struct JournalWriter {
    ring: Producer<JournalEvent>,
    lost: Arc<AtomicU64>,
}

impl JournalWriter {
    /// Records `event`; a full ring drops it and counts it. Never blocks or
    /// allocates.
    pub fn record(&mut self, event: JournalEvent) {
        if self.ring.push(event).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The reading end of a renderer's journal (both rings), for another thread.
#[derive(Debug)]
pub struct JournalReader {
    rings: [Consumer<JournalEvent>; 2],
    lost: Arc<AtomicU64>,
}

impl JournalReader {
    /// Moves every record written so far into `out`, in frame order (within a
    /// frame: the renderer's before its texture layer's). Allocates only to grow
    /// `out`.
    pub fn drain_into(&mut self, out: &mut Vec<JournalEvent>) {
        let first = out.len();
        for ring in &mut self.rings {
            while let Ok(event) = ring.pop() {
                out.push(event);
            }
        }
        // Each ring is in order already; a stable sort interleaves them.
        out[first..].sort_by_key(JournalEvent::frame);
    }

    /// Records dropped because a ring was full, since the start.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// A journal of `capacity` records per ring: the renderer's writer, its
/// texture layer's, and the reader.
#[must_use]
pub fn journal(capacity: usize) -> (JournalWriter, JournalWriter, JournalReader) {
    let lost = Arc::new(AtomicU64::new(0));
    let (a, ra) = RingBuffer::new(capacity.max(1));
    let (b, rb) = RingBuffer::new(capacity.max(1));
    (
        JournalWriter {
            ring: a,
            lost: Arc::clone(&lost),
        },
        JournalWriter {
            ring: b,
            lost: Arc::clone(&lost),
        },
        JournalReader {
            rings: [ra, rb],
            lost,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_frame_order_and_counts_what_a_full_ring_drops() {
        let (mut a, mut b, mut reader) = journal(2);
        let level = |frame| JournalEvent::Level {
            frame,
            level: Level::Normal,
        };
        a.record(level(5));
        b.record(JournalEvent::UnkeyedTexture { frame: 3 });
        a.record(level(9));
        a.record(level(10));
        let mut out = Vec::new();
        reader.drain_into(&mut out);
        let frames: Vec<u64> = out.iter().map(JournalEvent::frame).collect();
        assert_eq!(frames, [3, 5, 9]);
        assert_eq!(reader.lost(), 1);
    }
}
