//! Compose parameters shared with the composer thread without locks: a sequence
//! lock over the two words of [`ComposeParams::to_words`].

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::compose::phrase::ComposeParams;

/// The seqlock. One writer (the engine, through `&mut`), any reader.
#[derive(Debug, Default)]
pub(super) struct ParamsCell {
    seq: AtomicU64,
    words: [AtomicU64; 2],
}

impl ParamsCell {
    /// Publishes `p`. Atomics only.
    pub(super) fn write(&self, p: &ComposeParams) {
        let w = p.to_words();
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.words[0].store(w[0], Ordering::Relaxed);
        self.words[1].store(w[1], Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The parameters and their version (even; bumps by 2 per write).
    pub(super) fn read(&self) -> (u64, ComposeParams) {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let w = [
                self.words[0].load(Ordering::Relaxed),
                self.words[1].load(Ordering::Relaxed),
            ];
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                // Only words of real parameters are ever written, and the zero
                // words before the first write decode too: the default is never
                // taken.
                return (s1, ComposeParams::from_words(w).unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::theory::{Key, Mode};

    #[test]
    fn params_cell_round_trips() {
        let cell = ParamsCell::default();
        let p = ComposeParams {
            key: Key::new(7),
            mode: Mode::Lydian,
            bpm: 73.5,
            intensity: 0.25,
            bars: 12,
            beats_per_bar: 3,
        };
        cell.write(&p);
        let (v1, got) = cell.read();
        assert_eq!(got, p);
        cell.write(&ComposeParams::default());
        let (v2, got) = cell.read();
        assert_eq!(got, ComposeParams::default());
        assert!(v2 > v1);
    }
}
