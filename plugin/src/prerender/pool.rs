//! Texture buffers and their hand-off: a fixed set of [`Texture`]s allocated up
//! front travels to the real-time renderer through one `rtrb` SPSC ring and comes
//! back through a second, so the audio thread never allocates or frees (fundsp's
//! `realnet` habit; the same pattern as `render::feed`).
//!
//! **Sizing.** [`PoolConfig::for_params`] allocates [`PoolConfig::DEFAULT_TEXTURES`]
//! textures (one playing, one ready, one rendering, one spare) of the phrase length
//! of the parameters the engine starts with, at their tempo. A later phrase that is
//! longer (a slower tempo, more bars) grows the buffer it is rendered into, on the
//! pre-renderer thread — never on the audio thread — so memory stays bounded by
//! `textures × longest phrase so far`.

use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};

use super::recovery::TextureKind;
use super::texture::{texture_frames, Quality};
use crate::compose::form::PhraseForm;
use crate::compose::phrase::{ComposeParams, Phrase, PhraseKey};

/// How long a blocking take sleeps between looks at an empty ring.
const BLOCKING_POLL: Duration = Duration::from_micros(200);

/// One phrase's texture: stereo buffers with room for the longest phrase, of
/// which the first [`Texture::frames`] hold this phrase.
#[derive(Debug)]
pub struct Texture {
    phrase_index: u64,
    /// The parameters the phrase was composed with (a re-composed phrase has
    /// another texture).
    params: ComposeParams,
    frames: usize,
    kind: TextureKind,
    /// What it was rendered from, to render it again exactly.
    key: Option<TextureKey>,
    left: Vec<f32>,
    right: Vec<f32>,
}

/// What a texture was rendered from: the phrase, the quality of the first
/// attempt, how many failed attempts simplified it before the one that
/// counted, and the outcome. With the seed and sample rate that is enough to
/// render it again, sample for sample, on the same path
/// ([`super::Prerenderer::render_key`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextureKey {
    /// The phrase it is the texture of.
    pub phrase: PhraseKey,
    /// The quality of the first attempt.
    pub quality: Quality,
    /// Failed attempts before the one delivered (each simplified the phrase
    /// and halved the quality).
    pub simplifications: u8,
    /// Rendered on which path, or silence after every retry.
    pub kind: TextureKind,
}

impl Texture {
    /// An empty (silent) texture with room for `capacity` frames.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            phrase_index: 0,
            params: ComposeParams::default(),
            frames: 0,
            kind: TextureKind::Silence,
            key: None,
            left: resident_zeros(capacity),
            right: resident_zeros(capacity),
        }
    }

    /// The phrase this texture belongs to.
    #[must_use]
    pub fn phrase_index(&self) -> u64 {
        self.phrase_index
    }

    /// The parameters of the phrase it was rendered from.
    #[must_use]
    pub fn params(&self) -> &ComposeParams {
        &self.params
    }

    /// Its length in frames: the phrase and its tail
    /// ([`super::texture::texture_frames`]).
    #[must_use]
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Rendered (and on which path), or silence after every retry failed — then the
    /// real-time fallback pad should carry the phrase.
    #[must_use]
    pub fn kind(&self) -> TextureKind {
        self.kind
    }

    /// What it was rendered from (`None` before its first render).
    #[must_use]
    pub fn key(&self) -> Option<&TextureKey> {
        self.key.as_ref()
    }

    /// Left channel, `frames()` samples.
    #[must_use]
    pub fn left(&self) -> &[f32] {
        &self.left[..self.frames]
    }

    /// Right channel, `frames()` samples.
    #[must_use]
    pub fn right(&self) -> &[f32] {
        &self.right[..self.frames]
    }

    /// Frames the buffers can hold.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.left.len().min(self.right.len())
    }

    /// Grows the buffers to `frames` (allocates: pre-renderer thread only).
    pub(crate) fn ensure_capacity(&mut self, frames: usize) {
        if self.left.len() < frames {
            self.left.resize(frames, 0.0);
        }
        if self.right.len() < frames {
            self.right.resize(frames, 0.0);
        }
    }

    /// Both whole buffers, to render into.
    pub(crate) fn buffers_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.left, &mut self.right)
    }

    /// Labels the rendered content: the texture of `phrase`, made as `key` says
    /// (`None`: not recorded).
    pub(crate) fn set_content(
        &mut self,
        phrase: &Phrase,
        frames: usize,
        kind: TextureKind,
        key: Option<TextureKey>,
    ) {
        self.phrase_index = phrase.index;
        self.params = phrase.params;
        self.frames = frames.min(self.capacity());
        self.kind = kind;
        self.key = key;
    }
}

/// `len` zeros whose pages are written now. A plain `vec![0.0; len]` comes from
/// the allocator's lazily mapped zero pages, so the pool's memory would only become
/// resident as the first phrases are rendered into it: memory allocated up front
/// should be in use from the start, not grow for minutes like a leak.
fn resident_zeros(len: usize) -> Vec<f32> {
    let mut v = vec![0.0; len];
    // The compiler may not assume the memory still reads zero, so the writes stay.
    std::hint::black_box(&mut v).fill(0.0);
    v
}

/// How many textures, how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Textures allocated up front (at least 2).
    pub textures: usize,
    /// Frames each holds at first.
    pub max_frames: usize,
}

impl PoolConfig {
    /// Textures in a default pool: playing, ready, rendering, spare.
    pub const DEFAULT_TEXTURES: usize = 4;

    /// A pool for the textures of phrases of `params` (bars × beats per bar at its
    /// tempo, and their tail) at `sample_rate`.
    #[must_use]
    pub fn for_params(params: &ComposeParams, sample_rate: f32) -> Self {
        let probe = Phrase {
            index: 0,
            params: *params,
            prev_degree: None,
            chords: Vec::new(),
            melody: Vec::new(),
            percussion: Vec::new(),
            form: PhraseForm::STEADY,
        };
        Self {
            textures: Self::DEFAULT_TEXTURES,
            max_frames: texture_frames(&probe, sample_rate),
        }
    }
}

/// The pre-renderer's end of the hand-off.
#[derive(Debug)]
pub(crate) struct PoolSide {
    outgoing: Producer<Texture>,
    returned: Consumer<Texture>,
    free: Vec<Texture>,
}

/// The real-time renderer's end: rendered textures in phrase order, and the ring
/// that takes them back. Never blocks (except [`TextureFeed::take_blocking`]),
/// never allocates or frees.
#[derive(Debug)]
pub struct TextureFeed {
    incoming: Consumer<Texture>,
    returns: Producer<Texture>,
    /// Textures received for phrases not asked for yet, with their arrival order
    /// (one slot per texture in the pool, allocated up front).
    held: Vec<Option<(u64, Texture)>>,
    arrivals: u64,
}

/// A connected pair of ends with `config.textures` textures allocated up front.
pub(crate) fn texture_channel(config: PoolConfig) -> (PoolSide, TextureFeed) {
    let textures = config.textures.max(2);
    // Each ring holds every texture, so neither push can fail.
    let (outgoing, incoming) = RingBuffer::new(textures);
    let (returns, returned) = RingBuffer::new(textures);
    let free = (0..textures)
        .map(|_| Texture::with_capacity(config.max_frames))
        .collect();
    (
        PoolSide {
            outgoing,
            returned,
            free,
        },
        TextureFeed {
            incoming,
            returns,
            held: (0..textures).map(|_| None).collect(),
            arrivals: 0,
        },
    )
}

impl PoolSide {
    /// Moves every returned texture to the free list.
    pub(crate) fn reclaim(&mut self) {
        while let Ok(t) = self.returned.pop() {
            self.free.push(t);
        }
    }

    /// A free texture, if one is back.
    pub(crate) fn take_free(&mut self) -> Option<Texture> {
        self.reclaim();
        self.free.pop()
    }

    /// Puts a texture that was never sent back on the free list.
    pub(crate) fn release(&mut self, texture: Texture) {
        self.free.push(texture);
    }

    /// Whether the renderer's end is gone.
    pub(crate) fn renderer_gone(&self) -> bool {
        self.outgoing.is_abandoned()
    }

    /// Sends a finished texture to the renderer.
    pub(crate) fn send(&mut self, texture: Texture) {
        // The ring holds every texture there is, so it cannot be full; keep the
        // texture rather than lose it if that ever changes.
        if let Err(rtrb::PushError::Full(t)) = self.outgoing.push(texture) {
            self.free.push(t);
        }
    }
}

impl TextureFeed {
    /// The texture of phrase `phrase_index` if it has arrived. Textures of earlier
    /// phrases are given back; textures of later phrases are kept for later calls;
    /// when a phrase was rendered twice (the composer re-sent it after a parameter
    /// change) the newer texture wins. Never blocks, allocates or frees.
    pub fn take(&mut self, phrase_index: u64) -> Option<Texture> {
        while let Ok(t) = self.incoming.pop() {
            self.hold(t);
        }
        let mut found = None;
        for slot in &mut self.held {
            let index = slot.as_ref().map(|(_, t)| t.phrase_index);
            match index {
                Some(i) if i == phrase_index => found = slot.take().map(|(_, t)| t),
                Some(i) if i < phrase_index => {
                    if let Some((_, t)) = slot.take() {
                        give_back_to(&mut self.returns, t);
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Keeps `t`, replacing an older texture of the same phrase; with every slot
    /// full (cannot happen: there is a slot per texture) the oldest arrival goes back.
    fn hold(&mut self, t: Texture) {
        self.arrivals += 1;
        let same = self.held.iter().position(|s| {
            s.as_ref()
                .is_some_and(|(_, h)| h.phrase_index == t.phrase_index)
        });
        let slot = same
            .or_else(|| self.held.iter().position(Option::is_none))
            .or_else(|| {
                (0..self.held.len()).min_by_key(|&i| self.held[i].as_ref().map_or(0, |(a, _)| *a))
            });
        match slot {
            Some(i) => {
                if let Some((_, old)) = self.held[i].replace((self.arrivals, t)) {
                    give_back_to(&mut self.returns, old);
                }
            }
            None => give_back_to(&mut self.returns, t),
        }
    }

    /// Whether the texture of phrase `phrase_index` has arrived (it stays for a
    /// later [`TextureFeed::take`]). Never blocks, allocates or frees.
    pub fn is_ready(&mut self, phrase_index: u64) -> bool {
        while let Ok(t) = self.incoming.pop() {
            self.hold(t);
        }
        self.held.iter().any(|s| {
            s.as_ref()
                .is_some_and(|(_, t)| t.phrase_index == phrase_index)
        })
    }

    /// Gives back every texture received and not taken (after a seek).
    pub fn flush(&mut self) {
        while let Ok(t) = self.incoming.pop() {
            give_back_to(&mut self.returns, t);
        }
        for slot in &mut self.held {
            if let Some((_, t)) = slot.take() {
                give_back_to(&mut self.returns, t);
            }
        }
    }

    /// Like [`TextureFeed::take`], but waits up to `timeout` (offline rendering
    /// only: this sleeps). `None` on timeout or when the pre-renderer has gone away.
    pub fn take_blocking(&mut self, phrase_index: u64, timeout: Duration) -> Option<Texture> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.take(phrase_index) {
                return Some(t);
            }
            let gone = self.incoming.is_abandoned() && self.incoming.is_empty();
            if gone || Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(BLOCKING_POLL);
        }
    }

    /// Returns a texture to the pool (to be reused by the pre-renderer). Never
    /// blocks, allocates or frees while the pre-renderer runs.
    pub fn give_back(&mut self, texture: Texture) {
        give_back_to(&mut self.returns, texture);
    }
}

/// Pushes `texture` onto the return ring.
fn give_back_to(returns: &mut Producer<Texture>, texture: Texture) {
    // The return ring holds every texture there is, so this cannot fail; if it ever
    // did, dropping here (a free) is the only thing left to do.
    if let Err(rtrb::PushError::Full(t)) = returns.push(texture) {
        drop(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prerender::stats::Backend;

    fn phrase(index: u64) -> Phrase {
        Phrase {
            index,
            params: ComposeParams::default(),
            prev_degree: None,
            chords: Vec::new(),
            melody: Vec::new(),
            percussion: Vec::new(),
            form: PhraseForm::STEADY,
        }
    }

    fn rendered(side: &mut PoolSide, index: u64) {
        let mut t = side.take_free().expect("a free texture");
        t.set_content(
            &phrase(index),
            10,
            TextureKind::Rendered(Backend::Cpu),
            None,
        );
        side.send(t);
    }

    #[test]
    fn textures_travel_and_come_back() {
        let (mut side, mut feed) = texture_channel(PoolConfig {
            textures: 3,
            max_frames: 16,
        });
        assert!(feed.take(0).is_none());
        rendered(&mut side, 0);
        rendered(&mut side, 1);
        rendered(&mut side, 2);
        assert!(side.take_free().is_none(), "all three are out");
        let t0 = feed.take(0).expect("phrase 0");
        assert_eq!(
            (t0.phrase_index(), t0.frames(), t0.left().len()),
            (0, 10, 10)
        );
        // Asking for phrase 2 gives phrase 1 back on the way.
        let t2 = feed.take(2).expect("phrase 2");
        assert_eq!(t2.phrase_index(), 2);
        feed.give_back(t0);
        feed.give_back(t2);
        side.reclaim();
        assert_eq!(side.free.len(), 3);
    }

    #[test]
    fn a_later_texture_waits_for_its_phrase() {
        let (mut side, mut feed) = texture_channel(PoolConfig {
            textures: 2,
            max_frames: 16,
        });
        rendered(&mut side, 5);
        assert!(feed.is_ready(5) && !feed.is_ready(4));
        assert!(feed.take(4).is_none());
        assert!(feed.take_blocking(4, Duration::from_millis(1)).is_none());
        assert_eq!(feed.take(5).map(|t| t.phrase_index()), Some(5));
    }

    #[test]
    fn a_re_rendered_phrase_replaces_the_older_texture() {
        let (mut side, mut feed) = texture_channel(PoolConfig {
            textures: 3,
            max_frames: 16,
        });
        let mut t = side.take_free().expect("free");
        t.set_content(&phrase(1), 10, TextureKind::Silence, None);
        side.send(t);
        assert!(feed.take(0).is_none());
        rendered(&mut side, 1);
        let t = feed.take(1).expect("phrase 1");
        assert_eq!(
            t.kind(),
            TextureKind::Rendered(Backend::Cpu),
            "the newer one"
        );
        side.reclaim();
        assert_eq!(side.free.len(), 2, "the older one came back");
        feed.give_back(t);
    }

    #[test]
    fn flush_returns_everything_held() {
        let (mut side, mut feed) = texture_channel(PoolConfig {
            textures: 3,
            max_frames: 16,
        });
        rendered(&mut side, 7);
        rendered(&mut side, 8);
        assert!(feed.take(2).is_none());
        feed.flush();
        side.reclaim();
        assert_eq!(side.free.len(), 3);
    }

    #[test]
    fn blocking_take_returns_when_the_worker_is_gone() {
        let (side, mut feed) = texture_channel(PoolConfig {
            textures: 2,
            max_frames: 4,
        });
        drop(side);
        assert!(feed.take_blocking(0, Duration::from_secs(5)).is_none());
    }

    #[test]
    fn pool_is_sized_from_params() {
        let params = ComposeParams::default(); // 8 bars of 4 at 60 BPM
        let c = PoolConfig::for_params(&params, 48_000.0);
        assert_eq!(c.max_frames, 34 * 48_000, "32 s and a 2 s tail");
        assert_eq!(c.textures, PoolConfig::DEFAULT_TEXTURES);
    }
}
