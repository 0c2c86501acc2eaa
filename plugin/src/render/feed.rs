//! The renderer's end of the phrase hand-off: phrases arrive from the composer
//! thread through a lock-free SPSC ring and go back through a second one when the
//! renderer is done with them, so the audio thread never frees their heap memory.

use std::time::Duration;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::compose::phrase::Phrase;

/// Slots in each ring. Phrases come seconds apart, so this is never the limit.
pub const FEED_CAPACITY: usize = 8;

/// How long an offline renderer sleeps between looks at an empty ring.
const OFFLINE_POLL: Duration = Duration::from_micros(50);

/// The composer's end: where it sends phrases and collects used ones.
#[derive(Debug)]
pub struct PhraseSender {
    /// Newly composed phrases, in order.
    pub outgoing: Producer<Phrase>,
    /// Phrases the renderer has finished with, to be dropped here.
    pub returned: Consumer<Phrase>,
}

/// The renderer's end.
#[derive(Debug)]
pub struct PhraseFeed {
    incoming: Consumer<Phrase>,
    returns: Producer<Phrase>,
    /// The newest phrase received and not yet started.
    pending: Option<Phrase>,
}

/// A connected pair of ends.
#[must_use]
pub fn phrase_channel() -> (PhraseSender, PhraseFeed) {
    let (outgoing, incoming) = RingBuffer::new(FEED_CAPACITY);
    // Room for every phrase that can be in flight, so a return never fails.
    let (returns, returned) = RingBuffer::new(FEED_CAPACITY + 2);
    (
        PhraseSender { outgoing, returned },
        PhraseFeed {
            incoming,
            returns,
            pending: None,
        },
    )
}

impl PhraseFeed {
    /// Takes what has arrived; a newer phrase replaces the pending one (the
    /// composer re-sends a phrase after a parameter change). Never blocks, never
    /// allocates or frees.
    pub fn poll(&mut self) {
        // Accept a replacement only when the one it replaces can be returned.
        while self.returns.slots() > 0 {
            let Ok(phrase) = self.incoming.pop() else {
                break;
            };
            if let Some(old) = self.pending.replace(phrase) {
                self.give_back(old);
            }
        }
    }

    /// The pending phrase if it is phrase `min_index` or later; an older one is
    /// returned to the composer.
    pub fn take(&mut self, min_index: u64) -> Option<Phrase> {
        self.poll();
        match self.pending.take() {
            Some(p) if p.index >= min_index => Some(p),
            Some(stale) => {
                self.give_back(stale);
                None
            }
            None => None,
        }
    }

    /// Whether phrase `min_index` or a later one has arrived (it stays for
    /// [`PhraseFeed::take`]). Never blocks, allocates or frees.
    pub fn is_ready(&mut self, min_index: u64) -> bool {
        self.poll();
        self.pending.as_ref().is_some_and(|p| p.index >= min_index)
    }

    /// Like [`PhraseFeed::take`], but waits for the composer (offline rendering
    /// only: this sleeps). Gives `None` only if the composer has gone away.
    pub fn take_blocking(&mut self, min_index: u64) -> Option<Phrase> {
        loop {
            if let Some(p) = self.take(min_index) {
                return Some(p);
            }
            if self.incoming.is_abandoned() && self.incoming.is_empty() {
                return None;
            }
            std::thread::sleep(OFFLINE_POLL);
        }
    }

    /// Hands a finished phrase back to the composer thread to be freed there.
    pub fn give_back(&mut self, phrase: Phrase) {
        // The return ring holds every phrase that can be out at once (poll only
        // accepts a replacement when there is room), so this cannot fail while the
        // composer runs; if it has stopped, dropping here is all that is left.
        if let Err(rtrb::PushError::Full(phrase)) = self.returns.push(phrase) {
            drop(phrase);
        }
    }
}
